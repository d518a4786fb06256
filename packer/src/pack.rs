//! The three formats, from source to finished file: a temporary file next to the output,
//! renamed into place only when everything succeeded.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use wsl_common::manifest::Manifest;

use crate::binaries::Binaries;
use crate::edits::{self, DistributionConf, RootfsEdits, Systemd};
use crate::error::Error;
use crate::gzip::{Deflater, ParallelGzip, Written};
use crate::progress::{human, Progress};
use crate::reserved::{installer_folder_problem, refuse_loops, INSTALLER_FOLDER};
use crate::sink::{Added, Stats, TarSink};
use crate::source_dir::{DirSource, HardLinks};
use crate::source_tar::TarSource;
use crate::temp::TempFile;
use crate::tree::Lookup;
use crate::xattr::XattrFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Installer,
    Rootfs,
    Wsl,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Installer => "installer",
            Format::Rootfs => "rootfs",
            Format::Wsl => "wsl",
        }
    }
}

pub struct Options {
    pub source: PathBuf,
    pub output: PathBuf,
    pub format: Format,
    pub level: u32,
    pub threads: usize,
    pub deflater: Deflater,
    pub binaries: Binaries,
    pub default_user: Option<String>,
    /// `--systemd`; `None`: the format's default ([`RootfsEdits::systemd`]).
    pub systemd: Option<Systemd>,
    pub distribution: Option<DistributionConf>,
    /// `SOURCE_DATE_EPOCH`: no mtime in the archive is later.
    pub epoch: i64,
    pub quiet: bool,
}

enum Source {
    Dir(DirSource),
    Tar(TarSource),
}

impl Source {
    fn lookup(&self) -> &dyn Lookup {
        match self {
            Source::Dir(d) => d,
            Source::Tar(t) => t,
        }
    }
}

