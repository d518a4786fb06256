//! The installer in the WSL simulator: a packer-made installer distribution is imported like
//! `wsl --import`, the first `run -- CMD` installs the payload, hands over to init and returns
//! CMD's output and exit code, and the next run goes straight to init. The installer's own
//! exact-tree, kill-point and bad-payload tests run without the simulator in
//! installer/tests/install.rs (`installer --root DIR`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use wsl_sim::{dist_bin, require_root, rootfs, scratch_dir, text, Distro, Variant};

const INIT: &str = "/usr/libexec/nixos-wsl/init";

/// Packs `tree` into an installer distribution with `init` as the init binary.
fn installer_tarball(tree: &Path, init: &Path, dir: &Path) -> PathBuf {
    let out = dir.join("installer.tar.gz");
    let result = Command::new(dist_bin("packer"))
        .args(["--quiet", "--rootfs"])
        .arg(tree)
        .arg("--out")
        .arg(&out)
        .arg("--init")
        .arg(init)
        .arg("--installer")
        .arg(dist_bin("installer"))
        .output()
        .expect("packer runs");
    assert!(
        result.status.success(),
        "packer failed: {}",
        String::from_utf8_lossy(&result.stderr)
    );
    out
}

/// Until init boots systemd, a stand-in at INIT that just runs bash with the same arguments
/// checks the installer's hand-over on its own (argv kept, exit code passed through).
fn stand_in_init(dir: &Path) -> PathBuf {
    let path = dir.join("stand-in-init");
    fs::write(
        &path,
        "#!/bin/bash\necho \"stand-in init: $0 $*\" >&2\nexec /bin/bash \"$@\"\n",
    )
    .expect("write");
    let status = Command::new("chmod")
        .arg("0755")
        .arg(&path)
        .status()
        .expect("chmod");
    assert!(status.success());
    path
}

#[test]
fn first_start_installs_and_hands_over_second_start_goes_straight_to_init() {
    require_root();
    let dir = scratch_dir("installer-first-start");
    let tarball = installer_tarball(&rootfs(Variant::Debian), &stand_in_init(&dir), &dir);
    let distro =
        Distro::import(&tarball).expect("the installer distribution imports like wsl --import");
    let out = distro.run(&["--", "echo first-start-output; exit 7"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(7),
        "CMD's exit code comes back: {stderr}"
    );
    assert_eq!(stdout.trim(), "first-start-output", "{stderr}");
    assert!(
        stderr.contains("installer: verified") && stderr.contains("stand-in init:"),
        "{stderr}"
    );
    let passwd = fs::read_to_string(distro.path("/etc/passwd")).expect("passwd");
    assert!(
        passwd.starts_with(&format!("root:x:0:0:root:/root:{INIT}\n")),
        "{passwd}"
    );
    assert!(
        !distro.path("/nixos-wsl").exists(),
        "the installer and payload are gone"
    );
    assert!(
        distro.path("/usr/bin/apt-get").exists(),
        "the payload is installed"
    );

    let out = distro.run(&["--", "echo second; exit 3"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert_eq!(stdout.trim(), "second");
    assert!(
        !stderr.contains("installer:"),
        "the second start does not run the installer: {stderr}"
    );
    distro.terminate();
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn started_as_sh_it_installs_then_runs_the_new_systems_sh() {
    require_root();
    let dir = scratch_dir("installer-as-sh");
    let tarball = installer_tarball(&rootfs(Variant::Debian), &stand_in_init(&dir), &dir);
    let distro = Distro::import(&tarball).expect("import");
    let out = distro.run(&[
        "-e",
        "/bin/sh",
        "-c",
        "echo via-sh; readlink /bin/sh; exit 4",
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert_eq!(
        stdout, "via-sh\ndash\n",
        "the new /bin/sh ran the command: {stderr}"
    );
    assert!(!distro.path("/nixos-wsl").exists());
    distro.terminate();
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn two_first_starts_at_once_both_get_their_command_run() {
    require_root();
    let dir = scratch_dir("installer-two-starts");
    let tarball = installer_tarball(&rootfs(Variant::Debian), &stand_in_init(&dir), &dir);
    let distro = Distro::import(&tarball).expect("import");
    let start = |word: &str| {
        distro
            .command()
            .args(["--", &format!("echo {word}")])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("wsl-sim run starts")
    };
    let (a, b) = (start("one"), start("two"));
    for (child, word) in [(a, "one"), (b, "two")] {
        let out = child.wait_with_output().expect("wait");
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{word}: {stderr}");
        assert_eq!(stdout.trim(), word, "{stderr}");
    }
    assert!(!distro.path("/nixos-wsl").exists());
    distro.terminate();
    let _ = fs::remove_dir_all(&dir);
}

/// The installer format of `variant` with the real init, imported and started in the
/// simulator, which mounts the kernel modules, GPU shares and WSLg folders into the installer
/// distribution and writes its links and files first, as WSL does at every start: the first
/// start installs over them and runs CMD inside systemd, a later one finds systemd up.
fn first_start_with_the_real_init(variant: Variant, name: &str) {
    require_root();
    let dir = scratch_dir(name);
    let tarball = installer_tarball(&rootfs(variant), &dist_bin("init"), &dir);
    let distro = Distro::import(&tarball).expect("import");
    let out = distro.run(&["--", "cat /proc/1/comm; exit 5"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    assert_eq!(
        stdout.trim(),
        "systemd",
        "CMD runs in systemd's PID namespace: {stderr}"
    );
    let out = distro.run(&["--", "systemctl is-system-running --wait || true"]);
    let (stdout, _) = text(&out);
    assert!(
        stdout.contains("running") || stdout.contains("degraded"),
        "{stdout}"
    );
    distro.terminate();
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn first_start_with_the_real_init_runs_the_command_inside_systemd() {
    first_start_with_the_real_init(Variant::Debian, "installer-real-init");
}

#[test]
fn the_nixos_installer_format_installs_over_wsls_mounts_and_boots_systemd() {
    first_start_with_the_real_init(Variant::Nixos, "installer-real-init-nixos");
}
