//! How the installer was started. WSL runs root's shell as `SHELL -c CMD` or as a login shell
//! (`argv[0]` starting with `-`); `/bin/sh` is a symlink to the installer, so anything that runs
//! `sh` starts it too. Parsed by hand: the binary must stay small.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use crate::error::Error;

#[derive(Debug, PartialEq, Eq)]
pub enum Mode {
    /// Root's shell (`-c CMD`, login or interactive): install, then exec init with the same
    /// arguments.
    Shell,
    /// Started as `sh`: install, then exec the new system's `/bin/sh` with the same arguments.
    Sh,
    /// Hidden, for tests and benchmarks: install into DIR (a scratch tree), do not exec.
    Root(PathBuf),
    Help,
    Version,
}

#[derive(Debug)]
pub struct Invocation {
    pub mode: Mode,
    /// `argv[0]` exactly as given (a login shell stays a login shell after exec).
    pub argv0: OsString,
    /// The remaining arguments, passed on unchanged.
    pub args: Vec<OsString>,
}

pub fn parse(mut argv: Vec<OsString>) -> Result<Invocation, Error> {
    if argv.is_empty() {
        argv.push(OsString::from("installer"));
    }
    let argv0 = argv.remove(0);
    let args = argv;
    let name = argv0.as_bytes();
    let base = name.rsplit(|&c| c == b'/').next().unwrap_or(name);
    let base = base.strip_prefix(b"-").unwrap_or(base);
    let first = args.first().map(|a| a.as_bytes());
    let mode = if base == b"sh" {
        Mode::Sh
    } else if name.starts_with(b"-") {
        Mode::Shell
    } else {
        match first {
            None | Some(b"-c") | Some(b"-l") | Some(b"--login") | Some(b"-i") => Mode::Shell,
            Some(b"--help") | Some(b"-h") => Mode::Help,
            Some(b"--version") => Mode::Version,
            Some(b"--root") => match args.get(1) {
                Some(dir) if args.len() == 2 => Mode::Root(PathBuf::from(dir)),
                _ => return Err(Error::Usage("--root takes exactly one directory".into())),
            },
            Some(other) => {
                return Err(Error::Usage(format!(
                    "unknown argument {:?}",
                    OsStr::from_bytes(other)
                )))
            }
        }
    };
    if mode == Mode::Shell && first == Some(b"-c") && args.len() < 2 {
        return Err(Error::Usage("-c needs a command".into()));
    }
    Ok(Invocation { mode, argv0, args })
}

pub const HELP: &str = "\
installer: first start of the NixOS-WSL installer distribution.

It is root's shell there (and /bin/sh). On the first start it checks the embedded root
filesystem completely (manifest size and SHA-256, gzip CRC and length, every tar header),
unpacks it over /, and hands over to init, so the first command already runs inside systemd.
Before changing anything it checks what the switch would meet: the mounts WSL made inside the
tree (from /proc/self/mountinfo) are moved where the payload's layout has them
(/lib/modules/<release> to /usr/lib/modules/<release> under /lib -> usr/lib), and what cannot
be handled (a mount where the payload has a file, a payload without root's shell, too little
space) is refused with the reason.

Usage (as WSL starts a shell):
  installer -c CMD        install, then exec init -c CMD
  -installer              (login shell) install, then exec init as a login shell
  sh ARGS...              install, then exec the new system's /bin/sh ARGS...
  installer --help | --version

Files: /nixos-wsl/rootfs.tar.gz (payload), /nixos-wsl/rootfs.manifest (its size, SHA-256 and
chunk index), /nixos-wsl/rootfs.merged (the merge is done: a restart only completes); removed
with the installer once the system is installed.

Environment (for tests and benchmarks only):
  NIXOS_WSL_INSTALLER_CRASH_AT=N   SIGKILL itself at checkpoint N (0: print the count)
  (hidden flag --root DIR installs into DIR instead of / and does not exec)

Exit codes: 1 the installer failed (the message says what; a damaged payload or an obstacle
to the switch leaves the system untouched), 2 usage error, 126/127 the new system's init or sh could not be executed
or found; otherwise the exit code is that of the command run by init.";

#[cfg(test)]
mod tests {
    use super::*;

    fn modes(args: &[&str]) -> Result<Mode, Error> {
        parse(args.iter().map(OsString::from).collect()).map(|i| i.mode)
    }

    #[test]
    fn shell_forms() {
        assert_eq!(
            modes(&["/nixos-wsl/installer", "-c", "echo hi"]).ok(),
            Some(Mode::Shell)
        );
        assert_eq!(modes(&["-installer"]).ok(), Some(Mode::Shell));
        assert_eq!(modes(&["installer"]).ok(), Some(Mode::Shell));
        assert_eq!(modes(&["sh", "-c", "x"]).ok(), Some(Mode::Sh));
        assert_eq!(modes(&["/bin/sh", "script.sh"]).ok(), Some(Mode::Sh));
        assert_eq!(modes(&["-sh"]).ok(), Some(Mode::Sh));
        assert_eq!(
            modes(&["installer", "--root", "/tmp/x"]).ok(),
            Some(Mode::Root("/tmp/x".into()))
        );
        assert_eq!(modes(&["installer", "--help"]).ok(), Some(Mode::Help));
    }

    #[test]
    fn usage_errors() {
        assert!(matches!(
            modes(&["installer", "--bogus"]),
            Err(Error::Usage(_))
        ));
        assert!(matches!(modes(&["installer", "-c"]), Err(Error::Usage(_))));
        assert!(matches!(
            modes(&["installer", "--root"]),
            Err(Error::Usage(_))
        ));
    }
}
