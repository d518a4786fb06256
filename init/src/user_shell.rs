//! User-shell mode: init as the login shell of a user other than root. In native mode WSL
//! starts `[user] default` itself (microsoft/WSL `src/linux/init/init.cpp:1004-1032`, the
//! passwd shell run by `execvpe`, `:718-731`), so nothing of init's runs as root for that
//! session; what NixOS still needs is its environment: PATH, NIX_PATH, LOCALE_ARCHIVE and the
//! like live in `/etc/set-environment`, which only `/etc/profile` sources (nixpkgs
//! `nixos/modules/programs/bash/bash.nix`, `shells-environment.nix`), so `bash -c CMD` never
//! sees it. init gives `-c` commands that file (login shells source `/etc/profile` themselves)
//! with WSL's variables kept, and execs the real shell (`user-shell` of init.conf) in place:
//! same process, so the working directory, the terminal and the exit status are the shell's.

use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStringExt;

use crate::enter::shell_argv;
use crate::env::{cstring, cvar};
use crate::error::Error;
use crate::sys;

/// Execs the real shell; returns only when that fails.
pub fn run(login: bool, args: &[OsString]) -> Error {
    let config = crate::config::load();
    let path = crate::shell::user_shell(&config);
    let shell = OsString::from(&path);
    let caller: Vec<(OsString, OsString)> = std::env::vars_os().collect();
    let env = environment(&caller, &shell);
    let argv = shell_argv(&shell, login, args);
    let Some(program) = cstring(shell.clone()) else {
        return Error::Boot(format!("bad user-shell path {path:?}"));
    };
    let (program, argv) =
        crate::set_environment::wrap(login, &argv, &env).unwrap_or((program, argv));
    link_wslg();
    sys::restore_signals();
    let err = sys::execve(&program, &argv, &env);
    Error::Exec { path, err }
}

/// The caller's (WSL's) environment with `SHELL` the real shell, and the Windows PATH entries
/// also in `WSLPATH`, where `/etc/set-environment`'s fresh PATH gets them back from (the
/// sourcing script here, the module's `environment.extraInit` for login shells), as in the
/// other modes (`env.rs`). Root's real shell gets the same (`wrapper.rs`).
pub fn environment(caller: &[(OsString, OsString)], shell: &OsString) -> Vec<CString> {
    let mut windows: Option<Vec<u8>> = None;
    let mut has_wslpath = false;
    let mut out: Vec<CString> = Vec::with_capacity(caller.len() + 2);
    for (key, value) in caller {
        let k = key.as_encoded_bytes();
        if k == b"SHELL" {
            continue;
        }
        has_wslpath |= k == b"WSLPATH";
        if k == b"PATH" {
            windows = Some(crate::env::windows_entries(value.as_encoded_bytes()).join(&b':'));
        }
        out.extend(cvar(&key.to_string_lossy(), value));
    }
    out.extend(cvar("SHELL", shell));
    if let (false, Some(windows)) = (has_wslpath, windows) {
        out.extend(cvar("WSLPATH", OsString::from_vec(windows)));
    }
    out
}

/// WSLg's sockets in the user's runtime folder, as the other modes' shells link them (the
/// user unit does too, at every start of the user's manager).
fn link_wslg() {
    let dir = std::path::PathBuf::from(format!("/run/user/{}", sys::euid()));
    if !crate::wslg::present() || !dir.is_dir() {
        return;
    }
    if let Err((path, e)) = crate::wslg::link_into(&dir, None) {
        crate::say!("cannot link WSLg's socket as {}: {e}", path.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        list.iter()
            .map(|(k, v)| (OsString::from(k), OsString::from(v)))
            .collect()
    }

    fn strings(env: &[CString]) -> Vec<String> {
        env.iter()
            .map(|v| v.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn wsls_environment_is_kept_with_the_real_shell_and_the_windows_path() {
        let caller = pairs(&[
            ("WSL_DISTRO_NAME", "NixOS"),
            ("WSL_INTEROP", "/run/WSL/9_interop"),
            ("SHELL", "/usr/libexec/nixos-wsl/init"),
            (
                "PATH",
                "/usr/local/bin:/usr/bin:/mnt/c/Windows:/mnt/c/Program Files/x",
            ),
            ("HOME", "/home/nixos"),
        ]);
        let env = strings(&environment(
            &caller,
            &OsString::from("/run/current-system/sw/bin/bash"),
        ));
        for want in [
            "WSL_DISTRO_NAME=NixOS",
            "WSL_INTEROP=/run/WSL/9_interop",
            "HOME=/home/nixos",
            "PATH=/usr/local/bin:/usr/bin:/mnt/c/Windows:/mnt/c/Program Files/x",
            "SHELL=/run/current-system/sw/bin/bash",
            "WSLPATH=/mnt/c/Windows:/mnt/c/Program Files/x",
        ] {
            assert!(env.iter().any(|v| v == want), "{want} missing: {env:?}");
        }
        assert_eq!(env.iter().filter(|v| v.starts_with("SHELL=")).count(), 1);
    }

    #[test]
    fn a_wslpath_already_set_is_left_alone() {
        let caller = pairs(&[("PATH", "/bin:/mnt/c/new"), ("WSLPATH", "/mnt/c/old")]);
        let env = strings(&environment(&caller, &OsString::from("/bin/sh")));
        assert_eq!(
            env,
            [
                "PATH=/bin:/mnt/c/new",
                "WSLPATH=/mnt/c/old",
                "SHELL=/bin/sh"
            ]
        );
    }
}
