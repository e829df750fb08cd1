//! Conformance of medfs on the shared corpus's 7z archives, in process: every archive is
//! mounted by the real core (`corpus/mod.rs`: `Pool::from_sources`, the tree builder, `MedFs`),
//! walked and read through the core's calls, and judged by the rules of the corpus README /
//! `check.py` (types, sizes, symlink targets, SHA-256 of the content, read errors where
//! `expect_read_error` says so).

mod corpus;

/// Archives allowed to fail, each with the reason. Keep empty unless a deviation is deliberate.
const KNOWN_DEVIATIONS: &[(&str, &str)] = &[];

#[test]
fn sevenz_conformance() {
    corpus::run_corpus("7z", KNOWN_DEVIATIONS);
}
