//! The install itself: unpack into a staging directory while verifying everything, move the
//! verified tree into place, make it durable, switch the system over, remove the installer.
//! Every step can be killed and redone: see docs/installer.md for the order and why it is
//! crash-safe.

use std::collections::HashMap;
use std::fs;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{
    flock, fstat, futimens, mkdirat, openat, unlinkat, AtFlags, FlockOperation, Mode, OFlags,
    Timespec, Timestamps,
};
use rustix::io::Errno;
use wsl_common::manifest::Manifest;
use wsl_common::paths;

use crate::crash;
use crate::dirwalk::{open_dir, remove_all};
use crate::error::Error;
use crate::inflate::Payload;
use crate::merge::merge_into;
use crate::progress::{say, Progress};
use crate::rules::{Rules, Verdict};
use crate::tar::{next_entry, skip_data, Entry, Stream, TarError};
use crate::unpack::{
    commit_held_back, has_staged, record_dir_times, restore_dir_time, set_dir_meta, Unpacker,
};

/// The times of the directories the switch-over touches, recorded once the tree is in place.
const DIR_TIMES: &str = "/nixos-wsl/rootfs.dir-times";

pub enum Outcome {
    Installed,
    /// Another start installed it (or a killed one got past the switch): nothing was to do.
    AlreadyInstalled,
}

fn rel(path: &str) -> &str {
    path.trim_start_matches('/')
}

/// Installs the payload found under `root` (normally `/`) over `root`.
pub fn install(root: &Path, quiet: bool) -> Result<Outcome, Error> {
    let root_fd = openat(
        rustix::fs::CWD,
        root,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::io(root.display().to_string(), "open", e))?;
    let dir_name = rel(paths::INSTALLER_DIR);
    let dir = match openat(
        &root_fd,
        dir_name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(Outcome::AlreadyInstalled),
        Err(e) => return Err(Error::io(paths::INSTALLER_DIR, "open", e)),
    };
    // Two first starts at once: one installs, the other waits here and then finds it done.
    if flock(&dir, FlockOperation::NonBlockingLockExclusive).is_err() {
        say("another start is installing the system; waiting for it");
        flock(&dir, FlockOperation::LockExclusive)
            .map_err(|e| Error::io(paths::INSTALLER_DIR, "lock", e))?;
    }
    let payload_path = root.join(rel(paths::PAYLOAD));
    let manifest_path = root.join(rel(paths::MANIFEST));
    let outcome = if payload_path.exists() {
        let manifest = read_manifest(&manifest_path)?;
        let payload = Payload::open(&payload_path, manifest)?;
        let stage = Stage::create(&dir)?;
        let dirs = match unpack_verified(&payload, &stage.fd, quiet) {
            Ok(dirs) => dirs,
            Err(e) => {
                stage.discard(&dir);
                return Err(e);
            }
        };
        // Verified: from here the staged tree replaces the installer system.
        merge_into(stage.fd.as_fd(), root_fd.as_fd(), b"", &dirs)?;
        crash::point();
        // Empty now, but for what mount points kept out.
        remove_all(dir.as_fd(), STAGE.as_bytes(), STAGE_SHOWN)?;
        if let Some(entry) = dirs.get(b"".as_slice()) {
            set_dir_meta(root_fd.as_fd(), entry)
                .map_err(|e| Error::io("/", "set metadata of", e))?;
        }
        crash::point();
        let times = record_dir_times(root_fd.as_fd())?;
        fs::write(root.join(rel(DIR_TIMES)), times)
            .map_err(|e| Error::io(DIR_TIMES, "write", e))?;
        rustix::fs::syncfs(&root_fd)
            .map_err(|e| Error::io(root.display().to_string(), "sync", e))?;
        crash::point();
        // Everything is durable: from here a restart only has to commit the staged files.
        for name in [paths::PAYLOAD, paths::MANIFEST] {
            remove(&root_fd, name)?;
            crash::point();
        }
        rustix::fs::fsync(&dir).map_err(|e| Error::io(paths::INSTALLER_DIR, "sync", e))?;
        crash::point();
        Outcome::Installed
    } else if has_staged(root_fd.as_fd()) {
        say("finishing an install that was interrupted");
        Outcome::Installed
    } else {
        Outcome::AlreadyInstalled
    };
    // The switch: /sbin/init, /etc/wsl.conf, then /etc/passwd (root's shell becomes init).
    let times = fs::read_to_string(root.join(rel(DIR_TIMES))).unwrap_or_default();
    commit_held_back(root_fd.as_fd(), &times)?;
    crash::point();
    for name in [paths::PAYLOAD, paths::MANIFEST, DIR_TIMES, paths::INSTALLER] {
        remove(&root_fd, name)?;
    }
    match unlinkat(&root_fd, dir_name, AtFlags::REMOVEDIR) {
        Ok(()) | Err(Errno::NOENT) => {}
        Err(e) => say(&format!("{}: not removed: {e}", paths::INSTALLER_DIR)),
    }
    restore_dir_time(root_fd.as_fd(), &times, b"")?;
    rustix::fs::fsync(&root_fd).map_err(|e| Error::io(root.display().to_string(), "sync", e))?;
    Ok(outcome)
}

