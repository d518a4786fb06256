//! `init status`, `init shutdown`, `init recovery`: for people, run as root (`wsl -e INIT
//! status` from outside, or `sudo INIT status` from inside).

use std::ffi::OsString;
use std::fs::File;
use std::process::ExitCode;
use std::time::Duration;

use crate::error::Error;
use crate::handle::{self, Handle};
use crate::namespace::{self, failed_units};
use crate::place::{self, Place};
use crate::readiness::readable_within;
use crate::sys;

/// How long systemd gets to power off before it is killed.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

fn require_root() -> Result<(), Error> {
    match sys::euid() {
        0 => Ok(()),
        uid => Err(Error::NotRoot { uid }),
    }
}

/// systemd as this process sees it: its pid here and its mount namespace.
struct Systemd {
    pid: i32,
    pid_ns: File,
    mnt_ns: File,
    starttime: u64,
}

fn find() -> Option<Systemd> {
    if place::detect() != Place::Outside {
        let pid1_is_systemd =
            place::pid1_exe().is_some_and(|p| p.file_name().is_some_and(|n| n == "systemd"));
        return pid1_is_systemd.then(|| {
            Some(Systemd {
                pid: 1,
                pid_ns: File::open("/proc/self/ns/pid").ok()?,
                mnt_ns: File::open("/proc/self/ns/mnt").ok()?,
                starttime: handle::starttime(1).ok()?,
            })
        })?;
    }
    // A junk or stale handle: the systemd listening on its private socket, if it is ours.
    let open = match Handle::load().and_then(|h| h.open()) {
        Some(open) => open,
        None => match handle::find_listener() {
            handle::Found::Enterable(open) => open,
            handle::Found::Nothing => return None,
            handle::Found::Foreign { pid } => {
                crate::say!(
                    "pid {pid} listens on {} but is not a systemd init started",
                    handle::PRIVATE_SOCKET
                );
                return None;
            }
        },
    };
    Some(Systemd {
        pid: open.handle.pid,
        starttime: open.handle.starttime,
        pid_ns: open.pid_ns,
        mnt_ns: open.mnt_ns,
    })
}

fn out(text: &str) {
    sys::write_quietly(1, text.as_bytes());
}

pub fn status() -> Result<ExitCode, Error> {
    require_root()?;
    let Some(systemd) = find() else {
        out("systemd: not running (the next shell starts it)\n");
        return Ok(ExitCode::from(1));
    };
    let state = namespace::capture(
        &systemd.pid_ns,
        &systemd.mnt_ns,
        &["systemctl", "is-system-running"],
    )
    .filter(|s| !s.is_empty())
    .unwrap_or_else(|| "unknown".into());
    let failed = failed_units(&systemd.pid_ns, &systemd.mnt_ns);
    let uptime = std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|u| u.split_whitespace().next()?.parse::<f64>().ok())
        .map(|now| now - systemd.starttime as f64 / sys::clock_ticks() as f64)
        .map_or(0, |secs| secs.max(0.0) as u64);
    out(&format!(
        "systemd: pid {} ({} view), state {state}, up {}\nfailed units: {}\n",
        systemd.pid,
        if systemd.pid == 1 { "inside" } else { "WSL's" },
        duration(uptime),
        if failed.is_empty() {
            "none".into()
        } else {
            failed.join(" ")
        }
    ));
    Ok(ExitCode::SUCCESS)
}

pub fn duration(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m {}s", secs / 60, secs % 60),
        _ => format!("{}h {}m", secs / 3600, secs % 3600 / 60),
    }
}

pub fn shutdown() -> Result<ExitCode, Error> {
    require_root()?;
    let Some(systemd) = find() else {
        out("systemd: not running\n");
        return Ok(ExitCode::SUCCESS);
    };
    let pidfd = sys::pidfd(systemd.pid).map_err(|e| Error::io("open", "systemd's pidfd", e))?;
    sys::kill(systemd.pid, sys::poweroff_signal())
        .map_err(|e| Error::io("signal", format!("systemd (pid {})", systemd.pid), e))?;
    if readable_within(&pidfd, Some(SHUTDOWN_TIMEOUT)) {
        out("systemd: powered off\n");
    } else {
        let _ = sys::kill(systemd.pid, libc::SIGKILL);
        let _ = readable_within(&pidfd, Some(Duration::from_secs(5)));
        out(&format!(
            "systemd: killed after {} s without powering off\n",
            SHUTDOWN_TIMEOUT.as_secs()
        ));
    }
    if systemd.pid != 1 {
        Handle::remove();
    }
    Ok(ExitCode::SUCCESS)
}

/// A root login shell outside systemd's namespace (with `wsl -e`, WSL's own namespace).
pub fn recovery() -> Result<ExitCode, Error> {
    require_root()?;
    let config = crate::config::load();
    crate::say!("recovery: a root shell outside systemd's namespace; `exit` leaves it");
    // The configured shell, unless it is missing or init itself: then /bin/sh (said).
    Err(crate::wrapper::real_root_shell(
        &config,
        true,
        &[] as &[OsString],
    ))
}
