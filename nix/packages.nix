# The toolkit built from this repository: packages.<system>.{init,installer,packer}.
# init and installer are static musl binaries (pkgsStatic) with the workspace's `tiny` profile,
# as scripts/build makes them; packer is a host tool (release profile). Not built in the
# toolkit's own sandbox, which has no nixpkgs: see docs/nixos-module.md.
{ pkgs }:
let
  inherit (pkgs) lib;
  version = (lib.importTOML ../Cargo.toml).workspace.package.version;
  # The workspace without build output, fuzzing data or git metadata.
  src = lib.cleanSourceWith {
    src = ../.;
    filter =
      path: _type:
      !(builtins.elem (baseNameOf path) [
        "target"
        "result"
        ".git"
      ]);
  };
  crate =
    rustPlatform: pname: buildType:
    rustPlatform.buildRustPackage {
      inherit pname version src buildType;
      cargoLock.lockFile = ../Cargo.lock;
      cargoBuildFlags = [
        "-p"
        pname
      ];
      # The crates' tests need root, namespaces and the test trees (scripts/test).
      doCheck = false;
      meta = {
        description = "nixos-wsl toolkit: ${pname}";
        license = lib.licenses.asl20;
        platforms = lib.platforms.linux;
        mainProgram = pname;
      };
    };
in
{
  # scripts/build also rebuilds std with immediate-abort panics (-Z build-std), which needs
  # std's own sources and their crates at build time; a Nix build uses the plain std, so these
  # two are larger than scripts/build's (README, Sizes).
  init = crate pkgs.pkgsStatic.rustPlatform "init" "tiny";
  installer = crate pkgs.pkgsStatic.rustPlatform "installer" "tiny";
  packer = crate pkgs.rustPlatform "packer" "release";
}
