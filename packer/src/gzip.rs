//! Multi-threaded gzip whose bytes do not depend on the number of threads.
//!
//! The tar stream is cut into fixed-size chunks (1 MiB of input). Each chunk is compressed on
//! its own as raw deflate ending in a sync flush (the last one in a final block), so the
//! compressed chunks simply concatenate into one standard gzip member (pigz `-i` style).
//! libdeflate compresses them by default: whole buffers are what it does best, and it is about
//! twice as fast as zlib-rs at a smaller size; its stream's final bit is cleared and the sync
//! flush appended after a walk over its blocks ([`crate::deflate_walk`]). zlib-rs and
//! miniz_oxide stay behind the hidden `--deflate` option for comparison (docs/packer.md). The
//! header is fixed (no name, mtime 0, OS unknown); the trailer's CRC-32 is combined from the
//! chunks' CRCs. Because every chunk starts a fresh deflate stream on a byte boundary, the chunk
//! list (offset, sizes) lets a reader inflate chunks in parallel: it goes into the payload
//! manifest.
//!
//! Memory is bounded: a reader (the caller) -> N compressor threads -> one ordered writer, with
//! at most about 3N chunks in flight.
//!
//! The caller may also end a chunk early ([`ParallelGzip::cut`]) and have chunks written
//! before written again ([`ParallelGzip::repeat`]): a file's data that starts and ends its own
//! chunks compresses to bytes that stand for it wherever it recurs (a hard link written out in
//! full), and the writer reads them back from its output instead of a compressor redoing them.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};

use sha2::{Digest, Sha256};
use wsl_common::manifest::Chunk;

use crate::deflate_walk::{self, LastBlock, WalkError, Walker};
use crate::sys;

/// Uncompressed bytes per chunk.
pub const CHUNK_SIZE: usize = 1 << 20;

/// Uncompressed bytes a compressor thread takes at a time: two full chunks, whose streams it
/// walks in turn, or more of the shorter chunks that cuts leave.
const BATCH_BYTES: usize = 2 * CHUNK_SIZE;

/// At most this many chunks at a time, whatever their size: each job holds a buffer of
/// `CHUNK_SIZE` (a short chunk keeps its buffer's capacity), so this bounds the memory.
const BATCH_JOBS: usize = 4;

/// gzip magic, deflate, no flags, mtime 0, no extra flags, OS 255 ("unknown"): nothing about
/// the machine or the moment.
pub const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// Which deflate implementation compresses the chunks (see docs/packer.md for the comparison).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deflater {
    /// libdeflate (whole-buffer compression; the default).
    Libdeflate,
    ZlibRs,
    Miniz,
}

/// What was written, for the summary and the payload manifest.
#[derive(Debug, Clone, Default)]
pub struct Written {
    pub compressed_size: u64,
    pub uncompressed_size: u64,
    /// SHA-256 of the whole file, when asked for (the payload's manifest needs it).
    pub sha256: [u8; 32],
    pub chunks: Vec<Chunk>,
}

/// Where the gzip file goes: written in order, and read back to repeat chunks.
pub trait Output: Write + Send + 'static {
    /// Fills `buf` with the bytes written at `offset` (counted from the first byte written).
    fn read_back(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()>;
}

/// A new file (packer's temporary output): its byte 0 is the first byte written.
impl Output for BufWriter<File> {
    fn read_back(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.flush()?;
        self.get_ref().read_exact_at(buf, offset)
    }
}

/// For the unit tests, which write into memory.
#[cfg(test)]
impl Output for Vec<u8> {
    fn read_back(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        let piece = start
            .checked_add(buf.len())
            .and_then(|end| self.get(start..end))
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        buf.copy_from_slice(piece);
        Ok(())
    }
}

/// Numbers count in the order the writer writes: `index` jobs, `chunks` the chunks of the
/// gzip file (a repeat is one job of several chunks).
enum Job {
    Deflate(Deflate),
    /// Write these chunks, written before, again.
    Repeat {
        index: u64,
        chunks: Range<usize>,
    },
}

struct Deflate {
    index: u64,
    data: Vec<u8>,
    level: u32,
    last: bool,
}

enum Done {
    Deflated {
        index: u64,
        compressed: Vec<u8>,
        crc: u32,
        uncompressed: u64,
    },
    Repeat {
        index: u64,
        chunks: Range<usize>,
    },
}

impl Done {
    fn index(&self) -> u64 {
        match self {
            Done::Deflated { index, .. } | Done::Repeat { index, .. } => *index,
        }
    }
}

