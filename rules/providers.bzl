"""Providers shared by the strata rules."""

OciLayerInfo = provider(
    doc = "A layer blob built by strata and its descriptor (mediaType, digest, size, diffId).",
    fields = {
        "blob": "File: the layer blob",
        "descriptor": "File: the JSON descriptor written by `strata layer --descriptor`",
        "packages": "File or None: the purls declared with `oci_layer(packages = ...)`, one a line",
    },
)

OciImageInfo = provider(
    doc = "An OCI image layout directory built by strata, and its manifest (or index) digest.",
    fields = {
        "layout": "File (directory): the OCI image layout",
        "digest": "File: the digest, `sha256:...`, without newline",
    },
)
