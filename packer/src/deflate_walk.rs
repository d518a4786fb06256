//! Finds where the last block of a raw deflate stream (RFC 1951) starts and where it ends, in
//! bits, by walking the blocks' Huffman codes without producing any output.
//!
//! libdeflate compresses a whole buffer into a complete stream: its last block carries the
//! BFINAL bit, and it has no sync flush. To join independent chunks into one gzip member
//! (see [`crate::gzip`]), packer clears that bit and appends an empty stored block: for that it
//! needs the bit position of the last block's header and of the stream's end, which only a walk
//! over the symbols gives (a block's length is not written anywhere). The walk reads each
//! symbol's code and extra bits and skips them; it never checks distances against a window,
//! because the stream is libdeflate's own output, round-tripped by the tests.

/// Bits of the primary lookup table; longer codes (rare) take the canonical slow path.
const FAST_BITS: u32 = 11;
const MAX_BITS: usize = 15;

/// Extra bits of length symbols 257..=285.
const LENGTH_EXTRA: [u8; 29] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
];
/// Extra bits of distance symbols 0..=29.
const DIST_EXTRA: [u8; 30] = [
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13,
    13,
];
/// What a symbol is, in the top bits of its skip entry; the low 5 bits are the bits to skip.
const LITERAL: u8 = 0;
const LENGTH: u8 = 1;
const END_OF_BLOCK: u8 = 2;
const INVALID: u8 = 3;

/// Per literal/length symbol: kind and extra bits (a walk skips the extra bits unread).
const LITLEN_INFO: [u8; 288] = {
    let mut info = [LITERAL << 5; 288];
    info[256] = END_OF_BLOCK << 5;
    let mut s = 257;
    while s < 286 {
        info[s] = LENGTH << 5 | LENGTH_EXTRA[s - 257];
        s += 1;
    }
    info[286] = INVALID << 5;
    info[287] = INVALID << 5;
    info
};
/// Per distance symbol: extra bits; 30 and 31 are invalid.
const DIST_INFO: [u8; 32] = {
    let mut info = [INVALID << 5; 32];
    let mut s = 0;
    while s < 30 {
        info[s] = DIST_EXTRA[s];
        s += 1;
    }
    info
};

/// Order in which the code-length code's lengths are sent.
const CLEN_ORDER: [usize; 19] = [
    16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
];

/// Where the last block sits: `header` is the bit offset of its BFINAL bit, `end` the bit
/// offset just past its end-of-block code (bit offsets count from bit 0 of byte 0, LSB first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastBlock {
    pub header: u64,
    pub end: u64,
}

/// Why a stream could not be walked (packer then stores the chunk instead).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalkError {
    CutShort,
    BadBlockType,
    BadStoredLength,
    BadCode,
}

/// Little-endian bit reader; reads past the end give zeros and are caught by `check`.
#[derive(Clone, Copy)]
struct Bits<'a> {
    data: &'a [u8],
    /// Next byte to load into `buf`.
    next: usize,
    buf: u64,
    count: u32,
    /// Zero bytes loaded past the end of `data`.
    overrun: usize,
}

impl<'a> Bits<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self {
            data,
            next: 0,
            buf: 0,
            count: 0,
            overrun: 0,
        }
    }

    /// Makes at least 56 bits available.
    #[inline(always)]
    fn refill(&mut self) {
        if let Some(word) = self.data.get(self.next..self.next + 8) {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(word);
            self.buf |= u64::from_le_bytes(bytes) << self.count;
            self.next += ((63 - self.count) >> 3) as usize;
            self.count |= 56;
        } else {
            while self.count <= 56 {
                let byte = match self.data.get(self.next) {
                    Some(&b) => b,
                    None => {
                        self.overrun += 1;
                        0
                    }
                };
                self.next += 1;
                self.buf |= u64::from(byte) << self.count;
                self.count += 8;
            }
        }
    }

    #[inline(always)]
    fn peek(&self, n: u32) -> u64 {
        self.buf & ((1u64 << n) - 1)
    }

    #[inline(always)]
    fn consume(&mut self, n: u32) {
        self.buf >>= n;
        self.count -= n;
    }

    /// Up to 32 bits.
    #[inline(always)]
    fn take(&mut self, n: u32) -> u64 {
        if self.count < n {
            self.refill();
        }
        let v = self.peek(n);
        self.consume(n);
        v
    }

    /// Bits consumed so far.
    fn position(&self) -> u64 {
        (self.next as u64) * 8 - u64::from(self.count)
    }

    /// Fails if more bits were consumed than the data holds.
    fn check(&self) -> Result<(), WalkError> {
        if self.position() > (self.data.len() as u64) * 8 {
            Err(WalkError::CutShort)
        } else {
            Ok(())
        }
    }

    fn align_to_byte(&mut self) {
        let skip = self.count % 8;
        self.consume(skip);
    }
}

