//! Decoded streams as random-access byte sources: a compressed stream (gzip, bzip2, xz, zstd)
//! served from its seek points through the shared block cache, and, where its seek points are
//! too far apart to cache a span in memory (a single-block xz, a single-frame zstd), through the
//! disk cache in 1 MiB blocks.
//!
//! A reader walking a stream front to back (it has crossed [`STREAK`] span boundaries in order)
//! gets the next [`READ_AHEAD`] spans decoded ahead of it on the read-ahead workers (one per
//! core), each charged to the budget while it decodes and cached like any span; readers of other
//! spans never wait for each other (no lock is held while decoding, only single-flight per span).

use std::io::{self, Read};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;

use crate::archive::ByteSource;
use crate::archive::codec::StreamIndex;
use crate::cache::{BlockCache, BlockKey};
use crate::diskcache::ArchiveBlocks;

/// Prefixes of spans are inflated in multiples of this.
const PREFIX_GRAIN: u64 = 64 << 10;

/// Size of the disk-cached blocks of a long span. Fixed, not derived from `--cache-size`: a
/// block written by one mount is found by the next whatever its budget.
pub const DISK_BLOCK: u64 = 1 << 20;

/// Spans decoded ahead of a sequential reader. Two keep both cores of a 2-core machine busy
/// (the reader's request then copies from a decoded span); more only evict sooner under a small
/// budget.
pub const READ_AHEAD: usize = 2;

/// Span boundaries a reader must cross in order before read-ahead starts: a random reader of
/// small members that happens to read across one boundary (a tar.gz member straddling two
/// spans) must not make the cores decode spans nobody reads.
const STREAK: u32 = 2;

/// Marks a disk-cached block's number in the memory cache's keys (spans use `2 * span` and
/// `2 * span + 1`, far below it).
const DISK_BLOCKS: u64 = 1 << 63;

/// The decompressed bytes of a compressed file, readable at any offset.
///
/// A read inflates the seek-point span that holds it, once, into the block cache; neighbours in
/// the same span (the next members of a tar.gz) are then served from memory. Spans too large to
/// cache (a hostile or unusual stream) are streamed from their seek point instead.
pub struct CompressedStream {
    file: Arc<dyn ByteSource>,
    /// Shared with read-ahead jobs.
    index: Arc<StreamIndex>,
    cache: Arc<BlockCache>,
    /// Cache key of this stream's blocks: block `2 * span` is a whole span, `2 * span + 1` a
    /// prefix of it.
    owner: u32,
    item: u32,
    /// Where blocks of spans too long for the memory cache are kept (keyed by `item` and their
    /// number, offset / [`DISK_BLOCK`]); without it such spans are decoded from their seek point
    /// at every read.
    disk: Option<ArchiveBlocks>,
    /// The readers walking this stream, as the kernel tracks readahead per open file: FUSE
    /// does not say which reader asks, so a read continues the walk it is next to.
    walks: Mutex<[Walk; WALKS]>,
}

/// Walks followed per stream: a few sequential readers and random readers at once, the random
/// ones taking the least recently moved slot instead of breaking a sequential reader's streak.
const WALKS: usize = 4;

/// One reader's walk: the last span it read, how many boundaries it crossed in order to get
/// there, and when it last moved (for replacing the stalest).
#[derive(Clone, Copy)]
struct Walk {
    span: usize,
    streak: u32,
    moved: u64,
}

/// The read-ahead workers: their own pool, not rayon's global one, whose threads (the DICOM scan,
/// listing) may themselves be readers waiting for a span. A job only starts a decode that nobody
/// has started yet and never waits for another, so queued jobs cannot deadlock the readers.
fn workers() -> &'static rayon::ThreadPool {
    static POOL: OnceLock<rayon::ThreadPool> = OnceLock::new();
    POOL.get_or_init(|| {
        let n = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 8);
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .thread_name(|i| format!("medfs-ahead-{i}"))
            .build()
            .expect("read-ahead threads")
    })
}

