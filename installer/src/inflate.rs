//! Turns the payload (one gzip member) into the tar stream, as a sequence of buffers, while
//! checking everything a damaged download can break: the file's size and SHA-256 against the
//! manifest, the gzip header, every chunk's deflate data, the CRC-32 and ISIZE trailer.
//!
//! With the manifest's chunk index, two worker threads inflate alternate chunks (each chunk is
//! a deflate run that starts fresh and ends on a byte boundary) and the consumer takes them in
//! order through bounded channels, so memory stays at a few chunks. Without one, a single
//! thread inflates the stream from the start. Either way the consumer (tar parsing, writing)
//! runs on the other core: decompression and writing overlap.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread;

use miniz_oxide::inflate::core::{decompress, inflate_flags, DecompressorOxide};
use miniz_oxide::inflate::stream::{inflate, InflateState};
use miniz_oxide::inflate::TINFLStatus;
use miniz_oxide::{DataFormat, MZError, MZFlush, MZStatus};
use sha2::{Digest, Sha256};
use wsl_common::manifest::Manifest;

use crate::error::Error;

/// Largest chunk the index may announce; packer writes 1 MiB chunks.
const MAX_CHUNK: u64 = 64 << 20;
/// Buffers handed to the consumer in sequential mode.
const PIECE: usize = 1 << 20;
const WORKERS: usize = 2;

type Item = Result<Vec<u8>, Error>;
/// A chunk's compressed bytes (for the digest), its data and the data's CRC-32.
type Inflated = (Vec<u8>, Vec<u8>, u32);

/// Length of the gzip header at the start of `head` (the first bytes of the file).
pub fn gzip_header_len(head: &[u8]) -> Result<usize, String> {
    if head.len() < 10 || head[0] != 0x1f || head[1] != 0x8b {
        return Err("not a gzip file".into());
    }
    if head[2] != 8 {
        return Err(format!("unknown gzip compression method {}", head[2]));
    }
    let flags = head[3];
    if flags & 0xe0 != 0 {
        return Err("reserved gzip header flags are set".into());
    }
    let mut at = 10usize;
    let short = || "the gzip header is cut short".to_string();
    if flags & 4 != 0 {
        let len = head.get(at..at + 2).ok_or_else(short)?;
        at += 2 + usize::from(u16::from_le_bytes([len[0], len[1]]));
    }
    for flag in [8u8, 16] {
        if flags & flag != 0 {
            let rest = head.get(at..).ok_or_else(short)?;
            let nul = rest.iter().position(|&c| c == 0).ok_or_else(short)?;
            at += nul + 1;
        }
    }
    if flags & 2 != 0 {
        at += 2;
    }
    if at > head.len() {
        return Err(short());
    }
    Ok(at)
}

/// The open payload with what the manifest says about it.
pub struct Payload {
    pub path: PathBuf,
    pub file: Arc<File>,
    pub manifest: Manifest,
    header_len: u64,
}

impl Payload {
    pub fn open(path: &Path, manifest: Manifest) -> Result<Self, Error> {
        let file =
            File::open(path).map_err(|e| Error::io(path.display().to_string(), "open", e))?;
        let size = file
            .metadata()
            .map_err(|e| Error::io(path.display().to_string(), "stat", e))?
            .len();
        let corrupt = |p: String| Error::corrupt(path, p);
        if size != manifest.size {
            return Err(corrupt(format!(
                "it is {size} bytes long but the manifest says {} (truncated or replaced?)",
                manifest.size
            )));
        }
        let mut head = vec![0u8; usize::try_from(size.min(65_536)).unwrap_or(65_536)];
        file.read_exact_at(&mut head, 0)
            .map_err(|e| Error::io(path.display().to_string(), "read", e))?;
        let header_len = gzip_header_len(&head).map_err(corrupt)? as u64;
        if size < header_len + 8 {
            return Err(corrupt("the gzip stream is cut short".into()));
        }
        if let Some(first) = manifest.chunks.first() {
            let last = manifest.chunks.last().unwrap_or(first);
            let contiguous = manifest
                .chunks
                .windows(2)
                .all(|w| w[0].offset + w[0].compressed == w[1].offset);
            if first.offset != header_len
                || !contiguous
                || last.offset + last.compressed + 8 != size
            {
                return Err(corrupt(
                    "the manifest's chunk index does not match the gzip stream".into(),
                ));
            }
            if manifest
                .chunks
                .iter()
                .any(|c| c.uncompressed > MAX_CHUNK || c.compressed > MAX_CHUNK)
            {
                return Err(corrupt(
                    "the manifest announces a chunk larger than 64 MiB".into(),
                ));
            }
        }
        Ok(Payload {
            path: path.to_owned(),
            file: Arc::new(file),
            manifest,
            header_len,
        })
    }

