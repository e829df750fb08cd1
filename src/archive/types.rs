//! The vocabulary every archive backend speaks: byte sources, members, and where members' bytes live.
//!
//! Formats (zip, tar, compressed streams, ...) turn an archive into `Member`s whose `DataLoc`
//! says where the bytes are in a `ByteSource`; `format.rs` is the seam through which they are
//! detected, listed and read (a new format adds no `DataLoc` variant: see its module doc).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Random-access bytes: a file on disk, the parts of a split archive, a decompressed gzip stream.
/// `read_at` must be callable from many threads at once (no shared cursor).
pub trait ByteSource: Send + Sync {
    /// Total length in bytes.
    fn len(&self) -> u64;

    /// True for an empty source.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Reads up to `buf.len()` bytes at `offset`; returns 0 only at or past the end.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize>;
    /// A human name for errors ("/data/x.zip").
    fn describe(&self) -> String;

    /// Bytes of underlying files read so far, where the source counts them (listing cost).
    fn bytes_read(&self) -> u64 {
        0
    }

    /// A hint that `[offset, offset + len)` will be read soon, so that a file can have the kernel
    /// start reading it (many small reads scattered over a cold file wait on the disk one by one
    /// otherwise). Sources that cannot use it ignore it; it never fails.
    fn will_need(&self, _offset: u64, _len: u64) {}

    /// Fills `buf` completely or fails with `UnexpectedEof`.
    fn read_exact_at(&self, mut offset: u64, mut buf: &mut [u8]) -> io::Result<()> {
        while !buf.is_empty() {
            match self.read_at(offset, buf) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("{}: unexpected end of data at offset {offset}", self.describe()),
                    ));
                }
                Ok(n) => {
                    offset += n as u64;
                    buf = &mut buf[n..];
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// The part of `buf` that a read at `offset` of a source of `len` bytes can fill; `None` at or
/// past the end.
fn within(len: u64, offset: u64, buf: &mut [u8]) -> Option<&mut [u8]> {
    let left = len.checked_sub(offset).filter(|&n| n > 0)?;
    let want = buf.len().min(left.min(usize::MAX as u64) as usize);
    Some(&mut buf[..want])
}

/// A plain file read with `pread`, so any number of threads share one descriptor.
pub struct FileSource {
    file: File,
    len: u64,
    path: PathBuf,
    /// Bytes read so far (how much listing cost; a remount from the index reads none).
    bytes_read: std::sync::atomic::AtomicU64,
}

impl FileSource {
    /// Opens `path` read-only.
    pub fn open(path: &Path) -> io::Result<FileSource> {
        let file = File::open(path)?;
        FileSource::from_file(file, path.to_path_buf())
    }

    /// Wraps a file already open (its length is taken now).
    pub fn from_file(file: File, path: PathBuf) -> io::Result<FileSource> {
        let len = file.metadata()?.len();
        Ok(FileSource { file, len, path, bytes_read: Default::default() })
    }
}

impl ByteSource for FileSource {
    fn len(&self) -> u64 {
        self.len
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let Some(buf) = within(self.len, offset, buf) else { return Ok(0) };
        let n = self.file.read_at(buf, offset)?;
        self.bytes_read.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
    fn describe(&self) -> String {
        self.path.display().to_string()
    }

    fn bytes_read(&self) -> u64 {
        self.bytes_read.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn will_need(&self, offset: u64, len: u64) {
        let len = len.min(self.len.saturating_sub(offset));
        if len > 0 {
            // Only a hint: a failure (an old kernel, a filesystem without readahead) costs nothing.
            let _ = nix::fcntl::posix_fadvise(
                &self.file,
                offset as i64,
                len as i64,
                nix::fcntl::PosixFadviseAdvice::POSIX_FADV_WILLNEED,
            );
        }
    }
}

/// A byte range of another source, as a source of its own (a zip member's compressed data).
pub struct Slice {
    src: std::sync::Arc<dyn ByteSource>,
    start: u64,
    len: u64,
}

impl Slice {
    /// Bytes `[start, start + len)` of `src`.
    pub fn new(src: std::sync::Arc<dyn ByteSource>, start: u64, len: u64) -> Slice {
        Slice { src, start, len }
    }
}

impl ByteSource for Slice {
    fn len(&self) -> u64 {
        self.len
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let Some(buf) = within(self.len, offset, buf) else { return Ok(0) };
        self.src.read_at(self.start + offset, buf)
    }
    fn will_need(&self, offset: u64, len: u64) {
        let len = len.min(self.len.saturating_sub(offset));
        self.src.will_need(self.start + offset, len);
    }
    fn describe(&self) -> String {
        format!("{} (bytes {}..{})", self.src.describe(), self.start, self.start + self.len)
    }
}

/// A sequential reader over a `ByteSource`, for listers that parse front to back.
pub struct SourceReader<'a> {
    /// The source being read.
    pub source: &'a dyn ByteSource,
    /// Current offset.
    pub pos: u64,
}

impl io::Read for SourceReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.source.read_at(self.pos, buf)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// What a member is.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum MemberKind {
    /// A regular file (tar hardlinks are resolved by the lister into files sharing the data).
    File,
    /// A directory.
    Dir,
    /// A symbolic link; `target` is the raw stored target, never resolved by the lister.
    Symlink {
        /// Raw link target bytes.
        #[serde(with = "serde_bytes")]
        target: Vec<u8>,
    },
}

/// One entry of an archive as the format stores it. Paths are not yet sanitized: the tree does
/// that, in one place, for every format.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Member {
    /// Path as decoded by the format (pax/GNU long names applied, zip names decoded to UTF-8
    /// where the format says how), `/`-separated, possibly with `./`, `..`, leading `/`.
    #[serde(with = "serde_bytes")]
    pub path: Vec<u8>,
    /// File, directory or symlink.
    pub kind: MemberKind,
    /// Exact uncompressed size in bytes (0 for directories and symlinks).
    pub size: u64,
    /// Modification time, seconds since the Unix epoch.
    pub mtime: i64,
    /// Permission bits as stored (informational; the mount shows 0444/0555).
    pub mode: u32,
    /// Where the bytes are.
    pub data: DataLoc,
}

