//! The built installer against real payloads, outside the simulator: `installer --root DIR`
//! installs into a scratch copy of an installer distribution. Checks that the result is the
//! payload's tree exactly, that a kill at any of 20+ checkpoints followed by a rerun gives the
//! same tree, and that every kind of bad payload is refused with nothing on disk changed. The
//! WSL tests make, in a mount namespace of their own (`unshare`), the mounts, links and files
//! WSL puts into the installer distribution at every start, and install over them.
//! Needs root (owners, devices, capabilities) and `scripts/build` (TOOLKIT_DIST).

use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const INIT: &str = "/usr/libexec/nixos-wsl/init";

fn dist_bin(name: &str) -> PathBuf {
    let dist = std::env::var_os("TOOLKIT_DIST")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/dist"));
    let bin = dist.join(name);
    assert!(
        bin.exists(),
        "{} is missing: run scripts/build first",
        bin.display()
    );
    bin
}

fn require_root() {
    let out = Command::new("id").arg("-u").output().expect("id runs");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "0",
        "these tests unpack owners, devices and capabilities: run them as root"
    );
}

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(format!(
        "/var/tmp/installer-tests/{name}-{}",
        std::process::id()
    ));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

struct Cleanup(PathBuf);
impl Drop for Cleanup {
    fn drop(&mut self) {
        // rm -rf: std's remove_dir_all holds a descriptor per level (the deep payload's tree).
        let _ = Command::new("rm").arg("-rf").arg(&self.0).status();
    }
}

