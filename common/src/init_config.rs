//! `init`'s configuration file, [`crate::paths::INIT_CONFIG`]. Written by packer, read by init,
//! edited by people:
//!
//! ```text
//! # Who WSL's shell runs as once systemd is up (WSL itself must start root).
//! user = nixos
//! # Root's real shell (root's shell in /etc/passwd is init itself).
//! shell = /run/current-system/sw/bin/bash
//! # The real shell of a user whose shell in /etc/passwd is init (native mode on NixOS).
//! user-shell = /run/current-system/sw/bin/bash
//! # systemd binaries to try, first that exists wins.
//! systemd = /run/current-system/systemd/lib/systemd/systemd /lib/systemd/systemd
//! # Run before systemd starts unless `activated` exists; empty disables.
//! activate = /nix/var/nix/profiles/system/activate
//! activated = /run/current-system
//! # Seconds to wait for systemd's READY=1 before the shell starts anyway (0: no limit).
//! boot-timeout = 30
//! # The NixOS system whose profile a bare tarball's first boot sets (empty: found).
//! system =
//! ```
//!
//! Lines are `key = value`; `#` starts a comment line; unknown keys and bad values are
//! reported with their line number and otherwise ignored, so a broken file never locks
//! anyone out: parsing always yields a usable configuration.

use std::fmt;

pub const DEFAULT_SYSTEMD: &[&str] = &[
    "/run/current-system/systemd/lib/systemd/systemd",
    "/lib/systemd/systemd",
    "/usr/lib/systemd/systemd",
];
pub const DEFAULT_ACTIVATE: &str = "/nix/var/nix/profiles/system/activate";
pub const DEFAULT_ACTIVATED: &str = "/run/current-system";
pub const DEFAULT_BOOT_TIMEOUT_SECS: u32 = 30;
/// How much of a bad line a message quotes: a 20 MiB line must not give 20 MiB on stderr.
pub const QUOTED_BYTES: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitConfig {
    pub user: String,
    pub shell: String,
    /// The real shell of a user other than root whose passwd shell is init (WSL starts that
    /// user directly in native mode; init applies `/etc/set-environment` and execs this);
    /// empty: `shell`.
    pub user_shell: String,
    pub systemd: Vec<String>,
    /// Empty: no activation step.
    pub activate: String,
    pub activated: String,
    /// Seconds for the activation and for READY=1 each; 0 means no limit (as systemd's own
    /// `TimeoutStartSec=0`): the shell waits until systemd is up or has died.
    pub boot_timeout_secs: u32,
    /// The NixOS system (a store path) a bare tarball's first boot sets the system profile to;
    /// empty: the one `/sbin/init` points into, or the only `*-nixos-system-*` in the store.
    pub system: String,
}

impl Default for InitConfig {
    fn default() -> Self {
        Self {
            user: "root".into(),
            shell: "/bin/sh".into(),
            user_shell: String::new(),
            systemd: DEFAULT_SYSTEMD.iter().map(|s| (*s).to_owned()).collect(),
            activate: DEFAULT_ACTIVATE.into(),
            activated: DEFAULT_ACTIVATED.into(),
            boot_timeout_secs: DEFAULT_BOOT_TIMEOUT_SECS,
            system: String::new(),
        }
    }
}

/// `text` for a message: at most [`QUOTED_BYTES`] of it (cut at a character boundary), quoted.
pub fn quote_bounded(text: &str) -> String {
    if text.len() <= QUOTED_BYTES {
        return format!("{text:?}");
    }
    let mut end = QUOTED_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{:?}... ({} bytes)", &text[..end], text.len())
}

/// A line of the file that was not understood; the rest of the file still applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigLineError {
    pub line: usize,
    pub problem: String,
}

impl fmt::Display for ConfigLineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.problem)
    }
}