impl Member {
    /// Whether the member's numbers hold together the way every lister makes them, which the
    /// reader relies on: its data range does not overflow, and sparse extents are non-empty,
    /// sorted, non-overlapping, inside the member and addressable. A member loaded from a
    /// persistent index is checked with this (its checksum says it is intact, not that it came
    /// from a lister).
    pub fn is_consistent(&self) -> bool {
        match &self.data {
            DataLoc::Raw { offset } => offset.checked_add(self.size).is_some(),
            DataLoc::Sparse { extents } => {
                let mut prev_end = 0;
                extents.iter().all(|e| {
                    let end = e.logical.checked_add(e.len).filter(|&end| end <= self.size);
                    let ok =
                        e.len > 0 && e.logical >= prev_end && end.is_some() && e.offset.checked_add(e.len).is_some();
                    prev_end = end.unwrap_or(u64::MAX);
                    ok
                })
            }
            DataLoc::None | DataLoc::Zip(_) | DataLoc::Bad { .. } => true,
        }
    }
}

/// A run of a sparse file's data: `len` bytes at `offset` in the stream are the file's bytes at
/// `logical`. Everything not covered by an extent reads as zeros.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Extent {
    /// Offset within the member's logical content.
    pub logical: u64,
    /// Offset within the (decoded) stream.
    pub offset: u64,
    /// Length in bytes.
    pub len: u64,
}

/// A zip member's compressed data, located through its local header (whose variable-length name
/// and extra field are only resolved when the member is first read).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ZipData {
    /// Offset of the local file header in the source.
    pub header_offset: u64,
    /// Compressed size from the central directory.
    pub compressed_size: u64,
    /// Compression method (0 stored, 8 deflate, 9 deflate64, ...).
    pub method: u16,
    /// CRC-32 of the uncompressed bytes, from the central directory.
    pub crc32: u32,
    /// General purpose flags (bit 0: encrypted).
    pub flags: u16,
}

/// Where a member's bytes live.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub enum DataLoc {
    /// No data: directories, symlinks, empty files.
    None,
    /// `size` contiguous bytes at `offset` of the (decoded) stream: tar members, stored data.
    Raw {
        /// Offset in the stream.
        offset: u64,
    },
    /// A sparse file: data runs plus holes of zeros.
    Sparse {
        /// Data runs, sorted by `logical`, non-overlapping.
        extents: Box<[Extent]>,
    },
    /// A zip member (stored or compressed), checked against its CRC-32.
    Zip(ZipData),
    /// Listed but cannot be read (encrypted, unsupported method, truncated): reads fail with EIO.
    Bad {
        /// Why, for the log.
        reason: String,
    },
}

/// The result of listing an archive.
#[derive(Debug, Default)]
pub struct Listing {
    /// Members in archive order (later duplicates win when the tree is built).
    pub members: Vec<Member>,
    /// Problems met on the way, each naming what was affected.
    pub warnings: Vec<String>,
    /// True when part of the archive could not be read (truncated, corrupt header half way):
    /// `--strict` refuses such an archive; otherwise it mounts with a warning.
    pub damaged: bool,
}

/// Why an archive could not be listed at all.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// The bytes are not this format (used by content detection to try the next one).
    #[error("not a {0} archive")]
    NotThisFormat(&'static str),
    /// The archive is this format but unreadable from the start.
    #[error("corrupt archive: {0}")]
    Corrupt(String),
    /// Reading the source failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(size: u64, data: DataLoc) -> Member {
        Member { path: b"f".to_vec(), kind: MemberKind::File, size, mtime: 0, mode: 0, data }
    }

    fn sparse(size: u64, runs: &[(u64, u64, u64)]) -> Member {
        let extents = runs.iter().map(|&(logical, offset, len)| Extent { logical, offset, len }).collect();
        member(size, DataLoc::Sparse { extents })
    }

    #[test]
    fn consistency_is_what_the_reader_relies_on() {
        assert!(member(10, DataLoc::Raw { offset: 512 }).is_consistent());
        assert!(!member(10, DataLoc::Raw { offset: u64::MAX - 5 }).is_consistent());
        assert!(sparse(100, &[(0, 512, 10), (50, 522, 50)]).is_consistent());
        assert!(sparse(100, &[]).is_consistent());
        assert!(!sparse(100, &[(50, 0, u64::MAX - 10)]).is_consistent(), "logical end overflows");
        assert!(!sparse(100, &[(50, 0, 51)]).is_consistent(), "past the size");
        assert!(!sparse(100, &[(0, 0, 10), (5, 10, 10)]).is_consistent(), "overlapping");
        assert!(!sparse(100, &[(50, 0, 10), (0, 10, 10)]).is_consistent(), "out of order");
        assert!(!sparse(100, &[(0, 0, 0)]).is_consistent(), "empty run");
        assert!(!sparse(100, &[(0, u64::MAX, 10)]).is_consistent(), "stream offset overflows");
    }
}
