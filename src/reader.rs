//! Reading members' bytes, whatever their format: every read first checks that its archive is
//! still the file that was listed, then asks the archive's format (`archive::format`) for the
//! bytes, so that bad bytes are never served as good.
//!
//! What is common to all formats lives here: an archive changed under the mount (size, mtime,
//! inode, device) fails with EIO from then on, with one warning, and never serves a byte of the
//! new content; a member found corrupt stays failed; CRC-32s of members served by positioned
//! reads are followed across reads ([`ReadCtx::track_crc`]); the cache and the index store are
//! handed to the formats in a [`ReadCtx`]. Raw and sparse data are read by
//! `archive::format::read_stored`; zip's own paths (whole-member decoding, cursors, seek points
//! of big deflated members) are in `archive/zip/read.rs`.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;

use crate::archive::format::MemberChanged;
use crate::archive::{DataLoc, Member};
use crate::cache::BlockCache;
use crate::error::FsError;
use crate::index::{Identity, IndexStore};
use crate::pool::{Archive, Pool};

/// Most members whose CRC is being followed at once. A new member past this many makes room by
/// dropping one of the others, whichever the map yields first (no order is kept): that member's
/// current pass then goes unverified (a later complete pass is checked again).
const MAX_TRACKED: usize = 1024;

/// Reads members of a pool.
pub struct Reader {
    pool: Pool,
    crc: CrcTracks,
    /// Members found corrupt after some of their bytes were served (CRC of a positioned-read
    /// pass, end of a stream): every later read fails. The kernel drops errors of readahead
    /// requests and retries the pages synchronously, so failing only one read is not enough.
    corrupt: Mutex<HashMap<(u32, u32), String>>,
    /// Archives found changed under the mount (sticky: they stay refused until remounted).
    changed: Box<[AtomicBool]>,
}

impl Drop for Reader {
    /// Per-member states in the cache hold streams that hold the cache: clearing it breaks the
    /// cycle, so a dropped pool frees its memory (tests, `medfs ls`, fuzzing).
    fn drop(&mut self) {
        self.pool.cache.clear();
    }
}

/// What a format's reading gets from the reader: the archive being read and the shared services.
pub struct ReadCtx<'a> {
    /// The one block cache (and memory budget).
    pub cache: &'a Arc<BlockCache>,
    /// Where the archive's index and its companion files live.
    pub store: &'a IndexStore,
    /// The archive's number: the owner of its blocks in `cache`.
    pub id: u32,
    /// The archive's name in messages.
    pub display: &'a str,
    /// Who the archive file is, for its companion files (`None`: not from a path).
    pub identity: Option<&'a Identity>,
    crc: &'a CrcTracks,
}

/// The CRC-32s being followed across reads, per (cache owner, member).
#[derive(Default)]
pub struct CrcTracks(Mutex<HashMap<(u32, u32), CrcTrack>>);

impl<'a> ReadCtx<'a> {
    /// The context of reads of archive `display`, cache owner `id`, for readers other than
    /// [`Reader`] (a nested archive reads its outer archive's member through one).
    pub fn new(
        cache: &'a Arc<BlockCache>,
        store: &'a IndexStore,
        id: u32,
        display: &'a str,
        identity: Option<&'a Identity>,
        crc: &'a CrcTracks,
    ) -> ReadCtx<'a> {
        ReadCtx { cache, store, id, display, identity, crc }
    }

    /// Follows the CRC of member `member` served by positioned reads; the read that completes
    /// the member fails if the CRC does not match, so a sequential reader (cp, sha256sum) sees
    /// an error instead of silently wrong bytes.
    pub fn track_crc(&self, member: u32, size: u64, expected: u32, offset: u64, data: &[u8]) -> io::Result<()> {
        let key = (self.id, member);
        let mut all = self.crc.0.lock();
        if all.len() >= MAX_TRACKED && !all.contains_key(&key) {
            // Forgetting is safe: it only means that member's current pass is not verified.
            if let Some(&victim) = all.keys().next() {
                all.remove(&victim);
            }
        }
        let Some(crc) = all.entry(key).or_default().add(offset, data, size) else { return Ok(()) };
        all.remove(&key);
        if crc != expected {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("CRC-32 mismatch over {size} bytes (stored {expected:08x}, read {crc:08x})"),
            ));
        }
        Ok(())
    }
}

