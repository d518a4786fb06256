# nixosConfigurations.mysystem: a minimal NixOS for WSL. Start your own configuration from it.
{
  wsl.enable = true;
  wsl.defaultUser = "nixos";
  # wsl.systemd = "native";   # with WSL 0.67.6 or later: WSL's own systemd support

  system.stateVersion = "25.05";
}
