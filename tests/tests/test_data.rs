//! The test data itself: the faithful NixOS test system (scripts/lib/nixos-system, via
//! `scripts/make-test-rootfs nixos`, `nixos-stock`, `nixos-tarball`, `nixos-tarball-xz`) and
//! the large store generator (scripts/make-nix-store). Other areas' tests and benchmarks rely
//! on these shapes; these tests pin them down.
//!
//! The trees come from `TEST_ROOTFS_NIXOS*` (scripts/test exports them).

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
        let top = std::env::var_os("WSL_SIM_TESTS_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/var/tmp/wsl-sim-tests"));
        let dir = top.join(format!("test-data-{}-{name}", std::process::id()));
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
// The faithful system's profile (what the retired NixOS-shaped tree's tests checked and the
// faithful ones above and below do not)

/// The system the profile points to, checked on the way: `system -> system-1-link ->
/// /nix/store/<32 chars>-nixos-system-nixos-24.11...`, as nixos-install leaves it.
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
fn faithful_nixos_profile_leads_to_the_systems_activate_and_nothing_is_activated_yet() {
    let root = wsl_sim::rootfs(wsl_sim::Variant::Nixos);
    let system = system_path(&root);
    let activate = resolve_in(&root, "/nix/var/nix/profiles/system/activate");
    assert_eq!(activate, resolve_in(&root, &format!("{system}/activate")));
    let meta = activate.symlink_metadata().expect("activate exists");
    assert!(meta.is_file(), "activate is a regular file");
    assert_eq!(meta.permissions().mode() & 0o7777, 0o555, "activate mode");
    let script = fs::read_to_string(&activate).expect("activate");
    assert!(script.starts_with("#!/nix/store/"), "{script}");
    assert!(script.contains("/run/current-system"), "{script}");
    // The systemd init looks for exists through the system before any activation.
    let systemd = resolve_in(&root, &format!("{system}/systemd/lib/systemd/systemd"));
    assert_eq!(&fs::read(&systemd).expect("systemd")[..4], b"\x7fELF");
    // /run is empty in the tree: activation makes /run/current-system at every start.
    for path in ["run/current-system", "run/booted-system"] {
        assert!(
            root.join(path).symlink_metadata().is_err(),
            "/{path} must not be in the tree (activate makes it)"
        );
    }
    assert_eq!(
        fs::read_dir(root.join("run")).expect("/run").count(),
        0,
        "/run is not empty"
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

// ---------------------------------------------------------------------------------------------
// The faithful NixOS test system (nixos, nixos-stock, nixos-tarball, nixos-tarball-xz)

use wsl_sim::Variant;

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The ELF interpreter (PT_INTERP) of an x86-64 executable, if it has one.
fn elf_interpreter(data: &[u8]) -> Option<String> {
    let u16_at = |at: usize| u16::from_le_bytes([data[at], data[at + 1]]) as usize;
    let u64_at = |at: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&data[at..at + 8]);
        u64::from_le_bytes(b) as usize
    };
    assert_eq!(&data[..4], b"\x7fELF", "not an ELF file");
    let (phoff, phentsize, phnum) = (u64_at(0x20), u16_at(0x36), u16_at(0x38));
    (0..phnum).find_map(|i| {
        let ph = phoff + i * phentsize;
        let kind = u32::from_le_bytes([data[ph], data[ph + 1], data[ph + 2], data[ph + 3]]);
        (kind == 3).then(|| {
            let (off, size) = (u64_at(ph + 8), u64_at(ph + 32));
            String::from_utf8_lossy(&data[off..off + size])
                .trim_end_matches('\0')
                .to_owned()
        })
    })
}

