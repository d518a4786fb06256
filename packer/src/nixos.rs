//! Recognising a NixOS source, finding the system it boots, and what that system's activation
//! will do to what packer writes.
//!
//! On NixOS, `/etc/passwd` is written by activation from the declared users: nixpkgs'
//! `nixos/modules/config/users-groups.nix` (commit 005ab72f) turns `users.users` into
//! `users-groups.json` (`spec = pkgs.writeText "users-groups.json"`) and its
//! `system.activationScripts.users` runs `update-users-groups.pl <that file>`, whose root
//! entry always has `shell = mkDefault cfg.defaultUserShell` (`/run/current-system/sw/bin/bash`).
//! `update-users-groups.pl` (commit 03fa53d2, "if (!defined $u->{shell})") keeps the existing
//! shell only when the declared one is null. So init stays root's shell only when the system
//! declares it (the toolkit's NixOS module does), and packer refuses a system that declares
//! another. `/etc` entries are links into the store (`/etc/X -> /etc/static/X`, setup-etc.pl);
//! a bare `make-system-tarball` has no `/etc` at all and its declared files live in the
//! system's own `etc` (`<system>/etc -> <etc derivation>/etc`).

use wsl_common::paths;

use crate::entry::{display, join, normalize};
use crate::error::Error;
use crate::json::{self, Json};
use crate::placement::{read_through_links, Found};
use crate::tree::{resolve, Lookup, NodeKind};
use crate::wsl_conf::{self, Finding};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nixos {
    /// What gave it away (`/etc/NIXOS`, ...), for messages.
    pub evidence: String,
    /// The systems it may boot: one, unless the tree has no profile and several in its store.
    pub systems: Vec<System>,
    /// How they were found (`/nix/var/nix/profiles/system`, ...).
    pub found_by: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct System {
    /// The store path inside the tree (`nix/store/<hash>-nixos-system-...`).
    pub path: Vec<u8>,
    pub root_shell: RootShell,
}

/// What the system's activation makes root's shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootShell {
    /// It declares init ([`paths::INIT`], or a path that leads to it in the tree).
    Init { spec: Vec<u8> },
    /// It declares no shell for root (null): activation keeps the one packer writes.
    Kept { spec: Vec<u8> },
    /// It declares another shell: activation replaces init with it.
    Other { shell: String, spec: Vec<u8> },
    /// Packer found no declared users it can read; why.
    Unknown(String),
}

/// `Some` when the tree is a NixOS system: `/etc/NIXOS`, `ID=nixos` in os-release, a system
/// profile, or a store with `/nix-path-registration` (what `make-system-tarball` leaves,
/// nixpkgs `nixos/lib/make-system-tarball.sh`).
pub fn detect(tree: &dyn Lookup) -> Result<Option<Nixos>, Error> {
    let exists = |path: &[u8]| resolve(tree, path).is_some_and(|p| tree.node(&p).is_some());
    let evidence = if exists(b"etc/NIXOS") {
        "/etc/NIXOS"
    } else if read_through_links(tree, b"etc/os-release")?
        .is_some_and(|(text, _)| os_release_is_nixos(&text))
    {
        "/etc/os-release (ID=nixos)"
    } else if exists(b"nix/var/nix/profiles/system") {
        "/nix/var/nix/profiles/system"
    } else if exists(b"nix-path-registration") && exists(b"nix/store") {
        "/nix-path-registration"
    } else {
        return Ok(None);
    };
    let (paths, found_by) = find_systems(tree);
    let mut systems = Vec::new();
    for path in paths {
        let root_shell = declared_root_shell(tree, &path)?;
        systems.push(System { path, root_shell });
    }
    Ok(Some(Nixos {
        evidence: evidence.to_owned(),
        systems,
        found_by,
    }))
}

fn os_release_is_nixos(text: &[u8]) -> bool {
    String::from_utf8_lossy(text).lines().any(|line| {
        line.trim()
            .strip_prefix("ID=")
            .is_some_and(|id| id.trim_matches(['"', '\'']) == "nixos")
    })
}

