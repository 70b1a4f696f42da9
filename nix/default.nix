# strata for Nix: Nix writes JSON and flags, the strata binary writes every byte.
#
#   let s = import ./nix { strata = <strata package, or the binary itself>; }; in
#   s.buildImage {
#     name = "app";
#     layers = [ (s.buildLayer { name = "www"; contents = [ ./www ]; }) ];
#     config.Entrypoint = [ "${app}/bin/app" ];   # app and its closure go to /nix/store
#     maxLayers = 10;                              # ... in up to 10 layers (default 100), by size
#     previousLayers = ./app.layers.lock;          # keep the last release's split (optional)
#   }
#
# `image.layers` (images with a closure) is the split's lock: commit it beside
# flake.lock and pass it as the next release's previousLayers.
#
# Registries: `pullImage` pins a base by digest and keeps only its manifest
# and config in the store (a shallow layout: layers stay in the registry);
# `pushImage` makes a script (`nix run`) that pushes an image, mounting or
# streaming a shallow base's layers registry-side; `loadImage` one that loads
# an image into docker or podman, sending only the layers the engine lacks.
#
# Depends on nothing but builtins (no nixpkgs), so it works offline and with
# any nixpkgs. Every builder is a raw derivation running strata, directly or
# from /bin/sh (to read a file Nix passes, or to loop over closure layers),
# and runs no other program; only pushImage's builder also needs mkdir and
# chmod (the `coreutils` argument), and so does loadImage's.
#
# Closure layering: the runtime closure of store paths is only known at build
# time (exportReferencesGraph, under __structuredAttrs so Nix gives each
# path's narSize). `strata nix-layers` splits it into layer specs (see
# `closureSpecs` below and src/nix/ for the exact semantics), inside the
# image's derivation, or (layerDerivations = true) in a derivation of its own
# whose specs Nix reads at evaluation time to make one derivation per layer
# (`specLayer`), so an unchanged layer is never rebuilt. An OCI layout's
# blobs held by other store paths are symlinks to them (linkLayers).
{
  # The strata package (an attribute set, e.g. a derivation, with bin/strata),
  # or the strata binary itself (a path or string).
  strata,
  # The platform the builders run on.
  system ? builtins.currentSystem or "x86_64-linux",
  # A package with bin/mkdir and bin/chmod (e.g. nixpkgs' coreutils), for
  # pushImage only: its script must be executable, which /bin/sh alone cannot
  # do. Default: the host's /usr/bin and /bin (an FHS host, no sandbox).
  coreutils ? null,
}:
let
  bin = if builtins.isAttrs strata then "${strata}/bin/strata" else "${strata}";
  strip = p: let s = toString p; in if builtins.substring 0 1 s == "/" then builtins.substring 1 (-1) s else s;
  words = builtins.concatStringsSep " ";
  # A shell word: single-quoted.
  q = s: "'" + builtins.replaceStrings [ "'" ] [ "'\\''" ] s + "'";
  indexed = prefix: list: builtins.genList (i: { name = "${prefix}${toString i}"; value = builtins.elemAt list i; }) (builtins.length list);
  # exportReferencesGraph pairs: [ "graph0" path0 "graph1" path1 ... ].
  graphPairs = prefix: paths: builtins.concatMap (g: [ g.name "${g.value}" ]) (indexed prefix paths);
  graphNames = prefix: paths: map (g: g.name) (indexed prefix paths);

  # The shell command writing the closure's layer specs into the directory
  # `outDir` (created, or replaced), 0001.json ... bottom first, none when no
  # path is left: every path of the `graphs` (exportReferencesGraph files)
  # except the `drop` paths (their references stay) and the paths of the
  # `excludeGraphs` (held by another layer), split by `strategy` ("size":
  # the largest paths alone, the rest grouped by the large paths using them;
  # "popularity": the most depended-on paths alone) into at most `maxLayers`
  # layers, keeping the split of the lock `previous` (a path, or null), and
  # writing this split's lock to `lockOut` (a path, or null); `groups`: lists
  # of patterns whose paths share a layer of their own, below the split.
  closureSpecs = { graphs, excludeGraphs ? [ ], drop ? [ ], maxLayers, outDir, strategy, previous ? null, lockOut ? null, groups ? [ ] }:
    "${bin} nix-layers --strategy ${strategy} --max-layers ${toString maxLayers} --out-dir ${outDir} "
    + words (map (p: "--drop ${p}") drop ++ map (g: "--exclude-graph ${g}") excludeGraphs
      ++ map (g: "--group '${builtins.replaceStrings [ "'" ] [ "'\\''" ] (builtins.concatStringsSep "," g)}'") groups
      ++ (if previous == null then [ ] else [ "--previous ${previous}" ])
      ++ (if lockOut == null then [ ] else [ "--lock-out ${lockOut}" ])
      ++ graphs);

  # The store paths a string refers to, as context keys ("/nix/store/…drv!out"
  # for a derivation output, the path for a source).
  contextKeys = s: builtins.concatLists (builtins.attrValues (builtins.mapAttrs
    (k: v: (if v.path or false then [ k ] else [ ]) ++ map (o: "${k}!${o}") (v.outputs or [ ]))
    (builtins.getContext s)));

  # exportReferencesGraph under __structuredAttrs: { graph = [ p ]; exclude0 = [ q ]; … };
  # each graph lands in the build directory's .attrs.json, with narSize.
  graphAttrs = prefix: paths: builtins.listToAttrs (map (g: { inherit (g) name; value = [ "${g.value}" ]; }) (indexed prefix paths));
  attrsGraphs = prefix: paths: map (n: ".attrs.json#${n}") (graphNames prefix paths);

  # One closure layer as a derivation of its own (buildImage's
  # layerDerivations): `text`, a layer spec nix-layers wrote, read at
  # evaluation time. Its context is only the store paths the spec places, so
  # the derivation (and its output) stays the same as long as they do, in any
  # image and whatever else the closure holds.
  specLayer = { text, compression, mtime }:
    let
      plain = builtins.unsafeDiscardStringContext text;
      paths = map (e: "/${e.path}") (builtins.fromJSON plain).entries;
      # Named after the first store path (hash dropped): "glibc-2.37-layer".
      first = builtins.head (builtins.sort builtins.lessThan (map (p: builtins.substring 33 (-1) (baseNameOf p)) paths));
    in
    derivation {
      name = "${first}-layer";
      inherit system;
      outputs = [ "out" "descriptor" ];
      spec = builtins.appendContext plain (builtins.listToAttrs (map (p: { name = p; value = { path = true; }; }) paths));
      passAsFile = [ "spec" ];
      builder = "/bin/sh";
      # The flags buildImage's one-derivation loop gives: the same bytes.
      args = [ "-c" ''exec ${bin} layer --spec "$specPath" --out "$out" --descriptor "$descriptor" --compression ${compression} --mtime ${toString mtime} >/dev/null'' ];
    };
