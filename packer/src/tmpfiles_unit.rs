//! The unit that takes systemd-tmpfiles-setup.service's place on trees that are not NixOS
//! (`wsl_common::units::NOT_NIXOS_UNITS` says why): the same boot-time run of
//! systemd-tmpfiles, with what WSL mounts into the tree excluded. Its ordering is systemd's
//! own unit's (systemd `units/systemd-tmpfiles-setup.service`), plus the units that name
//! systemd-tmpfiles-setup.service in their own ordering (systemd-journal-flush and
//! systemd-sysext run before it, systemd-update-utmp after it: it makes `/run/utmp`), since
//! those orderings do not follow a masked unit's replacement.

use wsl_common::units::{TMPFILES_EXCLUDED, TMPFILES_REPLACEMENT};

/// Where systemd's own unit lives in a tree (Debian's `/lib` or the merged `/usr/lib`).
pub const STOCK_UNIT_PATHS: &[&[u8]] = &[
    b"usr/lib/systemd/system/systemd-tmpfiles-setup.service",
    b"lib/systemd/system/systemd-tmpfiles-setup.service",
];

/// `/etc/systemd/system/<replacement>` and its `sysinit.target.wants` link.
pub fn unit_path() -> Vec<u8> {
    format!("etc/systemd/system/{TMPFILES_REPLACEMENT}").into_bytes()
}

pub fn wants_path() -> Vec<u8> {
    format!("etc/systemd/system/sysinit.target.wants/{TMPFILES_REPLACEMENT}").into_bytes()
}

/// The command: `--remove` and `--boot` as systemd's unit has them, each WSL path excluded.
pub fn command() -> String {
    let mut command = String::from("systemd-tmpfiles --create --remove --boot");
    for (path, _) in TMPFILES_EXCLUDED {
        command.push_str(" --exclude-prefix=");
        command.push_str(path);
    }
    command
}

pub fn text() -> String {
    let excluded: String = TMPFILES_EXCLUDED
        .iter()
        .map(|(path, why)| format!("#   {path}: {why}\n"))
        .collect();
    format!(
        "# Written by packer (nixos-wsl) in place of systemd-tmpfiles-setup.service, which is
# masked: the same boot-time run with what WSL mounts into the distribution left alone:
{excluded}
[Unit]
Description=Create System Files and Directories (WSL's paths excluded)
Documentation=man:tmpfiles.d(5) man:systemd-tmpfiles(8)
DefaultDependencies=no
After=local-fs.target systemd-sysusers.service systemd-journald.service
After=systemd-journal-flush.service systemd-sysext.service
Before=sysinit.target systemd-update-utmp.service
Conflicts=shutdown.target initrd-switch-root.target
Before=shutdown.target initrd-switch-root.target
RefuseManualStop=yes

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart={}
SuccessExitStatus=DATAERR CANTCREAT
",
        command()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_wsl_path_is_excluded_and_dev_first_as_in_systemds_unit() {
        let command = command();
        assert!(
            command.starts_with("systemd-tmpfiles --create --remove --boot --exclude-prefix=/dev ")
        );
        for (path, _) in TMPFILES_EXCLUDED {
            assert!(command.contains(&format!("--exclude-prefix={path}")));
        }
        let text = text();
        assert!(text.contains(&format!("ExecStart={command}\n")));
        assert!(text.contains("Before=sysinit.target systemd-update-utmp.service\n"));
    }
}