impl Reader {
    /// A reader over `pool`.
    pub fn new(pool: Pool) -> Reader {
        let n = pool.archives.len();
        Reader {
            pool,
            crc: CrcTracks::default(),
            corrupt: Mutex::new(HashMap::new()),
            changed: (0..n).map(|_| AtomicBool::new(false)).collect(),
        }
    }

    /// Fails when archive `a` is no longer the file that was listed: deleted, truncated,
    /// rewritten or replaced. Checked on every read that reaches an archive (one `stat`), so
    /// no byte of new content is ever served under old offsets; the first failure is logged.
    fn check_unchanged(&self, a: &Archive) -> Result<(), FsError> {
        let changed = || FsError::ArchiveChanged { archive: a.display.clone() };
        if self.changed[a.id as usize].load(Ordering::Relaxed) {
            return Err(changed());
        }
        let Some((listed, origin)) = a.file.as_ref().and_then(|f| Some((f.identity.as_ref()?, &f.origin))) else {
            return Ok(());
        };
        let why = match origin.as_slice() {
            [] => return Ok(()),
            [one] => match std::fs::metadata(one) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => Some("deleted".to_string()),
                Err(e) => Some(format!("cannot stat it: {e}")),
                Ok(m) => identity_change(listed, m.len(), mtime_ns(&m), m.dev(), m.ino()),
            },
            parts => match Identity::of_parts(parts) {
                Err(e) => Some(format!("a part is gone or unreadable: {e}")),
                Ok(now) => identity_change(listed, now.size, now.mtime_ns, now.dev, now.ino),
            },
        };
        let Some(why) = why else { return Ok(()) };
        if !self.changed[a.id as usize].swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "{}: changed since it was mounted ({why}); its files now fail with EIO. \
                 Unmount and mount again to read the new content.",
                a.display
            );
        }
        Err(changed())
    }

    /// The pool.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    fn unreadable(archive: &Archive, member: &Member, reason: impl ToString) -> FsError {
        FsError::Unreadable {
            archive: archive.display.clone(),
            member: String::from_utf8_lossy(&member.path).into_owned(),
            reason: reason.to_string(),
        }
    }

    fn ctx<'a>(&'a self, a: &'a Archive) -> ReadCtx<'a> {
        ReadCtx {
            cache: &self.pool.cache,
            store: &self.pool.store,
            id: a.owner,
            display: &a.display,
            identity: a.file.as_ref().and_then(|f| f.identity.as_ref()),
            crc: &self.crc,
        }
    }

    /// Reads up to `len` bytes of member `member` of archive `archive` at `offset` into `out`
    /// (cleared first). Fewer bytes only at the end of the member.
    pub fn read(&self, archive: u32, member: u32, offset: u64, len: usize, out: &mut Vec<u8>) -> Result<(), FsError> {
        out.clear();
        let a = &self.pool.archives[archive as usize];
        let m = &a.members[member as usize];
        if let DataLoc::Bad { reason } = &m.data {
            // Even an empty read of an unreadable member fails: "empty" would be a wrong answer.
            return Err(Self::unreadable(a, m, reason));
        }
        self.check_unchanged(a)?;
        if offset >= m.size {
            return Ok(());
        }
        let len = len.min((m.size - offset).min(usize::MAX as u64) as usize);
        if let DataLoc::None = m.data {
            out.resize(len, 0);
            return Ok(());
        }
        if let Some(reason) = self.corrupt.lock().get(&(archive, member)) {
            return Err(Self::unreadable(a, m, reason));
        }
        if let Err(e) = a.data.read(&self.ctx(a), member, m, offset, len, out) {
            if e.kind() == io::ErrorKind::InvalidData {
                self.corrupt.lock().insert((archive, member), e.to_string());
            }
            return Err(Self::failed(a, m, e));
        }
        Ok(())
    }

    /// The error of a failed read: corrupt data is the member's problem, a changed loose file
    /// its archive's, anything else (an OS error) keeps its errno.
    fn failed(a: &Archive, m: &Member, e: io::Error) -> FsError {
        if e.get_ref().is_some_and(|inner| inner.is::<MemberChanged>()) {
            return FsError::ArchiveChanged { archive: format!("{}/{}", a.display, String::from_utf8_lossy(&m.path)) };
        }
        match e.kind() {
            io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof | io::ErrorKind::Unsupported => {
                Self::unreadable(a, m, e)
            }
            _ => FsError::Io { context: format!("{}: {}", a.display, String::from_utf8_lossy(&m.path)), error: e },
        }
    }

    /// Hints that the first `len` bytes of each of `members` of `archive` will be read soon
    /// (see `ByteSource::will_need`).
    pub fn will_read_heads(&self, archive: u32, members: &[u32], len: usize) {
        let a = &self.pool.archives[archive as usize];
        for &m in members {
            a.data.will_read_head(&a.members[m as usize], len);
        }
    }

    /// Reads the first `len` bytes of a member into `out` without decompressing all of a big
    /// compressed member (headers of DICOM files, image sizes). Small members are read as usual.
    pub fn read_head(&self, archive: u32, member: u32, len: usize, out: &mut Vec<u8>) -> Result<(), FsError> {
        let a = &self.pool.archives[archive as usize];
        let m = &a.members[member as usize];
        if !a.data.has_cheap_head(m, len) {
            return self.read(archive, member, 0, len, out);
        }
        out.clear();
        self.check_unchanged(a)?;
        a.data.read_head(&self.ctx(a), member, m, len, out).map_err(|e| Self::unreadable(a, m, e))
    }
}

