//! `packer check` against Microsoft's own distribution validator
//! (`distributions/validate-modern.py` of microsoft/WSL; a copy is in the shared notes) on the
//! archives packer writes: every error and warning the validator gives, `packer check` gives
//! too. When the validator cannot run (no script, no Python packages), the test says so plainly
//! and still runs `packer check` on the same archives.
//!
//! `VALIDATE_MODERN` points to the script (default `../shared/tools/validate-modern.py` beside
//! the checkout), `VALIDATOR_PYTHON` to a Python with its PyPI packages (default the virtual
//! environment scripts/lib/prerequisites makes in the toolkit's cache).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use wsl_sim::{dist_bin, repo, require_root, rootfs, scratch_dir, text, Variant};

/// The validator's script and a Python that can run it, or why there is none.
fn validator() -> Result<(PathBuf, PathBuf), String> {
    let script = std::env::var_os("VALIDATE_MODERN")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("../shared/tools/validate-modern.py"));
    if !script.is_file() {
        return Err(format!(
            "{} is missing (set VALIDATE_MODERN)",
            script.display()
        ));
    }
    let cache = std::env::var_os("WSL_TOOLKIT_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/nixos-wsl-toolkit"));
    let python = std::env::var_os("VALIDATOR_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| cache.join("validator-venv/bin/python"));
    let probe = Command::new(&python)
        .args(["-c", "import magic, jsoncfg, git, github, click, requests"])
        .output();
    match probe {
        Ok(out) if out.status.success() => Ok((script, python)),
        Ok(out) => Err(format!(
            "{} lacks the validator's packages ({}); run scripts/lib/prerequisites",
            python.display(),
            text(&out).1.lines().last().unwrap_or_default()
        )),
        Err(e) => Err(format!(
            "{}: {e}; run scripts/lib/prerequisites",
            python.display()
        )),
    }
}

/// The validator's findings on `archive` (`Error`/`Warning` lines), run the way its CI runs it:
/// through a manifest naming the archive by a file URL, which also checks the compression.
fn validate(validator: &(PathBuf, PathBuf), archive: &Path, arm64: bool) -> Vec<(bool, String)> {
    let sha = Command::new("sha256sum")
        .arg(archive)
        .output()
        .expect("sha256sum");
    let sha = String::from_utf8_lossy(&sha.stdout)
        .split(' ')
        .next()
        .unwrap_or_default()
        .to_owned();
    let key = if arm64 { "Arm64Url" } else { "Amd64Url" };
    let manifest = archive.with_extension("manifest.json");
    fs::write(
        &manifest,
        format!(
            r#"{{"ModernDistributions": {{"Test": [{{"Name": "Test-1", "FriendlyName": "Test", "Default": true, "{key}": {{"Url": "file://{}", "Sha256": "{sha}"}}}}]}}}}"#,
            archive.display()
        ),
    )
    .expect("manifest");
    // The script strips "file:///" and opens the rest as a relative (Windows-style) path.
    let out = Command::new(&validator.1)
        .arg(&validator.0)
        .arg("--manifest")
        .arg(&manifest)
        .current_dir("/")
        .output()
        .expect("the validator runs");
    let (stdout, stderr) = text(&out);
    assert!(
        !stderr.contains("Traceback"),
        "the validator crashed on {}: {stderr}",
        archive.display()
    );
    stdout
        .lines()
        .filter_map(|l| {
            let (error, rest) = if let Some(r) = l.strip_prefix("Error on line ") {
                (true, r)
            } else {
                (false, l.strip_prefix("Warning on line ")?)
            };
            let message = rest.split_once(": ")?.1.to_owned();
            // A property of the download URL, not of the archive.
            (!message.starts_with("Url does not point to a .wsl file")).then_some((error, message))
        })
        .collect()
}

/// `packer check`'s findings: `(is_error, text)`.
fn packer_check(archive: &Path, arm64: bool) -> Vec<(bool, String)> {
    let mut cmd = Command::new(dist_bin("packer"));
    cmd.arg("check");
    if arm64 {
        cmd.args(["--arch", "aarch64"]);
    }
    let out = cmd.arg(archive).output().expect("packer check runs");
    let (stdout, _) = text(&out);
    stdout
        .lines()
        .filter_map(|l| {
            l.strip_prefix("error: ")
                .map(|t| (true, t.to_owned()))
                .or_else(|| l.strip_prefix("warning: ").map(|t| (false, t.to_owned())))
        })
        .collect()
}