/// A `Write` for the tar stream; `finish` completes the gzip file and hands the sink back.
pub struct ParallelGzip<W: Output> {
    /// The chunk being filled: always `CHUNK_SIZE` long (so files are read straight into
    /// it), `filled` bytes of it data.
    buf: Vec<u8>,
    filled: usize,
    /// Chunk buffers the workers are done with, back for reuse (no allocation and no zeroing
    /// per chunk).
    spare: Receiver<Vec<u8>>,
    next_index: u64,
    /// Chunks of the gzip file sent so far (deflated or repeated).
    chunks_sent: usize,
    level: u32,
    jobs: Option<SyncSender<Job>>,
    workers: Vec<JoinHandle<()>>,
    writer: Option<JoinHandle<io::Result<(W, Written)>>>,
}

impl<W: Output> ParallelGzip<W> {
    /// `hash`: also compute the SHA-256 of the output (costs a little of the writer's time).
    pub fn new(sink: W, level: u32, threads: usize, deflater: Deflater, hash: bool) -> Self {
        let threads = threads.max(1);
        let (job_tx, job_rx) = sync_channel::<Job>(threads * 2);
        let (done_tx, done_rx) = sync_channel::<Done>(threads * 2);
        let (spare_tx, spare_rx) = sync_channel::<Vec<u8>>(threads + 1);
        let job_rx = Arc::new(Mutex::new(job_rx));
        let workers = (0..threads)
            .map(|_| {
                let jobs = Arc::clone(&job_rx);
                let done = done_tx.clone();
                let spare = spare_tx.clone();
                thread::spawn(move || compress_jobs(&jobs, &done, &spare, deflater))
            })
            .collect();
        drop(done_tx);
        let writer = thread::spawn(move || write_in_order(sink, &done_rx, hash));
        Self {
            buf: vec![0; CHUNK_SIZE],
            filled: 0,
            spare: spare_rx,
            next_index: 0,
            chunks_sent: 0,
            level: level.min(9),
            jobs: Some(job_tx),
            workers,
            writer: Some(writer),
        }
    }

    /// Level for chunks started from now on (0 stores: for data that is compressed already).
    /// Chunk boundaries do not move, so the output stays the same for any thread count.
    pub fn set_level(&mut self, level: u32) {
        self.level = level.min(9);
    }

    /// The level [`ParallelGzip::set_level`] set last.
    pub fn level(&self) -> u32 {
        self.level
    }

    fn send(&mut self, last: bool) -> io::Result<()> {
        let next = if last {
            Vec::new()
        } else {
            let mut next = self.spare.try_recv().unwrap_or_default();
            // Only a partial chunk (none but the last) comes back shorter.
            next.resize(CHUNK_SIZE, 0);
            next
        };
        let mut data = std::mem::replace(&mut self.buf, next);
        data.truncate(self.filled);
        self.filled = 0;
        let job = Job::Deflate(Deflate {
            index: self.next_index,
            data,
            level: self.level,
            last,
        });
        self.chunks_sent += 1;
        self.queue(job)
    }

    /// Ends the chunk being filled here (nothing when it is empty), so that the next bytes
    /// start a chunk of their own.
    pub fn cut(&mut self) -> io::Result<()> {
        if self.filled > 0 {
            self.send(false)?;
        }
        Ok(())
    }

    /// The number the next chunk will have in [`Written::chunks`] (after a [`cut`]).
    ///
    /// [`cut`]: ParallelGzip::cut
    pub fn next_chunk(&self) -> usize {
        self.chunks_sent
    }

    /// Cuts, then writes the chunks `chunks` (sent before) once more: the same compressed
    /// bytes, for the same data.
    pub fn repeat(&mut self, chunks: Range<usize>) -> io::Result<()> {
        self.cut()?;
        if chunks.end > self.chunks_sent {
            return Err(io::Error::other(format!(
                "chunks {chunks:?} repeated before they were written"
            )));
        }
        self.chunks_sent += chunks.len();
        let job = Job::Repeat {
            index: self.next_index,
            chunks,
        };
        self.queue(job)
    }

    fn queue(&mut self, job: Job) -> io::Result<()> {
        self.next_index += 1;
        let sent = self
            .jobs
            .as_ref()
            .map(|jobs| jobs.send(job).is_ok())
            .unwrap_or(false);
        if sent {
            Ok(())
        } else {
            // The writer stopped: its error is the one worth reporting.
            Err(self
                .stop()
                .err()
                .unwrap_or_else(|| io::Error::other("the gzip writer stopped")))
        }
    }

