//! systemd's readiness: we own the datagram socket in `NOTIFY_SOCKET` and wait for `READY=1`
//! (what systemd-nspawn does) while watching systemd's pidfd, with a bounded timeout. No
//! polling of `systemctl`.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use crate::sys;

pub const NOTIFY_SOCKET: &str = "/run/nixos-wsl/notify";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ready,
    /// systemd ended before it was ready.
    Died,
    TimedOut,
}

pub struct Listener {
    socket: UnixDatagram,
}

impl Listener {
    pub fn bind() -> io::Result<Listener> {
        let _ = std::fs::remove_file(NOTIFY_SOCKET);
        Ok(Listener {
            socket: UnixDatagram::bind(NOTIFY_SOCKET)?,
        })
    }

    /// Waits for `READY=1` until `deadline` (`None`: no limit), or until `process` (a pidfd)
    /// ends.
    pub fn wait(&self, process: &OwnedFd, deadline: Option<Instant>) -> io::Result<Outcome> {
        let mut buf = [0u8; 4096];
        loop {
            let ms = match deadline {
                None => -1,
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Ok(Outcome::TimedOut);
                    }
                    i32::try_from(left.as_millis().max(1)).unwrap_or(i32::MAX)
                }
            };
            let ready = sys::poll_readable(&[self.socket.as_fd(), process.as_fd()], ms)?;
            if ready[0] {
                let n = self.socket.recv(&mut buf)?;
                if is_ready(&buf[..n]) {
                    return Ok(Outcome::Ready);
                }
            } else if ready[1] {
                return Ok(Outcome::Died);
            }
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(NOTIFY_SOCKET);
    }
}

/// Whether a notification message holds the line `READY=1`.
pub fn is_ready(message: &[u8]) -> bool {
    message
        .split(|&b| b == b'\n')
        .any(|line| line == b"READY=1")
}

/// Waits up to `timeout` (`None`: no limit) for `fd` to be readable: true if it is.
pub fn readable_within(fd: &impl AsFd, timeout: Option<Duration>) -> bool {
    let ms = timeout.map_or(-1, |t| i32::try_from(t.as_millis()).unwrap_or(i32::MAX));
    sys::poll_readable(&[fd.as_fd()], ms).is_ok_and(|r| r[0])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_line_among_others() {
        assert!(is_ready(b"READY=1"));
        assert!(is_ready(b"STATUS=Startup finished\nREADY=1\n"));
        assert!(!is_ready(b"STATUS=READY=1 soon"));
        assert!(!is_ready(b"READY=10"));
    }
}
