//! The test data itself: the NixOS-shaped test rootfs (scripts/lib/nixos-shape, via
//! `scripts/make-test-rootfs nixos`) and the large store generator (scripts/make-nix-store).
//! Other areas' tests and benchmarks rely on these shapes; these tests pin them down.
//!
//! The NixOS tree comes from `TEST_ROOTFS_NIXOS` (scripts/test exports it).

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const NIX_BASE32: &str = "0123456789abcdfghijklmnpqrsvwxyz";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate lives in the workspace")
        .to_path_buf()
}

fn nixos_rootfs() -> PathBuf {
    let path = std::env::var_os("TEST_ROOTFS_NIXOS").unwrap_or_else(|| {
        panic!(
            "TEST_ROOTFS_NIXOS is not set: run scripts/test, or export \
             TEST_ROOTFS_NIXOS=$(scripts/make-test-rootfs nixos)"
        )
    });
    let path = PathBuf::from(path);
    assert!(
        path.join("etc").is_dir(),
        "TEST_ROOTFS_NIXOS={} is not a root filesystem",
        path.display()
    );
    path
}

fn require_root() {
    let uid = fs::metadata("/proc/self").expect("/proc is mounted").uid();
    assert_eq!(
        uid, 0,
        "this test needs root (chroot, the tree's owners): run it as root"
    );
}

/// A fresh directory of this test's own under /var/tmp (tests run in parallel), removed when
/// the test ends, passed or failed.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = PathBuf::from(format!(
            "/var/tmp/wsl-sim-tests/test-data-{}-{name}",
            std::process::id()
        ));
        remove(&dir);
        fs::create_dir_all(&dir).expect("scratch dir");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        remove(&self.0);
    }
}

/// Removes a tree even when it holds read-only store directories.
fn remove(dir: &Path) {
    if dir.symlink_metadata().is_ok() {
        let status = Command::new("sh")
            .arg("-c")
            .arg("chmod -R u+w \"$1\" 2>/dev/null; rm -rf \"$1\"")
            .arg("sh")
            .arg(dir)
            .status()
            .expect("sh");
        assert!(status.success(), "could not remove {}", dir.display());
    }
}

/// Where PATH (absolute, as seen inside the tree) leads inside ROOT, following symlinks the way
/// the tree's own processes would (absolute targets are relative to ROOT).
fn resolve_in(root: &Path, path: &str) -> PathBuf {
    wsl_sim::sim::import::resolve_in(root, path)
        .unwrap_or_else(|| panic!("symlink loop resolving {path}"))
}

fn is_store_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    bytes.len() > 33 && bytes[32] == b'-' && name[..32].chars().all(|c| NIX_BASE32.contains(c))
}

/// Every entry under DIR (relative path -> metadata), not following symlinks.
fn walk(dir: &Path) -> BTreeMap<PathBuf, fs::Metadata> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        for entry in fs::read_dir(&folder).expect("read_dir") {
            let entry = entry.expect("dir entry");
            let meta = entry.path().symlink_metadata().expect("lstat");
            if meta.is_dir() {
                stack.push(entry.path());
            }
            let relative = entry
                .path()
                .strip_prefix(dir)
                .expect("inside")
                .to_path_buf();
            out.insert(relative, meta);
        }
    }
    out
}

/// Store modes and times: files 0444/0555, directories 0555, everything mtime 1 (the store
/// itself and .links are Nix's own folders and excluded).
fn assert_store_metadata(store: &Path) {
    let mut checked = 0;
    for (path, meta) in walk(store) {
        if path.as_os_str() == ".links" {
            continue;
        }
        let mode = meta.permissions().mode() & 0o7777;
        let kind = meta.file_type();
        if kind.is_dir() {
            assert_eq!(mode, 0o555, "{}: directory mode {mode:o}", path.display());
        } else if kind.is_file() {
            assert!(
                mode == 0o444 || mode == 0o555,
                "{}: file mode {mode:o}",
                path.display()
            );
        }
        assert_eq!(
            meta.mtime(),
            1,
            "{}: mtime {}",
            path.display(),
            meta.mtime()
        );
        checked += 1;
    }
    assert!(
        checked > 10,
        "only {checked} entries in {}",
        store.display()
    );
}

