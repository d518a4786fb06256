//! Moving the verified tree from the staging directory into place: one rename per entry that
//! `/` does not have yet (all of the store, in practice), and a walk into the few directories
//! both have (`/etc`, `/root`, ... of the installer system), whose metadata then becomes the
//! archive's. Same filesystem, so nothing is copied; hard links stay links.

use std::collections::HashMap;
use std::os::fd::{AsFd, BorrowedFd};

use rustix::fs::{fstat, renameat, statat, AtFlags, FileType};
use rustix::io::Errno;

use crate::crash;
use crate::dirwalk::{children, open_dir, remove_all, show};
use crate::error::Error;
use crate::progress::say;
use crate::tar::Entry;
use crate::unpack::set_dir_meta;

/// Moves everything in `src` (the staged directory for archive path `path`) into `dst`,
/// replacing what is there, except into mount points (left in `src`, which the caller then
/// removes). `dirs` holds the archive's directory entries.
pub fn merge_into(
    src: BorrowedFd<'_>,
    dst: BorrowedFd<'_>,
    path: &[u8],
    dirs: &HashMap<Vec<u8>, Entry>,
) -> Result<(), Error> {
    let shown_dir = show(path);
    let names = children(src, &shown_dir)?;
    let dst_dev = fstat(dst)
        .map_err(|e| Error::io(&shown_dir, "stat", e))?
        .st_dev;
    for name in names {
        crash::point();
        let child: Vec<u8> = if path.is_empty() {
            name.clone()
        } else {
            [path, b"/", &name].concat()
        };
        let shown = show(&child);
        let is_dir = |mode| FileType::from_raw_mode(mode) == FileType::Directory;
        let staged = statat(src, name.as_slice(), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| Error::io(&shown, "stat", e))?;
        match statat(dst, name.as_slice(), AtFlags::SYMLINK_NOFOLLOW) {
            Err(Errno::NOENT) => {}
            // Both directories, on this filesystem: merge inside, then give it the archive's
            // metadata (after its children, whose renames touch its mtime).
            Ok(there)
                if is_dir(staged.st_mode) && is_dir(there.st_mode) && there.st_dev == dst_dev =>
            {
                let from = open_dir(src, &name).map_err(|e| Error::io(&shown, "open", e))?;
                let to = open_dir(dst, &name).map_err(|e| Error::io(&shown, "open", e))?;
                merge_into(from.as_fd(), to.as_fd(), &child, dirs)?;
                crash::point();
                if let Some(entry) = dirs.get(&child) {
                    set_dir_meta(to.as_fd(), entry)
                        .map_err(|e| Error::io(&shown, "set metadata of", e))?;
                }
                continue;
            }
            // A mount point (WSL's /run tmpfs, say): renames cannot cross into it, and what was
            // written there would not be part of the distribution's disk anyway.
            Ok(there)
                if is_dir(staged.st_mode) && is_dir(there.st_mode) && there.st_dev != dst_dev =>
            {
                if !is_empty_dir(src, &name) {
                    say(&format!(
                        "{shown}: another filesystem is mounted there; the archive's entries \
                         under it are left out"
                    ));
                }
                continue;
            }
            // rename(2) replaces a file or symlink, not a directory, nor a file by a directory.
            Ok(there) if is_dir(there.st_mode) || is_dir(staged.st_mode) => {
                remove_all(dst, &name, &shown)?;
                crash::point();
            }
            Ok(_) => {}
            Err(e) => return Err(Error::io(&shown, "stat", e)),
        }
        renameat(src, name.as_slice(), dst, name.as_slice())
            .map_err(|e| Error::io(&shown, "move into place", e))?;
    }
    Ok(())
}

/// True for a directory with nothing in it (an archive's bare `/run`, `/proc`, ...).
fn is_empty_dir(parent: BorrowedFd<'_>, name: &[u8]) -> bool {
    open_dir(parent, name)
        .ok()
        .and_then(|fd| children(fd.as_fd(), "").ok())
        .is_some_and(|names| names.is_empty())
}
