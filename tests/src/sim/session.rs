//! `wsl-sim run`: one WSL session. The caller's process joins the instance's namespaces
//! (starting the instance first if needed) and starts a relay, WSL's `/init` again, inside;
//! the relay owns the session's interop socket `/run/WSL/<relay pid>_interop`, starts the
//! default user's shell the way WSL does and hands its exit status back.

use std::ffi::OsString;
use std::fs::File;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use super::error::{Error, Result};
use super::import::require_distribution;
use super::passwd::User;
use super::state::{Instance, State};
use super::wsl_conf::WslConf;
use super::{cgroup, instance, interop, sys};

/// How WSL runs the shell for this session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `wsl -- CMD...`: `SHELL -c "CMD..."`.
    Command,
    /// `wsl` alone: a login shell.
    Login,
    /// `wsl -e PROG ARGS`: PROG itself, no shell.
    Exec,
}

impl Mode {
    fn as_str(self) -> &'static str {
        match self {
            Mode::Command => "command",
            Mode::Login => "login",
            Mode::Exec => "exec",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [Mode::Command, Mode::Login, Mode::Exec]
            .into_iter()
            .find(|m| m.as_str() == s)
    }
}

#[derive(Debug, Clone)]
pub struct Request {
    pub distro: PathBuf,
    pub name: Option<String>,
    pub user: Option<String>,
    pub cwd: Option<PathBuf>,
    pub mode: Mode,
    pub args: Vec<OsString>,
}

/// The Windows part of WSL's PATH (one entry has a space, as `Program Files` does).
pub const WINDOWS_PATH: &str =
    "/mnt/c/Windows/System32:/mnt/c/Windows:/mnt/c/Program Files/PowerShell/7";
const LINUX_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Host side of `run`: returns the session's exit code.
pub fn run(request: &Request) -> Result<i32> {
    let state = State::for_distro(&request.distro)?;
    require_distribution(&state.distro)?;
    let conf = WslConf::read(&state.distro);
    let name = request.name.clone().unwrap_or_else(|| {
        state
            .distro
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    });
    let lock = state.lock()?;
    let (instance, started) = match state.running() {
        Some(instance) => (instance, false),
        None => (instance::start(&state, &name)?, true),
    };
    join(&state, instance)?;
    if started && conf.systemd {
        wait_for_systemd(conf.init_timeout);
    }
    drop(lock);

    let mut relay = Command::new("/init");
    relay
        .arg0("/init")
        .arg("__session")
        .arg(&name)
        .arg(request.user.as_deref().unwrap_or(""))
        .arg(request.cwd.as_deref().unwrap_or(Path::new("")))
        .arg(request.mode.as_str());
    for (key, value) in std::env::vars_os() {
        let key = key.into_vec();
        if let Some(name) = key.strip_prefix(b"WSL_SIM_ENV_") {
            let mut pair = name.to_vec();
            pair.push(b'=');
            pair.extend(value.into_vec());
            relay.arg("--env").arg(OsString::from_vec(pair));
        }
    }
    if let Some(term) = std::env::var_os("TERM") {
        relay.arg("--term").arg(term);
    }
    relay.arg("--").args(&request.args).env_clear();
    sys::ignore_terminal_signals();
    let status = relay
        .status()
        .map_err(|e| Error::io("cannot start the session relay", "/init", e))?;
    Ok(exit_code(status))
}

/// Joins the instance: its cgroup, then its namespaces (the mount namespace last, since the
/// host's paths vanish with it). Children of this process are then inside.
fn join(state: &State, instance: Instance) -> Result<()> {
    let ns = |kind: &str| -> Result<File> {
        let path = format!("/proc/{}/ns/{kind}", instance.pid);
        File::open(&path).map_err(|e| Error::io("cannot open", path, e))
    };
    let files = [
        ns("cgroup")?,
        ns("ipc")?,
        ns("uts")?,
        ns("pid")?,
        ns("mnt")?,
    ];
    cgroup::join(&state.key())?;
    for file in &files {
        sys::setns(file)
            .map_err(|e| Error::io("cannot join the namespaces of", &state.distro, e))?;
    }
    std::env::set_current_dir("/").map_err(|e| Error::io("cannot enter", "/", e))
}

