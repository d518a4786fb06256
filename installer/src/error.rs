//! The installer's one error type. Every variant names the file or entry and the problem.

use std::fmt;
use std::io;
use std::path::PathBuf;

#[derive(Debug)]
pub enum Error {
    /// Bad command line (exit 2).
    Usage(String),
    NotRoot,
    /// The payload or its manifest is corrupt or inconsistent: nothing was changed.
    Corrupt {
        path: PathBuf,
        problem: String,
    },
    /// A system call on a path failed.
    Io {
        path: String,
        op: &'static str,
        err: io::Error,
    },
    /// The new system's program could not be started.
    Exec {
        path: String,
        err: io::Error,
    },
}

impl Error {
    pub fn io(path: impl Into<String>, op: &'static str, err: impl Into<io::Error>) -> Self {
        Error::Io {
            path: path.into(),
            op,
            err: err.into(),
        }
    }

    pub fn corrupt(path: impl Into<PathBuf>, problem: impl Into<String>) -> Self {
        Error::Corrupt {
            path: path.into(),
            problem: problem.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(msg) => write!(f, "{msg} (see --help)"),
            Error::NotRoot => write!(
                f,
                "must run as root: this is the first start of the NixOS-WSL installer distribution; \
                 start it as root (wsl -d NAME -u root) so it can install the system"
            ),
            Error::Corrupt { path, problem } => write!(
                f,
                "{}: {problem}; the payload is damaged and nothing was changed: download the \
                 installer archive again and re-import it",
                path.display()
            ),
            Error::Io { path, op, err } => write!(f, "{path}: cannot {op}: {err}"),
            Error::Exec { path, err } => write!(f, "{path}: cannot execute: {err}"),
        }
    }
}

impl std::error::Error for Error {}
