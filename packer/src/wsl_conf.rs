//! `/etc/wsl.conf` as WSL reads it, and the version packer writes.
//!
//! WSL parses the file with `ParseConfigFile` (microsoft/WSL `src/shared/configfile/configfile.cpp`,
//! commit 3e27a6a5), called with `CFG_SKIP_UNKNOWN_VALUES` only
//! (`src/linux/init/WslDistributionConfig.cpp:68`), so:
//! - a line is blank, a `#` comment, `[section]` or `key = value` (`configfile.cpp:362-446`);
//!   anything else (a `;` comment, `[ boot ]`, `key` without `=`) is invalid, and without
//!   `CFG_SKIP_INVALID_LINES` **the first invalid line ends the parse** (`:807-812`): what follows
//!   keeps WSL's defaults;
//! - section and key names are a letter then letters or digits (`isalpha`, `isalnum`:
//!   `:424`, `:448-561`, `:563-614`), matched against `section.key` in any case (`strcasecmp`,
//!   `:179`);
//! - a value runs to the end of the line or an unquoted `#`; `"` toggles quoting, `\\ \" \b \n \t`
//!   and a backslash-newline continuation are the escapes, any other escape or an unclosed quote
//!   makes the line invalid (`:657-781`); trailing blanks outside quotes are trimmed (`:800-801`);
//! - **the first of duplicate keys wins**: a later one only warns (`:187-198`), even when the
//!   first had a bad value;
//! - booleans are `1`, `0`, `true`, `false` in any case (`:62-73`, `ParseBool` in
//!   `src/shared/inc/stringshared.h:499-525`), integers `strtol(value, 0)` (`configfile.cpp:75-87`).
//!
//! The keys WSL knows are `WslDistributionConfig.cpp:25-60`; Microsoft's validator
//! (`distributions/validate-modern.py`, `WSL_CONF_KEYS`) knows fewer and rejects the others.

/// What the toolkit needs WSL to read, first in every wsl.conf packer writes: WSL must start
/// every session as root so that root's shell, init, runs; init then becomes the configured
/// user (`user` in /etc/nixos-wsl/init.conf).
pub const HEADER: &str = concat!(
    "# Written by packer (nixos-wsl): WSL starts every session as root so that init, root's shell,
# runs; init then becomes the user named in /etc/nixos-wsl/init.conf. These lines come first:
# WSL keeps the first of duplicate keys and stops reading at the first line it cannot parse.
# Lines below that WSL cannot parse or would ignore are kept as comments starting with #~.
",
    "[user]\ndefault=root\n\n"
);

/// [`HEADER`]'s comment, the wrapper mode's (its one setting follows).
const WRAPPER_COMMENT_LINES: usize = 4;

/// Marks a setting of packer's inside a section of the source: Microsoft's validator reads
/// wsl.conf with Python's configparser (validate-modern.py, `validate_config`:
/// `config.read_string`), which refuses a section that appears twice
/// (DuplicateSectionError), so a section the source has gets packer's setting in it, not a
/// second one in the header. The marked line goes again when packer's output is packed again.
const INSERTED_MARK: &str = "# packer (nixos-wsl): the next line is packer's";

/// How packer keeps a line WSL must not see: as a comment, text intact.
const COMMENTED: &str = "#~ ";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    Bool,
    Int,
    Text,
    Choice(&'static [&'static str]),
}

/// A key WSL reads, and whether Microsoft's validator accepts it.
#[derive(Debug, Clone, Copy)]
pub struct KnownKey {
    pub name: &'static str,
    pub kind: ValueKind,
    pub validator: bool,
}

const fn key(name: &'static str, kind: ValueKind, validator: bool) -> KnownKey {
    KnownKey {
        name,
        kind,
        validator,
    }
}

/// `WslDistributionConfig.cpp:25-60` with the types of `WslDistributionConfig.h:57-80`;
/// `validator` follows `WSL_CONF_KEYS` of `validate-modern.py`.
pub const KNOWN_KEYS: &[KnownKey] = &[
    key("automount.enabled", ValueKind::Bool, true),
    key("automount.root", ValueKind::Text, true),
    key("automount.options", ValueKind::Text, true),
    key("automount.mountFsTab", ValueKind::Bool, true),
    key("automount.ldconfig", ValueKind::Bool, true),
    key("automount.cgroups", ValueKind::Choice(&["v1", "v2"]), true),
    key("filesystem.umask", ValueKind::Int, true),
    key("interop.appendWindowsPath", ValueKind::Bool, true),
    key("interop.enabled", ValueKind::Bool, true),
    key("network.generateHosts", ValueKind::Bool, true),
    key("network.generateResolvConf", ValueKind::Bool, true),
    key("network.hostname", ValueKind::Text, true),
    key("time.useWindowsTimezone", ValueKind::Bool, true),
    key("fileServer.enabled", ValueKind::Bool, true),
    key("fileServer.logFile", ValueKind::Text, false),
    key("fileServer.logLevel", ValueKind::Int, false),
    key("fileServer.logTruncate", ValueKind::Bool, false),
    key("gpu.enabled", ValueKind::Bool, true),
    key("gpu.appendLibPath", ValueKind::Bool, true),
    key("user.default", ValueKind::Text, true),
    key("boot.command", ValueKind::Text, true),
    key("boot.systemd", ValueKind::Bool, true),
    key("boot.initTimeout", ValueKind::Int, false),
    key("boot.protectBinfmt", ValueKind::Bool, true),
    key("general.guiApplications", ValueKind::Bool, false),
];

