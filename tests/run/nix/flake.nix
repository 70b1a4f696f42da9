# tests/run/built-elsewhere.sh: an image `nix build` makes from a closure runs
# (issue #11, "The images run"). No inputs (no nixpkgs here): the script copies
# nix/ and the cargo-built strata binary beside this file, as tests/nix does.
#
# The closure: bash -> libs (bash's libraries, found by ldd at build time).
# No patchelf: the entrypoint is the closure's dynamic loader, running the
# store's bash with the closure's libraries (--library-path). The image holds
# nothing but /nix/store (no /lib64, no /bin).
{
  outputs = { self }:
    let
      system = "x86_64-linux";
      s = import ./nix { strata = ./strata; inherit system; };
      sh = name: script: derivation {
        inherit name system;
        builder = "/bin/sh";
        PATH = "/usr/bin:/bin";
        args = [ "-c" "set -e; ${script}" ];
      };
      # The dynamic loader and the shared libraries `ldd /bin/bash` lists.
      libs = sh "bash-libs" ''
        mkdir -p $out/lib
        for f in $(ldd /bin/bash | sed -n 's|.*=> \(/[^ ]*\) .*|\1|p; s|^[[:space:]]*\(/[^ ]*\) (.*|\1|p'); do
          cp -L "$f" "$out/lib/''${f##*/}"
        done
        chmod 555 $out/lib/*
        test -e $out/lib/ld-linux-x86-64.so.2
      '';
      # Debian's bash, referring to libs (so the closure is bash + libs).
      bash = sh "bash" ''
        mkdir -p $out/bin
        cp /bin/bash $out/bin/bash
        chmod 555 $out/bin/bash
        ln -s ${libs}/lib $out/lib
      '';
      # What the container prints: a line, bash's argv[0] (its store path),
      # an env var of the config, and for each file of libs/lib the path it is mapped from.
      script = ''
        echo ok from nix; echo "$0"; echo "GREETING=$GREETING"
        declare -A m
        while read -r _ _ _ _ _ p; do [ -n "$p" ] && m[''${p##*/}]=$p; done </proc/self/maps
        for f in ${libs}/lib/*; do echo "''${f##*/} ''${m[''${f##*/}]:-not mapped}"; done
        [ -e /lib64 ] || [ -e /bin ] || echo "no /lib64, no /bin"
      '';
      # One image per closure split (issue #23): by size (the default: bash
      # and libs in layers of their own) and by popularity in one layer (the
      # defaults before size), so the two images differ.
      image = imageWith { };
      imageWith = extra: name: layering: maxLayers: s.buildImage ({
        inherit name layering maxLayers;
        tag = "${name}:1";
        storePaths = [ bash ];
        format = "docker-archive";
        config = {
          Entrypoint = [ "${libs}/lib/ld-linux-x86-64.so.2" "--library-path" "${libs}/lib" "${bash}/bin/bash" "-c" script ];
          Env = [ "GREETING=hi" ];
        };
      } // extra);
      runImage = image "strata-nix-run" "size" 100;
      # `nix run .#load1`, then `.#load2`: the image plus a layer holding
      # /app/msg, which differs (a one-file change); strata load sends only it.
      app = msg: s.buildImage {
        name = "strata-nix-app";
        tag = "strata-nix-app:1";
        fromImage = runImage;
        layers = [ (s.buildLayer { name = "msg"; files."app/msg" = builtins.toFile "msg" "${msg}\n"; }) ];
      };
    in
    {
      packages.${system} = {
        inherit libs bash;
        image = runImage;
        image-popularity = image "strata-nix-run-pop" "popularity" 1;
        load1 = s.loadImage { image = app "one"; };
        load2 = s.loadImage { image = app "two"; };
        # Issue #23: an OCI layout whose closure layers are derivations of
        # their own and whose blobs are symlinks into them (loaded by strata;
        # mtime 1, so no engine holds its layers yet and every byte is read
        # through the links).
        load-linked = s.loadImage { image = imageWith { format = "oci"; layerDerivations = true; mtime = 1; } "strata-nix-linked" "size" 100; };
      };
    };
}
