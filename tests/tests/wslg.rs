//! WSLg (`wsl-sim run --wslg`: WSL's /mnt/wslg share, its three listening sockets, the
//! /tmp/.X11-unix bind and the session variables, microsoft/WSL `config.cpp:603-621`,
//! `:1765-1792`) through init, in both modes, on the Debian and the NixOS test trees: a client
//! connects to the Wayland socket at `$XDG_RUNTIME_DIR/$WAYLAND_DISPLAY`, to PulseAudio at
//! `$PULSE_SERVER` (and finds `$XDG_RUNTIME_DIR/pulse/native`, libpulse's default) and to X11 at
//! `/tmp/.X11-unix/X0` with `DISPLAY=:0`, from the user's shell and from a `systemctl --user`
//! service. Without WSLg nothing of it is added. The NixOS tree is the faithful test system
//! (`Variant::Nixos`: systemd, socat and the rest only in the store). No timing assertions:
//! waits are bounded loops.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

use wsl_sim::{packed_with_init, require_root, text, Distro, Variant};

/// What each socket of the simulator's WSLg answers, in the order [`CONNECT`] asks.
const ANSWERS: &str = "wayland\npulseaudio\n/mnt/wslg/runtime-dir/pulse/native\nx11\n";

/// The client: the variables, then one connect per socket (socat is in both trees). libpulse's
/// default, `$XDG_RUNTIME_DIR/pulse/native`, is only read as a link: the simulator's
/// `/mnt/wslg/runtime-dir/pulse/native` is `../PulseServer`, which resolves inside
/// `runtime-dir` and dangles (a defect of the model, reported).
const CONNECT: &str = r#"echo "$XDG_RUNTIME_DIR|$WAYLAND_DISPLAY|$DISPLAY|$PULSE_SERVER";
socat -u "UNIX-CONNECT:$XDG_RUNTIME_DIR/$WAYLAND_DISPLAY" - || echo no wayland;
socat -u "UNIX-CONNECT:${PULSE_SERVER#unix:}" - || echo no pulse server;
readlink "$XDG_RUNTIME_DIR/pulse/native";
socat -u "UNIX-CONNECT:/tmp/.X11-unix/X${DISPLAY#:}" - || echo no x11"#;

/// The variables the session and the user's services see, WSLg's own values but for the
/// runtime folder (the user's, so `systemctl --user` works).
const VARIABLES: &str = "/run/user/1000|wayland-0|:0|unix:/mnt/wslg/PulseServer\n";

/// Waits (bounded) for the user's systemd instance, the lingering one started at boot.
const USER_MANAGER_UP: &str = "for i in $(seq 300); do \
     case $(systemctl --user is-system-running 2>/dev/null) in running|degraded) break;; esac; \
     sleep 0.1; done";

/// Packed with the built init (`packer --format rootfs --default-user nixos`) and imported,
/// once per test process, as tests/tests/init.rs does.
fn packed(variant: Variant) -> &'static Path {
    static DEBIAN: OnceLock<PathBuf> = OnceLock::new();
    static NIXOS: OnceLock<PathBuf> = OnceLock::new();
    let (cell, name) = match variant {
        Variant::Debian => (&DEBIAN, "debian"),
        Variant::Nixos => (&NIXOS, "nixos"),
        other => panic!("the WSLg tests pack no {other:?} tree"),
    };
    cell.get_or_init(|| packed_with_init(variant, &format!("wslg-packed-{name}")))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// init starts systemd (root's shell).
    Wrapper,
    /// `[boot] systemd=true`: WSL starts the tree's `/sbin/init`.
    Native,
}

struct Case {
    d: Distro,
    wslg: bool,
}

impl Case {
    fn new(variant: Variant, mode: Mode, wslg: bool) -> Self {
        require_root();
        let d = Distro::from_tree(packed(variant));
        if mode == Mode::Native {
            // `[boot] systemd=true` and init as /sbin/init, what native mode is (packer links
            // it where a tree has none; Debian's own is systemd, which would leave init only
            // the shell); on NixOS also in the declared wsl.conf, and the module's /bin links.
            d.enable_native_systemd();
        }
        Self { d, wslg }
    }

    /// `wsl -- CMD` (through root's shell, init), with or without WSLg on the Windows side.
    fn sh(&self, cmd: &str) -> Output {
        self.d
            .command()
            .env("WSL_SIM_WSLG", if self.wslg { "1" } else { "0" })
            .args(["--", cmd])
            .stdin(std::process::Stdio::null())
            .output()
            .expect("wsl-sim runs")
    }

    fn ok(&self, cmd: &str) -> String {
        let out = self.sh(cmd);
        let (stdout, stderr) = text(&out);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{cmd}\nstdout: {stdout}\nstderr: {stderr}"
        );
        stdout
    }
}