    fn stop(&mut self) -> io::Result<(W, Written)> {
        self.jobs = None;
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
        match self.writer.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(io::Error::other("the gzip writer thread panicked")),
            None => Err(io::Error::other("the gzip stream was already finished")),
        }
    }

    pub fn finish(mut self) -> io::Result<(W, Written)> {
        self.send(true)?;
        self.stop()
    }

    /// Reads at most `max` bytes of `reader` straight into the chunk being filled (one read
    /// call; `Ok(Ok(0))` at the reader's end). The outer error is the stream's (the writer
    /// stopped), the inner one the reader's.
    pub fn read_from(&mut self, reader: &mut dyn Read, max: u64) -> io::Result<io::Result<usize>> {
        let want = (CHUNK_SIZE - self.filled).min(usize::try_from(max).unwrap_or(usize::MAX));
        let read = reader.read(&mut self.buf[self.filled..self.filled + want]);
        if let Ok(n) = read {
            self.filled += n;
            if self.filled == CHUNK_SIZE {
                self.send(false)?;
            }
        }
        Ok(read)
    }
}

impl<W: Output> Write for ParallelGzip<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(CHUNK_SIZE - self.filled);
        self.buf[self.filled..self.filled + n].copy_from_slice(&data[..n]);
        self.filled += n;
        if self.filled == CHUNK_SIZE {
            self.send(false)?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<W: Output> Drop for ParallelGzip<W> {
    fn drop(&mut self) {
        if self.writer.is_some() {
            let _ = self.stop();
        }
    }
}

/// A worker: takes chunks to deflate until they hold [`BATCH_BYTES`] (two full chunks, or up
/// to [`BATCH_JOBS`] short ones; fewer only at the end of the stream) so that libdeflate's
/// streams are walked two at a time ([`deflate_walk::last_blocks`]); repeats and stored chunks
/// that come between go straight on to the writer. Which chunks go together changes nothing in
/// their bytes. Waiting for more jobs holds up no other thread: the queue is empty then,
/// so the reader is busy reading, and the writer takes every finished chunk (and repeat) at
/// once, whatever it waits for.
fn compress_jobs(
    jobs: &Mutex<Receiver<Job>>,
    done: &SyncSender<Done>,
    spare: &SyncSender<Vec<u8>>,
    deflater: Deflater,
) {
    let mut engine = Engine::new(deflater);
    let mut batch: Vec<Deflate> = Vec::with_capacity(2);
    let batch_full = |batch: &[Deflate]| {
        batch.len() >= BATCH_JOBS
            || batch.iter().map(|job| job.data.len()).sum::<usize>() >= BATCH_BYTES
    };
    loop {
        let mut stored = None;
        {
            let Ok(rx) = jobs.lock() else { return };
            while !batch_full(&batch) {
                let Ok(job) = rx.recv() else { break };
                match job {
                    // Stored: nothing to walk, so no partner for a walk in turn (which would
                    // then walk its stream alone).
                    Job::Deflate(job) if job.level == 0 => {
                        stored = Some(job);
                        break;
                    }
                    Job::Deflate(job) => batch.push(job),
                    Job::Repeat { index, chunks } => {
                        if done.send(Done::Repeat { index, chunks }).is_err() {
                            return;
                        }
                    }
                }
            }
        }
        if let Some(job) = stored {
            let compressed = engine.deflate(&job.data, 0, job.last);
            if !deliver(job, compressed, done, spare) {
                return;
            }
            if !batch_full(&batch) {
                // It came between: go on collecting.
                continue;
            }
        }
        if batch.is_empty() {
            return;
        }
        let compressed = engine.deflate_batch(&batch);
        for (job, compressed) in batch.drain(..).zip(compressed) {
            if !deliver(job, compressed, done, spare) {
                return;
            }
        }
    }
}

/// Sends a compressed chunk to the writer and its buffer back to the reader; `false` when the
/// writer has stopped.
fn deliver(
    job: Deflate,
    compressed: Vec<u8>,
    done: &SyncSender<Done>,
    spare: &SyncSender<Vec<u8>>,
) -> bool {
    let result = Done::Deflated {
        index: job.index,
        compressed,
        crc: crc32fast::hash(&job.data),
        uncompressed: job.data.len() as u64,
    };
    // Back to the reader for the next chunk; dropped when enough wait there already.
    let _ = spare.try_send(job.data);
    done.send(result).is_ok()
}

fn write_in_order<W: Output>(
    sink: W,
    done: &Receiver<Done>,
    hash: bool,
) -> io::Result<(W, Written)> {
    let mut out = OrderedWriter {
        sink,
        sha: hash.then(Sha256::new),
        crc: crc32fast::Hasher::new(),
        crcs: Vec::new(),
        written: Written::default(),
        offset: 0,
        copy: Vec::new(),
    };
    out.put(&GZIP_HEADER)?;
    let mut waiting = BTreeMap::new();
    let mut next = 0u64;
    for chunk in done {
        waiting.insert(chunk.index(), chunk);
        while let Some(chunk) = waiting.remove(&next) {
            match chunk {
                Done::Deflated {
                    compressed,
                    crc,
                    uncompressed,
                    ..
                } => out.chunk(&compressed, crc, uncompressed)?,
                Done::Repeat { chunks, .. } => out.repeat(chunks)?,
            }
            next += 1;
        }
    }
    if !waiting.is_empty() {
        return Err(io::Error::other("a compressor thread stopped early"));
    }
    out.finish()
}

/// The writer's state: what went out so far, and each chunk's CRC for repeating it.
struct OrderedWriter<W: Output> {
    sink: W,
    sha: Option<Sha256>,
    crc: crc32fast::Hasher,
    /// CRC-32 of each chunk's uncompressed bytes, by chunk number.
    crcs: Vec<u32>,
    written: Written,
    offset: u64,
    /// Buffer for the bytes read back.
    copy: Vec<u8>,
}

impl<W: Output> OrderedWriter<W> {
    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.sink.write_all(bytes)?;
        if let Some(sha) = &mut self.sha {
            sha.update(bytes);
        }
        self.offset += bytes.len() as u64;
        Ok(())
    }

    fn chunk(&mut self, compressed: &[u8], crc: u32, uncompressed: u64) -> io::Result<()> {
        let offset = self.offset;
        self.put(compressed)?;
        self.crc
            .combine(&crc32fast::Hasher::new_with_initial_len(crc, uncompressed));
        self.crcs.push(crc);
        self.written.chunks.push(Chunk {
            offset,
            compressed: compressed.len() as u64,
            uncompressed,
        });
        self.written.uncompressed_size += uncompressed;
        Ok(())
    }

    fn repeat(&mut self, chunks: Range<usize>) -> io::Result<()> {
        for number in chunks {
            let (Some(&chunk), Some(&crc)) =
                (self.written.chunks.get(number), self.crcs.get(number))
            else {
                return Err(io::Error::other(format!(
                    "chunk {number} repeated before it was written"
                )));
            };
            let mut copy = std::mem::take(&mut self.copy);
            copy.resize(chunk.compressed as usize, 0);
            self.sink.read_back(chunk.offset, &mut copy)?;
            let result = self.chunk(&copy, crc, chunk.uncompressed);
            self.copy = copy;
            result?;
        }
        Ok(())
    }

    fn finish(mut self) -> io::Result<(W, Written)> {
        let mut trailer = [0u8; 8];
        trailer[..4].copy_from_slice(&self.crc.clone().finalize().to_le_bytes());
        // ISIZE is the input size modulo 2^32 (RFC 1952).
        trailer[4..].copy_from_slice(&(self.written.uncompressed_size as u32).to_le_bytes());
        self.put(&trailer)?;
        self.sink.flush()?;
        self.written.compressed_size = self.offset;
        if let Some(sha) = self.sha.take() {
            self.written.sha256 = sha.finalize().into();
        }
        Ok((self.sink, self.written))
    }
}

