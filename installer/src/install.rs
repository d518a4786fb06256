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
use crate::obstacles;
use crate::progress::{say, Progress};
use crate::rules::{Rules, Verdict};
use crate::tar::{next_entry, skip_data, Entry, Stream, TarError};
use crate::unpack::{
    commit_held_back, has_staged, record_dir_times, restore_dir_time, set_dir_meta, Unpacker,
};

/// The times of the directories the switch-over touches, recorded once the tree is in place.
const DIR_TIMES: &str = "/nixos-wsl/rootfs.dir-times";
/// Written once the staged tree is merged into place (with the archive's metadata of `/`, the
/// one directory set after the merge): a restart then only completes the install instead of
/// staging a second copy of the whole tree (issue 10, item 5).
const MERGED: &str = "/nixos-wsl/rootfs.merged";
const MERGED_MAGIC: &str = "nixos-wsl-merged 1";
const MERGED_TEMP: &str = "/nixos-wsl/rootfs.merged.tmp";

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
    let outcome = if payload_path.exists() {
        let root_entry = match read_merged(root)? {
            Some(entry) => {
                say("finishing an install that was interrupted after its merge");
                entry
            }
            None => stage_check_and_merge(root, &root_fd, &dir, quiet)?,
        };
        // Empty now, but for what mount points kept out.
        remove_all(dir.as_fd(), STAGE.as_bytes(), STAGE_SHOWN)?;
        if let Some(entry) = &root_entry {
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
    for name in [
        paths::PAYLOAD,
        paths::MANIFEST,
        MERGED,
        MERGED_TEMP,
        DIR_TIMES,
        paths::INSTALLER,
    ] {
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

/// The payload unpacked into the stage while it is verified, the switch's obstacles checked
/// (nothing is changed until here: a refusal removes the stage), WSL's mounts and files put
/// where the payload's layout has them, the stage merged into place, and that recorded.
/// Returns the archive's entry for `/`.
fn stage_check_and_merge(
    root: &Path,
    root_fd: &OwnedFd,
    dir: &OwnedFd,
    quiet: bool,
) -> Result<Option<Entry>, Error> {
    let manifest = read_manifest(&root.join(rel(paths::MANIFEST)))?;
    let payload = Payload::open(&root.join(rel(paths::PAYLOAD)), manifest)?;
    let stage = Stage::create(dir)?;
    let staged = check_space(dir, &payload.manifest)
        .and_then(|()| unpack_verified(&payload, &stage.fd, quiet));
    let dirs = match staged {
        Ok(dirs) => dirs,
        Err(e) => {
            stage.discard(dir);
            return Err(staging_error(e, dir, &payload.manifest));
        }
    };
    let root_path =
        fs::canonicalize(root).map_err(|e| Error::io(root.display().to_string(), "resolve", e))?;
    let plan = match obstacles::check(stage.fd.as_fd(), root_fd.as_fd(), &root_path) {
        Ok(plan) => plan,
        Err(e) => {
            stage.discard(dir);
            return Err(e);
        }
    };
    // The staged data durable before anything moves (a restart after the merge trusts it).
    rustix::fs::syncfs(root_fd).map_err(|e| Error::io(root.display().to_string(), "sync", e))?;
    if !quiet {
        for note in &plan.notes {
            say(note);
        }
    }
    crash::mark("checked");
    // Verified and nothing in the way: from here the staged tree replaces the installer system.
    obstacles::clear(&plan, root_fd.as_fd(), &root_path)?;
    merge_into(stage.fd.as_fd(), root_fd.as_fd(), b"", &dirs)?;
    // ext4 commits its journal in order: once this file is durable, so are the renames.
    // Written under a temporary name and renamed: a torn record is never read.
    let root_entry = dirs.get(b"".as_slice()).cloned();
    let temp = root.join(rel(MERGED_TEMP));
    fs::write(&temp, render_merged(root_entry.as_ref()))
        .and_then(|()| fs::rename(&temp, root.join(rel(MERGED))))
        .map_err(|e| Error::io(MERGED, "write", e))?;
    crash::mark("merged");
    Ok(root_entry)
}

/// Refuses to start staging what cannot fit: the tar's size in bytes (what the files take,
/// give or take their last blocks) and one inode per entry.
fn check_space(dir: &OwnedFd, m: &Manifest) -> Result<(), Error> {
    let st =
        rustix::fs::fstatvfs(dir).map_err(|e| Error::io(paths::INSTALLER_DIR, "statvfs", e))?;
    let free = st.f_bavail.saturating_mul(st.f_frsize);
    // Filesystems without an inode limit (btrfs, tmpfs without nr_inodes) report 0 files.
    let inodes_short = st.f_files != 0 && st.f_favail < m.entries;
    if free < m.tar_size || inodes_short {
        return Err(Error::NoSpace {
            path: "/".into(),
            needed: m.tar_size,
            free,
            inodes: inodes_short.then_some((m.entries, st.f_favail)),
        });
    }
    Ok(())
}

/// An error while staging, the stage already removed: out of space says how much to free;
/// anything else says that nothing was changed.
fn staging_error(e: Error, dir: &OwnedFd, m: &Manifest) -> Error {
    let full = |err: &std::io::Error| matches!(err.raw_os_error(), Some(c) if c == Errno::NOSPC.raw_os_error() || c == Errno::DQUOT.raw_os_error());
    match e {
        Error::Io { ref err, .. } if full(err) => match check_space(dir, m) {
            Err(no_space) => no_space,
            Ok(()) => Error::NoSpace {
                path: "/".into(),
                needed: m.tar_size,
                free: m.tar_size,
                inodes: None,
            },
        },
        Error::Corrupt { .. } | Error::NoSpace { .. } | Error::Refused { .. } => e,
        other => Error::Unchanged(Box::new(other)),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect()
}

/// `nixos-wsl-merged 1`, then `UID GID MODE SECS NSECS` of `/` and `x NAME VALUE` (hex) per
/// xattr, or `-` when the archive had no entry for `/`.
fn render_merged(root: Option<&Entry>) -> String {
    let mut out = format!("{MERGED_MAGIC}\n");
    match root {
        None => out.push_str("-\n"),
        Some(e) => {
            out.push_str(&format!(
                "{} {} {} {} {}\n",
                e.uid, e.gid, e.mode, e.mtime, e.mtime_nsec
            ));
            for (name, value) in &e.xattrs {
                out.push_str(&format!("x {} {}\n", hex(name), hex(value)));
            }
        }
    }
    out
}

/// `None`: no merge recorded (or a record this installer cannot read: staging again is safe);
/// `Some(entry)`: merged, with `/`'s metadata when the archive had it.
fn read_merged(root: &Path) -> Result<Option<Option<Entry>>, Error> {
    let text = match fs::read_to_string(root.join(rel(MERGED))) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(MERGED, "read", e)),
    };
    let parsed = parse_merged(&text);
    if parsed.is_none() {
        say(&format!(
            "{MERGED}: not a record of this installer; staging the payload again"
        ));
    }
    Ok(parsed)
}

fn parse_merged(text: &str) -> Option<Option<Entry>> {
    let mut lines = text.lines();
    if lines.next() != Some(MERGED_MAGIC) {
        return None;
    }
    let meta = lines.next()?;
    if meta == "-" {
        return Some(None);
    }
    let f: Vec<&str> = meta.split(' ').collect();
    let num = |i: usize| f.get(i).and_then(|v| v.parse::<i64>().ok());
    let mut entry = Entry {
        name: Vec::new(),
        kind: crate::tar::Kind::Dir,
        size: 0,
        mode: u32::try_from(num(2)?).ok()?,
        uid: u32::try_from(num(0)?).ok()?,
        gid: u32::try_from(num(1)?).ok()?,
        mtime: num(3)?,
        mtime_nsec: u32::try_from(num(4)?).ok()?,
        xattrs: Vec::new(),
        offset: 0,
    };
    for line in lines {
        let x: Vec<&str> = line.split(' ').collect();
        match (
            x.first(),
            x.get(1).and_then(|n| unhex(n)),
            x.get(2).and_then(|v| unhex(v)),
        ) {
            (Some(&"x"), Some(name), Some(value)) => entry.xattrs.push((name, value)),
            _ => return None,
        }
    }
    Some(Some(entry))
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
    let mut stream = Stream::new(payload.tar_stream(), m.tar_size).recycling(payload.recycler());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_merge_record_reads_back_and_a_torn_one_is_ignored() {
        let mut e = Entry {
            name: Vec::new(),
            kind: crate::tar::Kind::Dir,
            size: 0,
            mode: 0o40755,
            uid: 0,
            gid: 7,
            mtime: 1000,
            mtime_nsec: 5,
            xattrs: vec![(b"user.a b".to_vec(), b"\0\n\xff".to_vec())],
            offset: 0,
        };
        let text = render_merged(Some(&e));
        let back = parse_merged(&text).expect("parses").expect("has /");
        e.name.clear();
        assert_eq!(
            (back.mode, back.gid, back.mtime, back.mtime_nsec),
            (0o40755, 7, 1000, 5)
        );
        assert_eq!(back.xattrs, e.xattrs);
        assert!(matches!(parse_merged(&render_merged(None)), Some(None)));
        for cut in 0..text.len() - 1 {
            if let Some(Some(torn)) = parse_merged(&text[..cut]) {
                assert_eq!(
                    torn.mtime_nsec, 5,
                    "a cut record parses only when whole: {cut}"
                );
            }
        }
    }
}
