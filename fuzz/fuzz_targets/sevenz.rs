//! Fuzz target `sevenz`: see `medfs::fuzzing::sevenz` for what it feeds where.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| medfs::fuzzing::sevenz(data));
