//! Running the user's shell: inside systemd's namespaces (join, clone, wait) or in place.

use std::ffi::{CStr, CString, OsString};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use wsl_common::init_config::InitConfig;

use crate::args::basename;
use crate::env::{self, Inputs};
use crate::error::Error;
use crate::handle::Open;
use crate::namespace::INTEROP_LINK;
use crate::sys::{self, Exit, SpawnError};
use crate::user::User;

/// Everything the shell's exec needs, prepared before the child is cloned.
pub struct Target {
    pub user: User,
    pub program: CString,
    pub argv: Vec<CString>,
    pub env: Vec<CString>,
    pub cwd: Option<PathBuf>,
}

/// argv for `shell`: a login `argv[0]` (`-bash`) when asked, else the shell's path; then `args`
/// exactly.
pub fn shell_argv(shell: &OsString, login: bool, args: &[OsString]) -> Vec<CString> {
    let argv0 = if login {
        let mut name = b"-".to_vec();
        name.extend_from_slice(basename(shell).as_bytes());
        name
    } else {
        shell.as_bytes().to_vec()
    };
    std::iter::once(argv0)
        .chain(args.iter().map(|a| a.as_bytes().to_vec()))
        .filter_map(|a| CString::new(a).ok())
        .collect()
}

/// The configured user's shell in this (mount) namespace, with the caller's environment.
pub fn target(config: &InitConfig, login: bool, args: &[OsString], cwd: Option<PathBuf>) -> Target {
    // A user whose passwd shell is init (the NixOS module's native mode) gets `user-shell`.
    let by_user_shell = config.user != "root" && !config.user_shell.is_empty();
    let real = if by_user_shell {
        &config.user_shell
    } else {
        &config.shell
    };
    let mut user = User::lookup(&config.user, real).unwrap_or_else(|| {
        crate::say!(
            "user {} is not in /etc/passwd; starting a root shell",
            config.user
        );
        User::root(&config.shell)
    });
    // Root's configured shell: never init itself, never a missing path. (Another user whose
    // passwd shell is init gets init inside, which sees where it is and runs this same check.)
    if user.uid == 0 && user.shell == config.shell.as_str() {
        user.shell = crate::shell::root_shell(config).into();
    } else if by_user_shell && user.uid != 0 && user.shell == real.as_str() {
        user.shell = crate::shell::user_shell(config).into();
    }
    let nixos = Path::new("/run/current-system").exists() || Path::new("/etc/NIXOS").exists();
    let runtime_dir = format!("/run/user/{}", user.uid);
    let lingering = || {
        Path::new("/var/lib/systemd/linger")
            .join(&user.name)
            .exists()
    };
    let runtime_dir = (Path::new(&runtime_dir).is_dir() || lingering()).then_some(runtime_dir);
    let env = env::build(Inputs {
        caller: env::caller(),
        system_path: env::system_path(&user.name, nixos),
        user: &user,
        runtime_dir,
    });
    let program = env::cstring(user.shell.clone()).unwrap_or_else(|| c"/bin/sh".to_owned());
    let argv = shell_argv(&user.shell, login, args);
    let (program, argv) =
        crate::set_environment::wrap(login, &argv, &env).unwrap_or((program, argv));
    Target {
        program,
        argv,
        env,
        cwd,
        user,
    }
}

/// Becomes the user and execs the shell; returns only on failure.
pub fn exec(target: &Target) -> Error {
    let user = &target.user;
    if let Err((step, err)) = sys::become_user(&user.groups, user.gid, user.uid) {
        return Error::io(step, format!("for user {}", user.name), err);
    }
    let home = Path::new(&user.home);
    let moved = target
        .cwd
        .as_deref()
        .is_some_and(|cwd| std::env::set_current_dir(cwd).is_ok());
    if !moved && std::env::set_current_dir(home).is_err() {
        let _ = std::env::set_current_dir("/");
    }
    sys::default_dispositions();
    let err = sys::execve(&target.program, &target.argv, &target.env);
    Error::Exec {
        path: user.shell.to_string_lossy().into_owned(),
        err,
    }
}

/// Points the stable interop link at the caller's session socket (services use the link).
fn update_interop_link() {
    let Some(socket) = std::env::var_os("WSL_INTEROP") else {
        return;
    };
    if std::fs::read_link(INTEROP_LINK).is_ok_and(|t| t.as_os_str() == socket) {
        return;
    }
    let tmp = format!("{INTEROP_LINK}.{}", sys::pid());
    let _ = std::fs::remove_file(&tmp);
    if std::os::unix::fs::symlink(&socket, &tmp).is_ok()
        && std::fs::rename(&tmp, INTEROP_LINK).is_err()
    {
        let _ = std::fs::remove_file(&tmp);
    }
}