pub fn pack(options: &Options) -> Result<(), Error> {
    let started = Instant::now();
    let folder = options
        .output
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    match fs::metadata(folder) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(Error::write(
                &options.output,
                std::io::Error::other(format!("{} is not a directory", folder.display())),
            ))
        }
        Err(e) => return Err(Error::write(&options.output, e)),
    }
    refuse_unsafe_output(&options.output)?;
    let source_meta =
        fs::metadata(&options.source).map_err(|e| Error::read_path(&options.source, e))?;
    refuse_output_inside_source(&options.source, &options.output, source_meta.is_dir())?;
    let mut xattrs = XattrFilter::default();
    let mut source = if source_meta.is_dir() {
        // Fail early, with the path, when the tree cannot be listed at all.
        fs::read_dir(&options.source).map_err(|e| Error::read_path(&options.source, e))?;
        // The root may be a symlink to the tree (a Nix `result` link); nothing below it is followed.
        let root =
            fs::canonicalize(&options.source).map_err(|e| Error::read_path(&options.source, e))?;
        Source::Dir(DirSource::new(&root))
    } else {
        Source::Tar(TarSource::open(
            &options.source,
            &options.output,
            &mut xattrs,
        )?)
    };
    refuse_reserved(&source, &options.source)?;
    let chosen = options.binaries.choose(
        source.lookup(),
        &options.source,
        options.format == Format::Installer,
    )?;
    let edits = edits::rootfs(
        source.lookup(),
        &RootfsEdits {
            init: &chosen.init,
            default_user: options.default_user.as_deref(),
            systemd: options.systemd,
            epoch: options.epoch,
            distribution: options
                .distribution
                .as_ref()
                .filter(|_| options.format == Format::Wsl),
            name: options
                .distribution
                .as_ref()
                .map_or("NixOS", |d| d.name.as_str()),
        },
    )?;
    let mut progress = Progress::new(options.quiet);
    let total = if progress.enabled() {
        Some(match &source {
            Source::Dir(d) => d.data_size(),
            Source::Tar(t) => t.data_size,
        })
    } else {
        None
    };

    match options.format {
        Format::Rootfs | Format::Wsl => {
            let (temp, file) = TempFile::create_next_to(&options.output, "partial")?;
            progress.start("packing", total);
            let (stats, written) = write_tar_gz(
                options,
                file,
                temp.path(),
                edits,
                &mut progress,
                false,
                |sink| match &mut source {
                    Source::Dir(d) => d.pack(sink, HardLinks::Dereference, &mut xattrs),
                    Source::Tar(t) => t.pack(sink, HardLinks::Dereference),
                },
            )?;
            temp.persist(&options.output, refuse_unsafe_output)?;
            summary(options, &stats, &written, &xattrs, None, started);
        }
        Format::Installer => {
            let (payload_temp, file) = TempFile::create_next_to(&options.output, "payload")?;
            progress.start("packing the payload", total);
            let (payload_stats, payload) = write_tar_gz(
                options,
                file,
                payload_temp.path(),
                edits,
                &mut progress,
                true,
                |sink| match &mut source {
                    Source::Dir(d) => d.pack(sink, HardLinks::Keep, &mut xattrs),
                    Source::Tar(t) => t.pack(sink, HardLinks::Keep),
                },
            )?;
            let manifest = Manifest {
                size: payload.compressed_size,
                sha256: payload.sha256,
                tar_size: payload.uncompressed_size,
                entries: payload_stats.entries,
                chunks: payload.chunks.clone(),
            };
            let os_release = edits::os_release(source.lookup())?;
            let tree = edits::installer_tree(
                &chosen.installer,
                payload_temp.path(),
                &manifest,
                os_release,
                options
                    .distribution
                    .as_ref()
                    .map_or("NixOS", |d| d.name.as_str()),
                options.epoch,
            )?;
            let (temp, file) = TempFile::create_next_to(&options.output, "partial")?;
            progress.start("writing the installer", Some(payload.compressed_size));
            let (stats, written) = write_tar_gz(
                options,
                file,
                temp.path(),
                tree,
                &mut progress,
                false,
                |_| Ok(()),
            )?;
            temp.persist(&options.output, refuse_unsafe_output)?;
            summary(
                options,
                &stats,
                &written,
                &xattrs,
                Some((&payload_stats, &payload)),
                started,
            );
        }
    }
    Ok(())
}

