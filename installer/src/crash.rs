//! Deterministic kill points for the crash test. `NIXOS_WSL_INSTALLER_CRASH_AT=N` makes the
//! installer SIGKILL itself at its Nth checkpoint (every entry, every 256 KiB of file data,
//! every move from the stage into place, every hand-over step); `=0` only counts them and prints `checkpoints: COUNT` at the end.
//! Hidden: documented for tests, no use to anyone else.

use std::sync::atomic::{AtomicU64, Ordering};

use rustix::process::{getpid, kill_process, Signal};

static AT: AtomicU64 = AtomicU64::new(u64::MAX);
static COUNT: AtomicU64 = AtomicU64::new(0);

pub const VAR: &str = "NIXOS_WSL_INSTALLER_CRASH_AT";

pub fn init() {
    if let Some(n) = std::env::var(VAR).ok().and_then(|v| v.parse().ok()) {
        AT.store(n, Ordering::Relaxed);
    }
}

pub fn point() {
    let n = COUNT.fetch_add(1, Ordering::Relaxed) + 1;
    if n == AT.load(Ordering::Relaxed) {
        let _ = kill_process(getpid(), Signal::KILL);
    }
}

/// A checkpoint tests name: when only counting, its number is printed as
/// `checkpoint LABEL: N`, so a test can kill exactly there.
pub fn mark(label: &str) {
    point();
    if AT.load(Ordering::Relaxed) == 0 {
        let n = COUNT.load(Ordering::Relaxed);
        crate::progress::say(&format!("checkpoint {label}: {n}"));
    }
}

/// Prints the count when only counting was asked for.
pub fn report() {
    if AT.load(Ordering::Relaxed) == 0 {
        crate::progress::say(&format!("checkpoints: {}", COUNT.load(Ordering::Relaxed)));
    }
}