/// Joins systemd's namespaces, runs the shell as a child and returns its status.
pub fn enter(
    open: Open,
    config: &InitConfig,
    login: bool,
    args: &[OsString],
) -> Result<ExitCode, Error> {
    let cwd = std::env::current_dir().ok();
    update_interop_link();
    sys::setns(open.pid_ns.as_fd(), libc::CLONE_NEWPID)
        .map_err(|e| Error::io("join", "systemd's PID namespace", e))?;
    join_mount_namespace(&open).map_err(|e| Error::io("join", "systemd's mount namespace", e))?;
    drop(open);
    let target = target(config, login, args, cwd);
    link_wslg(&target.user);
    sys::ignore_terminal_signals();
    let pid = spawn(&target)?;
    let status = sys::wait_for(pid).map_err(|e| Error::io("wait for", "the shell", e))?;
    Ok(ExitCode::from(exit_code(status)))
}

/// setns(2) into a mount namespace refuses, with EINVAL, a caller that shares its root and
/// working directory with another thread (Linux fs/namespace.c, mntns_install: `fs->users !=
/// 1`). init has no other thread, but under an emulator such as qemu-user (Windows on ARM
/// tested on x86-64) every process has one of the emulator's. Joining through a pidfd, with
/// the PID namespace in the same call, makes the kernel switch a private copy of that context
/// (kernel/nsproxy.c, prepare_nsset), so that is the fallback; the pidfd is checked to be the
/// handle's process (its start time, read after opening it).
fn join_mount_namespace(open: &Open) -> std::io::Result<()> {
    match sys::setns(open.mnt_ns.as_fd(), libc::CLONE_NEWNS) {
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            let pid = open.handle.pid;
            let pidfd = sys::pidfd(pid)?;
            if crate::handle::starttime(pid)? != open.handle.starttime {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            sys::setns(pidfd.as_fd(), libc::CLONE_NEWNS | libc::CLONE_NEWPID)
        }
        other => other,
    }
}

/// WSLg's sockets in the user's runtime folder when it is there already (the user unit links
/// them too, but may not have run yet when this shell starts; in native mode WSL starts the
/// session once systemd is up, not the user's manager).
fn link_wslg(user: &User) {
    let dir = PathBuf::from(format!("/run/user/{}", user.uid));
    if !crate::wslg::present() || !dir.is_dir() {
        return;
    }
    if let Err((path, e)) = crate::wslg::link_into(&dir, Some((user.uid, user.gid))) {
        crate::say!("cannot link WSLg's socket as {}: {e}", path.display());
    }
}

/// Starts the shell as the user in a child; returns once it has exec'd.
fn spawn(target: &Target) -> Result<i32, Error> {
    let user = &target.user;
    let cwd = target.cwd.clone().and_then(env::cstring);
    let home = env::cstring(user.home.clone());
    let dirs: Vec<&CStr> = cwd
        .as_deref()
        .into_iter()
        .chain(home.as_deref())
        .chain(Some(c"/"))
        .collect();
    sys::spawn_shell(&sys::ShellSpawn {
        program: &target.program,
        argv: &target.argv,
        envp: &target.env,
        groups: &user.groups,
        gid: user.gid,
        uid: user.uid,
        dirs: &dirs,
    })
    .map_err(|e| match e {
        SpawnError::Exec(err) => Error::Exec {
            path: user.shell.to_string_lossy().into_owned(),
            err,
        },
        SpawnError::Clone(err) => Error::io("start", "the shell", err),
        SpawnError::Credentials(step, err) => {
            Error::io(step, format!("for user {}", user.name), err)
        }
    })
}

/// The shell's code, or 128+N for signal N.
pub fn exit_code(exit: Exit) -> u8 {
    match exit {
        Exit::Code(c) => u8::try_from(c & 0xff).unwrap_or(1),
        Exit::Signal(n) => u8::try_from((128 + n) & 0xff).unwrap_or(1),
    }
}

/// The configured user's shell here, without any namespace change.
pub fn in_place(config: &InitConfig, login: bool, args: &[OsString]) -> Error {
    let cwd = std::env::current_dir().ok();
    let target = target(config, login, args, cwd);
    link_wslg(&target.user);
    exec(&target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_and_command_argv() {
        let shell = OsString::from("/bin/bash");
        let args = vec![
            OsString::from("-c"),
            OsString::from("echo 'a b' \"$x\"\n\\ é"),
        ];
        let argv = shell_argv(&shell, false, &args);
        assert_eq!(argv[0].as_bytes(), b"/bin/bash");
        assert_eq!(argv[2].as_bytes(), "echo 'a b' \"$x\"\n\\ é".as_bytes());
        let argv = shell_argv(&shell, true, &[]);
        assert_eq!(argv, [c"-bash".to_owned()]);
    }

    #[test]
    fn exit_codes_of_the_shell() {
        assert_eq!(exit_code(Exit::Code(0)), 0);
        assert_eq!(exit_code(Exit::Code(42)), 42);
        assert_eq!(exit_code(Exit::Signal(9)), 137);
        assert_eq!(exit_code(Exit::Signal(15)), 143);
    }
}
