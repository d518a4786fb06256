{
  description = "nixos-wsl toolkit: a static init and installer that run NixOS on WSL, and the NixOS module that declares them";

  # No flake.lock is committed: the toolkit's own sandbox cannot fetch nixpkgs to write one.
  # The first `nix build` writes it (or run `nix flake lock`).
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.05";

  outputs =
    { self, nixpkgs }:
    let
      outputs = import ./default.nix { inherit nixpkgs; };
    in
    {
      # packages.<system>.{init,installer,packer}, for x86_64-linux and aarch64-linux
      inherit (outputs) packages;

      # imports = [ nixos-wsl.nixosModules.default ];  wsl.enable = true;
      nixosModules.default = ./nix/module.nix;

      # nix build .#nixosConfigurations.mysystem.config.system.build.installer
      nixosConfigurations.mysystem = nixpkgs.lib.nixosSystem {
        system = "x86_64-linux";
        modules = [
          self.nixosModules.default
          ./nix/example.nix
        ];
      };
    };
}
