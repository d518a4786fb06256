//! The `.wsl`'s user, created at the first boot. Microsoft's validator warns when a `.wsl`
//! ships a user with `oobe.defaultUid` in `/etc/passwd` (validate-modern.py, `read_passwd`):
//! it expects the OOBE to create it. packer therefore holds the user's passwd line back in
//! [`paths::FIRST_BOOT_ACCOUNT`], and init adds it before systemd and before any session (WSL
//! looks the user up per session, `src/linux/init/init.cpp:1004-1032`), on every path: an
//! install (whose OOBE then makes it WSL's default, `init.cpp:625-676`) and an import, which
//! runs no OOBE at all (`WslClient.cpp:314`). Once added, the file goes: a user removed
//! later stays removed.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;

use wsl_common::paths;

const PASSWD: &str = "/etc/passwd";

/// `passwd` with `line` added, or `None` when it has that user already (or `line` is no
/// passwd line, which packer never writes).
pub fn with_account(passwd: &[u8], line: &[u8]) -> Option<Vec<u8>> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let name = line.split(|&b| b == b':').next()?;
    if name.is_empty() || line.split(|&b| b == b':').count() != 7 || line.contains(&b'\n') {
        return None;
    }
    let has = passwd
        .split(|&b| b == b'\n')
        .any(|l| l.split(|&b| b == b':').next() == Some(name));
    if has {
        return None;
    }
    let mut out = passwd.to_vec();
    if !out.is_empty() && !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    out.extend_from_slice(line);
    out.push(b'\n');
    Some(out)
}

/// Adds the held-back user to `/etc/passwd` if there is one to add; says what fails (the
/// file is kept then, for the next boot).
pub fn restore() {
    let Ok(line) = fs::read(paths::FIRST_BOOT_ACCOUNT) else {
        return;
    };
    match add(&line) {
        Ok(()) => {
            if let Err(e) = fs::remove_file(paths::FIRST_BOOT_ACCOUNT) {
                crate::say!("cannot remove {}: {e}", paths::FIRST_BOOT_ACCOUNT);
            }
        }
        Err(e) => crate::say!(
            "cannot add the user of {} to {PASSWD}: {e}; tried again at the next boot",
            paths::FIRST_BOOT_ACCOUNT
        ),
    }
}

/// Replaces `/etc/passwd` whole (a new file renamed over it, with its mode), so no reader
/// ever sees half of it.
fn add(line: &[u8]) -> io::Result<()> {
    let passwd = fs::read(PASSWD)?;
    let Some(text) = with_account(&passwd, line) else {
        return Ok(());
    };
    let mode = fs::metadata(PASSWD)?.permissions().mode() & 0o7777;
    let temp = format!("{PASSWD}.nixos-wsl-new");
    let written = (|| {
        let mut file = fs::File::create(&temp)?;
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        file.write_all(&text)?;
        file.sync_all()?;
        fs::rename(&temp, PASSWD)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&temp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &[u8] = b"nixos:x:1000:1000:NixOS:/home/nixos:/bin/bash\n";

    #[test]
    fn the_user_is_added_at_the_end() {
        let passwd = b"root:x:0:0:root:/root:/bin/sh\nbin:x:2:2::/bin:/bin/false";
        assert_eq!(
            with_account(passwd, LINE).as_deref(),
            Some(
                &b"root:x:0:0:root:/root:/bin/sh\nbin:x:2:2::/bin:/bin/false\n\
                   nixos:x:1000:1000:NixOS:/home/nixos:/bin/bash\n"[..]
            )
        );
    }

    #[test]
    fn an_existing_user_of_that_name_is_kept_as_it_is() {
        let passwd = b"root:x:0:0:root:/root:/bin/sh\nnixos:x:1001:100::/home/n:/bin/zsh\n";
        assert_eq!(with_account(passwd, LINE), None);
    }

    #[test]
    fn what_is_not_one_passwd_line_is_not_added() {
        let passwd = b"root:x:0:0:root:/root:/bin/sh\n";
        assert_eq!(with_account(passwd, b"nixos:x:1000\n"), None);
        assert_eq!(with_account(passwd, b":x:1000:1000::/:/bin/sh\n"), None);
        assert_eq!(
            with_account(passwd, b"a:x:1:1::/:/bin/sh\nb:x:2:2::/:/bin/sh\n"),
            None
        );
    }
}
