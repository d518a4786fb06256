//! Issue 12's "Done when" on the faithful NixOS test system (docs/test-data.md), module
//! variant, end to end in the simulator: packed by packer in the installer and rootfs formats,
//! in both systemd modes, imported as `wsl --import` does, then started, terminated, activated a
//! second time (what `nixos-rebuild switch` does) and started again. After every (re)start one
//! helper, [`holds`], asserts the whole list in one session: PID 1 is the store's systemd, the
//! session is `nixos` with its groups, `running` with the hostile units masked and
//! `/etc/systemd/system` still the link through `/etc/static`, `sudo -i` through
//! `/run/wrappers` with no second systemd, `/etc/set-environment` in a `-c` command, and
//! `systemctl --user`; after each native start [`native_sessions`] adds the user-shell mode's
//! sessions (`wsl -e`, `wsl -u root`, exit codes, WSL's variables). Also: the stock system (no module) is refused by packer and by
//! `packer check`, and the bare make-system-tarball archives (gzip and xz) boot with their Nix
//! database loaded. Boots are few and combined (each costs 10-40 s on a loaded machine).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use wsl_common::units::hostile_unit_names;
use wsl_sim::{dist_bin, require_root, rootfs, scratch_dir, text, Distro, Variant};

const INIT: &str = "/usr/libexec/nixos-wsl/init";
const ACTIVATE: &str = "/nix/var/nix/profiles/system/activate";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Wrapper,
    Native,
}

/// `packer --default-user nixos` of `variant` into `out`, with `extra` arguments; packer's
/// stderr (its warnings).
fn pack(variant: Variant, out: &Path, extra: &[&str]) -> String {
    wsl_sim::pack_for_nixos_user(variant, out, extra)
}

/// `packer check ARCHIVE`: exit status, stdout and stderr.
fn check(archive: &Path) -> (bool, String) {
    let out = Command::new(dist_bin("packer"))
        .arg("check")
        .arg(archive)
        .output()
        .expect("packer runs");
    let (stdout, stderr) = text(&out);
    (out.status.success(), format!("{stdout}{stderr}"))
}

/// What one session reports, `key=value` per line.
struct Report {
    values: BTreeMap<String, String>,
    stderr: String,
    raw: String,
}

impl Report {
    fn get(&self, key: &str) -> &str {
        self.values
            .get(key)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("no {key} in the session's report:\n{}", self.raw))
    }
}

/// The session that gathers the whole list: `wsl -- SCRIPT` (a `-c` command through init as
/// the default user: root's shell in wrapper mode, the user's own in native mode).
fn report(distro: &Distro) -> Report {
    let units: Vec<&str> = hostile_unit_names().collect();
    let script = format!(
        r#"echo "user=$(id -un)"
echo "groups=$(id -Gn)"
echo "pid1=$(sudo readlink /proc/1/exe)"
echo "state=$(systemctl is-system-running --wait)"
echo "units_link=$(readlink /etc/systemd/system)"
echo "units_dir=$(readlink -f /etc/systemd/system)"
echo "set_environment=${{NIXOS_TEST_SET_ENVIRONMENT:-unset}}"
echo "root_shell=$(getent passwd root | cut -d: -f7)"
for u in {units}; do
  echo "mask:$u=$(systemctl show -P LoadState "$u") $(readlink /run/systemd/generator.early/"$u")"
done
echo "sudo=$(command -v sudo)"
echo "sudo_file=$(stat -c '%a %U' "$(readlink -f /run/wrappers/bin/sudo)")"
echo "sudo_i=$(sudo -i sh -c 'echo $(id -un) $(cat /proc/1/comm) $(ps -eo args= | grep -c "[s]ystemd.mask=")')"
echo "system_managers=$(ps -eo args= | grep -c '[s]ystemd.mask=')"
echo "user_manager=$(systemctl --user is-system-running --wait)"
"#,
        units = units.join(" ")
    );
    let out = distro.run(&["--", &script]);
    let (stdout, stderr) = text(&out);
    let raw = format!("stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(out.status.code(), Some(0), "{raw}");
    let values = stdout
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    Report {
        values,
        stderr,
        raw,
    }
}

/// Which start of the distribution a check follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    /// An installer's first start: WSL set the instance up in the installer's own tree, whose
    /// wsl.conf turns `mount -a` off (it has no /bin/mount and no fstab).
    Installer,
    /// A bare tarball's first start: WSL set the instance up before the system's first
    /// activation made the module's /bin links.
    BareTarball,
    /// A start of the activated NixOS system.
    System,
}

