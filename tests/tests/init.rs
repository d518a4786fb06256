//! init in the WSL simulator, on Debian's real systemd and on the faithful NixOS test system
//! (module variant, `Variant::Nixos`; its bare tarball for the first boot): each test gets a
//! fresh copy (an overlay) of a tree packed by packer with the built init and imported once per
//! run, so every test starts with no systemd. No timing assertions (shared machine): waits are
//! bounded loops on conditions.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use wsl_sim::{dist_bin, packed_with_init, require_root, text, Distro, Variant};

const INIT: &str = "/usr/libexec/nixos-wsl/init";
const CONFIG: &str = "/etc/nixos-wsl/init.conf";
const HANDLE: &str = "/run/nixos-wsl/systemd";

/// The variant packed (`packer --format rootfs --default-user nixos --init <built init>`) and
/// imported (`wsl-sim import`), once per test process.
fn packed(variant: Variant) -> &'static Path {
    static DEBIAN: OnceLock<PathBuf> = OnceLock::new();
    static NIXOS: OnceLock<PathBuf> = OnceLock::new();
    static NIXOS_TARBALL: OnceLock<PathBuf> = OnceLock::new();
    static NIXOS_TARBALL_XZ: OnceLock<PathBuf> = OnceLock::new();
    let (cell, name) = match variant {
        Variant::Debian => (&DEBIAN, "debian"),
        Variant::Nixos => (&NIXOS, "nixos"),
        Variant::NixosTarball => (&NIXOS_TARBALL, "nixos-tarball"),
        Variant::NixosTarballXz => (&NIXOS_TARBALL_XZ, "nixos-tarball-xz"),
        other => panic!("init's end-to-end tests pack no {other:?} tree"),
    };
    cell.get_or_init(|| packed_with_init(variant, &format!("init-packed-{name}")))
}

fn distro(variant: Variant) -> Distro {
    require_root();
    Distro::from_tree(packed(variant))
}

/// `wsl -- CMD`: through root's shell, init.
fn sh(d: &Distro, cmd: &str) -> Output {
    d.run(&["--", cmd])
}

/// Where a NixOS system's programs are (`-e` gets WSL's PATH, which names none of them): the
/// system profile's, which exists before the activation too. Nothing on Debian.
const NIXOS_PATH: &str = "/run/current-system/sw/bin:/nix/var/nix/profiles/system/sw/bin";

/// `wsl -e sh -c CMD`: as root in WSL's namespace, outside systemd's (for inspection).
fn outside(d: &Distro, cmd: &str) -> String {
    let cmd = format!("PATH={NIXOS_PATH}:$PATH; {cmd}");
    let out = d.run(&["-e", "/bin/sh", "-c", &cmd]);
    text(&out).0.trim().to_owned()
}

/// Instance processes (WSL's view) that are systemd as PID 1 of a PID namespace.
fn systemd_pid1s(d: &Distro) -> usize {
    let script = r#"n=0; for s in /proc/[0-9]*/status; do
        if grep -q '^Name:[[:space:]]*systemd$' "$s" 2>/dev/null &&
           grep '^NSpid:' "$s" 2>/dev/null | awk '{exit !($NF == 1)}'; then n=$((n+1)); fi
    done; echo $n"#;
    outside(d, script).parse().unwrap_or(usize::MAX)
}

fn handle(d: &Distro) -> String {
    outside(d, &format!("cat {HANDLE} 2>/dev/null"))
}

fn assert_ok(out: &Output) -> String {
    let (stdout, stderr) = text(out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    stdout
}

#[test]
fn first_shell_boots_systemd_as_pid1_of_a_new_pid_namespace_debian() {
    let d = distro(Variant::Debian);
    let wsl_ns = outside(&d, "readlink /proc/self/ns/pid");
    let out = sh(
        &d,
        "cat /proc/1/comm; readlink /proc/self/ns/pid; systemctl is-system-running --wait",
    );
    let stdout = assert_ok(&out);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "systemd", "{stdout}");
    assert_ne!(
        lines[1], wsl_ns,
        "the shell is still in WSL's PID namespace"
    );
    assert_eq!(
        lines[2], "running",
        "Debian must boot to running (hostile units masked)"
    );
    assert_eq!(systemd_pid1s(&d), 1);
    // A second shell enters the same systemd.
    assert_eq!(
        assert_ok(&sh(&d, "readlink /proc/self/ns/pid")).trim(),
        lines[1]
    );
}

#[test]
fn first_shell_boots_the_stores_systemd_on_nixos() {
    let d = distro(Variant::Nixos);
    let out = sh(
        &d,
        "cat /proc/1/comm; readlink /run/current-system >/dev/null && echo activated; \
         systemctl is-system-running --wait; id; sudo readlink /proc/1/exe",
    );
    let stdout = assert_ok(&out);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines[..4],
        [
            "systemd",
            "activated",
            "running",
            "uid=1000(nixos) gid=100(users) groups=100(users),1(wheel)"
        ],
        "{}",
        text(&out).1
    );
    // The only systemd there is: the store's, through /run/current-system.
    assert!(
        lines[4].starts_with("/nix/store/") && lines[4].ends_with("/lib/systemd/systemd"),
        "{stdout}"
    );
}

#[test]
fn no_mount_of_systemd_leaks_into_wsls_namespace() {
    let d = distro(Variant::Debian);
    assert_ok(&sh(
        &d,
        "systemctl is-system-running --wait >/dev/null; test -d /run/user/1000",
    ));
    let mounts = outside(&d, "cat /proc/self/mountinfo");
    assert!(!mounts.contains(" /run/user/1000 "), "{mounts}");
    assert_eq!(mounts.matches(" /proc ").count(), 1, "{mounts}");
}

// Exit-code contract, one test per row.

#[test]
fn exit_code_0_is_passed_through() {
    let d = distro(Variant::Debian);
    assert_eq!(sh(&d, "true").status.code(), Some(0));
}

#[test]
fn exit_code_1_and_42_are_passed_through() {
    let d = distro(Variant::Debian);
    assert_eq!(sh(&d, "exit 1").status.code(), Some(1));
    assert_eq!(sh(&d, "exit 42").status.code(), Some(42));
}

