//! Fuzz target `tar`: see `medfs::fuzzing::tar` for what it feeds where.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| medfs::fuzzing::tar(data));
