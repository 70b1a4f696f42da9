# strata for Nix: Nix writes JSON and flags, the strata binary writes every byte.
#
#   let s = import ./nix { strata = <strata package or binary>; }; in
#   s.buildImage { name = "hello"; layers = [ (s.buildLayer { name = "www"; contents = [ ./www ]; }) ]; }
#
# Depends on nothing but builtins (no nixpkgs), so it works offline and with
# any nixpkgs. Builders are raw derivations running strata (or /bin/sh only to
# read a spec file Nix passes), so no shell, Python or jq touches the bytes.
{
  # The strata package (with bin/strata) or the path of the strata binary itself.
  strata,
  # The platform the builders run on.
  system ? builtins.currentSystem or "x86_64-linux",
}:
let
  bin = if builtins.isAttrs strata then "${strata}/bin/strata" else "${strata}";
  strip = p: let s = toString p; in if builtins.substring 0 1 s == "/" then builtins.substring 1 (-1) s else s;
in
rec {
  # One layer: a strata layer spec written by Nix, turned into bytes by strata.
  # Outputs: `out` (the blob) and `descriptor` (its JSON descriptor).
  buildLayer =
    {
      name,
      # Directories (paths or derivations) whose contents go to the layer root.
      contents ? [ ],
      # { "in/layer/path" = path-or-derivation; } single files.
      files ? { },
      # Store paths (files or directories) placed at their own /nix/store path.
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
          ++ map (p: { type = "tree"; path = strip "${p}"; src = "${p}"; }) storePaths
          ++ map (p: { type = "dir"; path = strip p.path; } // builtins.removeAttrs p [ "path" ]) perms;
      };
    in
    derivation {
      name = "${name}-layer";
      inherit system;
      outputs = [ "out" "descriptor" ];
      spec = builtins.toJSON spec;
      passAsFile = [ "spec" ];
      # /bin/sh only reads the spec file's name from the environment.
      builder = "/bin/sh";
      args = [
        "-c"
        ''exec ${bin} layer --spec "$specPath" --out "$out" --descriptor "$descriptor" --compression ${compression} --mtime ${toString mtime}''
      ];
    };

  # An image: layers (from buildLayer) on an optional base, with a Docker-style
  # config. `out` is an OCI layout directory (format "oci"), or an archive
  # ("oci-archive", "docker-archive").
  buildImage =
    {
      name,
      # NAME:TAG recorded in the layout (and RepoTags of a docker-archive).
      tag ? null,
      # A base OCI layout (directory or archive), e.g. another buildImage.
      fromImage ? null,
      # buildLayer results, bottom first.
      layers ? [ ],
      # Directories copied to the root in one extra top layer.
      copyToRoot ? [ ],
      # { Entrypoint, Cmd, Env = [ "K=V" ], WorkingDir, User, ExposedPorts = { "80/tcp" = {}; },
      #   Volumes = { "/data" = {}; }, Labels = { }, StopSignal }
      config ? { },
      # RFC 3339; default 1970-01-01T00:00:00Z.
      created ? null,
      architecture ? "amd64",
      os ? "linux",
      variant ? null,
      annotations ? { },
      format ? "oci",
    }:
    let
      allLayers = layers ++ (if copyToRoot == [ ] then [ ] else [ (buildLayer { name = "${name}-root"; contents = copyToRoot; }) ]);
      opt = flag: v: if v == null then [ ] else [ flag v ];
      kv = flag: set: builtins.concatMap (k: [ flag "${k}=${set.${k}}" ]) (builtins.attrNames set);
      c = config;
      platform = "${os}/${architecture}" + (if variant == null then "" else "/${variant}");
    in
    derivation {
      name = "${name}-image";
      inherit system;
      builder = bin;
      args =
        [ "image" "--out" (builtins.placeholder "out") "--format" format ]
        ++ (if fromImage == null then [ "--platform" platform ] else [ "--base" "${fromImage}" ])
        ++ builtins.concatMap (l: [ "--layer" "${l.out}:${l.descriptor}" ]) allLayers
        ++ opt "--entrypoint" (if c ? Entrypoint then builtins.toJSON c.Entrypoint else null)
        ++ opt "--cmd" (if c ? Cmd then builtins.toJSON c.Cmd else null)
        ++ builtins.concatMap (e: [ "--env" e ]) (c.Env or [ ])
        ++ opt "--workdir" (c.WorkingDir or null)
        ++ opt "--user" (c.User or null)
        ++ opt "--stop-signal" (c.StopSignal or null)
        ++ builtins.concatMap (p: [ "--exposed-port" p ]) (builtins.attrNames (c.ExposedPorts or { }))
        ++ builtins.concatMap (v: [ "--volume" v ]) (builtins.attrNames (c.Volumes or { }))
        ++ kv "--label" (c.Labels or { })
        ++ kv "--annotation" annotations
        ++ opt "--created" created
        ++ opt "--tag" tag;
    };
}