pub fn known_key(name: &str) -> Option<&'static KnownKey> {
    KNOWN_KEYS
        .iter()
        .find(|k| k.name.eq_ignore_ascii_case(name))
}

/// One logical line: physical lines `first..=last` (1-based; more than one with a
/// backslash-newline continuation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub first: usize,
    pub last: usize,
    pub kind: LineKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineKind {
    Blank,
    Comment,
    Section(String),
    /// `name` is `section.key` as written (just `key` before any section).
    Setting {
        name: String,
        value: String,
        sectioned: bool,
    },
    /// WSL stops here; the text says why.
    Invalid(&'static str),
}

/// Every logical line, reading on past invalid lines as WSL would with
/// `CFG_SKIP_INVALID_LINES` (it skips to the end of the physical line, `configfile.cpp:814-825`).
/// What WSL itself reads is the part before the first [`LineKind::Invalid`].
pub fn lines(text: &[u8]) -> Vec<Line> {
    let mut cursor = Cursor {
        text,
        pos: 0,
        line: 1,
    };
    let mut section = String::new();
    let mut out = Vec::new();
    while cursor.peek().is_some() {
        let first = cursor.line;
        let kind = match cursor.logical_line(&section) {
            Ok(kind) => kind,
            Err(why) => {
                cursor.skip_line();
                LineKind::Invalid(why)
            }
        };
        if let LineKind::Section(name) = &kind {
            section.clone_from(name);
        }
        // A line ends after its newline; the last line of a file may have none.
        let last = if cursor.pos > 0 && text[cursor.pos - 1] == b'\n' {
            cursor.line - 1
        } else {
            cursor.line
        };
        out.push(Line {
            first,
            last: last.max(first),
            kind,
        });
    }
    out
}

struct Cursor<'a> {
    text: &'a [u8],
    pos: usize,
    line: usize,
}

fn is_hspace(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.text.get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.pos += 1;
        if c == b'\n' {
            self.line += 1;
        }
        Some(c)
    }

    fn skip_hspace(&mut self) {
        while self.peek().is_some_and(is_hspace) {
            self.bump();
        }
    }

    /// Consumes the rest of the physical line and its newline.
    fn skip_line(&mut self) {
        while let Some(c) = self.bump() {
            if c == b'\n' {
                break;
            }
        }
    }

    /// The end of a line: a newline, `\r\n`, a lone `\r` (WSL treats it as one,
    /// `configfile.cpp:367-381`) or the end of the file.
    fn end_of_line(&mut self) -> bool {
        match self.peek() {
            None => true,
            Some(b'\n') => {
                self.bump();
                true
            }
            Some(b'\r') => {
                self.bump();
                if self.peek() == Some(b'\n') {
                    self.bump();
                }
                true
            }
            _ => false,
        }
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek().filter(u8::is_ascii_alphanumeric) {
            name.push(char::from(c));
            self.bump();
        }
        name
    }

    fn logical_line(&mut self, section: &str) -> Result<LineKind, &'static str> {
        self.skip_hspace();
        if self.end_of_line() {
            return Ok(LineKind::Blank);
        }
        match self.peek() {
            Some(b'#') => {
                self.skip_line();
                Ok(LineKind::Comment)
            }
            Some(b'[') => {
                self.bump();
                if !self.peek().is_some_and(|c| c.is_ascii_alphabetic()) {
                    return Err("a section name starts with a letter, right after '['");
                }
                let name = self.name();
                if self.peek() != Some(b']') {
                    return Err("a section name is letters and digits, then ']'");
                }
                self.bump();
                self.skip_hspace();
                if self.peek() == Some(b'#') {
                    self.skip_line();
                } else if !self.end_of_line() {
                    return Err("nothing but a '#' comment may follow ']'");
                }
                Ok(LineKind::Section(name))
            }
            Some(c) if c.is_ascii_alphabetic() => self.setting(section),
            Some(b';') => Err("WSL's comments start with '#', not ';'"),
            _ => Err("a line must be blank, a '#' comment, [section] or key = value"),
        }
    }

    fn setting(&mut self, section: &str) -> Result<LineKind, &'static str> {
        let key = self.name();
        self.skip_hspace();
        if self.peek() != Some(b'=') {
            return Err("a key is letters and digits, then '='");
        }
        self.bump();
        self.skip_hspace();
        let mut value: Vec<u8> = Vec::new();
        let mut trimmed = 0;
        let mut quoted = false;
        while let Some(c) = self.peek().filter(|&c| c != b'\n' && c != b'\r') {
            self.bump();
            match c {
                b'"' => quoted = !quoted,
                b'\\' => match self.bump() {
                    Some(e @ (b'\\' | b'"')) => value.push(e),
                    Some(b'b') => value.push(8),
                    Some(b'n') => value.push(b'\n'),
                    Some(b't') => value.push(b'\t'),
                    Some(b'\n') => {}
                    _ => {
                        return Err(
                            "only \\\\ \\\" \\b \\n \\t and a line continuation are escapes",
                        )
                    }
                },
                b'#' if !quoted => {
                    self.skip_line();
                    break;
                }
                _ => value.push(c),
            }
            // WSL trims only what was a blank outside any escape or quote character.
            if !is_hspace(c) {
                trimmed = value.len();
            }
        }
        if quoted {
            return Err("a '\"' is not closed");
        }
        self.end_of_line();
        value.truncate(trimmed);
        let sectioned = !section.is_empty();
        Ok(LineKind::Setting {
            name: if sectioned {
                format!("{section}.{key}")
            } else {
                key
            },
            value: String::from_utf8_lossy(&value).into_owned(),
            sectioned,
        })
    }
}