/// A canonical Huffman code: a table for codes of up to `FAST_BITS` bits, counts and sorted
/// symbols for the longer ones.
struct Code {
    /// `symbol << 4 | length`, 0 where no short code matches; empty for the literal/length
    /// and distance codes, whose symbols the walk skips through `skip` and decodes only on the
    /// slow path (long codes, the end of a block), bit by bit: one table less to build per
    /// block.
    fast: Vec<u16>,
    /// `kind << 5 | bits of the code and its extra bits` for short literal, length and
    /// distance codes; 0 elsewhere (long codes, end of block, invalid symbols: the slow path).
    skip: Box<[u8; 1 << FAST_BITS]>,
    /// Per-symbol kind and extra bits (`LITLEN_INFO`, `DIST_INFO`; empty for the
    /// code-length code, which is decoded, not skipped).
    info: &'static [u8],
    count: [u16; MAX_BITS + 1],
    sorted: Vec<u16>,
}

impl Code {
    fn new(info: &'static [u8]) -> Self {
        Self {
            fast: if info.is_empty() {
                vec![0; 1 << FAST_BITS]
            } else {
                Vec::new()
            },
            skip: Box::new([0; 1 << FAST_BITS]),
            info,
            count: [0; MAX_BITS + 1],
            sorted: Vec::with_capacity(288),
        }
    }

    fn build(&mut self, lengths: &[u8]) -> Result<(), WalkError> {
        self.count = [0; MAX_BITS + 1];
        for &len in lengths {
            self.count[usize::from(len)] += 1;
        }
        self.count[0] = 0;
        let mut offsets = [0u16; MAX_BITS + 2];
        for len in 1..=MAX_BITS {
            offsets[len + 1] = offsets[len] + self.count[len];
        }
        self.sorted.clear();
        self.sorted.resize(usize::from(offsets[MAX_BITS + 1]), 0);
        for (symbol, &len) in lengths.iter().enumerate() {
            if len != 0 {
                let at = &mut offsets[usize::from(len)];
                self.sorted[usize::from(*at)] = symbol as u16;
                *at += 1;
            }
        }
        self.fast.fill(0);
        if !self.info.is_empty() {
            self.skip.fill(0);
        }
        let mut code = 0u32;
        let mut index = 0usize;
        for len in 1..=FAST_BITS as usize {
            for _ in 0..self.count[len] {
                let symbol = self.sorted[index];
                index += 1;
                // Codes go out most significant bit first: the table is indexed by the bits
                // as read, so by the code reversed.
                let reversed = code.reverse_bits() >> (32 - len);
                let entry = symbol << 4 | len as u16;
                let mut at = reversed as usize;
                // (Nothing to do when there is no `fast` table.)
                while at < self.fast.len() {
                    self.fast[at] = entry;
                    at += 1 << len;
                }
                let fast_kind = |info: &&u8| matches!(**info >> 5, LITERAL | LENGTH);
                if let Some(&info) = self.info.get(usize::from(symbol)).filter(fast_kind) {
                    let skip = info + len as u8;
                    let mut at = reversed as usize;
                    while at < self.skip.len() {
                        self.skip[at] = skip;
                        at += 1 << len;
                    }
                }
                code += 1;
            }
            code <<= 1;
        }
        Ok(())
    }

    /// The fast skip entry for the next bits (0: take [`Code::skip_slow`]).
    #[inline(always)]
    fn skip_entry(&self, bits: &Bits) -> u8 {
        self.skip[(bits.peek(FAST_BITS) as usize) & ((1 << FAST_BITS) - 1)]
    }

