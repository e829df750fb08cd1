//! Reading archives: the shared member vocabulary, and one lister per format.
//! Knows nothing about datasets or FUSE.

mod types;
pub mod gzindex;
pub mod path;
pub mod split;
pub mod tar;
pub mod zip;

pub use types::*;