/// Files in the store with more than one name, and that each .links entry is one of them.
fn assert_optimised(store: &Path) -> usize {
    let links = walk(&store.join(".links"));
    assert!(!links.is_empty(), "{}/.links is empty", store.display());
    let mut by_inode: BTreeMap<u64, usize> = BTreeMap::new();
    for (path, meta) in walk(store) {
        if meta.is_file() && !path.starts_with(".links") {
            *by_inode.entry(meta.ino()).or_default() += 1;
        }
    }
    for (name, meta) in &links {
        let name = name.to_string_lossy();
        assert_eq!(name.len(), 52, ".links/{name}: not 52 characters");
        assert!(
            name.chars().all(|c| NIX_BASE32.contains(c)),
            ".links/{name}"
        );
        assert!(
            by_inode.contains_key(&meta.ino()),
            ".links/{name} is no store file's inode"
        );
    }
    let shared = by_inode.values().filter(|&&names| names > 1).count();
    assert!(
        shared > 0,
        "no store file has two names in {}",
        store.display()
    );
    shared
}

// ---------------------------------------------------------------------------------------------
// The NixOS-shaped test rootfs

fn system_path(root: &Path) -> String {
    let profiles = root.join("nix/var/nix/profiles");
    assert_eq!(
        fs::read_link(profiles.join("system")).expect("profiles/system is a symlink"),
        Path::new("system-1-link")
    );
    let system = fs::read_link(profiles.join("system-1-link")).expect("system-1-link");
    let system = system.to_string_lossy().into_owned();
    let name = system
        .strip_prefix("/nix/store/")
        .unwrap_or_else(|| panic!("system-1-link -> {system}: not a store path"));
    assert!(
        is_store_name(name),
        "{name}: not <32 chars of nix base32>-name"
    );
    assert!(
        name[33..].starts_with("nixos-system-nixos-24.11"),
        "{name}: not a NixOS 24.11 system"
    );
    system
}

#[test]
fn nixos_rootfs_has_store_paths_and_a_system_profile() {
    let root = nixos_rootfs();
    let system = system_path(&root);
    let names: Vec<String> = fs::read_dir(root.join("nix/store"))
        .expect("/nix/store")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name != ".links")
        .collect();
    assert!(names.len() >= 5, "store paths: {names:?}");
    for name in &names {
        assert!(
            is_store_name(name),
            "/nix/store/{name}: not a store path name"
        );
    }
    for package in ["-systemd-", "-bash-", "-etc", "-system-path"] {
        assert!(
            names.iter().any(|n| n.contains(package)),
            "no {package} store path in {names:?}"
        );
    }

    // systemd at NixOS's path, once /run/current-system exists, is Debian's real systemd.
    let systemd = resolve_in(&root, &format!("{system}/systemd/lib/systemd/systemd"));
    let head = fs::read(&systemd).expect("systemd through the system path");
    assert_eq!(&head[..4], b"\x7fELF", "{}", systemd.display());
    let bash = resolve_in(&root, &format!("{system}/sw/bin/bash"));
    assert!(
        bash.starts_with(root.join("nix/store")),
        "sw/bin/bash -> {}",
        bash.display()
    );
    assert_eq!(&fs::read(&bash).expect("bash")[..4], b"\x7fELF");

    let os_release =
        fs::read_to_string(resolve_in(&root, "/etc/os-release")).expect("/etc/os-release");
    assert!(os_release.lines().any(|l| l == "ID=nixos"), "{os_release}");
    assert!(root.join("etc/NIXOS").is_file(), "/etc/NIXOS marker");
}

#[test]
fn nixos_rootfs_has_activate_and_no_sbin_init() {
    let root = nixos_rootfs();
    let system = system_path(&root);
    let activate = resolve_in(&root, "/nix/var/nix/profiles/system/activate");
    assert_eq!(activate, resolve_in(&root, &format!("{system}/activate")));
    let meta = activate.symlink_metadata().expect("activate exists");
    assert!(meta.is_file(), "activate is a regular file");
    assert_eq!(meta.permissions().mode() & 0o7777, 0o555, "activate mode");
    let script = fs::read_to_string(&activate).expect("activate");
    assert!(script.starts_with("#!/bin/sh\n"), "{script}");
    assert!(script.contains("/run/current-system"), "{script}");

    for path in ["/sbin/init", "/usr/sbin/init"] {
        let host = resolve_in(&root, path);
        assert!(
            host.symlink_metadata().is_err(),
            "{path} exists ({}): NixOS has none",
            host.display()
        );
    }
    assert!(
        root.join("run/current-system").symlink_metadata().is_err(),
        "/run/current-system must not be in the tree (activate makes it)"
    );
}

