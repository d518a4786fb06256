//! What a killed installer leaves in `/nixos-wsl` after its switch-over, and only that: the
//! folder may also hold a user's files (`/nixos-wsl/flake/configuration.nix` is a natural
//! place for one), which are never touched.

use std::io::ErrorKind;
use std::path::Path;

use wsl_common::paths;

/// The installer's own files, in the order it removes them (installer/src/install.rs: the
/// payload and manifest, the recorded directory times, the binary), and its staging directory,
/// removed only when empty.
const FILES: &[&str] = &[
    paths::PAYLOAD,
    paths::MANIFEST,
    "/nixos-wsl/rootfs.dir-times",
    paths::INSTALLER,
];
const STAGE: &str = "/nixos-wsl/stage";

/// Finishes the installer's clean-up when the switch-over is done (no payload left) but the
/// installer binary still is: its files and then the folder if nothing else is in it.
pub fn remove() {
    let dir = Path::new(paths::INSTALLER_DIR);
    if Path::new(paths::PAYLOAD).exists() || !Path::new(paths::INSTALLER).exists() {
        return;
    }
    for file in FILES {
        if let Err(e) = std::fs::remove_file(file) {
            if e.kind() != ErrorKind::NotFound {
                crate::say!("cannot remove the installer's leftover {file}: {e}");
            }
        }
    }
    let _ = std::fs::remove_dir(STAGE);
    match std::fs::remove_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(_) => crate::say!(
            "removed the installer's leftover files; kept {} for the other files in it",
            dir.display()
        ),
    }
}
