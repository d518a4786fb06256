//! `wsl-sim run`: one WSL session. The caller's process (wsl.exe and WSL's service) joins the
//! instance's namespaces, starting the instance first if needed, and starts a relay, WSL's
//! `/init` again, inside. The relay is what WSL's is (init.cpp:1440-2062): a subreaper that
//! ignores every signal but SIGHUP, owns the session's interop socket
//! `/run/WSL/<relay pid>_interop`, gives the user's program a new pty (`forkpty`: a session
//! leader with a controlling terminal), replaces each standard descriptor that is not a
//! terminal on the caller's side with a pipe, copies between the caller and the pty or pipes,
//! and hands back the exit status as WSL does.

use std::ffi::OsString;
use std::fs::{self, File};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::error::{Error, Result};
use super::import::require_distribution;
use super::passwd::User;
use super::pid1::Options;
use super::state::{Instance, State};
use super::{cgroup, instance, interop, oobe, sys, wslg};

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
    /// WSLg runs on the Windows side (applies when this session starts the instance).
    pub wslg: bool,
    /// An elevated (administrator) Windows session.
    pub elevated: bool,
}

/// The Windows part of WSL's PATH (one entry has a space, as `Program Files` does).
pub const WINDOWS_PATH: &str =
    "/mnt/c/Windows/System32:/mnt/c/Windows:/mnt/c/Program Files/PowerShell/7";
/// WSL's Linux PATH (LXSS_DISTRO_DEFAULT_ENVIRONMENT, wslservice.idl:100), then /usr/lib/wsl/lib and Windows' folders.
const LINUX_PATH: &str =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/games:/usr/local/games";
/// musl's execvpe searches this when the caller has no PATH, as WSL's init has none.
const EXEC_SEARCH_PATH: &str = "/usr/local/bin:/bin:/usr/bin";
/// wsl.exe's exit status for `getpwnam` failing on `-u` (EX_NOUSER, init.cpp:1004-1008).
const EX_NOUSER: i32 = 67;

/// Host side of `run`: returns the session's exit code.
pub fn run(request: &Request) -> Result<i32> {
    let state = State::for_distro(&request.distro)?;
    require_distribution(&state.distro)?;
    let name = request.name.clone().unwrap_or_else(|| {
        state
            .distro
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    });
    let lock = state.lock()?;
    let registry = oobe::Registry::read(&state);
    let (instance, started) = match state.running() {
        Some(instance) => (instance, false),
        None => {
            let options = Options {
                wslg: request.wslg || std::env::var_os("WSL_SIM_WSLG").is_some_and(|v| v == "1"),
                default_uid: registry.default_uid,
            };
            (instance::start(&state, &name, &options)?, true)
        }
    };
    let conf = state.conf();
    let wslg = state.wslg();
    // OOBE only for a start without a command (LxssInstance.cpp:671-674).
    let oobe = registry.run_oobe && request.mode == Mode::Login;
    // Opened before the host's paths vanish behind the namespace switch.
    let registry_file = oobe.then(|| registry.open(&state)).flatten();
    join(&state, instance, request.elevated)?;
    if started && conf.systemd {
        wait_for_systemd(conf.init_timeout);
    }
    drop(lock);

    let oobe_result = PathBuf::from(format!("/run/WSL/oobe-{}", std::process::id()));
    let mut relay = Command::new("/init");
    relay
        .arg0("/init")
        .arg("__session")
        .arg(&name)
        .arg(request.user.as_deref().unwrap_or(""))
        .arg(request.cwd.as_deref().unwrap_or(Path::new("")))
        .arg(request.mode.as_str())
        .arg("--default-uid")
        .arg(registry.default_uid.to_string());
    if let Some(user) = &conf.default_user {
        relay.arg("--default-user").arg(user);
    }
    if conf.systemd && std::fs::symlink_metadata("/run/WSL/1_interop").is_ok() {
        relay.arg("--systemd");
    }
    if wslg {
        relay.arg("--wslg");
    }
    if oobe {
        relay.arg("--oobe").arg(&oobe_result);
    }
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
    // The relay's exit status message comes on its descriptor 3; the relay itself lives on
    // while the program's descendants do (it is their subreaper), as WSL's does.
    let (status_read, status_write) =
        sys::pipe().map_err(|e| Error::io("cannot create", "a pipe", e))?;
    sys::pass_as_fd3(&mut relay, status_write.as_raw_fd());
    sys::ignore_terminal_signals();
    // wsl.exe hands the console over raw: the pty's line discipline inside does the rest.
    let saved = sys::isatty(0).then(|| sys::make_raw(0)).flatten();
    let child = relay.spawn();
    drop(status_write);
    let code = child.map(|mut child| {
        let mut message = String::new();
        use std::io::BufRead;
        let _ = std::io::BufReader::new(File::from(status_read)).read_line(&mut message);
        match message
            .strip_prefix("exit ")
            .and_then(|c| c.trim().parse::<i32>().ok())
        {
            Some(code) => code,
            None => child.wait().ok().and_then(|s| s.code()).unwrap_or(1),
        }
    });
    if let Some(saved) = &saved {
        sys::restore_terminal(0, saved);
    }
    let code = code.map_err(|e| Error::io("cannot start the session relay", "/init", e))?;
    if let Some(mut file) = registry_file {
        // LxssInstance.cpp:565-578: OOBE done: RunOOBE off and the default uid it named.
        if let Ok(text) = fs::read_to_string(&oobe_result) {
            oobe::Registry::record_result(&mut file, &text);
        }
        let _ = fs::remove_file(&oobe_result);
    }
    Ok(code)
}