/// Read-ahead jobs queued or running, over all streams: bounded so that a reader faster than the
/// cores does not pile up work it will have to wait behind.
static AHEAD_JOBS: AtomicUsize = AtomicUsize::new(0);

/// Read-ahead jobs that decoded a span (for tests and the benchmark's report).
pub static AHEAD_DECODED: AtomicUsize = AtomicUsize::new(0);

impl CompressedStream {
    /// Wraps a compressed `file` whose seek points are `index`; `(owner, item)` keys its blocks
    /// in `cache` and must be unique to this stream.
    pub fn new(
        file: Arc<dyn ByteSource>,
        index: StreamIndex,
        cache: Arc<BlockCache>,
        owner: u32,
        item: u32,
    ) -> CompressedStream {
        let walks = Mutex::new([Walk { span: usize::MAX, streak: 0, moved: 0 }; WALKS]);
        CompressedStream { file, index: Arc::new(index), cache, owner, item, disk: None, walks }
    }

    /// Serves spans too long for the memory cache through `disk` (when given).
    pub fn with_disk(mut self, disk: Option<ArchiveBlocks>) -> CompressedStream {
        self.disk = disk;
        self
    }

    /// Serves `buf` at `offset` from disk block `offset / DISK_BLOCK`: from memory, else from
    /// disk, else decoded from the seek point before it (writing every block passed on the way
    /// to disk, so a later read anywhere before it is a disk read too).
    fn read_through_disk(&self, disk: &ArchiveBlocks, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let number = offset / DISK_BLOCK;
        let block_start = number * DISK_BLOCK;
        let block_len = DISK_BLOCK.min(self.len() - block_start) as usize;
        let load = || -> io::Result<Vec<u8>> {
            // A block of another length (another build's decoding of a damaged stream) is not it.
            // Reading a block file holds it twice for a moment (file bytes, then the block).
            let working = self.cache.reserve(2 * block_len);
            if let Some(block) = disk.get(self.item, number).filter(|b| b.len() == block_len) {
                return Ok(block);
            }
            drop(working);
            self.decode_to_disk(disk, number, block_len)
        };
        let block: Arc<[u8]> = if block_len <= self.cache.max_block() {
            let key = BlockKey { owner: self.owner, item: self.item, block: DISK_BLOCKS | number };
            self.cache.get_or_load(key, load)?
        } else {
            // A budget too small to hold a block: read it, charged, for this request only.
            let _working = self.cache.reserve(2 * block_len);
            Arc::from(load()?)
        };
        let at = (offset - block_start) as usize;
        let n = buf.len().min(block.len().saturating_sub(at));
        buf[..n].copy_from_slice(&block[at..at + n]);
        Ok(n)
    }

    /// Decodes disk block `number` (`len` bytes) from the seek point before it, storing it and
    /// every whole block decoded before it on disk.
    fn decode_to_disk(&self, disk: &ArchiveBlocks, number: u64, len: usize) -> io::Result<Vec<u8>> {
        let block_start = number * DISK_BLOCK;
        let (_, span_start, _) = self.index.span_of(block_start);
        let first = span_start.div_ceil(DISK_BLOCK).min(number);
        let _working = self
            .cache
            .reserve(self.index.decoder_bytes(block_start + len as u64 - span_start) + 2 * DISK_BLOCK as usize);
        let mut reader = self.index.reader_at(self.file.clone(), first * DISK_BLOCK)?;
        let store = |n: u64, bytes: &[u8]| {
            // The disk cache only saves work: a full or read-only disk must not fail the read.
            if let Err(e) = disk.put(self.item, n, bytes) {
                tracing::warn!("{}: disk cache: {e}", self.describe());
            }
        };
        let mut passing = vec![0u8; DISK_BLOCK as usize];
        for n in first..number {
            reader.read_exact(&mut passing)?;
            if !disk.contains(self.item, n) {
                store(n, &passing);
            }
        }
        drop(passing);
        let mut out = vec![0u8; len];
        reader.read_exact(&mut out)?;
        store(number, &out);
        Ok(out)
    }

