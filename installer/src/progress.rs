//! Progress on stderr: on a terminal one line rewriting itself (phase, percentage, MB/s, ETA);
//! otherwise a few plain lines. Write errors are ignored: a closed console must not stop an
//! install.

use std::io::Write;
use std::time::Instant;

pub fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "installer: {line}");
}

pub struct Progress {
    tty: bool,
    quiet: bool,
    start: Instant,
    last: Instant,
    /// Bytes of work in total (the tar stream once per pass) and done so far.
    total: u64,
    done_before: u64,
    phase: &'static str,
    shown: bool,
}

impl Progress {
    pub fn new(total: u64, quiet: bool) -> Self {
        let now = Instant::now();
        Progress {
            tty: rustix::termios::isatty(std::io::stderr()),
            quiet,
            start: now,
            last: now,
            total: total.max(1),
            done_before: 0,
            phase: "",
            shown: false,
        }
    }

    pub fn phase(&mut self, phase: &'static str, done_before: u64) {
        self.phase = phase;
        self.done_before = done_before;
        if !self.tty && !self.quiet {
            say(&format!("{phase}..."));
        }
    }

    pub fn update(&mut self, offset: u64) {
        if !self.tty || self.quiet {
            return;
        }
        let now = Instant::now();
        if now.duration_since(self.last).as_millis() < 200 {
            return;
        }
        self.last = now;
        let done = self.done_before + offset;
        let secs = now.duration_since(self.start).as_secs_f64().max(0.001);
        let rate = done as f64 / secs;
        let eta = (self.total.saturating_sub(done)) as f64 / rate.max(1.0);
        let _ = write!(
            std::io::stderr(),
            "\r\x1b[Kinstaller: {} {:3}%  {:.0} MB/s  ETA {:.0}s",
            self.phase,
            done.min(self.total) * 100 / self.total,
            rate / 1e6,
            eta
        );
        self.shown = true;
    }

    pub fn done(&mut self, summary: &str) {
        if self.shown {
            let _ = write!(std::io::stderr(), "\r\x1b[K");
        }
        if !self.quiet {
            say(&format!(
                "{summary} in {:.1}s",
                self.start.elapsed().as_secs_f64()
            ));
        }
    }
}
