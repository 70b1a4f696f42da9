# The Nix suite's registry scenario (tests/nix/run.sh, part 6), built against
# the stand-in flake (`--override-input strata`). run.sh starts Debian's
# docker-registry on a free loopback port, pushes a base image there with the
# strata CLI, and writes pinned.nix beside this file:
#   { registry = "http://127.0.0.1:PORT"; digest = "sha256:…"; sha256 = "sha256-…"; }
{
  inputs.strata.url = "path:../..";

  outputs = { self, strata }:
    let
      system = "x86_64-linux";
      s = strata.lib.${system};
      pin = import ./pinned.nix;
    in
    {
      packages.${system} = rec {
        # The base, shallow: manifest and config in the store, layers in the registry.
        base = s.pullImage {
          imageName = "${pin.registry}/base";
          imageDigest = pin.digest;
          inherit (pin) sha256;
        };
        # The same, not pinned yet: the build fails, reporting the hash to pin.
        unpinned = s.pullImage {
          imageName = "${pin.registry}/base";
          imageDigest = pin.digest;
          sha256 = "";
        };
        # One layer on it; shallow too.
        image = s.buildImage {
          name = "app";
          tag = "app:1";
          fromImage = base;
          layers = [ (s.buildLayer { name = "hello"; contents = [ ./examples/hello ]; }) ];
          config.Cmd = [ "cat" "/www/index.html" ];
        };
        # The same as a docker-archive: the base's layers fetched at build time.
        archive = s.buildImage {
          name = "app";
          tag = "app:1";
          fromImage = base;
          layers = [ (s.buildLayer { name = "hello"; contents = [ ./examples/hello ]; }) ];
          config.Cmd = [ "cat" "/www/index.html" ];
          format = "docker-archive";
        };
        # With its SBOM attached: the base's layers fetched at build time to read them.
        attested = s.buildImage {
          name = "app";
          tag = "app:1";
          fromImage = base;
          layers = [ (s.buildLayer { name = "hello"; contents = [ ./examples/hello ]; }) ];
          config.Cmd = [ "cat" "/www/index.html" ];
          sbom = true;
        };
        # `nix run .#push [REPOSITORY]`: the base's layers are mounted.
        push = s.pushImage {
          inherit image;
          repository = "${pin.registry}/app";
          tags = [ "1" "latest" ];
        };
      };
    };
}
