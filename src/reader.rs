//! Reading members' bytes: positioned reads for stored data, decompression through the block
//! cache for compressed data, CRC checks so that bad bytes are never served as good.
//!
//! - Raw/sparse data (tar, tar.gz, loose files, stored zip members too big to verify at once)
//!   is read at its offset in the decoded stream.
//! - A zip member up to `WHOLE_MEMBER_MAX` is decoded whole into the cache on its first read,
//!   CRC-checked before anyone sees a byte.
//! - A bigger compressed zip member is decoded front to back by one cursor per member, which
//!   leaves 1 MiB blocks in the cache behind it: concurrent and slightly out-of-order readers
//!   (kernel readahead) find their blocks there, and the member is never held whole in memory.
//! - A bigger deflated zip member gets seek points on its first pass, saved in the archive's
//!   seek-point companion file; later reads start at the nearest point.
//!
//! Everything kept between reads (cursors, first passes, seek points) is a state in the cache
//! and charged to the one budget with its real weight: evicted, it is rebuilt from the nearest
//! seek point on disk, so the daemon slows down past the budget but never grows.
//!
//! Every read first checks that its archive is still the file that was listed (size, mtime,
//! inode, device): an archive changed under the mount fails with EIO from then on, with one
//! warning, and never serves a byte of the new content.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::{Mutex, RwLock};

use crate::archive::codec::{Codec, StreamIndex};
use crate::archive::gzindex::{GzIndex, GzIndexer, WindowSource};
use crate::archive::{ByteSource, DataLoc, Member, Slice, ZipData, zip};
use crate::cache::BlockKey;
use crate::error::FsError;
use crate::index::{Identity, MemberPoints};
use crate::pool::{Archive, Pool};
use crate::stream::CompressedStream;

/// Zip members up to this size are decoded and verified whole on first read.
const WHOLE_MEMBER_MAX: u64 = 8 << 20;
/// Cache block size for big compressed members.
const STREAM_BLOCK: u64 = 1 << 20;
/// Zip method number of deflate.
const DEFLATE: u16 = 8;
/// Cache owner bit of members' own decoded streams (seek-point spans of big deflated members).
const MEMBER_STREAMS: u32 = 1 << 31;
/// Most members whose CRC is being followed at once; beyond that, the oldest are forgotten.
const MAX_TRACKED: usize = 1024;
/// Cache block number of a member's first-pass / seek-point state (never a data block number:
/// those are offsets divided by `STREAM_BLOCK`).
const STATE_DEFLATED: u64 = u64::MAX;
/// Cache block number of a member's decoder cursor.
const STATE_CURSOR: u64 = u64::MAX - 1;

/// Reads members of a pool.
pub struct Reader {
    pool: Pool,
    crc: Mutex<HashMap<(u32, u32), CrcTrack>>,
    /// Members found corrupt after some of their bytes were served (CRC of a positioned-read
    /// pass, end of a stream): every later read fails. The kernel drops errors of readahead
    /// requests and retries the pages synchronously, so failing only one read is not enough.
    corrupt: Mutex<HashMap<(u32, u32), String>>,
    /// Archives found changed under the mount (sticky: they stay refused until remounted).
    changed: Box<[AtomicBool]>,
    /// Per archive: the seek points of big members saved in its companion file, looked up the
    /// first time one is needed.
    points: Box<[RwLock<SavedPoints>]>,
}

impl Drop for Reader {
    /// Per-member states in the cache hold streams that hold the cache: clearing it breaks the
    /// cycle, so a dropped pool frees its memory (tests, `medfs ls`, fuzzing).
    fn drop(&mut self) {
        self.pool.cache.clear();
    }
}

/// What is known of an archive's seek-point companion file.
#[derive(Default)]
enum SavedPoints {
    #[default]
    NotRead,
    None,
    Some(MemberPoints),
}

/// A big deflated zip member: a first front-to-back pass yields its bytes (cached in blocks as
/// it goes, for sequential readers) and records seek points; once the pass is complete and the
/// CRC checked out, any offset is read from the nearest point.
enum Deflated {
    NotStarted,
    Indexing { pass: Box<GzIndexer<OwnedSourceReader>>, pos: u64, data: Arc<dyn ByteSource> },
    Ready(Arc<CompressedStream>, usize),
}

impl Deflated {
    /// Heap bytes held, for the cache budget.
    fn weight(&self) -> usize {
        match self {
            Deflated::NotStarted => 0,
            Deflated::Indexing { pass, .. } => pass.memory_bytes(),
            Deflated::Ready(_, weight) => *weight,
        }
    }
}

