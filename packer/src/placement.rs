//! Where packer's added entries land in the source tree, and reading the source's files
//! through its symlinks.
//!
//! bsdtar, which WSL's import runs, refuses to extract an entry whose parent is a symlink
//! ("Cannot extract through symlink"), and the installer refuses such a payload as damaged.
//! So an added `/etc/x` in a tree whose `/etc -> usr/etc` is written as `usr/etc/x`: each
//! parent is resolved inside the tree (absolute targets from the tree's root, as after WSL's
//! chroot), never on the host.

use crate::entry::{display, join, parent};
use crate::error::Error;
use crate::tree::{resolve, Lookup, NodeKind};

/// Where an entry meant for `path` goes: its parent resolved inside the tree, its own name
/// kept (a symlink at `path` itself is replaced, not followed: the source's `/etc/wsl.conf ->
/// /etc/static/wsl.conf` becomes a file, its store target is never written).
///
/// Refused, naming the path: a parent that loops or lands on something other than a
/// directory, or passes through a dangling symlink (packer would have to invent the
/// directories the link points to), and a directory of the source at the place itself.
pub fn place(tree: &dyn Lookup, path: &[u8]) -> Result<Vec<u8>, Error> {
    let placed = land(tree, path)?;
    if let Some(NodeKind::Dir) = tree.node(&placed).map(|n| n.kind) {
        return Err(refusal(
            path,
            format!(
                "packer writes a file here, but the source tree has a directory at {}",
                display(&placed)
            ),
        ));
    }
    Ok(placed)
}

/// Like [`place`], for an entry written only where the source has nothing of that name (a
/// default such as `/sbin/init` or a unit mask): `None` when it has something there.
pub fn place_new(tree: &dyn Lookup, path: &[u8]) -> Result<Option<Vec<u8>>, Error> {
    let placed = land(tree, path)?;
    Ok(tree.node(&placed).is_none().then_some(placed))
}

fn refusal(path: &[u8], problem: String) -> Error {
    Error::BadEntry {
        path: display(path),
        problem,
    }
}

fn land(tree: &dyn Lookup, path: &[u8]) -> Result<Vec<u8>, Error> {
    let Some(dir) = parent(path) else {
        return Ok(path.to_vec());
    };
    let name = &path[dir.len() + usize::from(!dir.is_empty())..];
    let Some(real_dir) = resolve(tree, dir) else {
        return Err(refusal(
            path,
            format!(
                "packer adds this file, but {} is a symlink loop in the source tree",
                display(dir)
            ),
        ));
    };
    // The deepest existing ancestor of the landing place must be a directory; packer creates
    // the missing rest. That rest must be the literal end of `path` (reached without a
    // symlink): missing directories named by a link's target mean the link dangles.
    let mut existing: &[u8] = &real_dir;
    loop {
        match tree.node(existing).map(|n| n.kind) {
            Some(NodeKind::Dir) => break,
            None => {}
            Some(_) => {
                return Err(refusal(
                    path,
                    format!(
                        "packer adds this file, but {} is not a directory in the source tree",
                        display(existing)
                    ),
                ))
            }
        }
        match parent(existing) {
            Some(up) => existing = up,
            None => break,
        }
    }
    let missing: Vec<&[u8]> = components(&real_dir)
        .skip(components(existing).count())
        .collect();
    let asked: Vec<&[u8]> = components(dir).collect();
    if !asked.ends_with(&missing) {
        return Err(refusal(
            path,
            format!(
                "packer adds this file, but {} leads through a symlink to {}, which is not in the source tree",
                display(dir),
                display(&real_dir)
            ),
        ));
    }
    Ok(join(&real_dir, name))
}

/// A file's content and the path inside the tree it was read from.
pub type Found = (Vec<u8>, Vec<u8>);

