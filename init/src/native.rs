//! Native mode: WSL's `[boot] systemd=true` runs `/sbin/init` (init) as PID 1. Prepare what
//! systemd needs, then become it. If that is impossible, stay a minimal init that reaps, so
//! the distribution still gives shells (root's shell then sees PID 1 is init: a root shell).

use std::ffi::CString;

use crate::env::{self, cvar};
use crate::first_boot;
use crate::namespace::{self, Kernel, Plan};
use crate::sys;

pub fn run() -> ! {
    // Before the activation can replace it: what this instance's sessions run by.
    crate::wsl_default_user::keep_as_read_at_start();
    let config = crate::config::load();
    let distro = std::env::var("WSL_DISTRO_NAME").unwrap_or_default();
    namespace::write_service_environment(&[
        ("WSL_DISTRO_NAME", &distro),
        ("WSL_INTEROP", "/run/WSL/1_interop"),
    ]);
    crate::wslg::prepare(
        crate::wslg::Mode::Native,
        std::env::current_exe().ok().as_deref(),
    );
    namespace::enable_linger(&config.user);
    // WSL's arguments (only `/sbin/init` today), then the masks: they are systemd's kernel
    // command line here too (WSL runs it with `container=wsl`).
    let args: Vec<CString> = std::env::args_os()
        .skip(1)
        .filter_map(env::cstring)
        .chain(namespace::masks())
        .collect();
    let plan = Plan {
        first_boot: first_boot::decide(&first_boot::facts(&config)),
        config,
        args,
        env: std::env::vars_os()
            .filter_map(|(k, v)| cvar(&k.to_string_lossy(), v))
            .collect(),
    };
    // The same order as in shell-wrapper mode: database, activation, then systemd looked for.
    match namespace::prepare(&mut Kernel, &plan) {
        Ok(systemd) => {
            let argv: Vec<CString> = std::iter::once(systemd.clone())
                .chain(plan.args.iter().cloned())
                .collect();
            sys::restore_signals();
            let err = sys::execve(&systemd, &argv, &plan.env);
            crate::say!("cannot exec {}: {err}", systemd.to_string_lossy());
        }
        Err(why) => crate::say!("{why}"),
    }
    crate::say!("staying PID 1 without systemd; shells get root's shell");
    loop {
        if sys::reap_any().is_err() {
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
    }
}
