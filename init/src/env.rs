//! The environment a user's shell gets: the caller's (WSL's), with the user's identity,
//! the system PATH followed by WSL's Windows entries, and the user's systemd instance.

use std::ffi::{CString, OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use crate::user::User;

/// Variables the caller's values of are replaced (or dropped when not set again).
const REPLACED: &[&str] = &[
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "PATH",
    "WSLPATH",
    "XDG_RUNTIME_DIR",
    "DBUS_SESSION_BUS_ADDRESS",
    "NOTIFY_SOCKET",
    "MAIL",
];

pub const DEBIAN_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The system's PATH for `user` (NixOS's profile directories when it is NixOS).
pub fn system_path(user: &str, nixos: bool) -> String {
    if nixos {
        format!(
            "/run/wrappers/bin:/etc/profiles/per-user/{user}/bin:/nix/var/nix/profiles/default/bin:\
             /run/current-system/sw/bin:{DEBIAN_PATH}"
        )
    } else {
        DEBIAN_PATH.to_owned()
    }
}

/// What the user's environment is built from.
pub struct Inputs<'a> {
    pub caller: Vec<(OsString, OsString)>,
    pub user: &'a User,
    pub system_path: String,
    /// `/run/user/UID` when the user's systemd instance runs (or will: lingering).
    pub runtime_dir: Option<String>,
}

pub fn build(inputs: Inputs<'_>) -> Vec<CString> {
    let mut windows: Vec<&[u8]> = Vec::new();
    let mut out: Vec<Vec<u8>> = Vec::new();
    let mut has_lang = false;
    for (key, value) in &inputs.caller {
        let k = key.as_bytes();
        if k == b"PATH" {
            windows = windows_entries(value.as_bytes());
            continue;
        }
        if k.is_empty() || k.contains(&b'=') || REPLACED.iter().any(|r| r.as_bytes() == k) {
            continue;
        }
        has_lang |= k == b"LANG";
        out.push(pair(key, value));
    }
    let user = inputs.user;
    let set =
        |out: &mut Vec<Vec<u8>>, key: &str, value: &OsStr| out.push(pair(OsStr::new(key), value));
    set(&mut out, "HOME", &user.home);
    set(&mut out, "USER", OsStr::new(&user.name));
    set(&mut out, "LOGNAME", OsStr::new(&user.name));
    set(&mut out, "SHELL", &user.shell);
    let windows = windows.join(&b':');
    let mut path = inputs.system_path.into_bytes();
    if !windows.is_empty() {
        path.push(b':');
        path.extend_from_slice(&windows);
    }
    set(&mut out, "PATH", OsStr::from_bytes(&path));
    set(&mut out, "WSLPATH", OsStr::from_bytes(&windows));
    if !has_lang {
        set(&mut out, "LANG", OsStr::new("C.UTF-8"));
    }
    if let Some(dir) = &inputs.runtime_dir {
        set(&mut out, "XDG_RUNTIME_DIR", OsStr::new(dir));
        let bus = format!("unix:path={dir}/bus");
        set(&mut out, "DBUS_SESSION_BUS_ADDRESS", OsStr::new(&bus));
    }
    out.into_iter()
        .filter_map(|v| CString::new(v).ok())
        .collect()
}

/// The Windows entries of a session's PATH: those WSL appends under the drive mounts.
pub fn windows_entries(path: &[u8]) -> Vec<&[u8]> {
    path.split(|&b| b == b':')
        .filter(|e| e.starts_with(b"/mnt/"))
        .collect()
}

fn pair(key: &OsStr, value: &OsStr) -> Vec<u8> {
    let mut v = key.as_bytes().to_vec();
    v.push(b'=');
    v.extend_from_slice(value.as_bytes());
    v
}

/// The caller's environment, as pairs.
pub fn caller() -> Vec<(OsString, OsString)> {
    std::env::vars_os().collect()
}

/// `KEY=VALUE` as a C string (values with NUL cannot come from an environment).
pub fn cvar(key: &str, value: impl AsRef<OsStr>) -> Option<CString> {
    CString::new(pair(OsStr::new(key), value.as_ref())).ok()
}

pub fn cstring(value: impl Into<OsString>) -> Option<CString> {
    CString::new(value.into().into_vec()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> User {
        User {
            name: "nixos".into(),
            uid: 1000,
            gid: 1000,
            home: "/home/nixos".into(),
            shell: "/bin/bash".into(),
            groups: vec![1000],
        }
    }

    fn vars(env: &[CString]) -> Vec<String> {
        env.iter()
            .map(|v| v.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn caller_environment_kept_identity_and_path_replaced() {
        let u = user();
        let caller = [
            ("WSL_INTEROP", "/run/WSL/7_interop"),
            ("WSL_DISTRO_NAME", "NixOS"),
            ("DISPLAY", ":0"),
            ("HOME", "/root"),
            ("USER", "root"),
            ("SHELL", "/usr/libexec/nixos-wsl/init"),
            ("TERM", "xterm-256color"),
            (
                "PATH",
                "/usr/bin:/bin:/mnt/c/Windows/System32:/mnt/c/Program Files/PowerShell/7",
            ),
        ];
        let env = vars(&build(Inputs {
            caller: caller
                .iter()
                .map(|(k, v)| (OsString::from(k), OsString::from(v)))
                .collect(),
            user: &u,
            system_path: DEBIAN_PATH.into(),
            runtime_dir: Some("/run/user/1000".into()),
        }));
        for want in [
            "WSL_INTEROP=/run/WSL/7_interop",
            "WSL_DISTRO_NAME=NixOS",
            "DISPLAY=:0",
            "TERM=xterm-256color",
            "HOME=/home/nixos",
            "USER=nixos",
            "LOGNAME=nixos",
            "SHELL=/bin/bash",
            "LANG=C.UTF-8",
            "XDG_RUNTIME_DIR=/run/user/1000",
            "DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/1000/bus",
            "WSLPATH=/mnt/c/Windows/System32:/mnt/c/Program Files/PowerShell/7",
        ] {
            assert!(env.iter().any(|v| v == want), "{want} missing from {env:?}");
        }
        let path =
            format!("PATH={DEBIAN_PATH}:/mnt/c/Windows/System32:/mnt/c/Program Files/PowerShell/7");
        assert!(env.contains(&path), "{env:?}");
        assert_eq!(env.iter().filter(|v| v.starts_with("HOME=")).count(), 1);
    }

    #[test]
    fn nixos_path_comes_first() {
        assert!(system_path("nixos", true).starts_with("/run/wrappers/bin:"));
        assert!(system_path("nixos", true).contains("/etc/profiles/per-user/nixos/bin"));
    }
}
