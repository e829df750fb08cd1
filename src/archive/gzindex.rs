//! Random access into gzip streams (the gzip codec of the shared seek index): one indexing pass
//! records zran-style seek points, after which any byte range of the decompressed stream is read
//! by inflating from the nearest point. The zlib calls live in `zlib.rs`, member headers in
//! `gzheader.rs`; this module holds the seek points, their windows and how they are saved.
//!
//! The indexing pass ([`GzIndexer`]) is a `Read` yielding the decompressed bytes (so a tar lister
//! reads through it) while it verifies every member's CRC-32/ISIZE and records a [`SeekPoint`]
//! roughly every `spacing` uncompressed bytes: at a deflate block boundary it keeps the compressed
//! offset, the bit offset inside that byte and the last 32 KiB of output (the window, stored
//! deflate-compressed); at a gzip member boundary it needs no window at all. Afterwards
//! [`GzIndex::reader_at`] / [`GzIndex::read_span`] resume a raw inflate from a point
//! (`inflatePrime` + `inflateSetDictionary`), as zlib's `examples/zran.c` does.
//!
//! Concatenated members (pigz, `cat a.gz b.gz`) form one stream whose output is the
//! concatenation. Zero padding after the last member is accepted silently; other trailing bytes
//! give a warning. Reads started from a seek point are not CRC-checked (only the indexing pass
//! verifies trailers), so an index must only be used with the exact file it was built from.

use std::fmt;
use std::io::{self, Read};
use std::sync::Arc;

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::archive::gzheader::GzipHeader;
pub use crate::archive::gzheader::looks_like_gzip;
use crate::archive::seekidx::{
    Decode, Index, IndexStep, Input, Pass, Point, Progress, ReadFeed, SeekCodec, SourceFeed, SpanReader, Table, eof,
    invalid,
};
use crate::archive::zlib::{self, Inflater, WINSIZE, ZLIB_INFLATE_STATE, uncompress_window};
use crate::archive::{ByteSource, FormatError};

/// Input buffer of the indexing pass.
const INDEX_IN_CHUNK: usize = 1 << 20;
/// Input buffer of a zip member's first pass (see [`GzIndexer::new_raw`]).
const MEMBER_IN_CHUNK: usize = 128 << 10;
/// Compressed bytes fetched per `read_at` by a [`GzReader`].
const READER_IN_CHUNK: usize = 256 * 1024;

/// `SeekPoint::flags`: the point is the start of a gzip member (input = its header, no window).
const FLAG_MEMBER: u8 = 1;
/// `SeekPoint::flags`: the window is stored as is, because compressing it did not help.
const FLAG_RAW_WINDOW: u8 = 2;

// ---------------------------------------------------------------------------------------------
// The index.

/// A place where inflating can resume: either a gzip member start or a deflate block boundary.
pub struct SeekPoint {
    /// Offset in the decompressed stream.
    pub out: u64,
    /// Compressed offset: the member's gzip header for a member start; otherwise the first byte
    /// not fully consumed, whose low `bits` bits (if any) are in byte `input - 1`.
    pub input: u64,
    /// Number of bits of byte `input - 1` that belong to the next block (0..=7).
    pub bits: u8,
    flags: u8,
    /// Uncompressed window length (0..=32768).
    wlen: u16,
    /// The window (last `wlen` bytes of output before `out` in this member), zlib-compressed
    /// unless `FLAG_RAW_WINDOW`: in memory right after indexing, in the index file after a load.
    window: Window,
}

/// Where a seek point's stored window is. Windows are most of an index (up to 32 KiB per point,
/// about 3% of a 40 GB archive), so a loaded index leaves them in its file and reads one only
/// when a read starts at its point.
enum Window {
    Mem(Box<[u8]>),
    /// `len` bytes at `at` of the index's window file, with their CRC-32.
    Disk {
        at: u64,
        len: u32,
        crc: u32,
    },
}

impl Window {
    fn stored_len(&self) -> usize {
        match self {
            Window::Mem(b) => b.len(),
            Window::Disk { len, .. } => *len as usize,
        }
    }
}

/// Where the windows of an index being loaded are.
pub enum WindowSource {
    /// In this buffer (the windows section of [`GzIndex::to_parts`]).
    Mem(Vec<u8>),
    /// In a file, the windows section starting at the given offset; read on demand.
    Disk(Arc<dyn ByteSource>, u64),
}

impl SeekPoint {
    /// The start of a gzip member (or of a bare deflate stream): no window needed.
    fn member_start(out: u64, input: u64) -> SeekPoint {
        SeekPoint { out, input, bits: 0, flags: FLAG_MEMBER, wlen: 0, window: Window::Mem(Box::default()) }
    }

    /// True when this point is the start of a gzip member (no window needed).
    pub fn is_member_start(&self) -> bool {
        self.flags & FLAG_MEMBER != 0
    }

    /// Uncompressed length of the stored window.
    pub fn window_len(&self) -> usize {
        self.wlen as usize
    }

    /// Bytes the stored (compressed) window takes.
    pub fn stored_window_len(&self) -> usize {
        self.window.stored_len()
    }
}

impl fmt::Debug for SeekPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SeekPoint")
            .field("out", &self.out)
            .field("input", &self.input)
            .field("bits", &self.bits)
            .field("member_start", &self.is_member_start())
            .field("window_len", &self.wlen)
            .field("stored_window_len", &self.window.stored_len())
            .finish()
    }
}

impl Point for SeekPoint {
    fn out(&self) -> u64 {
        self.out
    }
}

impl fmt::Debug for dyn ByteSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

/// The gzip codec of the shared seek index (also bare deflate streams: zip members).
#[derive(Debug)]
pub struct Gz;

/// What a gzip index holds beyond its points.
#[derive(Debug, Default)]
pub struct GzExtra {
    /// The file holding `Window::Disk` windows.
    window_file: Option<Arc<dyn ByteSource>>,
    /// A bare deflate stream (a zip member), not gzip: no headers or trailers to skip.
    raw: bool,
}

/// Seek points into one gzip stream (all members); the first is always the start of the first
/// member at `out == 0`. Its `verified_len` ends at the last member whose CRC-32 and ISIZE were
/// checked; its warnings name trailing garbage.
pub type GzIndex = Index<Gz>;

