//! The manifest that travels with the payload inside the installer distribution.
//!
//! A text file, one `key value` per line, so a person can read it and `sha256sum` can check it:
//!
//! ```text
//! nixos-wsl-payload 1
//! size 123456789
//! sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
//! tar-size 456789012
//! entries 41234
//! chunk 10 1048576 3145728
//! ```
//!
//! `size` and `sha256` describe the payload file; `tar-size` and `entries` the tar inside it.
//! Each optional `chunk OFFSET COMPRESSED UNCOMPRESSED` names a run of raw deflate data in the
//! payload that inflates on its own (it starts a fresh deflate stream and ends on a byte
//! boundary), in order, so a reader may inflate chunks in parallel; without chunks it reads
//! the gzip stream from the start.

use std::fmt;

/// First line of every manifest, with the format version.
pub const MAGIC: &str = "nixos-wsl-payload";
pub const VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Manifest {
    /// Size of the compressed payload file in bytes.
    pub size: u64,
    /// SHA-256 of the compressed payload file.
    pub sha256: [u8; 32],
    /// Size of the uncompressed tar stream in bytes.
    pub tar_size: u64,
    /// Number of tar entries (each name counts once, PAX headers do not count).
    pub entries: u64,
    /// Independently inflatable deflate runs, in file order; may be empty.
    pub chunks: Vec<Chunk>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunk {
    /// Byte offset of the chunk's deflate data in the payload file.
    pub offset: u64,
    pub compressed: u64,
    pub uncompressed: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestError {
    NotAManifest,
    UnsupportedVersion(String),
    BadLine { line: usize, text: String },
    Missing(&'static str),
    ChunksInconsistent,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotAManifest => write!(f, "not a payload manifest (no '{MAGIC}' line)"),
            Self::UnsupportedVersion(v) => write!(f, "manifest format {v} is not supported"),
            Self::BadLine { line, text } => write!(f, "line {line} is malformed: {text:?}"),
            Self::Missing(key) => write!(f, "the '{key}' line is missing"),
            Self::ChunksInconsistent => write!(f, "the chunk list does not cover the payload"),
        }
    }
}

impl std::error::Error for ManifestError {}

impl Manifest {
    pub fn render(&self) -> String {
        let mut out = format!(
            "{MAGIC} {VERSION}\nsize {}\nsha256 {}\ntar-size {}\nentries {}\n",
            self.size,
            hex(&self.sha256),
            self.tar_size,
            self.entries
        );
        for c in &self.chunks {
            out.push_str(&format!(
                "chunk {} {} {}\n",
                c.offset, c.compressed, c.uncompressed
            ));
        }
        out
    }

    pub fn parse(text: &str) -> Result<Self, ManifestError> {
        let mut lines = text.lines().enumerate();
        match lines.next().map(|(_, l)| l.split_once(' ')) {
            Some(Some((MAGIC, v))) if v == VERSION.to_string() => {}
            Some(Some((MAGIC, v))) => return Err(ManifestError::UnsupportedVersion(v.into())),
            _ => return Err(ManifestError::NotAManifest),
        }
        let (mut size, mut sha, mut tar_size, mut entries) = (None, None, None, None);
        let mut chunks = Vec::new();
        for (index, line) in lines {
            let bad = || ManifestError::BadLine {
                line: index + 1,
                text: line.to_owned(),
            };
            if line.trim().is_empty() {
                continue;
            }
            let mut words = line.split(' ');
            let key = words.next().ok_or_else(bad)?;
            let values: Vec<&str> = words.collect();
            let number = |i: usize| -> Result<u64, ManifestError> {
                values.get(i).and_then(|v| v.parse().ok()).ok_or_else(bad)
            };
            match (key, values.len()) {
                ("size", 1) => size = Some(number(0)?),
                ("sha256", 1) => sha = Some(unhex(values[0]).ok_or_else(bad)?),
                ("tar-size", 1) => tar_size = Some(number(0)?),
                ("entries", 1) => entries = Some(number(0)?),
                ("chunk", 3) => chunks.push(Chunk {
                    offset: number(0)?,
                    compressed: number(1)?,
                    uncompressed: number(2)?,
                }),
                _ => return Err(bad()),
            }
        }
        let manifest = Manifest {
            size: size.ok_or(ManifestError::Missing("size"))?,
            sha256: sha.ok_or(ManifestError::Missing("sha256"))?,
            tar_size: tar_size.ok_or(ManifestError::Missing("tar-size"))?,
            entries: entries.ok_or(ManifestError::Missing("entries"))?,
            chunks,
        };
        manifest.check_chunks()?;
        Ok(manifest)
    }

    /// Chunks must be in order, not overlap, lie inside the file and add up to the tar size.
    fn check_chunks(&self) -> Result<(), ManifestError> {
        if self.chunks.is_empty() {
            return Ok(());
        }
        let mut next_offset = 0u64;
        let mut total = 0u64;
        for c in &self.chunks {
            let end = c.offset.checked_add(c.compressed);
            if c.offset < next_offset || end.is_none_or(|e| e > self.size) {
                return Err(ManifestError::ChunksInconsistent);
            }
            next_offset = end.unwrap_or(u64::MAX);
            total = total
                .checked_add(c.uncompressed)
                .ok_or(ManifestError::ChunksInconsistent)?;
        }
        if total != self.tar_size {
            return Err(ManifestError::ChunksInconsistent);
        }
        Ok(())
    }
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

fn unhex(text: &str) -> Option<[u8; 32]> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks(2).enumerate() {
        let digit = |c: u8| (c as char).to_digit(16);
        out[i] = u8::try_from(digit(pair[0])? * 16 + digit(pair[1])?).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        Manifest {
            size: 100,
            sha256: [0xab; 32],
            tar_size: 300,
            entries: 7,
            chunks: vec![
                Chunk {
                    offset: 10,
                    compressed: 40,
                    uncompressed: 200,
                },
                Chunk {
                    offset: 50,
                    compressed: 42,
                    uncompressed: 100,
                },
            ],
        }
    }

    #[test]
    fn render_then_parse_round_trips() {
        let m = sample();
        assert_eq!(Manifest::parse(&m.render()), Ok(m));
    }

    #[test]
    fn rejects_other_files_and_versions() {
        assert_eq!(Manifest::parse("hello"), Err(ManifestError::NotAManifest));
        assert_eq!(
            Manifest::parse("nixos-wsl-payload 9\n"),
            Err(ManifestError::UnsupportedVersion("9".into()))
        );
    }

    #[test]
    fn names_the_bad_line() {
        let text = sample().render().replace("entries 7", "entries seven");
        assert!(matches!(
            Manifest::parse(&text),
            Err(ManifestError::BadLine { line: 5, .. })
        ));
    }

    #[test]
    fn rejects_missing_keys_and_bad_hashes() {
        let text = sample().render().replace("tar-size 300\n", "");
        assert_eq!(
            Manifest::parse(&text),
            Err(ManifestError::Missing("tar-size"))
        );
        let text = sample().render().replace(&hex(&[0xab; 32]), "abc");
        assert!(matches!(
            Manifest::parse(&text),
            Err(ManifestError::BadLine { .. })
        ));
    }

    #[test]
    fn rejects_chunks_that_do_not_fit() {
        let mut m = sample();
        m.chunks[1].compressed = 60; // runs past the end of the file
        assert_eq!(
            Manifest::parse(&m.render()),
            Err(ManifestError::ChunksInconsistent)
        );
        let mut m = sample();
        m.chunks[1].uncompressed = 1; // no longer adds up to tar-size
        assert_eq!(
            Manifest::parse(&m.render()),
            Err(ManifestError::ChunksInconsistent)
        );
    }
}
