//! Every raw system call of the simulator, behind safe functions. Nothing else in the crate
//! uses `unsafe`.

use std::ffi::CString;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

pub use libc::{
    CLONE_NEWIPC, CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWUTS, MS_BIND, MS_MOVE, MS_NOATIME, MS_NODEV,
    MS_NOEXEC, MS_NOSUID, MS_PRIVATE, MS_RDONLY, MS_REC, MS_RELATIME, MS_REMOUNT, MS_SHARED,
    MS_STRICTATIME,
};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

fn cstring(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

fn check(ret: libc::c_int) -> io::Result<()> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// unshare(2): the caller enters new namespaces (a new PID namespace applies to its children).
pub fn unshare(flags: libc::c_int) -> io::Result<()> {
    // SAFETY: unshare takes flags only and touches no memory of ours.
    check(unsafe { libc::unshare(flags) })
}

/// setns(2) into the namespace behind `fd` (a /proc/PID/ns/* file).
pub fn setns(fd: &impl AsRawFd) -> io::Result<()> {
    // SAFETY: fd is a valid open descriptor for the duration of the call; nstype 0 = any.
    check(unsafe { libc::setns(fd.as_raw_fd(), 0) })
}

/// mount(2). `source` and `fstype` may be absent (bind and propagation changes).
pub fn mount(
    source: Option<&Path>,
    target: &Path,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> io::Result<()> {
    let source = source.map(cstring).transpose()?;
    let target = cstring(target)?;
    let fstype = fstype
        .map(|t| CString::new(t).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput)))
        .transpose()?;
    let data = data
        .map(|d| CString::new(d).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput)))
        .transpose()?;
    let ptr = |c: &Option<CString>| c.as_ref().map_or(std::ptr::null(), |c| c.as_ptr());
    // SAFETY: every pointer is null or a NUL-terminated string alive until the call returns.
    check(unsafe {
        libc::mount(
            ptr(&source),
            target.as_ptr(),
            ptr(&fstype),
            flags,
            ptr(&data).cast(),
        )
    })
}

pub fn sethostname(name: &str) -> io::Result<()> {
    // SAFETY: the pointer and length describe a live byte slice.
    check(unsafe { libc::sethostname(name.as_ptr().cast(), name.len()) })
}

/// kill(2); `Ok(false)` when there is no such process.
pub fn kill(pid: u32, signal: libc::c_int) -> io::Result<bool> {
    let pid = libc::pid_t::try_from(pid)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "pid out of range"))?;
    // SAFETY: kill takes plain integers.
    match check(unsafe { libc::kill(pid, signal) }) {
        Ok(()) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Ignores SIGINT and SIGQUIT in a process that only waits for a child on the same terminal
/// (Ctrl-C is for the foreground command, not for us).
pub fn ignore_terminal_signals() {
    for signal in [libc::SIGINT, libc::SIGQUIT] {
        // SAFETY: SIG_IGN is a valid disposition; no handler code runs.
        unsafe { libc::signal(signal, libc::SIG_IGN) };
    }
}

/// For `pre_exec`: the steps a child takes between fork and exec. Only async-signal-safe calls.
pub struct ChildSetup {
    pub groups: Vec<libc::gid_t>,
    pub gid: libc::gid_t,
    pub uid: libc::uid_t,
    pub new_session: bool,
    /// Made the controlling terminal (after `setsid`).
    pub controlling_tty: Option<RawFd>,
    /// Descriptors to put on 0, 1, 2 (`None`: keep).
    pub stdio: [Option<RawFd>; 3],
    /// Changed into after the identity change; a failure is ignored, as WSL's init does.
    pub cwd: Option<CString>,
}

impl ChildSetup {
    /// Installs the steps on `command`.
    pub fn install(self, command: &mut std::process::Command) {
        use std::os::unix::process::CommandExt;
        // SAFETY: the closure only makes async-signal-safe system calls (signal, sigprocmask,
        // setsid, ioctl, dup2, setgroups, setgid, setuid, chdir) on data moved into it, as
        // pre_exec requires.
        unsafe {
            command.pre_exec(move || {
                // WSL's children reset every disposition and the mask before exec
                // (config.cpp:517-525, init.cpp:1599-1606).
                for signal in 1..32 {
                    if signal != libc::SIGKILL && signal != libc::SIGSTOP {
                        libc::signal(signal, libc::SIG_DFL);
                    }
                }
                let mut empty: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut empty);
                libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
                if self.new_session && libc::setsid() == -1 {
                    return Err(io::Error::last_os_error());
                }
                if let Some(tty) = self.controlling_tty {
                    if libc::ioctl(tty, libc::TIOCSCTTY, 0) == -1 {
                        return Err(io::Error::last_os_error());
                    }
                }
                for (target, source) in self.stdio.iter().enumerate() {
                    if let Some(source) = source {
                        if libc::dup2(*source, target as libc::c_int) == -1 {
                            return Err(io::Error::last_os_error());
                        }
                    }
                }
                if libc::setgroups(self.groups.len(), self.groups.as_ptr()) == -1
                    || libc::setgid(self.gid) == -1
                    || libc::setuid(self.uid) == -1
                {
                    return Err(io::Error::last_os_error());
                }
                if let Some(cwd) = &self.cwd {
                    if libc::chdir(cwd.as_ptr()) == -1 {
                        libc::chdir(c"/".as_ptr());
                    }
                }
                Ok(())
            });
        }
    }
}

