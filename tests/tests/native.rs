//! Native systemd end to end (issue 13): packer's `--systemd native` archives booted by the
//! simulator as WSL boots `[boot] systemd=true` (`init.cpp:2355-2438`): a `.wsl` installed
//! with its OOBE and a rootfs imported, sessions as the user inside systemd, `-e`,
//! `systemctl --user`, interop from a service, `/mnt/c` owned by the user, a second start
//! after `wsl --terminate`, `wsl -u root` giving root's real shell; and the wrapper mode's
//! `[automount] options` giving `/mnt/c` to the user.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use wsl_sim::{dist_bin, require_root, scratch_dir, Distro, Variant};

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn pack(out: &Path, extra: &[&str]) {
    wsl_sim::pack_for_nixos_user(Variant::Debian, out, extra);
}

/// `packer check` finds no error in what packer wrote.
fn checks_clean(archive: &Path) {
    let out = Command::new(dist_bin("packer"))
        .arg("check")
        .arg(archive)
        .output()
        .expect("packer runs");
    assert!(
        out.status.success(),
        "packer check {}: {}{}",
        archive.display(),
        stdout(&out),
        stderr(&out)
    );
}

/// A distribution `wsl-sim install`ed from a `.wsl` (OOBE pending); terminated on drop.
struct Installed {
    root: PathBuf,
}

impl Installed {
    fn new(archive: &Path, root: PathBuf) -> Self {
        let out = Command::new(dist_bin("wsl-sim"))
            .arg("install")
            .arg(archive)
            .arg(&root)
            .output()
            .expect("wsl-sim runs");
        assert!(out.status.success(), "install: {}", stderr(&out));
        Self { root }
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        terminate(&self.root);
    }
}

fn terminate(root: &Path) {
    let _ = Command::new(dist_bin("wsl-sim"))
        .arg("terminate")
        .arg(root)
        .stderr(Stdio::null())
        .status();
}

fn run(root: &Path, args: &[&str]) -> Output {
    Command::new(dist_bin("wsl-sim"))
        .arg("run")
        .arg(root)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("wsl-sim runs")
}

/// An interactive start without a command (what runs OOBE), fed `input`.
fn login(root: &Path, input: &str) -> Output {
    let mut child = Command::new(dist_bin("wsl-sim"))
        .arg("run")
        .arg(root)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn wsl-sim");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write");
    child.wait_with_output().expect("wait")
}