#[test]
fn exit_code_128_plus_n_when_the_shell_dies_of_signal_n() {
    let d = distro(Variant::Debian);
    assert_eq!(sh(&d, "kill -KILL $$").status.code(), Some(128 + 9));
    assert_eq!(sh(&d, "kill -TERM $$").status.code(), Some(128 + 15));
}

#[test]
fn exit_code_126_when_the_shell_cannot_be_executed() {
    let d = distro(Variant::Debian);
    d.write("/usr/local/bin/not-executable", "#!/bin/sh\n");
    let passwd = fs::read_to_string(d.path("/etc/passwd")).expect("passwd");
    d.write(
        "/etc/passwd",
        passwd.replace(
            "/home/nixos:/bin/bash",
            "/home/nixos:/usr/local/bin/not-executable",
        ),
    );
    let out = sh(&d, "true");
    assert_eq!(out.status.code(), Some(126), "{}", text(&out).1);
    assert!(text(&out).1.contains("not-executable"), "{}", text(&out).1);
}

#[test]
fn exit_code_127_when_the_shell_is_not_found() {
    let d = distro(Variant::Debian);
    let passwd = fs::read_to_string(d.path("/etc/passwd")).expect("passwd");
    d.write(
        "/etc/passwd",
        passwd.replace("/home/nixos:/bin/bash", "/home/nixos:/bin/no-such-shell"),
    );
    let out = sh(&d, "true");
    assert_eq!(out.status.code(), Some(127), "{}", text(&out).1);
    assert!(
        text(&out).1.contains("/bin/no-such-shell"),
        "{}",
        text(&out).1
    );
}

#[test]
fn exit_code_1_and_a_clear_message_when_not_root() {
    let d = distro(Variant::Debian);
    let out = d.run(&["-u", "nixos", "-e", INIT, "status"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).1.contains("this needs root (this is uid 1000)"),
        "{}",
        text(&out).1
    );
    // As a user's own shell (user-shell mode) init runs the real shell, exit code kept.
    let out = d.run(&["-u", "nixos", "-e", INIT, "-c", "id -un; exit 3"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out).1);
    assert_eq!(text(&out).0, "nixos\n");
}

#[test]
fn exit_code_2_for_a_bad_command_line() {
    let d = distro(Variant::Debian);
    let out = d.run(&["-e", INIT, "status", "extra"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out).1);
}

#[test]
fn command_arguments_arrive_byte_for_byte() {
    let d = distro(Variant::Debian);
    // The shell prints its own argv: it must be exactly what WSL passed to init.
    let script = "tr '\\0' '\\n' </proc/$$/cmdline | tail -n +3 # two  spaces \"dq\" 'sq' \
                  $HOME \\back\\slash é 日本\n: second line";
    let out = d.run(&["-e", INIT, "-c", script]);
    assert_eq!(assert_ok(&out), format!("{script}\n"));
    // And through `wsl -- ...` (WSL joins the words into one -c argument).
    let out = sh(&d, "printf '<%s>' \"a  b\" 'c\"d' '$x' 'e\\f' 'ü'");
    assert_eq!(assert_ok(&out), "<a  b><c\"d><$x><e\\f><ü>");
}

#[test]
fn a_command_named_like_a_subcommand_is_for_the_shell() {
    let d = distro(Variant::Debian);
    d.write("/usr/local/bin/status", "#!/bin/sh\necho shell-status\n");
    fs::set_permissions(
        d.path("/usr/local/bin/status"),
        fs::Permissions::from_mode(0o755),
    )
    .expect("chmod");
    let out = d.run(&["-e", INIT, "-c", "status"]);
    assert_eq!(assert_ok(&out).trim(), "shell-status");
}

#[test]
fn working_directory_and_environment_are_kept() {
    let d = distro(Variant::Debian);
    let out = d
        .command()
        .args(["--cd", "/tmp", "--", "pwd; env"])
        .env("WSL_SIM_ENV_DISPLAY", ":0")
        .env("WSL_SIM_ENV_PULSE_SERVER", "unix:/mnt/wslg/PulseServer")
        .env("TERM", "xterm-test")
        .stdin(Stdio::null())
        .output()
        .expect("run");
    let stdout = assert_ok(&out);
    let mut lines = stdout.lines();
    assert_eq!(lines.next(), Some("/tmp"));
    let env: Vec<&str> = lines.collect();
    for want in [
        "DISPLAY=:0",
        "PULSE_SERVER=unix:/mnt/wslg/PulseServer",
        "TERM=xterm-test",
        "HOME=/home/nixos",
        "USER=nixos",
        "LOGNAME=nixos",
        "SHELL=/bin/bash",
        "WSLENV=WT_SESSION:WT_PROFILE_ID:",
        "WSLPATH=/mnt/c/Windows/System32:/mnt/c/Windows:/mnt/c/Program Files/PowerShell/7",
        "XDG_RUNTIME_DIR=/run/user/1000",
        "DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/1000/bus",
    ] {
        assert!(env.contains(&want), "{want} missing: {env:?}");
    }
    assert!(
        env.iter().any(|v| v.starts_with("WSL_DISTRO_NAME=")),
        "{env:?}"
    );
    assert!(
        env.iter().any(|v| v.starts_with("WSL_INTEROP=/run/WSL/")),
        "{env:?}"
    );
    let path = env.iter().find(|v| v.starts_with("PATH=")).expect("PATH");
    assert!(path.starts_with("PATH=/usr/local/sbin:"), "{path}");
    assert!(
        path.ends_with(":/mnt/c/Windows/System32:/mnt/c/Windows:/mnt/c/Program Files/PowerShell/7"),
        "{path}"
    );
}

#[test]
fn a_working_directory_that_is_gone_gives_home() {
    let d = distro(Variant::Debian);
    let out = d.run(&[
        "-e",
        "/bin/sh",
        "-c",
        &format!("mkdir /tmp/gone && cd /tmp/gone && rmdir /tmp/gone && exec {INIT} -c pwd"),
    ]);
    assert_eq!(assert_ok(&out).trim(), "/home/nixos");
}

