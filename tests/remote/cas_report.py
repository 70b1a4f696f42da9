#!/usr/bin/env python3
"""What BuildGrid's CAS holds, against the layers of the images Bazel built.

    cas_report.py CAS_DIR BAZEL_BIN [STRATA_BINARY]

CAS_DIR is the root of a BuildGrid `!disk-storage` (blobs at
cas/objects/<2 hex>/<62 hex>); BAZEL_BIN the bazel-bin of the build. Prints the
CAS's bytes and blobs by kind, the distinct layer blobs of every OCI layout in
BAZEL_BIN (with how many copies of each the outputs hold and how many the CAS
holds), and fails (exit 1) unless every distinct layer is in the CAS exactly
once and the CAS's layer bytes equal the sum of the distinct layer sizes.
The last line is `CAS_BYTES=<n> LAYER_BYTES=<n>` for run.sh.
"""

import hashlib
import json
import os
import sys

LAYER_TYPES = ("application/vnd.oci.image.layer.", "application/vnd.docker.image.rootfs.")


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def cas_blobs(cas_dir):
    objects = os.path.join(cas_dir, "cas", "objects")
    blobs = {}
    for prefix in os.listdir(objects):
        for rest in os.listdir(os.path.join(objects, prefix)):
            blobs[prefix + rest] = os.path.getsize(os.path.join(objects, prefix, rest))
    return blobs


def layouts(root):
    """Directories under root that are OCI layouts (oci-layout + index.json)."""
    for d, _, files in os.walk(root):
        if "oci-layout" in files and "index.json" in files:
            yield d


def layers_of(layout):
    """{hex digest: size} of the layers of every manifest reachable from index.json."""
    out = {}
    todo = [json.load(open(os.path.join(layout, "index.json")))]
    while todo:
        doc = todo.pop()
        for m in doc.get("manifests", []):
            todo.append(json.load(open(os.path.join(layout, "blobs", *m["digest"].split(":")))))
        for layer in doc.get("layers", []):
            if layer["mediaType"].startswith(LAYER_TYPES):
                out[layer["digest"].split(":")[1]] = layer["size"]
    return out


def main():
    cas_dir, bazel_bin = sys.argv[1], sys.argv[2]
    strata = sys.argv[3] if len(sys.argv) > 3 else None
    cas = cas_blobs(cas_dir)

    # Every output file Bazel wrote (not runfiles trees: links to the same files).
    outputs = {}  # hex digest -> [path relative to bazel-bin]
    output_bytes = 0
    for d, dirs, files in os.walk(bazel_bin):
        dirs[:] = [x for x in dirs if not x.endswith(".runfiles")]
        for name in files:
            p = os.path.join(d, name)
            if os.path.islink(p) or name.endswith(".runfiles_manifest"):
                continue
            output_bytes += os.path.getsize(p)
            outputs.setdefault(sha256_file(p), []).append(os.path.relpath(p, bazel_bin))

    layers = {}  # hex digest -> size
    images = {}
    for layout in sorted(layouts(bazel_bin)):
        ls = layers_of(layout)
        images[os.path.relpath(layout, bazel_bin)] = ls
        layers.update(ls)
    layer_bytes = sum(layers.values())

    print(f"OCI layouts in bazel-bin: {len(images)}")
    for name, ls in images.items():
        print(f"  {name}: {len(ls)} layers, {sum(ls.values())} bytes")
    per_image = sum(sum(ls.values()) for ls in images.values())
    print(f"layer bytes summed over the {len(images)} images (a base counted in each image on it): {per_image}")
    print(f"distinct layers: {len(layers)}, {layer_bytes} bytes")
    ok = True
    for h, size in sorted(layers.items(), key=lambda kv: -kv[1]):
        copies = outputs.get(h, [])
        in_cas = 1 if h in cas else 0
        if in_cas != 1 or cas.get(h) != size:
            ok = False
        print(f"  sha256:{h[:12]} {size:>7} B: {len(copies)} copies in the outputs, {in_cas} in the CAS")
        for c in sorted(copies):
            print(f"      {c}")

    kinds = {"layer blobs": [0, 0], "strata binary": [0, 0], "other output files": [0, 0], "protos, logs, inputs": [0, 0]}
    strata_hash = sha256_file(strata) if strata else None
    for h, size in cas.items():
        if h in layers:
            k = "layer blobs"
        elif h == strata_hash:
            k = "strata binary"
        elif h in outputs:
            k = "other output files"
        else:
            k = "protos, logs, inputs"
        kinds[k][0] += 1
        kinds[k][1] += size
    cas_bytes = sum(cas.values())
    print(f"CAS: {len(cas)} blobs, {cas_bytes} bytes")
    for k, (n, b) in kinds.items():
        if n:
            print(f"  {k}: {n} blobs, {b} bytes")
    print(f"bazel-bin output files: {sum(len(v) for v in outputs.values())}, {output_bytes} bytes "
          f"({len(outputs)} distinct contents)")
    if kinds["layer blobs"][1] != layer_bytes:
        ok = False
    print(f"CAS_BYTES={cas_bytes} LAYER_BYTES={layer_bytes} CAS_LAYER_BYTES={kinds['layer blobs'][1]}")
    if not ok:
        print("FAIL: the CAS does not hold every distinct layer exactly once", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