/// What a native session must show: the user with their groups, inside WSL's own systemd
/// (PID 1 of the instance), `/mnt/c` theirs, exit codes through, `-e` inside systemd,
/// `systemctl --user`, interop from a system service.
fn sessions_are_the_users_inside_systemd(root: &Path) {
    let out = run(
        root,
        &[
            "--",
            "id -un; id -gn; cat /proc/1/comm; stat -c %U:%G /mnt/c; systemctl is-system-running",
        ],
    );
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        &lines[..4],
        &["nixos", "nixos", "systemd", "nixos:nixos"],
        "{text}{}",
        stderr(&out)
    );
    // Nothing failed: with systemd-tmpfiles-setup masked and replaced, nothing that needs
    // what tmpfiles makes broke either.
    assert_eq!(
        lines.get(4),
        Some(&"running"),
        "{text}{}",
        stdout(&run(root, &["--", "systemctl --failed --no-legend"]))
    );
    assert!(
        !stderr(&out).contains("Failed to start the systemd user session"),
        "{}",
        stderr(&out)
    );

    let out = run(root, &["--", "exit 42"]);
    assert_eq!(out.status.code(), Some(42), "{}", stderr(&out));

    // `wsl -u root` reaches root's login shell, init, which gives root's real shell (WSL
    // starts the user by default otherwise: [user] default, or oobe.defaultUid after the
    // OOBE): root, inside systemd, with the command as one argument, the working directory
    // and the exit code kept.
    let out = run(
        root,
        &[
            "-u",
            "root",
            "--cd",
            "/var/tmp",
            "--",
            "id -u; id -un; pwd; cat /proc/1/comm; echo \"$0\"; exit 5",
        ],
    );
    assert_eq!(
        stdout(&out),
        "0\nroot\n/var/tmp\nsystemd\n/bin/bash\n",
        "{}",
        stderr(&out)
    );
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    let out = run(root, &["--", "id -u"]);
    assert_eq!(stdout(&out), "1000\n", "default sessions stay the user's");

    // `wsl -e` (VS Code, Docker Desktop) execs directly: as the user, inside systemd.
    let out = run(
        root,
        &["-e", "sh", "-c", "id -un; cat /proc/1/comm; exit 7"],
    );
    assert_eq!(stdout(&out), "nixos\nsystemd\n", "{}", stderr(&out));
    assert_eq!(out.status.code(), Some(7));

    // systemd-tmpfiles-setup is masked and packer's replacement, which leaves WSL's paths
    // alone, made what tmpfiles.d asks for in the fresh /run, /tmp and /var of this start.
    let out = run(
        root,
        &[
            "--",
            "systemctl is-enabled systemd-tmpfiles-setup.service systemd-tmpfiles-setup-dev.service; \
             systemctl is-active nixos-wsl-tmpfiles-setup.service; \
             stat -c '%n %a %U' /run/sudo /run/lock/subsys /tmp/.ICE-unix /var/tmp /run/user; \
             test -f /run/utmp && echo utmp",
        ],
    );
    assert_eq!(
        stdout(&out),
        "masked\nmasked\nactive\n/run/sudo 711 root\n/run/lock/subsys 755 root\n\
         /tmp/.ICE-unix 1777 root\n/var/tmp 1777 root\n/run/user 755 root\nutmp\n",
        "{}",
        stderr(&out)
    );

    let out = run(root, &["--", "systemctl --user is-active default.target"]);
    assert_eq!(stdout(&out), "active\n", "{}", stderr(&out));

    // A system service reaches Windows interop through what init gave services.
    let out = run(
        root,
        &[
            "-u",
            "root",
            "-e",
            "systemd-run",
            "--wait",
            "--pipe",
            "--quiet",
            "sh",
            "-c",
            "echo ping | socat - UNIX-CONNECT:$WSL_INTEROP",
        ],
    );
    assert_eq!(stdout(&out), "pong\n", "{}", stderr(&out));
}

#[test]
fn a_native_wsl_boots_systemd_after_its_oobe_and_again_after_terminate() {
    require_root();
    let dir = scratch_dir("native-wsl");
    let archive = dir.join("Debian.wsl");
    pack(&archive, &["--name", "Debian"]);
    checks_clean(&archive);
    let distro = Installed::new(&archive, dir.join("installed"));
    let root = distro.root.clone();

    // The archive ships no user with oobe.defaultUid (Microsoft's validator): init adds the
    // held-back user at the first boot.
    let passwd = std::fs::read_to_string(root.join("etc/passwd")).expect("passwd");
    assert!(!passwd.contains("\nnixos:"), "{passwd}");
    assert!(root.join("etc/nixos-wsl/first-boot-account").exists());

    // Before the first interactive start (VS Code's `wsl -e`, `wsl -- CMD`), WSL has run no
    // OOBE and starts root, whose shell, init, drops the session to the user.
    let out = run(&root, &["--", "id -un"]);
    assert_eq!(stdout(&out), "nixos\n", "before the OOBE: {}", stderr(&out));
    let passwd = std::fs::read_to_string(root.join("etc/passwd")).expect("passwd");
    assert_eq!(
        passwd.matches("\nnixos:x:1000:1000:").count(),
        1,
        "the user is added once: {passwd}"
    );
    assert!(!root.join("etc/nixos-wsl/first-boot-account").exists());

    // The first interactive start: the OOBE command runs and exits 0, so WSL makes
    // oobe.defaultUid (the user) the default and runs that same session as the user, inside
    // systemd.
    let out = login(&root, "id -un; cat /proc/1/comm\n");
    assert_eq!(stdout(&out), "nixos\nsystemd\n", "{}", stderr(&out));
    assert!(root.join("var/lib/nixos-wsl/oobe-done").exists());
    sessions_are_the_users_inside_systemd(&root);

    terminate(&root);
    assert_eq!(
        stdout(&run(&root, &["--", "id -un; cat /proc/1/comm"])),
        "nixos\nsystemd\n",
        "the second start is native too"
    );
    sessions_are_the_users_inside_systemd(&root);
}

