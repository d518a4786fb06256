//! `packer check ARCHIVE`: what `wsl --import` or Microsoft's distribution validator rejects
//! (errors: exit 1) or warns about (warnings: exit 0).

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;
use std::process::ExitCode;

use wsl_common::paths;
use wsl_common::units::masked_outside_nixos;

use crate::arch::Arch;
use crate::edits::MAX_ICON;
use crate::entry::{display, join, normalize, parent};
use crate::error::Error;
use crate::header::BLOCK;
use crate::nixos;
use crate::placement::read_through_links;
use crate::source_tar::{compression, read_up_to};
use crate::tar_head::{self, Start};
use crate::tree::{resolve, Lookup, Node, NodeKind};
use crate::validator;
use crate::wsl_conf::{self, Finding};
use crate::xattr::unwanted;

/// Config files whose content the checks read.
const READ_FILES: &[&[u8]] = &[
    b"etc/passwd",
    b"etc/shadow",
    b"etc/wsl.conf",
    b"etc/wsl-distribution.conf",
    b"etc/nixos-wsl/first-boot-account",
];

struct Seen {
    node: Node,
    size: u64,
    /// The first bytes of a regular file (enough for the ELF header's machine field).
    head: Vec<u8>,
    content: Option<Vec<u8>>,
}

#[derive(Default)]
struct Report {
    errors: Vec<String>,
    warnings: Vec<String>,
}

impl Report {
    fn error(&mut self, text: String) {
        self.errors.push(text);
    }
    fn warn(&mut self, text: String) {
        self.warnings.push(text);
    }
    fn add(&mut self, findings: Vec<validator::Finding>) {
        for finding in findings {
            match finding {
                validator::Finding::Error(text) => self.error(text),
                validator::Finding::Warning(text) => self.warn(text),
            }
        }
    }
}

struct Archive(HashMap<Vec<u8>, Seen>);

impl Lookup for Archive {
    fn node(&self, path: &[u8]) -> Option<Node> {
        self.0.get(path).map(|s| s.node.clone())
    }
    fn read_small(&self, path: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.0.get(path).and_then(|s| s.content.clone()))
    }
    fn children(&self, path: &[u8]) -> Vec<Vec<u8>> {
        let mut names: Vec<Vec<u8>> = self
            .0
            .keys()
            .filter(|p| !p.is_empty() && crate::entry::parent(p) == Some(path))
            .map(|p| p.rsplit(|&c| c == b'/').next().unwrap_or(p).to_vec())
            .collect();
        names.sort_unstable();
        names
    }
}

