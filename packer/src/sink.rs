//! Writes entries into the compressed tar stream, merging packer's own edits (added or
//! replaced files, in [`Added`]) into the source's sorted stream so the result stays sorted.
//!
//! A file with several names, written out under each (a hard-link-free archive), is
//! compressed once: its data gets chunks of its own the first time, and each later name
//! repeats those compressed chunks ([`Data::Shared`], [`Data::Repeat`]). Nix stores
//! optimised by `nix-store --optimise` hold a third or more of their bytes in such names.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::entry::{display, path_order, Kind, Meta};
use crate::error::Error;
use crate::gzip::{Output, ParallelGzip};
use crate::header::{header_bytes, padding, BLOCK};
use crate::incompressible;
use crate::progress::Progress;

/// The data of an entry packer adds.
#[derive(Debug, Clone)]
pub enum Content {
    None,
    Bytes(Vec<u8>),
    /// A host file streamed in; `precompressed` data is stored, not deflated again.
    HostFile {
        path: PathBuf,
        precompressed: bool,
    },
    /// Nothing: the source's entry of that path is left out (with `replace`).
    Omitted,
}

/// An entry packer adds to the tree. `replace`: it wins over a source entry of the same path;
/// otherwise it is written only where the source has none (default directories, masks).
#[derive(Debug, Clone)]
pub struct Added {
    pub meta: Meta,
    pub content: Content,
    pub replace: bool,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Stats {
    /// Entries written (each name once).
    pub entries: u64,
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub specials: u64,
    /// Names of multiply linked files written with their data again.
    pub hardlinks_dereferenced: u64,
    /// Hard-link entries written (the payload only).
    pub hardlinks_kept: u64,
    pub data_bytes: u64,
    /// Bytes of the files behind those second names (saved when kept, repeated otherwise).
    pub linked_bytes: u64,
    /// Bytes of those names whose compressed data was repeated, not compressed again.
    pub repeated_bytes: u64,
    /// Bytes of file data stored as incompressible (see [`crate::incompressible`]).
    pub stored_bytes: u64,
    pub sockets_skipped: u64,
}

/// Files below this size are written with the rest even when shared. Each name of a shared
/// file cuts the stream twice, and a cut costs about 450 bytes (a fresh block header, and the
/// data on both sides compressed without the other's context). On the 1 GiB test store
/// (scripts/make-nix-store), against no sharing: from 16 KiB up 534 MiB of 623 MiB of second
/// names are repeated for +0.79 % of output (over gzip -6's size), from 64 KiB 397 MiB for
/// +0.29 %, from 128 KiB 327 MiB for +0.15 %, from 256 KiB 240 MiB for +0.04 %.
pub const MIN_SHARED: u64 = 128 << 10;

/// What identifies one file's data among its names: (device, inode) in a directory, the
/// data's first entry in a tarball.
pub type DataKey = (u64, u64);

/// A source entry's data.
pub enum Data<'r> {
    /// Not a regular file, or one whose data is not to be read (its entry is replaced).
    None,
    Read(&'r mut dyn Read),
    /// The data of a file with other names that will be written out too.
    Shared(DataKey, &'r mut dyn Read),
    /// Another name of data written before as [`Data::Shared`] ([`TarSink::source_file`]).
    Repeat(DataKey),
}

/// The chunks a shared file's data (with its padding) was compressed into.
struct SharedChunks {
    chunks: Range<usize>,
    size: u64,
}

pub enum Outcome {
    Written,
    /// packer's edit took the place of the source entry.
    Replaced,
}

pub struct TarSink<'p, W: Output> {
    gz: ParallelGzip<W>,
    out_path: PathBuf,
    mtime_limit: i64,
    level: u32,
    /// Sorted so that the next one to write is last.
    added: Vec<Added>,
    shared: HashMap<DataKey, SharedChunks>,
    /// A large file's piece being judged ([`TarSink::copy_in_pieces`]).
    piece: Vec<u8>,
    pub stats: Stats,
    progress: &'p mut Progress,
}

impl<'p, W: Output> TarSink<'p, W> {
    pub fn new(
        gz: ParallelGzip<W>,
        out_path: &Path,
        mtime_limit: i64,
        level: u32,
        mut added: Vec<Added>,
        progress: &'p mut Progress,
    ) -> Self {
        added.sort_by(|a, b| path_order(&b.meta.path, &a.meta.path));
        added.dedup_by(|a, b| a.meta.path == b.meta.path);
        Self {
            gz,
            out_path: out_path.to_owned(),
            mtime_limit,
            level,
            added,
            shared: HashMap::new(),
            piece: Vec::new(),
            stats: Stats::default(),
            progress,
        }
    }

