//! The parts of /etc/wsl.conf WSL reads before starting anything: `[user] default`,
//! `[boot] systemd` and `[boot] initTimeout`.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WslConf {
    pub default_user: Option<String>,
    pub systemd: bool,
    pub init_timeout: Duration,
}

impl Default for WslConf {
    fn default() -> Self {
        Self {
            default_user: None,
            systemd: false,
            init_timeout: Duration::from_millis(10_000),
        }
    }
}

impl WslConf {
    /// Parses the INI text the way WSL does: case-insensitive keys, `#` and `;` comments,
    /// quotes around values allowed, unknown keys ignored.
    pub fn parse(text: &str) -> Self {
        let mut conf = Self::default();
        let mut section = String::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = name.trim().to_ascii_lowercase();
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let key = key.trim().to_ascii_lowercase();
            let value = value
                .split(['#', ';'])
                .next()
                .unwrap_or("")
                .trim()
                .trim_matches('"');
            match (section.as_str(), key.as_str()) {
                ("user", "default") if !value.is_empty() => {
                    conf.default_user = Some(value.to_owned())
                }
                ("boot", "systemd") => conf.systemd = value.eq_ignore_ascii_case("true"),
                ("boot", "inittimeout") => {
                    if let Ok(ms) = value.parse() {
                        conf.init_timeout = Duration::from_millis(ms);
                    }
                }
                _ => {}
            }
        }
        conf
    }

    pub fn read(root: &std::path::Path) -> Self {
        std::fs::read_to_string(root.join("etc/wsl.conf"))
            .map(|t| Self::parse(&t))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_user_systemd_and_timeout() {
        let conf = WslConf::parse(
            "# c\n[boot]\nSystemd = true ; on\ninitTimeout=2500\n[user]\ndefault=\"nixos\"\n",
        );
        assert_eq!(conf.default_user.as_deref(), Some("nixos"));
        assert!(conf.systemd);
        assert_eq!(conf.init_timeout, Duration::from_millis(2500));
    }

    #[test]
    fn defaults_without_file_content() {
        let conf = WslConf::parse("[network]\nhostname=x\ndefault=y\n");
        assert_eq!(conf, WslConf::default());
    }
}
