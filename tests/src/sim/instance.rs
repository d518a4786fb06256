//! Starting and stopping a distribution's instance, the way WSL's VM does: a detached
//! keeper process (the "VM side") puts itself in the instance's cgroup, enters a fresh PID
//! namespace and starts PID 1 there (see `pid1`, which enters fresh mount, UTS, IPC and cgroup
//! namespaces). The keeper waits for PID 1 and cleans up after it.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::error::{Error, Result};
use super::pid1::Options;
use super::state::{start_time, Instance, State};
use super::{cgroup, sys};

/// Starts PID 1 for `state`'s distribution and returns once its mounts are in place.
/// The caller holds the state lock. /etc/wsl.conf is read here, once per instance start
/// (WslDistributionConfig.cpp:62-68), into the state, where every later step reads it. WSL reads
/// it inside the distribution, so a link (NixOS's `/etc/wsl.conf -> /etc/static/wsl.conf`)
/// resolves there, not on the host.
pub fn start(state: &State, name: &str, options: &Options) -> Result<Instance> {
    let exe = std::env::current_exe().map_err(|e| Error::io("cannot find", "/proc/self/exe", e))?;
    let conf_text = super::import::resolve_in(&state.distro, "/etc/wsl.conf")
        .and_then(|path| std::fs::read_to_string(path).ok())
        .unwrap_or_default();
    let conf_path = state.conf_path();
    std::fs::write(&conf_path, &conf_text).map_err(|e| Error::io("cannot write", &conf_path, e))?;
    state.record_options(options)?;
    let log_path = state.log_path();
    let log = File::create(&log_path).map_err(|e| Error::io("cannot create", &log_path, e))?;
    let mut keeper = Command::new(&exe);
    keeper
        .arg("__keeper")
        .arg(&state.distro)
        .arg(name)
        .arg(state.key())
        .env(Options::WSLG_ENV, if options.wslg { "1" } else { "0" })
        .env(Options::UID_ENV, options.default_uid.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log);
    sys::detach(&mut keeper);
    let mut child = keeper
        .spawn()
        .map_err(|e| Error::io("cannot start", &exe, e))?;
    let Some(stdout) = child.stdout.take() else {
        return Err(Error::Boot("no pipe from the keeper".into()));
    };
    let mut pid = None;
    let mut ready = false;
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        if let Some(n) = line.strip_prefix("pid ") {
            pid = n.trim().parse::<u32>().ok();
        } else if let Some(warning) = line.strip_prefix("warning ") {
            // WSL's EMIT_USER_WARNING: shown on the console of the session that started it.
            eprintln!("wsl: {warning}");
        } else if line == "ready" {
            ready = true;
        }
        if ready && pid.is_some() {
            break;
        }
    }
    // The keeper is detached: it outlives this process and is reaped by the host's init.
    drop(child);
    match (pid, ready) {
        (Some(pid), true) => {
            let start_time = start_time(pid)
                .ok_or_else(|| Error::Boot(format!("PID 1 (host pid {pid}) died at once")))?;
            let instance = Instance { pid, start_time };
            state.record(instance)?;
            Ok(instance)
        }
        _ => {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            Err(Error::Boot(format!(
                "{} (log {})",
                log.trim(),
                log_path.display()
            )))
        }
    }
}

/// The keeper: `wsl-sim __keeper DISTRO NAME KEY`, stdout a pipe to `start`.
pub fn keeper(distro: &Path, name: &str, key: &str) -> Result<()> {
    cgroup::create_and_join(key)?;
    // Only the PID namespace is entered here (it applies to the child); PID 1 enters the
    // others itself, so the keeper stays in the host's mount and cgroup namespaces: pivot_root
    // would otherwise move its root too, and it could not remove the instance's cgroup.
    let flags = sys::CLONE_NEWPID;
    sys::unshare(flags).map_err(|e| Error::Boot(format!("unshare: {e}")))?;
    // The child is PID 1 of the new PID namespace.
    let state = State::for_distro(distro)?;
    let mut pid1 = Command::new("/proc/self/exe");
    pid1.arg0("/init")
        .arg("__pid1")
        .arg(distro)
        .arg(name)
        .arg(state.conf_path())
        .stdin(Stdio::null());
    // The VM's own cgroup view: WSL gives the distribution no cgroup namespace
    // (main.cpp:3027), but the simulator's "VM" is a cgroup of the host, so PID 1 is born in a
    // namespace rooted there, which every session shares.
    sys::unshare_cgroup_in_child(&mut pid1);
    let mut pid1 = pid1
        .spawn()
        .map_err(|e| Error::io("cannot start PID 1 from", "/proc/self/exe", e))?;
    println!("pid {}", pid1.id());
    cgroup::leave()?;
    let instance = start_time(pid1.id()).map(|start_time| Instance {
        pid: pid1.id(),
        start_time,
    });
    let _ = sys::silence_stdout();
    let status = pid1.wait();
    eprintln!("wsl-sim: PID 1 ended: {status:?}");
    if let Some(instance) = instance {
        state.forget(instance);
    }
    cgroup::remove(key);
    Ok(())
}

/// `wsl --terminate` (init.cpp:2796-2836): with systemd, `systemctl poweroff` and up to
/// `boot.initTimeout` for it; then (or at once without systemd) `reboot()`, which in a PID
/// namespace kills its PID 1 and with it the whole namespace: a SIGKILL here.
pub fn terminate(state: &State) -> Result<()> {
    let Some(instance) = state.running() else {
        return Err(Error::NotRunning(state.distro.clone()));
    };
    let conf = state.conf();
    if conf.systemd {
        let exe =
            std::env::current_exe().map_err(|e| Error::io("cannot find", "/proc/self/exe", e))?;
        let _ = Command::new(exe)
            .arg("__poweroff")
            .arg(&state.distro)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + conf.init_timeout;
        while start_time(instance.pid) == Some(instance.start_time) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    sys::kill(instance.pid, libc::SIGKILL)
        .map_err(|e| Error::io("cannot kill PID 1 of", &state.distro, e))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while start_time(instance.pid) == Some(instance.start_time) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    state.forget(instance);
    // Give the keeper a moment to remove the cgroup, so a quick restart starts clean.
    let cgroup = cgroup::path(&state.key());
    while cgroup.as_ref().is_ok_and(|c| c.exists()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}
