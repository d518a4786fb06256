//! What a source tree must not hold because the installer or init keeps it for itself, and
//! what would make the archive unusable, checked before anything is written.

use crate::error::Error;
use crate::tree::{resolve, Lookup, NodeKind};

/// Names the installer uses for its own temporary files and refuses in a payload
/// (installer/src/rules.rs, `RESERVED_PREFIX`).
pub const RESERVED_PREFIX: &[u8] = b".nixos-wsl-";

/// The installer's folder (`wsl_common::paths::INSTALLER_DIR`) as an entry path.
pub const INSTALLER_FOLDER: &[u8] = b"nixos-wsl";

/// The first component of `path` the installer reserves, if any.
pub fn reserved_component(path: &[u8]) -> Option<&[u8]> {
    path.split(|&c| c == b'/')
        .find(|c| c.starts_with(RESERVED_PREFIX))
}

pub fn reserved_name_problem(name: &[u8]) -> String {
    format!(
        "the name {} uses the prefix .nixos-wsl-, which the installer keeps for its own temporary files (it refuses such names); rename it",
        String::from_utf8_lossy(name)
    )
}

/// `/nixos-wsl` in a source: the installer skips a payload's `/nixos-wsl` (its own folder,
/// installer/src/rules.rs `wsl_owned`) and init clears what the installer leaves there, so
/// anything in it would be lost in either format. Refused unless it is an empty directory.
pub fn installer_folder_problem(kind: Option<NodeKind>, has_children: bool) -> Option<String> {
    let what = match kind? {
        NodeKind::Dir if !has_children => return None,
        NodeKind::Dir => "holds files",
        NodeKind::Symlink(_) => "is a symlink",
        _ => "is not a directory",
    };
    Some(format!(
        "/nixos-wsl {what}, but that folder belongs to the installer: the installer skips it and init clears it, so its content would be lost; move it elsewhere in the tree"
    ))
}

/// `/etc` and `/bin/sh` must lead somewhere: a symlink loop there gives an archive WSL
/// cannot use and `packer check` rejects.
pub fn refuse_loops(tree: &dyn Lookup, source: &str) -> Result<(), Error> {
    for (path, shown) in [(&b"etc"[..], "/etc"), (b"bin/sh", "/bin/sh")] {
        if resolve(tree, path).is_none() {
            return Err(Error::BadEntry {
                path: format!("{source}: {shown}"),
                problem:
                    "is a symlink loop (more than 40 links deep): WSL cannot use such an archive"
                        .into(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_names_and_the_installer_folder() {
        assert_eq!(
            reserved_component(b"a/.nixos-wsl-x/b"),
            Some(&b".nixos-wsl-x"[..])
        );
        assert_eq!(reserved_component(b"a/nixos-wsl-x"), None);
        assert_eq!(installer_folder_problem(None, false), None);
        assert_eq!(installer_folder_problem(Some(NodeKind::Dir), false), None);
        assert!(installer_folder_problem(Some(NodeKind::Dir), true).is_some());
        assert!(installer_folder_problem(Some(NodeKind::File), false).is_some());
    }
}
