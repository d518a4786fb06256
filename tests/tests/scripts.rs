//! The set-up scripts a newcomer runs: their errors reach the terminal.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;

use wsl_sim::{repo, require_root, scratch_dir, text};

/// A folder of links to every program in the usual places except `left_out`, to use as the
/// only entry of PATH.
fn path_without(dir: &Path, left_out: &str) {
    fs::create_dir_all(dir).expect("bin dir");
    for place in ["/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"] {
        let Ok(entries) = fs::read_dir(place) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let link = dir.join(&name);
            if name == left_out || link.symlink_metadata().is_ok() {
                continue;
            }
            symlink(entry.path(), &link).expect("link");
        }
    }
}

// make-test-rootfs once opened its lock with `exec 9>lock 2>/dev/null`, which silenced every
// later message of the script, "debootstrap is missing" included.
#[test]
fn make_test_rootfs_without_debootstrap_fails_and_says_so() {
    require_root();
    let dir = scratch_dir("scripts-no-debootstrap");
    let bin = dir.join("bin");
    path_without(&bin, "debootstrap");
    let out = Command::new(repo().join("scripts/make-test-rootfs"))
        .arg("debian")
        .env("PATH", &bin)
        .env("WSL_TOOLKIT_CACHE", dir.join("cache"))
        .output()
        .expect("run make-test-rootfs");
    let (stdout, stderr) = text(&out);
    assert!(
        !out.status.success(),
        "make-test-rootfs succeeded without debootstrap: {stdout}"
    );
    assert!(
        stderr.contains("debootstrap is missing"),
        "the message naming debootstrap did not reach stderr: {stderr:?}"
    );
}