/// The whole list of issue 12's "Done when", after a (re)start.
fn holds(distro: &Distro, mode: Mode, start: Start, when: &str) {
    let r = report(distro);
    let ctx = |what: &str| format!("{when}: {what}\n{}", r.raw);
    // WSL's own complaints about the system: the module links /bin/mount (`mount -a`),
    // /bin/login and, in native mode, systemctl and grep where WSL's waits look for them. (At
    // a bare tarball's first start WSL ran `mount -a` in a tree without /bin/mount or fstab,
    // which has nothing outside the store yet: a known limit, docs/packer.md.)
    if start != Start::BareTarball {
        assert!(!r.stderr.contains("mount -a failed"), "{}", ctx("mount -a"));
    }
    assert!(
        !r.stderr
            .contains("Failed to start the systemd user session"),
        "{}",
        ctx("WSL's user session")
    );
    let pid1 = r.get("pid1");
    assert!(
        pid1.starts_with("/nix/store/")
            && pid1.contains("-systemd-")
            && pid1.ends_with("/lib/systemd/systemd"),
        "{}",
        ctx("PID 1 is not the store's systemd")
    );
    assert_eq!(r.get("user"), "nixos", "{}", ctx("the session's user"));
    assert_eq!(
        r.get("groups"),
        "users wheel",
        "{}",
        ctx("the user's groups")
    );
    assert_eq!(r.get("state"), "running", "{}", ctx("is-system-running"));
    assert_eq!(
        r.get("units_link"),
        "/etc/static/systemd/system",
        "{}",
        ctx("/etc/systemd/system is not the store link")
    );
    assert!(
        r.get("units_dir").starts_with("/nix/store/")
            && r.get("units_dir").ends_with("-system-units"),
        "{}",
        ctx("/etc/systemd/system does not lead to the system's units")
    );
    for unit in hostile_unit_names() {
        assert_eq!(
            r.get(&format!("mask:{unit}")),
            "masked /dev/null",
            "{}",
            ctx(&format!("{unit} is not masked on systemd's command line"))
        );
    }
    assert_eq!(
        r.get("set_environment"),
        "1",
        "{}",
        ctx("-c without /etc/set-environment")
    );
    assert_eq!(
        r.get("root_shell"),
        INIT,
        "{}",
        ctx("root's shell is no longer init")
    );
    assert_eq!(r.get("sudo"), "/run/wrappers/bin/sudo", "{}", ctx("sudo"));
    assert_eq!(
        r.get("sudo_file"),
        "4511 root",
        "{}",
        ctx("the setuid wrapper")
    );
    assert_eq!(
        r.get("sudo_i"),
        "root systemd 1",
        "{}",
        ctx("sudo -i: root inside the one systemd")
    );
    assert_eq!(r.get("system_managers"), "1", "{}", ctx("a second systemd"));
    assert_eq!(
        r.get("user_manager"),
        "running",
        "{}",
        ctx("systemctl --user")
    );

    // Which mode booted: in native mode the instance's own PID 1 (WSL's view) is systemd; in
    // wrapper mode it is WSL's init, and systemd is PID 1 of init's namespace.
    let pid = distro
        .instance_pid()
        .unwrap_or_else(|| panic!("{}", ctx("no instance")));
    let exe = fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
    let systemd_is_instance_pid1 = exe.to_string_lossy().ends_with("/lib/systemd/systemd");
    assert_eq!(
        systemd_is_instance_pid1,
        mode == Mode::Native,
        "{}",
        ctx(&format!(
            "{mode:?} mode, but the instance's PID 1 is {}",
            exe.display()
        ))
    );
}

