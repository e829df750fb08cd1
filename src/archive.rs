//! Reading archives: the shared member vocabulary, the format seam (`format.rs`) with one module
//! per format, and one seek index per codec. Knows nothing about datasets or FUSE.

pub mod bz2index;
pub mod codec;
pub mod compressed;
pub mod format;
mod gzheader;
pub mod gzindex;
pub mod loose;
pub mod path;
mod seekidx;
pub mod sevenz;
pub mod split;
pub mod tar;
mod types;
pub mod xzindex;
pub mod zip;
mod zlib;
pub mod zstdindex;

pub use types::*;
