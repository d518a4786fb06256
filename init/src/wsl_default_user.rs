//! Who WSL starts for a session without `-u`: `[user] default` of `/etc/wsl.conf` when that
//! user exists, else the registry's default uid (microsoft/WSL `src/linux/init/init.cpp:1004-1032`).
//! Native mode needs it to tell `wsl -u root` from WSL's own default: a root session is the
//! default (to be dropped to init.conf's user) unless wsl.conf names another user.
//!
//! The reader follows WSL's `ParseConfigFile` (`src/shared/configfile/configfile.cpp`) as far as
//! this one key needs, erring towards "no value" (the drop to the user, as before): `#`
//! comments, sections and keys `[A-Za-z][A-Za-z0-9]*` matched in any case, the first of
//! duplicate keys wins, and the first line it cannot read ends the reading. packer's
//! `wsl_conf.rs` is the full model (quotes, escapes).

/// The wsl.conf WSL read at this instance's start, kept by init as PID 1 (native mode).
pub const AT_START: &str = "/run/nixos-wsl/wsl.conf";
const WSL_CONF: &str = "/etc/wsl.conf";

/// Keeps `/etc/wsl.conf` as WSL read it: once per instance start, before it execs `/sbin/init`
/// (`src/shared/configfile/configfile.cpp`, `src/linux/init/init.cpp:2355-2438`), and the
/// activation init runs next may put another one in its place (setup-etc.pl), for example at
/// the first start of a system whose declared wsl.conf names the user. This instance's sessions
/// run as WSL read it; `/run` is empty again at the next start. Failures are said, not fatal:
/// the file itself is read then.
pub fn keep_as_read_at_start() {
    let text = crate::sys::read_file(WSL_CONF).unwrap_or_default();
    let kept =
        std::fs::create_dir_all(crate::handle::DIR).and_then(|()| std::fs::write(AT_START, text));
    if let Err(e) = kept {
        crate::say!("cannot keep {WSL_CONF} as {AT_START}: {e}");
    }
}

/// wsl.conf as WSL read it at this instance's start, else as it is now.
pub fn as_read_at_start() -> Vec<u8> {
    crate::sys::read_file(AT_START)
        .or_else(|_| crate::sys::read_file(WSL_CONF))
        .unwrap_or_default()
}

/// `[user] default` as WSL reads it from `text`, if any.
pub fn configured(text: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(text);
    let mut section = String::new();
    for raw in text.split('\n') {
        let line = raw.trim_end_matches('\r').trim_start_matches([' ', '\t']);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix('[') {
            let (name, after) = rest.split_once(']')?;
            if !is_name(name) || !trailer_ok(after) {
                return None;
            }
            section = name.to_ascii_lowercase();
            continue;
        }
        let (key, value) = line.split_once('=')?;
        let key = key.trim_end_matches([' ', '\t']);
        if !is_name(key) {
            return None;
        }
        if section == "user" && key.eq_ignore_ascii_case("default") {
            let value = value.trim_matches([' ', '\t']);
            if value.contains(['"', '\\', '#', ' ', '\t']) {
                // Quoted, escaped or commented: beyond this reader (user names never need it).
                return None;
            }
            return Some(value.to_owned());
        }
    }
    None
}

fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric())
}

fn trailer_ok(after: &str) -> bool {
    let after = after.trim_matches([' ', '\t']);
    after.is_empty() || after.starts_with('#')
}

/// Whether WSL starts someone other than root for a session without `-u`, by this
/// distribution's wsl.conf: then a root session was asked for (`wsl -u root`).
pub fn is_another_user(wsl_conf: &[u8], exists: impl Fn(&str) -> bool) -> bool {
    configured(wsl_conf).is_some_and(|user| !user.is_empty() && user != "root" && exists(&user))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_default_of_the_user_section_in_any_case() {
        assert_eq!(
            configured(b"# c\n[boot]\nsystemd=true\n[User]\nDefault = nixos\ndefault=root\n"),
            Some("nixos".into())
        );
        assert_eq!(configured(b"[user]\ndefault=root\n"), Some("root".into()));
        assert_eq!(configured(b"[boot]\ndefault=nixos\n"), None);
        assert_eq!(configured(b""), None);
    }

    #[test]
    fn reading_stops_at_the_first_line_wsl_cannot_parse() {
        assert_eq!(configured(b"; note\n[user]\ndefault=nixos\n"), None);
        assert_eq!(configured(b"[ user ]\ndefault=nixos\n"), None);
        assert_eq!(configured(b"[user]\nno equals\ndefault=nixos\n"), None);
        assert_eq!(configured(b"[user]\ndefault=\"nixos\"\n"), None);
        assert_eq!(configured(b"[user]\ndefault=nixos # me\n"), None);
    }

    #[test]
    fn root_or_a_missing_user_is_wsls_default_root() {
        let exists = |u: &str| u == "nixos";
        assert!(is_another_user(b"[user]\ndefault=nixos\n", exists));
        assert!(!is_another_user(b"[user]\ndefault=root\n", exists));
        assert!(!is_another_user(b"[user]\ndefault=ghost\n", exists));
        assert!(!is_another_user(b"[boot]\nsystemd=true\n", exists));
    }
}
