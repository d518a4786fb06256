//! `wsl-sim import ARCHIVE DIR`, modelled on `wsl --import`: WSL streams the archive into
//! `bsdtar -x -p --xattrs --numeric-owner` as root, which fails on hard links, and then
//! requires /etc or /bin/sh in the result.

use std::fs::{self, File};
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::Command;

use super::error::{Error, Result};

pub fn import(archive: &Path, dir: &Path) -> Result<()> {
    refuse_hard_links(archive)?;
    let created = prepare_destination(dir)?;
    let result = extract(archive, dir).and_then(|()| require_distribution(dir));
    if result.is_err() && created {
        // WSL leaves nothing behind when an import fails.
        let _ = fs::remove_dir_all(dir);
    }
    result
}

/// Reads every header; any hard-link entry fails the import before anything is written.
fn refuse_hard_links(archive: &Path) -> Result<()> {
    let mut file = File::open(archive).map_err(|e| Error::io("cannot open", archive, e))?;
    let mut magic = [0u8; 2];
    let peeked = file
        .read(&mut magic)
        .and_then(|n| file.seek(SeekFrom::Start(0)).map(|_| n))
        .map_err(|e| Error::io("cannot read", archive, e))?;
    let not_archive = |detail: String| Error::NotAnArchive {
        archive: archive.to_owned(),
        detail,
    };
    let buffered = BufReader::with_capacity(1 << 20, file);
    let stream: Box<dyn Read> = if peeked == 2 && magic == [0x1f, 0x8b] {
        Box::new(flate2::read::MultiGzDecoder::new(buffered))
    } else {
        Box::new(buffered)
    };
    let mut tar = tar::Archive::new(stream);
    let entries = tar.entries().map_err(|e| not_archive(e.to_string()))?;
    let mut count = 0usize;
    for entry in entries {
        let entry = entry.map_err(|e| not_archive(e.to_string()))?;
        count += 1;
        if entry.header().entry_type().is_hard_link() {
            let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let target = entry
                .link_name_bytes()
                .map(|t| String::from_utf8_lossy(&t).into_owned())
                .unwrap_or_default();
            return Err(Error::HardLink {
                archive: archive.to_owned(),
                name,
                target,
            });
        }
    }
    if count == 0 {
        return Err(not_archive("no entries".into()));
    }
    Ok(())
}

/// Creates DIR (WSL's import needs a new location); `true` when this call created it.
fn prepare_destination(dir: &Path) -> Result<bool> {
    match fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(Error::io(
                    "cannot import into",
                    dir,
                    std::io::Error::new(
                        std::io::ErrorKind::AlreadyExists,
                        "directory is not empty",
                    ),
                ));
            }
            Ok(false)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fs::create_dir_all(dir).map_err(|e| Error::io("cannot create", dir, e))?;
            Ok(true)
        }
        Err(e) => Err(Error::io("cannot read", dir, e)),
    }
}

fn extract(archive: &Path, dir: &Path) -> Result<()> {
    let output = Command::new("bsdtar")
        .arg("-C")
        .arg(dir)
        .args(["-x", "-p", "--xattrs", "--numeric-owner", "-f"])
        .arg(archive)
        .output()
        .map_err(|e| {
            Error::io(
                "cannot run bsdtar (apt-get install libarchive-tools) for",
                archive,
                e,
            )
        })?;
    if output.status.success() {
        Ok(())
    } else {
        Err(Error::Extract {
            archive: archive.to_owned(),
            detail: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }
}

/// WSL chroots into the new tree and needs /etc or /bin/sh there.
pub fn require_distribution(dir: &Path) -> Result<()> {
    let exists = |path: &str| resolve_in(dir, path).is_some_and(|p| p.symlink_metadata().is_ok());
    if exists("etc") || exists("bin/sh") {
        Ok(())
    } else {
        Err(Error::NotADistribution(dir.to_owned()))
    }
}

/// `path` inside `root` with symlinks resolved as a chroot would (absolute targets stay in
/// `root`, `..` stops at it); `None` on a loop or a dangling intermediate component.
pub fn resolve_in(root: &Path, path: &str) -> Option<PathBuf> {
    let mut pending: Vec<String> = path.split('/').rev().map(str::to_owned).collect();
    let mut parts: Vec<String> = Vec::new();
    let mut hops = 0;
    while let Some(part) = pending.pop() {
        match part.as_str() {
            "" | "." => continue,
            ".." => {
                parts.pop();
                continue;
            }
            _ => {}
        }
        let candidate = parts
            .iter()
            .fold(root.to_owned(), |p, c| p.join(c))
            .join(&part);
        match fs::read_link(&candidate) {
            Ok(target) => {
                hops += 1;
                if hops > 40 {
                    return None;
                }
                let target = target.to_string_lossy().into_owned();
                if target.starts_with('/') {
                    parts.clear();
                }
                pending.extend(target.split('/').rev().map(str::to_owned));
            }
            Err(_) => parts.push(part),
        }
    }
    Some(parts.iter().fold(root.to_owned(), |p, c| p.join(c)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn resolves_absolute_and_relative_links_inside_the_root() {
        let root = std::env::temp_dir().join(format!("wsl-sim-resolve-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(root.join("usr/bin")).expect("mkdir");
        fs::write(root.join("usr/bin/dash"), b"").expect("write");
        symlink("usr/bin", root.join("bin")).expect("link");
        symlink("/usr/bin/dash", root.join("usr/bin/sh")).expect("link");
        assert_eq!(resolve_in(&root, "bin/sh"), Some(root.join("usr/bin/dash")));
        assert_eq!(resolve_in(&root, "/../../etc"), Some(root.join("etc")));
        assert!(require_distribution(&root).is_ok());
        fs::remove_file(root.join("usr/bin/dash")).expect("rm");
        assert!(require_distribution(&root).is_err());
        let _ = fs::remove_dir_all(&root);
    }
}