/// What a validator message is about, as words `packer check`'s message for the same rule
/// contains (its wording differs; the subject does not).
fn subject(message: &str) -> Vec<String> {
    let quoted = || message.split('"').nth(1).unwrap_or_default().to_owned();
    let unit = |m: &str| m.rsplit('/').next().unwrap_or_default().to_owned();
    if let Some(rest) = message.strip_prefix("Found discouraged system unit: ") {
        vec![unit(rest)]
    } else if message.starts_with("Found discouraged wsl.conf key: user.default") {
        vec!["[user] default".into()]
    } else if message.starts_with("No shortcut.icon provided") {
        vec!["shortcut.icon".into()]
    } else if message.starts_with("value for shortcut.icon") {
        vec!["shortcut.icon".into(), "not under".into()]
    } else if message.starts_with("value for oobe.command") {
        vec!["oobe.command".into(), "not under".into()]
    } else if message.starts_with("value for windowsterminal.profileTemplate") {
        vec!["profileTemplate".into(), "not under".into()]
    } else if message.starts_with("Default UID is not 1000") {
        vec!["oobe.defaultUid".into(), "not 1000".into()]
    } else if message.starts_with("/etc/passwd already has an entry for default uid") {
        vec!["already has a user with oobe.defaultUid".into()]
    } else if message.starts_with("File \"") && message.ends_with("not found in tar") {
        vec![quoted(), "missing".into()]
    } else if message.starts_with("file: \"") && message.contains("unexpected mode") {
        vec![quoted(), "mode".into()]
    } else if message.starts_with("file: \"") && message.contains("unexpected uid") {
        vec![quoted(), "owned".into()]
    } else if message.starts_with("file: \"")
        && (message.contains("unexpected magic") || message.contains("too big"))
    {
        vec![quoted()]
    } else if message.starts_with("Found unexpected_keys in") {
        vec![quoted(), "key".into()]
    } else if message.starts_with("Found extended attributes") {
        vec!["xattr".into()]
    } else if message.starts_with("Unknown tar format") {
        vec!["compress".into()]
    } else {
        vec![message.to_owned()]
    }
}

/// The validator's findings `packer check` does not give, or gives only as a warning where
/// the validator calls it an error.
fn missed(validator: &[(bool, String)], ours: &[(bool, String)]) -> Vec<String> {
    validator
        .iter()
        .filter(|(error, message)| {
            let words = subject(message);
            !ours.iter().any(|(our_error, text)| {
                (*our_error || !error) && words.iter().all(|w| text.contains(w.as_str()))
            })
        })
        .map(|(error, m)| format!("{}: {m}", if *error { "error" } else { "warning" }))
        .collect()
}

fn side_by_side(validator: &[(bool, String)], ours: &[(bool, String)]) -> String {
    let show = |list: &[(bool, String)]| {
        list.iter()
            .map(|(e, t)| format!("  {} {t}", if *e { "error:  " } else { "warning:" }))
            .collect::<Vec<_>>()
            .join("\n")
    };
    format!(
        "validate-modern.py:\n{}\npacker check:\n{}",
        show(validator),
        show(ours)
    )
}

fn pack(tree: &Path, out: &Path, extra: &[&str]) {
    let result = Command::new(dist_bin("packer"))
        .args(["--quiet", "--default-user", "nixos", "--rootfs"])
        .arg(tree)
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .expect("packer runs");
    assert!(
        result.status.success(),
        "packer {extra:?}: {:?}",
        text(&result)
    );
}

/// `pack` without a default user: root, WSL's own default.
fn pack_as_root(tree: &Path, out: &Path) {
    let result = Command::new(dist_bin("packer"))
        .args(["--quiet", "--rootfs"])
        .arg(tree)
        .arg("--out")
        .arg(out)
        .output()
        .expect("packer runs");
    assert!(result.status.success(), "packer: {:?}", text(&result));
}

fn warnings(findings: &[(bool, String)]) -> Vec<&str> {
    findings
        .iter()
        .filter(|(error, _)| !error)
        .map(|(_, t)| t.as_str())
        .collect()
}

