//! The mounts inside the tree the installer switches: read from `/proc/self/mountinfo`, never a
//! fixed list. WSL mounts into the distribution at every start, each after a `mkdir -p` of its
//! target (microsoft/WSL `src/linux/init/util.cpp:1787`): the inbox kernel's modules on
//! `/lib/modules/<release>` (`src/linux/init/main.cpp:3160-3189`, `config.cpp:1110-1126`), the
//! GPU shares on `/usr/lib/wsl/lib` and `/usr/lib/wsl/drivers` (`config.cpp:1040-1056`), WSLg's
//! `/mnt/wslg` and `/tmp/.X11-unix`, besides `/proc`, `/sys`, `/dev`, `/run`, `/mnt/*` and the
//! read-only bind on `/init` (`config.cpp:190-229`).

use std::path::Path;

use crate::error::Error;

const MOUNTINFO: &str = "/proc/self/mountinfo";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The mount point relative to the tree's root, without a leading `/` (`lib/modules/6.6`).
    pub point: Vec<u8>,
    /// `major:minor` and the mount's root inside its filesystem: two entries with the same
    /// pair show the same thing (a bind of it).
    pub source: (Vec<u8>, Vec<u8>),
    pub fstype: Vec<u8>,
}

/// The mounts directly on the tree at `root` (an absolute, canonical path): each mount point
/// strictly inside it, without the ones inside another such mount (they move with it), and a
/// point mounted twice once (the top mount, which is the one a path lookup sees).
pub fn mounts_inside(root: &Path) -> Result<Vec<Mount>, Error> {
    let text = std::fs::read(MOUNTINFO).map_err(|e| Error::io(MOUNTINFO, "read", e))?;
    Ok(top_level(parse(&text), root.as_os_str().as_encoded_bytes()))
}

/// `36 35 98:0 /mnt1 /mnt/parent rw,noatime master:1 - ext3 /dev/root rw`: fields 3 (device),
/// 4 (root), 5 (mount point), and the type after the ` - ` separator (proc(5)). Octal escapes
/// (`\040` for a space) are undone.
pub fn parse(text: &[u8]) -> Vec<Mount> {
    let mut out = Vec::new();
    for line in text.split(|&c| c == b'\n') {
        let fields: Vec<&[u8]> = line.split(|&c| c == b' ').collect();
        let Some(sep) = fields.iter().position(|f| *f == b"-") else {
            continue;
        };
        if fields.len() < 5 || sep < 6 || fields.len() <= sep + 1 {
            continue;
        }
        out.push(Mount {
            point: unescape(fields[4]),
            source: (fields[2].to_vec(), unescape(fields[3])),
            fstype: unescape(fields[sep + 1]),
        });
    }
    out
}

fn unescape(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        let octal = field
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (field[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') << 6 | (d[1] - b'0') << 3 | (d[2] - b'0'));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// Mount points under `root`, relative to it, outermost only; later entries are mounted on top.
fn top_level(all: Vec<Mount>, root: &[u8]) -> Vec<Mount> {
    let root = root.strip_suffix(b"/").unwrap_or(root);
    let mut inside: Vec<Mount> = Vec::new();
    for mut m in all {
        let Some(rest) = m
            .point
            .strip_prefix(root)
            .and_then(|r| r.strip_prefix(b"/"))
        else {
            continue;
        };
        if rest.is_empty() {
            continue;
        }
        m.point = rest.to_vec();
        // Mounted on the same point again: the newer one is what a lookup finds.
        inside.retain(|o| o.point != m.point);
        inside.push(m);
    }
    let below = |a: &[u8], b: &[u8]| a.len() > b.len() && a.starts_with(b) && a[b.len()] == b'/';
    let points: Vec<Vec<u8>> = inside.iter().map(|m| m.point.clone()).collect();
    inside.retain(|m| !points.iter().any(|p| below(&m.point, p)));
    inside
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outermost_mounts_inside_the_root_relative_to_it() {
        let text = b"22 1 8:1 / / rw - ext4 /dev/sdb rw
30 22 0:5 / /proc rw - proc proc rw
31 30 0:6 / /proc/sys/fs/binfmt_misc rw - binfmt_misc none rw
40 22 0:40 / /lib/modules/6.6.87.2-microsoft-standard-WSL2 rw - overlay none rw
41 22 0:41 / /usr/lib/wsl/lib rw - 9p drivers rw
42 22 0:42 /a\\040b /mnt/my\\040drive rw - 9p x rw
43 22 0:43 / /run rw - tmpfs none rw
44 22 0:44 / /run rw - tmpfs none rw
45 22 0:45 / /elsewhere rw - tmpfs none rw
";
        let got = top_level(parse(text), b"/");
        let points: Vec<String> = got
            .iter()
            .map(|m| String::from_utf8_lossy(&m.point).into_owned())
            .collect();
        assert_eq!(
            points,
            [
                "proc",
                "lib/modules/6.6.87.2-microsoft-standard-WSL2",
                "usr/lib/wsl/lib",
                "mnt/my drive",
                "run",
                "elsewhere"
            ]
        );
        assert_eq!(got[3].source.1, b"/a b");
        assert_eq!(got[4].source.0, b"0:44", "the top of two mounts on /run");
        let under: Vec<Vec<u8>> = top_level(parse(text), b"/usr/")
            .into_iter()
            .map(|m| m.point)
            .collect();
        assert_eq!(under, [b"lib/wsl/lib".to_vec()]);
    }
}
