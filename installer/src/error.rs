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
    /// The switch would meet something it cannot handle (a mount where the payload has a
    /// file, a payload that leaves root without a shell, ...): this start changed nothing.
    Refused {
        problems: Vec<String>,
    },
    /// Not enough free space (or inodes) on the tree's filesystem to stage the payload.
    NoSpace {
        path: String,
        needed: u64,
        free: u64,
        inodes: Option<(u64, u64)>,
    },
    /// An error while staging, after which the stage was removed: this start changed nothing.
    Unchanged(Box<Error>),
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
            Error::Refused { problems } => write!(
                f,
                "the system cannot be installed over this distribution: {}; this start changed \
                 nothing",
                problems.join("; ")
            ),
            Error::NoSpace {
                path,
                needed,
                free,
                inodes,
            } => {
                let mb = |b: &u64| b.div_ceil(1_000_000);
                write!(
                    f,
                    "{path}: not enough space to unpack the system: it needs about {} MB and {} MB \
                     are free",
                    mb(needed),
                    mb(free)
                )?;
                if let Some((need, have)) = inodes {
                    write!(f, " ({need} inodes needed, {have} free)")?;
                }
                write!(
                    f,
                    "; free at least {} MB on that filesystem (in WSL: the distribution's virtual \
                     disk, ext4.vhdx, and the Windows drive holding it) and start again; nothing \
                     was changed",
                    mb(&needed.saturating_sub(*free)).max(1)
                )
            }
            Error::Unchanged(inner) => write!(
                f,
                "{inner}; nothing was changed (the staged copy was removed)"
            ),
            Error::Exec { path, err } => write!(f, "{path}: cannot execute: {err}"),
        }
    }
}

impl std::error::Error for Error {}
