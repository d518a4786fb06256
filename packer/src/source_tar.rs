//! A source tarball (plain, gzip or xz, told apart by their first bytes). It is indexed once
//! (names, metadata and where each file's data sits), checked as a whole (end-of-archive
//! blocks present, nothing under a symlink or a file, no reserved names), then written in
//! sorted order reading the data by offset, so hard links resolve to their data whatever
//! order the names come in. A compressed source is first decompressed into a temporary file
//! next to the output (removed afterwards).

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::entry::{display, normalize, parent, path_order, Kind, Meta};
use crate::error::Error;
use crate::gzip::Output;
use crate::header::BLOCK;
use crate::reserved::{reserved_component, reserved_name_problem};
use crate::sink::{Data, Outcome, TarSink};
use crate::source_dir::HardLinks;
use crate::tar_head::{self, Start};
use crate::temp::TempFile;
use crate::tree::{Lookup, Node, NodeKind};
use crate::xattr::XattrFilter;

struct Indexed {
    meta: Meta,
    /// Offset and length of the data in the (uncompressed) tar file.
    data: Option<(u64, u64)>,
    /// Index (before sorting) of the first entry carrying this data, for files with several
    /// names; `None` for files with one name.
    group: Option<usize>,
}

pub struct TarSource {
    /// The tarball as given, for messages.
    source: PathBuf,
    tar: File,
    entries: Vec<Indexed>,
    by_path: HashMap<Vec<u8>, usize>,
    pub data_size: u64,
    _inflated: Option<TempFile>,
}

impl TarSource {
    /// Reads the index. `output` says where a temporary inflated copy may go.
    pub fn open(source: &Path, output: &Path, xattrs: &mut XattrFilter) -> Result<Self, Error> {
        let mut file = File::open(source).map_err(|e| Error::read_path(source, e))?;
        let mut magic = [0u8; 6];
        let got = read_up_to(&mut file, &mut magic).map_err(|e| Error::read_path(source, e))?;
        file.seek(SeekFrom::Start(0))
            .map_err(|e| Error::read_path(source, e))?;
        if got == 0 {
            return Err(Error::bad_archive(source, "the file is empty"));
        }
        let (tar, inflated) = match compression(&magic[..got]) {
            Some(kind @ ("gzip" | "xz")) => {
                let (temp, mut out) = TempFile::create_next_to(output, "source")?;
                let input = BufReader::with_capacity(1 << 20, file);
                // Several concatenated members or streams are one archive, as gzip -dc and
                // xz -dc read them.
                let mut decoder: Box<dyn Read> = if kind == "gzip" {
                    Box::new(flate2::bufread::MultiGzDecoder::new(input))
                } else {
                    Box::new(liblzma::bufread::XzDecoder::new_multi_decoder(input))
                };
                copy_inflated(&mut decoder, &mut out, source, temp.path(), kind)?;
                out.seek(SeekFrom::Start(0))
                    .map_err(|e| Error::write(temp.path(), e))?;
                (out, Some(temp))
            }
            Some(other) => {
                return Err(Error::bad_archive(
                    source,
                    format!("compressed with {other}; packer reads plain tar, tar.gz or tar.xz"),
                ))
            }
            None => (file, None),
        };
        let mut this = Self {
            source: source.to_owned(),
            tar,
            entries: Vec::new(),
            by_path: HashMap::new(),
            data_size: 0,
            _inflated: inflated,
        };
        this.index(xattrs)?;
        Ok(this)
    }

