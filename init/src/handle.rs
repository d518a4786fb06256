//! The handle on a running systemd: its pid (as seen from WSL's namespace), its start time and
//! the inodes of its PID and mount namespaces, in one small file under /run. It is trusted only
//! after the namespace files of that pid are open and all of it matches, and that pid is PID 1
//! of its namespace: a dead systemd, a reused pid or a forged file never pass.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;

pub const DIR: &str = "/run/nixos-wsl";
pub const FILE: &str = "/run/nixos-wsl/systemd";
/// systemd's private bus socket (src/core/dbus.c, `bus_init_private`: `/run/systemd/private`,
/// a listening stream socket). `/run` is one filesystem in WSL's namespace and systemd's (WSL
/// mounts it, systemd finds it mounted and keeps it), so the socket of the systemd we started
/// is reachable from outside, and the kernel names the process that listens on it.
pub const PRIVATE_SOCKET: &str = "/run/systemd/private";

/// What listens on systemd's private socket, when the handle cannot be trusted.
pub enum Found {
    /// Nothing listens: no systemd runs on this `/run`.
    Nothing,
    /// A systemd we can enter (PID 1 of another PID namespace), its namespaces open.
    Enterable(Open),
    /// A process listens that is not PID 1 of a namespace of its own: one may still run, and
    /// it is not ours to enter.
    Foreign { pid: i32 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handle {
    pub pid: i32,
    pub starttime: u64,
    pub pid_ns: u64,
    pub mnt_ns: u64,
    /// False while the starting shell waits for READY=1: other shells then wait for the lock
    /// instead of entering a systemd that is still booting (or not even exec'd yet).
    pub ready: bool,
}

/// A validated handle with its namespaces open (they stay valid while we hold them).
pub struct Open {
    pub handle: Handle,
    pub pid_ns: File,
    pub mnt_ns: File,
}

impl Handle {
    pub fn parse(text: &str) -> Option<Handle> {
        let mut fields = text.split_whitespace();
        let mut next = || fields.next()?.parse::<u64>().ok();
        let pid = i32::try_from(next()?).ok().filter(|&p| p > 1)?;
        let (starttime, pid_ns, mnt_ns) = (next()?, next()?, next()?);
        let ready = fields.next() != Some("booting");
        Some(Handle {
            pid,
            starttime,
            pid_ns,
            mnt_ns,
            ready,
        })
    }

    pub fn render(&self) -> String {
        format!(
            "{} {} {} {} {}\n",
            self.pid,
            self.starttime,
            self.pid_ns,
            self.mnt_ns,
            if self.ready { "ready" } else { "booting" }
        )
    }

    /// The handle of process `pid` as it is now.
    pub fn of_process(pid: i32) -> io::Result<Handle> {
        let ino = |kind: &str| std::fs::metadata(format!("/proc/{pid}/ns/{kind}")).map(|m| m.ino());
        Ok(Handle {
            pid,
            starttime: starttime(pid)?,
            pid_ns: ino("pid")?,
            mnt_ns: ino("mnt")?,
            ready: false,
        })
    }

    pub fn load() -> Option<Handle> {
        Handle::parse(std::str::from_utf8(&crate::sys::read_file(FILE).ok()?).ok()?)
    }

    /// Writes the handle atomically (a reader sees the old file or the new one).
    pub fn save(&self) -> io::Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        let tmp = format!("{FILE}.new");
        // 0644 whatever the caller's umask: only root may write what shells trust.
        let mut file = File::options()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(&tmp)?;
        file.write_all(self.render().as_bytes())?;
        std::fs::rename(&tmp, FILE)
    }

    pub fn remove() {
        let _ = std::fs::remove_file(FILE);
    }

    /// Opens the namespaces of the recorded pid and checks they are the recorded ones, of the
    /// same process (start time, read after opening: a reused pid has another), in a PID
    /// namespace other than the one `/proc` shows (WSL's: systemd's is always a new one, so a
    /// handle naming a process of WSL's own namespace is forged or stale).
    pub fn open(&self) -> Option<Open> {
        let pid = self.pid;
        let pid_ns = crate::sys::open_read_only(&format!("/proc/{pid}/ns/pid")).ok()?;
        let mnt_ns = crate::sys::open_read_only(&format!("/proc/{pid}/ns/mnt")).ok()?;
        let ino = |f: &File| f.metadata().map(|m| m.ino()).ok();
        if ino(&pid_ns)? != self.pid_ns || ino(&mnt_ns)? != self.mnt_ns {
            return None;
        }
        // PID 1 of this /proc is in the namespace our pids are numbered in (WSL's: open() runs
        // outside systemd only), and its entry is cached, unlike /proc/self of a new process
        // (15 us on every shell).
        let own = std::fs::metadata("/proc/1/ns/pid").ok()?.ino();
        if own == self.pid_ns || starttime(pid).ok()? != self.starttime {
            return None;
        }
        Some(Open {
            handle: *self,
            pid_ns,
            mnt_ns,
        })
    }
}

/// The systemd that listens on [`PRIVATE_SOCKET`], as the kernel reports the listener
/// (`SO_PEERCRED` of a connection: the pid in our namespace, uid root): what a junk or forged
/// handle cannot fake. Connecting only queues a connection that systemd drops on EOF.
pub fn find_listener() -> Found {
    use std::os::unix::net::UnixStream;
    let Ok(stream) = UnixStream::connect(PRIVATE_SOCKET) else {
        return Found::Nothing;
    };
    let Ok(cred) = rustix::net::sockopt::socket_peercred(&stream) else {
        return Found::Nothing;
    };
    let pid = cred.pid.as_raw_nonzero().get();
    if cred.uid.as_raw() != 0 {
        return Found::Foreign { pid };
    }
    let handle = Handle::of_process(pid).ok().map(|mut h| {
        h.ready = true;
        h
    });
    match handle.and_then(|h| h.open()) {
        Some(open) if nspid_is_1(pid) => Found::Enterable(open),
        _ => Found::Foreign { pid },
    }
}

/// Whether the innermost pid of `pid` is 1 (`NSpid:` of /proc/PID/status).
fn nspid_is_1(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|status| {
        status
            .lines()
            .find_map(|l| l.strip_prefix("NSpid:"))
            .and_then(|ids| ids.split_whitespace().last())
            == Some("1")
    })
}

