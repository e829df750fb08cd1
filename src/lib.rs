//! medfs: mounts medical-imaging dataset downloads (zip, tar, tar.gz, folders) read-only, lazily.

pub mod archive;
