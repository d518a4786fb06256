//! The aarch64 builds (Windows on ARM), run under qemu-user: `init` and `installer` answer
//! their command lines and exit codes as the x86-64 ones do, and the aarch64 installer turns
//! an arm64 Debian installer distribution into exactly the packed tree.
//!
//! qemu-aarch64-static runs the binaries directly where that is enough. The boot test runs the
//! simulator in scripts/lib/with-arm64-emulation, which registers qemu in a binfmt_misc instance
//! of its own user namespace, so the host's binfmt_misc (and a WSLInterop entry) is never
//! touched; what differs from a real ARM machine there is written beside that test.

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use wsl_sim::{dist_bin, host_sh, repo, require_root, rootfs, scratch_dir, text, Distro, Variant};

const EM_AARCH64: u16 = 0xb7;
const INIT: &str = "/usr/libexec/nixos-wsl/init";

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

/// The aarch64 `name` under qemu answers each of `cases` with the x86-64 one's exit code and
/// output, and a usage error (`usage`) is exit code 2.
fn answers_like_the_x86_64_one(name: &str, cases: &[&[&str]], usage: &[&str]) {
    let arm_path = arm_bin(name);
    let native = dist_bin(name);
    for args in cases {
        let arm = emulated(&arm_path, args);
        let x86 = Command::new(&native)
            .args(*args)
            .output()
            .unwrap_or_else(|e| panic!("{name} runs: {e}"));
        assert_eq!(
            arm.status.code(),
            x86.status.code(),
            "{name} {args:?}: aarch64 {:?} vs x86-64 {:?}",
            text(&arm),
            text(&x86)
        );
        assert_eq!(arm.stdout, x86.stdout, "{name} {args:?}: different output");
    }
    let usage = emulated(&arm_path, usage);
    assert_eq!(
        usage.status.code(),
        Some(2),
        "usage error: {:?}",
        text(&usage)
    );
}

#[test]
fn aarch64_init_answers_its_command_line_like_the_x86_64_one() {
    answers_like_the_x86_64_one(
        "init",
        &[&["--version"], &["--help"], &["status", "extra"], &["-h"]],
        &["status", "extra"],
    );
}