    /// The seek points.
    pub fn index(&self) -> &StreamIndex {
        &self.index
    }

    /// The memory cache's key of span `span` decoded whole.
    fn span_key(&self, span: usize) -> BlockKey {
        BlockKey { owner: self.owner, item: self.item, block: 2 * span as u64 }
    }

    /// Notes a read in `span`; returns how many span boundaries its reader crossed in order to
    /// reach it (0: a jump, a reader new to this stream). A read in the span of a walk, or
    /// slightly behind it (the kernel's concurrent requests arrive out of order), continues it;
    /// one in the span after a walk's extends it; anything else starts a walk in the stalest
    /// slot.
    fn walked_to(&self, span: usize) -> u32 {
        let mut walks = self.walks.lock();
        let now = walks.iter().map(|w| w.moved).max().unwrap_or(0) + 1;
        if let Some(w) = walks.iter_mut().find(|w| w.span != usize::MAX && w.span >= span && w.span - span <= 2) {
            w.moved = now;
            return w.streak;
        }
        if let Some(w) = walks.iter_mut().find(|w| w.span != usize::MAX && w.span + 1 == span) {
            w.span = span;
            w.streak = w.streak.saturating_add(1);
            w.moved = now;
            return w.streak;
        }
        let stalest = walks.iter_mut().min_by_key(|w| w.moved).expect("WALKS > 0");
        *stalest = Walk { span, streak: 0, moved: now };
        0
    }

    /// Queues the decoding of the [`READ_AHEAD`] spans from offset `from` on that are neither cached nor
    /// being decoded, on the read-ahead workers. Each job charges its decoder and span to the
    /// budget, and is dropped instead when that would mean waiting for room.
    fn read_ahead(&self, from: u64) {
        let mut at = from;
        for _ in 0..READ_AHEAD {
            if at >= self.len() {
                return;
            }
            let (next, start, end) = self.index.span_of(at);
            at = end;
            let key = self.span_key(next);
            let len = (end - start) as usize;
            if len > self.cache.max_block() || self.cache.has_or_loading(&key) {
                continue;
            }
            if AHEAD_JOBS.fetch_add(1, Ordering::AcqRel) >= 2 * READ_AHEAD * workers().current_num_threads() {
                AHEAD_JOBS.fetch_sub(1, Ordering::AcqRel);
                return;
            }
            let (file, index, cache) = (self.file.clone(), self.index.clone(), self.cache.clone());
            workers().spawn(move || {
                // Charged before the span is claimed: a job that finds no room leaves it to
                // the reader, whom it never answers with an error of its own.
                // The charge ends with the decoding, before the span is cached (and charged as
                // a block), as in a reader's own decoding.
                if let Some(working) = cache.try_reserve(index.decoder_bytes(len as u64) + len)
                    && cache.prefetch(key, move || {
                        let _working = working;
                        index.read_span(file, next, len)
                    })
                {
                    AHEAD_DECODED.fetch_add(1, Ordering::Relaxed);
                }
                AHEAD_JOBS.fetch_sub(1, Ordering::AcqRel);
            });
        }
    }
}

/// A first pass's decoded bytes, passed through while the [`DISK_BLOCK`]s of them that lie at
/// least `depth` bytes past the last seek point (which the memory cache cannot hold as a span,
/// and a read would decode from that point) are stored in the disk cache. Blocks nearer to a
/// point are not buffered at all, so a stream with close points costs nothing.
pub struct DiskTee<R, F> {
    inner: R,
    disk: Option<ArchiveBlocks>,
    item: u32,
    depth: u64,
    last_point: F,
    /// Decoded bytes passed so far.
    pos: u64,
    /// The block being gathered, when it is to be stored.
    block: Vec<u8>,
    gathering: bool,
}