impl InitConfig {
    /// Parses the file's text over the defaults; bad lines are returned, not fatal.
    pub fn parse(text: &str) -> (Self, Vec<ConfigLineError>) {
        let mut config = Self::default();
        let mut errors = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut fail = |problem: String| {
                errors.push(ConfigLineError {
                    line: index + 1,
                    problem,
                })
            };
            let Some((key, value)) = line.split_once('=') else {
                fail(format!(
                    "expected 'key = value', found {}",
                    quote_bounded(line)
                ));
                continue;
            };
            let (key, value) = (key.trim(), value.trim());
            let absolute = |v: &str| v.starts_with('/');
            match key {
                "user" if !value.is_empty() && !value.contains(char::is_whitespace) => {
                    config.user = value.into()
                }
                "shell" if absolute(value) => config.shell = value.into(),
                "user-shell" if value.is_empty() || absolute(value) => {
                    config.user_shell = value.into()
                }
                "systemd" if !value.is_empty() && value.split_whitespace().all(absolute) => {
                    config.systemd = value.split_whitespace().map(str::to_owned).collect()
                }
                "activate" if value.is_empty() || absolute(value) => config.activate = value.into(),
                "activated" if absolute(value) => config.activated = value.into(),
                "system" if value.is_empty() || absolute(value) => config.system = value.into(),
                "boot-timeout" => match value.parse() {
                    Ok(secs) => config.boot_timeout_secs = secs,
                    Err(_) => fail(format!(
                        "boot-timeout must be whole seconds (0: no limit), not {}",
                        quote_bounded(value)
                    )),
                },
                "user" | "shell" | "user-shell" | "systemd" | "activate" | "activated"
                | "system" => fail(format!(
                    "{key} cannot be {} (paths must be absolute)",
                    quote_bounded(value)
                )),
                _ => fail(format!("unknown key {}", quote_bounded(key))),
            }
        }
        (config, errors)
    }

    pub fn render(&self) -> String {
        format!(
            "# init's configuration (see init --help).\n\
             # Who WSL's shell runs as once systemd is up (WSL itself must start root).\n\
             user = {}\n\
             # Root's real shell (root's shell in /etc/passwd is init itself).\n\
             shell = {}\n{}\
             # systemd binaries to try; the first that exists wins.\n\
             systemd = {}\n\
             # Run before systemd starts unless `activated` exists; empty disables.\n\
             activate = {}\n\
             activated = {}\n\
             # Seconds to wait for systemd's READY=1 before the shell starts anyway (0: no limit).\n\
             boot-timeout = {}\n{}",
            self.user,
            self.shell,
            if self.user_shell.is_empty() {
                String::new()
            } else {
                format!(
                    "# The real shell of a user whose shell in /etc/passwd is init.\n\
                     user-shell = {}\n",
                    self.user_shell
                )
            },
            self.systemd.join(" "),
            self.activate,
            self.activated,
            self.boot_timeout_secs,
            if self.system.is_empty() {
                String::new()
            } else {
                format!(
                    "# The NixOS system a bare tarball's first boot sets the profile to.\n\
                     system = {}\n",
                    self.system
                )
            }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_then_parse_round_trips() {
        let config = InitConfig {
            user: "nixos".into(),
            shell: "/bin/bash".into(),
            user_shell: "/bin/zsh".into(),
            systemd: vec!["/a/systemd".into(), "/b/systemd".into()],
            activate: String::new(),
            activated: "/run/x".into(),
            boot_timeout_secs: 7,
            system: "/nix/store/x-nixos-system-y".into(),
        };
        assert_eq!(InitConfig::parse(&config.render()), (config, vec![]));
    }

    #[test]
    fn bad_lines_are_named_and_the_rest_applies() {
        let (config, errors) = InitConfig::parse(
            "user = alice\nnonsense\nshell = bash\nboot-timeout = soon\ncolour = red\n",
        );
        assert_eq!(config.user, "alice");
        assert_eq!(config.shell, "/bin/sh");
        assert_eq!(config.boot_timeout_secs, DEFAULT_BOOT_TIMEOUT_SECS);
        let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, [2, 3, 4, 5]);
        assert!(errors[3].to_string().contains("colour"));
    }

    #[test]
    fn a_huge_bad_line_is_quoted_bounded() {
        let line = "é".repeat(10 << 20);
        let (_, errors) = InitConfig::parse(&format!("{line}\n"));
        let message = errors[0].to_string();
        assert!(message.len() < 2 * QUOTED_BYTES, "{} bytes", message.len());
        assert!(
            message.contains(&format!("({} bytes)", line.len())),
            "{message}"
        );
        let (_, errors) = InitConfig::parse(&format!("shell = {line}\n"));
        assert!(errors[0].to_string().len() < 2 * QUOTED_BYTES);
    }

    #[test]
    fn boot_timeout_zero_and_system_are_accepted() {
        let (config, errors) =
            InitConfig::parse("boot-timeout = 0\nsystem = /nix/store/abc-nixos-system-x\n");
        assert_eq!(errors, vec![]);
        assert_eq!(config.boot_timeout_secs, 0);
        assert_eq!(config.system, "/nix/store/abc-nixos-system-x");
        assert_eq!(InitConfig::parse("system = relative").1.len(), 1);
    }

    #[test]
    fn user_shell_is_an_absolute_path_or_empty() {
        let (config, errors) = InitConfig::parse("user-shell = /run/current-system/sw/bin/zsh\n");
        assert_eq!(errors, vec![]);
        assert_eq!(config.user_shell, "/run/current-system/sw/bin/zsh");
        let (config, errors) = InitConfig::parse("user-shell = zsh\nuser-shell =\n");
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].to_string().contains("user-shell cannot be"),
            "{errors:?}"
        );
        assert_eq!(config.user_shell, "");
        // Not rendered when empty: packer's init.conf stays as it was.
        assert!(!InitConfig::default().render().contains("user-shell"));
    }

    #[test]
    fn empty_file_gives_defaults() {
        assert_eq!(InitConfig::parse(""), (InitConfig::default(), vec![]));
    }
}
