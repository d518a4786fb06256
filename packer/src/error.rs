//! packer's one error type. Every variant names the file it is about and the problem, so the
//! one line `packer: <error>` tells a person what to fix.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub enum Error {
    /// Reading the source (a file of a directory tree, or the tarball).
    Read {
        path: String,
        source: io::Error,
    },
    /// Creating, writing or renaming the output or a temporary file next to it.
    Write {
        path: PathBuf,
        source: io::Error,
    },
    /// The source tarball is not one, or is damaged.
    BadArchive {
        path: PathBuf,
        problem: String,
    },
    /// The source tree holds something packer cannot write faithfully.
    BadEntry {
        path: String,
        problem: String,
    },
    /// The arguments do not make sense together.
    Usage(String),
    /// `--out` names something a rename must not replace.
    OutputNotAFile {
        path: PathBuf,
        what: &'static str,
    },
    OutputInsideSource {
        output: PathBuf,
        source: PathBuf,
    },
    /// A helper binary (init, installer) or the icon is missing or unusable.
    Input {
        path: PathBuf,
        problem: String,
    },
}

impl Error {
    pub fn read(path: impl Into<String>, source: io::Error) -> Self {
        Error::Read {
            path: path.into(),
            source,
        }
    }

    pub fn read_path(path: &Path, source: io::Error) -> Self {
        Error::Read {
            path: path.display().to_string(),
            source,
        }
    }

    pub fn write(path: &Path, source: io::Error) -> Self {
        Error::Write {
            path: path.to_owned(),
            source,
        }
    }

    pub fn bad_archive(path: &Path, problem: impl fmt::Display) -> Self {
        Error::BadArchive {
            path: path.to_owned(),
            problem: crate::tar_head::printable(&problem.to_string()),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Read { path, source } => write!(f, "cannot read {path}: {source}"),
            Error::Write { path, source } => write!(f, "cannot write {}: {source}", path.display()),
            Error::BadArchive { path, problem } => {
                write!(f, "{}: not a usable tar archive: {problem}", path.display())
            }
            Error::BadEntry { path, problem } => write!(f, "{path}: {problem}"),
            Error::Usage(problem) => write!(f, "{problem} (see packer --help)"),
            Error::OutputNotAFile { path, what } => write!(
                f,
                "{}: is a {what}; packer writes its archive only over a regular file or to a new name (the finished archive is renamed into place, which would replace the {what} itself); name a file",
                path.display()
            ),
            Error::OutputInsideSource { output, source } => write!(
                f,
                "the output {} is inside the source tree {}: it would pack itself; write it elsewhere",
                output.display(),
                source.display()
            ),
            Error::Input { path, problem } => write!(f, "{}: {problem}", path.display()),
        }
    }
}

impl std::error::Error for Error {}