/// CRC-32 of the disjoint ranges of one member read so far, merged as they become adjacent
/// (reads arrive out of order from concurrent kernel requests).
#[derive(Default)]
struct CrcTrack {
    segments: BTreeMap<u64, (u64, crc32fast::Hasher)>,
}

impl CrcTrack {
    const MAX_SEGMENTS: usize = 64;

    /// Adds a read of `data` at `offset`; once the reads cover `[0, size)` without a gap,
    /// returns the CRC-32 of the whole member. Re-reads (overlaps) are ignored.
    fn add(&mut self, offset: u64, data: &[u8], size: u64) -> Option<u32> {
        let end = offset + data.len() as u64;
        if data.is_empty() || self.overlaps(offset, end) || self.segments.len() >= Self::MAX_SEGMENTS {
            return None;
        }
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(data);
        let (mut start, mut seg_end) = (offset, end);
        if let Some((&s, &(e, _))) = self.segments.range(..offset).next_back()
            && e == offset
        {
            let (_, mut prev) = self.segments.remove(&s).expect("present");
            prev.combine(&hasher);
            hasher = prev;
            start = s;
        }
        if let Some((e, next)) = self.segments.remove(&seg_end) {
            hasher.combine(&next);
            seg_end = e;
        }
        if start == 0 && seg_end == size {
            return Some(hasher.finalize());
        }
        self.segments.insert(start, (seg_end, hasher));
        None
    }

    fn overlaps(&self, start: u64, end: u64) -> bool {
        self.segments.range(..end).next_back().is_some_and(|(_, &(e, _))| e > start)
    }
}

/// What differs between the listed identity of an archive and its file now, if anything.
fn identity_change(listed: &Identity, size: u64, mtime_ns: i128, dev: u64, ino: u64) -> Option<String> {
    if (dev, ino) != (listed.dev, listed.ino) {
        Some("replaced by another file".into())
    } else if size != listed.size {
        Some(format!("size {} bytes, was {}", size, listed.size))
    } else if mtime_ns != listed.mtime_ns {
        Some("rewritten (modification time changed)".into())
    } else {
        None
    }
}

fn mtime_ns(m: &std::fs::Metadata) -> i128 {
    m.mtime() as i128 * 1_000_000_000 + m.mtime_nsec() as i128
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_tracking_joins_out_of_order_reads() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7) as u8).collect();
        let crc = crc32fast::hash(&data);
        let mut t = CrcTrack::default();
        assert_eq!(t.add(4000, &data[4000..8000], 10_000), None);
        assert_eq!(t.add(0, &data[..4000], 10_000), None);
        assert_eq!(t.add(2000, &data[2000..3000], 10_000), None, "re-read ignored");
        assert_eq!(t.add(8000, &data[8000..], 10_000), Some(crc));
    }
}