    fn index(&mut self, xattrs: &mut XattrFilter) -> Result<(), Error> {
        let source = self.source.clone();
        let bad = |problem: &dyn std::fmt::Display| Error::bad_archive(&source, problem);
        let length = self
            .tar
            .metadata()
            .map_err(|e| Error::read_path(&source, e))?
            .len();
        let base = self.skip_volume_label()?;
        self.tar
            .seek(SeekFrom::Start(base))
            .map_err(|e| Error::read_path(&source, e))?;
        let mut raw: Vec<Indexed> = Vec::new();
        let mut latest: HashMap<Vec<u8>, usize> = HashMap::new();
        // Where the last entry (with its data) ends, relative to `base`.
        let mut end = 0u64;
        let mut last_shown = String::from("(none)");
        {
            let mut archive = tar::Archive::new(Skipped {
                inner: &mut self.tar,
                base,
            });
            let entries = archive.entries_with_seek().map_err(|e| bad(&e))?;
            for entry in entries {
                let mut entry = entry
                    .map_err(|e| bad(&format!("{e} (in the header after entry {last_shown})")))?;
                end = entry
                    .raw_file_position()
                    .saturating_add(entry.size().div_ceil(BLOCK as u64) * BLOCK as u64);
                let entry_type = entry.header().entry_type();
                if matches!(entry_type, tar::EntryType::XGlobalHeader) {
                    continue;
                }
                let name = entry.path_bytes().into_owned();
                if name.is_empty() {
                    return Err(bad(&format!(
                        "an entry has an empty name (the one after entry {last_shown})"
                    )));
                }
                let Some(path) = normalize(&name) else {
                    return Err(bad(&format!(
                        "entry {} climbs out of the root",
                        String::from_utf8_lossy(&name)
                    )));
                };
                let shown = display(&path);
                last_shown = shown.clone();
                if let Some(reserved) = reserved_component(&path) {
                    return Err(bad(&format!(
                        "entry {shown}: {}",
                        reserved_name_problem(reserved)
                    )));
                }
                let header = entry.header().clone();
                let field = |r: io::Result<u64>| r.map_err(|e| bad(&format!("entry {shown}: {e}")));
                let mut meta = Meta {
                    path: path.clone(),
                    kind: Kind::Dir,
                    mode: field(header.mode().map(u64::from))? as u32 & 0o7777,
                    uid: field(header.uid())?,
                    gid: field(header.gid())?,
                    mtime: field(header.mtime())? as i64,
                    xattrs: Vec::new(),
                };
                if let Some(pax) = entry.pax_extensions().map_err(|e| bad(&e))? {
                    for ext in pax {
                        let ext = ext.map_err(|e| bad(&e))?;
                        let key = ext.key_bytes();
                        let number = || {
                            std::str::from_utf8(ext.value_bytes())
                                .ok()
                                .and_then(|v| v.split('.').next()?.parse::<i64>().ok())
                        };
                        if let Some(attr) = key.strip_prefix(b"SCHILY.xattr.") {
                            meta.xattrs
                                .push((attr.to_vec(), ext.value_bytes().to_vec()));
                        } else if key == b"uid" {
                            meta.uid = number().unwrap_or(0) as u64;
                        } else if key == b"gid" {
                            meta.gid = number().unwrap_or(0) as u64;
                        } else if key == b"mtime" {
                            meta.mtime = number().unwrap_or(0);
                        } else if key.starts_with(b"GNU.sparse") {
                            return Err(bad(&format!(
                                "entry {shown} is sparse; packer does not read sparse entries"
                            )));
                        }
                    }
                }
                meta.xattrs.sort();
                xattrs.filter(&mut meta.xattrs, &shown);
                let link = || {
                    entry
                        .link_name_bytes()
                        .map(|l| l.into_owned())
                        .unwrap_or_default()
                };
                let mut data = None;
                let mut group = None;
                meta.kind = match entry_type {
                    tar::EntryType::Regular | tar::EntryType::Continuous => {
                        let (offset, size) = (base + entry.raw_file_position(), entry.size());
                        if offset.checked_add(size).is_none_or(|end| end > length) {
                            return Err(bad(&format!(
                                "the archive is truncated (in the data of {shown})"
                            )));
                        }
                        data = Some((offset, size));
                        Kind::File { size }
                    }
                    tar::EntryType::Link => {
                        let Some(target) = normalize(&link()) else {
                            return Err(bad(&format!(
                                "hard link {shown} points to {}, which climbs out of the root",
                                String::from_utf8_lossy(&link())
                            )));
                        };
                        let Some(&at) = latest.get(&target) else {
                            return Err(bad(&format!(
                                "hard link {shown} points to {}, which is not earlier in the archive",
                                display(&target)
                            )));
                        };
                        let first = raw[at].group.unwrap_or(at);
                        let Kind::File { size } = raw[first].meta.kind else {
                            return Err(bad(&format!(
                                "hard link {shown} points to {}, which is not a file",
                                display(&target)
                            )));
                        };
                        raw[first].group = Some(first);
                        group = Some(first);
                        data = raw[first].data;
                        let target_meta = raw[first].meta.clone();
                        meta = Meta {
                            path: path.clone(),
                            ..target_meta
                        };
                        Kind::File { size }
                    }
                    tar::EntryType::Symlink => {
                        let target = link();
                        if target.is_empty() {
                            return Err(bad(&format!(
                                "symlink {shown} has an empty target (no system can make one; bsdtar refuses it)"
                            )));
                        }
                        Kind::Symlink { target }
                    }
                    tar::EntryType::Directory => Kind::Dir,
                    // A GNU incremental archive's directory (`tar --listed-incremental`): its
                    // data is the list of names it held; bsdtar reads it as a directory too.
                    other if other.as_byte() == b'D' => Kind::Dir,
                    tar::EntryType::Fifo => Kind::Fifo,
                    tar::EntryType::Char | tar::EntryType::Block => {
                        let major =
                            field(header.device_major().map(|d| u64::from(d.unwrap_or(0))))? as u32;
                        let minor =
                            field(header.device_minor().map(|d| u64::from(d.unwrap_or(0))))? as u32;
                        if entry_type == tar::EntryType::Char {
                            Kind::Char { major, minor }
                        } else {
                            Kind::Block { major, minor }
                        }
                    }
                    tar::EntryType::GNUSparse => {
                        return Err(bad(&format!(
                            "entry {shown} is sparse; packer does not read sparse entries"
                        )))
                    }
                    other => {
                        eprintln!(
                            "packer: warning: skipping {shown}: tar entry type {:?} is not a file",
                            other.as_byte() as char
                        );
                        continue;
                    }
                };
                latest.insert(path, raw.len());
                raw.push(Indexed { meta, data, group });
            }
        }
        if raw.is_empty() {
            return Err(bad(&"it holds no entries"));
        }
        self.require_end_marker(base + end, &last_shown)?;
        // A later entry of the same name replaces an earlier one, as when extracting.
        let keep: Vec<bool> = raw
            .iter()
            .enumerate()
            .map(|(i, e)| latest.get(&e.meta.path) == Some(&i))
            .collect();
        let mut kept: Vec<Indexed> = raw
            .into_iter()
            .zip(keep)
            .filter(|(_, k)| *k)
            .map(|(e, _)| e)
            .collect();
        kept.sort_by(|a, b| path_order(&a.meta.path, &b.meta.path));
        refuse_misplaced(&kept).map_err(|p| bad(&p))?;
        self.data_size = kept
            .iter()
            .filter_map(|e| e.data.map(|(_, size)| size))
            .sum();
        self.by_path = kept
            .iter()
            .enumerate()
            .map(|(i, e)| (e.meta.path.clone(), i))
            .collect();
        self.entries = kept;
        Ok(())
    }