#[test]
fn aarch64_installer_answers_its_command_line_like_the_x86_64_one() {
    answers_like_the_x86_64_one(
        "installer",
        &[&["--version"], &["--help"], &["--root"]],
        &["--root"],
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

/// Units of the arm64 Debian tree that fail under emulation, and why; each was checked to start
/// when the x86-64 Debian tree boots in the same emulation namespace, except the first two,
/// which fail there too (the namespace, not qemu). On a real ARM machine none of this applies.
const FAILS_UNDER_EMULATION: &[(&str, &str)] = &[
    (
        "sys-kernel-debug.mount",
        "debugfs cannot be mounted in a user namespace (the emulation's, not FS_USERNS_MOUNT)",
    ),
    (
        "sys-kernel-tracing.mount",
        "tracefs cannot be mounted in a user namespace (the emulation's, not FS_USERNS_MOUNT)",
    ),
    (
        "systemd-sysctl.service",
        "243/CREDENTIALS, EINVAL: systemd sets a unit's credentials up in a child cloned with \
         CLONE_NEWNS (safe_fork_full, FORK_NEW_MOUNTNS), and qemu-user refuses clone() with any \
         namespace flag",
    ),
    (
        "systemd-sysusers.service",
        "243/CREDENTIALS, EINVAL: the credentials clone with CLONE_NEWNS that qemu-user refuses",
    ),
    (
        "systemd-tmpfiles-setup-dev.service",
        "243/CREDENTIALS, EINVAL: the credentials clone with CLONE_NEWNS that qemu-user refuses",
    ),
    (
        "systemd-tmpfiles-setup.service",
        "243/CREDENTIALS, EINVAL: the credentials clone with CLONE_NEWNS that qemu-user refuses",
    ),
    (
        "e2scrub_reap.service",
        "225/NETWORK, EIO: setting up its PrivateNetwork= namespace fails under qemu-user only",
    ),
    (
        "user@1000.service",
        "start timed out (TimeoutStartSec 90 s): the emulated user manager is still busy then",
    ),
];

/// Every session script's start: its arguments and `step NAME ARGS...`, one `wsl-sim run`
/// (`wsl -d`) with its stdout, stderr and exit code in OUT/NAME.{out,err,rc}.
const SESSION_STEPS: &str = r#"
set -u
d=$1 name=$2 sim=$3 out=$4 init=$5
step() {
  local n=$1; shift
  "$sim" run "$d" --name "$name" "$@" </dev/null >"$out/$n.out" 2>"$out/$n.err"
  echo $? >"$out/$n.rc"
}
"#;

/// Every session script's end: `wsl --terminate`, then why units failed, from the journal the
/// instance left in the tree (as root, no session), for the units the `first` step listed
/// after its four lines.
const SESSION_END: &str = r#"
"$sim" terminate "$d"
for u in $(tail -n +5 "$out/first.out"); do
  echo "== $u"; chroot "$d" /bin/journalctl --no-pager -o cat -u "$u" | tail -n 6
done >"$out/journal.out" 2>"$out/journal.err"
"#;

/// What the emulated WSL session does, in one user namespace (between [`SESSION_STEPS`] and
/// [`SESSION_END`]).
const SESSIONS: &str = r#"
step wsl_ns -e /bin/sh -c 'readlink /proc/self/ns/pid'
step first -- 'cat /proc/1/comm; readlink /proc/self/ns/pid; id -un; systemctl is-system-running --wait; systemctl --failed --no-legend --plain | cut -d" " -f1'
step args -e "$init" -c 'id -un; printf "<%s>" "$0" "$@"; exit 42' zero 'a  b' 'c"d' '$x' 'e\f' 'ü' ''
step joined -- "id -un; printf '<%s>' 'a  b' 'c\"d' '\$x' 'e\\f'; exit 7"
printf 'shopt -q login_shell && echo login; id -un\n' |
  "$sim" run "$d" --name "$name" >"$out/login.out" 2>"$out/login.err"
echo $? >"$out/login.rc"
step systemds -e /bin/sh -c 'n=0; for s in /proc/[0-9]*/status; do
  if grep -q "^Name:[[:space:]]*systemd$" "$s" 2>/dev/null &&
     grep "^NSpid:" "$s" 2>/dev/null | awk "{exit !(\$NF == 1)}"; then n=$((n+1)); fi; done; echo $n'
"#;

/// One step of [`SESSIONS`]: exit code, stdout, stderr (the code is None when it never ran).
fn session(out: &Path, step: &str) -> (Option<i32>, String, String) {
    let read =
        |ext: &str| fs::read_to_string(out.join(format!("{step}.{ext}"))).unwrap_or_default();
    (read("rc").trim().parse().ok(), read("out"), read("err"))
}

/// Runs `script` with bash in scripts/lib/with-arm64-emulation, at most `limit`; the namespace
/// (with every process of the instance) is killed when the limit passes.
fn in_emulation(script: &str, args: &[&Path], log: &Path, limit: Duration) -> Option<i32> {
    let log_file = fs::File::create(log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
    let mut child = Command::new(repo().join("scripts/lib/with-arm64-emulation"))
        .args(["bash", "-c", script, "bash"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().expect("dup"))
        .stderr(log_file)
        .process_group(0)
        .spawn()
        .expect("with-arm64-emulation runs");
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status.code();
        }
        if Instant::now() >= deadline {
            // The group holds the namespace's PID 1; its death ends everything in it.
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// The arm64 Debian tree packed with the aarch64 init (`packer --format rootfs --default-user
/// nixos`, plus `pack_args`), imported on the host as `wsl-sim import` does, `configure`d, then
/// `script` (its steps, between [`SESSION_STEPS`] and [`SESSION_END`]) run on it in the emulation (arguments: the tree, the distribution's name, wsl-sim,
/// the results folder, init's path), at most 30 minutes. Returns the results folder and the
/// emulation's log; the distribution is removed when the returned value drops.
fn boot_under_emulation(
    scratch: &str,
    pack_args: &[&str],
    configure: impl FnOnce(&Distro),
    script: &str,
) -> (Distro, PathBuf, String) {
    require_root();
    let tree = rootfs(Variant::DebianArm64);
    let dir = scratch_dir(scratch);
    let archive = dir.join("rootfs.tar.gz");
    let init = arm_bin("init").display().to_string();
    let mut args = vec!["--default-user", "nixos", "--init", &init];
    args.extend_from_slice(pack_args);
    let out = pack(&tree, &archive, &args);
    assert!(out.status.success(), "packer: {:?}", text(&out));
    let distro = Distro::import(&archive).unwrap_or_else(|e| panic!("import: {e}"));
    let _ = fs::remove_file(&archive);
    configure(&distro);

    let results = dir.join("sessions");
    fs::create_dir_all(&results).expect("mkdir");
    let log = dir.join("emulation.log");
    let name = PathBuf::from(distro.name());
    // One emulated boot at a time: two would share the machine's cores and each take longer
    // than systemd's own start timeouts allow.
    static ONE_BOOT: Mutex<()> = Mutex::new(());
    let _one = ONE_BOOT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let code = in_emulation(
        &format!("{SESSION_STEPS}{script}{SESSION_END}"),
        &[
            distro.dir(),
            &name,
            &dist_bin("wsl-sim"),
            &results,
            Path::new(INIT),
        ],
        &log,
        Duration::from_secs(30 * 60),
    );
    // The script's last session terminates the instance, whose keeper then removes its cgroup;
    // after a timeout nothing did.
    if let Ok(state) = wsl_sim::sim::state::State::for_distro(distro.dir()) {
        wsl_sim::sim::cgroup::remove(&state.key());
    }
    let log_text = fs::read_to_string(&log).unwrap_or_default();
    assert!(
        code.is_some(),
        "the emulated sessions did not end within 30 minutes\nfirst: {:?}\njournal: {:?}\n{log_text}",
        session(&results, "first"),
        session(&results, "journal"),
    );
    (distro, results, log_text)
}

/// systemd's state is `running` or `degraded`, and every failed unit is one whose failure under
/// emulation is explained in [`FAILS_UNDER_EMULATION`].
fn assert_booted(state: &str, failed: &[&str], results: &Path, context: &str) {
    let (_, journal, _) = session(results, "journal");
    assert!(
        ["running", "degraded"].contains(&state),
        "systemd's state after boot: {state}\n{context}\n{journal}"
    );
    for unit in failed {
        assert!(
            FAILS_UNDER_EMULATION.iter().any(|(u, _)| u == unit),
            "{unit} failed under emulation, and no reason is written down for it:\n{journal}"
        );
    }
}

/// Boots under qemu take minutes: the first shell waits for READY=1 up to 15 of them.
fn long_boot_timeout(distro: &Distro) {
    let config = distro.path("/etc/nixos-wsl/init.conf");
    let conf = fs::read_to_string(&config).expect("init.conf");
    assert!(conf.contains("boot-timeout = 30"), "{conf}");
    fs::write(
        &config,
        conf.replace("boot-timeout = 30", "boot-timeout = 900"),
    )
    .expect("write");
}

/// The arm64 Debian tree, packed with the aarch64 init (rootfs format, shell-wrapper mode) and
/// imported as the simulator imports, boots under qemu-user the way the simulator starts a
/// distribution: `wsl -d` runs root's shell, init, which starts the tree's arm64 systemd as
/// PID 1 of its own PID namespace and runs commands in it as `nixos`.
///
/// Where this differs from a real ARM machine (README, Windows on ARM): the simulator runs in the
/// emulation's user and network namespaces (binfmt_misc of its own needs the user namespace,
/// WSL's sysfs mount the network one), so units that a user namespace forbids fail; qemu-user
/// refuses clone() with namespace flags and gives every process a thread of its own, so units
/// that clone into a namespace fail and init joins systemd's mount namespace through its pidfd
/// fallback; and a boot takes minutes. Each failing unit is named with its reason in
/// [`FAILS_UNDER_EMULATION`]; any other failure fails the test.
#[test]
fn aarch64_init_boots_the_arm64_systemd_under_emulation_and_runs_commands_as_the_user() {
    let (_distro, results, log_text) =
        boot_under_emulation("aarch64-boot", &[], long_boot_timeout, SESSIONS);

    let (rc, wsl_ns, err) = session(&results, "wsl_ns");
    assert_eq!(rc, Some(0), "wsl -e in the emulation: {err}\n{log_text}");
    let (rc, first, err) = session(&results, "first");
    assert!(
        !err.contains("cannot join systemd's mount namespace: Invalid argument"),
        "init started systemd but could not enter it: under qemu-user every process has a \
         thread of qemu's, and setns() into a mount namespace refuses a process that shares its \
         root with another thread (EINVAL); init's pidfd fallback (init/src/enter.rs, \
         join_mount_namespace) is missing or failed:\n{err}"
    );
    assert_eq!(rc, Some(0), "the first shell: {first}\n{err}\n{log_text}");
    let lines: Vec<&str> = first.lines().collect();
    assert!(
        lines.len() >= 4,
        "the first shell printed {first:?} ({err})"
    );
    assert_eq!(
        lines[0], "systemd",
        "PID 1 of the shell's namespace: {first}"
    );
    assert_ne!(
        lines[1],
        wsl_ns.trim(),
        "the shell is still in WSL's PID namespace"
    );
    assert_eq!(lines[2], "nixos", "the first shell's user: {first}");
    assert_booted(lines[3], &lines[4..], &results, &err);

    // A command with its arguments byte for byte and its exit code, as the user.
    let (rc, args, err) = session(&results, "args");
    assert_eq!(rc, Some(42), "init -c: {args}\n{err}");
    assert_eq!(args, "nixos\n<zero><a  b><c\"d><$x><e\\f><ü><>", "{err}");
    // And through `wsl -- ...`, which joins the words into one -c argument.
    let (rc, joined, err) = session(&results, "joined");
    assert_eq!(rc, Some(7), "wsl --: {joined}\n{err}");
    assert_eq!(joined, "nixos\n<a  b><c\"d><$x><e\\f>", "{err}");
    // `wsl -d` alone: a login shell (argv[0] `-init`, then `-bash`) reading the piped input.
    let (rc, login, err) = session(&results, "login");
    assert_eq!(rc, Some(0), "wsl -d: {login}\n{err}");
    assert_eq!(login, "login\nnixos\n", "{err}");
    // The later shells entered the first one's systemd.
    let (_, count, err) = session(&results, "systemds");
    assert_eq!(count.trim(), "1", "systemd PID 1s in the instance: {err}");
}

/// Native mode's sessions: WSL boots init as `/sbin/init` (PID 1 of the instance), init execs
/// systemd with the masks on its command line, and sessions run as the default user.
const NATIVE_SESSIONS: &str = r#"
step first -- 'cat /proc/1/comm; id -un; systemctl show -p LoadState --value systemd-binfmt.service; systemctl is-system-running --wait; systemctl --failed --no-legend --plain | cut -d" " -f1'
step joined -- "id -un; printf '<%s>' 'a  b' 'c\"d' '\$x' 'e\\f'; exit 7"
"#;

/// The same tree packed for native mode (`--systemd native`: `[boot] systemd=true`, init as
/// `/sbin/init`) boots under qemu-user: the simulator's PID 1 execs the aarch64 init, which
/// prepares the system and execs the arm64 systemd with the masks on its command line; sessions
/// run as `nixos`. WSL's own wait for systemd (`[boot] initTimeout`) is raised to 15 minutes
/// for the emulated boot. Differences from an ARM machine: as for shell-wrapper mode above.
#[test]
fn aarch64_init_as_sbin_init_boots_the_arm64_systemd_natively_under_emulation() {
    let configure = |distro: &Distro| {
        long_boot_timeout(distro);
        let path = distro.path("/etc/wsl.conf");
        let conf = fs::read_to_string(&path).expect("wsl.conf");
        assert!(conf.contains("\nsystemd=true\n"), "{conf}");
        let raised = conf.replacen(
            "\nsystemd=true\n",
            "\nsystemd=true\ninitTimeout=900000\n",
            1,
        );
        fs::write(&path, raised).expect("write");
    };
    let (_distro, results, log_text) = boot_under_emulation(
        "aarch64-boot-native",
        &["--systemd", "native"],
        configure,
        NATIVE_SESSIONS,
    );
    let (rc, first, err) = session(&results, "first");
    assert_eq!(rc, Some(0), "the first session: {first}\n{err}\n{log_text}");
    let lines: Vec<&str> = first.lines().collect();
    assert!(
        lines.len() >= 4,
        "the first session printed {first:?} ({err})"
    );
    assert_eq!(lines[0], "systemd", "the instance's PID 1: {first}");
    assert_eq!(lines[1], "nixos", "the session's user: {first}");
    assert_eq!(
        lines[2], "masked",
        "systemd-binfmt, masked on systemd's command line: {first}"
    );
    assert_booted(lines[3], &lines[4..], &results, &err);
    let (rc, joined, err) = session(&results, "joined");
    assert_eq!(rc, Some(7), "wsl --: {joined}\n{err}");
    assert_eq!(joined, "nixos\n<a  b><c\"d><$x><e\\f>", "{err}");
}
