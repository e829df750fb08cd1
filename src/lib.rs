//! medfs: mounts medical-imaging dataset downloads (zip, tar, tar.gz, folders) read-only and
//! lazily, as one tree that any tool can read.
//!
//! Layers, each knowing only those below it (ARCHITECTURE.md has the map):
//! `cli`/`run` (wiring) → `build` (tree and reader, once) → `fuse` (the only fuser user) → `fs`
//! (FUSE-shaped core) → `tree` (names) and `reader` (bytes) → `pool` (sources, detection,
//! listing), `index`/`persist` (what is saved) → `archive` (the format and codec seams, one
//! module per format and per codec) and `stream`/`cache` (decoded streams, the memory budget).
#![warn(missing_docs)]

pub mod archive;
pub mod build;
pub mod cache;
pub mod cli;
pub mod collection;
pub mod demo;
pub mod derive;
pub mod dicom;
pub mod dicomscan;
pub mod dicomtree;
pub mod diskcache;
pub mod error;
#[doc(hidden)]
pub mod fixtures;
pub mod fs;
pub mod fuse;
#[doc(hidden)]
pub mod fuzzing;
pub mod index;
pub mod niftitree;
pub mod organize;
pub mod persist;
pub mod pool;
pub mod profile;
pub mod progress;
pub mod reader;
pub mod run;
pub mod stream;
pub mod tree;
pub mod treestore;
