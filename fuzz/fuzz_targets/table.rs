//! Fuzz target `table`: see `medfs::fuzzing::table` for what it feeds where.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| medfs::fuzzing::table(data));