/// A sequential reader that owns its source (the pass outlives any borrow).
struct OwnedSourceReader {
    src: Arc<dyn ByteSource>,
    pos: u64,
}

impl Read for OwnedSourceReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.src.read_at(self.pos, buf)?;
        self.pos += n as u64;
        Ok(n)
    }
}

struct Cursor {
    pos: u64,
    reader: Box<dyn Read + Send>,
}

/// Working memory of a decoder of zip method `method` that has produced `decoded` bytes: its
/// input buffer, its fixed state, and for dictionary coders (LZMA and others) the dictionary
/// pages touched so far, which are at most what it has decoded.
fn decoder_bytes(method: u16, decoded: u64) -> usize {
    const INPUT: usize = 64 << 10;
    let decoded = usize::try_from(decoded).unwrap_or(usize::MAX);
    match method {
        0 => INPUT,
        DEFLATE => INPUT + (48 << 10),
        9 => INPUT + (192 << 10),
        12 => INPUT + (4 << 20),
        _ => (INPUT + (128 << 10)).saturating_add(decoded),
    }
}

impl Reader {
    /// A reader over `pool`.
    pub fn new(pool: Pool) -> Reader {
        let n = pool.archives.len();
        Reader {
            pool,
            crc: Mutex::new(HashMap::new()),
            corrupt: Mutex::new(HashMap::new()),
            changed: (0..n).map(|_| AtomicBool::new(false)).collect(),
            points: (0..n).map(|_| RwLock::new(SavedPoints::NotRead)).collect(),
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
        let Some(listed) = &a.identity else { return Ok(()) };
        let why = match a.origin.as_slice() {
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
        let fail = |e: io::Error| match e.kind() {
            io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof | io::ErrorKind::Unsupported => {
                Self::unreadable(a, m, e)
            }
            _ => FsError::Io { context: format!("{}: {}", a.display, String::from_utf8_lossy(&m.path)), source: e },
        };
        match &m.data {
            DataLoc::None => out.resize(len, 0),
            DataLoc::Bad { reason } => return Err(Self::unreadable(a, m, reason)),
            DataLoc::Raw { offset: start } => {
                out.resize(len, 0);
                if let Some(root) = &a.root {
                    read_loose(root, m, a.listed_at_ns, offset, out).map_err(|e| match e.kind() {
                        io::ErrorKind::NotFound | io::ErrorKind::StaleNetworkFileHandle => FsError::ArchiveChanged {
                            archive: format!("{}/{}", a.display, String::from_utf8_lossy(&m.path)),
                        },
                        _ => fail(e),
                    })?;
                } else {
                    let stream = a.stream.as_ref().expect("listed archives have a stream");
                    stream.read_exact_at(start + offset, out).map_err(fail)?;
                }
            }
            DataLoc::Sparse { extents } => {
                out.resize(len, 0);
                let stream = a.stream.as_ref().expect("listed archives have a stream");
                let end = offset + len as u64;
                for e in extents.iter().filter(|e| e.logical < end && e.logical + e.len > offset) {
                    let from = e.logical.max(offset);
                    let to = (e.logical + e.len).min(end);
                    let dst = &mut out[(from - offset) as usize..(to - offset) as usize];
                    stream.read_exact_at(e.offset + (from - e.logical), dst).map_err(fail)?;
                }
            }
            DataLoc::Zip(zd) => {
                if let Some(reason) = self.corrupt.lock().get(&(archive, member)) {
                    return Err(Self::unreadable(a, m, reason));
                }
                if let Err(e) = self.read_zip(a, member, m, zd, offset, len, out) {
                    if e.kind() == io::ErrorKind::InvalidData {
                        self.corrupt.lock().insert((archive, member), e.to_string());
                    }
                    return Err(fail(e));
                }
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn read_zip(
        &self,
        a: &Archive,
        index: u32,
        m: &Member,
        zd: &ZipData,
        offset: u64,
        len: usize,
        out: &mut Vec<u8>,
    ) -> io::Result<()> {
        let file = a.file.as_ref().expect("zip archives have a file");
        let cache = &self.pool.cache;
        if m.size <= WHOLE_MEMBER_MAX.min(cache.max_block() as u64) {
            let key = BlockKey { owner: a.id, item: index, block: 0 };
            let whole = cache.get_or_load(key, || {
                let _working = cache.reserve(decoder_bytes(zd.method, m.size) + m.size as usize);
                decode_whole(file.clone(), zd, m.size)
            })?;
            out.extend_from_slice(&whole[offset as usize..offset as usize + len]);
            return Ok(());
        }
        if zd.method == 0 && zd.compressed_size == m.size {
            let start = match a.zip_data_starts[index as usize].load(Ordering::Relaxed) {
                u64::MAX => {
                    let s = zip::stored_data_offset(&**file, zd)?;
                    a.zip_data_starts[index as usize].store(s, Ordering::Relaxed);
                    s
                }
                s => s,
            };
            out.resize(len, 0);
            file.read_exact_at(start + offset, out)?;
            return self.track_crc((a.id, index), m.size, zd.crc32, offset, out);
        }
        if zd.method == DEFLATE {
            return self.read_deflated(a, index, m, zd, offset, len, out);
        }
        // Big compressed member: blocks from the cache, else advance this member's cursor.
        let mut at = offset;
        let end = offset + len as u64;
        while at < end {
            let block_no = at / STREAM_BLOCK;
            let block = self.stream_block(a, index, m, zd, block_no)?;
            let from = (at - block_no * STREAM_BLOCK) as usize;
            let to = block.len().min(from + (end - at) as usize);
            if to <= from {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "member shorter than its declared size"));
            }
            out.extend_from_slice(&block[from..to]);
            at += (to - from) as u64;
        }
        Ok(())
    }

    fn stream_block(&self, a: &Archive, index: u32, m: &Member, zd: &ZipData, block_no: u64) -> io::Result<Arc<[u8]>> {
        let cache = &self.pool.cache;
        let key = |b: u64| BlockKey { owner: a.id, item: index, block: b };
        if let Some(b) = cache.get(&key(block_no)) {
            return Ok(b);
        }
        let state_key = key(STATE_CURSOR);
        let slot = cache.state(state_key, || (Mutex::new(None::<Cursor>), 0));
        let mut cursor = slot.lock();
        // Another reader may have passed this block while we waited for the cursor.
        if let Some(b) = cache.get(&key(block_no)) {
            return Ok(b);
        }
        let target = block_no * STREAM_BLOCK;
        if cursor.as_ref().is_none_or(|c| c.pos > target) {
            let file = a.file.as_ref().expect("zip archives have a file").clone();
            *cursor = Some(Cursor { pos: 0, reader: zip::open_member(file, zd, m.size)? });
        }
        loop {
            let Some(c) = cursor.as_mut() else {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "member shorter than its declared size"));
            };
            cache.reweigh(&state_key, decoder_bytes(zd.method, c.pos));
            let want = STREAM_BLOCK.min(m.size - c.pos) as usize;
            let mut block = vec![0u8; want];
            let mut result = c.reader.read_exact(&mut block);
            if result.is_ok() && c.pos + want as u64 == m.size {
                // Let the decoder see the end, which is where it checks the CRC.
                let mut probe = [0u8; 1];
                result = match c.reader.read(&mut probe) {
                    Ok(0) => Ok(()),
                    Ok(_) => Err(io::Error::new(io::ErrorKind::InvalidData, "member longer than its declared size")),
                    Err(e) => Err(e),
                };
            }
            let this = c.pos / STREAM_BLOCK;
            c.pos += want as u64;
            if result.is_err() || c.pos == m.size {
                // A cursor that failed or reached the end serves nothing more: free its decoder.
                *cursor = None;
                cache.reweigh(&state_key, 0);
            }
            result?;
            let block: Arc<[u8]> = block.into();
            cache.insert(key(this), block.clone());
            if this == block_no {
                return Ok(block);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn read_deflated(
        &self,
        a: &Archive,
        index: u32,
        m: &Member,
        zd: &ZipData,
        offset: u64,
        len: usize,
        out: &mut Vec<u8>,
    ) -> io::Result<()> {
        let cache = &self.pool.cache;
        let key = |b: u64| BlockKey { owner: a.id, item: index, block: b };
        let first_block = offset / STREAM_BLOCK;
        let last_block = (offset + len as u64 - 1) / STREAM_BLOCK;
        // Blocks left behind by the first pass serve sequential readers without any decoding.
        let cached: Option<Vec<Arc<[u8]>>> = (first_block..=last_block).map(|b| cache.get(&key(b))).collect();
        if let Some(blocks) = cached {
            copy_blocks(&blocks, first_block, offset, len, out);
            return Ok(());
        }
        let state_key = key(STATE_DEFLATED);
        let slot = cache.state(state_key, || (Mutex::new(Deflated::NotStarted), 0));
        let mut state = slot.lock();
        if let Deflated::NotStarted = &*state {
            let file = a.file.as_ref().expect("zip archives have a file").clone();
            let start = zip::compressed_data_offset(&*file, zd)?;
            let data: Arc<dyn ByteSource> = Arc::new(Slice::new(file, start, zd.compressed_size));
            // Seek points saved earlier (by this mount before an eviction, or by an earlier
            // mount) make the first pass unnecessary.
            *state = match self.saved_points(a, index).filter(|x| x.uncompressed_len() == m.size) {
                Some(idx) => ready(data, idx, cache, a.id, index),
                None => {
                    tracing::debug!("{}: member {index}: first pass starts (read at {offset})", a.display);
                    Deflated::Indexing {
                        pass: Box::new(GzIndexer::new_raw(
                            OwnedSourceReader { src: data.clone(), pos: 0 },
                            Codec::Gzip.spacing(),
                        )),
                        pos: 0,
                        data,
                    }
                }
            };
        }
        let mut served = false;
        if let Deflated::Indexing { pass, pos, .. } = &mut *state {
            // Forward reads ride along the first pass (copying what they asked for as it goes
            // by); a read behind it waits for the pass to complete (once), after which every
            // offset is cheap.
            let forward = offset >= *pos;
            let end = offset + len as u64;
            while *pos < m.size && (!forward || *pos < end) {
                let want = STREAM_BLOCK.min(m.size - *pos) as usize;
                let mut block = vec![0u8; want];
                pass.read_exact(&mut block)?;
                let block_end = *pos + want as u64;
                if forward && block_end > offset {
                    let from = offset.max(*pos) - *pos;
                    let to = end.min(block_end) - *pos;
                    out.extend_from_slice(&block[from as usize..to as usize]);
                }
                cache.insert(key(*pos / STREAM_BLOCK), block.into());
                *pos = block_end;
            }
            served = forward;
            if *pos >= m.size {
                let mut extra = [0u8; 1];
                if pass.read(&mut extra)? != 0 {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, "member longer than its declared size"));
                }
                if pass.crc32() != zd.crc32 {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("CRC-32 mismatch (stored {:08x}, data {:08x})", zd.crc32, pass.crc32()),
                    ));
                }
                let Deflated::Indexing { pass, data, .. } = std::mem::replace(&mut *state, Deflated::NotStarted) else {
                    unreachable!()
                };
                let (idx, err) = pass.finish_partial();
                if let Some(e) = err {
                    return Err(e);
                }
                // Saved, the points' windows leave memory: they are read from the file on demand.
                let idx = self.save_points(a, index, idx);
                *state = ready(data, idx, cache, a.id, index);
            }
        }
        cache.reweigh(&state_key, state.weight());
        if served {
            return Ok(());
        }
        let Deflated::Ready(stream, _) = &*state else { unreachable!("a backward read completes the pass") };
        let stream = stream.clone();
        drop(state);
        out.resize(len, 0);
        stream.read_exact_at(offset, out)
    }

