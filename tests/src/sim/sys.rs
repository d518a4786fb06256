//! Every raw system call of the simulator, behind safe functions. Nothing else in the crate
//! uses `unsafe`.

use std::ffi::CString;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

pub use libc::{
    CLONE_NEWCGROUP, CLONE_NEWIPC, CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWUTS, MS_BIND, MS_NODEV,
    MS_NOEXEC, MS_NOSUID, MS_PRIVATE, MS_REC,
};

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

/// umount2(2) with MNT_DETACH.
pub fn unmount_lazily(target: &Path) -> io::Result<()> {
    let target = cstring(target)?;
    // SAFETY: target is a NUL-terminated string alive until the call returns.
    check(unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) })
}

/// pivot_root(2) with the same directory for the new and the old root (the old root is then
/// stacked on top and can be detached).
pub fn pivot_root_here() -> io::Result<()> {
    let dot = c".";
    // SAFETY: both arguments are NUL-terminated static strings; no libc wrapper exists.
    let ret = unsafe { libc::syscall(libc::SYS_pivot_root, dot.as_ptr(), dot.as_ptr()) };
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
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
}

impl ChildSetup {
    /// Installs the steps on `command`.
    pub fn install(self, command: &mut std::process::Command) {
        use std::os::unix::process::CommandExt;
        // SAFETY: the closure only makes async-signal-safe system calls (signal, setsid,
        // setgroups, setgid, setuid) on data moved into it, as pre_exec requires.
        unsafe {
            command.pre_exec(move || {
                // Dispositions set to ignore survive exec: give the program the defaults.
                for signal in [libc::SIGINT, libc::SIGQUIT] {
                    libc::signal(signal, libc::SIG_DFL);
                }
                if self.new_session && libc::setsid() == -1 {
                    return Err(io::Error::last_os_error());
                }
                if libc::setgroups(self.groups.len(), self.groups.as_ptr()) == -1
                    || libc::setgid(self.gid) == -1
                    || libc::setuid(self.uid) == -1
                {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
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