/// Joins the instance: its cgroup, then its namespaces (the mount namespace last, since the
/// host's paths vanish with it). An elevated session's mount namespace is its own
/// (config.cpp:2495-2530). Children of this process are then inside.
fn join(state: &State, instance: Instance, elevated: bool) -> Result<()> {
    let ns = |pid: u32, kind: &str| -> Result<File> {
        let path = format!("/proc/{pid}/ns/{kind}");
        File::open(&path).map_err(|e| Error::io("cannot open", path, e))
    };
    let mount_owner = if elevated {
        super::elevated::namespace_holder(state, instance)?
    } else {
        instance.pid
    };
    let files = [
        ns(instance.pid, "cgroup")?,
        ns(instance.pid, "ipc")?,
        ns(instance.pid, "uts")?,
        ns(instance.pid, "pid")?,
        ns(mount_owner, "mnt")?,
    ];
    cgroup::join(&state.key())?;
    for file in &files {
        sys::setns(file)
            .map_err(|e| Error::io("cannot join the namespaces of", &state.distro, e))?;
    }
    std::env::set_current_dir("/").map_err(|e| Error::io("cannot enter", "/", e))
}

/// Joins the instance's non-elevated namespaces (for the simulator's own helpers).
pub fn join_for_helper(state: &State, instance: Instance) -> Result<()> {
    join(state, instance, false)
}

/// `wsl-sim __poweroff DISTRO`: `systemctl poweroff` inside the instance, as WSL's terminate
/// runs it (init.cpp:2815-2822), through /bin/sh with no PATH.
pub fn poweroff(distro: &Path) -> Result<i32> {
    let state = State::for_distro(distro)?;
    let Some(instance) = state.running() else {
        return Ok(0);
    };
    join(&state, instance, false)?;
    let _ = Command::new("/bin/sh")
        .args(["-c", "systemctl poweroff"])
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    Ok(0)
}