impl<R: Read, F: Fn(&R) -> Option<u64>> DiskTee<R, F> {
    /// Passes `inner` through, storing deep blocks as block `offset / DISK_BLOCK` of `item` in
    /// `disk` (nothing when `None`); `last_point` tells where the last seek point so far starts.
    pub fn new(inner: R, disk: Option<ArchiveBlocks>, item: u32, depth: u64, last_point: F) -> Self {
        DiskTee { inner, disk, item, depth, last_point, pos: 0, block: Vec::new(), gathering: false }
    }

    /// The wrapped reader.
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// The stream ended cleanly (a damaged one fails instead): its short last block is whole.
    fn stream_ended(&mut self) {
        if let Some(disk) = self.disk.as_ref().filter(|_| self.gathering && !self.block.is_empty()) {
            if let Err(e) = disk.put(self.item, self.pos / DISK_BLOCK, &self.block) {
                tracing::warn!("disk cache: {e}");
            }
            self.gathering = false;
        }
    }

    fn pass(&mut self, mut bytes: &[u8]) {
        let Some(disk) = &self.disk else { return };
        while !bytes.is_empty() {
            let in_block = (self.pos % DISK_BLOCK) as usize;
            if in_block == 0 {
                // Points are recorded before their bytes are decoded: one past `pos` means this
                // block is near a point, and none can appear before `pos` later.
                let deep = (self.last_point)(&self.inner).is_some_and(|p| self.pos.saturating_sub(p) >= self.depth);
                self.gathering = deep && !disk.contains(self.item, self.pos / DISK_BLOCK);
                self.block.clear();
            }
            let take = bytes.len().min(DISK_BLOCK as usize - in_block);
            if self.gathering {
                self.block.extend_from_slice(&bytes[..take]);
                if self.block.len() == DISK_BLOCK as usize {
                    if let Err(e) = disk.put(self.item, self.pos / DISK_BLOCK, &self.block) {
                        tracing::warn!("disk cache: {e}");
                        self.disk = None;
                        return;
                    }
                    self.gathering = false;
                }
            }
            self.pos += take as u64;
            bytes = &bytes[take..];
        }
    }
}

impl<R: Read, F: Fn(&R) -> Option<u64>> Read for DiskTee<R, F> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.pass(&buf[..n]);
        if n == 0 && !buf.is_empty() {
            self.stream_ended();
        }
        Ok(n)
    }
}

impl ByteSource for CompressedStream {
    fn len(&self) -> u64 {
        self.index.uncompressed_len()
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        if offset >= self.len() || buf.is_empty() {
            return Ok(0);
        }
        let (span, start, end) = self.index.span_of(offset);
        let span_len = end - start;
        let need = (offset + buf.len() as u64).min(end) - start;
        let at = (offset - start) as usize;
        let serve = |block: &[u8], buf: &mut [u8]| {
            let n = buf.len().min(block.len().saturating_sub(at));
            buf[..n].copy_from_slice(&block[at..at + n]);
            n
        };
        if span_len as usize <= self.cache.max_block() {
            let full_key = self.span_key(span);
            let prefix_key = BlockKey { owner: self.owner, item: self.item, block: 2 * span as u64 + 1 };
            let streak = self.walked_to(span);
            if streak >= STREAK {
                self.read_ahead(end);
            }
            if let Some(block) = self.cache.get(&full_key) {
                return Ok(serve(&block, buf));
            }
            let prefix = self.cache.get(&prefix_key);
            if let Some(block) = &prefix
                && block.len() as u64 >= need
            {
                return Ok(serve(block, buf));
            }
            // A random read inflates only from the seek point to the end of what it needs
            // (rounded up, so the next members in archive order come along); the second time a
            // span is touched beyond that, it is inflated whole, so a sequential walk costs about
            // one pass and a random one about half a span.
            // A reader coming from the span before reads this one whole anyway.
            let target = need.div_ceil(PREFIX_GRAIN) * PREFIX_GRAIN;
            if prefix.is_none() && streak == 0 && target < span_len * 3 / 4 {
                let block = self.cache.get_or_load(prefix_key, || {
                    let _working = self.cache.reserve(self.index.decoder_bytes(target) + target as usize);
                    let mut reader = self.index.reader_at(self.file.clone(), start)?;
                    let mut out = vec![0u8; target as usize];
                    reader.read_exact(&mut out)?;
                    Ok(out)
                })?;
                if block.len() as u64 >= need {
                    return Ok(serve(&block, buf));
                }
            }
            let block = self.cache.get_or_load(full_key, || {
                let _working = self.cache.reserve(self.index.decoder_bytes(span_len) + span_len as usize);
                self.index.read_span(self.file.clone(), span, span_len as usize)
            })?;
            return Ok(serve(&block, buf));
        }
        if let Some(disk) = &self.disk {
            return self.read_through_disk(disk, offset, buf);
        }
        // A span too long to cache: stream from its seek point, charging the decoder meanwhile.
        let want = buf.len().min((end - offset) as usize);
        let _working = self.cache.reserve(self.index.decoder_bytes(offset + want as u64 - start));
        let mut reader = self.index.reader_at(self.file.clone(), offset)?;
        let mut got = 0;
        while got < want {
            match reader.read(&mut buf[got..want])? {
                0 => break,
                n => got += n,
            }
        }
        Ok(got)
    }

