//! WSLg (GUI apps, sound, X11) for the user's systemd instance. WSL mounts WSLg's share on
//! `/mnt/wslg` and gives each session `DISPLAY=:0`, `WAYLAND_DISPLAY=wayland-0`,
//! `PULSE_SERVER=unix:/mnt/wslg/PulseServer` and `XDG_RUNTIME_DIR=/mnt/wslg/runtime-dir`
//! (microsoft/WSL `src/linux/init/config.cpp:1765-1792`). Once the user's systemd instance
//! runs, `XDG_RUNTIME_DIR` is `/run/user/UID` instead, where no Wayland socket is, and the
//! instance's services get none of the variables. WSL's own answer with its systemd is a user
//! unit linking the sockets into the runtime folder (`init.cpp:263-316`); init installs a unit
//! of its own that does the same, in both modes (in native mode beside WSL's, whose
//! `/bin/sh -c 'mkdir ...'` and `ln` lines find neither program on NixOS), and in both modes
//! gives the user's manager the variables. Without WSLg's share nothing is written.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// WSLg's runtime folder: WSL writes its units only when it exists (`init.cpp:379`).
pub const RUNTIME_DIR: &str = "/mnt/wslg/runtime-dir";
/// The user manager's configuration drop-in (`DefaultEnvironment=` reaches every user service).
pub const USER_ENV: &str = "/run/systemd/user.conf.d/nixos-wsl-wslg.conf";
/// Runtime unit folder of every user manager (systemd's user search path).
const USER_UNITS: &str = "/run/systemd/user";
pub const UNIT: &str = "nixos-wsl-wslg.service";
/// systemd's `x11.conf` has `D! /tmp/.X11-unix`: at boot it tries to empty the folder WSL bound
/// read-only (EROFS, exit CANTCREAT, which the unit accepts: a journal line). WSL's generator
/// shadows it with an empty file (`init.cpp:381-386`); in shell-wrapper mode WSL's generator
/// does not run, so init does.
const TMPFILES_X11: &str = "/run/tmpfiles.d/x11.conf";

/// WSL's session variables (`config.cpp:1785-1790`), the values user services get.
const VARIABLES: [(&str, &str); 3] = [
    ("DISPLAY", ":0"),
    ("WAYLAND_DISPLAY", "wayland-0"),
    ("PULSE_SERVER", "unix:/mnt/wslg/PulseServer"),
];

/// The runtime folder's entries WSL's `wslg-session` unit links (`init.cpp:298-303`): the name
/// in `$XDG_RUNTIME_DIR` and its target.
const LINKS: [(&str, &str); 4] = [
    ("wayland-0", "/mnt/wslg/runtime-dir/wayland-0"),
    ("wayland-0.lock", "/mnt/wslg/runtime-dir/wayland-0.lock"),
    ("pulse/native", "/mnt/wslg/runtime-dir/pulse/native"),
    ("pulse/pid", "/mnt/wslg/runtime-dir/pulse/pid"),
];

/// Who runs the systemd this prepares for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// init started systemd: no WSL generator ran, init provides the links and the tmpfiles
    /// override itself.
    Wrapper,
    /// WSL's `[boot] systemd=true`: WSL's generators shadow `x11.conf` and install their
    /// `wslg-session` unit; init adds the variables and its own unit, since WSL's runs
    /// `mkdir` and `ln` by name through `/bin/sh` with the user manager's PATH
    /// (`init.cpp:291-303`), which on NixOS names neither (they are only in store paths), so
    /// it fails there and links nothing.
    Native,
}

pub fn present() -> bool {
    Path::new(RUNTIME_DIR).is_dir()
}

/// Writes what the systemd about to start needs for WSLg (nothing without WSLg). `exe` is
/// init's own path, for the user unit. Failures are said, never fatal: GUI apps are not worth
/// a shell.
pub fn prepare(mode: Mode, exe: Option<&Path>) {
    if !present() {
        return;
    }
    let caller = |key: &str| std::env::var(key).ok();
    if let Err((path, e)) = write_user_environment(&caller) {
        crate::say!(
            "cannot write {}: {e}; user services will not see WSLg",
            path.display()
        );
    }
    if mode == Mode::Wrapper && !Path::new(TMPFILES_X11).exists() {
        if let Err(e) = write(Path::new(TMPFILES_X11), TMPFILES_TEXT.as_bytes()) {
            crate::say!("cannot write {TMPFILES_X11}: {e}");
        }
    }
    match exe.and_then(unit_text) {
        Some(text) => {
            if let Err((path, e)) = install_unit(Path::new(USER_UNITS), &text) {
                crate::say!(
                    "cannot write {}: {e}; user services will not find WSLg's sockets",
                    path.display()
                );
            }
        }
        None => crate::say!(
            "init's own path is unknown or unfit for a unit; user services will not find \
             WSLg's sockets in their runtime folder"
        ),
    }
}