/// WSL's wait for a native systemd (init.cpp:3574-3601):
/// `systemctl is-system-running | grep -E "running|degraded"` through `/bin/sh` with no PATH,
/// every 250 ms, at most `[boot] initTimeout`; then it goes on regardless.
fn wait_for_systemd(timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let ok = Command::new("/bin/sh")
            .arg("-c")
            .arg("systemctl is-system-running | grep -E \"running|degraded\"")
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok || Instant::now() >= deadline {
            return;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// What WSL reports for the child's end (init.cpp:2055-2062): WEXITSTATUS, or the raw wait
/// status (the signal number N, with 0x80 for a core dump) for a signal death.
fn exit_code(status: ExitStatus) -> i32 {
    status.code().unwrap_or_else(|| status.into_raw() & 0xff)
}

struct RelayArgs {
    name: String,
    user: String,
    cwd: String,
    mode: Mode,
    default_user: Option<String>,
    default_uid: u32,
    systemd: bool,
    wslg: bool,
    oobe: Option<PathBuf>,
    extra_env: Vec<OsString>,
    term: Option<OsString>,
    program_args: Vec<OsString>,
}

fn parse_relay_args(args: &[OsString]) -> Result<RelayArgs> {
    let usage = || Error::Usage("bad __session arguments".into());
    let text = |i: usize| {
        args.get(i)
            .map(|a| a.to_string_lossy().into_owned())
            .ok_or_else(usage)
    };
    let mut parsed = RelayArgs {
        name: text(0)?,
        user: text(1)?,
        cwd: text(2)?,
        mode: Mode::parse(&text(3)?).ok_or_else(usage)?,
        default_user: None,
        default_uid: 0,
        systemd: false,
        wslg: false,
        oobe: None,
        extra_env: Vec::new(),
        term: None,
        program_args: Vec::new(),
    };
    let mut rest = args.iter().skip(4);
    while let Some(arg) = rest.next() {
        let mut value = || rest.next().cloned().ok_or_else(usage);
        match arg.to_str() {
            Some("--env") => parsed.extra_env.push(value()?),
            Some("--term") => parsed.term = Some(value()?),
            Some("--default-user") => {
                parsed.default_user = Some(value()?.to_string_lossy().into_owned())
            }
            Some("--default-uid") => {
                parsed.default_uid = value()?.to_string_lossy().parse().map_err(|_| usage())?
            }
            Some("--systemd") => parsed.systemd = true,
            Some("--wslg") => parsed.wslg = true,
            Some("--oobe") => parsed.oobe = Some(PathBuf::from(value()?)),
            Some("--") => break,
            _ => return Err(usage()),
        }
    }
    parsed.program_args = rest.cloned().collect();
    Ok(parsed)
}

/// The user of the session (init.cpp:1000-1032): `-u NAME` by getpwnam (unknown: exit 67),
/// else `[user] default` (unknown: on, silently), else the default uid, else root.
fn session_user(args: &RelayArgs) -> std::result::Result<User, i32> {
    let root = Path::new("/");
    if !args.user.is_empty() {
        return User::by_name(root, &args.user).ok_or_else(|| {
            eprintln!("wsl-sim: getpwnam({}) failed", args.user);
            EX_NOUSER
        });
    }
    Ok(args
        .default_user
        .as_deref()
        .and_then(|n| User::by_name(root, n))
        .or_else(|| User::by_uid(root, args.default_uid))
        .or_else(|| User::lookup(root, "root"))
        .unwrap_or_else(|| User {
            name: "root".into(),
            uid: 0,
            gid: 0,
            home: "/root".into(),
            shell: "/bin/sh".into(),
            groups: vec![0],
        }))
}

/// Relay side: `/init __session NAME USER CWD MODE [options] -- ARGS...`, inside the instance.
pub fn relay(args: &[OsString]) -> Result<i32> {
    let args = parse_relay_args(args)?;
    // The status channel to wsl-sim run: the relay's alone, never the program's.
    let _ = sys::keep_private_if_open(3);
    // The relay is a subreaper that ignores all but SIGHUP (init.cpp:1556-1562,
    // config.cpp:517-525).
    sys::set_subreaper().map_err(|e| Error::io("prctl", "PR_SET_CHILD_SUBREAPER", e))?;
    sys::ignore_all_but_sighup();
    let mut user = match session_user(&args) {
        Ok(user) => user,
        Err(code) => return finish(code, Path::new("")),
    };
    let socket = PathBuf::from(format!("/run/WSL/{}_interop", sys::getpid()));
    interop::serve_in_background(&socket, interop::Role::Relay)
        .map_err(|e| Error::io("cannot serve", &socket, e))?;

    let stdio = Stdio3::new().map_err(|e| Error::io("cannot create", "a pty", e))?;
    let env = environment(&args, &user, &socket);

    // OOBE before the user's program, on the session's terminal (init.cpp:625-676).
    if let Some(result_path) = &args.oobe {
        match oobe::run(&stdio.child_fds(), &env) {
            oobe::Outcome::Failed => {
                let _ = fs::write(result_path, "failed\n");
                return finish(1, &socket);
            }
            oobe::Outcome::Done { default_uid } => {
                let _ = fs::write(
                    result_path,
                    format!("ok {}\n", default_uid.map_or(-1, i64::from)),
                );
                if let Some(uid) = default_uid {
                    if let Some(found) = User::by_uid(Path::new("/"), uid) {
                        user = found;
                    }
                }
            }
        }
    }
    // Native systemd: a login session once per uid, and its runtime folder and bus
    // (init.cpp:685-706).
    let mut env = environment(&args, &user, &socket);
    if args.systemd {
        if !interop::request_login(user.uid, &user.name) {
            stdio.message(&format!(
                "wsl: Failed to start the systemd user session for '{}'. See journalctl for more details.\n",
                user.name
            ));
        }
        env.push((
            "DBUS_SESSION_BUS_ADDRESS".into(),
            format!("unix:path=/run/user/{}/bus", user.uid).into(),
        ));
        env.push((
            "XDG_RUNTIME_DIR".into(),
            format!("/run/user/{}", user.uid).into(),
        ));
    }

    let Some((program, argv0, argv)) = program_of(&args, &user) else {
        stdio.message(&format!(
            "execvpe({}) failed: No such file or directory\n",
            args.program_args
                .first()
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default()
        ));
        return finish(1, &socket);
    };
    let mut command = Command::new(&program);
    command.arg0(&argv0).args(&argv).env_clear();
    for (k, v) in &env {
        command.env(k, v);
    }
    // The tty belongs to the user (init.cpp:762-772: fchown to uid and the tty group).
    let _ = sys::fchown(stdio.slave.as_raw_fd(), user.uid, 5);
    let cwd = if args.cwd.is_empty() {
        user.home.clone()
    } else if let Some(rest) = args.cwd.strip_prefix('~') {
        format!("{}{rest}", user.home)
    } else {
        args.cwd.clone()
    };
    sys::ChildSetup {
        groups: user.groups.clone(),
        gid: user.gid,
        uid: user.uid,
        new_session: true,
        controlling_tty: Some(stdio.slave.as_raw_fd()),
        stdio: stdio.child_fds(),
        cwd: std::ffi::CString::new(cwd).ok(),
    }
    .install(&mut command);
    let child = command.spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) => {
            // FATAL_ERROR("execvpe({}) failed: ...") exits 1 (init.cpp:818-819, common.h:152-178);
            // WSL logs it to the kernel log, the simulator to the session.
            stdio.message(&format!("execvpe({}) failed: {e}\n", program.display()));
            return finish(1, &socket);
        }
    };
    let status = stdio.relay_until_exit(&mut child);
    finish(exit_code(status), &socket)
}

