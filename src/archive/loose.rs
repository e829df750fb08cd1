//! The loose files of a folder (and loose files named on the command line), served as one
//! pseudo-archive per source: each member is a file of its own, checked against its listing on
//! every read.

use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::format::{MemberChanged, OpenArchive};
use super::{ByteSource, Member};
use crate::reader::ReadCtx;

/// Loose files whose paths are relative to one folder.
pub struct Loose {
    root: PathBuf,
    /// When listing started (ns since the epoch): a file changed (ctime) after it is refused, as
    /// its size, bytes or both may differ from the listing.
    listed_at_ns: i128,
}

impl Loose {
    /// Files under `root`, listed from `listed_at_ns` on.
    pub fn new(root: PathBuf, listed_at_ns: i128) -> Loose {
        Loose { root, listed_at_ns }
    }
}

impl OpenArchive for Loose {
    fn stream(&self) -> Option<&Arc<dyn ByteSource>> {
        None
    }

    fn read(&self, _: &ReadCtx<'_>, _: u32, m: &Member, offset: u64, len: usize, out: &mut Vec<u8>) -> io::Result<()> {
        out.resize(len, 0);
        read_loose(&self.root, m, self.listed_at_ns, offset, out).map_err(|e| match e.kind() {
            // The file is no longer the one that was listed (ESTALE), or is gone.
            io::ErrorKind::NotFound | io::ErrorKind::StaleNetworkFileHandle => io::Error::other(MemberChanged),
            _ => e,
        })
    }

    fn root(&self) -> Option<&Path> {
        Some(&self.root)
    }
}

fn read_loose(root: &Path, m: &Member, listed_at_ns: i128, offset: u64, out: &mut [u8]) -> io::Result<()> {
    let path = root.join(std::ffi::OsStr::from_bytes(&m.path));
    let file = std::fs::File::open(&path)?;
    let meta = file.metadata()?;
    let ctime_ns = meta.ctime() as i128 * 1_000_000_000 + meta.ctime_nsec() as i128;
    if meta.len() != m.size || meta.mtime() != m.mtime || ctime_ns >= listed_at_ns {
        return Err(io::Error::new(io::ErrorKind::StaleNetworkFileHandle, format!("{} changed", path.display())));
    }
    let mut got = 0;
    while got < out.len() {
        match file.read_at(&mut out[got..], offset + got as u64)? {
            0 => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("{} shrank while mounted", path.display()),
                ));
            }
            n => got += n,
        }
    }
    Ok(())
}
