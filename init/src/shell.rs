//! Root's real shell (`shell =` of init.conf), chosen so that no configuration locks anyone
//! out: never init itself (that would exec init into itself forever), never a path that does
//! not exist (every shell would fail with 127). Paths under `/run/current-system`, which exists
//! only after activation, are also tried through the system profile, which exists before.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use wsl_common::init_config::InitConfig;
use wsl_common::paths;

/// Made by activation (nixpkgs `nixos/modules/system/activation/activation-script.nix`, the
/// `/run/current-system` link); empty again after every WSL start.
const CURRENT_SYSTEM: &str = "/run/current-system/";
/// The same system before activation: `nixos-rebuild` and `nix-env --set` keep this link.
const SYSTEM_PROFILE: &str = "/nix/var/nix/profiles/system/";

/// Shells tried, in order, when the configured one cannot be used. `/bin/sh` is a link made by
/// NixOS's activation (`binsh` snippet) that stays on disk; before the first activation only the
/// profile's shell exists.
const FALLBACKS: &[&str] = &[
    "/bin/sh",
    "/nix/var/nix/profiles/system/sw/bin/sh",
    "/run/current-system/sw/bin/sh",
];

/// `path` if it exists, else its system-profile twin for a `/run/current-system/...` path
/// (before activation), else `None`.
pub fn existing(path: &str) -> Option<String> {
    if Path::new(path).exists() {
        return Some(path.to_owned());
    }
    let twin = format!("{SYSTEM_PROFILE}{}", path.strip_prefix(CURRENT_SYSTEM)?);
    Path::new(&twin).exists().then_some(twin)
}

/// Whether `path` is this init binary (the installed one or the running one, also through a
/// symlink or a hard link: same device and inode).
pub fn is_init(path: &str) -> bool {
    let Ok(target) = std::fs::metadata(path) else {
        return false;
    };
    let same = |other: &str| {
        std::fs::metadata(other).is_ok_and(|m| m.dev() == target.dev() && m.ino() == target.ino())
    };
    same(paths::INIT) || same("/proc/self/exe")
}

/// Why the configured shell cannot be used, if it cannot.
fn refusal(configured: &str) -> Result<String, String> {
    match existing(configured) {
        None => Err(format!("{configured} does not exist")),
        Some(found) if is_init(&found) => Err(format!(
            "{configured} is init itself (it would start itself forever)"
        )),
        Some(found) => Ok(found),
    }
}

/// The shell to exec for root: the configured one when usable, else the first fallback that
/// exists, saying so once per call in one line.
pub fn root_shell(config: &InitConfig) -> String {
    usable_or_fallback(&config.shell, "shell")
}

/// The real shell of a user whose passwd shell is init: `user-shell`, or root's `shell` when
/// that key is empty, with the same fallbacks.
pub fn user_shell(config: &InitConfig) -> String {
    if config.user_shell.is_empty() {
        usable_or_fallback(&config.shell, "shell")
    } else {
        usable_or_fallback(&config.user_shell, "user-shell")
    }
}

/// `configured` when usable, else the first fallback that exists; `key` names it in the line.
fn usable_or_fallback(configured: &str, key: &str) -> String {
    match refusal(configured) {
        Ok(found) => found,
        Err(why) => {
            let fallback = FALLBACKS
                .iter()
                .copied()
                .find(|p| Path::new(p).exists() && !is_init(p))
                .unwrap_or(FALLBACKS[0]);
            crate::say!("{key} = {why} ({}); using {fallback}", paths::INIT_CONFIG);
            fallback.to_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_path_has_no_twin_outside_current_system() {
        assert_eq!(existing("/nonexistent/shell"), None);
        assert_eq!(existing("/"), Some("/".into()));
    }

    #[test]
    fn the_running_binary_is_init_and_sh_is_not() {
        let me = std::env::current_exe().expect("our binary");
        assert!(is_init(&me.to_string_lossy()));
        assert!(!is_init("/bin/sh"));
        assert!(!is_init("/nonexistent"));
    }

    #[test]
    fn a_symlink_to_init_is_refused_and_a_missing_shell_too() {
        let dir = std::env::temp_dir().join(format!("init-shell-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("mkdir");
        let link = dir.join("bash");
        std::os::unix::fs::symlink(std::env::current_exe().expect("exe"), &link).expect("link");
        let why = refusal(&link.to_string_lossy()).expect_err("init through a link");
        assert!(why.contains("init itself"), "{why}");
        let why = refusal("/nonexistent/bash").expect_err("missing");
        assert!(why.contains("does not exist"), "{why}");
        assert_eq!(refusal("/bin/sh"), Ok("/bin/sh".into()));
        let config = InitConfig {
            shell: link.to_string_lossy().into_owned(),
            ..InitConfig::default()
        };
        assert_eq!(root_shell(&config), "/bin/sh");
        // The user's real shell: user-shell when set, refused the same way; else root's.
        let config = InitConfig {
            shell: "/bin/sh".into(),
            user_shell: link.to_string_lossy().into_owned(),
            ..InitConfig::default()
        };
        assert_eq!(user_shell(&config), "/bin/sh");
        let config = InitConfig {
            user_shell: String::new(),
            ..config
        };
        assert_eq!(user_shell(&config), "/bin/sh");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