/// A top-level system: a store path with an `activate` file.
fn is_system(tree: &dyn Lookup, path: &[u8]) -> bool {
    let in_store = path
        .strip_prefix(b"nix/store/")
        .is_some_and(|name| !name.is_empty() && !name.contains(&b'/'));
    in_store
        && tree.node(path).map(|n| n.kind) == Some(NodeKind::Dir)
        && resolve(tree, &join(path, b"activate"))
            .and_then(|p| tree.node(&p))
            .is_some_and(|n| n.kind == NodeKind::File)
}

/// The system profile, else a live tree's `/run/current-system`, else what `/sbin/init`
/// leads to (`<system>/init`, as the LXC tarball's `contents` have it: nixpkgs
/// `nixos/modules/virtualisation/lxc-container.nix`), else every `*-nixos-system-*` in the
/// store.
fn find_systems(tree: &dyn Lookup) -> (Vec<Vec<u8>>, String) {
    for link in [&b"nix/var/nix/profiles/system"[..], b"run/current-system"] {
        if let Some(path) = resolve(tree, link).filter(|p| is_system(tree, p)) {
            return (vec![path], display(link));
        }
    }
    if let Some(init) = resolve(tree, b"sbin/init") {
        if let Some(system) = init.strip_suffix(b"/init").filter(|s| is_system(tree, s)) {
            return (vec![system.to_vec()], "/sbin/init".into());
        }
    }
    let systems: Vec<Vec<u8>> = tree
        .children(b"nix/store")
        .into_iter()
        .filter(|name| contains(name, b"-nixos-system-"))
        .map(|name| join(b"nix/store", &name))
        .filter(|path| is_system(tree, path))
        .collect();
    let by = match systems.len() {
        0 => {
            "nothing (no system profile, no *-nixos-system-* with an activate script in /nix/store)"
        }
        1 => "the only *-nixos-system-* in /nix/store",
        _ => "the *-nixos-system-* paths in /nix/store (there is no system profile to choose one)",
    };
    (systems, by.into())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    find(haystack, needle).is_some()
}

/// Store paths named in a script that end in `.json` (how activation names
/// `users-groups.json`), as tree paths.
fn json_store_paths(script: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = script;
    while let Some(at) = find(rest, b"/nix/store/") {
        let tail = &rest[at..];
        // Nix store path names: [A-Za-z0-9+-._?=] (nix's checkName), then `/` for subpaths.
        let len = tail
            .iter()
            .position(|&c| !(c.is_ascii_alphanumeric() || b"+-._?=/".contains(&c)))
            .unwrap_or(tail.len());
        let path = &tail[..len];
        if path.ends_with(b".json") {
            if let Some(p) = normalize(path) {
                if !out.contains(&p) {
                    out.push(p);
                }
            }
        }
        rest = &tail[len.max(1)..];
    }
    out
}

/// The users file the system's activation reads, parsed, and its path: the one its activate
/// script names (real NixOS), else `spec.json` / `users-groups.json` in the system itself (the
/// toolkit's declared spec).
fn users_file(tree: &dyn Lookup, system: &[u8]) -> Result<Option<(Json, Vec<u8>)>, Error> {
    let activate = read_through_links(tree, &join(system, b"activate"))?
        .map(|(text, _)| text)
        .unwrap_or_default();
    let mut specs = json_store_paths(&activate);
    specs.push(join(system, b"spec.json"));
    specs.push(join(system, b"users-groups.json"));
    for spec in specs {
        let Some((text, _)) = read_through_links(tree, &spec)? else {
            continue;
        };
        let doc = json::parse(&text).map_err(|e| Error::BadEntry {
            path: display(&spec),
            problem: format!("not a JSON users file NixOS's activation can read: {e}"),
        })?;
        if doc.get("users").is_some() {
            return Ok(Some((doc, spec)));
        }
    }
    Ok(None)
}