/// chroot(2).
pub fn chroot(path: &Path) -> io::Result<()> {
    let path = cstring(path)?;
    // SAFETY: path is a NUL-terminated string alive until the call returns.
    check(unsafe { libc::chroot(path.as_ptr()) })
}

/// A new pseudo-terminal pair (master, slave), with `size` when given.
pub fn openpty(size: Option<libc::winsize>) -> io::Result<(OwnedFd, OwnedFd)> {
    let (mut master, mut slave) = (-1, -1);
    let size_ptr = size
        .as_ref()
        .map_or(std::ptr::null(), |s| s as *const libc::winsize);
    // SAFETY: the out-pointers are valid; name and termios are null (allowed); size_ptr is
    // null or points at a live winsize.
    check(unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            size_ptr,
        )
    })?;
    // SAFETY: openpty returned two new descriptors that nothing else owns.
    let pair = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    set_cloexec(master)?;
    set_cloexec(slave)?;
    Ok(pair)
}

fn set_cloexec(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor we own, plain integer arguments.
    check(unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) })
}

/// A close-on-exec pipe (read end, write end).
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [-1; 2];
    // SAFETY: fds is a valid two-element out-array.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: pipe2 returned two new descriptors that nothing else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

pub fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl with plain integer arguments.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    check(unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) })
}

pub fn isatty(fd: RawFd) -> bool {
    // SAFETY: isatty takes a plain integer.
    unsafe { libc::isatty(fd) == 1 }
}

/// The window size of the terminal on `fd`.
pub fn window_size(fd: RawFd) -> Option<libc::winsize> {
    // SAFETY: winsize is plain data; zeroed is a valid value.
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes one winsize through the valid pointer.
    (unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut size) } == 0).then_some(size)
}

/// Puts the terminal on `fd` into raw mode; returns the settings to restore.
pub fn make_raw(fd: RawFd) -> Option<libc::termios> {
    // SAFETY: termios is plain data; zeroed is a valid value to be filled.
    let mut saved: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: tcgetattr fills the valid pointer.
    if unsafe { libc::tcgetattr(fd, &mut saved) } != 0 {
        return None;
    }
    let mut raw = saved;
    // SAFETY: cfmakeraw edits the valid struct; tcsetattr reads it.
    unsafe {
        libc::cfmakeraw(&mut raw);
        libc::tcsetattr(fd, libc::TCSANOW, &raw);
    }
    Some(saved)
}

pub fn restore_terminal(fd: RawFd, saved: &libc::termios) {
    // SAFETY: tcsetattr reads the valid struct.
    unsafe { libc::tcsetattr(fd, libc::TCSANOW, saved) };
}

/// fchown(2).
pub fn fchown(fd: RawFd, uid: libc::uid_t, gid: libc::gid_t) -> io::Result<()> {
    // SAFETY: plain integer arguments.
    check(unsafe { libc::fchown(fd, uid, gid) })
}

/// read(2) into `buf`; `Ok(0)` at end of file, `WouldBlock` when nothing is there.
pub fn read_fd(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        // SAFETY: buf is a valid writable buffer of buf.len() bytes.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Writes all of `buf` to `fd` (waiting when it is full).
pub fn write_fd_all(fd: RawFd, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        // SAFETY: buf is a valid readable buffer of buf.len() bytes.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n < 0 {
            let err = io::Error::last_os_error();
            match err.kind() {
                io::ErrorKind::Interrupted => continue,
                io::ErrorKind::WouldBlock => {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                    continue;
                }
                _ => return Err(err),
            }
        }
        buf = &buf[n as usize..];
    }
    Ok(())
}

