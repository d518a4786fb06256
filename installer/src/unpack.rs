//! Writes checked entries under a root directory descriptor (the staging directory).
//!
//! Regular files, symlinks and hard links are created in place when the name is free (always in
//! the fresh stage, but for a name the archive lists twice), otherwise made under a temporary
//! name in the same directory and renamed over the old one. Devices and FIFOs always go through
//! the temporary name. Metadata order keeps privileges: data, owner, mode (setuid survives),
//! xattrs (`security.capability` after the chown that would clear it), times. Directories get
//! theirs at the end, children before parents. The files that switch
//! the system over ([`HELD_BACK`](crate::rules::HELD_BACK)) are written under a staged name
//! and renamed into place by [`commit_held_back`] only once everything else is durable.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::Timespec;
use rustix::fs::{
    chownat, fchmod, fchown, fsetxattr, futimens, linkat, makedev, mknodat, openat, openat2,
    renameat, symlinkat, unlinkat, utimensat, AtFlags, FileType, Gid, Mode, OFlags, ResolveFlags,
    Timestamps, Uid, XattrFlags,
};
use rustix::io::Errno;

use crate::crash;
use crate::dirwalk::{remove_all, show, DirStack};
use crate::error::Error;
use crate::rules::{is_held_back, HELD_BACK};
use crate::tar::{padding, Entry, Kind, Stream, TarError};

/// Temporary name for an entry whose name is taken (an archive listing a name twice; one per
/// directory: entries are written one at a time, and a leftover is simply reused).
pub const TEMP: &[u8] = b".nixos-wsl-installer.tmp";
/// Prefix of a held-back entry's staged name.
pub const STAGED: &[u8] = b".nixos-wsl-held.";
/// Largest write, and distance between checkpoints, inside a file.
const PIECE: u64 = 256 * 1024;

const NEW_FILE: OFlags = OFlags::WRONLY
    .union(OFlags::CREATE)
    .union(OFlags::EXCL)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

fn split(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|&c| c == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (b"", path),
    }
}

pub fn staged_name(name: &[u8]) -> Vec<u8> {
    let mut s = STAGED.to_vec();
    s.extend_from_slice(name);
    s
}

struct DirMeta {
    path: Vec<u8>,
    entry: Entry,
}

/// Starts the disk writing early: without it the kernel keeps gigabytes dirty until the final
/// `syncfs`, which then waits for all of it, while the unpack could have overlapped with it.
struct Flusher {
    kick: std::sync::mpsc::SyncSender<()>,
    written: u64,
}

/// Bytes written between kicks of the background `syncfs`. 16 MiB rather than 128: on the
/// Debian test payload (170 MB, on a journaled ext4) the whole install took 1.13-1.21 s
/// against 1.43-1.71 s, three interleaved runs each (docs/installer.md): less is left for the
/// `syncfs` before the merge, which the install waits for.
const FLUSH_EVERY: u64 = 16 << 20;

impl Flusher {
    fn start(root: BorrowedFd<'_>) -> Option<Flusher> {
        let fd = rustix::io::fcntl_dupfd_cloexec(root, 0).ok()?;
        let (kick, wait) = std::sync::mpsc::sync_channel::<()>(1);
        std::thread::spawn(move || {
            while wait.recv().is_ok() {
                let _ = rustix::fs::syncfs(&fd);
            }
        });
        Some(Flusher { kick, written: 0 })
    }

    fn wrote(&mut self, n: u64) {
        self.written += n;
        if self.written >= FLUSH_EVERY {
            self.written = 0;
            let _ = self.kick.try_send(());
        }
    }
}

pub struct Unpacker {
    flusher: Option<Flusher>,
    stack: DirStack,
    dirs: Vec<DirMeta>,
    /// Held-back names already staged (hard links to them go to the staged name).
    staged: HashSet<Vec<u8>>,
    euid: u32,
    egid: u32,
}