/// Root's shell as the system's activation will write it.
fn declared_root_shell(tree: &dyn Lookup, system: &[u8]) -> Result<RootShell, Error> {
    if let Some((doc, spec)) = users_file(tree, system)? {
        if let Some(users) = doc.get("users") {
            return Ok(root_shell_of(tree, &doc, users, spec));
        }
    }
    let activate = read_through_links(tree, &join(system, b"activate"))?
        .map(|(text, _)| text)
        .unwrap_or_default();
    Ok(RootShell::Unknown(
        if contains(&activate, b"update-users-groups") {
            "its activate script runs update-users-groups.pl, but packer cannot find the users file it reads".into()
        } else {
            "its activate script names no users file (systemd-sysusers or userborn write /etc/passwd after systemd starts)".into()
        },
    ))
}

/// A declared user's entry: users-groups.json has a list of users with names, the toolkit's
/// spec.json an object keyed by name.
fn user_entry<'a>(users: &'a Json, name: &str) -> Option<&'a Json> {
    match users {
        Json::Object(_) => users.get(name),
        Json::Array(list) => list
            .iter()
            .find(|u| u.get("name").and_then(Json::as_str) == Some(name)),
        _ => None,
    }
}

fn root_shell_of(tree: &dyn Lookup, doc: &Json, users: &Json, spec: Vec<u8>) -> RootShell {
    let Some(root) = user_entry(users, "root") else {
        // update-users-groups.pl drops undeclared users when mutableUsers is false.
        return if doc.get("mutableUsers") == Some(&Json::Bool(false)) {
            RootShell::Other {
                shell: "(none: root is not declared and mutableUsers is false, so activation removes root)".into(),
                spec,
            }
        } else {
            RootShell::Kept { spec }
        };
    };
    match root.get("shell") {
        None | Some(Json::Null) => RootShell::Kept { spec },
        Some(Json::String(shell)) if is_init(tree, shell) => RootShell::Init { spec },
        Some(Json::String(shell)) => RootShell::Other {
            shell: shell.clone(),
            spec,
        },
        Some(other) => RootShell::Other {
            shell: format!("{other:?}"),
            spec,
        },
    }
}

/// Whether a shell path is the toolkit's init: [`paths::INIT`] or a path leading to the same
/// place in the tree.
pub fn is_init(tree: &dyn Lookup, shell: &str) -> bool {
    if shell == paths::INIT {
        return true;
    }
    let init = resolve(tree, paths::INIT.as_bytes());
    init.is_some() && resolve(tree, shell.as_bytes()) == init
}

impl Nixos {
    /// The one system, when there is exactly one.
    pub fn system(&self) -> Option<&System> {
        match &self.systems[..] {
            [one] => Some(one),
            _ => None,
        }
    }

    /// Refuses a system whose activation replaces init as root's shell; returns the warnings
    /// for what cannot be told.
    pub fn require_init_declared(&self) -> Result<Vec<String>, Error> {
        let mut warnings = Vec::new();
        if self.systems.is_empty() {
            warnings.push(format!(
                "this is a NixOS tree ({}), but packer found {}: it cannot tell whether activation keeps init as root's shell. If the system does not declare users.users.root.shell = \"{}\" (the toolkit's NixOS module does), its first activation replaces init and later sessions bypass it",
                self.evidence, self.found_by, paths::INIT
            ));
        }
        for system in &self.systems {
            match &system.root_shell {
                RootShell::Init { .. } | RootShell::Kept { .. } => {}
                RootShell::Other { shell, spec } => {
                    return Err(Error::BadEntry {
                        path: display(spec),
                        problem: replaced_message(system, shell),
                    })
                }
                RootShell::Unknown(why) => warnings.push(format!(
                    "{}: {why}. packer cannot tell whether activation keeps init as root's shell; if the system does not declare users.users.root.shell = \"{}\" (the toolkit's NixOS module does), its first activation replaces init and later sessions bypass it",
                    display(&system.path),
                    paths::INIT
                )),
            }
        }
        Ok(warnings)
    }

