//! Everything the switch would meet, found before it changes anything: WSL's mounts inside the
//! tree (from `/proc/self/mountinfo`), and WSL's files in a directory the payload replaces by a
//! symlink (the real `/bin`, `/sbin`, `/lib` WSL makes where a merged-usr payload has
//! `/lib -> usr/lib`). Each mount point is resolved in the layout the tree will have once the
//! payload is in place (the payload's entries, and the installer tree's where the payload has
//! none), which is where WSL's own `mkdir -p` lands at the next start (microsoft/WSL
//! `src/linux/init/util.cpp:1787`): a mount whose path goes through one of the payload's
//! symlinks is moved there (`/lib/modules/<release>` to `/usr/lib/modules/<release>`); a mount
//! where the payload has a file, or below one of its files, cannot be handled and the install is
//! refused before anything changed. [`check`] only looks; [`clear`] carries the plan out, each
//! step redoable after a kill (a moved mount is found at its new place and stays there).

use std::collections::VecDeque;
use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{fstat, mkdirat, readlinkat, renameat, statat, unlinkat, AtFlags, FileType, Mode};
use rustix::io::Errno;
use rustix::mount::{mount_bind_recursive, mount_move, unmount, UnmountFlags};

use wsl_common::paths;

use crate::crash;
use crate::dirwalk::{children, open_dir, show};
use crate::error::Error;
use crate::mounts::{mounts_inside, Mount};
use crate::rules::is_held_back;
use crate::unpack::{open_path, staged_name};

/// Symlinks followed while resolving one path (the kernel's limit, `MAXSYMLINKS`).
const MAX_LINKS: u32 = 40;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Dir { dev: u64 },
    Link(Vec<u8>),
    File { mode: u32 },
    Other,
    Missing,
}

fn split(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|&c| c == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (b"", path),
    }
}

fn join(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.join(&b'/')
}

/// What is at `path` in `tree`, without following a symlink at its end. In the stage a
/// held-back file (`/sbin/init`, `/etc/passwd`, ...) is found under its staged name.
fn node(tree: BorrowedFd<'_>, path: &[u8], stage: bool) -> Node {
    if path.is_empty() {
        return fstat(tree).map_or(Node::Missing, |st| Node::Dir { dev: st.st_dev });
    }
    let (dir, name) = split(path);
    let Ok(parent) = open_path(tree, dir) else {
        return Node::Missing;
    };
    let st = match statat(&parent, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(_) if stage && is_held_back(path) => {
            match statat(
                &parent,
                staged_name(name).as_slice(),
                AtFlags::SYMLINK_NOFOLLOW,
            ) {
                Ok(st) => st,
                Err(_) => return Node::Missing,
            }
        }
        Err(_) => return Node::Missing,
    };
    match FileType::from_raw_mode(st.st_mode) {
        FileType::Directory => Node::Dir { dev: st.st_dev },
        FileType::Symlink => readlinkat(&parent, name, Vec::new())
            .map_or(Node::Other, |t| Node::Link(t.into_bytes())),
        FileType::RegularFile => Node::File { mode: st.st_mode },
        _ => Node::Other,
    }
}

/// A path as it resolves once the payload is in place.
#[derive(Debug)]
struct Resolved {
    path: Vec<u8>,
    /// What the payload has there, and what the installer tree has (consulted only where the
    /// payload has nothing on the way).
    staged: Node,
    there: Node,
}