    /// Skips one symbol and its extra bits the long way, giving its kind.
    #[cold]
    #[inline(never)]
    fn skip_slow(&self, bits: &mut Bits) -> Result<u8, WalkError> {
        let symbol = self.decode(bits)?;
        let info = *self
            .info
            .get(usize::from(symbol))
            .ok_or(WalkError::BadCode)?;
        bits.consume(u32::from(info & 31));
        Ok(info >> 5)
    }

    /// Decodes one symbol.
    #[inline(always)]
    fn decode(&self, bits: &mut Bits) -> Result<u16, WalkError> {
        if bits.count < MAX_BITS as u32 {
            bits.refill();
        }
        let entry = self
            .fast
            .get(bits.peek(FAST_BITS) as usize)
            .copied()
            .unwrap_or(0);
        if entry != 0 {
            bits.consume(u32::from(entry & 15));
            return Ok(entry >> 4);
        }
        // Canonical decode, one bit at a time (as RFC 1951 3.2.2 assigns the codes).
        let peeked = bits.peek(MAX_BITS as u32);
        let (mut code, mut first, mut index) = (0i32, 0i32, 0i32);
        for len in 1..=MAX_BITS {
            code |= ((peeked >> (len - 1)) & 1) as i32;
            let count = i32::from(self.count[len]);
            if code - first < count {
                bits.consume(len as u32);
                return Ok(self.sorted[(index + code - first) as usize]);
            }
            index += count;
            first = (first + count) << 1;
            code <<= 1;
        }
        Err(WalkError::BadCode)
    }
}

/// Reusable tables for walking many streams (one set per stream walked at a time).
pub struct Walker {
    litlen: Code,
    dist: Code,
    clen: Code,
    lengths: Vec<u8>,
}

impl Default for Walker {
    fn default() -> Self {
        Self::new()
    }
}

/// Where one stream's walk is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// At a block's header.
    Header,
    /// Inside a Huffman-coded block, its tables built.
    Symbols,
    Done(Result<LastBlock, WalkError>),
}

/// One stream being walked.
struct Walk<'a> {
    bits: Bits<'a>,
    /// Bit offset of the current block's header.
    header: u64,
    /// The current block carries BFINAL.
    last: bool,
    phase: Phase,
}

impl<'a> Walk<'a> {
    fn new(stream: &'a [u8]) -> Self {
        Self {
            bits: Bits::new(stream),
            header: 0,
            last: false,
            phase: Phase::Header,
        }
    }

    /// Reads block headers (skipping stored blocks) until a Huffman-coded block's symbols
    /// begin or the walk is over.
    fn enter_block(&mut self, tables: &mut Walker) {
        while self.phase == Phase::Header {
            if let Err(e) = self.read_header(tables) {
                self.phase = Phase::Done(Err(e));
            }
        }
    }

    fn read_header(&mut self, tables: &mut Walker) -> Result<(), WalkError> {
        self.header = self.bits.position();
        self.last = self.bits.take(1) == 1;
        match self.bits.take(2) {
            0 => {
                tables.skip_stored(&mut self.bits)?;
                self.end_block();
            }
            1 => {
                tables.fixed_codes()?;
                self.phase = Phase::Symbols;
            }
            2 => {
                tables.read_dynamic_codes(&mut self.bits)?;
                self.phase = Phase::Symbols;
            }
            _ => return Err(WalkError::BadBlockType),
        }
        Ok(())
    }

    /// A block's symbols ended (its end-of-block code read) or failed.
    fn end_symbols(&mut self, result: Result<(), WalkError>) {
        match result {
            Ok(()) => self.end_block(),
            Err(e) => self.phase = Phase::Done(Err(e)),
        }
    }

    /// After a block: the walk is over if it was the last one.
    fn end_block(&mut self) {
        self.phase = match self.bits.check() {
            Err(e) => Phase::Done(Err(e)),
            Ok(()) if self.last => Phase::Done(Ok(LastBlock {
                header: self.header,
                end: self.bits.position(),
            })),
            Ok(()) => Phase::Header,
        };
    }
}

/// Loads the bits of the next symbol: a literal/length code with its extra bits (20) and a
/// distance code with its extra bits (28) fit in one refill.
#[inline(always)]
fn ready(bits: &mut Bits) -> Result<(), WalkError> {
    // Away from the end, refill every time: a branch on the bit count would be mispredicted
    // every few symbols, a refill costs a few instructions.
    if let Some(word) = bits.data.get(bits.next..bits.next + 8) {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(word);
        bits.buf |= u64::from_le_bytes(bytes) << bits.count;
        bits.next += ((63 - bits.count) >> 3) as usize;
        bits.count |= 56;
    } else if bits.count < 48 {
        // Reads past the end give zeros, which may decode as literals forever.
        if bits.overrun > 8 {
            return Err(WalkError::CutShort);
        }
        bits.refill();
    }
    Ok(())
}

