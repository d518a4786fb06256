//! A source directory: walked depth first, each directory's children sorted by the bytes of
//! their names, symlinks never followed, one directory listing held at a time per level.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::entry::{display, join, Kind, Meta};
use crate::error::Error;
use crate::gzip::Output;
use crate::reserved::{reserved_name_problem, RESERVED_PREFIX};
use crate::sink::{Data, Outcome, TarSink};
use crate::temp;
use crate::tree::{Lookup, Node, NodeKind};
use crate::xattr::XattrFilter;

/// What to do with a file's second and later names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HardLinks {
    /// Write the data again under every name (anything WSL imports).
    Dereference,
    /// Write hard-link entries (the payload inside the installer).
    Keep,
}

pub struct DirSource {
    root: PathBuf,
}

impl DirSource {
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_owned(),
        }
    }

    fn host(&self, path: &[u8]) -> PathBuf {
        if path.is_empty() {
            self.root.clone()
        } else {
            self.root.join(OsStr::from_bytes(path))
        }
    }

    /// Whether the directory at `path` has any entry: false when it is missing or no directory,
    /// true when it cannot be listed (refusing is the safe answer).
    pub fn has_children(&self, path: &[u8]) -> bool {
        let host = self.host(path);
        let is_dir = fs::symlink_metadata(&host).is_ok_and(|m| m.is_dir());
        is_dir && fs::read_dir(&host).map_or(true, |mut entries| entries.next().is_some())
    }

    /// Total bytes of regular files, for the progress bar's ETA (a cheap metadata-only walk).
    pub fn data_size(&self) -> u64 {
        fn walk(dir: &Path) -> u64 {
            let Ok(entries) = fs::read_dir(dir) else {
                return 0;
            };
            entries
                .flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => walk(&e.path()),
                    Ok(m) if m.is_file() => m.len(),
                    _ => 0,
                })
                .sum()
        }
        walk(&self.root)
    }

    /// Streams the whole tree into `sink`.
    pub fn pack<W: Output>(
        &self,
        sink: &mut TarSink<'_, W>,
        links: HardLinks,
        xattrs: &mut XattrFilter,
    ) -> Result<(), Error> {
        let mut walk = Walk {
            source: self,
            seen: HashMap::new(),
            links,
            xattrs,
        };
        let root_meta =
            fs::symlink_metadata(&self.root).map_err(|e| Error::read_path(&self.root, e))?;
        if !root_meta.is_dir() {
            return Err(Error::Input {
                path: self.root.clone(),
                problem: "not a directory".into(),
            });
        }
        walk.entry(sink, Vec::new(), &root_meta)?;
        walk.dir(sink, Vec::new())
    }
}

struct Walk<'a, 'x> {
    source: &'a DirSource,
    /// (device, inode) of files with several names -> the name written first.
    seen: HashMap<(u64, u64), Vec<u8>>,
    links: HardLinks,
    xattrs: &'x mut XattrFilter,
}

impl Walk<'_, '_> {
    fn dir<W: Output>(&mut self, sink: &mut TarSink<'_, W>, rel: Vec<u8>) -> Result<(), Error> {
        let host = self.source.host(&rel);
        let mut names: Vec<Vec<u8>> = fs::read_dir(&host)
            .and_then(|entries| {
                entries
                    .map(|e| e.map(|e| e.file_name().as_bytes().to_vec()))
                    .collect()
            })
            .map_err(|e| Error::read_path(&host, e))?;
        names.sort_unstable();
        for name in names {
            let path = join(&rel, &name);
            let host = self.source.host(&path);
            let metadata = fs::symlink_metadata(&host).map_err(|e| Error::read_path(&host, e))?;
            if metadata.is_file() && temp::is_ours(metadata.dev(), metadata.ino()) {
                // The output folder is inside the tree through a mount (the path check of
                // `pack` cannot see that): never pack packer's own file.
                eprintln!(
                    "packer: warning: skipping {}: it is packer's own temporary file (the output folder is inside the source through a mount)",
                    host.display()
                );
                continue;
            }
            if name.starts_with(RESERVED_PREFIX) {
                return Err(Error::BadEntry {
                    path: host.display().to_string(),
                    problem: reserved_name_problem(&name),
                });
            }
            self.entry(sink, path.clone(), &metadata)?;
            if metadata.is_dir() {
                self.dir(sink, path)?;
            }
        }
        Ok(())
    }

