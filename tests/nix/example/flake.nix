{
  inputs.strata.url = "github:OWNER/strata";

  outputs = { self, strata }:
    let
      system = "x86_64-linux";
      s = strata.lib.${system};
      # Any package works the same (nixpkgs' hello, ...); two raw derivations
      # keep this example free of nixpkgs: greet refers to words.
      words = derivation { name = "words"; inherit system; builder = "/bin/sh"; args = [ "-c" "echo hello > $out" ]; };
      greet = derivation { name = "greet"; inherit system; builder = "/bin/sh"; args = [ "-c" "echo 'cat ${words}' > $out" ]; };
    in
    {
      packages.${system} = {
        # One layer from a directory: the same digests as the CLI and Bazel.
        image = s.buildImage {
          name = "hello";
          layers = [ (s.buildLayer { name = "hello"; contents = [ ./examples/hello ]; }) ];
          config = {
            Env = [ "GREETING=hello" ];
            WorkingDir = "/www";
            Cmd = [ "cat" "/www/index.html" ];
          };
        };
        # On top of it, greet and its runtime closure under /nix/store, the
        # applications and the largest store paths in layers of their own
        # (at most 10); greet.layers is the split's lock, for previousLayers.
        greet = s.buildImage {
          name = "greet";
          tag = "greet:1";
          fromImage = self.packages.${system}.image;
          config.Cmd = [ "/bin/sh" "${greet}" ];
          maxLayers = 10;
        };
      };
    };
}