/// All ones when a fast skip entry is a length's, zero for a literal's (fast entries are only
/// those two kinds). Literal or length is what no branch predictor guesses: written with
/// `bool`s, the compiler branched on it, and the mispredictions were a sixth of the walk's
/// time; as a mask it only selects.
#[inline(always)]
fn length_mask(entry: u8) -> u32 {
    0u32.wrapping_sub(u32::from(entry >> 5) & 1)
}

/// A length whose distance code has no fast entry (rare): the one branch the step takes,
/// on one value (a literal's mask is zero, so the `|` is nonzero).
#[inline(always)]
fn slow_distance(dist: u8, length: u32) -> bool {
    (u32::from(dist) | (!length & 1)) == 0
}

/// Skips one literal, or one length and its distance; `true` at the end-of-block code.
#[inline(always)]
fn step(bits: &mut Bits, tables: &Walker) -> Result<bool, WalkError> {
    // The common case without a branch on literal or length (which no predictor guesses):
    // look up the distance as if a length came, and skip it only if one did.
    let entry = tables.litlen.skip_entry(bits);
    if entry == 0 {
        return tables.slow_step(bits);
    }
    bits.consume(u32::from(entry & 31));
    let length = length_mask(entry);
    let dist = tables.dist.skip_entry(bits);
    if slow_distance(dist, length) {
        if tables.dist.skip_slow(bits)? == INVALID {
            return Err(WalkError::BadCode);
        }
    } else {
        bits.consume(u32::from(dist & 31) & length);
    }
    Ok(false)
}

/// Skips the rest of one stream's block.
fn skip_block(walk: &mut Walk, tables: &Walker) {
    let mut bits = walk.bits;
    let result = loop {
        if let Err(e) = ready(&mut bits) {
            break Err(e);
        }
        match step(&mut bits, tables) {
            Ok(false) => {}
            Ok(true) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    walk.bits = bits;
    walk.end_symbols(result);
}

/// Both skip tables of a block side by side (literal/length, then distance), copied onto the
/// stack for [`skip_blocks_in_turn`]: addressed from the stack pointer, they take no register,
/// and two streams' bit buffers then stay in registers instead of going through memory at
/// every symbol.
type SkipTables = [u8; 2 << FAST_BITS];

fn skip_tables(tables: &Walker) -> SkipTables {
    let mut both = [0u8; 2 << FAST_BITS];
    let (litlen, dist) = both.split_at_mut(1 << FAST_BITS);
    litlen.copy_from_slice(&tables.litlen.skip[..]);
    dist.copy_from_slice(&tables.dist.skip[..]);
    both
}

/// The slow paths of [`step_in`], taking the reader by value and giving it back: a reader
/// whose address went to a function not inlined would have to live in memory throughout.
#[cold]
#[inline(never)]
fn slow_step_by_value<'a>(
    tables: &Walker,
    mut bits: Bits<'a>,
) -> (Bits<'a>, Result<bool, WalkError>) {
    let result = tables.slow_step(&mut bits);
    (bits, result)
}

#[cold]
#[inline(never)]
fn slow_distance_by_value<'a>(
    tables: &Walker,
    mut bits: Bits<'a>,
) -> (Bits<'a>, Result<u8, WalkError>) {
    let result = tables.dist.skip_slow(&mut bits);
    (bits, result)
}

/// [`step`] through [`SkipTables`].
#[inline(always)]
fn step_in(bits: &mut Bits, skip: &SkipTables, tables: &Walker) -> Result<bool, WalkError> {
    const MASK: usize = (1 << FAST_BITS) - 1;
    let entry = skip[bits.peek(FAST_BITS) as usize & MASK];
    if entry == 0 {
        let (after, result) = slow_step_by_value(tables, *bits);
        *bits = after;
        return result;
    }
    bits.consume(u32::from(entry & 31));
    let length = length_mask(entry);
    let dist = skip[(1 << FAST_BITS) + (bits.peek(FAST_BITS) as usize & MASK)];
    if slow_distance(dist, length) {
        let (after, result) = slow_distance_by_value(tables, *bits);
        *bits = after;
        if result? == INVALID {
            return Err(WalkError::BadCode);
        }
    } else {
        bits.consume(u32::from(dist & 31) & length);
    }
    Ok(false)
}

