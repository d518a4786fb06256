//! Starting systemd once, as PID 1 of new PID and mount namespaces, and the order of the steps
//! that matters (behind [`Steps`], so a unit test checks it without root):
//!
//! 1. (child A) `setsid`, `unshare(CLONE_NEWPID | CLONE_NEWNS)`, fork B, report B's pid, exit;
//! 2. (B, PID 1 of the new namespace) make `/` rslave *before* anything is mounted, so no mount
//!    leaks back into WSL's namespace; mount a fresh `/proc`; run the activation command if
//!    needed; exec systemd with a clean environment and our `NOTIFY_SOCKET`.
//!
//! The caller holds the lock, writes the handle as soon as B exists, waits for exec (activation
//! done), then for `READY=1`, bounded by the boot timeout.

use std::ffi::{CStr, CString};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use wsl_common::init_config::InitConfig;

use crate::env::{self, cvar};
use crate::error::Error;
use crate::handle::{self, Handle, Open};
use crate::readiness::{self, Listener, Outcome};
use crate::sys::{self, Fork};

pub const LOCK: &str = "/run/nixos-wsl/lock";
/// What services get as `WSL_INTEROP` in shell-wrapper mode: a link to the newest session's
/// socket, updated by every shell.
pub const INTEROP_LINK: &str = "/run/nixos-wsl/interop";
/// systemd's drop-in giving services WSL's variables.
pub const SERVICE_ENV: &str = "/run/systemd/system.conf.d/nixos-wsl.conf";

/// The namespace and mount steps, so their order can be checked without root.
pub trait Steps {
    fn unshare(&mut self) -> io::Result<()>;
    fn make_root_rslave(&mut self) -> io::Result<()>;
    fn mount_proc(&mut self) -> io::Result<()>;
    fn activate(&mut self, program: &CStr) -> io::Result<()>;
    /// Returns only on failure.
    fn exec_systemd(&mut self, plan: &Plan) -> io::Error;
}

/// What the new PID 1 runs, prepared before forking.
pub struct Plan {
    pub systemd: CString,
    pub argv: Vec<CString>,
    pub env: Vec<CString>,
    pub activate: Option<CString>,
}

/// Steps of child A (after `setsid`): returns the failed step.
pub fn in_child<S: Steps>(steps: &mut S) -> Result<(), (&'static str, io::Error)> {
    steps
        .unshare()
        .map_err(|e| ("unshare PID and mount namespaces", e))
}

/// Steps of PID 1 of the new namespace, ending in systemd; returns the failed step.
pub fn in_new_pid1<S: Steps>(steps: &mut S, plan: &Plan) -> (&'static str, io::Error) {
    if let Err(e) = steps.make_root_rslave() {
        return ("make / rslave", e);
    }
    if let Err(e) = steps.mount_proc() {
        return ("mount /proc", e);
    }
    if let Some(program) = &plan.activate {
        if let Err(e) = steps.activate(program) {
            crate::say!(
                "activation {} failed: {e}; starting systemd anyway",
                program.to_string_lossy()
            );
        }
    }
    ("exec systemd", steps.exec_systemd(plan))
}

/// The real kernel.
pub struct Kernel;

impl Steps for Kernel {
    fn unshare(&mut self) -> io::Result<()> {
        sys::unshare_pid_and_mount()
    }

    fn make_root_rslave(&mut self) -> io::Result<()> {
        use rustix::mount::{mount_change, MountPropagationFlags as F};
        Ok(mount_change("/", F::DOWNSTREAM | F::REC)?)
    }

    fn mount_proc(&mut self) -> io::Result<()> {
        use rustix::mount::{mount, MountFlags as F};
        Ok(mount(
            "proc",
            "/proc",
            "proc",
            F::NOSUID | F::NODEV | F::NOEXEC,
            None,
        )?)
    }

