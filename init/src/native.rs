//! Native mode: WSL's `[boot] systemd=true` runs `/sbin/init` (init) as PID 1. Prepare what
//! systemd needs, then become it. If that is impossible, stay a minimal init that reaps, so
//! the distribution still gives shells (root's shell then sees PID 1 is init: a root shell).

use std::ffi::CString;

use crate::env::{self, cvar};
use crate::namespace::{self, Kernel, Steps};
use crate::sys;

pub fn run() -> ! {
    let config = crate::config::load();
    if let Some(program) = namespace::activation_needed(&config).and_then(env::cstring) {
        if let Err(e) = Kernel.activate(&program) {
            crate::say!(
                "activation {} failed: {e}; starting systemd anyway",
                program.to_string_lossy()
            );
        }
    }
    let distro = std::env::var("WSL_DISTRO_NAME").unwrap_or_default();
    namespace::write_service_environment(&[
        ("WSL_DISTRO_NAME", &distro),
        ("WSL_INTEROP", "/run/WSL/1_interop"),
    ]);
    namespace::enable_linger(&config.user);
    match namespace::find_systemd(&config).and_then(env::cstring) {
        Some(systemd) => {
            let mut argv: Vec<CString> = vec![systemd.clone()];
            argv.extend(std::env::args_os().skip(1).filter_map(env::cstring));
            let envp: Vec<CString> = std::env::vars_os()
                .filter_map(|(k, v)| cvar(&k.to_string_lossy(), v))
                .collect();
            sys::restore_signals();
            let err = sys::execve(&systemd, &argv, &envp);
            crate::say!("cannot exec {}: {err}", systemd.to_string_lossy());
        }
        None => crate::say!("no systemd found (tried {})", config.systemd.join(", ")),
    }
    crate::say!("staying PID 1 without systemd; shells get root's shell");
    loop {
        if sys::reap_any().is_err() {
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
    }
}
