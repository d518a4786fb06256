//! The WSL simulator itself, against the real Debian test tree: `wsl --import` (and its
//! refusals), sessions as WSL starts them (PID 1, environment, default user, exit codes,
//! arguments, interop) and a native systemd boot through `[boot] systemd=true`.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use wsl_sim::{dist_bin, host_sh, require_root, rootfs, scratch_dir, Distro, Variant};

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A tar archive written by Python's tarfile, `body` adding entries to `t`.
fn python_tar(path: &Path, body: &str) {
    let script = format!(
        "import io, sys, tarfile\n\
         t = tarfile.open(sys.argv[1], 'w:gz')\n\
         def add(name, data=b'', kind=tarfile.REGTYPE, link='', mode=0o644):\n\
         \x20   i = tarfile.TarInfo(name); i.type = kind; i.linkname = link; i.mode = mode\n\
         \x20   i.size = len(data) if kind == tarfile.REGTYPE else 0\n\
         \x20   t.addfile(i, io.BytesIO(data) if i.size else None)\n\
         {body}\n\
         t.close()\n"
    );
    let status = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(path)
        .status()
        .expect("python3 runs");
    assert!(status.success());
}

#[test]
fn import_boots_debians_real_systemd_natively() {
    require_root();
    let dir = scratch_dir("sim-native-systemd");
    let archive = dir.join("debian.tar");
    // WSL imports plain tar as well as tar.gz; the Debian tree's few hard links are written
    // out as files, as any archive WSL accepts must be.
    host_sh(&format!(
        "tar --numeric-owner --xattrs --xattrs-include='*' --hard-dereference -C {} -cf {} .",
        rootfs(Variant::Debian).display(),
        archive.display()
    ));
    let distro = Distro::import(&archive).expect("the Debian tree imports");
    distro.write("/etc/wsl.conf", "[boot]\nsystemd=true\n");

    let out = distro.run(&[
        "--",
        "systemctl is-system-running; tr '\\0' ' ' < /proc/1/cmdline; echo; \
         systemctl is-enabled console-getty.service",
    ]);
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.first().copied(),
        Some("running"),
        "systemd did not reach running: {text}{}",
        stderr(&out)
    );
    assert_eq!(lines.get(1).map(|l| l.trim()), Some("/sbin/init"), "{text}");
    // WSL masks console-getty at runtime: with /dev shared it fights the host's console.
    assert_eq!(lines.get(2).copied(), Some("masked-runtime"), "{text}");

    // The stable interop socket of native systemd answers, from a service too.
    let out = distro.run(&[
        "--",
        "systemd-run --wait --pipe --quiet sh -c 'echo ping | socat - UNIX-CONNECT:/run/WSL/1_interop'",
    ]);
    assert_eq!(stdout(&out).trim(), "pong", "{}", stderr(&out));
}

#[test]
fn import_refuses_hard_links_non_archives_and_non_distributions() {
    require_root();
    let dir = scratch_dir("sim-import-refusals");
    let cases = [
        (
            "hard-link.tar.gz",
            "add('etc', kind=tarfile.DIRTYPE, mode=0o755)\nadd('bin/sh', b'x', mode=0o755)\n\
             add('bin/bash', kind=tarfile.LNKTYPE, link='bin/sh')",
            "hard link (bin/bash -> bin/sh)",
        ),
        (
            "empty-tree.tar.gz",
            "add('usr', kind=tarfile.DIRTYPE, mode=0o755)",
            "not a Linux distribution",
        ),
    ];
    for (name, body, message) in cases {
        let archive = dir.join(name);
        python_tar(&archive, body);
        let err = Distro::import(&archive)
            .err()
            .unwrap_or_else(|| panic!("{name} imported"));
        assert!(err.contains(message), "{name}: {err}");
    }
    let text = dir.join("notes.txt");
    fs::write(&text, "not an archive\n".repeat(100)).expect("write");
    let err = Distro::import(&text).err().expect("a text file imported");
    assert!(err.contains("Unrecognized archive format"), "{err}");

    // Nothing is left where a failed import was going to put the distribution.
    let target = dir.join("target");
    let out = Command::new(dist_bin("wsl-sim"))
        .arg("import")
        .arg(dir.join("hard-link.tar.gz"))
        .arg(&target)
        .output()
        .expect("wsl-sim runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        !target.exists(),
        "a failed import left {}",
        target.display()
    );
}

