//! The user a shell runs as, from the `/etc/passwd` and `/etc/group` of the namespace we are
//! in (parsed here: no NSS in a static binary, and the files are all WSL distributions use).

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

use wsl_common::paths;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: OsString,
    /// The program to exec: the passwd shell, or the configured real shell where the passwd
    /// entry names init itself (root) or nothing.
    pub shell: OsString,
    /// Supplementary groups, the primary one included.
    pub groups: Vec<u32>,
}

impl User {
    /// Looks `name` up in `passwd` and `group` (file contents). `real_shell` replaces a shell
    /// that is init itself.
    pub fn from_files(name: &str, passwd: &[u8], group: &[u8], real_shell: &str) -> Option<User> {
        let line = passwd
            .split(|&b| b == b'\n')
            .find(|l| l.split(|&b| b == b':').next() == Some(name.as_bytes()))?;
        let fields: Vec<&[u8]> = line.split(|&b| b == b':').collect();
        if fields.len() < 7 {
            return None;
        }
        let number = |f: &[u8]| std::str::from_utf8(f).ok()?.trim().parse::<u32>().ok();
        let (uid, gid) = (number(fields[2])?, number(fields[3])?);
        let shell = fields[6].trim_ascii_end();
        let shell = if shell.is_empty() || shell == paths::INIT.as_bytes() {
            real_shell.as_bytes()
        } else {
            shell
        };
        let mut groups = vec![gid];
        for line in group.split(|&b| b == b'\n') {
            // name:password:gid:members, without a vector per line (every shell reads this).
            let mut fields = line.splitn(4, |&b| b == b':').skip(2);
            let (Some(gid), Some(members)) = (fields.next(), fields.next()) else {
                continue;
            };
            let member = members
                .trim_ascii_end()
                .split(|&b| b == b',')
                .any(|m| m == name.as_bytes());
            if let (true, Some(g)) = (member, number(gid)) {
                if !groups.contains(&g) {
                    groups.push(g);
                }
            }
        }
        Some(User {
            name: name.to_owned(),
            uid,
            gid,
            home: OsString::from_vec(fields[5].to_vec()),
            shell: OsString::from_vec(shell.to_vec()),
            groups,
        })
    }

    /// Looks `name` up in this namespace's files.
    pub fn lookup(name: &str, real_shell: &str) -> Option<User> {
        let passwd = crate::sys::read_file("/etc/passwd").ok()?;
        let group = crate::sys::read_file("/etc/group").unwrap_or_default();
        Self::from_files(name, &passwd, &group, real_shell)
    }

    /// Root as a last resort, when the configured user is missing.
    pub fn root(real_shell: &str) -> User {
        User::lookup("root", real_shell).unwrap_or_else(|| User {
            name: "root".into(),
            uid: 0,
            gid: 0,
            home: "/root".into(),
            shell: real_shell.into(),
            groups: vec![0],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &[u8] = b"root:x:0:0:root:/root:/usr/libexec/nixos-wsl/init\n\
        nixos:x:1000:1000::/home/nixos:/bin/bash\nnoshell:x:5:5::/:\n";
    const GROUP: &[u8] = b"root:x:0:\nsudo:x:27:nixos\nusers:x:100:alice,nixos\nnixos:x:1000:\n";

    #[test]
    fn user_with_groups() {
        let user = User::from_files("nixos", PASSWD, GROUP, "/bin/sh").expect("nixos");
        assert_eq!((user.uid, user.gid), (1000, 1000));
        assert_eq!(user.groups, [1000, 27, 100]);
        assert_eq!(user.shell, "/bin/bash");
        assert_eq!(user.home, "/home/nixos");
    }

    #[test]
    fn init_as_shell_is_replaced_by_the_real_shell() {
        let root = User::from_files("root", PASSWD, GROUP, "/bin/zsh").expect("root");
        assert_eq!(root.shell, "/bin/zsh");
        let none = User::from_files("noshell", PASSWD, GROUP, "/bin/zsh").expect("noshell");
        assert_eq!(none.shell, "/bin/zsh");
    }

    #[test]
    fn missing_or_prefix_names_are_not_found() {
        assert!(User::from_files("nix", PASSWD, GROUP, "/bin/sh").is_none());
        assert!(User::from_files("bob", PASSWD, GROUP, "/bin/sh").is_none());
    }
}