in
rec {
  # One layer: a strata layer spec written by Nix, turned into bytes by strata.
  # Outputs: `out` (the blob) and `descriptor` (its JSON descriptor
  # {mediaType, digest, size, diffId}).
  buildLayer =
    {
      name,
      # Directories (paths or derivations) whose contents go to the layer root.
      contents ? [ ],
      # { "in/layer/path" = path-or-derivation; }: single files.
      files ? { },
      # Store paths (derivations, or strings such as "${pkg}/bin/x") placed at
      # their own /nix/store path, with their whole runtime closure.
      storePaths ? [ ],
      # [ { path = "in/layer/path"; mode = "0755"; uid = 0; gid = 0; } ]: extra
      # directories with explicit attributes (e.g. /tmp with 1777).
      perms ? [ ],
      # mtime of every entry (default 0, as the CLI).
      mtime ? 0,
      # "gzip", "zstd" or "none".
      compression ? "gzip",
    }:
    let
      spec = {
        version = 1;
        entries =
          map (c: { type = "tree"; src = "${c}"; }) contents
          ++ builtins.attrValues (builtins.mapAttrs (p: src: { type = "file"; path = strip p; src = "${src}"; }) files)
          ++ map (p: { type = "dir"; path = strip p.path; } // builtins.removeAttrs p [ "path" ]) perms;
      };
      layerCmd = ''${bin} layer --spec "$specPath" --out "$out" --descriptor "$descriptor" --compression ${compression} --mtime ${toString mtime}'';
    in
    derivation ({
      name = "${name}-layer";
      inherit system;
      outputs = [ "out" "descriptor" ];
      spec = builtins.toJSON spec;
      passAsFile = [ "spec" ];
      builder = "/bin/sh";
      args = [
        "-c"
        (if storePaths == [ ] then
          # /bin/sh only reads the spec file's name from the environment.
          "exec ${layerCmd}"
        else
          # The closure as one more spec (one layer: no split; "popularity"
          # keeps the entry order, and so the bytes, of earlier releases).
          ''
            set -e
            ${closureSpecs { graphs = graphNames "graph" storePaths; maxLayers = 1; strategy = "popularity"; outDir = "closure"; }}
            exec ${layerCmd} --spec closure/0001.json
          '')
      ];
    } // (if storePaths == [ ] then { } else {
      exportReferencesGraph = graphPairs "graph" storePaths;
    })) // {
      # For buildImage: these paths and their closure are in this layer.
      strataStorePaths = storePaths;
    };

  # An image: layers (from buildLayer) on an optional base, then the runtime
  # closure of everything the image refers to, then copyToRoot, with a
  # Docker-style config. `out` is an OCI layout directory (format "oci"), or an
  # archive ("oci-archive", "docker-archive").
  buildImage =
    {
      name,
      # NAME:TAG recorded in the layout (and RepoTags of a docker-archive).
      tag ? null,
      # A base OCI layout (directory or archive), e.g. another buildImage.
      fromImage ? null,
      # buildLayer results, bottom first, above the base. Store paths they
      # hold (and their closures) are left out of the closure layers.
      layers ? [ ],
      # Directories (paths or derivations) copied to the root in one top
      # layer; the store paths they refer to join the closure layers.
      copyToRoot ? [ ],
      # Store paths whose runtime closure goes to /nix/store. The store paths
      # `config` mentions (e.g. Entrypoint = [ "${app}/bin/app" ]) always do.
      storePaths ? [ ],
      # At most this many layers for that closure (dockerTools' default).
      maxLayers ? 100,
      # How the closure is split: "size" (the largest store paths, and the
      # applications, in layers of their own, the rest grouped by the large
      # paths that use them, so a change re-uploads about what changed) or
      # "popularity" (the most depended-on paths alone, the rest in the last
      # layer: what maxLayers > 1 did before "size"; with maxLayers = 1 both
      # make the same one layer, but only "popularity" keeps the bytes of
      # images built before, when maxLayers defaulted to 1).
      layering ? "size",
      # The lock of an earlier release (its `layers` output, committed to the
      # repository): unchanged store paths keep their layers, so a push
      # uploads only what changed. Written for the same maxLayers and
      # layering, or the build fails naming it.
      previousLayers ? null,
      # Store paths that must share a layer (or stand alone), which the split
      # completes: a list of groups, each a list of patterns, a store path or
      # a name glob (`[ [ "python3*" ] [ "${app}" ] ]`); each group is one
      # layer, below the split, within maxLayers.
      layerGroups ? [ ],
      # { Entrypoint, Cmd, Env = [ "K=V" ], WorkingDir, User, ExposedPorts = { "80/tcp" = {}; },
      #   Volumes = { "/data" = {}; }, Labels = { }, StopSignal }
      config ? { },
      # RFC 3339.
      created ? "1970-01-01T00:00:00Z",
      architecture ? "amd64",
      os ? "linux",
      variant ? null,
      annotations ? { },
      # "oci" (a layout directory), "oci-archive" or "docker-archive".
      format ? "oci",
      # For the closure and copyToRoot layers.
      compression ? "gzip",
      mtime ? 0,
      # One derivation per closure layer, so a layer whose store paths did
      # not change is not rebuilt (it is the same store path): the split runs
      # in a derivation of its own and Nix reads its layer specs while it
      # evaluates (import-from-derivation, which some setups forbid, e.g.
      # Hydra or --option allow-import-from-derivation false). Same image,
      # byte for byte, either way. false: the split and every closure layer
      # are built inside the image's derivation.
      layerDerivations ? false,
      # format "oci": each layer blob another store path holds (buildLayer's,
      # layerDerivations', a fromImage layout's) is a symlink to it, so the
      # image refers to those store paths (nix copy carries them) and holds
      # no second copy of their bytes. false: hard links or copies.
      linkLayers ? true,
      # Attach the image's SBOM ("spdx", "cyclonedx", a list, or true for
      # "spdx") and/or its SLSA provenance as OCI 1.1 referrers (format
      # "oci" only): the result is then attest's (nix/attest.nix) layout.
      sbom ? null,
      provenance ? false,
    }:
    assert builtins.isInt maxLayers && maxLayers >= 1 || throw "buildImage ${name}: maxLayers must be an integer >= 1";
    assert builtins.elem layering [ "size" "popularity" ] || throw "buildImage ${name}: layering must be \"size\" or \"popularity\"";
    let
      c = config;
      configJSON = builtins.toJSON c;
      rootLayers = if copyToRoot == [ ] then [ ] else [ (buildLayer { name = "${name}-root"; contents = copyToRoot; inherit compression mtime; }) ];
      # The store paths the image refers to, found by Nix's reference scan of
      # one file holding the config, storePaths and copyToRoot.
      hasClosure = storePaths != [ ] || copyToRoot != [ ] || builtins.hasContext configJSON;
      roots = derivation {
        name = "${name}-roots";
        inherit system;
        builder = "/bin/sh";
        args = [ "-c" ''printf '%s\n' "$roots" > "$out"'' ];
        roots = builtins.concatStringsSep "\n" ([ configJSON ] ++ map (p: "${p}") (storePaths ++ copyToRoot));
      };
      # copyToRoot items go to the root, not to /nix/store, unless config or
      # storePaths refer to them too.
      wanted = contextKeys (configJSON + builtins.concatStringsSep " " (map (p: "${p}") storePaths));
      rootOnly = builtins.filter (p: builtins.all (k: !builtins.elem k wanted) (contextKeys "${p}")) copyToRoot;
      layerPaths = builtins.concatMap (l: l.strataStorePaths or [ ]) layers;
      # Store paths the base already holds (a buildImage base says which):
      # left out of this image's closure layers, like those of `layers`.
      basePaths = if fromImage == null then [ ] else fromImage.strataStorePaths or [ ];
      # What this image puts in /nix/store, for images built on it: the
      # closure of storePaths and of what config mentions (copyToRoot is left
      # out: its items sit at the root, and leaving out less is always safe).
      storeRoots = derivation {
        name = "${name}-store-roots";
        inherit system;
        builder = "/bin/sh";
        args = [ "-c" ''printf '%s\n' "$roots" > "$out"'' ];
        roots = builtins.concatStringsSep "\n" ([ configJSON ] ++ map (p: "${p}") storePaths);
      };
      hasStore = storePaths != [ ] || builtins.hasContext configJSON;
      excludePaths = layerPaths ++ basePaths;

      platform = "${os}/${architecture}" + (if variant == null then "" else "/${variant}");
      layerSpecs = map (l: { blob = "${l.out}"; descriptor = "${l.descriptor}"; });
      # strata's image spec (README "The image spec"), written by builtins.toJSON.
      # `config` passes through unchanged: it uses the OCI config's field
      # names, and strata refuses unknown ones. Closure layers: with
      # layerDerivations, the per-layer derivations; else the numbered
      # closure/N.layer + N.desc pairs made at build time (the directory entry).
      spec = builtins.toJSON ({
        version = 1;
        layers = layerSpecs layers
          ++ (if !hasClosure then [ ] else if layerDerivations then layerSpecs closureLayers else [ { dir = "closure"; } ])
          ++ layerSpecs rootLayers;
        config = c;
        inherit annotations created;
      } // (if fromImage == null then { inherit platform; } else { base.path = "${fromImage}"; })
        // (if tag == null then { } else { tags = [ tag ]; }));
      # The spec as a file of its own: a tiny derivation, so it may name the
      # layers' store paths (the image derivation's structured attrs leave no
      # room for passAsFile).
      specFile = derivation {
        name = "${name}-image-spec.json";
        inherit system spec;
        passAsFile = [ "spec" ];
        builder = "/bin/sh";
        args = [ "-c" ''while IFS= read -r l || [ -n "$l" ]; do printf '%s' "$l"; done < "$specPath" > "$out"'' ];
      };
      imageArgs =
        [ "image" "--out" (builtins.placeholder "out") "--format" format "--spec" "${specFile}" ]
        # An archive on a shallow base (pullImage) holds the base's layers:
        # strata fetches them (digests verified) into a cache in the build
        # directory, not under $HOME (/homeless-shelter must not be created).
        # Needs the network: no sandbox.
        ++ (if fromImage == null || format == "oci" then [ ] else [ "--cache-dir" "strata-cache" ])
        ++ (if linkLayers && format == "oci" then [ "--link-under" builtins.storeDir ] else [ ]);
      # The split's arguments (without graphs, outDir and lockOut).
      splitArgs = {
        excludeGraphs = attrsGraphs "exclude" excludePaths;
        drop = [ "${roots}" ] ++ map (p: "${p}") rootOnly;
        inherit maxLayers;
        strategy = layering;
        groups = map (g: map toString g) layerGroups;
        previous = if previousLayers == null then null else "${previousLayers}";
      };
      graphs = {
        # Sizes from Nix (narSize in .attrs.json), not measured by strata.
        __structuredAttrs = true;
        exportReferencesGraph = { graph = [ "${roots}" ]; } // graphAttrs "exclude" excludePaths;
      };
      # layerDerivations: the split alone; `out` holds the layer specs,
      # `layers` the lock.
      split = derivation ({
        name = "${name}-split";
        inherit system;
        outputs = [ "out" "layers" ];
        builder = "/bin/sh";
        args = [ "-c" (closureSpecs (splitArgs // {
          graphs = [ ".attrs.json#graph" ];
          outDir = builtins.placeholder "out";
          lockOut = builtins.placeholder "layers";
        }) + " >/dev/null") ];
      } // graphs);
      # Its specs, read at evaluation time (import-from-derivation), bottom first.
      closureLayers = map
        (f: specLayer { text = builtins.readFile "${split}/${f}"; inherit compression mtime; })
        (builtins.sort builtins.lessThan (builtins.attrNames (builtins.readDir "${split}")));
    in
    withAttachments { inherit name format sbom provenance linkLayers; } (derivation ({
      name = "${name}-image";
      inherit system;
    } // (if !hasClosure || layerDerivations then {
      # Nothing computed at build time: strata is the builder.
      builder = bin;
      args = imageArgs;
    } else {
      # /bin/sh runs the closure split and one `strata layer` per closure
      # layer, into closure/ (the spec's directory entry). `layers`: the
      # split's lock (canonical JSON), for the next release's previousLayers.
      outputs = [ "out" "layers" ];
      builder = "/bin/sh";
      args = [
        "-c"
        ''
          set -e
          ${closureSpecs (splitArgs // {
            graphs = [ ".attrs.json#graph" ];
            lockOut = builtins.placeholder "layers";
            outDir = "closure";
          })}
          for s in closure/[0-9][0-9][0-9][0-9].json; do
            [ -e "$s" ] || continue
            b=''${s%.json}
            ${bin} layer --spec "$s" --out "$b.layer" --descriptor "$b.desc" --compression ${compression} --mtime ${toString mtime} >/dev/null
          done
          exec ${bin} "$@"
        ''
        "strata-image"
      ] ++ imageArgs;
    } // graphs)) // {
      # For images built on this one: the store paths (with their closures) it holds.
      strataStorePaths = basePaths ++ layerPaths ++ (if hasStore then [ storeRoots ] else [ ]);
    } // (if hasClosure && layerDerivations then {
      # The split's lock, as the one-derivation image's `layers` output.
      layers = split.layers;
      # The closure layers (buildLayer-like: out and descriptor), bottom first.
      strataClosureLayers = closureLayers;
    } else { }));

  # buildImage's sbom/provenance: `image` through attest, keeping what
  # images built on it and the next release read (store paths, the lock).
  withAttachments = { name, format, sbom, provenance, linkLayers }: image:
    if (sbom == null || sbom == false) && !provenance then image else
    assert format == "oci" || throw "buildImage ${name}: sbom and provenance need format = \"oci\" (attachments live in a layout directory)";
    attest { inherit image provenance; sbom = if sbom == null then false else sbom; linkBlobs = linkLayers; }
    // builtins.intersectAttrs { strataStorePaths = null; layers = null; strataClosureLayers = null; } image;

  # A base image pinned by digest, as a shallow OCI layout: index, manifest,
  # config and strata-remote.json (where each layer lives), a few KB; no
  # layer byte enters the store. A fixed-output derivation (so it may use the
  # network, even sandboxed) running `strata pull --shallow`. Use it as
  # buildImage's `fromImage`: the image is shallow too, and pushImage mounts
  # or streams the base's layers registry-side. `sha256` is the NAR hash of
  # that layout: `strata pull --shallow REF@DIGEST --out d` then
  # `nix hash path d`, or build once with sha256 = "" and copy the hash Nix
  # reports ("got: sha256-…"). It covers the layout's bytes, which record the registry and
  # repository, so it changes when imageName does.
  pullImage =
    {
      # HOST[:PORT]/REPO, e.g. "registry.example/team/base"; "http://" before
      # a loopback host for plain HTTP.
      imageName,
      # "sha256:…": the manifest or index digest.
      imageDigest,
      # The output's hash (SRI "sha256-…" or base32/hex).
      sha256,
      # "os/arch[/variant]": from an index, keep this platform's image.
      platform ? null,
      # NAME:TAG recorded in the layout (default: none).
      tag ? null,
      # Plain HTTP to any host.
      insecure ? false,
      name ? builtins.replaceStrings [ ":" "@" ] [ "-" "-" ] (baseNameOf imageName),
    }:
    derivation {
      name = "${name}-shallow";
      inherit system;
      builder = bin;
      args = [ "pull" "-q" "--shallow" "${imageName}@${imageDigest}" "--out" (builtins.placeholder "out") ]
        ++ (if platform == null then [ ] else [ "--platform" platform ])
        ++ (if tag == null then [ ] else [ "--tag" tag ])
        ++ (if insecure then [ "--insecure" ] else [ ]);
      outputHashMode = "recursive";
      outputHashAlgo = "sha256";
      outputHash = sha256;
      # Credentials for a private registry: Docker's config.json from the
      # environment of whoever runs the build (the daemon, in multi-user Nix).
      impureEnvVars = [ "DOCKER_CONFIG" ];
    };

  # A push script: `$out/bin/push [REPOSITORY] [strata push flags]` runs
  # `strata push IMAGE REPOSITORY --tag …` (`nix run .#push`). REPOSITORY
  # (HOST[:PORT]/REPO, "http://" for a loopback registry without TLS) is the
  # argument, else $STRATA_PUSH_REPOSITORY, else `repository`. A shallow
  # image's base layers are mounted (same registry) or streamed (another),
  # never downloaded to disk. Prints REPOSITORY@sha256:….
  pushImage =
    {
      # An image (buildImage, any format; or any OCI layout / archive path).
      image,
      repository,
      # Tags to set; none: the image is pushed by digest only.
      tags ? [ ],
      # Plain HTTP to any host.
      insecure ? false,
      name ? "${image.name or "image"}-push",
    }:
    let
      flags = (if insecure then [ "--insecure" ] else [ ]) ++ builtins.concatMap (t: [ "--tag" t ]) tags;
    in
    derivation {
      inherit name system;
      builder = "/bin/sh";
      PATH = if coreutils == null then "/usr/bin:/bin" else "${coreutils}/bin";
      script = ''
        #!/bin/sh
        # Pushes ${image} with strata.
        # Usage: push [REPOSITORY] [strata push flags], or $STRATA_PUSH_REPOSITORY.
        set -eu
        repository=''${STRATA_PUSH_REPOSITORY:-${q repository}}
        case "''${1:-}" in
          "" | -*) ;;
          *) repository=$1; shift ;;
        esac
        exec ${q bin} push ${q "${image}"} "$repository" ${words (map q flags)} "$@"
      '';
      args = [ "-c" ''mkdir -p "$out/bin" && printf '%s' "$script" > "$out/bin/push" && chmod 555 "$out/bin/push"; exit $?'' ];
    } // {
      meta.mainProgram = "push";
    };

  # A load script: `$out/bin/load [strata load flags]` runs `strata load IMAGE
  # --tag …` (`nix run .#load`): into docker ($DOCKER_HOST, unix:// only, else
  # /var/run/docker.sock), or podman with `--engine podman` (or `engine`).
  # Only the layers the engine lacks are sent: a reload after a change to the
  # top layer costs that layer. Layers of a shallow base (pullImage) the
  # engine lacks are fetched into strata's cache first. Prints the image ID.
  loadImage =
    {
      # An image (buildImage, any format; or any OCI layout / archive path).
      image,
      # Tags to give it; none: the tag the image records (buildImage's `tag`).
      tags ? [ ],
      # "docker" or "podman"; null: docker unless `--engine` says otherwise.
      engine ? null,
      name ? "${image.name or "image"}-load",
    }:
    let
      flags = (if engine == null then [ ] else [ "--engine" engine ]) ++ builtins.concatMap (t: [ "--tag" t ]) tags;
    in
    derivation {
      inherit name system;
      builder = "/bin/sh";
      PATH = if coreutils == null then "/usr/bin:/bin" else "${coreutils}/bin";
      script = ''
        #!/bin/sh
        # Loads ${image} with strata.
        # Usage: load [strata load flags], e.g. --engine podman, --tag NAME:TAG, -q.
        exec ${q bin} load ${q "${image}"} ${words (map q flags)} "$@"
      '';
      args = [ "-c" ''mkdir -p "$out/bin" && printf '%s' "$script" > "$out/bin/load" && chmod 555 "$out/bin/load"; exit $?'' ];
    } // {
      meta.mainProgram = "load";
    };
  sbom = import ./sbom.nix { inherit bin system; }; # an image's SBOM (nix/sbom.nix)
  attest = import ./attest.nix { inherit bin system; }; # an image with its SBOM and provenance attached (nix/attest.nix)
}
