//! Reading archives: the shared member vocabulary, content detection, and one lister per format.
//! Knows nothing about datasets or FUSE.

mod types;
pub mod path;

pub use types::*;