#[test]
fn exit_codes_and_command_lines_arrive_intact() {
    require_root();
    let distro = Distro::from_tree(&rootfs(Variant::Debian));
    for code in [0, 1, 42] {
        let out = distro.run(&["--", &format!("exit {code}")]);
        assert_eq!(out.status.code(), Some(code), "{}", stderr(&out));
    }
    let out = distro.run(&["--", "kill -TERM $$"]);
    assert_eq!(out.status.code(), Some(128 + 15), "a signal death is 128+N");

    // One -c string with spaces, quotes, a newline, $, backslashes and non-ASCII.
    let command =
        "printf '<%s>' \"a  b\" 'it'\\''s' \"$(printf 'x\\ny')\" '$HOME' 'back\\slash' 'grüße'";
    let out = distro.run(&["--", command]);
    assert_eq!(
        stdout(&out),
        "<a  b><it's><x\ny><$HOME><back\\slash><grüße>",
        "{}",
        stderr(&out)
    );
    // Several arguments are joined with single spaces into one command line, as WSL does.
    let out = distro.run(&["--", "echo", "one", "two"]);
    assert_eq!(stdout(&out), "one two\n");
    // -e bypasses the shell: the arguments reach the program as they are.
    let out = distro.run(&["-e", "/usr/bin/printf", "<%s>", "a  b", "$HOME"]);
    assert_eq!(stdout(&out), "<a  b><$HOME>");
    let out = distro.run(&["-e", "/no/such/program"]);
    assert_eq!(out.status.code(), Some(127));
}

#[test]
fn sessions_run_as_wsl_starts_them() {
    require_root();
    let distro = Distro::from_tree(&rootfs(Variant::Debian));
    let out = distro.run(&[
        "--",
        "tr '\\0' ' ' < /proc/1/cmdline; echo; echo \"$WSL_DISTRO_NAME|$HOSTTYPE|$WSLENV|$TERM\"; \
         echo \"$PATH\"; id -un; pwd; echo $$; touch /run/marker",
    ]);
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 6, "{text}{}", stderr(&out));
    assert!(
        lines[0].starts_with("/init __pid1 "),
        "PID 1 is WSL's init: {text}"
    );
    assert!(
        lines[1].starts_with(&format!("{}|x86_64|WT_SESSION", distro.name())),
        "{text}"
    );
    assert!(
        lines[2]
            .ends_with(":/mnt/c/Windows/System32:/mnt/c/Windows:/mnt/c/Program Files/PowerShell/7"),
        "{text}"
    );
    assert_eq!(lines[3], "root", "no wsl.conf: root");
    assert_eq!(lines[4], "/root", "the user's home");
    let pid: u32 = lines[5].parse().expect("a pid");
    assert!(
        pid < 100,
        "the shell runs in the instance's own PID namespace: pid {pid}"
    );

    // A second session joins the same instance; the default user comes from wsl.conf; a
    // login shell has a login argv[0]; --cd keeps the working directory.
    distro.write("/etc/wsl.conf", "[user]\ndefault=nixos\n");
    let out = distro.run(&["--cd", "/tmp", "--", "ls /run/marker; id -un; id -Gn; pwd"]);
    assert_eq!(
        stdout(&out),
        "/run/marker\nnixos\nnixos sudo users\n/tmp\n",
        "{}",
        stderr(&out)
    );
    let out = distro
        .command()
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            if let Some(mut stdin) = child.stdin.take() {
                stdin.write_all(b"echo $0; exit 5\n")?;
            }
            child.wait_with_output()
        })
        .expect("login shell runs");
    assert_eq!((stdout(&out).trim(), out.status.code()), ("-bash", Some(5)));

    // The interop socket answers the shell, and terminate ends the instance (/run is gone).
    let out = distro.run(&["--", "echo ping | socat - UNIX-CONNECT:$WSL_INTEROP"]);
    assert_eq!(stdout(&out).trim(), "pong", "{}", stderr(&out));
    let first = distro.instance_pid().expect("running");
    distro.terminate();
    assert_eq!(distro.instance_pid(), None);
    let out = distro.run(&["--", "ls /run/marker 2>/dev/null; echo fresh"]);
    assert_eq!(stdout(&out), "fresh\n");
    assert_ne!(distro.instance_pid(), Some(first));
}

#[test]
fn nothing_mounted_inside_leaks_to_the_host() {
    require_root();
    let distro = Distro::from_tree(&rootfs(Variant::Debian));
    let out = distro.run(&["--", "mount -t tmpfs none /mnt/wsl && echo mounted"]);
    assert_eq!(stdout(&out).trim(), "mounted", "{}", stderr(&out));
    let host = fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let root = distro.dir().to_string_lossy().into_owned();
    let leaked: Vec<&str> = host
        .lines()
        .filter(|l| l.contains(&format!("{root}/")))
        .collect();
    assert!(leaked.is_empty(), "mounts leaked to the host: {leaked:?}");
}