#[test]
fn nixos_rootfs_store_has_nix_modes_times_and_hard_links() {
    let root = nixos_rootfs();
    let store = root.join("nix/store");
    let meta = store.metadata().expect("/nix/store");
    assert_eq!(
        meta.permissions().mode() & 0o7777,
        0o1775,
        "/nix/store mode"
    );
    assert_store_metadata(&store);
    assert_optimised(&store);
}

fn chroot(root: &Path, command: &str) -> Output {
    Command::new("chroot")
        .arg(root)
        .args(["/bin/sh", "-c", command])
        .output()
        .expect("chroot")
}

#[test]
fn nixos_activate_creates_current_system_and_logs_each_run() {
    require_root();
    let source = nixos_rootfs();
    let scratch = Scratch::new("activate");
    let dir = &scratch.0;
    let root = dir.join("root");
    let status = Command::new("cp")
        .args(["-a", "--"])
        .arg(&source)
        .arg(&root)
        .status()
        .expect("cp");
    assert!(status.success(), "cp -a {}", source.display());
    fs::create_dir_all(root.join("etc/nixos-test")).expect("etc/nixos-test");
    fs::write(root.join("etc/nixos-test/activation-delay"), "0\n").expect("delay");
    let system = system_path(&root);

    for run in 1..=2 {
        let out = chroot(&root, "/nix/var/nix/profiles/system/activate");
        assert!(
            out.status.success(),
            "activate run {run}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            fs::read_link(root.join("run/current-system")).expect("/run/current-system"),
            Path::new(&system)
        );
        let log = fs::read_to_string(root.join("run/nixos-activation.log")).expect("log");
        assert_eq!(log.lines().count(), run, "one log line per run: {log}");
    }
    let out = chroot(
        &root,
        "test -x /run/current-system/systemd/lib/systemd/systemd && readlink -f /run/current-system/systemd/lib/systemd/systemd",
    );
    assert!(
        out.status.success(),
        "systemd not executable through /run/current-system"
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "/usr/lib/systemd/systemd"
    );
}

// ---------------------------------------------------------------------------------------------
// scripts/make-nix-store

fn make_nix_store(args: &[&str]) -> Output {
    Command::new(repo().join("scripts/make-nix-store"))
        .args(args)
        .output()
        .expect("scripts/make-nix-store runs (python3 needed)")
}

fn generate(out: &Path, size: &str, seed: &str) -> String {
    let result = make_nix_store(&["--size", size, "--seed", seed, out.to_str().expect("utf-8")]);
    let stderr = String::from_utf8_lossy(&result.stderr).into_owned();
    assert!(result.status.success(), "make-nix-store failed: {stderr}");
    assert_eq!(
        String::from_utf8_lossy(&result.stdout).trim(),
        out.to_str().expect("utf-8"),
        "prints the tree's path on stdout"
    );
    stderr
}

/// type, mode, link count, mtime, size, link target and contents of every entry.
fn listing(root: &Path) -> Vec<String> {
    walk(root)
        .into_iter()
        .map(|(path, meta)| {
            let host = root.join(&path);
            let detail = if meta.is_file() {
                let data = fs::read(&host).expect("read");
                format!("{:016x}", fnv1a(&data))
            } else if meta.file_type().is_symlink() {
                fs::read_link(&host)
                    .expect("readlink")
                    .display()
                    .to_string()
            } else {
                String::new()
            };
            format!(
                "{} {:o} {} {} {} {detail}",
                path.display(),
                meta.mode(),
                meta.nlink(),
                meta.mtime(),
                if meta.is_dir() { 0 } else { meta.len() },
            )
        })
        .collect()
}

