# Just enough of nixpkgs to evaluate and build the root flake offline:
# lib.genAttrs; rustPlatform.buildRustPackage packaging the cargo-built strata
# (tests/nix/run.sh copies it beside this file) instead of building it from
# src; coreutils, the host's mkdir and chmod (for pushImage). The suite builds
# the root flake with `--override-input nixpkgs` pointing here.
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
        # Like nixpkgs', the derivation depends on src and cargoLock.lockFile
        # (so the suite can show nix/package.nix's source filter at work),
        # and the result has them as attributes.
        rustPlatform.buildRustPackage = { pname, version, src, cargoLock, ... }:
          sh "${pname}-${version}" "test -f ${src}/Cargo.toml; cmp ${cargoLock.lockFile} ${src}/Cargo.lock; cp ${./strata} $out/bin/strata"
          // { inherit src cargoLock; };
        coreutils = sh "coreutils" "ln -s $(command -v mkdir) $(command -v chmod) $out/bin/";
      };
    };
}
