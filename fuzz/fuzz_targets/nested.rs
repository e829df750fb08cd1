//! Fuzz target `nested`: see `medfs::fuzzing::nested` for what it feeds where.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| medfs::fuzzing::nested(data));