    fn activate(&mut self, program: &CStr) -> io::Result<()> {
        let argv = [program.to_owned()];
        let envp: Vec<CString> = [("PATH", env::DEBIAN_PATH), ("LANG", "C.UTF-8")]
            .iter()
            .filter_map(|(k, v)| cvar(k, v))
            .collect();
        // SAFETY: init is single-threaded; the child only execs or exits.
        match unsafe { sys::fork() }? {
            Fork::Child => {
                // Its output goes to the caller's stderr: the first shell's stdout stays clean.
                let _ = sys::dup2(2, 1);
                if let Ok(null) = File::open("/dev/null") {
                    let _ = sys::dup2(null.as_raw_fd(), 0);
                }
                sys::restore_signals();
                let err = sys::execve(program, &argv, &envp);
                crate::say!("cannot run {}: {err}", program.to_string_lossy());
                sys::exit_now(127)
            }
            Fork::Parent(pid) => match sys::wait_for(pid)? {
                sys::Exit::Code(0) => Ok(()),
                sys::Exit::Code(c) => Err(io::Error::other(format!("exit status {c}"))),
                sys::Exit::Signal(s) => Err(io::Error::other(format!("killed by signal {s}"))),
            },
        }
    }

    fn exec_systemd(&mut self, plan: &Plan) -> io::Error {
        // systemd must not hold the first shell's pipes or terminal open.
        if let Err(e) = sys::stdio_to_null() {
            return e;
        }
        sys::restore_signals();
        sys::execve(&plan.systemd, &plan.argv, &plan.env)
    }
}

/// The first existing systemd of the configuration.
pub fn find_systemd(config: &InitConfig) -> Option<&str> {
    config
        .systemd
        .iter()
        .map(String::as_str)
        .find(|p| Path::new(p).is_file())
}

/// Whether the activation command must run first.
pub fn activation_needed(config: &InitConfig) -> Option<&str> {
    let needed = !config.activate.is_empty()
        && !Path::new(&config.activated).exists()
        && Path::new(&config.activate).exists();
    needed.then_some(config.activate.as_str())
}

/// Gives services WSL's variables (systemd gives services none of its own environment).
pub fn write_service_environment(vars: &[(&str, &str)]) {
    let mut line = String::from("[Manager]\nDefaultEnvironment=");
    for (key, value) in vars {
        if value.contains(['"', '\\', '\n']) {
            continue;
        }
        line.push_str(&format!("\"{key}={value}\" "));
    }
    line.push('\n');
    let path = Path::new(SERVICE_ENV);
    let written = path
        .parent()
        .map_or(Ok(()), fs::create_dir_all)
        .and_then(|()| fs::write(path, line));
    if let Err(e) = written {
        crate::say!("cannot write {SERVICE_ENV}: {e}; services will not see WSL_INTEROP");
    }
}

/// Lingering makes logind start the user's systemd instance at boot (`systemctl --user`).
pub fn enable_linger(user: &str) {
    if user == "root" {
        return;
    }
    let dir = Path::new("/var/lib/systemd/linger");
    let file = dir.join(user);
    if file.exists() {
        return;
    }
    if let Err(e) = fs::create_dir_all(dir).and_then(|()| fs::write(&file, b"")) {
        crate::say!(
            "cannot enable lingering for {user} ({}): {e}",
            file.display()
        );
    }
}