#[test]
fn interop_socket_answers_from_the_shell_and_from_a_service() {
    let d = distro(Variant::Debian);
    let out = sh(&d, "echo ping | socat - UNIX-CONNECT:\"$WSL_INTEROP\"");
    assert_eq!(assert_ok(&out).trim(), "pong");
    let out = sh(
        &d,
        "sudo systemd-run --quiet --wait --pipe sh -c 'echo ping | socat - UNIX-CONNECT:\"$WSL_INTEROP\"' 2>/dev/null",
    );
    assert_eq!(assert_ok(&out).trim(), "pong");
}

#[test]
fn id_shows_the_default_user_with_its_groups() {
    let d = distro(Variant::Debian);
    let out = sh(&d, "id");
    assert_eq!(
        assert_ok(&out).trim(),
        "uid=1000(nixos) gid=1000(nixos) groups=1000(nixos),27(sudo),100(users)"
    );
}

#[test]
fn systemctl_user_works_for_the_default_user() {
    let d = distro(Variant::Debian);
    // The user's manager starts with the boot (lingering); give it a bounded moment.
    let out = sh(
        &d,
        "for i in $(seq 100); do s=$(systemctl --user is-system-running 2>/dev/null); \
         case $s in running|degraded) echo $s; exit 0;; esac; sleep 0.1; done; \
         systemctl --user is-system-running",
    );
    assert_eq!(assert_ok(&out).trim(), "running");
}

#[test]
fn sudo_i_and_su_start_no_second_systemd() {
    let d = distro(Variant::Debian);
    let out = sh(
        &d,
        "sudo -i sh -c 'id -u; cat /proc/1/comm' 2>/dev/null; sudo su - -c 'id -u; cat /proc/1/comm'",
    );
    assert_eq!(assert_ok(&out), "0\nsystemd\n0\nsystemd\n");
    // A nested call of init as root (root's shell is init).
    let out = sh(
        &d,
        &format!("sudo {INIT} -c 'id -u; cat /proc/1/comm' 2>/dev/null"),
    );
    assert_eq!(assert_ok(&out), "0\nsystemd\n");
    assert_eq!(systemd_pid1s(&d), 1);
}

#[test]
fn sudo_i_through_run_wrappers_starts_no_second_systemd_on_nixos() {
    let d = distro(Variant::Nixos);
    // NixOS's sudo is the setuid copy suid-sgid-wrappers.service made at boot; root's shell in
    // /etc/passwd is init, which inside systemd runs root's real shell. (`su -` is not asked:
    // the tree's su is util-linux's, which wants a `su-l` PAM service NixOS's shadow su has no
    // use for.)
    let out = sh(
        &d,
        "command -v sudo; sudo -i sh -c 'id -u; cat /proc/1/comm' 2>/dev/null",
    );
    assert_eq!(
        assert_ok(&out),
        "/run/wrappers/bin/sudo\n0\nsystemd\n",
        "{}",
        text(&out).1
    );
    assert_eq!(systemd_pid1s(&d), 1);
}

