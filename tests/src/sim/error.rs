//! The simulator's one error type: what failed, on which path, and why.

use std::fmt;
use std::io;
use std::path::PathBuf;

#[derive(Debug)]
pub enum Error {
    Usage(String),
    Io {
        what: String,
        path: PathBuf,
        source: io::Error,
    },
    HardLink {
        archive: PathBuf,
        name: String,
        target: String,
    },
    NotAnArchive {
        archive: PathBuf,
        detail: String,
    },
    NotADistribution(PathBuf),
    Extract {
        archive: PathBuf,
        detail: String,
    },
    Boot(String),
    NotRunning(PathBuf),
}

impl Error {
    pub fn io(what: impl Into<String>, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            what: what.into(),
            path: path.into(),
            source,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(msg) => write!(f, "{msg}\n{}", crate::sim::USAGE),
            Error::Io { what, path, source } => {
                write!(f, "{what} {}: {source}", path.display())
            }
            Error::HardLink {
                archive,
                name,
                target,
            } => write!(
                f,
                "{}: the archive holds a hard link ({name} -> {target}); WSL's import fails on \
                 hard links (\"Hard-link target '{target}' does not exist\")",
                archive.display()
            ),
            Error::NotAnArchive { archive, detail } => write!(
                f,
                "{}: Unrecognized archive format ({detail})",
                archive.display()
            ),
            Error::NotADistribution(dir) => write!(
                f,
                "{}: neither /etc nor /bin/sh exists: not a Linux distribution",
                dir.display()
            ),
            Error::Extract { archive, detail } => {
                write!(f, "{}: extraction failed: {detail}", archive.display())
            }
            Error::Boot(msg) => write!(f, "the distribution did not start: {msg}"),
            Error::NotRunning(dir) => write!(f, "{}: not running", dir.display()),
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T, E = Error> = std::result::Result<T, E>;
