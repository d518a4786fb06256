# Where the toolkit puts things inside a distribution: the same paths as common/src/paths.rs
# (tests/tests/nix_module.rs checks they agree).
{
  # init, root's login shell (and /sbin/init in native mode); packer and the installer put it here too.
  init = "/usr/libexec/nixos-wsl/init";
  # init's configuration, relative to /etc (an environment.etc entry).
  initConfig = "nixos-wsl/init.conf";
}