    fn describe(&self) -> String {
        format!("{} (decompressed)", self.file.describe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diskcache::DiskCache;
    use crate::persist::Identity;

    #[test]
    fn a_tee_stores_only_whole_blocks_far_from_the_last_point() {
        let dir = tempfile::tempdir().unwrap();
        let disk = DiskCache::open(dir.path().to_path_buf(), 64 << 20).unwrap();
        let id = Identity { path: b"/x.xz".to_vec(), size: 1, mtime_ns: 1, dev: 1, ino: 1 };
        let blocks = disk.archive(id, &[]);
        let data: Vec<u8> = (0..(5 * DISK_BLOCK + 100)).map(|i| (i % 251) as u8).collect();
        let tee = |last: Option<u64>, item: u32| {
            let mut t =
                DiskTee::new(io::Cursor::new(&data), Some(blocks.clone()), item, 2 * DISK_BLOCK, move |_: &_| last);
            let mut out = Vec::new();
            // Odd-sized reads cross block boundaries inside one read.
            let mut buf = vec![0u8; 300_001];
            loop {
                match t.read(&mut buf).unwrap() {
                    0 => break,
                    n => out.extend_from_slice(&buf[..n]),
                }
            }
            assert!(out == data, "the tee changed the bytes");
        };
        tee(Some(0), 1);
        let stored: Vec<u64> = (0..6).filter(|&b| blocks.contains(1, b)).collect();
        assert_eq!(stored, vec![2, 3, 4, 5], "deep blocks only, and the short last one at the end");
        assert_eq!(blocks.get(1, 5).unwrap(), &data[5 * DISK_BLOCK as usize..]);
        let d = DISK_BLOCK as usize;
        assert!(blocks.get(1, 3).unwrap() == data[3 * d..4 * d]);
        // A point recorded further on (the pass is ahead), or no points tracked: nothing.
        tee(Some(u64::MAX), 2);
        tee(None, 3);
        assert!((0..6).all(|b| !blocks.contains(2, b) && !blocks.contains(3, b)));
        // A stream that fails: its last, partial block is not stored.
        struct Fails<'a>(io::Cursor<&'a [u8]>);
        impl Read for Fails<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                match self.0.read(buf)? {
                    0 => Err(io::Error::new(io::ErrorKind::InvalidData, "bad block")),
                    n => Ok(n),
                }
            }
        }
        let mut t = DiskTee::new(Fails(io::Cursor::new(&data)), Some(blocks.clone()), 4, 0, |_: &_| Some(0));
        assert!(io::copy(&mut t, &mut io::sink()).is_err());
        assert!(blocks.contains(4, 4) && !blocks.contains(4, 5));
    }
}