/// After the program: the exit status to wsl.exe, the caller's descriptors let go, then the
/// relay stays the subreaper of what the program left running (its interop socket with it)
/// until none is left (init.cpp:2063-2095).
fn finish(code: i32, socket: &Path) -> Result<i32> {
    if !sys::keep_private_if_open(3) {
        let _ = std::fs::remove_file(socket);
        return Ok(code);
    }
    let _ = sys::write_fd_all(3, format!("exit {code}\n").as_bytes());
    sys::close(3);
    sys::detach_stdio();
    while sys::wait_any() {}
    let _ = std::fs::remove_file(socket);
    Ok(code)
}

/// The program, argv[0] and the rest of argv (init.cpp:708-756): the shell (`/bin/sh` when
/// passwd has none) with `-c` or as a login shell, or `-e`'s program found as musl's execvpe
/// finds it without a PATH.
fn program_of(args: &RelayArgs, user: &User) -> Option<(PathBuf, OsString, Vec<OsString>)> {
    match args.mode {
        Mode::Command => {
            let mut joined = Vec::new();
            for (i, arg) in args.program_args.iter().enumerate() {
                if i > 0 {
                    joined.push(b' ');
                }
                joined.extend_from_slice(arg.as_encoded_bytes());
            }
            Some((
                PathBuf::from(&user.shell),
                OsString::from(&user.shell),
                vec!["-c".into(), OsString::from_vec(joined)],
            ))
        }
        Mode::Login => {
            let base = user.shell.rsplit('/').next().unwrap_or(&user.shell);
            Some((
                PathBuf::from(&user.shell),
                OsString::from(format!("-{base}")),
                Vec::new(),
            ))
        }
        Mode::Exec => {
            let (program, rest) = args.program_args.split_first()?;
            let path = if program.as_encoded_bytes().contains(&b'/') {
                PathBuf::from(program)
            } else {
                EXEC_SEARCH_PATH
                    .split(':')
                    .map(|dir| Path::new(dir).join(program))
                    .find(|p| p.is_file())?
            };
            Some((path, program.clone(), rest.to_vec()))
        }
    }
}