/// Starts systemd unless a valid handle appears while we wait for the lock. Errors mean no
/// systemd: the caller gives a shell without it.
pub fn start(config: &InitConfig) -> Result<Open, Error> {
    fs::create_dir_all(handle::DIR).map_err(|e| Error::io("create", handle::DIR, e))?;
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(LOCK)
        .map_err(|e| Error::io("open", LOCK, e))?;
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
        .map_err(|e| Error::io("lock", LOCK, e))?;
    if let Some(open) = Handle::load().and_then(|h| h.open()) {
        return Ok(open);
    }
    Handle::remove();
    let systemd = find_systemd(config).ok_or_else(|| {
        Error::Boot(format!(
            "no systemd found (tried {}; see `systemd =` in {})",
            config.systemd.join(", "),
            wsl_common::paths::INIT_CONFIG
        ))
    })?;
    let distro = std::env::var("WSL_DISTRO_NAME").unwrap_or_default();
    write_service_environment(&[("WSL_DISTRO_NAME", &distro), ("WSL_INTEROP", INTEROP_LINK)]);
    enable_linger(&config.user);
    let listener = Listener::bind().map_err(|e| Error::io("bind", readiness::NOTIFY_SOCKET, e))?;
    let lang = std::env::var("LANG").unwrap_or_else(|_| "C.UTF-8".into());
    let plan = Plan {
        systemd: env::cstring(systemd).ok_or_else(|| Error::Boot("bad systemd path".into()))?,
        argv: env::cstring(systemd).into_iter().collect(),
        env: [
            ("container", "wsl"),
            ("PATH", env::DEBIAN_PATH),
            ("LANG", &lang),
            ("WSL_DISTRO_NAME", &distro),
            ("WSL_INTEROP", INTEROP_LINK),
            ("NOTIFY_SOCKET", readiness::NOTIFY_SOCKET),
        ]
        .iter()
        .filter_map(|(k, v)| cvar(k, v))
        .collect(),
        activate: activation_needed(config).and_then(env::cstring),
    };
    let (mut pid_r, pid_w) = sys::pipe().map_err(|e| Error::io("create", "a pipe", e))?;
    let (mut status_r, status_w) = sys::pipe().map_err(|e| Error::io("create", "a pipe", e))?;

    // SAFETY: init is single-threaded; the child never returns (spawn_namespace ends in exit).
    match unsafe { sys::fork() }.map_err(|e| Error::io("fork", "for systemd", e))? {
        Fork::Child => spawn_namespace(&plan, pid_w, status_w),
        Fork::Parent(a) => {
            drop((pid_w, status_w));
            let mut text = String::new();
            let _ = pid_r.read_to_string(&mut text);
            let _ = sys::wait_for(a);
            let pid: i32 = match text.trim().parse() {
                Ok(pid) => pid,
                Err(_) => return Err(Error::Boot(failure(&mut status_r))),
            };
            boot_wait(config, pid, &listener, &mut status_r)
        }
    }
}

/// Child A: new session, new namespaces, then B (PID 1 there). Never returns.
fn spawn_namespace(plan: &Plan, pid_w: File, status_w: File) -> ! {
    sys::close_fds_except(&[pid_w.as_raw_fd(), status_w.as_raw_fd()]);
    let mut status_w = status_w;
    let _ = sys::setsid();
    if let Err((step, e)) = in_child(&mut Kernel) {
        let _ = write!(status_w, "cannot {step}: {e}");
        sys::exit_now(1);
    }
    // SAFETY: still single-threaded; B ends in exec or exit.
    match unsafe { sys::fork() } {
        Ok(Fork::Child) => {
            drop(pid_w);
            let (step, e) = in_new_pid1(&mut Kernel, plan);
            let _ = write!(
                status_w,
                "cannot {step} {}: {e}",
                plan.systemd.to_string_lossy()
            );
            sys::exit_now(1)
        }
        Ok(Fork::Parent(b)) => {
            let mut pid_w = pid_w;
            let _ = write!(pid_w, "{b}");
            sys::exit_now(0)
        }
        Err(e) => {
            let _ = write!(status_w, "cannot fork PID 1 of the new namespace: {e}");
            sys::exit_now(1)
        }
    }
}

fn failure(status_r: &mut File) -> String {
    let mut text = String::new();
    let _ = status_r.read_to_string(&mut text);
    if text.is_empty() {
        "systemd's namespace could not be set up".into()
    } else {
        text
    }
}

