//! The zip format behind the format seam: detection, listing (`zip.rs` lists), and reading
//! members' bytes, CRC-checked so that bad bytes are never served as good.
//!
//! - A member up to `WHOLE_MEMBER_MAX` is decoded whole into the cache on its first read,
//!   CRC-checked before anyone sees a byte.
//! - A bigger stored member is read at its offset, its CRC followed across reads
//!   (`ReadCtx::track_crc`).
//! - A bigger compressed member is decoded front to back by one cursor per member, which leaves
//!   1 MiB blocks in the cache behind it: concurrent and slightly out-of-order readers (kernel
//!   readahead) find their blocks there, and the member is never held whole in memory.
//! - A bigger deflated member gets seek points on its first pass, saved in the archive's
//!   seek-point companion file; later reads start at the nearest point.
//!
//! Everything kept between reads (cursors, first passes, seek points) is a state in the cache
//! and charged to the one budget with its real weight: evicted, it is rebuilt from the nearest
//! seek point on disk, so the daemon slows down past the budget but never grows.

use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::{Mutex, RwLock};

use super::{compressed_data_offset, head_input, looks_like_zip, open_member, open_member_head, stored_data_offset};
use crate::archive::codec::{Codec, GzIndex, GzIndexer, StreamIndex, WindowSource};
use crate::archive::format::{Detection, Format, ListCtx, OpenArchive, Opened, Probe, read_stored};
use crate::archive::{ByteSource, DataLoc, FormatError, Member, Slice, ZipData};
use crate::cache::{BlockCache, BlockKey};
use crate::index::MemberPoints;
use crate::reader::ReadCtx;
use crate::stream::CompressedStream;

/// Zip's index tag.
const TAG: u8 = 0;
/// Members up to this size are decoded and verified whole on first read.
const WHOLE_MEMBER_MAX: u64 = 8 << 20;
/// Cache block size for big compressed members.
const STREAM_BLOCK: u64 = 1 << 20;
/// Zip method number of deflate.
const DEFLATE: u16 = 8;
/// Cache owner bit of members' own decoded streams (seek-point spans of big deflated members).
const MEMBER_STREAMS: u32 = 1 << 31;
/// Cache block number of a member's first-pass / seek-point state (never a data block number:
/// those are offsets divided by `STREAM_BLOCK`).
const STATE_DEFLATED: u64 = u64::MAX;
/// Cache block number of a member's decoder cursor.
const STATE_CURSOR: u64 = u64::MAX - 1;

/// The zip format.
pub struct Zip;

impl Format for Zip {
    fn name(&self) -> &'static str {
        "zip"
    }

    fn owns(&self, tag: u8) -> bool {
        tag == TAG
    }

    fn detect(&self, probe: &Probe<'_>) -> io::Result<Detection> {
        Ok(if looks_like_zip(probe.file) { Detection::Yes(TAG) } else { Detection::No })
    }

    fn list(&self, _: u8, file: &Arc<dyn ByteSource>, _: &ListCtx<'_>) -> Result<Opened, FormatError> {
        let listing = super::list(&**file)?;
        let data = Box::new(ZipArchive::new(file.clone(), listing.members.len()));
        Ok(Opened { listing, data, saved: Default::default() })
    }

    fn reopen(
        &self,
        _: u8,
        file: &Arc<dyn ByteSource>,
        members: &[Member],
        _: &[u8],
        _: WindowSource,
        _: &ListCtx<'_>,
    ) -> Result<Box<dyn OpenArchive>, String> {
        Ok(Box::new(ZipArchive::new(file.clone(), members.len())))
    }
}

/// One listed zip archive: the file, and what is learnt about its members as they are read.
pub struct ZipArchive {
    file: Arc<dyn ByteSource>,
    /// Data offsets of members, resolved from their local headers on first read (`u64::MAX`:
    /// not yet known).
    data_starts: Box<[AtomicU64]>,
    /// The seek points of big members saved in the archive's companion file, looked up the
    /// first time one is needed.
    points: RwLock<SavedPoints>,
}

