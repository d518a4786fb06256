//! The WSL simulator ([`sim`], binary `wsl-sim`) and what the end-to-end tests use to drive
//! it: built binaries, the cached test root filesystems, scratch folders and [`Distro`].

pub mod sim;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Where the tests' folders go; `WSL_SIM_TESTS_DIR` moves it, so two checkouts can run their
/// suites at once without emptying each other's folders.
fn scratch_root() -> PathBuf {
    std::env::var_os("WSL_SIM_TESTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/wsl-sim-tests"))
}

/// Fails the test, loudly, when it cannot do what it must (namespaces and mounts need root).
pub fn require_root() {
    // The effective uid is the second number of the "Uid:" line.
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("");
    assert_eq!(
        euid, "0",
        "this test boots distributions in namespaces and needs root: run scripts/test as root"
    );
}

/// Runs `script` with `sh -ec` on the host; the test fails when the script does.
pub fn host_sh(script: &str) {
    let status = Command::new("sh")
        .arg("-ec")
        .arg(script)
        .status()
        .unwrap_or_else(|e| panic!("cannot run sh: {e}"));
    assert!(status.success(), "failed: {script}");
}

/// A command's stdout and stderr as text.
pub fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The repository's top folder.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// A binary built by scripts/build (`$TOOLKIT_DIST`, else target/dist).
pub fn dist_bin(name: &str) -> PathBuf {
    let dir = std::env::var_os("TOOLKIT_DIST")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/dist"));
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: run scripts/build (scripts/test does)",
        path.display()
    );
    path
}

/// The test root filesystems scripts/make-test-rootfs builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// Debian bookworm with systemd, user `nixos` (uid 1000, groups sudo and users).
    Debian,
    /// The faithful NixOS test system built with the toolkit's module (root's shell is init,
    /// user `nixos` in wheel, wsl.conf and init.conf in /etc through /etc/static), as
    /// nixos-install leaves it (docs/test-data.md).
    Nixos,
    /// The same system without the module: root's shell is /run/current-system/sw/bin/bash.
    NixosStock,
    /// The module system declared with `wsl.systemd = "native"`: its wsl.conf has
    /// `[boot] systemd=true` and its activation links /sbin/init to init.
    NixosNative,
    /// The module system as make-system-tarball leaves it, gzip: a `.tar.gz` file (the store
    /// closure and /nix-path-registration only), not a tree.
    NixosTarball,
    /// The same archive, xz-compressed (make-system-tarball's default).
    NixosTarballXz,
    /// The Debian tree for aarch64 (Windows on ARM), made under qemu-user.
    DebianArm64,
}

impl Variant {
    /// The variable scripts/test sets and the scripts/make-test-rootfs argument.
    fn source(self) -> (&'static str, &'static str) {
        match self {
            Variant::Debian => ("TEST_ROOTFS_DEBIAN", "debian"),
            Variant::Nixos => ("TEST_ROOTFS_NIXOS", "nixos"),
            Variant::NixosStock => ("TEST_ROOTFS_NIXOS_STOCK", "nixos-stock"),
            Variant::NixosNative => ("TEST_ROOTFS_NIXOS_NATIVE", "nixos-native"),
            Variant::NixosTarball => ("TEST_ROOTFS_NIXOS_TARBALL", "nixos-tarball"),
            Variant::NixosTarballXz => ("TEST_ROOTFS_NIXOS_TARBALL_XZ", "nixos-tarball-xz"),
            Variant::DebianArm64 => ("TEST_ROOTFS_DEBIAN_ARM64", "debian-arm64"),
        }
    }
}

