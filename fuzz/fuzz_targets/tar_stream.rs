//! The installer's pass 1 (tar headers, PAX records, name and link rules) on arbitrary bytes:
//! it must return an error, never panic, hang or allocate without bound.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = installer::verify_tar(data);
});
