//! The install itself: verify everything (pass 1), unpack (pass 2), make it durable, switch the
//! system over, remove the installer. Every step can be killed and redone: see docs/installer.md
//! for the order and why it is crash-safe.

use std::fs;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{flock, openat, unlinkat, AtFlags, FlockOperation, Mode, OFlags};
use rustix::io::Errno;
use wsl_common::manifest::Manifest;
use wsl_common::paths;

use crate::crash;
use crate::error::Error;
use crate::inflate::Payload;
use crate::progress::{say, Progress};
use crate::rules::{Rules, Verdict};
use crate::tar::{next_entry, skip_data, Stream, TarError};
use crate::unpack::{commit_held_back, has_staged, record_dir_times, restore_dir_time, Unpacker};

/// The times of the directories the switch-over touches, recorded after unpacking.
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
        let kept = verify(&payload, quiet)?;
        unpack(&payload, kept, &root_fd, quiet)?;
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

/// Keep the inflated tar between the passes when it takes at most half the available memory.
fn keep_in_memory(tar_size: u64) -> bool {
    if std::env::var("NIXOS_WSL_INSTALLER_KEEP").is_ok_and(|v| v == "0") {
        return false;
    }
    let available = fs::read_to_string("/proc/meminfo").ok().and_then(|text| {
        let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
        line.split_whitespace().nth(1)?.parse::<u64>().ok()
    });
    available.is_some_and(|kib| tar_size < kib * 1024 / 2)
}

/// Pass 1: inflates and parses everything, writes nothing. Returns the tar when kept.
fn verify(payload: &Payload, quiet: bool) -> Result<Option<Vec<Vec<u8>>>, Error> {
    let m = &payload.manifest;
    let mut progress = Progress::new(m.tar_size * 2, quiet);
    progress.phase("verifying", 0);
    let mut stream = Stream::new(payload.tar_stream(), m.tar_size, keep_in_memory(m.tar_size));
    let mut rules = Rules::default();
    let mut entries = 0u64;
    loop {
        let entry = next_entry(&mut stream).map_err(|e| tar_error(payload, e))?;
        let Some(mut entry) = entry else { break };
        entries += 1;
        rules.check(&mut entry).map_err(|p| {
            Error::corrupt(
                &payload.path,
                format!("the tar entry at byte {} is refused: {p}", entry.offset),
            )
        })?;
        skip_data(&mut stream, entry.size).map_err(|e| tar_error(payload, e))?;
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
    progress.done(&format!(
        "verified {entries} entries ({} MB)",
        m.tar_size / 1_000_000
    ));
    Ok(stream.kept.take())
}

/// Pass 2: writes every entry over the root.
fn unpack(
    payload: &Payload,
    kept: Option<Vec<Vec<u8>>>,
    root: &OwnedFd,
    quiet: bool,
) -> Result<(), Error> {
    let m = &payload.manifest;
    let mut progress = Progress::new(m.tar_size, quiet);
    progress.phase("unpacking", 0);
    let source: Box<dyn Iterator<Item = Result<Vec<u8>, Error>> + Send> = match kept {
        Some(buffers) => Box::new(buffers.into_iter().map(Ok)),
        None => payload.tar_stream(),
    };
    let root_dup =
        rustix::io::fcntl_dupfd_cloexec(root, 0).map_err(|e| Error::io("/", "duplicate", e))?;
    let mut unpacker = Unpacker::new(root_dup);
    let mut stream = Stream::new(source, m.tar_size, false);
    let mut rules = Rules::default();
    let mut skipped = 0u64;
    while let Some(mut entry) = next_entry(&mut stream).map_err(|e| tar_error(payload, e))? {
        let verdict = rules
            .check(&mut entry)
            .map_err(|p| Error::corrupt(&payload.path, p))?;
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
    unpacker.finish_dirs()?;
    if skipped > 0 && !quiet {
        say(&format!(
            "skipped {skipped} entries under paths WSL owns ({})",
            paths::WSL_OWNED.join(", ")
        ));
    }
    progress.done(&format!("unpacked {} entries", m.entries));
    Ok(())
}