/// `packer --quiet --rootfs <variant's tree> --out OUT --default-user nixos EXTRA...` with the
/// built packer; packer's stderr (its warnings). Panics, with that stderr, when packer fails.
pub fn pack_for_nixos_user(variant: Variant, out: &Path, extra: &[&str]) -> String {
    let output = Command::new(dist_bin("packer"))
        .arg("--quiet")
        .arg("--rootfs")
        .arg(rootfs(variant))
        .arg("--out")
        .arg(out)
        .args(["--default-user", "nixos"])
        .args(extra)
        .output()
        .expect("packer runs");
    let (_, stderr) = text(&output);
    assert!(output.status.success(), "packer {extra:?}: {stderr}");
    stderr
}

/// The cached tree of `variant` (read-only: copy it or use [`Distro::from_tree`]); for the
/// tarball variants, the cached archive.
pub fn rootfs(variant: Variant) -> PathBuf {
    let (var, arg) = variant.source();
    let path = std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| {
        panic!(
            "{var} is not set: run scripts/test, or export {var}=$(scripts/make-test-rootfs {arg})"
        )
    });
    if matches!(variant, Variant::NixosTarball | Variant::NixosTarballXz) {
        assert!(path.is_file(), "{var}={} is not an archive", path.display());
    } else {
        assert!(
            path.join("etc/passwd").is_file(),
            "{var}={} is not a root filesystem",
            path.display()
        );
    }
    path
}

/// A fresh, empty folder for one test, emptied of whatever an earlier run left there
/// (running instances, mounts, files).
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = scratch_root().join(name);
    clean(&dir);
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}

fn clean(dir: &Path) {
    for distro in sim::state::instances_under(dir) {
        let _ = Command::new(dist_bin("wsl-sim"))
            .arg("terminate")
            .arg(&distro)
            .stderr(Stdio::null())
            .status();
    }
    for mount in mounts_under(dir).into_iter().rev() {
        let _ = Command::new("umount").arg("-l").arg(&mount).status();
    }
    if dir.exists() {
        fs::remove_dir_all(dir).unwrap_or_else(|e| panic!("cannot remove {}: {e}", dir.display()));
    }
}

/// Mount points at or under `dir`, in mount order.
fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(unescape_mount_path)
        .filter(|p| p.starts_with(dir))
        .collect()
}

fn unescape_mount_path(field: &str) -> PathBuf {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let value = bytes[i + 1..i + 4]
                .iter()
                .fold(0u32, |v, b| v * 8 + u32::from(b - b'0'));
            out.push(u8::try_from(value).unwrap_or(b'?'));
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    use std::os::unix::ffi::OsStringExt;
    PathBuf::from(std::ffi::OsString::from_vec(out))
}

/// Where packer installs init inside a distribution.
pub const INIT: &str = "/usr/libexec/nixos-wsl/init";

/// One imported distribution in the simulator. Dropping it terminates the instance and
/// removes its files.
pub struct Distro {
    base: PathBuf,
    root: PathBuf,
    overlay: bool,
}

fn next_base(kind: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    scratch_dir(&format!("{kind}-{}-{n}", std::process::id()))
}

impl Distro {
    /// `wsl --import` of `archive` into a fresh folder; the simulator's error text on failure.
    pub fn import(archive: &Path) -> Result<Self, String> {
        let base = next_base("import");
        let root = base.join("root");
        let out = Command::new(dist_bin("wsl-sim"))
            .arg("import")
            .arg(archive)
            .arg(&root)
            .output()
            .map_err(|e| format!("cannot run wsl-sim: {e}"))?;
        if out.status.success() {
            Ok(Self {
                base,
                root,
                overlay: false,
            })
        } else {
            let _ = fs::remove_dir_all(&base);
            Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
        }
    }

