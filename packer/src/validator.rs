//! The rules of Microsoft's distribution validator (`distributions/validate-modern.py` in
//! microsoft/WSL, a copy in the shared notes) that `packer check`'s own WSL checks do not
//! already cover, so that every error and warning the validator gives for an archive,
//! `packer check` gives too. Each rule cites the validator's function it follows.

use crate::tree::{resolve, Lookup, NodeKind};

/// `DISCOURAGED_SYSTEM_UNITS` of validate-modern.py.
pub const DISCOURAGED_UNITS: &[&str] = &[
    "systemd-resolved.service",
    "systemd-networkd.service",
    "systemd-networkd-wait-online.service",
    "systemd-tmpfiles-setup.service",
    "systemd-tmpfiles-clean.service",
    "systemd-tmpfiles-setup-dev-early.service",
    "systemd-tmpfiles-setup-dev.service",
    "systemd-vconsole-setup.service",
    "tmp.mount",
    "NetworkManager.service",
    "NetworkManager-wait-online.service",
    "console-getty.service",
    "networking.service",
    "hypervkvpd.service",
];

/// Where the validator looks for enabled units (`read_systemd_enabled_units`).
const UNIT_DIRS: &[&[u8]] = &[
    b"usr/local/lib/systemd/system",
    b"usr/lib/systemd/system",
    b"etc/systemd/system",
];

const USR_LIB_WSL: &str = "/usr/lib/wsl";
const USR_LIBEXEC_WSL: &str = "/usr/libexec/wsl";
const USR_SHARE_WSL: &str = "/usr/share/wsl";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    Error(String),
    Warning(String),
}

/// Units of the validator's discouraged list linked from a `*.target.wants` folder of its
/// three unit folders, not to /dev/null and not masked by `/etc/systemd/system/UNIT ->
/// /dev/null`. Like the validator, folders are read as the archive names them (a folder
/// reached only through a symlink, such as NixOS's `/etc/systemd/system`, is not listed).
pub fn enabled_discouraged_units(tree: &dyn Lookup) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut seen = Vec::new();
    // The validator resolves a link to /dev/null to the archive's member when there is one,
    // and then compares its name ('dev/null') with '/dev/null' and './dev/null' only
    // (`is_dev_null`): with a /dev/null entry in the archive it sees no mask at all.
    let dev_null_member = tree.node(b"dev/null").is_some();
    for dir in UNIT_DIRS {
        for target in tree.children(dir) {
            if !target.ends_with(b".target.wants") {
                continue;
            }
            let wants = [*dir, b"/", &target].concat();
            for unit in tree.children(&wants) {
                let Ok(name) = std::str::from_utf8(&unit) else {
                    continue;
                };
                if !DISCOURAGED_UNITS.contains(&name) || seen.contains(&name.to_owned()) {
                    continue;
                }
                let link = [&wants[..], b"/", &unit].concat();
                let masked_here = leads_to_dev_null(tree, &link) || masked(tree, name);
                if masked_here && !dev_null_member {
                    continue;
                }
                seen.push(name.to_owned());
                if masked_here {
                    out.push(Finding::Warning(format!(
                        "{name} is masked, but Microsoft's validator reports it as enabled (/{}): the archive has a /dev/null entry, which hides every mask from it",
                        String::from_utf8_lossy(&link)
                    )));
                    continue;
                }
                out.push(Finding::Warning(format!(
                    "{name} is enabled (/{}) and Microsoft's validator discourages it; mask it with /etc/systemd/system/{name} -> /dev/null",
                    String::from_utf8_lossy(&link)
                )));
            }
        }
    }
    out
}

fn leads_to_dev_null(tree: &dyn Lookup, path: &[u8]) -> bool {
    resolve(tree, path).is_some_and(|p| p == b"dev/null")
}

fn masked(tree: &dyn Lookup, unit: &str) -> bool {
    let path = [b"etc/systemd/system/", unit.as_bytes()].concat();
    matches!(tree.node(&path).map(|n| n.kind), Some(NodeKind::Symlink(_)))
        && leads_to_dev_null(tree, &path)
}

/// Whether a passwd text has a user of `uid` (its third field), as `read_passwd` keys them.
pub fn has_uid(passwd: &[u8], uid: &str) -> bool {
    String::from_utf8_lossy(passwd)
        .lines()
        .any(|l| l.split(':').nth(2) == Some(uid))
}

