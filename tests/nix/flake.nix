# The Nix suite's stand-in for the root flake: no inputs (no nixpkgs can be
# fetched here), the same `lib.<system>` (nix/default.nix) but on the
# cargo-built strata binary, which tests/nix/run.sh copies beside this file
# with nix/ and examples/hello. Its packages are the suite's scenarios; the
# README's flake (tests/nix/example/flake.nix) is built against this one with
# `--override-input strata`.
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
      # A closure of raw derivations referring to each other:
      # app -> lib2 -> lib1, app -> link -> lib2 (link is a symlink), tool -> lib1.
      lib1 = sh "lib1" "echo 'shared library' > $out";
      lib2 = sh "lib2" "mkdir -p $out/lib; echo 'lib2 uses ${lib1}' > $out/lib/lib2; ln -s ${lib1} $out/lib/lib1";
      link = sh "link" "ln -s ${lib2} $out";
      app = sh "app" "mkdir -p $out/bin; printf '#!/bin/sh\\ncat ${lib2}/lib/lib2 ${link}/lib/lib1\\n' > $out/bin/app; chmod 555 $out/bin/app";
      tool = sh "tool" "echo 'tool uses ${lib1}' > $out";
      extra = sh "extra" "echo 'extra uses ${lib2}' > $out";
      # app's next release: another store path of the same name.
      app2 = sh "app" "mkdir -p $out/bin; printf '#!/bin/sh\\necho release 2\\ncat ${lib2}/lib/lib2 ${link}/lib/lib1\\n' > $out/bin/app; chmod 555 $out/bin/app";
      # What nixpkgs' buildEnv makes: symlinks into the store.
      env = sh "env" "mkdir -p $out/bin; ln -s ${app}/bin/app $out/bin/app";
      # ~3 MB of deterministic noise (awk's generator, seeded): a base's
      # bulk, so store bytes show whether it is held once or per image.
      noise = sh "noise" "awk 'BEGIN { srand(1); for (i = 0; i < 400000; i++) printf \"%08x\", int(rand() * 4294967296) }' > $out";
      # An application on the noise, one per image (issue #23: N images on one base).
      user = n: sh "user${n}" "echo 'user ${n} of ${noise}' > $out";
      # An image of the noise, and N = 3 images on it, each adding its own
      # store path: every closure layer a derivation of its own
      # (layerDerivations) and every blob from another store path a symlink
      # (linkLayers, the default), or (copies) neither.
      sharedBase = linkLayers: s.buildImage {
        name = "shared-base";
        tag = "shared-base:1";
        storePaths = [ noise ];
        layerDerivations = linkLayers;
        inherit linkLayers;
      };
      shared = linkLayers: n: s.buildImage {
        name = "shared${n}";
        tag = "shared${n}:1";
        fromImage = sharedBase linkLayers;
        storePaths = [ (user n) ];
        layerDerivations = linkLayers;
        inherit linkLayers;
      };
      # A release and its next one after a leaf change (app rebuilt), every
      # closure layer a derivation of its own: only app's layer is new.
      # (app's text holds ./nonce, which tests/nix/run.sh writes anew on each
      # run, so app is a new store path even in a store that holds the last run's.)
      leafApp = release: sh "app" "mkdir -p $out/bin; printf '#!/bin/sh\\necho ${release} ${nonce}\\ncat ${lib2}/lib/lib2\\n' > $out/bin/app; chmod 555 $out/bin/app";
      nonce = if builtins.pathExists ./nonce then builtins.readFile ./nonce else "";
      leaf = release: previousLayers: s.buildImage {
        name = "leaf";
        tag = "leaf:1";
        storePaths = [ tool noise ];
        config.Entrypoint = [ "${leafApp release}/bin/app" ];
        layerDerivations = true;
        inherit previousLayers;
      };
      hello = {
        Env = [ "GREETING=hello" ];
        WorkingDir = "/www";
        Cmd = [ "cat" "/www/index.html" ];
      };
    in
    {
      lib.${system} = s;
      packages.${system} = rec {
        inherit app tool noise;
        # An image from a directory (copyToRoot): the golden image again.
        dir = s.buildImage { name = "hello"; copyToRoot = [ ./examples/hello ]; config = hello; };
        # The same as a docker-archive.
        dir-archive = s.buildImage { name = "hello"; tag = "hello:1"; copyToRoot = [ ./examples/hello ]; config = hello; format = "docker-archive"; };
        # The golden image as an oci-archive, a base for `layered`.
        hello-archive = s.buildImage {
          name = "hello";
          layers = [ (s.buildLayer { name = "hello"; contents = [ ./examples/hello ]; }) ];
          config = hello;
          format = "oci-archive";
        };
        # The closure of app (via config) and tool, popular paths first:
        # [lib1] [lib2] [app link tool].
        closure = s.buildImage {
          name = "closure";
          tag = "closure:1";
          storePaths = [ tool ];
          config.Entrypoint = [ "${app}/bin/app" ];
          maxLayers = 3;
          layering = "popularity";
        };
        # The same closure by size (the default), in at most 3 layers: the
        # applications (app, tool) alone, the rest together:
        # [lib1 lib2 link] [app] [tool].
        sized = s.buildImage {
          name = "sized";
          tag = "sized:1";
          storePaths = [ tool ];
          config.Entrypoint = [ "${app}/bin/app" ];
          maxLayers = 3;
        };
        # A user group (the libraries share the bottom layer) that the size
        # split completes: [lib1 lib2], then app alone and [link tool].
        grouped = s.buildImage {
          name = "grouped";
          tag = "grouped:1";
          storePaths = [ tool ];
          config.Entrypoint = [ "${app}/bin/app" ];
          maxLayers = 3;
          layerGroups = [ [ "lib*" ] ];
        };
        # Two releases by size with the defaults (at most 100 layers): every
        # path alone; the second (app rebuilt, extra new) keeps the first's
        # lock, so every unchanged layer is the same blob.
        release1 = s.buildImage {
          name = "release";
          tag = "release:1";
          storePaths = [ tool ];
          config.Entrypoint = [ "${app}/bin/app" ];
        };
        release2 = s.buildImage {
          name = "release";
          tag = "release:2";
          storePaths = [ tool extra ];
          config.Entrypoint = [ "${app2}/bin/app" ];
          previousLayers = release1.layers;
        };
        # copyToRoot refers to store paths: env's contents at the root, its
        # references' closure (not env itself) in one layer below:
        # [app lib1 lib2 link] [bin].
        rootenv = s.buildImage {
          name = "rootenv";
          tag = "rootenv:1";
          copyToRoot = [ env ];
          config.Entrypoint = [ "/bin/app" ];
          # The defaults before "size" (digests kept).
          maxLayers = 1;
          layering = "popularity";
        };
        # On an oci-archive base: an explicit layer holding lib2's closure and
        # /tmp, then what is left of app's closure: [hello] [lib1 lib2 tmp] [link] [app].
        layered = s.buildImage {
          name = "layered";
          tag = "layered:1";
          fromImage = hello-archive;
          layers = [ (s.buildLayer { name = "libs"; storePaths = [ lib2 ]; perms = [ { path = "tmp"; mode = "1777"; } ]; }) ];
          config.Entrypoint = [ "${app}/bin/app" ];
          maxLayers = 5;
          layering = "popularity";
        };
        # `sized` with one derivation per closure layer: the same image.
        sized-ifd = s.buildImage {
          name = "sized";
          tag = "sized:1";
          storePaths = [ tool ];
          config.Entrypoint = [ "${app}/bin/app" ];
          maxLayers = 3;
          layerDerivations = true;
        };
        shared-base = sharedBase true;
        shared1 = shared true "1";
        shared2 = shared true "2";
        shared3 = shared true "3";
        copies1 = shared false "1";
        copies2 = shared false "2";
        copies3 = shared false "3";
        leaf1 = leaf "release 1" null;
        leaf2 = leaf "release 2" leaf1.layers;
        # On `closure` (a buildImage base): app's closure is there already;
        # only extra (and nothing it shares with the base) is added: [extra].
        onclosure = s.buildImage {
          name = "onclosure";
          tag = "onclosure:1";
          fromImage = closure;
          storePaths = [ extra ];
          config.Entrypoint = [ "${app}/bin/app" ];
          maxLayers = 3;
          layering = "popularity";
        };
      };
    };
}
