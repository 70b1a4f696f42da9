# strata as a flake: `lib.<system>` (buildLayer, buildImage, pullImage,
# pushImage from nix/default.nix),
# `packages.<system>.strata` (nix/package.nix: nixpkgs' rustPlatform on a
# source filtered to Cargo.toml, Cargo.lock and src/) and
# `packages.<system>.image`, an example image. Without nixpkgs (offline, or a
# prebuilt binary), import nix/default.nix directly; see README "Nix".
{
  description = "strata: byte-identical OCI layers and images";
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-24.05";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAll = f: nixpkgs.lib.genAttrs systems (system: f system nixpkgs.legacyPackages.${system});
    in
    {
      lib = forAll (system: pkgs: import ./nix {
        strata = self.packages.${system}.strata;
        inherit system;
        inherit (pkgs) coreutils; # pushImage's mkdir and chmod
      });
      packages = forAll (system: pkgs: {
        strata = import ./nix/package.nix { inherit (pkgs) rustPlatform; };
        # The golden image (tests/golden/hello.json).
        image = self.lib.${system}.buildImage {
          name = "hello";
          layers = [ (self.lib.${system}.buildLayer { name = "hello"; contents = [ ./examples/hello ]; }) ];
          config = {
            Env = [ "GREETING=hello" ];
            WorkingDir = "/www";
            Cmd = [ "cat" "/www/index.html" ];
          };
        };
      });
    };
}