/// Skips symbols of two streams in turn until one of them ends its block. Each symbol's
/// lookup waits for the one before it (the table index is the bits left after it), so one
/// stream keeps the core waiting on its loads; two independent ones fill those waits.
fn skip_blocks_in_turn(a: &mut Walk, a_tables: &Walker, b: &mut Walk, b_tables: &Walker) {
    let (a_skip, b_skip) = (skip_tables(a_tables), skip_tables(b_tables));
    // The readers as local copies, written back at the end: left in the walks, which live in
    // memory, their bit buffers went through the stack on every symbol.
    let (mut a_bits, mut b_bits) = (a.bits, b.bits);
    let (walk, result) = loop {
        if let Err(e) = ready(&mut a_bits) {
            break (0, Err(e));
        }
        if let Err(e) = ready(&mut b_bits) {
            break (1, Err(e));
        }
        match step_in(&mut a_bits, &a_skip, a_tables) {
            Ok(false) => {}
            Ok(true) => break (0, Ok(())),
            Err(e) => break (0, Err(e)),
        }
        match step_in(&mut b_bits, &b_skip, b_tables) {
            Ok(false) => {}
            Ok(true) => break (1, Ok(())),
            Err(e) => break (1, Err(e)),
        }
    };
    (a.bits, b.bits) = (a_bits, b_bits);
    if walk == 0 {
        a.end_symbols(result);
    } else {
        b.end_symbols(result);
    }
}

/// Walks `streams` two at a time, each lane with its own tables: when one lane's stream
/// ends, the lane takes the next stream, so that two are walked in turn for as long as two
/// are left (streams of unequal length, a short chunk beside a full one, would otherwise leave
/// the longer one to be walked alone). The results are those [`Walker::last_block`] gives for
/// each, in order.
pub fn last_blocks(
    tables: &mut [Walker; 2],
    streams: &[&[u8]],
) -> Vec<Result<LastBlock, WalkError>> {
    let mut results = vec![Err(WalkError::CutShort); streams.len()];
    let mut queue = streams.iter().enumerate();
    let mut lanes: [Option<(usize, Walk)>; 2] = [None, None];
    loop {
        for (lane, lane_tables) in lanes.iter_mut().zip(tables.iter_mut()) {
            // Into a block's symbols, taking streams until one has some (or none are left).
            loop {
                if lane.is_none() {
                    *lane = queue.next().map(|(i, stream)| (i, Walk::new(stream)));
                }
                let Some((i, walk)) = lane else { break };
                walk.enter_block(lane_tables);
                match walk.phase {
                    Phase::Done(result) => {
                        results[*i] = result;
                        *lane = None;
                    }
                    _ => break,
                }
            }
        }
        let [a_tables, b_tables] = &*tables;
        match &mut lanes {
            [Some((_, a)), Some((_, b))] => skip_blocks_in_turn(a, a_tables, b, b_tables),
            [Some((_, a)), None] => skip_block(a, a_tables),
            [None, Some((_, b))] => skip_block(b, b_tables),
            [None, None] => return results,
        }
    }
}

impl Walker {
    pub fn new() -> Self {
        Self {
            litlen: Code::new(&LITLEN_INFO),
            dist: Code::new(&DIST_INFO),
            clen: Code::new(&[]),
            lengths: Vec::with_capacity(320),
        }
    }

    /// Walks `stream` (one complete raw deflate stream) block by block: what
    /// [`last_blocks`] gives for each stream, one stream at a time (the tests' reference).
    #[cfg(test)]
    pub fn last_block(&mut self, stream: &[u8]) -> Result<LastBlock, WalkError> {
        let mut walk = Walk::new(stream);
        loop {
            walk.enter_block(self);
            if let Phase::Done(result) = walk.phase {
                return result;
            }
            skip_block(&mut walk, self);
        }
    }

