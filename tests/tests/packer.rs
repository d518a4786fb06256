//! End-to-end tests of the built `packer` binary: every format lists and extracts with GNU tar
//! and bsdtar to exactly the source tree, output is byte-identical across runs and thread
//! counts, hard links are only in the installer's payload, bad input fails cleanly, `packer
//! check` finds each problem, and the simulator imports every format.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use wsl_sim::{dist_bin, host_sh, require_root, scratch_dir, Distro};

const INIT: &str = "usr/libexec/nixos-wsl/init";

fn packer(args: &[&OsStr]) -> Output {
    Command::new(dist_bin("packer"))
        .args(args)
        .env("SOURCE_DATE_EPOCH", "1000")
        .output()
        .expect("packer runs")
}

fn pack(src: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args: Vec<&OsStr> = vec![
        "--quiet".as_ref(),
        "--rootfs".as_ref(),
        src.as_ref(),
        "--out".as_ref(),
        out.as_ref(),
    ];
    args.extend(extra.iter().map(OsStr::new));
    let output = packer(&args);
    assert!(
        output.status.success(),
        "packer {:?} failed: {}",
        extra,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// `packer --format rootfs` of `src` without `--quiet`, checked to succeed: what it reported
/// (warnings and summary, on stderr).
fn pack_rootfs_reporting(src: &Path, out: &Path) -> String {
    let output = packer(&[
        "--format".as_ref(),
        "rootfs".as_ref(),
        "--rootfs".as_ref(),
        src.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{stderr}");
    stderr
}

fn long_name() -> String {
    format!(
        "nix/store/{}-{}",
        "0123456789abcdfghijklmnpqrsvwxyz",
        "a-package-with-a-long-name-".repeat(5)
    )
}

/// A small tree with everything a root filesystem can hold.
fn fixture(dir: &Path) -> PathBuf {
    let root = dir.join("src");
    fs::create_dir_all(&root).expect("mkdir");
    let r = root.display();
    let long = long_name();
    host_sh(&format!(
        "cd {r}
         mkdir -p etc bin usr/bin sbin home/nixos tmp dev nix/store '{long}/bin'
         printf 'root:x:0:0:root:/root:/bin/sh\\nnixos:x:1000:100::/home/nixos:/bin/sh\\n' > etc/passwd
         printf 'root:x:0:\\nusers:x:100:\\n' > etc/group
         printf 'root:*:1:0:99999:7:::\\n' > etc/shadow && chmod 0640 etc/shadow
         printf '[boot]\\nsystemd=true\\n\\n[user]\\ndefault=nixos\\n' > etc/wsl.conf
         printf 'ID=fixture\\n' > etc/os-release
         cp /bin/dash bin/sh && chmod 0755 bin/sh
         cp /bin/dash usr/bin/setuid && chmod 04755 usr/bin/setuid
         cp /bin/dash usr/bin/setgid && chmod 02711 usr/bin/setgid
         cp /bin/dash usr/bin/ping && setcap cap_net_raw+ep usr/bin/ping
         chmod 1777 tmp && chmod 0700 home/nixos && chown 1000:100 home/nixos
         echo hello > home/nixos/note && chown 1000:100 home/nixos/note && chmod 0600 home/nixos/note
         echo data > '{long}/bin/tool' && chmod 0555 '{long}/bin/tool' && echo ro > '{long}/readme' && chmod 0444 '{long}/readme'
         chmod 0555 '{long}/bin'
         ln -s ../usr/bin/setuid bin/relative
         ln -s /{long}/bin/tool bin/absolute
         ln -s /does/not/exist bin/dangling
         ln -s /$(printf 'x%.0s' $(seq 1 300)) bin/long-target
         echo shared > usr/bin/linked-a && ln usr/bin/linked-a usr/bin/linked-b
         head -c 450000 /dev/urandom | base64 > usr/bin/big-a && ln usr/bin/big-a usr/bin/big-b && ln usr/bin/big-a '{long}/big-c'
         mkfifo dev/fifo && mknod dev/null2 c 1 3 && mknod dev/loop9 b 7 9
         head -c 300000 /dev/urandom > usr/bin/random
         {{ head -c 98304 /dev/urandom | base64 -w 0 | head -c 131072; head -c 196608 /dev/urandom; head -c 49152 /dev/urandom | base64 -w 0; head -c 2000 /dev/urandom; }} > usr/bin/mixed
         : > usr/bin/empty"
    ));
    fs::write(
        root.join(OsStr::from_bytes(b"usr/caf\xe9")),
        b"latin-1 name\n",
    )
    .expect("non-UTF-8 name");
    let status = Command::new("python3")
        .args([
            "-c",
            "import os,sys; os.setxattr(sys.argv[1], 'user.test', b'v\\x00\\x01')",
        ])
        .arg(root.join("usr/bin/empty"))
        .status()
        .expect("python3 runs");
    assert!(
        status.success(),
        "setting user.test needs a filesystem with user xattrs"
    );
    root
}

/// Everything `tar -xp --xattrs` must bring back: type, mode, owner, size, data, target,
/// device numbers, xattrs (read with python), per path relative to `root`.
fn describe(root: &Path) -> BTreeMap<Vec<u8>, String> {
    let mut out = BTreeMap::new();
    let xattrs = xattrs(root);
    fn walk(
        root: &Path,
        dir: &Path,
        out: &mut BTreeMap<Vec<u8>, String>,
        xattrs: &BTreeMap<Vec<u8>, String>,
    ) {
        let mut names: Vec<_> = fs::read_dir(dir)
            .expect("read_dir")
            .map(|e| e.expect("entry").path())
            .collect();
        names.sort();
        for path in names {
            let m = fs::symlink_metadata(&path).expect("lstat");
            let t = m.file_type();
            let what = if t.is_symlink() {
                format!("link {}", fs::read_link(&path).expect("readlink").display())
            } else if t.is_file() {
                format!(
                    "file {} {:x}",
                    m.len(),
                    fs::read(&path)
                        .expect("read")
                        .iter()
                        .fold(0u64, |h, &b| h.wrapping_mul(31).wrapping_add(u64::from(b)))
                )
            } else if t.is_dir() {
                "dir".into()
            } else if t.is_fifo() {
                "fifo".into()
            } else if t.is_char_device() || t.is_block_device() {
                format!(
                    "dev {} {}",
                    if t.is_char_device() { 'c' } else { 'b' },
                    m.rdev()
                )
            } else {
                "other".into()
            };
            let mode = if t.is_symlink() { 0 } else { m.mode() & 0o7777 };
            let rel = path
                .strip_prefix(root)
                .expect("inside")
                .as_os_str()
                .as_bytes()
                .to_vec();
            let attrs = xattrs.get(&rel).map(String::as_str).unwrap_or("");
            out.insert(
                rel,
                format!(
                    "{what} mode {mode:o} owner {}:{} xattrs {attrs}",
                    m.uid(),
                    m.gid()
                ),
            );
            if t.is_dir() {
                walk(root, &path, out, xattrs);
            }
        }
    }
    walk(root, root, &mut out, &xattrs);
    out
}

/// Extended attributes of every file under `root` (std cannot read them; python can), by path.
fn xattrs(root: &Path) -> BTreeMap<Vec<u8>, String> {
    let script = "import os, sys\n\
        root = os.fsencode(sys.argv[1])\n\
        for d, dirs, files in os.walk(root):\n\
        \x20   for n in dirs + files:\n\
        \x20       p = os.path.join(d, n)\n\
        \x20       if os.path.islink(p): continue\n\
        \x20       a = sorted((x, os.getxattr(p, x).hex()) for x in os.listxattr(p))\n\
        \x20       if a: print(os.path.relpath(p, root).hex(), a)\n";
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(root)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "listing xattrs failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let (path, attrs) = line.split_once(' ')?;
            let path: Vec<u8> = (0..path.len())
                .step_by(2)
                .filter_map(|i| u8::from_str_radix(&path[i..i + 2], 16).ok())
                .collect();
            Some((path, attrs.to_owned()))
        })
        .collect()
}

/// Extracts with GNU tar or bsdtar as WSL does (numeric owners, modes, xattrs).
fn extract(tool: &str, archive: &Path, into: &Path) {
    fs::create_dir_all(into).expect("mkdir");
    let mut command = Command::new(tool);
    match tool {
        "tar" => command.args(["--xattrs", "--xattrs-include=*", "--numeric-owner", "-xpzf"]),
        _ => command.args(["--xattrs", "--numeric-owner", "-xpzf"]),
    };
    let output = command
        .arg(archive)
        .arg("-C")
        .arg(into)
        .output()
        .expect("tar runs");
    assert!(
        output.status.success(),
        "{tool} could not extract {}: {}",
        archive.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let listing = Command::new(tool)
        .arg("-tzf")
        .arg(archive)
        .output()
        .expect("tar lists");
    assert!(
        listing.status.success(),
        "{tool} could not list {}",
        archive.display()
    );
}

/// Paths packer writes on purpose (its edits) are left out of the comparison.
fn edited(path: &[u8]) -> bool {
    [&b"etc/passwd"[..], b"etc/wsl.conf", b"etc/wsl-distribution.conf", b"usr/lib/wsl", b"usr/share/wsl", b"etc/nixos-wsl", b"usr/libexec", b"sbin/init", b"etc/systemd"]
        .iter()
        .any(|p| path.starts_with(p))
        // usr/lib and usr/share hold only the icons' folders, which packer adds.
        || path == b"usr/lib"
        || path == b"usr/share"
}

fn assert_same_tree(source: &Path, extracted: &Path) {
    let want: BTreeMap<_, _> = describe(source)
        .into_iter()
        .filter(|(p, _)| !edited(p))
        .collect();
    let got: BTreeMap<_, _> = describe(extracted)
        .into_iter()
        .filter(|(p, _)| !edited(p))
        .collect();
    for (path, description) in &want {
        assert_eq!(
            got.get(path),
            Some(description),
            "{} differs after extraction",
            String::from_utf8_lossy(path)
        );
    }
    let extra: Vec<_> = got
        .keys()
        .filter(|p| !want.contains_key(*p))
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    assert!(extra.is_empty(), "unexpected paths: {extra:?}");
}

fn hard_link_entries(archive: &Path) -> usize {
    let out = Command::new("tar")
        .arg("-tvzf")
        .arg(archive)
        .output()
        .expect("tar lists");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with('h'))
        .count()
}

fn check(archive: &Path) -> Output {
    packer(&["check".as_ref(), archive.as_os_str()])
}

#[test]
fn every_format_extracts_to_the_source_tree_with_gnu_tar_and_bsdtar() {
    require_root();
    let dir = scratch_dir("packer-formats");
    let src = fixture(&dir);
    // The comparison below must see what it compares.
    let described = describe(&src);
    assert!(
        described[&b"usr/bin/ping"[..]].contains("security.capability"),
        "{described:?}"
    );
    assert!(
        described[&b"usr/bin/empty"[..]].contains("user.test"),
        "{described:?}"
    );
    assert!(
        described[&b"usr/bin/setuid"[..]].contains("mode 4755"),
        "{described:?}"
    );
    assert!(described.contains_key(&long_name().into_bytes()));
    let icon = dir.join("icon.ico");
    fs::write(&icon, [7u8; 5000]).expect("icon");
    let icon = icon.to_str().expect("utf-8");
    for (format, name) in [
        ("rootfs", "rootfs.tar.gz"),
        ("wsl", "fixture.wsl"),
        ("installer", "installer.tar.gz"),
    ] {
        let out = dir.join(name);
        let mut args = vec!["--format", format];
        if format == "wsl" {
            args.extend([
                "--name",
                "Fixture",
                "--icon",
                icon,
                "--oobe-command",
                // A program the archive has: Microsoft's validator (and packer check) errs
                // on an OOBE command that is not in it.
                "/bin/sh",
                "--default-uid",
                "1000",
            ]);
        }
        pack(&src, &out, &args);
        assert_eq!(hard_link_entries(&out), 0, "{format} has hard-link entries");
        let report = check(&out);
        assert!(
            report.status.success(),
            "packer check rejects the {format} output: {}",
            String::from_utf8_lossy(&report.stdout)
        );
        for tool in ["tar", "bsdtar"] {
            let into = dir.join(format!("{format}-{tool}"));
            extract(tool, &out, &into);
            if format == "installer" {
                let payload = into.join("nixos-wsl/rootfs.tar.gz");
                assert!(
                    hard_link_entries(&payload) > 0,
                    "the payload keeps hard links"
                );
                let inner = dir.join(format!("payload-{tool}"));
                extract(tool, &payload, &inner);
                assert_same_tree(&src, &inner);
                let manifest =
                    fs::read_to_string(into.join("nixos-wsl/rootfs.manifest")).expect("manifest");
                assert!(manifest.contains(&format!(
                    "size {}\n",
                    fs::metadata(&payload).expect("payload").len()
                )));
                assert!(manifest.contains("\nchunk 10 "), "chunk index: {manifest}");
                let sum = Command::new("sha256sum")
                    .arg(&payload)
                    .output()
                    .expect("sha256sum runs");
                let sum = String::from_utf8_lossy(&sum.stdout);
                let sum = sum.split_whitespace().next().expect("a hash");
                assert!(
                    manifest.contains(&format!("\nsha256 {sum}\n")),
                    "manifest hash: {manifest}"
                );
                assert_eq!(
                    fs::read_link(into.join("bin/sh")).expect("bin/sh").to_str(),
                    Some("/nixos-wsl/installer")
                );
                continue;
            }
            assert_same_tree(&src, &into);
            let passwd = fs::read_to_string(into.join("etc/passwd")).expect("passwd");
            assert!(
                passwd.starts_with(&format!("root:x:0:0:root:/root:/{INIT}\n")),
                "{passwd}"
            );
            let conf = fs::read_to_string(into.join("etc/nixos-wsl/init.conf")).expect("init.conf");
            assert!(
                conf.contains("user = nixos\n") && conf.contains("shell = /bin/sh\n"),
                "{conf}"
            );
            assert_eq!(
                fs::read_link(into.join("sbin/init"))
                    .expect("sbin/init")
                    .to_str(),
                Some(&*format!("/{INIT}"))
            );
            assert_eq!(
                fs::read_link(into.join("etc/systemd/system/tmp.mount"))
                    .expect("mask")
                    .to_str(),
                Some("/dev/null")
            );
            let wsl_conf = fs::read_to_string(into.join("etc/wsl.conf")).expect("wsl.conf");
            // A .wsl is native by default, naming the user by [user] default (WSL applies it on
            // every path), a rootfs wrapper (root, for init).
            let wanted_user = Some(if format == "wsl" { "nixos" } else { "root" });
            assert_eq!(
                wsl_value(&wsl_conf, "user.default").as_deref(),
                wanted_user,
                "{wsl_conf}"
            );
            assert_eq!(
                wsl_value(&wsl_conf, "boot.systemd").as_deref(),
                Some("true"),
                "{wsl_conf}"
            );
            if format == "wsl" {
                let conf = fs::read_to_string(into.join("etc/wsl-distribution.conf"))
                    .expect("wsl-distribution.conf");
                for line in [
                    "defaultName = Fixture\n",
                    "command = /bin/sh\n",
                    "defaultUid = 1000\n",
                    "icon = /usr/lib/wsl/icon.ico\n",
                ] {
                    assert!(conf.contains(line), "{line:?} missing from {conf}");
                }
                assert_eq!(
                    fs::read(into.join("usr/lib/wsl/icon.ico"))
                        .expect("icon")
                        .len(),
                    5000
                );
            }
        }
    }
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn output_is_byte_identical_across_runs_and_thread_counts() {
    require_root();
    let dir = scratch_dir("packer-determinism");
    let src = fixture(&dir);
    // Enough data for several 1 MiB chunks.
    host_sh(&format!(
        "head -c 5000000 /dev/urandom | base64 > {}/usr/bin/big",
        src.display()
    ));
    for format in ["rootfs", "installer"] {
        let outputs: Vec<Vec<u8>> = ["1", "2", "4", "2"]
            .iter()
            .enumerate()
            .map(|(i, threads)| {
                let out = dir.join(format!("{format}-{i}.tar.gz"));
                pack(&src, &out, &["--format", format, "--threads", threads]);
                fs::read(&out).expect("output")
            })
            .collect();
        for (i, output) in outputs.iter().enumerate().skip(1) {
            assert!(
                output == &outputs[0],
                "{format} run {i} differs from the first"
            );
        }
    }
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn a_tarball_with_hard_links_round_trips() {
    require_root();
    let dir = scratch_dir("packer-tarball");
    let src = fixture(&dir);
    let tarball = dir.join("source.tar.gz");
    host_sh(&format!(
        "tar --xattrs --xattrs-include='*' -C {} -czf {} .",
        src.display(),
        tarball.display()
    ));
    assert!(
        hard_link_entries(&tarball) > 0,
        "GNU tar keeps the hard link"
    );
    let out = dir.join("from-tarball.tar.gz");
    pack(&tarball, &out, &["--format", "rootfs"]);
    assert_eq!(hard_link_entries(&out), 0);
    let into = dir.join("extracted");
    extract("bsdtar", &out, &into);
    assert_same_tree(&src, &into);
    // Packing the directory or its tarball gives the same archive.
    let from_dir = dir.join("from-dir.tar.gz");
    pack(&src, &from_dir, &["--format", "rootfs"]);
    let (a, b) = (fs::read(&out).expect("a"), fs::read(&from_dir).expect("b"));
    assert!(a == b, "packing the tree and its tarball differ");
    let _ = fs::remove_dir_all(&dir);
}

/// The fixture's 600 KB file with three names: written out under each, compressed once.
#[test]
fn hard_linked_data_is_compressed_once_and_extracts_under_every_name() {
    require_root();
    let dir = scratch_dir("packer-shared-data");
    let src = fixture(&dir);
    let out = dir.join("rootfs.tar.gz");
    let summary = pack_rootfs_reporting(&src, &out);
    // Two second names of 600 KB, repeated; the small linked-b is compressed again.
    assert!(
        summary.contains("of which 1.2 MiB repeats compressed chunks"),
        "{summary}"
    );
    let into = dir.join("extracted");
    extract("tar", &out, &into);
    let big = fs::read(src.join("usr/bin/big-a")).expect("big-a");
    for name in ["usr/bin/big-b".to_owned(), format!("{}/big-c", long_name())] {
        assert!(
            fs::read(into.join(&name)).expect("extracted") == big,
            "{name}"
        );
    }
    assert_same_tree(&src, &into);
    // The compressed bytes do not depend on the thread count.
    let one = dir.join("one-thread.tar.gz");
    pack(&src, &one, &["--format", "rootfs", "--threads", "1"]);
    assert!(
        fs::read(&one).expect("one") == fs::read(&out).expect("out"),
        "one thread and all cores differ"
    );
    let _ = fs::remove_dir_all(&dir);
}

/// The fixture's random data is stored, not deflated: all of `usr/bin/random`, and of
/// `usr/bin/mixed` (two 64 KiB pieces of text, three random, one of text, a random tail
/// shorter than a sample, which goes as the piece before it) the three random pieces.
#[test]
fn incompressible_data_is_stored_and_extracts() {
    require_root();
    let dir = scratch_dir("packer-stored");
    let src = fixture(&dir);
    let out = dir.join("rootfs.tar.gz");
    let summary = pack_rootfs_reporting(&src, &out);
    let stored = human(300_000 + 3 * 65_536);
    assert!(
        summary.contains(&format!("{stored} of the data stored as incompressible")),
        "{summary}"
    );
    // Stored blocks are as long as their data: the archive is no smaller than it.
    let compressed = fs::metadata(&out).expect("out").len();
    assert!(compressed > 300_000 + 3 * 65_536, "{compressed} bytes");
    let into = dir.join("extracted");
    extract("bsdtar", &out, &into);
    assert_same_tree(&src, &into);
    let _ = fs::remove_dir_all(&dir);
}

/// packer's summary sizes: KiB with one decimal below a MiB.
fn human(bytes: u64) -> String {
    format!("{:.1} KiB", bytes as f64 / 1024.0)
}

#[test]
fn files_over_8_gib_get_a_pax_size() {
    require_root();
    let dir = scratch_dir("packer-big");
    let src = dir.join("src");
    // A sparse file on disk, written as a real entry of 8 GiB + 1 byte.
    host_sh(&format!(
        "mkdir -p {0}/etc {0}/big && truncate -s 8589934593 {0}/big/file",
        src.display()
    ));
    let out = dir.join("big.tar.gz");
    pack(&src, &out, &["--format", "rootfs", "--level", "1"]);
    // Only the first megabyte is needed to read the header back.
    let listing = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "gzip -dc {} 2>/dev/null | head -c 1048576 | tar -tvf - 2>/dev/null; true",
            out.display()
        ))
        .output()
        .expect("sh runs");
    let listing = String::from_utf8_lossy(&listing.stdout);
    let line = listing
        .lines()
        .find(|l| l.ends_with("big/file"))
        .unwrap_or_else(|| panic!("no big/file in {listing}"));
    assert!(line.contains(" 8589934593 "), "size: {line}");
    assert!(!line.starts_with('S'), "never sparse: {line}");
    let _ = fs::remove_dir_all(&dir);
}

fn assert_fails_cleanly(output: &Output, out_dir: &Path, expect: &[&str]) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "packer succeeded: {stderr}");
    for needle in expect {
        assert!(
            stderr.contains(needle),
            "message {stderr:?} lacks {needle:?}"
        );
    }
    let left: Vec<_> = fs::read_dir(out_dir)
        .expect("out dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert!(left.is_empty(), "files left behind: {left:?}");
}

#[test]
fn bad_input_gets_a_message_and_leaves_no_file() {
    require_root();
    let dir = scratch_dir("packer-bad");
    let out_dir = dir.join("out");
    fs::create_dir_all(&out_dir).expect("mkdir");
    let out = out_dir.join("x.tar.gz");
    let src = fixture(&dir);

    let missing = dir.join("missing");
    let output = packer(&[
        "--rootfs".as_ref(),
        missing.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
    ]);
    assert_fails_cleanly(
        &output,
        &out_dir,
        &[missing.to_str().expect("utf-8"), "No such file"],
    );

    let inside = src.join("x.tar.gz");
    let output = packer(&[
        "--rootfs".as_ref(),
        src.as_os_str(),
        "--out".as_ref(),
        inside.as_os_str(),
    ]);
    assert_fails_cleanly(&output, &out_dir, &["inside the source tree"]);
    assert!(!inside.exists());

    let big_icon = dir.join("big.ico");
    fs::write(&big_icon, vec![0u8; (1 << 20) + 1]).expect("icon");
    let output = packer(&[
        "--rootfs".as_ref(),
        src.as_os_str(),
        "--out".as_ref(),
        out_dir.join("x.wsl").as_os_str(),
        "--icon".as_ref(),
        big_icon.as_os_str(),
    ]);
    assert_fails_cleanly(
        &output,
        &out_dir,
        &[big_icon.to_str().expect("utf-8"), "up to 1048576 bytes"],
    );

    // A truncated tarball and one that is not a tarball at all.
    let good = dir.join("good.tar.gz");
    host_sh(&format!(
        "tar -C {} -czf {} .",
        src.display(),
        good.display()
    ));
    let truncated = dir.join("truncated.tar.gz");
    let bytes = fs::read(&good).expect("good");
    fs::write(&truncated, &bytes[..bytes.len() / 2]).expect("truncated");
    let output = packer(&[
        "--rootfs".as_ref(),
        truncated.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
    ]);
    assert_fails_cleanly(
        &output,
        &out_dir,
        &[truncated.to_str().expect("utf-8"), "damaged or truncated"],
    );
    let garbage = dir.join("garbage.tar");
    fs::write(&garbage, vec![0x42u8; 4096]).expect("garbage");
    let output = packer(&[
        "--rootfs".as_ref(),
        garbage.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
    ]);
    assert_fails_cleanly(
        &output,
        &out_dir,
        &[garbage.to_str().expect("utf-8"), "not a usable tar archive"],
    );

    // An unreadable file, for an unprivileged packer (root reads everything).
    let unreadable = src.join("usr/bin/secret");
    fs::write(&unreadable, b"secret").expect("secret");
    fs::set_permissions(&unreadable, fs::Permissions::from_mode(0o000)).expect("chmod");
    host_sh(&format!("chmod -R a+rX {0}/etc {0}/usr/bin/random && chmod 0777 {1} && chmod 0000 {2} && chmod a+x {3}", src.display(), out_dir.display(), unreadable.display(), dir.display()));
    let output = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(dist_bin("packer"))
        .args(["--quiet", "--format", "rootfs", "--rootfs"])
        .arg(&src)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("setpriv runs");
    assert_fails_cleanly(&output, &out_dir, &["cannot read", "Permission denied"]);
    fs::remove_file(&unreadable).expect("rm");

    // A full disk: a 2 MiB tmpfs for 5 MiB of random data.
    let full = dir.join("full");
    fs::create_dir_all(&full).expect("mkdir");
    host_sh(&format!(
        "mount -t tmpfs -o size=2m tmpfs {} && head -c 5000000 /dev/urandom > {}/usr/bin/big",
        full.display(),
        src.display()
    ));
    let output = packer(&[
        "--quiet".as_ref(),
        "--rootfs".as_ref(),
        src.as_os_str(),
        "--out".as_ref(),
        full.join("x.tar.gz").as_os_str(),
    ]);
    let left = fs::read_dir(&full).map(|d| d.count()).unwrap_or(0);
    host_sh(&format!("umount {}", full.display()));
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("No space left on device")
            && stderr.contains(full.to_str().expect("utf-8")),
        "{stderr}"
    );
    assert_eq!(left, 0, "files left on the full disk");
    let _ = fs::remove_dir_all(&dir);
}

