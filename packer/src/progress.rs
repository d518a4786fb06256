//! A one-line progress display on a terminal (bytes, files, rate, ETA); silent otherwise.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

pub struct Progress {
    enabled: bool,
    label: String,
    /// Expected bytes of data, when known, for the ETA.
    total: Option<u64>,
    bytes: u64,
    files: u64,
    start: Instant,
    last_draw: Option<Instant>,
}

impl Progress {
    /// Draws only when stderr is a terminal and the user did not ask for quiet.
    pub fn new(quiet: bool) -> Self {
        Self {
            enabled: !quiet && std::io::stderr().is_terminal(),
            label: String::new(),
            total: None,
            bytes: 0,
            files: 0,
            start: Instant::now(),
            last_draw: None,
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    pub fn start(&mut self, label: &str, total: Option<u64>) {
        self.label = label.to_owned();
        self.total = total;
        self.bytes = 0;
        self.files = 0;
        self.start = Instant::now();
        self.last_draw = None;
    }

    pub fn add(&mut self, bytes: u64, files: u64) {
        self.bytes += bytes;
        self.files += files;
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        if self
            .last_draw
            .is_some_and(|t| now.duration_since(t) < Duration::from_millis(200))
        {
            return;
        }
        self.last_draw = Some(now);
        self.draw(now);
    }

    fn draw(&self, now: Instant) {
        let secs = now.duration_since(self.start).as_secs_f64().max(0.001);
        let rate = self.bytes as f64 / secs;
        let mut line = format!(
            "\r{}: {} in {} files, {}/s",
            self.label,
            human(self.bytes),
            self.files,
            human(rate as u64)
        );
        if let Some(total) = self.total.filter(|&t| t > 0) {
            let done = (self.bytes as f64 / total as f64).min(1.0);
            let width = 24;
            let filled = (done * width as f64) as usize;
            let eta = if rate > 0.0 {
                (total.saturating_sub(self.bytes)) as f64 / rate
            } else {
                0.0
            };
            line.push_str(&format!(
                " [{}{}] {:3.0}% ETA {:.0}s",
                "#".repeat(filled),
                ".".repeat(width - filled),
                done * 100.0,
                eta
            ));
        }
        line.push_str("\x1b[K");
        // A closed or broken terminal must not stop packing.
        let _ = std::io::stderr().write_all(line.as_bytes());
    }

    /// Clears the line so the summary starts clean.
    pub fn finish(&mut self) {
        if self.enabled && self.last_draw.is_some() {
            let _ = std::io::stderr().write_all(b"\r\x1b[K");
        }
        self.last_draw = None;
    }
}

/// `12.3 MiB` style sizes.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn human_sizes() {
        assert_eq!(super::human(512), "512 B");
        assert_eq!(super::human(1536), "1.5 KiB");
        assert_eq!(super::human(3 << 30), "3.0 GiB");
    }
}