/// poll(2) on `fds`, waiting at most `timeout_ms`.
pub fn poll(fds: &mut [libc::pollfd], timeout_ms: libc::c_int) -> io::Result<usize> {
    // SAFETY: fds is a valid array of fds.len() pollfd structs.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    if n < 0 {
        let err = io::Error::last_os_error();
        if err.kind() == io::ErrorKind::Interrupted {
            return Ok(0);
        }
        return Err(err);
    }
    Ok(n as usize)
}

/// The calling process adopts its orphaned descendants (PR_SET_CHILD_SUBREAPER).
pub fn set_subreaper() -> io::Result<()> {
    // SAFETY: prctl with plain integer arguments.
    check(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) })
}

/// WSL's relay and init ignore every signal but SIGHUP (config.cpp:517-525); SIGCHLD keeps
/// its default here so the child can be waited for.
pub fn ignore_all_but_sighup() {
    for signal in 1..32 {
        if ![libc::SIGHUP, libc::SIGKILL, libc::SIGSTOP, libc::SIGCHLD].contains(&signal) {
            // SAFETY: SIG_IGN is a valid disposition; no handler code runs.
            unsafe { libc::signal(signal, libc::SIG_IGN) };
        }
    }
}

/// `pre_exec` step: `fd` becomes the child's descriptor 3 (the relay's status channel).
pub fn pass_as_fd3(command: &mut std::process::Command, fd: RawFd) {
    use std::os::unix::process::CommandExt;
    // SAFETY: dup2 is async-signal-safe; fd is a plain integer alive in the parent.
    unsafe {
        command.pre_exec(move || {
            if libc::dup2(fd, 3) == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Whether descriptor `fd` is open; it is then marked close-on-exec, so no program the
/// caller starts inherits it.
pub fn keep_private_if_open(fd: RawFd) -> bool {
    // SAFETY: F_GETFD takes a plain integer and touches no memory.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
        return false;
    }
    set_cloexec(fd).is_ok()
}

/// Points 0, 1 and 2 at /dev/null (the relay lets go of the caller's descriptors).
pub fn detach_stdio() {
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        for fd in 0..3 {
            // SAFETY: both descriptors are valid; dup2 replaces fd atomically.
            unsafe { libc::dup2(null.as_raw_fd(), fd) };
        }
    }
}

/// Closes `fd`.
pub fn close(fd: RawFd) {
    // SAFETY: closing a descriptor this process owns and no one else uses.
    unsafe { libc::close(fd) };
}

/// Waits for any child; `false` once there are none.
pub fn wait_any() -> bool {
    let mut status = 0;
    loop {
        // SAFETY: status is a valid out-pointer.
        let pid = unsafe { libc::waitpid(-1, &mut status, 0) };
        if pid > 0 {
            return true;
        }
        if io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return false;
        }
    }
}

/// `pre_exec` step for a child that must enter a new cgroup namespace before it execs.
pub fn unshare_cgroup_in_child(command: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: unshare is async-signal-safe and the closure captures nothing.
    unsafe {
        command.pre_exec(|| {
            if libc::unshare(libc::CLONE_NEWCGROUP) == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Reaps any child; blocks. `None` when there are no children at all.
pub fn reap_any() -> Option<libc::pid_t> {
    let mut status = 0;
    // SAFETY: status is a valid out-pointer.
    let pid = unsafe { libc::waitpid(-1, &mut status, 0) };
    (pid > 0).then_some(pid)
}

pub fn getpid() -> u32 {
    std::process::id()
}

/// Takes an exclusive flock on `file`, waiting for it.
pub fn flock(file: &std::fs::File) -> io::Result<()> {
    loop {
        // SAFETY: the descriptor belongs to `file`, alive for the call.
        let ret = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        if ret == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Makes `command`'s child the leader of a new session (a daemon, detached from the caller's
/// terminal).
pub fn detach(command: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: setsid is async-signal-safe and the closure captures nothing.
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Points standard output at /dev/null (after the readiness line has been written to it).
pub fn silence_stdout() -> io::Result<()> {
    let null = std::fs::OpenOptions::new().write(true).open("/dev/null")?;
    // SAFETY: both descriptors are valid; dup2 replaces fd 1 atomically.
    check(unsafe { libc::dup2(null.as_raw_fd(), libc::STDOUT_FILENO) })
}