/// How zlib-rs is driven for each gzip level: (zlib-rs level, match parameters over it).
///
/// zlib-rs follows zlib-ng: levels up to 8 hash 4 bytes and miss the 3-byte matches classic
/// zlib finds, so its level 6 is about 2 % bigger than `gzip -6`. Its level 9 hashes like
/// classic zlib; tuned down with `deflateTune` it gives gzip's sizes (within 0.5 % at 6) at
/// about twice gzip's speed per core. Levels 1-3 stay zlib-rs's own fast strategies.
pub fn zlib_rs_params(level: u32) -> (i32, Option<sys::Tuning>) {
    match level {
        0..=3 => (level as i32, None),
        4 => (9, Some((4, 4, 16, 16))),
        5 => (9, Some((4, 8, 32, 32))),
        6 => (9, Some((4, 16, 64, 64))),
        7 => (9, Some((8, 16, 128, 128))),
        8 => (9, Some((8, 32, 128, 256))),
        _ => (9, None),
    }
}

/// One deflate implementation, reused from chunk to chunk.
enum Engine {
    /// The compressor for the current level, the block walkers' tables (two streams are
    /// walked at a time), a scratch output buffer.
    Libdeflate(
        Option<(u32, libdeflater::Compressor)>,
        Box<[Walker; 2]>,
        Vec<u8>,
    ),
    ZlibRs(Option<(u32, sys::RawDeflate)>),
    Miniz(Box<miniz_oxide::deflate::core::CompressorOxide>),
}

