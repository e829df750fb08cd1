//! Fuzz target `index`: see `medfs::fuzzing::index` for what it feeds where.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| medfs::fuzzing::index(data));