/// What WSL makes of a file: the settings it applies, in order, each the first of its key.
#[derive(Debug, Default)]
pub struct Reading {
    pub lines: Vec<Line>,
    /// Index in `lines` of the line that ends WSL's parse.
    pub stop: Option<usize>,
}

impl Reading {
    pub fn of(text: &[u8]) -> Self {
        let lines = lines(text);
        let stop = lines
            .iter()
            .position(|l| matches!(l.kind, LineKind::Invalid(_)));
        Self { lines, stop }
    }

    /// The lines WSL reads.
    pub fn read(&self) -> &[Line] {
        &self.lines[..self.stop.unwrap_or(self.lines.len())]
    }

    /// The value WSL uses for `name` (a known key): its first occurrence before the stop.
    pub fn value(&self, name: &str) -> Option<(&str, usize)> {
        self.read().iter().find_map(|l| match &l.kind {
            LineKind::Setting { name: n, value, .. } if n.eq_ignore_ascii_case(name) => {
                Some((value.as_str(), l.first))
            }
            _ => None,
        })
    }
}

/// `1 0 true false` in any case, as WSL's `ParseBool`.
pub fn parse_bool(value: &str) -> Option<bool> {
    if value == "1" || value.eq_ignore_ascii_case("true") {
        Some(true)
    } else if value == "0" || value.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// `strtol(value, &end, 0)` consuming the whole value, within `int` (`configfile.cpp:76-89`).
fn parse_int(value: &str) -> Option<i64> {
    let body = value.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (negative, digits) = match body.as_bytes().first() {
        Some(b'-') => (true, &body[1..]),
        Some(b'+') => (false, &body[1..]),
        _ => (false, body),
    };
    let (radix, digits) = if let Some(hex) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        (16, hex)
    } else if digits.len() > 1 && digits.starts_with('0') {
        (8, &digits[1..])
    } else {
        (10, digits)
    };
    let n = i64::from_str_radix(digits, radix).ok()?;
    let n = if negative { -n } else { n };
    (i64::from(i32::MIN)..=i64::from(i32::MAX))
        .contains(&n)
        .then_some(n)
}

/// Whether WSL accepts `value` for a key of this kind.
fn value_ok(kind: ValueKind, value: &str) -> bool {
    match kind {
        ValueKind::Bool => parse_bool(value).is_some(),
        ValueKind::Int => parse_int(value).is_some(),
        ValueKind::Text => true,
        ValueKind::Choice(choices) => choices.iter().any(|c| c.eq_ignore_ascii_case(value)),
    }
}

/// The wsl.conf packer writes, from the source's.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Rewrite {
    pub text: Vec<u8>,
    /// The source's `[user] default`, in any case (its first occurrence, read on past lines
    /// WSL would stop at: they are commented out, so what the author meant now applies).
    pub default_user: Option<String>,
    /// What was commented out and why, for a warning (the `[user] default` line goes
    /// without saying).
    pub notes: Vec<String>,
}

/// What packer puts first in wsl.conf, by systemd mode.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// `[boot] systemd=true`: WSL boots systemd itself (`init.cpp:2355-2438`), with init as
    /// `/sbin/init`.
    pub native: bool,
    /// `[user] default`: `root` in wrapper mode (root's shell, init, must run); the user in
    /// native mode (none in a `.wsl` whose user is root, WSL's default anyway).
    pub default_user: Option<String>,
    /// `[automount] options`: the source's own with the user's `uid=`/`gid=`, since WSL mounts
    /// the drives as the default user (`config.cpp:690-701`, `:2021`): root in wrapper mode.
    pub automount_options: Option<String>,
}

impl Settings {
    /// Wrapper mode, drives left to root: [`HEADER`].
    pub fn wrapper() -> Self {
        Self {
            default_user: Some("root".into()),
            ..Self::default()
        }
    }

