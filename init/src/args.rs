//! What this invocation is, from argv and our pid alone.

use std::ffi::{OsStr, OsString};

pub const HELP: &str = "\
init: systemd in its own PID namespace for WSL, and root's shell that enters it

Usage:
  init status      systemd's pid, state, uptime and failed units
  init shutdown    power systemd off (bounded wait, then kill); the next shell starts it again
  init recovery    a root shell outside systemd's namespace, for a broken system
  init wslg-links  link WSLg's sockets into $XDG_RUNTIME_DIR (what init's user unit runs)
  init --help | --version
  init [SHELL ARGS...]   as root's login shell (how WSL runs it): see below

Which mode runs:
  - as PID 1 (WSL's [boot] systemd=true runs /sbin/init -> init): native mode: run the
    activation command if configured and needed, then exec systemd.
  - argv[1] is exactly `status`, `shutdown`, `recovery`, `wslg-links`, `--help`/`-h` or
    `--version` and
    argv[0] does not start with `-`: that command. Anything else, `-c CMD` included (so
    `init -c status` runs a command named status), is shell-wrapper mode.
  - shell-wrapper mode: start systemd once (if not running), then run the configured user's
    shell inside systemd's PID and mount namespaces with exactly these arguments; a login
    argv[0] (`-init`) gives a login shell. Already inside (sudo -i, su -, nested): root's real
    shell at once. Started by WSL in native mode: root's real shell when /etc/wsl.conf's
    [user] default names another user (so root was asked for: wsl -u root), else the user.
  - user-shell mode (run by a user other than root, whose shell is init): -c commands get
    /etc/set-environment, then exec of the real shell (user-shell) with these arguments.

Exit status (shell-wrapper mode):
  the shell's own code; 128+N when it dies of signal N; 126 when the shell cannot be
  executed, 127 when it is not found; 1 when init itself fails (e.g. a subcommand not
  run as root);
  2 for a bad command line. `status`: 0 when systemd runs, 1 when not.

Configuration: /etc/nixos-wsl/init.conf (key = value; bad lines are reported and ignored):
  user = NAME            who the shell runs as (WSL itself must start root)
  shell = PATH           root's real shell (root's shell in /etc/passwd is init); missing or
                         init itself: /bin/sh, said in one line
  user-shell = PATH      the real shell of a user whose shell is init (default: shell)
  systemd = PATH...      systemd binaries to try after the activation; the first that exists
                         wins (/run/current-system/... also through the system profile)
  activate = PATH        run before systemd unless `activated` exists; empty: never
  activated = PATH
  boot-timeout = SECS    wait at most this long for systemd's READY=1 (default 30; 0: no limit)
  system = PATH          a bare tarball's NixOS system for its first boot (empty: found)
First boot of a bare NixOS tarball: nix-store --load-db < /nix-path-registration and the
  system profile set, once, before the activation. systemd gets systemd.mask=UNIT for every
  unit that fights WSL. On NixOS, -c commands get /etc/set-environment.

Files: /run/nixos-wsl/ (lock, root only; handle on systemd, notify socket, interop link),
  /run/systemd/system.conf.d/nixos-wsl.conf (WSL_DISTRO_NAME, WSL_INTEROP for services);
  with WSLg (/mnt/wslg) /run/systemd/user.conf.d/nixos-wsl-wslg.conf (DISPLAY,
  WAYLAND_DISPLAY, PULSE_SERVER for user services) and, shell-wrapper mode,
  /run/systemd/user/nixos-wsl-wslg.service and /run/tmpfiles.d/x11.conf.
Environment: WSL_INTEROP (kept; services get /run/nixos-wsl/interop, linked to the newest
  session's socket), PATH (system PATH, then WSL's /mnt/ entries; WSLPATH holds the latter).