/// The content of the regular file at `path`, following symlinks inside the tree, with the
/// path it was read from. `None` when there is none (or it is not a regular file).
pub fn read_through_links(tree: &dyn Lookup, path: &[u8]) -> Result<Option<Found>, Error> {
    let Some(real) = resolve(tree, path) else {
        return Ok(None);
    };
    if tree.node(&real).map(|n| n.kind) != Some(NodeKind::File) {
        return Ok(None);
    }
    Ok(tree.read_small(&real)?.map(|data| (data, real)))
}

fn components(path: &[u8]) -> impl Iterator<Item = &[u8]> {
    path.split(|&c| c == b'/').filter(|c| !c.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::{dir_entry, file_entry, link_entry, MemoryTree};

    #[test]
    fn added_paths_resolve_through_the_sources_symlinks() {
        let tree = MemoryTree(vec![
            dir_entry(""),
            link_entry("etc", "usr/etc"),
            dir_entry("usr"),
            dir_entry("usr/etc"),
            link_entry("usr/etc/systemd", "/usr/lib/systemd"),
            dir_entry("usr/lib"),
            dir_entry("usr/lib/systemd"),
            link_entry("usr/libexec", "lib"),
            link_entry("usr/etc/wsl.conf", "/usr/share/wsl.conf"),
            file_entry("passwd-file", "x"),
        ]);
        let placed = |p: &str| place(&tree, p.as_bytes()).map(|p| String::from_utf8(p).unwrap());
        assert_eq!(placed("etc/passwd").unwrap(), "usr/etc/passwd");
        assert_eq!(
            placed("etc/systemd/system/tmp.mount").unwrap(),
            "usr/lib/systemd/system/tmp.mount"
        );
        assert_eq!(
            placed("usr/libexec/nixos-wsl/init").unwrap(),
            "usr/lib/nixos-wsl/init"
        );
        // The link itself is replaced: its target is never written.
        assert_eq!(placed("etc/wsl.conf").unwrap(), "usr/etc/wsl.conf");
        assert_eq!(placed("new/dir/file").unwrap(), "new/dir/file");
        let err = placed("passwd-file/x").unwrap_err().to_string();
        assert!(err.contains("/passwd-file is not a directory"), "{err}");
        assert!(
            placed("usr/lib").is_err(),
            "a directory is never replaced by a file"
        );
    }

    #[test]
    fn loops_and_dangling_links_are_refused_by_name() {
        let tree = MemoryTree(vec![
            dir_entry(""),
            link_entry("etc", "etc"),
            dir_entry("usr"),
            link_entry("usr/libexec", "/opt/libexec"),
        ]);
        let err = place(&tree, b"etc/passwd").unwrap_err().to_string();
        assert!(
            err.starts_with("/etc/passwd: ") && err.contains("/etc is a symlink loop"),
            "{err}"
        );
        let err = place(&tree, b"usr/libexec/nixos-wsl/init")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(
                "/usr/libexec/nixos-wsl leads through a symlink to /opt/libexec/nixos-wsl"
            ),
            "{err}"
        );
    }

    #[test]
    fn files_are_read_through_etc_static() {
        let tree = MemoryTree(vec![
            dir_entry(""),
            dir_entry("etc"),
            link_entry("etc/static", "/nix/store/aaa-etc/etc"),
            link_entry("etc/wsl.conf", "/etc/static/wsl.conf"),
            dir_entry("nix"),
            dir_entry("nix/store"),
            dir_entry("nix/store/aaa-etc"),
            dir_entry("nix/store/aaa-etc/etc"),
            link_entry(
                "nix/store/aaa-etc/etc/wsl.conf",
                "/nix/store/bbb-etc-wsl.conf",
            ),
            file_entry("nix/store/bbb-etc-wsl.conf", "[boot]\nsystemd=true\n"),
        ]);
        let (data, from) = read_through_links(&tree, b"etc/wsl.conf")
            .unwrap()
            .expect("read through the links");
        assert_eq!(data, b"[boot]\nsystemd=true\n");
        assert_eq!(from, b"nix/store/bbb-etc-wsl.conf");
        assert_eq!(read_through_links(&tree, b"etc/nothing").unwrap(), None);
    }
}
