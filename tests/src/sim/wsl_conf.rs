//! /etc/wsl.conf as WSL's own parser reads it (`src/shared/configfile/configfile.cpp` in
//! microsoft/WSL), written from its rules and not shared with packer:
//! - a line is blank, a `#` comment, `[section]` or `key = value`; leading blanks are skipped
//!   (`configfile.cpp:354`); `;` is no comment;
//! - section and key names are a letter then letters and digits (`:424`, `:458`, `:492`,
//!   `:583`), matched without regard to case (`strncasecmp`, `:184`);
//! - the first invalid line ends the parse: later keys keep their defaults (WSL's init passes
//!   only `CFG_SKIP_UNKNOWN_VALUES`, `WslDistributionConfig.cpp:68`; `InvalidLine`, `:808-812`);
//! - of duplicate keys the first one counts, even when its value was bad (`:187-198`);
//! - a value runs to the end of the line or an unquoted `#`, with `"` quoting, `\` escapes
//!   (`\\ \" \b \n \t`, line continuation) and trailing blanks trimmed (`:650-800`);
//! - booleans are `1`, `0`, `true`, `false` in any case (`stringshared.h:500-522`); a bad
//!   value only warns.
//!
//! Every warning WSL would print is collected, worded after WSL's messages.

use std::time::Duration;

/// The settings the simulator acts on, with WSL's defaults
/// (`src/linux/init/WslDistributionConfig.h:55-80`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WslConf {
    pub default_user: Option<String>,
    pub systemd: bool,
    pub init_timeout: Duration,
    pub mount_fstab: bool,
    pub ldconfig: bool,
    pub generate_hosts: bool,
    pub generate_resolv_conf: bool,
    pub gpu_enabled: bool,
    pub gui_applications: bool,
    pub hostname: Option<String>,
    /// `[automount] options`, appended to drvfs' own `uid=,gid=` (config.cpp:2021).
    pub drvfs_options: Option<String>,
    /// What WSL would warn about, one line each (`wsl: ...` on the starting session).
    pub warnings: Vec<String>,
}

impl Default for WslConf {
    fn default() -> Self {
        Self {
            default_user: None,
            systemd: false,
            init_timeout: Duration::from_millis(10_000),
            mount_fstab: true,
            ldconfig: true,
            generate_hosts: true,
            generate_resolv_conf: true,
            gpu_enabled: true,
            gui_applications: true,
            hostname: None,
            drvfs_options: None,
            warnings: Vec::new(),
        }
    }
}

/// One parsed `section.key = value`, with its line (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: String,
    pub line: usize,
}

/// Reads `text` as WSL does: the entries before the first invalid line, and the warnings.
pub fn entries(text: &str) -> (Vec<Entry>, Vec<String>) {
    let mut entries = Vec::new();
    let mut warnings = Vec::new();
    let mut section = String::new();
    let mut lines = text.split('\n').enumerate().peekable();
    while let Some((index, raw)) = lines.next() {
        let number = index + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let body = line.trim_start_matches([' ', '\t']);
        let mut invalid = |what: &str| {
            warnings.push(format!(
                "/etc/wsl.conf:{number}: {what}; the rest of the file is ignored"
            ));
        };
        if body.is_empty() || body.starts_with('#') {
            continue;
        }
        if let Some(rest) = body.strip_prefix('[') {
            let name_len = name_length(rest);
            if name_len == 0 {
                invalid("invalid section name");
                break;
            }
            let after = &rest[name_len..];
            let Some(after) = after.strip_prefix(']') else {
                invalid("expected ']'");
                break;
            };
            let after = after.trim_start_matches([' ', '\t']);
            if !(after.is_empty() || after.starts_with('#')) {
                invalid("expected ' ' or end of line");
                break;
            }
            section = rest[..name_len].to_owned();
            continue;
        }
        let name_len = name_length(body);
        if name_len == 0 {
            invalid("invalid key name");
            break;
        }
        let after = body[name_len..].trim_start_matches([' ', '\t']);
        let Some(after) = after.strip_prefix('=') else {
            invalid("expected '='");
            break;
        };
        let after = after.trim_start_matches([' ', '\t']);
        let key = if section.is_empty() {
            body[..name_len].to_owned()
        } else {
            format!("{section}.{}", &body[..name_len])
        };
        match parse_value(after, &mut lines) {
            Ok(value) => {
                if let Some(first) = entries
                    .iter()
                    .find(|e: &&Entry| e.key.eq_ignore_ascii_case(&key))
                {
                    warnings.push(format!(
                        "/etc/wsl.conf:{number}: {key} is a duplicate of line {}; ignored",
                        first.line
                    ));
                } else {
                    entries.push(Entry {
                        key,
                        value,
                        line: number,
                    });
                }
            }
            Err(what) => {
                invalid(what);
                break;
            }
        }
    }
    (entries, warnings)
}

/// Length of a name at the start of `s`: a letter, then letters and digits.
fn name_length(s: &str) -> usize {
    let bytes = s.as_bytes();
    if !bytes.first().is_some_and(u8::is_ascii_alphabetic) {
        return 0;
    }
    bytes
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric())
        .count()
}