";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// PID 1: prepare and exec systemd.
    Native,
    Help,
    Version,
    Status,
    Shutdown,
    Recovery,
    /// The user unit's command: WSLg's sockets linked into `$XDG_RUNTIME_DIR`.
    WslgLinks,
    /// Root's shell: `login` when `argv[0]` starts with `-`; `args` after `argv[0]`, untouched.
    Shell {
        login: bool,
        args: Vec<OsString>,
    },
}

pub fn parse(argv: Vec<OsString>, pid: i32) -> Result<Mode, String> {
    let mut argv = argv.into_iter();
    let argv0 = argv.next().unwrap_or_default();
    let args: Vec<OsString> = argv.collect();
    let login = argv0.as_encoded_bytes().first() == Some(&b'-');
    if pid == 1 {
        return Ok(Mode::Native);
    }
    if !login {
        let command = match args.first().and_then(|a| a.to_str()) {
            Some("status") => Some(Mode::Status),
            Some("shutdown") => Some(Mode::Shutdown),
            Some("recovery") => Some(Mode::Recovery),
            Some("wslg-links") => Some(Mode::WslgLinks),
            Some("--help" | "-h") => Some(Mode::Help),
            Some("--version") => Some(Mode::Version),
            _ => None,
        };
        if let Some(command) = command {
            if let Some(extra) = args.get(1) {
                return Err(format!(
                    "unexpected argument {:?} after {:?}",
                    extra,
                    args[0].to_string_lossy()
                ));
            }
            return Ok(command);
        }
    }
    Ok(Mode::Shell { login, args })
}

/// The last path component (for a login `argv[0]`, "-bash").
pub fn basename(path: &OsStr) -> &OsStr {
    use std::os::unix::ffi::OsStrExt;
    let bytes = path.as_bytes();
    match bytes.iter().rposition(|&b| b == b'/') {
        Some(i) => OsStr::from_bytes(&bytes[i + 1..]),
        None => path,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn pid_1_is_native_whatever_the_arguments() {
        assert_eq!(parse(argv(&["/sbin/init"]), 1), Ok(Mode::Native));
        assert_eq!(parse(argv(&["init", "status"]), 1), Ok(Mode::Native));
    }

    #[test]
    fn subcommands_only_as_the_exact_first_argument() {
        assert_eq!(parse(argv(&["init", "status"]), 9), Ok(Mode::Status));
        assert_eq!(parse(argv(&["/x/init", "shutdown"]), 9), Ok(Mode::Shutdown));
        assert_eq!(parse(argv(&["init", "recovery"]), 9), Ok(Mode::Recovery));
        assert_eq!(parse(argv(&["init", "wslg-links"]), 9), Ok(Mode::WslgLinks));
        assert_eq!(parse(argv(&["init", "--help"]), 9), Ok(Mode::Help));
        assert_eq!(parse(argv(&["init", "--version"]), 9), Ok(Mode::Version));
        assert!(parse(argv(&["init", "status", "now"]), 9).is_err());
    }

    #[test]
    fn a_command_for_the_shell_is_never_a_subcommand() {
        for args in [
            &["init", "-c", "status"][..],
            &["init", "-c", "init status"],
        ] {
            assert_eq!(
                parse(argv(args), 9),
                Ok(Mode::Shell {
                    login: false,
                    args: argv(&args[1..])
                })
            );
        }
        // A login shell's argv[0] starts with '-': never a subcommand either.
        assert_eq!(
            parse(argv(&["-init", "status"]), 9),
            Ok(Mode::Shell {
                login: true,
                args: argv(&["status"])
            })
        );
        assert_eq!(
            parse(argv(&["init"]), 9),
            Ok(Mode::Shell {
                login: false,
                args: vec![]
            })
        );
        assert_eq!(
            parse(argv(&["init", "Status"]), 9),
            Ok(Mode::Shell {
                login: false,
                args: argv(&["Status"])
            })
        );
    }

    #[test]
    fn basename_of_paths() {
        assert_eq!(basename(OsStr::new("/bin/bash")), "bash");
        assert_eq!(basename(OsStr::new("bash")), "bash");
    }
}
