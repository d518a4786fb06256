//! Every `unsafe` block and raw system call of init, each with its reason. The rest of the
//! crate is safe code over these wrappers (and rustix's safe calls).

use std::ffi::{CStr, CString};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::atomic::{AtomicI32, Ordering};

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Which side of a `fork` this is.
pub enum Fork {
    Child,
    Parent(i32),
}

/// `fork(2)`.
///
/// # Safety
/// The process must be single-threaded (init never starts a thread), so that the child's copy
/// of memory holds no lock taken by another thread and may run ordinary code until it execs
/// or calls [`exit_now`]. A child must never return into the caller's normal flow.
pub unsafe fn fork() -> io::Result<Fork> {
    // SAFETY: the caller guarantees a single-threaded process (see above).
    let pid = check(unsafe { libc::fork() })?;
    Ok(if pid == 0 {
        Fork::Child
    } else {
        Fork::Parent(pid)
    })
}

/// `_exit(2)`: no atexit handlers, no buffers flushed (a forked child owns neither).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit has no preconditions and does not return.
    unsafe { libc::_exit(code) }
}

/// The null-terminated pointer array `execve` takes for `items` (which must outlive it).
fn c_pointers(items: &[CString]) -> Vec<*const libc::c_char> {
    items
        .iter()
        .map(|a| a.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

/// `execve(2)`; returns only on failure.
pub fn execve(path: &CStr, argv: &[CString], envp: &[CString]) -> io::Error {
    let (args, env) = (c_pointers(argv), c_pointers(envp));
    // SAFETY: path, every argument and every variable are NUL-terminated C strings that
    // outlive the call, and both arrays end with a null pointer.
    unsafe { libc::execve(path.as_ptr(), args.as_ptr(), env.as_ptr()) };
    io::Error::last_os_error()
}

/// The user's shell as [`spawn_shell`] starts it: everything the child needs, prepared
/// before, because the child may only make system calls on memory it shares with us.
pub struct ShellSpawn<'a> {
    pub program: &'a CStr,
    pub argv: &'a [CString],
    pub envp: &'a [CString],
    pub groups: &'a [u32],
    pub gid: u32,
    pub uid: u32,
    /// Tried in order as the user (the caller's directory, home, `/`).
    pub dirs: &'a [&'a CStr],
}

/// Why [`spawn_shell`] failed.
pub enum SpawnError {
    /// No child could be made.
    Clone(io::Error),
    /// The child could not become the user (`setgroups`, `setgid`, `setuid`).
    Credentials(&'static str, io::Error),
    Exec(io::Error),
}

/// What the cloned child reads, and writes back when a step fails.
struct ChildState<'a> {
    spawn: &'a ShellSpawn<'a>,
    argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
    /// The signal mask to exec with: ours from before the clone.
    mask: libc::sigset_t,
    failed: Option<(&'static str, i32)>,
}

const EXEC_STEP: &str = "exec";

/// Stack of the cloned child until it execs: a few system calls deep.
const CHILD_STACK: usize = 16 * 1024;

/// Starts the shell as a child that becomes the user, changes directory and execs, and
/// returns its pid once it has exec'd. It is cloned the way posix_spawn does it
/// (`CLONE_VM | CLONE_VFORK`, own stack, all signals blocked meanwhile): none of init's memory
/// is copied and we sleep until the exec, which saves a fork's page-table copy and
/// copy-on-write faults on every shell (posix_spawn itself cannot set groups and ids).
/// SIGTERM and SIGHUP are forwarded to the child from the moment it exists (installed while
/// signals are still blocked, so one sent during the exec reaches the shell instead of
/// killing us). A failed step comes back with its error, the child reaped.
pub fn spawn_shell(spawn: &ShellSpawn<'_>) -> Result<i32, SpawnError> {
    let mut state = ChildState {
        spawn,
        argv: c_pointers(spawn.argv),
        envp: c_pointers(spawn.envp),
        // SAFETY: a plain C struct, filled in by sigprocmask below before the child reads it.
        mask: unsafe { std::mem::zeroed() },
        failed: None,
    };
    let mut stack = vec![0u8; CHILD_STACK];
    // The stack grows down from its (16-byte aligned) end.
    let top = (stack.as_mut_ptr() as usize + CHILD_STACK) & !15;
    // SAFETY: `shell_child` runs on its own stack, touches only `state` (alive until the
    // child has exec'd or exited: CLONE_VFORK suspends us until then) and makes only system
    // calls. All signals stay blocked across the clone so no handler of ours runs on the
    // child's stack; the child restores the mask after resetting dispositions. The child
    // writes `failed` through the pointer handed to clone (an opaque call, so the compiler
    // reloads it); the volatile read only makes that explicit.
    let (pid, err, failed) = unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::sigprocmask(libc::SIG_SETMASK, &all, &mut state.mask);
        let pid = libc::clone(
            shell_child,
            top as *mut libc::c_void,
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            std::ptr::addr_of_mut!(state).cast(),
        );
        let err = io::Error::last_os_error();
        let failed = std::ptr::read_volatile(&state.failed);
        if pid > 0 && failed.is_none() {
            forward_signals_to(pid);
        }
        libc::sigprocmask(libc::SIG_SETMASK, &state.mask, std::ptr::null_mut());
        (pid, err, failed)
    };
    drop(stack);
    if pid == -1 {
        return Err(SpawnError::Clone(err));
    }
    match failed {
        None => Ok(pid),
        Some((step, errno)) => {
            let _ = wait_for(pid);
            let err = io::Error::from_raw_os_error(errno);
            Err(match step {
                EXEC_STEP => SpawnError::Exec(err),
                _ => SpawnError::Credentials(step, err),
            })
        }
    }
}