/// Resolves `path` component by component in the tree-to-be: the stage's entry where it has
/// one, else the installer tree's (`root`; `None`: the payload alone). Symlinks are followed
/// inside the tree (an absolute target starts again at its root), also at the end.
fn resolve(
    stage: BorrowedFd<'_>,
    root: Option<(BorrowedFd<'_>, u64)>,
    path: &[u8],
) -> Result<Resolved, String> {
    let mut done: Vec<Vec<u8>> = Vec::new();
    let mut todo: VecDeque<Vec<u8>> = path.split(|&c| c == b'/').map(<[u8]>::to_vec).collect();
    let mut links = 0;
    let mut last = (Node::Missing, Node::Missing);
    while let Some(part) = todo.pop_front() {
        match part.as_slice() {
            b"" | b"." => continue,
            b".." => {
                done.pop();
                continue;
            }
            _ => done.push(part),
        }
        let here = join(&done);
        let staged = node(stage, &here, true);
        match staged {
            Node::Dir { .. } => {
                last = (staged, Node::Missing);
                continue;
            }
            Node::Link(target) => {
                if !follow(&target, &mut done, &mut todo, &mut links) {
                    return Err(format!("{}: too many levels of symlinks", show(&here)));
                }
                continue;
            }
            Node::Missing => {}
            _ if todo.is_empty() => {
                last = (staged, Node::Missing);
                continue;
            }
            _ => return Err(format!("the payload has a file at {}", show(&here))),
        }
        let Some((root, root_dev)) = root else {
            last = (Node::Missing, Node::Missing);
            continue;
        };
        let there = node(root, &here, false);
        match there {
            Node::Dir { dev } if dev != root_dev && !todo.is_empty() => {
                return Err(format!(
                    "{} is another filesystem's mount point",
                    show(&here)
                ))
            }
            Node::Link(target) => {
                if !follow(&target, &mut done, &mut todo, &mut links) {
                    return Err(format!("{}: too many levels of symlinks", show(&here)));
                }
            }
            Node::File { .. } | Node::Other if !todo.is_empty() => {
                return Err(format!("{} is a file", show(&here)))
            }
            _ => last = (Node::Missing, there),
        }
    }
    Ok(Resolved {
        path: join(&done),
        staged: last.0,
        there: last.1,
    })
}

/// Replaces the symlink just pushed onto `done` by its target's components.
fn follow(
    target: &[u8],
    done: &mut Vec<Vec<u8>>,
    todo: &mut VecDeque<Vec<u8>>,
    links: &mut u32,
) -> bool {
    *links += 1;
    done.pop();
    if target.starts_with(b"/") {
        done.clear();
    }
    for part in target.split(|&c| c == b'/').rev() {
        todo.push_front(part.to_vec());
    }
    *links <= MAX_LINKS
}

#[derive(Debug, Default)]
pub struct Plan {
    /// Mounts to move from where WSL put them to where the payload's layout has that path.
    moves: Vec<(Vec<u8>, Vec<u8>)>,
    /// Mounts already at their new place whose old one is still mounted too (a kill between
    /// the bind and the unmount of [`move_mount`]): only unmounted.
    unmounts: Vec<Vec<u8>>,
    /// Entries of the installer tree in a directory the payload replaces by a symlink, to move
    /// where that symlink leads (WSL's `/bin/wslpath`, `/sbin/mount.drvfs`, ...).
    carries: Vec<(Vec<u8>, Vec<u8>)>,
    /// Notes for the user (nothing is in the way).
    pub notes: Vec<String>,
}

/// Looks at everything the switch would meet; changes nothing. Every obstacle is reported,
/// not only the first.
pub fn check(stage: BorrowedFd<'_>, root: BorrowedFd<'_>, root_path: &Path) -> Result<Plan, Error> {
    let root_dev = fstat(root)
        .map_err(|e| Error::io(root_path.display().to_string(), "stat", e))?
        .st_dev;
    let mut plan = Plan::default();
    let mut problems = Vec::new();
    if let Err(p) = check_root_shell(stage) {
        problems.push(p);
    }
    let mounts = mounts_inside(root_path)?;
    for m in &mounts {
        if let Err(p) = check_mount(stage, root, root_dev, m, &mounts, &mut plan) {
            problems.push(p);
        }
    }
    if let Err(p) = find_carries(stage, root, root_dev, b"", &mut plan) {
        problems.push(p);
    }
    // What held a mount (WSL's /lib/modules once its <release> moved) or leads to a moved one's
    // new place is not carried: the mount went on its own, and its directories are made there.
    let within = |a: &[u8], b: &[u8]| a == b || (b.starts_with(a) && b.get(a.len()) == Some(&b'/'));
    let moves = &plan.moves;
    let held: Vec<&[u8]> = mounts.iter().map(|m| m.point.as_slice()).collect();
    plan.carries.retain(|(from, to)| {
        !held.iter().any(|p| within(from, p)) && !moves.iter().any(|(_, t)| within(to, t))
    });
    if problems.is_empty() {
        Ok(plan)
    } else {
        Err(Error::Refused { problems })
    }
}

fn check_mount(
    stage: BorrowedFd<'_>,
    root: BorrowedFd<'_>,
    root_dev: u64,
    m: &Mount,
    all: &[Mount],
    plan: &mut Plan,
) -> Result<(), String> {
    let shown = show(&m.point);
    let what = format!(
        "{} is mounted on {shown}",
        String::from_utf8_lossy(&m.fstype)
    );
    let is_dir = matches!(node(root, &m.point, false), Node::Dir { .. });
    let r = resolve(stage, Some((root, root_dev)), &m.point).map_err(|p| format!("{what}: {p}"))?;
    if !is_dir {
        // A file mount (WSL's /init): stays where it is, over nothing of the payload's.
        return match (&r.staged, r.path == m.point) {
            (Node::Missing, true) => Ok(()),
            _ => Err(format!(
                "{what} and the payload has {} there",
                show(&r.path)
            )),
        };
    }
    if !matches!(r.staged, Node::Dir { .. } | Node::Missing) {
        return Err(format!(
            "{what}, where the payload has a file ({})",
            show(&r.path)
        ));
    }
    if r.path == m.point {
        // Stays: the merge walks around it (and says so when the payload has entries there).
        return Ok(());
    }
    match &r.there {
        Node::Missing => {}
        Node::Dir { dev } if *dev == root_dev => {}
        Node::Dir { .. } => {
            // Mounted there already: the same mount (a kill between bind and unmount) or not.
            let same = all
                .iter()
                .any(|o| o.point == r.path && o.source == m.source);
            if same {
                plan.unmounts.push(m.point.clone());
                return Ok(());
            }
            return Err(format!(
                "{what}, which belongs at {} in the payload's layout, and another filesystem is \
                 mounted there",
                show(&r.path)
            ));
        }
        _ => return Err(format!("{what} and {} is a file", show(&r.path))),
    }
    plan.notes
        .push(format!("{shown}: WSL's mount moved to {}", show(&r.path)));
    plan.moves.push((m.point.clone(), r.path));
    Ok(())
}

/// Root's shell in the payload's `/etc/passwd` must be a program the payload has: after the
/// switch nothing else gives root a shell.
fn check_root_shell(stage: BorrowedFd<'_>) -> Result<(), String> {
    // `/etc` may be a symlink of the payload (`/etc -> usr/etc`); `/etc/passwd` is staged
    // under its held-back name when `/etc` is a real directory, else under its own.
    let etc = resolve(stage, None, b"etc")
        .map(|r| r.path)
        .unwrap_or(b"etc".to_vec());
    let passwd = open_path(stage, &etc)
        .ok()
        .and_then(|etc| {
            [staged_name(b"passwd"), b"passwd".to_vec()]
                .iter()
                .find_map(|name| {
                    rustix::fs::openat(
                        &etc,
                        name.as_slice(),
                        rustix::fs::OFlags::RDONLY
                            | rustix::fs::OFlags::NOFOLLOW
                            | rustix::fs::OFlags::CLOEXEC,
                        Mode::empty(),
                    )
                    .ok()
                })
                .and_then(|fd| std::io::read_to_string(std::fs::File::from(fd)).ok())
        })
        .ok_or("the payload has no /etc/passwd: root would have no shell")?;
    let shell = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.first() == Some(&"root"))
        .map(|f| f.get(6).copied().unwrap_or_default().trim().to_owned())
        .ok_or("the payload's /etc/passwd has no root entry: root would have no shell")?;
    let shell = if shell.is_empty() {
        "/bin/sh".to_owned()
    } else {
        shell
    };
    let r = resolve(stage, None, shell.as_bytes()).map_err(|p| {
        format!("root's shell {shell} (the payload's /etc/passwd) cannot be found: {p}")
    })?;
    match r.staged {
        Node::File { mode } if mode & 0o111 != 0 => Ok(()),
        Node::File { .. } => Err(format!(
            "root's shell {shell} (the payload's /etc/passwd) is not executable"
        )),
        _ => Err(format!(
            "root's shell {shell} (the payload's /etc/passwd) is not in the payload: root would \
             have no shell"
        )),
    }
}