impl Engine {
    fn new(deflater: Deflater) -> Self {
        match deflater {
            Deflater::Libdeflate => Engine::Libdeflate(None, Box::default(), Vec::new()),
            Deflater::ZlibRs => Engine::ZlibRs(None),
            Deflater::Miniz => Engine::Miniz(Box::default()),
        }
    }

    /// [`Engine::deflate`] of each job; libdeflate's chunks are walked two at a time.
    fn deflate_batch(&mut self, jobs: &[Deflate]) -> Vec<Vec<u8>> {
        match self {
            Engine::Libdeflate(state, walkers, scratch) => {
                let chunks: Vec<ChunkInput> = jobs
                    .iter()
                    .map(|job| ChunkInput {
                        data: &job.data,
                        level: job.level,
                        last: job.last,
                    })
                    .collect();
                libdeflate_chunks(state, walkers, scratch, &chunks)
            }
            _ => jobs
                .iter()
                .map(|job| self.deflate(&job.data, job.level, job.last))
                .collect(),
        }
    }

    /// Raw deflate of `data` as a stream of its own: ends in a sync flush (byte aligned, not
    /// final) or, for the last chunk, in a final block.
    fn deflate(&mut self, data: &[u8], level: u32, last: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len() + data.len() / 64 + 64);
        match self {
            Engine::Libdeflate(state, walkers, scratch) => {
                let chunk = ChunkInput { data, level, last };
                return libdeflate_chunks(state, walkers, scratch, &[chunk])
                    .pop()
                    .unwrap_or_default();
            }
            Engine::ZlibRs(state) => {
                if !matches!(state, Some((l, _)) if *l == level) {
                    let (zlib_level, tuning) = zlib_rs_params(level);
                    *state = sys::RawDeflate::new(zlib_level, tuning).map(|d| (level, d));
                }
                match state {
                    Some((_, deflater)) => deflater.compress(data, last, &mut out),
                    // zlib-rs refused a level 0-9 setup: store instead (still valid deflate).
                    None => stored(data, last, &mut out),
                }
            }
            Engine::Miniz(compressor) => {
                use miniz_oxide::deflate::core::{compress, TDEFLFlush, TDEFLStatus};
                compressor.reset();
                compressor.set_format_and_level(miniz_oxide::DataFormat::Raw, level as u8);
                let flush = if last {
                    TDEFLFlush::Finish
                } else {
                    TDEFLFlush::Sync
                };
                let mut consumed = 0;
                loop {
                    let start = out.len();
                    out.resize(out.capacity().max(start + 4096), 0);
                    let (status, read, wrote) =
                        compress(compressor, &data[consumed..], &mut out[start..], flush);
                    consumed += read;
                    out.truncate(start + wrote);
                    let room_left = start + wrote < out.capacity();
                    match status {
                        TDEFLStatus::Done => break,
                        TDEFLStatus::Okay if consumed == data.len() && room_left && !last => break,
                        TDEFLStatus::Okay => out.reserve(out.capacity().max(4096)),
                        _ => break,
                    }
                }
            }
        }
        out
    }
}

/// One chunk's input for [`libdeflate_chunks`].
#[derive(Clone, Copy)]
struct ChunkInput<'a> {
    data: &'a [u8],
    level: u32,
    last: bool,
}

