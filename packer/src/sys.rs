//! The one module with `unsafe`: zlib-rs through its zlib-compatible C API (libz-rs-sys),
//! because only that API has `deflateTune`, which packer needs to give zlib-rs the match
//! parameters of classic zlib (see [`crate::gzip`] and docs/packer.md); and the signal calls
//! that let packer remove its temporary files on Ctrl-C, SIGTERM and SIGHUP (no safe wrapper
//! for `sigwait` in rustix or std).

use libz_rs_sys::{
    deflate, deflateEnd, deflateInit2_, deflateReset, deflateTune, z_stream, zlibVersion,
    Z_BUF_ERROR, Z_DEFAULT_STRATEGY, Z_DEFLATED, Z_FINISH, Z_OK, Z_STREAM_END, Z_SYNC_FLUSH,
};

/// Match-finder parameters (`good_length`, `max_lazy`, `nice_length`, `max_chain`).
pub type Tuning = (i32, i32, i32, i32);

/// A raw-deflate compressor, reused from chunk to chunk.
pub struct RawDeflate {
    /// Boxed: zlib's state points back at its stream, which therefore must not move.
    stream: Box<z_stream>,
    tuning: Option<Tuning>,
}

// SAFETY: the stream and its state are owned by this value alone (no shared pointers escape
// it); moving it to another thread is as safe as moving a Box.
unsafe impl Send for RawDeflate {}

impl RawDeflate {
    /// `level` 0-9 as zlib understands it, then `tuning` over that level's parameters.
    /// `None` if zlib-rs refuses the parameters (not expected for levels 0-9).
    pub fn new(level: i32, tuning: Option<Tuning>) -> Option<Self> {
        // SAFETY: an all-zero z_stream is the documented initial state (zalloc/zfree NULL
        // select the default allocator).
        let mut stream: Box<z_stream> = Box::new(unsafe { std::mem::zeroed() });
        let size = i32::try_from(std::mem::size_of::<z_stream>()).ok()?;
        // SAFETY: `stream` is a valid, zeroed z_stream that stays at this address (boxed);
        // negative window bits select raw deflate; the version string comes from the library.
        let status = unsafe {
            deflateInit2_(
                &mut *stream,
                level,
                Z_DEFLATED,
                -15,
                8,
                Z_DEFAULT_STRATEGY,
                zlibVersion(),
                size,
            )
        };
        if status != Z_OK {
            return None;
        }
        let mut this = Self { stream, tuning };
        this.tune();
        Some(this)
    }

    fn tune(&mut self) {
        if let Some((good, lazy, nice, chain)) = self.tuning {
            // SAFETY: the stream was initialised by deflateInit2_ and not ended.
            unsafe { deflateTune(&mut *self.stream, good, lazy, nice, chain) };
        }
    }

    /// Compresses `input` as a stream of its own ending in a sync flush, or with `last` in a
    /// final block, appended to `out`.
    pub fn compress(&mut self, input: &[u8], last: bool, out: &mut Vec<u8>) {
        // SAFETY: the stream is initialised; reset keeps it valid (and drops the tuning,
        // which is applied again below).
        unsafe { deflateReset(&mut *self.stream) };
        self.tune();
        let flush = if last { Z_FINISH } else { Z_SYNC_FLUSH };
        let mut consumed = 0usize;
        loop {
            if out.capacity() - out.len() < 4096 {
                out.reserve(out.capacity().max(64 * 1024));
            }
            let spare = out.capacity() - out.len();
            let chunk_in = (input.len() - consumed).min(u32::MAX as usize);
            let avail_out = spare.min(u32::MAX as usize);
            self.stream.next_in = input[consumed..].as_ptr();
            self.stream.avail_in = chunk_in as u32;
            // SAFETY: `out` has `spare` bytes of capacity past its length.
            self.stream.next_out = unsafe { out.as_mut_ptr().add(out.len()) };
            self.stream.avail_out = avail_out as u32;
            // SAFETY: next_in/avail_in describe a live slice of `input`, next_out/avail_out
            // the spare capacity of `out`; both outlive the call.
            let status = unsafe { deflate(&mut *self.stream, flush) };
            let read = chunk_in - self.stream.avail_in as usize;
            let wrote = avail_out - self.stream.avail_out as usize;
            consumed += read;
            // SAFETY: deflate initialised exactly `wrote` bytes after the old length.
            unsafe { out.set_len(out.len() + wrote) };
            let done = match status {
                Z_STREAM_END => true,
                // Input used up and room left over: the sync flush is complete.
                Z_OK | Z_BUF_ERROR => !last && consumed == input.len() && self.stream.avail_out > 0,
                _ => true,
            };
            if done {
                return;
            }
        }
    }
}

impl Drop for RawDeflate {
    fn drop(&mut self) {
        // SAFETY: the stream was initialised and is ended exactly once, here.
        unsafe { deflateEnd(&mut *self.stream) };
    }
}

/// The signals that end packer early: on each, its temporary files are removed first.
const TERMINATING: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

/// The terminating signals not ignored when packer started: one ignored then (`nohup`
/// ignores SIGHUP) stays ignored, and a blocked signal would be kept pending, not dropped.
fn terminating_set() -> libc::sigset_t {
    // SAFETY: sigemptyset initialises the set it is given; sigaddset only adds valid signal
    // numbers to an initialised set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for signal in TERMINATING.into_iter().filter(|&s| !ignored(s)) {
            libc::sigaddset(&mut set, signal);
        }
        set
    }
}

/// Blocks SIGINT, SIGTERM and SIGHUP in the calling thread and so in every thread it starts
/// afterwards: called first thing in `main`, so that only [`wait_for_termination`] receives
/// them.
pub fn block_termination() {
    let set = terminating_set();
    // SAFETY: `set` is an initialised sigset_t; a null old-set pointer is allowed.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
}

fn ignored(signal: libc::c_int) -> bool {
    // SAFETY: a null new action only queries; `old` is a valid sigaction to fill.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(signal, std::ptr::null(), &mut old) == 0
            && old.sa_sigaction == libc::SIG_IGN
    }
}

/// Waits (in a thread of its own) until one of the blocked signals arrives; returns it.
pub fn wait_for_termination() -> libc::c_int {
    let set = terminating_set();
    loop {
        let mut signal: libc::c_int = 0;
        // SAFETY: `set` is initialised and `signal` is a valid place for the result.
        if unsafe { libc::sigwait(&set, &mut signal) } == 0 {
            return signal;
        }
    }
}

/// Ends the process by `signal` itself, as if packer had never caught it (the shell reports
/// "Terminated", `$?` is 128 + N); exits with 128 + N should the signal not kill.
pub fn die_of(signal: libc::c_int) -> ! {
    // SAFETY: restoring the default action of a valid signal, unblocking it for this thread
    // and sending it to this process are all defined for any thread at any time.
    unsafe {
        libc::signal(signal, libc::SIG_DFL);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, signal);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::raise(signal);
    }
    std::process::exit(128 + signal)
}
