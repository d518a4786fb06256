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
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
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
    /// Chunk outputs the tar reader is done with, for the inflate workers to fill again.
    spent: Spent,
}

/// Output buffers going back from the tar reader to the inflate workers: a chunk's output
/// allocated afresh is mapped, faulted in and unmapped by musl's malloc every time, and the
/// unmapping takes the address space's lock that every thread's page faults wait for.
type Spent = Arc<Mutex<Vec<Vec<u8>>>>;
/// Buffers kept waiting at most (the workers have about this many chunks in flight).
const SPENT_KEPT: usize = 4;

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
            spent: Spent::default(),
        })
    }

    /// Where the tar reader hands back each buffer of [`Payload::tar_stream`] once it is done
    /// with it (for reuse; dropping them instead is fine).
    pub fn recycler(&self) -> impl FnMut(Vec<u8>) + 'static {
        let spent = Arc::clone(&self.spent);
        move |buf| {
            if let Ok(mut spent) = spent.lock() {
                if spent.len() < SPENT_KEPT && buf.capacity() > 0 {
                    spent.push(buf);
                }
            }
        }
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
    let mut stream = Vec::with_capacity(data.len() + extra(last));
    stream.extend_from_slice(data);
    finish_stream(&mut stream, last);
    inflate_stream(&stream, data.len(), uncompressed, last, Vec::new())
}

// The fast decoder of this architecture: libdeflate where scripts/build has a C compiler for
// it (x86-64, the musl gcc), zune-inflate elsewhere (docs/installer.md, The inflate). Either
// is trusted only for success, as `inflate_stream` says.
#[cfg(target_arch = "x86_64")]
use libdeflate_path as fast;
#[cfg(not(target_arch = "x86_64"))]
use zune_path as fast;

/// How many bytes [`finish_stream`] adds.
fn extra(last: bool) -> usize {
    fast::extra(last)
}

/// Makes the chunk in `buf` the stream the fast decoder reads (its tail after a chunk that is
/// not the last, padding).
fn finish_stream(buf: &mut Vec<u8>, last: bool) {
    fast::finish(buf, last)
}

/// Inflates a chunk whose first `len` bytes of `stream` are the file's and the rest what
/// [`finish_stream`] added. The fast decoder does the work; whatever it does not turn into
/// exactly `uncompressed` bytes, its chunk read to the end and no final block in a chunk that
/// is not the last, is inflated again by miniz_oxide, which decides and words the refusal: a
/// corrupt chunk costs a second inflate, and a stream the fast decoder cannot read (zune-inflate
/// has refused valid ones before, issues etemesi254/zune-image#16 and #109) still installs.
/// What the fast decoders let pass and miniz_oxide would not: data after the last chunk's final
/// block (they stop there and do not say how much input they used), and output of the right
/// size but wrong content from a bug of their own; the file's SHA-256 and the gzip CRC-32
/// refuse those, before anything is moved into place.
fn inflate_stream(
    stream: &[u8],
    len: usize,
    uncompressed: u64,
    last: bool,
    out: Vec<u8>,
) -> Result<Vec<u8>, String> {
    let want = usize::try_from(uncompressed).map_err(|_| "chunk too large")?;
    match fast::inflate(stream, want, last, out) {
        Some(out) => Ok(out),
        None => inflate_chunk_miniz(&stream[..len], want, last),
    }
}

/// zune-inflate (safe Rust, about 1.4 times miniz_oxide's speed on these chunks).
#[cfg(any(test, not(target_arch = "x86_64")))]
mod zune_path {
    use zune_inflate::errors::DecodeErrorStatus;

    /// What a chunk that is not the last gets appended before zune-inflate reads it: such a
    /// chunk ends in a sync flush (an empty stored block, byte aligned, not final), so the next
    /// bits are a block header, and this one is of the reserved type 11 (BFINAL 0, BTYPE 11:
    /// 0b110). zune-inflate stops there with an error that carries the output so far: that
    /// error with exactly the announced output means every block of the chunk was read and
    /// none was final. (A final block appended instead would let a chunk holding a final block
    /// of its own pass: the decoder stops at the first one.)
    const SENTINEL: u8 = 0b110;
    /// zune-inflate's message for [`SENTINEL`] (0.2.54, `decoder.rs`). Should it change, every
    /// chunk simply goes to miniz_oxide (a unit test notices).
    const SENTINEL_ERROR: &str = "Reserved block type 0b11 encountered";
    /// Zero bytes after the stream for zune-inflate, which reads its input a 64-bit word
    /// ahead: a stored block that ends within its last 8 bytes (the sync flush's empty one) is
    /// mis-read without them ("reserved block type" on every chunk of the Debian test payload,
    /// 0.2.54).
    const PAD: usize = 16;
    /// Room beyond the announced size so that zune-inflate's fast loop, which writes up to a
    /// few hundred bytes past the end it reaches, never has to grow (and copy) the output.
    const SLACK: usize = 1024;

