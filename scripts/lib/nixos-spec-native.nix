# The module system of the `nixos-native` test variant: the example system (nix/example.nix)
# declared for WSL's own systemd support. scripts/lib/nixos-spec evaluates it with the example
# (NIXOS_SPEC_MODULES) into scripts/lib/nixos-spec-module-native.json.
{ wsl.systemd = "native"; }