const TMPFILES_TEXT: &str = "# Written by nixos-wsl init, as WSL's generator does: systemd's \
     x11.conf would empty /tmp/.X11-unix, WSLg's read-only bind.\n";

/// `[Manager] DefaultEnvironment=` with WSLg's variables: the caller's values (WSL's) where
/// set and plain, else WSL's defaults.
fn write_user_environment(
    caller: &dyn Fn(&str) -> Option<String>,
) -> Result<(), (PathBuf, io::Error)> {
    write(Path::new(USER_ENV), user_environment(caller).as_bytes())
        .map_err(|e| (PathBuf::from(USER_ENV), e))
}

fn user_environment(caller: &dyn Fn(&str) -> Option<String>) -> String {
    let mut text = String::from(
        "# Written by nixos-wsl init: WSLg's variables for the user's services.\n\
         [Manager]\nDefaultEnvironment=",
    );
    for (key, default) in VARIABLES {
        let value = caller(key)
            .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_graphic() && b != b'"'))
            .filter(|v| !v.contains(['\\', '%']))
            .unwrap_or_else(|| default.to_owned());
        text.push_str(&format!("\"{key}={value}\" "));
    }
    text.pop();
    text.push('\n');
    text
}

/// The user unit that links WSLg's sockets at every start of the user's manager, so a
/// recreated runtime folder gets them again (the manager starts after `user-runtime-dir@`).
fn unit_text(exe: &Path) -> Option<String> {
    let exe = exe.to_str()?;
    let plain = exe.starts_with('/')
        && exe
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._+-".contains(&b));
    plain.then(|| {
        format!(
            "# Written by nixos-wsl init: WSLg's sockets in $XDG_RUNTIME_DIR, as WSL's \
             wslg-session unit does.\n\
             [Unit]\nDescription=WSLg's sockets in the runtime folder\nDefaultDependencies=no\n\
             ConditionPathIsDirectory={RUNTIME_DIR}\n\n\
             [Service]\nType=oneshot\nExecStart={exe} wslg-links\n"
        )
    })
}

/// The unit and its `default.target.wants` link in `dir`.
fn install_unit(dir: &Path, text: &str) -> Result<(), (PathBuf, io::Error)> {
    let unit = dir.join(UNIT);
    write(&unit, text.as_bytes()).map_err(|e| (unit.clone(), e))?;
    let wants = dir.join("default.target.wants");
    fs::create_dir_all(&wants).map_err(|e| (wants.clone(), e))?;
    let link = wants.join(UNIT);
    replace_link(&link, &unit).map_err(|e| (link, e))
}

fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::write(path, bytes)
}

