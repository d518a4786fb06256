//! What packer changes in (or adds to) every root filesystem it writes, and the installer
//! distribution's own tiny tree. The source is never modified: these entries take the place of
//! the source's in the stream.

use std::path::{Path, PathBuf};

use wsl_common::init_config::InitConfig;
use wsl_common::manifest::Manifest;
use wsl_common::paths;
use wsl_common::units::{masked_outside_nixos, TMPFILES_REPLACEMENT};

use crate::entry::{display, join, normalize, parent, Kind, Meta};
use crate::error::Error;
use crate::icon;
use crate::nixos;
use crate::placement::{place, place_new, read_through_links};
use crate::sink::{Added, Content};
use crate::tmpfiles_unit;
use crate::tree::{resolve, Lookup, NodeKind};
use crate::wsl_conf;

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

/// How systemd runs on WSL (`--systemd`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Systemd {
    /// WSL boots systemd itself (`[boot] systemd=true`, `init.cpp:2355-2438`): `/sbin/init` is
    /// init, which prepares the system and execs systemd; WSL starts the user directly.
    Native,
    /// WSL starts root, whose shell, init, starts systemd in namespaces of its own and drops
    /// every session to the user: for WSL without systemd support.
    Wrapper,
}

pub struct RootfsEdits<'a> {
    pub init: &'a Path,
    pub default_user: Option<&'a str>,
    /// `None`: what a NixOS system declares in its wsl.conf, else native for a `.wsl` (every
    /// WSL that reads one boots systemd natively, 2.4.4 and later) and wrapper otherwise.
    pub systemd: Option<Systemd>,
    pub epoch: i64,
    pub distribution: Option<&'a DistributionConf>,
    /// The distribution's name for wsl-distribution.conf's `oobe.defaultName` (`--name`).
    pub name: &'a str,
}

/// Entries every packed root filesystem gets, computed from a look at the source; the
/// warnings go to stderr.
pub fn rootfs(tree: &dyn Lookup, edits: &RootfsEdits<'_>) -> Result<Vec<Added>, Error> {
    let plan = plan(tree, edits)?;
    for warning in &plan.warnings {
        eprintln!("packer: warning: {warning}");
    }
    Ok(plan.added)
}

/// What packer adds to a root filesystem, and what it has to say about it.
pub struct Plan {
    pub added: Vec<Added>,
    pub warnings: Vec<String>,
}

