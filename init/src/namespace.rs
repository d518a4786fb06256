//! Starting systemd once, as PID 1 of new PID and mount namespaces, and the order of the steps
//! that matters (behind [`Steps`], so a unit test checks it without root):
//!
//! 1. (child A) `setsid`, `unshare(CLONE_NEWPID | CLONE_NEWNS)`, fork B, report B's pid, exit;
//! 2. (B, PID 1 of the new namespace) make `/` rslave *before* anything is mounted, so no mount
//!    leaks back into WSL's namespace; mount a fresh `/proc`; load a bare tarball's Nix
//!    database (once); run the activation command if needed; only then look for systemd (on
//!    NixOS it exists only after activation, as `/run/current-system/systemd/lib/systemd/
//!    systemd`) and exec it with a clean environment, our `NOTIFY_SOCKET` and the WSL masks.
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
use wsl_common::units::hostile_unit_names;

use crate::env::{self, cvar};
use crate::error::Error;
use crate::first_boot::{self, Decision};
use crate::first_boot_account;
use crate::handle::{self, Found, Handle, Open};
use crate::readiness::{self, Listener, Outcome};
use crate::sys::{self, Fork};

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
    /// The `.wsl`'s user held back by packer, into /etc/passwd ([`first_boot_account`]).
    fn restore_first_boot_account(&mut self);
    /// `nix-store --load-db` (and `nix-env --set` of the system profile) for a bare tarball.
    fn load_registration(
        &mut self,
        nix_store: &str,
        set_profile: Option<&(String, String)>,
    ) -> io::Result<()>;
    /// The activation command to run now, if any (looked at after the registration is loaded:
    /// that may have made the profile, and with it the command).
    fn activation_needed(&mut self, config: &InitConfig) -> Option<CString>;
    fn activate(&mut self, program: &CStr) -> io::Result<()>;
    /// The first configured systemd that exists now (after the activation).
    fn find_systemd(&mut self, config: &InitConfig) -> Option<CString>;
    /// Returns only on failure.
    fn exec_systemd(&mut self, systemd: &CStr, plan: &Plan) -> io::Error;
}

/// What the new PID 1 runs, prepared before forking.
pub struct Plan {
    pub config: InitConfig,
    pub first_boot: Decision,
    /// After `argv[0]`: what was passed to us (native mode), then the masks.
    pub args: Vec<CString>,
    pub env: Vec<CString>,
}

/// `systemd.mask=UNIT` for every unit that fights WSL. systemd in a container takes PID 1's
/// own arguments as its kernel command line (src/basic/proc-cmdline.c, `proc_cmdline`: with
/// `detect_container() > 0` it reads `/proc/1/cmdline`), and systemd-debug-generator turns each
/// `systemd.mask=` into a link to /dev/null in `/run/systemd/generator.early`
/// (src/debug-generator/debug-generator.c, `generate_mask_symlinks`), which comes before
/// `/etc/systemd/system` in the unit path (src/basic/path-lookup.c): the masks hold on NixOS,
/// whose `/etc/systemd/system` is a link into the store that nothing may write into.
///
/// (A mask holds for one name only: logind's `autovt@tty1.service` alias of `getty@tty1` is
/// therefore in the list under its own name.)
pub fn masks() -> Vec<CString> {
    hostile_unit_names()
        .filter_map(|unit| CString::new(format!("systemd.mask={unit}")).ok())
        .collect()
}

/// Steps of child A (after `setsid`): returns the failed step.
pub fn in_child<S: Steps>(steps: &mut S) -> Result<(), (&'static str, io::Error)> {
    steps
        .unshare()
        .map_err(|e| ("unshare PID and mount namespaces", e))
}