fn remove(root: &OwnedFd, path: &str) -> Result<(), Error> {
    match unlinkat(root, rel(path), AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(Error::io(path, "remove", e)),
    }
}

fn read_manifest(path: &PathBuf) -> Result<Manifest, Error> {
    let text = fs::read(path).map_err(|e| Error::io(path.display().to_string(), "read", e))?;
    Manifest::parse(&String::from_utf8_lossy(&text))
        .map_err(|e| Error::corrupt(path, e.to_string()))
}

fn tar_error(payload: &Payload, e: TarError) -> Error {
    match e {
        TarError::Source(e) => e,
        TarError::Bad { offset, problem } => Error::corrupt(
            &payload.path,
            format!("the tar entry at byte {offset} is refused: {problem}"),
        ),
    }
}

/// The staging directory, in the installer's folder (same filesystem as `/`): the archive is
/// unpacked there while it is verified, and only moved into place once all of it checked out.
const STAGE: &str = "stage";
const STAGE_SHOWN: &str = "/nixos-wsl/stage";

struct Stage {
    fd: OwnedFd,
    /// The installer folder's times before the stage was made, put back when it is discarded
    /// (a refused payload leaves the tree exactly as it was).
    folder_times: Timestamps,
}

impl Stage {
    /// A fresh, empty staging directory (a killed run's leftover is removed first).
    fn create(folder: &OwnedFd) -> Result<Stage, Error> {
        let st = fstat(folder).map_err(|e| Error::io(paths::INSTALLER_DIR, "stat", e))?;
        let folder_times = Timestamps {
            last_access: Timespec {
                tv_sec: st.st_atime,
                tv_nsec: st.st_atime_nsec as _,
            },
            last_modification: Timespec {
                tv_sec: st.st_mtime,
                tv_nsec: st.st_mtime_nsec as _,
            },
        };
        remove_all(folder.as_fd(), STAGE.as_bytes(), STAGE_SHOWN)?;
        mkdirat(folder, STAGE, Mode::from_raw_mode(0o700))
            .map_err(|e| Error::io(STAGE_SHOWN, "create", e))?;
        let fd = open_dir(folder.as_fd(), STAGE.as_bytes())
            .map_err(|e| Error::io(STAGE_SHOWN, "open", e))?;
        Ok(Stage { fd, folder_times })
    }

    /// Removes everything staged and puts the folder's times back.
    fn discard(self, folder: &OwnedFd) {
        drop(self.fd);
        if let Err(e) = remove_all(folder.as_fd(), STAGE.as_bytes(), STAGE_SHOWN) {
            say(&format!("{e}"));
        }
        let _ = futimens(folder, &self.folder_times);
    }
}

/// One pass: inflates, checks and parses every entry, writing each into the stage as soon as it
/// passed its own checks; the payload-wide checks (SHA-256, CRC-32, sizes, entry count) end the
/// pass. Returns the archive's directory entries by path. On error the caller discards the
/// stage and puts the installer folder's times back (only its ctime shows the attempt).
fn unpack_verified(
    payload: &Payload,
    stage: &OwnedFd,
    quiet: bool,
) -> Result<HashMap<Vec<u8>, Entry>, Error> {
    let m = &payload.manifest;
    let mut progress = Progress::new(m.tar_size, quiet);
    progress.phase("installing", 0);
    let stage_dup = rustix::io::fcntl_dupfd_cloexec(stage, 0)
        .map_err(|e| Error::io(STAGE_SHOWN, "duplicate", e))?;
    let mut unpacker = Unpacker::new(stage_dup);
    let mut stream = Stream::new(payload.tar_stream(), m.tar_size);
    let mut rules = Rules::default();
    let (mut entries, mut skipped) = (0u64, 0u64);
    while let Some(mut entry) = next_entry(&mut stream).map_err(|e| tar_error(payload, e))? {
        entries += 1;
        let verdict = rules.check(&mut entry).map_err(|p| {
            Error::corrupt(
                &payload.path,
                format!("the tar entry at byte {} is refused: {p}", entry.offset),
            )
        })?;
        match verdict {
            Verdict::Write => unpacker
                .write(&entry, &mut stream)
                .map_err(|e| tar_error(payload, e))?,
            Verdict::Skip => {
                skipped += 1;
                skip_data(&mut stream, entry.size).map_err(|e| tar_error(payload, e))?;
            }
        }
        progress.update(stream.offset());
    }
    if stream.offset() != m.tar_size {
        return Err(Error::corrupt(
            &payload.path,
            format!(
                "the tar stream is {} bytes but the manifest says {}",
                stream.offset(),
                m.tar_size
            ),
        ));
    }
    if entries != m.entries {
        return Err(Error::corrupt(
            &payload.path,
            format!(
                "it holds {entries} entries but the manifest says {}",
                m.entries
            ),
        ));
    }
    let dirs = unpacker.finish_dirs()?;
    if skipped > 0 && !quiet {
        say(&format!(
            "skipped {skipped} entries under paths WSL or the installer own ({}, {})",
            paths::WSL_OWNED.join(", "),
            paths::INSTALLER_DIR
        ));
    }
    progress.done(&format!(
        "verified and unpacked {entries} entries ({} MB)",
        m.tar_size / 1_000_000
    ));
    Ok(dirs)
}