/// libdeflate compresses a whole buffer into a complete stream, its last block marked final.
/// For a chunk that is not the last, that bit is cleared and an empty stored block appended
/// (what zlib's sync flush writes: it ends the chunk on a byte boundary), so the next chunk's
/// blocks follow on; finding the bit takes a walk over the blocks ([`crate::deflate_walk`]),
/// two streams at a time. Should libdeflate fail or its stream not walk (neither expected),
/// the chunk is stored.
fn libdeflate_chunks(
    state: &mut Option<(u32, libdeflater::Compressor)>,
    walkers: &mut [Walker; 2],
    scratch: &mut Vec<u8>,
    chunks: &[ChunkInput],
) -> Vec<Vec<u8>> {
    let mut outs = Vec::with_capacity(chunks.len());
    let mut to_walk = Vec::with_capacity(chunks.len());
    for (i, chunk) in chunks.iter().enumerate() {
        let mut out = Vec::with_capacity(chunk.data.len() + chunk.data.len() / 64 + 64);
        if libdeflate_whole(state, scratch, chunk, &mut out) {
            if !chunk.last {
                to_walk.push(i);
            }
        } else {
            stored(chunk.data, chunk.last, &mut out);
        }
        outs.push(out);
    }
    let streams: Vec<&[u8]> = to_walk.iter().map(|&i| outs[i].as_slice()).collect();
    let found = deflate_walk::last_blocks(walkers, &streams);
    for (&i, found) in to_walk.iter().zip(found) {
        join_on(&mut outs[i], found, chunks[i].data);
    }
    outs
}

/// Compresses `chunk` into `out` as one complete stream; `false` when it is to be stored
/// (level 0, or libdeflate refused).
fn libdeflate_whole(
    state: &mut Option<(u32, libdeflater::Compressor)>,
    scratch: &mut Vec<u8>,
    chunk: &ChunkInput,
    out: &mut Vec<u8>,
) -> bool {
    if chunk.level == 0 {
        return false;
    }
    if !matches!(state, Some((l, _)) if *l == chunk.level) {
        *state = libdeflater::CompressionLvl::new(chunk.level as i32)
            .ok()
            .map(|lvl| (chunk.level, libdeflater::Compressor::new(lvl)));
    }
    let Some((_, compressor)) = state else {
        return false;
    };
    // The scratch buffer only grows, so it is zeroed once, not for every chunk.
    let bound = compressor.deflate_compress_bound(chunk.data.len());
    if scratch.len() < bound {
        scratch.resize(bound, 0);
    }
    let Ok(len) = compressor.deflate_compress(chunk.data, scratch) else {
        return false;
    };
    out.extend_from_slice(&scratch[..len]);
    true
}

/// Makes a complete stream (not the last chunk's) one that the next chunk follows on: clears
/// its last block's BFINAL and appends an empty stored block; stores `data` instead if the
/// walk failed.
fn join_on(out: &mut Vec<u8>, found: Result<LastBlock, WalkError>, data: &[u8]) {
    let end_bits = out.len() as u64 * 8;
    match found {
        Ok(block) if block.end <= end_bits && block.end + 8 > end_bits => {
            out[(block.header / 8) as usize] &= !(1u8 << (block.header % 8));
            // The empty stored block: 3 header bits (not final, type 00: zeros, as the
            // padding already is), padding to the byte, LEN 0, NLEN 0xffff.
            if end_bits - block.end < 3 {
                out.push(0);
            }
            out.extend_from_slice(&[0, 0, 0xff, 0xff]);
        }
        _ => {
            out.clear();
            stored(data, false, out);
        }
    }
}

