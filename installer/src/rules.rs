//! What an entry may be: names inside the root, no way out through a symlink, hard links only
//! to earlier entries. Every entry goes through [`Rules::check`] before it is written into the
//! staging directory, and the writer gets the normalised entry.

use std::collections::HashMap;

use wsl_common::paths::{INSTALLER_DIR, WSL_OWNED};

use crate::tar::{Entry, Kind};

/// Names the installer uses for its own temporary files (refused in archives).
pub const RESERVED_PREFIX: &[u8] = b".nixos-wsl-";

/// Files that switch the system over, written only after everything else is durable:
/// root's shell (init), WSL's boot settings (native systemd) and `/sbin/init`. In commit
/// order: `/etc/passwd` last.
pub const HELD_BACK: &[&[u8]] = &[
    b"sbin/init",
    b"usr/sbin/init",
    b"etc/wsl.conf",
    b"etc/passwd",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Node {
    Dir,
    Symlink,
    Other,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Write it (path normalised, hard-link target normalised).
    Write,
    /// Under a path WSL owns: skipped.
    Skip,
}

#[derive(Default)]
pub struct Rules {
    nodes: HashMap<Vec<u8>, Node>,
}

/// `./a/b/` → `a/b`; the root is the empty name. Refuses absolute names, `..`, `.`, empty
/// components, NUL bytes, overlong components and our reserved names.
pub fn normalize(raw: &[u8]) -> Result<Vec<u8>, String> {
    let shown = String::from_utf8_lossy(raw);
    if raw.starts_with(b"/") {
        return Err(format!("absolute name {shown:?}"));
    }
    let mut name = raw;
    while let Some(rest) = name.strip_prefix(b"./") {
        name = rest;
    }
    if name == b"." {
        name = b"";
    }
    while let Some(rest) = name.strip_suffix(b"/") {
        name = rest;
    }
    if name.is_empty() {
        return Ok(Vec::new());
    }
    for part in name.split(|&c| c == b'/') {
        match part {
            b"" | b"." => return Err(format!("name {shown:?} has an empty or '.' component")),
            b".." => return Err(format!("name {shown:?} contains '..'")),
            _ if part.contains(&0) => return Err(format!("name {shown:?} contains a NUL byte")),
            _ if part.len() > 255 => {
                return Err(format!("name {shown:?} has a component over 255 bytes"))
            }
            _ if part.starts_with(RESERVED_PREFIX) => {
                return Err(format!(
                    "name {shown:?} uses the installer's reserved prefix .nixos-wsl-"
                ))
            }
            _ => {}
        }
    }
    Ok(name.to_vec())
}

/// True for `/proc`, `/dev/x`, `/run/WSL/y`, ...: paths WSL mounts or owns, and the
/// installer's own folder (`/nixos-wsl`: its payload, manifest and staging directory), which an
/// archive's entries must not replace in the middle of the install.
pub fn wsl_owned(path: &[u8]) -> bool {
    WSL_OWNED
        .iter()
        .chain(std::iter::once(&INSTALLER_DIR))
        .any(|owned| {
            let owned = &owned.as_bytes()[1..];
            path == owned || (path.starts_with(owned) && path.get(owned.len()) == Some(&b'/'))
        })
}

/// What `setxattr("security.capability")` accepts: a `vfs_cap_data` of revision 2 (20 bytes)
/// or 3 (24 bytes, with a root uid), the revision in the top byte of the little-endian
/// `magic_etc` (linux `security/commoncap.c` `validheader`, `include/uapi/linux/capability.h`).
/// Revision 1 is refused there too.
pub fn valid_capability(value: &[u8]) -> bool {
    let Some(magic) = value.get(..4) else {
        return false;
    };
    let revision = u32::from_le_bytes([magic[0], magic[1], magic[2], magic[3]]) & 0xff00_0000;
    matches!(
        (revision, value.len()),
        (0x0200_0000, 20) | (0x0300_0000, 24)
    )
}

pub fn is_held_back(path: &[u8]) -> bool {
    HELD_BACK.contains(&path)
}

fn ancestors(path: &[u8]) -> impl Iterator<Item = &[u8]> {
    path.iter()
        .enumerate()
        .filter(|(_, &c)| c == b'/')
        .map(move |(i, _)| &path[..i])
}

impl Rules {
    /// Normalises the entry's name (and hard-link target) in place and checks it against the
    /// entries before it.
    pub fn check(&mut self, entry: &mut Entry) -> Result<Verdict, String> {
        entry.name = normalize(&entry.name)?;
        let shown = String::from_utf8_lossy(&entry.name).into_owned();
        if let Kind::HardLink(target) = &mut entry.kind {
            *target = normalize(target).map_err(|p| format!("hard link {shown:?}: target {p}"))?;
        }
        if wsl_owned(&entry.name) {
            return Ok(Verdict::Skip);
        }
        if entry.uid == u32::MAX || entry.gid == u32::MAX {
            return Err(format!("{shown:?} has the reserved owner id 4294967295"));
        }
        if entry.name.is_empty() && entry.kind != Kind::Dir {
            return Err("the archive's root entry is not a directory".into());
        }
        self.check_parents(&entry.name)?;
        for (name, value) in &entry.xattrs {
            if name == b"security.capability" && !valid_capability(value) {
                return Err(format!(
                    "{shown:?} has a security.capability value the kernel refuses ({} bytes, \
                     not a revision 2 or 3 capability set)",
                    value.len()
                ));
            }
        }
        let node = match &entry.kind {
            Kind::Dir => Node::Dir,
            Kind::Symlink(target) if target.is_empty() || target.contains(&0) => {
                return Err(format!(
                    "symlink {shown:?} has an empty or NUL-containing target"
                ))
            }
            Kind::Symlink(_) => Node::Symlink,
            Kind::HardLink(target) => {
                let t = String::from_utf8_lossy(target);
                if wsl_owned(target) || target == &entry.name {
                    return Err(format!("hard link {shown:?} to {t:?} cannot be made"));
                }
                match self.nodes.get(target.as_slice()) {
                    Some(Node::Dir) | None => {
                        return Err(format!(
                            "hard link {shown:?} points to {t:?}, which is not an earlier file in the archive"
                        ))
                    }
                    Some(&n) => {
                        self.check_parents(target).map_err(|p| format!("hard link {shown:?}: {p}"))?;
                        n
                    }
                }
            }
            _ => Node::Other,
        };
        if node != Node::Dir && self.nodes.get(entry.name.as_slice()) == Some(&Node::Dir) {
            return Err(format!(
                "{shown:?} replaces a directory of the archive with a non-directory"
            ));
        }
        self.nodes.insert(entry.name.clone(), node);
        Ok(Verdict::Write)
    }

    fn check_parents(&mut self, path: &[u8]) -> Result<(), String> {
        for parent in ancestors(path) {
            match self.nodes.get(parent) {
                Some(Node::Dir) => {}
                Some(Node::Symlink) => {
                    return Err(format!(
                        "{:?} goes through the symlink {:?}",
                        String::from_utf8_lossy(path),
                        String::from_utf8_lossy(parent)
                    ))
                }
                Some(Node::Other) => {
                    return Err(format!(
                        "{:?} is inside {:?}, which is not a directory",
                        String::from_utf8_lossy(path),
                        String::from_utf8_lossy(parent)
                    ))
                }
                None => {
                    self.nodes.insert(parent.to_vec(), Node::Dir);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, kind: Kind) -> Entry {
        Entry {
            name: name.as_bytes().to_vec(),
            kind,
            size: 0,
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: 1,
            mtime_nsec: 0,
            xattrs: vec![],
            offset: 0,
        }
    }

    #[test]
    fn only_capability_sets_the_kernel_takes_pass() {
        let v2 = [&0x0200_0001u32.to_le_bytes()[..], &[0u8; 16]].concat();
        let v3 = [&0x0300_0000u32.to_le_bytes()[..], &[0u8; 20]].concat();
        assert!(valid_capability(&v2) && valid_capability(&v3));
        let v1 = [&0x0100_0000u32.to_le_bytes()[..], &[0u8; 8]].concat();
        assert!(
            !valid_capability(&v1) && !valid_capability(b"junk") && !valid_capability(&v2[..19])
        );
        let mut r = Rules::default();
        let mut e = entry("usr/bin/ping", Kind::File);
        e.xattrs
            .push((b"security.capability".to_vec(), b"junk".to_vec()));
        let err = r.check(&mut e).expect_err("refused");
        assert!(err.contains("security.capability"), "{err}");
    }

    #[test]
    fn names_are_normalised_or_refused() {
        assert_eq!(normalize(b"./etc/passwd"), Ok(b"etc/passwd".to_vec()));
        assert_eq!(normalize(b"./"), Ok(vec![]));
        assert_eq!(normalize(b"usr/bin/"), Ok(b"usr/bin".to_vec()));
        for bad in [
            &b"/etc/passwd"[..],
            b"../x",
            b"a/../../x",
            b"a//b",
            b"a/./b",
            b"a/.nixos-wsl-installer.tmp",
        ] {
            assert!(
                normalize(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn wsl_owned_paths_are_skipped() {
        let mut r = Rules::default();
        assert_eq!(r.check(&mut entry("./proc/", Kind::Dir)), Ok(Verdict::Skip));
        for installers_own in ["nixos-wsl", "nixos-wsl/rootfs.tar.gz", "nixos-wsl/stage"] {
            assert_eq!(
                r.check(&mut entry(installers_own, Kind::File)),
                Ok(Verdict::Skip),
                "{installers_own}"
            );
        }
        assert_eq!(
            r.check(&mut entry("nixos-wsl-not-ours", Kind::File)),
            Ok(Verdict::Write)
        );
        assert_eq!(
            r.check(&mut entry("run/WSL/x", Kind::File)),
            Ok(Verdict::Skip)
        );
        assert_eq!(
            r.check(&mut entry("run/user", Kind::Dir)),
            Ok(Verdict::Write)
        );
        assert_eq!(
            r.check(&mut entry("devices", Kind::File)),
            Ok(Verdict::Write)
        );
    }

    #[test]
    fn no_way_out_through_symlinks_or_hard_links() {
        let mut r = Rules::default();
        r.check(&mut entry("esc", Kind::Symlink(b"/".to_vec())))
            .expect("symlink itself is fine");
        assert!(r.check(&mut entry("esc/etc/shadow", Kind::File)).is_err());
        r.check(&mut entry("a/file", Kind::File))
            .expect("implied parent");
        assert!(r.check(&mut entry("a/file/x", Kind::File)).is_err());
        assert!(r
            .check(&mut entry(
                "l1",
                Kind::HardLink(b"../../etc/shadow".to_vec())
            ))
            .is_err());
        assert!(r
            .check(&mut entry("l2", Kind::HardLink(b"later".to_vec())))
            .is_err());
        assert!(
            r.check(&mut entry("l3", Kind::HardLink(b"a".to_vec())))
                .is_err(),
            "link to a directory"
        );
        let mut ok = entry("l4", Kind::HardLink(b"./a/file".to_vec()));
        assert_eq!(r.check(&mut ok), Ok(Verdict::Write));
        assert_eq!(ok.kind, Kind::HardLink(b"a/file".to_vec()));
        assert!(
            r.check(&mut entry("a", Kind::File)).is_err(),
            "directory replaced by a file"
        );
    }
}
