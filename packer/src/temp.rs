//! Temporary files next to the output: removed on every error path (on drop) and when a
//! terminating signal arrives ([`remove_all_for_exit`]), renamed into place only when
//! everything succeeded.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use crate::error::Error;

/// A temporary file that exists now: its path and (device, inode).
pub struct Live {
    path: PathBuf,
    id: (u64, u64),
}

/// Every temporary file packer holds. Created, renamed and removed under this lock, so that
/// the signal thread, holding it to the end, never misses one nor races a rename.
static LIVE: Mutex<Vec<Live>> = Mutex::new(Vec::new());

fn live() -> MutexGuard<'static, Vec<Live>> {
    LIVE.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub struct TempFile {
    path: PathBuf,
    armed: bool,
}

impl TempFile {
    /// Creates `.<output name>.<tag>.<pid>.tmp` in the output's folder.
    pub fn create_next_to(output: &Path, tag: &str) -> Result<(Self, File), Error> {
        let dir = output
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = output
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "packer".into());
        let path = dir.join(format!(".{name}.{tag}.{}.tmp", std::process::id()));
        let mut live = live();
        let file = OpenOptions::new()
            .write(true)
            .read(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| Error::write(&path, e))?;
        let this = Self { path, armed: true };
        let meta = file.metadata().map_err(|e| Error::write(&this.path, e))?;
        live.push(Live {
            path: this.path.clone(),
            id: (meta.dev(), meta.ino()),
        });
        Ok((this, file))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Moves the finished file to `output` (same folder, so the rename is atomic), after
    /// `check` approves what has that name now.
    pub fn persist(
        mut self,
        output: &Path,
        check: impl FnOnce(&Path) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let mut live = live();
        check(output)?;
        fs::rename(&self.path, output).map_err(|e| Error::write(output, e))?;
        live.retain(|l| l.path != self.path);
        self.armed = false;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if self.armed {
            let mut live = live();
            let _ = fs::remove_file(&self.path);
            live.retain(|l| l.path != self.path);
        }
    }
}

/// Whether (device, inode) is one of packer's own temporary files: a source tree reaching
/// the output folder through a bind mount must not pack them (GNU tar compares the same way:
/// "file is the archive; not dumped").
pub fn is_ours(dev: u64, ino: u64) -> bool {
    live().iter().any(|l| l.id == (dev, ino))
}

/// Removes every temporary file, for a process about to die of a signal. The lock is kept
/// (the guard is returned) so no other thread renames or creates one before the end.
pub fn remove_all_for_exit() -> MutexGuard<'static, Vec<Live>> {
    let live = live();
    for l in live.iter() {
        let _ = fs::remove_file(&l.path);
    }
    live
}
