//! Fuzz target `dicom`: see `medfs::fuzzing::dicom` for what it feeds where.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| medfs::fuzzing::dicom(data));
