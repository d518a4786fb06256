//! Extended attributes: read from the host without following symlinks, and filtered to what
//! belongs in a WSL root filesystem.

use std::io;
use std::path::Path;

/// Attributes of a file, sorted by name. Filesystems without xattr support give none.
pub fn read(path: &Path) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut names = vec![0u8; 4096];
    let len = loop {
        match rustix::fs::llistxattr(path, &mut names[..]) {
            Ok(len) => break len,
            Err(rustix::io::Errno::RANGE) if names.len() < (1 << 20) => {
                names.resize(names.len() * 4, 0)
            }
            Err(rustix::io::Errno::NOTSUP) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        }
    };
    let mut out = Vec::new();
    let mut value = vec![0u8; 4096];
    for name in names[..len].split(|&c| c == 0).filter(|n| !n.is_empty()) {
        let value_len = loop {
            match rustix::fs::lgetxattr(path, name, &mut value[..]) {
                Ok(n) => break Some(n),
                Err(rustix::io::Errno::RANGE) if value.len() < (1 << 20) => {
                    value.resize(value.len() * 4, 0)
                }
                // Removed between list and get.
                Err(rustix::io::Errno::NODATA) => break None,
                Err(e) => return Err(e.into()),
            }
        };
        if let Some(n) = value_len {
            out.push((name.to_vec(), value[..n].to_vec()));
        }
    }
    out.sort();
    Ok(out)
}

/// Why an attribute is left out, or `None` to keep it.
pub fn unwanted(name: &[u8]) -> Option<&'static str> {
    if name.starts_with(b"system.posix_acl_") {
        Some("ACL")
    } else if name == b"security.selinux" {
        Some("SELinux label")
    } else if name == b"security.ima" || name == b"security.evm" {
        Some("IMA/EVM signature")
    } else {
        None
    }
}

/// Drops unwanted attributes, warning about the first few.
#[derive(Debug, Default)]
pub struct XattrFilter {
    pub dropped: u64,
}

impl XattrFilter {
    pub fn filter(&mut self, xattrs: &mut Vec<(Vec<u8>, Vec<u8>)>, path: &str) {
        xattrs.retain(|(name, _)| match unwanted(name) {
            None => true,
            Some(what) => {
                self.dropped += 1;
                if self.dropped <= 5 {
                    eprintln!(
                        "packer: warning: dropping the {what} xattr {} of {path} (WSL does not want it)",
                        String::from_utf8_lossy(name)
                    );
                }
                false
            }
        });
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn acl_selinux_ima_evm_are_unwanted_capabilities_are_kept() {
        assert!(super::unwanted(b"system.posix_acl_access").is_some());
        assert!(super::unwanted(b"system.posix_acl_default").is_some());
        assert!(super::unwanted(b"security.selinux").is_some());
        assert!(super::unwanted(b"security.ima").is_some());
        assert!(super::unwanted(b"security.evm").is_some());
        assert!(super::unwanted(b"security.capability").is_none());
        assert!(super::unwanted(b"user.anything").is_none());
    }
}