pub fn run(path: &Path, arch: Option<Arch>) -> Result<ExitCode, Error> {
    let report = check(path, arch)?;
    for warning in &report.warnings {
        println!("warning: {warning}");
    }
    for error in &report.errors {
        println!("error: {error}");
    }
    println!(
        "{}: {} errors, {} warnings",
        path.display(),
        report.errors.len(),
        report.warnings.len()
    );
    Ok(if report.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn check(path: &Path, arch: Option<Arch>) -> Result<Report, Error> {
    let mut report = Report::default();
    let mut file = File::open(path).map_err(|e| Error::read_path(path, e))?;
    let mut magic = [0u8; 6];
    let got = read_up_to(&mut file, &mut magic).map_err(|e| Error::read_path(path, e))?;
    drop(file);
    let file = BufReader::with_capacity(
        1 << 20,
        File::open(path).map_err(|e| Error::read_path(path, e))?,
    );
    let reader: Box<dyn Read> = match compression(&magic[..got]) {
        Some("gzip") => Box::new(flate2::read::MultiGzDecoder::new(file)),
        Some(other) => {
            report.error(format!(
                "compressed with {other}: gzip is the only compression every WSL version imports"
            ));
            return Ok(report);
        }
        None => {
            report.warn("not compressed: WSL imports it, but gzip makes it much smaller".into());
            Box::new(file)
        }
    };
    let reader = skip_volume_label(path, reader, &mut report)?;
    let archive = read_entries(path, reader, &mut report)?;
    check_tree(&archive, &mut report, arch);
    Ok(report)
}

/// Looks at the first header: random data is reported plainly (the tar crate would quote its
/// bytes); a GNU volume label (`tar -V`), which the tar crate cannot parse, is skipped as
/// bsdtar skips it.
fn skip_volume_label(
    path: &Path,
    mut reader: Box<dyn Read>,
    report: &mut Report,
) -> Result<Box<dyn Read>, Error> {
    let mut block = vec![0u8; BLOCK];
    let got = read_up_to(&mut reader, &mut block)
        .map_err(|e| Error::bad_archive(path, format!("the compressed data is damaged ({e})")))?;
    block.truncate(got);
    match tar_head::inspect(&block).map_err(|problem| Error::bad_archive(path, problem))? {
        Start::VolumeLabel(label) => {
            report.warn(format!(
                "the archive starts with the GNU volume label {label:?}: bsdtar skips it, and so does this check"
            ));
            Ok(reader)
        }
        Start::Empty | Start::Header => Ok(Box::new(io::Cursor::new(block).chain(reader))),
    }
}

fn read_entries(path: &Path, reader: Box<dyn Read>, report: &mut Report) -> Result<Archive, Error> {
    let bad = |e: &dyn std::fmt::Display| Error::bad_archive(path, e);
    let mut seen = HashMap::new();
    let mut tar = tar::Archive::new(reader);
    let mut hard_links = 0;
    let mut dumpdirs = 0;
    for entry in tar.entries().map_err(|e| bad(&e))? {
        let mut entry = entry.map_err(|e| bad(&e))?;
        let header = entry.header().clone();
        let entry_type = header.entry_type();
        if entry_type == tar::EntryType::XGlobalHeader {
            continue;
        }
        let name = entry.path_bytes().into_owned();
        let Some(rel) = normalize(&name) else {
            report.error(format!(
                "{} climbs out of the root",
                String::from_utf8_lossy(&name)
            ));
            continue;
        };
        let shown = display(&rel);
        if let Some(pax) = entry.pax_extensions().map_err(|e| bad(&e))? {
            for ext in pax.flatten() {
                let key = ext.key_bytes();
                if let Some(attr) = key.strip_prefix(b"SCHILY.xattr.") {
                    if let Some(what) = unwanted(attr) {
                        report.warn(format!(
                            "{shown} carries the {what} xattr {}",
                            String::from_utf8_lossy(attr)
                        ));
                    }
                } else if key.starts_with(b"GNU.sparse") {
                    report.error(format!("{shown} is a sparse entry"));
                }
            }
        }
        let link = entry
            .link_name_bytes()
            .map(|l| l.into_owned())
            .unwrap_or_default();
        let kind = match entry_type {
            tar::EntryType::Regular | tar::EntryType::Continuous => NodeKind::File,
            tar::EntryType::Directory => NodeKind::Dir,
            tar::EntryType::Symlink => NodeKind::Symlink(link),
            tar::EntryType::Link => {
                hard_links += 1;
                if hard_links <= 10 {
                    report.error(format!(
                        "{shown} is a hard link (to {}): WSL's import fails on hard links",
                        normalize(&link).map_or_else(
                            || format!(
                                "{}, which climbs out of the root",
                                String::from_utf8_lossy(&link)
                            ),
                            |target| display(&target)
                        )
                    ));
                }
                NodeKind::Other
            }
            // A GNU incremental archive's directory (`tar --listed-incremental`), whose data
            // lists the names it held: bsdtar extracts it as a directory.
            other if other.as_byte() == b'D' => {
                dumpdirs += 1;
                NodeKind::Dir
            }
            tar::EntryType::GNUSparse => {
                report.error(format!("{shown} is a sparse entry"));
                NodeKind::File
            }
            _ => NodeKind::Other,
        };
        let node = Node {
            kind,
            mode: header.mode().unwrap_or(0) & 0o7777,
            uid: header.uid().unwrap_or(u64::MAX),
            gid: header.gid().unwrap_or(u64::MAX),
            mtime: 0,
        };
        let size = entry.size();
        let mut head = Vec::new();
        let mut content = None;
        if node.kind == NodeKind::File {
            if READ_FILES.contains(&&rel[..]) || nixos::wants_content(&rel) {
                let mut data = Vec::new();
                (&mut entry)
                    .take(1 << 20)
                    .read_to_end(&mut data)
                    .map_err(|e| bad(&e))?;
                head = data.iter().take(20).copied().collect();
                content = Some(data);
            } else {
                (&mut entry)
                    .take(20)
                    .read_to_end(&mut head)
                    .map_err(|e| bad(&e))?;
            }
        }
        if rel.starts_with(b"boot/vmlinuz")
            || rel.starts_with(b"boot/initrd")
            || rel.starts_with(b"boot/initramfs")
        {
            report.warn(format!(
                "{shown}: WSL boots its own kernel; a kernel or initramfs is dead weight"
            ));
        }
        seen.insert(
            rel,
            Seen {
                node,
                size,
                head,
                content,
            },
        );
    }
    if hard_links > 10 {
        report.error(format!("... and {} more hard links", hard_links - 10));
    }
    if dumpdirs > 0 {
        report.warn(format!(
            "a GNU incremental archive (tar --listed-incremental): its {dumpdirs} dumpdir entries are read as directories, as bsdtar reads them; a plain tar is the safer input"
        ));
    }
    Ok(Archive(seen))
}

fn check_tree(archive: &Archive, report: &mut Report, arch: Option<Arch>) {
    // Looked at once: it scans the store for systems.
    let is_nixos = matches!(nixos::detect(archive), Ok(Some(_)));
    // /etc/shadow may belong to a `shadow` group (Debian); the others must be root:root.
    let root_file = |report: &mut Report, path: &[u8], modes: &[u32]| -> Option<&Seen> {
        let seen = archive.0.get(path)?;
        let group_ok = seen.node.gid == 0 || path == b"etc/shadow";
        if seen.node.kind != NodeKind::File {
            report.error(format!("{} is not a regular file", display(path)));
        } else if seen.node.uid != 0 || !group_ok || !modes.contains(&seen.node.mode) {
            report.error(format!(
                "{} is owned by {}:{} with mode {:04o}; WSL wants root:root and {}",
                display(path),
                seen.node.uid,
                seen.node.gid,
                seen.node.mode,
                modes
                    .iter()
                    .map(|m| format!("{m:04o}"))
                    .collect::<Vec<_>>()
                    .join(" or ")
            ));
        }
        Some(seen)
    };

    if !matches!(
        resolve(archive, b"etc")
            .and_then(|p| archive.node(&p))
            .map(|n| n.kind),
        Some(NodeKind::Dir)
    ) {
        report.error(
            "there is no /etc directory: WSL does not take it for a Linux distribution".into(),
        );
    }
    // The archive's architecture: `--arch` (the validator's `--arm64`), else /bin/sh's.
    let arch = arch.or_else(|| {
        resolve(archive, b"bin/sh")
            .and_then(|p| archive.0.get(&p))
            .and_then(|seen| Arch::of_elf(&seen.head))
    });
    let elf = ElfRule {
        modes: &[0o755, 0o775, 0o555],
        arch,
    };
    check_elf(archive, report, b"bin/sh", "/bin/sh", &elf, true);
    // Optional for the validator, checked when present (validate-modern.py, `/bin/bash`).
    if resolve(archive, b"bin/bash").is_some_and(|p| archive.0.contains_key(&p)) {
        check_elf(archive, report, b"bin/bash", "/bin/bash", &elf, true);
    }
    // init is root's shell: of another architecture WSL cannot run it.
    let init = paths::INIT.trim_start_matches('/').as_bytes();
    if archive.0.contains_key(init) {
        check_elf(archive, report, init, paths::INIT, &elf, true);
    }

    match root_file(report, b"etc/passwd", &[0o644]) {
        Some(passwd) => {
            let text =
                String::from_utf8_lossy(passwd.content.as_deref().unwrap_or_default()).into_owned();
            let root = text
                .lines()
                .map(|l| l.split(':').collect::<Vec<_>>())
                .find(|f| f.len() == 7 && f[2] == "0");
            match root {
                Some(fields) if fields[0] == "root" => {}
                Some(fields) => report.error(format!(
                    "/etc/passwd: uid 0 is named {:?}, not root",
                    fields[0]
                )),
                None => report.error("/etc/passwd has no user with uid 0".into()),
            }
        }
        None => report.warn("there is no /etc/passwd".into()),
    }
    if let Some(shadow) = root_file(report, b"etc/shadow", &[0o640, 0o600, 0]) {
        let text =
            String::from_utf8_lossy(shadow.content.as_deref().unwrap_or_default()).into_owned();
        for fields in text.lines().map(|l| l.split(':').collect::<Vec<_>>()) {
            if fields.len() > 1 && fields[1].starts_with('$') {
                report.error(format!(
                    "/etc/shadow holds a password hash for {}",
                    fields[0]
                ));
            }
        }
    }

    let systemd = check_wsl_conf(archive, report, &root_file);
    // validate-modern.py reads every `[user] default` line with configparser.
    if let Ok(Some((text, _))) = read_through_links(archive, b"etc/wsl.conf") {
        if let Some((_, _, user)) = ini(&text)
            .into_iter()
            .find(|(s, k, _)| s == "user" && k.eq_ignore_ascii_case("default"))
        {
            report.warn(format!(
                "/etc/wsl.conf sets [user] default={user}, which Microsoft's validator discourages (it expects an OOBE command to create the user and oobe.defaultUid to name it; a tree that ships its user needs the key in native mode, and the shell-wrapper mode needs WSL to start root)"
            ));
        }
    }
    if systemd {
        check_elf(
            archive,
            report,
            b"sbin/init",
            "/sbin/init (systemd is on in /etc/wsl.conf)",
            &elf,
            false,
        );
        // What WSL's native boot runs from the tree, as packer warns when it writes one. Not
        // on NixOS, whose /bin appears at activation.
        if !is_nixos {
            for missing in crate::edits::native_boot_missing(archive) {
                report.warn(missing);
            }
        }
    }

    let passwd_text = archive
        .0
        .get(&b"etc/passwd"[..])
        .and_then(|s| s.content.clone());
    if let Some(conf) = root_file(report, b"etc/wsl-distribution.conf", &[0o644]) {
        let settings = ini(conf.content.as_deref().unwrap_or_default());
        for (section, key, value) in &settings {
            if !KNOWN_DISTRIBUTION_CONF.contains(&(section.as_str(), key.as_str())) {
                report.error(format!(
                    "/etc/wsl-distribution.conf: unknown key {section}.{key}"
                ));
            }
            if section == "shortcut" && key == "icon" {
                check_icon(archive, report, value);
            }
        }
        report.add(validator::distribution_conf(
            archive,
            &settings,
            passwd_text.as_deref(),
        ));
        if !is_nixos {
            check_default_uid_user(archive, report, &settings, passwd_text.as_deref());
        }
    }
    if let Some(text) = &passwd_text {
        report.add(validator::passwd(text));
    }
    report.add(validator::enabled_discouraged_units(archive));
    // validate-modern.py's `validate_mode('/etc/wsl-distribution.conf', ...)` is not optional.
    if resolve(archive, b"etc/wsl-distribution.conf").is_none_or(|p| !archive.0.contains_key(&p)) {
        report.error(
            "there is no /etc/wsl-distribution.conf: WSL imports the archive without one, but Microsoft's validator requires it".into(),
        );
    }

    check_under_symlinks(archive, report);
    if archive.node(b"etc/resolv.conf").is_some() {
        report.warn("/etc/resolv.conf is shipped: WSL writes its own (generateResolvConf)".into());
    }
    // On NixOS the masks are init's (systemd.mask= on systemd's command line), not links.
    if !is_nixos {
        check_units(archive, report);
    }
    check_nixos(archive, report);
}

/// `oobe.defaultUid` must name someone by the time WSL looks it up (getpwuid per session,
/// init.cpp:1004-1032, falling back to root): a user the OOBE command creates, init's
/// first-boot account, or (with the validator's warning) one in /etc/passwd. Not called on
/// NixOS, whose activation makes the declared users.
fn check_default_uid_user(
    archive: &Archive,
    report: &mut Report,
    settings: &[(String, String, String)],
    passwd: Option<&[u8]>,
) {
    let get = |key: &str| {
        settings
            .iter()
            .find(|(s, k, _)| s == "oobe" && k.eq_ignore_ascii_case(key))
            .map(|(_, _, v)| v.as_str())
    };
    let Some(uid) = get("defaultUid") else { return };
    if get("command").is_some() {
        return;
    }
    let has_uid = |text: Option<&[u8]>| text.is_some_and(|t| validator::has_uid(t, uid));
    let account = archive
        .0
        .get(&b"etc/nixos-wsl/first-boot-account"[..])
        .and_then(|s| s.content.as_deref());
    if !has_uid(passwd) && !has_uid(account) {
        report.warn(format!(
            "oobe.defaultUid {uid} names no user: none in /etc/passwd or {}, and no oobe.command to create one, so WSL starts root after the OOBE",
            wsl_common::paths::FIRST_BOOT_ACCOUNT
        ));
    }
}

type RootFile<'a> = dyn Fn(&mut Report, &[u8], &[u32]) -> Option<&'a Seen> + 'a;

/// `/etc/wsl.conf` as WSL reads it ([`wsl_conf`]): lines WSL never reads, duplicate and
/// unknown keys, bad values, and WSL starting someone other than root while init is root's
/// shell. Returns whether WSL boots systemd (`boot.systemd` as WSL reads it).
fn check_wsl_conf(archive: &Archive, report: &mut Report, root_file: &RootFile<'_>) -> bool {
    let path = b"etc/wsl.conf";
    let text = match archive.node(path).map(|n| n.kind) {
        None => return false,
        Some(NodeKind::Symlink(target)) => {
            // WSL's init reads it after the chroot, through the link
            // (WslDistributionConfig.cpp:67-68); its mini_init reads boot.systemd before the
            // chroot, from /distro/etc/wsl.conf (main.cpp:2247-2256), where an absolute link
            // leads outside the tree: the per-distribution cgroup setup for systemd
            // (main.cpp:2278-2284) is then skipped.
            let Ok(Some((text, real))) = read_through_links(archive, path) else {
                report.error(format!(
                    "/etc/wsl.conf is a symlink to {}, which is not a file in the archive",
                    String::from_utf8_lossy(&target)
                ));
                return false;
            };
            if target.starts_with(b"/") {
                report.warn(format!(
                    "/etc/wsl.conf is an absolute symlink ({}): WSL's mini_init reads boot.systemd through it before entering the tree, misses it, and skips systemd's cgroup setup (a copied file, e.g. NixOS environment.etc.\"wsl.conf\".mode = \"0644\", avoids that)",
                    String::from_utf8_lossy(&target)
                ));
            }
            if let Some(seen) = archive.0.get(&real) {
                if seen.node.uid != 0
                    || seen.node.gid != 0
                    || ![0o644, 0o664, 0o444].contains(&seen.node.mode)
                {
                    report.warn(format!(
                        "/etc/wsl.conf (-> {}) is owned by {}:{} with mode {:04o}; Microsoft's validator wants root:root 0644 or 0664",
                        display(&real), seen.node.uid, seen.node.gid, seen.node.mode
                    ));
                }
            }
            text
        }
        Some(_) => match root_file(report, path, &[0o644]) {
            Some(seen) => seen.content.clone().unwrap_or_default(),
            None => return false,
        },
    };
    let root_shell = archive
        .0
        .get(&b"etc/passwd"[..])
        .and_then(|s| s.content.as_deref())
        .and_then(|passwd| {
            String::from_utf8_lossy(passwd).lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() == 7 && f[0] == "root").then(|| f[6].to_owned())
            })
        });
    let init_is_root_shell = root_shell.is_some_and(|s| nixos::is_init(archive, &s));
    for finding in wsl_conf::findings(&text, init_is_root_shell) {
        match finding {
            Finding::Error(e) => report.error(e),
            Finding::Warning(w) => report.warn(w),
        }
    }
    wsl_conf::Reading::of(&text)
        .value("boot.systemd")
        .and_then(|(v, _)| wsl_conf::parse_bool(v))
        == Some(true)
}