/// Stored deflate blocks (at most 65535 bytes each), the last one final when `last`.
fn stored(data: &[u8], last: bool, out: &mut Vec<u8>) {
    let mut pieces: Vec<&[u8]> = data.chunks(65_535).collect();
    if pieces.is_empty() || !last {
        // A sync flush is an empty stored block; a final empty block ends the stream.
        pieces.push(&[]);
    }
    let count = pieces.len();
    for (i, piece) in pieces.into_iter().enumerate() {
        out.push(u8::from(last && i + 1 == count));
        let len = piece.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(piece);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn sample(len: usize) -> Vec<u8> {
        // Compressible but not trivial: text-like lines with a counter.
        let mut data = Vec::with_capacity(len);
        let mut i = 0u64;
        while data.len() < len {
            data.extend_from_slice(
                format!("line {i} of the sample {}\n", i * 7919 % 1013).as_bytes(),
            );
            i += 1;
        }
        data.truncate(len);
        data
    }

    fn gzip(data: &[u8], threads: usize, deflater: Deflater, level: u32) -> (Vec<u8>, Written) {
        let mut gz = ParallelGzip::new(Vec::new(), level, threads, deflater, true);
        for piece in data.chunks(70_001) {
            gz.write_all(piece).expect("write");
        }
        gz.finish().expect("finish")
    }

    #[test]
    fn output_is_one_gzip_member_that_flate2_and_miniz_inflate() {
        let data = sample(3 * CHUNK_SIZE + 12_345);
        for deflater in [Deflater::Libdeflate, Deflater::ZlibRs, Deflater::Miniz] {
            let (out, written) = gzip(&data, 2, deflater, 6);
            assert_eq!(&out[..10], &GZIP_HEADER);
            // Compressed for real: no chunk fell back to stored blocks.
            assert!(
                out.len() < data.len() / 4,
                "{deflater:?}: {} bytes",
                out.len()
            );
            assert_eq!(written.compressed_size, out.len() as u64);
            assert_eq!(written.uncompressed_size, data.len() as u64);
            let sha: [u8; 32] = Sha256::digest(&out).into();
            assert_eq!(written.sha256, sha);
            let mut inflated = Vec::new();
            // GzDecoder (not MultiGzDecoder) reads exactly one member and checks CRC and ISIZE.
            flate2::read::GzDecoder::new(&out[..])
                .read_to_end(&mut inflated)
                .expect("valid gzip");
            assert_eq!(inflated, data);
            let body = &out[10..out.len() - 8];
            let raw = miniz_oxide::inflate::decompress_to_vec(body)
                .expect("miniz inflates the deflate stream");
            assert_eq!(raw, data);
        }
    }

    #[test]
    fn bytes_do_not_depend_on_the_thread_count() {
        let data = sample(5 * CHUNK_SIZE / 2);
        let (one, _) = gzip(&data, 1, Deflater::Libdeflate, 6);
        for threads in [2, 3, 4] {
            assert_eq!(
                gzip(&data, threads, Deflater::Libdeflate, 6).0,
                one,
                "{threads} threads"
            );
        }
    }

    #[test]
    fn each_chunk_inflates_on_its_own() {
        let data = sample(2 * CHUNK_SIZE + 10);
        let (out, written) = gzip(&data, 2, Deflater::Libdeflate, 6);
        assert_eq!(written.chunks.len(), 3);
        let mut at = 0usize;
        for chunk in &written.chunks {
            let range = chunk.offset as usize..(chunk.offset + chunk.compressed) as usize;
            let mut inflater = flate2::Decompress::new(false);
            let mut piece = Vec::with_capacity(chunk.uncompressed as usize + 16);
            let _ = inflater.decompress_vec(&out[range], &mut piece, flate2::FlushDecompress::Sync);
            assert_eq!(piece.len() as u64, chunk.uncompressed);
            assert_eq!(piece, data[at..at + piece.len()]);
            at += piece.len();
        }
        assert_eq!(at, data.len());
    }

    #[test]
    fn gzip_t_accepts_it() {
        let data = sample(CHUNK_SIZE + 1);
        let (out, _) = gzip(&data, 2, Deflater::Libdeflate, 1);
        let mut child = std::process::Command::new("gzip")
            .arg("-t")
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("gzip is installed");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(&out)
            .expect("feed gzip");
        assert!(
            child.wait().expect("gzip ran").success(),
            "gzip -t rejected the stream"
        );
    }

    #[test]
    fn empty_input_and_exact_multiples_still_end_in_a_final_block() {
        for len in [0, CHUNK_SIZE] {
            let data = sample(len);
            let (out, _) = gzip(&data, 2, Deflater::Libdeflate, 6);
            let mut inflated = Vec::new();
            flate2::read::GzDecoder::new(&out[..])
                .read_to_end(&mut inflated)
                .expect("valid gzip");
            assert_eq!(inflated.len(), len);
        }
    }

    #[test]
    fn stored_fallback_is_valid_deflate() {
        let data = sample(200_000);
        let mut body = Vec::new();
        stored(&data[..100_000], false, &mut body);
        stored(&data[100_000..], true, &mut body);
        assert_eq!(
            miniz_oxide::inflate::decompress_to_vec(&body).expect("inflates"),
            data
        );
    }

    #[test]
    fn every_level_makes_valid_gzip() {
        let data = sample(CHUNK_SIZE + 999);
        let mut sizes = Vec::new();
        for level in 1..=9 {
            let (out, _) = gzip(&data, 2, Deflater::Libdeflate, level);
            let mut inflated = Vec::new();
            flate2::read::GzDecoder::new(&out[..])
                .read_to_end(&mut inflated)
                .expect("valid gzip");
            assert_eq!(inflated, data, "level {level}");
            sizes.push(out.len());
        }
        assert!(
            sizes[8] < sizes[0],
            "level 9 compresses better than level 1: {sizes:?}"
        );
    }

    /// A, then B in chunks of its own, C, B repeated, D: the repeat's bytes are B's chunks.
    fn with_repeat(threads: usize) -> (Vec<u8>, Written, [Vec<u8>; 4], Range<usize>) {
        let parts = [
            sample(CHUNK_SIZE / 3),
            sample(2 * CHUNK_SIZE + 77).into_iter().rev().collect(),
            sample(5000),
            sample(CHUNK_SIZE + 1),
        ];
        let mut gz = ParallelGzip::new(Vec::new(), 6, threads, Deflater::Libdeflate, true);
        gz.write_all(&parts[0]).expect("write");
        gz.cut().expect("cut");
        let first = gz.next_chunk();
        gz.write_all(&parts[1]).expect("write");
        gz.cut().expect("cut");
        let b = first..gz.next_chunk();
        gz.write_all(&parts[2]).expect("write");
        gz.repeat(b.clone()).expect("repeat");
        gz.write_all(&parts[3]).expect("write");
        let (out, written) = gz.finish().expect("finish");
        (out, written, parts, b)
    }

    #[test]
    fn repeated_chunks_are_the_same_bytes_and_inflate_to_the_data_again() {
        let (out, written, parts, b) = with_repeat(2);
        assert_eq!(b, 1..4, "B starts a chunk and takes three");
        let mut inflated = Vec::new();
        flate2::read::GzDecoder::new(&out[..])
            .read_to_end(&mut inflated)
            .expect("one valid gzip member, CRC and size checked");
        let want = [&parts[0], &parts[1], &parts[2], &parts[1], &parts[3]]
            .map(|p| &p[..])
            .concat();
        assert_eq!(inflated, want);
        assert_eq!(written.uncompressed_size, want.len() as u64);
        assert_eq!(written.compressed_size, out.len() as u64);
        assert_eq!(written.sha256, <[u8; 32]>::from(Sha256::digest(&out)));
        // A's, B's three, C's, B's three again, D's (with the end).
        assert_eq!(written.chunks.len(), 1 + 3 + 1 + 3 + 2);
        let bytes = |c: &Chunk| &out[c.offset as usize..(c.offset + c.compressed) as usize];
        for i in 0..3 {
            assert_eq!(bytes(&written.chunks[1 + i]), bytes(&written.chunks[5 + i]));
        }
        let mut at = 0;
        for chunk in &written.chunks {
            let mut piece = Vec::with_capacity(chunk.uncompressed as usize + 16);
            let _ = flate2::Decompress::new(false).decompress_vec(
                bytes(chunk),
                &mut piece,
                flate2::FlushDecompress::Sync,
            );
            assert_eq!(piece, want[at..at + chunk.uncompressed as usize]);
            at += piece.len();
        }
        assert_eq!(at, want.len());
        for threads in [1, 3] {
            assert!(with_repeat(threads).0 == out, "{threads} threads");
        }
    }

    #[test]
    fn a_repeat_of_chunks_not_written_is_refused() {
        let mut gz = ParallelGzip::new(Vec::new(), 6, 1, Deflater::Libdeflate, false);
        gz.write_all(&sample(1000)).expect("write");
        assert!(gz.repeat(0..2).is_err());
    }

    /// A reader that gives at most 777 bytes per call, as pipes and short reads do.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(self.0.len()).min(777);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn reading_into_the_chunk_gives_the_bytes_writing_gives() {
        let data = sample(2 * CHUNK_SIZE + 4321);
        let (written, _) = gzip(&data, 2, Deflater::Libdeflate, 6);
        let mut gz = ParallelGzip::new(Vec::new(), 6, 2, Deflater::Libdeflate, false);
        gz.write_all(&data[..100]).expect("write");
        let mut reader = Trickle(&data[100..]);
        let mut left = (data.len() - 100) as u64;
        while left > 0 {
            let n = gz
                .read_from(&mut reader, left)
                .expect("stream")
                .expect("read");
            assert!(n > 0);
            left -= n as u64;
        }
        assert_eq!(
            gz.read_from(&mut reader, 10)
                .expect("stream")
                .expect("read"),
            0
        );
        let (read, _) = gz.finish().expect("finish");
        assert_eq!(read, written);
    }

    #[test]
    fn level_0_stores() {
        let data = sample(CHUNK_SIZE / 2);
        let mut gz = ParallelGzip::new(Vec::new(), 6, 1, Deflater::Libdeflate, false);
        gz.set_level(0);
        gz.write_all(&data).expect("write");
        let (out, _) = gz.finish().expect("finish");
        assert!(out.len() > data.len());
    }
}
