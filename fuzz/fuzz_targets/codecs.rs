//! Fuzz target `codecs`: see `medfs::fuzzing::codecs` for what it feeds where.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| medfs::fuzzing::codecs(data));