/// A native-mode start of the module system: WSL starts the default user itself (`[user]
/// default=nixos`), whose shell is init (user-shell mode), and root's shell is init too.
/// `wsl -e init -c` and `wsl -- CMD` commands get `/etc/set-environment` with WSL's variables
/// and the Windows PATH kept, in the working directory asked for, exit codes kept; `wsl -e`
/// runs as the user; `wsl -u root` is root with root's real shell, its commands NixOS's
/// environment too.
fn native_sessions(distro: &Distro, when: &str) {
    const REAL_SHELL: &str = "/run/current-system/sw/bin/bash";
    let probe = r#"echo "user=$(id -un) $(id -Gn)"
echo "set_environment=${NIXOS_TEST_SET_ENVIRONMENT:-unset}"
echo "path=$PATH"
echo "shell=$SHELL"
echo "wsl=${WSL_DISTRO_NAME:-unset} ${WSL_INTEROP:+interop}"
echo "cwd=$(pwd)"
echo "exe=$(readlink /proc/$$/exe)"
exit 7"#;
    let session = |args: &[&str]| {
        let out = distro
            .command()
            .args(["--cd", "/tmp"])
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("wsl-sim runs");
        let (stdout, stderr) = text(&out);
        let raw = format!("{when}: wsl {args:?}\nstdout:\n{stdout}\nstderr:\n{stderr}");
        let values: BTreeMap<String, String> = stdout
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        (out.status.code(), values, raw)
    };
    for args in [&["-e", INIT, "-c", probe][..], &["--", probe]] {
        let (code, v, raw) = session(args);
        let get = |k: &str| v.get(k).map(String::as_str).unwrap_or("missing");
        assert_eq!(code, Some(7), "exit code: {raw}");
        assert_eq!(get("user"), "nixos users wheel", "the user: {raw}");
        assert_eq!(get("set_environment"), "1", "/etc/set-environment: {raw}");
        let path: Vec<&str> = get("path").split(':').collect();
        assert!(
            path.contains(&"/run/current-system/sw/bin"),
            "NixOS's PATH: {raw}"
        );
        // WSL's Windows entries (the simulator's WINDOWS_PATH), after NixOS's.
        assert!(
            path.contains(&"/mnt/c/Windows/System32"),
            "the Windows PATH: {raw}"
        );
        assert_eq!(get("shell"), REAL_SHELL, "SHELL: {raw}");
        assert_eq!(get("wsl"), format!("{} interop", distro.name()), "{raw}");
        assert_eq!(get("cwd"), "/tmp", "the working directory: {raw}");
        assert!(get("exe").ends_with("/bin/bash"), "the real shell: {raw}");
    }
    // `wsl` without a command: the user's login shell, the real one (`-bash`), which reads
    // /etc/profile (and so /etc/set-environment) itself.
    let mut child = distro
        .command()
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("wsl-sim runs");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(
                b"echo login=$0 $(id -un) ${NIXOS_TEST_SET_ENVIRONMENT:-unset} $SHELL\nexit 4\n",
            )
            .expect("write the login shell's input");
    }
    let out = child.wait_with_output().expect("wsl-sim ends");
    let (stdout, stderr) = text(&out);
    assert_eq!(
        (out.status.code(), stdout.trim()),
        (
            Some(4),
            format!("login=-bash nixos 1 {REAL_SHELL}").as_str()
        ),
        "{when}: the login shell:\n{stderr}"
    );
    // `wsl -e` (VS Code) is the user's own program, started by WSL as the user.
    let (code, v, raw) = session(&[
        "-e",
        "/bin/sh",
        "-c",
        "echo user=$(/run/current-system/sw/bin/id -un)",
    ]);
    assert_eq!(
        (code, v.get("user").map(String::as_str)),
        (Some(0), Some("nixos")),
        "{raw}"
    );
    // `wsl -u root`: root's real shell (root's shell in /etc/passwd is init).
    let (code, v, raw) = session(&["-u", "root", "--", probe]);
    let get = |k: &str| v.get(k).map(String::as_str).unwrap_or("missing");
    assert_eq!(code, Some(7), "exit code: {raw}");
    assert_eq!(
        get("user").split(' ').next(),
        Some("root"),
        "wsl -u root: {raw}"
    );
    assert_eq!(get("shell"), REAL_SHELL, "root's SHELL: {raw}");
    assert!(
        get("exe").ends_with("/bin/bash"),
        "root's real shell: {raw}"
    );
    assert_eq!(
        get("set_environment"),
        "1",
        "root's /etc/set-environment: {raw}"
    );
    assert_eq!(get("cwd"), "/tmp", "root's working directory: {raw}");
}

