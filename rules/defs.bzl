"""Public API of the strata Bazel rules: byte-identical OCI layers and images.

    load("@strata//rules:defs.bzl", "oci_image", "oci_image_index", "oci_layer", "oci_load")

One rule per file in rules/private/; this file only re-exports them.
`oci_push` is not here yet: it needs `strata push` (the registry issue).
"""

load("//rules:providers.bzl", _OciImageInfo = "OciImageInfo", _OciLayerInfo = "OciLayerInfo")
load("//rules/private:image.bzl", _oci_image = "oci_image")
load("//rules/private:image_index.bzl", _oci_image_index = "oci_image_index")
load("//rules/private:layer.bzl", _oci_layer = "oci_layer")
load("//rules/private:load.bzl", _oci_load = "oci_load")

oci_layer = _oci_layer
oci_image = _oci_image
oci_image_index = _oci_image_index
oci_load = _oci_load
OciLayerInfo = _OciLayerInfo
OciImageInfo = _OciImageInfo