    /// The offset the entries start at: 512 past a GNU volume label (`tar -V`), which the
    /// tar crate cannot parse and bsdtar skips; 0 otherwise. Random data is refused here with
    /// a plain message.
    fn skip_volume_label(&mut self) -> Result<u64, Error> {
        let mut block = [0u8; BLOCK];
        self.tar
            .seek(SeekFrom::Start(0))
            .and_then(|_| read_up_to(&mut self.tar, &mut block))
            .and_then(|got| {
                let start = tar_head::inspect(&block[..got]);
                self.tar.seek(SeekFrom::Start(0)).map(|_| start)
            })
            .map_err(|e| Error::read_path(&self.source, e))?
            .map_err(|problem| Error::bad_archive(&self.source, problem))
            .and_then(|start| match start {
                Start::Empty => Err(Error::bad_archive(&self.source, "it holds no entries")),
                Start::VolumeLabel(label) => {
                    eprintln!(
                        "packer: warning: {}: skipping the GNU volume label {label:?} (bsdtar skips it too)",
                        self.source.display()
                    );
                    Ok(BLOCK as u64)
                }
                Start::Header => Ok(0),
            })
    }

    /// A tar ends with zero blocks; one cut at an entry boundary reads as complete to the tar
    /// crate, which would silently drop everything after the cut.
    fn require_end_marker(&mut self, at: u64, last: &str) -> Result<(), Error> {
        let mut block = [0u8; BLOCK];
        let got = self
            .tar
            .seek(SeekFrom::Start(at))
            .and_then(|_| read_up_to(&mut self.tar, &mut block))
            .map_err(|e| Error::read_path(&self.source, e))?;
        if got < BLOCK || block.iter().any(|&b| b != 0) {
            return Err(Error::bad_archive(
                &self.source,
                format!(
                    "the archive is truncated: it ends after entry {last} without the end-of-archive blocks every tar writes"
                ),
            ));
        }
        Ok(())
    }