    /// A file of `/etc` as the system has it: the tree's (through `/etc/static`), else, in a
    /// tree without it (a bare system tarball), the system's declared one (`<system>/etc/X`).
    pub fn etc_file(&self, tree: &dyn Lookup, rel: &[u8]) -> Result<Option<Found>, Error> {
        if let Some(found) = read_through_links(tree, &join(b"etc", rel))? {
            return Ok(Some(found));
        }
        match self.system() {
            Some(system) => read_through_links(tree, &join(&join(&system.path, b"etc"), rel)),
            None => Ok(None),
        }
    }
}

impl Nixos {
    /// A declared `/etc/wsl.conf` replaces packer's at the first activation (setup-etc.pl):
    /// from the next start on, WSL reads the declared one, which must start root too.
    pub fn declared_wsl_conf_problem(&self, tree: &dyn Lookup) -> Option<String> {
        let declared = join(&self.system()?.path, b"etc/wsl.conf");
        let (text, _) = read_through_links(tree, &declared).ok()??;
        let user = match wsl_conf::Reading::of(&text).value("user.default") {
            Some(("root", _)) => return None,
            Some((user, _)) if self.declared_user_shell_is_init(tree, &text, user) => return None,
            Some((user, _)) => format!("default user {user:?}"),
            None => "no [user] default=root".into(),
        };
        Some(format!(
            "{}: the system declares an /etc/wsl.conf that activation puts in place of packer's, and WSL reads {user} from it: sessions started after the first activation bypass init (declare [user] default=root, or in native mode ([boot] systemd=true) a user whose declared shell is init, as the toolkit's module does)",
            display(&declared),
        ))
    }

    /// The user other than root that the system's declared `/etc/wsl.conf` makes WSL's default,
    /// when that is sound: native mode and the user's declared shell init (the toolkit's module
    /// in native mode), so that every session still passes through init.
    pub fn declared_default_user(&self, tree: &dyn Lookup) -> Option<String> {
        let declared = join(&self.system()?.path, b"etc/wsl.conf");
        let (text, _) = read_through_links(tree, &declared).ok()??;
        let reading = wsl_conf::Reading::of(&text);
        let (user, _) = reading.value("user.default")?;
        (user != "root" && self.declared_user_shell_is_init(tree, &text, user))
            .then(|| user.to_owned())
    }

    /// Whether `wsl_conf` boots WSL's own systemd and the system declares `user`'s shell init:
    /// WSL then starts that user's shell, init, for every session without `-u`
    /// (microsoft/WSL `src/linux/init/init.cpp:1004-1032`, `:718-731`).
    fn declared_user_shell_is_init(&self, tree: &dyn Lookup, wsl_conf: &[u8], user: &str) -> bool {
        let native = wsl_conf::Reading::of(wsl_conf)
            .value("boot.systemd")
            .and_then(|(v, _)| wsl_conf::parse_bool(v))
            .unwrap_or(false);
        let Some(system) = self.system() else {
            return false;
        };
        native
            && users_file(tree, &system.path)
                .ok()
                .flatten()
                .is_some_and(|(doc, _)| {
                    doc.get("users")
                        .and_then(|users| user_entry(users, user))
                        .and_then(|u| u.get("shell"))
                        .and_then(Json::as_str)
                        .is_some_and(|shell| is_init(tree, shell))
                })
    }
}

impl Nixos {
    /// Whether the system's declared `/etc/wsl.conf` boots WSL's own systemd
    /// (`[boot] systemd`, WSL's default false: `init.cpp:2355`); `None` when it declares none.
    fn declared_native(&self, tree: &dyn Lookup) -> Option<(bool, Vec<u8>)> {
        let declared = join(&self.system()?.path, b"etc/wsl.conf");
        let (text, _) = read_through_links(tree, &declared).ok()??;
        let native = wsl_conf::Reading::of(&text)
            .value("boot.systemd")
            .and_then(|(v, _)| wsl_conf::parse_bool(v))
            .unwrap_or(false);
        Some((native, declared))
    }

    /// Whether the system declares a wsl.conf of this mode (`[boot] systemd=true` for native).
    pub fn declares_mode(&self, tree: &dyn Lookup, native: bool) -> bool {
        self.declared_native(tree)
            .is_some_and(|(declared, _)| declared == native)
    }

