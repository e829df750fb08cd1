//! Fuzz target `zip`: see `medfs::fuzzing::zip` for what it feeds where.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| medfs::fuzzing::zip(data));
