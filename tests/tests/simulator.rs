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
    // WSL reports a signal death as the raw signal number (init.cpp:2055-2062).
    let out = distro.run(&["--", "kill -TERM $$"]);
    assert_eq!(out.status.code(), Some(15), "a signal death is N");

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
    // A failed execvpe is FATAL_ERROR: exit 1 (init.cpp:818-819).
    let out = distro.run(&["-e", "/no/such/program"]);
    assert_eq!(out.status.code(), Some(1));
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

    // A second session joins the same instance; wsl.conf is read once per instance start
    // (WslDistributionConfig.cpp:62-68), so a new default user counts from the next start;
    // --cd keeps the working directory.
    distro.write("/etc/wsl.conf", "[user]\ndefault=nixos\n");
    let out = distro.run(&["--cd", "/tmp", "--", "ls /run/marker; id -un; pwd"]);
    assert_eq!(
        stdout(&out),
        "/run/marker\nroot\n/tmp\n",
        "{}",
        stderr(&out)
    );
    distro.terminate();
    let out = distro.run(&["--", "id -un; id -Gn"]);
    assert_eq!(
        stdout(&out),
        "nixos\nnixos sudo users\n",
        "{}",
        stderr(&out)
    );
    // A login shell has a login argv[0]; piped input still reaches it (through a pipe, as
    // WSL's relay uses for every descriptor that is no terminal).
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
    let out = distro.run(&[
        "--",
        "touch /run/marker; echo ping | socat - UNIX-CONNECT:$WSL_INTEROP",
    ]);
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

