//! Looking users up in the distribution's own /etc/passwd and /etc/group, as WSL does.

use std::fs;
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
    pub shell: String,
    pub groups: Vec<u32>,
}

impl User {
    fn root() -> Self {
        Self {
            name: "root".into(),
            uid: 0,
            gid: 0,
            home: "/root".into(),
            shell: "/bin/sh".into(),
            groups: vec![0],
        }
    }

    /// The user called `name` (or with that numeric uid) in `root`'s /etc/passwd; root
    /// itself when the file lacks it.
    pub fn lookup(root: &Path, name: &str) -> Option<Self> {
        let passwd = fs::read_to_string(root.join("etc/passwd")).unwrap_or_default();
        let group = fs::read_to_string(root.join("etc/group")).unwrap_or_default();
        let found = find_in_passwd(&passwd, name);
        match found {
            Some(mut user) => {
                user.groups = groups_of(&group, &user.name, user.gid);
                Some(user)
            }
            None if name == "root" || name == "0" => Some(Self::root()),
            None => None,
        }
    }
}

impl User {
    /// getpwnam(3): by name only.
    pub fn by_name(root: &Path, name: &str) -> Option<Self> {
        Self::find(root, |fields| fields[0] == name)
    }

    /// getpwuid(3).
    pub fn by_uid(root: &Path, uid: u32) -> Option<Self> {
        let uid = uid.to_string();
        Self::find(root, |fields| fields[2] == uid)
    }

    fn find(root: &Path, matches: impl Fn(&[&str]) -> bool) -> Option<Self> {
        let passwd = fs::read_to_string(root.join("etc/passwd")).unwrap_or_default();
        let name = passwd.lines().find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.len() >= 7 && matches(&fields)).then(|| fields[0].to_owned())
        })?;
        Self::lookup(root, &name)
    }
}

fn find_in_passwd(passwd: &str, name: &str) -> Option<User> {
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        if fields.len() < 7 || (fields[0] != name && fields[2] != name) {
            return None;
        }
        let shell = if fields[6].is_empty() {
            "/bin/sh"
        } else {
            fields[6]
        };
        Some(User {
            name: fields[0].to_owned(),
            uid: fields[2].parse().ok()?,
            gid: fields[3].parse().ok()?,
            home: fields[5].to_owned(),
            shell: shell.to_owned(),
            groups: Vec::new(),
        })
    })
}

fn groups_of(group: &str, user: &str, primary: u32) -> Vec<u32> {
    let mut groups = vec![primary];
    for line in group.lines() {
        let fields: Vec<&str> = line.split(':').collect();
        if fields.len() < 4 || !fields[3].split(',').any(|m| m == user) {
            continue;
        }
        if let Ok(gid) = fields[2].parse() {
            if !groups.contains(&gid) {
                groups.push(gid);
            }
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_user_and_supplementary_groups() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\nnixos:x:1000:100::/home/nixos:\n";
        let user = find_in_passwd(passwd, "nixos").expect("found");
        assert_eq!(
            (user.uid, user.gid, user.shell.as_str()),
            (1000, 100, "/bin/sh")
        );
        assert_eq!(
            find_in_passwd(passwd, "1000").map(|u| u.name),
            Some("nixos".into())
        );
        let group = "sudo:x:27:nixos,other\nusers:x:100:nixos\nwheel:x:1:bob\n";
        assert_eq!(groups_of(group, "nixos", 100), vec![100, 27]);
    }
}