    /// The seek points of member `index` saved in the archive's companion file, windows left on
    /// disk. The companion is scanned once, when first needed.
    fn saved_points(&self, a: &Archive, index: u32) -> Option<GzIndex> {
        let id = a.identity.as_ref()?;
        let slot = &self.points[a.id as usize];
        if matches!(*slot.read(), SavedPoints::NotRead) {
            let mut w = slot.write();
            if matches!(*w, SavedPoints::NotRead) {
                *w = self.pool.store.member_points(id).map_or(SavedPoints::None, SavedPoints::Some);
            }
        }
        let SavedPoints::Some(points) = &*slot.read() else { return None };
        let (table, windows_at) = points.table(index)?;
        let idx = GzIndex::from_parts(&table, WindowSource::Disk(points.file.clone(), windows_at)).ok()?;
        Some(idx.into_raw())
    }

    /// Appends member `index`'s fresh seek points to the archive's companion file and returns
    /// them read back from there (windows on disk); when they cannot be saved (no index,
    /// read-only or full index folder) the in-memory index is returned, with one warning.
    fn save_points(&self, a: &Archive, index: u32, idx: GzIndex) -> GzIndex {
        let Some(id) = a.identity.as_ref().filter(|_| self.pool.store.enabled()) else { return idx };
        let (table, windows) = match idx.to_parts() {
            Ok(parts) => parts,
            Err(_) => return idx,
        };
        let at = match self.pool.store.add_member_points(id, index, &table, &windows) {
            Ok(at) => at,
            Err(e) => {
                tracing::warn!("{}: seek points of member {index} not saved ({e}); they stay in memory", a.display);
                return idx;
            }
        };
        {
            let mut slot = self.points[a.id as usize].write();
            let added = match &mut *slot {
                SavedPoints::Some(p) => p.add(&self.pool.store, id, index, at),
                _ => false,
            };
            if !added {
                *slot = self.pool.store.member_points(id).map_or(SavedPoints::None, SavedPoints::Some);
            }
        }
        self.saved_points(a, index).filter(|x| x.uncompressed_len() == idx.uncompressed_len()).unwrap_or(idx)
    }

