# Just enough of nixpkgs to evaluate and build the root flake offline:
# lib.genAttrs; rustPlatform.buildRustPackage packaging the cargo-built strata
# (tests/nix/run.sh copies it beside this file) instead of building it;
# coreutils, the host's mkdir and chmod (for pushImage). The
# suite builds the root flake with `--override-input nixpkgs` pointing here.
{
  outputs = { self }:
    let
      system = "x86_64-linux";
      sh = name: script: derivation {
        inherit name system;
        builder = "/bin/sh";
        PATH = "/usr/bin:/bin";
        args = [ "-c" "set -e; mkdir -p $out/bin; ${script}" ];
      };
    in
    {
      lib.genAttrs = names: f: builtins.listToAttrs (map (name: { inherit name; value = f name; }) names);
      legacyPackages.${system} = {
        rustPlatform.buildRustPackage = { pname, version, ... }: sh "${pname}-${version}" "cp ${./strata} $out/bin/strata";
        coreutils = sh "coreutils" "ln -s $(command -v mkdir) $(command -v chmod) $out/bin/";
      };
    };
}