    // (Tests on x86-64 call `finish` and `inflate` only.)
    #[cfg_attr(target_arch = "x86_64", allow(dead_code))]
    pub fn extra(last: bool) -> usize {
        PAD + usize::from(!last)
    }

    pub fn finish(buf: &mut Vec<u8>, last: bool) {
        if !last {
            buf.push(SENTINEL);
        }
        buf.resize(buf.len() + PAD, 0);
    }

    /// Exactly `want` bytes, or `None` for miniz_oxide to decide. zune-inflate allocates its
    /// own output: `_out` (a buffer for reuse) is dropped.
    pub fn inflate(stream: &[u8], want: usize, last: bool, _out: Vec<u8>) -> Option<Vec<u8>> {
        let options = zune_inflate::DeflateOptions::default()
            .set_size_hint(want + SLACK)
            .set_limit(want);
        match zune_inflate::DeflateDecoder::new_with_options(stream, options).decode_deflate() {
            Ok(out) if last && out.len() == want => Some(out),
            Err(e)
                if !last
                    && e.data.len() == want
                    && matches!(e.error, DecodeErrorStatus::Generic(m) if m == SENTINEL_ERROR) =>
            {
                Some(e.data)
            }
            _ => None,
        }
    }
}

/// libdeflate (C; 1.4 times zune-inflate's speed on these chunks, docs/installer.md).
#[cfg(target_arch = "x86_64")]
mod libdeflate_path {
    /// What a chunk that is not the last gets appended: a final stored block holding one byte
    /// (BFINAL 1, BTYPE 00, the padding to the byte; LEN 1, NLEN; the byte). Such a chunk ends
    /// in a sync flush (byte aligned, not final), so this block follows on; libdeflate reads up
    /// to the first final block and does not say how much input it used, so the proof that
    /// every block of the chunk was read and none was final is the output: the announced size
    /// and then exactly this byte. A final block inside the chunk stops it short, a chunk
    /// longer than announced overflows the buffer.
    const TAIL: [u8; 6] = [0b001, 1, 0, 0xfe, 0xff, 0xa5];

    pub fn extra(last: bool) -> usize {
        if last {
            0
        } else {
            TAIL.len()
        }
    }

    pub fn finish(buf: &mut Vec<u8>, last: bool) {
        if !last {
            buf.extend_from_slice(&TAIL);
        }
    }

    /// Exactly `want` bytes, or `None` for miniz_oxide to decide; into `out` (a buffer back
    /// from the tar reader: only what it lacks is zeroed).
    pub fn inflate(stream: &[u8], want: usize, last: bool, mut out: Vec<u8>) -> Option<Vec<u8>> {
        let tail = usize::from(!last);
        out.resize(want + tail, 0);
        let n = libdeflater::Decompressor::new()
            .deflate_decompress(stream, &mut out)
            .ok()?;
        if n != out.len() || (!last && out[want] != TAIL[5]) {
            return None;
        }
        out.truncate(want);
        Some(out)
    }
}