    /// Reads the first `len` bytes of a member into `out` without decompressing all of a big
    /// compressed member (headers of DICOM files, image sizes). Small members are read as usual.
    pub fn read_head(&self, archive: u32, member: u32, len: usize, out: &mut Vec<u8>) -> Result<(), FsError> {
        let a = &self.pool.archives[archive as usize];
        let m = &a.members[member as usize];
        if let DataLoc::Zip(zd) = &m.data
            && zd.method != 0
            && m.size > len as u64
            && m.size > 1 << 20
        {
            out.clear();
            self.check_unchanged(a)?;
            let file = a.file.as_ref().expect("zip archives have a file").clone();
            let fail = |e: io::Error| Self::unreadable(a, m, e);
            let _working = self.pool.cache.reserve(decoder_bytes(zd.method, len as u64) + len);
            let reader = zip::open_member(file, zd, m.size).map_err(fail)?;
            reader.take(len as u64).read_to_end(out).map_err(fail)?;
            return Ok(());
        }
        self.read(archive, member, 0, len, out)
    }

    /// Follows the CRC of a member served by positioned reads; the read that completes the
    /// member fails if the CRC does not match, so a sequential reader (cp, sha256sum) sees an
    /// error instead of silently wrong bytes.
    fn track_crc(&self, key: (u32, u32), size: u64, expected: u32, offset: u64, data: &[u8]) -> io::Result<()> {
        let mut all = self.crc.lock();
        if all.len() >= MAX_TRACKED && !all.contains_key(&key) {
            // Forgetting is safe: it only means this member's current pass is not verified.
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

/// Copies `[offset, offset + len)` out of consecutive stream blocks starting at block `first`.
fn copy_blocks(blocks: &[Arc<[u8]>], first: u64, offset: u64, len: usize, out: &mut Vec<u8>) {
    let mut at = offset;
    let end = offset + len as u64;
    for (i, b) in blocks.iter().enumerate() {
        let base = (first + i as u64) * STREAM_BLOCK;
        let from = (at - base) as usize;
        let to = ((end - base) as usize).min(b.len());
        out.extend_from_slice(&b[from..to]);
        at = base + to as u64;
    }
}

fn decode_whole(file: Arc<dyn ByteSource>, zd: &ZipData, size: u64) -> io::Result<Vec<u8>> {
    let mut reader = zip::open_member(file, zd, size)?;
    // The size comes from the central directory and is capped by the caller, so this
    // allocation is bounded whatever the header claims.
    let mut out = Vec::with_capacity(size as usize);
    reader.read_to_end(&mut out)?;
    if out.len() as u64 != size {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("member has {} bytes, not {size}", out.len())));
    }
    Ok(out)
}

fn read_loose(root: &std::path::Path, m: &Member, listed_at_ns: i128, offset: u64, out: &mut [u8]) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let path = root.join(std::ffi::OsStr::from_bytes(&m.path));
    let file = std::fs::File::open(&path)?;
    let meta = file.metadata()?;
    let ctime_ns = meta.ctime() as i128 * 1_000_000_000 + meta.ctime_nsec() as i128;
    if meta.len() != m.size || meta.mtime() != m.mtime || ctime_ns >= listed_at_ns {
        // ESTALE: the file is no longer the one that was listed.
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

/// A deflated member ready for reads at any offset from its seek points.
fn ready(
    data: Arc<dyn ByteSource>,
    idx: GzIndex,
    cache: &Arc<crate::cache::BlockCache>,
    owner: u32,
    index: u32,
) -> Deflated {
    let weight = idx.memory_bytes();
    let stream = CompressedStream::new(data, StreamIndex::Gz(idx), cache.clone(), owner | MEMBER_STREAMS, index);
    Deflated::Ready(Arc::new(stream), weight)
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
