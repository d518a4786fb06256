//! The WSL simulator: `wsl-sim import | run | terminate | pid`. See tests/README.md for what
//! of WSL it models and what it does not.

pub mod cgroup;
pub mod elevated;
pub mod error;
pub mod import;
pub mod instance;
pub mod interop;
pub mod oobe;
pub mod passwd;
pub mod pid1;
pub mod session;
pub mod state;
mod sys;
pub mod wsl_conf;
pub mod wslg;

use std::ffi::OsString;
use std::path::PathBuf;

use error::{Error, Result};
use session::{Mode, Request};

pub const USAGE: &str = "\
usage: wsl-sim import ARCHIVE DIR
       wsl-sim install FILE DIR
       wsl-sim run DIR [-u USER] [--cd PATH] [--name NAME] [--wslg] [--elevated]
                   [-e PROG ARGS... | -- CMD...]
       wsl-sim terminate DIR
       wsl-sim pid DIR
Models `wsl --import`, `wsl -d` and `wsl --terminate` for tests (needs root).
Variables WSL_SIM_ENV_<NAME>=VALUE reach the session as NAME=VALUE; WSL_SIM_WSLG=1 is
--wslg for every run.";

/// What WSL's `/init` does when started under another name (init.cpp:200-240, the generators at :223-230): the
/// generators; `None` for the simulator's own command line.
pub fn dispatch_by_name(argv0: &std::ffi::OsStr, args: &[OsString]) -> Option<i32> {
    let name = std::path::Path::new(argv0).file_name()?.to_str()?;
    let dir = args.first().map(PathBuf::from).unwrap_or_default();
    match name {
        "wsl-generator" => Some(pid1::system_generator(&dir)),
        "wsl-user-generator" => Some(pid1::user_generator(&dir)),
        _ => None,
    }
}

/// Runs the simulator with `args` (without argv[0]); returns the process exit code.
pub fn main(args: Vec<OsString>) -> Result<i32> {
    let text = |a: &OsString| a.to_string_lossy().into_owned();
    let Some(verb) = args.first().map(text) else {
        return Err(Error::Usage("no command given".into()));
    };
    let path = |i: usize| -> Result<PathBuf> {
        args.get(i)
            .map(PathBuf::from)
            .ok_or_else(|| Error::Usage(format!("{verb}: missing argument")))
    };
    match verb.as_str() {
        "import" => {
            import::import(&path(1)?, &path(2)?)?;
            Ok(0)
        }
        "install" => {
            oobe::install(&path(1)?, &path(2)?)?;
            Ok(0)
        }
        "run" => session::run(&parse_run(&args[1..])?),
        "__poweroff" => session::poweroff(&path(1)?),
        "__elevated" => elevated::helper(&path(1)?),
        "__elevated_holder" => elevated::holder(),
        "__wslg" => {
            wslg::serve()?;
            Ok(0)
        }
        "__wsl_init" => {
            pid1::wsl_init(&args.get(1).map(text).unwrap_or_default())?;
            Ok(0)
        }
        "terminate" => {
            instance::terminate(&state::State::for_distro(&path(1)?)?)?;
            Ok(0)
        }
        "pid" => match state::State::for_distro(&path(1)?)?.running() {
            Some(instance) => {
                println!("{}", instance.pid);
                Ok(0)
            }
            None => Ok(1),
        },
        "__keeper" => {
            let key = args.get(3).map(text).unwrap_or_default();
            instance::keeper(&path(1)?, &text(&args[2]), &key)?;
            Ok(0)
        }
        "__pid1" => {
            pid1::main(
                &path(1)?,
                &args.get(2).map(text).unwrap_or_default(),
                &path(3)?,
            )?;
            Ok(0)
        }
        "__interop" => {
            pid1::interop_server(&path(1)?)?;
            Ok(0)
        }
        "__session" => session::relay(&args[1..]),
        "--help" | "-h" => {
            println!("{USAGE}");
            Ok(0)
        }
        other => Err(Error::Usage(format!("unknown command {other}"))),
    }
}

fn parse_run(args: &[OsString]) -> Result<Request> {
    let mut args = args.iter();
    let Some(distro) = args.next() else {
        return Err(Error::Usage("run: missing DIR".into()));
    };
    let mut request = Request {
        distro: PathBuf::from(distro),
        name: None,
        user: None,
        cwd: None,
        mode: Mode::Login,
        args: Vec::new(),
        wslg: false,
        elevated: false,
    };
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| {
            args.next()
                .cloned()
                .ok_or_else(|| Error::Usage(format!("run: {flag} needs a value")))
        };
        match arg.to_str() {
            Some("-u" | "--user") => {
                request.user = Some(value("-u")?.to_string_lossy().into_owned())
            }
            Some("--wslg") => request.wslg = true,
            Some("--elevated") => request.elevated = true,
            Some("--cd") => request.cwd = Some(PathBuf::from(value("--cd")?)),
            Some("--name") => request.name = Some(value("--name")?.to_string_lossy().into_owned()),
            Some("-e" | "--exec") => {
                request.mode = Mode::Exec;
                request.args = args.cloned().collect();
                if request.args.is_empty() {
                    return Err(Error::Usage("run: -e needs a program".into()));
                }
                break;
            }
            Some("--") => {
                request.args = args.cloned().collect();
                request.mode = if request.args.is_empty() {
                    Mode::Login
                } else {
                    Mode::Command
                };
                break;
            }
            _ => {
                return Err(Error::Usage(format!(
                    "run: unknown option {}",
                    arg.to_string_lossy()
                )))
            }
        }
    }
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn run_arguments_choose_the_mode() {
        let r = parse_run(&os(&["d", "-u", "nixos", "--", "echo", "a b"])).expect("ok");
        assert_eq!(
            (r.mode, r.user.as_deref(), r.args.len()),
            (Mode::Command, Some("nixos"), 2)
        );
        let r = parse_run(&os(&["d"])).expect("ok");
        assert_eq!(r.mode, Mode::Login);
        let r = parse_run(&os(&["d", "--cd", "/tmp", "-e", "ls", "-l"])).expect("ok");
        assert_eq!((r.mode, r.args.len()), (Mode::Exec, 2));
        assert!(parse_run(&os(&["d", "-x"])).is_err());
        assert!(parse_run(&os(&["d", "-e"])).is_err());
    }
}