fn read_text(root: &Path, path: &str) -> String {
    fs::read_to_string(resolve_in(root, path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// NAME's /etc/passwd line as fields.
fn passwd_entry(root: &Path, name: &str) -> Option<Vec<String>> {
    fs::read_to_string(root.join("etc/passwd"))
        .expect("/etc/passwd")
        .lines()
        .map(|l| l.split(':').map(str::to_owned).collect::<Vec<_>>())
        .find(|f| f[0] == name)
}

fn group_members(root: &Path, group: &str) -> Vec<String> {
    fs::read_to_string(root.join("etc/group"))
        .expect("/etc/group")
        .lines()
        .map(|l| l.split(':').map(str::to_owned).collect::<Vec<_>>())
        .find(|f| f[0] == group)
        .map(|f| {
            f[3].split(',')
                .filter(|m| !m.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// The host's nix-store (Debian's nix-bin), which the registration tests use.
fn nix_store(args: &[&str], stdin: Option<&[u8]>) -> Output {
    use std::io::Write as _;
    let mut child = Command::new("nix-store")
        .args(args)
        .env("NIX_CONFIG", "build-users-group =")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("nix-store is missing: scripts/lib/prerequisites installs nix-bin");
    let mut input = child.stdin.take().expect("stdin");
    input.write_all(stdin.unwrap_or_default()).expect("write");
    drop(input);
    child.wait_with_output().expect("nix-store")
}

fn copy_tree(source: &Path, dest: &Path) {
    let status = Command::new("cp")
        .args(["-a", "--"])
        .arg(source)
        .arg(dest)
        .status()
        .expect("cp");
    assert!(status.success(), "cp -a {}", source.display());
}

#[test]
fn faithful_nixos_keeps_every_program_in_store_paths() {
    let root = wsl_sim::rootfs(Variant::Nixos);
    let system = system_path(&root);
    // nixos-install leaves the store, /etc, /var, homes, the mount points and two links.
    let mut top: Vec<String> = fs::read_dir(&root)
        .expect("/")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    top.sort();
    assert_eq!(
        top,
        ["bin", "dev", "etc", "home", "nix", "proc", "root", "run", "sys", "tmp", "usr", "var"]
    );
    let listing = |dir: &str| -> Vec<String> {
        fs::read_dir(root.join(dir))
            .expect(dir)
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect()
    };
    let mut bin = listing("bin");
    bin.sort();
    // NixOS's activation makes /bin/sh; the toolkit's module links what WSL runs from /bin
    // (its activation snippet, nix/module.nix): mount, login, true, and wslpath -> /init.
    assert_eq!(
        bin,
        ["login", "mount", "sh", "true", "wslpath"],
        "/bin holds activation's sh and the module's links"
    );
    for (name, package) in [
        ("login", "-shadow-"),
        ("mount", "-util-linux-"),
        ("true", "-coreutils-"),
    ] {
        let target = fs::read_link(root.join("bin").join(name)).expect("a link");
        let target = target.to_string_lossy();
        assert!(
            target.starts_with("/nix/store/") && target.contains(package),
            "/bin/{name} -> {target}"
        );
        assert!(
            resolve_in(&root, &format!("/bin/{name}")).is_file(),
            "/bin/{name}"
        );
    }
    assert_eq!(
        fs::read_link(root.join("bin/wslpath")).expect("a link"),
        Path::new("/init")
    );
    assert_eq!(listing("usr"), ["bin"]);
    assert_eq!(listing("usr/bin"), ["env"], "/usr/bin holds only env");
    assert_eq!(
        listing("run"),
        Vec::<String>::new(),
        "/run is a tmpfs there"
    );
    let sh = resolve_in(&root, "/bin/sh");
    assert!(sh.starts_with(root.join("nix/store")), "{}", sh.display());
    assert!(sh.to_string_lossy().contains("-bash-"), "{}", sh.display());
    assert!(resolve_in(&root, "/usr/bin/env")
        .to_string_lossy()
        .contains("-coreutils-"));
    for path in [
        "/lib/systemd/systemd",
        "/usr/lib/systemd/systemd",
        "/sbin/init",
        "/usr/sbin/init",
    ] {
        assert!(
            resolve_in(&root, path).symlink_metadata().is_err(),
            "{path} exists: NixOS has none"
        );
    }
    for dir in DEFAULT_PATH.split(':') {
        for tool in ["systemctl", "grep", "sudo", "bash"] {
            let path = format!("{dir}/{tool}");
            assert!(
                resolve_in(&root, &path).symlink_metadata().is_err(),
                "{path} is on the default PATH"
            );
        }
    }
    // systemd and the tools through the system, all ELF in store paths, loading glibc's
    // loader from its store path.
    for tool in [
        "systemd/lib/systemd/systemd",
        "sw/bin/systemctl",
        "sw/bin/bash",
        "sw/bin/sudo",
        "sw/bin/grep",
        "sw/bin/perl",
        "sw/bin/nix-store",
    ] {
        let host = resolve_in(&root, &format!("{system}/{tool}"));
        assert!(host.starts_with(root.join("nix/store")), "{tool}");
        let data = fs::read(&host).unwrap_or_else(|e| panic!("{tool}: {e}"));
        let interp = elf_interpreter(&data).unwrap_or_else(|| panic!("{tool}: no interpreter"));
        assert!(
            interp.starts_with("/nix/store/")
                && interp.ends_with("-glibc-2.36/lib/ld-linux-x86-64.so.2"),
            "{tool}: interpreter {interp}"
        );
        assert!(
            resolve_in(&root, &interp).is_file(),
            "{tool}: {interp} missing"
        );
    }
    let names: Vec<String> = fs::read_dir(root.join("nix/store"))
        .expect("/nix/store")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n != ".links")
        .collect();
    for name in &names {
        assert!(is_store_name(name), "/nix/store/{name}");
    }
    let meta = root.join("nix/store").metadata().expect("/nix/store");
    assert_eq!(meta.permissions().mode() & 0o7777, 0o1775);
    assert_eq!(meta.gid(), 30000, "/nix/store is nixbld's");
    assert_store_metadata(&root.join("nix/store"));
}

/// Without the module /bin holds only activation's sh, as on any NixOS; the module declared
/// for native mode also links systemctl and grep where WSL's native boot looks for them
/// (`/bin/sh` with no PATH) and /sbin/init to init.
#[test]
fn faithful_nixos_bin_is_what_each_declaration_makes_it() {
    let listing = |root: &Path, dir: &str| -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(root.join(dir))
            .map(|d| {
                d.map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    };
    let stock = wsl_sim::rootfs(Variant::NixosStock);
    assert_eq!(listing(&stock, "bin"), ["sh"]);
    for path in ["/bin/login", "/bin/mount", "/sbin/init"] {
        assert!(
            resolve_in(&stock, path).symlink_metadata().is_err(),
            "{path} exists: NixOS has none"
        );
    }
    for dir in DEFAULT_PATH.split(':') {
        for tool in ["systemctl", "grep", "mount", "sudo", "bash"] {
            let path = format!("{dir}/{tool}");
            assert!(
                resolve_in(&stock, &path).symlink_metadata().is_err(),
                "{path} is on the stock system's default PATH"
            );
        }
    }
    let native = wsl_sim::rootfs(Variant::NixosNative);
    assert_eq!(
        listing(&native, "bin"),
        [
            "grep",
            "login",
            "mount",
            "sh",
            "systemctl",
            "true",
            "wslpath"
        ]
    );
    for (name, package) in [("systemctl", "-systemd-"), ("grep", "-gnugrep-")] {
        let target = resolve_in(&native, &format!("/bin/{name}"));
        assert!(
            target.is_file() && target.to_string_lossy().contains(package),
            "/bin/{name}: {}",
            target.display()
        );
    }
    assert_eq!(listing(&native, "sbin"), ["init"]);
    assert_eq!(
        fs::read_link(native.join("sbin/init")).expect("a link"),
        Path::new("/usr/libexec/nixos-wsl/init")
    );
    let wsl_conf = fs::read_to_string(resolve_in(&native, "/etc/wsl.conf")).expect("wsl.conf");
    assert!(wsl_conf.contains("[boot]\nsystemd=true\n"), "{wsl_conf}");
}

#[test]
fn faithful_nixos_units_come_only_from_the_etc_static_link() {
    let root = wsl_sim::rootfs(Variant::Nixos);
    assert_eq!(
        fs::read_link(root.join("etc/systemd/system")).expect("/etc/systemd/system is a link"),
        Path::new("/etc/static/systemd/system")
    );
    assert_eq!(
        fs::read_link(root.join("etc/systemd/user")).expect("/etc/systemd/user is a link"),
        Path::new("/etc/static/systemd/user")
    );
    let stat = fs::read_link(root.join("etc/static")).expect("/etc/static is a link");
    let stat = stat.to_string_lossy();
    let name = stat
        .strip_prefix("/nix/store/")
        .and_then(|n| n.strip_suffix("/etc"))
        .unwrap_or_else(|| panic!("/etc/static -> {stat}"));
    assert!(is_store_name(name) && name.ends_with("-etc"), "{stat}");
    let units = resolve_in(&root, "/etc/systemd/system");
    assert!(
        units.starts_with(root.join("nix/store"))
            && units.to_string_lossy().ends_with("-system-units"),
        "{}",
        units.display()
    );
    for unit in [
        "systemd-journald.service",
        "systemd-logind.service",
        "dbus.service",
        "user@.service",
        "suid-sgid-wrappers.service",
        "sysinit.target.wants/suid-sgid-wrappers.service",
    ] {
        assert!(units.join(unit).exists(), "no {unit}");
    }
    // Units whose programs a NixOS has not at that path, and the debug shell (the host's
    // tty9 in the simulator), are left out.
    for unit in [
        "dev-hugepages.mount",
        "debug-shell.service",
        "systemd-sysusers.service",
    ] {
        assert!(
            !units.join(unit).exists(),
            "{unit} is in the unit directory"
        );
    }
    // disabledUnits of the module's spec are not in the unit directory at all.
    assert!(!units.join("systemd-networkd.service").exists());
    let stock = resolve_in(&wsl_sim::rootfs(Variant::NixosStock), "/etc/systemd/system");
    assert!(stock.join("systemd-networkd.service").exists());
    assert!(resolve_in(&root, "/etc/systemd/user/dbus.socket").is_file());
    // Every command a unit runs is a store path that exists in the tree.
    let mut checked = 0;
    for dir in [units.clone(), resolve_in(&root, "/etc/systemd/user")] {
        for (path, meta) in walk(&dir) {
            if !meta.is_file() {
                continue;
            }
            let text = fs::read_to_string(dir.join(&path)).expect("unit");
            for line in text.lines().filter(|l| l.starts_with("Exec")) {
                let Some((_, value)) = line.split_once('=') else {
                    continue;
                };
                let command = value.trim_start_matches(['-', '@', '!', '+', ':']);
                let program = command.split_whitespace().next().unwrap_or("");
                if program.is_empty() {
                    continue;
                }
                assert!(
                    program.starts_with("/nix/store/"),
                    "{}: {line}",
                    path.display()
                );
                assert!(
                    resolve_in(&root, program).is_file(),
                    "{}: {program} missing",
                    path.display()
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 50, "only {checked} Exec lines");
    // Generators are found through /etc (Debian's systemd has /lib/... compiled in).
    assert!(resolve_in(
        &root,
        "/etc/systemd/system-generators/systemd-debug-generator"
    )
    .is_file());
}

#[test]
fn faithful_nixos_users_and_etc_are_as_activation_left_them() {
    let root = wsl_sim::rootfs(Variant::Nixos);
    let root_entry = passwd_entry(&root, "root").expect("root");
    assert_eq!(root_entry[6], "/usr/libexec/nixos-wsl/init", "module: init");
    let nixos = passwd_entry(&root, "nixos").expect("user nixos");
    assert_eq!((nixos[2].as_str(), nixos[3].as_str()), ("1000", "100"));
    assert_eq!(nixos[6], "/run/current-system/sw/bin/bash");
    assert_eq!(group_members(&root, "wheel"), ["nixos"]);
    let shadow = root.join("etc/shadow").metadata().expect("shadow");
    assert_eq!(shadow.permissions().mode() & 0o777, 0o640);
    assert_eq!((shadow.uid(), shadow.gid()), (0, 318), "root:shadow");
    let home = root.join("home/nixos").metadata().expect("home");
    assert_eq!(
        (home.uid(), home.permissions().mode() & 0o777),
        (1000, 0o700)
    );

    for (entry, target) in [
        ("wsl.conf", "/etc/static/wsl.conf"),
        ("nixos-wsl/init.conf", "/etc/static/nixos-wsl/init.conf"),
        ("os-release", "/etc/static/os-release"),
        ("set-environment", "/etc/static/set-environment"),
        ("profile", "/etc/static/profile"),
    ] {
        assert_eq!(
            fs::read_link(root.join("etc").join(entry))
                .unwrap_or_else(|e| panic!("/etc/{entry}: {e}")),
            Path::new(target)
        );
    }
    // The module's wsl.conf (scripts/lib/nixos-spec-module.json, generated from nix/): WSL
    // starts root, whose shell is init, which drops to the user.
    assert!(read_text(&root, "/etc/wsl.conf").contains("[user]\ndefault=root\n"));
    assert!(read_text(&root, "/etc/nixos-wsl/init.conf").contains("user = nixos"));
    assert!(read_text(&root, "/etc/os-release")
        .lines()
        .any(|l| l == "ID=nixos"));
    // `mode` entries are copies, listed in .clean.
    let sudoers = root
        .join("etc/sudoers")
        .symlink_metadata()
        .expect("sudoers");
    assert!(sudoers.is_file(), "sudoers is copied");
    assert_eq!(sudoers.permissions().mode() & 0o777, 0o440);
    assert!(fs::read_to_string(root.join("etc/sudoers"))
        .expect("sudoers")
        .lines()
        .any(|l| l.starts_with("%wheel") && l.ends_with("NOPASSWD:SETENV: ALL")));
    assert_eq!(
        fs::read_to_string(root.join("etc/.clean")).expect(".clean"),
        "sudoers\n"
    );
    assert!(root.join("etc/NIXOS").is_file());
    let env = read_text(&root, "/etc/set-environment");
    for needle in [
        "export PATH=\"/run/wrappers/bin:",
        ":/run/current-system/sw/bin\"",
        "export NIX_PATH=",
        "export LOCALE_ARCHIVE=",
        "export NIXOS_TEST_SET_ENVIRONMENT=1",
    ] {
        assert!(
            env.contains(needle),
            "set-environment lacks {needle}: {env}"
        );
    }
    assert!(read_text(&root, "/etc/profile").contains(". /etc/set-environment"));

    // Stock: no module, so root's shell is NixOS's default and there is no wsl.conf.
    let stock = wsl_sim::rootfs(Variant::NixosStock);
    assert_eq!(
        passwd_entry(&stock, "root").expect("root")[6],
        "/run/current-system/sw/bin/bash"
    );
    assert!(stock.join("etc/wsl.conf").symlink_metadata().is_err());
    assert!(fs::read_to_string(stock.join("etc/sudoers"))
        .expect("sudoers")
        .contains("%wheel ALL=(ALL:ALL) SETENV: ALL"));
}

fn store_dir_ending(root: &Path, suffix: &str) -> String {
    fs::read_dir(root.join("nix/store"))
        .expect("/nix/store")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .find(|n| n.ends_with(suffix))
        .map(|n| format!("/nix/store/{n}"))
        .unwrap_or_else(|| panic!("no store path ending {suffix}"))
}

#[test]
fn faithful_nixos_activate_applies_the_declared_spec_in_a_chroot() {
    require_root();
    let source = wsl_sim::rootfs(Variant::Nixos);
    let scratch = Scratch::new("faithful-activate");
    let root = scratch.0.join("root");
    copy_tree(&source, &root);
    let system = system_path(&root);

    // What a user, packer or an older generation may have left.
    let passwd = fs::read_to_string(root.join("etc/passwd")).expect("passwd");
    let passwd = passwd.replace(":/root:/usr/libexec/nixos-wsl/init", ":/root:/bin/zsh");
    fs::write(
        root.join("etc/passwd"),
        format!("{passwd}alice:x:1001:100::/home/alice:/run/current-system/sw/bin/bash\n"),
    )
    .expect("passwd");
    let mut shadow = fs::read_to_string(root.join("etc/shadow")).expect("shadow");
    shadow.push_str("alice:$6$salt$hash:1::::::\n");
    fs::write(root.join("etc/shadow"), shadow).expect("shadow");
    let group = fs::read_to_string(root.join("etc/group")).expect("group");
    fs::write(
        root.join("etc/group"),
        group.replace("wheel:x:1:nixos", "wheel:x:1:alice,nixos"),
    )
    .expect("group");
    fs::remove_file(root.join("etc/os-release")).expect("os-release");
    fs::write(root.join("etc/os-release"), "ID=debian\n").expect("os-release");
    fs::write(root.join("etc/motd"), "keep me\n").expect("motd");
    fs::remove_file(root.join("etc/systemd/system")).expect("unit link");
    fs::create_dir(root.join("etc/systemd/system")).expect("unit dir");
    fs::write(root.join("etc/systemd/system/mine.service"), "[Unit]\n").expect("unit");
    fs::remove_file(root.join("bin/sh")).expect("/bin/sh");

    let mut last_stderr = String::new();
    for run in 1..=2 {
        let out = Command::new("chroot")
            .arg(&root)
            .arg("/nix/var/nix/profiles/system/activate")
            .output()
            .expect("chroot");
        last_stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "activate run {run}: {last_stderr}");
        let log = fs::read_to_string(root.join("run/nixos-activation.log")).expect("log");
        assert_eq!(log.lines().count(), run, "{log}");
    }
    // root's declared shell is written over the one /etc/passwd had.
    assert_eq!(
        passwd_entry(&root, "root").expect("root")[6],
        "/usr/libexec/nixos-wsl/init"
    );
    // mutableUsers: the undeclared user stays, and their hand-added group membership too.
    assert!(passwd_entry(&root, "alice").is_some(), "alice was dropped");
    assert_eq!(group_members(&root, "wheel"), ["alice", "nixos"]);
    let shadow = root.join("etc/shadow").metadata().expect("shadow");
    assert_eq!(shadow.permissions().mode() & 0o777, 0o640);
    assert_eq!((shadow.uid(), shadow.gid()), (0, 318));
    // /etc: the regular file replaced by the link, the undeclared file kept, the real
    // directory kept with setup-etc's warning.
    assert_eq!(
        fs::read_link(root.join("etc/os-release")).expect("os-release link"),
        Path::new("/etc/static/os-release")
    );
    assert_eq!(
        fs::read_to_string(root.join("etc/motd")).expect("motd"),
        "keep me\n"
    );
    assert!(root.join("etc/systemd/system/mine.service").is_file());
    assert!(
        last_stderr
            .contains("/etc/systemd/system directory contains user files. Symlinking may fail."),
        "{last_stderr}"
    );
    assert!(resolve_in(&root, "/bin/sh").is_file(), "/bin/sh");
    for link in ["run/current-system", "run/booted-system"] {
        assert_eq!(
            fs::read_link(root.join(link)).unwrap_or_else(|e| panic!("/{link}: {e}")),
            Path::new(&system)
        );
    }

    // mutableUsers = false: undeclared users and their memberships go, hashes are reset.
    let spec_path = resolve_in(
        &root,
        &format!(
            "{}/users-groups.json",
            store_dir_ending(&root, "-users-groups.json")
        ),
    );
    let spec = fs::read_to_string(spec_path).expect("spec");
    assert!(spec.contains("\"mutableUsers\": true"), "{spec}");
    fs::write(
        root.join("tmp/immutable.json"),
        spec.replace("\"mutableUsers\": true", "\"mutableUsers\": false"),
    )
    .expect("spec copy");
    let perl = store_dir_ending(&root, "-perl-5.36.0");
    let script = format!(
        "{}/update-users-groups.pl",
        store_dir_ending(&root, "-update-users-groups.pl")
    );
    let out = Command::new("chroot")
        .arg(&root)
        .arg(format!("{perl}/bin/perl"))
        .arg(format!("-I{perl}/lib/perl-base"))
        .arg(&script)
        .arg("/tmp/immutable.json")
        .env("LC_ALL", "C")
        .output()
        .expect("chroot");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(passwd_entry(&root, "alice").is_none(), "alice kept");
    assert_eq!(group_members(&root, "wheel"), ["nixos"]);
    let shadow = fs::read_to_string(root.join("etc/shadow")).expect("shadow");
    assert!(!shadow.contains("alice"), "{shadow}");
    assert!(shadow.lines().any(|l| l.starts_with("root:!:")), "{shadow}");

    // The store is a real one: registered, references and all, and intact.
    let store = root.to_str().expect("utf-8");
    let out = nix_store(&["--store", store, "--verify", "--check-contents"], None);
    assert!(
        out.status.success(),
        "nix-store --verify: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = nix_store(&["--store", store, "-qR", &system], None);
    let closure = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for part in [
        "-systemd-252",
        "-glibc-2.36",
        "-system-units",
        "-etc",
        "-bash-5",
    ] {
        assert!(closure.contains(part), "closure lacks {part}: {closure}");
    }
}

fn tar_listing(archive: &Path) -> Vec<String> {
    let out = Command::new("tar")
        .arg("-tf")
        .arg(archive)
        .output()
        .expect("tar");
    assert!(out.status.success(), "tar -tf {}", archive.display());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn faithful_nixos_tarballs_hold_the_closure_and_its_registration_only() {
    require_root();
    let gz = wsl_sim::rootfs(Variant::NixosTarball);
    let xz = wsl_sim::rootfs(Variant::NixosTarballXz);
    assert_eq!(&fs::read(&gz).expect("gz")[..2], b"\x1f\x8b", "gzip");
    assert_eq!(&fs::read(&xz).expect("xz")[..6], b"\xfd7zXZ\0", "xz");
    let listing = tar_listing(&gz);
    assert_eq!(
        listing,
        tar_listing(&xz),
        "the two archives hold different trees"
    );
    for entry in &listing {
        let entry = entry.trim_end_matches('/');
        assert!(
            entry == "nix"
                || entry == "nix/store"
                || entry.starts_with("nix/store/")
                || entry == "nix-path-registration",
            "{entry}: a system tarball holds the store and its registration only"
        );
    }
    assert!(listing.iter().any(|e| e == "nix-path-registration"));

    let scratch = Scratch::new("faithful-tarball");
    let root = scratch.0.join("root");
    fs::create_dir(&root).expect("mkdir");
    let status = Command::new("tar")
        .arg("-xpf")
        .arg(&gz)
        .arg("-C")
        .arg(&root)
        .status()
        .expect("tar");
    assert!(status.success(), "tar -x");
    let registration = fs::read(root.join("nix-path-registration")).expect("registration");
    let text = String::from_utf8_lossy(&registration);
    let system = text
        .lines()
        .find(|l| l.starts_with("/nix/store/") && l.contains("-nixos-system-nixos-24.11"))
        .expect("the system is registered")
        .to_owned();
    // What a NixOS image's first boot does (lxc-container.nix, boot.postBootCommands).
    let store = root.to_str().expect("utf-8");
    let out = nix_store(&["--store", store, "--load-db"], Some(&registration));
    assert!(
        out.status.success(),
        "--load-db: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = nix_store(&["--store", store, "--verify", "--check-contents"], None);
    assert!(
        out.status.success(),
        "--verify: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = nix_store(&["--store", store, "-qR", &system], None);
    let closure = String::from_utf8_lossy(&out.stdout);
    let in_store = fs::read_dir(root.join("nix/store"))
        .expect("store")
        .filter(|e| {
            !e.as_ref()
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .starts_with('.')
        })
        .count();
    assert_eq!(
        closure.lines().count(),
        in_store,
        "the archive is the system's closure"
    );
}

/// The tree boots on its own: `[boot] systemd=true` with a stand-in `/sbin/init` that runs
/// `activate` and execs the system's systemd (what init does), none of init's masks, on the
/// module system declared for native mode. Checks what the toolkit relies on: PID 1 is the
/// store's systemd, the system is `running` (WSL's generated `wsl-mnt-guard.service` runs
/// `/bin/true`, which the module links: without it the boot ends `degraded`), sudo is the setuid
/// copy in /run/wrappers, and the user manager answers `systemctl --user` with `running`
/// (WSL's generated `wslg-session` user unit runs mkdir and ln with the manager's PATH, which
/// the module sets in native mode).
#[test]
fn faithful_nixos_boots_to_running_with_wrappers_and_a_user_manager() {
    require_root();
    let distro = wsl_sim::Distro::from_tree(&wsl_sim::rootfs(Variant::NixosNative));
    fs::remove_file(distro.path("/sbin/init")).expect("the module's /sbin/init link");
    distro.write(
        "/sbin/init",
        "#!/bin/sh\n/nix/var/nix/profiles/system/activate\n\
         exec /run/current-system/systemd/lib/systemd/systemd \"$@\"\n",
    );
    fs::set_permissions(distro.path("/sbin/init"), fs::Permissions::from_mode(0o755))
        .expect("chmod");
    // A file of its own rather than the link through /etc/static: the test's, not the system's.
    fs::remove_file(distro.path("/etc/wsl.conf")).expect("wsl.conf link");
    distro.write(
        "/etc/wsl.conf",
        "[boot]\nsystemd=true\n[user]\ndefault=root\n",
    );
    let script = "export PATH=/run/current-system/sw/bin; \
        systemctl is-system-running --wait; readlink /proc/1/exe; \
        stat -c '%a %U' \"$(readlink -f /run/wrappers/bin/sudo)\"; \
        /run/wrappers/bin/sudo -u nixos id -un 2>/dev/null; \
        loginctl enable-linger nixos && \
        for i in $(seq 1 60); do [ -S /run/user/1000/bus ] && break; sleep 1; done; \
        /run/wrappers/bin/sudo -u nixos XDG_RUNTIME_DIR=/run/user/1000 \
          systemctl --user is-system-running --wait 2>/dev/null";
    let out = distro.run(&[
        "-u",
        "root",
        "-e",
        "/run/current-system/sw/bin/bash",
        "-c",
        script,
    ]);
    let (stdout, stderr) = wsl_sim::text(&out);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 5, "stdout: {stdout}\nstderr: {stderr}");
    assert_eq!(lines[0], "running", "{stdout}{stderr}");
    assert!(
        lines[1].starts_with("/nix/store/") && lines[1].ends_with("/lib/systemd/systemd"),
        "PID 1 is {}",
        lines[1]
    );
    assert!(lines[1].contains("-systemd-252"), "{}", lines[1]);
    assert_eq!(lines[2], "4511 root", "the sudo wrapper");
    assert_eq!(lines[3], "nixos");
    assert_eq!(lines[4], "running", "systemctl --user");
}

#[test]
fn nixos_system_refuses_a_bad_spec_and_leaves_nothing() {
    require_root();
    let scratch = Scratch::new("faithful-bad-spec");
    let dir = &scratch.0;
    let spec = dir.join("spec.json");
    let out = dir.join("out");
    let debian = wsl_sim::rootfs(Variant::Debian);
    let builder = repo().join("scripts/lib/nixos-system");
    let run = |spec_text: &str| {
        fs::write(&spec, spec_text).expect("spec");
        Command::new(&builder)
            .arg("--debian")
            .arg(&debian)
            .arg("--spec")
            .arg(&spec)
            .args(["--shape", "activated"])
            .arg(&out)
            .output()
            .expect("scripts/lib/nixos-system runs (python3)")
    };
    for (text, problem) in [
        (
            "{\"mutableUsers\": true, \"groups\": {}, \"etc\": {}}",
            "no 'users'",
        ),
        ("{\"mutableUsers\": tru", "Expecting value"),
    ] {
        let result = run(text);
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert!(!result.status.success(), "accepted {text}");
        assert!(
            stderr.contains(spec.to_str().expect("utf-8")) && stderr.contains(problem),
            "{stderr}"
        );
        let left: Vec<_> = fs::read_dir(dir)
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(left, [std::ffi::OsString::from("spec.json")], "left behind");
    }
}

/// The native variant's spec is what the module declares with `wsl.systemd = "native"`
/// (scripts/lib/nixos-spec-native.nix): regenerate it with scripts/lib/nixos-spec after changing
/// nix/ (tests/tests/nix_module.rs checks the module variant's the same way).
#[test]
fn committed_native_spec_is_what_the_module_declares() {
    let out = Command::new(repo().join("scripts/lib/nixos-spec"))
        .env(
            "NIXOS_SPEC_MODULES",
            repo().join("scripts/lib/nixos-spec-native.nix"),
        )
        .arg("--check")
        .arg(repo().join("scripts/lib/nixos-spec-module-native.json"))
        .output()
        .expect("scripts/lib/nixos-spec runs");
    assert!(
        out.status.success(),
        "{}(run NIXOS_SPEC_MODULES=$PWD/scripts/lib/nixos-spec-native.nix scripts/lib/nixos-spec scripts/lib/nixos-spec-module-native.json)",
        String::from_utf8_lossy(&out.stderr)
    );
}