/// What every mode does before systemd, in this order: the bare tarball's database, the
/// activation, then systemd looked for. Failures of the first two are said and passed over.
pub fn prepare<S: Steps>(steps: &mut S, plan: &Plan) -> Result<CString, String> {
    steps.restore_first_boot_account();
    match &plan.first_boot {
        Decision::Nothing => {}
        Decision::Cannot(why) => crate::say!("{why}; the system may not activate"),
        Decision::Run {
            nix_store,
            set_profile,
        } => {
            if let Err(e) = steps.load_registration(nix_store, set_profile.as_ref()) {
                crate::say!(
                    "loading {} into the Nix database failed: {e}; it is tried again at the next start",
                    first_boot::REGISTRATION
                );
            }
        }
    }
    if let Some(program) = steps.activation_needed(&plan.config) {
        if let Err(e) = steps.activate(&program) {
            crate::say!(
                "activation {} failed: {e}; starting systemd anyway",
                program.to_string_lossy()
            );
        }
    }
    steps.find_systemd(&plan.config).ok_or_else(|| {
        format!(
            "no systemd found (tried {}; see `systemd =` in {})",
            plan.config.systemd.join(", "),
            wsl_common::paths::INIT_CONFIG
        )
    })
}

/// Steps of PID 1 of the new namespace, ending in systemd; returns what failed.
pub fn in_new_pid1<S: Steps>(steps: &mut S, plan: &Plan) -> String {
    if let Err(e) = steps.make_root_rslave() {
        return format!("cannot make / rslave: {e}");
    }
    if let Err(e) = steps.mount_proc() {
        return format!("cannot mount /proc: {e}");
    }
    match prepare(steps, plan) {
        Ok(systemd) => {
            let e = steps.exec_systemd(&systemd, plan);
            format!("cannot exec systemd {}: {e}", systemd.to_string_lossy())
        }
        Err(why) => why,
    }
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

    fn restore_first_boot_account(&mut self) {
        first_boot_account::restore();
    }

    fn load_registration(
        &mut self,
        nix_store: &str,
        set_profile: Option<&(String, String)>,
    ) -> io::Result<()> {
        let registration = File::open(first_boot::REGISTRATION)?;
        run(&[nix_store, "--load-db"], Some(&registration))
            .map_err(|e| io::Error::other(format!("{nix_store} --load-db: {e}")))?;
        if let Some((nix_env, system)) = set_profile {
            run(&[nix_env, "-p", first_boot::PROFILE, "--set", system], None)
                .map_err(|e| io::Error::other(format!("{nix_env} --set {system}: {e}")))?;
        }
        let marker = Path::new(first_boot::MARKER);
        marker.parent().map_or(Ok(()), fs::create_dir_all)?;
        fs::write(marker, b"")
    }

    fn activation_needed(&mut self, config: &InitConfig) -> Option<CString> {
        activation_needed(config).and_then(env::cstring)
    }

    fn activate(&mut self, program: &CStr) -> io::Result<()> {
        run(&[&program.to_string_lossy()], None)
    }

    fn find_systemd(&mut self, config: &InitConfig) -> Option<CString> {
        find_systemd(config).and_then(env::cstring)
    }

    fn exec_systemd(&mut self, systemd: &CStr, plan: &Plan) -> io::Error {
        // systemd must not hold the first shell's pipes or terminal open.
        if let Err(e) = sys::stdio_to_null() {
            return e;
        }
        let argv: Vec<CString> = std::iter::once(systemd.to_owned())
            .chain(plan.args.iter().cloned())
            .collect();
        sys::restore_signals();
        sys::execve(systemd, &argv, &plan.env)
    }
}