/// `CMD` as a service of the user's systemd instance, its output. The session's PATH is passed
/// on (`-E PATH`): a transient unit gets systemd's default PATH, which on NixOS names none of
/// the system's programs (socat, readlink).
fn as_user_service(cmd: &str) -> String {
    format!(
        "{USER_MANAGER_UP}; systemd-run --user --quiet --wait --pipe -E PATH sh -c {}",
        shell_quote(cmd)
    )
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The session and a user service each reach the three sockets; the system boots to running
/// (WSLg's read-only /tmp/.X11-unix fails no unit); /tmp/.X11-unix and /mnt/wslg are WSLg's
/// in systemd's mount namespace.
fn sockets_answer_from_the_session_and_a_user_service(variant: Variant, mode: Mode) {
    let c = Case::new(variant, mode, true);
    let session = c.ok(&format!("id -un; {CONNECT}"));
    assert_eq!(session, format!("nixos\n{VARIABLES}{ANSWERS}"));
    assert_eq!(c.ok("systemctl is-system-running --wait"), "running\n");
    assert_eq!(
        c.ok(
            "findmnt -n -o TARGET,OPTIONS --target /tmp/.X11-unix | cut -d, -f1; \
              findmnt -n -o TARGET /mnt/wslg"
        ),
        "/tmp/.X11-unix ro\n/mnt/wslg\n"
    );
    let service = c.ok(&as_user_service(CONNECT));
    assert_eq!(service, format!("{VARIABLES}{ANSWERS}"));
}

#[test]
fn wslg_wrapper_mode_debian() {
    sockets_answer_from_the_session_and_a_user_service(Variant::Debian, Mode::Wrapper);
}

#[test]
fn wslg_wrapper_mode_nixos() {
    sockets_answer_from_the_session_and_a_user_service(Variant::Nixos, Mode::Wrapper);
}

#[test]
fn wslg_native_mode_debian() {
    sockets_answer_from_the_session_and_a_user_service(Variant::Debian, Mode::Native);
}

#[test]
fn wslg_native_mode_nixos() {
    sockets_answer_from_the_session_and_a_user_service(Variant::Nixos, Mode::Native);
}

/// The user's runtime folder goes away with the user's manager and comes back with it: the
/// links come back (init's user unit), seen from a user service started after it.
fn links_survive_a_recreated_runtime_folder(variant: Variant, mode: Mode) {
    let c = Case::new(variant, mode, true);
    let out = c.ok(&format!(
        "{USER_MANAGER_UP}; sudo systemctl stop user@1000.service user-runtime-dir@1000.service; \
         test -e /run/user/1000 && echo still there; \
         sudo systemctl start user@1000.service; {}",
        as_user_service(CONNECT)
    ));
    assert_eq!(out, format!("{VARIABLES}{ANSWERS}"));
}

#[test]
fn wslg_links_survive_a_recreated_runtime_folder_debian() {
    links_survive_a_recreated_runtime_folder(Variant::Debian, Mode::Wrapper);
}

#[test]
fn wslg_links_survive_a_recreated_runtime_folder_nixos() {
    links_survive_a_recreated_runtime_folder(Variant::Nixos, Mode::Wrapper);
}

/// In native mode on NixOS only init's unit can link: WSL's `wslg-session` runs `mkdir` and
/// `ln` by name, which the user manager's PATH does not find there (`init.cpp:291-303`).
#[test]
fn wslg_links_survive_a_recreated_runtime_folder_native_mode_nixos() {
    links_survive_a_recreated_runtime_folder(Variant::Nixos, Mode::Native);
}

/// Without WSLg: none of init's files, no variables in a user service, and in shell-wrapper
/// mode no links. (In native mode WSL's own `wslg-session` user unit links them whenever GUI
/// apps are enabled in wsl.conf, WSLg running or not: its user generator is installed on
/// `GuiAppsEnabled` alone, microsoft/WSL `init.cpp:2880-2888`; that is WSL's, not init's.)
fn nothing_is_added_without_wslg(variant: Variant, mode: Mode) {
    let c = Case::new(variant, mode, false);
    let links = if mode == Mode::Wrapper {
        "/run/user/1000/wayland-0 /run/user/1000/pulse"
    } else {
        ""
    };
    let out = c.ok(&format!(
        "{USER_MANAGER_UP}; ls -d /mnt/wslg /run/systemd/user.conf.d/nixos-wsl-wslg.conf \
         /run/systemd/user/nixos-wsl-wslg.service /run/tmpfiles.d/x11.conf {links} \
         2>/dev/null; {}",
        as_user_service("echo \"$DISPLAY|$WAYLAND_DISPLAY|$PULSE_SERVER\"")
    ));
    assert_eq!(out, "||\n");
    assert_eq!(c.ok("systemctl is-system-running --wait"), "running\n");
}

#[test]
fn without_wslg_nothing_is_added_wrapper_mode_debian() {
    nothing_is_added_without_wslg(Variant::Debian, Mode::Wrapper);
}

#[test]
fn without_wslg_nothing_is_added_wrapper_mode_nixos() {
    nothing_is_added_without_wslg(Variant::Nixos, Mode::Wrapper);
}

#[test]
fn without_wslg_nothing_is_added_native_mode_debian() {
    nothing_is_added_without_wslg(Variant::Debian, Mode::Native);
}

#[test]
fn without_wslg_nothing_is_added_native_mode_nixos() {
    nothing_is_added_without_wslg(Variant::Nixos, Mode::Native);
}