fn times(e: &Entry) -> Timestamps {
    let t = Timespec {
        tv_sec: e.mtime,
        tv_nsec: i64::from(e.mtime_nsec),
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

impl Unpacker {
    pub fn new(root: OwnedFd) -> Self {
        Unpacker {
            flusher: Flusher::start(root.as_fd()),
            stack: DirStack::new(root),
            dirs: Vec::new(),
            staged: HashSet::new(),
            euid: rustix::process::geteuid().as_raw(),
            egid: rustix::process::getegid().as_raw(),
        }
    }

    /// Writes one entry, consuming its data (and padding) from the stream.
    pub fn write<I: Iterator<Item = Result<Vec<u8>, Error>>>(
        &mut self,
        e: &Entry,
        s: &mut Stream<I>,
    ) -> Result<(), TarError> {
        crash::point();
        let shown = show(&e.name);
        if e.kind == Kind::Dir {
            self.dir(e).map_err(TarError::Source)?;
            return Ok(());
        }
        let held = is_held_back(&e.name)
            || matches!(&e.kind, Kind::HardLink(t) if self.staged.contains(t.as_slice()));
        let (dir, name) = split(&e.name);
        let final_name = if held {
            staged_name(name)
        } else {
            name.to_vec()
        };
        let (euid, egid) = (self.euid, self.egid);
        let link_source = match &e.kind {
            Kind::HardLink(target) => {
                let (tdir, tname) = split(target);
                let tname = if self.staged.contains(target.as_slice()) {
                    staged_name(tname)
                } else {
                    tname.to_vec()
                };
                let fd = self
                    .link_dir(tdir)
                    .map_err(|err| TarError::Source(Error::io(show(target), "open", err)))?;
                Some((fd, tname))
            }
            _ => None,
        };
        let parent = self
            .stack
            .dir(dir, true)
            .map_err(TarError::Source)?
            .ok_or_else(|| {
                TarError::Source(Error::io(show(dir), "open directory", Errno::NOTDIR))
            })?;
        let io = |op: &'static str| {
            move |err: Errno| TarError::Source(Error::io(show(&e.name), op, err))
        };
        match &e.kind {
            Kind::File => {
                // In place when the name is free (the common case: an empty tree), else via the
                // temporary name.
                // Created with its final mode when no chown follows (main sets the umask to 0
                // before installing): one fchmod less per file. A chown would clear setuid bits, so then
                // the mode is set after it.
                let chown = (e.uid, e.gid) != (euid, egid);
                let create_mode = Mode::from_raw_mode(if chown { 0o600 } else { e.mode });
                let (fd, temp) = match openat(parent, final_name.as_slice(), NEW_FILE, create_mode)
                {
                    Ok(fd) => (fd, false),
                    Err(Errno::EXIST) => {
                        remove_all(parent, TEMP, &shown).map_err(TarError::Source)?;
                        (
                            openat(parent, TEMP, NEW_FILE, create_mode).map_err(io("create"))?,
                            true,
                        )
                    }
                    Err(err) => return Err(io("create")(err)),
                };
                let mut file = File::from(fd);
                let mut left = e.size;
                while left > 0 {
                    let n = left.min(PIECE);
                    s.take(n, |slice| {
                        file.write_all(slice)
                            .map_err(|err| Error::io(shown.clone(), "write", err))
                    })?;
                    left -= n;
                    crash::point();
                }
                s.take(padding(e.size), |_| Ok(()))?;
                if let Some(f) = self.flusher.as_mut() {
                    f.wrote(e.size);
                }
                set_meta(file.as_fd(), e, euid, egid, chown).map_err(io("set metadata of"))?;
                drop(file);
                if temp {
                    replace(parent, &final_name, &shown).map_err(TarError::Source)?;
                }
            }
            Kind::Symlink(target) => {
                // In place when the name is free (always, in a fresh stage), else via TEMP.
                let temp = match symlinkat(target.as_slice(), parent, final_name.as_slice()) {
                    Ok(()) => false,
                    Err(Errno::EXIST) => {
                        fresh_temp(parent, &shown).map_err(TarError::Source)?;
                        symlinkat(target.as_slice(), parent, TEMP).map_err(io("create symlink"))?;
                        true
                    }
                    Err(err) => return Err(io("create symlink")(err)),
                };
                let name = if temp { TEMP } else { final_name.as_slice() };
                if (e.uid, e.gid) != (euid, egid) {
                    chownat(
                        parent,
                        name,
                        Some(Uid::from_raw(e.uid)),
                        Some(Gid::from_raw(e.gid)),
                        AtFlags::SYMLINK_NOFOLLOW,
                    )
                    .map_err(io("chown"))?;
                }
                utimensat(parent, name, &times(e), AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(io("set times of"))?;
                if temp {
                    replace(parent, &final_name, &shown).map_err(TarError::Source)?;
                }
            }
            Kind::HardLink(_) => {
                let (tdir, tname) = link_source
                    .as_ref()
                    .ok_or_else(|| io("link")(Errno::INVAL))?;
                // In place when the name is free (one system call), else via TEMP.
                match linkat(
                    tdir,
                    tname.as_slice(),
                    parent,
                    final_name.as_slice(),
                    AtFlags::empty(),
                ) {
                    Ok(()) => {}
                    Err(Errno::EXIST) => {
                        fresh_temp(parent, &shown).map_err(TarError::Source)?;
                        linkat(tdir, tname.as_slice(), parent, TEMP, AtFlags::empty())
                            .map_err(io("hard-link"))?;
                        replace(parent, &final_name, &shown).map_err(TarError::Source)?;
                        // rename(2) does nothing when both names are already the same file.
                        match unlinkat(parent, TEMP, AtFlags::empty()) {
                            Ok(()) | Err(Errno::NOENT) => {}
                            Err(err) => return Err(io("remove temporary name of")(err)),
                        }
                    }
                    Err(err) => return Err(io("hard-link")(err)),
                }
            }
            Kind::Char(major, minor) | Kind::Block(major, minor) => {
                let ty = if matches!(e.kind, Kind::Char(..)) {
                    FileType::CharacterDevice
                } else {
                    FileType::BlockDevice
                };
                special(
                    parent,
                    e,
                    ty,
                    makedev(*major, *minor),
                    &final_name,
                    euid,
                    egid,
                )?;
            }
            Kind::Fifo => special(parent, e, FileType::Fifo, 0, &final_name, euid, egid)?,
            Kind::Dir => {}
        }
        if held {
            self.staged.insert(e.name.clone());
        }
        Ok(())
    }

    /// The directory of a hard link's target: one `openat2` that refuses any symlink on the
    /// way (what the component-by-component walk of [`open_path`] does in one system call per
    /// component), falling back to that walk on kernels without `openat2` (before 5.6).
    fn link_dir(&self, dir: &[u8]) -> rustix::io::Result<OwnedFd> {
        let path: &[u8] = if dir.is_empty() { b"." } else { dir };
        match openat2(
            self.stack.root(),
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::NO_SYMLINKS | ResolveFlags::BENEATH,
        ) {
            Err(Errno::NOSYS) => open_path(self.stack.root(), dir),
            other => other,
        }
    }

    fn dir(&mut self, e: &Entry) -> Result<(), Error> {
        if !e.name.is_empty() {
            let (dir, name) = split(&e.name);
            let parent = self
                .stack
                .dir(dir, true)?
                .ok_or_else(|| Error::io(show(dir), "open directory", Errno::NOTDIR))?;
            match rustix::fs::mkdirat(parent, name, Mode::from_raw_mode(0o700)) {
                Ok(()) => {}
                Err(Errno::EXIST) => {
                    let st = rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW)
                        .map_err(|err| Error::io(show(&e.name), "stat", err))?;
                    if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
                        remove_all(parent, name, &show(&e.name))?;
                        rustix::fs::mkdirat(parent, name, Mode::from_raw_mode(0o700))
                            .map_err(|err| Error::io(show(&e.name), "create directory", err))?;
                    }
                }
                Err(err) => return Err(Error::io(show(&e.name), "create directory", err)),
            }
        }
        self.dirs.push(DirMeta {
            path: e.name.clone(),
            entry: e.clone(),
        });
        Ok(())
    }

    /// Directories' owners, modes, xattrs and times, children before parents (reverse
    /// archive order), so creating an entry never touches a finished directory's mtime.
    /// A directory the archive lists twice gets its last entry's metadata (as tar does). Returns
    /// each directory's entry by path (the last), for directories merged into existing ones.
    pub fn finish_dirs(&mut self) -> Result<HashMap<Vec<u8>, Entry>, Error> {
        let dirs = std::mem::take(&mut self.dirs);
        let mut done: HashSet<&[u8]> = HashSet::new();
        for d in dirs.iter().rev() {
            if !done.insert(&d.path) {
                continue;
            }
            crash::point();
            let fd = self
                .stack
                .dir(&d.path, false)?
                .ok_or_else(|| Error::io(show(&d.path), "open directory", Errno::NOTDIR))?;
            set_dir_meta(fd, &d.entry)
                .map_err(|err| Error::io(show(&d.path), "set metadata of", err))?;
        }
        Ok(dirs.into_iter().map(|d| (d.path, d.entry)).collect())
    }
}

