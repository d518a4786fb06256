//! Where a shell-wrapper call runs, seen from `/proc/1`: outside systemd (WSL's init is our
//! PID 1), or already inside (systemd, or init itself while it prepares systemd, is PID 1).

use std::path::{Path, PathBuf};

use wsl_common::paths;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// WSL's namespace, systemd elsewhere (or not started): shell-wrapper mode proper.
    Outside,
    /// Inside systemd's namespace, started by something other than WSL (sudo -i, su -, a
    /// nested call): root's real shell at once.
    Inside,
    /// Native mode, started by WSL's own init for a session: become the configured user here.
    NativeSession,
}

/// WSL's init, as WSL bind-mounts it into every distribution.
const WSL_INIT: &str = "/init";

pub fn detect() -> Place {
    let pid1 = std::fs::read_link("/proc/1/exe").ok();
    // Our parent matters only when systemd is PID 1 (native mode).
    let parent = pid1
        .as_ref()
        .filter(|p| p.file_name().is_some_and(|n| n == "systemd"))
        .and_then(|_| std::fs::read_link(format!("/proc/{}/exe", crate::sys::ppid())).ok());
    classify(pid1.as_deref(), parent.as_deref())
}

pub fn classify(pid1: Option<&Path>, parent: Option<&Path>) -> Place {
    let Some(pid1) = pid1 else {
        return Place::Outside;
    };
    let systemd = pid1.file_name().is_some_and(|n| n == "systemd");
    if systemd && parent == Some(Path::new(WSL_INIT)) {
        Place::NativeSession
    } else if systemd || pid1 == Path::new(paths::INIT) {
        Place::Inside
    } else {
        Place::Outside
    }
}

/// For messages.
pub fn pid1_exe() -> Option<PathBuf> {
    std::fs::read_link("/proc/1/exe").ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Option<&Path> {
        Some(Path::new(s))
    }

    #[test]
    fn places() {
        let systemd = p("/usr/lib/systemd/systemd");
        assert_eq!(classify(p("/init"), p("/init")), Place::Outside);
        assert_eq!(classify(None, None), Place::Outside);
        assert_eq!(classify(systemd, p("/usr/bin/sudo")), Place::Inside);
        assert_eq!(classify(systemd, p("/init")), Place::NativeSession);
        assert_eq!(classify(p(paths::INIT), p("/bin/bash")), Place::Inside);
        assert_eq!(
            classify(
                p("/nix/store/x-systemd-256/lib/systemd/systemd"),
                p("/bin/su")
            ),
            Place::Inside
        );
    }
}
