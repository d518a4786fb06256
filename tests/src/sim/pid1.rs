//! PID 1 of an instance, as WSL's own `/init` is (microsoft/WSL `src/linux/init`): it binds
//! itself on `/init`, moves the distribution's tree onto `/` and chroots into it, mounts and
//! writes what WSL mounts and writes at every start, and then either stays as init (reaping
//! orphans) or, with `[boot] systemd=true`, hands PID 1 to `/sbin/init` while a child keeps
//! being WSL's init. Lines it announces on stdout: `warning TEXT` (shown by the starting
//! session as `wsl: TEXT`, as WSL's EMIT_USER_WARNING is), then `ready`.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::error::{Error, Result};
use super::passwd::User;
use super::wsl_conf::WslConf;
use super::{interop, sys, wslg};

/// The version WSL puts into systemd's environment (`container_host_version_id`).
pub const WSL_VERSION: &str = "2.9.4";

/// `wsl-sim __pid1 DISTRO NAME CONF`: CONF is the copy of wsl.conf read at this start.
pub fn main(distro: &Path, name: &str, conf_copy: &Path) -> Result<()> {
    let conf = WslConf::parse(&fs::read_to_string(conf_copy).unwrap_or_default());
    for warning in &conf.warnings {
        announce(&format!("warning {warning}"));
    }
    let options = Options::from_env();
    // The keeper made the cgroup namespace (the VM's); the distribution gets IPC, mount and
    // UTS ones of its own, and the PID namespace it was born in (main.cpp:3027).
    let flags = sys::CLONE_NEWNS | sys::CLONE_NEWUTS | sys::CLONE_NEWIPC;
    sys::unshare(flags).map_err(|e| Error::Boot(format!("unshare: {e}")))?;
    let host = HostFacts::read();
    enter_tree(distro)?;
    let mut warnings = Vec::new();
    common_mounts()?;
    instance_setup(&conf, name, &host, &options, &mut warnings);
    for warning in &warnings {
        announce(&format!("warning {warning}"));
    }
    if conf.systemd && is_executable("/sbin/init") {
        boot_systemd(&conf)
    } else {
        if conf.systemd {
            // WslDistributionConfig.cpp:90-95: no executable /sbin/init, no systemd.
            announce(
                "warning boot.systemd is set but /sbin/init is not executable: systemd disabled",
            );
        }
        // Without systemd, WSL's init is PID 1 and serves /run/WSL/1_interop itself.
        interop::serve_in_background(Path::new("/run/WSL/1_interop"), interop::Role::Init)
            .map_err(|e| Error::io("cannot serve", "/run/WSL/1_interop", e))?;
        announce("ready");
        let _ = sys::silence_stdout();
        loop {
            if sys::reap_any().is_none() {
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
        }
    }
}

/// Features a test turns on for the instance (the simulator's stand-ins for Windows-side
/// settings), passed by `run` in the keeper's environment.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// WSLg is running on the Windows side (`--wslg` of `run`).
    pub wslg: bool,
    /// The Windows-side default uid (the registry's DefaultUid; OOBE can set it).
    pub default_uid: u32,
}

impl Options {
    pub const WSLG_ENV: &'static str = "WSL_SIM_INSTANCE_WSLG";
    pub const UID_ENV: &'static str = "WSL_SIM_INSTANCE_DEFAULT_UID";

    fn from_env() -> Self {
        Self {
            wslg: std::env::var_os(Self::WSLG_ENV).is_some_and(|v| v == "1"),
            default_uid: std::env::var(Self::UID_ENV)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
        }
    }
}

/// What PID 1 reads from the host before the host vanishes behind the chroot.
struct HostFacts {
    resolv_conf: String,
    release: String,
}

impl HostFacts {
    fn read() -> Self {
        Self {
            resolv_conf: fs::read_to_string("/etc/resolv.conf")
                .unwrap_or_else(|_| "nameserver 127.0.0.53\n".into()),
            release: fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|r| r.trim().to_owned())
                .unwrap_or_else(|_| "unknown".into()),
        }
    }
}