    /// Whether any entry lies below `path`.
    pub fn has_children(&self, path: &[u8]) -> bool {
        self.entries.iter().any(|e| {
            e.meta.path.len() > path.len()
                && e.meta.path.starts_with(path)
                && e.meta.path[path.len()] == b'/'
        })
    }

    pub fn pack<W: Output>(
        &mut self,
        sink: &mut TarSink<'_, W>,
        links: HardLinks,
    ) -> Result<(), Error> {
        // Data group -> the name its data was first written under.
        let mut written: HashMap<usize, Vec<u8>> = HashMap::new();
        let source = self.source.clone();
        for i in 0..self.entries.len() {
            let entry = &self.entries[i];
            let mut meta = entry.meta.clone();
            let shown = display(&meta.path);
            let label = || format!("{} (entry {shown})", source.display());
            if let (Some(group), Some(first)) =
                (entry.group, entry.group.and_then(|g| written.get(&g)))
            {
                match links {
                    HardLinks::Keep => {
                        sink.stats.linked_bytes += entry.data.map_or(0, |(_, size)| size);
                        meta.kind = Kind::HardLink {
                            target: first.clone(),
                        };
                        sink.source_entry(meta, Data::None, &label)?;
                        continue;
                    }
                    HardLinks::Dereference => {
                        let _ = group;
                        sink.stats.linked_bytes += entry.data.map_or(0, |(_, size)| size);
                        sink.stats.hardlinks_dereferenced += 1;
                    }
                }
            }
            let (group, data) = (entry.group, entry.data);
            let path = meta.path.clone();
            // Written out under every name, a file's data is compressed once (crate::sink).
            let shared = group
                .filter(|_| links == HardLinks::Dereference)
                .map(|g| (0, g as u64));
            let tar = &mut self.tar;
            let outcome = match data {
                Some((offset, size)) => {
                    let open = move || {
                        tar.seek(SeekFrom::Start(offset))
                            .map_err(|e| Error::read(label(), e))?;
                        // The reference itself is the reader (moved in: called once).
                        Ok(BufReader::with_capacity(256 * 1024, Read::take(tar, size)))
                    };
                    sink.source_file(meta, shared, open, &label)?
                }
                None => sink.source_entry(meta, Data::None, &label)?,
            };
            if let (Some(group), Outcome::Written) = (group, outcome) {
                written.entry(group).or_insert(path);
            }
        }
        Ok(())
    }
}

impl Lookup for TarSource {
    fn node(&self, path: &[u8]) -> Option<Node> {
        let entry = &self.entries[*self.by_path.get(path)?];
        let kind = match &entry.meta.kind {
            Kind::File { .. } => NodeKind::File,
            Kind::Dir => NodeKind::Dir,
            Kind::Symlink { target } => NodeKind::Symlink(target.clone()),
            _ => NodeKind::Other,
        };
        let m = &entry.meta;
        Some(Node {
            kind,
            mode: m.mode,
            uid: m.uid,
            gid: m.gid,
            mtime: m.mtime,
        })
    }

    fn read_small(&self, path: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        let Some(&i) = self.by_path.get(path) else {
            return Ok(None);
        };
        let Some((offset, size)) = self.entries[i].data else {
            return Ok(None);
        };
        let mut data = vec![0u8; size.min(1 << 20) as usize];
        let label = || format!("{} (entry {})", self.source.display(), display(path));
        let mut tar = &self.tar;
        tar.seek(SeekFrom::Start(offset))
            .map_err(|e| Error::read(label(), e))?;
        tar.read_exact(&mut data)
            .map_err(|e| Error::read(label(), e))?;
        Ok(Some(data))
    }

    fn children(&self, path: &[u8]) -> Vec<Vec<u8>> {
        let mut names: Vec<Vec<u8>> = self
            .by_path
            .keys()
            .filter(|p| !p.is_empty() && crate::entry::parent(p) == Some(path))
            .map(|p| p.rsplit(|&c| c == b'/').next().unwrap_or(p).to_vec())
            .collect();
        names.sort_unstable();
        names
    }
}

/// The tar file from `base` on, as the tar crate sees it: its positions (which it takes from
/// `seek`'s answers) count from `base`.
struct Skipped<'a> {
    inner: &'a mut File,
    base: u64,
}

