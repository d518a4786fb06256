//! WSLg as a distribution sees it (`run --wslg` or `WSL_SIM_WSLG=1` when the instance starts):
//! the system distribution's share on /mnt/wslg (config.cpp:1073-1108) with Weston's Wayland
//! socket `runtime-dir/wayland-0`, PulseAudio's `PulseServer` and X11's `.X11-unix/X0`, each a
//! listening socket that answers a connect with one line; `/tmp/.X11-unix` bound read-only on
//! WSLg's folder (config.cpp:603-621, 1095);
//! and the variables of every session (config.cpp:1765-1792).

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::{Command, Stdio};

use super::error::{Error, Result};
use super::sys;

/// The sockets of WSLg's share and the line each answers with.
const SOCKETS: &[(&str, &str)] = &[
    ("/mnt/wslg/runtime-dir/wayland-0", "wayland"),
    ("/mnt/wslg/PulseServer", "pulseaudio"),
    ("/mnt/wslg/.X11-unix/X0", "x11"),
];

/// WSLg's variables for a session (ConfigGetWslgEnvironmentVariables, config.cpp:1765-1792).
pub const ENVIRONMENT: &[(&str, &str)] = &[
    ("XDG_RUNTIME_DIR", "/mnt/wslg/runtime-dir"),
    ("DISPLAY", ":0"),
    ("WAYLAND_DISPLAY", "wayland-0"),
    ("PULSE_SERVER", "unix:/mnt/wslg/PulseServer"),
    ("WSL2_GUI_APPS_ENABLED", "1"),
];

/// Mounts the share after mkdir -p (util.cpp:1790), starts the process that serves its
/// sockets (WSLg's system distribution), waiting until they listen, and binds /tmp/.X11-unix
/// (config.cpp:1095, in both modes: with systemd the generator's `wslg.service` redoes it when
/// tmp.mount hides it, init.cpp:381-405).
pub fn mount_share() -> Result<()> {
    fs::create_dir_all("/mnt/wslg").map_err(|e| Error::io("cannot create", "/mnt/wslg", e))?;
    sys::mount(
        Some(Path::new("wslg")),
        Path::new("/mnt/wslg"),
        Some("tmpfs"),
        sys::MS_NOSUID | sys::MS_NODEV,
        Some("mode=0755"),
    )
    .map_err(|e| Error::io("cannot mount", "/mnt/wslg", e))?;
    for dir in ["/mnt/wslg/runtime-dir/pulse", "/mnt/wslg/.X11-unix"] {
        fs::create_dir_all(dir).map_err(|e| Error::io("cannot create", dir, e))?;
    }
    let _ = fs::set_permissions("/mnt/wslg/runtime-dir", fs::Permissions::from_mode(0o777));
    let _ = fs::set_permissions("/mnt/wslg/.X11-unix", fs::Permissions::from_mode(0o1777));
    let _ = fs::write("/mnt/wslg/runtime-dir/wayland-0.lock", "");
    let _ = std::os::unix::fs::symlink("../../PulseServer", "/mnt/wslg/runtime-dir/pulse/native");
    let mut server = Command::new("/init");
    server
        .arg("__wslg")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = server
        .spawn()
        .map_err(|e| Error::io("cannot start WSLg's stand-in", "/init", e))?;
    // One line once every socket listens.
    if let Some(out) = child.stdout.take() {
        use std::io::BufRead;
        let mut line = String::new();
        let _ = std::io::BufReader::new(out).read_line(&mut line);
    }
    bind_x11();
    Ok(())
}

/// ConfigInitializeX11 (config.cpp:603-621): `/tmp/.X11-unix` (0775) bound on WSLg's folder,
/// then made read-only so the socket cannot be removed.
fn bind_x11() {
    let target = Path::new("/tmp/.X11-unix");
    if fs::create_dir(target).is_ok() {
        let _ = fs::set_permissions(target, fs::Permissions::from_mode(0o775));
    }
    let bound = sys::mount(
        Some(Path::new("/mnt/wslg/.X11-unix")),
        target,
        None,
        sys::MS_BIND | sys::MS_REC,
        None,
    );
    if bound.is_ok() {
        let _ = sys::mount(
            Some(Path::new("none")),
            target,
            None,
            sys::MS_RDONLY | sys::MS_REMOUNT | sys::MS_BIND,
            None,
        );
    }
}

/// `/init __wslg`: binds the three sockets, says so on stdout, and answers every connection
/// with the socket's name.
pub fn serve() -> Result<()> {
    let mut threads = Vec::new();
    for (path, name) in SOCKETS {
        let _ = fs::remove_file(path);
        let listener = UnixListener::bind(path).map_err(|e| Error::io("cannot bind", path, e))?;
        let _ = fs::set_permissions(path, fs::Permissions::from_mode(0o777));
        threads.push(std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                let _ = writeln!(stream, "{name}");
            }
        }));
    }
    println!("listening");
    let _ = std::io::stdout().flush();
    let _ = sys::silence_stdout();
    for thread in threads {
        let _ = thread.join();
    }
    Ok(())
}