fn announce(line: &str) {
    let mut out = std::io::stdout();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn is_executable(path: &str) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn mount(
    source: Option<&str>,
    target: &str,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> Result<()> {
    // MS_SHARED is applied in a second call, as WSL does (config.cpp:1272-1285,
    // util.cpp:1803-1858).
    sys::mount(
        source.map(Path::new),
        Path::new(target),
        fstype,
        flags & !sys::MS_SHARED,
        data,
    )
    .map_err(|e| Error::io("cannot mount", target, e))?;
    if flags & sys::MS_SHARED != 0 {
        sys::mount(None, Path::new(target), None, sys::MS_SHARED, None)
            .map_err(|e| Error::io("cannot make shared", target, e))?;
    }
    Ok(())
}

/// UtilMount (util.cpp:1790): `mkdir -p` of the target (following symlinks, as mkdir does),
/// then the mount.
fn mount_mkdir(
    source: Option<&str>,
    target: &str,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> Result<()> {
    fs::create_dir_all(target).map_err(|e| Error::io("cannot create", target, e))?;
    mount(source, target, fstype, flags, data)
}

/// mini_init's part: `/init` truncated and WSL's init bound read-only on it (main.cpp:1628,
/// 2173-2177), then `chdir`, `mount(".", "/", MS_MOVE)`, `chroot(".")` (main.cpp:245-262), so
/// the tree is the root mount of this namespace and `setns` lands in it.
fn enter_tree(distro: &Path) -> Result<()> {
    let host = |path: &Path| path.to_string_lossy().into_owned();
    // Nothing done here may propagate back to the host.
    sys::mount(
        None,
        Path::new("/"),
        None,
        sys::MS_REC | sys::MS_PRIVATE,
        None,
    )
    .map_err(|e| Error::io("cannot make private", "/", e))?;
    // MS_MOVE needs a mount point: the tree bound on itself (WSL's is the ext4 of the VHD).
    mount(
        Some(&host(distro)),
        &host(distro),
        None,
        sys::MS_BIND | sys::MS_REC,
        None,
    )?;
    // WSL mounts a devtmpfs on /dev (config.cpp:220-222); that would be the host's own
    // devtmpfs, so the simulator binds the host's /dev instead (see tests/README.md), before
    // the host's paths are gone.
    let dev = distro.join("dev");
    fs::create_dir_all(&dev).map_err(|e| Error::io("cannot create", &dev, e))?;
    mount(
        Some("/dev"),
        &host(&dev),
        None,
        sys::MS_BIND | sys::MS_REC,
        None,
    )?;
    let init = distro.join("init");
    OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o755)
        .open(&init)
        .map_err(|e| Error::io("cannot create", &init, e))?;
    let exe = std::env::current_exe().map_err(|e| Error::io("cannot find", "/proc/self/exe", e))?;
    mount(
        Some(&host(&exe)),
        &host(&init),
        None,
        sys::MS_BIND | sys::MS_RDONLY,
        None,
    )?;
    mount(
        None,
        &host(&init),
        None,
        sys::MS_BIND | sys::MS_REMOUNT | sys::MS_RDONLY,
        None,
    )?;
    std::env::set_current_dir(distro).map_err(|e| Error::io("cannot enter", distro, e))?;
    sys::mount(
        Some(Path::new(".")),
        Path::new("/"),
        None,
        sys::MS_MOVE,
        None,
    )
    .map_err(|e| Error::io("cannot move onto / the tree", distro, e))?;
    sys::chroot(Path::new(".")).map_err(|e| Error::io("cannot chroot into", distro, e))?;
    std::env::set_current_dir("/").map_err(|e| Error::io("cannot enter", "/", e))
}

fn mkdir(path: &str, mode: u32) {
    // INIT_ANY_DIRECTORY: mkdir, an existing one is fine (config.cpp:1251-1262).
    if fs::create_dir(path).is_ok() {
        let _ = fs::set_permissions(path, fs::Permissions::from_mode(mode));
    }
}

fn symlink(target: &str, link: &str) {
    // INIT_ANY_SYMLINK: symlink(2), an existing entry is kept (config.cpp:1305-1312).
    let _ = std::os::unix::fs::symlink(target, link);
}

/// LxssStartupCommon (config.cpp:190-217) in order, and cgroup2 (config.cpp:1857).
fn common_mounts() -> Result<()> {
    let quiet = sys::MS_NOSUID | sys::MS_NODEV | sys::MS_NOEXEC | sys::MS_NOATIME;
    mkdir("/sys", 0o755);
    mount(
        Some("sysfs"),
        "/sys",
        Some("sysfs"),
        quiet | sys::MS_SHARED,
        None,
    )?;
    mkdir("/proc", 0o755);
    mount(
        Some("proc"),
        "/proc",
        Some("proc"),
        quiet | sys::MS_SHARED,
        None,
    )?;
    // /dev itself (the host's, bound in enter_tree) is shared as WSL's is (config.cpp:222).
    sys::mount(None, Path::new("/dev"), None, sys::MS_SHARED, None)
        .map_err(|e| Error::io("cannot make shared", "/dev", e))?;
    mkdir("/dev/pts", 0o755);
    mount(
        Some("devpts"),
        "/dev/pts",
        Some("devpts"),
        sys::MS_NOATIME | sys::MS_NOSUID | sys::MS_NOEXEC,
        Some("gid=5,mode=620,ptmxmode=666"),
    )?;
    mkdir("/run", 0o755);
    mount(
        Some("tmpfs"),
        "/run",
        Some("tmpfs"),
        sys::MS_NODEV | sys::MS_STRICTATIME | sys::MS_NOSUID | sys::MS_SHARED,
        Some("mode=755"),
    )?;
    mkdir("/run/lock", 0o755);
    mount(
        Some("tmpfs"),
        "/run/lock",
        Some("tmpfs"),
        quiet | sys::MS_SHARED,
        None,
    )?;
    mkdir("/run/shm", 0o755);
    mount(
        Some("tmpfs"),
        "/run/shm",
        Some("tmpfs"),
        sys::MS_NOATIME | sys::MS_NOSUID | sys::MS_NODEV | sys::MS_SHARED,
        None,
    )?;
    mkdir("/dev/shm", 0o755);
    mount(Some("/run/shm"), "/dev/shm", None, sys::MS_BIND, None)?;
    mkdir("/run/user", 0o755);
    mount(
        Some("tmpfs"),
        "/run/user",
        Some("tmpfs"),
        quiet,
        Some("mode=755"),
    )?;
    mkdir("/bin", 0o755);
    symlink("/init", "/bin/wslinfo");
    symlink("/init", "/bin/wslpath");
    mkdir("/sbin", 0o755);
    symlink("/init", "/sbin/mount.drvfs");
    // binfmt_misc (config.cpp:217) is the host kernel's one: not mounted (tests/README.md).
    mkdir("/tmp", 0o1777);
    // cgroup2 with nsdelegate (config.cpp:1857); inside the VM's cgroup namespace the kernel
    // ignores nsdelegate, which keeps the host's hierarchy untouched.
    fs::create_dir_all("/sys/fs/cgroup")
        .map_err(|e| Error::io("cannot create", "/sys/fs/cgroup", e))?;
    mount(
        Some("cgroup2"),
        "/sys/fs/cgroup",
        Some("cgroup2"),
        sys::MS_NOSUID | sys::MS_NODEV | sys::MS_NOEXEC | sys::MS_RELATIME,
        Some("nsdelegate"),
    )?;
    // WSL_TEMP_FOLDER, 0777, for the interop sockets (util.cpp:107, util.h:82-83).
    fs::create_dir_all("/run/WSL").map_err(|e| Error::io("cannot create", "/run/WSL", e))?;
    let _ = fs::set_permissions("/run/WSL", fs::Permissions::from_mode(0o777));
    Ok(())
}

/// The `uid=` and `gid=` drvfs ends up with: the last of each in `options` (what
/// `[automount] options` adds after WSL's own, config.cpp:2021), else the default user's.
fn drvfs_owner(options: Option<&str>, uid: u32, gid: u32) -> (u32, u32) {
    let (mut uid, mut gid) = (uid, gid);
    for option in options.unwrap_or_default().split(',') {
        match option.trim().split_once('=') {
            Some(("uid", v)) => uid = v.parse().unwrap_or(uid),
            Some(("gid", v)) => gid = v.parse().unwrap_or(gid),
            _ => {}
        }
    }
    (uid, gid)
}

/// ConfigInitializeInstance (config.cpp:623-835): fstab, the VM-mode mounts, drvfs, the host
/// name and the files WSL writes. Failures here are warnings or logged, never fatal, as in WSL.
fn instance_setup(
    conf: &WslConf,
    name: &str,
    host: &HostFacts,
    options: &Options,
    warnings: &mut Vec<String>,
) {
    let log = |what: String| eprintln!("wsl-sim init: {what}");
    // The drvfs owner: `[user] default` when it exists, else the Windows-side default uid
    // (config.cpp:690-701).
    let owner = conf
        .default_user
        .as_deref()
        .and_then(|n| User::lookup(Path::new("/"), n))
        .map(|u| u.uid)
        .unwrap_or(options.default_uid);
    // `/bin/mount -a` before the drvfs mounts (config.cpp:705-714, 2127-2160); its failure,
    // a missing /bin/mount included, is one warning.
    if conf.mount_fstab {
        let ok = Command::new("/bin/mount")
            .arg("-a")
            .env_clear()
            .env("WSL_DRVFS_ELEVATED", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            warnings.push("Processing /etc/fstab with mount -a failed.".into());
        }
    }
    // GPU shares moved onto /usr/lib/wsl/{drivers,lib} after mkdir -p (config.cpp:1041-1053,
    // lxfsshares.h:36), then ld.wsl.conf and /sbin/ldconfig (config.cpp:1055-1058, 2093-2124).
    if conf.gpu_enabled {
        for (share, marker) in [
            ("/usr/lib/wsl/drivers", "drivers.wsl-sim"),
            ("/usr/lib/wsl/lib", "lib.wsl-sim"),
        ] {
            if let Err(e) = read_only_share(share, marker) {
                log(e.to_string());
            }
        }
        if conf.ldconfig {
            let written = fs::write(
                "/etc/ld.so.conf.d/ld.wsl.conf",
                "# This file was automatically generated by WSL (wsl-sim).\n/usr/lib/wsl/lib",
            );
            if written.is_ok() {
                let _ = Command::new("/sbin/ldconfig")
                    .env_clear()
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
        }
    }
    // The VM-wide shared /mnt/wsl (main.cpp:1276, config.cpp:1060-1071), and /etc/resolv.conf
    // removed and relinked to /mnt/wsl/resolv.conf (config.cpp:1337-1389).
    match mount_mkdir(
        Some("tmpfs"),
        "/mnt/wsl",
        Some("tmpfs"),
        sys::MS_NOSUID | sys::MS_NODEV | sys::MS_SHARED,
        Some("mode=0755"),
    ) {
        Ok(()) => {
            let _ = fs::write("/mnt/wsl/resolv.conf", &host.resolv_conf);
            if conf.generate_resolv_conf {
                let _ = fs::remove_file("/etc/resolv.conf");
                if let Err(e) =
                    std::os::unix::fs::symlink("/mnt/wsl/resolv.conf", "/etc/resolv.conf")
                {
                    log(format!("symlink /etc/resolv.conf: {e}"));
                }
            }
        }
        Err(e) => log(e.to_string()),
    }
    // WSLg's share on /mnt/wslg (config.cpp:1073-1108).
    if options.wslg && conf.gui_applications {
        if let Err(e) = wslg::mount_share() {
            log(e.to_string());
        }
    }
    // The inbox kernel's modules on /lib/modules/<release> after mkdir -p (main.cpp:3160-3189,
    // config.cpp:1110-1124): a writable tmpfs with a marker, as WSL's overlay is writable.
    let modules = format!("/lib/modules/{}", host.release);
    match mount_mkdir(
        Some("wsl-sim-modules"),
        &modules,
        Some("tmpfs"),
        sys::MS_NOATIME | sys::MS_NOSUID | sys::MS_NODEV,
        Some("mode=0755"),
    ) {
        Ok(()) => {
            let _ = fs::write(
                format!("{modules}/modules.wsl-sim"),
                "WSL's kernel modules\n",
            );
        }
        Err(e) => log(e.to_string()),
    }
    // Drive C: as drvfs with `noatime,uid=,gid=` of the default user and then
    // `[automount] options` (config.cpp:728-731, 1996-2021): drvfs takes the last of a
    // repeated option, so the options' uid=/gid= win. The simulator's is a tmpfs with
    // Windows' folders, owned as drvfs would show them.
    let gid = User::by_uid(Path::new("/"), owner).map_or(0, |u| u.gid);
    let (owner, gid) = drvfs_owner(conf.drvfs_options.as_deref(), owner, gid);
    let options_text = format!("mode=0777,uid={owner},gid={gid}");
    match mount_mkdir(
        Some("drvfs"),
        "/mnt/c",
        Some("tmpfs"),
        sys::MS_NOATIME | sys::MS_NOSUID | sys::MS_NODEV,
        Some(&options_text),
    ) {
        Ok(()) => {
            for dir in ["Windows/System32", "Program Files/PowerShell/7", "Users"] {
                let path = Path::new("/mnt/c").join(dir);
                let _ = fs::create_dir_all(&path);
                let mut p = path.as_path();
                while p != Path::new("/mnt/c") {
                    let _ = std::os::unix::fs::lchown(p, Some(owner), Some(gid));
                    p = p.parent().unwrap_or(Path::new("/mnt/c"));
                }
            }
        }
        Err(e) => log(e.to_string()),
    }
    // Host name, then /etc/hostname and /etc/hosts with creat(), which follows symlinks and
    // truncates (config.cpp:733-830).
    let hostname = clean_hostname(conf.hostname.as_deref().unwrap_or(name));
    let _ = sys::sethostname(&hostname);
    if let Err(e) = creat_write("/etc/hostname", &format!("{hostname}\n")) {
        log(format!("creat /etc/hostname: {e}"));
    }
    if conf.generate_hosts {
        let hosts = format!(
            "# This file was automatically generated by WSL (wsl-sim). To stop it, set\n\
             # [network] generateHosts = false in /etc/wsl.conf\n\
             127.0.0.1\tlocalhost\n127.0.1.1\t{hostname}.localdomain\t{hostname}\n\n\
             ::1     ip6-localhost ip6-loopback\n"
        );
        if let Err(e) = creat_write("/etc/hosts", &hosts) {
            log(format!("creat /etc/hosts: {e}"));
        }
    }
}

/// creat(2) then write: through a symlink to its target, truncating.
fn creat_write(path: &str, text: &str) -> std::io::Result<()> {
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o644)
        .open(path)?;
    file.write_all(text.as_bytes())
}

/// A read-only share with one marker file, mounted after mkdir -p of `target`.
fn read_only_share(target: &str, marker: &str) -> Result<()> {
    mount_mkdir(
        Some("wsl-sim-share"),
        target,
        Some("tmpfs"),
        sys::MS_NOATIME | sys::MS_NOSUID | sys::MS_NODEV,
        Some("mode=0555"),
    )?;
    let _ = fs::write(Path::new(target).join(marker), "a share of WSL's VM\n");
    mount(
        None,
        target,
        None,
        sys::MS_REMOUNT | sys::MS_RDONLY | sys::MS_NOATIME | sys::MS_NOSUID | sys::MS_NODEV,
        Some("mode=0555"),
    )
}

/// Letters, digits and `-`, at most 63 (WSL's CleanHostname, config.cpp:755).
fn clean_hostname(name: &str) -> String {
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
        "localhost".into()
    } else {
        cleaned
    }
}

/// `[boot] systemd=true` (init.cpp:2355-2438): PID 1 forks; the child stays WSL's init and
/// serves the interop socket, linked as /run/WSL/1_interop (config.cpp:950-963); the parent
/// installs WSL's generators (init.cpp:2852-2890) and execs `/sbin/init` with exactly three
/// variables and no PATH.
fn boot_systemd(conf: &WslConf) -> Result<()> {
    let mut child = Command::new("/init");
    child
        .arg0("/init")
        .arg("__wsl_init")
        .arg(conf.init_timeout.as_millis().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    let child = child
        .spawn()
        .map_err(|e| Error::io("cannot start WSL's init", "/init", e))?;
    let socket = format!("/run/WSL/{}_interop", child.id());
    // The child binds its socket; the link is made at once (a dangling link until it binds).
    let _ = std::os::unix::fs::symlink(&socket, "/run/WSL/1_interop");
    let _ = fs::create_dir_all("/run/systemd/system-generators");
    symlink("/init", "/run/systemd/system-generators/wsl-generator");
    if conf.gui_applications {
        let _ = fs::create_dir_all("/run/systemd/user-generators");
        symlink("/init", "/run/systemd/user-generators/wsl-user-generator");
    }
    announce("ready");
    let _ = sys::silence_stdout();
    let err = Command::new("/sbin/init")
        .arg0("/sbin/init")
        .env_clear()
        .env("container", "wsl")
        .env("container_host_id", "windows")
        .env("container_host_version_id", WSL_VERSION)
        .exec();
    Err(Error::io("cannot exec", "/sbin/init", err))
}

/// `/init __wsl_init TIMEOUT_MS`: WSL's init beside a native systemd, serving its interop
/// socket (which also takes the `login` requests of sessions, config.cpp:2719-2805).
pub fn wsl_init(timeout_ms: &str) -> Result<()> {
    let socket = PathBuf::from(format!("/run/WSL/{}_interop", sys::getpid()));
    let timeout = std::time::Duration::from_millis(timeout_ms.parse().unwrap_or(10_000));
    interop::serve(&socket, interop::Role::InitBesideSystemd { timeout })
        .map_err(|e| Error::io("cannot serve", &socket, e))
}

/// `/init __interop PATH`: an interop server on its own.
pub fn interop_server(path: &Path) -> Result<()> {
    interop::serve(path, interop::Role::Relay).map_err(|e| Error::io("cannot serve", path, e))
}

/// WSL's system generator, `/run/systemd/system-generators/wsl-generator -> /init`
/// (init.cpp:318-396): masks three units in the normal generator folder and installs the
/// cross-distribution mount guard (`/bin/true`, `/bin/mount --make-rslave`) and, with WSLg,
/// the X11 remount unit, each wanted by default.target (init.cpp:2838-2849).
pub fn system_generator(dir: &Path) -> i32 {
    let conf = WslConf::read(Path::new("/"));
    let mut ok = true;
    for unit in [
        "systemd-networkd-wait-online.service",
        "NetworkManager-wait-online.service",
        "console-getty.service",
    ] {
        ok &= std::os::unix::fs::symlink("/dev/null", dir.join(unit)).is_ok();
    }
    ok &= install_unit(
        dir,
        "wsl-mnt-guard",
        "# Generated by WSL (wsl-sim): keeps shutdown unmounts from reaching other distributions.\n\
         [Unit]\nDescription=WSL Cross-Distribution Mount Guard\n\
         After=local-fs.target remote-fs.target\nConditionPathIsMountPoint=/mnt/wsl\n\n\
         [Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n\
         ExecStop=-/bin/mount --make-rslave /mnt/wsl\n",
    );
    if conf.gui_applications && Path::new("/mnt/wslg/runtime-dir").exists() {
        let _ = fs::create_dir_all("/run/tmpfiles.d");
        let _ = fs::write(
            "/run/tmpfiles.d/x11.conf",
            "# Generated by WSL (wsl-sim): keeps systemd-tmpfiles off /tmp/.X11-unix.\n",
        );
        ok &= install_unit(
            dir,
            "wslg",
            "# Generated by WSL (wsl-sim): tmp.mount must not hide /tmp/.X11-unix.\n\
             [Unit]\nDescription=WSLg Remount Service\nDefaultDependencies=no\n\
             After=systemd-tmpfiles-setup.service tmp.mount\n\
             ConditionPathExists=/mnt/wslg/.X11-unix\nConditionPathExists=!/tmp/.X11-unix/X0\n\n\
             [Service]\nType=oneshot\n\
             ExecStart=/bin/mount -o bind,ro,X-mount.mkdir -t none /mnt/wslg/.X11-unix /tmp/.X11-unix\n",
        );
    }
    i32::from(!ok)
}

/// WSL's user generator (init.cpp:263-316): the `wslg-session` unit linking WSLg's sockets
/// into the user's runtime folder.
pub fn user_generator(dir: &Path) -> i32 {
    let ok = install_unit(
        dir,
        "wslg-session",
        "# Generated by WSL (wsl-sim) to configure WSLg.\n\
         [Unit]\nDescription=WSLg user service\nDefaultDependencies=no\n\n\
         [Service]\nType=oneshot\nEnvironment=WSLG_RUNTIME_DIR=/mnt/wslg/runtime-dir\n\
         ExecStart=/bin/sh -c 'mkdir -p -m 00755 \"$XDG_RUNTIME_DIR/pulse\"'\n\
         ExecStart=/bin/sh -c 'ln -sf \"$WSLG_RUNTIME_DIR/wayland-0\" \"$XDG_RUNTIME_DIR/wayland-0\"'\n\
         ExecStart=/bin/sh -c 'ln -sf \"$WSLG_RUNTIME_DIR/wayland-0.lock\" \"$XDG_RUNTIME_DIR/wayland-0.lock\"'\n\
         ExecStart=/bin/sh -c 'ln -sf \"$WSLG_RUNTIME_DIR/pulse/native\" \"$XDG_RUNTIME_DIR/pulse/native\"'\n\
         ExecStart=/bin/sh -c 'ln -sf \"$WSLG_RUNTIME_DIR/pulse/pid\" \"$XDG_RUNTIME_DIR/pulse/pid\"'\n",
    );
    i32::from(!ok)
}

fn install_unit(dir: &Path, name: &str, content: &str) -> bool {
    let unit = dir.join(format!("{name}.service"));
    let wants = dir.join("default.target.wants");
    fs::create_dir_all(dir).is_ok()
        && fs::write(&unit, content).is_ok()
        && fs::create_dir_all(&wants).is_ok()
        && std::os::unix::fs::symlink(&unit, wants.join(format!("{name}.service"))).is_ok()
}

#[cfg(test)]
mod tests {
    use super::drvfs_owner;

    #[test]
    fn automount_options_uid_and_gid_follow_wsls_own_and_the_last_wins() {
        assert_eq!(drvfs_owner(None, 0, 0), (0, 0));
        assert_eq!(drvfs_owner(Some("metadata"), 0, 0), (0, 0));
        assert_eq!(
            drvfs_owner(Some("metadata,uid=1000,gid=100"), 0, 0),
            (1000, 100)
        );
        assert_eq!(drvfs_owner(Some("uid=5, uid=7,gid=x"), 0, 3), (7, 3));
    }
}
