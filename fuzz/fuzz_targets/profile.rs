//! Fuzz target `profile`: see `medfs::fuzzing::profile` for what it feeds where.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| medfs::fuzzing::profile(data));