/// Writes a tar with python's tarfile: `entries` is python code adding members to `t`.
fn python_tar(path: &Path, mode: &str, entries: &str) {
    let script = format!(
        "import tarfile, io, sys\n\
         def add(t, name, data=b'', mode=0o644, uid=0, kind=tarfile.REGTYPE, link='', pax=None):\n\
         \x20   i = tarfile.TarInfo(name); i.mode = mode; i.uid = uid; i.type = kind; i.linkname = link; i.size = len(data) if kind == tarfile.REGTYPE else 0\n\
         \x20   if pax: i.pax_headers = pax\n\
         \x20   t.addfile(i, io.BytesIO(data) if kind == tarfile.REGTYPE else None)\n\
         elf = open('/bin/dash', 'rb').read()\n\
         with tarfile.open(sys.argv[1], '{mode}', format=tarfile.PAX_FORMAT) as t:\n\
         {entries}\n"
    );
    let status = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(path)
        .status()
        .expect("python3 runs");
    assert!(
        status.success(),
        "python could not write {}",
        path.display()
    );
}

#[test]
fn check_reports_each_problem() {
    let dir = scratch_dir("packer-check");
    let etc = "    add(t, 'etc', kind=tarfile.DIRTYPE, mode=0o755)\n";
    let sh_only = &format!("{etc}    add(t, 'bin/sh', elf, mode=0o755)\n    add(t, 'etc/passwd', b'root:x:0:0::/root:/bin/sh\\n')");
    // Microsoft's validator requires /etc/wsl-distribution.conf, so packer check does.
    let sh_ok = &format!("{sh_only}\n    add(t, 'etc/wsl-distribution.conf', b'[oobe]\\ndefaultName=x\\n[shortcut]\\nicon=/usr/share/wsl/x.ico\\n')\n    add(t, 'usr/share/wsl/x.ico', b'icon')");
    let cases: &[(&str, &str, &str, bool)] = &[
        ("good", "w:gz", sh_ok, true),
        ("no /etc", "w:gz", "    add(t, 'bin/sh', elf, mode=0o755)", false),
        ("hard link", "w:gz", &format!("{sh_ok}\n    add(t, 'etc/x', kind=tarfile.LNKTYPE, link='bin/sh')"), false),
        ("/bin/sh is missing", "w:gz", &format!("{etc}    add(t, 'etc/passwd', b'root:x:0:0::/root:/bin/sh\\n')"), false),
        ("not an ELF", "w:gz", &format!("{etc}    add(t, 'bin/sh', b'#!/bin/dash\\n', mode=0o755)"), false),
        ("compressed with xz", "w:xz", sh_ok, false),
        ("unknown key", "w:gz", &format!("{sh_only}\n    add(t, 'etc/wsl-distribution.conf', b'[oobe]\\ndefaultName=x\\ncolour=red\\n')"), false),
        ("owned by 1000", "w:gz", &format!("{etc}    add(t, 'bin/sh', elf, mode=0o755)\n    add(t, 'etc/passwd', b'root:x:0:0::/root:/bin/sh\\n', uid=1000)"), false),
        ("icon", "w:gz", &format!("{sh_only}\n    add(t, 'etc/wsl-distribution.conf', b'[oobe]\\ndefaultName=x\\n[shortcut]\\nicon=/i.ico\\n')\n    add(t, 'i.ico', b'x' * (2 << 20))"), false),
        ("ACL xattr", "w:gz", &format!("{sh_ok}\n    add(t, 'etc/a', pax={{'SCHILY.xattr.system.posix_acl_access': 'x'}})"), true),
        ("sparse", "w:gz", &format!("{sh_ok}\n    add(t, 'etc/s', pax={{'GNU.sparse.major': '1'}})"), false),
        ("resolv.conf", "w:gz", &format!("{sh_ok}\n    add(t, 'etc/resolv.conf', b'nameserver 1.1.1.1\\n')"), true),
        ("/sbin/init", "w:gz", &format!("{sh_ok}\n    add(t, 'etc/wsl.conf', b'[boot]\\nsystemd=true\\n')"), false),
        ("oobe.defaultUid 1000 names no user", "w:gz", &format!("{sh_only}\n    add(t, 'etc/wsl-distribution.conf', b'[oobe]\\ndefaultUid=1000\\n[shortcut]\\nicon=/usr/share/wsl/x.ico\\n')\n    add(t, 'usr/share/wsl/x.ico', b'icon')"), true),
        // Native systemd with /sbin/init but nothing else WSL's boot runs: warnings only.
        ("native systemd: /bin/login is missing", "w:gz", &format!("{sh_ok}\n    add(t, 'etc/wsl.conf', b'[boot]\\nsystemd=true\\n')\n    add(t, 'sbin/init', elf, mode=0o755)"), true),
        ("fights WSL", "w:gz", &format!("{sh_ok}\n    add(t, 'etc/systemd/system/multi-user.target.wants/systemd-networkd.service', kind=tarfile.SYMTYPE, link='/lib/x')"), true),
        ("password hash", "w:gz", &format!("{sh_ok}\n    add(t, 'etc/shadow', b'root:$6$salt$hash:1::::::\\n', mode=0o640)"), false),
    ];
    for (i, (expect, mode, entries, passes)) in cases.iter().enumerate() {
        let archive = dir.join(format!("case-{i}.tar"));
        python_tar(&archive, mode, entries);
        let output = check(&archive);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(
            output.status.success(),
            *passes,
            "{expect}: exit status, report:\n{stdout}"
        );
        if *expect != "good" {
            assert!(stdout.contains(expect), "{expect}: not reported:\n{stdout}");
        } else {
            assert!(stdout.contains("0 errors, 0 warnings"), "{stdout}");
        }
    }
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn the_simulator_imports_every_format() {
    require_root();
    let dir = scratch_dir("packer-import");
    let src = fixture(&dir);
    for (format, name) in [
        ("rootfs", "rootfs.tar.gz"),
        ("wsl", "fixture.wsl"),
        ("installer", "installer.tar.gz"),
    ] {
        let out = dir.join(name);
        pack(&src, &out, &["--format", format]);
        let distro = Distro::import(&out)
            .unwrap_or_else(|e| panic!("wsl-sim import of the {format} format failed: {e}"));
        assert!(
            distro.path("/etc/passwd").exists(),
            "{format}: no /etc/passwd after import"
        );
    }
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn the_installer_unpacks_the_installer_format_to_the_source_tree() {
    require_root();
    let dir = scratch_dir("packer-installer-root");
    let src = fixture(&dir);
    let out = dir.join("nixos-wsl-installer.tar.gz");
    pack(&src, &out, &[]);
    let root = dir.join("root");
    extract("bsdtar", &out, &root);
    // The installer's test hook: install into a directory instead of / and do not exec init.
    let output = Command::new(dist_bin("installer"))
        .arg("--root")
        .arg(&root)
        .output()
        .expect("installer runs");
    assert!(
        output.status.success(),
        "the installer rejected packer's payload: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    // It skips what WSL owns (/dev here) and keeps the installer distribution's /root where the
    // source has none; everything else must be the source tree.
    let keep = |tree: &Path| -> BTreeMap<Vec<u8>, String> {
        describe(tree)
            .into_iter()
            .filter(|(p, _)| !edited(p) && !p.starts_with(b"dev") && p != b"root")
            .collect()
    };
    let (installed, source) = (keep(&root), keep(&src));
    let differ: Vec<String> = installed
        .keys()
        .chain(source.keys())
        .filter(|p| installed.get(*p) != source.get(*p))
        .map(|p| {
            format!(
                "{}: installed {:?}, source {:?}",
                String::from_utf8_lossy(p),
                installed.get(p),
                source.get(p)
            )
        })
        .collect();
    assert!(
        differ.is_empty(),
        "installed tree differs from the source: {differ:#?}"
    );
    let passwd = fs::read_to_string(root.join("etc/passwd")).expect("passwd");
    assert!(
        passwd.starts_with(&format!("root:x:0:0:root:/root:/{INIT}\n")),
        "{passwd}"
    );
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn the_installer_format_boots_to_a_shell() {
    require_root();
    let dir = scratch_dir("packer-installer-boot");
    let out = dir.join("nixos-wsl-installer.tar.gz");
    pack(&wsl_sim::rootfs(wsl_sim::Variant::Debian), &out, &[]);
    let distro = Distro::import(&out).unwrap_or_else(|e| panic!("import failed: {e}"));
    let output = distro.run(&["--", "echo packed-and-booted"]);
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("packed-and-booted"),
        "the installer did not hand over to a shell: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    drop(distro);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn sockets_are_skipped_and_acl_xattrs_dropped_with_a_warning() {
    require_root();
    let dir = scratch_dir("packer-skip");
    let src = dir.join("src");
    fs::create_dir_all(src.join("etc")).expect("mkdir");
    fs::write(src.join("etc/acl"), b"x").expect("file");
    // A socket, and an access ACL with a named user (so the kernel keeps it as an xattr).
    let script = "import os, socket, struct, sys\n\
        s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1] + '/etc/sock')\n\
        e = [(1, 6, 0xffffffff), (2, 4, 1000), (4, 4, 0xffffffff), (0x10, 4, 0xffffffff), (0x20, 4, 0xffffffff)]\n\
        acl = struct.pack('<I', 2) + b''.join(struct.pack('<HHI', *x) for x in e)\n\
        os.setxattr(sys.argv[1] + '/etc/acl', 'system.posix_acl_access', acl)\n";
    let status = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&src)
        .status()
        .expect("python3 runs");
    assert!(status.success(), "could not make the socket and the ACL");
    let out = dir.join("x.tar.gz");
    let stderr = pack_rootfs_reporting(&src, &out);
    assert!(
        stderr.contains("skipping socket") && stderr.contains("etc/sock"),
        "{stderr}"
    );
    assert!(
        stderr.contains("dropping the ACL xattr system.posix_acl_access"),
        "{stderr}"
    );
    let listing = Command::new("tar")
        .arg("-tzf")
        .arg(&out)
        .output()
        .expect("tar lists");
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(
        listing.contains("etc/acl\n") && !listing.contains("etc/sock"),
        "{listing}"
    );
    let report = check(&out);
    let report = String::from_utf8_lossy(&report.stdout);
    assert!(
        !report.contains("ACL") && !report.contains("sock"),
        "{report}"
    );
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn progress_on_a_terminal_and_a_summary() {
    require_root();
    let dir = scratch_dir("packer-progress");
    let src = fixture(&dir);
    let out = dir.join("x.tar.gz");
    // `script` gives packer a terminal; its output is what the terminal showed.
    let command = format!(
        "{} --format rootfs --rootfs {} --out {}",
        dist_bin("packer").display(),
        src.display(),
        out.display()
    );
    let shown = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .output()
        .expect("script runs");
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.contains(" files, ") && shown.contains("ETA"),
        "no progress line: {shown:?}"
    );
    assert!(
        shown.contains("hard links dereferenced: 3"),
        "no summary: {shown:?}"
    );
    // Not a terminal: no progress line, only the summary.
    let output = Command::new(dist_bin("packer"))
        .args(["--format", "rootfs", "--rootfs"])
        .arg(&src)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("packer runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("ETA") && stderr.contains("packer: wrote"),
        "{stderr:?}"
    );
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn help_and_version() {
    let help = packer(&["--help".as_ref()]);
    let text = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "--rootfs",
        "--out",
        "--format",
        "--name",
        "--icon",
        "--oobe-command",
        "--default-uid",
        "--default-user",
        "--level",
        "--threads",
        "--init",
        "--installer",
        "--quiet",
        "check",
        "Examples",
        "SOURCE_DATE_EPOCH",
    ] {
        assert!(text.contains(flag), "--help lacks {flag}");
    }
    let version = packer(&["--version".as_ref()]);
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("packer "));
}

// ---- Hardening (issue 10, packer items; issue 12, xz sources) ----------------------------

/// Names left in `dir` (the output folder of a failed or interrupted run).
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn pack_fails(src: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args: Vec<&OsStr> = vec![
        "--quiet".as_ref(),
        "--rootfs".as_ref(),
        src.as_ref(),
        "--out".as_ref(),
        out.as_ref(),
    ];
    args.extend(extra.iter().map(OsStr::new));
    let output = packer(&args);
    assert!(
        !output.status.success(),
        "packer {extra:?} succeeded on {}",
        src.display()
    );
    output
}

/// A minimal tree: /etc with passwd, /bin/sh an ELF.
fn small_tree(dir: &Path, name: &str) -> PathBuf {
    let root = dir.join(name);
    host_sh(&format!(
        "mkdir -p {0}/etc {0}/bin && cp /bin/dash {0}/bin/sh && printf 'root:x:0:0::/root:/bin/sh\\n' > {0}/etc/passwd",
        root.display()
    ));
    root
}

#[test]
fn out_never_replaces_a_fifo_a_symlink_or_a_directory() {
    require_root();
    let dir = scratch_dir("packer-out-kinds");
    let src = small_tree(&dir, "src");
    let out_dir = dir.join("out");
    fs::create_dir_all(out_dir.join("folder")).expect("mkdir");
    host_sh(&format!(
        "cd {} && mkfifo fifo && echo keep > target && ln -s target link",
        out_dir.display()
    ));
    for (name, what) in [
        ("fifo", "is a FIFO"),
        ("link", "is a symlink"),
        ("folder", "is a directory"),
    ] {
        for format in ["rootfs", "installer"] {
            let output = pack_fails(&src, &out_dir.join(name), &["--format", format]);
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(1), "{name}: {stderr}");
            assert!(
                stderr.contains(what) && stderr.contains("name a file"),
                "{name}: {stderr}"
            );
        }
    }
    let fifo = fs::symlink_metadata(out_dir.join("fifo")).expect("fifo");
    assert!(fifo.file_type().is_fifo(), "the FIFO was replaced");
    assert_eq!(
        fs::read_link(out_dir.join("link")).expect("still a symlink"),
        Path::new("target")
    );
    assert_eq!(
        fs::read_to_string(out_dir.join("target")).expect("target"),
        "keep\n"
    );
    assert!(out_dir.join("folder").is_dir());
    assert_eq!(names_in(&out_dir), ["fifo", "folder", "link", "target"]);
    // A regular file is replaced, as before.
    fs::write(out_dir.join("old.tar.gz"), b"old").expect("old");
    pack(&src, &out_dir.join("old.tar.gz"), &["--format", "rootfs"]);
    assert_ne!(fs::read(out_dir.join("old.tar.gz")).expect("new"), b"old");
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn a_source_nixos_wsl_folder_is_refused_in_both_formats() {
    require_root();
    let dir = scratch_dir("packer-nixos-wsl");
    let out_dir = dir.join("out");
    fs::create_dir_all(&out_dir).expect("mkdir");
    let src = small_tree(&dir, "src");
    // An empty /nixos-wsl loses nothing: packed as it is.
    fs::create_dir(src.join("nixos-wsl")).expect("mkdir");
    pack(&src, &out_dir.join("empty.tar.gz"), &["--format", "rootfs"]);
    fs::remove_file(out_dir.join("empty.tar.gz")).expect("rm");

    host_sh(&format!(
        "mkdir -p {0}/nixos-wsl/flake && echo '{{ }}' > {0}/nixos-wsl/flake/configuration.nix && tar -C {0} -cf {1}/src.tar .",
        src.display(),
        dir.display()
    ));
    let tarball = dir.join("src.tar");
    for source in [&src, &tarball] {
        for format in ["rootfs", "installer"] {
            let output = pack_fails(source, &out_dir.join("x.tar.gz"), &["--format", format]);
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(
                stderr.contains("/nixos-wsl holds files")
                    && stderr.contains("belongs to the installer")
                    && stderr.contains(source.to_str().expect("utf-8")),
                "{format} from {}: {stderr}",
                source.display()
            );
            assert!(names_in(&out_dir).is_empty(), "{:?}", names_in(&out_dir));
        }
    }
    // A symlink there is refused too.
    host_sh(&format!(
        "rm -r {0}/nixos-wsl && ln -s /home {0}/nixos-wsl",
        src.display()
    ));
    let output = pack_fails(&src, &out_dir.join("x.tar.gz"), &["--format", "rootfs"]);
    assert!(String::from_utf8_lossy(&output.stderr).contains("/nixos-wsl is a symlink"));
    let _ = fs::remove_dir_all(&dir);
}

/// Writes a plain tar with python (as `python_tar`) and cuts it just before its last entry's
/// header: a tar cut at an entry boundary, without end-of-archive blocks.
fn tar_cut_before_last_entry(path: &Path) {
    python_tar(
        path,
        "w",
        "    add(t, 'etc', kind=tarfile.DIRTYPE, mode=0o755)\n    add(t, 'bin/sh', elf, mode=0o755)\n    add(t, 'etc/passwd', b'root:x:0:0::/root:/bin/sh\\n')\n    add(t, 'etc/later', b'after the cut\\n')",
    );
    let status = Command::new("python3")
        .args([
            "-c",
            "import tarfile, sys, os\n\
             t = tarfile.open(sys.argv[1]); cut = t.getmembers()[-1].offset; t.close()\n\
             os.truncate(sys.argv[1], cut)",
        ])
        .arg(path)
        .status()
        .expect("python3 runs");
    assert!(status.success());
}

#[test]
fn a_plain_tarball_cut_at_an_entry_boundary_is_refused() {
    require_root();
    let dir = scratch_dir("packer-cut-tar");
    let out_dir = dir.join("out");
    fs::create_dir_all(&out_dir).expect("mkdir");
    let cut = dir.join("cut.tar");
    tar_cut_before_last_entry(&cut);
    // GNU tar reads the cut archive without complaint: it is the end marker that is missing.
    host_sh(&format!("tar -tf {} >/dev/null", cut.display()));
    let output = pack_fails(&cut, &out_dir.join("x.tar.gz"), &["--format", "rootfs"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(cut.to_str().expect("utf-8"))
            && stderr.contains("truncated")
            && stderr.contains("after entry /etc/passwd")
            && stderr.contains("end-of-archive"),
        "{stderr}"
    );
    assert!(names_in(&out_dir).is_empty(), "{:?}", names_in(&out_dir));
    let _ = fs::remove_dir_all(&dir);
}

/// Unmounts a bind mount made by a test, whatever the test's outcome.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn an_output_folder_reaching_into_the_source_through_a_bind_mount_is_not_packed() {
    require_root();
    let dir = scratch_dir("packer-bind-out");
    let src = small_tree(&dir, "src");
    let out_dir = dir.join("out");
    fs::create_dir_all(src.join("var/out")).expect("mkdir");
    fs::create_dir_all(&out_dir).expect("mkdir");
    host_sh(&format!(
        "mount --bind {} {}",
        src.join("var/out").display(),
        out_dir.display()
    ));
    let mounted = Mounted(out_dir.clone());
    let listing = |archive: &Path| {
        let out = Command::new("tar")
            .arg("-tzf")
            .arg(archive)
            .output()
            .expect("tar");
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let rootfs = out_dir.join("x.tar.gz");
    let output = pack(&src, &rootfs, &["--format", "rootfs"]);
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("packer's own temporary file"),
        "no warning: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let files = listing(&rootfs);
    assert!(files.contains("var/out/"), "{files}");
    assert!(!files.contains(".tmp"), "packed its own file: {files}");

    let installer = out_dir.join("i.tar.gz");
    pack(&src, &installer, &["--format", "installer"]);
    let payload = dir.join("payload.tar.gz");
    host_sh(&format!(
        "tar -xzOf {} nixos-wsl/rootfs.tar.gz > {}",
        installer.display(),
        payload.display()
    ));
    let files = listing(&payload);
    assert!(files.contains("var/out/x.tar.gz"), "{files}");
    assert!(!files.contains(".tmp"), "packed its own file: {files}");
    drop(mounted);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn malformed_source_tarballs_are_refused_naming_the_entry() {
    require_root();
    let dir = scratch_dir("packer-malformed");
    let out_dir = dir.join("out");
    fs::create_dir_all(&out_dir).expect("mkdir");
    let base = "    add(t, 'etc', kind=tarfile.DIRTYPE, mode=0o755)\n    add(t, 'bin/sh', elf, mode=0o755)\n    add(t, 'etc/passwd', b'root:x:0:0::/root:/bin/sh\\n')\n";
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "under a symlink",
            "    add(t, 'usr', kind=tarfile.SYMTYPE, link='etc')\n    add(t, 'usr/x', b'x')",
            &["/usr/x", "lies under /usr", "symlink", "Cannot extract through symlink"],
        ),
        (
            "directory replaced by a file",
            "    add(t, 'opt', kind=tarfile.DIRTYPE, mode=0o755)\n    add(t, 'opt/x', b'x')\n    add(t, 'opt', b'now a file')",
            &["/opt/x", "lies under /opt", "makes a file"],
        ),
        ("empty name", "    add(t, '', b'x')", &["empty name", "after entry /etc/passwd"]),
        (
            "empty symlink target",
            "    add(t, 'etc/l', kind=tarfile.SYMTYPE, link='')",
            &["symlink /etc/l", "empty target"],
        ),
        (
            "reserved prefix",
            "    add(t, 'etc/.nixos-wsl-held.1', b'x')",
            &["/etc/.nixos-wsl-held.1", "prefix .nixos-wsl-"],
        ),
        (
            "hard link climbing out",
            "    add(t, 'etc/h', kind=tarfile.LNKTYPE, link='../../etc/shadow')",
            &["hard link /etc/h", "../../etc/shadow", "climbs out of the root"],
        ),
        (
            "root not a directory",
            "    add(t, './', b'x')",
            &["root entry", "not a directory"],
        ),
    ];
    for (what, entries, expect) in cases {
        let tarball = dir.join("bad.tar");
        python_tar(&tarball, "w", &format!("{base}{entries}"));
        for format in ["rootfs", "installer"] {
            let output = pack_fails(&tarball, &out_dir.join("x.tar.gz"), &["--format", format]);
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(1), "{what}: {stderr}");
            for needle in expect.iter().chain(&[tarball.to_str().expect("utf-8")]) {
                assert!(
                    stderr.contains(needle),
                    "{what}: {stderr:?} lacks {needle:?}"
                );
            }
            assert!(
                names_in(&out_dir).is_empty(),
                "{what}: {:?}",
                names_in(&out_dir)
            );
        }
    }
    // A directory source with a reserved name is refused too.
    let src = small_tree(&dir, "src");
    fs::write(src.join("etc/.nixos-wsl-installer.tmp"), b"x").expect("write");
    let output = pack_fails(&src, &out_dir.join("x.tar.gz"), &["--format", "rootfs"]);
    assert!(String::from_utf8_lossy(&output.stderr).contains("prefix .nixos-wsl-"));
    assert!(names_in(&out_dir).is_empty());
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn a_terminating_signal_removes_the_temporary_files() {
    require_root();
    let dir = scratch_dir("packer-signal");
    let src = small_tree(&dir, "src");
    let out_dir = dir.join("out");
    fs::create_dir_all(&out_dir).expect("mkdir");
    // Random data at level 9 on one thread: seconds of work, time enough to be interrupted.
    host_sh(&format!(
        "head -c 200000000 /dev/urandom > {}/big",
        src.display()
    ));
    for (signal, number, format, temp) in [
        ("TERM", 15, "rootfs", ".partial."),
        ("INT", 2, "installer", ".payload."),
        ("HUP", 1, "rootfs", ".partial."),
    ] {
        // Through python, which restores the default actions before it execs packer: a
        // background job of a non-interactive shell starts with SIGINT ignored, nohup ignores
        // SIGHUP, and packer keeps a signal ignored at its start ignored.
        let mut child = Command::new("python3")
            .args([
                "-c",
                "import os, signal, sys\n\
                 for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP): signal.signal(s, signal.SIG_DFL)\n\
                 os.execv(sys.argv[1], sys.argv[1:])",
            ])
            .arg(dist_bin("packer"))
            .args([
                "--quiet",
                "--level",
                "9",
                "--threads",
                "1",
                "--format",
                format,
            ])
            .arg("--rootfs")
            .arg(&src)
            .arg("--out")
            .arg(out_dir.join("x.tar.gz"))
            .spawn()
            .expect("packer starts");
        let started = std::time::Instant::now();
        while !names_in(&out_dir).iter().any(|n| n.contains(temp)) {
            assert!(
                child.try_wait().expect("wait").is_none(),
                "{signal}: packer ended before its temporary file showed"
            );
            assert!(
                started.elapsed().as_secs() < 120,
                "{signal}: no temporary file after 120 s"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
        host_sh(&format!("kill -{signal} {}", child.id()));
        let status = child.wait().expect("wait");
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            status.signal(),
            Some(number),
            "{signal}: packer should end by the signal, got {status:?}"
        );
        assert!(
            names_in(&out_dir).is_empty(),
            "{signal}: left behind: {:?}",
            names_in(&out_dir)
        );
    }
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn packer_refuses_symlink_loops_its_check_rejects() {
    require_root();
    let dir = scratch_dir("packer-loops");
    let out_dir = dir.join("out");
    fs::create_dir_all(&out_dir).expect("mkdir");
    for (what, setup) in [
        ("/etc", "rm -r etc && ln -s etc2 etc && ln -s etc etc2"),
        (
            "/bin/sh",
            "rm bin/sh && ln -s sh2 bin/sh && ln -s /bin/sh bin/sh2",
        ),
    ] {
        let src = small_tree(&dir, "src");
        host_sh(&format!("cd {} && {setup}", src.display()));
        for format in ["rootfs", "installer"] {
            let output = pack_fails(&src, &out_dir.join("x.tar.gz"), &["--format", format]);
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(
                stderr.contains(&format!("{}: {what}", src.display()))
                    && stderr.contains("symlink loop"),
                "{what}: {stderr}"
            );
            assert!(names_in(&out_dir).is_empty());
        }
        fs::remove_dir_all(&src).expect("rm");
    }
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn check_handles_incremental_archives_labels_random_data_and_entries_under_symlinks() {
    require_root();
    let dir = scratch_dir("packer-check-hardening");
    let src = small_tree(&dir, "src");
    // Microsoft's validator (and so packer check) requires this file.
    fs::write(
        src.join("etc/wsl-distribution.conf"),
        "[oobe]\ndefaultName = x\n",
    )
    .expect("conf");
    let (s, d) = (src.display(), dir.display());
    host_sh(&format!(
        "tar -C {s} --listed-incremental={d}/snapshot -czf {d}/incremental.tar.gz . && tar -C {s} -V 'my label' -czf {d}/label.tar.gz . && head -c 100000 /dev/urandom > {d}/random.tar"
    ));
    for (name, expect) in [
        ("incremental.tar.gz", "GNU incremental archive"),
        ("label.tar.gz", "GNU volume label \"my label\""),
    ] {
        let output = check(&dir.join(name));
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{name}: {stdout}");
        assert!(
            stdout.contains(expect) && stdout.contains("0 errors"),
            "{name}: {stdout}"
        );
        // packer reads them as sources too.
        pack(
            &dir.join(name),
            &dir.join(format!("packed-{name}")),
            &["--format", "rootfs"],
        );
    }
    let output = check(&dir.join("random.tar"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("does not start with a tar header"),
        "{stderr}"
    );
    assert!(
        stderr.len() < 300 && !stderr.contains('\u{fffd}') && stderr.is_ascii(),
        "raw bytes in {stderr:?}"
    );

    let ok = "    add(t, 'etc', kind=tarfile.DIRTYPE, mode=0o755)\n    add(t, 'bin/sh', elf, mode=0o755)\n    add(t, 'etc/passwd', b'root:x:0:0::/root:/bin/sh\\n')\n";
    let under = dir.join("under.tar.gz");
    python_tar(
        &under,
        "w:gz",
        &format!("{ok}    add(t, 'etc/systemd', kind=tarfile.SYMTYPE, link='/usr/etc/systemd')\n    add(t, 'etc/systemd/system/x.service', kind=tarfile.SYMTYPE, link='/dev/null')"),
    );
    let output = check(&under);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "{stdout}");
    assert!(
        stdout.contains("/etc/systemd/system/x.service lies under /etc/systemd")
            && stdout.contains("Cannot extract through symlink"),
        "{stdout}"
    );

    let climbing = dir.join("climbing.tar.gz");
    python_tar(
        &climbing,
        "w:gz",
        &format!("{ok}    add(t, 'etc/h', kind=tarfile.LNKTYPE, link='../../etc/shadow')"),
    );
    let stdout = String::from_utf8_lossy(&check(&climbing).stdout).into_owned();
    assert!(
        stdout.contains("../../etc/shadow, which climbs out of the root"),
        "{stdout}"
    );
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn an_xz_source_packs_to_the_same_archive_as_the_plain_tar() {
    require_root();
    let dir = scratch_dir("packer-xz");
    let src = fixture(&dir);
    let (s, d) = (src.display(), dir.display());
    // Named .tar on purpose: the compression is told by content, not by name.
    host_sh(&format!(
        "tar -C {s} --xattrs --xattrs-include='*' -cf {d}/plain.tar . && xz -T1 -c {d}/plain.tar > {d}/xz-inside.tar && gzip -c {d}/plain.tar > {d}/gz-inside.tar"
    ));
    for format in ["rootfs", "installer"] {
        let plain = dir.join(format!("plain-{format}.tar.gz"));
        pack(&dir.join("plain.tar"), &plain, &["--format", format]);
        for compressed in ["xz-inside.tar", "gz-inside.tar"] {
            let packed = dir.join(format!("{compressed}-{format}.tar.gz"));
            pack(&dir.join(compressed), &packed, &["--format", format]);
            assert!(
                fs::read(&plain).expect("plain") == fs::read(&packed).expect("packed"),
                "{compressed} ({format}) packs differently from the plain tar"
            );
        }
    }
    // A damaged xz stream is refused with the source's name.
    let bytes = fs::read(dir.join("xz-inside.tar")).expect("xz");
    let damaged = dir.join("damaged.tar.xz");
    fs::write(&damaged, &bytes[..bytes.len() / 2]).expect("write");
    let out_dir = dir.join("out");
    fs::create_dir_all(&out_dir).expect("mkdir");
    let output = pack_fails(&damaged, &out_dir.join("x.tar.gz"), &["--format", "rootfs"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("xz data is damaged or truncated")
            && stderr.contains(damaged.to_str().expect("utf-8")),
        "{stderr}"
    );
    assert!(names_in(&out_dir).is_empty());
    let _ = fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------------------------------
// What packer writes into a root filesystem on real WSL and real NixOS (p-nixos): wsl.conf as
// WSL reads it, re-packing an exported distribution, added files never through a symlink of
// the source, and NixOS sources (bare system tarballs, activated trees, stock systems).
// ---------------------------------------------------------------------------------------------

/// What WSL reads from a wsl.conf, by its rules (microsoft/WSL
/// src/shared/configfile/configfile.cpp): `#` comments, `[section]` and `key = value` with
/// names of letters and digits, matched in any case; the first invalid line ends the parse;
/// the first of duplicate keys wins. Values: unquoted, up to a `#`, trimmed (the files here
/// have no quotes or escapes). An oracle of its own, not packer's parser.
fn wsl_reads(text: &str) -> Vec<(String, String)> {
    let name_ok = |n: &str| {
        n.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && n.chars().all(|c| c.is_ascii_alphanumeric())
    };
    let mut section = String::new();
    let mut read: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let line = line.trim_start_matches([' ', '\t']);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix('[') {
            match rest.split_once(']') {
                Some((name, after))
                    if name_ok(name)
                        && (after.trim().is_empty() || after.trim_start().starts_with('#')) =>
                {
                    section = name.to_owned();
                    continue;
                }
                _ => break,
            }
        }
        let Some((key, value)) = line.split_once('=') else {
            break;
        };
        let key = key.trim_end_matches([' ', '\t']);
        if !name_ok(key) || value.contains('"') || value.contains('\\') {
            break;
        }
        let name = format!("{section}.{key}").to_ascii_lowercase();
        let value = value.split('#').next().unwrap_or("").trim().to_owned();
        if !read.iter().any(|(n, _)| *n == name) {
            read.push((name, value));
        }
    }
    read
}

fn wsl_value(text: &str, name: &str) -> Option<String> {
    wsl_reads(text)
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
}

#[test]
fn the_wsl_conf_oracle_reads_as_wsl_does() {
    let read =
        wsl_reads("[User]\nDefault = alice # me\n[user]\ndefault=bob\n; x\n[boot]\nsystemd=true\n");
    assert_eq!(read, vec![("user.default".to_owned(), "alice".to_owned())]);
}

#[test]
fn wsl_conf_keeps_the_sources_settings_behind_root_as_wsls_default_user() {
    require_root();
    let dir = scratch_dir("packer-wsl-conf");
    let src = fixture(&dir);
    let source_conf = "# the source's own\n[User]\nDefault=nixos\n; a comment WSL cannot parse\n[boot]\nsystemd=true\n[interop]\nappendWindowsPath = false\n[network]\nhostname = fixture\n";
    fs::write(src.join("etc/wsl.conf"), source_conf).expect("wsl.conf");
    assert_eq!(
        wsl_value(source_conf, "boot.systemd"),
        None,
        "WSL itself never reads the source's [boot] (the ';' line stops it)"
    );
    for (format, name) in [
        ("rootfs", "rootfs.tar.gz"),
        ("installer", "installer.tar.gz"),
    ] {
        let out = dir.join(name);
        let output = pack(&src, &out, &["--format", format]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("/etc/wsl.conf line 4: commented out"),
            "the ';' line is named: {stderr}"
        );
        let report = check(&out);
        let report_text = String::from_utf8_lossy(&report.stdout);
        assert!(report.status.success(), "{format}: {report_text}");
        // Only the validator's standing advice against `[user] default` (which the
        // shell-wrapper mode needs) may speak of wsl.conf.
        assert!(
            !report_text
                .lines()
                .any(|l| l.contains("wsl.conf") && !l.contains("validator discourages")),
            "{format}: {report_text}"
        );
        let mut into = dir.join(format!("{format}-x"));
        extract("bsdtar", &out, &into);
        if format == "installer" {
            let payload = into.join("nixos-wsl/rootfs.tar.gz");
            into = dir.join("payload-x");
            extract("bsdtar", &payload, &into);
        }
        let conf = fs::read_to_string(into.join("etc/wsl.conf")).expect("wsl.conf");
        let read = wsl_reads(&conf);
        assert_eq!(
            wsl_value(&conf, "user.default").as_deref(),
            Some("root"),
            "{conf}"
        );
        assert_eq!(
            read.iter().filter(|(n, _)| n == "user.default").count(),
            1,
            "{conf}"
        );
        for (key, value) in [
            ("boot.systemd", "true"),
            ("interop.appendwindowspath", "false"),
            ("network.hostname", "fixture"),
        ] {
            assert_eq!(
                wsl_value(&conf, key).as_deref(),
                Some(value),
                "{key}: {conf}"
            );
        }
        assert!(
            conf.contains("# the source's own\n")
                && conf.contains("#~ ; a comment WSL cannot parse\n"),
            "the source's text is kept: {conf}"
        );
        let init_conf =
            fs::read_to_string(into.join("etc/nixos-wsl/init.conf")).expect("init.conf");
        assert!(init_conf.contains("user = nixos\n"), "{init_conf}");
    }
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn check_reports_what_wsl_never_reads_in_wsl_conf() {
    let dir = scratch_dir("packer-check-wsl-conf");
    let archive = dir.join("conf.tar.gz");
    let conf = "[user]\\ndefault=root\\n[boot]\\nsystemd=maybe\\ncolour=red\\n[boot]\\nSystemd=true\\n; x\\n[interop]\\nenabled=false\\n";
    python_tar(
        &archive,
        "w:gz",
        &format!(
            "    add(t, 'etc', kind=tarfile.DIRTYPE, mode=0o755)\n    add(t, 'bin/sh', elf, mode=0o755)\n    add(t, 'etc/passwd', b'root:x:0:0::/root:/{INIT}\\n')\n    add(t, 'etc/wsl.conf', b'{conf}')"
        ),
    );
    let output = check(&archive);
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "{report}");
    for needle in [
        "error: /etc/wsl.conf line 8: WSL stops reading here (WSL's comments start with '#', not ';'",
        "interop.enabled (line 10)",
        "warning: /etc/wsl.conf line 4: boot.systemd = \"maybe\" is not a boolean",
        "warning: /etc/wsl.conf line 5: unknown key boot.colour",
        "warning: /etc/wsl.conf line 7: boot.Systemd again: WSL keeps line 4's value",
    ] {
        assert!(report.contains(needle), "{needle:?} not in:\n{report}");
    }

    // init is root's shell but WSL would start someone else.
    let archive = dir.join("user.tar.gz");
    python_tar(
        &archive,
        "w:gz",
        &format!(
            "    add(t, 'etc', kind=tarfile.DIRTYPE, mode=0o755)\n    add(t, 'bin/sh', elf, mode=0o755)\n    add(t, 'etc/passwd', b'root:x:0:0::/root:/{INIT}\\n')\n    add(t, 'etc/wsl.conf', b'[User]\\nDefault = alice\\n')"
        ),
    );
    let output = check(&archive);
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "{report}");
    assert!(
        report.contains("WSL starts sessions as \"alice\", not root, so they bypass init"),
        "{report}"
    );
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn repacking_an_exported_distribution_is_idempotent() {
    require_root();
    let dir = scratch_dir("packer-repack");
    let src = fixture(&dir);
    let first = dir.join("first.tar.gz");
    pack(&src, &first, &["--format", "rootfs"]);
    // What `wsl --import` then `wsl --export` give: the tree bsdtar extracts, packed again.
    let exported = dir.join("exported");
    extract("bsdtar", &first, &exported);
    let init_conf =
        fs::read_to_string(exported.join("etc/nixos-wsl/init.conf")).expect("init.conf");
    assert!(
        init_conf.contains("shell = /bin/sh\n") && !init_conf.contains("nixos-wsl/init\n"),
        "{init_conf}"
    );
    let second = dir.join("second.tar.gz");
    let output = pack(&exported, &second, &["--format", "rootfs"]);
    assert!(
        output.stderr.is_empty(),
        "no warning: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let again = dir.join("again");
    extract("bsdtar", &second, &again);
    for file in ["etc/nixos-wsl/init.conf", "etc/wsl.conf", "etc/passwd"] {
        assert_eq!(
            fs::read(again.join(file)).expect(file),
            fs::read(exported.join(file)).expect(file),
            "{file} changed on re-packing"
        );
    }
    assert_eq!(
        describe(&exported),
        describe(&again),
        "re-packing changes the tree"
    );
    // The same tar, byte for byte. (Not the same gzip: the source's hard-linked file had
    // chunks of its own, compressed once for its three names; exported, they are three files.)
    assert!(
        gunzip(&first) == gunzip(&second),
        "re-packing gives another tar stream"
    );
    let _ = fs::remove_dir_all(&dir);
}

fn gunzip(archive: &Path) -> Vec<u8> {
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(fs::File::open(archive).expect("archive"))
        .read_to_end(&mut tar)
        .expect("gzip");
    tar
}

#[test]
fn added_files_never_go_through_a_symlink_of_the_source() {
    require_root();
    let dir = scratch_dir("packer-symlinked");
    let src = dir.join("src");
    fs::create_dir_all(&src).expect("mkdir");
    // /etc -> usr/etc, /etc/systemd -> ../lib/systemd, /usr/libexec -> lib, /sbin -> usr/bin.
    host_sh(&format!(
        "cd {}
         mkdir -p bin usr/etc usr/lib/systemd/system usr/bin
         cp /bin/dash bin/sh
         ln -s usr/etc etc && ln -s ../lib/systemd usr/etc/systemd && ln -s lib usr/libexec && ln -s usr/bin sbin
         printf 'root:x:0:0:root:/root:/bin/sh\\n' > usr/etc/passwd
         printf 'root:x:0:\\n' > usr/etc/group
         printf 'root:*:1:0:99999:7:::\\n' > usr/etc/shadow && chmod 0640 usr/etc/shadow",
        src.display()
    ));
    let out_installer = dir.join("installer.tar.gz");
    let out_rootfs = dir.join("rootfs.tar.gz");
    pack(&src, &out_installer, &[]);
    pack(&src, &out_rootfs, &["--format", "rootfs"]);
    let report = check(&out_rootfs);
    assert!(
        report.status.success(),
        "{}",
        String::from_utf8_lossy(&report.stdout)
    );
    // bsdtar refuses to extract through a symlink: this is WSL's import.
    let into = dir.join("x");
    extract("bsdtar", &out_rootfs, &into);
    assert_eq!(
        fs::read_link(into.join("etc")).expect("etc").to_str(),
        Some("usr/etc")
    );
    let passwd = fs::read_to_string(into.join("usr/etc/passwd")).expect("passwd");
    assert!(
        passwd.starts_with(&format!("root:x:0:0:root:/root:/{INIT}\n")),
        "{passwd}"
    );
    assert!(into.join("usr/lib/nixos-wsl/init").is_file());
    assert!(into.join("usr/etc/nixos-wsl/init.conf").is_file());
    assert!(into.join("usr/etc/wsl.conf").is_file());
    assert_eq!(
        fs::read_link(into.join("usr/bin/init"))
            .expect("/sbin/init")
            .to_str(),
        Some(&*format!("/{INIT}"))
    );
    assert_eq!(
        fs::read_link(into.join("usr/lib/systemd/system/tmp.mount"))
            .expect("mask")
            .to_str(),
        Some("/dev/null")
    );
    // The installer refuses a payload with an entry under a symlink; this one installs.
    let root = dir.join("root");
    extract("bsdtar", &out_installer, &root);
    let output = Command::new(dist_bin("installer"))
        .arg("--root")
        .arg(&root)
        .output()
        .expect("installer runs");
    assert!(
        output.status.success(),
        "the installer refuses the payload: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(root.join("usr/lib/nixos-wsl/init").is_file());

    // A symlink that leads nowhere on the way: refused by name, nothing left behind.
    host_sh(&format!(
        "cd {} && rm usr/libexec && ln -s /opt/libexec usr/libexec",
        src.display()
    ));
    let out_dir = dir.join("out");
    fs::create_dir_all(&out_dir).expect("mkdir");
    let output = packer(&[
        "--rootfs".as_ref(),
        src.as_os_str(),
        "--out".as_ref(),
        out_dir.join("x.tar.gz").as_os_str(),
    ]);
    assert_fails_cleanly(
        &output,
        &out_dir,
        &[
            "/usr/libexec/nixos-wsl/init",
            "leads through a symlink to /opt/libexec/nixos-wsl",
        ],
    );
    let _ = fs::remove_dir_all(&dir);
}

const NIX_SYSTEM: &str = "nix/store/0123456789abcdfghijklmnpqrsvwxyz-nixos-system-nixos-25.05";
const NIX_ETC: &str = "nix/store/1123456789abcdfghijklmnpqrsvwxyz-etc";
const NIX_SW: &str = "nix/store/2123456789abcdfghijklmnpqrsvwxyz-system-path";
const NIX_BASH: &str = "nix/store/3123456789abcdfghijklmnpqrsvwxyz-bash-5.2";

/// A small NixOS system in `root`: its store (bash, an etc with wsl.conf and init.conf, a
/// system with `activate` naming its users file), as `make-system-tarball` ships it (no /etc,
/// no profile, a `nix-path-registration`); `activated` adds what activation and
/// `nixos-install` leave: /etc links through /etc/static (systemd/system included), the
/// profile, /bin/sh, /etc/passwd. `root_shell`: what the users file declares for root;
/// `default_user`: the declared wsl.conf's `[user] default`.
fn nixos_tree(root: &Path, root_shell: &str, default_user: &str, activated: bool) {
    let users = "nix/store/4123456789abcdfghijklmnpqrsvwxyz-users-groups.json";
    host_sh(&format!(
        "mkdir -p {r} && cd {r}
         mkdir -p {NIX_BASH}/bin {NIX_SW}/bin {NIX_ETC}/etc/nixos-wsl {NIX_ETC}/etc/systemd/system {NIX_SYSTEM}
         cp /bin/dash {NIX_BASH}/bin/bash && ln -s bash {NIX_BASH}/bin/sh
         ln -s /{NIX_BASH}/bin/bash {NIX_SW}/bin/bash && ln -s /{NIX_BASH}/bin/sh {NIX_SW}/bin/sh
         printf '[user]\\ndefault={default_user}\\n\\n[boot]\\nsystemd=true\\n' > {NIX_ETC}/etc/wsl.conf
         printf 'user = nixos\\nshell = /run/current-system/sw/bin/bash\\n' > {NIX_ETC}/etc/nixos-wsl/init.conf
         printf 'NAME=NixOS\\nID=nixos\\n' > {NIX_ETC}/etc/os-release
         echo '[Unit]' > {NIX_ETC}/etc/systemd/system/multi-user.target
         printf '{{\"mutableUsers\":true,\"users\":[{{\"name\":\"root\",\"uid\":0,\"shell\":\"{root_shell}\"}},{{\"name\":\"nixos\",\"uid\":1000,\"shell\":\"/run/current-system/sw/bin/bash\"}}],\"groups\":[]}}' > {users}
         printf '#!/bin/sh\\n/nix/store/x-perl/bin/perl -w /nix/store/y-update-users-groups.pl /{users}\\n' > {NIX_SYSTEM}/activate
         chmod 0555 {NIX_SYSTEM}/activate
         ln -s /{NIX_ETC}/etc {NIX_SYSTEM}/etc && ln -s /{NIX_SW} {NIX_SYSTEM}/sw
         echo registration > nix-path-registration",
        r = root.display()
    ));
    if activated {
        host_sh(&format!(
            "cd {r} && rm nix-path-registration
             mkdir -p etc/nixos-wsl bin usr/bin nix/var/nix/profiles root
             ln -s /{NIX_ETC}/etc etc/static
             for f in wsl.conf os-release systemd; do ln -s /etc/static/$f etc/$f; done
             ln -s /etc/static/nixos-wsl/init.conf etc/nixos-wsl/init.conf
             touch etc/NIXOS
             printf 'root:x:0:0:System administrator:/root:{root_shell}\\nnixos:x:1000:100::/home/nixos:/run/current-system/sw/bin/bash\\n' > etc/passwd
             printf 'root:x:0:\\nusers:x:100:\\n' > etc/group
             printf 'root:!:1::::::\\n' > etc/shadow && chmod 0640 etc/shadow
             ln -s /{NIX_BASH}/bin/sh bin/sh
             ln -s /{NIX_SW}/bin/env usr/bin/env
             ln -s system-1-link nix/var/nix/profiles/system && ln -s /{NIX_SYSTEM} nix/var/nix/profiles/system-1-link",
            r = root.display()
        ));
    }
}

fn tar_listing(archive: &Path) -> String {
    let out = Command::new("tar")
        .arg("-tvzf")
        .arg(archive)
        .output()
        .expect("tar lists");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_bare_nixos_system_tarball_gets_etc_from_its_declared_system() {
    require_root();
    let dir = scratch_dir("packer-nixos-bare");
    let tree = dir.join("tree");
    nixos_tree(&tree, &format!("/{INIT}"), "root", false);
    let tarball = dir.join("nixos-system.tar.gz");
    host_sh(&format!(
        "tar -C {} --numeric-owner -czf {} .",
        tree.display(),
        tarball.display()
    ));
    for (format, name) in [
        ("rootfs", "rootfs.tar.gz"),
        ("installer", "installer.tar.gz"),
    ] {
        let out = dir.join(name);
        let output = pack(&tarball, &out, &["--format", format]);
        assert!(
            output.stderr.is_empty(),
            "{format}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let report = check(&out);
        let report_text = String::from_utf8_lossy(&report.stdout);
        assert!(
            report.status.success() && report_text.contains(" 0 errors,"),
            "{format}: {report_text}"
        );
        let mut into = dir.join(format!("{format}-x"));
        extract("bsdtar", &out, &into);
        if format == "installer" {
            let payload = into.join("nixos-wsl/rootfs.tar.gz");
            assert!(!tar_listing(&payload).contains(" etc/systemd"));
            into = dir.join("payload-x");
            extract("bsdtar", &payload, &into);
        } else {
            assert!(
                !tar_listing(&out).contains(" etc/systemd"),
                "no masks for NixOS"
            );
        }
        let conf = fs::read_to_string(into.join("etc/wsl.conf")).expect("wsl.conf");
        assert_eq!(
            wsl_value(&conf, "user.default").as_deref(),
            Some("root"),
            "{conf}"
        );
        assert_eq!(
            wsl_value(&conf, "boot.systemd").as_deref(),
            Some("true"),
            "{conf}"
        );
        assert_eq!(
            fs::read_to_string(into.join("etc/nixos-wsl/init.conf")).expect("init.conf"),
            "user = nixos\nshell = /run/current-system/sw/bin/bash\n",
            "the declared init.conf, where init reads it before the first activation"
        );
        assert_eq!(
            fs::read_link(into.join("bin/sh"))
                .expect("/bin/sh")
                .to_str(),
            Some(&*format!("/{NIX_SYSTEM}/sw/bin/sh"))
        );
        assert!(!into.join("etc/systemd").exists());
        let passwd = fs::read_to_string(into.join("etc/passwd")).expect("passwd");
        assert_eq!(passwd, format!("root:x:0:0:root:/root:/{INIT}\n"));
    }
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn an_activated_nixos_tree_keeps_its_store_links() {
    require_root();
    let dir = scratch_dir("packer-nixos-activated");
    let tree = dir.join("tree");
    nixos_tree(&tree, &format!("/{INIT}"), "nixos", true);
    let out = dir.join("rootfs.tar.gz");
    let output = pack(&tree, &out, &["--format", "rootfs"]);
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("WSL reads default user \"nixos\" from it"),
        "the declared wsl.conf is warned about: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let listing = tar_listing(&out);
    // Masks written through the link made an archive bsdtar refuses (issue 12, item 3).
    assert!(
        !listing.contains(" etc/systemd/system/"),
        "nothing under /etc/systemd/system: {listing}"
    );
    let into = dir.join("x");
    extract("bsdtar", &out, &into);
    assert_eq!(
        fs::read_link(into.join("etc/systemd"))
            .expect("etc/systemd")
            .to_str(),
        Some("/etc/static/systemd")
    );
    assert_eq!(
        fs::read_link(into.join("etc/nixos-wsl/init.conf"))
            .expect("the declared init.conf stays a link")
            .to_str(),
        Some("/etc/static/nixos-wsl/init.conf")
    );
    let conf = fs::read_to_string(into.join("etc/wsl.conf")).expect("wsl.conf, now a file");
    assert_eq!(
        wsl_value(&conf, "user.default").as_deref(),
        Some("root"),
        "{conf}"
    );
    assert_eq!(
        wsl_value(&conf, "boot.systemd").as_deref(),
        Some("true"),
        "{conf}"
    );
    assert_eq!(
        fs::read_to_string(into.join(format!("{NIX_ETC}/etc/wsl.conf"))).expect("store file"),
        "[user]\ndefault=nixos\n\n[boot]\nsystemd=true\n",
        "the store is never written"
    );
    let report = check(&out);
    let report_text = String::from_utf8_lossy(&report.stdout);
    // The declared wsl.conf comes back at activation and starts nixos: reported.
    assert!(!report.status.success(), "{report_text}");
    assert!(
        report_text.contains(
            "the system declares an /etc/wsl.conf that activation puts in place of packer's"
        ),
        "{report_text}"
    );
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn a_stock_nixos_system_is_refused_and_check_says_why() {
    require_root();
    let dir = scratch_dir("packer-nixos-stock");
    let out_dir = dir.join("out");
    fs::create_dir_all(&out_dir).expect("mkdir");
    for activated in [false, true] {
        let tree = dir.join(format!("tree-{activated}"));
        nixos_tree(&tree, "/run/current-system/sw/bin/bash", "root", activated);
        let output = packer(&[
            "--rootfs".as_ref(),
            tree.as_os_str(),
            "--out".as_ref(),
            out_dir.join("x.tar.gz").as_os_str(),
        ]);
        assert_fails_cleanly(
            &output,
            &out_dir,
            &[
                "users-groups.json: the NixOS system",
                "declares root's shell /run/current-system/sw/bin/bash",
                "activation",
                "nixosModules.default",
            ],
        );
        // The same system packed by other means: `packer check` reports it.
        let archive = dir.join(format!("stock-{activated}.tar.gz"));
        host_sh(&format!(
            "tar -C {} --numeric-owner -czf {} .",
            tree.display(),
            archive.display()
        ));
        let report = check(&archive);
        let report_text = String::from_utf8_lossy(&report.stdout);
        assert!(!report.status.success(), "{report_text}");
        assert!(
            report_text.contains("declares root's shell /run/current-system/sw/bin/bash"),
            "{report_text}"
        );
    }
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn a_sources_capitalised_default_user_runs_the_sessions_inside_systemd() {
    require_root();
    let dir = scratch_dir("packer-wsl-conf-boot");
    let src = dir.join("src");
    host_sh(&format!(
        "cp -a {}/. {}",
        wsl_sim::rootfs(wsl_sim::Variant::Debian).display(),
        src.display()
    ));
    fs::write(
        src.join("etc/wsl.conf"),
        "[User]\nDefault=nixos\n; WSL stops reading here\n[network]\nhostname = packed\n",
    )
    .expect("wsl.conf");
    let out = dir.join("rootfs.tar.gz");
    pack(&src, &out, &["--format", "rootfs"]);
    let distro = Distro::import(&out).unwrap_or_else(|e| panic!("import failed: {e}"));
    // WSL starts root (init), init runs the session as nixos inside systemd's namespace.
    let output = distro.run(&["--", "id -un; cat /proc/1/comm"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        ["nixos", "systemd"],
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    drop(distro);
    let _ = fs::remove_dir_all(&dir);
}
