//! Each instance lives in its own cgroup (WSL gives each distribution one), so systemd inside
//! a cgroup namespace sees a tree of its own. Works on a pure cgroup v2 host and on a hybrid
//! one (cgroup2 at /sys/fs/cgroup/unified).

use std::fs;
use std::path::{Path, PathBuf};

use super::error::{Error, Result};

fn hierarchy() -> Result<PathBuf> {
    for root in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] {
        if Path::new(root).join("cgroup.procs").exists()
            && Path::new(root).join("cgroup.subtree_control").exists()
        {
            return Ok(PathBuf::from(root));
        }
    }
    Err(Error::Boot(
        "no cgroup2 hierarchy at /sys/fs/cgroup or /sys/fs/cgroup/unified".into(),
    ))
}

pub fn path(key: &str) -> Result<PathBuf> {
    Ok(hierarchy()?.join("wsl-sim").join(key))
}

/// Creates the instance's cgroup and moves the calling process into it.
pub fn create_and_join(key: &str) -> Result<PathBuf> {
    let dir = path(key)?;
    fs::create_dir_all(&dir).map_err(|e| Error::io("cannot create cgroup", &dir, e))?;
    join(key)?;
    Ok(dir)
}

/// Moves the calling process into the instance's cgroup.
pub fn join(key: &str) -> Result<()> {
    let procs = path(key)?.join("cgroup.procs");
    fs::write(&procs, format!("{}\n", std::process::id()))
        .map_err(|e| Error::io("cannot join cgroup", &procs, e))
}

/// Moves the calling process out of the instance's cgroup (into `wsl-sim`), so the
/// instance's cgroup can be removed once its processes are gone.
pub fn leave() -> Result<()> {
    let procs = hierarchy()?.join("wsl-sim/cgroup.procs");
    fs::write(&procs, format!("{}\n", std::process::id()))
        .map_err(|e| Error::io("cannot leave cgroup via", &procs, e))
}

/// Removes the instance's cgroup and whatever systemd created below it, deepest first.
/// Processes leave cgroups asynchronously after they die, so it retries for a while.
pub fn remove(key: &str) {
    let Ok(dir) = path(key) else { return };
    for _ in 0..100 {
        if remove_tree(&dir) || !dir.exists() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

fn remove_tree(dir: &Path) -> bool {
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&entry.path());
            }
        }
    }
    fs::remove_dir(dir).is_ok()
}
