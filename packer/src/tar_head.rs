//! The first 512 bytes of a tar, looked at before the tar crate reads it: random data gets a
//! plain message (the tar crate would quote its bytes), and a GNU volume label (`tar -V`),
//! which the tar crate cannot parse, is recognised so it can be skipped as bsdtar skips it.

use crate::header::BLOCK;

#[derive(Debug, PartialEq, Eq)]
pub enum Start {
    /// An end-of-archive block first: no entries.
    Empty,
    /// A GNU volume label: one header block without data, to be skipped.
    VolumeLabel(String),
    /// An ordinary header.
    Header,
}

/// What the archive starts with, or why it is no tar at all.
pub fn inspect(block: &[u8]) -> Result<Start, String> {
    if block.len() < BLOCK {
        return Err(format!(
            "it is {} bytes, shorter than one tar header (512 bytes)",
            block.len()
        ));
    }
    let block = &block[..BLOCK];
    if block.iter().all(|&b| b == 0) {
        return Ok(Start::Empty);
    }
    if !checksum_matches(block) {
        return Err(
            "it does not start with a tar header (the checksum of its first 512 bytes does not match)"
                .into(),
        );
    }
    if block[156] == b'V' {
        let name = &block[..100];
        let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
        return Ok(Start::VolumeLabel(printable(&String::from_utf8_lossy(
            &name[..end],
        ))));
    }
    Ok(Start::Header)
}

/// The header checksum: the sum of the block's bytes with the checksum field taken as spaces,
/// unsigned (POSIX) or signed (some old tars).
pub fn checksum_matches(block: &[u8]) -> bool {
    let field = &block[148..156];
    let digits: String = field
        .iter()
        .map(|&b| b as char)
        .filter(|c| !matches!(c, ' ' | '\0'))
        .collect();
    let Ok(stored) = i64::from_str_radix(&digits, 8) else {
        return false;
    };
    let (mut unsigned, mut signed) = (0i64, 0i64);
    for (i, &b) in block.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        unsigned += i64::from(b);
        signed += i64::from(b as i8);
    }
    stored == unsigned || stored == signed
}

/// `text` with control characters escaped and cut at 200 characters: messages quote names
/// and the tar crate's errors, which may hold anything.
pub fn printable(text: &str) -> String {
    let mut out = String::new();
    for (i, c) in text.chars().enumerate() {
        if i == 200 {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(typeflag: u8, name: &[u8]) -> Vec<u8> {
        let mut block = vec![0u8; 512];
        block[..name.len()].copy_from_slice(name);
        block[156] = typeflag;
        block[148..156].copy_from_slice(b"        ");
        let sum: u32 = block.iter().map(|&b| u32::from(b)).sum();
        block[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        block
    }

    #[test]
    fn tells_headers_labels_and_random_data_apart() {
        assert_eq!(inspect(&header(b'0', b"etc/x")), Ok(Start::Header));
        assert_eq!(
            inspect(&header(b'V', b"my label")),
            Ok(Start::VolumeLabel("my label".into()))
        );
        assert_eq!(inspect(&[0u8; 512]), Ok(Start::Empty));
        let random: Vec<u8> = (0..512u32).map(|i| (i * 7919 % 251) as u8).collect();
        assert!(inspect(&random).unwrap_err().contains("checksum"));
        assert!(inspect(&[1u8; 10]).unwrap_err().contains("shorter"));
        assert_eq!(printable("a\u{1b}[2Jb"), "a\\u{1b}[2Jb");
    }
}
