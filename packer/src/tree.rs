//! Looking things up in the source tree before it is streamed, for packer's edits: is there
//! a `/sbin/init`, what does `/etc/passwd` say. Symlinks resolve inside the tree, never on
//! the host.

use crate::entry::{join, normalize, parent};
use crate::error::Error;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeKind {
    File,
    Dir,
    Symlink(Vec<u8>),
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub kind: NodeKind,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: i64,
}

pub trait Lookup {
    /// The entry at `path` itself (a symlink is not followed).
    fn node(&self, path: &[u8]) -> Option<Node>;
    /// The content of the regular file at `path`, when small enough to be a config file.
    fn read_small(&self, path: &[u8]) -> Result<Option<Vec<u8>>, Error>;
    /// The names in the directory at `path` itself (not through a symlink), sorted; empty
    /// when there is none. Used to find a NixOS system in `/nix/store`.
    fn children(&self, path: &[u8]) -> Vec<Vec<u8>>;
}

/// Follows symlinks in every component of `path` inside the tree; returns where it lands
/// (which may not exist). `None` on a loop or a path climbing out of the tree.
pub fn resolve(tree: &dyn Lookup, path: &[u8]) -> Option<Vec<u8>> {
    let mut pending: Vec<Vec<u8>> = path
        .split(|&c| c == b'/')
        .filter(|c| !c.is_empty())
        .map(<[u8]>::to_vec)
        .rev()
        .collect();
    let mut at: Vec<u8> = Vec::new();
    let mut hops = 0;
    while let Some(component) = pending.pop() {
        match &component[..] {
            b"." => continue,
            b".." => {
                at = parent(&at).unwrap_or(b"").to_vec();
                continue;
            }
            _ => {}
        }
        let next = join(&at, &component);
        match tree.node(&next).map(|n| n.kind) {
            Some(NodeKind::Symlink(target)) => {
                hops += 1;
                if hops > 40 {
                    return None;
                }
                if target.starts_with(b"/") {
                    at.clear();
                }
                pending.extend(
                    target
                        .split(|&c| c == b'/')
                        .filter(|c| !c.is_empty())
                        .map(<[u8]>::to_vec)
                        .rev(),
                );
            }
            _ => at = next,
        }
    }
    normalize(&at)
}

/// A tree held in memory, for tests and for the installer's own tiny tree.
#[cfg(test)]
pub struct MemoryTree(pub Vec<(Vec<u8>, Node, Vec<u8>)>);

#[cfg(test)]
impl Lookup for MemoryTree {
    fn node(&self, path: &[u8]) -> Option<Node> {
        self.0
            .iter()
            .find(|(p, _, _)| p == path)
            .map(|(_, n, _)| n.clone())
    }
    fn read_small(&self, path: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        Ok(self
            .0
            .iter()
            .find(|(p, n, _)| p == path && n.kind == NodeKind::File)
            .map(|(_, _, c)| c.clone()))
    }
    fn children(&self, path: &[u8]) -> Vec<Vec<u8>> {
        let mut names: Vec<Vec<u8>> = self
            .0
            .iter()
            .filter(|(p, _, _)| !p.is_empty() && parent(p) == Some(path))
            .map(|(p, _, _)| p.rsplit(|&c| c == b'/').next().unwrap_or(p).to_vec())
            .collect();
        names.sort();
        names
    }
}

#[cfg(test)]
pub fn node(kind: NodeKind) -> Node {
    Node {
        kind,
        mode: 0o755,
        uid: 0,
        gid: 0,
        mtime: 0,
    }
}

/// One entry of a [`MemoryTree`]: path, node, content.
#[cfg(test)]
pub type Entry = (Vec<u8>, Node, Vec<u8>);

#[cfg(test)]
pub fn link_entry(path: &str, target: &str) -> Entry {
    (
        path.as_bytes().to_vec(),
        node(NodeKind::Symlink(target.as_bytes().to_vec())),
        vec![],
    )
}

#[cfg(test)]
pub fn dir_entry(path: &str) -> Entry {
    (path.as_bytes().to_vec(), node(NodeKind::Dir), vec![])
}

#[cfg(test)]
pub fn file_entry(path: &str, data: &str) -> Entry {
    (
        path.as_bytes().to_vec(),
        node(NodeKind::File),
        data.as_bytes().to_vec(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_merged_usr_symlinks_inside_the_tree() {
        let tree = MemoryTree(vec![
            (
                b"sbin".to_vec(),
                node(NodeKind::Symlink(b"usr/sbin".to_vec())),
                vec![],
            ),
            (b"usr".to_vec(), node(NodeKind::Dir), vec![]),
            (b"usr/sbin".to_vec(), node(NodeKind::Dir), vec![]),
            (
                b"usr/sbin/init".to_vec(),
                node(NodeKind::Symlink(b"/lib/systemd/systemd".to_vec())),
                vec![],
            ),
            (
                b"lib".to_vec(),
                node(NodeKind::Symlink(b"/usr/lib".to_vec())),
                vec![],
            ),
            (
                b"loop".to_vec(),
                node(NodeKind::Symlink(b"loop".to_vec())),
                vec![],
            ),
        ]);
        assert_eq!(resolve(&tree, b"sbin").as_deref(), Some(&b"usr/sbin"[..]));
        assert_eq!(
            resolve(&tree, b"sbin/init").as_deref(),
            Some(&b"usr/lib/systemd/systemd"[..])
        );
        assert_eq!(
            resolve(&tree, b"sbin/../etc").as_deref(),
            Some(&b"usr/etc"[..])
        );
        assert_eq!(resolve(&tree, b"../../etc").as_deref(), Some(&b"etc"[..]));
        assert_eq!(resolve(&tree, b"loop/x"), None);
    }
}