fn sh(script: &str) {
    let out = Command::new("bash")
        .arg("-ec")
        .arg(script)
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "failed: {script}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A small root filesystem with everything the installer must get right.
fn fixture(dir: &Path) -> PathBuf {
    let root = dir.join("src");
    fs::create_dir_all(&root).expect("mkdir");
    sh(&format!(
        "cd {r}
         mkdir -p etc usr/bin usr/sbin usr/lib/deep/er/still home/nixos tmp dev proc nix/store/abc-pkg/bin
         ln -s usr/bin bin && ln -s usr/sbin sbin && ln -s usr/lib lib
         printf 'root:x:0:0:root:/root:/bin/bash\\nnixos:x:1000:100::/home/nixos:/bin/bash\\n' > etc/passwd
         printf 'root:x:0:\\nusers:x:100:\\n' > etc/group
         printf 'root:*:1:0:99999:7:::\\n' > etc/shadow && chmod 0640 etc/shadow && mkdir -m 0700 root
         printf '[boot]\\nsystemd=true\\n' > etc/wsl.conf
         printf 'ID=fixture\\n' > etc/os-release
         cp /bin/dash usr/bin/dash && ln -s dash usr/bin/sh
         cp /bin/dash usr/bin/setuid && chmod 04755 usr/bin/setuid
         cp /bin/dash usr/bin/setgid && chmod 02711 usr/bin/setgid && chown 0:100 usr/bin/setgid
         cp /bin/dash usr/bin/ping && setcap cap_net_raw+ep usr/bin/ping
         chmod 1777 tmp && chmod 0700 home/nixos && chown 1000:100 home/nixos
         echo hello > home/nixos/note && chown 1000:100 home/nixos/note && chmod 0600 home/nixos/note
         head -c 3000000 /dev/urandom > usr/lib/big && head -c 700000 /dev/urandom > usr/lib/deep/er/still/mid
         for i in $(seq 1 40); do echo file $i > usr/lib/deep/f$i; done
         echo tool > nix/store/abc-pkg/bin/tool && chmod 0555 nix/store/abc-pkg/bin/tool && ln nix/store/abc-pkg/bin/tool nix/store/abc-pkg/bin/tool2
         chmod 0555 nix/store/abc-pkg/bin nix/store/abc-pkg
         ln usr/lib/big usr/lib/big-again
         mkfifo usr/lib/fifo && mknod usr/lib/null2 c 1 3 && mknod dev/null c 1 3
         ln -s /does/not/exist usr/lib/dangling
         python3 -c \"import os; os.setxattr('usr/lib/deep/f1', 'user.test', b'value')\"
         touch -h -d @1000 usr/bin/sh && find . -not -type l -exec touch -d @1000 {{}} +",
        r = root.display()
    ));
    root
}

/// The listing's script (also run inside mount namespaces, as `python3 -c "$LISTING" DIR`).
const LISTING_PY: &str = r#"
import os, sys, stat, hashlib
root = sys.argv[1]
out = []
for d, ds, fs in os.walk(root):
    for n in ds + fs:
        p = os.path.join(d, n); st = os.lstat(p); r = os.path.relpath(p, root)
        try: x = sorted((k, os.getxattr(p, k, follow_symlinks=False)) for k in os.listxattr(p, follow_symlinks=False))
        except OSError: x = []
        c = ''
        if stat.S_ISREG(st.st_mode): c = hashlib.sha256(open(p, 'rb').read()).hexdigest()
        elif stat.S_ISLNK(st.st_mode): c = os.readlink(p)
        nl = '' if stat.S_ISDIR(st.st_mode) else st.st_nlink
        out.append(f"{r} {oct(st.st_mode)} {st.st_uid}:{st.st_gid} {nl} {st.st_mtime_ns} {c} {x} {st.st_rdev}")
st = os.lstat(root)
out.append(f". {oct(st.st_mode)} {st.st_uid}:{st.st_gid} {st.st_mtime_ns}")
print("\n".join(sorted(out)))
"#;

/// `path mode uid gid nlink mtime content-hash target xattrs rdev` per entry, sorted.
fn listing(root: &Path) -> String {
    const SCRIPT: &str = LISTING_PY;
    let out = Command::new("python3")
        .arg("-c")
        .arg(SCRIPT)
        .arg(root)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "listing failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn diff(a: &str, b: &str) -> String {
    let (la, lb): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
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

/// The installer distribution packer makes from `tree`, extracted like `wsl --import` does.
fn packer_dist(tree: &Path, dir: &Path) -> PathBuf {
    let tarball = dir.join("installer.tar.gz");
    let out = Command::new(dist_bin("packer"))
        .args(["--quiet", "--rootfs"])
        .arg(tree)
        .arg("--out")
        .arg(&tarball)
        .arg("--installer")
        .arg(dist_bin("installer"))
        .arg("--init")
        .arg(dist_bin("installer")) // any static binary will do as init here
        .env("SOURCE_DATE_EPOCH", "1000")
        .output()
        .expect("packer runs");
    assert!(
        out.status.success(),
        "packer failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let base = dir.join("base");
    fs::create_dir_all(&base).expect("mkdir");
    sh(&format!(
        "bsdtar -C {} -x -p --xattrs --numeric-owner -f {}",
        base.display(),
        tarball.display()
    ));
    base
}

/// An installer distribution around `payload_tar` (an uncompressed tar), gzip-compressed
/// here without a chunk index; `corrupt` may damage the compressed bytes first.
fn gnu_dist(dir: &Path, payload_tar: &Path, corrupt: impl FnOnce(&mut Vec<u8>)) -> PathBuf {
    let base = dir.join("base");
    fs::create_dir_all(base.join("nixos-wsl")).expect("mkdir");
    sh(&format!(
        "cd {b} && mkdir -p bin etc root tmp && ln -s /nixos-wsl/installer bin/sh
         printf 'root:x:0:0:root:/root:/nixos-wsl/installer\\n' > etc/passwd
         printf '[user]\\ndefault=root\\n' > etc/wsl.conf
         cp {i} nixos-wsl/installer",
        b = base.display(),
        i = dist_bin("installer").display()
    ));
    let tar = fs::read(payload_tar).expect("payload tar");
    let entries = String::from_utf8_lossy(
        &Command::new("tar")
            .arg("-tf")
            .arg(payload_tar)
            .output()
            .expect("tar -t")
            .stdout,
    )
    .lines()
    .count();
    let gz = Command::new("gzip")
        .args(["-n", "-c"])
        .arg(payload_tar)
        .output()
        .expect("gzip")
        .stdout;
    let mut gz = gz;
    corrupt(&mut gz);
    let payload = base.join("nixos-wsl/rootfs.tar.gz");
    fs::write(&payload, &gz).expect("payload");
    let sha = Command::new("sha256sum")
        .arg(&payload)
        .output()
        .expect("sha256sum")
        .stdout;
    let sha = String::from_utf8_lossy(&sha)
        .split(' ')
        .next()
        .unwrap_or_default()
        .to_owned();
    let manifest = format!(
        "nixos-wsl-payload 1\nsize {}\nsha256 {sha}\ntar-size {}\nentries {entries}\n",
        gz.len(),
        tar.len()
    );
    fs::write(base.join("nixos-wsl/rootfs.manifest"), manifest).expect("manifest");
    base
}

fn install(root: &Path, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(dist_bin("installer"));
    cmd.arg("--root").arg(root);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("installer runs")
}

fn copy_tree(from: &Path, to: &Path) {
    sh(&format!("cp -a {} {}", from.display(), to.display()));
}

#[test]
fn installs_exactly_the_payload_tree_with_held_back_files_switched_last() {
    require_root();
    let dir = scratch("exact");
    let _cleanup = Cleanup(dir.clone());
    let tree = fixture(&dir);
    let base = packer_dist(&tree, &dir);
    // What the payload holds, extracted by bsdtar into an empty tree.
    let expected = dir.join("expected");
    fs::create_dir(&expected).expect("mkdir");
    sh(&format!(
        "bsdtar -xOf {d}/installer.tar.gz nixos-wsl/rootfs.tar.gz | bsdtar -C {e} -x -p --xattrs --numeric-owner -f - && rm -rf {e}/dev {e}/proc",
        d = dir.display(),
        e = expected.display()
    ));
    {
        let target = dir.join("target");
        copy_tree(&base, &target);
        let out = install(&target, &[]);
        assert!(
            out.status.success(),
            "install failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !target.join("nixos-wsl").exists(),
            "the installer removes itself"
        );
        let passwd = fs::read_to_string(target.join("etc/passwd")).expect("passwd");
        assert!(
            passwd.starts_with(&format!("root:x:0:0:root:/root:{INIT}\n")),
            "{passwd}"
        );
        assert_eq!(
            fs::read_link(target.join("usr/sbin/init")).expect("/sbin/init"),
            Path::new(INIT),
            "packer's /sbin/init, committed at the end"
        );
        // The root's own metadata is not the payload's business in an extraction.
        let without_root = |l: String| {
            l.lines()
                .filter(|l| !l.starts_with(". "))
                .collect::<Vec<_>>()
                .join("\n")
        };
        let (want, got) = (
            without_root(listing(&expected)),
            without_root(listing(&target)),
        );
        assert!(
            want == got,
            "installed tree differs from the payload:\n{}",
            diff(&want, &got)
        );
    }
}

#[test]
fn a_kill_at_any_checkpoint_then_a_rerun_gives_the_same_tree() {
    require_root();
    let dir = scratch("kill");
    let _cleanup = Cleanup(dir.clone());
    let tree = fixture(&dir);
    let base = packer_dist(&tree, &dir);
    let reference = dir.join("reference");
    copy_tree(&base, &reference);
    let out = install(&reference, &[("NIXOS_WSL_INSTALLER_CRASH_AT", "0")]);
    assert!(
        out.status.success(),
        "install failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let count: u64 = stderr
        .lines()
        .find_map(|l| l.strip_prefix("installer: checkpoints: "))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no checkpoint count in: {stderr}"));
    assert!(
        count > 40,
        "too few checkpoints ({count}) to spread kills over"
    );
    let want = listing(&reference);
    // 14 spread over the whole install (early entries, mid-file, directories' metadata) and
    // the last 24: the moves from the staging directory into place (one per entry the tree
    // already has or not), sync, payload removal, each held-back rename and its sync, cleanup.
    let mut points: Vec<u64> = (1..=14).map(|i| 1 + (count - 25) * i / 15).collect();
    points.extend(count - 23..=count);
    points.dedup();
    assert!(points.len() >= 20);
    for point in &points {
        let target = dir.join(format!("t{point}"));
        copy_tree(&base, &target);
        let at = point.to_string();
        let out = install(&target, &[("NIXOS_WSL_INSTALLER_CRASH_AT", &at)]);
        assert_eq!(
            out.status.signal(),
            Some(9),
            "checkpoint {point} did not kill: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = install(&target, &[]);
        assert!(
            out.status.success(),
            "rerun after kill at {point} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got = listing(&target);
        assert!(
            want == got,
            "kill at checkpoint {point} of {count}, then rerun:\n{}",
            diff(&want, &got)
        );
        let _ = fs::remove_dir_all(&target);
    }
}

#[test]
fn two_installers_at_once_one_installs_the_other_waits() {
    require_root();
    let dir = scratch("twice");
    let _cleanup = Cleanup(dir.clone());
    let tree = fixture(&dir);
    let base = packer_dist(&tree, &dir);
    let reference = dir.join("reference");
    copy_tree(&base, &reference);
    assert!(install(&reference, &[]).status.success());
    let target = dir.join("target");
    copy_tree(&base, &target);
    let spawn = || {
        Command::new(dist_bin("installer"))
            .arg("--root")
            .arg(&target)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("installer starts")
    };
    let (a, b) = (spawn(), spawn());
    for child in [a, b] {
        let out = child.wait_with_output().expect("wait");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let (want, got) = (listing(&reference), listing(&target));
    assert!(want == got, "{}", diff(&want, &got));
}

/// Builds a bad tar with Python's tarfile (GNU tar refuses to write most of these).
fn bad_tar(dir: &Path, kind: &str) -> PathBuf {
    const SCRIPT: &str = r#"
import io, sys, tarfile
kind, out = sys.argv[1], sys.argv[2]
buf = io.BytesIO()
t = tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT)
def add(name, type=tarfile.REGTYPE, data=b"", link="", mode=None, pax=None):
    i = tarfile.TarInfo(name); i.type = type; i.linkname = link; i.size = len(data); i.mode = 0o755 if type == tarfile.DIRTYPE else 0o644
    if mode is not None: i.mode = mode
    if pax: i.pax_headers = pax
    t.addfile(i, io.BytesIO(data) if data else None)
add("./", tarfile.DIRTYPE); add("etc/", tarfile.DIRTYPE); add("etc/hostname", data=b"good\n")
shell = {"no-init": b"/usr/libexec/nixos-wsl/init", "shell-not-executable": b"/bin/sh"}.get(kind, b"/bin/sh")
add("etc/passwd", data=b"root:x:0:0:root:/root:" + shell + b"\n")
add("bin/", tarfile.DIRTYPE); add("bin/sh", data=b"exec true\n", mode=0o644 if kind == "shell-not-executable" else 0o755)
if kind == "bad-capability": add("bin/ping", data=b"x", pax={"SCHILY.xattr.security.capability": "junk"})
if kind == "dotdot": add("../escaped", data=b"x")
if kind == "absolute": add("/etc/escaped", data=b"x")
if kind == "symlink-escape": add("esc", tarfile.SYMTYPE, link="/"); add("esc/etc/evil", data=b"x")
if kind == "hardlink-outside": add("link", tarfile.LNKTYPE, link="../../etc/shadow")
if kind == "hardlink-later": add("link", tarfile.LNKTYPE, link="etc/later"); add("etc/later", data=b"x")
add("etc/last", data=b"y" * 1000)
t.close()
data = bytearray(buf.getvalue())
def header_at(name):
    for off in range(0, len(data), 512):
        if data[off:off + len(name) + 1] == name + b"\0": return off
    raise SystemExit("no header " + name.decode())
def fix(off):
    data[off + 148:off + 156] = b"        "
    data[off + 148:off + 156] = b"%06o\0 " % sum(data[off:off + 512])
if kind == "checksum":
    off = header_at(b"etc/hostname"); data[off + 100:off + 108] = b"0000777\0"
if kind == "absurd-size":
    off = header_at(b"etc/last"); data[off + 124:off + 136] = b"77777777777\0"; fix(off)
open(out, "wb").write(data)
"#;
    let out = dir.join(format!("{kind}.tar"));
    let status = Command::new("python3")
        .arg("-c")
        .arg(SCRIPT)
        .arg(kind)
        .arg(&out)
        .status()
        .expect("python3 runs");
    assert!(status.success(), "building the {kind} tar failed");
    out
}

#[test]
fn bad_payloads_are_refused_with_nothing_changed() {
    require_root();
    let dir = scratch("bad");
    let _cleanup = Cleanup(dir.clone());
    let good = bad_tar(&dir, "good");
    type Corrupt = Box<dyn Fn(&mut Vec<u8>)>;
    let cases: Vec<(&str, PathBuf, Corrupt, &str)> = vec![
        (
            "truncated",
            good.clone(),
            Box::new(|gz: &mut Vec<u8>| gz.truncate(gz.len() / 2)),
            "",
        ),
        (
            "flipped byte",
            good.clone(),
            Box::new(|gz: &mut Vec<u8>| gz[40] ^= 0x55),
            "",
        ),
        (
            "bad CRC",
            good.clone(),
            Box::new(|gz: &mut Vec<u8>| {
                let n = gz.len();
                gz[n - 7] ^= 1
            }),
            "CRC",
        ),
        (
            "bad checksum",
            bad_tar(&dir, "checksum"),
            Box::new(|_: &mut Vec<u8>| {}),
            "checksum",
        ),
        (
            "dotdot",
            bad_tar(&dir, "dotdot"),
            Box::new(|_: &mut Vec<u8>| {}),
            "'..'",
        ),
        (
            "absolute",
            bad_tar(&dir, "absolute"),
            Box::new(|_: &mut Vec<u8>| {}),
            "absolute",
        ),
        (
            "symlink escape",
            bad_tar(&dir, "symlink-escape"),
            Box::new(|_: &mut Vec<u8>| {}),
            "goes through the symlink",
        ),
        (
            "hard link outside",
            bad_tar(&dir, "hardlink-outside"),
            Box::new(|_: &mut Vec<u8>| {}),
            "'..'",
        ),
        (
            "hard link to a later entry",
            bad_tar(&dir, "hardlink-later"),
            Box::new(|_: &mut Vec<u8>| {}),
            "not an earlier file",
        ),
        (
            "absurd size",
            bad_tar(&dir, "absurd-size"),
            Box::new(|_: &mut Vec<u8>| {}),
            "runs past the end",
        ),
        (
            "invalid security.capability",
            bad_tar(&dir, "bad-capability"),
            Box::new(|_: &mut Vec<u8>| {}),
            "security.capability value the kernel refuses",
        ),
        (
            "no init",
            bad_tar(&dir, "no-init"),
            Box::new(|_: &mut Vec<u8>| {}),
            "root's shell /usr/libexec/nixos-wsl/init (the payload's /etc/passwd) is not in the payload",
        ),
        (
            "shell not executable",
            bad_tar(&dir, "shell-not-executable"),
            Box::new(|_: &mut Vec<u8>| {}),
            "is not executable",
        ),
    ];
    for (name, tar, corrupt, message) in cases {
        let case = dir.join(name.replace(' ', "-"));
        let base = gnu_dist(&case, &tar, corrupt);
        let before = listing(&base);
        let out = install(&base, &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
        assert!(
            (stderr.contains("nothing was changed")
                || stderr.contains("this start changed nothing"))
                && stderr.contains(message),
            "{name}: {stderr}"
        );
        let after = listing(&base);
        assert!(
            before == after,
            "{name} changed the tree:\n{}",
            diff(&before, &after)
        );
    }
    // The same tar unchanged installs (the corpus fails for the reason given, not another).
    let base = gnu_dist(&dir.join("good"), &good, |_| {});
    let out = install(&base, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        fs::read(base.join("etc/hostname")).expect("hostname"),
        b"good\n"
    );
}

#[test]
fn usage_and_not_root() {
    let out = Command::new(dist_bin("installer"))
        .arg("--bogus")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(dist_bin("installer"))
        .arg("--help")
        .output()
        .expect("runs");
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("Exit codes"));
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(dist_bin("installer"))
        .args(["-c", "true"])
        .output()
        .expect("setpriv runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("must run as root"));
}

#[test]
fn a_damaged_chunked_payload_is_refused_with_nothing_changed() {
    require_root();
    let dir = scratch("bad-chunked");
    let _cleanup = Cleanup(dir.clone());
    let tree = fixture(&dir);
    let base = packer_dist(&tree, &dir);
    let manifest_path = base.join("nixos-wsl/rootfs.manifest");
    let manifest = fs::read_to_string(&manifest_path).expect("manifest");
    assert!(
        manifest.contains("\nchunk "),
        "packer writes a chunk index: {manifest}"
    );
    let payload = base.join("nixos-wsl/rootfs.tar.gz");
    let mut data = fs::read(&payload).expect("payload");
    let middle = data.len() / 2;
    data[middle] ^= 0x20;
    fs::write(&payload, &data).expect("write");
    // As downloaded: the digest catches it, or the deflate data first when it breaks there.
    let before = listing(&base);
    let out = install(&base, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        (stderr.contains("SHA-256") || stderr.contains("deflate data is corrupt"))
            && stderr.contains("nothing was changed"),
        "{stderr}"
    );
    assert!(before == listing(&base), "the tree changed");
    // With a manifest that agrees with the damage, the deflate data or the CRC catches it.
    let sha = Command::new("sha256sum")
        .arg(&payload)
        .output()
        .expect("sha256sum")
        .stdout;
    let sha = String::from_utf8_lossy(&sha)
        .split(' ')
        .next()
        .unwrap_or_default()
        .to_owned();
    let manifest: String = manifest
        .lines()
        .map(|l| {
            if l.starts_with("sha256 ") {
                format!("sha256 {sha}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    fs::write(&manifest_path, manifest).expect("manifest");
    let before = listing(&base);
    let out = install(&base, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        (stderr.contains("deflate data is corrupt") || stderr.contains("CRC"))
            && stderr.contains("nothing was changed"),
        "{stderr}"
    );
    assert!(before == listing(&base), "the tree changed");
}

/// The kernel release WSL's inbox modules are mounted for (`uname -r` in WSL 2).
const REL: &str = "6.6.87.2-microsoft-standard-WSL2";

/// What WSL does to the installer distribution at every start before root's shell runs, each
/// mount after a `mkdir -p` of its target (microsoft/WSL `src/linux/init/util.cpp:1787`):
/// modules on `/lib/modules/<release>` (`main.cpp:3160-3189`, `config.cpp:1110-1126`), GPU
/// shares on `/usr/lib/wsl/{lib,drivers}` (`config.cpp:1040-1056`), WSLg's `/mnt/wslg` and
/// `/tmp/.X11-unix`, `/proc`, `/run` (`config.cpp:190-229`), the read-only bind on `/init`;
/// the links `/bin/wslpath`, `/bin/wslinfo`, `/sbin/mount.drvfs` to `/init`
/// (`config.cpp:212-216`), `/etc/hostname` and `/etc/hosts` (`config.cpp:789`, `:815`),
/// `/etc/resolv.conf` relinked (`init.cpp:1225`), `/etc/ld.so.conf.d/ld.wsl.conf`. Each mount
/// holds a file `marker` naming it. With `shared`, the tree is a shared mount, so the kernel
/// refuses `MS_MOVE` of the mounts on it. For a bash script run by [`in_mount_namespace`].
fn wsl_start(t: &Path, shared: bool) -> String {
    let shared = if shared {
        format!(
            "mount --bind {t} {t} && mount --make-shared {t}\n",
            t = t.display()
        )
    } else {
        String::new()
    };
    format!(
        r#"{shared}T={t}
mounts="lib/modules/{REL} usr/lib/wsl/lib usr/lib/wsl/drivers mnt/wslg tmp/.X11-unix run"
for m in $mounts proc; do mkdir -p $T/$m && touch -d @5000 $T/$m; done
touch -d @5000 $T/mnt $T/init
for m in $mounts; do
  mount -t tmpfs -o size=1m wsl-$(basename $m) $T/$m && echo $m > $T/$m/marker
done
mount -t proc proc $T/proc
mount --bind -o ro /bin/true $T/init
mkdir -p $T/bin $T/sbin $T/etc/ld.so.conf.d
ln -sfn /init $T/bin/wslpath && ln -sfn /init $T/bin/wslinfo && ln -sfn /init $T/sbin/mount.drvfs
echo wsl-host > $T/etc/hostname && printf '127.0.0.1 localhost wsl-host\n' > $T/etc/hosts
rm -f $T/etc/resolv.conf && ln -s /mnt/wsl/resolv.conf $T/etc/resolv.conf
echo /usr/lib/wsl/lib > $T/etc/ld.so.conf.d/ld.wsl.conf
touch -h -d @5000 $T/bin/wslpath $T/bin/wslinfo $T/sbin/mount.drvfs $T/etc/hostname $T/etc/hosts \
  $T/etc/resolv.conf $T/etc/ld.so.conf.d/ld.wsl.conf $T/etc/ld.so.conf.d $T/usr/lib/wsl $T/lib/modules
touch -d @5000 $T/bin $T/sbin $T/etc
"#,
        t = t.display()
    )
}

/// The mounts on the tree (`POINT TYPE`, relative) and what each one's marker says, as seen
/// from inside the namespace; for the end of a script.
fn mounts_report(t: &Path) -> String {
    format!(
        r#"echo '--- mounts'
awk -v t={t}/ 'index($5, t) == 1 {{ print substr($5, length(t) + 1), $(NF - 2) }}' /proc/self/mountinfo | sort
for m in $(awk -v t={t}/ 'index($5, t) == 1 {{ print substr($5, length(t) + 1) }}' /proc/self/mountinfo); do
  [ -f {t}/$m/marker ] && echo "marker $m: $(cat {t}/$m/marker)"
done | sort
echo "through /lib: $(cat {t}/lib/modules/{REL}/marker 2>&1)"
"#,
        t = t.display()
    )
}

/// Runs a bash script in a mount namespace of its own (private: nothing leaks to the host, and
/// its mounts go with it).
/// `installer --root t` right after WSL's start in `t` (its mounts and files, [`wsl_start`]),
/// then [`mounts_report`]: the output, with stdout and stderr as text.
fn install_after_wsls_start(installer: &Path, t: &Path, shared: bool) -> (Output, String, String) {
    let out = in_mount_namespace(&format!(
        "{}{} --root {}\n{}",
        wsl_start(t, shared),
        installer.display(),
        t.display(),
        mounts_report(t)
    ));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, stdout, stderr)
}

fn in_mount_namespace(script: &str) -> Output {
    Command::new("unshare")
        .args(["--mount", "--propagation", "private", "bash", "-ec"])
        .arg(script)
        .env("LISTING", LISTING_PY)
        .output()
        .expect("unshare runs")
}

/// Listing without the times of what only the install itself creates (the directories a
/// moved mount needs), which differ between any two runs.
fn listing_without(root: &Path, made_now: &[&str]) -> String {
    listing(root)
        .lines()
        .map(|l| {
            let mut f: Vec<&str> = l.split(' ').collect();
            if made_now.contains(&f[0]) && f.len() > 4 {
                f[4] = "-";
            }
            f.join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn modules_made_now() -> Vec<&'static str> {
    vec![
        "usr/lib/modules",
        Box::leak(format!("usr/lib/modules/{REL}").into_boxed_str()),
    ]
}

/// The expected end state after an install over WSL's obstacles: every mount still there with
/// the same contents, the modules moved to where the merged-usr payload has /lib.
fn assert_wsl_state(report: &str, stderr: &str) {
    let want = format!(
        "--- mounts
init ext4
mnt/wslg tmpfs
proc proc
run tmpfs
tmp/.X11-unix tmpfs
usr/lib/modules/{REL} tmpfs
usr/lib/wsl/drivers tmpfs
usr/lib/wsl/lib tmpfs
marker mnt/wslg: mnt/wslg
marker run: run
marker tmp/.X11-unix: tmp/.X11-unix
marker usr/lib/modules/{REL}: lib/modules/{REL}
marker usr/lib/wsl/drivers: usr/lib/wsl/drivers
marker usr/lib/wsl/lib: usr/lib/wsl/lib
through /lib: lib/modules/{REL}
"
    );
    let got = report
        .split_once("--- mounts")
        .map(|(_, r)| format!("--- mounts{r}"))
        .unwrap_or_default();
    // /init is a bind of a file of the host's root filesystem, whatever its type.
    let got: String = got
        .lines()
        .map(|l| {
            if l.starts_with("init ") {
                "init ext4".to_owned()
            } else {
                l.to_owned()
            }
        })
        .map(|l| l + "\n")
        .collect();
    assert_eq!(got, want, "{stderr}");
}

#[test]
fn installs_over_the_mounts_and_files_wsl_puts_into_the_installer_distribution() {
    require_root();
    let dir = scratch("wsl");
    let _cleanup = Cleanup(dir.clone());
    let tree = fixture(&dir);
    let base = packer_dist(&tree, &dir);
    let installer = dist_bin("installer");
    for shared in [false, true] {
        let t = dir.join(format!("t-shared-{shared}"));
        copy_tree(&base, &t);
        let (out, stdout, stderr) = install_after_wsls_start(&installer, &t, shared);
        assert!(out.status.success(), "shared={shared}: {stdout}{stderr}");
        assert_wsl_state(&stdout, &stderr);
        assert!(
            stderr.contains(&format!(
                "/lib/modules/{REL}: WSL's mount moved to /usr/lib/modules/{REL}"
            )),
            "{stderr}"
        );
        // merged-usr as the payload has it; WSL's links kept where its symlinks lead.
        for (link, to) in [("bin", "usr/bin"), ("sbin", "usr/sbin"), ("lib", "usr/lib")] {
            assert_eq!(fs::read_link(t.join(link)).expect("link"), Path::new(to));
        }
        for wsl in ["usr/bin/wslpath", "usr/bin/wslinfo", "usr/sbin/mount.drvfs"] {
            assert_eq!(
                fs::read_link(t.join(wsl)).expect(wsl),
                Path::new("/init"),
                "{wsl}"
            );
        }
        assert_eq!(
            fs::read_link(t.join("etc/resolv.conf")).expect("resolv.conf"),
            Path::new("/mnt/wsl/resolv.conf"),
            "WSL's files the payload does not have stay"
        );
        assert!(!t.join("nixos-wsl").exists(), "installed and cleaned up");
        let passwd = fs::read_to_string(t.join("etc/passwd")).expect("passwd");
        assert!(passwd.starts_with(&format!("root:x:0:0:root:/root:{INIT}\n")));
    }
}

#[test]
fn a_kill_at_any_point_of_an_install_over_wsls_obstacles_then_a_restart_finishes_it() {
    require_root();
    let dir = scratch("wsl-kill");
    let _cleanup = Cleanup(dir.clone());
    let tree = fixture(&dir);
    let base = packer_dist(&tree, &dir);
    let installer = dist_bin("installer");
    let run = |t: &Path, at: Option<u64>, shared: bool| {
        let first = match at {
            Some(at) => format!(
                "NIXOS_WSL_INSTALLER_CRASH_AT={at} {i} --root {t} || echo \"killed=$?\"\n\
                 {i} --root {t}\n",
                i = installer.display(),
                t = t.display()
            ),
            None => format!(
                "NIXOS_WSL_INSTALLER_CRASH_AT=0 {} --root {}\n",
                installer.display(),
                t.display()
            ),
        };
        let out = in_mount_namespace(&format!(
            "{}{first}{}",
            wsl_start(t, shared),
            mounts_report(t)
        ));
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let reference = dir.join("reference");
    copy_tree(&base, &reference);
    let (ok, stdout, stderr) = run(&reference, None, false);
    assert!(ok, "{stdout}{stderr}");
    assert_wsl_state(&stdout, &stderr);
    let count: u64 = stderr
        .lines()
        .find_map(|l| l.strip_prefix("installer: checkpoints: "))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no checkpoint count in: {stderr}"));
    let made_now = modules_made_now();
    let want = listing_without(&reference, &made_now);
    // Eight spread over the unpack, then every point from the last entries on: the
    // directories' metadata, the mount moves, the carried links, the merge, the record of it,
    // the clean-up and the commit.
    assert!(count > 80, "{count} checkpoints");
    let mut points: Vec<(u64, bool)> = (1..=8).map(|i| (i * (count - 70) / 9, false)).collect();
    points.extend((count - 70..=count).map(|p| (p, false)));
    // On a shared tree a mount moves by a bind and an unmount: a kill between them too.
    let checked: u64 = stderr
        .lines()
        .find_map(|l| l.strip_prefix("installer: checkpoint checked: "))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no checked checkpoint in: {stderr}"));
    points.extend((checked + 1..checked + 6).map(|p| (p, true)));
    for (point, shared) in points {
        let t = dir.join(format!("t{point}-{shared}"));
        copy_tree(&base, &t);
        let (ok, stdout, stderr) = run(&t, Some(point), shared);
        assert!(
            ok,
            "kill at {point} of {count}, then a restart: {stdout}{stderr}"
        );
        assert!(
            stdout.contains("killed=137"),
            "checkpoint {point} did not kill: {stderr}"
        );
        assert_wsl_state(&stdout, &format!("kill at {point} of {count}: {stderr}"));
        let got = listing_without(&t, &made_now);
        assert!(
            want == got,
            "kill at checkpoint {point} of {count}, then a restart:\n{}",
            diff(&want, &got)
        );
        let _ = fs::remove_dir_all(&t);
    }
}

#[test]
fn a_mount_where_the_payload_has_a_file_is_refused_before_anything_changed() {
    require_root();
    let dir = scratch("wsl-refused");
    let _cleanup = Cleanup(dir.clone());
    let tree = fixture(&dir);
    let base = packer_dist(&tree, &dir);
    let t = dir.join("t");
    copy_tree(&base, &t);
    // Two mounts the payload's files are in the way of: one where it has a file, one below a
    // file of it; WSL's own mounts besides.
    let extra = format!(
        "for m in usr/lib/big nix/store/abc-pkg/bin/tool/x; do mkdir -p {t}/$m && mount -t tmpfs x {t}/$m; done\n",
        t = t.display()
    );
    let setup = format!("{}{extra}", wsl_start(&t, false));
    let out = in_mount_namespace(&setup);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let before = listing(&t);
    let out = in_mount_namespace(&format!(
        "{setup}{} --root {} || echo \"exit=$?\"\n",
        dist_bin("installer").display(),
        t.display()
    ));
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(stdout.contains("exit=1"), "{stdout}{stderr}");
    for what in [
        "tmpfs is mounted on /usr/lib/big, where the payload has a file (/usr/lib/big)",
        "tmpfs is mounted on /nix/store/abc-pkg/bin/tool/x: the payload has a file at /nix/store/abc-pkg/bin/tool",
        "this start changed nothing",
    ] {
        assert!(stderr.contains(what), "{what}: {stderr}");
    }
    let after = listing(&t);
    assert!(
        before == after,
        "the tree changed:\n{}",
        diff(&before, &after)
    );
}

/// `du -sk`.
fn kib(path: &Path) -> u64 {
    let out = Command::new("du")
        .arg("-sk")
        .arg(path)
        .output()
        .expect("du");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .expect("du's figure")
}

/// A script that puts a copy of `base` on a tmpfs of `size_k` KiB mounted at `t`.
fn on_small_filesystem(base: &Path, t: &Path, size_k: u64) -> String {
    format!(
        "mkdir -p {t} && mount -t tmpfs -o size={size_k}k small {t} && cp -a {b}/. {t}/\n",
        t = t.display(),
        b = base.display()
    )
}

#[test]
fn staging_without_the_space_says_how_much_to_free_and_changes_nothing() {
    require_root();
    let dir = scratch("space");
    let _cleanup = Cleanup(dir.clone());
    let tree = fixture(&dir);
    let base = packer_dist(&tree, &dir);
    let t = dir.join("t");
    let size = kib(&base) + 1024;
    let out = in_mount_namespace(&format!(
        "{}python3 -c \"$LISTING\" {t} > {d}/before\n{} --root {t} || echo \"exit=$?\"\n\
         python3 -c \"$LISTING\" {t} > {d}/after\ncmp {d}/before {d}/after && echo unchanged\n",
        on_small_filesystem(&base, &t, size),
        dist_bin("installer").display(),
        t = t.display(),
        d = dir.display()
    ));
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        stdout.contains("exit=1") && stdout.contains("unchanged"),
        "{stdout}{stderr}"
    );
    assert!(
        stderr.contains("not enough space to unpack the system")
            && stderr.contains("free at least")
            && stderr.contains("nothing was changed"),
        "{stderr}"
    );
}

/// Issue 10 item 5: killed right after the merge, a restart used to stage a second full copy
/// and, with less than twice the tree's size free, failed with ENOSPC at every start. The
/// merge is recorded now: the restart only completes.
#[test]
fn a_kill_right_after_the_merge_then_a_restart_completes_without_a_second_copy() {
    require_root();
    let dir = scratch("space-kill");
    let _cleanup = Cleanup(dir.clone());
    let tree = fixture(&dir);
    let base = packer_dist(&tree, &dir);
    let reference = dir.join("reference");
    copy_tree(&base, &reference);
    let out = install(&reference, &[("NIXOS_WSL_INSTALLER_CRASH_AT", "0")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let merged: u64 = stderr
        .lines()
        .find_map(|l| l.strip_prefix("installer: checkpoint merged: "))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no merged checkpoint in: {stderr}"));
    // Room for the installer distribution and one unpacked tree, not for a second one.
    let size = kib(&base) + kib(&tree) * 3 / 2;
    let t = dir.join("t");
    let installer = dist_bin("installer");
    let out = in_mount_namespace(&format!(
        "{}NIXOS_WSL_INSTALLER_CRASH_AT={merged} {i} --root {t} || echo \"killed=$?\"\n\
         {i} --root {t}\npython3 -c \"$LISTING\" {t} > {d}/got\n",
        on_small_filesystem(&base, &t, size),
        i = installer.display(),
        t = t.display(),
        d = dir.display()
    ));
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success() && stdout.contains("killed=137"),
        "{stdout}{stderr}"
    );
    assert!(
        stderr.contains("finishing an install that was interrupted after its merge"),
        "{stderr}"
    );
    let without_root = |l: String| {
        l.lines()
            .filter(|l| !l.starts_with(". "))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let want = without_root(listing(&reference));
    let got = without_root(fs::read_to_string(dir.join("got")).expect("listing"));
    assert!(want == got, "{}", diff(&want, &got));
}

#[test]
fn a_payload_1500_directories_deep_installs_and_is_refused_cleanly_when_damaged() {
    require_root();
    let dir = scratch("deep");
    let _cleanup = Cleanup(dir.clone());
    let tar = dir.join("deep.tar");
    let status = Command::new("python3")
        .arg("-c")
        .arg(
            r#"
import io, sys, tarfile
t = tarfile.open(sys.argv[1], "w", format=tarfile.PAX_FORMAT)
def add(name, type=tarfile.REGTYPE, data=b"", mode=0o644):
    i = tarfile.TarInfo(name); i.type = type; i.size = len(data); i.mode = 0o755 if type == tarfile.DIRTYPE else mode
    t.addfile(i, io.BytesIO(data) if data else None)
add("./", tarfile.DIRTYPE); add("etc/", tarfile.DIRTYPE); add("bin/", tarfile.DIRTYPE)
add("etc/passwd", data=b"root:x:0:0:root:/root:/bin/sh\n"); add("bin/sh", data=b"exec true\n", mode=0o755)
path = "deep"
for i in range(1500):
    add(path + "/", tarfile.DIRTYPE); path += "/d"
add(path[:-2] + "/bottom", data=b"found\n")
t.close()
"#,
        )
        .arg(&tar)
        .status()
        .expect("python3");
    assert!(status.success());
    let bottom: PathBuf = ["deep"]
        .into_iter()
        .chain(std::iter::repeat_n("d", 1499))
        .chain(["bottom"])
        .collect();
    // Damaged (the CRC): refused, and the 1500 levels staged are removed again.
    let bad = gnu_dist(&dir.join("bad"), &tar, |gz| {
        let n = gz.len();
        gz[n - 7] ^= 1
    });
    let before = listing(&bad);
    let out = install(&bad, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("CRC") && stderr.contains("nothing was changed"),
        "{stderr}"
    );
    assert!(before == listing(&bad), "the tree changed");
    let good = gnu_dist(&dir.join("good"), &tar, |_| {});
    let out = install(&good, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        fs::read(good.join(&bottom)).expect("the deepest file"),
        b"found\n"
    );
}

/// What an older installer left on real WSL (issue 11): the merge stopped with EBUSY at
/// `/lib/modules/<release>` after `/usr`, `/etc`, `/var` ... had moved into place, the payload
/// still there. Made here by a kill at each point of the merge of a tree without WSL's `/lib`,
/// then WSL's next start: `mkdir -p /lib/modules/<release>` (a real `/lib` while the payload's
/// symlink is not in place yet) and its mount there. This installer repairs it.
#[test]
fn a_distribution_left_half_switched_is_repaired_by_the_next_start() {
    require_root();
    let dir = scratch("half");
    let _cleanup = Cleanup(dir.clone());
    let tree = fixture(&dir);
    let base = packer_dist(&tree, &dir);
    let installer = dist_bin("installer");
    let without_modules = |t: &Path| {
        wsl_start(t, false)
            .replace(&format!("lib/modules/{REL} "), "")
            .replace(" $T/lib/modules", "")
    };
    // The reference: installed with WSL's mounts from the start.
    let reference = dir.join("reference");
    copy_tree(&base, &reference);
    let out = in_mount_namespace(&format!(
        "{}{} --root {}\n",
        wsl_start(&reference, false),
        installer.display(),
        reference.display()
    ));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Where the merge ends when the first start has no /lib.
    let count = dir.join("count");
    copy_tree(&base, &count);
    let out = in_mount_namespace(&format!(
        "{}NIXOS_WSL_INSTALLER_CRASH_AT=0 {} --root {}\n",
        without_modules(&count),
        installer.display(),
        count.display()
    ));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let merged: u64 = stderr
        .lines()
        .find_map(|l| l.strip_prefix("installer: checkpoint merged: "))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no merged checkpoint in: {stderr}"));
    let made_now = modules_made_now();
    let want = listing_without(&reference, &made_now);
    // The merge's checkpoints: one per entry moved or walked into, about 25 in this tree.
    let mut mounted = 0;
    for point in merged - 25..merged {
        let t = dir.join(format!("t{point}"));
        copy_tree(&base, &t);
        let lib = t.join(format!("lib/modules/{REL}"));
        let wsl_without_modules = without_modules(&t);
        let out = in_mount_namespace(&format!(
            "{wsl_without_modules}\
             NIXOS_WSL_INSTALLER_CRASH_AT={point} {i} --root {t} || echo \"killed=$?\"\n\
             [ -L {t}/lib ] || echo old-state\n\
             mkdir -p {lib} && mount -t tmpfs x {lib} && echo lib/modules/{REL} > {lib}/marker\n\
             {i} --root {t}\n{}",
            mounts_report(&t),
            lib = lib.display(),
            t = t.display(),
            i = installer.display()
        ));
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(out.status.success(), "kill at {point}: {stdout}{stderr}");
        assert!(stdout.contains("killed=137"), "{point}: {stderr}");
        if stdout.contains("old-state") {
            mounted += 1;
        }
        assert_wsl_state(&stdout, &format!("kill at {point}: {stderr}"));
        let got = listing_without(&t, &made_now);
        assert!(
            want == got,
            "kill at {point}, then a restart:\n{}",
            diff(&want, &got)
        );
        let _ = fs::remove_dir_all(&t);
    }
    assert!(
        mounted > 3,
        "only {mounted} kills left WSL's real /lib in place"
    );
}

/// A test root filesystem made by `scripts/make-test-rootfs` (set by `scripts/test`).
fn test_rootfs(var: &str, variant: &str) -> PathBuf {
    let path = std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| {
        panic!(
            "{var} is not set: run scripts/test, or export {var}=$(scripts/make-test-rootfs {variant})"
        )
    });
    assert!(
        path.join("etc/passwd").is_file(),
        "{var}={} is not a root filesystem",
        path.display()
    );
    path
}

/// The merged-usr Debian tree (`/lib -> usr/lib`, where WSL mounts the kernel modules); the
/// faithful NixOS system, which has no `/lib`, is the next test's.
#[test]
fn the_debian_payload_installs_over_wsls_obstacles() {
    require_root();
    let (var, variant) = ("TEST_ROOTFS_DEBIAN", "debian");
    let tree = test_rootfs(var, variant);
    let dir = scratch(&format!("wsl-{variant}"));
    let _cleanup = Cleanup(dir.clone());
    let base = packer_dist(&tree, &dir);
    assert_eq!(
        fs::read_link(tree.join("lib")).ok().as_deref(),
        Some(Path::new("usr/lib")),
        "{variant}: the test tree is merged-usr"
    );
    let t = dir.join("t");
    copy_tree(&base, &t);
    let (out, stdout, stderr) = install_after_wsls_start(&dist_bin("installer"), &t, false);
    assert!(out.status.success(), "{variant}: {stdout}{stderr}");
    assert_wsl_state(&stdout, &format!("{variant}: {stderr}"));
    assert_eq!(
        fs::read_link(t.join("usr/bin/wslpath")).expect("wslpath"),
        Path::new("/init")
    );
    let passwd = fs::read_to_string(t.join("etc/passwd")).expect("passwd");
    assert!(
        passwd.starts_with(&format!("root:x:0:0:root:/root:{INIT}\n")),
        "{passwd}"
    );
    assert!(!t.join("nixos-wsl").exists());
}

/// A real NixOS has no `/lib` at all (NIXOS.md: nothing but activation's links in `/bin` and
/// `/usr/bin`), so WSL's `mkdir -p /lib/modules/<release>` makes a real `/lib` the payload
/// does not contradict: the mount stays where WSL put it and the install goes through.
#[test]
fn the_faithful_nixos_payload_installs_over_wsls_obstacles_with_the_modules_left_in_lib() {
    require_root();
    let tree = test_rootfs("TEST_ROOTFS_NIXOS", "nixos");
    assert!(
        fs::symlink_metadata(tree.join("lib")).is_err(),
        "the faithful NixOS tree has a /lib"
    );
    let dir = scratch("wsl-nixos-faithful");
    let _cleanup = Cleanup(dir.clone());
    let base = packer_dist(&tree, &dir);
    let t = dir.join("t");
    copy_tree(&base, &t);
    let (out, stdout, stderr) = install_after_wsls_start(&dist_bin("installer"), &t, false);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!("lib/modules/{REL} tmpfs\n"))
            && !stdout.contains(&format!("usr/lib/modules/{REL} tmpfs")),
        "the modules mount moved: {stdout}"
    );
    let passwd = fs::read_to_string(t.join("etc/passwd")).expect("passwd");
    assert!(
        passwd.starts_with("root:x:0:0:")
            && passwd.lines().next().is_some_and(|l| l.ends_with(INIT)),
        "{passwd}"
    );
    assert!(!t.join("nixos-wsl").exists());
}