/// Sequential decompressed bytes from some offset of an indexed gzip stream, across member
/// boundaries; owns its zlib stream (freed on drop) and can be moved to any thread.
pub type GzReader = SpanReader<GzDecoder>;

/// Streams a gzip file once: `Read` yields the decompressed bytes (across members) while seek
/// points are recorded about every `spacing` uncompressed bytes and each member's CRC-32 and
/// ISIZE are verified (see [`Pass`]).
pub type GzIndexer<R> = Pass<GzStep<R>>;

/// A saved seek point: its window is the next `clen` bytes of the windows section.
#[derive(Serialize, Deserialize)]
struct StoredPoint {
    out: u64,
    input: u64,
    bits: u8,
    flags: u8,
    wlen: u16,
    clen: u32,
    crc: u32,
}

impl Point for StoredPoint {
    fn out(&self) -> u64 {
        self.out
    }
}

impl SeekCodec for Gz {
    const NAME: &'static str = "gzip";
    const SUFFIXES: &'static [&'static str] = &[".gz", ".GZ", ".gzip"];
    /// Gzip points cost a 32 KiB window each, so they are placed to keep the index under 5% of
    /// the archive while a random read of a ~70 KB member inflates well under 1 MiB.
    const SPACING: u64 = 832 << 10;
    type Point = SeekPoint;
    type Extra = GzExtra;
    type Decoder = GzDecoder;

    fn looks_like(head: &[u8]) -> bool {
        looks_like_gzip(head)
    }

    fn start(index: &GzIndex, src: Arc<dyn ByteSource>, i: usize, remaining: u64) -> io::Result<GzDecoder> {
        let p = &index.points()[i];
        let from = if p.bits > 0 { p.input - 1 } else { p.input };
        let mut d = GzDecoder {
            input: Input::new(SourceFeed { src: src.clone(), pos: from }, READER_IN_CHUNK, from),
            z: Inflater::new_raw()?,
            state: RState::Deflate,
            src,
            raw: false,
        };
        if remaining == 0 {
            return Ok(d);
        }
        d.raw = index.extra.raw;
        if p.is_member_start() {
            if !d.raw {
                d.input.gzip_header().map_err(|e| d.annotate(e))?;
            }
        } else {
            if p.bits > 0 {
                let b = d.input.byte()?.ok_or_else(|| d.ended())?;
                d.z.prime(p.bits, b >> (8 - p.bits))?;
            }
            d.z.set_dictionary(&index.window_of(p)?)?;
        }
        Ok(d)
    }

    /// zlib's state and buffers.
    fn decoder_bytes(_decoded: usize) -> usize {
        384 << 10
    }

    fn extra_bytes(index: &GzIndex) -> usize {
        index.points().iter().map(|p| if let Window::Mem(b) = &p.window { b.len() } else { 0 }).sum()
    }

    /// The table (lengths, points with each window's length and CRC-32) and the windows, one
    /// after the other in point order.
    fn to_parts(index: &GzIndex) -> io::Result<(Vec<u8>, Vec<u8>)> {
        let mut windows = Vec::new();
        let mut points = Vec::with_capacity(index.points().len());
        for p in index.points() {
            let stored = index.stored_window(p)?;
            points.push(StoredPoint {
                out: p.out,
                input: p.input,
                bits: p.bits,
                flags: p.flags,
                wlen: p.wlen,
                clen: stored.len() as u32,
                crc: crc32fast::hash(&stored),
            });
            windows.extend_from_slice(&stored);
        }
        let t = &index.table;
        let table = Table {
            uncompressed_len: t.uncompressed_len,
            compressed_len: t.compressed_len,
            verified_len: t.verified_len,
            points,
        };
        Ok((table.encode()?, windows))
    }

    /// Windows held in memory are checked now, windows on disk when they are read.
    fn from_parts(table: &[u8], windows: WindowSource) -> Result<GzIndex, FormatError> {
        let bad = |why: &str| FormatError::Corrupt(format!("gzip index: {why}"));
        let t = Table::decode(table, "gzip", |_, p: &StoredPoint, prev| {
            let clen = p.clen as usize;
            p.bits <= 7
                && p.flags & !(FLAG_MEMBER | FLAG_RAW_WINDOW) == 0
                && p.wlen as usize <= WINSIZE
                && clen <= 2 * WINSIZE
                && (p.flags & FLAG_MEMBER == 0 || (p.bits == 0 && p.wlen == 0))
                && (p.flags & FLAG_RAW_WINDOW == 0 || clen == p.wlen as usize)
                && (p.wlen != 0 || clen == 0)
                && !(p.bits > 0 && p.input == 0)
                && match prev {
                    None => p.flags & FLAG_MEMBER != 0,
                    Some(q) => p.input >= q.input,
                }
        })?;
        let mut points = Vec::with_capacity(t.points.len());
        let mut at = 0u64;
        for p in &t.points {
            let window = match &windows {
                WindowSource::Mem(all) => {
                    let stored = usize::try_from(at)
                        .ok()
                        .and_then(|at| all.get(at..at.checked_add(p.clen as usize)?))
                        .ok_or_else(|| bad("window outside the windows section"))?;
                    if crc32fast::hash(stored) != p.crc {
                        return Err(bad("window checksum mismatch"));
                    }
                    Window::Mem(stored.into())
                }
                WindowSource::Disk(_, base) => Window::Disk {
                    at: base.checked_add(at).ok_or_else(|| bad("window offset overflow"))?,
                    len: p.clen,
                    crc: p.crc,
                },
            };
            at += u64::from(p.clen);
            points.push(SeekPoint { out: p.out, input: p.input, bits: p.bits, flags: p.flags, wlen: p.wlen, window });
        }
        let window_file = match windows {
            WindowSource::Disk(file, _) => Some(file),
            WindowSource::Mem(all) if all.len() as u64 != at => return Err(bad("trailing bytes")),
            WindowSource::Mem(_) => None,
        };
        let table = Table {
            uncompressed_len: t.uncompressed_len,
            compressed_len: t.compressed_len,
            verified_len: t.verified_len,
            points,
        };
        Ok(Index::new(table, Vec::new(), GzExtra { window_file, raw: false }))
    }
}