/// The session's environment (config.cpp:1660-1792, init.cpp:585-609).
fn environment(args: &RelayArgs, user: &User, socket: &Path) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = vec![
        ("HOSTTYPE".into(), "x86_64".into()),
        ("LANG".into(), "C.UTF-8".into()),
        (
            "PATH".into(),
            format!("{LINUX_PATH}:/usr/lib/wsl/lib:{WINDOWS_PATH}").into(),
        ),
        (
            "TERM".into(),
            args.term.clone().unwrap_or_else(|| "xterm-256color".into()),
        ),
        ("WSLENV".into(), "WT_SESSION:WT_PROFILE_ID:".into()),
        ("WSL_DISTRO_NAME".into(), args.name.clone().into()),
        ("NAME".into(), "WSL-SIM-HOST".into()),
        ("WSL_INTEROP".into(), socket.into()),
        ("HOME".into(), user.home.clone().into()),
        ("USER".into(), user.name.clone().into()),
        ("LOGNAME".into(), user.name.clone().into()),
        ("SHELL".into(), user.shell.clone().into()),
    ];
    if args.wslg {
        for (k, v) in wslg::ENVIRONMENT {
            env.push(((*k).into(), (*v).into()));
        }
    }
    for pair in &args.extra_env {
        let bytes = pair.as_encoded_bytes();
        if let Some(eq) = bytes.iter().position(|&b| b == b'=') {
            env.push((
                OsString::from_vec(bytes[..eq].to_vec()),
                OsString::from_vec(bytes[eq + 1..].to_vec()),
            ));
        }
    }
    env
}

/// The session's standard descriptors: the pty, and a pipe for each of the caller's that is
/// not a terminal (init.cpp:1511-1548, 1583-1650).
struct Stdio3 {
    master: OwnedFd,
    slave: OwnedFd,
    tty: [bool; 3],
    stdin_pipe: Option<(OwnedFd, OwnedFd)>,
    stdout_pipe: Option<(OwnedFd, OwnedFd)>,
    stderr_pipe: Option<(OwnedFd, OwnedFd)>,
}

impl Stdio3 {
    fn new() -> std::io::Result<Self> {
        let tty = [sys::isatty(0), sys::isatty(1), sys::isatty(2)];
        let size = (0..3)
            .filter(|&fd| tty[fd as usize])
            .find_map(sys::window_size);
        let (master, slave) = sys::openpty(size)?;
        let pipe_unless = |is_tty: bool| (!is_tty).then(sys::pipe).transpose();
        Ok(Self {
            master,
            slave,
            tty,
            stdin_pipe: pipe_unless(tty[0])?,
            stdout_pipe: pipe_unless(tty[1])?,
            stderr_pipe: pipe_unless(tty[2])?,
        })
    }

