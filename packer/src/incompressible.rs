//! Tells data deflate cannot shrink (compressed already: `.gz`, `.xz`, `.zst`, images, fonts,
//! archives) from a sample, so that packer stores it instead of having libdeflate search it
//! for matches: libdeflate spends as long on such data as on text (about 75 MB/s at level 6
//! on this machine) and then writes it stored or nearly so anyway.
//!
//! The test is the sample's byte collisions, Σ countᵢ² over the 256 byte values (Rényi's
//! order-2 entropy, without a logarithm: integers only, so the decision, and with it the
//! output, is the same on every machine). For 4096 uniformly random bytes the sum averages
//! 4096 + 4096·4095/256 = 69 616, with a standard deviation of about 360; `.gz` members of
//! Debian's tree measure 69 170-71 314, xz and gzip streams 68 804-70 496, executables and
//! libraries 523 650 and more, text far more. At [`MAX_SQUARES`] the order-2 entropy is 7.85
//! bits per byte, so a Huffman code could save at most about 2 % of such data.
//!
//! What the sample cannot see is repetition beyond it: high-entropy data that repeats itself
//! at a distance deflate reaches (a file of one compressed block twice over) is stored,
//! where deflate would have shrunk it.

/// Data is judged in pieces of this size, counted from the start of the file.
pub const PIECE: usize = 64 << 10;

/// Bytes sampled from each piece: [`SLICES`] slices spread evenly over it, so that a piece
/// only part of which is random (a library's tables beside its code) is not taken for random.
pub const SAMPLE: usize = 4096;
const SLICES: usize = 8;

/// Files smaller than this are never stored: each switch between stored and compressed data
/// cuts the chunk being filled (a fresh block header after it), which a small file does not
/// pay back.
pub const MIN_FILE: u64 = 32 << 10;

/// The largest Σ countᵢ² of a [`SAMPLE`]-byte sample that counts as incompressible: the
/// uniform expectation (69 616) plus about 8.5 standard deviations.
pub const MAX_SQUARES: u64 = 72_704;

/// Whether `piece` looks like data deflate cannot shrink, judged by [`SAMPLE`] bytes of it;
/// `None` for a piece shorter than the sample (the end of a file: it goes as the piece
/// before it went).
pub fn looks_incompressible(piece: &[u8]) -> Option<bool> {
    if piece.len() < SAMPLE {
        return None;
    }
    let slice = SAMPLE / SLICES;
    let stride = piece.len() / SLICES;
    // Four histograms, summed at the end: consecutive equal bytes would otherwise wait on
    // each other's increment.
    let mut counts = [[0u32; 256]; 4];
    for k in 0..SLICES {
        let at = k * stride;
        for quad in piece[at..at + slice].chunks_exact(4) {
            for (histogram, &byte) in counts.iter_mut().zip(quad) {
                histogram[usize::from(byte)] += 1;
            }
        }
    }
    let squares: u64 = (0..256)
        .map(|value| {
            let count: u64 = counts.iter().map(|h| u64::from(h[value])).sum();
            count * count
        })
        .sum();
    Some(squares <= MAX_SQUARES)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fixed pseudo-random sequence (xorshift64*), the same on every run.
    pub(crate) fn noise(len: usize, seed: u64) -> Vec<u8> {
        let mut state = seed | 1;
        (0..len)
            .map(|_| {
                state ^= state >> 12;
                state ^= state << 25;
                state ^= state >> 27;
                (state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
            })
            .collect()
    }

    #[test]
    fn random_bytes_are_incompressible() {
        for seed in 1..200 {
            assert_eq!(
                looks_incompressible(&noise(PIECE, seed)),
                Some(true),
                "seed {seed}"
            );
            assert_eq!(
                looks_incompressible(&noise(SAMPLE, seed)),
                Some(true),
                "seed {seed}"
            );
        }
    }

    #[test]
    fn deflated_data_is_incompressible() {
        // Text of random words: deflate shrinks it to about 60 %, and what comes out looks
        // random (regular text would leave patterns in the Huffman codes).
        let text: Vec<u8> = noise(1 << 20, 5)
            .iter()
            .map(|b| b"etaoin shrdlu cmfwyp vbgkjq xz \n"[usize::from(b % 32)])
            .collect();
        let deflated = miniz_oxide::deflate::compress_to_vec(&text, 6);
        assert!(deflated.len() > PIECE);
        assert_eq!(looks_incompressible(&deflated[..PIECE]), Some(true));
        assert_eq!(looks_incompressible(&text[..PIECE]), Some(false));
    }

    #[test]
    fn skewed_data_is_compressible() {
        // Random bytes with a quarter of them zero, as in an executable's data: deflate's
        // Huffman code saves about 9 % there.
        let mut skewed = noise(PIECE, 7);
        for byte in skewed.iter_mut().step_by(4) {
            *byte = 0;
        }
        assert_eq!(looks_incompressible(&skewed), Some(false));
        assert_eq!(looks_incompressible(&[0u8; PIECE]), Some(false));
        // 7 bits of entropy per byte: the top bit always clear.
        let seven_bits: Vec<u8> = noise(PIECE, 9).iter().map(|b| b & 0x7f).collect();
        assert_eq!(looks_incompressible(&seven_bits), Some(false));
    }

    #[test]
    fn a_piece_only_partly_random_is_compressible() {
        // A library's random-looking tables in front of its code: the first 16 KiB random,
        // the rest zeros and text.
        let mut piece = noise(PIECE, 11);
        let text = b"mov rax, [rbp-8]; call memcpy; ret; ".repeat(PIECE / 36 + 1);
        piece[16 << 10..].copy_from_slice(&text[..PIECE - (16 << 10)]);
        assert_eq!(looks_incompressible(&piece), Some(false));
        assert_eq!(looks_incompressible(&piece[..SAMPLE]), Some(true));
    }

    #[test]
    fn a_piece_shorter_than_the_sample_is_not_judged() {
        assert_eq!(looks_incompressible(&noise(SAMPLE - 1, 3)), None);
        assert_eq!(looks_incompressible(&[]), None);
    }
}