/// A content fingerprint (the crate has no hashing dependency; collisions would need an
/// adversary, and the generator is not one).
fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[test]
fn make_nix_store_is_deterministic_and_reuses_its_output() {
    let scratch = Scratch::new("store-determinism");
    let dir = &scratch.0;
    let (a, b, c) = (dir.join("a"), dir.join("b"), dir.join("c"));
    generate(&a, "6M", "7");
    generate(&b, "6M", "7");
    generate(&c, "6M", "8");
    let listing_a = listing(&a);
    assert_eq!(
        listing_a,
        listing(&b),
        "same size and seed, different trees"
    );
    assert_ne!(listing_a, listing(&c), "another seed gave the same tree");

    let again = generate(&a, "6M", "7");
    assert!(again.contains("reusing"), "second run regenerated: {again}");
    assert_eq!(listing_a, listing(&a));
}

#[test]
fn make_nix_store_has_the_shape_of_an_optimised_store() {
    let scratch = Scratch::new("store-shape");
    let dir = &scratch.0;
    let root = dir.join("store");
    let summary = generate(&root, "12M", "0");
    assert!(summary.contains("hard-link names"), "summary: {summary}");
    let store = root.join("nix/store");
    assert_store_metadata(&store);
    let shared = assert_optimised(&store);
    assert!(shared >= 5, "only {shared} hard-linked files");

    let entries = walk(&root);
    let data: u64 = {
        let mut seen = std::collections::BTreeSet::new();
        entries
            .values()
            .filter(|m| m.is_file() && seen.insert(m.ino()))
            .map(|m| m.len())
            .sum()
    };
    assert!(data >= 12 << 20, "{data} bytes of data for --size 12M");
    let symlinks: Vec<PathBuf> = entries
        .iter()
        .filter(|(_, m)| m.file_type().is_symlink())
        .map(|(p, _)| root.join(p))
        .collect();
    assert!(symlinks.len() > 20, "{} symlinks", symlinks.len());
    assert!(
        symlinks
            .iter()
            .any(|p| fs::read_link(p).expect("readlink").as_os_str().len() > 100),
        "no symlink target over 100 bytes"
    );
    assert!(
        entries
            .keys()
            .any(|p| p.file_name().is_some_and(|name| name.len() > 100)),
        "no file name over 100 bytes"
    );
    for path in entries.keys() {
        if let Ok(name) = path.strip_prefix("nix/store") {
            let Some(top) = name.iter().next() else {
                continue; // /nix/store itself
            };
            let top = top.to_string_lossy();
            assert!(
                top == ".links" || is_store_name(&top),
                "/nix/store/{top}: not a store path name"
            );
        }
    }

    // The profile: system -> system-3-link -> a system whose activate and sw exist.
    let profiles = root.join("nix/var/nix/profiles");
    assert_eq!(
        fs::read_link(profiles.join("system")).expect("profile link"),
        Path::new("system-3-link")
    );
    let system = fs::read_link(profiles.join("system-3-link")).expect("generation link");
    let system = system.to_string_lossy();
    assert!(system.contains("-nixos-system-nixos-24.11"), "{system}");
    assert!(resolve_in(&root, &format!("{system}/activate")).is_file());
    assert!(resolve_in(&root, &format!("{system}/sw/bin/bash")).is_file());
    assert!(resolve_in(&root, "/bin/sh").is_file(), "/bin/sh");
    assert!(fs::read_to_string(resolve_in(&root, "/etc/os-release"))
        .expect("os-release")
        .contains("ID=nixos"));
}

#[test]
fn make_nix_store_refuses_bad_input_and_foreign_folders() {
    let scratch = Scratch::new("store-bad-input");
    let dir = &scratch.0;
    let out = dir.join("out");
    let result = make_nix_store(&["--size", "12Q", out.to_str().expect("utf-8")]);
    assert!(!result.status.success());
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(stderr.contains("--size '12Q'"), "{stderr}");
    assert!(!out.exists(), "bad input left {}", out.display());

    let foreign = dir.join("foreign");
    fs::create_dir(&foreign).expect("mkdir");
    fs::write(foreign.join("precious"), "keep me").expect("write");
    let result = make_nix_store(&["--size", "4M", foreign.to_str().expect("utf-8")]);
    assert!(
        !result.status.success(),
        "overwrote a folder it did not make"
    );
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(stderr.contains("not made by make-nix-store"), "{stderr}");
    assert_eq!(
        fs::read_to_string(foreign.join("precious")).expect("kept"),
        "keep me"
    );
    let leftovers: Vec<_> = fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "left behind: {leftovers:?}");
}
