//! The NixOS-WSL installer: root's shell (and `/bin/sh`) of the installer distribution. See
//! `--help` and docs/installer.md.

use std::io::{ErrorKind, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, ExitCode};

use installer::args::{self, Mode};
use installer::error::Error;
use installer::{crash, install};
use wsl_common::paths;

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "installer: {e}");
            ExitCode::from(match &e {
                Error::Usage(_) => 2,
                Error::Exec { err, .. } if err.kind() == ErrorKind::NotFound => 127,
                Error::Exec { .. } => 126,
                _ => 1,
            })
        }
    }
}

fn run() -> Result<ExitCode, Error> {
    crash::init();
    let inv = args::parse(std::env::args_os().collect())?;
    let root = match &inv.mode {
        Mode::Help => {
            let _ = writeln!(std::io::stdout(), "{}", args::HELP);
            return Ok(ExitCode::SUCCESS);
        }
        Mode::Version => {
            let _ = writeln!(std::io::stdout(), "installer {}", env!("CARGO_PKG_VERSION"));
            return Ok(ExitCode::SUCCESS);
        }
        Mode::Root(dir) => dir.clone(),
        Mode::Shell | Mode::Sh => "/".into(),
    };
    if !rustix::process::geteuid().is_root() {
        return Err(Error::NotRoot);
    }
    // Modes and owners come from the archive, not from our umask.
    rustix::process::umask(rustix::fs::Mode::empty());
    let quiet = matches!(inv.mode, Mode::Sh);
    install::install(&root, quiet)?;
    crash::report();
    let program = match inv.mode {
        Mode::Root(_) => return Ok(ExitCode::SUCCESS),
        Mode::Sh => "/bin/sh",
        _ => paths::INIT,
    };
    // The umask we were started with is gone; systemd and shells set their own, 022 is the
    // usual default for a root shell.
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o022));
    let err = Command::new(Path::new(program))
        .arg0(&inv.argv0)
        .args(&inv.args)
        .exec();
    Err(Error::Exec {
        path: program.into(),
        err,
    })
}
