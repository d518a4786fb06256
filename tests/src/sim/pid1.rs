//! PID 1 of an instance, as WSL's own `/init` is: it mounts what WSL mounts, pivots into the
//! distribution's tree (a real root, not a chroot: `setns` into this mount namespace must land
//! in the distribution), and then either stays as init (reaping orphans) or, with
//! `[boot] systemd=true`, hands PID 1 to `/sbin/init` while a child keeps being WSL's init.

use std::fs::{self, OpenOptions};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use super::error::{Error, Result};
use super::wsl_conf::WslConf;
use super::{interop, sys};

/// Units WSL masks itself when it boots systemd (they never finish, or fight the console).
const WSL_MASKED_UNITS: &[&str] = &[
    "systemd-networkd-wait-online.service",
    "NetworkManager-wait-online.service",
    "console-getty.service",
];

/// `wsl-sim __pid1 DISTRO NAME`; stdout is the pipe on which `ready` is announced.
pub fn main(distro: &Path, name: &str) -> Result<()> {
    let conf = WslConf::read(distro);
    // Born in the instance's cgroup: a cgroup namespace makes it the root of this view. The
    // mount namespace is PID 1's own, so its pivot_root moves no one else's root.
    let flags = sys::CLONE_NEWCGROUP | sys::CLONE_NEWNS | sys::CLONE_NEWUTS | sys::CLONE_NEWIPC;
    sys::unshare(flags).map_err(|e| Error::Boot(format!("unshare: {e}")))?;
    mount_wsl_filesystems(distro)?;
    let _ = sys::sethostname(&hostname(name));
    std::env::set_current_dir(distro).map_err(|e| Error::io("cannot enter", distro, e))?;
    sys::pivot_root_here().map_err(|e| Error::io("pivot_root into", distro, e))?;
    sys::unmount_lazily(Path::new("."))
        .map_err(|e| Error::io("cannot detach the old root of", distro, e))?;
    std::env::set_current_dir("/").map_err(|e| Error::io("cannot enter", "/", e))?;

    if conf.systemd {
        boot_systemd()
    } else {
        announce_ready();
        loop {
            if sys::reap_any().is_none() {
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
        }
    }
}

fn announce_ready() {
    println!("ready");
    let _ = sys::silence_stdout();
}

fn hostname(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .take(63)
        .collect();
    if cleaned.is_empty() {
        "wsl-sim".into()
    } else {
        cleaned
    }
}

/// What WSL mounts before anything of the distribution runs.
fn mount_wsl_filesystems(root: &Path) -> Result<()> {
    let mount = |source: Option<&Path>, target: &Path, fstype: Option<&str>, flags, data| {
        sys::mount(source, target, fstype, flags, data)
            .map_err(|e| Error::io("cannot mount", target, e))
    };
    // Nothing done here may propagate back to the host.
    mount(
        None,
        Path::new("/"),
        None,
        sys::MS_REC | sys::MS_PRIVATE,
        None,
    )?;
    mount(Some(root), root, None, sys::MS_BIND | sys::MS_REC, None)?;
    let dir = |path: &str| -> Result<std::path::PathBuf> {
        let target = root.join(path);
        fs::create_dir_all(&target).map_err(|e| Error::io("cannot create", &target, e))?;
        Ok(target)
    };
    let quiet = sys::MS_NOSUID | sys::MS_NODEV | sys::MS_NOEXEC;
    mount(
        Some(Path::new("proc")),
        &dir("proc")?,
        Some("proc"),
        quiet,
        None,
    )?;
    mount(
        Some(Path::new("sysfs")),
        &dir("sys")?,
        Some("sysfs"),
        quiet,
        None,
    )?;
    // The cgroup namespace makes the instance's cgroup the root of this view.
    mount(
        Some(Path::new("cgroup2")),
        &root.join("sys/fs/cgroup"),
        Some("cgroup2"),
        quiet,
        None,
    )?;
    mount(
        Some(Path::new("/dev")),
        &dir("dev")?,
        None,
        sys::MS_BIND | sys::MS_REC,
        None,
    )?;
    mount(
        Some(Path::new("tmpfs")),
        &dir("run")?,
        Some("tmpfs"),
        sys::MS_NOSUID | sys::MS_NODEV,
        Some("mode=0755"),
    )?;
    dir("run/WSL")?;
    dir("run/user")?;
    mount(
        Some(Path::new("tmpfs")),
        &dir("mnt/wsl")?,
        Some("tmpfs"),
        sys::MS_NOSUID | sys::MS_NODEV,
        Some("mode=0755"),
    )?;
    mount(
        Some(Path::new("drvfs")),
        &dir("mnt/c")?,
        Some("tmpfs"),
        sys::MS_NOSUID | sys::MS_NODEV,
        Some("mode=0777"),
    )?;
    dir("mnt/c/Windows/System32")?;
    dir("mnt/c/Program Files/PowerShell/7")?;

    // WSL's /init is its own binary, bind-mounted from outside the distribution.
    let init = root.join("init");
    if init.symlink_metadata().is_err() {
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o755)
            .open(&init)
            .map_err(|e| Error::io("cannot create", &init, e))?;
    }
    let exe = std::env::current_exe().map_err(|e| Error::io("cannot find", "/proc/self/exe", e))?;
    mount(Some(&exe), &init, None, sys::MS_BIND, None)?;
    Ok(())
}

/// `[boot] systemd=true`: PID 1 becomes the distribution's /sbin/init with `container=wsl`;
/// a child stays behind as WSL's init, serving the stable interop socket /run/WSL/1_interop.
fn boot_systemd() -> Result<()> {
    let runtime_units = Path::new("/run/systemd/system");
    let _ = fs::create_dir_all(runtime_units);
    for unit in WSL_MASKED_UNITS {
        let _ = std::os::unix::fs::symlink("/dev/null", runtime_units.join(unit));
    }
    let _ = fs::set_permissions("/run/WSL", fs::Permissions::from_mode(0o755));
    Command::new("/init")
        .arg("__interop")
        .arg("/run/WSL/1_interop")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| Error::io("cannot start the interop server", "/init", e))?;
    if fs::metadata("/sbin/init").is_err() {
        return Err(Error::Boot(
            "[boot] systemd=true but /sbin/init does not exist".into(),
        ));
    }
    announce_ready();
    let err = Command::new("/sbin/init")
        .env_clear()
        .env("container", "wsl")
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .exec();
    Err(Error::io("cannot exec", "/sbin/init", err))
}

/// `/init __interop PATH`: WSL's init serving one interop socket.
pub fn interop_server(path: &Path) -> Result<()> {
    interop::serve(path).map_err(|e| Error::io("cannot serve", path, e))
}