/// Start, terminate and start, activate a second time and start again; the list after each.
/// `first` is the first start's mode (an installer's first start has no WSL systemd: the
/// installer hands over to init, which starts systemd itself).
fn survives_restarts_and_a_second_activation(distro: &Distro, first: (Mode, Start), mode: Mode) {
    holds(distro, first.0, first.1, "first start");
    if first.0 == Mode::Native {
        native_sessions(distro, "first start");
    }
    distro.terminate();
    holds(distro, mode, Start::System, "after wsl --terminate");
    if mode == Mode::Native {
        native_sessions(distro, "after wsl --terminate");
    }
    // What `nixos-rebuild switch` does to the running system: the activation as root.
    let out = distro.run(&["--", &format!("sudo {ACTIVATE}")]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "activate: {stdout}{stderr}");
    distro.terminate();
    holds(
        distro,
        mode,
        Start::System,
        "after a second activation and a restart",
    );
    if mode == Mode::Native {
        native_sessions(distro, "after a second activation and a restart");
    }
    // Nothing wrote into the store through /etc's links: WSL's /etc/hosts (the module leaves
    // the file to WSL), systemd's first-boot presets (NixOS has none), the masks.
    let out = distro.run(&["--", "sudo nix-store --verify --check-contents 2>&1"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "nix-store --verify --check-contents:\n{stdout}{stderr}"
    );
}

fn packed_and_imported(name: &str, variant: Variant, extra: &[&str]) -> (PathBuf, Distro) {
    require_root();
    let dir = scratch_dir(name);
    let archive = dir.join("archive.tar.gz");
    pack(variant, &archive, extra);
    let (clean, findings) = check(&archive);
    assert!(clean, "packer check {}: {findings}", archive.display());
    let distro = Distro::import(&archive).unwrap_or_else(|e| panic!("import: {e}"));
    (dir, distro)
}

#[test]
fn the_module_system_as_an_installer_in_wrapper_mode_holds_through_restarts() {
    let (_dir, distro) = packed_and_imported(
        "nixos-e2e-installer-wrapper",
        Variant::Nixos,
        &["--systemd", "wrapper"],
    );
    survives_restarts_and_a_second_activation(
        &distro,
        (Mode::Wrapper, Start::Installer),
        Mode::Wrapper,
    );
}

#[test]
fn the_module_system_as_a_rootfs_in_wrapper_mode_holds_through_restarts() {
    let (_dir, distro) = packed_and_imported(
        "nixos-e2e-rootfs-wrapper",
        Variant::Nixos,
        &["--format", "rootfs", "--systemd", "wrapper"],
    );
    survives_restarts_and_a_second_activation(
        &distro,
        (Mode::Wrapper, Start::System),
        Mode::Wrapper,
    );
}

/// The system declared with `wsl.systemd = "native"`: WSL boots systemd itself with init as
/// `/sbin/init` and starts the user, whose shell is init; its declared wsl.conf (`[boot]
/// systemd=true`, `[user] default=nixos`) keeps it so after every activation.
#[test]
fn the_native_module_system_as_a_rootfs_in_native_mode_holds_through_restarts() {
    let (_dir, distro) = packed_and_imported(
        "nixos-e2e-rootfs-native",
        Variant::NixosNative,
        &["--format", "rootfs", "--systemd", "native"],
    );
    survives_restarts_and_a_second_activation(&distro, (Mode::Native, Start::System), Mode::Native);
}

#[test]
fn the_native_module_system_as_an_installer_in_native_mode_holds_through_restarts() {
    let (_dir, distro) = packed_and_imported(
        "nixos-e2e-installer-native",
        Variant::NixosNative,
        &["--systemd", "native"],
    );
    survives_restarts_and_a_second_activation(
        &distro,
        (Mode::Wrapper, Start::Installer),
        Mode::Native,
    );
}

/// WSL reads /etc/wsl.conf once, at the instance's start, before it execs `/sbin/init`
/// (init.cpp:2355-2438), and the activation init runs as PID 1 puts the declared one (`[user]
/// default=nixos`) in its place. A start whose wsl.conf still said `default=root` (what packer
/// wrote for this system before) runs every session without `-u` as root: init goes by what
/// WSL read (kept in /run/nixos-wsl at PID 1), drops those sessions to the user, and never
/// mistakes them for `wsl -u root` because the file on disk names the user by then.
#[test]
fn a_native_start_goes_by_the_wsl_conf_wsl_read_before_the_activation() {
    let (_dir, distro) = packed_and_imported(
        "nixos-e2e-native-wsl-conf-at-start",
        Variant::NixosNative,
        &["--format", "rootfs", "--systemd", "native"],
    );
    let conf = distro.path("/etc/wsl.conf");
    let _ = fs::remove_file(&conf);
    fs::write(&conf, "[boot]\nsystemd=true\n[user]\ndefault=root\n").expect("write wsl.conf");
    let out = distro.run(&[
        "--",
        "echo $(id -un) $(cat /run/nixos-wsl/wsl.conf | grep default=) $(grep default= /etc/wsl.conf)",
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert_eq!(
        stdout.trim(),
        "nixos default=root default=nixos",
        "the session, WSL's wsl.conf and the activated one: {stderr}"
    );
}

/// A first start before any activation declared the user (a bare tarball's: its /etc/passwd has
/// root alone): WSL mounts the drives at the instance's start, when getpwnam cannot find
/// `[user] default` yet (config.cpp:690-701: the registry's uid, root, unless `[automount]
/// options` say otherwise, as the module's do), but looks the session's user up per session,
/// after its boot wait (init.cpp:1219, :1004-1032), by when init as PID 1 has run the activation
/// that adds the user: the first session is the user's, with its shell, init.
#[test]
fn a_native_first_start_before_the_user_exists_is_the_users() {
    let (_dir, distro) = packed_and_imported(
        "nixos-e2e-native-user-from-activation",
        Variant::NixosNative,
        &["--format", "rootfs", "--systemd", "native"],
    );
    for file in ["/etc/passwd", "/etc/shadow"] {
        let path = distro.path(file);
        let text = fs::read_to_string(&path).unwrap_or_default();
        let kept: String = text
            .lines()
            .filter(|l| !l.starts_with("nixos:"))
            .map(|l| format!("{l}\n"))
            .collect();
        if path.exists() {
            fs::write(&path, kept).unwrap_or_else(|e| panic!("{file}: {e}"));
        }
    }
    let passwd = fs::read_to_string(distro.path("/etc/passwd")).expect("passwd");
    assert!(!passwd.contains("\nnixos:"), "{passwd}");
    let out = distro.run(&[
        "--",
        "echo $(id -un) $(getent passwd nixos | cut -d: -f7) ${NIXOS_TEST_SET_ENVIRONMENT:-unset} $(stat -c %u /mnt/c)",
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert_eq!(stdout.trim(), format!("nixos {INIT} 1 1000"), "{stderr}");
}

/// A system declared for wrapper mode packed with `--systemd native` would boot natively once:
/// its first activation puts the declared wsl.conf (`[boot] systemd=false`) back. packer
/// says so, and `packer check` reports it.
#[test]
fn packing_a_system_for_a_mode_it_does_not_declare_is_warned_and_checked() {
    require_root();
    let dir = scratch_dir("nixos-e2e-mode-mismatch");
    let archive = dir.join("rootfs.tar.gz");
    let warnings = pack(
        Variant::Nixos,
        &archive,
        &["--format", "rootfs", "--systemd", "native"],
    );
    assert!(
        warnings.contains("declares the wrapper systemd mode")
            && warnings.contains("wsl.systemd = \"native\""),
        "{warnings}"
    );
    let (clean, findings) = check(&archive);
    assert!(!clean, "packer check accepted it: {findings}");
    assert!(
        findings.contains("declares the wrapper systemd mode"),
        "{findings}"
    );
}

/// The stock system declares root's shell `/run/current-system/sw/bin/bash`: packer refuses it
/// (naming the users file and the module), leaves nothing, and `packer check` reports the same
/// on an archive of the tree made by hand.
#[test]
fn the_stock_system_is_refused_by_packer_and_by_packer_check() {
    require_root();
    let dir = scratch_dir("nixos-e2e-stock");
    let out = dir.join("stock.tar.gz");
    let result = Command::new(dist_bin("packer"))
        .arg("--rootfs")
        .arg(rootfs(Variant::NixosStock))
        .arg("--out")
        .arg(&out)
        .args(["--default-user", "nixos"])
        .output()
        .expect("packer runs");
    let (_, stderr) = text(&result);
    assert_eq!(result.status.code(), Some(1), "{stderr}");
    for needle in [
        "users-groups.json",
        "declares root's shell /run/current-system/sw/bin/bash",
        "replaces init",
        "nixos-wsl.nixosModules.default",
    ] {
        assert!(stderr.contains(needle), "no {needle:?} in: {stderr}");
    }
    let left: Vec<_> = fs::read_dir(&dir).expect("read_dir").collect();
    assert!(left.is_empty(), "packer left {left:?}");

    // The same tree as a plain tarball, checked.
    let by_hand = dir.join("by-hand.tar.gz");
    let status = Command::new("tar")
        .arg("-C")
        .arg(rootfs(Variant::NixosStock))
        .arg("-czf")
        .arg(&by_hand)
        .arg(".")
        .status()
        .expect("tar runs");
    assert!(status.success(), "tar of the stock tree");
    let (clean, findings) = check(&by_hand);
    assert!(!clean, "packer check accepted the stock system: {findings}");
    assert!(
        findings.contains("declares root's shell /run/current-system/sw/bin/bash"),
        "{findings}"
    );
}

fn output_ok(out: &Output, what: &str) -> String {
    let (stdout, stderr) = text(out);
    assert_eq!(out.status.code(), Some(0), "{what}: {stdout}{stderr}");
    stdout
}

/// A bare system tarball (no /etc, no profile, an unloaded Nix database) packed as a rootfs:
/// its first start loads `/nix-path-registration` and sets the profile, so Nix sees the whole
/// closure, and the system is the same as the activated tree's.
fn a_bare_tarball_boots_with_its_database_loaded(variant: Variant, name: &str) {
    let (_dir, distro) = packed_and_imported(name, variant, &["--format", "rootfs"]);
    holds(
        &distro,
        Mode::Wrapper,
        Start::BareTarball,
        "first start of the bare tarball",
    );
    let out = distro.run(&[
        "--",
        "system=$(readlink -f /nix/var/nix/profiles/system); echo $system; \
         sudo nix-store -qR \"$system\" | wc -l; \
         ls /nix/store | grep -vc '^\\.'; \
         sudo nix-store --verify --check-contents >/dev/null 2>&1; echo verify=$?; \
         readlink -f /run/current-system",
    ]);
    let stdout = output_ok(&out, "nix-store");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 5, "{stdout}");
    assert!(
        lines[0].starts_with("/nix/store/") && lines[0].contains("-nixos-system-"),
        "the system profile: {stdout}"
    );
    assert_eq!(
        lines[1], lines[2],
        "the closure is every store path: {stdout}"
    );
    assert_ne!(lines[1], "0", "{stdout}");
    assert_eq!(
        lines[3], "verify=0",
        "nix-store --verify --check-contents: {stdout}"
    );
    assert_eq!(
        lines[4], lines[0],
        "the profile is the running system: {stdout}"
    );
}

#[test]
fn the_bare_gzip_tarball_boots_with_its_nix_database_loaded() {
    a_bare_tarball_boots_with_its_database_loaded(Variant::NixosTarball, "nixos-e2e-tarball-gz");
}

#[test]
fn the_bare_xz_tarball_boots_with_its_nix_database_loaded() {
    a_bare_tarball_boots_with_its_database_loaded(Variant::NixosTarballXz, "nixos-e2e-tarball-xz");
}
