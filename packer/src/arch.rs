//! The processor architecture of a root filesystem and of the binaries packer adds to it.
//! WSL runs x86-64 distributions on x64 Windows and aarch64 ones on ARM64 Windows; Microsoft's
//! validator checks `/bin/sh`, `/bin/bash` and `/sbin/init` against the one the archive is
//! published for (`distributions/validate-modern.py`, `X64_ELF_MAGIC` / `ARM64_ELF_MAGIC`).

use std::fmt;
use std::io::Read;
use std::path::Path;

use crate::tree::{resolve, Lookup, NodeKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    X86_64,
    Aarch64,
}

/// ELF `e_machine` values (the System V gABI registry).
const EM_X86_64: u16 = 0x3e;
const EM_AARCH64: u16 = 0xb7;

impl Arch {
    /// The architecture of a 64-bit little-endian ELF file from its first bytes; `None` for
    /// anything else (a script, a 32-bit or big-endian ELF, another machine).
    pub fn of_elf(head: &[u8]) -> Option<Arch> {
        // e_ident: magic, ELFCLASS64 (2), ELFDATA2LSB (1); e_machine at offset 18.
        if head.len() < 20 || &head[..4] != b"\x7fELF" || head[4] != 2 || head[5] != 1 {
            return None;
        }
        match u16::from_le_bytes([head[18], head[19]]) {
            EM_X86_64 => Some(Arch::X86_64),
            EM_AARCH64 => Some(Arch::Aarch64),
            _ => None,
        }
    }

    /// The machine name an ELF header gives, for messages about foreign binaries.
    pub fn describe_elf(head: &[u8]) -> String {
        match Arch::of_elf(head) {
            Some(arch) => arch.to_string(),
            None if head.len() >= 20 && &head[..4] == b"\x7fELF" => format!(
                "ELF machine {:#x}",
                u16::from_le_bytes([head[18], head[19]])
            ),
            None => "not an ELF executable".into(),
        }
    }

    /// Where scripts/build puts this architecture's init and installer, beside packer.
    pub fn dist_dir(self) -> &'static str {
        match self {
            Arch::X86_64 => "",
            Arch::Aarch64 => "aarch64",
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Arch::X86_64 => "x86-64",
            Arch::Aarch64 => "aarch64",
        })
    }
}

/// Programs whose ELF header tells a tree's architecture, first that is an ELF wins: the
/// shell WSL runs, then what a NixOS system without `/bin/sh` (a bare system tarball) has.
const WITNESSES: &[&[u8]] = &[
    b"bin/sh",
    b"bin/bash",
    b"usr/bin/env",
    b"sbin/init",
    b"nix/var/nix/profiles/system/sw/bin/bash",
    b"run/current-system/sw/bin/bash",
];

/// The tree's architecture, and the path that told it.
pub fn of_tree(tree: &dyn Lookup) -> Option<(Arch, String)> {
    for witness in WITNESSES {
        if let Some(found) = elf_arch_at(tree, witness) {
            return Some(found);
        }
    }
    // A bare NixOS system tarball: any bash of the store.
    for name in tree.children(b"nix/store") {
        if name.ends_with(b".drv") || !name.windows(6).any(|w| w == b"-bash-") {
            continue;
        }
        let mut path = b"nix/store/".to_vec();
        path.extend_from_slice(&name);
        path.extend_from_slice(b"/bin/bash");
        if let Some(found) = elf_arch_at(tree, &path) {
            return Some(found);
        }
    }
    None
}

fn elf_arch_at(tree: &dyn Lookup, path: &[u8]) -> Option<(Arch, String)> {
    let target = resolve(tree, path)?;
    if tree.node(&target)?.kind != NodeKind::File {
        return None;
    }
    let head = tree.read_small(&target).ok()??;
    let arch = Arch::of_elf(&head)?;
    Some((arch, format!("/{}", String::from_utf8_lossy(&target))))
}

/// The first bytes of a host file (a binary packer adds), for its ELF header.
pub fn head_of(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(64);
    std::fs::File::open(path)?.take(64).read_to_end(&mut head)?;
    Ok(head)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(class: u8, data: u8, machine: u16) -> Vec<u8> {
        let mut h = b"\x7fELF".to_vec();
        h.extend_from_slice(&[class, data, 1, 0]);
        h.resize(18, 0);
        h.extend_from_slice(&machine.to_le_bytes());
        h.resize(64, 0);
        h
    }

    #[test]
    fn reads_the_machine_of_64_bit_little_endian_elf_only() {
        assert_eq!(Arch::of_elf(&header(2, 1, 0x3e)), Some(Arch::X86_64));
        assert_eq!(Arch::of_elf(&header(2, 1, 0xb7)), Some(Arch::Aarch64));
        assert_eq!(Arch::of_elf(&header(1, 1, 0x3e)), None, "32-bit");
        assert_eq!(Arch::of_elf(&header(2, 2, 0xb7)), None, "big-endian");
        assert_eq!(Arch::of_elf(&header(2, 1, 0x28)), None, "arm32");
        assert_eq!(Arch::of_elf(b"#!/bin/sh\n"), None);
        assert_eq!(Arch::of_elf(b"\x7fELF"), None, "cut short");
        assert_eq!(Arch::describe_elf(&header(2, 1, 0x28)), "ELF machine 0x28");
        assert_eq!(Arch::describe_elf(b"#!"), "not an ELF executable");
    }
}
