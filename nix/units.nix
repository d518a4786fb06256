# The systemd units that fight WSL, the same list as common/src/units.rs (init masks them on
# systemd's command line in both modes; the module also turns them off in the configuration, so
# a system started some other way, or `systemctl start` by hand, does not bring them back).
# tests/tests/nix_module.rs checks that the two lists hold the same names.
[
  "systemd-resolved.service"
  "systemd-networkd.service"
  "systemd-networkd-wait-online.service"
  "NetworkManager.service"
  "NetworkManager-wait-online.service"
  "networking.service"
  "systemd-tmpfiles-clean.service"
  "systemd-tmpfiles-clean.timer"
  "tmp.mount"
  "console-getty.service"
  "getty@tty1.service"
  "autovt@tty1.service"
  "serial-getty@ttyS0.service"
  "systemd-vconsole-setup.service"
  "systemd-remount-fs.service"
  "systemd-modules-load.service"
  "systemd-binfmt.service"
  "proc-sys-fs-binfmt_misc.automount"
  "proc-sys-fs-binfmt_misc.mount"
  "systemd-firstboot.service"
]