    /// A declared `/etc/wsl.conf` comes back at the first activation (setup-etc.pl) with the
    /// mode the system declares: packing it for the other mode lasts one start only.
    pub fn declared_mode_problem(&self, tree: &dyn Lookup, native: bool) -> Option<String> {
        let (declared_native, path) = self.declared_native(tree)?;
        (declared_native != native).then(|| {
            let (declared, wanted) = if declared_native {
                ("native", "wrapper")
            } else {
                ("wrapper", "native")
            };
            format!(
                "{}: the system declares the {declared} systemd mode ([boot] systemd={declared_native}), and its first activation puts that wsl.conf in place of packer's {wanted} one: from the next start on WSL boots it in {declared} mode. Declare wsl.systemd = \"{wanted}\" in the system's configuration, or pack it with --systemd {declared}",
                display(&path)
            )
        })
    }
}

fn replaced_message(system: &System, shell: &str) -> String {
    format!(
        "the NixOS system {} declares root's shell {shell}: its activation (update-users-groups.pl) writes that into /etc/passwd at the first start and replaces init, so later sessions bypass init, and after `wsl --terminate` (an empty /run) WSL cannot start root's shell at all. Build the system with this toolkit's NixOS module (imports = [ nixos-wsl.nixosModules.default ]; wsl.enable = true;), which declares root's shell as {}, then pack that",
        display(&system.path),
        paths::INIT
    )
}

/// nixpkgs nixos/modules/system/boot/systemd.nix: every unit comes from the link
/// `/etc/systemd/system -> /etc/static/systemd/system`; a real directory blocks it (setup-etc.pl
/// leaves it, with a warning).
pub fn units_blocked(tree: &dyn Lookup) -> Option<String> {
    (tree.node(b"etc/systemd/system").map(|n| n.kind) == Some(NodeKind::Dir)).then(|| {
        "/etc/systemd/system is a real directory in a NixOS tree: it blocks NixOS's link to /etc/static/systemd/system and systemd finds none of the system's units".into()
    })
}

/// What `packer check` says about a NixOS archive (nothing for other archives).
pub fn findings(tree: &dyn Lookup) -> Vec<Finding> {
    let nixos = match detect(tree) {
        Ok(Some(nixos)) => nixos,
        Ok(None) => return Vec::new(),
        Err(e) => return vec![Finding::Error(e.to_string())],
    };
    let mut out = Vec::new();
    match nixos.require_init_declared() {
        Ok(warnings) => out.extend(warnings.into_iter().map(Finding::Warning)),
        Err(e) => out.push(Finding::Error(e.to_string())),
    }
    if let Some(problem) = units_blocked(tree) {
        out.push(Finding::Error(problem));
    }
    if let Some(problem) = nixos.declared_wsl_conf_problem(tree) {
        out.push(Finding::Error(problem));
    }
    // The mode the archive boots in now (packer's /etc/wsl.conf) against the declared one.
    if let Ok(Some((text, _))) = read_through_links(tree, b"etc/wsl.conf") {
        let native = wsl_conf::Reading::of(&text)
            .value("boot.systemd")
            .and_then(|(v, _)| wsl_conf::parse_bool(v))
            .unwrap_or(false);
        out.extend(
            nixos
                .declared_mode_problem(tree, native)
                .map(Finding::Error),
        );
    }
    out
}