    /// Whether a source entry at `path` will be replaced by an edit (its data need not be read).
    pub fn replaces(&self, path: &[u8]) -> bool {
        self.added
            .iter()
            .rev()
            .take_while(|a| path_order(&a.meta.path, path).is_le())
            .any(|a| a.replace && a.meta.path == path)
    }

    /// Writes a source regular file (after any edits that sort before it). `shared`: the key
    /// of data other names write out too. `open` gives the data's reader; it is called only
    /// when the data is read: not for an entry an edit replaces, nor for a name that repeats
    /// the chunks of its data written before.
    pub fn source_file<R: Read>(
        &mut self,
        meta: Meta,
        shared: Option<DataKey>,
        open: impl FnOnce() -> Result<R, Error>,
        label: &dyn Fn() -> String,
    ) -> Result<Outcome, Error> {
        let size = match meta.kind {
            Kind::File { size } => size,
            _ => 0,
        };
        if self.replaces(&meta.path) {
            return self.source_entry(meta, Data::None, label);
        }
        let repeatable = |key: &DataKey| self.shared.get(key).is_some_and(|s| s.size == size);
        if let Some(key) = shared.filter(repeatable) {
            return self.source_entry(meta, Data::Repeat(key), label);
        }
        let mut reader = open()?;
        let data = match shared {
            Some(key) => Data::Shared(key, &mut reader),
            None => Data::Read(&mut reader),
        };
        self.source_entry(meta, data, label)
    }

    /// Writes a source entry (after any edits that sort before it). `data` gives a file's
    /// content; `label` names it in errors.
    pub fn source_entry(
        &mut self,
        meta: Meta,
        data: Data,
        label: &dyn Fn() -> String,
    ) -> Result<Outcome, Error> {
        while let Some(next) = self.added.last() {
            match path_order(&next.meta.path, &meta.path) {
                std::cmp::Ordering::Less => self.write_added()?,
                std::cmp::Ordering::Equal if next.replace => {
                    self.write_added()?;
                    return Ok(Outcome::Replaced);
                }
                std::cmp::Ordering::Equal => {
                    self.added.pop();
                    break;
                }
                std::cmp::Ordering::Greater => break,
            }
        }
        self.write_entry(&meta, data, label)?;
        Ok(Outcome::Written)
    }

    fn write_added(&mut self) -> Result<(), Error> {
        let Some(added) = self.added.pop() else {
            return Ok(());
        };
        let label = || display(&added.meta.path);
        match &added.content {
            Content::None => self.write_entry(&added.meta, Data::None, &label),
            Content::Omitted => Ok(()),
            Content::Bytes(bytes) => {
                self.write_entry(&added.meta, Data::Read(&mut &bytes[..]), &label)
            }
            Content::HostFile {
                path,
                precompressed,
            } => {
                let mut file = File::open(path).map_err(|e| Error::read_path(path, e))?;
                let host_label = || path.display().to_string();
                if *precompressed {
                    self.gz.set_level(0);
                }
                let result = self.write_entry(&added.meta, Data::Read(&mut file), &host_label);
                self.gz.set_level(self.level);
                result
            }
        }
    }

    fn write_entry(
        &mut self,
        meta: &Meta,
        data: Data,
        label: &dyn Fn() -> String,
    ) -> Result<(), Error> {
        let header = header_bytes(meta, self.mtime_limit);
        self.put(&header)?;
        let mut data_len = 0;
        match &meta.kind {
            Kind::File { size } => {
                self.file_data(data, *size, label)?;
                data_len = *size;
                self.stats.files += 1;
            }
            Kind::Dir => self.stats.dirs += 1,
            Kind::Symlink { .. } => self.stats.symlinks += 1,
            Kind::HardLink { .. } => self.stats.hardlinks_kept += 1,
            Kind::Fifo | Kind::Char { .. } | Kind::Block { .. } => self.stats.specials += 1,
        }
        self.stats.entries += 1;
        self.stats.data_bytes += data_len;
        self.progress.add(data_len, 1);
        Ok(())
    }

    /// A regular file's data and padding, after its header.
    fn file_data(
        &mut self,
        data: Data,
        size: u64,
        label: &dyn Fn() -> String,
    ) -> Result<(), Error> {
        match data {
            Data::Read(reader) => self.copy_exact(reader, size, label),
            Data::Shared(key, reader) if size >= MIN_SHARED => {
                // Chunks of its own, so that they stand for this data alone.
                self.cut()?;
                let first = self.gz.next_chunk();
                self.copy_exact(reader, size, label)?;
                self.cut()?;
                let chunks = first..self.gz.next_chunk();
                self.shared.insert(key, SharedChunks { chunks, size });
                Ok(())
            }
            Data::Shared(_, reader) => self.copy_exact(reader, size, label),
            Data::Repeat(key) => {
                let Some(shared) = self.shared.get(&key).filter(|s| s.size == size) else {
                    return Err(Error::BadEntry {
                        path: label(),
                        problem: "its data was to repeat a file not written before".into(),
                    });
                };
                let chunks = shared.chunks.clone();
                self.gz
                    .repeat(chunks)
                    .map_err(|e| Error::write(&self.out_path, e))?;
                self.stats.repeated_bytes += size;
                Ok(())
            }
            Data::None => Err(Error::BadEntry {
                path: label(),
                problem: "no data for a regular file".into(),
            }),
        }
    }