impl Read for Skipped<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}

impl Seek for Skipped<'_> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let pos = match pos {
            SeekFrom::Start(n) => SeekFrom::Start(self.base + n),
            other => other,
        };
        let at = self.inner.seek(pos)?;
        at.checked_sub(self.base)
            .ok_or_else(|| io::Error::other("seek before the first entry"))
    }
}

/// The entries of an archive (the latest of each name, sorted) that no extraction can write
/// as they are: the root not a directory, anything under a symlink (bsdtar: "Cannot extract
/// through symlink") or under a file (a directory that a later entry of its name replaced).
fn refuse_misplaced(entries: &[Indexed]) -> Result<(), String> {
    let kinds: HashMap<&[u8], &Kind> = entries
        .iter()
        .map(|e| (&e.meta.path[..], &e.meta.kind))
        .collect();
    for entry in entries {
        let shown = display(&entry.meta.path);
        if entry.meta.path.is_empty() && entry.meta.kind != Kind::Dir {
            return Err("the root entry (./) is not a directory".into());
        }
        let mut at = &entry.meta.path[..];
        while let Some(up) = parent(at) {
            at = up;
            match kinds.get(at) {
                None => continue,
                Some(Kind::Dir) => break,
                Some(Kind::Symlink { .. }) => {
                    return Err(format!(
                        "entry {shown} lies under {}, a symlink in the archive: extracting it would write through the link (bsdtar refuses: Cannot extract through symlink)",
                        display(at)
                    ))
                }
                Some(_) => {
                    return Err(format!(
                        "entry {shown} lies under {}, which the archive makes a file (a later entry of that name replaced the directory)",
                        display(at)
                    ))
                }
            }
        }
    }
    Ok(())
}

/// The compression a file's first bytes announce, if any.
pub fn compression(magic: &[u8]) -> Option<&'static str> {
    if magic.starts_with(&[0x1f, 0x8b]) {
        Some("gzip")
    } else if magic.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Some("xz")
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Some("zstd")
    } else if magic.starts_with(b"BZh") {
        Some("bzip2")
    } else if magic.starts_with(&[0x04, 0x22, 0x4d, 0x18]) {
        Some("lz4")
    } else {
        None
    }
}

pub fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match reader.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Inflates, telling a damaged gzip stream (the source's fault) from a failed write (ours).
fn copy_inflated(
    gz: &mut impl Read,
    out: &mut File,
    source: &Path,
    temp: &Path,
    kind: &str,
) -> Result<(), Error> {
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = match gz.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e)
                if e.kind() == io::ErrorKind::UnexpectedEof
                    || e.kind() == io::ErrorKind::InvalidInput
                    || e.kind() == io::ErrorKind::InvalidData =>
            {
                return Err(Error::bad_archive(
                    source,
                    format!("the {kind} data is damaged or truncated ({e})"),
                ))
            }
            Err(e) => return Err(Error::read_path(source, e)),
        };
        out.write_all(&buf[..n])
            .map_err(|e| Error::write(temp, e))?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn indexed(path: &str, kind: Kind) -> Indexed {
        Indexed {
            meta: Meta::owned_by_root(path.as_bytes(), kind, 0o755, 0),
            data: None,
            group: None,
        }
    }

    #[test]
    fn entries_under_a_symlink_or_a_file_are_misplaced() {
        let link = Kind::Symlink {
            target: b"etc".to_vec(),
        };
        let file = Kind::File { size: 0 };
        assert_eq!(
            refuse_misplaced(&[
                indexed("", Kind::Dir),
                indexed("etc", Kind::Dir),
                indexed("etc/a/b", file.clone()),
            ]),
            Ok(())
        );
        let under_link = refuse_misplaced(&[
            indexed("", Kind::Dir),
            indexed("usr", link),
            indexed("usr/x/y", file.clone()),
        ])
        .unwrap_err();
        assert!(under_link.contains("/usr/x/y lies under /usr, a symlink"));
        let under_file =
            refuse_misplaced(&[indexed("opt", file.clone()), indexed("opt/x", Kind::Dir)])
                .unwrap_err();
        assert!(under_file.contains("makes a file"));
        assert!(refuse_misplaced(&[indexed("", file)])
            .unwrap_err()
            .contains("root entry"));
    }
}