/// The cloned child of [`spawn_shell`]: system calls only, no allocation, no locks.
extern "C" fn shell_child(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: arg is the parent's ChildState, which outlives us (CLONE_VFORK).
    let state = unsafe { &mut *arg.cast::<ChildState<'_>>() };
    let spawn = state.spawn;
    let fail = |state: &mut ChildState<'_>, step: &'static str, err: io::Error| -> ! {
        state.failed = Some((step, err.raw_os_error().unwrap_or(libc::EIO)));
        // SAFETY: ends only this child (it is its own thread group).
        unsafe { libc::_exit(127) }
    };
    if let Err((step, err)) = become_user(spawn.groups, spawn.gid, spawn.uid) {
        fail(state, step, err);
    }
    for dir in spawn.dirs {
        // SAFETY: dir is a NUL-terminated string.
        if unsafe { libc::chdir(dir.as_ptr()) } == 0 {
            break;
        }
    }
    default_dispositions();
    // SAFETY: the mask is the parent's, saved before the clone; argv and envp are
    // null-terminated arrays of NUL-terminated strings owned by the suspended parent.
    unsafe {
        libc::sigprocmask(libc::SIG_SETMASK, &state.mask, std::ptr::null_mut());
        libc::execve(
            spawn.program.as_ptr(),
            state.argv.as_ptr(),
            state.envp.as_ptr(),
        );
    }
    fail(state, EXEC_STEP, io::Error::last_os_error())
}

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

fn decode(status: libc::c_int) -> Exit {
    if libc::WIFSIGNALED(status) {
        Exit::Signal(libc::WTERMSIG(status))
    } else {
        Exit::Code(libc::WEXITSTATUS(status))
    }
}

/// Waits for `pid` to end (stopped children are not reported), retrying on signals.
pub fn wait_for(pid: i32) -> io::Result<Exit> {
    loop {
        let mut status = 0;
        // SAFETY: status is a valid, writable int.
        match check(unsafe { libc::waitpid(pid, &mut status, 0) }) {
            Ok(_) => return Ok(decode(status)),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// `unshare(CLONE_NEWPID | CLONE_NEWNS)`: the next child is PID 1 of a new PID namespace, and
/// this process now has its own copy of the mount table.
pub fn unshare_pid_and_mount() -> io::Result<()> {
    // SAFETY: plain system call; the process is single-threaded (required for CLONE_NEWNS).
    check(unsafe { libc::unshare(libc::CLONE_NEWPID | libc::CLONE_NEWNS) }).map(drop)
}

/// Joins the namespace behind `fd` (`CLONE_NEWPID` or `CLONE_NEWNS`), or those of the
/// process behind a pidfd (`kind` then names them).
pub fn setns(fd: BorrowedFd<'_>, kind: libc::c_int) -> io::Result<()> {
    // SAFETY: fd is an open namespace file or pidfd; the call touches no memory of ours.
    check(unsafe { libc::setns(fd.as_raw_fd(), kind) }).map(drop)
}

/// `close_range(first, u32::MAX)` with everything in `keep` spared (ascending order).
pub fn close_fds_except(keep: &[RawFd]) {
    let mut first: u32 = 3;
    let mut keep: Vec<u32> = keep.iter().filter_map(|&f| u32::try_from(f).ok()).collect();
    keep.sort_unstable();
    for fd in keep.into_iter().filter(|&f| f >= 3) {
        if fd > first {
            // SAFETY: closing descriptors this process does not use any more; no Rust object
            // refers to them after a fork in the child that calls this.
            unsafe { libc::syscall(libc::SYS_close_range, first, fd - 1, 0) };
        }
        first = fd + 1;
    }
    // SAFETY: as above.
    unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, 0) };
}

/// Points stdin, stdout and stderr at /dev/null (systemd must not hold the caller's pipes).
pub fn stdio_to_null() -> io::Result<()> {
    let null = File::options().read(true).write(true).open("/dev/null")?;
    for fd in 0..3 {
        dup2(null.as_raw_fd(), fd)?;
    }
    Ok(())
}

pub fn dup2(from: RawFd, to: RawFd) -> io::Result<()> {
    // SAFETY: plain system call on descriptors; `to` is replaced atomically.
    check(unsafe { libc::dup2(from, to) }).map(drop)
}

/// A pipe whose ends close on exec.
pub fn pipe() -> io::Result<(File, File)> {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid array of two ints.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: both descriptors were just created and are owned by nothing else.
    Ok(unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) })
}

