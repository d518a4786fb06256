//! Shell-wrapper mode: what root's login shell does for every WSL session.

use std::ffi::OsString;
use std::process::ExitCode;

use wsl_common::init_config::InitConfig;
use wsl_common::paths;

use crate::enter;
use crate::error::Error;
use crate::handle::Handle;
use crate::namespace;
use crate::place::{self, Place};
use crate::sys;

pub fn run(login: bool, args: &[OsString]) -> Result<ExitCode, Error> {
    let uid = sys::euid();
    if uid != 0 {
        return Err(Error::NotRoot { uid });
    }
    let config = crate::config::load();
    match place::detect() {
        Place::Inside => Err(real_root_shell(&config, login, args)),
        // WSL started this session itself (native mode). When wsl.conf names another user, or
        // a `.wsl`'s OOBE made oobe.defaultUid WSL's default, WSL starts that user by default,
        // so a root session was asked for (`wsl -u root`): root's real shell. Otherwise root
        // is WSL's default (an import, or before the OOBE) and init drops it to the user.
        Place::NativeSession if wsl_starts_another_user() => {
            Err(real_root_shell(&config, login, args))
        }
        Place::NativeSession => Err(enter::in_place(&config, login, args)),
        Place::Outside => {
            crate::leftover::remove();
            // A booting systemd is entered only through the lock (after its READY=1).
            let ready = Handle::load().filter(|h| h.ready);
            let open = match ready.and_then(|h| h.open()) {
                Some(open) => open,
                None => match namespace::start(&config) {
                    Ok(open) => open,
                    Err(e) => {
                        crate::say!(
                            "{e}; starting the shell without systemd (`wsl -e {} recovery` gives a root shell)",
                            paths::INIT
                        );
                        return Err(enter::in_place(&config, login, args));
                    }
                },
            };
            enter::enter(open, &config, login, args)
        }
    }
}

/// Whether WSL starts a user other than root by default: `/etc/wsl.conf`, as WSL read it at
/// this instance's start, names one, or the `.wsl`'s OOBE ran (WSL then starts
/// `oobe.defaultUid`, LxssInstance.cpp:565-578).
fn wsl_starts_another_user() -> bool {
    if std::path::Path::new(paths::OOBE_DONE).exists() {
        return true;
    }
    let text = crate::wsl_default_user::as_read_at_start();
    crate::wsl_default_user::is_another_user(&text, |name| {
        crate::user::User::lookup(name, "/bin/sh").is_some()
    })
}

/// Root's real shell with our arguments (sudo -i, su -, nested calls); returns on failure.
pub fn real_root_shell(config: &InitConfig, login: bool, args: &[OsString]) -> Error {
    let path = crate::shell::root_shell(config);
    let shell = OsString::from(&path);
    let argv = enter::shell_argv(&shell, login, args);
    let caller: Vec<_> = std::env::vars_os().collect();
    let env = crate::user_shell::environment(&caller, &shell);
    let Some(program) = crate::env::cstring(shell.clone()) else {
        return Error::Boot("bad shell path".into());
    };
    // `wsl -u root -- CMD` in native mode: NixOS's environment, as for the user's commands.
    let (program, argv) =
        crate::set_environment::wrap(login, &argv, &env).unwrap_or((program, argv));
    sys::restore_signals();
    let err = sys::execve(&program, &argv, &env);
    Error::Exec { path, err }
}