/// What is known of an archive's seek-point companion file.
#[derive(Default)]
enum SavedPoints {
    #[default]
    NotRead,
    None,
    Some(MemberPoints),
}

/// A big deflated member: a first front-to-back pass yields its bytes (cached in blocks as it
/// goes, for sequential readers) and records seek points; once the pass is complete and the CRC
/// checked out, any offset is read from the nearest point.
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

/// One member being read: who asks, which member, where its data is.
struct At<'a, 'c> {
    ctx: &'a ReadCtx<'c>,
    index: u32,
    m: &'a Member,
    zd: &'a ZipData,
}

impl At<'_, '_> {
    fn key(&self, block: u64) -> BlockKey {
        BlockKey { owner: self.ctx.id, item: self.index, block }
    }
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

impl OpenArchive for ZipArchive {
    fn stream(&self) -> Option<&Arc<dyn ByteSource>> {
        Some(&self.file)
    }

    fn read(
        &self,
        ctx: &ReadCtx<'_>,
        member: u32,
        m: &Member,
        offset: u64,
        len: usize,
        out: &mut Vec<u8>,
    ) -> io::Result<()> {
        match &m.data {
            DataLoc::Zip(zd) => self.read_zip(&At { ctx, index: member, m, zd }, offset, len, out),
            _ => read_stored(&*self.file, m, offset, len, out),
        }
    }

    /// The local header (30 bytes, then name and extra field, whose lengths only it tells; 1 KiB
    /// covers nearly all) and what a decoder's first input read takes of the data.
    fn will_read_head(&self, m: &Member, len: usize) {
        match &m.data {
            DataLoc::Zip(zd) => {
                let first_input = if zd.method == 0 { len } else { head_input(len) } as u64;
                self.file.will_need(zd.header_offset, 30 + 1024 + zd.compressed_size.min(first_input));
            }
            DataLoc::Raw { offset } => self.file.will_need(*offset, (len as u64).min(m.size)),
            _ => {}
        }
    }

    /// Any compressed member longer than the head: the DICOM scan reads the first 64 KiB of
    /// thousands of 0.5 MB members, and decoding them whole into the cache (the usual path of
    /// small members) filled a 512 MiB budget on the first mount of a 1.2k-member zip.
    fn has_cheap_head(&self, m: &Member, len: usize) -> bool {
        matches!(&m.data, DataLoc::Zip(zd) if zd.method != 0) && m.size > len as u64
    }

    /// Inflates only the head, into `out`, and caches nothing (a whole member already cached
    /// serves it).
    fn read_head(&self, ctx: &ReadCtx<'_>, member: u32, m: &Member, len: usize, out: &mut Vec<u8>) -> io::Result<()> {
        let DataLoc::Zip(zd) = &m.data else { return self.read(ctx, member, m, 0, len, out) };
        if let Some(whole) = ctx.cache.get(&BlockKey { owner: ctx.id, item: member, block: 0 }) {
            out.extend_from_slice(&whole[..len.min(whole.len())]);
            return Ok(());
        }
        let _working = ctx.cache.reserve(decoder_bytes(zd.method, len as u64) + len);
        let reader = open_member_head(self.file.clone(), zd, m.size, len)?;
        reader.take(len as u64).read_to_end(out)?;
        Ok(())
    }

    fn table_bytes(&self) -> usize {
        self.data_starts.len() * std::mem::size_of::<AtomicU64>()
    }
}

impl ZipArchive {
    /// The zip `file`, whose listing has `members` members.
    pub fn new(file: Arc<dyn ByteSource>, members: usize) -> ZipArchive {
        ZipArchive {
            file,
            data_starts: (0..members).map(|_| AtomicU64::new(u64::MAX)).collect(),
            points: RwLock::new(SavedPoints::NotRead),
        }
    }

