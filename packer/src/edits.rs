//! What packer changes in (or adds to) every root filesystem it writes, and the installer
//! distribution's own tiny tree. The source is never modified: these entries take the place of
//! the source's in the stream.

use std::path::{Path, PathBuf};

use wsl_common::init_config::InitConfig;
use wsl_common::manifest::Manifest;
use wsl_common::paths;
use wsl_common::units::HOSTILE_UNITS;

use crate::entry::{join, normalize, parent, Kind, Meta};
use crate::error::Error;
use crate::sink::{Added, Content};
use crate::tree::{resolve, Lookup, NodeKind};

/// Largest icon WSL reads (Microsoft's validator rejects bigger ones).
pub const MAX_ICON: u64 = 1 << 20;
/// Where a `.wsl` file's icon goes inside the tree.
pub const ICON_PATH: &str = "/usr/lib/wsl/icon.ico";

/// Settings for `/etc/wsl-distribution.conf` (the `.wsl` format).
#[derive(Debug, Clone, Default)]
pub struct DistributionConf {
    pub name: String,
    pub icon: Option<PathBuf>,
    pub oobe_command: Option<String>,
    pub default_uid: Option<u32>,
}

pub struct RootfsEdits<'a> {
    pub init: &'a Path,
    pub default_user: Option<&'a str>,
    pub epoch: i64,
    pub distribution: Option<&'a DistributionConf>,
}

/// Entries every packed root filesystem gets, computed from a look at the source.
pub fn rootfs(tree: &dyn Lookup, edits: &RootfsEdits<'_>) -> Result<Vec<Added>, Error> {
    let epoch = edits.epoch;
    let mut out = Vec::new();
    let add_file = |out: &mut Vec<Added>, path: &str, mode: u32, content: Vec<u8>| {
        let path = strip(path);
        out.push(Added {
            meta: Meta::owned_by_root(
                &path,
                Kind::File {
                    size: content.len() as u64,
                },
                mode,
                epoch,
            ),
            content: Content::Bytes(content),
            replace: true,
        });
    };

    // init itself.
    let init_size = std::fs::metadata(edits.init)
        .map_err(|e| Error::Input {
            path: edits.init.to_owned(),
            problem: format!("cannot use it as init: {e}"),
        })?
        .len();
    out.push(Added {
        meta: Meta::owned_by_root(
            &strip(paths::INIT),
            Kind::File { size: init_size },
            0o755,
            epoch,
        ),
        content: Content::HostFile {
            path: edits.init.to_owned(),
            precompressed: false,
        },
        replace: true,
    });

    // /etc/passwd: root's shell becomes init; its old shell goes to init's config.
    let passwd_path = b"etc/passwd";
    let (passwd, root_shell) = match tree.read_small(passwd_path)? {
        Some(text) => set_root_shell(&text, paths::INIT),
        None => (
            format!("root:x:0:0:root:/root:{}\n", paths::INIT).into_bytes(),
            None,
        ),
    };
    out.push(keep_owner(tree, passwd_path, 0o644, epoch, passwd));

    // /etc/wsl.conf: WSL must start root (init drops to the configured user).
    let wsl_conf_path = b"etc/wsl.conf";
    let old_conf = tree.read_small(wsl_conf_path)?.unwrap_or_default();
    let (wsl_conf, old_user) = set_default_user_root(&String::from_utf8_lossy(&old_conf));
    out.push(keep_owner(
        tree,
        wsl_conf_path,
        0o644,
        epoch,
        wsl_conf.into_bytes(),
    ));

    let config = InitConfig {
        user: edits
            .default_user
            .map(str::to_owned)
            .or(old_user)
            .unwrap_or_else(|| "root".into()),
        shell: root_shell.unwrap_or_else(|| "/bin/sh".into()),
        ..InitConfig::default()
    };
    add_file(
        &mut out,
        paths::INIT_CONFIG,
        0o644,
        config.render().into_bytes(),
    );

    // /sbin/init where the source has none, placed where /sbin really is in the tree (bsdtar
    // refuses to extract through a symlink such as Debian's /sbin -> usr/sbin).
    if let Some(sbin) = resolve(tree, b"sbin") {
        let init_link = join(&sbin, b"init");
        if tree.node(&init_link).is_none()
            && matches!(tree.node(&sbin).map(|n| n.kind), None | Some(NodeKind::Dir))
        {
            out.push(Added {
                meta: Meta::owned_by_root(
                    &init_link,
                    Kind::Symlink {
                        target: paths::INIT.as_bytes().to_vec(),
                    },
                    0o777,
                    epoch,
                ),
                content: Content::None,
                replace: false,
            });
        }
    }

    // Units that fight WSL, masked unless the source has its own file of that name.
    for unit in HOSTILE_UNITS {
        let path = join(b"etc/systemd/system", unit.name.as_bytes());
        out.push(Added {
            meta: Meta::owned_by_root(
                &path,
                Kind::Symlink {
                    target: b"/dev/null".to_vec(),
                },
                0o777,
                epoch,
            ),
            content: Content::None,
            replace: false,
        });
    }

    if let Some(conf) = edits.distribution {
        let icon = match &conf.icon {
            Some(icon) => {
                let data = read_icon(icon)?;
                add_file(&mut out, ICON_PATH, 0o644, data);
                Some(ICON_PATH)
            }
            None => None,
        };
        add_file(
            &mut out,
            paths::WSL_DISTRIBUTION_CONF,
            0o644,
            distribution_conf(conf, icon).into_bytes(),
        );
    }

    with_parents(&mut out, epoch);
    Ok(out)
}