/// A value after `=`: quotes, escapes, `#` comments, continuation lines, trailing blanks.
fn parse_value<'a>(
    first: &'a str,
    lines: &mut std::iter::Peekable<impl Iterator<Item = (usize, &'a str)>>,
) -> Result<String, &'static str> {
    let mut value = String::new();
    let mut trimmed = 0;
    let mut quoted = false;
    let mut current = first.strip_suffix('\r').unwrap_or(first).to_owned();
    'lines: loop {
        let mut chars = current.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '"' => quoted = !quoted,
                '\\' => match chars.next() {
                    Some(e @ ('\\' | '"')) => value.push(e),
                    Some('b') => value.push('\u{8}'),
                    Some('n') => value.push('\n'),
                    Some('t') => value.push('\t'),
                    None => {
                        // A backslash at the end of the line continues the value.
                        match lines.next() {
                            Some((_, next)) => {
                                current = next.strip_suffix('\r').unwrap_or(next).to_owned();
                                continue 'lines;
                            }
                            None => break 'lines,
                        }
                    }
                    Some(_) => return Err("invalid escape in a value"),
                },
                '#' if !quoted => break 'lines,
                other => value.push(other),
            }
            if c != ' ' && c != '\t' {
                trimmed = value.len();
            }
        }
        break;
    }
    if quoted {
        return Err("expected '\"'");
    }
    value.truncate(trimmed);
    Ok(value)
}

/// `1 0 true false`, any case (`stringshared.h:500-522`).
pub fn parse_bool(value: &str) -> Option<bool> {
    if value == "1" || value.eq_ignore_ascii_case("true") {
        Some(true)
    } else if value == "0" || value.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

impl WslConf {
    /// The settings of `text`, WSL's defaults where it says nothing readable.
    pub fn parse(text: &str) -> Self {
        let (entries, warnings) = entries(text);
        let mut conf = Self {
            warnings,
            ..Self::default()
        };
        for entry in entries {
            let key = entry.key.to_ascii_lowercase();
            let flag = |conf: &mut Self, target: fn(&mut Self) -> &mut bool| match parse_bool(
                &entry.value,
            ) {
                Some(b) => *target(conf) = b,
                None => conf.warnings.push(format!(
                    "/etc/wsl.conf:{}: invalid boolean value '{}' for {}",
                    entry.line, entry.value, entry.key
                )),
            };
            match key.as_str() {
                "user.default" => conf.default_user = Some(entry.value.clone()),
                "boot.systemd" => flag(&mut conf, |c| &mut c.systemd),
                "boot.inittimeout" => match entry.value.parse::<u64>() {
                    Ok(ms) => conf.init_timeout = Duration::from_millis(ms),
                    Err(_) => conf.warnings.push(format!(
                        "/etc/wsl.conf:{}: invalid integer value '{}' for {}",
                        entry.line, entry.value, entry.key
                    )),
                },
                "automount.mountfstab" => flag(&mut conf, |c| &mut c.mount_fstab),
                "automount.ldconfig" => flag(&mut conf, |c| &mut c.ldconfig),
                "network.generatehosts" => flag(&mut conf, |c| &mut c.generate_hosts),
                "network.generateresolvconf" => flag(&mut conf, |c| &mut c.generate_resolv_conf),
                "network.hostname" => conf.hostname = Some(entry.value.clone()),
                "automount.options" => conf.drvfs_options = Some(entry.value.clone()),
                "gpu.enabled" => flag(&mut conf, |c| &mut c.gpu_enabled),
                "general.guiapplications" => flag(&mut conf, |c| &mut c.gui_applications),
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
    fn reads_user_systemd_and_timeout_in_any_case() {
        let conf = WslConf::parse(
            "# c\n[Boot]\nSystemd = TRUE # on\ninitTimeout=2500\n[USER]\n  DEFAULT=\"nixos\"\n",
        );
        assert_eq!(conf.default_user.as_deref(), Some("nixos"));
        assert!(conf.systemd);
        assert_eq!(conf.init_timeout, Duration::from_millis(2500));
        assert!(conf.warnings.is_empty(), "{:?}", conf.warnings);
    }

    #[test]
    fn a_semicolon_line_ends_the_parse() {
        let conf = WslConf::parse("[boot]\nsystemd=1\n; note\n[user]\ndefault=alice\n");
        assert!(conf.systemd);
        assert_eq!(conf.default_user, None);
        assert_eq!(conf.warnings.len(), 1, "{:?}", conf.warnings);
        assert!(conf.warnings[0].contains(":3:"), "{:?}", conf.warnings);
    }

    #[test]
    fn invalid_names_end_the_parse() {
        for text in [
            "[boot]\nmount_fstab=1\n[user]\ndefault=x\n",
            "[ user ]\ndefault=x\n",
            "[user] x\ndefault=x\n",
            "[user]\n1default=x\n",
            "[user]\ndefault x\n",
            "[user]\ndefault=\"x\n",
        ] {
            assert_eq!(WslConf::parse(text).default_user, None, "{text:?}");
        }
    }

    #[test]
    fn the_first_duplicate_wins_and_bad_booleans_only_warn() {
        let conf = WslConf::parse("[user]\ndefault=alice\nDefault=bob\n[boot]\nsystemd=yes\n");
        assert_eq!(conf.default_user.as_deref(), Some("alice"));
        assert!(!conf.systemd);
        assert_eq!(conf.warnings.len(), 2, "{:?}", conf.warnings);
        let conf = WslConf::parse("[boot]\nsystemd=0\nsystemd=1\n");
        assert!(!conf.systemd);
    }

    #[test]
    fn values_have_quotes_escapes_and_comments() {
        let (entries, _) = entries("[a]\nb = \"x # y\" # z\nc = p\\tq  \nd = e\\\nf\n");
        let values: Vec<&str> = entries.iter().map(|e| e.value.as_str()).collect();
        assert_eq!(values, ["x # y", "p\tq", "ef"]);
    }

    #[test]
    fn defaults_without_file_content() {
        let conf = WslConf::parse("[network]\nhostname=x\ndefault=y\n");
        assert_eq!(conf.hostname.as_deref(), Some("x"));
        assert_eq!(conf.default_user, None);
        assert!(conf.systemd == WslConf::default().systemd);
    }
}