/// Every added path is placed inside the tree ([`place`]): never through a symlink of the
/// source, never under a NixOS `/etc/systemd/system`.
pub fn plan(tree: &dyn Lookup, edits: &RootfsEdits<'_>) -> Result<Plan, Error> {
    let epoch = edits.epoch;
    let mut out = Vec::new();
    let mut warnings = Vec::new();

    // A NixOS system keeps init only if it declares it (its activation rewrites /etc/passwd).
    let nixos = nixos::detect(tree)?;
    if let Some(nixos) = &nixos {
        warnings.extend(nixos.require_init_declared()?);
        warnings.extend(nixos.declared_wsl_conf_problem(tree));
        warnings.extend(nixos::units_blocked(tree));
    }
    let etc_file = |rel: &[u8]| match &nixos {
        Some(nixos) => nixos.etc_file(tree, rel),
        None => read_through_links(tree, &join(b"etc", rel)),
    };
    let source_conf = etc_file(b"wsl.conf")?.unwrap_or_default().0;
    // A NixOS system declares its wsl.conf (the module's `wsl.systemd`), which its first
    // activation puts back in place of packer's: without --systemd packer keeps what it
    // declares behind `[user] default=root`, as the module writes it for either mode.
    let follows_declaration = nixos.is_some() && edits.systemd.is_none();
    let native = match edits.systemd {
        Some(mode) => mode == Systemd::Native,
        None if follows_declaration => nixos.as_ref().is_some_and(|n| n.declares_mode(tree, true)),
        None => edits.distribution.is_some(),
    };
    // Without --systemd packer keeps the declared mode; one asked for must be the declared one.
    if let (Some(nixos), Some(_)) = (&nixos, edits.systemd) {
        warnings.extend(nixos.declared_mode_problem(tree, native));
    }
    // A declared wsl.conf of the mode asked for is kept behind packer's `[user] default=root`
    // (as the module writes it for either mode): its first activation puts it back anyway, and
    // packer's own native settings (the user as WSL's default, no init) would hold for the
    // first start only, whose commands would then miss /etc/set-environment.
    let declared = follows_declaration
        || (edits.distribution.is_none()
            && nixos
                .as_ref()
                .is_some_and(|n| n.declares_mode(tree, native)));

    // init itself.
    let init_size = std::fs::metadata(edits.init)
        .map_err(|e| Error::Input {
            path: edits.init.to_owned(),
            problem: format!("cannot use it as init: {e}"),
        })?
        .len();
    out.push(Added {
        meta: Meta::owned_by_root(
            &place(tree, &strip(paths::INIT))?,
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

    // /etc/passwd: root's shell becomes init; its old shell goes to init's config, unless it
    // is init already (a re-packed distribution, or a NixOS system that declares it).
    let passwd_path = place(tree, b"etc/passwd")?;
    let (passwd, old_shell) = match read_through_links(tree, b"etc/passwd")? {
        Some((text, _)) => set_root_shell(&text, paths::INIT),
        None => (
            format!("root:x:0:0:root:/root:{}\n", paths::INIT).into_bytes(),
            None,
        ),
    };
    let shell_was_init = old_shell
        .as_deref()
        .is_some_and(|s| nixos::is_init(tree, s));
    let root_shell = old_shell.filter(|_| !shell_was_init);

    // The source's own [user] default, which the wsl.conf below comments out.
    let source_user = wsl_conf::for_toolkit(&source_conf).default_user;

    // init.conf: an existing one is kept (re-packing what `wsl --export` gives is idempotent);
    // only a user asked for explicitly, or named in the source's wsl.conf, changes its user.
    let wanted_user = edits.default_user.map(str::to_owned).or(source_user);
    let init_conf_path = place(tree, &strip(paths::INIT_CONFIG))?;
    let configured_user = match etc_file(b"nixos-wsl/init.conf")? {
        Some((text, from)) => {
            let text = String::from_utf8_lossy(&text).into_owned();
            let (config, _) = InitConfig::parse(&text);
            let mut edited = text.clone();
            let mut user_now = config.user.clone();
            if let Some(user) = wanted_user
                .filter(|u| *u != config.user && (u != "root" || edits.default_user.is_some()))
            {
                if from.starts_with(b"nix/store/") {
                    warnings.push(format!(
                        "{}: the NixOS system declares init.conf with user = {}; activation puts it back after packer's change to {user}: set the user in the system's configuration (wsl.defaultUser)",
                        display(&from),
                        config.user
                    ));
                }
                edited = set_config_line(&edited, "user", &user);
                user_now = user;
            }
            if nixos::is_init(tree, &config.shell) {
                warnings.push(format!(
                    "{}: shell = {} is init itself; packer writes shell = /bin/sh instead",
                    paths::INIT_CONFIG,
                    config.shell
                ));
                edited = set_config_line(&edited, "shell", "/bin/sh");
            }
            // A declared file only in the system (a bare tarball) is copied to where init
            // reads it before the first activation links it.
            if edited != text || tree.node(&init_conf_path).is_none() {
                add_file(&mut out, &init_conf_path, 0o644, epoch, edited.into_bytes());
            }
            user_now
        }
        None => {
            if shell_was_init {
                warnings.push(format!(
                    "root's shell is init already and there is no {}: root's real shell is taken to be /bin/sh",
                    paths::INIT_CONFIG
                ));
            }
            let config = InitConfig {
                user: wanted_user.unwrap_or_else(|| "root".into()),
                shell: root_shell.unwrap_or_else(|| "/bin/sh".into()),
                ..InitConfig::default()
            };
            add_file(
                &mut out,
                &init_conf_path,
                0o644,
                epoch,
                config.render().into_bytes(),
            );
            config.user
        }
    };

    // /etc/wsl.conf: the toolkit's settings first, where WSL reads them; the rest kept.
    // A tree packed as a `.wsl` below and not booted since holds its user back already.
    let held_already = read_through_links(tree, &strip(paths::FIRST_BOOT_ACCOUNT))?
        .map(|(line, _)| line)
        .filter(|line| passwd_ids(line, &configured_user).is_some());
    let owner = (configured_user != "root")
        .then(|| {
            passwd_ids(&passwd, &configured_user)
                .or_else(|| passwd_ids(held_already.as_deref()?, &configured_user))
        })
        .flatten();
    // NixOS makes its declared users at activation; any other tree must have the user.
    if nixos.is_none() && configured_user != "root" && owner.is_none() {
        warnings.push(format!(
            "the user {configured_user} is not in the tree's /etc/passwd: neither WSL nor init can start them (add the user to the tree, or pick one with --default-user)"
        ));
    }
    // A native `.wsl` of a tree that ships its user (not NixOS: its activation makes the
    // declared users) follows Microsoft's model, which its validator checks: the user is not
    // in the archive's /etc/passwd ("already has an entry for default uid") and wsl.conf has
    // no `[user] default` ("discouraged wsl.conf key"). The user's line is held back for init
    // to add at the first boot (init/src/first_boot_account.rs), before any session, so it
    // exists after an import too; oobe.defaultUid names it, which WSL makes the default user
    // once the OOBE's command exits 0 (init.cpp:625-676, LxssInstance.cpp:565-578), and that
    // command marks it for init. Until then (an import never runs the OOBE, WslClient.cpp:314)
    // WSL starts root, whose shell, init, drops the session to the user. The drives are the
    // user's from the first start on through `[automount] options` (WSL mounts them as the
    // registry's default uid otherwise, root before the OOBE: config.cpp:690-701).
    // An --oobe-command of the packer's user creates users itself: the tree is kept then.
    let first_boot_account = edits
        .distribution
        .filter(|d| {
            native
                && !declared
                && nixos.is_none()
                && configured_user != "root"
                && d.oobe_command.is_none()
        })
        .and_then(|_| {
            split_account(&passwd, &configured_user)
                .or_else(|| Some((passwd.clone(), held_already.clone()?)))
        });
    let passwd = match &first_boot_account {
        Some((rest, line)) => {
            add_file(
                &mut out,
                &place(tree, &strip(paths::FIRST_BOOT_ACCOUNT))?,
                0o644,
                epoch,
                line.clone(),
            );
            add_file(
                &mut out,
                &place(tree, &strip(paths::OOBE_COMMAND))?,
                0o755,
                epoch,
                oobe_command_script().into_bytes(),
            );
            rest.clone()
        }
        None => passwd,
    };
    out.push(keep_owner(tree, &passwd_path, 0o644, epoch, passwd.clone()));

    // oobe.defaultUid where asked for (--default-uid), or for the user held back above: it is
    // for an OOBE that creates the user (init.cpp:625-676 applies it to the OOBE's session and
    // WSL stores it as the default uid, LxssInstance.cpp:565-578), while a tree that keeps its
    // user in /etc/passwd names it by [user] default, the one setting WSL applies on every path.
    let default_uid = edits.distribution.and_then(|d| d.default_uid).or(owner
        .filter(|_| first_boot_account.is_some())
        .map(|(uid, _)| uid));
    let declared_user = nixos
        .as_ref()
        .filter(|_| declared)
        .and_then(|n| n.declared_default_user(tree));
    let settings = if native && !declared && first_boot_account.is_some() {
        wsl_conf::Settings {
            native: true,
            default_user: None,
            automount_options: owner
                .map(|(uid, gid)| wsl_conf::automount_options(&source_conf, uid, gid)),
        }
    } else if native && !declared {
        // WSL starts `[user] default` for every session without `-u`, after `wsl --import` and
        // `wsl --install` alike, before and after the OOBE (init.cpp:1004-1032; the OOBE's own
        // session too when no oobe.defaultUid overrides it, :676), and mounts the drives and
        // serves \\wsl.localhost as that user from the instance's start (config.cpp:690-701,
        // :908; WslCoreInstance.cpp:414). A .wsl whose user is root names no one (root is
        // WSL's default).
        wsl_conf::Settings {
            native: true,
            default_user: (!(edits.distribution.is_some() && configured_user == "root"))
                .then(|| configured_user.clone()),
            automount_options: None,
        }
    } else if let Some(user) = declared_user {
        // The system declares native mode with the user as WSL's default and init as the
        // user's shell (the toolkit's module): the same from the first start on, since WSL
        // reads wsl.conf before the activation that would put the declared one back.
        wsl_conf::Settings {
            native: true,
            default_user: Some(user),
            automount_options: None,
        }
    } else {
        wsl_conf::Settings {
            automount_options: owner
                .filter(|_| !declared)
                .map(|(uid, gid)| wsl_conf::automount_options(&source_conf, uid, gid)),
            ..wsl_conf::Settings::wrapper()
        }
    };
    let wsl_conf_path = place(tree, b"etc/wsl.conf")?;
    let rewrite = wsl_conf::for_toolkit_with(&source_conf, &settings);
    warnings.extend(rewrite.notes.iter().map(|n| format!("/etc/wsl.conf {n}")));
    out.push(keep_owner(tree, &wsl_conf_path, 0o644, epoch, rewrite.text));

    // /sbin/init where the source has none, placed where /sbin really is in the tree (bsdtar
    // refuses to extract through a symlink such as Debian's /sbin -> usr/sbin).
    if native && nixos.is_none() {
        warnings.extend(native_boot_missing(tree));
    }

    // In native mode WSL execs /sbin/init (init.cpp:2355-2438), which must be init, so that
    // activation, the masks and the services' environment come before systemd.
    if native {
        if !nixos::is_init(tree, "/sbin/init") {
            let at = place(tree, b"sbin/init")?;
            out.push(Added {
                replace: true,
                ..link(&at, paths::INIT.as_bytes(), epoch)
            });
        }
    } else if let Some(init_link) = place_new(tree, b"sbin/init")? {
        out.push(link(&init_link, paths::INIT.as_bytes(), epoch));
    }

    // A bare NixOS system tarball has no /bin/sh until activation links it (nixpkgs
    // nixos/modules/config/shells-environment.nix, `binsh`); WSL's OOBE, `wsl -- CMD` and the
    // systemd boot wait need one before that: the system's own sh, which activation keeps.
    if let Some(system) = nixos.as_ref().and_then(|n| n.system()) {
        let sh = join(&system.path, b"sw/bin/sh");
        let is_file = resolve(tree, &sh)
            .and_then(|p| tree.node(&p))
            .is_some_and(|n| n.kind == NodeKind::File);
        if is_file
            && resolve(tree, b"bin/sh")
                .and_then(|p| tree.node(&p))
                .is_none()
        {
            if let Some(at) = place_new(tree, b"bin/sh")? {
                out.push(link(&at, &[b"/", &sh[..]].concat(), epoch));
            }
        }
    }

    // Units that fight WSL, masked unless the source has its own file of that name. Not on
    // NixOS: its units come from the link /etc/systemd/system -> /etc/static/systemd/system
    // (nixpkgs nixos/modules/system/boot/systemd.nix), which a real directory there would
    // block; init masks them on systemd's command line instead (systemd.mask=, NIXOS.md).
    // Trees that are not NixOS also get the units of NOT_NIXOS_UNITS masked, and
    // systemd-tmpfiles-setup's replacement where the tree has that unit and packer masks it.
    if nixos.is_none() {
        for unit in masked_outside_nixos() {
            let path = join(b"etc/systemd/system", unit.name.as_bytes());
            if let Some(at) = place_new(tree, &path)? {
                out.push(link(&at, b"/dev/null", epoch));
                if unit.name == "systemd-tmpfiles-setup.service" {
                    out.extend(tmpfiles_replacement(tree, epoch)?);
                }
            }
        }
    }

    // The tree's /dev/null is left out: WSL mounts its devtmpfs over /dev at every start
    // (src/linux/init/config.cpp:190-229), so no session ever sees it, and Microsoft's validator,
    // finding a `dev/null` member, takes the mask links (-> /dev/null) for links to that
    // member's name and not for masks (validate-modern.py, is_dev_null compares '/dev/null' and
    // './dev/null' only). The folder and the rest of /dev stay.
    if tree
        .node(b"dev/null")
        .is_some_and(|n| n.kind == NodeKind::Other)
    {
        out.push(Added {
            meta: Meta::owned_by_root(b"dev/null", Kind::Char { major: 1, minor: 3 }, 0o666, epoch),
            content: Content::Omitted,
            replace: true,
        });
    }

    // Every format gets /etc/wsl-distribution.conf and an icon: Microsoft's validator requires
    // the file, and WSL reads it at `wsl --import` too (a shortcut, a terminal profile).
    let given = edits.distribution.and_then(|conf| conf.icon.as_ref());
    let (icon_path, icon_data) = match given {
        Some(icon) => (ICON_PATH, read_icon(icon)?),
        None => (icon::DEFAULT_ICON_PATH, icon::default_icon()),
    };
    add_file(
        &mut out,
        &place(tree, &strip(icon_path))?,
        0o644,
        epoch,
        icon_data,
    );
    let conf = match edits.distribution {
        Some(conf) => DistributionConf {
            default_uid,
            oobe_command: conf.oobe_command.clone().or(first_boot_account
                .as_ref()
                .map(|_| paths::OOBE_COMMAND.to_owned())),
            ..conf.clone()
        },
        None => DistributionConf {
            name: edits.name.to_owned(),
            ..DistributionConf::default()
        },
    };
    add_file(
        &mut out,
        &place(tree, &strip(paths::WSL_DISTRIBUTION_CONF))?,
        0o644,
        epoch,
        distribution_conf(&conf, Some(icon_path)).into_bytes(),
    );

    with_parents(&mut out, epoch);
    Ok(Plan {
        added: out,
        warnings,
    })
}

/// nixos-wsl-tmpfiles-setup.service and its `sysinit.target.wants` link, where the tree has
/// systemd's own unit (a tree without systemd-tmpfiles gets nothing) and no file of that name.
fn tmpfiles_replacement(tree: &dyn Lookup, epoch: i64) -> Result<Vec<Added>, Error> {
    let has_stock = tmpfiles_unit::STOCK_UNIT_PATHS.iter().any(|path| {
        resolve(tree, path)
            .and_then(|p| tree.node(&p))
            .is_some_and(|n| n.kind == NodeKind::File)
    });
    let mut out = Vec::new();
    if !has_stock {
        return Ok(out);
    }
    if let Some(at) = place_new(tree, &tmpfiles_unit::unit_path())? {
        add_file(
            &mut out,
            &at,
            0o644,
            epoch,
            tmpfiles_unit::text().into_bytes(),
        );
        let target = format!("/etc/systemd/system/{TMPFILES_REPLACEMENT}");
        if let Some(wants) = place_new(tree, &tmpfiles_unit::wants_path())? {
            out.push(link(&wants, target.as_bytes(), epoch));
        }
    }
    Ok(out)
}

fn add_file(out: &mut Vec<Added>, path: &[u8], mode: u32, epoch: i64, content: Vec<u8>) {
    out.push(Added {
        meta: Meta::owned_by_root(
            path,
            Kind::File {
                size: content.len() as u64,
            },
            mode,
            epoch,
        ),
        content: Content::Bytes(content),
        replace: true,
    });
}

/// A symlink written only where the source has nothing of that name.
fn link(path: &[u8], target: &[u8], epoch: i64) -> Added {
    Added {
        meta: Meta::owned_by_root(
            path,
            Kind::Symlink {
                target: target.to_vec(),
            },
            0o777,
            epoch,
        ),
        content: Content::None,
        replace: false,
    }
}

/// Sets `key = value` in init.conf's text: the first line of that key is replaced, or the
/// line is added at the end; every other line (comments included) is kept.
fn set_config_line(text: &str, key: &str, value: &str) -> String {
    let mut out = String::with_capacity(text.len() + key.len() + value.len() + 4);
    let mut done = false;
    for line in text.lines() {
        let is_key = line
            .split_once('=')
            .is_some_and(|(k, _)| k.trim() == key && !line.trim_start().starts_with('#'));
        if is_key && !done {
            out.push_str(&format!("{key} = {value}\n"));
            done = true;
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    if !done {
        out.push_str(&format!("{key} = {value}\n"));
    }
    out
}

/// The installer distribution: the installer as root's shell and `/bin/sh`, the payload and
/// its manifest, and just enough of `/etc` for WSL.
/// The installer distribution's own wsl.conf. No [boot] key at all: even `systemd=false` makes
/// Microsoft's validator demand /sbin/init (validate-modern.py); WSL's default is false.
/// `mountFsTab=false`: WSL runs `/bin/mount -a` at every start (src/linux/init/config.cpp:705-714),
/// which this tree has neither a mount nor an fstab for, and would print "Processing
/// /etc/fstab with mount -a failed" at the first start; the payload's own wsl.conf holds from
/// the next start on.
const INSTALLER_WSL_CONF: &[u8] = b"[user]\ndefault=root\n[automount]\nmountFsTab=false\n";

pub fn installer_tree(
    installer: &Path,
    payload: &Path,
    manifest: &Manifest,
    os_release: Option<Vec<u8>>,
    name: &str,
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
        file("/etc/wsl.conf", 0o644, INSTALLER_WSL_CONF.to_vec()),
        // What Microsoft's validator requires of every distribution, as the payload has it.
        file(
            paths::WSL_DISTRIBUTION_CONF,
            0o644,
            format!(
                "[oobe]\ndefaultName = {name}\n\n[shortcut]\nenabled = true\nicon = {}\n",
                icon::DEFAULT_ICON_PATH
            )
            .into_bytes(),
        ),
        file(icon::DEFAULT_ICON_PATH, 0o644, icon::default_icon()),
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
    let found = match nixos::detect(tree)? {
        Some(nixos) => nixos.etc_file(tree, b"os-release")?,
        None => read_through_links(tree, b"etc/os-release")?,
    };
    Ok(found.map(|(text, _)| text))
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

/// The folders both dash and bash search without a PATH (their built-in defaults), which is
/// how WSL's native boot runs `systemctl` and `grep`: `popen` through `/bin/sh` with no PATH.
const SH_DEFAULT_PATH: &[&str] = &[
    "usr/local/sbin",
    "usr/local/bin",
    "usr/sbin",
    "usr/bin",
    "sbin",
    "bin",
];

/// What WSL's native boot runs from the tree and the tree lacks, one sentence each: the boot
/// wait `systemctl is-system-running | grep` (init.cpp:3574-3601), the user session's
/// `/bin/login -f USER` and `systemctl is-active user@UID` (config.cpp:2719-2805), and the
/// generator's units running `/bin/true` and `/bin/mount` (init.cpp:263-410).
pub fn native_boot_missing(tree: &dyn Lookup) -> Vec<String> {
    let is_file = |path: &[u8]| {
        resolve(tree, path)
            .and_then(|p| tree.node(&p))
            .is_some_and(|n| n.kind == NodeKind::File)
    };
    let mut missing = Vec::new();
    for (path, why) in [
        ("bin/login", "WSL starts each user's systemd session with /bin/login -f USER; without it every first session of a user waits boot.initTimeout and prints \"Failed to start the systemd user session\""),
        ("bin/mount", "WSL's generated wsl-mnt-guard.service runs /bin/mount"),
        ("bin/true", "WSL's generated wsl-mnt-guard.service runs /bin/true"),
    ] {
        if !is_file(path.as_bytes()) {
            missing.push(format!("native systemd: /{path} is missing: {why}"));
        }
    }
    for program in ["systemctl", "grep"] {
        let found = SH_DEFAULT_PATH
            .iter()
            .any(|dir| is_file(format!("{dir}/{program}").as_bytes()));
        if !found {
            missing.push(format!(
                "native systemd: no {program} in /bin/sh's default PATH (/{}): WSL's boot wait and user-session wait run `systemctl ... | grep` without a PATH and time out",
                SH_DEFAULT_PATH.join(":/")
            ));
        }
    }
    missing
}

/// The uid and gid of `user` in a passwd file.
fn passwd_ids(passwd: &[u8], user: &str) -> Option<(u32, u32)> {
    passwd.split(|&c| c == b'\n').find_map(|line| {
        let fields: Vec<&[u8]> = line.split(|&c| c == b':').collect();
        if fields.len() != 7 || fields[0] != user.as_bytes() {
            return None;
        }
        let number = |f: &[u8]| std::str::from_utf8(f).ok()?.parse::<u32>().ok();
        Some((number(fields[2])?, number(fields[3])?))
    })
}

/// `passwd` without `user`'s line, and that line; `None` when it has no such user.
fn split_account(passwd: &[u8], user: &str) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut rest = Vec::with_capacity(passwd.len());
    let mut held = None;
    for line in passwd.split_inclusive(|&c| c == b'\n') {
        let body = line.strip_suffix(b"\n").unwrap_or(line);
        let fields: Vec<&[u8]> = body.split(|&c| c == b':').collect();
        if held.is_none() && fields.len() == 7 && fields[0] == user.as_bytes() {
            held = Some([body, b"\n"].concat());
        } else {
            rest.extend_from_slice(line);
        }
    }
    held.map(|line| (rest, line))
}

/// The `.wsl`'s `oobe.command` ([`paths::OOBE_COMMAND`]), run by WSL through `/bin/sh -c` as
/// root; its exit status 0 makes WSL store oobe.defaultUid as the default user.
fn oobe_command_script() -> String {
    let done = paths::OOBE_DONE;
    let dir = done.rsplit_once('/').map_or("/", |(d, _)| d);
    format!(
        "#!/bin/sh\n\
         # WSL's OOBE for this distribution (oobe.command of {conf}), run once as root at the\n\
         # first interactive start after `wsl --install`. Once it exits 0, WSL starts\n\
         # oobe.defaultUid by default; the mark tells init that a root session is `wsl -u root`.\n\
         # The user itself was made at the first boot, from {account}.\n\
         mkdir -p {dir} && : > {done}\n",
        conf = paths::WSL_DISTRIBUTION_CONF,
        account = paths::FIRST_BOOT_ACCOUNT,
    )
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
    let mut out =
        String::from("# Read by WSL when it installs or imports this distribution.\n[oobe]\n");
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
    fn the_installers_wsl_conf_starts_root_without_mount_a_or_a_boot_key() {
        let reading = wsl_conf::Reading::of(INSTALLER_WSL_CONF);
        assert_eq!(reading.value("user.default").map(|v| v.0), Some("root"));
        assert_eq!(
            reading.value("automount.mountFsTab").map(|v| v.0),
            Some("false")
        );
        assert_eq!(reading.value("boot.systemd"), None);
    }

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

    use crate::tree::{dir_entry, file_entry, link_entry, Entry, MemoryTree};

    fn planned(tree: &MemoryTree, default_user: Option<&str>) -> Result<Plan, Error> {
        let init = std::env::current_exe().expect("test binary");
        plan(
            tree,
            &RootfsEdits {
                init: &init,
                default_user,
                systemd: None,
                epoch: 1,
                distribution: None,
                name: "NixOS",
            },
        )
    }

    fn text_of<'a>(plan: &'a Plan, path: &str) -> Option<&'a str> {
        plan.added
            .iter()
            .find(|a| a.meta.path == path.as_bytes())
            .and_then(|a| match &a.content {
                Content::Bytes(b) => std::str::from_utf8(b).ok(),
                _ => None,
            })
    }

    fn paths_of(plan: &Plan) -> Vec<String> {
        plan.added
            .iter()
            .map(|a| String::from_utf8_lossy(&a.meta.path).into_owned())
            .collect()
    }

    #[test]
    fn sbin_init_goes_where_sbin_really_is_and_units_are_masked() {
        let tree = MemoryTree(vec![
            dir_entry(""),
            link_entry("sbin", "usr/sbin"),
            dir_entry("usr"),
            dir_entry("usr/sbin"),
            dir_entry("etc"),
            dir_entry("etc/systemd"),
            dir_entry("etc/systemd/system"),
            file_entry("etc/systemd/system/tmp.mount", ""),
        ]);
        let plan = planned(&tree, Some("nixos")).expect("edits");
        let find = |p: &[u8]| plan.added.iter().find(|a| a.meta.path == p);
        let link = find(b"usr/sbin/init").expect("/sbin/init added under usr/sbin");
        assert_eq!(
            link.meta.kind,
            Kind::Symlink {
                target: paths::INIT.as_bytes().to_vec()
            }
        );
        assert!(find(b"sbin/init").is_none());
        assert!(
            find(b"etc/systemd/system/tmp.mount").is_none(),
            "a unit file of the source wins over the mask"
        );
        assert!(
            find(b"etc/systemd/system/systemd-resolved.service").is_some_and(|a| a.meta.kind
                == Kind::Symlink {
                    target: b"/dev/null".to_vec()
                })
        );
        assert!(
            find(b"usr/libexec/nixos-wsl").is_some_and(|a| a.meta.kind == Kind::Dir && !a.replace)
        );
        let conf = text_of(&plan, "etc/nixos-wsl/init.conf").expect("init.conf");
        assert!(
            conf.contains("user = nixos\n") && conf.contains("shell = /bin/sh\n"),
            "{conf}"
        );
    }

    #[test]
    fn nothing_is_written_through_a_symlink_of_the_source() {
        let tree = MemoryTree(vec![
            dir_entry(""),
            link_entry("etc", "usr/etc"),
            dir_entry("usr"),
            dir_entry("usr/etc"),
            link_entry("usr/etc/systemd", "../lib/systemd"),
            dir_entry("usr/lib"),
            dir_entry("usr/lib/systemd"),
            link_entry("usr/libexec", "lib"),
            link_entry("sbin", "/usr/bin"),
            dir_entry("usr/bin"),
            file_entry("usr/etc/passwd", "root:x:0:0::/root:/bin/bash\n"),
        ]);
        let plan = planned(&tree, None).expect("edits");
        let paths = paths_of(&plan);
        for want in [
            "usr/etc/passwd",
            "usr/etc/wsl.conf",
            "usr/etc/nixos-wsl/init.conf",
            "usr/lib/nixos-wsl/init",
            "usr/bin/init",
            "usr/lib/systemd/system/tmp.mount",
        ] {
            assert!(paths.iter().any(|p| p == want), "{want} not in {paths:?}");
        }
        // Everything added lies under a real directory of the tree or one packer adds.
        for path in &paths {
            let mut at = path.as_bytes();
            while let Some(up) = parent(at).filter(|p| !p.is_empty()) {
                let real = tree.node(up).map(|n| n.kind);
                assert!(
                    real == Some(NodeKind::Dir)
                        || (real.is_none() && paths.iter().any(|p| p.as_bytes() == up)),
                    "{path}: {} is {real:?}",
                    String::from_utf8_lossy(up)
                );
                at = up;
            }
        }
        let conf = text_of(&plan, "usr/etc/nixos-wsl/init.conf").expect("init.conf");
        assert!(conf.contains("shell = /bin/bash\n"), "{conf}");
    }

    #[test]
    fn a_symlink_loop_on_the_way_is_refused_by_name() {
        let tree = MemoryTree(vec![dir_entry(""), link_entry("etc", "/etc")]);
        let err = planned(&tree, None).err().expect("refused").to_string();
        assert!(
            err.starts_with("/usr/libexec") || err.contains("/etc is a symlink loop"),
            "{err}"
        );
    }

    /// What `wsl --export` of a packed distribution gives: init is root's shell, wsl.conf and
    /// init.conf are packer's.
    fn exported() -> Vec<Entry> {
        let wsl_conf = String::from_utf8(
            wsl_conf::for_toolkit_with(
                b"[User]\nDefault=nixos\n[automount]\noptions=metadata,uid=0\n",
                &wsl_conf::Settings {
                    automount_options: Some(wsl_conf::automount_options(
                        b"[automount]\noptions=metadata,uid=0\n",
                        1000,
                        100,
                    )),
                    ..wsl_conf::Settings::wrapper()
                },
            )
            .text,
        )
        .expect("UTF-8");
        vec![
            dir_entry(""),
            dir_entry("etc"),
            file_entry(
                "etc/passwd",
                &format!(
                    "root:x:0:0:root:/root:{}\nnixos:x:1000:100::/home/nixos:/bin/bash\n",
                    paths::INIT
                ),
            ),
            file_entry("etc/wsl.conf", &wsl_conf),
            dir_entry("etc/nixos-wsl"),
            file_entry(
                "etc/nixos-wsl/init.conf",
                "# mine\nuser = nixos\nshell = /bin/bash\nboot-timeout = 7\n",
            ),
            dir_entry("usr"),
            dir_entry("usr/libexec"),
            dir_entry("usr/libexec/nixos-wsl"),
            file_entry("usr/libexec/nixos-wsl/init", "\x7fELF"),
            dir_entry("sbin"),
            link_entry("sbin/init", paths::INIT),
        ]
    }

    #[test]
    fn repacking_an_installed_distribution_keeps_its_init_conf() {
        let tree = MemoryTree(exported());
        let plan = planned(&tree, None).expect("edits");
        assert_eq!(
            text_of(&plan, "etc/nixos-wsl/init.conf"),
            None,
            "kept as it is"
        );
        assert_eq!(
            text_of(&plan, "etc/passwd").map(|p| p.lines().next()),
            Some(Some(&*format!("root:x:0:0:root:/root:{}", paths::INIT)))
        );
        assert_eq!(
            text_of(&plan, "etc/wsl.conf").map(str::as_bytes),
            tree.read_small(b"etc/wsl.conf").unwrap().as_deref()
        );
        assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);

        // Without init.conf, init is still never taken for root's real shell.
        let mut entries = exported();
        entries.retain(|(p, _, _)| p != b"etc/nixos-wsl/init.conf");
        let plan = planned(&MemoryTree(entries), None).expect("edits");
        let conf = text_of(&plan, "etc/nixos-wsl/init.conf").expect("init.conf");
        assert!(
            conf.contains("shell = /bin/sh\n") && !conf.contains(paths::INIT),
            "{conf}"
        );
        assert!(plan.warnings[0].contains("root's shell is init already"));

        // An init.conf an earlier packer wrote with init as the shell is repaired; an explicit
        // user is set; the rest is kept.
        let mut entries = exported();
        entries.retain(|(p, _, _)| p != b"etc/nixos-wsl/init.conf");
        entries.push(file_entry(
            "etc/nixos-wsl/init.conf",
            &format!("user = root\nshell = {}\n", paths::INIT),
        ));
        let plan = planned(&MemoryTree(entries), Some("alice")).expect("edits");
        assert_eq!(
            text_of(&plan, "etc/nixos-wsl/init.conf"),
            Some("user = alice\nshell = /bin/sh\n")
        );
    }

    fn debian_like() -> MemoryTree {
        MemoryTree(vec![
            dir_entry(""),
            link_entry("sbin", "usr/sbin"),
            dir_entry("usr"),
            dir_entry("usr/sbin"),
            link_entry("usr/sbin/init", "../lib/systemd/systemd"),
            dir_entry("usr/lib"),
            dir_entry("usr/lib/systemd"),
            file_entry("usr/lib/systemd/systemd", "\x7fELF"),
            dir_entry("etc"),
            file_entry(
                "etc/passwd",
                "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1001::/home/alice:/bin/bash\n",
            ),
            file_entry(
                "etc/wsl.conf",
                "[boot]\nsystemd=false\n[automount]\noptions = metadata,uid=5\n",
            ),
        ])
    }

    fn planned_as(
        tree: &MemoryTree,
        systemd: Option<Systemd>,
        distribution: Option<&DistributionConf>,
    ) -> Plan {
        let init = std::env::current_exe().expect("test binary");
        plan(
            tree,
            &RootfsEdits {
                init: &init,
                default_user: Some("alice"),
                systemd,
                epoch: 1,
                distribution,
                name: "NixOS",
            },
        )
        .expect("edits")
    }

    #[test]
    fn native_mode_boots_systemd_through_init_as_the_user() {
        let tree = debian_like();
        let plan = planned_as(&tree, Some(Systemd::Native), None);
        let conf = text_of(&plan, "etc/wsl.conf").expect("wsl.conf");
        let reading = wsl_conf::Reading::of(conf.as_bytes());
        assert_eq!(reading.value("boot.systemd").map(|v| v.0), Some("true"));
        assert_eq!(reading.value("user.default").map(|v| v.0), Some("alice"));
        assert!(conf.contains("#~ systemd=false\n"), "{conf}");
        assert!(
            plan.warnings.iter().any(|w| w.contains("systemd=false")),
            "{:?}",
            plan.warnings
        );
        let init = plan
            .added
            .iter()
            .find(|a| a.meta.path == b"usr/sbin/init")
            .expect("/sbin/init replaced");
        assert!(init.replace);
        assert_eq!(
            init.meta.kind,
            Kind::Symlink {
                target: paths::INIT.as_bytes().to_vec()
            }
        );
        assert!(wsl_conf::findings(conf.as_bytes(), true).is_empty());
        // The fixture has none of what WSL's native boot runs.
        for needed in [
            "/bin/login",
            "/bin/mount",
            "/bin/true",
            "no systemctl",
            "no grep",
        ] {
            assert!(
                plan.warnings.iter().any(|w| w.contains(needed)),
                "{needed}: {:?}",
                plan.warnings
            );
        }

        // A .wsl of a tree that ships its user: Microsoft's model. The user is held back
        // from /etc/passwd for init to add at the first boot, oobe.defaultUid names it, the
        // OOBE command marks it, and wsl.conf names no one; the drives are the user's through
        // the source's options with the user's ids.
        let wsl = DistributionConf {
            name: "Debian".into(),
            ..DistributionConf::default()
        };
        let plan = planned_as(&tree, None, Some(&wsl));
        let conf = text_of(&plan, "etc/wsl.conf").expect("wsl.conf");
        let reading = wsl_conf::Reading::of(conf.as_bytes());
        assert_eq!(reading.value("boot.systemd").map(|v| v.0), Some("true"));
        assert_eq!(reading.value("user.default"), None, "{conf}");
        assert_eq!(
            reading.value("automount.options").map(|v| v.0),
            Some("metadata,uid=1000,gid=1001"),
            "{conf}"
        );
        assert_eq!(
            text_of(&plan, "etc/passwd"),
            Some(&*format!("root:x:0:0:root:/root:{}\n", paths::INIT))
        );
        assert_eq!(
            text_of(&plan, "etc/nixos-wsl/first-boot-account"),
            Some("alice:x:1000:1001::/home/alice:/bin/bash\n")
        );
        let distribution = text_of(&plan, "etc/wsl-distribution.conf").expect("conf");
        assert!(
            distribution.contains("command = /usr/libexec/wsl/nixos-wsl-oobe\ndefaultUid = 1000\n"),
            "{distribution}"
        );
        let oobe = plan
            .added
            .iter()
            .find(|a| a.meta.path == b"usr/libexec/wsl/nixos-wsl-oobe")
            .expect("the OOBE command");
        assert_eq!(oobe.meta.mode, 0o755);
        let script = text_of(&plan, "usr/libexec/wsl/nixos-wsl-oobe").expect("script");
        assert!(
            script.starts_with("#!/bin/sh\n")
                && script.ends_with(": > /var/lib/nixos-wsl/oobe-done\n"),
            "{script}"
        );

        // Packing that tree again (an extracted .wsl never booted) gives the same edits.
        let mut again = tree.0.clone();
        for added in &plan.added {
            if let Content::Bytes(data) = &added.content {
                again.retain(|(p, _, _)| *p != added.meta.path);
                let path = String::from_utf8_lossy(&added.meta.path).into_owned();
                again.push(file_entry(&path, &String::from_utf8_lossy(data)));
            }
        }
        let replan = planned_as(&MemoryTree(again), None, Some(&wsl));
        for path in [
            "etc/passwd",
            "etc/wsl.conf",
            "etc/wsl-distribution.conf",
            "etc/nixos-wsl/first-boot-account",
        ] {
            assert_eq!(text_of(&replan, path), text_of(&plan, path), "{path}");
        }
        assert!(
            !replan
                .warnings
                .iter()
                .any(|w| w.contains("is not in the tree")),
            "{:?}",
            replan.warnings
        );

        // An OOBE command of the packer's user creates users itself: the tree's user stays in
        // /etc/passwd and is named by [user] default, and oobe.defaultUid is what was asked.
        let asked = DistributionConf {
            default_uid: Some(1000),
            oobe_command: Some("/usr/libexec/wsl/oobe".into()),
            ..wsl
        };
        let plan = planned_as(&tree, None, Some(&asked));
        let distribution = text_of(&plan, "etc/wsl-distribution.conf").expect("conf");
        assert!(
            distribution.contains("command = /usr/libexec/wsl/oobe\ndefaultUid = 1000\n"),
            "{distribution}"
        );
        let conf = text_of(&plan, "etc/wsl.conf").expect("wsl.conf");
        let reading = wsl_conf::Reading::of(conf.as_bytes());
        assert_eq!(reading.value("user.default").map(|v| v.0), Some("alice"));
        assert!(text_of(&plan, "etc/passwd").is_some_and(|p| p.contains("\nalice:")));
        assert!(text_of(&plan, "etc/nixos-wsl/first-boot-account").is_none());
    }

    #[test]
    fn a_user_the_tree_does_not_have_is_warned_about() {
        let tree = debian_like();
        let init = std::env::current_exe().expect("test binary");
        let plan = plan(
            &tree,
            &RootfsEdits {
                init: &init,
                default_user: Some("bob"),
                systemd: None,
                epoch: 1,
                distribution: None,
                name: "Debian",
            },
        )
        .expect("plan");
        assert!(
            plan.warnings
                .iter()
                .any(|w| w.contains("the user bob is not in the tree's /etc/passwd")),
            "{:?}",
            plan.warnings
        );
        let plan = planned_as(&tree, None, None);
        assert!(
            !plan
                .warnings
                .iter()
                .any(|w| w.contains("is not in the tree")),
            "{:?}",
            plan.warnings
        );
    }

    #[test]
    fn the_trees_dev_null_is_left_out_and_the_rest_of_dev_kept() {
        let mut entries = debian_like().0;
        let device = |path: &str| {
            let mut entry = dir_entry(path);
            entry.1.kind = NodeKind::Other;
            entry
        };
        entries.extend([dir_entry("dev"), device("dev/null"), device("dev/zero")]);
        let plan = planned_as(&MemoryTree(entries), Some(Systemd::Native), None);
        let null = plan
            .added
            .iter()
            .find(|a| a.meta.path == b"dev/null")
            .expect("an edit for /dev/null");
        assert!(null.replace && matches!(null.content, Content::Omitted));
        // The folder's own entry stays the source's (a parent is added only where there is none).
        assert!(!plan
            .added
            .iter()
            .any(|a| a.meta.path == b"dev/zero" || (a.meta.path == b"dev" && a.replace)));
        // A tree without one gets no edit there.
        let plan = planned_as(&debian_like(), Some(Systemd::Native), None);
        assert!(!paths_of(&plan).iter().any(|p| p == "dev/null"));
    }

    #[test]
    fn tmpfiles_setup_is_replaced_and_the_dev_units_masked_where_systemd_ships_them() {
        let mut entries = debian_like().0;
        entries.push(file_entry(
            "usr/lib/systemd/system/systemd-tmpfiles-setup.service",
            "[Service]\n",
        ));
        let plan = planned_as(&MemoryTree(entries), Some(Systemd::Native), None);
        let find = |p: &str| plan.added.iter().find(|a| a.meta.path == p.as_bytes());
        for unit in [
            "systemd-tmpfiles-setup.service",
            "systemd-tmpfiles-setup-dev.service",
            "systemd-tmpfiles-setup-dev-early.service",
        ] {
            let mask = find(&format!("etc/systemd/system/{unit}")).expect(unit);
            assert_eq!(
                mask.meta.kind,
                Kind::Symlink {
                    target: b"/dev/null".to_vec()
                }
            );
        }
        let unit = text_of(&plan, "etc/systemd/system/nixos-wsl-tmpfiles-setup.service")
            .expect("the replacement");
        assert!(unit.contains("--exclude-prefix=/tmp/.X11-unix"), "{unit}");
        let wants =
            find("etc/systemd/system/sysinit.target.wants/nixos-wsl-tmpfiles-setup.service")
                .expect("enabled");
        assert_eq!(
            wants.meta.kind,
            Kind::Symlink {
                target: b"/etc/systemd/system/nixos-wsl-tmpfiles-setup.service".to_vec()
            }
        );

        // No systemd-tmpfiles in the tree: masks only, no unit that would fail at boot.
        let plan = planned_as(&debian_like(), Some(Systemd::Native), None);
        assert!(!paths_of(&plan)
            .iter()
            .any(|p| p.contains("nixos-wsl-tmpfiles-setup")));
    }

    #[test]
    fn wrapper_mode_gives_the_drives_to_the_user() {
        let tree = debian_like();
        let plan = planned_as(&tree, None, None);
        let conf = text_of(&plan, "etc/wsl.conf").expect("wsl.conf");
        let reading = wsl_conf::Reading::of(conf.as_bytes());
        assert_eq!(reading.value("user.default").map(|v| v.0), Some("root"));
        assert_eq!(reading.value("boot.systemd").map(|v| v.0), Some("false"));
        assert_eq!(
            reading.value("automount.options").map(|v| v.0),
            Some("metadata,uid=1000,gid=1001")
        );
        assert!(conf.contains("#~ options = metadata,uid=5\n"), "{conf}");
        assert!(
            !plan.added.iter().any(|a| a.meta.path == b"usr/sbin/init"),
            "the tree's own /sbin/init stays"
        );
        // Packing the result again gives the same file.
        let again = wsl_conf::for_toolkit_with(
            conf.as_bytes(),
            &wsl_conf::Settings {
                automount_options: Some(wsl_conf::automount_options(conf.as_bytes(), 1000, 1001)),
                ..wsl_conf::Settings::wrapper()
            },
        );
        assert_eq!(String::from_utf8_lossy(&again.text), conf);
    }

    const SYSTEM: &str = "nix/store/0123456789abcdfghijklmnpqrsvwxyz-nixos-system-nixos-25.05";

    /// A NixOS system as `make-system-tarball` leaves it (`activated`: false) or activated.
    fn nixos_tree(activated: bool) -> Vec<Entry> {
        let mut entries = vec![
            dir_entry(""),
            file_entry("nix-path-registration", ""),
            dir_entry("nix"),
            dir_entry("nix/store"),
            dir_entry(SYSTEM),
            file_entry(&format!("{SYSTEM}/activate"), "#!/bin/sh\n"),
            file_entry(
                &format!("{SYSTEM}/spec.json"),
                &format!(r#"{{"users":{{"root":{{"shell":"{}"}}}}}}"#, paths::INIT),
            ),
            link_entry(&format!("{SYSTEM}/etc"), "/nix/store/eeee-etc/etc"),
            link_entry(&format!("{SYSTEM}/sw"), "/nix/store/ssss-system-path"),
            dir_entry("nix/store/ssss-system-path"),
            dir_entry("nix/store/ssss-system-path/bin"),
            link_entry(
                "nix/store/ssss-system-path/bin/sh",
                "/nix/store/bbbb-bash/bin/bash",
            ),
            dir_entry("nix/store/bbbb-bash"),
            dir_entry("nix/store/bbbb-bash/bin"),
            file_entry("nix/store/bbbb-bash/bin/bash", "\x7fELF"),
            dir_entry("nix/store/eeee-etc"),
            dir_entry("nix/store/eeee-etc/etc"),
            file_entry(
                "nix/store/eeee-etc/etc/wsl.conf",
                "[user]\ndefault=nixos\n; declared\n[boot]\nsystemd=true\n",
            ),
            dir_entry("nix/store/eeee-etc/etc/nixos-wsl"),
            file_entry(
                "nix/store/eeee-etc/etc/nixos-wsl/init.conf",
                "user = nixos\nshell = /run/current-system/sw/bin/bash\n",
            ),
            dir_entry("nix/store/eeee-etc/etc/systemd"),
            dir_entry("nix/store/eeee-etc/etc/systemd/system"),
        ];
        if activated {
            entries.extend([
                dir_entry("etc"),
                link_entry("etc/static", "/nix/store/eeee-etc/etc"),
                link_entry("etc/systemd", "/etc/static/systemd"),
                link_entry("etc/wsl.conf", "/etc/static/wsl.conf"),
                dir_entry("etc/nixos-wsl"),
                link_entry("etc/nixos-wsl/init.conf", "/etc/static/nixos-wsl/init.conf"),
                file_entry(
                    "etc/passwd",
                    &format!("root:x:0:0::/root:{}\n", paths::INIT),
                ),
                file_entry("etc/NIXOS", ""),
                dir_entry("bin"),
                link_entry("bin/sh", "/nix/store/bbbb-bash/bin/bash"),
            ]);
        }
        entries
    }

    #[test]
    fn a_nixos_tree_gets_no_masks_and_its_etc_is_read_through_the_store() {
        for activated in [false, true] {
            let tree = MemoryTree(nixos_tree(activated));
            let plan = planned(&tree, None).expect("edits");
            let paths = paths_of(&plan);
            assert!(
                !paths
                    .iter()
                    .any(|p| p.starts_with("etc/systemd") || p.starts_with("nix/")),
                "{activated}: {paths:?}"
            );
            let wsl_conf = text_of(&plan, "etc/wsl.conf").expect("wsl.conf");
            let reading = wsl_conf::Reading::of(wsl_conf.as_bytes());
            assert_eq!(reading.value("user.default").map(|v| v.0), Some("root"));
            assert_eq!(reading.value("boot.systemd").map(|v| v.0), Some("true"));

            // The declared init.conf: copied where there is no /etc, the link kept otherwise.
            let init_conf = text_of(&plan, "etc/nixos-wsl/init.conf");
            if activated {
                assert_eq!(init_conf, None);
                assert!(!paths.iter().any(|p| p == "bin/sh"));
            } else {
                assert_eq!(
                    init_conf,
                    Some("user = nixos\nshell = /run/current-system/sw/bin/bash\n")
                );
                let sh = plan
                    .added
                    .iter()
                    .find(|a| a.meta.path == b"bin/sh")
                    .expect("/bin/sh");
                assert_eq!(
                    sh.meta.kind,
                    Kind::Symlink {
                        target: format!("/{SYSTEM}/sw/bin/sh").into_bytes()
                    }
                );
                assert_eq!(
                    text_of(&plan, "etc/passwd"),
                    Some(&*format!("root:x:0:0:root:/root:{}\n", paths::INIT))
                );
            }
        }
    }

    #[test]
    fn a_nixos_system_keeps_its_declared_mode_and_is_warned_about_the_other() {
        // Declared as the module does for native mode.
        let mut entries = nixos_tree(true);
        for (path, _, data) in &mut entries {
            if path == b"nix/store/eeee-etc/etc/wsl.conf" {
                *data = b"[boot]\nsystemd=true\n[user]\ndefault=root\n".to_vec();
            }
        }
        let tree = MemoryTree(entries.clone());
        let plan = planned_as(&tree, Some(Systemd::Native), None);
        let conf = text_of(&plan, "etc/wsl.conf").expect("wsl.conf");
        let reading = wsl_conf::Reading::of(conf.as_bytes());
        // WSL starts root, whose shell (init) gives commands /etc/set-environment, from the
        // first start on: as the declared wsl.conf that activation puts back.
        assert_eq!(
            reading.value("user.default").map(|v| v.0),
            Some("root"),
            "{conf}"
        );
        assert_eq!(
            reading.value("boot.systemd").map(|v| v.0),
            Some("true"),
            "{conf}"
        );
        assert!(
            !plan.warnings.iter().any(|w| w.contains("systemd mode")),
            "{:?}",
            plan.warnings
        );
        let init = plan
            .added
            .iter()
            .find(|a| a.meta.path == b"sbin/init")
            .expect("/sbin/init");
        assert_eq!(
            init.meta.kind,
            Kind::Symlink {
                target: paths::INIT.as_bytes().to_vec()
            }
        );

        // Without --systemd the declared mode holds: WSL execs /sbin/init, which must be init
        // even where the tarball links it to NixOS's own stage 2.
        let mut linked = entries;
        linked.extend([
            dir_entry("sbin"),
            link_entry("sbin/init", &format!("/{SYSTEM}/init")),
        ]);
        let plan = planned_as(&MemoryTree(linked), None, None);
        let init = plan
            .added
            .iter()
            .find(|a| a.meta.path == b"sbin/init")
            .expect("/sbin/init");
        assert!(init.replace);
        assert_eq!(
            init.meta.kind,
            Kind::Symlink {
                target: paths::INIT.as_bytes().to_vec()
            }
        );

        let plan = planned_as(&tree, Some(Systemd::Wrapper), None);
        assert!(
            plan.warnings
                .iter()
                .any(|w| w.contains("declares the native systemd mode")),
            "{:?}",
            plan.warnings
        );
    }

    #[test]
    fn a_nixos_system_that_replaces_init_is_refused() {
        let mut entries = nixos_tree(true);
        for (path, _, data) in &mut entries {
            if path.ends_with(b"spec.json") {
                *data =
                    br#"{"users":{"root":{"shell":"/run/current-system/sw/bin/bash"}}}"#.to_vec();
            }
        }
        let err = planned(&MemoryTree(entries), None)
            .err()
            .expect("refused")
            .to_string();
        assert!(
            err.contains("declares root's shell /run/current-system/sw/bin/bash"),
            "{err}"
        );
    }
}