/// Records the handle, waits for exec (activation done) and for READY=1, and says in one line
/// what is wrong if anything is.
fn boot_wait(
    config: &InitConfig,
    pid: i32,
    listener: &Listener,
    status_r: &mut File,
) -> Result<Open, Error> {
    let mut handle =
        Handle::of_process(pid).map_err(|e| Error::io("inspect", format!("/proc/{pid}"), e))?;
    handle
        .save()
        .map_err(|e| Error::io("write", handle::FILE, e))?;
    // Whatever happens next, later shells may enter without the lock once we are done.
    let mark_ready = |mut handle: Handle| {
        handle.ready = true;
        if let Err(e) = handle.save() {
            crate::say!("cannot write {}: {e}", handle::FILE);
        }
    };
    let process =
        sys::pidfd(pid).map_err(|e| Error::io("open", format!("a pidfd for {pid}"), e))?;
    let timeout = Duration::from_secs(u64::from(config.boot_timeout_secs));

    // Activation first: its own budget (a 10 s activation is normal on NixOS).
    if readiness::readable_within(status_r, timeout) {
        let mut text = String::new();
        let _ = status_r.read_to_string(&mut text);
        if !text.is_empty() {
            Handle::remove();
            return Err(Error::Boot(text));
        }
    } else {
        crate::say!(
            "activation still running after {} s; starting the shell anyway",
            config.boot_timeout_secs
        );
        mark_ready(handle);
        return handle
            .open()
            .ok_or_else(|| Error::Boot("systemd's namespace vanished".into()));
    }

    let outcome = listener
        .wait(&process, Instant::now() + timeout)
        .map_err(|e| Error::io("wait on", readiness::NOTIFY_SOCKET, e))?;
    if outcome == Outcome::Died {
        Handle::remove();
        return Err(Error::Boot("systemd exited while booting".into()));
    }
    let open = handle
        .open()
        .ok_or_else(|| Error::Boot("systemd exited while booting".into()))?;
    handle.ready = true;
    mark_ready(handle);
    match outcome {
        Outcome::TimedOut => crate::say!(
            "systemd is not ready after {} s (state: {}); starting the shell anyway",
            config.boot_timeout_secs,
            system_state(&open)
        ),
        _ => report_failed_units(&open),
    }
    Ok(open)
}

