//! A payload chunk's raw deflate data (and the gzip header parser) on arbitrary bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Some((&first, rest)) = data.split_first() {
        let _ = installer::inflate_chunk(rest, u64::from(first) * 4096, first & 1 == 1);
    }
});