    /// What the child gets on 0, 1, 2.
    fn child_fds(&self) -> [Option<RawFd>; 3] {
        let slave = self.slave.as_raw_fd();
        [
            Some(self.stdin_pipe.as_ref().map_or(slave, |p| p.0.as_raw_fd())),
            Some(self.stdout_pipe.as_ref().map_or(slave, |p| p.1.as_raw_fd())),
            Some(self.stderr_pipe.as_ref().map_or(slave, |p| p.1.as_raw_fd())),
        ]
    }

    /// A message from the relay itself, to the caller's stderr.
    fn message(&self, text: &str) {
        let _ = sys::write_fd_all(2, text.as_bytes());
    }

    /// Copies until the child exits, then what is left in the pty and the pipes; returns how
    /// the child ended. Output that the pty has goes to the caller's stdout when it is a
    /// terminal, else its stderr when that is one, else nowhere (init.cpp:1925-1970).
    fn relay_until_exit(self, child: &mut std::process::Child) -> ExitStatus {
        let Stdio3 {
            master,
            slave,
            tty,
            stdin_pipe,
            stdout_pipe,
            stderr_pipe,
        } = self;
        drop(slave);
        // The child's ends are its own now.
        let stdin_write = stdin_pipe.map(|(r, w)| {
            drop(r);
            w
        });
        let stdout_read = stdout_pipe.map(|(r, w)| {
            drop(w);
            r
        });
        let stderr_read = stderr_pipe.map(|(r, w)| {
            drop(w);
            r
        });
        // Input on its own thread, so a child that does not read never blocks the output.
        let input_target: Option<OwnedFd> = match stdin_write {
            Some(w) => Some(w),
            None => master.try_clone().ok(),
        };
        if let Some(target) = input_target {
            let to_pty = tty[0];
            std::thread::spawn(move || copy_input(target, to_pty));
        }
        let master_sink = if tty[1] {
            Some(1)
        } else if tty[2] {
            Some(2)
        } else {
            None
        };
        let mut sources: Vec<(RawFd, Option<RawFd>)> = vec![(master.as_raw_fd(), master_sink)];
        if let Some(r) = &stdout_read {
            sources.push((r.as_raw_fd(), Some(1)));
        }
        if let Some(r) = &stderr_read {
            sources.push((r.as_raw_fd(), Some(2)));
        }
        for (fd, _) in &sources {
            let _ = sys::set_nonblocking(*fd);
        }
        let mut open: Vec<bool> = vec![true; sources.len()];
        let mut buf = vec![0u8; 64 * 1024];
        let status = loop {
            let mut fds: Vec<libc::pollfd> = sources
                .iter()
                .zip(&open)
                .map(|((fd, _), &o)| libc::pollfd {
                    fd: if o { *fd } else { -1 },
                    events: libc::POLLIN,
                    revents: 0,
                })
                .collect();
            let _ = sys::poll(&mut fds, 50);
            for (i, pfd) in fds.iter().enumerate() {
                if pfd.revents != 0 && open[i] {
                    open[i] = pump(sources[i], &mut buf) != Pumped::Closed;
                }
            }
            if let Ok(Some(status)) = child.try_wait() {
                break status;
            }
        };
        // What the child wrote before it ended is still buffered.
        for (i, source) in sources.iter().enumerate() {
            while open[i] && pump(*source, &mut buf) == Pumped::Data {}
        }
        drop(master);
        status
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Pumped {
    Data,
    Nothing,
    Closed,
}

/// One read from `source` copied to its sink.
fn pump((fd, sink): (RawFd, Option<RawFd>), buf: &mut [u8]) -> Pumped {
    match sys::read_fd(fd, buf) {
        Ok(0) => Pumped::Closed,
        Ok(n) => {
            if let Some(sink) = sink {
                let _ = sys::write_fd_all(sink, &buf[..n]);
            }
            Pumped::Data
        }
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Pumped::Nothing,
        Err(_) => Pumped::Closed,
    }
}

/// The caller's stdin into the pty or the stdin pipe; at its end the pipe is closed (the
/// child sees end of file).
fn copy_input(target: OwnedFd, _to_pty: bool) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match sys::read_fd(0, &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if sys::write_fd_all(target.as_raw_fd(), &buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    drop(target);
}