/// A NixOS archive ([`nixos::findings`]): a system whose activation replaces init as root's
/// shell, a real `/etc/systemd/system`, a declared wsl.conf that does not start root.
fn check_nixos(archive: &Archive, report: &mut Report) {
    for finding in nixos::findings(archive) {
        match finding {
            Finding::Error(e) => report.error(e),
            Finding::Warning(w) => report.warn(w),
        }
    }
}

/// An entry below a symlink of the archive: WSL's bsdtar stops there ("Cannot extract
/// through symlink") and the installer refuses the payload.
fn check_under_symlinks(archive: &Archive, report: &mut Report) {
    let mut paths: Vec<&Vec<u8>> = archive.0.keys().collect();
    paths.sort();
    let mut found = 0;
    for path in paths {
        let mut at = &path[..];
        while let Some(up) = parent(at) {
            at = up;
            if let Some(NodeKind::Symlink(_)) = archive.0.get(at).map(|s| &s.node.kind) {
                found += 1;
                if found <= 10 {
                    report.error(format!(
                        "{} lies under {}, a symlink in the archive: WSL's import (bsdtar) refuses it: Cannot extract through symlink",
                        display(path),
                        display(at)
                    ));
                }
                break;
            }
        }
    }
    if found > 10 {
        report.error(format!(
            "... and {} more entries under symlinks",
            found - 10
        ));
    }
}