    /// The tar stream, checked as it goes; the last item is an error if any check fails.
    pub fn tar_stream(&self) -> Box<dyn Iterator<Item = Item> + Send> {
        if self.manifest.chunks.is_empty() {
            Box::new(sequential(self))
        } else {
            Box::new(Chunked::start(self))
        }
    }
}

fn read_at(file: &File, path: &Path, offset: u64, len: u64) -> Result<Vec<u8>, Error> {
    let mut buf = vec![0u8; usize::try_from(len).unwrap_or(0)];
    file.read_exact_at(&mut buf, offset)
        .map_err(|e| Error::io(path.display().to_string(), "read", e))?;
    Ok(buf)
}

/// Checks the 8-byte trailer and the whole file's digest.
fn check_trailer(
    path: &Path,
    trailer: &[u8],
    crc: u32,
    total: u64,
    sha: Sha256,
    want: &[u8; 32],
) -> Result<(), Error> {
    let corrupt = |p: &str| Error::corrupt(path, p);
    if trailer.len() != 8 {
        return Err(corrupt(
            "the gzip trailer is missing or followed by extra data",
        ));
    }
    if sha.finalize().as_slice() != want {
        return Err(corrupt("its SHA-256 does not match the manifest"));
    }
    if trailer[..4] != crc.to_le_bytes() {
        return Err(corrupt("the gzip CRC-32 does not match the data"));
    }
    if trailer[4..] != (total as u32).to_le_bytes() {
        return Err(corrupt("the gzip length (ISIZE) does not match the data"));
    }
    Ok(())
}

/// Inflates one chunk on its own into exactly `uncompressed` bytes.
pub fn inflate_chunk(data: &[u8], uncompressed: u64, last: bool) -> Result<Vec<u8>, String> {
    // One byte of room beyond the promise: with a full buffer the inflater stops with
    // HasMoreOutput before it can tell whether the chunk really ends there.
    let want = usize::try_from(uncompressed).map_err(|_| "chunk too large")?;
    let mut out = vec![0u8; want + 1];
    let mut state = DecompressorOxide::new();
    let mut flags = inflate_flags::TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF;
    if !last {
        flags |= inflate_flags::TINFL_FLAG_HAS_MORE_INPUT;
    }
    let (status, read, written) = decompress(&mut state, data, &mut out, 0, flags);
    let expected = if last {
        TINFLStatus::Done
    } else {
        TINFLStatus::NeedsMoreInput
    };
    if status != expected || read != data.len() || written != want {
        return Err(format!(
            "deflate data is corrupt ({status:?} after {read} of {} bytes, {written} of {want} out)",
            data.len()
        ));
    }
    out.truncate(want);
    Ok(out)
}

struct Chunked {
    workers: Vec<Receiver<Result<Inflated, Error>>>,
    next: usize,
    count: usize,
    sha: Option<Sha256>,
    crc: crc32fast::Hasher,
    total: u64,
    payload: (PathBuf, Arc<File>, u64, [u8; 32], u64),
    failed: bool,
}

impl Chunked {
    fn start(p: &Payload) -> Self {
        let chunks = p.manifest.chunks.clone();
        let count = chunks.len();
        let mut workers = Vec::new();
        for w in 0..WORKERS {
            let (tx, rx) = sync_channel(2);
            let file = Arc::clone(&p.file);
            let path = p.path.clone();
            let mine: Vec<(usize, _)> = chunks
                .iter()
                .copied()
                .enumerate()
                .skip(w)
                .step_by(WORKERS)
                .collect();
            thread::spawn(move || {
                for (index, chunk) in mine {
                    let result =
                        read_at(&file, &path, chunk.offset, chunk.compressed).and_then(|data| {
                            let out = inflate_chunk(&data, chunk.uncompressed, index + 1 == count)
                                .map_err(|p| {
                                    Error::corrupt(
                                        &path,
                                        format!("chunk {index} at byte {}: {p}", chunk.offset),
                                    )
                                })?;
                            let crc = crc32fast::hash(&out);
                            Ok((data, out, crc))
                        });
                    let stop = result.is_err();
                    if tx.send(result).is_err() || stop {
                        return;
                    }
                }
            });
            workers.push(rx);
        }
        let mut sha = Sha256::new();
        let header = read_at(&p.file, &p.path, 0, p.header_len);
        let failed = match header {
            Ok(h) => {
                sha.update(&h);
                false
            }
            Err(_) => true,
        };
        Chunked {
            workers,
            next: 0,
            count,
            sha: Some(sha),
            crc: crc32fast::Hasher::new(),
            total: 0,
            payload: (
                p.path.clone(),
                Arc::clone(&p.file),
                p.manifest.size,
                p.manifest.sha256,
                p.manifest.tar_size,
            ),
            failed,
        }
    }