#[test]
fn a_native_wsl_imported_without_an_oobe_starts_the_user_too() {
    require_root();
    // `wsl --import` of a .wsl never runs the OOBE (WslClient.cpp:314), so oobe.defaultUid
    // never applies and WSL starts root: init (root's shell) drops the session to the user,
    // whom it added at the first boot; the drives are the user's through automount options.
    let dir = scratch_dir("native-wsl-import");
    let archive = dir.join("Debian.wsl");
    pack(&archive, &["--name", "Debian"]);
    let distro = Distro::import(&archive).expect("import");
    let out = distro.run(&["--", "id -un; cat /proc/1/comm; stat -c %U /mnt/c"]);
    assert_eq!(stdout(&out), "nixos\nsystemd\nnixos\n", "{}", stderr(&out));
    // Root is reached past root's shell (README: `wsl -u root -e`, or the OOBE command run
    // once, after which `wsl -u root` is root).
    let out = distro.run(&["-u", "root", "-e", "id", "-un"]);
    assert_eq!(stdout(&out), "root\n", "{}", stderr(&out));
}

#[test]
fn a_native_rootfs_boots_systemd_as_the_user_and_again_after_terminate() {
    require_root();
    let dir = scratch_dir("native-rootfs");
    let archive = dir.join("rootfs.tar.gz");
    pack(&archive, &["--format", "rootfs", "--systemd", "native"]);
    checks_clean(&archive);
    let distro = Distro::import(&archive).expect("import");
    sessions_are_the_users_inside_systemd(distro.dir());
    distro.terminate();
    sessions_are_the_users_inside_systemd(distro.dir());
}

#[test]
fn wrapper_mode_gives_mnt_c_to_the_user_through_automount_options() {
    require_root();
    let dir = scratch_dir("native-wrapper-drives");
    let archive = dir.join("rootfs.tar.gz");
    pack(&archive, &["--format", "rootfs"]);
    let distro = Distro::import(&archive).expect("import");
    // WSL starts root (root's shell is init); without the options drvfs would be root's.
    let out = distro.run(&["-u", "root", "-e", "stat", "-c", "%u:%g", "/mnt/c"]);
    assert_eq!(stdout(&out), "1000:1000\n", "{}", stderr(&out));
    let out = distro.run(&["--", "id -un; stat -c %U /mnt/c; touch /mnt/c/mine"]);
    assert_eq!(stdout(&out), "nixos\nnixos\n", "{}", stderr(&out));
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn a_native_payload_of_the_installer_boots_natively_from_the_next_start() {
    require_root();
    let dir = scratch_dir("native-installer");
    let archive = dir.join("installer.tar.gz");
    pack(&archive, &["--systemd", "native"]);
    checks_clean(&archive);
    let distro = Distro::import(&archive).expect("import");
    // The first session started before the payload existed, so without WSL's systemd: the
    // installer hands it to init, which starts systemd in namespaces of its own (wrapper).
    let out = distro.run(&["--", "id -un; cat /proc/1/comm"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("nixos\n"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    // The next instance reads the payload's wsl.conf: native.
    distro.terminate();
    sessions_are_the_users_inside_systemd(distro.dir());
}
