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

/// Open directories kept on the stack at most: deeper levels close the highest ones (reopened by
/// walking down again when needed), so a payload a thousand directories deep does not run out
/// of descriptors (the usual limit is 1024) while every real tree stays within it.
const KEEP_OPEN: usize = 64;

/// The open directories from the root down to the directory of the last entry.
pub struct DirStack {
    root: OwnedFd,
    names: Vec<Vec<u8>>,
    fds: Vec<Option<OwnedFd>>,
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
        // Resume below the deepest level still open.
        let common = (0..=common)
            .rev()
            .find(|&c| c == 0 || self.fds[c - 1].is_some())
            .unwrap_or(0);
        self.names.truncate(common);
        self.fds.truncate(common);
        for (i, part) in parts.iter().enumerate().skip(common) {
            let here = parts[..=i].join(&b'/');
            let parent = match self.fds.last() {
                Some(Some(fd)) => fd.as_fd(),
                _ => self.root.as_fd(),
            };
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
            self.fds.push(Some(fd));
            if self.fds.len() > KEEP_OPEN {
                let oldest = self.fds.len() - KEEP_OPEN - 1;
                self.fds[oldest] = None;
            }
        }
        Ok(Some(match self.fds.last() {
            Some(Some(fd)) => fd.as_fd(),
            _ => self.root.as_fd(),
        }))
    }
}

/// Removes `name` in `parent` whatever it is; a directory with everything in it, without
/// following symlinks and without crossing into another filesystem (a mount point fails). Two
/// descriptors at any depth: it goes back up through `..` (nothing else changes the tree while
/// the installer holds its lock).
pub fn remove_all(parent: BorrowedFd<'_>, name: &[u8], shown: &str) -> Result<(), Error> {
    let stat = match statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(s) => s,
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(Error::io(shown, "stat", e)),
    };
    if FileType::from_raw_mode(stat.st_mode) != FileType::Directory {
        return unlinkat(parent, name, AtFlags::empty()).map_err(|e| Error::io(shown, "remove", e));
    }
    let dev = rustix::fs::fstat(parent)
        .map_err(|e| Error::io(shown, "stat", e))?
        .st_dev;
    if stat.st_dev != dev {
        return Err(Error::io(shown, "replace", Errno::BUSY));
    }
    // Each level: its name and the subdirectories still to remove (its other entries are gone).
    let mut levels: Vec<(Vec<u8>, Vec<Vec<u8>>)> = Vec::new();
    let here = |levels: &[(Vec<u8>, Vec<Vec<u8>>)]| {
        let mut s = shown.to_owned();
        for (n, _) in levels.iter().skip(1) {
            s.push('/');
            s.push_str(&String::from_utf8_lossy(n));
        }
        s
    };
    let mut cur = open_dir(parent, name).map_err(|e| Error::io(shown, "open directory", e))?;
    levels.push((name.to_vec(), empty_but_dirs(cur.as_fd(), dev, shown)?));
    loop {
        if let Some(sub) = levels.last_mut().and_then(|(_, subs)| subs.pop()) {
            let path = format!("{}/{}", here(&levels), String::from_utf8_lossy(&sub));
            cur = open_dir(cur.as_fd(), &sub).map_err(|e| Error::io(&path, "open directory", e))?;
            let subs = empty_but_dirs(cur.as_fd(), dev, &path)?;
            levels.push((sub, subs));
            continue;
        }
        let path = here(&levels);
        let Some((done, _)) = levels.pop() else {
            return Ok(());
        };
        if levels.is_empty() {
            drop(cur);
            return unlinkat(parent, name, AtFlags::REMOVEDIR)
                .map_err(|e| Error::io(shown, "remove directory", e));
        }
        let up = open_dir(cur.as_fd(), b"..").map_err(|e| Error::io(&path, "open directory", e))?;
        unlinkat(&up, done.as_slice(), AtFlags::REMOVEDIR)
            .map_err(|e| Error::io(&path, "remove directory", e))?;
        cur = up;
    }
}

/// Removes every non-directory in `dir`; returns its subdirectories (a mount point fails).
fn empty_but_dirs(dir: BorrowedFd<'_>, dev: u64, shown: &str) -> Result<Vec<Vec<u8>>, Error> {
    let mut subs = Vec::new();
    for child in children(dir, shown)? {
        let path = || format!("{shown}/{}", String::from_utf8_lossy(&child));
        let st = statat(dir, child.as_slice(), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| Error::io(path(), "stat", e))?;
        if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
            if st.st_dev != dev {
                return Err(Error::io(path(), "replace", Errno::BUSY));
            }
            subs.push(child);
        } else {
            unlinkat(dir, child.as_slice(), AtFlags::empty())
                .map_err(|e| Error::io(path(), "remove", e))?;
        }
    }
    Ok(subs)
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