impl GzIndex {
    /// The same points, read as a bare deflate stream (a zip member's data): the raw flag is not
    /// part of the saved form, the caller knows what it saved.
    pub fn into_raw(mut self) -> GzIndex {
        self.extra.raw = true;
        self
    }

    /// The stored (possibly compressed) window of point `p`, read from the index file if it
    /// lives there.
    fn stored_window<'a>(&'a self, p: &'a SeekPoint) -> io::Result<Cow<'a, [u8]>> {
        match &p.window {
            Window::Mem(b) => Ok(Cow::Borrowed(b)),
            Window::Disk { at, len, crc } => {
                let file =
                    self.extra.window_file.as_ref().ok_or_else(|| io::Error::other("gzip index has no window file"))?;
                let mut buf = vec![0u8; *len as usize];
                file.read_exact_at(*at, &mut buf)?;
                if crc32fast::hash(&buf) != *crc {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{}: corrupt seek point window at {at}", file.describe()),
                    ));
                }
                Ok(Cow::Owned(buf))
            }
        }
    }

    /// The uncompressed window of point `p`.
    fn window_of<'a>(&'a self, p: &'a SeekPoint) -> io::Result<Cow<'a, [u8]>> {
        let stored = self.stored_window(p)?;
        if p.flags & FLAG_RAW_WINDOW != 0 || p.wlen == 0 {
            Ok(stored)
        } else {
            uncompress_window(&stored, p.wlen as usize).map(Cow::Owned)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Random-access reader.

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum RState {
    Deflate,
    /// The raw stream of a member ended; its trailer and the next header are still to skip.
    MemberEnd,
}

/// A zlib raw inflate running from a seek point.
pub struct GzDecoder {
    src: Arc<dyn ByteSource>,
    input: Input<SourceFeed>,
    z: Inflater,
    state: RState,
    /// A bare deflate stream: its end is the end, with no trailer or next member.
    raw: bool,
}

impl fmt::Debug for GzDecoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GzDecoder")
            .field("src", &self.src.describe())
            .field("compressed_pos", &self.input.pos())
            .finish()
    }
}

impl GzDecoder {
    fn ended(&self) -> io::Error {
        eof(format!(
            "{}: gzip data ends early at compressed offset {} (file changed since it was indexed?)",
            self.src.describe(),
            self.input.pos()
        ))
    }

    fn annotate(&self, e: io::Error) -> io::Error {
        // An OS error keeps its errno (EACCES must reach the caller as EACCES, not EIO); the
        // reader names the archive in its own context.
        if e.raw_os_error().is_some() {
            return e;
        }
        io::Error::new(e.kind(), format!("{}: {e}", self.src.describe()))
    }
}

