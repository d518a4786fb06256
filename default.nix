# The toolkit without flakes: the same outputs as flake.nix, from a nixpkgs given as a path.
#   nix-build -A nixosConfigurations.mysystem.config.system.build.installer
#   nix-build -A packages.x86_64-linux.init
#   nix-build --arg nixpkgs /path/to/nixpkgs ...      (default: <nixpkgs> from NIX_PATH)
{
  nixpkgs ? <nixpkgs>,
}:
let
  # toString: a path stays a path (no copy of nixpkgs into the store); a flake input gives its
  # store path.
  root = toString nixpkgs;
  lib = import (root + "/lib");
  systems = [
    "x86_64-linux"
    "aarch64-linux"
  ];
  nixosSystem = import (root + "/nixos/lib/eval-config.nix");
in
{
  packages = lib.genAttrs systems (system: import ./nix/packages.nix { pkgs = import root { inherit system; }; });

  nixosModules.default = ./nix/module.nix;

  # A minimal system: `nix-build -A nixosConfigurations.mysystem.config.system.build.tarball`.
  nixosConfigurations.mysystem = nixosSystem {
    system = "x86_64-linux";
    modules = [
      ./nix/module.nix
      ./nix/example.nix
    ];
  };
}