/// One gzip-compressed tar: edits merged into whatever `feed` writes. Not fsynced (like tar
/// and gzip): the rename after a complete write is what keeps partial files away; an fsync
/// would add about 8 % to packing the Debian test rootfs.
fn write_tar_gz(
    options: &Options,
    file: File,
    path: &Path,
    edits: Vec<Added>,
    progress: &mut Progress,
    hash: bool,
    feed: impl FnOnce(&mut TarSink<'_, BufWriter<File>>) -> Result<(), Error>,
) -> Result<(Stats, Written), Error> {
    let gz = ParallelGzip::new(
        BufWriter::with_capacity(1 << 20, file),
        options.level,
        options.threads,
        options.deflater,
        hash,
    );
    let mut sink = TarSink::new(gz, path, options.epoch, options.level, edits, progress);
    feed(&mut sink)?;
    let (gz, stats) = sink.finish()?;
    let (writer, written) = gz.finish().map_err(|e| Error::write(path, e))?;
    writer
        .into_inner()
        .map_err(|e| Error::write(path, e.into_error()))?;
    Ok((stats, written))
}

/// packer renames its finished archive over `--out`: over a FIFO, a device or a symlink that
/// would replace the thing itself (`--out /dev/null` made the machine's /dev/null a file), so
/// only a regular file or a new name is accepted. Checked first, and again just before the
/// rename.
fn refuse_unsafe_output(output: &Path) -> Result<(), Error> {
    let file_type = match fs::symlink_metadata(output) {
        Ok(m) => m.file_type(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::write(output, e)),
    };
    let what = if file_type.is_file() {
        return Ok(());
    } else if file_type.is_symlink() {
        "symlink"
    } else if file_type.is_dir() {
        "directory"
    } else if file_type.is_fifo() {
        "FIFO"
    } else if file_type.is_char_device() || file_type.is_block_device() {
        "device"
    } else {
        "socket"
    };
    Err(Error::OutputNotAFile {
        path: output.to_owned(),
        what,
    })
}

/// What the installer or init keeps for itself, and symlink loops `packer check` rejects.
fn refuse_reserved(source: &Source, given: &Path) -> Result<(), Error> {
    let lookup = source.lookup();
    let has_children = match source {
        Source::Dir(d) => d.has_children(INSTALLER_FOLDER),
        Source::Tar(t) => t.has_children(INSTALLER_FOLDER),
    };
    let kind = lookup.node(INSTALLER_FOLDER).map(|n| n.kind);
    if let Some(problem) = installer_folder_problem(kind, has_children) {
        return Err(Error::BadEntry {
            path: given.display().to_string(),
            problem,
        });
    }
    refuse_loops(lookup, &given.display().to_string())
}

/// Packing a tree into a file inside it would read the growing output back in.
fn refuse_output_inside_source(
    source: &Path,
    output: &Path,
    source_is_dir: bool,
) -> Result<(), Error> {
    if !source_is_dir {
        return Ok(());
    }
    let source = fs::canonicalize(source).map_err(|e| Error::read_path(source, e))?;
    let parent = output
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let parent = fs::canonicalize(parent).map_err(|e| Error::write(output, e))?;
    if parent.starts_with(&source) {
        return Err(Error::OutputInsideSource {
            output: output.to_owned(),
            source,
        });
    }
    Ok(())
}

fn summary(
    options: &Options,
    stats: &Stats,
    written: &Written,
    xattrs: &XattrFilter,
    payload: Option<(&Stats, &Written)>,
    started: Instant,
) {
    if options.quiet {
        return;
    }
    let mut text = String::new();
    let ratio = |w: &Written| 100.0 * w.compressed_size as f64 / w.uncompressed_size.max(1) as f64;
    let content = payload.map(|(s, _)| s).unwrap_or(stats);
    text.push_str(&format!(
        "packer: wrote {} ({} format) in {:.1}s\n  {} entries: {} files, {} directories, {} symlinks, {} special files\n",
        options.output.display(),
        options.format.name(),
        started.elapsed().as_secs_f64(),
        content.entries,
        content.files,
        content.dirs,
        content.symlinks,
        content.specials
    ));
    match payload {
        Some((payload_stats, payload)) => text.push_str(&format!(
            "  hard links kept in the payload: {} (saving {} of tar)\n  payload: tar {}, gzip {} ({:.1} %, {} of the data stored as incompressible); installer archive: {}\n",
            payload_stats.hardlinks_kept,
            human(payload_stats.linked_bytes),
            human(payload.uncompressed_size),
            human(payload.compressed_size),
            ratio(payload),
            human(payload_stats.stored_bytes),
            human(written.compressed_size)
        )),
        None => text.push_str(&format!(
            "  hard links dereferenced: {} (their data written again: {}, of which {} repeats compressed chunks)\n  tar {}, gzip {} ({:.1} %, {} of the data stored as incompressible)\n",
            stats.hardlinks_dereferenced,
            human(stats.linked_bytes),
            human(stats.repeated_bytes),
            human(written.uncompressed_size),
            human(written.compressed_size),
            ratio(written),
            human(stats.stored_bytes)
        )),
    }
    if content.sockets_skipped > 0 || xattrs.dropped > 0 {
        text.push_str(&format!(
            "  skipped: {} sockets, {} unwanted xattrs\n",
            content.sockets_skipped, xattrs.dropped
        ));
    }
    let _ = std::io::stderr().write_all(text.as_bytes());
}
