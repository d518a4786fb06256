//! Writes entries into the compressed tar stream, merging packer's own edits (added or
//! replaced files, in [`Added`]) into the source's sorted stream so the result stays sorted.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::entry::{display, path_order, Kind, Meta};
use crate::error::Error;
use crate::gzip::ParallelGzip;
use crate::header::{header_bytes, padding, BLOCK};
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
    pub sockets_skipped: u64,
}

pub enum Outcome {
    Written,
    /// packer's edit took the place of the source entry.
    Replaced,
}

pub struct TarSink<'p, W: Write + Send + 'static> {
    gz: ParallelGzip<W>,
    out_path: PathBuf,
    mtime_limit: i64,
    level: u32,
    /// Sorted so that the next one to write is last.
    added: Vec<Added>,
    pub stats: Stats,
    progress: &'p mut Progress,
}

impl<'p, W: Write + Send + 'static> TarSink<'p, W> {
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

    /// Writes a source entry (after any edits that sort before it). `data` reads a file's
    /// content; `label` names it in errors.
    pub fn source_entry(
        &mut self,
        meta: Meta,
        data: Option<&mut dyn Read>,
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
            Content::None => self.write_entry(&added.meta, None, &label),
            Content::Omitted => Ok(()),
            Content::Bytes(bytes) => self.write_entry(&added.meta, Some(&mut &bytes[..]), &label),
            Content::HostFile {
                path,
                precompressed,
            } => {
                let mut file = File::open(path).map_err(|e| Error::read_path(path, e))?;
                let host_label = || path.display().to_string();
                if *precompressed {
                    self.gz.set_level(0);
                }
                let result = self.write_entry(&added.meta, Some(&mut file), &host_label);
                self.gz.set_level(self.level);
                result
            }
        }
    }

    fn write_entry(
        &mut self,
        meta: &Meta,
        data: Option<&mut dyn Read>,
        label: &dyn Fn() -> String,
    ) -> Result<(), Error> {
        let header = header_bytes(meta, self.mtime_limit);
        self.put(&header)?;
        let mut data_len = 0;
        match &meta.kind {
            Kind::File { size } => {
                let Some(reader) = data else {
                    return Err(Error::BadEntry {
                        path: label(),
                        problem: "no data for a regular file".into(),
                    });
                };
                self.copy_exact(reader, *size, label)?;
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

    /// Copies exactly `size` bytes (a file that shrank while being read is an error: its
    /// header already promised the size) and pads to the block.
    fn copy_exact(
        &mut self,
        reader: &mut dyn Read,
        size: u64,
        label: &dyn Fn() -> String,
    ) -> Result<(), Error> {
        let mut left = size;
        while left > 0 {
            // Straight into the compressor's chunk: no buffer of its own, no copy.
            let read = self
                .gz
                .read_from(reader, left)
                .map_err(|e| Error::write(&self.out_path, e))?;
            let n = match read {
                Ok(0) => {
                    return Err(Error::read(
                        label(),
                        io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            format!(
                                "the file ended {left} bytes early (did it change while packing?)"
                            ),
                        ),
                    ))
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::read(label(), e)),
            };
            left -= n as u64;
        }
        let zeros = [0u8; BLOCK];
        self.put(&zeros[..padding(size)])
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