/// What an executable WSL runs must be: one of these modes, of the archive's architecture.
struct ElfRule<'a> {
    modes: &'a [u32],
    arch: Option<Arch>,
}

fn check_elf(
    archive: &Archive,
    report: &mut Report,
    path: &[u8],
    what: &str,
    rule: &ElfRule<'_>,
    required: bool,
) {
    let Some(target) = resolve(archive, path).filter(|p| archive.0.contains_key(p)) else {
        if required {
            report.error(format!("{what} is missing (WSL and its OOBE need it)"));
        } else {
            report.error(format!("{what} is missing"));
        }
        return;
    };
    let seen = &archive.0[&target];
    let shown = if target == path {
        what.to_owned()
    } else {
        format!("{what} (-> {})", display(&target))
    };
    if seen.node.kind != NodeKind::File {
        report.error(format!("{shown} is not a regular file"));
    } else if !seen.head.starts_with(b"\x7fELF") {
        report.error(format!("{shown} is not an ELF executable"));
    } else if !rule.modes.contains(&seen.node.mode) {
        report.error(format!(
            "{shown} has mode {:04o}; WSL wants 0755, 0775 or 0555",
            seen.node.mode
        ));
    } else if path == b"sbin/init" && (seen.node.uid != 0 || seen.node.gid != 0) {
        report.error(format!("{shown} is not owned by root"));
    } else if let Some(arch) = rule.arch {
        // The validator's magic check (validate-modern.py, X64_ELF_MAGIC / ARM64_ELF_MAGIC).
        if Arch::of_elf(&seen.head) != Some(arch) {
            report.error(format!(
                "{shown} is {}, but the archive is {arch} (WSL cannot run it)",
                Arch::describe_elf(&seen.head)
            ));
        }
    } else if Arch::of_elf(&seen.head).is_none() {
        report.warn(format!(
            "{shown} is an ELF for neither x86-64 nor aarch64 ({})",
            Arch::describe_elf(&seen.head)
        ));
    }
}