/// Walks the installer tree's directories that the payload has too, and plans to carry the
/// entries of every one the payload replaces by a symlink to where that symlink leads, unless
/// the payload has something of that name.
fn find_carries(
    stage: BorrowedFd<'_>,
    root: BorrowedFd<'_>,
    root_dev: u64,
    dir: &[u8],
    plan: &mut Plan,
) -> Result<(), String> {
    let fd = open_path(root, dir).map_err(|e| format!("{}: cannot open: {e}", show(dir)))?;
    let names = children(fd.as_fd(), &show(dir)).map_err(|e| e.to_string())?;
    for name in names {
        let path = if dir.is_empty() {
            name.clone()
        } else {
            [dir, b"/", &name].concat()
        };
        if path == paths::INSTALLER_DIR.as_bytes()[1..] {
            continue;
        }
        if !matches!(node(root, &path, false), Node::Dir { dev } if dev == root_dev) {
            continue;
        }
        match node(stage, &path, true) {
            Node::Dir { .. } => find_carries(stage, root, root_dev, &path, plan)?,
            Node::Link(_) => {
                let inner = open_path(root, &path)
                    .map_err(|e| format!("{}: cannot open: {e}", show(&path)))?;
                for child in children(inner.as_fd(), &show(&path)).map_err(|e| e.to_string())? {
                    let from = [path.as_slice(), b"/", &child].concat();
                    let Ok(r) = resolve(stage, Some((root, root_dev)), &from) else {
                        continue;
                    };
                    if r.staged == Node::Missing && r.there == Node::Missing && r.path != from {
                        plan.carries.push((from, r.path));
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Carries the plan out: mounts moved, then the installer tree's entries carried. Redoable.
pub fn clear(plan: &Plan, root: BorrowedFd<'_>, root_path: &Path) -> Result<(), Error> {
    let abs = |p: &[u8]| -> PathBuf { root_path.join(OsStr::from_bytes(p)) };
    for point in &plan.unmounts {
        unmount(abs(point), UnmountFlags::DETACH)
            .map_err(|e| Error::io(show(point), "unmount", e))?;
        crash::point();
    }
    for (from, to) in &plan.moves {
        make_dirs(root, to)?;
        move_mount(&abs(from), &abs(to)).map_err(|e| Error::io(show(from), "move mount", e))?;
        crash::point();
    }
    for (from, to) in &plan.carries {
        make_dirs(root, split(to).0)?;
        renameat(root, from.as_slice(), root, to.as_slice()).map_err(|e| {
            Error::io(
                show(from),
                "move (to keep it where the payload's symlink leads)",
                e,
            )
        })?;
        crash::point();
    }
    Ok(())
}

/// `MS_MOVE`; where the mount's parent is a shared mount the kernel refuses that (`EINVAL`,
/// fs/namespace.c `do_move_mount`), so a recursive bind at the new place and a lazy unmount of
/// the old one do the same (both propagate to the peers).
fn move_mount(from: &Path, to: &Path) -> rustix::io::Result<()> {
    match mount_move(from, to) {
        Err(Errno::INVAL) => {
            mount_bind_recursive(from, to)?;
            crash::point();
            unmount(from, UnmountFlags::DETACH)
        }
        other => other,
    }
}

/// `mkdir -p` of `path` (relative) in the installer tree; a non-directory on the way (where
/// the payload has a directory, as [`check`] made sure) is replaced by a directory.
fn make_dirs(root: BorrowedFd<'_>, path: &[u8]) -> Result<(), Error> {
    let mut fd = open_dir(root, b".").map_err(|e| Error::io("/", "open", e))?;
    if path.is_empty() {
        return Ok(());
    }
    let mut here = Vec::new();
    for part in path.split(|&c| c == b'/') {
        if !here.is_empty() {
            here.push(b'/');
        }
        here.extend_from_slice(part);
        let next = match open_dir(fd.as_fd(), part) {
            Ok(next) => next,
            Err(e @ (Errno::NOENT | Errno::NOTDIR | Errno::LOOP)) => {
                if e != Errno::NOENT {
                    unlinkat(&fd, part, AtFlags::empty())
                        .map_err(|e| Error::io(show(&here), "remove", e))?;
                }
                mkdirat(&fd, part, Mode::from_raw_mode(0o755))
                    .map_err(|e| Error::io(show(&here), "create directory", e))?;
                open_dir(fd.as_fd(), part).map_err(|e| Error::io(show(&here), "open", e))?
            }
            Err(e) => return Err(Error::io(show(&here), "open", e)),
        };
        fd = next;
    }
    Ok(())
}
