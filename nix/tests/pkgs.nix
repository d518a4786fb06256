# A stand-in for nixpkgs' package set: only what ../module.nix, ../build.nix and
# ../packages.nix name, each a fake derivation (an attribute set with `type = "derivation"`
# and an out path in a store that does not exist). Building any of it is impossible, and
# nothing in the tests tries: they evaluate option values, never system.build.
{ lib }:
let
  fakeDerivation = name: {
    type = "derivation";
    inherit name;
    outPath = "/nix/store/00000000000000000000000000000000-${name}";
    drvPath = "/nix/store/00000000000000000000000000000000-${name}.drv";
  };
  rustPlatform.buildRustPackage = args: fakeDerivation "${args.pname}-${args.version}";
  self = {
    inherit lib fakeDerivation rustPlatform;
    pkgsStatic = { inherit rustPlatform; };
    stdenv.hostPlatform.system = "x86_64-linux";
    bashInteractive = fakeDerivation "bash-interactive-5.2" // { shellPath = "/bin/bash"; };
    util-linux = fakeDerivation "util-linux-2.40";
    coreutils = fakeDerivation "coreutils-9.5";
    systemd = fakeDerivation "systemd-256.10";
    gnugrep = fakeDerivation "gnugrep-3.11";
    shadow = fakeDerivation "shadow-4.16" // { shellPath = "/bin/nologin"; };
    # The builders keep what they were given, so the tests can read the scripts.
    writeText = name: text: fakeDerivation name // { inherit text; };
    writeShellScript = name: text: fakeDerivation name // { inherit text; };
    runCommand =
      name: env: script:
      fakeDerivation name // { inherit env script; };
    callPackage = fn: args: fakeDerivation (args.fileName or "callPackage") // { inherit fn args; };
    closureInfo = _args: fakeDerivation "closure-info";
    path = "/nonexistent-nixpkgs";
    buildPackages = self;
  };
in
self