    fn skip_stored(&mut self, bits: &mut Bits) -> Result<(), WalkError> {
        bits.align_to_byte();
        let len = bits.take(16);
        let nlen = bits.take(16);
        if len != !nlen & 0xffff {
            return Err(WalkError::BadStoredLength);
        }
        // Byte aligned now: skip `len` bytes and reload from there.
        let byte = bits.position() / 8 + len;
        if byte > bits.data.len() as u64 {
            return Err(WalkError::CutShort);
        }
        bits.next = byte as usize;
        bits.buf = 0;
        bits.count = 0;
        Ok(())
    }

    fn fixed_codes(&mut self) -> Result<(), WalkError> {
        self.lengths.clear();
        self.lengths.extend(std::iter::repeat_n(8, 144));
        self.lengths.extend(std::iter::repeat_n(9, 112));
        self.lengths.extend(std::iter::repeat_n(7, 24));
        self.lengths.extend(std::iter::repeat_n(8, 8));
        self.litlen.build(&self.lengths)?;
        self.dist.build(&[5; 30])
    }

    fn read_dynamic_codes(&mut self, bits: &mut Bits) -> Result<(), WalkError> {
        let hlit = bits.take(5) as usize + 257;
        let hdist = bits.take(5) as usize + 1;
        let hclen = bits.take(4) as usize + 4;
        let mut clen = [0u8; 19];
        for &symbol in &CLEN_ORDER[..hclen] {
            clen[symbol] = bits.take(3) as u8;
        }
        self.clen.build(&clen)?;
        self.lengths.clear();
        while self.lengths.len() < hlit + hdist {
            let symbol = self.clen.decode(bits)?;
            let (value, repeat) = match symbol {
                0..=15 => (symbol as u8, 1),
                16 => {
                    let previous = *self.lengths.last().ok_or(WalkError::BadCode)?;
                    (previous, 3 + bits.take(2) as usize)
                }
                17 => (0, 3 + bits.take(3) as usize),
                18 => (0, 11 + bits.take(7) as usize),
                _ => return Err(WalkError::BadCode),
            };
            if self.lengths.len() + repeat > hlit + hdist {
                return Err(WalkError::BadCode);
            }
            self.lengths.extend(std::iter::repeat_n(value, repeat));
        }
        bits.check()?;
        self.litlen.build(&self.lengths[..hlit])?;
        self.dist.build(&self.lengths[hlit..])
    }

