//! The aarch64 builds (Windows on ARM), run under qemu-user: `init` and `installer` answer
//! their command lines and exit codes as the x86-64 ones do, and the aarch64 installer turns
//! an arm64 Debian installer distribution into exactly the packed tree.
//!
//! qemu-aarch64-static runs the binaries directly where that is enough; the installer test
//! runs in scripts/lib/with-arm64-emulation, which registers qemu in a binfmt_misc instance of
//! the test's own user namespace, so the host's binfmt_misc (and a WSLInterop entry) is never
//! touched.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use wsl_sim::{dist_bin, host_sh, require_root, rootfs, scratch_dir, text, Variant};

const EM_AARCH64: u16 = 0xb7;

fn qemu() -> PathBuf {
    let path = PathBuf::from("/usr/bin/qemu-aarch64-static");
    assert!(
        path.is_file(),
        "{} is missing: scripts/lib/prerequisites installs qemu-user-static",
        path.display()
    );
    path
}

fn arm_bin(name: &str) -> PathBuf {
    dist_bin(&format!("aarch64/{name}"))
}

/// Runs an aarch64 binary under qemu-user with `args`.
fn emulated(bin: &Path, args: &[&str]) -> Output {
    Command::new(qemu())
        .arg(bin)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {} under qemu: {e}", bin.display()))
}

/// The ELF machine of a file (e_machine, little-endian at offset 18).
fn elf_machine(path: &Path) -> u16 {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&bytes[..4], b"\x7fELF", "{} is not ELF", path.display());
    u16::from_le_bytes([bytes[18], bytes[19]])
}

#[test]
fn aarch64_init_and_installer_are_aarch64_and_within_the_size_budgets() {
    for (name, budget) in [("init", 300 * 1024), ("installer", 400 * 1024)] {
        let bin = arm_bin(name);
        assert_eq!(
            elf_machine(&bin),
            EM_AARCH64,
            "{} is not aarch64",
            bin.display()
        );
        let size = fs::metadata(&bin).map(|m| m.len()).unwrap_or(u64::MAX);
        assert!(
            size <= budget,
            "{}: {size} bytes, budget {budget}",
            bin.display()
        );
    }
}

#[test]
fn aarch64_init_answers_its_command_line_like_the_x86_64_one() {
    let init = arm_bin("init");
    let native = dist_bin("init");
    for args in [
        &["--version"][..],
        &["--help"],
        &["status", "extra"],
        &["-h"],
    ] {
        let arm = emulated(&init, args);
        let x86 = Command::new(&native)
            .args(args)
            .output()
            .expect("init runs");
        assert_eq!(
            arm.status.code(),
            x86.status.code(),
            "init {args:?}: aarch64 {:?} vs x86-64 {:?}",
            text(&arm),
            text(&x86)
        );
        assert_eq!(arm.stdout, x86.stdout, "init {args:?}: different output");
    }
    let usage = emulated(&init, &["status", "extra"]);
    assert_eq!(
        usage.status.code(),
        Some(2),
        "usage error: {:?}",
        text(&usage)
    );
}

#[test]
fn aarch64_installer_answers_its_command_line_like_the_x86_64_one() {
    let installer = arm_bin("installer");
    let native = dist_bin("installer");
    for args in [&["--version"][..], &["--help"], &["--root"]] {
        let arm = emulated(&installer, args);
        let x86 = Command::new(&native)
            .args(args)
            .output()
            .expect("installer runs");
        assert_eq!(
            arm.status.code(),
            x86.status.code(),
            "installer {args:?}: aarch64 {:?} vs x86-64 {:?}",
            text(&arm),
            text(&x86)
        );
        assert_eq!(
            arm.stdout, x86.stdout,
            "installer {args:?}: different output"
        );
    }
    let usage = emulated(&installer, &["--root"]);
    assert_eq!(
        usage.status.code(),
        Some(2),
        "usage error: {:?}",
        text(&usage)
    );
}

