//! The installer's parts, as a library so the fuzz target (fuzz/) and tests reach the archive
//! reading path; `main.rs` is the thin binary.

pub mod args;
pub mod crash;
pub mod dirwalk;
pub mod error;
pub mod inflate;
pub mod install;
pub mod merge;
pub mod mounts;
pub mod obstacles;
pub mod progress;
pub mod rules;
pub mod tar;
pub mod unpack;

/// The checks over an in-memory tar stream: every header parsed and every entry checked, as the
/// installer does before writing each into its staging directory. Returns the number of
/// entries. For fuzzing.
pub fn verify_tar(data: &[u8]) -> Result<u64, String> {
    let pieces = data.chunks(4096).map(|c| Ok(c.to_vec()));
    let mut stream = tar::Stream::new(pieces, data.len() as u64);
    let mut rules = rules::Rules::default();
    let mut entries = 0;
    let show = |e: tar::TarError| format!("{e:?}");
    while let Some(mut entry) = tar::next_entry(&mut stream).map_err(show)? {
        entries += 1;
        rules.check(&mut entry)?;
        tar::skip_data(&mut stream, entry.size).map_err(show)?;
    }
    Ok(entries)
}

/// The gzip header and one chunk's raw deflate data, as the payload reader takes them.
pub fn inflate_chunk(data: &[u8], uncompressed: u64, last: bool) -> Result<Vec<u8>, String> {
    let _ = inflate::gzip_header_len(data);
    inflate::inflate_chunk(data, uncompressed.min(1 << 20), last)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A poor man's fuzz run in every `cargo test`: each byte of a small valid archive flipped
    /// in turn, and the archive cut at every block; the checks must answer, never panic.
    #[test]
    fn the_checks_survive_every_single_byte_flip_and_cut() {
        let pax = b"30 path=a/very/long/name/here\n25 SCHILY.xattr.user.k=v\n";
        let data = tar::tests::archive(&[
            &tar::tests::header("dir/", b'5', 0, ""),
            &tar::tests::header("dir/file", b'0', 3, ""),
            b"abc",
            &tar::tests::header("././@PaxHeader", b'x', pax.len() as u64, ""),
            pax,
            &tar::tests::header("link", b'1', 0, "dir/file"),
        ]);
        assert_eq!(verify_tar(&data), Ok(3));
        for i in 0..data.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut bad = data.clone();
                bad[i] ^= flip;
                let _ = verify_tar(&bad);
            }
        }
        for cut in (0..data.len() - 2 * tar::BLOCK).step_by(512) {
            assert!(verify_tar(&data[..cut]).is_err(), "cut at {cut} accepted");
        }
    }
}