fn check_icon(archive: &Archive, report: &mut Report, icon: &str) {
    if icon.split('/').any(|c| c == "..") {
        report.error(format!(
            "/etc/wsl-distribution.conf: the icon path {icon} contains '..'"
        ));
        return;
    }
    match resolve(archive, icon.as_bytes()).and_then(|p| archive.0.get(&p)) {
        Some(seen) if seen.size > MAX_ICON => report.error(format!(
            "the icon {icon} is {} bytes; WSL reads at most {MAX_ICON}",
            seen.size
        )),
        Some(_) => {}
        None => report.error(format!(
            "the icon {icon} named in /etc/wsl-distribution.conf is not in the archive"
        )),
    }
}

/// A unit that fights WSL is enabled when some `*.wants`/`*.requires` folder of
/// /etc/systemd/system links it and it is not masked.
fn check_units(archive: &Archive, report: &mut Report) {
    let system = b"etc/systemd/system";
    for unit in masked_outside_nixos() {
        let masked = matches!(
            archive.node(&join(system, unit.name.as_bytes())).map(|n| n.kind),
            Some(NodeKind::Symlink(target)) if target == b"/dev/null"
        );
        if masked {
            continue;
        }
        let enabled = archive.0.keys().any(|path| {
            path.strip_prefix(&system[..])
                .and_then(|rest| rest.strip_prefix(b"/"))
                .and_then(|rest| {
                    rest.split(|&c| c == b'/')
                        .collect::<Vec<_>>()
                        .try_into()
                        .ok()
                })
                .is_some_and(|[dir, name]: [&[u8]; 2]| {
                    (dir.ends_with(b".wants") || dir.ends_with(b".requires"))
                        && name == unit.name.as_bytes()
                })
        });
        if enabled {
            report.warn(format!(
                "{} is enabled but fights WSL: {}",
                unit.name, unit.reason
            ));
        }
    }
}

