//! Elevated sessions (`run --elevated`): WSL keeps a second mount namespace for elevated
//! Windows processes, an `unshare(CLONE_NEWNS)` copy of the first made when one is first
//! needed, and each relay `setns`es into the one its client's elevation names
//! (config.cpp:2228-2330, 2495-2530; init.cpp:1466-1472). The simulator's second namespace is
//! held by a process inside the instance; its drvfs is the same tmpfs (WSL's differs only in
//! the rights of its 9P server).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use super::error::{Error, Result};
use super::state::{start_time, Instance, State};
use super::sys;

/// The host pid of the process that holds the instance's elevated mount namespace, started
/// on first use.
pub fn namespace_holder(state: &State, instance: Instance) -> Result<u32> {
    let path = state.dir.join("elevated");
    if let Ok(text) = std::fs::read_to_string(&path) {
        let mut words = text.split_whitespace();
        if let (Some(Ok(pid)), Some(Ok(start))) = (
            words.next().map(str::parse::<u32>),
            words.next().map(str::parse::<u64>),
        ) {
            if start_time(pid) == Some(start) {
                return Ok(pid);
            }
        }
    }
    let exe = std::env::current_exe().map_err(|e| Error::io("cannot find", "/proc/self/exe", e))?;
    let mut helper = Command::new(exe)
        .arg("__elevated")
        .arg(&state.distro)
        .arg(instance.pid.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| Error::io("cannot start", "the elevated namespace", e))?;
    let mut line = String::new();
    if let Some(out) = helper.stdout.take() {
        let _ = BufReader::new(out).read_line(&mut line);
    }
    let _ = helper.wait();
    let pid: u32 = line
        .trim()
        .parse()
        .map_err(|_| Error::Boot("the elevated mount namespace did not start".into()))?;
    let start = start_time(pid).unwrap_or(0);
    let _ = std::fs::write(&path, format!("{pid} {start}\n"));
    Ok(pid)
}

/// `wsl-sim __elevated DISTRO PID1`: joins the instance and starts the holder inside; prints
/// its host pid.
pub fn helper(distro: &Path) -> Result<i32> {
    let state = State::for_distro(distro)?;
    let Some(instance) = state.running() else {
        return Err(Error::NotRunning(state.distro.clone()));
    };
    super::session::join_for_helper(&state, instance)?;
    let mut holder = Command::new("/init")
        .arg("__elevated_holder")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| Error::io("cannot start", "/init __elevated_holder", e))?;
    let mut line = String::new();
    if let Some(out) = holder.stdout.take() {
        let _ = BufReader::new(out).read_line(&mut line);
    }
    println!("{}", holder.id());
    Ok(0)
}

/// `/init __elevated_holder`: a copy of the mount namespace, held until the instance ends.
pub fn holder() -> Result<i32> {
    sys::unshare(sys::CLONE_NEWNS).map_err(|e| Error::Boot(format!("unshare: {e}")))?;
    println!("ready");
    let _ = sys::silence_stdout();
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}
