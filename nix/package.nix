# The strata package: `cargo build --release` with nixpkgs' rustPlatform.
#
#   strata = import ./nix/package.nix { inherit (pkgs) rustPlatform; };
#
# The source is the repository filtered down to what cargo builds from:
# Cargo.toml, Cargo.lock and src/. So the derivation (and the store path) stays
# the same when anything else changes: a README edit, tests, rules/, nix/
# itself rebuild nothing. tests/nix/run.sh checks that README.md and tests/
# leave the derivation path alone and that src/ changes it. Tests are not run
# here (doCheck = false): they need the repository's tests/ and real engines,
# registries and tools (see .ci/run).
{ rustPlatform }:
let
  root = ../.;
  prefix = toString root + "/";
  # The path relative to the repository root ("src/main.rs").
  relative = path: builtins.substring (builtins.stringLength prefix) (-1) (toString path);
  keep = path: type:
    let p = relative path; in
    p == "Cargo.toml" || p == "Cargo.lock" || p == "src" || builtins.substring 0 4 p == "src/";
in
rustPlatform.buildRustPackage {
  pname = "strata";
  version = "0.1.0";
  # A fixed name: the store path depends on the kept files only, not on the
  # directory the repository is in.
  src = builtins.path { path = root; name = "strata-source"; filter = keep; };
  cargoLock.lockFile = ../Cargo.lock;
  doCheck = false;
}