/// `path mode owner target/size` of every entry under `root`, sorted, without what WSL or
/// the installer own (/dev, /proc, /sys, /mnt, /nixos-wsl).
fn listing(root: &Path) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(
            "cd \"$1\" && { \
             find . -path ./dev -prune -o -path ./proc -prune -o -path ./sys -prune -o -path ./mnt -prune \
               -o -path ./nixos-wsl -prune \
               -o -type d -printf '%p %m %U:%G dir\\n'; \
             find . -path ./dev -prune -o -path ./proc -prune -o -path ./sys -prune -o -path ./mnt -prune \
               -o -path ./nixos-wsl -prune \
               -o ! -type d -printf '%p %m %U:%G %y %s %l\\n'; } | LC_ALL=C sort",
        )
        .arg("sh")
        .arg(root)
        .output()
        .expect("find runs");
    assert!(
        out.status.success(),
        "listing {}: {:?}",
        root.display(),
        text(&out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn first_differences(a: &str, b: &str) -> String {
    let la: Vec<&str> = a.lines().collect();
    let lb: Vec<&str> = b.lines().collect();
    let mut d: Vec<String> = la
        .iter()
        .filter(|l| !lb.contains(l))
        .map(|l| format!("- {l}"))
        .collect();
    d.extend(
        lb.iter()
            .filter(|l| !la.contains(l))
            .map(|l| format!("+ {l}")),
    );
    d.truncate(20);
    d.join("\n")
}

#[test]
fn aarch64_installer_installs_an_arm64_debian_exactly() {
    require_root();
    let tree = rootfs(Variant::DebianArm64);
    assert_eq!(
        elf_machine(&tree.join("usr/bin/bash")),
        EM_AARCH64,
        "the arm64 test tree's bash is not aarch64"
    );
    let dir = scratch_dir("aarch64-installer");
    let archive = dir.join("nixos-wsl-installer.tar.gz");
    let out = Command::new(dist_bin("packer"))
        .args(["--quiet", "--rootfs"])
        .arg(&tree)
        .arg("--out")
        .arg(&archive)
        .arg("--init")
        .arg(arm_bin("init"))
        .arg("--installer")
        .arg(arm_bin("installer"))
        .arg("--default-user")
        .arg("nixos")
        .output()
        .expect("packer runs");
    assert!(out.status.success(), "packer: {:?}", text(&out));

    // What the payload holds, extracted as WSL would extract the rootfs format.
    let expected = dir.join("expected");
    let base = dir.join("base");
    fs::create_dir_all(&expected).expect("mkdir");
    fs::create_dir_all(&base).expect("mkdir");
    host_sh(&format!(
        "bsdtar -xOf {a} nixos-wsl/rootfs.tar.gz | bsdtar -C {e} -x -p --xattrs --numeric-owner -f -
         bsdtar -C {b} -x -p --xattrs --numeric-owner -f {a}",
        a = archive.display(),
        e = expected.display(),
        b = base.display()
    ));

    // The aarch64 installer, emulated, installs into the extracted installer distribution. It
    // runs under qemu-user directly, as real root: in --root mode it execs nothing, and in a user
    // namespace the kernel would strip setuid bits on every write (CAP_FSETID is checked in the
    // initial namespace), which real WSL never does.
    let out = emulated(
        &arm_bin("installer"),
        &["--root", &base.display().to_string()],
    );
    assert!(
        out.status.success(),
        "the aarch64 installer failed: {:?}",
        text(&out)
    );
    let (want, got) = (listing(&expected), listing(&base));
    assert!(
        want == got,
        "installed tree differs from the payload:\n{}",
        first_differences(&want, &got)
    );
    assert_eq!(
        elf_machine(&base.join("usr/libexec/nixos-wsl/init")),
        EM_AARCH64,
        "init in the installed tree is not the aarch64 one"
    );
}

fn pack(tree: &Path, out: &Path, extra: &[&str]) -> Output {
    Command::new(dist_bin("packer"))
        .args(["--quiet", "--format", "rootfs", "--rootfs"])
        .arg(tree)
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .expect("packer runs")
}

fn check(archive: &Path, extra: &[&str]) -> Output {
    Command::new(dist_bin("packer"))
        .arg("check")
        .args(extra)
        .arg(archive)
        .output()
        .expect("packer check runs")
}

#[test]
fn packer_takes_the_trees_architecture_and_refuses_a_mismatch() {
    require_root();
    let tree = rootfs(Variant::DebianArm64);
    let dir = scratch_dir("aarch64-packer-arch");
    let archive = dir.join("arm64.tar.gz");

    // No --arch, no --init: the tree's /bin/sh says aarch64, so packer adds aarch64/init.
    let out = pack(&tree, &archive, &[]);
    assert!(out.status.success(), "packer: {:?}", text(&out));
    let init = dir.join("init");
    host_sh(&format!(
        "bsdtar -xOf {} usr/libexec/nixos-wsl/init > {}",
        archive.display(),
        init.display()
    ));
    assert_eq!(
        elf_machine(&init),
        EM_AARCH64,
        "packer added a non-aarch64 init"
    );
    let ok = check(&archive, &[]);
    assert!(ok.status.success(), "check: {:?}", text(&ok));
    let ok = check(&archive, &["--arch", "aarch64"]);
    assert!(ok.status.success(), "check --arch aarch64: {:?}", text(&ok));

    // Checked as an x86-64 archive (the validator without --arm64): each program named.
    let wrong = check(&archive, &["--arch", "x86_64"]);
    let (stdout, _) = text(&wrong);
    assert_eq!(wrong.status.code(), Some(1), "{stdout}");
    for what in ["/bin/sh", "/bin/bash", "/usr/libexec/nixos-wsl/init"] {
        assert!(
            stdout.contains(&format!("error: {what}"))
                && stdout.contains("is aarch64, but the archive is x86-64"),
            "check does not name {what}: {stdout}"
        );
    }

    // The x86-64 init into an aarch64 tree, or --arch against the tree: refused, no output.
    let mismatch = dir.join("mismatch.tar.gz");
    let init_x86 = dist_bin("init");
    for extra in [
        vec!["--init", init_x86.to_str().unwrap_or_default()],
        vec!["--arch", "x86_64"],
    ] {
        let out = pack(&tree, &mismatch, &extra);
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(1), "packer {extra:?}: {stderr}");
        assert!(
            stderr.contains("x86-64") && stderr.contains("aarch64"),
            "packer {extra:?} does not say which architectures clash: {stderr}"
        );
        assert!(!mismatch.exists(), "packer {extra:?} left an archive");
    }
}
