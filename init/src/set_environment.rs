//! NixOS's environment for commands (`wsl -- CMD`, `wsl -e init -c CMD`): NixOS keeps PATH,
//! NIX_PATH, LOCALE_ARCHIVE and the like in `/etc/set-environment`, which only `/etc/profile`
//! sources (nixpkgs `nixos/modules/programs/bash/bash.nix` and `shells-environment.nix`,
//! guarded by `__NIXOS_SET_ENVIRONMENT_DONE`), so a non-login `-c` command never sees it
//! (NixOS-WSL had to source it itself, commit a487bcf). A small POSIX shell sources it the way
//! `/etc/profile` does, puts WSL's variables and the Windows PATH entries back, and execs the
//! user's shell with exactly its arguments.

use std::ffi::CString;
use std::path::Path;

pub const FILE: &str = "/etc/set-environment";
/// A link made by NixOS's activation (`binsh` snippet).
const SH: &str = "/bin/sh";

/// Variables WSL gives a session that the sourced file must not take away
/// (shared/WSL.md, the session environment).
fn is_wsls(key: &[u8]) -> bool {
    key.starts_with(b"WSL") || [&b"DISPLAY"[..], b"WAYLAND_DISPLAY", b"PULSE_SERVER"].contains(&key)
}

fn single_quoted(value: &[u8]) -> Vec<u8> {
    let mut out = vec![b'\''];
    for &b in value {
        if b == b'\'' {
            out.extend_from_slice(b"'\\''");
        } else {
            out.push(b);
        }
    }
    out.push(b'\'');
    out
}

/// The script: source, restore, append the Windows entries, exec `$0 "$@"`.
pub fn script(env: &[CString]) -> Vec<u8> {
    let mut s = format!("if [ -z \"${{__NIXOS_SET_ENVIRONMENT_DONE-}}\" ]; then . {FILE}; fi\n")
        .into_bytes();
    let mut windows: &[u8] = b"";
    for pair in env {
        let pair = pair.as_bytes();
        let Some(eq) = pair.iter().position(|&b| b == b'=') else {
            continue;
        };
        let (key, value) = (&pair[..eq], &pair[eq + 1..]);
        if key == b"WSLPATH" {
            windows = value;
        }
        if is_wsls(key) && key.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_') {
            s.extend_from_slice(b"export ");
            s.extend_from_slice(key);
            s.push(b'=');
            s.extend(single_quoted(value));
            s.push(b'\n');
        }
    }
    if !windows.is_empty() {
        s.extend_from_slice(b"PATH=\"${PATH:+$PATH:}\"");
        s.extend(single_quoted(windows));
        s.extend_from_slice(b"; export PATH\n");
    }
    s.extend_from_slice(b"exec \"$0\" \"$@\"\n");
    s
}

/// `(program, argv)` that run `argv` (the user's shell and its arguments) through the sourcing
/// shell, when this is NixOS (`/etc/set-environment` exists) and a command, not a login shell.
pub fn wrap(login: bool, argv: &[CString], env: &[CString]) -> Option<(CString, Vec<CString>)> {
    if login || argv.len() < 2 || !Path::new(FILE).exists() || !Path::new(SH).exists() {
        return None;
    }
    let mut out = vec![CString::new(SH).ok()?, c"-c".to_owned()];
    out.push(CString::new(script(env)).ok()?);
    out.extend(argv.iter().cloned());
    Some((CString::new(SH).ok()?, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wsls_variables_and_windows_path_are_put_back() {
        let env: Vec<CString> = [
            "WSL_INTEROP=/run/WSL/7_interop",
            "DISPLAY=:0",
            "TERM=xterm",
            "WSLPATH=/mnt/c/Windows:/mnt/c/Program Files/it's",
        ]
        .iter()
        .map(|v| CString::new(*v).expect("no NUL"))
        .collect();
        let text = String::from_utf8(script(&env)).expect("utf-8");
        assert!(
            text.starts_with(
                "if [ -z \"${__NIXOS_SET_ENVIRONMENT_DONE-}\" ]; then . /etc/set-environment; fi\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("export WSL_INTEROP='/run/WSL/7_interop'\n"),
            "{text}"
        );
        assert!(text.contains("export DISPLAY=':0'\n"), "{text}");
        assert!(!text.contains("TERM"), "{text}");
        assert!(
            text.contains("PATH=\"${PATH:+$PATH:}\"'/mnt/c/Windows:/mnt/c/Program Files/it'\\''s'"),
            "{text}"
        );
        assert!(text.ends_with("exec \"$0\" \"$@\"\n"), "{text}");
    }

    #[test]
    fn the_script_runs_in_a_posix_shell() {
        // Not the real file: the quoting and the exec with exact arguments.
        let env = [CString::new("WSLPATH=/mnt/c/x y").expect("no NUL")];
        let text = String::from_utf8(script(&env))
            .expect("utf-8")
            .replace(FILE, "/dev/null");
        let out = std::process::Command::new("/bin/sh")
            .args([
                "-c",
                &text,
                "/bin/sh",
                "-c",
                "printf '%s|' \"$PATH\" \"$1\"",
                "-",
                "a  'b'",
            ])
            .env("PATH", "/usr/bin:/bin")
            .output()
            .expect("sh runs");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "/usr/bin:/bin:/mnt/c/x y|a  'b'|"
        );
    }
}
