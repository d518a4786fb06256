//! systemd units that fight WSL. WSL provides networking, DNS, `/tmp`, `/dev` and consoles
//! itself; each entry says why the unit cannot work there (see shared notes on Microsoft's
//! validator). Two lists: [`HOSTILE_UNITS`] for every tree, [`NOT_NIXOS_UNITS`] for trees that
//! are not NixOS only (packer's links; see there why).
//!
//! [`HOSTILE_UNITS`] are masked twice over:
//! - by init on systemd's command line, `systemd.mask=NAME` for each (every tree, both modes):
//!   systemd in a container reads PID 1's arguments as its kernel command line
//!   (systemd `src/basic/proc-cmdline.c`) and systemd-debug-generator writes the masks to
//!   `/run/systemd/generator.early`, ahead of `/etc/systemd/system` in the unit path
//!   (`src/basic/path-lookup.c`), so they hold whatever the tree enables;
//! - by packer as `/etc/systemd/system/NAME -> /dev/null` links, on trees that are not NixOS
//!   only: NixOS's units come from the link `/etc/systemd/system -> /etc/static/systemd/system`
//!   (nixpkgs `nixos/modules/system/boot/systemd.nix`), which packer must not write under.
//!
//! `packer check` reports those of both lists enabled and not masked by a link in non-NixOS
//! archives.

/// A unit to mask, with the reason written down for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostileUnit {
    pub name: &'static str,
    pub reason: &'static str,
}

const fn unit(name: &'static str, reason: &'static str) -> HostileUnit {
    HostileUnit { name, reason }
}

pub const HOSTILE_UNITS: &[HostileUnit] = &[
    unit(
        "systemd-resolved.service",
        "WSL writes /etc/resolv.conf itself",
    ),
    unit(
        "systemd-networkd.service",
        "WSL configures eth0 from the host",
    ),
    unit(
        "systemd-networkd-wait-online.service",
        "never finishes: networkd manages no link",
    ),
    unit(
        "NetworkManager.service",
        "WSL configures networking from the host",
    ),
    unit(
        "NetworkManager-wait-online.service",
        "never finishes under WSL",
    ),
    unit(
        "networking.service",
        "ifupdown has no interfaces of its own to bring up",
    ),
    unit(
        "systemd-tmpfiles-clean.service",
        "would delete WSL's /tmp/.X11-unix and WSLg sockets",
    ),
    unit(
        "systemd-tmpfiles-clean.timer",
        "would delete WSL's /tmp/.X11-unix and WSLg sockets",
    ),
    unit("tmp.mount", "a tmpfs over /tmp hides WSLg's X11 socket"),
    unit(
        "console-getty.service",
        "WSL owns the console; fails with a shared /dev",
    ),
    unit("getty@tty1.service", "there is no virtual terminal in WSL"),
    unit(
        "autovt@tty1.service",
        "getty@tty1 under the alias logind starts where a virtual terminal exists; a mask of getty@tty1 does not cover it",
    ),
    unit(
        "serial-getty@ttyS0.service",
        "never finishes: no serial console in WSL",
    ),
    unit(
        "systemd-vconsole-setup.service",
        "there is no virtual console in WSL",
    ),
    unit(
        "systemd-remount-fs.service",
        "WSL mounts the root filesystem; fails without an fstab entry",
    ),
    unit(
        "systemd-modules-load.service",
        "the WSL kernel is shared and loads no modules for a distribution",
    ),
    unit(
        "systemd-binfmt.service",
        "would wipe WSL's VM-wide WSLInterop binfmt entry",
    ),
    unit(
        "proc-sys-fs-binfmt_misc.automount",
        "binfmt_misc is WSL's, shared by every distribution",
    ),
    unit(
        "proc-sys-fs-binfmt_misc.mount",
        "binfmt_misc is WSL's, shared by every distribution",
    ),
    unit(
        "systemd-firstboot.service",
        "would prompt on a console that WSL owns",
    ),
];