/// Runs a systemd tool in systemd's PID and mount namespaces (systemd does not answer a
/// peer outside its PID namespace); its stdout. Our later children are in that PID namespace.
pub fn capture(pid_ns: &File, mnt_ns: &File, args: &[&str]) -> Option<String> {
    let (program, rest) = args.split_first()?;
    sys::setns(pid_ns.as_fd(), libc::CLONE_NEWPID).ok()?;
    let mut command = Command::new(program);
    command
        .args(rest)
        .env_clear()
        .env(
            "PATH",
            format!("/run/current-system/sw/bin:{}", env::DEBIAN_PATH),
        )
        .stdin(Stdio::null())
        .stderr(Stdio::null());
    sys::in_mount_namespace(&mut command, mnt_ns.as_fd().as_raw_fd());
    let out = command.output().ok()?;
    Some(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

pub fn system_state(open: &Open) -> String {
    capture(
        &open.pid_ns,
        &open.mnt_ns,
        &["systemctl", "is-system-running"],
    )
    .filter(|s| !s.is_empty())
    .unwrap_or_else(|| "unknown".into())
}

pub fn failed_units(pid_ns: &File, mnt_ns: &File) -> Vec<String> {
    let args = [
        "systemctl",
        "list-units",
        "--state=failed",
        "--plain",
        "--no-legend",
        "--no-pager",
    ];
    capture(pid_ns, mnt_ns, &args)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

/// Says which units failed, if any, from a child of ours so the first shell does not wait
/// for `systemctl` (tens of milliseconds); the line comes while the shell starts.
fn report_failed_units(open: &Open) {
    // SAFETY: init is single-threaded; the child only queries, prints and exits.
    if let Ok(Fork::Child) = unsafe { sys::fork() } {
        // Not the lock nor the notify socket: only what the query needs.
        sys::close_fds_except(&[open.pid_ns.as_raw_fd(), open.mnt_ns.as_raw_fd()]);
        let failed = failed_units(&open.pid_ns, &open.mnt_ns);
        if !failed.is_empty() {
            crate::say!("systemd is degraded: failed units: {}", failed.join(" "));
        }
        sys::exit_now(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Record(Vec<String>);

    impl Steps for Record {
        fn unshare(&mut self) -> io::Result<()> {
            self.0.push("unshare".into());
            Ok(())
        }
        fn make_root_rslave(&mut self) -> io::Result<()> {
            self.0.push("rslave /".into());
            Ok(())
        }
        fn mount_proc(&mut self) -> io::Result<()> {
            self.0.push("mount /proc".into());
            Ok(())
        }
        fn activate(&mut self, program: &CStr) -> io::Result<()> {
            self.0
                .push(format!("activate {}", program.to_string_lossy()));
            Err(io::Error::other("activation failed"))
        }
        fn exec_systemd(&mut self, plan: &Plan) -> io::Error {
            self.0
                .push(format!("exec {}", plan.systemd.to_string_lossy()));
            io::Error::from(io::ErrorKind::NotFound)
        }
    }

    fn plan(activate: Option<&str>) -> Plan {
        Plan {
            systemd: c"/lib/systemd/systemd".to_owned(),
            argv: vec![],
            env: vec![],
            activate: activate.and_then(env::cstring),
        }
    }

    #[test]
    fn rslave_before_proc_before_activation_before_systemd() {
        let mut steps = Record::default();
        assert!(in_child(&mut steps).is_ok());
        let (step, _) = in_new_pid1(&mut steps, &plan(Some("/activate")));
        assert_eq!(step, "exec systemd");
        assert_eq!(
            steps.0,
            [
                "unshare",
                "rslave /",
                "mount /proc",
                "activate /activate",
                "exec /lib/systemd/systemd"
            ]
        );
    }

    #[test]
    fn no_activation_when_not_needed() {
        let mut steps = Record::default();
        let _ = in_new_pid1(&mut steps, &plan(None));
        assert_eq!(
            steps.0,
            ["rslave /", "mount /proc", "exec /lib/systemd/systemd"]
        );
    }

    struct FailRslave;
    impl Steps for FailRslave {
        fn unshare(&mut self) -> io::Result<()> {
            Ok(())
        }
        fn make_root_rslave(&mut self) -> io::Result<()> {
            Err(io::Error::from(io::ErrorKind::PermissionDenied))
        }
        fn mount_proc(&mut self) -> io::Result<()> {
            panic!("/proc mounted although / is still shared")
        }
        fn activate(&mut self, _: &CStr) -> io::Result<()> {
            panic!("activation ran")
        }
        fn exec_systemd(&mut self, _: &Plan) -> io::Error {
            panic!("systemd started")
        }
    }

    #[test]
    fn nothing_is_mounted_when_rslave_fails() {
        let (step, _) = in_new_pid1(&mut FailRslave, &plan(Some("/activate")));
        assert_eq!(step, "make / rslave");
    }

    #[test]
    fn activation_needed_only_when_configured_present_and_not_done() {
        let mut config = InitConfig {
            activate: "/bin/sh".into(),
            activated: "/nonexistent-activated".into(),
            ..InitConfig::default()
        };
        assert_eq!(activation_needed(&config), Some("/bin/sh"));
        config.activated = "/".into();
        assert_eq!(activation_needed(&config), None);
        config.activated = "/nonexistent-activated".into();
        config.activate = String::new();
        assert_eq!(activation_needed(&config), None);
        config.activate = "/nonexistent-activate".into();
        assert_eq!(activation_needed(&config), None);
    }
}
