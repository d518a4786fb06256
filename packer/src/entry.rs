//! What one tar entry is, independent of where it came from (a directory, a tarball, or an
//! edit packer makes), and the order entries are written in.

use std::cmp::Ordering;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    File {
        size: u64,
    },
    /// A second name for a file written earlier in the same archive.
    HardLink {
        target: Vec<u8>,
    },
    Symlink {
        target: Vec<u8>,
    },
    Dir,
    Fifo,
    Char {
        major: u32,
        minor: u32,
    },
    Block {
        major: u32,
        minor: u32,
    },
}

/// Metadata of one entry. `path` is relative to the root, without a leading or trailing `/`;
/// the root directory itself is the empty path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    pub path: Vec<u8>,
    pub kind: Kind,
    /// Permission bits including setuid, setgid and sticky (`0o7777`).
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: i64,
    /// Extended attributes, sorted by name.
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Meta {
    /// A root-owned entry with the given kind and mode, stamped `mtime`.
    pub fn owned_by_root(path: &[u8], kind: Kind, mode: u32, mtime: i64) -> Self {
        Self {
            path: path.to_vec(),
            kind,
            mode,
            uid: 0,
            gid: 0,
            mtime,
            xattrs: Vec::new(),
        }
    }
}

/// Order of a depth-first walk with each directory's children sorted by the bytes of their
/// names (what `tar --sort=name` does): a directory comes before its contents, and the
/// contents of `a` all come before `a-b` even though `/` sorts after `-`.
pub fn path_order(a: &[u8], b: &[u8]) -> Ordering {
    components(a).cmp(components(b))
}

fn components(path: &[u8]) -> impl Iterator<Item = &[u8]> {
    path.split(|&c| c == b'/').filter(|c| !c.is_empty())
}

/// Turns an archive or user path (`./etc/x`, `/etc//x/`, `etc/x`) into the entry form `etc/x`.
/// `None` for paths that climb out of the root (`..`).
pub fn normalize(path: &[u8]) -> Option<Vec<u8>> {
    let mut out: Vec<u8> = Vec::with_capacity(path.len());
    for component in components(path) {
        match component {
            b"." => continue,
            b".." => return None,
            name => {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(name);
            }
        }
    }
    Some(out)
}

/// The parent of an entry path (`etc/x` -> `etc`, `etc` -> ``), `None` for the root.
pub fn parent(path: &[u8]) -> Option<&[u8]> {
    if path.is_empty() {
        return None;
    }
    Some(match path.iter().rposition(|&c| c == b'/') {
        Some(i) => &path[..i],
        None => b"",
    })
}

/// `parent/name` in entry form.
pub fn join(parent: &[u8], name: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(parent.len() + 1 + name.len());
    out.extend_from_slice(parent);
    if !parent.is_empty() {
        out.push(b'/');
    }
    out.extend_from_slice(name);
    out
}

/// Shown to people: `/etc/passwd`, with bytes that are not UTF-8 escaped.
pub fn display(path: &[u8]) -> String {
    format!("/{}", String::from_utf8_lossy(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_come_before_their_contents_and_siblings_sort_by_bytes() {
        let mut paths: Vec<&[u8]> =
            vec![b"a-b", b"a/z", b"a", b"", b"B", b"a/b/c", b"a/b", b"\xff"];
        paths.sort_by(|a, b| path_order(a, b));
        let expected: Vec<&[u8]> = vec![b"", b"B", b"a", b"a/b", b"a/b/c", b"a/z", b"a-b", b"\xff"];
        assert_eq!(paths, expected);
    }

    #[test]
    fn normalizes_archive_paths() {
        assert_eq!(
            normalize(b"./etc//passwd/").as_deref(),
            Some(&b"etc/passwd"[..])
        );
        assert_eq!(normalize(b"/").as_deref(), Some(&b""[..]));
        assert_eq!(normalize(b"./"), Some(vec![]));
        assert_eq!(normalize(b"a/../../x"), None);
        assert_eq!(parent(b"etc/passwd"), Some(&b"etc"[..]));
        assert_eq!(parent(b"etc"), Some(&b""[..]));
        assert_eq!(parent(b""), None);
        assert_eq!(join(b"", b"etc"), b"etc");
        assert_eq!(join(b"etc", b"x"), b"etc/x");
    }
}
