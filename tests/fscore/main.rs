//! The core test tier: the filesystem core (`MedFs`) built from in-memory and fault-injecting
//! sources and driven in-process, without a kernel: errno of every error and operation, readdir
//! cookies, corrupt data never served, short reads retried, slow sources not blocking others.

mod budget;
#[path = "../common/mod.rs"]
mod common;
mod corrupt;
mod derived;
mod errors;
mod faults;
mod nested;
mod readahead;
mod readdir;
mod sevenz;
mod slow;
mod xattr;

use std::sync::Arc;

use common::*;
use faults::Faulty;
use medfs::archive::ByteSource;
use medfs::error::FsError;
use medfs::fs::{Ino, MedFs};
use medfs::pool::Pool;
use medfs::tree::TreeOptions;

/// A zip of `entries`, as bytes.
pub fn zip_bytes(entries: &[Entry], method: ZipMethod) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.zip");
    make_zip(&p, entries, method);
    std::fs::read(p).unwrap()
}

/// A tar.gz of `entries`, as bytes.
pub fn tar_gz_bytes(entries: &[Entry]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.tar.gz");
    make_tar_gz(&p, entries);
    std::fs::read(p).unwrap()
}

/// The core over `sources` (name, source), raw view only, with a 64 MiB cache.
pub fn core(sources: &[(&str, Arc<dyn ByteSource>)]) -> MedFs {
    core_with_cache(sources, 64 << 20)
}

/// The core over `sources` with a cache of `cache_bytes`.
pub fn core_with_cache(sources: &[(&str, Arc<dyn ByteSource>)], cache_bytes: usize) -> MedFs {
    let sources = sources.iter().map(|(n, s)| (n.to_string(), s.clone())).collect();
    let pool = Pool::from_sources(sources, cache_bytes, false).expect("sources list");
    let (tree, reader) = medfs::build::parts(pool, TreeOptions::default(), &[]);
    MedFs::from_parts(tree, reader)
}

/// The inode of `path` (panics if missing: the test's own setup is wrong then).
pub fn ino(fs: &MedFs, path: &str) -> Ino {
    fs.resolve(path.as_bytes()).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Reads a whole file the way the kernel does: `chunk`-sized requests front to back.
pub fn read_all(fs: &MedFs, path: &str, chunk: usize) -> Result<Vec<u8>, FsError> {
    let ino = ino(fs, path);
    let size = fs.getattr(ino)?.size;
    let mut data = Vec::new();
    let mut buf = Vec::new();
    while (data.len() as u64) < size {
        fs.read(ino, data.len() as u64, chunk, &mut buf)?;
        assert!(!buf.is_empty(), "{path}: empty read at {} of {size}", data.len());
        data.extend_from_slice(&buf);
    }
    Ok(data)
}

/// Offset of `needle` in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> u64 {
    hay.windows(needle.len()).position(|w| w == needle).expect("needle present") as u64
}