const KNOWN_DISTRIBUTION_CONF: &[(&str, &str)] = &[
    ("oobe", "command"),
    ("oobe", "defaultUid"),
    ("oobe", "defaultName"),
    ("shortcut", "icon"),
    ("shortcut", "enabled"),
    ("windowsterminal", "profileTemplate"),
    ("windowsterminal", "enabled"),
];

/// `(section, key, value)` of an ini-style file; comments and blank lines skipped.
fn ini(text: &[u8]) -> Vec<(String, String, String)> {
    let mut section = String::new();
    let mut out = Vec::new();
    for line in String::from_utf8_lossy(text).lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if line.starts_with('[') {
            section = line
                .trim_matches(|c| c == '[' || c == ']')
                .trim()
                .to_owned();
        } else if let Some((key, value)) = line.split_once('=') {
            out.push((
                section.clone(),
                key.trim().to_owned(),
                value.trim().trim_matches('"').to_owned(),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ini_reads_sections_keys_and_values() {
        assert_eq!(
            ini(b"# c\n[boot]\nsystemd = true\n\n[user]\ndefault=\"nixos\"\n"),
            vec![
                ("boot".into(), "systemd".into(), "true".into()),
                ("user".into(), "default".into(), "nixos".into())
            ]
        );
    }
}