    fn cut(&mut self) -> Result<(), Error> {
        self.gz.cut().map_err(|e| Error::write(&self.out_path, e))
    }

    /// Copies exactly `size` bytes (a file that shrank while being read is an error: its
    /// header already promised the size) and pads to the block. A file of
    /// [`incompressible::MIN_FILE`] or more goes in [`incompressible::PIECE`]s, each judged
    /// by a sample: runs of incompressible pieces get chunks of their own, stored (level 0),
    /// not deflated. The decision rests on the data alone, so the output stays the same for
    /// any thread count and for a directory and its tarball.
    fn copy_exact(
        &mut self,
        reader: &mut dyn Read,
        size: u64,
        label: &dyn Fn() -> String,
    ) -> Result<(), Error> {
        let level = self.gz.level();
        if size < incompressible::MIN_FILE || level == 0 {
            self.copy_straight(reader, size, label)?;
        } else {
            let mut piece = std::mem::take(&mut self.piece);
            piece.resize(incompressible::PIECE, 0);
            let result = self.copy_in_pieces(reader, size, level, &mut piece, label);
            self.piece = piece;
            result?;
        }
        let zeros = [0u8; BLOCK];
        self.put(&zeros[..padding(size)])
    }

    /// [`TarSink::copy_exact`] of a large file, through `piece` (a reused buffer).
    fn copy_in_pieces(
        &mut self,
        reader: &mut dyn Read,
        size: u64,
        level: u32,
        piece: &mut [u8],
        label: &dyn Fn() -> String,
    ) -> Result<(), Error> {
        let mut storing = false;
        let mut done = 0;
        while done < size {
            let len = (piece.len() as u64).min(size - done) as usize;
            read_piece(reader, &mut piece[..len], size - done, label)?;
            let store = incompressible::looks_incompressible(&piece[..len]).unwrap_or(storing);
            if store != storing {
                // The chunk so far goes at the level it was filled for.
                self.cut()?;
                self.gz.set_level(if store { 0 } else { level });
                storing = store;
            }
            self.put(&piece[..len])?;
            if store {
                self.stats.stored_bytes += len as u64;
            }
            done += len as u64;
        }
        if storing {
            self.cut()?;
            self.gz.set_level(level);
        }
        Ok(())
    }

    /// Reads exactly `n` bytes straight into the compressor's chunk (no buffer of its own, no
    /// copy).
    fn copy_straight(
        &mut self,
        reader: &mut dyn Read,
        n: u64,
        label: &dyn Fn() -> String,
    ) -> Result<(), Error> {
        let mut copied = 0;
        while copied < n {
            let read = self
                .gz
                .read_from(reader, n - copied)
                .map_err(|e| Error::write(&self.out_path, e))?;
            match read {
                Ok(0) => return Err(ended_early(label, n - copied)),
                Ok(read) => copied += read as u64,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::read(label(), e)),
            }
        }
        Ok(())
    }

    fn put(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.gz
            .write_all(bytes)
            .map_err(|e| Error::write(&self.out_path, e))
    }

    /// Writes the remaining edits and the end-of-archive blocks; returns the gzip stream.
    pub fn finish(mut self) -> Result<(ParallelGzip<W>, Stats), Error> {
        while !self.added.is_empty() {
            self.write_added()?;
        }
        self.put(&[0u8; 2 * BLOCK])?;
        self.progress.finish();
        Ok((self.gz, self.stats))
    }
}

/// Fills `piece` from `reader`; `left` is what the file still owes, for the message when
/// it ends early.
fn read_piece(
    reader: &mut dyn Read,
    piece: &mut [u8],
    left: u64,
    label: &dyn Fn() -> String,
) -> Result<(), Error> {
    let mut filled = 0;
    while filled < piece.len() {
        match reader.read(&mut piece[filled..]) {
            Ok(0) => return Err(ended_early(label, left - filled as u64)),
            Ok(read) => filled += read,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::read(label(), e)),
        }
    }
    Ok(())
}

/// A file that ended before the size its header gave.
fn ended_early(label: &dyn Fn() -> String, left: u64) -> Error {
    Error::read(
        label(),
        io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("the file ended {left} bytes early (did it change while packing?)"),
        ),
    )
}