/// Runs a preparation command (activation, nix-store) to its end; its output goes to the
/// caller's stderr, so the first shell's stdout stays clean.
fn run(argv: &[&str], stdin: Option<&File>) -> io::Result<()> {
    let argv: Vec<CString> = argv.iter().filter_map(|a| env::cstring(*a)).collect();
    let Some(program) = argv.first().cloned() else {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    };
    let envp: Vec<CString> = [
        ("PATH", env::DEBIAN_PATH),
        ("LANG", "C.UTF-8"),
        ("HOME", "/root"),
    ]
    .iter()
    .filter_map(|(k, v)| cvar(k, v))
    .collect();
    // SAFETY: init is single-threaded; the child only execs or exits.
    match unsafe { sys::fork() }? {
        Fork::Child => {
            let _ = sys::dup2(2, 1);
            match stdin {
                Some(file) => {
                    let _ = sys::dup2(file.as_raw_fd(), 0);
                }
                None => {
                    if let Ok(null) = File::open("/dev/null") {
                        let _ = sys::dup2(null.as_raw_fd(), 0);
                    }
                }
            }
            sys::restore_signals();
            let err = sys::execve(&program, &argv, &envp);
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

/// The first existing systemd of the configuration (a `/run/current-system/...` path also
/// through the system profile: nothing assumes `/lib/systemd`).
pub fn find_systemd(config: &InitConfig) -> Option<String> {
    config
        .systemd
        .iter()
        .filter_map(|p| crate::shell::existing(p))
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

/// The boot timeout: `None` for 0 (no limit).
pub fn boot_timeout(config: &InitConfig) -> Option<Duration> {
    (config.boot_timeout_secs > 0).then(|| Duration::from_secs(u64::from(config.boot_timeout_secs)))
}

/// The systemd the handle should have named, found through what the kernel says listens on
/// systemd's private socket: adopted (the handle rewritten) when it is one we can enter; when
/// something else listens, no second systemd is started beside it.
fn adopt_listener() -> Result<Option<Open>, Error> {
    match handle::find_listener() {
        Found::Nothing => Ok(None),
        Found::Enterable(open) => {
            crate::say!(
                "{} did not name the running systemd; found it (pid {}) through {}",
                handle::FILE,
                open.handle.pid,
                handle::PRIVATE_SOCKET
            );
            if let Err(e) = open.handle.save() {
                crate::say!("cannot write {}: {e}", handle::FILE);
            }
            Ok(Some(open))
        }
        Found::Foreign { pid } => Err(Error::Boot(format!(
            "a systemd may still run: pid {pid} listens on {} but is not one init can enter;              not starting a second one (stop it, or `wsl --terminate` the distribution)",
            handle::PRIVATE_SOCKET
        ))),
    }
}

/// Starts systemd unless a valid handle appears while we wait for the lock. Errors mean no
/// systemd: the caller gives a shell without it.
pub fn start(config: &InitConfig) -> Result<Open, Error> {
    let timeout = boot_timeout(config);
    // The holder may spend the activation's budget and the boot's, and a first boot's load.
    let bound = timeout.map(|t| 2 * t + Duration::from_secs(30));
    let _lock = crate::lock::acquire(bound)?;
    if let Some(open) = Handle::load().and_then(|h| h.open()) {
        return Ok(open);
    }
    if let Some(open) = adopt_listener()? {
        return Ok(open);
    }
    Handle::remove();
    let distro = std::env::var("WSL_DISTRO_NAME").unwrap_or_default();
    write_service_environment(&[("WSL_DISTRO_NAME", &distro), ("WSL_INTEROP", INTEROP_LINK)]);
    crate::wslg::prepare(
        crate::wslg::Mode::Wrapper,
        std::env::current_exe().ok().as_deref(),
    );
    enable_linger(&config.user);
    let listener = Listener::bind().map_err(|e| Error::io("bind", readiness::NOTIFY_SOCKET, e))?;
    let lang = std::env::var("LANG").unwrap_or_else(|_| "C.UTF-8".into());
    let first_boot = first_boot::decide(&first_boot::facts(config));
    let preparing = first_boot != Decision::Nothing || activation_needed(config).is_some();
    let plan = Plan {
        config: config.clone(),
        first_boot,
        args: masks(),
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
            boot_wait(timeout, preparing, pid, &listener, &mut status_r)
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
            let why = in_new_pid1(&mut Kernel, plan);
            let _ = write!(status_w, "{why}");
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

/// Records the handle, waits for exec (preparation done) and for READY=1, and says in one
/// line what is wrong if anything is. `timeout` bounds each wait; `None` waits until systemd
/// is up or has died.
fn boot_wait(
    timeout: Option<Duration>,
    preparing: bool,
    pid: i32,
    listener: &Listener,
    status_r: &mut File,
) -> Result<Open, Error> {
    // B may already have ended (no systemd found): then its reason is in the pipe.
    let mut handle = match Handle::of_process(pid) {
        Ok(handle) => handle,
        Err(e) => {
            let text = failure(status_r);
            return Err(if text.starts_with("systemd's namespace") {
                Error::io("inspect", format!("/proc/{pid}"), e)
            } else {
                Error::Boot(text)
            });
        }
    };
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
    let process = match sys::pidfd(pid) {
        Ok(fd) => fd,
        Err(e) => {
            Handle::remove();
            let text = failure(status_r);
            return Err(if text.starts_with("systemd's namespace") {
                Error::io("open", format!("a pidfd for {pid}"), e)
            } else {
                Error::Boot(text)
            });
        }
    };

    // The preparation first: its own budget (a 10 s activation is normal on NixOS).
    if readiness::readable_within(status_r, timeout) {
        let mut text = String::new();
        let _ = status_r.read_to_string(&mut text);
        if !text.is_empty() {
            Handle::remove();
            return Err(Error::Boot(text));
        }
    } else {
        let secs = timeout.map_or(0, |t| t.as_secs());
        if preparing {
            crate::say!("activation still running after {secs} s; starting the shell anyway");
        } else {
            crate::say!("systemd was not started after {secs} s; starting the shell anyway");
        }
        mark_ready(handle);
        return handle
            .open()
            .ok_or_else(|| Error::Boot("systemd's namespace vanished".into()));
    }

    let outcome = listener
        .wait(&process, timeout.map(|t| Instant::now() + t))
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
            timeout.map_or(0, |t| t.as_secs()),
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

/// Says which units failed, if any, before the first shell starts. Only the first shell of a
/// boot pays for the query (tens of milliseconds after seconds of boot): a reporter forked to
/// print it while the shell runs loses its line on real WSL, whose relay stops passing output
/// on once the session's program has ended (microsoft/WSL `src/linux/init/init.cpp:2079-2081`).
fn report_failed_units(open: &Open) {
    let failed = failed_units(&open.pid_ns, &open.mnt_ns);
    if !failed.is_empty() {
        crate::say!("systemd is degraded: failed units: {}", failed.join(" "));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records each step. The activation "makes" systemd, as NixOS's makes
    /// `/run/current-system`: systemd is found only when looked for after it.
    #[derive(Default)]
    struct Record {
        steps: Vec<String>,
        activated: bool,
        activation: Option<&'static str>,
    }

    impl Steps for Record {
        fn unshare(&mut self) -> io::Result<()> {
            self.steps.push("unshare".into());
            Ok(())
        }
        fn make_root_rslave(&mut self) -> io::Result<()> {
            self.steps.push("rslave /".into());
            Ok(())
        }
        fn mount_proc(&mut self) -> io::Result<()> {
            self.steps.push("mount /proc".into());
            Ok(())
        }
        fn restore_first_boot_account(&mut self) {
            self.steps.push("account".into());
        }
        fn load_registration(
            &mut self,
            nix_store: &str,
            set_profile: Option<&(String, String)>,
        ) -> io::Result<()> {
            self.steps.push(format!("load-db {nix_store}"));
            if let Some((_, system)) = set_profile {
                self.steps.push(format!("profile {system}"));
                // The profile now exists, and with it the activation command.
                self.activation = Some("/activate");
            }
            Ok(())
        }
        fn activation_needed(&mut self, _: &InitConfig) -> Option<CString> {
            self.activation.and_then(env::cstring)
        }
        fn activate(&mut self, program: &CStr) -> io::Result<()> {
            self.steps
                .push(format!("activate {}", program.to_string_lossy()));
            self.activated = true;
            Err(io::Error::other("activation failed"))
        }
        fn find_systemd(&mut self, _: &InitConfig) -> Option<CString> {
            self.steps.push("find systemd".into());
            self.activated
                .then(|| c"/run/current-system/systemd/lib/systemd/systemd".to_owned())
        }
        fn exec_systemd(&mut self, systemd: &CStr, plan: &Plan) -> io::Error {
            self.steps.push(format!(
                "exec {} {}",
                systemd.to_string_lossy(),
                plan.args.len()
            ));
            io::Error::from(io::ErrorKind::NotFound)
        }
    }

    fn plan(first_boot: Decision) -> Plan {
        Plan {
            config: InitConfig::default(),
            first_boot,
            args: masks(),
            env: vec![],
        }
    }

    const SYSTEMD: &str = "/run/current-system/systemd/lib/systemd/systemd";

    #[test]
    fn rslave_before_proc_before_the_account_and_activation_before_systemd_is_looked_for() {
        let mut steps = Record {
            activation: Some("/activate"),
            ..Record::default()
        };
        assert!(in_child(&mut steps).is_ok());
        let why = in_new_pid1(&mut steps, &plan(Decision::Nothing));
        assert!(why.starts_with("cannot exec systemd"), "{why}");
        let n = masks().len();
        assert_eq!(
            steps.steps,
            [
                "unshare".to_owned(),
                "rslave /".into(),
                "mount /proc".into(),
                "account".into(),
                "activate /activate".into(),
                "find systemd".into(),
                format!("exec {SYSTEMD} {n}"),
            ]
        );
    }

    #[test]
    fn a_bare_tarball_loads_its_database_then_activates_the_profile_it_set() {
        let mut steps = Record::default();
        let first_boot = Decision::Run {
            nix_store: "/nix/store/n/bin/nix-store".into(),
            set_profile: Some(("/nix/store/n/bin/nix-env".into(), "/nix/store/s".into())),
        };
        let _ = in_new_pid1(&mut steps, &plan(first_boot));
        assert_eq!(
            steps.steps[3..],
            [
                "load-db /nix/store/n/bin/nix-store".to_owned(),
                "profile /nix/store/s".into(),
                "activate /activate".into(),
                "find systemd".into(),
                format!("exec {SYSTEMD} {}", masks().len()),
            ]
        );
    }

    #[test]
    fn no_systemd_after_preparation_is_named_with_the_paths_tried() {
        let mut steps = Record::default();
        let why = in_new_pid1(&mut steps, &plan(Decision::Nothing));
        assert!(why.contains("no systemd found"), "{why}");
        assert!(why.contains("/lib/systemd/systemd"), "{why}");
        assert_eq!(steps.steps.last().map(String::as_str), Some("find systemd"));
    }

    #[test]
    fn every_hostile_unit_is_masked_on_the_command_line() {
        let masks: Vec<String> = masks()
            .iter()
            .map(|m| m.to_string_lossy().into_owned())
            .collect();
        assert_eq!(masks.len(), wsl_common::units::HOSTILE_UNITS.len());
        assert!(masks.contains(&"systemd.mask=systemd-binfmt.service".to_owned()));
        assert!(masks.contains(&"systemd.mask=getty@tty1.service".to_owned()));
        assert!(masks.contains(&"systemd.mask=autovt@tty1.service".to_owned()));
        assert!(masks.iter().all(|m| m.starts_with("systemd.mask=")));
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
        fn restore_first_boot_account(&mut self) {
            panic!("/etc/passwd changed although / is still shared")
        }
        fn load_registration(&mut self, _: &str, _: Option<&(String, String)>) -> io::Result<()> {
            panic!("nix-store ran")
        }
        fn activation_needed(&mut self, _: &InitConfig) -> Option<CString> {
            panic!("activation looked at")
        }
        fn activate(&mut self, _: &CStr) -> io::Result<()> {
            panic!("activation ran")
        }
        fn find_systemd(&mut self, _: &InitConfig) -> Option<CString> {
            panic!("systemd looked for")
        }
        fn exec_systemd(&mut self, _: &CStr, _: &Plan) -> io::Error {
            panic!("systemd started")
        }
    }

    #[test]
    fn nothing_is_mounted_when_rslave_fails() {
        let why = in_new_pid1(&mut FailRslave, &plan(Decision::Nothing));
        assert!(why.contains("make / rslave"), "{why}");
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
