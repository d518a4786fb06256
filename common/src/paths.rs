//! Where the toolkit puts things inside a distribution. Absolute paths as seen from inside.

/// The `init` binary in an installed root filesystem (root's login shell, and `/sbin/init`
/// where the distribution has none of its own).
pub const INIT: &str = "/usr/libexec/nixos-wsl/init";

/// `init`'s configuration file.
pub const INIT_CONFIG: &str = "/etc/nixos-wsl/init.conf";

/// Folder of the installer distribution holding the installer and its payload.
pub const INSTALLER_DIR: &str = "/nixos-wsl";

/// The `installer` binary in the installer distribution (root's login shell there).
pub const INSTALLER: &str = "/nixos-wsl/installer";

/// The embedded root filesystem: a gzip-compressed tar that keeps its hard links.
pub const PAYLOAD: &str = "/nixos-wsl/rootfs.tar.gz";

/// The payload's manifest (see [`crate::manifest`]).
pub const MANIFEST: &str = "/nixos-wsl/rootfs.manifest";

/// Where WSL reads the modern `.wsl` distribution settings.
pub const WSL_DISTRIBUTION_CONF: &str = "/etc/wsl-distribution.conf";

/// Paths inside the distribution that WSL owns: nothing of ours is written under them.
pub const WSL_OWNED: &[&str] = &["/proc", "/sys", "/dev", "/init", "/run/WSL", "/mnt"];

/// A `.wsl`'s user, held back from `/etc/passwd` by packer (Microsoft's validator expects the
/// OOBE to create the default user, not the archive to ship it): one passwd line, which init
/// adds to `/etc/passwd` at the first boot, before systemd and any session, then removes.
pub const FIRST_BOOT_ACCOUNT: &str = "/etc/nixos-wsl/first-boot-account";

/// The `.wsl`'s OOBE command (`oobe.command`): it marks that WSL now starts `oobe.defaultUid`.
pub const OOBE_COMMAND: &str = "/usr/libexec/wsl/nixos-wsl-oobe";

/// Written by [`OOBE_COMMAND`]: WSL starts the user by default since the OOBE, so a root
/// session was asked for (`wsl -u root`) and gets root's real shell.
pub const OOBE_DONE: &str = "/var/lib/nixos-wsl/oobe-done";