/// The installer distribution: the installer as root's shell and `/bin/sh`, the payload and
/// its manifest, and just enough of `/etc` for WSL.
pub fn installer_tree(
    installer: &Path,
    payload: &Path,
    manifest: &Manifest,
    os_release: Option<Vec<u8>>,
    epoch: i64,
) -> Result<Vec<Added>, Error> {
    let size_of = |path: &Path, what: &str| {
        std::fs::metadata(path)
            .map(|m| m.len())
            .map_err(|e| Error::Input {
                path: path.to_owned(),
                problem: format!("cannot use it as {what}: {e}"),
            })
    };
    let dir = |path: &str, mode: u32| Added {
        meta: Meta::owned_by_root(&strip(path), Kind::Dir, mode, epoch),
        content: Content::None,
        replace: true,
    };
    let file = |path: &str, mode: u32, data: Vec<u8>| Added {
        meta: Meta::owned_by_root(
            &strip(path),
            Kind::File {
                size: data.len() as u64,
            },
            mode,
            epoch,
        ),
        content: Content::Bytes(data),
        replace: true,
    };
    let os_release =
        os_release.unwrap_or_else(|| b"NAME=\"NixOS-WSL installer\"\nID=nixos\n".to_vec());
    let mut out = vec![
        dir("/", 0o755),
        dir("/bin", 0o755),
        Added {
            meta: Meta::owned_by_root(
                b"bin/sh",
                Kind::Symlink {
                    target: paths::INSTALLER.as_bytes().to_vec(),
                },
                0o777,
                epoch,
            ),
            content: Content::None,
            replace: true,
        },
        dir("/etc", 0o755),
        file("/etc/group", 0o644, b"root:x:0:\n".to_vec()),
        file("/etc/os-release", 0o644, os_release),
        file(
            "/etc/passwd",
            0o644,
            format!("root:x:0:0:root:/root:{}\n", paths::INSTALLER).into_bytes(),
        ),
        file("/etc/shadow", 0o640, b"root:*:1:0:99999:7:::\n".to_vec()),
        file(
            "/etc/wsl.conf",
            0o644,
            b"[user]\ndefault=root\n\n[boot]\nsystemd=false\n".to_vec(),
        ),
        dir(paths::INSTALLER_DIR, 0o755),
        Added {
            meta: Meta::owned_by_root(
                &strip(paths::INSTALLER),
                Kind::File {
                    size: size_of(installer, "the installer")?,
                },
                0o755,
                epoch,
            ),
            content: Content::HostFile {
                path: installer.to_owned(),
                precompressed: false,
            },
            replace: true,
        },
        file(paths::MANIFEST, 0o644, manifest.render().into_bytes()),
        Added {
            meta: Meta::owned_by_root(
                &strip(paths::PAYLOAD),
                Kind::File {
                    size: size_of(payload, "the payload")?,
                },
                0o644,
                epoch,
            ),
            content: Content::HostFile {
                path: payload.to_owned(),
                precompressed: true,
            },
            replace: true,
        },
        dir("/root", 0o700),
        dir("/tmp", 0o1777),
    ];
    with_parents(&mut out, epoch);
    Ok(out)
}

/// `/etc/os-release` of the source (following its symlink inside the tree), for the installer.
pub fn os_release(tree: &dyn Lookup) -> Result<Option<Vec<u8>>, Error> {
    match resolve(tree, b"etc/os-release") {
        Some(path) => tree.read_small(&path),
        None => Ok(None),
    }
}

fn strip(path: &str) -> Vec<u8> {
    normalize(path.as_bytes()).unwrap_or_default()
}

