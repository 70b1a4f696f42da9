# The Nix suite's flake (tests/nix/run.sh copies it, nix/, examples/hello and a
# cargo-built strata binary into a temporary git repository and builds it).
# No inputs: no nixpkgs can be fetched here.
{
  outputs = { self }:
    let
      system = "x86_64-linux";
      s = import ./nix { strata = ./strata; inherit system; };
      helloLayer = s.buildLayer { name = "hello"; contents = [ ./examples/hello ]; };
      # Two raw derivations, one referencing the other: a small closure.
      lib1 = derivation {
        name = "lib1";
        inherit system;
        builder = "/bin/sh";
        args = [ "-c" "echo 'shared library' > $out" ];
      };
      app = derivation {
        name = "app";
        inherit system;
        PATH = "/bin:/usr/bin";
        builder = "/bin/sh";
        args = [ "-c" "mkdir -p $out/bin && printf '#!/bin/sh\\ncat ${lib1}\\n' > $out/bin/app && chmod 755 $out/bin/app" ];
      };
    in
    {
      packages.${system} = rec {
        hello-layer = helloLayer;
        # The golden image: its digests equal tests/golden/hello.json (the CLI's and Bazel's).
        hello = s.buildImage {
          name = "hello";
          layers = [ helloLayer ];
          config = {
            Env = [ "GREETING=hello" ];
            WorkingDir = "/www";
            Cmd = [ "cat" "/www/index.html" ];
          };
        };
        # Store paths at their /nix/store paths, on top of the hello image.
        app-image = s.buildImage {
          name = "app";
          tag = "app:1";
          fromImage = hello;
          layers = [ (s.buildLayer { name = "app"; storePaths = [ lib1 app ]; perms = [ { path = "tmp"; mode = "1777"; } ]; }) ];
          config.Entrypoint = [ "${app}/bin/app" ];
        };
        # copyToRoot, as a docker-archive.
        www-archive = s.buildImage {
          name = "www";
          tag = "www:1";
          copyToRoot = [ ./examples/hello ];
          format = "docker-archive";
        };
      };
    };
}