    /// The keys this header sets, which the source's own lines must not repeat.
    fn keys(&self) -> Vec<&'static str> {
        let mut keys = vec!["user.default"];
        if self.native {
            keys.push("boot.systemd");
        }
        if self.automount_options.is_some() {
            keys.push("automount.options");
        }
        keys
    }

    /// Packer's settings as `(section, "key=value")`, in the header's order.
    fn entries(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if self.native {
            out.push(("boot", "systemd=true".to_owned()));
        }
        if let Some(user) = &self.default_user {
            out.push(("user", format!("default={}", quote_value(user))));
        }
        if let Some(options) = &self.automount_options {
            out.push(("automount", format!("options={}", quote_value(options))));
        }
        out
    }
}

/// The first line of every header packer writes; a source starting with it is packer's own
/// output, whose header (up to its one blank line) is written afresh.
const HEADER_MARK: &str = "# Written by packer (nixos-wsl)";

/// The header for these settings, ending in the one blank line of the header, without the
/// sections in `merged` (their settings go inside the source's own
/// section of that name, [`INSERTED_MARK`]).
fn header_without(settings: &Settings, merged: &[&str]) -> String {
    if *settings == Settings::wrapper() && merged.is_empty() {
        return HEADER.to_owned();
    }
    let mut out = String::new();
    if *settings == Settings::wrapper() {
        for line in HEADER.split_inclusive('\n').take(WRAPPER_COMMENT_LINES) {
            out.push_str(line);
        }
    } else {
        out.push_str(HEADER_MARK);
        if settings.native {
            out.push_str(
                ": WSL boots systemd itself (/sbin/init is init, which prepares the\n\
                 # system and execs systemd), and sessions start as the default user, inside systemd.\n",
            );
            if settings.automount_options.is_some() {
                out.push_str("# [automount] options give the Windows drives to the user from the first start on.\n");
            }
        } else {
            out.push_str(
                ": WSL starts every session as root so that init, root's shell,\n\
                 # runs; init then becomes the user named in /etc/nixos-wsl/init.conf. [automount] options\n\
                 # give the Windows drives to that user (WSL would mount them as root, the default user).\n",
            );
        }
        out.push_str(
            "# These lines come first: WSL keeps the first of duplicate keys and stops reading at the first line it cannot parse.\n\
             # Lines below that WSL cannot parse or would ignore are kept as comments starting with #~.\n",
        );
    }
    for (section, line) in settings.entries() {
        if !merged.contains(&section) {
            out.push_str(&format!("[{section}]\n{line}\n"));
        }
    }
    out.push('\n');
    out
}

