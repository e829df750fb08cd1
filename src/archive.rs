//! Reading archives: the shared member vocabulary, and one lister per format.
//! Knows nothing about datasets or FUSE.

pub mod bz2index;
pub mod codec;
mod gzheader;
pub mod gzindex;
pub mod path;
mod seekidx;
pub mod split;
pub mod tar;
mod types;
pub mod xzindex;
pub mod zip;
mod zlib;
pub mod zstdindex;

pub use types::*;
