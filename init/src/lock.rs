//! The lock that makes simultaneous first shells start exactly one systemd. Only root may open
//! it (mode 0600 in a root-owned folder), so no user can hold it and hang every later shell; a
//! shell that waits for it says what it waits for, and gives up when whoever holds it is not
//! starting systemd.

use std::fs::File;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::time::{Duration, Instant};

use rustix::fs::{flock, FlockOperation, Mode, OFlags};

use crate::error::Error;
use crate::handle::{self, Handle};

pub const LOCK: &str = "/run/nixos-wsl/lock";

/// A starting shell writes the handle within milliseconds of taking the lock (before the
/// activation): a holder that has written none for this long is not starting systemd.
const NO_HANDLE_GRACE: Duration = Duration::from_secs(10);
/// When waiting is announced: simultaneous first shells normally get the lock within a boot.
const SAY_AFTER: Duration = Duration::from_secs(1);
const POLL: Duration = Duration::from_millis(20);

/// Held until dropped.
pub struct Lock {
    _file: File,
}

/// The folder and the lock file, checked: a directory and a regular file owned by root that
/// nobody else may write (or, for the file, open).
fn open() -> Result<File, Error> {
    // 0755 whatever the caller's umask: only root may add files beside the lock and handle.
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(handle::DIR)
        .map_err(|e| Error::io("create", handle::DIR, e))?;
    let dir =
        std::fs::symlink_metadata(handle::DIR).map_err(|e| Error::io("inspect", handle::DIR, e))?;
    if !dir.is_dir() || dir.uid() != 0 {
        return Err(Error::Boot(format!(
            "refusing {}: not a directory owned by root (remove it)",
            handle::DIR
        )));
    }
    if dir.mode() & 0o022 != 0 {
        std::fs::set_permissions(handle::DIR, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| Error::io("restrict", handle::DIR, e))?;
    }
    let fd = rustix::fs::open(
        LOCK,
        OFlags::RDWR | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK,
        Mode::RUSR | Mode::WUSR,
    )
    .map_err(|e| Error::io("open", LOCK, e))?;
    let file = File::from(fd);
    let meta = file.metadata().map_err(|e| Error::io("inspect", LOCK, e))?;
    if !meta.is_file() || meta.uid() != 0 {
        return Err(Error::Boot(format!(
            "refusing {LOCK}: not a regular file owned by root (remove it)"
        )));
    }
    // Made 0644 by earlier versions: close it to everyone else from now on.
    if meta.mode() & 0o077 != 0 {
        let _ = file.set_permissions(std::fs::Permissions::from_mode(0o600));
    }
    Ok(file)
}

/// Whoever holds the lock on `file`, from /proc/locks (pids as our namespace numbers them).
fn holder(file: &File) -> Option<String> {
    let ino = file.metadata().ok()?.ino();
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    let pid = locks.lines().find_map(|line| {
        // "1: FLOCK  ADVISORY  WRITE 1234 00:1a:5678 0 EOF"
        let fields: Vec<&str> = line.split_whitespace().collect();
        let inode = fields.get(5)?.rsplit(':').next()?.parse::<u64>().ok()?;
        (fields.get(1) == Some(&"FLOCK") && inode == ino).then(|| fields[4].to_owned())
    })?;
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    Some(format!("pid {pid} ({})", comm.trim()))
}

/// Takes the lock, waiting while a starting shell holds it. `bound` caps the whole wait (the
/// holder's own budget: activation and boot); `None` waits as long as systemd boots.
pub fn acquire(bound: Option<Duration>) -> Result<Lock, Error> {
    let file = open()?;
    let start = Instant::now();
    let mut said = false;
    let mut handle_seen = start;
    loop {
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => return Ok(Lock { _file: file }),
            Err(rustix::io::Errno::WOULDBLOCK) => {}
            Err(e) => return Err(Error::io("lock", LOCK, e)),
        }
        let now = Instant::now();
        let who = || holder(&file).unwrap_or_else(|| "another process".into());
        if !said && now - start >= SAY_AFTER {
            crate::say!("waiting for systemd to start ({LOCK} is held by {})", who());
            said = true;
        }
        if Handle::load().is_some() {
            handle_seen = now;
        }
        let stalled = now - handle_seen >= NO_HANDLE_GRACE;
        let over = bound.is_some_and(|b| now - start >= b);
        if stalled || over {
            return Err(Error::Boot(format!(
                "gave up waiting for {LOCK} after {} s: it is held by {}, {}",
                (now - start).as_secs(),
                who(),
                if stalled {
                    "which is not starting systemd"
                } else {
                    "and systemd is still not up"
                }
            )));
        }
        std::thread::sleep(POLL);
    }
}
