//! Where the simulator remembers a running distribution: /run/wsl-sim/<key>/ with a lock
//! and an `instance` file naming PID 1 by host pid *and* start time, so a reused pid is
//! never mistaken for the instance.

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};

use super::error::{Error, Result};

const STATE_ROOT: &str = "/run/wsl-sim";

pub struct State {
    pub dir: PathBuf,
    pub distro: PathBuf,
}

/// A running instance: its PID 1 as the host sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Instance {
    pub pid: u32,
    pub start_time: u64,
}

/// An exclusive flock, released when dropped (closing the file releases it).
pub struct Lock(#[allow(dead_code)] File);

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl State {
    pub fn for_distro(distro: &Path) -> Result<Self> {
        let distro = fs::canonicalize(distro).map_err(|e| Error::io("cannot find", distro, e))?;
        use std::os::unix::ffi::OsStrExt;
        let key = format!("{:016x}", fnv1a(distro.as_os_str().as_bytes()));
        let dir = Path::new(STATE_ROOT).join(key);
        fs::create_dir_all(&dir).map_err(|e| Error::io("cannot create", &dir, e))?;
        Ok(Self { dir, distro })
    }

    pub fn key(&self) -> String {
        self.dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    pub fn lock(&self) -> Result<Lock> {
        let path = self.dir.join("lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io("cannot open", &path, e))?;
        super::sys::flock(&file).map_err(|e| Error::io("cannot lock", &path, e))?;
        Ok(Lock(file))
    }

    fn instance_path(&self) -> PathBuf {
        self.dir.join("instance")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("log")
    }

    /// The copy of /etc/wsl.conf read when the running instance started.
    pub fn conf_path(&self) -> PathBuf {
        self.dir.join("wsl.conf")
    }

    /// The running instance's wsl.conf (WSL reads it once per start).
    pub fn conf(&self) -> super::wsl_conf::WslConf {
        super::wsl_conf::WslConf::parse(&fs::read_to_string(self.conf_path()).unwrap_or_default())
    }

    /// Remembers the instance's Windows-side options (WSLg on or off).
    pub fn record_options(&self, options: &super::pid1::Options) -> Result<()> {
        let path = self.dir.join("options");
        fs::write(&path, format!("wslg={}\n", u8::from(options.wslg)))
            .map_err(|e| Error::io("cannot write", &path, e))
    }

    /// Whether the running instance was started with WSLg.
    pub fn wslg(&self) -> bool {
        fs::read_to_string(self.dir.join("options")).is_ok_and(|t| t.contains("wslg=1"))
    }

    /// The "registry" of the distribution (what Windows keeps beside it): `RunOOBE` and
    /// `DefaultUid`, kept next to the state so it outlives instances.
    pub fn registry_path(&self) -> PathBuf {
        self.dir.join("registry")
    }

    /// The recorded instance, if its PID 1 is still the same process.
    pub fn running(&self) -> Option<Instance> {
        let text = fs::read_to_string(self.instance_path()).ok()?;
        let mut words = text.split_whitespace();
        let instance = Instance {
            pid: words.next()?.parse().ok()?,
            start_time: words.next()?.parse().ok()?,
        };
        (start_time(instance.pid) == Some(instance.start_time)).then_some(instance)
    }

    pub fn record(&self, instance: Instance) -> Result<()> {
        let path = self.instance_path();
        let tmp = self.dir.join("instance.tmp");
        let text = format!(
            "{} {}\n{}\n",
            instance.pid,
            instance.start_time,
            self.distro.display()
        );
        fs::write(&tmp, text).map_err(|e| Error::io("cannot write", &tmp, e))?;
        fs::rename(&tmp, &path).map_err(|e| Error::io("cannot write", &path, e))
    }

    /// Forgets `instance` unless the file already names a newer one.
    pub fn forget(&self, instance: Instance) {
        let path = self.instance_path();
        let current = fs::read_to_string(&path).unwrap_or_default();
        if current.starts_with(&format!("{} {}\n", instance.pid, instance.start_time)) {
            let _ = fs::remove_file(path);
        }
    }
}

/// Every recorded instance whose distribution lies under `prefix` (for test clean-up).
pub fn instances_under(prefix: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(STATE_ROOT) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| fs::read_to_string(e.path().join("instance")).ok())
        .filter_map(|text| text.lines().nth(1).map(PathBuf::from))
        .filter(|distro| distro.starts_with(prefix))
        .collect()
}

/// Field 22 of /proc/PID/stat: the process's start time in clock ticks since boot.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_of_self_is_stable_and_absent_for_no_process() {
        let me = std::process::id();
        assert!(start_time(me).is_some());
        assert_eq!(start_time(me), start_time(me));
        assert_eq!(start_time(u32::MAX - 1), None);
    }
}