/// `wsl -- CMD` as root in `distro`, stdout only; the test fails on a non-zero exit.
fn sh_ok(distro: &Distro, cmd: &str) -> String {
    let out = distro.run(&["--", cmd]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{cmd}: {}{}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

/// main.cpp:245-262 (`mount(".", "/", MS_MOVE)` then `chroot`) and main.cpp:3027 (IPC, mount,
/// PID and UTS namespaces, no cgroup one of the distribution's own).
#[test]
fn the_tree_is_the_root_mount_and_setns_lands_in_it() {
    require_root();
    let distro = Distro::from_tree(&rootfs(Variant::Debian));
    let text = sh_ok(
        &distro,
        "awk '$5 == \"/\" {print $4}' /proc/self/mountinfo; \
         for n in ipc mnt pid uts cgroup; do readlink /proc/1/ns/$n; done; \
         readlink /proc/self/ns/cgroup",
    );
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.first().copied(),
        Some("/"),
        "the tree is a whole mount: {text}"
    );
    let host = |kind: &str| {
        fs::read_link(format!("/proc/self/ns/{kind}"))
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    for (i, kind) in ["ipc", "mnt", "pid", "uts"].iter().enumerate() {
        assert_ne!(
            lines[1 + i],
            host(kind),
            "{kind} is the instance's own: {text}"
        );
    }
    assert_eq!(
        lines[5], lines[6],
        "sessions share PID 1's cgroup namespace: {text}"
    );
    // setns into the mount namespace (what nsenter does) lands in the tree, not the host.
    let pid = distro.instance_pid().expect("running");
    let out = Command::new("nsenter")
        .arg(format!("--mount=/proc/{pid}/ns/mnt"))
        .args(["sh", "-c", "test -L /bin/wslinfo && readlink /bin/wslinfo"])
        .output()
        .expect("nsenter runs");
    assert_eq!(stdout(&out).trim(), "/init", "{}", stderr(&out));
}

/// config.cpp:190-229 (flags applied at :1272-1285) and :1857 (cgroup2, nsdelegate).
#[test]
fn wsls_own_mounts_are_shared_where_wsls_are() {
    require_root();
    let distro = Distro::from_tree(&rootfs(Variant::Debian));
    let text = sh_ok(
        &distro,
        "for t in /proc /sys /dev /run /run/lock /run/shm /run/user /dev/pts /mnt/wsl /sys/fs/cgroup; do \
           echo \"$t $(findmnt -n -o FSTYPE,PROPAGATION --target $t | tail -n 1 | tr -s ' ')\"; done; \
         findmnt -n -o OPTIONS /dev/pts | tail -n 1; stat -c %a /tmp",
    );
    for (target, expected) in [
        ("/proc", "proc shared"),
        ("/sys", "sysfs shared"),
        ("/run", "tmpfs shared"),
        ("/run/lock", "tmpfs shared"),
        ("/run/shm", "tmpfs shared"),
        ("/mnt/wsl", "tmpfs shared"),
        ("/sys/fs/cgroup", "cgroup2 shared"),
    ] {
        assert!(
            text.lines().any(|l| l == format!("{target} {expected}")),
            "{target}: {expected} expected in\n{text}"
        );
    }
    assert!(
        text.lines()
            .any(|l| l.starts_with("/dev ") && l.ends_with(" shared")),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.starts_with("/run/user tmpfs")),
        "{text}"
    );
    let lines: Vec<&str> = text.lines().collect();
    let pts = lines[lines.len() - 2];
    assert!(pts.contains("gid=5") && pts.contains("mode=620"), "{pts}");
    assert_eq!(lines[lines.len() - 1], "1777");
}

/// util.cpp:1790 (`mkdir -p` of every target), main.cpp:3160-3189 and config.cpp:1110-1124
/// (kernel modules), config.cpp:1041-1053 and lxfsshares.h:36 (GPU shares).
#[test]
fn wsls_mounts_inside_the_tree_create_their_folders() {
    require_root();
    // Debian's /lib is a link to usr/lib: the modules land in /usr/lib/modules.
    let distro = Distro::from_tree(&rootfs(Variant::Debian));
    let text = sh_ok(
        &distro,
        "ls /usr/lib/modules/$(uname -r)/; findmnt -n -o TARGET /usr/lib/modules/$(uname -r); \
         touch /usr/lib/wsl/lib/x 2>/dev/null && echo writable || echo read-only; \
         findmnt -n -o TARGET /usr/lib/wsl/drivers",
    );
    let release = fs::read_to_string("/proc/sys/kernel/osrelease").expect("release");
    assert_eq!(
        text,
        format!(
            "modules.wsl-sim\n/usr/lib/modules/{}\nread-only\n/usr/lib/wsl/drivers\n",
            release.trim()
        )
    );
    // In a tree without /lib (an installer distribution) a real /lib appears, with a mount
    // point inside (Debian's programs need /lib, so this is seen from the host).
    let distro = Distro::from_tree(&rootfs(Variant::Debian));
    fs::remove_file(distro.path("/lib")).expect("remove the /lib link");
    let _ = distro.run(&["--", "true"]);
    let lib = fs::symlink_metadata(distro.path("/lib")).expect("/lib");
    assert!(lib.is_dir(), "/lib is a real folder");
    let pid = distro.instance_pid().expect("running");
    let mounts = fs::read_to_string(format!("/proc/{pid}/mountinfo")).expect("mountinfo");
    let target = format!(" /lib/modules/{} ", release.trim());
    assert!(mounts.contains(&target), "{mounts}");
}

/// config.cpp:212-216 (links to /init), :789 and :815 (creat() of /etc/hostname and
/// /etc/hosts), :1337-1389 (resolv.conf), :2093-2124 (ld.wsl.conf), :2127-2160 (mount -a and
/// its warning), main.cpp:2173-2177 (/init truncated, bound read-only).
#[test]
fn the_files_wsl_writes_at_every_start() {
    require_root();
    let distro = Distro::from_tree(&rootfs(Variant::Debian));
    distro.write("/etc/hostname.real", "old\n");
    fs::remove_file(distro.path("/etc/hostname")).ok();
    std::os::unix::fs::symlink("hostname.real", distro.path("/etc/hostname")).expect("link");
    distro.write("/init", "not WSL's init\n");
    // /bin/mount gone: WSL warns once that mount -a failed.
    fs::remove_file(distro.path("/usr/bin/mount")).expect("remove mount");
    let out = distro.run(&[
        "--",
        "for l in /bin/wslinfo /bin/wslpath /sbin/mount.drvfs /etc/resolv.conf; do readlink $l; done; \
         cat /etc/hostname.real; grep -c 127.0.0.1 /etc/hosts; cat /etc/ld.so.conf.d/ld.wsl.conf; echo; \
         cmp -s /init /proc/1/exe && echo wsl-init; touch /init 2>/dev/null || echo read-only",
    ]);
    let hostname = distro.name().replace('_', "-");
    assert_eq!(
        stdout(&out),
        format!(
            "/init\n/init\n/init\n/mnt/wsl/resolv.conf\n{hostname}\n1\n\
             # This file was automatically generated by WSL (wsl-sim).\n/usr/lib/wsl/lib\n\
             wsl-init\nread-only\n"
        ),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("wsl: Processing /etc/fstab with mount -a failed."),
        "{}",
        stderr(&out)
    );
}

/// configfile.cpp (only `#` comments, names in any case, the first invalid line ends the
/// parse, the first duplicate wins) and WslDistributionConfig.cpp:62-68 (once per start).
#[test]
fn wsl_conf_is_read_with_wsls_rules() {
    require_root();
    let distro = Distro::from_tree(&rootfs(Variant::Debian));
    distro.write("/etc/wsl.conf", "[User]\nDEFAULT=nixos\ndefault=root\n");
    assert_eq!(sh_ok(&distro, "id -un"), "nixos\n");
    distro.terminate();
    distro.write(
        "/etc/wsl.conf",
        "; a comment for other parsers\n[user]\ndefault=nixos\n",
    );
    let out = distro.run(&["--", "id -un"]);
    assert_eq!(stdout(&out), "root\n", "the ; line ended the parse");
    assert!(
        stderr(&out).contains("wsl: /etc/wsl.conf:1:"),
        "{}",
        stderr(&out)
    );
}

/// config.cpp:690-701 and :1996-2021: drvfs gets uid= and gid= of `[user] default`.
#[test]
fn mnt_c_belongs_to_the_default_user() {
    require_root();
    let distro = Distro::from_tree(&rootfs(Variant::Debian));
    assert_eq!(sh_ok(&distro, "stat -c %u /mnt/c"), "0\n");
    distro.terminate();
    distro.write("/etc/wsl.conf", "[user]\ndefault=nixos\n");
    let text = sh_ok(&distro, "stat -c %u:%g /mnt/c; echo $(id -u):$(id -g)");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert_eq!(lines[0], lines[1], "{text}");
    assert_eq!(lines[0].split(':').next(), Some("1000"), "{text}");
}

/// init.cpp:1004-1008 (unknown -u: 67), :818-819 (failed exec of the shell: 1), musl's
/// execvpe without a PATH for -e (only /usr/local/bin:/bin:/usr/bin).
#[test]
fn exit_statuses_as_wsl_reports_them() {
    require_root();
    let distro = Distro::from_tree(&rootfs(Variant::Debian));
    assert_eq!(
        distro
            .run(&["-u", "nosuchuser", "--", "true"])
            .status
            .code(),
        Some(67)
    );
    assert_eq!(distro.run(&["--", "kill -KILL $$"]).status.code(), Some(9));
    distro.write("/usr/sbin/only-in-sbin", "#!/bin/sh\necho sbin\n");
    distro.write("/usr/local/bin/in-local-bin", "#!/bin/sh\necho local\n");
    host_sh(&format!(
        "chmod 755 {} {}",
        distro.path("/usr/sbin/only-in-sbin").display(),
        distro.path("/usr/local/bin/in-local-bin").display()
    ));
    assert_eq!(stdout(&distro.run(&["-e", "in-local-bin"])), "local\n");
    assert_eq!(distro.run(&["-e", "only-in-sbin"]).status.code(), Some(1));
    let passwd = fs::read_to_string(distro.path("/etc/passwd")).expect("passwd");
    distro.write(
        "/etc/passwd",
        passwd.replace("root:/bin/bash", "root:/no/such/shell"),
    );
    let out = distro.run(&["--", "true"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("execvpe(/no/such/shell) failed"),
        "{}",
        stderr(&out)
    );
}

/// init.cpp:1553-1680: a subreaper relay that ignores all but SIGHUP, a new pty per session
/// (the program leads its session, the pty is its controlling terminal) and pipes for the
/// caller's descriptors that are no terminal; config.cpp:950-963: /run/WSL/1_interop.
#[test]
fn each_session_gets_a_pty_and_a_subreaper_relay() {
    require_root();
    let distro = Distro::from_tree(&rootfs(Variant::Debian));
    let text = sh_ok(
        &distro,
        "ps -o sid= -p $$; echo $$; ps -o tty= -p $$ | cut -c1-4; readlink /proc/self/fd/1 | head -c 4; echo; \
         grep -E '^Sig(Ign)' /proc/$PPID/status | cut -f2; \
         (sleep 30 & echo $! > /tmp/orphan); sleep 0.2; ps -o ppid= -p $(cat /tmp/orphan); echo $PPID; \
         echo ping | socat - UNIX-CONNECT:/run/WSL/1_interop",
    );
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    assert_eq!(lines[0], lines[1], "the program leads its session: {text}");
    assert_eq!(
        lines[2], "pts/",
        "the pty is its controlling terminal: {text}"
    );
    assert_eq!(
        lines[3], "pipe",
        "stdout is captured: a pipe, as WSL's relay makes: {text}"
    );
    let ignored = u64::from_str_radix(lines[4], 16).expect("SigIgn");
    assert_eq!(ignored & 1, 0, "SIGHUP is not ignored: {text}");
    for signal in [2u32, 3, 15] {
        assert_ne!(ignored & (1 << (signal - 1)), 0, "signal {signal}: {text}");
    }
    assert_eq!(lines[5], lines[6], "the orphan is the relay's: {text}");
    assert_eq!(lines[7], "pong");
}

/// init.cpp:2355-2438 (/sbin/init with three variables and no PATH), :318-396 (the generator),
/// config.cpp:2719-2805 (/bin/login -f once per uid, user@UID.service), init.cpp:2796-2836
/// (terminate: systemctl poweroff).
#[test]
fn native_systemd_as_wsl_boots_it() {
    require_root();
    let distro = Distro::from_tree(&rootfs(Variant::Debian));
    distro.write("/etc/wsl.conf", "[boot]\nsystemd=true\n");
    distro.write(
        "/etc/systemd/system/stop-marker.service",
        "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n\
         ExecStop=/bin/sh -c 'echo stopped > /var/stop-marker'\n\
         [Install]\nWantedBy=multi-user.target\n",
    );
    fs::create_dir_all(distro.path("/etc/systemd/system/multi-user.target.wants")).expect("mkdir");
    std::os::unix::fs::symlink(
        "/etc/systemd/system/stop-marker.service",
        distro.path("/etc/systemd/system/multi-user.target.wants/stop-marker.service"),
    )
    .expect("enable");
    let text = sh_ok(
        &distro,
        "tr '\\0' '\\n' < /proc/1/environ; echo --; readlink /run/systemd/generator/console-getty.service; \
         systemctl is-active wsl-mnt-guard.service; systemctl is-active user@0.service; \
         echo $XDG_RUNTIME_DIR; pgrep -x login >/dev/null && echo login",
    );
    assert_eq!(
        text,
        format!(
            "container=wsl\ncontainer_host_id=windows\ncontainer_host_version_id={}\n--\n\
             /dev/null\nactive\nactive\n/run/user/0\nlogin\n",
            wsl_sim::sim::pid1::WSL_VERSION
        )
    );
    distro.terminate();
    assert_eq!(
        fs::read_to_string(distro.path("/var/stop-marker"))
            .ok()
            .as_deref(),
        Some("stopped\n"),
        "terminate powers systemd off"
    );
}

/// config.cpp:2228-2330 and :2495-2530: elevated sessions have a mount namespace of their own.
#[test]
fn elevated_sessions_have_their_own_mount_namespace() {
    require_root();
    let distro = Distro::from_tree(&rootfs(Variant::Debian));
    let plain = sh_ok(&distro, "readlink /proc/self/ns/mnt");
    let out = distro.run(&["--elevated", "--", "readlink /proc/self/ns/mnt"]);
    let elevated = stdout(&out);
    assert_ne!(
        plain.lines().next(),
        elevated.lines().next(),
        "{}",
        stderr(&out)
    );
    let again = distro.run(&["--elevated", "--", "readlink /proc/self/ns/mnt"]);
    assert_eq!(
        stdout(&again),
        elevated,
        "one elevated namespace per instance"
    );
    // /run is shared: a mount there reaches both.
    sh_ok(
        &distro,
        "mkdir -p /run/shared-test && mount -t tmpfs x /run/shared-test",
    );
    let out = distro.run(&["--elevated", "--", "findmnt -n -o FSTYPE /run/shared-test"]);
    assert_eq!(stdout(&out).trim(), "tmpfs", "{}", stderr(&out));
}

/// WslClient.cpp:314 (import: no OOBE), LxssInstance.cpp:671-674 (only a start without a
/// command), init.cpp:625-676 (root via /bin/sh -c, retried until it succeeds, then the session
/// as oobe.defaultUid).
#[test]
fn oobe_runs_for_an_install_until_it_succeeds() {
    require_root();
    let dir = scratch_dir("sim-oobe");
    let tree = dir.join("tree");
    host_sh(&format!(
        "mkdir -p {t} && cp -a {src}/. {t}/ && mkdir -p {t}/usr/libexec/wsl && \
         printf '#!/bin/sh\\nid -un > /tmp/oobe-user\\n[ -e /var/oobe-once ] || {{ touch /var/oobe-once; exit 3; }}\\n' \
           > {t}/usr/libexec/wsl/oobe && chmod 755 {t}/usr/libexec/wsl/oobe && \
         printf '[oobe]\\ncommand = /usr/libexec/wsl/oobe\\ndefaultUid = 1000\\n' > {t}/etc/wsl-distribution.conf && \
         tar --numeric-owner --hard-dereference -C {t} -czf {a} . && rm -rf {t}",
        t = tree.display(),
        src = rootfs(Variant::Debian).display(),
        a = dir.join("distro.wsl").display()
    ));
    let root = dir.join("installed");
    let out = Command::new(dist_bin("wsl-sim"))
        .arg("install")
        .arg(dir.join("distro.wsl"))
        .arg(&root)
        .output()
        .expect("wsl-sim runs");
    assert!(out.status.success(), "{}", stderr(&out));
    let login = |input: &str| {
        let mut child = Command::new(dist_bin("wsl-sim"))
            .arg("run")
            .arg(&root)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        use std::io::Write;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write");
        child.wait_with_output().expect("wait")
    };
    let run = |cmd: &str| {
        Command::new(dist_bin("wsl-sim"))
            .arg("run")
            .arg(&root)
            .args(["--", cmd])
            .output()
            .expect("run")
    };
    // A command start: no OOBE.
    assert_eq!(
        stdout(&run("id -un; ls /tmp/oobe-user 2>&1 | grep -c 'No such'")),
        "root\n1\n"
    );
    // The first interactive start: OOBE fails, the session ends with 1.
    let out = login("id -un\n");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("OOBE command \"/usr/libexec/wsl/oobe\" failed"),
        "{}",
        stderr(&out)
    );
    // The next one: OOBE again, as root, then the session as uid 1000.
    let out = login("id -un\n");
    assert_eq!(stdout(&out), "nixos\n", "{}", stderr(&out));
    assert_eq!(stdout(&run("cat /tmp/oobe-user")), "root\n");
    // Done: no more OOBE, and the default uid is 1000 from now on.
    assert_eq!(stdout(&run("id -un")), "nixos\n");
    let out = Command::new(dist_bin("wsl-sim"))
        .arg("run")
        .arg(&root)
        .args(["-u", "root", "--", "rm /tmp/oobe-user"])
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", stderr(&out));
    let out = login("ls /tmp/oobe-user 2>/dev/null; id -un\n");
    assert_eq!(stdout(&out), "nixos\n");
    let _ = Command::new(dist_bin("wsl-sim"))
        .arg("terminate")
        .arg(&root)
        .status();
}

/// config.cpp:603-621 (/tmp/.X11-unix bound read-only), :1073-1108 (/mnt/wslg) and :1765-1792
/// (the variables); without WSLg none of it.
#[test]
fn wslg_sockets_answer_and_sessions_find_them() {
    require_root();
    let distro = Distro::from_tree(&rootfs(Variant::Debian));
    let probe = "test -e /mnt/wslg || echo no-wslg; \
         echo \"$DISPLAY|$WAYLAND_DISPLAY|$XDG_RUNTIME_DIR|$PULSE_SERVER\"; \
         for s in \"$XDG_RUNTIME_DIR/$WAYLAND_DISPLAY\" \"${PULSE_SERVER#unix:}\" /tmp/.X11-unix/X0; do \
           socat -u UNIX-CONNECT:$s - 2>/dev/null || echo none; done; \
         touch /tmp/.X11-unix/x 2>/dev/null || echo read-only";
    let out = distro.run(&["--", probe]);
    assert!(
        stdout(&out).starts_with("no-wslg\n|||\n"),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    distro.terminate();
    let out = distro.run(&["--wslg", "--", probe]);
    assert_eq!(
        stdout(&out),
        ":0|wayland-0|/mnt/wslg/runtime-dir|unix:/mnt/wslg/PulseServer\nwayland\npulseaudio\nx11\nread-only\n",
        "{}",
        stderr(&out)
    );
}