    /// A symbol the fast table does not hold: a long code, the end of the block, or invalid.
    #[cold]
    #[inline(never)]
    fn slow_step(&self, bits: &mut Bits) -> Result<bool, WalkError> {
        match self.litlen.skip_slow(bits)? {
            LITERAL => Ok(false),
            LENGTH => match self.dist.skip_slow(bits)? {
                INVALID => Err(WalkError::BadCode),
                _ => Ok(false),
            },
            END_OF_BLOCK => Ok(true),
            _ => Err(WalkError::BadCode),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(len: usize, seed: u64) -> Vec<u8> {
        let mut data = Vec::with_capacity(len);
        let mut x = seed | 1;
        let words = [
            &b"usr/lib/"[..],
            b"x86_64",
            b"\0\0\0\0",
            b"-linux-gnu",
            b"ELF",
        ];
        while data.len() < len {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if x % 3 == 0 {
                data.push((x >> 24) as u8);
            } else {
                data.extend_from_slice(words[(x >> 8) as usize % words.len()]);
            }
        }
        data.truncate(len);
        data
    }

    /// The positions the walker finds, checked by flipping the BFINAL bit: with it cleared
    /// and an empty final stored block appended where the stream ends, the stream still
    /// inflates to the same data.
    fn check_positions(stream: &[u8], data: &[u8]) {
        let found = Walker::new().last_block(stream).expect("walks");
        assert_eq!(
            found.end.div_ceil(8),
            stream.len() as u64,
            "the stream ends in its last byte"
        );
        let mut joined = stream.to_vec();
        joined[(found.header / 8) as usize] &= !(1 << (found.header % 8));
        // A final empty stored block where the stream ended: BFINAL = 1, BTYPE = 00, then
        // the padding to the byte boundary.
        if found.end + 3 > joined.len() as u64 * 8 {
            joined.push(0);
        }
        joined[(found.end / 8) as usize] |= 1 << (found.end % 8);
        joined.extend_from_slice(&[0, 0, 0xff, 0xff]);
        let inflated = miniz_oxide::inflate::decompress_to_vec(&joined).expect("inflates");
        assert_eq!(inflated, data);
    }

    #[test]
    fn finds_the_last_block_of_libdeflate_streams() {
        for (len, seed) in [
            (0, 1),
            (1, 2),
            (100, 3),
            (70_000, 4),
            (1 << 20, 5),
            (3 << 20, 6),
        ] {
            let data = sample(len, seed);
            for level in [1, 4, 6, 9, 12] {
                let mut c =
                    libdeflater::Compressor::new(libdeflater::CompressionLvl::new(level).unwrap());
                let mut out = vec![0; c.deflate_compress_bound(data.len())];
                let n = c.deflate_compress(&data, &mut out).expect("compress");
                out.truncate(n);
                check_positions(&out, &data);
            }
        }
    }

    #[test]
    fn walks_stored_and_fixed_blocks() {
        let data = sample(200_000, 9);
        // libdeflate level 0 writes stored blocks; miniz's level 1 on short input fixed ones.
        let mut c = libdeflater::Compressor::new(libdeflater::CompressionLvl::new(0).unwrap());
        let mut out = vec![0; c.deflate_compress_bound(data.len())];
        let n = c.deflate_compress(&data, &mut out).expect("compress");
        out.truncate(n);
        check_positions(&out, &data);
        let small = b"hello hello hello".to_vec();
        let fixed = miniz_oxide::deflate::compress_to_vec(&small, 1);
        check_positions(&fixed, &small);
    }

    fn libdeflate(data: &[u8], level: i32) -> Vec<u8> {
        let mut c = libdeflater::Compressor::new(libdeflater::CompressionLvl::new(level).unwrap());
        let mut out = vec![0; c.deflate_compress_bound(data.len())];
        let n = c.deflate_compress(data, &mut out).expect("compress");
        out.truncate(n);
        out
    }

    #[test]
    fn streams_in_turn_give_what_each_gives_alone() {
        let streams: Vec<Vec<u8>> = [
            (1 << 20, 21, 6),
            (300_000, 22, 1),
            (0, 23, 6),
            (2 << 20, 24, 9),
            (200_000, 25, 0),
        ]
        .iter()
        .map(|&(len, seed, level)| libdeflate(&sample(len, seed), level))
        .chain([b"\xff\xff".to_vec(), Vec::new()])
        .collect();
        let mut cut = streams[0].clone();
        cut.truncate(cut.len() / 3);
        let streams: Vec<Vec<u8>> = streams.into_iter().chain([cut]).collect();
        let mut pair = [Walker::new(), Walker::new()];
        let mut alone = Walker::new();
        for a in &streams {
            for b in &streams {
                let expected = vec![alone.last_block(a), alone.last_block(b)];
                assert_eq!(last_blocks(&mut pair, &[a, b]), expected);
            }
        }
        // Any number at once, each lane taking the next stream when its own ends.
        let all: Vec<&[u8]> = streams.iter().map(Vec::as_slice).collect();
        let expected: Vec<_> = all.iter().map(|s| alone.last_block(s)).collect();
        assert_eq!(last_blocks(&mut pair, &all), expected);
        let reversed: Vec<&[u8]> = all.iter().rev().copied().collect();
        let expected: Vec<_> = expected.into_iter().rev().collect();
        assert_eq!(last_blocks(&mut pair, &reversed), expected);
        assert_eq!(last_blocks(&mut pair, &[]), vec![]);
        // Real streams walk; the garbage and the cut one do not.
        assert!(alone.last_block(&streams[0]).is_ok());
        assert!(alone.last_block(&streams[5]).is_err());
        assert!(alone.last_block(&streams[7]).is_err());
    }

    #[test]
    fn truncated_and_garbage_streams_fail_cleanly() {
        let data = sample(50_000, 11);
        let mut c = libdeflater::Compressor::new(libdeflater::CompressionLvl::new(6).unwrap());
        let mut out = vec![0; c.deflate_compress_bound(data.len())];
        let n = c.deflate_compress(&data, &mut out).expect("compress");
        out.truncate(n);
        let mut walker = Walker::new();
        for cut in [0, 1, 10, n / 2, n - 2] {
            assert!(walker.last_block(&out[..cut]).is_err(), "cut at {cut}");
        }
        assert!(walker.last_block(&[0xff; 64]).is_err());
    }
}