    fn entry<W: Output>(
        &mut self,
        sink: &mut TarSink<'_, W>,
        path: Vec<u8>,
        metadata: &fs::Metadata,
    ) -> Result<(), Error> {
        let host = self.source.host(&path);
        let file_type = metadata.file_type();
        let kind = if file_type.is_file() {
            Kind::File {
                size: metadata.len(),
            }
        } else if file_type.is_dir() {
            Kind::Dir
        } else if file_type.is_symlink() {
            let target = fs::read_link(&host).map_err(|e| Error::read_path(&host, e))?;
            Kind::Symlink {
                target: target.as_os_str().as_bytes().to_vec(),
            }
        } else if file_type.is_fifo() {
            Kind::Fifo
        } else if file_type.is_char_device() || file_type.is_block_device() {
            let (major, minor) = (
                rustix::fs::major(metadata.rdev()),
                rustix::fs::minor(metadata.rdev()),
            );
            if file_type.is_char_device() {
                Kind::Char { major, minor }
            } else {
                Kind::Block { major, minor }
            }
        } else {
            eprintln!(
                "packer: warning: skipping socket {} (sockets cannot be archived)",
                host.display()
            );
            sink.stats.sockets_skipped += 1;
            return Ok(());
        };
        let mut meta = Meta {
            path,
            kind,
            mode: metadata.mode() & 0o7777,
            uid: u64::from(metadata.uid()),
            gid: u64::from(metadata.gid()),
            mtime: metadata.mtime(),
            xattrs: crate::xattr::read(&host).map_err(|e| Error::read_path(&host, e))?,
        };
        self.xattrs.filter(&mut meta.xattrs, &display(&meta.path));
        let label = || host.display().to_string();

        let Kind::File { .. } = meta.kind else {
            sink.source_entry(meta, Data::None, &label)?;
            return Ok(());
        };
        let key = (metadata.dev(), metadata.ino());
        let linked = metadata.nlink() > 1;
        if linked {
            if let Some(first) = self.seen.get(&key) {
                match self.links {
                    HardLinks::Keep => {
                        sink.stats.linked_bytes += metadata.len();
                        meta.kind = Kind::HardLink {
                            target: first.clone(),
                        };
                        sink.source_entry(meta, Data::None, &label)?;
                        return Ok(());
                    }
                    HardLinks::Dereference => {
                        sink.stats.hardlinks_dereferenced += 1;
                        sink.stats.linked_bytes += metadata.len();
                    }
                }
            }
        }
        let path = meta.path.clone();
        // Written out under every name, a file's data is compressed once (crate::sink).
        let shared = (linked && self.links == HardLinks::Dereference).then_some(key);
        let outcome = sink.source_file(meta, shared, || open_no_follow(&host), &label)?;
        if linked && matches!(outcome, Outcome::Written) {
            self.seen.entry(key).or_insert(path);
        }
        Ok(())
    }
}

fn open_no_follow(host: &Path) -> Result<File, Error> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NOCTTY)
        .open(host)
        .map_err(|e| Error::read_path(host, e))
}

impl Lookup for DirSource {
    fn node(&self, path: &[u8]) -> Option<Node> {
        let host = self.host(path);
        let m = fs::symlink_metadata(&host).ok()?;
        let kind = if m.is_file() {
            NodeKind::File
        } else if m.is_dir() {
            NodeKind::Dir
        } else if m.file_type().is_symlink() {
            NodeKind::Symlink(fs::read_link(&host).ok()?.as_os_str().as_bytes().to_vec())
        } else {
            NodeKind::Other
        };
        Some(Node {
            kind,
            mode: m.mode() & 0o7777,
            uid: u64::from(m.uid()),
            gid: u64::from(m.gid()),
            mtime: m.mtime(),
        })
    }

    fn read_small(&self, path: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        match self.node(path) {
            Some(Node {
                kind: NodeKind::File,
                ..
            }) => {}
            _ => return Ok(None),
        }
        let host = self.host(path);
        let mut data = Vec::new();
        open_no_follow(&host)?
            .take(1 << 20)
            .read_to_end(&mut data)
            .map_err(|e| Error::read_path(&host, e))?;
        Ok(Some(data))
    }

    fn children(&self, path: &[u8]) -> Vec<Vec<u8>> {
        if self.node(path).map(|n| n.kind) != Some(NodeKind::Dir) {
            return Vec::new();
        }
        let mut names: Vec<Vec<u8>> = fs::read_dir(self.host(path))
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| e.file_name().as_bytes().to_vec())
                    .collect()
            })
            .unwrap_or_default();
        names.sort_unstable();
        names
    }
}