/// Files `packer check` keeps the content of while reading an archive, beyond the few it
/// always reads, so that [`findings`] can follow links into the store: activate scripts,
/// users files, and the `/etc` files NixOS links there.
pub fn wants_content(path: &[u8]) -> bool {
    let Some(rest) = path.strip_prefix(b"nix/store/") else {
        return path == b"etc/os-release" || path == b"etc/nixos-wsl/init.conf";
    };
    let depth = rest.iter().filter(|&&c| c == b'/').count();
    let name = rest.rsplit(|&c| c == b'/').next().unwrap_or(rest);
    (depth == 1 && (name == b"activate" || name == b"spec.json" || name == b"users-groups.json"))
        || (depth == 0 && name.ends_with(b".json"))
        || [&b"wsl.conf"[..], b"init.conf", b"os-release"]
            .iter()
            .any(|n| name.ends_with(n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::{dir_entry, file_entry, link_entry, Entry, MemoryTree};

    const SYSTEM: &str = "nix/store/0123456789abcdfghijklmnpqrsvwxyz-nixos-system-nixos-25.05";
    const USERS: &str = "nix/store/zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz-users-groups.json";

    /// A bare make-system-tarball tree: a store, a registration, no /etc, no profile.
    fn bare(users_json: &str) -> Vec<Entry> {
        vec![
            dir_entry(""),
            file_entry("nix-path-registration", "x"),
            dir_entry("nix"),
            dir_entry("nix/store"),
            dir_entry(SYSTEM),
            file_entry(
                &format!("{SYSTEM}/activate"),
                &format!("#!/bin/sh\nperl -w /nix/store/abc-update-users-groups.pl /{USERS}\n"),
            ),
            link_entry(&format!("{SYSTEM}/etc"), "/nix/store/eeee-etc/etc"),
            dir_entry("nix/store/eeee-etc"),
            dir_entry("nix/store/eeee-etc/etc"),
            link_entry(
                "nix/store/eeee-etc/etc/wsl.conf",
                "/nix/store/ffff-etc-wsl.conf",
            ),
            file_entry(
                "nix/store/ffff-etc-wsl.conf",
                "[user]\ndefault=root\n[boot]\nsystemd=true\n",
            ),
            file_entry(USERS, users_json),
        ]
    }

    #[test]
    fn a_bare_system_tarball_is_found_through_its_store() {
        let tree = MemoryTree(bare(
            r#"{"mutableUsers":true,"users":[{"name":"root","shell":"/usr/libexec/nixos-wsl/init"}],"groups":[]}"#,
        ));
        let nixos = detect(&tree).unwrap().expect("NixOS");
        assert_eq!(nixos.evidence, "/nix-path-registration");
        assert_eq!(nixos.found_by, "the only *-nixos-system-* in /nix/store");
        let system = nixos.system().expect("one system");
        assert_eq!(system.path, SYSTEM.as_bytes());
        assert_eq!(
            system.root_shell,
            RootShell::Init {
                spec: USERS.as_bytes().to_vec()
            }
        );
        assert_eq!(nixos.require_init_declared().unwrap(), Vec::<String>::new());
        let (wsl_conf, from) = nixos
            .etc_file(&tree, b"wsl.conf")
            .unwrap()
            .expect("declared");
        assert!(wsl_conf.starts_with(b"[user]\ndefault=root\n"));
        assert_eq!(from, b"nix/store/ffff-etc-wsl.conf");
        assert!(findings(&tree).is_empty(), "{:?}", findings(&tree));
    }

    #[test]
    fn a_stock_system_is_refused_with_the_way_out() {
        let tree = MemoryTree(bare(
            r#"{"users":[{"name":"root","shell":"/run/current-system/sw/bin/bash"}]}"#,
        ));
        let nixos = detect(&tree).unwrap().expect("NixOS");
        let err = nixos.require_init_declared().unwrap_err().to_string();
        assert!(err.starts_with(&format!("/{USERS}: the NixOS system /{SYSTEM} declares root's shell /run/current-system/sw/bin/bash")), "{err}");
        assert!(
            err.contains("nixosModules.default") && err.contains(paths::INIT),
            "{err}"
        );
        assert!(
            matches!(&findings(&tree)[..], [Finding::Error(e)] if e.contains("declares root's shell"))
        );
    }

    #[test]
    fn the_toolkits_spec_json_and_a_profile_are_read_too() {
        let mut entries = bare("");
        entries.retain(|(p, _, _)| p != USERS.as_bytes() && p != b"nix-path-registration");
        entries.extend([
            dir_entry("etc"),
            file_entry("etc/NIXOS", ""),
            dir_entry("nix/var"),
            dir_entry("nix/var/nix"),
            dir_entry("nix/var/nix/profiles"),
            link_entry("nix/var/nix/profiles/system", "system-1-link"),
            link_entry("nix/var/nix/profiles/system-1-link", &format!("/{SYSTEM}")),
            file_entry(
                &format!("{SYSTEM}/spec.json"),
                r#"{"mutableUsers":false,"users":{"root":{"uid":0,"shell":null},"nixos":{"uid":1000}},"groups":{}}"#,
            ),
            // A second system in the store does not matter: the profile says which one boots.
            dir_entry("nix/store/1111-nixos-system-old"),
            file_entry("nix/store/1111-nixos-system-old/activate", ""),
        ]);
        let tree = MemoryTree(entries);
        let nixos = detect(&tree).unwrap().expect("NixOS");
        assert_eq!(nixos.evidence, "/etc/NIXOS");
        assert_eq!(nixos.found_by, "/nix/var/nix/profiles/system");
        assert!(matches!(
            nixos.system().map(|s| &s.root_shell),
            Some(RootShell::Kept { .. })
        ));
    }

    #[test]
    fn undeclared_users_and_several_systems_only_warn() {
        let tree = MemoryTree(vec![
            dir_entry(""),
            dir_entry("etc"),
            link_entry("etc/os-release", "/etc/static/os-release"),
            link_entry("etc/static", "/nix/store/eeee-etc/etc"),
            dir_entry("nix"),
            dir_entry("nix/store"),
            dir_entry("nix/store/eeee-etc"),
            dir_entry("nix/store/eeee-etc/etc"),
            file_entry(
                "nix/store/eeee-etc/etc/os-release",
                "NAME=NixOS\nID=nixos\n",
            ),
            dir_entry("nix/store/1111-nixos-system-a"),
            file_entry(
                "nix/store/1111-nixos-system-a/activate",
                "echo no users here\n",
            ),
            dir_entry("nix/store/2222-nixos-system-b"),
            file_entry(
                "nix/store/2222-nixos-system-b/activate",
                "update-users-groups.pl $spec\n",
            ),
        ]);
        let nixos = detect(&tree).unwrap().expect("NixOS");
        assert_eq!(nixos.evidence, "/etc/os-release (ID=nixos)");
        assert_eq!(nixos.systems.len(), 2);
        let warnings = nixos.require_init_declared().unwrap();
        assert!(warnings[0].contains("names no users file"), "{warnings:?}");
        assert!(
            warnings[1].contains("cannot find the users file"),
            "{warnings:?}"
        );
        assert!(detect(&MemoryTree(vec![
            dir_entry(""),
            dir_entry("nix"),
            dir_entry("nix/store")
        ]))
        .unwrap()
        .is_none());
    }

    #[test]
    fn a_real_systemd_system_directory_and_a_declared_wsl_conf_are_reported() {
        let mut entries = bare(r#"{"users":[{"name":"root","shell":null}]}"#);
        entries.retain(|(p, _, _)| p != b"nix/store/ffff-etc-wsl.conf");
        entries.extend([
            file_entry("nix/store/ffff-etc-wsl.conf", "[User]\nDefault=nixos\n"),
            dir_entry("etc"),
            dir_entry("etc/systemd"),
            dir_entry("etc/systemd/system"),
        ]);
        let all = findings(&MemoryTree(entries));
        assert_eq!(all.len(), 2, "{all:?}");
        assert!(matches!(&all[0], Finding::Error(e) if e.contains("blocks NixOS's link")));
        assert!(matches!(&all[1], Finding::Error(e) if e.contains("default user \"nixos\"")));
    }

    /// The bare system with its declared wsl.conf replaced by `wsl_conf`.
    fn bare_declaring(users_json: &str, wsl_conf: &str) -> MemoryTree {
        let mut entries = bare(users_json);
        entries.retain(|(p, _, _)| p != b"nix/store/ffff-etc-wsl.conf");
        entries.push(file_entry("nix/store/ffff-etc-wsl.conf", wsl_conf));
        MemoryTree(entries)
    }

    #[test]
    fn a_native_wsl_conf_naming_a_user_whose_shell_is_init_is_accepted() {
        let init_user = r#"{"users":[{"name":"root","shell":"/usr/libexec/nixos-wsl/init"},{"name":"nixos","shell":"/usr/libexec/nixos-wsl/init"}]}"#;
        let bash_user = r#"{"users":[{"name":"root","shell":"/usr/libexec/nixos-wsl/init"},{"name":"nixos","shell":"/run/current-system/sw/bin/bash"}]}"#;
        let native = "[boot]\nsystemd=true\n[user]\ndefault=nixos\n";
        let wrapper = "[boot]\nsystemd=false\n[user]\ndefault=nixos\n";
        let accepted = |users: &str, conf: &str| {
            let tree = bare_declaring(users, conf);
            let nixos = detect(&tree).unwrap().expect("NixOS");
            (
                nixos.declared_wsl_conf_problem(&tree),
                nixos.declared_default_user(&tree),
            )
        };
        assert_eq!(accepted(init_user, native), (None, Some("nixos".into())));
        // The user's shell is not init, or WSL's own systemd is off: sessions bypass init.
        for (users, conf) in [(bash_user, native), (init_user, wrapper)] {
            let (problem, user) = accepted(users, conf);
            assert!(
                problem
                    .as_deref()
                    .is_some_and(|p| p.contains("default user \"nixos\"")),
                "{users} {conf}: {problem:?}"
            );
            assert_eq!(user, None);
        }
        // Root is no declared default user of its own.
        assert_eq!(
            accepted(init_user, "[boot]\nsystemd=true\n[user]\ndefault=root\n"),
            (None, None)
        );
    }

    #[test]
    fn a_mode_other_than_the_declared_one_is_reported() {
        // The bare system declares [boot] systemd=true (native).
        let tree = MemoryTree(bare(r#"{"users":[{"name":"root","shell":null}]}"#));
        let nixos = detect(&tree).unwrap().expect("NixOS");
        assert_eq!(nixos.declared_mode_problem(&tree, true), None);
        let problem = nixos
            .declared_mode_problem(&tree, false)
            .expect("wrapper is not what it declares");
        assert!(
            problem.starts_with("/nix/store/0123456789abcdfghijklmnpqrsvwxyz-nixos-system-nixos-25.05/etc/wsl.conf: the system declares the native systemd mode")
                && problem.contains("wsl.systemd = \"wrapper\"")
                && problem.contains("--systemd native"),
            "{problem}"
        );

        // packer check: the archive's /etc/wsl.conf boots wrapper mode, the declared one native.
        let mut entries = bare(r#"{"users":[{"name":"root","shell":null}]}"#);
        entries.extend([
            dir_entry("etc"),
            file_entry("etc/wsl.conf", "[user]\ndefault=root\n"),
        ]);
        let all = findings(&MemoryTree(entries.clone()));
        assert!(
            matches!(&all[..], [Finding::Error(e)] if e.contains("declares the native systemd mode")),
            "{all:?}"
        );
        entries.retain(|(p, _, _)| p != b"etc/wsl.conf");
        entries.push(file_entry(
            "etc/wsl.conf",
            "[boot]\nsystemd=TRUE\n[user]\ndefault=root\n",
        ));
        assert!(findings(&MemoryTree(entries)).is_empty());
    }

    #[test]
    fn check_keeps_what_the_nixos_checks_read() {
        for yes in [
            "nix/store/abc-users-groups.json",
            "nix/store/abc-nixos-system-x/activate",
            "nix/store/abc-nixos-system-x/spec.json",
            "nix/store/abc-etc-wsl.conf",
            "nix/store/abc-etc/etc/nixos-wsl/init.conf",
            "etc/os-release",
        ] {
            assert!(wants_content(yes.as_bytes()), "{yes}");
        }
        for no in [
            "nix/store/abc-x/lib/data.json",
            "nix/store/abc-x/bin/bash",
            "usr/bin/x",
        ] {
            assert!(!wants_content(no.as_bytes()), "{no}");
        }
    }
}