/// A value as WSL's parser reads it back: quoted, with `\\` and `\"` escapes, when it holds a
/// character the parser treats specially (`configfile.cpp:657-781`).
fn quote_value(value: &str) -> String {
    if !value.contains(['#', '"', '\\']) && value.trim() == value {
        return value.to_owned();
    }
    let mut out = String::from('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// `[automount] options` giving the drives to `uid`/`gid`: the source's options (what WSL
/// reads of its wsl.conf) without their own `uid=`/`gid=`, then the user's. drvfs gets WSL's
/// `uid=,gid=` of the default user first and these after them (`config.cpp:2021`), and the
/// last of a repeated option wins.
pub fn automount_options(source: &[u8], uid: u32, gid: u32) -> String {
    let reading = Reading::of(source);
    let mut options: Vec<String> = reading
        .value("automount.options")
        .map(|(v, _)| v)
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty() && !o.starts_with("uid=") && !o.starts_with("gid="))
        .map(str::to_owned)
        .collect();
    options.push(format!("uid={uid}"));
    options.push(format!("gid={gid}"));
    options.join(",")
}

/// [`for_toolkit_with`] in wrapper mode, drives left to root.
pub fn for_toolkit(source: &[u8]) -> Rewrite {
    for_toolkit_with(source, &Settings::wrapper())
}

/// [`header_without`] first, then the source's text with the lines that would undo it or that WSL
/// cannot read kept as `#~ ` comments: invalid lines (so the settings after them apply),
/// every `[user] default` (its user goes to init.conf), the keys the header sets, later
/// duplicates of a key (WSL ignores them; the validator rejects them), keys before any section
/// (they would land in `[user]`) and keys under a section header WSL cannot parse (they would
/// land in the section before). Everything else is kept byte for byte. Packing packer's own
/// output again gives the same text.
pub fn for_toolkit_with(source: &[u8], settings: &Settings) -> Rewrite {
    let mut rewrite = Rewrite::default();
    let body = if source.starts_with(HEADER_MARK.as_bytes()) {
        source
            .windows(2)
            .position(|w| w == b"\n\n")
            .map_or(&source[source.len()..], |at| &source[at + 2..])
    } else {
        source
    };
    let taken = settings.keys();
    // Notepad's UTF-8 byte order mark: WSL cannot parse the first line with it, and with the
    // header in front it would sit mid-file.
    let body = match body.strip_prefix(b"\xef\xbb\xbf") {
        Some(rest) => {
            rewrite
                .notes
                .push("line 1: a UTF-8 byte order mark removed (WSL cannot parse it)".into());
            rest
        }
        None => body,
    };
    let body = without_inserted(body);
    let lines = lines(&body);
    let physical: Vec<&[u8]> = body.split_inclusive(|&c| c == b'\n').collect();
    // Packer's settings go inside the first section of their name the source has (written
    // exactly so: configparser's section names are case-sensitive), else in the header.
    let entries = settings.entries();
    let mut merge_at: Vec<(usize, &'static str)> = Vec::new();
    for (at, line) in lines.iter().enumerate() {
        if let LineKind::Section(name) = &line.kind {
            if let Some((section, _)) = entries.iter().find(|(s, _)| s == name) {
                if !merge_at.iter().any(|(_, s)| s == section) {
                    merge_at.push((at, section));
                }
            }
        }
    }
    let merged: Vec<&str> = merge_at.iter().map(|(_, s)| *s).collect();
    rewrite.text = header_without(settings, &merged).into_bytes();
    let mut seen: Vec<String> = Vec::new();
    let mut sections_seen: Vec<&str> = Vec::new();
    // Keys after a section header WSL cannot parse would land in the section before it.
    let mut orphaned_by: Option<usize> = None;
    for (at, line) in lines.iter().enumerate() {
        if let LineKind::Section(name) = &line.kind {
            if sections_seen.contains(&name.as_str()) {
                rewrite.notes.push(format!(
                    "line {}: [{name}] again: Microsoft's validator cannot read a section twice (Python's configparser stops with DuplicateSectionError); merge the two",
                    line.first
                ));
            }
            sections_seen.push(name);
        }
        let first_text = physical.get(line.first - 1).copied().unwrap_or_default();
        let why = match &line.kind {
            LineKind::Invalid(why) => {
                if first_text.trim_ascii_start().starts_with(b"[") {
                    orphaned_by = Some(line.first);
                }
                Some(format!("WSL cannot parse it ({why})"))
            }
            LineKind::Section(_) => {
                orphaned_by = None;
                None
            }
            LineKind::Setting { .. } if orphaned_by.is_some() => Some(format!(
                "its section header, line {}, cannot be parsed",
                orphaned_by.unwrap_or_default()
            )),
            // Expected, not worth a warning: its user becomes init.conf's.
            LineKind::Setting { name, .. } if name.eq_ignore_ascii_case("user.default") => {
                Some(String::new())
            }
            // The header's setting applies; a source value that disagrees is worth a word.
            LineKind::Setting { name, value, .. }
                if taken.iter().any(|t| t.eq_ignore_ascii_case(name)) =>
            {
                if name.eq_ignore_ascii_case("boot.systemd") && parse_bool(value) != Some(true) {
                    Some(format!(
                        "{name}={value}: packer's native systemd mode sets systemd=true"
                    ))
                } else {
                    Some(String::new())
                }
            }
            LineKind::Setting { name, .. } if seen.iter().any(|s| s.eq_ignore_ascii_case(name)) => {
                Some(format!("{name} is set earlier; WSL keeps the first"))
            }
            LineKind::Setting {
                sectioned: false,
                name,
                ..
            } => Some(format!("{name} is outside any section")),
            _ => None,
        };
        if let LineKind::Setting { name, value, .. } = &line.kind {
            if orphaned_by.is_none() {
                if name.eq_ignore_ascii_case("user.default")
                    && rewrite.default_user.is_none()
                    && !value.is_empty()
                {
                    rewrite.default_user = Some(value.clone());
                }
                seen.push(name.clone());
            }
        }
        for number in line.first..=line.last {
            let Some(text) = physical.get(number - 1) else {
                continue;
            };
            if why.is_some() {
                rewrite.text.extend_from_slice(COMMENTED.as_bytes());
            }
            rewrite.text.extend_from_slice(text);
            if !text.ends_with(b"\n") {
                rewrite.text.push(b'\n');
            }
        }
        if let Some(why) = why.filter(|w| !w.is_empty()) {
            rewrite
                .notes
                .push(format!("line {}: commented out: {why}", line.first));
        }
        if let Some((_, section)) = merge_at.iter().find(|(a, _)| *a == at) {
            for (_, setting) in entries.iter().filter(|(s, _)| s == section) {
                rewrite
                    .text
                    .extend_from_slice(format!("{INSERTED_MARK}\n{setting}\n").as_bytes());
            }
        }
    }
    rewrite
}

/// `body` without the settings an earlier packing put inside its sections ([`INSERTED_MARK`]
/// and the line after it): they are written afresh.
fn without_inserted(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut physical = body.split_inclusive(|&c| c == b'\n');
    while let Some(line) = physical.next() {
        if line.strip_suffix(b"\n").unwrap_or(line) == INSERTED_MARK.as_bytes() {
            physical.next();
            continue;
        }
        out.extend_from_slice(line);
    }
    out
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    Error(String),
    Warning(String),
}

/// What `packer check` says about a wsl.conf. `init_is_root_shell`: the toolkit's init is
/// root's shell, so without `[boot] systemd=true` WSL must start root.
pub fn findings(text: &[u8], init_is_root_shell: bool) -> Vec<Finding> {
    let reading = Reading::of(text);
    let mut out = Vec::new();
    if let Some(stop) = reading.stop {
        let line = &reading.lines[stop];
        let LineKind::Invalid(why) = line.kind else {
            unreachable!("stop is an invalid line")
        };
        let lost: Vec<String> = reading.lines[stop + 1..]
            .iter()
            .filter_map(|l| match &l.kind {
                LineKind::Setting { name, .. } => Some(format!("{name} (line {})", l.first)),
                _ => None,
            })
            .collect();
        let text = format!(
            "/etc/wsl.conf line {}: WSL stops reading here ({why}; configfile.cpp:807)",
            line.first
        );
        if lost.is_empty() {
            out.push(Finding::Warning(format!("{text}; no setting follows")));
        } else {
            out.push(Finding::Error(format!(
                "{text}: what follows never applies: {}",
                lost.join(", ")
            )));
        }
    }
    // Microsoft's validator reads the whole file with Python's configparser, which stops at
    // a section written twice (exactly: its section names are case-sensitive).
    let mut sections: Vec<(&str, usize)> = Vec::new();
    for line in &reading.lines {
        if let LineKind::Section(name) = &line.kind {
            match sections.iter().find(|(n, _)| n == name) {
                Some((_, first)) => out.push(Finding::Error(format!(
                    "/etc/wsl.conf line {}: [{name}] again (first on line {first}): Microsoft's validator cannot read a section twice (Python's configparser: DuplicateSectionError)",
                    line.first
                ))),
                None => sections.push((name, line.first)),
            }
        }
    }
    let mut first_of: Vec<(String, usize, String)> = Vec::new();
    for line in reading.read() {
        let LineKind::Setting { name, value, .. } = &line.kind else {
            continue;
        };
        let at = line.first;
        let Some(known) = known_key(name) else {
            out.push(Finding::Warning(format!(
                "/etc/wsl.conf line {at}: unknown key {name}: WSL ignores it, Microsoft's validator rejects it"
            )));
            continue;
        };
        if let Some((_, first, kept)) = first_of.iter().find(|(n, _, _)| n == known.name) {
            out.push(Finding::Warning(format!(
                "/etc/wsl.conf line {at}: {name} again: WSL keeps line {first}'s value {kept:?} and ignores {value:?}"
            )));
            continue;
        }
        first_of.push((known.name.to_owned(), at, value.clone()));
        if !known.validator {
            out.push(Finding::Warning(format!(
                "/etc/wsl.conf line {at}: WSL reads {name}, but Microsoft's validator rejects it (not in its WSL_CONF_KEYS)"
            )));
        }
        if !value_ok(known.kind, value) {
            let wanted = match known.kind {
                ValueKind::Bool => "a boolean (1, 0, true or false)".to_owned(),
                ValueKind::Int => "a whole number".to_owned(),
                ValueKind::Choice(c) => format!("one of {}", c.join(", ")),
                ValueKind::Text => unreachable!("any text is accepted"),
            };
            out.push(Finding::Warning(format!(
                "/etc/wsl.conf line {at}: {name} = {value:?} is not {wanted}: WSL keeps its default"
            )));
        }
    }
    // With WSL's own systemd, sessions start inside it as whoever WSL starts: the default
    // user need not be root (init as root's shell only drops root's sessions to the user).
    let native = reading
        .value("boot.systemd")
        .and_then(|(v, _)| parse_bool(v))
        .unwrap_or(false);
    if init_is_root_shell && !native {
        match reading.value("user.default") {
            Some(("root", _)) => {}
            Some((user, at)) => out.push(Finding::Error(format!(
                "/etc/wsl.conf line {at}: WSL starts sessions as {user:?}, not root, so they bypass init (root's shell); init.conf's user is where the user goes"
            ))),
            None => out.push(Finding::Warning(
                "/etc/wsl.conf has no [user] default=root that WSL reads: WSL starts the registered default user (root after wsl --import, oobe.defaultUid after a .wsl install), and only root's sessions run init".into(),
            )),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<LineKind> {
        lines(text.as_bytes()).into_iter().map(|l| l.kind).collect()
    }

    fn setting(name: &str, value: &str) -> LineKind {
        LineKind::Setting {
            name: name.into(),
            value: value.into(),
            sectioned: name.contains('.'),
        }
    }

    #[test]
    fn lines_follow_wsls_grammar() {
        assert_eq!(
            kinds("# c\n\n  [Boot] # x\nSystemd = TRUE \nkey=\" a \" # c\n"),
            vec![
                LineKind::Comment,
                LineKind::Blank,
                LineKind::Section("Boot".into()),
                setting("Boot.Systemd", "TRUE"),
                setting("Boot.key", " a "),
            ]
        );
        assert_eq!(
            kinds("[a]\nk = x\\\n  y\\tz\\\"\"#q\"\n"),
            vec![LineKind::Section("a".into()), setting("a.k", "x  y\tz\"#q")]
        );
        for bad in [
            "; comment\n",
            "[ boot ]\n",
            "[boot] x\n",
            "[1x]\n",
            "key\n",
            "ke-y = 1\n",
            "k = \"open\n",
            "k = a\\q\n",
            "_k = 1\n",
        ] {
            assert!(
                matches!(kinds(bad)[..], [LineKind::Invalid(_)]),
                "{bad:?}: {:?}",
                kinds(bad)
            );
        }
        // CRLF files and a last line without a newline.
        assert_eq!(
            kinds("[user]\r\ndefault=x\r\n\r\n[boot]\r\nsystemd=1"),
            vec![
                LineKind::Section("user".into()),
                setting("user.default", "x"),
                LineKind::Blank,
                LineKind::Section("boot".into()),
                setting("boot.systemd", "1"),
            ]
        );
    }

    #[test]
    fn line_numbers_span_continuations() {
        let lines = lines(b"[a]\nk = 1\\\n2\n; x\nm=3\n");
        let spans: Vec<(usize, usize)> = lines.iter().map(|l| (l.first, l.last)).collect();
        assert_eq!(spans, vec![(1, 1), (2, 3), (4, 4), (5, 5)]);
    }

    #[test]
    fn wsl_stops_at_the_first_invalid_line_and_keeps_the_first_duplicate() {
        let reading =
            Reading::of(b"[user]\ndefault=alice\n[USER]\nDEFAULT=bob\n; x\n[boot]\nsystemd=true\n");
        assert_eq!(reading.value("user.default"), Some(("alice", 2)));
        assert_eq!(reading.value("boot.systemd"), None, "after the ';' line");
        assert_eq!(reading.stop, Some(4));
    }

    #[test]
    fn values_parse_as_wsl_parses_them() {
        for (v, b) in [("1", true), ("TRUE", true), ("0", false), ("False", false)] {
            assert_eq!(parse_bool(v), Some(b));
        }
        for v in ["yes", "t", "on", ""] {
            assert_eq!(parse_bool(v), None, "{v}");
        }
        assert_eq!(parse_int("0x10"), Some(16));
        assert_eq!(parse_int("022"), Some(18));
        assert_eq!(parse_int("-5"), Some(-5));
        assert_eq!(parse_int("10000"), Some(10000));
        assert_eq!(parse_int("5s"), None);
        assert_eq!(parse_int(""), None);
        assert_eq!(parse_int("99999999999"), None);
    }

    #[test]
    fn toolkit_settings_come_first_and_the_source_keeps_the_rest() {
        let source = "[User]\nDefault = nixos\n; a comment in another syntax\n[boot]\nsystemd=true\n[network]\nhostname = box # mine\nhostname = other\n";
        let rewrite = for_toolkit(source.as_bytes());
        assert_eq!(rewrite.default_user.as_deref(), Some("nixos"));
        assert_eq!(
            String::from_utf8_lossy(&rewrite.text),
            format!(
                "{HEADER}[User]\n#~ Default = nixos\n#~ ; a comment in another syntax\n[boot]\nsystemd=true\n[network]\nhostname = box # mine\n#~ hostname = other\n"
            )
        );
        assert_eq!(rewrite.notes.len(), 2, "{:?}", rewrite.notes);
        let reading = Reading::of(&rewrite.text);
        assert_eq!(reading.stop, None);
        assert_eq!(reading.value("user.default"), Some(("root", 6)));
        assert_eq!(reading.value("boot.systemd").map(|v| v.0), Some("true"));
        assert_eq!(reading.value("network.hostname").map(|v| v.0), Some("box"));
        // Packing packer's own output again changes nothing.
        let again = for_toolkit(&rewrite.text);
        assert_eq!(again.text, rewrite.text);
        assert_eq!(again.default_user, None);
    }

    #[test]
    fn keys_outside_a_section_and_continued_lines_are_commented_whole() {
        let rewrite = for_toolkit(b"default=eve\n[a]\nk = 1\\\n2\n[user]\ndefault=x \\q\nlast");
        assert_eq!(
            String::from_utf8_lossy(&rewrite.text),
            format!(
                "{}\n#~ default=eve\n[a]\nk = 1\\\n2\n[user]\n{INSERTED_MARK}\ndefault=root\n#~ default=x \\q\n#~ last\n",
                HEADER.strip_suffix("[user]\ndefault=root\n\n").unwrap_or_default()
            )
        );
        assert_eq!(rewrite.default_user, None, "neither is a [user] default");
        assert_eq!(for_toolkit(b"").text, HEADER.as_bytes());
    }

    /// Python's configparser (Microsoft's validator) stops at a section written twice.
    fn sections_are_unique(text: &[u8]) -> bool {
        let mut seen = Vec::new();
        lines(text).into_iter().all(|line| match line.kind {
            LineKind::Section(name) if seen.contains(&name) => false,
            LineKind::Section(name) => {
                seen.push(name);
                true
            }
            _ => true,
        })
    }

    #[test]
    fn packers_settings_go_inside_the_sections_the_source_has() {
        // What the NixOS module declares, packed in wrapper mode with the user's drive options,
        // and a native packing of a source with [boot] and [automount] of its own.
        let source = b"# Written by NixOS\n[automount]\noptions=metadata,uid=1000,gid=100\n[boot]\nsystemd=false\ncommand=echo hi\n[user]\ndefault=root\n";
        let wrapper = Settings {
            automount_options: Some("metadata,uid=1000,gid=100".into()),
            ..Settings::wrapper()
        };
        let native = Settings {
            native: true,
            default_user: Some("nixos".into()),
            automount_options: Some("uid=1000,gid=100".into()),
        };
        for settings in [Settings::wrapper(), wrapper, native] {
            let rewrite = for_toolkit_with(source, &settings);
            assert!(
                sections_are_unique(&rewrite.text),
                "{}",
                String::from_utf8_lossy(&rewrite.text)
            );
            let reading = Reading::of(&rewrite.text);
            assert_eq!(reading.stop, None);
            let expect_user = settings.default_user.as_deref();
            assert_eq!(reading.value("user.default").map(|v| v.0), expect_user);
            assert_eq!(
                reading.value("boot.systemd").map(|v| v.0),
                Some(if settings.native { "true" } else { "false" })
            );
            assert_eq!(
                reading.value("boot.command").map(|v| v.0),
                Some("echo hi"),
                "the source's other settings of the section stay"
            );
            let options = settings.automount_options.as_deref();
            assert_eq!(
                reading.value("automount.options").map(|v| v.0),
                options.or(Some("metadata,uid=1000,gid=100"))
            );
            // Packing packer's own output again changes nothing.
            let again = for_toolkit_with(&rewrite.text, &settings);
            assert_eq!(
                String::from_utf8_lossy(&again.text),
                String::from_utf8_lossy(&rewrite.text)
            );
        }
        // A section the source itself repeats is named (the validator cannot read it), and
        // packer check calls it an error.
        let rewrite = for_toolkit(b"[network]\nhostname=a\n[network]\ngenerateHosts=false\n");
        assert!(
            rewrite
                .notes
                .iter()
                .any(|n| n.contains("line 3: [network] again")),
            "{:?}",
            rewrite.notes
        );
        assert!(
            findings(&rewrite.text, false).iter().any(|f| matches!(
                f,
                Finding::Error(e) if e.contains("[network] again")
            )),
            "{:?}",
            findings(&rewrite.text, false)
        );
        assert!(
            findings(&for_toolkit_with(source, &Settings::wrapper()).text, false)
                .iter()
                .all(|f| !matches!(f, Finding::Error(_)))
        );
    }

    #[test]
    fn keys_under_a_broken_section_header_and_a_byte_order_mark() {
        let rewrite = for_toolkit(
            b"\xef\xbb\xbf[boot]\nsystemd=true\n[ user ]\ndefault=alice\n[network]\nhostname=\xff\n",
        );
        assert_eq!(
            rewrite.text,
            [
                HEADER.as_bytes(),
                b"[boot]\nsystemd=true\n#~ [ user ]\n#~ default=alice\n[network]\nhostname=\xff\n",
            ]
            .concat()
        );
        assert_eq!(rewrite.default_user, None);
        assert_eq!(rewrite.notes.len(), 3, "{:?}", rewrite.notes);
    }

    #[test]
    fn findings_name_unread_lines_duplicates_unknown_keys_and_the_user() {
        let text = b"[user]\ndefault=nixos\n[boot]\nsystemd=maybe\ninitTimeout=5000\n[boot]\nSystemd=true\ncolour=red\n; x\n[interop]\nenabled=false\n";
        let all: Vec<String> = findings(text, true)
            .iter()
            .map(|f| match f {
                Finding::Error(t) => format!("E {t}"),
                Finding::Warning(t) => format!("W {t}"),
            })
            .collect();
        let has = |needle: &str| all.iter().any(|f| f.contains(needle));
        assert!(
            has("E /etc/wsl.conf line 9: WSL stops reading here"),
            "{all:#?}"
        );
        assert!(has("interop.enabled (line 11)"), "{all:#?}");
        assert!(has(
            "W /etc/wsl.conf line 4: boot.systemd = \"maybe\" is not a boolean"
        ));
        assert!(has(
            "W /etc/wsl.conf line 5: WSL reads boot.initTimeout, but Microsoft's validator"
        ));
        assert!(has(
            "W /etc/wsl.conf line 7: boot.Systemd again: WSL keeps line 4's"
        ));
        assert!(has("W /etc/wsl.conf line 8: unknown key boot.colour"));
        assert!(has(
            "E /etc/wsl.conf line 2: WSL starts sessions as \"nixos\""
        ));
        assert!(has(
            "E /etc/wsl.conf line 6: [boot] again (first on line 3): Microsoft's validator"
        ));
        assert_eq!(all.len(), 7, "{all:#?}");
        // Packed, the only error left is the source's own second [boot], which packer names.
        let packed = for_toolkit(text);
        let errors: Vec<_> = findings(&packed.text, true)
            .into_iter()
            .filter(|f| matches!(f, Finding::Error(_)))
            .collect();
        assert!(
            errors.len() == 1
                && matches!(&errors[0], Finding::Error(e) if e.contains("[boot] again")),
            "{errors:?}"
        );
        assert!(packed.notes.iter().any(|n| n.contains("[boot] again")));
    }
}