/// Links WSLg's sockets into `dir` (the user's runtime folder), making `dir/pulse` (0755,
/// owned by `owner` when given). An entry that is a symlink is replaced; anything else (a
/// PulseAudio of the user's own) is left alone.
pub fn link_into(dir: &Path, owner: Option<(u32, u32)>) -> Result<(), (PathBuf, io::Error)> {
    let pulse = dir.join("pulse");
    match fs::DirBuilder::new().mode(0o755).create(&pulse) {
        Ok(()) => {
            let _ = fs::set_permissions(&pulse, fs::Permissions::from_mode(0o755));
            if let Some((uid, gid)) = owner {
                std::os::unix::fs::lchown(&pulse, Some(uid), Some(gid))
                    .map_err(|e| (pulse.clone(), e))?;
            }
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err((pulse, e)),
    }
    for (name, target) in LINKS {
        let link = dir.join(name);
        match fs::symlink_metadata(&link) {
            Ok(meta) if !meta.file_type().is_symlink() => continue,
            Ok(_) if fs::read_link(&link).is_ok_and(|t| t == Path::new(target)) => continue,
            _ => {}
        }
        replace_link(&link, Path::new(target)).map_err(|e| (link.clone(), e))?;
        if let Some((uid, gid)) = owner {
            let _ = std::os::unix::fs::lchown(&link, Some(uid), Some(gid));
        }
    }
    Ok(())
}

/// `link -> target`, atomically over an older link.
fn replace_link(link: &Path, target: &Path) -> io::Result<()> {
    let mut tmp = link.as_os_str().to_owned();
    tmp.push(format!(".nixos-wsl-{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let _ = fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp)?;
    fs::rename(&tmp, link).inspect_err(|_| {
        let _ = fs::remove_file(&tmp);
    })
}

/// `init wslg-links` (the user unit's command): links into `$XDG_RUNTIME_DIR`. Without WSLg
/// there is nothing to do.
pub fn links_command() -> Result<std::process::ExitCode, crate::error::Error> {
    if !present() {
        return Ok(std::process::ExitCode::SUCCESS);
    }
    let dir = std::env::var_os("XDG_RUNTIME_DIR")
        .filter(|d| Path::new(d).is_absolute())
        .ok_or_else(|| {
            crate::error::Error::Usage("XDG_RUNTIME_DIR is not an absolute path".into())
        })?;
    link_into(Path::new(&dir), None)
        .map_err(|(path, e)| crate::error::Error::io("link", path.display().to_string(), e))?;
    Ok(std::process::ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("init-wslg-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("scratch folder");
        dir
    }

    #[test]
    fn links_are_made_replaced_and_a_real_socket_is_kept() {
        let dir = scratch("links");
        fs::create_dir(dir.join("pulse")).expect("pulse");
        std::os::unix::fs::symlink("/elsewhere", dir.join("wayland-0")).expect("old link");
        let own = std::os::unix::net::UnixListener::bind(dir.join("pulse/native")).expect("bind");
        link_into(&dir, None).expect("links");
        assert_eq!(
            fs::read_link(dir.join("wayland-0")).expect("link"),
            Path::new("/mnt/wslg/runtime-dir/wayland-0")
        );
        assert_eq!(
            fs::read_link(dir.join("wayland-0.lock")).expect("link"),
            Path::new("/mnt/wslg/runtime-dir/wayland-0.lock")
        );
        assert!(
            fs::read_link(dir.join("pulse/native")).is_err(),
            "socket replaced"
        );
        assert!(fs::read_link(dir.join("pulse/pid")).is_ok());
        // Again: nothing changes, nothing is left behind.
        link_into(&dir, None).expect("links again");
        let names: Vec<_> = fs::read_dir(&dir)
            .expect("list")
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .collect();
        assert_eq!(names.len(), 3, "{names:?}");
        drop(own);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_user_environment_takes_plain_caller_values_else_wsls() {
        let caller = |key: &str| match key {
            "DISPLAY" => Some(":1".to_owned()),
            "PULSE_SERVER" => Some("unix:/x \"y".to_owned()),
            _ => None,
        };
        assert_eq!(
            user_environment(&caller).lines().last(),
            Some(
                "DefaultEnvironment=\"DISPLAY=:1\" \"WAYLAND_DISPLAY=wayland-0\" \
                 \"PULSE_SERVER=unix:/mnt/wslg/PulseServer\""
            )
        );
    }

    #[test]
    fn the_unit_runs_init_only_from_a_plain_path() {
        let text = unit_text(Path::new("/usr/libexec/nixos-wsl/init")).expect("unit");
        assert!(text.contains("\nExecStart=/usr/libexec/nixos-wsl/init wslg-links\n"));
        assert!(unit_text(Path::new("/a b/init")).is_none());
        assert!(unit_text(Path::new("/a%b/init")).is_none());
        assert!(unit_text(Path::new("init")).is_none());
    }

    #[test]
    fn the_unit_is_wanted_by_default_target() {
        let dir = scratch("unit");
        install_unit(&dir, "x").expect("install");
        assert_eq!(
            fs::read_link(dir.join("default.target.wants").join(UNIT)).expect("link"),
            dir.join(UNIT)
        );
        install_unit(&dir, "y").expect("again");
        assert_eq!(fs::read_to_string(dir.join(UNIT)).expect("unit"), "y");
        let _ = fs::remove_dir_all(&dir);
    }
}