    /// A writable copy of an already extracted `tree` (an overlay over it: instant).
    pub fn from_tree(tree: &Path) -> Self {
        let base = next_base("tree");
        let root = base.join("root");
        for dir in ["upper", "work", "root"] {
            fs::create_dir_all(base.join(dir)).unwrap_or_else(|e| panic!("mkdir: {e}"));
        }
        let options = format!(
            "lowerdir={},upperdir={},workdir={}",
            tree.display(),
            base.join("upper").display(),
            base.join("work").display()
        );
        let status = Command::new("mount")
            .args(["-t", "overlay", "overlay", "-o", &options])
            .arg(&root)
            .status()
            .unwrap_or_else(|e| panic!("cannot run mount: {e}"));
        assert!(
            status.success(),
            "cannot mount an overlay over {}",
            tree.display()
        );
        Self {
            base,
            root,
            overlay: true,
        }
    }

    /// The distribution's root folder on the host.
    pub fn dir(&self) -> &Path {
        &self.root
    }

    /// The host path of `path` inside the distribution (symlinks are not followed).
    pub fn path(&self, path: &str) -> PathBuf {
        self.root.join(path.trim_start_matches('/'))
    }

    /// Writes a file inside the distribution, creating its folders.
    pub fn write(&self, path: &str, contents: impl AsRef<[u8]>) {
        let target = self.path(path);
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent)
                .unwrap_or_else(|e| panic!("mkdir {}: {e}", parent.display()));
        }
        fs::write(&target, contents).unwrap_or_else(|e| panic!("write {}: {e}", target.display()));
    }

    /// The host path of the file `path` leads to inside the distribution, its symlinks
    /// followed as the distribution's own processes would (absolute targets from its root).
    /// On NixOS `/etc/X -> /etc/static/X` ends in the store: writing there changes what the
    /// system declares (what a rebuilt configuration would hold), in this copy only.
    pub fn resolved(&self, path: &str) -> PathBuf {
        sim::import::resolve_in(&self.root, path)
            .unwrap_or_else(|| panic!("symlink loop resolving {path} in {}", self.root.display()))
    }

    /// Writes the file `path` leads to (see [`Distro::resolved`]): never through a link on the
    /// host, which would leave the distribution.
    pub fn write_resolved(&self, path: &str, contents: impl AsRef<[u8]>) {
        let target = self.resolved(path);
        fs::write(&target, contents).unwrap_or_else(|e| panic!("write {}: {e}", target.display()));
    }

    /// Reads the file `path` leads to (see [`Distro::resolved`]).
    pub fn read_resolved(&self, path: &str) -> String {
        let target = self.resolved(path);
        fs::read_to_string(&target).unwrap_or_else(|e| panic!("read {}: {e}", target.display()))
    }

    /// WSL's native systemd for the next start (`[boot] systemd=true`, what packer's
    /// `--systemd native` and the module's `wsl.systemd = "native"` write), with init as
    /// `/sbin/init`. packer's `/etc/wsl.conf` says `systemd=false` where the NixOS system
    /// declared it, and WSL keeps the first of duplicate keys, so the value is changed, not
    /// appended; on NixOS the declared file (through `/etc/static`) gets it too, since every
    /// activation puts that one back. Debian's own `/sbin/init` (systemd) is replaced by init,
    /// as packer's native mode does; a tree with none already has init there (packer).
    ///
    /// On NixOS, also the `/bin` links the toolkit's module makes in native mode
    /// (`wsl.binLinks`, nix/module.nix: `mount`, `login` where the system has one) and
    /// `/bin/true`, which WSL's mount guard unit runs (microsoft/WSL
    /// `src/linux/init/init.cpp:375`; without it `wsl-mnt-guard.service` fails and the system
    /// is `degraded`). The module does not link `true` yet. The faithful system has no
    /// `login` (Debian's shadow is left out), so WSL's user session for root is not started
    /// and says so; the user's own manager runs through lingering.
    pub fn enable_native_systemd(&self) {
        if self.path("/etc/NIXOS").exists() {
            for name in ["mount", "true", "login"] {
                let target = self.resolved(&format!("/nix/var/nix/profiles/system/sw/bin/{name}"));
                if !target.is_file() {
                    continue;
                }
                let target =
                    Path::new("/").join(target.strip_prefix(&self.root).unwrap_or(&target));
                let link = self.path(&format!("/bin/{name}"));
                let _ = fs::remove_file(&link);
                std::os::unix::fs::symlink(&target, &link)
                    .unwrap_or_else(|e| panic!("link {}: {e}", link.display()));
            }
        }
        let wsl_conf = |path: &str| {
            let text = self.read_resolved(path);
            let text = if text.lines().any(|l| l == "systemd=false") {
                text.replace("\nsystemd=false\n", "\nsystemd=true\n")
            } else {
                format!("{text}\n[boot]\nsystemd=true\n")
            };
            self.write_resolved(path, text);
        };
        wsl_conf("/etc/wsl.conf");
        if self.resolved("/etc/static/wsl.conf").is_file() {
            wsl_conf("/etc/static/wsl.conf");
        }
        // The link itself, in the folder /sbin leads to (Debian's /sbin -> usr/sbin).
        let sbin_init = self.resolved("/sbin").join("init");
        if fs::read_link(&sbin_init).ok().as_deref() != Some(Path::new(INIT)) {
            let _ = fs::remove_file(&sbin_init);
            std::os::unix::fs::symlink(INIT, &sbin_init)
                .unwrap_or_else(|e| panic!("link {}: {e}", sbin_init.display()));
        }
    }

    /// The distribution's name (`WSL_DISTRO_NAME`).
    pub fn name(&self) -> String {
        self.base
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// `wsl-sim run DIR` with nothing else, to add arguments, environment and stdio to.
    pub fn command(&self) -> Command {
        let mut command = Command::new(dist_bin("wsl-sim"));
        command
            .arg("run")
            .arg(&self.root)
            .arg("--name")
            .arg(self.name());
        command
    }

    /// `wsl -d` with `args` (`["--", "CMD"]`, `["-e", ...]`, `["-u", "root", "--", ...]`),
    /// stdin closed, output captured.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run wsl-sim: {e}"))
    }

    /// The host pid of the instance's PID 1, when it runs.
    pub fn instance_pid(&self) -> Option<u32> {
        sim::state::State::for_distro(&self.root)
            .ok()?
            .running()
            .map(|i| i.pid)
    }

    /// `wsl --terminate`.
    pub fn terminate(&self) {
        let _ = Command::new(dist_bin("wsl-sim"))
            .arg("terminate")
            .arg(&self.root)
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for Distro {
    fn drop(&mut self) {
        self.terminate();
        if self.overlay {
            let _ = Command::new("umount").arg("-l").arg(&self.root).status();
        }
        let _ = fs::remove_dir_all(&self.base);
    }
}

/// `variant` packed as the rootfs format with the built init (`packer --format rootfs
/// --default-user nixos --init <built init>`) and imported (`wsl-sim import`) into the scratch
/// folder `name`; returns the imported tree. Tests cache it once per process.
pub fn packed_with_init(variant: Variant, name: &str) -> PathBuf {
    require_root();
    let dir = scratch_dir(name);
    let archive = dir.join("rootfs.tar.gz");
    let out = Command::new(dist_bin("packer"))
        .args(["--quiet", "--format", "rootfs", "--default-user", "nixos"])
        .arg("--rootfs")
        .arg(rootfs(variant))
        .arg("--out")
        .arg(&archive)
        .arg("--init")
        .arg(dist_bin("init"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run packer: {e}"));
    assert!(out.status.success(), "packer: {}", text(&out).1);
    let tree = dir.join("tree");
    let out = Command::new(dist_bin("wsl-sim"))
        .arg("import")
        .arg(&archive)
        .arg(&tree)
        .output()
        .unwrap_or_else(|e| panic!("cannot run wsl-sim: {e}"));
    assert!(out.status.success(), "import: {}", text(&out).1);
    let _ = fs::remove_file(&archive);
    tree
}
