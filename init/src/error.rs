//! init's one error type. Each variant names what failed; [`Error::exit_code`] is the only
//! place exit codes for our own failures are decided.

use std::fmt;
use std::io;

#[derive(Debug)]
pub enum Error {
    /// Bad command line for a subcommand (exit 2).
    Usage(String),
    /// A subcommand (`status`, `shutdown`, `recovery`) run by someone other than root (exit 1).
    NotRoot { uid: u32 },
    /// A system call on a path failed (exit 1).
    Io {
        op: &'static str,
        path: String,
        err: io::Error,
    },
    /// The shell could not be executed (126) or found (127).
    Exec { path: String, err: io::Error },
    /// systemd could not be started; the caller falls back to a shell outside.
    Boot(String),
}

impl Error {
    pub fn io(op: &'static str, path: impl Into<String>, err: impl Into<io::Error>) -> Self {
        Error::Io {
            op,
            path: path.into(),
            err: err.into(),
        }
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) => 2,
            Error::Exec { err, .. } if err.kind() == io::ErrorKind::NotFound => 127,
            Error::Exec { .. } => 126,
            Error::NotRoot { .. } | Error::Io { .. } | Error::Boot(_) => 1,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(msg) => write!(f, "{msg} (see init --help)"),
            Error::NotRoot { uid } => write!(
                f,
                "this needs root (this is uid {uid}): run it with sudo, or as `wsl -u root -e {} ...`",
                wsl_common::paths::INIT
            ),
            Error::Io { op, path, err } => write!(f, "cannot {op} {path}: {err}"),
            Error::Exec { path, err } => write!(f, "cannot run {path}: {err}"),
            Error::Boot(msg) => f.write_str(msg),
        }
    }
}

/// One line `init: MESSAGE` on stderr; never fails, never panics (a closed console or a
/// broken pipe must not kill a shell wrapper).
pub fn say(message: fmt::Arguments<'_>) {
    let line = format!("init: {message}\n");
    crate::sys::write_quietly(2, line.as_bytes());
}

#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => { $crate::error::say(format_args!($($arg)*)) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_contract() {
        let not_found = io::Error::from(io::ErrorKind::NotFound);
        let denied = io::Error::from(io::ErrorKind::PermissionDenied);
        assert_eq!(Error::Usage("x".into()).exit_code(), 2);
        assert_eq!(Error::NotRoot { uid: 1000 }.exit_code(), 1);
        let exec = |err| Error::Exec {
            path: "/bin/x".into(),
            err,
        };
        assert_eq!(exec(not_found).exit_code(), 127);
        assert_eq!(exec(denied).exit_code(), 126);
        assert!(Error::NotRoot { uid: 1000 }
            .to_string()
            .contains("this needs root (this is uid 1000)"));
    }
}