#[test]
fn thirty_two_simultaneous_first_shells_give_one_systemd() {
    let d = distro(Variant::Debian);
    let children: Vec<_> = (0..32)
        .map(|i| {
            d.command()
                .args(["--", "echo $N $(cat /proc/1/comm)"])
                .env("WSL_SIM_ENV_N", i.to_string())
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    for (i, child) in children.into_iter().enumerate() {
        let out = child.wait_with_output().expect("wait");
        assert_eq!(assert_ok(&out).trim(), format!("{i} systemd"));
    }
    assert_eq!(systemd_pid1s(&d), 1);
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn killing_systemd_makes_the_next_shell_start_a_new_one() {
    let d = distro(Variant::Debian);
    assert_ok(&sh(&d, "true"));
    let first = handle(&d);
    let pid = first.split_whitespace().next().expect("pid").to_owned();
    outside(&d, &format!("kill -KILL {pid}"));
    wait_until("systemd to die", || {
        outside(&d, &format!("test -e /proc/{pid}/ns/pid && echo alive")).is_empty()
    });
    assert_eq!(assert_ok(&sh(&d, "cat /proc/1/comm")).trim(), "systemd");
    assert_ne!(handle(&d), first);
    assert_eq!(systemd_pid1s(&d), 1);
}

#[test]
fn a_stale_handle_pointing_at_an_unrelated_live_process_does_not_fool_it() {
    let d = distro(Variant::Debian);
    // A handle that is right about everything for `sleep`: pid, start time, namespaces.
    // setsid: WSL's pty hangs up a session's foreground group when its shell ends.
    let forged = outside(
        &d,
        &format!(
            "setsid sleep 1000 >/dev/null 2>&1 & p=$!; mkdir -p /run/nixos-wsl; \
             echo \"$p $(cut -d' ' -f22 /proc/$p/stat) $(stat -Lc %i /proc/$p/ns/pid) \
             $(stat -Lc %i /proc/$p/ns/mnt)\" > {HANDLE}; cat {HANDLE}"
        ),
    );
    let sleep_pid = forged.split_whitespace().next().expect("pid").to_owned();
    let out = sh(&d, "cat /proc/1/comm");
    assert_eq!(assert_ok(&out).trim(), "systemd");
    assert_ne!(handle(&d), forged);
    assert_eq!(systemd_pid1s(&d), 1);
    assert_eq!(
        outside(&d, &format!("cat /proc/{sleep_pid}/comm")),
        "sleep",
        "init touched the unrelated process"
    );
}

/// The system the NixOS tree's profile points to (`/nix/store/...-nixos-system-...`).
fn nixos_system(d: &Distro) -> String {
    let system = d.resolved("/nix/var/nix/profiles/system");
    let system = system.strip_prefix(d.dir()).expect("inside the tree");
    format!("/{}", system.display())
}

/// Puts `script` (a bash script body) in front of the system's `activate` in this copy, as a
/// slow or logging activation would be: the real one is kept beside it as `activate-real`
/// (it finds its system from its own folder) and run after `script` with the same arguments.
fn wrap_activate(d: &Distro, script: &str) {
    let system = nixos_system(d);
    let activate = d.path(&format!("{system}/activate"));
    fs::rename(&activate, d.path(&format!("{system}/activate-real"))).expect("move activate");
    d.write(
        &format!("{system}/activate"),
        format!("#!{system}/sw/bin/bash\n{script}\nexec {system}/activate-real \"$@\"\n"),
    );
    fs::set_permissions(&activate, fs::Permissions::from_mode(0o555)).expect("chmod");
}

#[test]
fn a_ten_second_activation_does_not_break_the_first_shell() {
    let d = distro(Variant::Nixos);
    // Each run logs what PID 1 of its namespace is (init while it prepares, before systemd).
    let system = nixos_system(&d);
    wrap_activate(
        &d,
        &format!(
            "read -r pid1 </proc/1/comm; echo \"$pid1\" >>/run/slow-activation.log\n\
             {system}/sw/bin/sleep 10"
        ),
    );
    let cmd = "cat /proc/1/comm; readlink /run/current-system >/dev/null && echo activated";
    let spawn = || {
        d.command()
            .args(["--", cmd])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn")
    };
    let first = spawn();
    // A second shell while the activation runs waits for systemd rather than entering early.
    wait_until("the activation to start", || {
        outside(&d, "cat /run/slow-activation.log 2>/dev/null") == "init"
    });
    assert!(
        handle(&d).ends_with("booting"),
        "the handle during the activation: {}",
        handle(&d)
    );
    let second = spawn();
    for child in [first, second] {
        let out = child.wait_with_output().expect("wait");
        assert_eq!(assert_ok(&out), "systemd\nactivated\n", "{}", text(&out).1);
    }
    // It ran once, before systemd.
    assert_eq!(outside(&d, "cat /run/slow-activation.log"), "init");
    assert_eq!(systemd_pid1s(&d), 1);
}

#[test]
fn a_broken_systemd_path_still_gives_a_shell_with_a_clear_message() {
    let d = distro(Variant::Debian);
    let config = fs::read_to_string(d.path(CONFIG)).expect("config");
    let config: String = config
        .lines()
        .map(|l| {
            if l.starts_with("systemd =") {
                "systemd = /nonexistent/systemd"
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    d.write(CONFIG, config);
    let out = sh(&d, "id -un; cat /proc/1/comm");
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(stdout.lines().next(), Some("nixos"));
    assert_ne!(stdout.lines().nth(1), Some("systemd"));
    assert!(
        stderr.contains("no systemd found") && stderr.contains("/nonexistent/systemd"),
        "{stderr}"
    );
}

#[test]
fn a_bad_config_file_is_reported_by_line_and_the_shell_still_starts() {
    let d = distro(Variant::Debian);
    let config = fs::read_to_string(d.path(CONFIG)).expect("config");
    d.write(
        CONFIG,
        format!("{config}this line is nonsense\nboot-timeout = soon\n"),
    );
    let lines = config.lines().count();
    let out = sh(&d, "id -un");
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(stdout.trim(), "nixos");
    assert!(stderr.contains(&format!("line {}", lines + 1)), "{stderr}");
    assert!(stderr.contains(&format!("line {}", lines + 2)), "{stderr}");
}

#[test]
fn native_mode_boots_with_init_as_sbin_init() {
    let d = distro(Variant::Nixos);
    // Read on the host: a session now would start the instance without systemd. NixOS has no
    // /sbin/init of its own: packer added the link (in both modes).
    assert_eq!(
        fs::read_link(d.path("/sbin/init")).expect("/sbin/init"),
        Path::new(INIT)
    );
    d.enable_native_systemd();
    let out = sh(
        &d,
        "cat /proc/1/comm; id -un; systemctl is-system-running --wait; \
         systemctl --failed --no-legend >&2; readlink /run/current-system >/dev/null && echo activated; sudo readlink /proc/1/exe",
    );
    let stdout = assert_ok(&out);
    assert_eq!(
        stdout.lines().take(4).collect::<Vec<_>>(),
        ["systemd", "nixos", "running", "activated"],
        "{}",
        text(&out).1
    );
    assert!(
        stdout.trim_end().ends_with("/lib/systemd/systemd") && stdout.contains("\n/nix/store/"),
        "PID 1 is the store's systemd: {stdout}"
    );
    // Only WSL's PID namespace: no second systemd, no handle.
    assert_eq!(systemd_pid1s(&d), 1);
    assert_eq!(handle(&d), "");
    let out = sh(&d, "sudo -i sh -c 'id -u; cat /proc/1/comm' 2>/dev/null");
    assert_eq!(assert_ok(&out), "0\nsystemd\n");
    // Services reach Windows through WSL's stable socket. (A transient unit gets systemd's
    // default PATH, which on NixOS names none of the system's programs: the session's is
    // passed on.)
    let out = sh(
        &d,
        "sudo systemd-run --quiet --wait --pipe -E PATH sh -c \
         'echo $WSL_INTEROP; echo ping | socat - UNIX-CONNECT:\"$WSL_INTEROP\"' 2>/dev/null",
    );
    assert_eq!(assert_ok(&out), "/run/WSL/1_interop\npong\n");
}

#[test]
fn status_shutdown_and_recovery() {
    let d = distro(Variant::Debian);
    let out = d.run(&["-e", INIT, "status"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).0.contains("not running"), "{}", text(&out).0);

    assert_ok(&sh(&d, "systemctl is-system-running --wait"));
    let status = assert_ok(&d.run(&["-e", INIT, "status"]));
    assert!(
        status.contains("state running") && status.contains("failed units: none"),
        "{status}"
    );
    let first = handle(&d);

    let out = assert_ok(&d.run(&["-e", INIT, "shutdown"]));
    assert!(out.contains("powered off"), "{out}");
    assert_eq!(systemd_pid1s(&d), 0);
    assert_eq!(assert_ok(&sh(&d, "cat /proc/1/comm")).trim(), "systemd");
    assert_ne!(handle(&d), first, "the next shell starts a fresh systemd");

    // Recovery: a root shell outside systemd's namespace.
    let mut child = d
        .command()
        .args(["-e", INIT, "recovery"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"id -u; cat /proc/1/comm; exit 7\n")
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(7), "{}", text(&out).1);
    let stdout = text(&out).0;
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "0");
    assert_ne!(lines[1], "systemd");
}

#[test]
fn leftover_installer_folder_is_removed() {
    let d = distro(Variant::Debian);
    d.write("/nixos-wsl/installer", "left over");
    assert_ok(&sh(&d, "true"));
    assert!(!d.path("/nixos-wsl").exists());
}

#[test]
fn help_and_version() {
    let d = distro(Variant::Debian);
    let help = assert_ok(&d.run(&["-e", INIT, "--help"]));
    for word in [
        "status",
        "shutdown",
        "recovery",
        "--version",
        "user =",
        "shell =",
        "systemd =",
        "activate =",
        "activated =",
        "boot-timeout =",
        "system =",
        "126",
        "127",
        "128+N",
        "init.conf",
    ] {
        assert!(help.contains(word), "--help lacks {word}");
    }
    assert!(assert_ok(&d.run(&["-e", INIT, "--version"])).starts_with("init "));
}

/// tmux drives a real terminal: Ctrl-C stops the foreground `sleep`, not the shell.
#[test]
fn ctrl_c_interrupts_sleep_and_the_shell_survives() {
    let d = distro(Variant::Debian);
    assert_ok(&sh(&d, "true"));
    let session = format!("init-test-{}", std::process::id());
    let tmux = |args: &[&str]| {
        Command::new("tmux")
            .args(["-L", &session])
            .args(args)
            .output()
            .expect("tmux runs")
    };
    let run = format!(
        "{} run {} --name {}",
        dist_bin("wsl-sim").display(),
        d.dir().display(),
        d.name()
    );
    assert!(tmux(&["new-session", "-d", "-x", "120", "-y", "40", &run])
        .status
        .success());
    let screen = || text(&tmux(&["capture-pane", "-p"])).0;
    wait_until("a prompt", || screen().contains('$'));
    tmux(&["send-keys", "sleep 1000; echo not-interrupted", "Enter"]);
    wait_until("sleep to run", || {
        outside(&d, "pgrep -x sleep >/dev/null && echo y") == "y"
    });
    tmux(&["send-keys", "C-c"]);
    tmux(&[
        "send-keys",
        "echo rc=$? survived-$((6*7)) argv0=$0",
        "Enter",
    ]);
    wait_until("the shell to answer", || screen().contains("survived-42"));
    let shown = screen();
    assert!(shown.contains("rc=130"), "{shown}");
    assert!(
        shown.contains("argv0=-bash"),
        "a login shell for a login start: {shown}"
    );
    assert!(
        !shown.lines().any(|l| l.trim() == "not-interrupted"),
        "{shown}"
    );
    tmux(&["send-keys", "exit", "Enter"]);
    let _ = tmux(&["kill-server"]);
}

/// Installs a unit into multi-user.target of the distribution.
fn add_unit(d: &Distro, name: &str, service: &str) {
    d.write(
        &format!("/etc/systemd/system/{name}"),
        format!("[Unit]\nDescription=test unit\n\n[Service]\n{service}\n\n[Install]\nWantedBy=multi-user.target\n"),
    );
    let wants = d.path("/etc/systemd/system/multi-user.target.wants");
    fs::create_dir_all(&wants).expect("mkdir");
    std::os::unix::fs::symlink(format!("/etc/systemd/system/{name}"), wants.join(name))
        .expect("enable");
}

#[test]
fn a_degraded_system_does_not_block_and_gets_one_line_naming_the_failed_units() {
    let d = distro(Variant::Debian);
    add_unit(
        &d,
        "fails-on-purpose.service",
        "Type=oneshot\nExecStart=/bin/false",
    );
    let out = sh(&d, "echo in");
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(stdout, "in\n");
    let lines: Vec<&str> = stderr.lines().filter(|l| l.contains("degraded")).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].contains("fails-on-purpose.service"), "{stderr}");
}

#[test]
fn a_boot_slower_than_boot_timeout_gives_the_shell_with_one_line_naming_the_state() {
    let d = distro(Variant::Debian);
    add_unit(
        &d,
        "slow-on-purpose.service",
        "Type=oneshot\nExecStart=/bin/sleep 20",
    );
    let config = fs::read_to_string(d.path(CONFIG)).expect("config");
    d.write(
        CONFIG,
        config.replace("boot-timeout = 30", "boot-timeout = 2"),
    );
    let out = sh(&d, "cat /proc/1/comm");
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(stdout, "systemd\n");
    assert!(
        stderr.contains("not ready after 2 s (state: starting)"),
        "{stderr}"
    );
}

#[test]
fn the_shell_starts_with_no_signal_ignored_or_blocked() {
    // init ignores SIGINT and SIGQUIT while it waits, and Rust's runtime ignores SIGPIPE: none
    // of that may reach the user's commands (`yes | head` must end by SIGPIPE, Ctrl-C must
    // interrupt). The direct run (`-e`) shows what WSL's relay hands over.
    let d = distro(Variant::Debian);
    let masks = "grep -E '^Sig(Blk|Ign)' /proc/self/status";
    let direct = outside(&d, masks);
    let through_init = assert_ok(&sh(&d, masks));
    assert_eq!(through_init.trim(), direct);
    let ignored = through_init
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .expect("SigIgn");
    for signal in [2, 3, 13] {
        assert_eq!(ignored & (1 << (signal - 1)), 0, "signal {signal} ignored");
    }
    let out = sh(&d, "yes | head -n 2; echo \"${PIPESTATUS[0]}\"");
    assert_eq!(
        assert_ok(&out),
        "y\ny\n141\n",
        "yes ends by SIGPIPE (128 + 13)"
    );
}

#[test]
fn the_waiting_parent_ignores_sigint_and_passes_sigterm_on() {
    let d = distro(Variant::Debian);
    assert_ok(&sh(&d, "true"));
    let child = d
        .command()
        .args([
            "--",
            "trap 'echo got-term; exit 7' TERM; echo started; sleep 1000 >/dev/null 2>&1 & wait",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // The waiting init: the process in WSL's namespace running init's binary.
    let find = format!(
        "for p in /proc/[0-9]*; do [ \"$(readlink $p/exe)\" = {INIT} ] && echo ${{p#/proc/}}; done"
    );
    let mut waiting = String::new();
    wait_until("the waiting init", || {
        waiting = outside(&d, &find);
        !waiting.is_empty() && outside(&d, "pgrep -x sleep >/dev/null && echo y") == "y"
    });
    outside(
        &d,
        &format!("kill -INT {waiting}; kill -QUIT {waiting}; sleep 0.2; kill -TERM {waiting}"),
    );
    let out = child.wait_with_output().expect("wait");
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(7), "{stdout} {stderr}");
    assert_eq!(stdout, "started\ngot-term\n");
}

// Hardening (issue 10) and a real NixOS (issue 12).

/// `wsl ARGS` that must end within `secs`: a hang (init exec'ing itself, a lock nobody
/// releases) fails the test instead of hanging it.
fn run_within(d: &Distro, args: &[&str], stdin: &[u8], secs: u64) -> Output {
    let mut child = d
        .command()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let _ = child.stdin.take().expect("stdin").write_all(stdin);
    let deadline = Instant::now() + Duration::from_secs(secs);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("wait");
            panic!(
                "wsl {args:?} still running after {secs} s; stderr: {}",
                String::from_utf8_lossy(&out.stderr)
                    .chars()
                    .take(2000)
                    .collect::<String>()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.wait_with_output().expect("wait")
}

/// Replaces (or adds) `key = value` in the distribution's init.conf (on NixOS the declared one
/// in the store, which `/etc/nixos-wsl/init.conf` links to: what the module would write).
fn set_config(d: &Distro, key: &str, value: &str) {
    let config = d.read_resolved(CONFIG);
    let mut lines: Vec<String> = config
        .lines()
        .filter(|l| !l.starts_with(&format!("{key} =")))
        .map(str::to_owned)
        .collect();
    lines.push(format!("{key} = {value}"));
    d.write_resolved(CONFIG, lines.join("\n") + "\n");
}

#[test]
fn a_users_files_in_nixos_wsl_survive_every_shell() {
    let d = distro(Variant::Debian);
    // The issue's reproduction: a flake kept in /nixos-wsl.
    assert_ok(&d.run(&[
        "-e",
        "/bin/bash",
        "-c",
        "mkdir -p /nixos-wsl/flake; echo x > /nixos-wsl/flake/configuration.nix",
    ]));
    assert_ok(&sh(&d, "true"));
    assert_ok(&sh(&d, "true"));
    assert_eq!(
        fs::read_to_string(d.path("/nixos-wsl/flake/configuration.nix")).ok(),
        Some("x\n".into())
    );
    // Beside an installer's leftovers: those go, the user's files stay, and it is said.
    d.write("/nixos-wsl/installer", "left over");
    d.write("/nixos-wsl/rootfs.manifest", "left over");
    let out = sh(&d, "true");
    assert_eq!(out.status.code(), Some(0));
    assert!(!d.path("/nixos-wsl/installer").exists());
    assert!(!d.path("/nixos-wsl/rootfs.manifest").exists());
    assert!(d.path("/nixos-wsl/flake/configuration.nix").exists());
    assert!(text(&out).1.contains("kept /nixos-wsl"), "{}", text(&out).1);
}

#[test]
fn init_as_roots_real_shell_falls_back_to_sh_instead_of_starting_itself() {
    let d = distro(Variant::Debian);
    set_config(&d, "user", "root");
    // What re-packing an installed distribution wrote: init as root's real shell.
    set_config(&d, "shell", INIT);
    let out = run_within(&d, &["--", "id -u; cat /proc/1/comm"], b"", 120);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(stdout, "0\nsystemd\n");
    assert!(stderr.contains("is init itself"), "{stderr}");
    // The same through a symlink to init.
    std::os::unix::fs::symlink(INIT, d.path("/usr/local/bin/rootsh")).expect("link");
    set_config(&d, "shell", "/usr/local/bin/rootsh");
    let out = run_within(&d, &["--", "id -u"], b"", 120);
    assert_eq!(text(&out).0, "0\n", "{}", text(&out).1);
    assert!(text(&out).1.contains("is init itself"), "{}", text(&out).1);
    // And `sudo -i` inside (root's shell from /etc/passwd is init: the real one runs).
    let out = run_within(
        &d,
        &["--", "sudo -i sh -c 'echo inside-$(id -u)'"],
        b"",
        120,
    );
    assert_eq!(text(&out).0, "inside-0\n", "{}", text(&out).1);
}

#[test]
fn a_missing_configured_shell_falls_back_to_sh_for_recovery_and_root() {
    let d = distro(Variant::Debian);
    set_config(&d, "shell", "/nonexistent");
    let out = run_within(
        &d,
        &["-e", INIT, "recovery"],
        b"id -u; cat /proc/1/comm; exit 7\n",
        60,
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(7), "{stderr}");
    assert_eq!(stdout.lines().next(), Some("0"), "{stdout}");
    assert!(stderr.contains("/nonexistent does not exist"), "{stderr}");
    assert!(stderr.contains("using /bin/sh"), "{stderr}");
    set_config(&d, "user", "root");
    let out = run_within(&d, &["--", "id -u"], b"", 120);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    assert_eq!(text(&out).0, "0\n");
}

#[test]
fn a_users_flock_on_the_lock_no_longer_hangs_later_shells() {
    let d = distro(Variant::Debian);
    // A lock file as earlier versions made it (0644), held by a user from before the upgrade.
    outside(
        &d,
        "mkdir -p /run/nixos-wsl && touch /run/nixos-wsl/lock && chmod 644 /run/nixos-wsl/lock",
    );
    let hold = "setsid flock /run/nixos-wsl/lock sleep 900 </dev/null >/dev/null 2>&1 & \
                sleep 0.5; grep -c FLOCK /proc/locks";
    let held = d.run(&["-u", "nixos", "-e", "/bin/sh", "-c", hold]);
    assert_ne!(
        text(&held).0.trim(),
        "0",
        "the user could not take the old lock"
    );
    // The next shell says what it waits for, gives up within its bound, and still starts.
    let out = run_within(&d, &["--", "id -un"], b"", 180);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(stdout, "nixos\n");
    assert!(stderr.contains("waiting for systemd to start"), "{stderr}");
    assert!(
        stderr.contains("gave up waiting") && stderr.contains("(flock)"),
        "{stderr}"
    );
    assert_eq!(outside(&d, "stat -c %a /run/nixos-wsl/lock"), "600");
    outside(&d, "pkill -x flock; pkill -x sleep; true");

    // From now on no user can even open it: the issue's reproduction.
    assert_eq!(
        assert_ok(&run_within(&d, &["--", "cat /proc/1/comm"], b"", 180)).trim(),
        "systemd"
    );
    let out = d.run(&[
        "-u",
        "nixos",
        "-e",
        "/bin/sh",
        "-c",
        "setsid flock /run/nixos-wsl/lock sleep 900 </dev/null >/dev/null 2>&1 & \
         sleep 0.5; flock -n /run/nixos-wsl/lock true 2>/dev/null; echo $?",
    ]);
    assert_ne!(text(&out).0.trim(), "0", "a user opened the lock");
    assert_ok(&d.run(&["-e", INIT, "shutdown"]));
    let out = run_within(&d, &["--", "cat /proc/1/comm"], b"", 180);
    assert_eq!(assert_ok(&out).trim(), "systemd");
    assert!(!text(&out).1.contains("waiting"), "{}", text(&out).1);
    outside(&d, "pkill -x sleep; true");
}

#[test]
fn junk_or_a_foreign_pid_in_the_handle_never_starts_a_second_systemd() {
    let d = distro(Variant::Debian);
    assert_ok(&sh(&d, "systemctl is-system-running --wait"));
    let first = handle(&d);
    let pid = first.split_whitespace().next().expect("pid").to_owned();
    for forged in [
        "junk\n".to_owned(),
        outside(&d, "sleep 1000 >/dev/null 2>&1 & echo \"$! 1 2 3\""),
    ] {
        outside(&d, &format!("printf '%s' '{forged}' > {HANDLE}"));
        let out = sh(&d, "cat /proc/1/comm");
        assert_eq!(assert_ok(&out).trim(), "systemd");
        assert!(
            text(&out).1.contains("/run/systemd/private"),
            "{}",
            text(&out).1
        );
        assert_eq!(systemd_pid1s(&d), 1, "a second systemd beside the first");
        let now = handle(&d);
        assert_eq!(now.split_whitespace().next(), Some(pid.as_str()), "{now}");
    }
    // `init status` finds it as well.
    d.write("/run/nixos-wsl/systemd", "junk\n");
    let status = assert_ok(&d.run(&["-e", INIT, "status"]));
    assert!(status.contains(&format!("pid {pid}")), "{status}");
    outside(&d, "pkill -x sleep; true");
}

#[test]
fn boot_timeout_0_waits_for_systemd_and_reports_no_activation() {
    let d = distro(Variant::Debian);
    set_config(&d, "boot-timeout", "0");
    let out = sh(&d, "systemctl is-system-running");
    let (stdout, stderr) = text(&out);
    assert_eq!(stdout.trim(), "running", "{stderr}");
    assert!(!stderr.contains("activation"), "{stderr}");
    assert!(!stderr.contains("not ready"), "{stderr}");
}

#[test]
fn masks_reach_systemd_on_its_command_line_without_any_mask_file() {
    let d = distro(Variant::Debian);
    // No mask link of packer's: the command line alone must mask the units.
    for unit in wsl_common::units::hostile_unit_names() {
        let _ = fs::remove_file(d.path(&format!("/etc/systemd/system/{unit}")));
    }
    let out = sh(
        &d,
        "tr '\\0' '\\n' </proc/1/cmdline | grep -c '^systemd.mask='; \
         systemctl show -p LoadState --value systemd-binfmt.service; \
         readlink /run/systemd/generator.early/systemd-binfmt.service; \
         systemctl show -p LoadState --value autovt@tty1.service; \
         systemctl is-system-running --wait",
    );
    let stdout = assert_ok(&out);
    // The list's units, logind's autovt@tty1 alias of getty@tty1 among them.
    let masks = wsl_common::units::HOSTILE_UNITS.len().to_string();
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        [masks.as_str(), "masked", "/dev/null", "masked", "running"],
        "{}",
        text(&out).1
    );
}

#[test]
fn on_nixos_systemd_is_looked_for_only_after_activation() {
    let d = distro(Variant::Nixos);
    let system = nixos_system(&d);
    // As after a bare tarball's unpacking, or with the profile gone: systemd is in the store
    // only, reachable through /run/current-system once activated, and there is no profile to
    // find it through before.
    set_config(&d, "activate", &format!("{system}/activate"));
    fs::remove_file(d.path("/nix/var/nix/profiles/system")).expect("rm profile");
    assert!(d
        .resolved("/run/current-system")
        .symlink_metadata()
        .is_err());
    let out = sh(
        &d,
        "tr '\\0' '\\n' </proc/1/cmdline | head -n 1; systemctl is-system-running --wait",
    );
    let stdout = assert_ok(&out);
    assert_eq!(
        stdout,
        "/run/current-system/systemd/lib/systemd/systemd\nrunning\n",
        "{}",
        text(&out).1
    );
}

#[test]
fn commands_get_nixos_set_environment_with_wsls_variables_kept() {
    let d = distro(Variant::Nixos);
    // The system's own /etc/set-environment, plus a variable that would take WSL's away (what
    // `environment.variables.WSL_DISTRO_NAME` would declare).
    let declared = d.read_resolved("/etc/set-environment");
    assert!(declared.contains("export NIX_PATH="), "{declared}");
    d.write_resolved(
        "/etc/set-environment",
        format!("{declared}export WSL_DISTRO_NAME=overwritten\n"),
    );
    let show =
        "echo \"$NIX_PATH|$LOCALE_ARCHIVE|$NIXOS_TEST_SET_ENVIRONMENT|$WSL_DISTRO_NAME|$PATH\"; \
                tr '\\0' ' ' </proc/$$/cmdline";
    for out in [sh(&d, show), d.run(&["-e", INIT, "-c", show])] {
        let stdout = assert_ok(&out);
        let mut lines = stdout.lines();
        let vars: Vec<&str> = lines.next().expect("vars").split('|').collect();
        assert_eq!(
            vars[0],
            "nixpkgs=/nix/var/nix/profiles/per-user/root/channels/nixos:\
             nixos-config=/etc/nixos/configuration.nix:/nix/var/nix/profiles/per-user/root/channels",
            "{stdout}"
        );
        assert_eq!(vars[1], "/run/current-system/sw/lib/locale/locale-archive");
        assert_eq!(vars[2], "1", "the file was not sourced: {stdout}");
        assert_eq!(vars[3], d.name(), "WSL's variable was lost");
        assert!(
            vars[4].starts_with("/run/wrappers/bin:/home/nixos/.nix-profile/bin:"),
            "{stdout}"
        );
        assert!(vars[4].contains(":/run/current-system/sw/bin:"), "{stdout}");
        assert!(
            vars[4].ends_with(
                ":/mnt/c/Windows/System32:/mnt/c/Windows:/mnt/c/Program Files/PowerShell/7"
            ),
            "Windows PATH entries lost: {stdout}"
        );
        // The user's shell itself runs with exactly its arguments.
        let cmdline = lines.next().expect("cmdline");
        assert!(cmdline.ends_with(&format!("-c {show} ")), "{cmdline}");
    }
}

/// The bare tarball packed (what `packer --rootfs nixos-system.tar.gz` gives) boots with its
/// Nix database loaded and the system profile set, by the system's own `nix-store` and
/// `nix-env`; returns the first shell's stderr.
fn first_boot_loads_the_nix_database(d: &Distro) -> String {
    assert!(d.path("/nix-path-registration").is_file());
    assert!(d
        .path("/nix/var/nix/profiles/system")
        .symlink_metadata()
        .is_err());
    let out = sh(
        d,
        "cat /proc/1/comm; readlink /run/current-system >/dev/null && echo activated; \
         systemctl is-system-running --wait; \
         sudo /run/current-system/sw/bin/nix-store --verify 2>&1 && echo verified; \
         sudo /run/current-system/sw/bin/nix-store -qR /run/current-system | wc -l; \
         readlink -f /nix/var/nix/profiles/system",
    );
    let stdout = assert_ok(&out);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines[..3],
        ["systemd", "activated", "running"],
        "{stdout}{}",
        text(&out).1
    );
    assert!(lines.contains(&"verified"), "{stdout}");
    // The system's closure is registered: every store path of the tarball.
    let registered: usize = lines[lines.len() - 2].parse().expect("a count");
    let store = fs::read_dir(d.path("/nix/store"))
        .expect("store")
        .filter(|e| e.as_ref().is_ok_and(|e| e.file_name() != ".links"))
        .count();
    assert_eq!(registered, store, "{stdout}");
    let system = lines[lines.len() - 1];
    assert!(system.contains("-nixos-system-"), "{stdout}");
    assert_eq!(
        fs::read_link(d.path("/nix/var/nix/profiles/system")).ok(),
        Some(PathBuf::from("system-1-link"))
    );
    assert!(d
        .path("/nix/var/nix/db/nixos-wsl-registration-loaded")
        .exists());
    text(&out).1
}

#[test]
fn a_bare_tarballs_first_boot_loads_the_nix_database_once() {
    let d = distro(Variant::NixosTarball);
    first_boot_loads_the_nix_database(&d);
    // Once: not again after a restart. A registration that no longer loads would be said.
    let marker = fs::metadata(d.path("/nix/var/nix/db/nixos-wsl-registration-loaded"))
        .and_then(|m| m.modified())
        .expect("marker");
    d.terminate();
    d.write("/nix-path-registration", "not a registration\n");
    let out = sh(
        &d,
        "sudo /run/current-system/sw/bin/nix-store --verify 2>&1 && echo verified",
    );
    assert!(
        assert_ok(&out).ends_with("\nverified\n"),
        "{}",
        text(&out).0
    );
    assert!(
        !text(&out).1.contains("nix-path-registration"),
        "{}",
        text(&out).1
    );
    assert_eq!(
        fs::metadata(d.path("/nix/var/nix/db/nixos-wsl-registration-loaded"))
            .and_then(|m| m.modified())
            .ok(),
        Some(marker)
    );
}

#[test]
fn a_bare_xz_tarballs_first_boot_loads_the_nix_database() {
    let d = distro(Variant::NixosTarballXz);
    let stderr = first_boot_loads_the_nix_database(&d);
    assert!(!stderr.contains("nix-path-registration"), "{stderr}");
}

#[test]
fn native_mode_masks_reach_systemd_on_its_command_line_too() {
    let d = distro(Variant::Nixos);
    // NixOS has no mask files of packer's: the command line alone must mask the units.
    d.enable_native_systemd();
    let out = sh(
        &d,
        "systemctl show -p LoadState --value systemd-binfmt.service; \
         readlink /run/systemd/generator.early/systemd-binfmt.service; \
         systemctl show -p LoadState --value autovt@tty1.service; \
         systemctl is-system-running --wait; systemctl --failed --no-legend >&2; \
         tr '\\0' '\\n' </proc/1/cmdline | head -n 1",
    );
    assert_eq!(
        assert_ok(&out),
        "masked\n/dev/null\nmasked\nrunning\n/run/current-system/systemd/lib/systemd/systemd\n",
        "{}",
        text(&out).1
    );
    assert_eq!(handle(&d), "", "native mode keeps no handle");
    assert_eq!(systemd_pid1s(&d), 1);
}

#[test]
fn a_lock_file_not_owned_by_root_is_refused_and_the_shell_still_starts() {
    let d = distro(Variant::Debian);
    outside(
        &d,
        "mkdir -p /run/nixos-wsl && touch /run/nixos-wsl/lock && chown nixos /run/nixos-wsl/lock",
    );
    let out = run_within(&d, &["--", "id -un"], b"", 120);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(stdout, "nixos\n");
    assert!(
        stderr.contains("refusing /run/nixos-wsl/lock") && stderr.contains("owned by root"),
        "{stderr}"
    );
    assert_eq!(systemd_pid1s(&d), 0, "systemd started past a refused lock");
}

#[test]
fn the_lock_folder_and_handle_are_root_only_whatever_the_umask() {
    let d = distro(Variant::Debian);
    assert_ok(&d.run(&[
        "-e",
        "/bin/sh",
        "-c",
        &format!("umask 000; exec {INIT} -c true"),
    ]));
    assert_eq!(
        outside(
            &d,
            "stat -c %a /run/nixos-wsl /run/nixos-wsl/lock /run/nixos-wsl/systemd"
        ),
        "755\n600\n644"
    );
}