pub fn kill(pid: i32, signal: i32) -> io::Result<()> {
    // SAFETY: plain system call.
    check(unsafe { libc::kill(pid, signal) }).map(drop)
}

/// The signal that asks systemd to power off.
pub fn poweroff_signal() -> i32 {
    libc::SIGRTMIN() + 4
}

/// `pidfd_open(2)`: readable once the process has ended.
pub fn pidfd(pid: i32) -> io::Result<OwnedFd> {
    let pid = rustix::process::Pid::from_raw(pid).ok_or(io::ErrorKind::InvalidInput)?;
    Ok(rustix::process::pidfd_open(
        pid,
        rustix::process::PidfdFlags::empty(),
    )?)
}

/// Waits up to `timeout_ms` (negative: forever) for any of `fds` to be readable; returns
/// which are.
pub fn poll_readable(fds: &[BorrowedFd<'_>], timeout_ms: i32) -> io::Result<Vec<bool>> {
    let mut polls: Vec<libc::pollfd> = fds
        .iter()
        .map(|fd| libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    loop {
        // SAFETY: polls is a valid array of pollfd of the given length.
        let ret =
            unsafe { libc::poll(polls.as_mut_ptr(), polls.len() as libc::nfds_t, timeout_ms) };
        match check(ret) {
            Ok(_) => return Ok(polls.iter().map(|p| p.revents != 0).collect()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

pub fn set_disposition(signal: i32, handler: libc::sighandler_t) {
    // SAFETY: sigaction with an empty mask and either SIG_DFL, SIG_IGN or a handler that only
    // calls async-signal-safe functions (forward_signal).
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(signal, &action, std::ptr::null_mut());
    }
}

static FORWARD_TO: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward_signal(signal: libc::c_int) {
    let pid = FORWARD_TO.load(Ordering::Relaxed);
    if pid > 0 {
        // SAFETY: kill is async-signal-safe.
        unsafe { libc::kill(pid, signal) };
    }
}

/// The waiting parent: Ctrl-C and Ctrl-\ are for the shell (same terminal), not for us.
pub fn ignore_terminal_signals() {
    for signal in [libc::SIGINT, libc::SIGQUIT] {
        set_disposition(signal, libc::SIG_IGN);
    }
}

/// The waiting parent passes SIGTERM and SIGHUP on to `pid`.
pub fn forward_signals_to(pid: i32) {
    FORWARD_TO.store(pid, Ordering::Relaxed);
    for signal in [libc::SIGTERM, libc::SIGHUP] {
        set_disposition(
            signal,
            forward_signal as extern "C" fn(libc::c_int) as libc::sighandler_t,
        );
    }
}

/// What a program we exec must start with: default dispositions for what we (or Rust's
/// runtime, SIGPIPE) changed, and no blocked signals.
pub fn restore_signals() {
    for signal in [
        libc::SIGINT,
        libc::SIGQUIT,
        libc::SIGTERM,
        libc::SIGHUP,
        libc::SIGPIPE,
    ] {
        set_disposition(signal, libc::SIG_DFL);
    }
    // SAFETY: an empty set, initialised before use.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}

pub fn setsid() -> io::Result<()> {
    rustix::process::setsid().map(drop).map_err(io::Error::from)
}

pub fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

pub fn pid() -> i32 {
    rustix::process::getpid().as_raw_nonzero().get()
}

pub fn ppid() -> i32 {
    rustix::process::getppid().map_or(0, |p| p.as_raw_nonzero().get())
}

/// Clock ticks per second (for /proc/PID/stat start times).
pub fn clock_ticks() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(ticks).ok().filter(|&t| t > 0).unwrap_or(100)
}

/// Makes `command`'s child join the mount namespace behind `mnt` before it execs.
pub fn in_mount_namespace(command: &mut Command, mnt: RawFd) {
    // SAFETY: the closure runs between fork and exec and only makes one system call
    // (async-signal-safe); `mnt` stays open in the parent for the command's lifetime.
    unsafe {
        command.pre_exec(move || {
            if libc::setns(mnt, libc::CLONE_NEWNS) == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Writes all of `bytes` to `fd`, ignoring failures (a closed console must not kill us).
pub fn write_quietly(fd: RawFd, bytes: &[u8]) {
    let mut rest = bytes;
    while !rest.is_empty() {
        // SAFETY: rest is a valid buffer of the given length.
        let n = unsafe { libc::write(fd, rest.as_ptr().cast(), rest.len()) };
        if n > 0 {
            rest = &rest[n.unsigned_abs()..];
        } else if n == -1 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        } else {
            return;
        }
    }
}

/// Reaps any child (native mode's fallback init); Err when there is none.
pub fn reap_any() -> io::Result<()> {
    let mut status = 0;
    // SAFETY: status is a valid, writable int.
    check(unsafe { libc::waitpid(-1, &mut status, 0) }).map(drop)
}

/// Opens `path` read-only with one system call (musl's `open` adds an `fcntl` for
/// `O_CLOEXEC`, which this kernel has honoured for years).
pub fn open_read_only(path: &str) -> io::Result<File> {
    use rustix::fs::{open, Mode, OFlags};
    Ok(File::from(open(
        path,
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )?))
}

/// Reads a small file with as few system calls as possible (open, read until EOF, close:
/// no `fstat`, no `fcntl`), on the hot path of every shell. /proc files are built in full on
/// each read call, so one large read also builds them once.
pub fn read_file(path: &str) -> io::Result<Vec<u8>> {
    let fd = open_read_only(path)?;
    let mut buf = vec![0u8; 8192];
    let mut len = 0;
    loop {
        let n = rustix::io::read(&fd, &mut buf[len..])?;
        if n == 0 {
            break;
        }
        len += n;
        if len == buf.len() {
            buf.resize(len * 2, 0);
        }
    }
    buf.truncate(len);
    Ok(buf)
}

/// Becomes `uid`/`gid` with `groups` through the raw system calls (libc's wrappers add
/// signal-mask calls around each for threads init does not have).
pub fn become_user(groups: &[u32], gid: u32, uid: u32) -> Result<(), (&'static str, io::Error)> {
    let raw = |ret: libc::c_long, step: &'static str| {
        if ret == -1 {
            Err((step, io::Error::last_os_error()))
        } else {
            Ok(())
        }
    };
    // SAFETY: groups is a valid array of gid_t of the given length.
    let ret = unsafe { libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr()) };
    raw(ret, "setgroups")?;
    // SAFETY: plain system call on this (single-threaded) process's credentials.
    let ret = unsafe { libc::syscall(libc::SYS_setresgid, gid, gid, gid) };
    raw(ret, "setgid")?;
    // SAFETY: as above.
    let ret = unsafe { libc::syscall(libc::SYS_setresuid, uid, uid, uid) };
    raw(ret, "setuid")
}

/// Before exec'ing a shell: default dispositions for the signals init may have changed
/// (SIGINT, SIGQUIT ignored by the waiting parent; SIGPIPE ignored by Rust's runtime). Only
/// `sigaction` system calls: safe in the cloned child of [`spawn_shell`].
pub fn default_dispositions() {
    for signal in [libc::SIGINT, libc::SIGQUIT, libc::SIGPIPE] {
        set_disposition(signal, libc::SIG_DFL);
    }
}