#[test]
fn packer_check_reports_everything_microsofts_validator_reports() {
    require_root();
    let dir = scratch_dir("validator");
    let debian = rootfs(Variant::Debian);
    let arm64 = rootfs(Variant::DebianArm64);
    let nixos = rootfs(Variant::Nixos);
    let nixos_native = rootfs(Variant::NixosNative);
    let archives: Vec<(PathBuf, bool)> = vec![
        (dir.join("debian.wsl"), false),
        (dir.join("debian-rootfs.tar.gz"), false),
        (dir.join("debian-installer.tar.gz"), false),
        (dir.join("arm64.wsl"), true),
        (dir.join("debian-root.wsl"), false),
        (dir.join("debian-icon.wsl"), false),
        // The faithful NixOS system of the module, in each mode and format the tests boot.
        (dir.join("nixos.wsl"), false),
        (dir.join("nixos-rootfs.tar.gz"), false),
        (dir.join("nixos-installer.tar.gz"), false),
        (dir.join("nixos-native.wsl"), false),
        (dir.join("nixos-native-rootfs.tar.gz"), false),
    ];
    pack(&debian, &archives[0].0, &[]);
    pack(&debian, &archives[1].0, &["--format", "rootfs"]);
    pack(&debian, &archives[2].0, &["--format", "installer"]);
    pack(&arm64, &archives[3].0, &[]);
    pack_as_root(&debian, &archives[4].0);
    // An icon of one's own (--icon), here the default one taken out of the first archive.
    let icon = dir.join("mine.ico");
    let out = Command::new("tar")
        .arg("-xzf")
        .arg(&archives[0].0)
        .arg("-O")
        .arg("usr/share/wsl/nixos-wsl.ico")
        .output()
        .expect("tar runs");
    assert!(
        out.status.success() && !out.stdout.is_empty(),
        "{:?}",
        text(&out)
    );
    fs::write(&icon, &out.stdout).expect("icon");
    pack(
        &debian,
        &archives[5].0,
        &["--icon", &icon.to_string_lossy()],
    );
    pack(&nixos, &archives[6].0, &[]);
    pack(&nixos, &archives[7].0, &["--format", "rootfs"]);
    pack(&nixos, &archives[8].0, &["--format", "installer"]);
    pack(&nixos_native, &archives[9].0, &[]);
    pack(&nixos_native, &archives[10].0, &["--format", "rootfs"]);

    let validator = validator();
    if let Err(why) = &validator {
        eprintln!(
            "\n*** Microsoft's validator could NOT run: {why}.\n*** Only packer check runs on the archives.\n"
        );
    }
    let mut differences = Vec::new();
    for (archive, arm) in &archives {
        let ours = packer_check(archive, *arm);
        assert!(
            ours.iter().all(|(error, _)| !error),
            "packer check finds errors in an archive packer wrote ({}):\n{ours:?}",
            archive.display()
        );
        let theirs = match &validator {
            Ok(validator) => Some(validate(validator, archive, *arm)),
            Err(_) => None,
        };
        let name = archive.file_name().and_then(|n| n.to_str()).unwrap_or("");
        // Every .wsl, with the default icon: every discouraged unit masked or replaced, the
        // icon under /usr/share/wsl, and the tree's user held back from /etc/passwd for the
        // first boot with oobe.defaultUid naming it and no [user] default (or root, WSL's
        // default, named nowhere): no warning from either tool.
        let both = || side_by_side(theirs.as_deref().unwrap_or_default(), &ours);
        if name.ends_with(".wsl") && name.starts_with("debian") || name == "arm64.wsl" {
            assert!(
                warnings(&ours).is_empty()
                    && theirs.as_ref().is_none_or(|t| warnings(t).is_empty()),
                "{name} has warnings:\n{}",
                both()
            );
        }
        let Some(theirs) = theirs else { continue };
        let missing = missed(&theirs, &ours);
        if !missing.is_empty() {
            differences.push(format!(
                "{}: packer check misses\n  {}\n{}",
                archive.display(),
                missing.join("\n  "),
                side_by_side(&theirs, &ours)
            ));
        }
        assert!(
            theirs.iter().all(|(error, _)| !error),
            "Microsoft's validator finds errors in an archive packer wrote ({}):\n{}",
            archive.display(),
            side_by_side(&theirs, &ours)
        );
    }
    assert!(differences.is_empty(), "{}", differences.join("\n\n"));
}

#[test]
fn the_comparison_notices_a_finding_packer_check_lacks() {
    // The matching must be able to fail: a validator finding with no packer counterpart, and
    // one packer gives only as a warning where the validator errs.
    let theirs = vec![
        (false, "Found discouraged system unit: /usr/lib/systemd/system/sysinit.target.wants/systemd-tmpfiles-setup.service".to_owned()),
        (true, "File \"/bin/sh\" not found in tar".to_owned()),
    ];
    let ours = vec![(
        false,
        "/bin/sh is missing (WSL and its OOBE need it)".to_owned(),
    )];
    let missing = missed(&theirs, &ours);
    assert_eq!(missing.len(), 2, "{missing:?}");
    let ours = vec![
        (
            false,
            "systemd-tmpfiles-setup.service is enabled (...)".to_owned(),
        ),
        (
            true,
            "/bin/sh is missing (WSL and its OOBE need it)".to_owned(),
        ),
    ];
    assert!(missed(&theirs, &ours).is_empty());
}