impl Decode for GzDecoder {
    /// Inflates into `out` until at least one byte is produced.
    fn decode_some(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.state == RState::MemberEnd {
                if self.raw {
                    return Err(self.ended());
                }
                let mut trailer = [0u8; 8];
                if self.input.exact(&mut trailer)?.is_none() {
                    return Err(self.ended());
                }
                self.input.gzip_header().map_err(|e| self.annotate(e))?;
                self.z.reset();
                self.state = RState::Deflate;
            }
            if !self.input.fill()? {
                return Err(self.ended());
            }
            let (ret, used, made) = self.z.inflate(self.input.avail(), out, zlib::Z_NO_FLUSH);
            self.input.consume(used);
            if used == 0 && made == 0 && ret != zlib::Z_STREAM_END && ret != zlib::Z_DATA_ERROR {
                // Input and output space were both available: zlib cannot be stuck here.
                return Err(invalid(format!(
                    "{}: inflate made no progress at compressed offset {}",
                    self.src.describe(),
                    self.input.pos()
                )));
            }
            match ret {
                zlib::Z_OK | zlib::Z_BUF_ERROR => {}
                zlib::Z_STREAM_END => self.state = RState::MemberEnd,
                zlib::Z_MEM_ERROR => return Err(io::Error::new(io::ErrorKind::OutOfMemory, "zlib out of memory")),
                _ => {
                    return Err(invalid(format!(
                        "{}: corrupt deflate data near compressed offset {}: {} (file changed since it was indexed?)",
                        self.src.describe(),
                        self.input.pos(),
                        self.z.msg()
                    )));
                }
            }
            if made > 0 {
                return Ok(made);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Indexing pass.

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum IState {
    /// Expecting a member header (`first`: the very first one, which must exist).
    Header {
        first: bool,
    },
    Deflate,
    Trailer,
    /// After a verified trailer: another member, padding, garbage or the end.
    AfterMember,
    Done,
}

/// The gzip step of an indexing pass ([`GzIndexer`]).
pub struct GzStep<R: Read> {
    input: Input<ReadFeed<R>>,
    z: Inflater,
    state: IState,
    spacing: u64,
    out_total: u64,
    member_out: u64,
    member_in: u64,
    crc: crc32fast::Hasher,
    points: Vec<SeekPoint>,
    verified_len: u64,
    compressed_end: u64,
    win: Box<[u8; WINSIZE]>,
    cscratch: Vec<u8>,
    warnings: Vec<String>,
    /// A bare deflate stream (a zip member): no gzip header or trailer.
    raw: bool,
}

impl<R: Read> GzIndexer<R> {
    /// Like [`new`](Self::new) for a bare deflate stream (a zip member's data): the pass ends at
    /// the end of the deflate stream; [`crc32`](Self::crc32) is then for the caller to check.
    ///
    /// Its input buffer is small ([`MEMBER_IN_CHUNK`]): a mount may run many such passes at
    /// once (one per big member being read), each charged to the cache budget.
    pub fn new_raw(inner: R, spacing: u64) -> Self {
        let mut x = GzStep::with_input(inner, spacing, MEMBER_IN_CHUNK);
        x.raw = true;
        x.push_point(SeekPoint::member_start(0, 0));
        x.state = IState::Deflate;
        Pass::over(x)
    }

    /// CRC-32 of everything yielded by a raw pass (for gzip, each member is checked itself).
    pub fn crc32(&self) -> u32 {
        self.step.crc.clone().finalize()
    }

    /// Wraps `inner` (positioned at the first gzip header); `spacing` is the wanted distance
    /// between seek points in uncompressed bytes (1 MiB is a good default; at least 1).
    pub fn new(inner: R, spacing: u64) -> Self {
        Pass::over(GzStep::with_input(inner, spacing, INDEX_IN_CHUNK))
    }

    /// Heap bytes this pass holds: buffers, zlib's state and the seek points found so far (their
    /// windows included), for the memory budget.
    pub fn memory_bytes(&self) -> usize {
        let x = &self.step;
        self.buffer_bytes()
            + x.input.capacity()
            + WINSIZE
            + x.cscratch.capacity()
            + ZLIB_INFLATE_STATE
            + x.points.capacity() * std::mem::size_of::<SeekPoint>()
            + x.points.iter().map(SeekPoint::stored_window_len).sum::<usize>()
    }
}

impl<R: Read> IndexStep for GzStep<R> {
    type Codec = Gz;

    fn in_data(&self) -> bool {
        self.state == IState::Deflate
    }

    fn advance(&mut self) -> io::Result<bool> {
        match self.state {
            IState::Header { first } => self.start_member(first)?,
            IState::Trailer => self.read_trailer()?,
            IState::AfterMember => self.after_member()?,
            IState::Deflate => {}
            IState::Done => return Ok(false),
        }
        Ok(true)
    }

    fn decode(&mut self, out: &mut [u8]) -> (usize, Option<io::Error>) {
        self.inflate_some(out)
    }

    fn progress(&self) -> Progress<'_> {
        Progress { compressed: self.input.pos(), uncompressed: self.out_total, warnings: &self.warnings }
    }

    fn into_index(mut self, failed: bool) -> GzIndex {
        if self.points.is_empty() {
            // Nothing decoded (not gzip at all): keep the invariant "point 0 at out 0".
            self.points.push(SeekPoint::member_start(0, 0));
        }
        let compressed_len = if failed { self.input.pos() } else { self.compressed_end };
        let table = Table {
            uncompressed_len: self.out_total,
            compressed_len,
            verified_len: self.verified_len,
            points: self.points,
        };
        Index::new(table, self.warnings, GzExtra { window_file: None, raw: self.raw })
    }
}

impl<R: Read> GzStep<R> {
    fn with_input(inner: R, spacing: u64, chunk: usize) -> Self {
        GzStep {
            input: Input::new(ReadFeed(inner), chunk, 0),
            // Only fails when out of memory, which Rust's allocator treats as fatal anyway.
            z: Inflater::new_raw().expect("zlib inflateInit2 failed"),
            state: IState::Header { first: true },
            spacing: spacing.max(1),
            out_total: 0,
            member_out: 0,
            member_in: 0,
            crc: crc32fast::Hasher::new(),
            points: Vec::new(),
            verified_len: 0,
            compressed_end: 0,
            win: vec![0u8; WINSIZE].into_boxed_slice().try_into().unwrap(),
            cscratch: Vec::new(),
            warnings: Vec::new(),
            raw: false,
        }
    }

    fn push_point(&mut self, p: SeekPoint) {
        if let Some(last) = self.points.last_mut()
            && last.out == p.out
        {
            // Same output position, later in the input: the newer point is at least as good.
            *last = p;
            return;
        }
        self.points.push(p);
    }

    fn due(&self) -> bool {
        match self.points.last() {
            None => true,
            Some(p) => self.out_total - p.out >= self.spacing,
        }
    }

    fn start_member(&mut self, first: bool) -> io::Result<()> {
        let at = self.input.pos();
        self.input.gzip_header().map_err(|e| {
            if first && e.kind() == io::ErrorKind::InvalidData { invalid(format!("not a gzip stream: {e}")) } else { e }
        })?;
        self.z.reset();
        self.crc = crc32fast::Hasher::new();
        self.member_out = self.out_total;
        self.member_in = at;
        // A member start at the same output offset as the last point supersedes it (the last
        // point then began an empty member).
        if self.due() || self.points.last().is_some_and(|p| p.out == self.out_total) {
            self.push_point(SeekPoint::member_start(self.out_total, at));
        }
        self.state = IState::Deflate;
        Ok(())
    }

    /// Records a block-boundary point (called only right after `inflate` stopped at one).
    fn record_block_point(&mut self) {
        let bits = (self.z.data_type() & 7) as u8;
        let wlen = self.z.dictionary(&mut self.win);
        let win = &self.win[..wlen];
        let input = self.input.pos();
        // If the stream itself barely compressed since the last point (already-compressed
        // payloads such as PNG), the window will not compress either: skip trying.
        let hopeless = self.points.last().is_some_and(|p| {
            let (din, dout) = (input.saturating_sub(p.input), self.out_total - p.out);
            din.saturating_mul(100) >= dout.saturating_mul(97)
        });
        let compressed = if hopeless { None } else { zlib::compress_window(win, &mut self.cscratch) };
        let (window, flags) = match compressed {
            Some(c) => (c, 0),
            None => (Box::from(win), FLAG_RAW_WINDOW),
        };
        let wlen = wlen as u16;
        self.push_point(SeekPoint { out: self.out_total, input, bits, flags, wlen, window: Window::Mem(window) });
    }

    /// Inflates into `out` until it is full, the member ends or an error occurs; bytes produced
    /// before an error come with it.
    fn inflate_some(&mut self, out: &mut [u8]) -> (usize, Option<io::Error>) {
        let mut made_total = 0;
        let mut stalls = 0;
        while made_total < out.len() {
            match self.input.fill() {
                Ok(true) => {}
                // A bare deflate stream may have all its input consumed while zlib still owes
                // the end-of-stream (its output space ran out first): ask it once with no input.
                Ok(false) if self.raw && self.z.inflate(&[], &mut [], zlib::Z_BLOCK).0 == zlib::Z_STREAM_END => {
                    self.verified_len = self.out_total;
                    self.compressed_end = self.input.pos();
                    self.state = IState::Done;
                    break;
                }
                Ok(false) => {
                    let e = eof(format!(
                        "gzip stream truncated at compressed offset {} (member starting at compressed offset {})",
                        self.input.pos(),
                        self.member_in
                    ));
                    return (made_total, Some(e));
                }
                Err(e) => return (made_total, Some(e)),
            }
            let (ret, used, made) = self.z.inflate(self.input.avail(), &mut out[made_total..], zlib::Z_BLOCK);
            match ret {
                zlib::Z_OK | zlib::Z_BUF_ERROR | zlib::Z_STREAM_END => {}
                zlib::Z_MEM_ERROR => {
                    let e = io::Error::new(io::ErrorKind::OutOfMemory, "zlib out of memory");
                    return (made_total, Some(e));
                }
                _ => {
                    // Output of the failing call is dropped: it may already be wrong.
                    let e = invalid(format!(
                        "corrupt gzip data near compressed offset {} (member starting at compressed offset {}): {}",
                        self.input.pos() + used as u64,
                        self.member_in,
                        self.z.msg()
                    ));
                    return (made_total, Some(e));
                }
            }
            if used == 0 && made == 0 && ret != zlib::Z_STREAM_END {
                // Cannot happen with input and output space available; never loop forever.
                stalls += 1;
                if stalls > 2 {
                    let e = invalid(format!("inflate made no progress at compressed offset {}", self.input.pos()));
                    return (made_total, Some(e));
                }
            } else {
                stalls = 0;
            }
            self.input.consume(used);
            self.crc.update(&out[made_total..made_total + made]);
            made_total += made;
            self.out_total += made as u64;
            if ret == zlib::Z_STREAM_END {
                if self.raw {
                    // No trailer: the caller checks the CRC it knows (the zip's).
                    self.verified_len = self.out_total;
                    self.compressed_end = self.input.pos();
                    self.state = IState::Done;
                } else {
                    self.state = IState::Trailer;
                }
                break;
            }
            let dt = self.z.data_type();
            if dt & 128 != 0 && dt & 64 == 0 && self.due() {
                self.record_block_point();
            }
        }
        (made_total, None)
    }

    fn read_trailer(&mut self) -> io::Result<()> {
        let at = self.input.pos();
        let mut t = [0u8; 8];
        if self.input.exact(&mut t)?.is_none() {
            return Err(eof(format!("gzip stream truncated in the member trailer at compressed offset {at}")));
        }
        let crc = u32::from_le_bytes(t[..4].try_into().unwrap());
        let isize = u32::from_le_bytes(t[4..].try_into().unwrap());
        let want_crc = self.crc.clone().finalize();
        let want_len = (self.out_total - self.member_out) as u32;
        if crc != want_crc {
            return Err(invalid(format!(
                "gzip CRC-32 mismatch in the trailer at compressed offset {at} (member starting at {}): stored {crc:08x}, data {want_crc:08x}",
                self.member_in
            )));
        }
        if isize != want_len {
            return Err(invalid(format!(
                "gzip length mismatch in the trailer at compressed offset {at} (member starting at {}): stored {isize}, data {want_len} (mod 2^32)",
                self.member_in
            )));
        }
        self.verified_len = self.out_total;
        self.compressed_end = self.input.pos();
        self.state = IState::AfterMember;
        Ok(())
    }

    fn after_member(&mut self) -> io::Result<()> {
        if !self.input.fill()? {
            self.state = IState::Done;
            return Ok(());
        }
        let at = self.input.pos();
        self.input.ensure(2)?;
        let a = self.input.avail();
        if a.starts_with(&[0x1f, 0x8b]) {
            self.state = IState::Header { first: false };
            return Ok(());
        }
        if a[0] == 0 {
            // Zero padding (tape tools): fine if nothing else follows.
            loop {
                if !self.input.fill()? {
                    self.state = IState::Done;
                    return Ok(());
                }
                let a = self.input.avail();
                match a.iter().position(|&b| b != 0) {
                    Some(i) => {
                        self.input.consume(i);
                        break;
                    }
                    None => {
                        let n = a.len();
                        self.input.consume(n);
                    }
                }
            }
        }
        let w = format!(
            "ignoring trailing garbage after the gzip data at compressed offset {} (data ends at {at})",
            self.input.pos()
        );
        tracing::warn!("{w}");
        self.warnings.push(w);
        self.state = IState::Done;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::seekidx::DIRECT_MIN;
    use crate::archive::seekidx::testutil::{check_whole, conformance, tool_dc};

    /// The whole index as one blob: table length, table, windows.
    fn to_bytes(idx: &GzIndex) -> Vec<u8> {
        let (table, windows) = idx.to_parts().unwrap();
        let mut b = (table.len() as u64).to_le_bytes().to_vec();
        b.extend_from_slice(&table);
        b.extend_from_slice(&windows);
        b
    }

    /// Parses [`to_bytes`] output, every window checked against its CRC-32.
    fn from_bytes(b: &[u8]) -> Result<GzIndex, FormatError> {
        let bad = || FormatError::Corrupt("gzip index: truncated".into());
        let table_len = b.get(..8).map(|s| u64::from_le_bytes(s.try_into().unwrap())).ok_or_else(bad)?;
        let end = 8u64.checked_add(table_len).filter(|&e| e <= b.len() as u64).ok_or_else(bad)? as usize;
        GzIndex::from_parts(&b[8..end], WindowSource::Mem(b[end..].to_vec()))
    }
    use crate::archive::seekidx::testutil::src;
    use flate2::Compression;
    use flate2::write::{DeflateEncoder, GzEncoder};
    use rand::rngs::StdRng;
    use rand::{Rng, RngCore, SeedableRng};
    use std::io::Write;

    /// Data of mixed compressibility: random runs, text-like runs, zeros, small alphabets.
    fn mixed(seed: u64, len: usize) -> Vec<u8> {
        let mut rng = StdRng::seed_from_u64(seed);
        let words: Vec<&[u8]> = vec![b"patient ", b"chest ", b"x-ray ", b"0012 ", b"PNG\n", b"finding: none "];
        let mut v = Vec::with_capacity(len);
        while v.len() < len {
            let run = rng.random_range(1..200_000).min(len - v.len());
            match rng.random_range(0..4) {
                0 => {
                    let s = v.len();
                    v.resize(s + run, 0);
                    rng.fill_bytes(&mut v[s..]);
                }
                1 => {
                    while v.len() < len && run > 0 {
                        let w = words[rng.random_range(0..words.len())];
                        v.extend_from_slice(&w[..w.len().min(len - v.len())]);
                        if rng.random_range(0..1000) == 0 {
                            break;
                        }
                    }
                }
                2 => v.resize(v.len() + run, 0),
                _ => {
                    for _ in 0..run {
                        v.push(b'a' + rng.random_range(0..4u8));
                    }
                }
            }
        }
        v.truncate(len);
        v
    }

    fn gz(data: &[u8], level: u32) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::new(level));
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    /// A member with every optional header field (FEXTRA, FNAME, FCOMMENT, FHCRC).
    fn gz_all_fields(data: &[u8], level: u32) -> Vec<u8> {
        let mut h = vec![0x1f, 0x8b, 8, 2 | 4 | 8 | 16, 1, 2, 3, 4, 0, 3];
        h.extend_from_slice(&5u16.to_le_bytes());
        h.extend_from_slice(b"XYZ\x00\x01");
        h.extend_from_slice(b"name.tar\0");
        h.extend_from_slice(b"a comment\0");
        let c = crc32fast::hash(&h) as u16;
        h.extend_from_slice(&c.to_le_bytes());
        let mut e = DeflateEncoder::new(h, Compression::new(level));
        e.write_all(data).unwrap();
        let mut v = e.finish().unwrap();
        v.extend_from_slice(&crc32fast::hash(data).to_le_bytes());
        v.extend_from_slice(&(data.len() as u32).to_le_bytes());
        v
    }

    /// Runs the indexing pass reading in random-sized chunks; returns the output and the result.
    fn index_with(gzdata: &[u8], spacing: u64, seed: u64) -> (Vec<u8>, GzIndex, Option<io::Error>) {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut ix = GzIndexer::new(gzdata, spacing);
        let mut out = Vec::new();
        let mut buf = vec![0u8; 300_000];
        let err = loop {
            let n = match rng.random_range(0..3) {
                0 => rng.random_range(1..600),
                1 => 512,
                _ => rng.random_range(DIRECT_MIN..buf.len()),
            };
            match ix.read(&mut buf[..n]) {
                Ok(0) => break None,
                Ok(k) => out.extend_from_slice(&buf[..k]),
                Err(e) => break Some(e),
            }
        };
        let (idx, err2) = ix.finish_partial();
        assert_eq!(err.is_some(), err2.is_some(), "finish_partial must report the same failure");
        (out, idx, err)
    }

    fn index_ok(gzdata: &[u8], spacing: u64) -> GzIndex {
        let (out, idx, err) = index_with(gzdata, spacing, spacing);
        assert!(err.is_none(), "{err:?}");
        assert_eq!(out.len() as u64, idx.uncompressed_len());
        idx
    }

    fn read_range(idx: &GzIndex, s: &Arc<dyn ByteSource>, off: u64, len: usize) -> Vec<u8> {
        let mut r = idx.reader_at(s.clone(), off).unwrap();
        let mut v = Vec::new();
        (&mut r).take(len as u64).read_to_end(&mut v).unwrap();
        v
    }

    fn check_random_access(data: &[u8], gzdata: &[u8], idx: &GzIndex, seed: u64, reads: usize) {
        let s = src(gzdata);
        assert_eq!(idx.uncompressed_len(), data.len() as u64);
        assert_eq!(idx.verified_len(), data.len() as u64);
        let mut rng = StdRng::seed_from_u64(seed);
        for k in 0..reads {
            let off = if k % 10 == 0 && idx.points().len() > 1 {
                // Straddle a span boundary.
                let p = &idx.points()[rng.random_range(1..idx.points().len())];
                p.out.saturating_sub(rng.random_range(0..5000))
            } else {
                rng.random_range(0..=data.len() as u64)
            };
            let len = rng.random_range(0..300_000);
            let got = read_range(idx, &s, off, len);
            let end = (off as usize + len).min(data.len());
            assert!(got == data[off as usize..end], "mismatch at {off}+{len}");
        }
        // Every span, concatenated.
        let mut all = Vec::new();
        for i in 0..idx.points().len() {
            let (j, start, end) = idx.span_of(idx.points()[i].out);
            assert_eq!((j, start), (i, idx.points()[i].out));
            let sp = idx.read_span(s.clone(), i, usize::MAX).unwrap();
            assert_eq!(sp.len() as u64, end - start);
            all.extend_from_slice(&sp);
        }
        assert!(all == data);
        // Reading to the end from the start.
        let mut v = Vec::new();
        idx.reader_at(s.clone(), 0).unwrap().read_to_end(&mut v).unwrap();
        assert!(v == data);
    }

    #[test]
    fn large_mixed_random_access() {
        // Level 9 is slow to produce in debug builds (flate2's Rust backend), so it gets less data.
        let big = mixed(1, 24 << 20);
        for (level, len) in [(1, big.len()), (6, big.len()), (9, 6 << 20)] {
            let data = &big[..len];
            let g = gz(data, level);
            for spacing in [64 << 10, 1 << 20] {
                let idx = index_ok(&g, spacing);
                // Points can only sit at deflate block boundaries. zlib's normal strategies end a
                // block every ~16k symbols; the level-1 "quick" strategy of the zlib-rs encoder
                // used here writes far larger blocks, so density is only asserted from level 6.
                if level >= 6 {
                    assert!(idx.points().len() as u64 >= data.len() as u64 / spacing / 4, "too few points");
                }
                for w in idx.points().windows(2) {
                    assert!(w[0].out < w[1].out && w[0].input <= w[1].input);
                }
                check_random_access(data, &g, &idx, level as u64 * 7 + spacing, 70);
            }
        }
    }

    #[test]
    fn small_files() {
        for (i, len) in [1usize, 100, 32767, 32768, 32769, 70_000, 300_000].into_iter().enumerate() {
            let data = mixed(10 + i as u64, len);
            for level in [0, 1, 9] {
                let g = gz(&data, level);
                let idx = index_ok(&g, 4096);
                check_random_access(&data, &g, &idx, i as u64, 20);
            }
        }
    }

    #[test]
    fn multi_member() {
        let parts: Vec<Vec<u8>> =
            (0..7).map(|i| mixed(100 + i, [3 << 20, 0, 1000, 2 << 20, 5, 700_000, 1 << 20][i as usize])).collect();
        let mut g = Vec::new();
        let mut data = Vec::new();
        for (i, p) in parts.iter().enumerate() {
            let m = if i % 2 == 0 { gz(p, [1, 6, 9][i % 3]) } else { gz_all_fields(p, 6) };
            g.extend_from_slice(&m);
            data.extend_from_slice(p);
        }
        for spacing in [64 << 10, 1 << 20, 1 << 30] {
            let idx = index_ok(&g, spacing);
            check_random_access(&data, &g, &idx, spacing, 100);
            // Reads crossing every member boundary.
            let s = src(&g);
            let mut b = 0usize;
            for p in &parts {
                b += p.len();
                let off = b.saturating_sub(10_000);
                let got = read_range(&idx, &s, off as u64, 20_000);
                assert!(got == data[off..(off + 20_000).min(data.len())]);
            }
        }
        // With a small spacing, member starts become windowless points.
        let idx = index_ok(&g, 1024);
        assert!(idx.points().iter().filter(|p| p.is_member_start()).count() >= 4);
        assert!(idx.points().iter().any(|p| !p.is_member_start() && p.window_len() == WINSIZE));
    }

    #[test]
    fn serialization_roundtrip_and_damage() {
        let data = mixed(5, 3 << 20);
        let g = gz(&data, 6);
        let idx = index_ok(&g, 256 << 10);
        let b = to_bytes(&idx);
        let back = from_bytes(&b).unwrap();
        assert_eq!(to_bytes(&back), b);
        assert_eq!(back.uncompressed_len(), idx.uncompressed_len());
        check_random_access(&data, &g, &back, 3, 20);
        // Every truncation is rejected; a flipped bit in a window is caught by its CRC-32. A flip
        // in the table may load (only consistent tables do): the index file's checksum covers it.
        let (table, _) = idx.to_parts().unwrap();
        for n in (0..b.len()).step_by(97).chain([b.len() - 1]) {
            assert!(from_bytes(&b[..n]).is_err(), "truncated to {n}");
        }
        let mut rng = StdRng::seed_from_u64(9);
        for _ in 0..300 {
            let mut c = b.clone();
            let i = rng.random_range(0..c.len());
            c[i] ^= 1 << rng.random_range(0..8);
            let r = from_bytes(&c);
            assert!(i < 8 + table.len() || r.is_err(), "flip at {i}");
        }
        let mut c = b.clone();
        c.push(0);
        assert!(from_bytes(&c).is_err());
        // Size: the compressed windows, and a table of under 24 bytes per point.
        let win: usize = idx.points().iter().map(|p| p.stored_window_len()).sum();
        assert_eq!(b.len(), 8 + table.len() + win);
        assert!(table.len() < 24 * idx.points().len() + 32, "{} bytes, {} points", table.len(), idx.points().len());
        assert!(idx.memory_bytes() >= win);
    }

    #[test]
    fn corrupt_inputs_fail_loudly() {
        let data = mixed(7, 2 << 20);
        let g = gz(&data, 6);
        let mut rng = StdRng::seed_from_u64(11);
        // Random bit flips anywhere: either an error or (flip in an unused bit / header mtime)
        // exactly the original bytes.
        for _ in 0..150 {
            let mut c = g.clone();
            let i = rng.random_range(0..c.len());
            c[i] ^= 1 << rng.random_range(0..8);
            let (out, idx, err) = index_with(&c, 64 << 10, i as u64);
            match err {
                Some(e) => {
                    assert!(matches!(e.kind(), io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof), "{e}");
                    assert!(e.to_string().contains("offset"), "{e}");
                    assert_eq!(idx.verified_len(), 0);
                    assert_eq!(idx.uncompressed_len(), out.len() as u64);
                }
                None => assert!(out == data, "flip at {i} gave wrong bytes without an error"),
            }
        }
        // A flipped byte mid-stream.
        let mut c = g.clone();
        let mid = c.len() / 2;
        c[mid] ^= 0x55;
        let (_, _, err) = index_with(&c, 1 << 20, 1);
        let e = err.expect("mid-stream corruption must fail");
        assert!(e.to_string().contains("compressed offset"), "{e}");
        // The error is sticky and finish() reports it.
        let mut ix = GzIndexer::new(&c[..], 1 << 20);
        let mut sink = Vec::new();
        assert!(ix.read_to_end(&mut sink).is_err());
        assert!(ix.read(&mut [0u8; 10]).is_err());
        assert!(matches!(ix.finish(), Err(FormatError::Corrupt(_))));
        // Bad CRC and bad ISIZE trailers.
        for at in [8, 4] {
            let mut c = g.clone();
            let n = c.len();
            c[n - at] ^= 1;
            let (out, _, err) = index_with(&c, 1 << 20, 2);
            let e = err.expect("bad trailer must fail");
            assert_eq!(e.kind(), io::ErrorKind::InvalidData);
            assert!(e.to_string().contains("mismatch"), "{e}");
            assert!(out == data, "all data is yielded before the trailer is checked");
        }
        // Truncations at many places, including inside header and trailer.
        for n in [0, 1, 5, 10, 11, 100, g.len() / 3, g.len() - 9, g.len() - 8, g.len() - 3, g.len() - 1] {
            let (out, idx, err) = index_with(&g[..n], 64 << 10, n as u64);
            let e = err.expect("truncation must fail");
            assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "{e}");
            assert!(data.starts_with(&out));
            // The partial index still reads what was decoded.
            let s = src(&g[..n]);
            let mut v = Vec::new();
            idx.reader_at(s, 0).unwrap().read_to_end(&mut v).unwrap();
            assert!(v == out);
        }
        // Not gzip at all.
        let (_, _, err) = index_with(b"PK\x03\x04 definitely not gzip", 1 << 20, 3);
        assert_eq!(err.unwrap().kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn truncated_multi_member_keeps_complete_members() {
        let a = mixed(21, 1 << 20);
        let b = mixed(22, 1 << 20);
        let (ga, gb) = (gz(&a, 6), gz(&b, 6));
        let mut g = ga.clone();
        g.extend_from_slice(&gb[..gb.len() / 2]);
        let mut ix = GzIndexer::new(&g[..], 128 << 10);
        let mut out = Vec::new();
        let e = ix.read_to_end(&mut out).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        let (idx, err) = ix.finish_partial();
        assert!(err.is_some());
        assert_eq!(idx.verified_len(), a.len() as u64);
        assert_eq!(idx.uncompressed_len(), out.len() as u64);
        assert!(out.len() > a.len());
        let s = src(&g);
        assert!(read_range(&idx, &s, 1000, a.len()) == [&a[1000..], &b[..1000]].concat());
    }

    #[test]
    fn empty_stored_padding_and_garbage() {
        // Empty member.
        let g = gz(b"", 6);
        let idx = index_ok(&g, 1 << 20);
        assert_eq!(idx.uncompressed_len(), 0);
        assert_eq!(idx.points().len(), 1);
        assert_eq!(idx.span_of(0), (0, 0, 0));
        let mut v = Vec::new();
        idx.reader_at(src(&g), 0).unwrap().read_to_end(&mut v).unwrap();
        assert!(v.is_empty());
        assert!(idx.reader_at(src(&g), 1).is_err());
        assert!(idx.read_span(src(&g), 0, 0).unwrap().is_empty());
        // A single stored block.
        let data = mixed(31, 20_000);
        let g = gz(&data, 0);
        let idx = index_ok(&g, 1024);
        check_random_access(&data, &g, &idx, 1, 30);
        // Zero padding: silent. Garbage: a warning, data intact.
        let data = mixed(32, 500_000);
        let mut g = gz(&data, 6);
        g.extend_from_slice(&[0u8; 10_000]);
        let idx = index_ok(&g, 1 << 16);
        assert!(idx.warnings().is_empty());
        check_random_access(&data, &g, &idx, 2, 10);
        let mut g2 = gz(&data, 6);
        g2.push(0x1f);
        let idx = index_ok(&g2, 1 << 16);
        assert_eq!(idx.warnings().len(), 1);
        g2.push(0x00);
        let idx = index_ok(&g2, 1 << 16);
        assert_eq!(idx.warnings().len(), 1);
        g.extend_from_slice(b"junk after the padding");
        let idx = index_ok(&g, 1 << 16);
        assert_eq!(idx.warnings().len(), 1);
        assert_eq!(idx.compressed_len(), gz(&data, 6).len() as u64);
        check_random_access(&data, &g, &idx, 3, 10);
        // read_span refuses a span over the cap.
        let e = idx.read_span(src(&g), 0, 10).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::OutOfMemory);
    }

    #[test]
    fn finish_drains_the_rest() {
        let data = mixed(41, 3 << 20);
        let g = gz(&data, 6);
        let mut ix = GzIndexer::new(&g[..], 1 << 20);
        let mut head = [0u8; 10_000];
        ix.read_exact(&mut head).unwrap();
        assert!(ix.compressed_pos() > 0);
        let idx = ix.finish().unwrap();
        check_random_access(&data, &g, &idx, 4, 10);
    }

    #[test]
    fn reader_is_send_and_threads_share_an_index() {
        fn send<T: Send>() {}
        send::<GzReader>();
        send::<GzIndexer<std::fs::File>>();
        let data = Arc::new(mixed(51, 4 << 20));
        let g = gz(&data, 6);
        let idx = Arc::new(index_ok(&g, 256 << 10));
        let s = src(&g);
        let hs: Vec<_> = (0..4)
            .map(|t| {
                let (idx, s, data) = (idx.clone(), s.clone(), data.clone());
                std::thread::spawn(move || check_random_access(&data, &g_of(&s), &idx, t, 20))
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        fn g_of(s: &Arc<dyn ByteSource>) -> Vec<u8> {
            let mut v = vec![0u8; s.len() as usize];
            s.read_exact_at(0, &mut v).unwrap();
            v
        }
    }

    #[test]
    fn looks_like() {
        assert!(looks_like_gzip(&gz(b"x", 6)));
        assert!(!looks_like_gzip(b"\x1f\x8b"));
        assert!(!looks_like_gzip(b"\x1f\x8b\x07\x00"));
        assert!(!looks_like_gzip(b"\x1f\x8b\x08\xe0"));
        assert!(!looks_like_gzip(b"PK\x03\x04"));
    }

    #[test]
    fn conformance_files_match_gzip() {
        let files = [
            "libarchive/test_compat_gzip_1.tgz",
            "libarchive/test_compat_gzip_2.tgz",
            "libarchive/test_extract.tar.gz",
            "ratarmount/simple.gz",
            "ratarmount/base64.gz",
            "ratarmount/compressed-100-times.gz",
            "ratarmount/compressed-100-times.tar.gz",
            "ratarmount/compressed-1000-times.gz",
            "ratarmount/packed-100-times.tar.gz",
            "ratarmount/packed-5-times.tar.gz",
            "ratarmount/double-compressed-nested-tar.tgz.tgz",
            "ratarmount/triple-compressed-nested-tar.tgz.tgz.gz",
        ];
        let mut seen = 0;
        for f in files {
            let Some(p) = conformance(f) else { continue };
            seen += 1;
            let want = tool_dc("gzip", &p);
            let g = std::fs::read(&p).unwrap();
            let s: Arc<dyn ByteSource> = Arc::new(crate::archive::FileSource::open(&p).unwrap());
            for spacing in [1u64, 4096, 1 << 20] {
                let mut ix = GzIndexer::new(&g[..], spacing);
                let mut out = Vec::new();
                ix.read_to_end(&mut out).unwrap_or_else(|e| panic!("{f}: {e}"));
                let idx = ix.finish().unwrap();
                assert!(out == want, "{f}: differs from gzip -dc");
                assert_eq!(idx.warnings().is_empty(), !f.ends_with("gzip_2.tgz"), "{f}: {:?}", idx.warnings());
                check_whole(&idx, &s, &out, f);
            }
        }
        assert!(seen > 0, "no conformance files found");
    }
}