/// Units masked only on trees that are not NixOS, by packer's `/etc/systemd/system/NAME ->
/// /dev/null` links: never on systemd's command line, nor by the NixOS module. Microsoft's
/// validator discourages each (`DISCOURAGED_SYSTEM_UNITS` of `distributions/validate-modern.py`).
///
/// Why not NixOS: there its modules declare directories, users' homes and state folders as
/// tmpfiles rules (nixpkgs `nixos/modules/system/boot/systemd/tmpfiles.nix`), so
/// systemd-tmpfiles-setup must run, and packer cannot put a replacement under NixOS's
/// `/etc/systemd/system` link; the `/dev` units are left to the module as well.
pub const NOT_NIXOS_UNITS: &[HostileUnit] = &[
    unit(
        "systemd-tmpfiles-setup.service",
        "its tmpfiles.d rules reach into what WSL mounts into the tree: x11.conf's `D! /tmp/.X11-unix` \
         empties WSLg's read-only bind at every boot unless WSL's generator has shadowed it that boot \
         (microsoft/WSL src/linux/init/init.cpp, GenerateSystemdUnits); replaced by \
         nixos-wsl-tmpfiles-setup.service, the same command with WSL's paths excluded \
         (TMPFILES_EXCLUDED), so /run, /var and /tmp are still made at every start",
    ),
    unit(
        "systemd-tmpfiles-setup-dev-early.service",
        "/dev is WSL's devtmpfs, one for the whole VM: static nodes, modes and groups set from \
         this distribution's tmpfiles.d (with its own group ids) would change them for every \
         distribution; WSL makes /dev's nodes itself",
    ),
    unit(
        "systemd-tmpfiles-setup-dev.service",
        "/dev is WSL's devtmpfs, one for the whole VM: static nodes, modes and groups set from \
         this distribution's tmpfiles.d (with its own group ids) would change them for every \
         distribution; WSL makes /dev's nodes itself",
    ),
];

/// The unit packer writes, and enables in `sysinit.target`, where it masks
/// systemd-tmpfiles-setup.service (only where the tree has that unit).
pub const TMPFILES_REPLACEMENT: &str = "nixos-wsl-tmpfiles-setup.service";

/// What WSL mounts or owns inside a distribution, which systemd-tmpfiles must leave alone,
/// with where WSL's source makes it.
pub const TMPFILES_EXCLUDED: &[(&str, &str)] = &[
    (
        "/dev",
        "WSL's devtmpfs, shared by the VM (excluded by systemd's own unit too)",
    ),
    (
        "/tmp/.X11-unix",
        "WSLg's read-only bind of /mnt/wslg/.X11-unix",
    ),
    ("/mnt/wslg", "WSLg's share"),
    (
        "/mnt/wsl",
        "one tmpfs for every distribution of the VM (src/linux/init/main.cpp:1276)",
    ),
    (
        "/run/WSL",
        "WSL's interop sockets (src/linux/init/config.cpp:950-963)",
    ),
    (
        "/usr/lib/wsl",
        "the GPU shares, read-only (src/linux/init/config.cpp:1040-1056)",
    ),
];

/// Every unit packer masks on a tree that is not NixOS: [`HOSTILE_UNITS`] and
/// [`NOT_NIXOS_UNITS`].
pub fn masked_outside_nixos() -> impl Iterator<Item = &'static HostileUnit> {
    HOSTILE_UNITS.iter().chain(NOT_NIXOS_UNITS)
}

/// The names only, for callers that compare against unit files.
pub fn hostile_unit_names() -> impl Iterator<Item = &'static str> {
    HOSTILE_UNITS.iter().map(|u| u.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_unit_names() {
        let mut names: Vec<_> = masked_outside_nixos().map(|u| u.name).collect();
        let before = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), before, "a unit is listed twice");
        for name in names {
            assert!(
                [".service", ".mount", ".automount", ".timer", ".socket"]
                    .iter()
                    .any(|suffix| name.ends_with(suffix)),
                "{name} is not a unit name"
            );
        }
    }

    #[test]
    fn the_replacement_is_not_masked_and_every_excluded_path_is_absolute() {
        assert!(masked_outside_nixos().all(|u| u.name != TMPFILES_REPLACEMENT));
        for (path, why) in TMPFILES_EXCLUDED {
            assert!(path.starts_with('/') && !path.ends_with('/'), "{path}");
            assert!(!why.is_empty());
        }
    }
}