/// Opens a directory by path from `root` without following symlinks.
pub fn open_path(root: BorrowedFd<'_>, dir: &[u8]) -> rustix::io::Result<OwnedFd> {
    let mut fd = crate::dirwalk::open_dir(root, b".")?;
    if !dir.is_empty() {
        for part in dir.split(|&c| c == b'/') {
            fd = crate::dirwalk::open_dir(fd.as_fd(), part)?;
        }
    }
    Ok(fd)
}

fn fresh_temp(parent: BorrowedFd<'_>, shown: &str) -> Result<(), Error> {
    remove_all(parent, TEMP, shown)
}

/// Renames the temporary name over `name`; a directory in the way is removed first.
fn replace(parent: BorrowedFd<'_>, name: &[u8], shown: &str) -> Result<(), Error> {
    match renameat(parent, TEMP, parent, name) {
        Ok(()) => Ok(()),
        Err(Errno::ISDIR | Errno::NOTEMPTY | Errno::EXIST) => {
            remove_all(parent, name, shown)?;
            renameat(parent, TEMP, parent, name)
                .map_err(|e| Error::io(shown, "rename into place", e))
        }
        Err(e) => Err(Error::io(shown, "rename into place", e)),
    }
}

fn special(
    parent: BorrowedFd<'_>,
    e: &Entry,
    ty: FileType,
    dev: u64,
    name: &[u8],
    euid: u32,
    egid: u32,
) -> Result<(), TarError> {
    let shown = show(&e.name);
    let io =
        |op: &'static str| move |err: Errno| TarError::Source(Error::io(show(&e.name), op, err));
    fresh_temp(parent, &shown).map_err(TarError::Source)?;
    mknodat(parent, TEMP, ty, Mode::from_raw_mode(0o600), dev).map_err(io("create"))?;
    if (e.uid, e.gid) != (euid, egid) {
        chownat(
            parent,
            TEMP,
            Some(Uid::from_raw(e.uid)),
            Some(Gid::from_raw(e.gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(io("chown"))?;
    }
    rustix::fs::chmodat(parent, TEMP, Mode::from_raw_mode(e.mode), AtFlags::empty())
        .map_err(io("chmod"))?;
    utimensat(parent, TEMP, &times(e), AtFlags::SYMLINK_NOFOLLOW).map_err(io("set times of"))?;
    replace(parent, name, &shown).map_err(TarError::Source)
}

/// A directory's owner, mode, xattrs and times from its archive entry.
pub fn set_dir_meta(fd: BorrowedFd<'_>, e: &Entry) -> rustix::io::Result<()> {
    set_meta(fd, e, u32::MAX, u32::MAX, true)
}

/// Owner, then mode (chown clears setuid) unless `set_mode` is false (created with it), then
/// xattrs (chown clears capabilities), then times.
fn set_meta(
    fd: BorrowedFd<'_>,
    e: &Entry,
    euid: u32,
    egid: u32,
    set_mode: bool,
) -> rustix::io::Result<()> {
    if (e.uid, e.gid) != (euid, egid) {
        fchown(fd, Some(Uid::from_raw(e.uid)), Some(Gid::from_raw(e.gid)))?;
    }
    if set_mode {
        fchmod(fd, Mode::from_raw_mode(e.mode))?;
    }
    for (name, value) in &e.xattrs {
        fsetxattr(fd, name.as_slice(), value, XattrFlags::empty())?;
    }
    futimens(fd, &times(e))
}

/// Directories whose times the commit disturbs (parents of held-back files, and the root,
/// which loses `/nixos-wsl`), with the times the archive gave them: `SECS NSECS PATH` lines.
pub fn record_dir_times(root: BorrowedFd<'_>) -> Result<String, Error> {
    let mut out = String::new();
    let mut dirs: Vec<&[u8]> = vec![b""];
    dirs.extend(HELD_BACK.iter().map(|p| split(p).0));
    dirs.dedup();
    for dir in dirs {
        let Ok(fd) = open_path(root, dir) else {
            continue;
        };
        let st = rustix::fs::fstat(&fd).map_err(|e| Error::io(show(dir), "stat", e))?;
        out.push_str(&format!(
            "{} {} {}\n",
            st.st_mtime,
            st.st_mtime_nsec,
            String::from_utf8_lossy(dir)
        ));
    }
    Ok(out)
}

/// Puts back a directory's recorded time.
pub fn restore_dir_time(root: BorrowedFd<'_>, times: &str, dir: &[u8]) -> Result<(), Error> {
    for line in times.lines() {
        let mut parts = line.splitn(3, ' ');
        let (Some(secs), Some(nsecs), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if path.as_bytes() != dir {
            continue;
        }
        let (Ok(secs), Ok(nsecs)) = (secs.parse::<i64>(), nsecs.parse::<i64>()) else {
            continue;
        };
        let t = Timespec {
            tv_sec: secs,
            tv_nsec: nsecs,
        };
        let fd = open_path(root, dir).map_err(|e| Error::io(show(dir), "open", e))?;
        futimens(
            &fd,
            &Timestamps {
                last_access: t,
                last_modification: t,
            },
        )
        .map_err(|e| Error::io(show(dir), "set times of", e))?;
    }
    Ok(())
}

/// Renames the staged held-back files into place, `/etc/passwd` last, each made durable
/// before the next. Idempotent: a name whose staged file is gone was committed already.
pub fn commit_held_back(root: BorrowedFd<'_>, times: &str) -> Result<u32, Error> {
    let mut done = 0;
    for path in HELD_BACK {
        let (dir, name) = split(path);
        let Ok(parent) = open_path(root, dir) else {
            continue;
        };
        let staged = staged_name(name);
        match renameat(&parent, staged.as_slice(), &parent, name) {
            Ok(()) => {}
            Err(Errno::NOENT) => continue,
            Err(Errno::ISDIR | Errno::NOTEMPTY | Errno::EXIST) => {
                remove_all(parent.as_fd(), name, &show(path))?;
                renameat(&parent, staged.as_slice(), &parent, name)
                    .map_err(|e| Error::io(show(path), "rename into place", e))?;
            }
            Err(e) => return Err(Error::io(show(path), "rename into place", e)),
        }
        // No checkpoint between the rename and putting the directory's time back: after the
        // last rename (/etc/passwd) no rerun of the installer would fix it.
        restore_dir_time(root, times, dir)?;
        rustix::fs::fsync(&parent).map_err(|e| Error::io(show(dir), "sync", e))?;
        done += 1;
        crash::point();
    }
    // A rerun after a kill may find a rename done but not the time: put them all back.
    for path in HELD_BACK {
        restore_dir_time(root, times, split(path).0)?;
    }
    Ok(done)
}

/// True when a staged held-back file is waiting (an install that got past unpacking).
pub fn has_staged(root: BorrowedFd<'_>) -> bool {
    HELD_BACK.iter().any(|path| {
        let (dir, name) = split(path);
        open_path(root, dir).ok().is_some_and(|p| {
            rustix::fs::statat(&p, staged_name(name).as_slice(), AtFlags::SYMLINK_NOFOLLOW).is_ok()
        })
    })
}