/// A replacement keeping the owner, mode and time of the source's file when it has one.
fn keep_owner(tree: &dyn Lookup, path: &[u8], mode: u32, epoch: i64, data: Vec<u8>) -> Added {
    let mut meta = Meta::owned_by_root(
        path,
        Kind::File {
            size: data.len() as u64,
        },
        mode,
        epoch,
    );
    if let Some(node) = tree.node(path).filter(|n| n.kind == NodeKind::File) {
        (meta.mode, meta.uid, meta.gid, meta.mtime) = (node.mode, node.uid, node.gid, node.mtime);
    }
    Added {
        meta,
        content: Content::Bytes(data),
        replace: true,
    }
}

/// Parent directories of every added entry, written only where the source has none.
fn with_parents(out: &mut Vec<Added>, epoch: i64) {
    let mut parents: Vec<Vec<u8>> = Vec::new();
    for added in out.iter() {
        let mut at = parent(&added.meta.path);
        while let Some(dir) = at.filter(|d| !d.is_empty()) {
            parents.push(dir.to_vec());
            at = parent(dir);
        }
    }
    parents.sort();
    parents.dedup();
    for dir in parents {
        if !out.iter().any(|a| a.meta.path == dir) {
            out.push(Added {
                meta: Meta::owned_by_root(&dir, Kind::Dir, 0o755, epoch),
                content: Content::None,
                replace: false,
            });
        }
    }
}

/// Sets root's shell in a passwd file; returns the new text and root's previous shell.
pub fn set_root_shell(passwd: &[u8], shell: &str) -> (Vec<u8>, Option<String>) {
    let mut out = Vec::with_capacity(passwd.len() + shell.len());
    let mut old = None;
    let mut found = false;
    for line in passwd.split_inclusive(|&c| c == b'\n') {
        let body = line.strip_suffix(b"\n").unwrap_or(line);
        let fields: Vec<&[u8]> = body.split(|&c| c == b':').collect();
        if !found && fields.len() == 7 && fields[0] == b"root" {
            found = true;
            let previous = String::from_utf8_lossy(fields[6]).into_owned();
            old = Some(if previous.is_empty() {
                "/bin/sh".to_owned()
            } else {
                previous
            });
            out.extend_from_slice(&fields[..6].join(&b':'));
            out.push(b':');
            out.extend_from_slice(shell.as_bytes());
            out.push(b'\n');
        } else {
            out.extend_from_slice(line);
            if !line.ends_with(b"\n") {
                out.push(b'\n');
            }
        }
    }
    if !found {
        let mut with_root = format!("root:x:0:0:root:/root:{shell}\n").into_bytes();
        with_root.extend_from_slice(&out);
        out = with_root;
    }
    (out, old)
}

