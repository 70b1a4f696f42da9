"""Public API of the strata Bazel rules: byte-identical OCI layers and images.

    load("@strata//rules:defs.bzl", "oci_image", "oci_image_index", "oci_layer", "oci_load", "oci_push", "oci_sbom")
    load("@strata//rules:defs.bzl", "oci_attest")

One rule per file in rules/private/; this file only re-exports them (and the
`oci_push` macro taking `remote_tags` as a list or a file). `oci_pull` is a
repository rule: load it in WORKSPACE from @strata//rules:repositories.bzl.
"""

load("//rules:providers.bzl", _OciImageInfo = "OciImageInfo", _OciLayerInfo = "OciLayerInfo")
load("//rules/private:attest.bzl", _oci_attest = "oci_attest")
load("//rules/private:image.bzl", _oci_image = "oci_image")
load("//rules/private:image_index.bzl", _oci_image_index = "oci_image_index")
load("//rules/private:layer.bzl", _oci_layer = "oci_layer")
load("//rules/private:load.bzl", _oci_load = "oci_load")
load("//rules/private:push.bzl", _oci_push = "oci_push")
load("//rules/private:sbom.bzl", _oci_sbom = "oci_sbom")

oci_layer = _oci_layer
oci_image = _oci_image
oci_image_index = _oci_image_index
oci_load = _oci_load
oci_sbom = _oci_sbom
oci_attest = _oci_attest
OciLayerInfo = _OciLayerInfo
OciImageInfo = _OciImageInfo

def oci_push(name, remote_tags = None, **kwargs):
    """`bazel run :<name>` pushes an image with `strata push` (rules/private/push.bzl).

    Args:
      name: name of the target.
      remote_tags: tags to push: a list, or the label of a file with one tag
        per line (as rules_oci takes it).
      **kwargs: `image`, `repository`, `insecure`, ... of the rule.
    """
    if type(remote_tags) == "list":
        kwargs["remote_tags"] = remote_tags
    elif remote_tags != None:
        kwargs["remote_tags_file"] = remote_tags
    _oci_push(name = name, **kwargs)