/// miniz_oxide's inflate of one chunk into exactly `want` bytes, strict about the end: a chunk
/// that is not the last must stop right after its data (needing more input), the last must
/// end in its final block, and all of the input must be used.
fn inflate_chunk_miniz(data: &[u8], want: usize, last: bool) -> Result<Vec<u8>, String> {
    // One byte of room beyond the promise: with a full buffer the inflater stops with
    // HasMoreOutput before it can tell whether the chunk really ends there.
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

/// Reads a chunk's `len` bytes into `buf` (a buffer back from the consumer: only what it lacks
/// is zeroed, and no allocation per chunk, which musl's malloc would map and unmap) as a
/// stream ready for [`inflate_stream`].
fn read_chunk(
    file: &File,
    path: &Path,
    offset: u64,
    len: u64,
    last: bool,
    mut buf: Vec<u8>,
) -> Result<Vec<u8>, Error> {
    let len = usize::try_from(len).unwrap_or(0);
    buf.reserve((len + extra(last)).saturating_sub(buf.len()));
    buf.resize(len, 0);
    file.read_exact_at(&mut buf, offset)
        .map_err(|e| Error::io(path.display().to_string(), "read", e))?;
    finish_stream(&mut buf, last);
    Ok(buf)
}

struct Chunked {
    workers: Vec<Receiver<Result<Inflated, Error>>>,
    /// Per worker: its chunks' file bytes, hashed, going back for reuse.
    spent: Vec<SyncSender<Vec<u8>>>,
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
        let mut spent = Vec::new();
        for w in 0..WORKERS {
            let (tx, rx) = sync_channel(2);
            let (spent_tx, spare) = sync_channel::<Vec<u8>>(2);
            let file = Arc::clone(&p.file);
            let path = p.path.clone();
            let outputs = Arc::clone(&p.spent);
            let mine: Vec<(usize, _)> = chunks
                .iter()
                .copied()
                .enumerate()
                .skip(w)
                .step_by(WORKERS)
                .collect();
            thread::spawn(move || {
                for (index, chunk) in mine {
                    let last = index + 1 == count;
                    let buf = spare.try_recv().unwrap_or_default();
                    let result =
                        read_chunk(&file, &path, chunk.offset, chunk.compressed, last, buf)
                            .and_then(|mut data| {
                                let len = data.len() - extra(last);
                                let reused = outputs
                                    .lock()
                                    .ok()
                                    .and_then(|mut spent| spent.pop())
                                    .unwrap_or_default();
                                let out =
                                    inflate_stream(&data, len, chunk.uncompressed, last, reused)
                                        .map_err(|p| {
                                            Error::corrupt(
                                                &path,
                                                format!(
                                                    "chunk {index} at byte {}: {p}",
                                                    chunk.offset
                                                ),
                                            )
                                        })?;
                                // Back to the file's bytes, for the digest.
                                data.truncate(len);
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
            spent.push(spent_tx);
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
            spent,
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
        let w = self.next % WORKERS;
        self.next += 1;
        match self.workers[w].recv() {
            Ok(Ok((compressed, out, crc))) => {
                if let Some(sha) = self.sha.as_mut() {
                    sha.update(&compressed);
                }
                // Dropped instead when the worker has enough (or stopped).
                let _ = self.spent[w].try_send(compressed);
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

#[cfg(test)]
mod tests {
    use super::*;
    use miniz_oxide::deflate::core::{
        compress, create_comp_flags_from_zip_params, CompressorOxide, TDEFLFlush,
    };

    fn sample(len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| (i * 7 % 251) as u8 ^ (i / 1000) as u8)
            .collect()
    }

    /// A chunk as packer writes one: raw deflate ending in a sync flush (an empty stored
    /// block) or, for the last, in a final block.
    fn chunk(data: &[u8], level: u8, last: bool) -> Vec<u8> {
        let flags = create_comp_flags_from_zip_params(i32::from(level), -15, 0);
        let mut c = CompressorOxide::new(flags);
        let mut out = vec![0u8; data.len() + 1024];
        let flush = if last {
            TDEFLFlush::Finish
        } else {
            TDEFLFlush::Sync
        };
        let (_, read, written) = compress(&mut c, data, &mut out, flush);
        assert_eq!(read, data.len());
        out.truncate(written);
        out
    }

    /// Each fast decoder alone, as the fast path calls it (`None`: miniz_oxide would decide).
    fn fast_paths(data: &[u8], want: usize, last: bool) -> Vec<(&'static str, Option<Vec<u8>>)> {
        let mut stream = data.to_vec();
        zune_path::finish(&mut stream, last);
        #[allow(unused_mut)]
        let mut results = vec![(
            "zune-inflate",
            zune_path::inflate(&stream, want, last, Vec::new()),
        )];
        #[cfg(target_arch = "x86_64")]
        {
            let mut stream = data.to_vec();
            libdeflate_path::finish(&mut stream, last);
            results.push((
                "libdeflate",
                libdeflate_path::inflate(&stream, want, last, Vec::new()),
            ));
        }
        results
    }

    #[test]
    fn the_fast_path_reads_sync_flushed_and_final_chunks() {
        // Without its padding zune-inflate mis-reads the empty stored block at the end of
        // these; were its sentinel error worded otherwise, or libdeflate's tail not read, every
        // chunk would go to miniz_oxide.
        for level in [0, 1, 6, 9] {
            for len in [0, 1, 300, 65_535, 65_536, 200_000, 1 << 20] {
                let data = sample(len);
                for last in [false, true] {
                    let c = chunk(&data, level, last);
                    for (decoder, out) in fast_paths(&c, len, last) {
                        assert_eq!(
                            out.as_deref(),
                            Some(data.as_slice()),
                            "{decoder}: level {level}, {len} bytes, last {last}"
                        );
                    }
                    assert_eq!(inflate_chunk(&c, len as u64, last), Ok(data.clone()));
                }
            }
        }
    }

    #[test]
    fn the_fast_paths_refuse_a_final_block_or_a_wrong_size() {
        let data = sample(10_000);
        let last_one = chunk(&data, 6, true);
        let mut final_inside = last_one.clone();
        final_inside.extend_from_slice(&[0, 0, 0, 0xff, 0xff]);
        let other = chunk(&data, 6, false);
        for (what, c, want, last) in [
            (
                "a final block in a chunk that is not the last",
                &final_inside,
                10_000,
                false,
            ),
            ("a last chunk without a final block", &other, 10_000, true),
            ("one byte more than announced", &other, 9_999, false),
            ("one byte less than announced", &other, 10_001, false),
            ("one byte more than announced, last", &last_one, 9_999, true),
            (
                "one byte less than announced, last",
                &last_one,
                10_001,
                true,
            ),
        ] {
            for (decoder, out) in fast_paths(c, want, last) {
                assert_eq!(out, None, "{decoder}: {what}");
            }
        }
    }

    /// The fast path's verdict on a chunk is miniz_oxide's alone (strict about the end): what
    /// it accepts, miniz_oxide accepts with the same bytes.
    fn same_verdict(c: &[u8], n: u64, last: bool, what: &str) -> bool {
        let strict = inflate_chunk_miniz(c, n as usize, last);
        let ours = inflate_chunk(c, n, last);
        assert_eq!(ours.is_ok(), strict.is_ok(), "{what}");
        if let (Ok(a), Ok(b)) = (&ours, &strict) {
            assert!(a == b, "{what}: other bytes");
        }
        ours.is_ok()
    }

    #[test]
    fn a_wrong_size_a_cut_or_flipped_bytes_are_refused() {
        let data = sample(100_000);
        for last in [false, true] {
            let c = chunk(&data, 6, last);
            let n = data.len() as u64;
            assert!(
                inflate_chunk(&c, n - 1, last).is_err(),
                "more than announced"
            );
            assert!(
                inflate_chunk(&c, n + 1, last).is_err(),
                "less than announced"
            );
            // Cut inside the sync flush's last bytes, a chunk that is not the last still has all
            // its data (miniz_oxide's verdict too): the file's SHA-256 refuses such a payload.
            for cut in (1..32).chain((32..c.len()).step_by(997)) {
                let accepted = same_verdict(&c[..c.len() - cut], n, last, &format!("cut {cut}"));
                assert!(!accepted || (!last && cut < 7), "cut by {cut}, last {last}");
            }
            let mut refused = 0;
            for at in (0..c.len()).step_by(61).chain(c.len() - 16..c.len()) {
                for bit in [0x01, 0x10, 0x80] {
                    let mut bad = c.clone();
                    bad[at] ^= bit;
                    // A flip can give other bytes of the same length (the gzip CRC-32 catches
                    // those) or touch bits no inflater reads.
                    if !same_verdict(&bad, n, last, &format!("flip {bit:#x} at {at}")) {
                        refused += 1;
                    }
                }
            }
            assert!(refused > 100, "{refused} flips refused");
        }
        // A chunk that is not the last, read as the last, has no final block.
        let c = chunk(&data, 6, false);
        assert!(inflate_chunk(&c, 100_000, true).is_err());
    }

    #[test]
    fn a_final_block_inside_a_chunk_that_is_not_the_last_is_refused() {
        // The end of a finished stream followed by a sync flush: zune-inflate stops at the
        // final block, so miniz_oxide, which wants the input used up, decides.
        let data = sample(10_000);
        let mut c = chunk(&data, 6, true);
        c.extend_from_slice(&[0, 0, 0, 0xff, 0xff]);
        assert!(inflate_chunk(&c, 10_000, false).is_err());
    }
}