/// Sets `[user] default=root` in a wsl.conf, keeping every other line; returns the new text
/// and the previous default user.
pub fn set_default_user_root(conf: &str) -> (String, Option<String>) {
    let mut out = String::with_capacity(conf.len() + 24);
    let mut section = String::new();
    let mut old = None;
    let mut done = false;
    for line in conf.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            if section == "user" && !done {
                out.push_str("default=root\n");
                done = true;
            }
            section = trimmed
                .trim_matches(|c| c == '[' || c == ']')
                .trim()
                .to_ascii_lowercase();
        } else if section == "user" {
            if let Some((key, value)) = trimmed.split_once('=') {
                if key.trim() == "default" {
                    let value = value.trim().trim_matches('"').to_owned();
                    if !value.is_empty() {
                        old = Some(value);
                    }
                    if !done {
                        out.push_str("default=root\n");
                        done = true;
                    }
                    continue;
                }
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    if !done {
        if section != "user" {
            if !out.is_empty() && !out.ends_with("\n\n") {
                out.push('\n');
            }
            out.push_str("[user]\n");
        }
        out.push_str("default=root\n");
    }
    (out, old)
}

fn read_icon(icon: &Path) -> Result<Vec<u8>, Error> {
    let problem = |p: String| Error::Input {
        path: icon.to_owned(),
        problem: p,
    };
    let size = std::fs::metadata(icon)
        .map_err(|e| problem(format!("cannot read the icon: {e}")))?
        .len();
    if size > MAX_ICON {
        return Err(problem(format!(
            "the icon is {size} bytes; WSL reads icons up to {MAX_ICON} bytes"
        )));
    }
    std::fs::read(icon).map_err(|e| problem(format!("cannot read the icon: {e}")))
}

fn distribution_conf(conf: &DistributionConf, icon: Option<&str>) -> String {
    let mut out = String::from("# Read by WSL when this .wsl file is installed.\n[oobe]\n");
    if let Some(command) = &conf.oobe_command {
        out.push_str(&format!("command = {command}\n"));
    }
    if let Some(uid) = conf.default_uid {
        out.push_str(&format!("defaultUid = {uid}\n"));
    }
    out.push_str(&format!("defaultName = {}\n", conf.name));
    if let Some(icon) = icon {
        out.push_str(&format!("\n[shortcut]\nenabled = true\nicon = {icon}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_shell_is_replaced_and_remembered() {
        let (text, old) = set_root_shell(
            b"root:x:0:0:root:/root:/bin/bash\nnixos:x:1000:100::/home/nixos:/bin/bash\n",
            "/init",
        );
        assert_eq!(
            text,
            b"root:x:0:0:root:/root:/init\nnixos:x:1000:100::/home/nixos:/bin/bash\n"
        );
        assert_eq!(old.as_deref(), Some("/bin/bash"));
        let (text, old) = set_root_shell(b"daemon:x:1:1::/:/bin/false", "/init");
        assert_eq!(
            text,
            b"root:x:0:0:root:/root:/init\ndaemon:x:1:1::/:/bin/false\n"
        );
        assert_eq!(old, None);
    }

    #[test]
    fn wsl_conf_gets_root_as_default_user_and_keeps_the_rest() {
        let (text, old) = set_default_user_root(
            "[boot]\nsystemd=true\n\n[user]\ndefault = nixos\n[network]\nhostname=x\n",
        );
        assert_eq!(
            text,
            "[boot]\nsystemd=true\n\n[user]\ndefault=root\n[network]\nhostname=x\n"
        );
        assert_eq!(old.as_deref(), Some("nixos"));
        let (text, old) = set_default_user_root("[boot]\nsystemd=true\n");
        assert_eq!(text, "[boot]\nsystemd=true\n\n[user]\ndefault=root\n");
        assert_eq!(old, None);
        assert_eq!(set_default_user_root("").0, "[user]\ndefault=root\n");
        assert_eq!(
            set_default_user_root("[user]\n[boot]\nsystemd=true\n").0,
            "[user]\ndefault=root\n[boot]\nsystemd=true\n"
        );
    }

    #[test]
    fn distribution_conf_has_only_known_keys() {
        let conf = DistributionConf {
            name: "NixOS".into(),
            icon: None,
            oobe_command: Some("/bin/true".into()),
            default_uid: Some(1000),
        };
        let text = distribution_conf(&conf, Some(ICON_PATH));
        assert!(
            text.contains("[oobe]\ncommand = /bin/true\ndefaultUid = 1000\ndefaultName = NixOS\n")
        );
        assert!(text.contains("[shortcut]\nenabled = true\nicon = /usr/lib/wsl/icon.ico\n"));
    }

    #[test]
    fn sbin_init_goes_where_sbin_really_is_and_units_are_masked() {
        use crate::tree::{node, MemoryTree};
        let tree = MemoryTree(vec![
            (
                b"sbin".to_vec(),
                node(NodeKind::Symlink(b"usr/sbin".to_vec())),
                vec![],
            ),
            (b"usr/sbin".to_vec(), node(NodeKind::Dir), vec![]),
            (
                b"etc/systemd/system/tmp.mount".to_vec(),
                node(NodeKind::File),
                vec![],
            ),
        ]);
        let init = std::env::current_exe().expect("test binary");
        let edits = RootfsEdits {
            init: &init,
            default_user: Some("nixos"),
            epoch: 1,
            distribution: None,
        };
        let added = rootfs(&tree, &edits).expect("edits");
        let find = |p: &[u8]| added.iter().find(|a| a.meta.path == p);
        let link = find(b"usr/sbin/init").expect("/sbin/init added under usr/sbin");
        assert_eq!(
            link.meta.kind,
            Kind::Symlink {
                target: paths::INIT.as_bytes().to_vec()
            }
        );
        assert!(find(b"sbin/init").is_none());
        let mask = find(b"etc/systemd/system/tmp.mount").expect("mask");
        assert!(
            !mask.replace,
            "a unit file of the source wins over the mask"
        );
        assert!(
            find(b"usr/libexec/nixos-wsl").is_some_and(|a| a.meta.kind == Kind::Dir && !a.replace)
        );
        let Some(Content::Bytes(conf)) = find(b"etc/nixos-wsl/init.conf").map(|a| &a.content)
        else {
            panic!("init.conf")
        };
        let conf = String::from_utf8_lossy(conf);
        assert!(
            conf.contains("user = nixos\n") && conf.contains("shell = /bin/sh\n"),
            "{conf}"
        );
    }
}
