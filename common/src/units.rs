//! systemd units that fight WSL: the one list. WSL provides networking, DNS, `/tmp` and
//! consoles itself; each entry says why the unit cannot work there (see shared notes on
//! Microsoft's validator).
//!
//! Masked twice over:
//! - by init on systemd's command line, `systemd.mask=NAME` for each (every tree, both modes):
//!   systemd in a container reads PID 1's arguments as its kernel command line
//!   (systemd `src/basic/proc-cmdline.c`) and systemd-debug-generator writes the masks to
//!   `/run/systemd/generator.early`, ahead of `/etc/systemd/system` in the unit path
//!   (`src/basic/path-lookup.c`), so they hold whatever the tree enables;
//! - by packer as `/etc/systemd/system/NAME -> /dev/null` links, on trees that are not NixOS
//!   only: NixOS's units come from the link `/etc/systemd/system -> /etc/static/systemd/system`
//!   (nixpkgs `nixos/modules/system/boot/systemd.nix`), which packer must not write under.
//!
//! `packer check` reports those enabled and not masked by a link in non-NixOS archives.

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

/// The names only, for callers that compare against unit files.
pub fn hostile_unit_names() -> impl Iterator<Item = &'static str> {
    HOSTILE_UNITS.iter().map(|u| u.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_unit_names() {
        let mut names: Vec<_> = hostile_unit_names().collect();
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
}
