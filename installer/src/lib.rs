//! The installer's parts, as a library so the fuzz target (fuzz/) and tests reach the archive
//! reading path; `main.rs` is the thin binary.

pub mod args;
pub mod crash;
pub mod dirwalk;
pub mod error;
pub mod inflate;
pub mod install;
pub mod progress;
pub mod rules;
pub mod tar;
pub mod unpack;

/// Pass 1 over an in-memory tar stream: every header parsed and every entry checked, as the
/// installer does before writing anything. Returns the number of entries. For fuzzing.
pub fn verify_tar(data: &[u8]) -> Result<u64, String> {
    let pieces = data.chunks(4096).map(|c| Ok(c.to_vec()));
    let mut stream = tar::Stream::new(pieces, data.len() as u64, false);
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