    fn finish(&mut self) -> Result<(), Error> {
        let (path, file, size, want, _) = &self.payload;
        let trailer = read_at(file, path, size - 8, 8)?;
        let mut sha = self.sha.take().unwrap_or_default();
        sha.update(&trailer);
        check_trailer(
            path,
            &trailer,
            self.crc.clone().finalize(),
            self.total,
            sha,
            want,
        )
    }
}

impl Iterator for Chunked {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        if self.failed {
            return None;
        }
        if self.next == self.count {
            self.failed = true; // done: the next call ends the stream
            return match self.finish() {
                Ok(()) => None,
                Err(e) => Some(Err(e)),
            };
        }
        let worker = &self.workers[self.next % WORKERS];
        self.next += 1;
        match worker.recv() {
            Ok(Ok((compressed, out, crc))) => {
                if let Some(sha) = self.sha.as_mut() {
                    sha.update(&compressed);
                }
                self.crc.combine(&crc32fast::Hasher::new_with_initial_len(
                    crc,
                    out.len() as u64,
                ));
                self.total += out.len() as u64;
                Some(Ok(out))
            }
            Ok(Err(e)) => {
                self.failed = true;
                Some(Err(e))
            }
            Err(_) => {
                self.failed = true;
                Some(Err(Error::corrupt(
                    &self.payload.0,
                    "an inflate worker stopped",
                )))
            }
        }
    }
}

/// One thread reads, hashes and inflates the stream from the start.
fn sequential(p: &Payload) -> impl Iterator<Item = Item> {
    let (tx, rx) = sync_channel::<Item>(4);
    let file = Arc::clone(&p.file);
    let path = p.path.clone();
    let (size, want, header_len) = (p.manifest.size, p.manifest.sha256, p.header_len);
    thread::spawn(move || {
        let result = (|| -> Result<(), Error> {
            let corrupt = |m: &str| Error::corrupt(&path, m);
            let mut sha = Sha256::new();
            let mut crc = crc32fast::Hasher::new();
            let mut state = InflateState::new_boxed(DataFormat::Raw);
            let mut offset = 0u64;
            let mut input: Vec<u8> = Vec::new();
            let mut start = usize::try_from(header_len).unwrap_or(0);
            let mut total = 0u64;
            let mut out = vec![0u8; PIECE];
            let mut filled = 0usize;
            let mut ended = false;
            while !ended {
                if start >= input.len() {
                    let len = (size - offset).min(PIECE as u64);
                    if len == 0 {
                        return Err(corrupt("the deflate stream is cut short"));
                    }
                    input = read_at(&file, &path, offset, len)?;
                    sha.update(&input);
                    offset += len;
                    if start >= input.len() {
                        start -= input.len();
                        continue;
                    }
                }
                let r = inflate(
                    &mut state,
                    &input[start..],
                    &mut out[filled..],
                    MZFlush::None,
                );
                start += r.bytes_consumed;
                filled += r.bytes_written;
                match r.status {
                    Ok(MZStatus::StreamEnd) => ended = true,
                    Ok(_) | Err(MZError::Buf) => {}
                    Err(e) => {
                        return Err(corrupt(&format!(
                            "deflate data is corrupt ({e:?}) near byte {offset}"
                        )))
                    }
                }
                if filled == out.len() || (ended && filled > 0) {
                    out.truncate(filled);
                    crc.update(&out);
                    total += filled as u64;
                    if tx
                        .send(Ok(std::mem::replace(&mut out, vec![0u8; PIECE])))
                        .is_err()
                    {
                        return Ok(());
                    }
                    filled = 0;
                }
            }
            // The trailer: what is left of this buffer plus the rest of the file.
            let mut trailer = input[start..].to_vec();
            if size - offset > 8 {
                return Err(corrupt("data follows the gzip stream"));
            }
            if offset < size {
                let rest = read_at(&file, &path, offset, size - offset)?;
                sha.update(&rest);
                trailer.extend_from_slice(&rest);
            }
            check_trailer(&path, &trailer, crc.finalize(), total, sha, &want)
        })();
        if let Err(e) = result {
            let _ = tx.send(Err(e));
        }
    });
    rx.into_iter()
}
