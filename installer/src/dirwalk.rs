//! Directory file descriptors instead of path strings: every path is resolved one component at
//! a time with `openat(O_NOFOLLOW | O_DIRECTORY)` from the root's descriptor, so no symlink is
//! ever followed (not even one planted by an earlier entry) and nothing is canonicalised per
//! entry. The stack of open directories makes the common case (the next entry lives in the
//! same directory as the last) cost no system call at all.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{mkdirat, openat, statat, unlinkat, AtFlags, Dir, FileType, Mode, OFlags};
use rustix::io::Errno;

use crate::error::Error;

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

pub fn open_dir(at: BorrowedFd<'_>, name: &[u8]) -> rustix::io::Result<OwnedFd> {
    openat(at, name, DIR_FLAGS, Mode::empty())
}

pub fn show(path: &[u8]) -> String {
    format!("/{}", String::from_utf8_lossy(path))
}

/// The open directories from the root down to the directory of the last entry.
pub struct DirStack {
    root: OwnedFd,
    names: Vec<Vec<u8>>,
    fds: Vec<OwnedFd>,
}

impl DirStack {
    pub fn new(root: OwnedFd) -> Self {
        DirStack {
            root,
            names: Vec::new(),
            fds: Vec::new(),
        }
    }

    pub fn root(&self) -> BorrowedFd<'_> {
        self.root.as_fd()
    }

    /// The directory `dir` (a normalised path, empty for the root). With `create`, missing
    /// directories are made (0755, fixed later by their own entries) and a symlink or file in
    /// the way is replaced by a directory; without, `None` when it is not a directory.
    pub fn dir(&mut self, dir: &[u8], create: bool) -> Result<Option<BorrowedFd<'_>>, Error> {
        let parts: Vec<&[u8]> = if dir.is_empty() {
            Vec::new()
        } else {
            dir.split(|&c| c == b'/').collect()
        };
        let common = self
            .names
            .iter()
            .zip(&parts)
            .take_while(|(a, b)| a.as_slice() == **b)
            .count();
        self.names.truncate(common);
        self.fds.truncate(common);
        for (i, part) in parts.iter().enumerate().skip(common) {
            let here = parts[..=i].join(&b'/');
            let parent = self.fds.last().map_or(self.root.as_fd(), |f| f.as_fd());
            let fd = match open_dir(parent, part) {
                Ok(fd) => fd,
                Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) if !create => return Ok(None),
                Err(Errno::NOENT) => {
                    mkdirat(parent, *part, Mode::from_raw_mode(0o755))
                        .map_err(|e| Error::io(show(&here), "create directory", e))?;
                    open_dir(parent, part)
                        .map_err(|e| Error::io(show(&here), "open directory", e))?
                }
                Err(Errno::NOTDIR | Errno::LOOP) => {
                    unlinkat(parent, *part, AtFlags::empty())
                        .map_err(|e| Error::io(show(&here), "remove", e))?;
                    mkdirat(parent, *part, Mode::from_raw_mode(0o755))
                        .map_err(|e| Error::io(show(&here), "create directory", e))?;
                    open_dir(parent, part)
                        .map_err(|e| Error::io(show(&here), "open directory", e))?
                }
                Err(e) => return Err(Error::io(show(&here), "open directory", e)),
            };
            self.names.push(part.to_vec());
            self.fds.push(fd);
        }
        Ok(Some(
            self.fds.last().map_or(self.root.as_fd(), |f| f.as_fd()),
        ))
    }
}

/// Removes `name` in `parent` whatever it is; a directory with everything in it, without
/// following symlinks and without crossing into another filesystem (a mount point fails).
pub fn remove_all(parent: BorrowedFd<'_>, name: &[u8], shown: &str) -> Result<(), Error> {
    let stat = match statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(s) => s,
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(Error::io(shown, "stat", e)),
    };
    if FileType::from_raw_mode(stat.st_mode) != FileType::Directory {
        return unlinkat(parent, name, AtFlags::empty()).map_err(|e| Error::io(shown, "remove", e));
    }
    let parent_dev = rustix::fs::fstat(parent)
        .map_err(|e| Error::io(shown, "stat", e))?
        .st_dev;
    if stat.st_dev != parent_dev {
        return Err(Error::io(shown, "replace", Errno::BUSY));
    }
    let dir = open_dir(parent, name).map_err(|e| Error::io(shown, "open directory", e))?;
    for child in children(dir.as_fd(), shown)? {
        let shown_child = format!("{shown}/{}", String::from_utf8_lossy(&child));
        remove_all(dir.as_fd(), &child, &shown_child)?;
    }
    unlinkat(parent, name, AtFlags::REMOVEDIR).map_err(|e| Error::io(shown, "remove directory", e))
}

/// The names in directory `dir`, without `.` and `..`.
pub fn children(dir: BorrowedFd<'_>, shown: &str) -> Result<Vec<Vec<u8>>, Error> {
    let listing = Dir::read_from(dir).map_err(|e| Error::io(shown, "list", e))?;
    let mut names = Vec::new();
    for item in listing {
        let item = item.map_err(|e| Error::io(shown, "list", e))?;
        let name = item.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(name.to_vec());
        }
    }
    Ok(names)
}