/// The validator's checks of `/etc/wsl-distribution.conf` values (`read_tar`): where the OOBE
/// command, the icon and the terminal profile live, their modes, and the default uid.
pub fn distribution_conf(
    tree: &dyn Lookup,
    settings: &[(String, String, String)],
    passwd: Option<&[u8]>,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let get = |section: &str, key: &str| {
        settings
            .iter()
            .find(|(s, k, _)| s == section && k.eq_ignore_ascii_case(key))
            .map(|(_, _, v)| v.as_str())
    };
    if let Some(command) = get("oobe", "command") {
        file_rule(tree, &mut out, command, &[0o775, 0o755], "oobe.command");
        if !command.starts_with(USR_LIB_WSL) && !command.starts_with(USR_LIBEXEC_WSL) {
            out.push(Finding::Warning(format!(
                "oobe.command {command} is not under {USR_LIB_WSL} or {USR_LIBEXEC_WSL} (Microsoft's validator)"
            )));
        }
    }
    if let Some(uid) = get("oobe", "defaultUid") {
        if uid != "1000" {
            out.push(Finding::Warning(format!(
                "oobe.defaultUid is {uid}, not 1000 (Microsoft's validator)"
            )));
        }
        if passwd.is_some_and(|text| has_uid(text, uid)) {
            out.push(Finding::Warning(format!(
                "/etc/passwd already has a user with oobe.defaultUid {uid}: Microsoft's validator expects the OOBE command to create it"
            )));
        }
    }
    match get("shortcut", "icon") {
        Some(icon) => {
            if !icon.starts_with(USR_LIB_WSL) && !icon.starts_with(USR_SHARE_WSL) {
                out.push(Finding::Warning(format!(
                    "shortcut.icon {icon} is not under {USR_LIB_WSL} or {USR_SHARE_WSL} (Microsoft's validator)"
                )));
            }
        }
        None => out.push(Finding::Warning(
            "/etc/wsl-distribution.conf has no shortcut.icon: Windows shows no icon for it (Microsoft's validator warns)".into(),
        )),
    }
    if let Some(profile) = get("windowsterminal", "profileTemplate") {
        file_rule(
            tree,
            &mut out,
            profile,
            &[0o660, 0o640],
            "windowsterminal.profileTemplate",
        );
        if !profile.starts_with(USR_LIB_WSL) {
            out.push(Finding::Warning(format!(
                "windowsterminal.profileTemplate {profile} is not under {USR_LIB_WSL} (Microsoft's validator)"
            )));
        }
    }
    out
}

/// `validate_mode` for a file a setting names: missing is an error, an unexpected mode or a
/// non-root owner a warning.
fn file_rule(tree: &dyn Lookup, out: &mut Vec<Finding>, path: &str, modes: &[u32], what: &str) {
    let node = tree.node(path.trim_start_matches('/').as_bytes());
    match node {
        None => out.push(Finding::Error(format!(
            "{what} names {path}, which is not in the archive"
        ))),
        Some(node) => {
            if !modes.contains(&node.mode) {
                out.push(Finding::Warning(format!(
                    "{what} {path} has mode {:04o}; Microsoft's validator wants {}",
                    node.mode,
                    modes
                        .iter()
                        .map(|m| format!("{m:04o}"))
                        .collect::<Vec<_>>()
                        .join(" or ")
                )));
            }
            if node.uid != 0 || node.gid != 0 {
                out.push(Finding::Warning(format!(
                    "{what} {path} is owned by {}:{}, not root",
                    node.uid, node.gid
                )));
            }
        }
    }
}

/// `read_passwd`: every line has seven fields and a numeric uid, and no uid is used twice.
pub fn passwd(text: &[u8]) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut uids: Vec<&str> = Vec::new();
    let text = String::from_utf8_lossy(text);
    for line in text.lines() {
        let fields: Vec<&str> = line.split(':').collect();
        if fields.len() != 7 || fields[2].parse::<u32>().is_err() {
            out.push(Finding::Error(format!(
                "/etc/passwd: invalid entry {:?} (seven fields and a numeric uid, Microsoft's validator)",
                line.chars().take(80).collect::<String>()
            )));
            continue;
        }
        if uids.contains(&fields[2]) {
            out.push(Finding::Error(format!(
                "/etc/passwd: uid {} is used twice",
                fields[2]
            )));
        }
        uids.push(fields[2]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::{dir_entry, link_entry, MemoryTree};

    #[test]
    fn a_dev_null_entry_hides_the_masks_from_the_validator() {
        let mut entries = vec![
            dir_entry(""),
            dir_entry("usr/lib/systemd/system/sysinit.target.wants"),
            link_entry(
                "usr/lib/systemd/system/sysinit.target.wants/systemd-tmpfiles-setup.service",
                "../systemd-tmpfiles-setup.service",
            ),
            dir_entry("etc/systemd/system"),
            link_entry(
                "etc/systemd/system/systemd-tmpfiles-setup.service",
                "/dev/null",
            ),
        ];
        assert!(enabled_discouraged_units(&MemoryTree(entries.clone())).is_empty());
        let mut null = dir_entry("dev/null");
        null.1.kind = NodeKind::Other;
        entries.extend([dir_entry("dev"), null]);
        let found = enabled_discouraged_units(&MemoryTree(entries));
        assert!(
            matches!(&found[..], [Finding::Warning(t)] if t.contains("systemd-tmpfiles-setup.service is masked") && t.contains("/dev/null entry")),
            "{found:?}"
        );
    }

    #[test]
    fn passwd_lines_need_seven_fields_a_number_and_a_uid_of_their_own() {
        let ok = b"root:x:0:0:root:/root:/bin/sh\nnixos:x:1000:100::/home/nixos:/bin/sh\n";
        assert!(passwd(ok).is_empty());
        let bad = b"root:x:0:0:root:/root:/bin/sh\nshort:x:1\ntwin:x:0:0::/:/bin/sh\n";
        let found = passwd(bad);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(matches!(&found[0], Finding::Error(t) if t.contains("invalid entry")));
        assert!(matches!(&found[1], Finding::Error(t) if t.contains("uid 0 is used twice")));
    }
}