/// WSL's wait for a native systemd: `systemctl is-system-running` every 250 ms until it says
/// running or degraded, at most `[boot] initTimeout`; then it goes on regardless.
fn wait_for_systemd(timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let state = Command::new("systemctl")
            .arg("is-system-running")
            .env_clear()
            .env("PATH", format!("/run/current-system/sw/bin:{LINUX_PATH}"))
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default();
        if state == "running" || state == "degraded" || Instant::now() >= deadline {
            return;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn exit_code(status: ExitStatus) -> i32 {
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// Relay side: `/init __session NAME USER CWD MODE [--env K=V]... [--term T] -- ARGS...`,
/// running inside the instance.
pub fn relay(args: &[OsString]) -> Result<i32> {
    let usage = || Error::Usage("bad __session arguments".into());
    let text = |i: usize| {
        args.get(i)
            .map(|a| a.to_string_lossy().into_owned())
            .ok_or_else(usage)
    };
    let (name, user, cwd, mode) = (text(0)?, text(1)?, text(2)?, text(3)?);
    let mode = Mode::parse(&mode).ok_or_else(usage)?;
    let mut extra_env = Vec::new();
    let mut term = None;
    let mut rest = args.iter().skip(4);
    while let Some(arg) = rest.next() {
        match arg.to_str() {
            Some("--env") => extra_env.push(rest.next().ok_or_else(usage)?.clone()),
            Some("--term") => term = rest.next().cloned(),
            Some("--") => break,
            _ => return Err(usage()),
        }
    }
    let program_args: Vec<OsString> = rest.cloned().collect();

    let conf = WslConf::read(Path::new("/"));
    let user_name = if user.is_empty() {
        conf.default_user.unwrap_or_else(|| "root".into())
    } else {
        user
    };
    let Some(user) = User::lookup(Path::new("/"), &user_name) else {
        eprintln!("wsl-sim: user {user_name} does not exist in /etc/passwd");
        return Ok(1);
    };
    let socket = PathBuf::from(format!("/run/WSL/{}_interop", sys::getpid()));
    interop::serve_in_background(&socket).map_err(|e| Error::io("cannot serve", &socket, e))?;

    let mut command = match mode {
        Mode::Command => {
            // WSL joins the arguments with single spaces into one command line.
            let mut joined = Vec::new();
            for (i, arg) in program_args.iter().enumerate() {
                if i > 0 {
                    joined.push(b' ');
                }
                joined.extend_from_slice(arg.as_encoded_bytes());
            }
            let joined = OsString::from_vec(joined);
            let mut c = Command::new(&user.shell);
            c.arg("-c").arg(joined);
            c
        }
        Mode::Login => {
            let base = Path::new(&user.shell)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let mut c = Command::new(&user.shell);
            c.arg0(format!("-{base}"));
            c
        }
        Mode::Exec => {
            let Some((program, rest)) = program_args.split_first() else {
                return Err(Error::Usage("-e needs a program".into()));
            };
            let mut c = Command::new(program);
            c.args(rest);
            c
        }
    };
    let cwd = Some(PathBuf::from(&cwd))
        .filter(|c| !c.as_os_str().is_empty() && c.is_dir())
        .or_else(|| Some(PathBuf::from(&user.home)).filter(|h| h.is_dir()))
        .unwrap_or_else(|| PathBuf::from("/"));
    command
        .current_dir(&cwd)
        .env_clear()
        .env("HOME", &user.home)
        .env("USER", &user.name)
        .env("LOGNAME", &user.name)
        .env("SHELL", &user.shell)
        .env(
            "PATH",
            format!("{LINUX_PATH}:/usr/lib/wsl/lib:{WINDOWS_PATH}"),
        )
        .env("TERM", term.unwrap_or_else(|| "xterm-256color".into()))
        .env("LANG", "C.UTF-8")
        .env("HOSTTYPE", "x86_64")
        .env("NAME", "WSL-SIM-HOST")
        .env("WSL_DISTRO_NAME", &name)
        .env("WSL_INTEROP", &socket)
        .env("WSLENV", "WT_SESSION:WT_PROFILE_ID:");
    for pair in &extra_env {
        let bytes = pair.as_encoded_bytes();
        if let Some(eq) = bytes.iter().position(|&b| b == b'=') {
            let (k, v) = (
                OsString::from_vec(bytes[..eq].to_vec()),
                OsString::from_vec(bytes[eq + 1..].to_vec()),
            );
            command.env(k, v);
        }
    }
    sys::ChildSetup {
        groups: user.groups.clone(),
        gid: user.gid,
        uid: user.uid,
        new_session: false,
    }
    .install(&mut command);
    sys::ignore_terminal_signals();
    let code = match command.status() {
        Ok(status) => exit_code(status),
        Err(e) => {
            let program = command.get_program().to_string_lossy().into_owned();
            eprintln!("wsl-sim: cannot run {program}: {e}");
            if e.kind() == std::io::ErrorKind::NotFound {
                127
            } else {
                126
            }
        }
    };
    let _ = std::fs::remove_file(&socket);
    Ok(code)
}