    fn read_zip(&self, at: &At<'_, '_>, offset: u64, len: usize, out: &mut Vec<u8>) -> io::Result<()> {
        let (cache, m, zd) = (at.ctx.cache, at.m, at.zd);
        if m.size <= WHOLE_MEMBER_MAX.min(cache.max_block() as u64) {
            let whole = cache.get_or_load(at.key(0), || {
                let _working = cache.reserve(decoder_bytes(zd.method, m.size) + m.size as usize);
                decode_whole(self.file.clone(), zd, m.size)
            })?;
            out.extend_from_slice(&whole[offset as usize..offset as usize + len]);
            return Ok(());
        }
        if zd.method == 0 && zd.compressed_size == m.size {
            let slot = self.data_starts.get(at.index as usize).ok_or_else(|| invalid("member number out of range"))?;
            let start = match slot.load(Ordering::Relaxed) {
                u64::MAX => {
                    let s = stored_data_offset(&*self.file, zd)?;
                    slot.store(s, Ordering::Relaxed);
                    s
                }
                s => s,
            };
            out.resize(len, 0);
            self.file.read_exact_at(start + offset, out)?;
            return at.ctx.track_crc(at.index, m.size, zd.crc32, offset, out);
        }
        if zd.method == DEFLATE {
            return self.read_deflated(at, offset, len, out);
        }
        // Big compressed member: blocks from the cache, else advance this member's cursor.
        let mut pos = offset;
        let end = offset + len as u64;
        while pos < end {
            let block_no = pos / STREAM_BLOCK;
            let block = self.stream_block(at, block_no)?;
            let from = (pos - block_no * STREAM_BLOCK) as usize;
            let to = block.len().min(from + (end - pos) as usize);
            if to <= from {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "member shorter than its declared size"));
            }
            out.extend_from_slice(&block[from..to]);
            pos += (to - from) as u64;
        }
        Ok(())
    }

    fn stream_block(&self, at: &At<'_, '_>, block_no: u64) -> io::Result<Arc<[u8]>> {
        let (cache, m, zd) = (at.ctx.cache, at.m, at.zd);
        if let Some(b) = cache.get(&at.key(block_no)) {
            return Ok(b);
        }
        let state_key = at.key(STATE_CURSOR);
        let slot = cache.state(state_key, || (Mutex::new(None::<Cursor>), 0));
        let mut cursor = slot.lock();
        // Another reader may have passed this block while we waited for the cursor.
        if let Some(b) = cache.get(&at.key(block_no)) {
            return Ok(b);
        }
        let target = block_no * STREAM_BLOCK;
        if cursor.as_ref().is_none_or(|c| c.pos > target) {
            *cursor = Some(Cursor { pos: 0, reader: open_member(self.file.clone(), zd, m.size)? });
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
                    Ok(_) => Err(invalid("member longer than its declared size")),
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
            cache.insert(at.key(this), block.clone());
            if this == block_no {
                return Ok(block);
            }
        }
    }

    fn read_deflated(&self, at: &At<'_, '_>, offset: u64, len: usize, out: &mut Vec<u8>) -> io::Result<()> {
        let (ctx, index, m, zd) = (at.ctx, at.index, at.m, at.zd);
        let cache = ctx.cache;
        let first_block = offset / STREAM_BLOCK;
        let last_block = (offset + len as u64 - 1) / STREAM_BLOCK;
        // Blocks left behind by the first pass serve sequential readers without any decoding.
        let cached: Option<Vec<Arc<[u8]>>> = (first_block..=last_block).map(|b| cache.get(&at.key(b))).collect();
        if let Some(blocks) = cached {
            copy_blocks(&blocks, first_block, offset, len, out);
            return Ok(());
        }
        let state_key = at.key(STATE_DEFLATED);
        let slot = cache.state(state_key, || (Mutex::new(Deflated::NotStarted), 0));
        let mut state = slot.lock();
        if let Deflated::NotStarted = &*state {
            let start = compressed_data_offset(&*self.file, zd)?;
            let data: Arc<dyn ByteSource> = Arc::new(Slice::new(self.file.clone(), start, zd.compressed_size));
            // Seek points saved earlier (by this mount before an eviction, or by an earlier
            // mount) make the first pass unnecessary.
            *state = match self.saved_points(ctx, index).filter(|x| x.uncompressed_len() == m.size) {
                Some(idx) => ready(data, idx, cache, ctx.id, index),
                None => {
                    tracing::debug!("{}: member {index}: first pass starts (read at {offset})", ctx.display);
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
                cache.insert(at.key(*pos / STREAM_BLOCK), block.into());
                *pos = block_end;
            }
            served = forward;
            if *pos >= m.size {
                let mut extra = [0u8; 1];
                if pass.read(&mut extra)? != 0 {
                    return Err(invalid("member longer than its declared size"));
                }
                if pass.crc32() != zd.crc32 {
                    return Err(invalid(format!(
                        "CRC-32 mismatch (stored {:08x}, data {:08x})",
                        zd.crc32,
                        pass.crc32()
                    )));
                }
                let Deflated::Indexing { pass, data, .. } = std::mem::replace(&mut *state, Deflated::NotStarted) else {
                    unreachable!("matched as Indexing above")
                };
                let (idx, err) = pass.finish_partial();
                if let Some(e) = err {
                    return Err(e);
                }
                // Saved, the points' windows leave memory: they are read from the file on demand.
                let idx = self.save_points(ctx, index, idx);
                *state = ready(data, idx, cache, ctx.id, index);
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
    fn saved_points(&self, ctx: &ReadCtx<'_>, index: u32) -> Option<GzIndex> {
        let id = ctx.identity?;
        if matches!(*self.points.read(), SavedPoints::NotRead) {
            let mut w = self.points.write();
            if matches!(*w, SavedPoints::NotRead) {
                *w = ctx.store.member_points(id).map_or(SavedPoints::None, SavedPoints::Some);
            }
        }
        let SavedPoints::Some(points) = &*self.points.read() else { return None };
        let (table, windows_at) = points.table(index)?;
        let idx = GzIndex::from_parts(&table, WindowSource::Disk(points.file.clone(), windows_at)).ok()?;
        Some(idx.into_raw())
    }

    /// Appends member `index`'s fresh seek points to the archive's companion file and returns
    /// them read back from there (windows on disk); when they cannot be saved (no index,
    /// read-only or full index folder) the in-memory index is returned, with one warning.
    fn save_points(&self, ctx: &ReadCtx<'_>, index: u32, idx: GzIndex) -> GzIndex {
        let Some(id) = ctx.identity.filter(|_| ctx.store.enabled()) else { return idx };
        let (table, windows) = match idx.to_parts() {
            Ok(parts) => parts,
            Err(_) => return idx,
        };
        let at = match ctx.store.add_member_points(id, index, &table, &windows) {
            Ok(at) => at,
            Err(e) => {
                tracing::warn!("{}: seek points of member {index} not saved ({e}); they stay in memory", ctx.display);
                return idx;
            }
        };
        {
            let mut slot = self.points.write();
            let added = match &mut *slot {
                SavedPoints::Some(p) => p.add(ctx.store, id, index, at),
                _ => false,
            };
            if !added {
                *slot = ctx.store.member_points(id).map_or(SavedPoints::None, SavedPoints::Some);
            }
        }
        self.saved_points(ctx, index).filter(|x| x.uncompressed_len() == idx.uncompressed_len()).unwrap_or(idx)
    }
}

fn invalid(why: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why.into())
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
    let mut reader = open_member(file, zd, size)?;
    // The size comes from the central directory and is capped by the caller, so this
    // allocation is bounded whatever the header claims.
    let mut out = Vec::with_capacity(size as usize);
    reader.read_to_end(&mut out)?;
    if out.len() as u64 != size {
        return Err(invalid(format!("member has {} bytes, not {size}", out.len())));
    }
    Ok(out)
}

/// A deflated member ready for reads at any offset from its seek points.
fn ready(data: Arc<dyn ByteSource>, idx: GzIndex, cache: &Arc<BlockCache>, owner: u32, index: u32) -> Deflated {
    let weight = idx.memory_bytes();
    let stream = CompressedStream::new(data, StreamIndex::Gz(idx), cache.clone(), owner | MEMBER_STREAMS, index);
    Deflated::Ready(Arc::new(stream), weight)
}