/// Field 22 of /proc/PID/stat: start time in clock ticks since boot.
pub fn starttime(pid: i32) -> io::Result<u64> {
    let stat = crate::sys::read_file(&format!("/proc/{pid}/stat"))?;
    parse_starttime(&String::from_utf8_lossy(&stat))
        .ok_or_else(|| io::Error::other("unexpected /proc/PID/stat"))
}

fn parse_starttime(stat: &str) -> Option<u64> {
    // The command name (field 2) may hold spaces and parentheses: count after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_parse_round_trip() {
        let mut h = Handle {
            pid: 4242,
            starttime: 99,
            pid_ns: 4026531836,
            mnt_ns: 4026531841,
            ready: false,
        };
        assert_eq!(Handle::parse(&h.render()), Some(h));
        h.ready = true;
        assert_eq!(Handle::parse(&h.render()), Some(h));
        // Without the state word (older or hand-written files): ready.
        assert_eq!(Handle::parse("4242 99 4026531836 4026531841"), Some(h));
    }

    #[test]
    fn garbage_and_pid_1_are_rejected() {
        assert_eq!(Handle::parse(""), None);
        assert_eq!(Handle::parse("12 x 3 4"), None);
        assert_eq!(Handle::parse("1 2 3 4"), None);
        assert_eq!(Handle::parse("-5 2 3 4"), None);
    }

    #[test]
    fn starttime_after_a_tricky_command_name() {
        let stat = "77 (a) b (c) S 1 77 77 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 123456 0";
        assert_eq!(parse_starttime(stat), Some(123456));
    }

    #[test]
    fn our_own_process_is_not_a_namespace_init() {
        let me = crate::sys::pid();
        let h = Handle::of_process(me).expect("our own handle");
        assert!(
            h.open().is_none(),
            "a process that is not PID 1 of its namespace passed"
        );
    }
}
