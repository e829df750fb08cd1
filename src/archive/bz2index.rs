//! Random access into bzip2 streams: one indexing pass records seek points at bzip2 block
//! boundaries (at least `spacing` uncompressed bytes apart), after which any byte range of the
//! decompressed stream is read by decoding from the nearest block.
//!
//! bzip2 blocks are independent (no history crosses a block), but they start at arbitrary *bit*
//! offsets, marked by the 48-bit magic `0x314159265359` (the stream ends with `0x177245385090`).
//! A block holds at most 100k–900k bytes *after* bzip2's first run-length stage, so its output can
//! be far larger (up to ~46 MB for runs of one byte); output is always streamed, never buffered
//! per block.
//!
//! Finding boundaries: the indexing pass scans the compressed bits for both magics. A magic can
//! also occur by chance inside block data, so a candidate is only accepted when the decoder
//! confirms it: the decoder (libbz2-rs-sys through the `bzip2` crate, which reads its input
//! lazily and cannot produce a block's output before having read the whole block) is fed only up
//! to the byte holding the candidate's first bit. If it then finishes a block, the block ended
//! exactly there; if it produced nothing, the candidate was inside the block and is skipped.
//! The decoder checks every block CRC and each stream's combined CRC.
//!
//! Resuming at a block that does not start a stream uses the ratarmount/indexed_bzip2 trick: the
//! decoder is fed a synthetic stream, `BZh<level>` followed by the original bits from the block
//! magic on, shifted to byte alignment, up to (not including) the stream's end-of-stream magic.
//! The decoder then stops for want of input right after the last block's CRC was verified;
//! the stream's combined CRC is not checked on this path (it covers the blocks before the point
//! too). Following streams are decoded as they are, with all their checks.
//!
//! Concatenated streams (pbzip2, `cat a.bz2 b.bz2`) form one output. Zero bytes after the last
//! stream are accepted silently; other trailing bytes give a warning (as `bzip2 -d` does).

use std::fmt;
use std::io::{self, Read};
use std::sync::Arc;

use bzip2::{Decompress, Status};

use serde::{Deserialize, Serialize};

use crate::archive::gzindex::WindowSource;
use crate::archive::seekidx::{
    Decode, Feed, Index, IndexStep, Input, Pass, Point, Progress, ReadFeed, SeekCodec, SourceFeed, SpanReader, Table,
    eof, invalid, long_span_warning, push_spaced,
};
use crate::archive::{ByteSource, FormatError};

const INDEX_IN_CHUNK: usize = 1 << 20;
const READER_IN_CHUNK: usize = 128 * 1024;

const BLOCK_MAGIC: u64 = 0x3141_5926_5359;
const EOS_MAGIC: u64 = 0x1772_4538_5090;
const MASK48: u64 = (1 << 48) - 1;
/// `SeekPoint::eos_bit` / `stream_out_end` when the stream never ended (partial index).
const UNKNOWN: u64 = u64::MAX;
/// `SeekPoint::flags`: the point is the first block of a stream (decoded from the real header).
const FLAG_STREAM_START: u8 = 1;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Block,
    Eos,
}

/// For each value of the byte after the one a magic starts in: bit `s` set when the block magic
/// starting at bit `s` (0 = most significant) of the previous byte has that value there; bit
/// `8 + s` likewise for the end-of-stream magic.
static SECOND_BYTE: [u16; 256] = {
    let mut t = [0u16; 256];
    let mut s = 0;
    while s < 8 {
        t[((BLOCK_MAGIC >> (32 + s)) & 0xFF) as usize] |= 1 << s;
        t[((EOS_MAGIC >> (32 + s)) & 0xFF) as usize] |= 1 << (8 + s);
        s += 1;
    }
    t
};

/// First bit position `>= from_bit` where either magic starts and lies entirely in `buf` (whose
/// first byte is at absolute byte `base`).
fn find_magic(buf: &[u8], base: u64, from_bit: u64) -> Option<(u64, Kind)> {
    let first = (from_bit / 8).saturating_sub(base) as usize;
    if buf.len() < 7 {
        return None;
    }
    for i in first..=buf.len() - 7 {
        let hits = SECOND_BYTE[buf[i + 1] as usize];
        if hits == 0 {
            continue;
        }
        let mut w = 0u64;
        for k in 0..7 {
            w = (w << 8) | buf[i + k] as u64;
        }
        w <<= 8;
        for s in 0..8u64 {
            let bit = (base + i as u64) * 8 + s;
            if bit < from_bit {
                continue;
            }
            let v = (w >> (16 - s)) & MASK48;
            if hits & (1 << s) != 0 && v == BLOCK_MAGIC {
                return Some((bit, Kind::Block));
            }
            if hits & (1 << (8 + s)) != 0 && v == EOS_MAGIC {
                return Some((bit, Kind::Eos));
            }
        }
    }
    None
}

/// The magic starting exactly at `b[0]` (byte-aligned), if any.
fn magic_at(b: &[u8]) -> Option<Kind> {
    let w = b.get(..6)?.iter().fold(0u64, |w, &x| (w << 8) | x as u64);
    match w {
        BLOCK_MAGIC => Some(Kind::Block),
        EOS_MAGIC => Some(Kind::Eos),
        _ => None,
    }
}

fn stream_level(b: &[u8]) -> Option<u8> {
    (b.len() >= 4 && &b[..3] == b"BZh" && (b'1'..=b'9').contains(&b[3])).then(|| b[3] - b'0')
}

/// One decoder call: (result, consumed, produced).
fn step(d: &mut Decompress, input: &[u8], out: &mut [u8]) -> (Result<Status, bzip2::Error>, usize, usize) {
    let (i0, o0) = (d.total_in(), d.total_out());
    let r = d.decompress(input, out);
    ((r), (d.total_in() - i0) as usize, (d.total_out() - o0) as usize)
}

// ---------------------------------------------------------------------------------------------
// The index.

/// A bzip2 block start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeekPoint {
    /// Offset in the decompressed stream.
    pub out: u64,
    /// Compressed offset, in bits, of the block magic.
    pub bit: u64,
    /// Compressed bit offset of the end-of-stream magic of the stream holding the block
    /// (`u64::MAX` if that stream never ended: partial index).
    pub eos_bit: u64,
    /// Decompressed offset where that stream's output ends (`u64::MAX` if unknown).
    pub stream_out_end: u64,
    /// The stream's block-size level (1..=9).
    pub level: u8,
    flags: u8,
}

impl SeekPoint {
    /// True when the block is the first of its stream.
    pub fn is_stream_start(&self) -> bool {
        self.flags & FLAG_STREAM_START != 0
    }
}

impl Point for SeekPoint {
    fn out(&self) -> u64 {
        self.out
    }
}

/// The bzip2 codec of the shared seek index.
#[derive(Debug)]
pub struct Bz2;

/// Seek points into one bzip2 file (all streams). Its warnings name trailing garbage and a
/// block of long runs without seek point.
pub type Bz2Index = Index<Bz2>;

/// Sequential decompressed bytes from some offset of an indexed bzip2 file; can be moved to any
/// thread. Every block decoded to its end has its CRC verified.
pub type Bz2Reader = SpanReader<Bz2Decoder>;

/// Streams a bzip2 file once: `Read` yields the decompressed bytes (across blocks and streams)
/// while seek points are recorded at block boundaries at least `spacing` uncompressed bytes
/// apart, and every block CRC and stream CRC is verified (see [`Pass`]; for a block failing its
/// CRC, its bytes come before the error: the CRC can only be checked after them;
/// [`Bz2Index::verified_len`] excludes them).
pub type Bz2Indexer<R> = Pass<Bz2Step<R>>;

impl SeekCodec for Bz2 {
    const NAME: &'static str = "bzip2";
    const SUFFIXES: &'static [&'static str] = &[".bz2", ".BZ2", ".bzip2"];
    const SPACING: u64 = 1 << 20;
    type Point = SeekPoint;
    type Extra = ();
    type Decoder = Bz2Decoder;

    fn looks_like(head: &[u8]) -> bool {
        looks_like_bzip2(head)
    }

    fn start(index: &Bz2Index, src: Arc<dyn ByteSource>, i: usize, _remaining: u64) -> io::Result<Bz2Decoder> {
        let p = index.points()[i];
        let (feed, synthetic) = if p.is_stream_start() || p.bit == 0 {
            let at = (p.bit / 8).saturating_sub(4);
            (RFeed::Source(SourceFeed { src: src.clone(), pos: at }), None)
        } else {
            let shift = ShiftFeed {
                src: src.clone(),
                header: [b'B', b'Z', b'h', b'0' + p.level],
                hpos: 0,
                bit: p.bit,
                end_bit: p.eos_bit,
                scratch: Vec::new(),
            };
            (RFeed::Shift(shift), Some((p.eos_bit, p.stream_out_end)))
        };
        Ok(Bz2Decoder {
            input: Input::new(feed, READER_IN_CHUNK, 0),
            dec: Decompress::new(false),
            synthetic,
            from_bit: p.bit,
            out_pos: p.out,
            pending: None,
            src,
        })
    }

    /// bzip2's block tables (up to 900 kB blocks).
    fn decoder_bytes(_decoded: usize) -> usize {
        4 << 20
    }

    fn to_parts(index: &Bz2Index) -> io::Result<(Vec<u8>, Vec<u8>)> {
        Ok((index.table.encode()?, Vec::new()))
    }

    fn from_parts(table: &[u8], _windows: WindowSource) -> Result<Bz2Index, FormatError> {
        let t = Table::decode(table, "bzip2", |t, p: &SeekPoint, prev| {
            let known = p.eos_bit != UNKNOWN;
            (1..=9).contains(&p.level)
                && p.flags & !FLAG_STREAM_START == 0
                && (p.flags & FLAG_STREAM_START == 0 || (p.bit.is_multiple_of(8) && p.bit >= 32))
                && p.bit / 8 <= t.compressed_len
                && known == (p.stream_out_end != UNKNOWN)
                && (!known || (p.eos_bit > p.bit && p.stream_out_end > p.out && p.stream_out_end <= t.uncompressed_len))
                && prev.is_none_or(|q| p.bit > q.bit)
        })?;
        Ok(Index::new(t, Vec::new(), ()))
    }
}

// ---------------------------------------------------------------------------------------------
// Random-access reader.

/// A synthetic stream: `BZh<level>`, then the source's bits from `bit` to `end_bit`, shifted to
/// byte alignment (the last byte zero-padded).
struct ShiftFeed {
    src: Arc<dyn ByteSource>,
    header: [u8; 4],
    hpos: usize,
    bit: u64,
    end_bit: u64,
    scratch: Vec<u8>,
}

impl Feed for ShiftFeed {
    fn feed(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.hpos < 4 {
            let n = (4 - self.hpos).min(buf.len());
            buf[..n].copy_from_slice(&self.header[self.hpos..self.hpos + n]);
            self.hpos += n;
            return Ok(n);
        }
        if self.bit >= self.end_bit {
            return Ok(0);
        }
        let left_bits = self.end_bit - self.bit;
        let want = (buf.len() as u64).min(left_bits.div_ceil(8)) as usize;
        self.scratch.resize(want + 1, 0);
        let from = self.bit / 8;
        let mut got = 0;
        while got < want + 1 {
            match self.src.read_at(from + got as u64, &mut self.scratch[got..]) {
                Ok(0) => break,
                Ok(k) => got += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let s = (self.bit % 8) as u32;
        // Output byte i needs source bytes i and (when shifted) i + 1.
        let n = got.min(want);
        if n == 0 {
            return Ok(0);
        }
        self.scratch[got..].fill(0);
        #[allow(clippy::needless_range_loop)]
        for i in 0..n {
            let hi = self.scratch[i] << s;
            let lo = if s == 0 { 0 } else { self.scratch[i + 1] >> (8 - s) };
            buf[i] = hi | lo;
        }
        let produced_bits = (n as u64 * 8).min(left_bits);
        if !produced_bits.is_multiple_of(8) {
            buf[n - 1] &= 0xFFu8 << (8 - produced_bits % 8);
        }
        self.bit += produced_bits;
        if n < want {
            // The source ended: nothing more (the last byte's missing low bits read as zeros).
            self.end_bit = self.bit;
        }
        Ok(n)
    }
}

enum RFeed {
    Source(SourceFeed),
    Shift(ShiftFeed),
}

impl Feed for RFeed {
    fn feed(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            RFeed::Source(f) => f.feed(buf),
            RFeed::Shift(f) => f.feed(buf),
        }
    }
}

/// A bzip2 decoder running from a block start (a synthetic stream when mid-stream).
pub struct Bz2Decoder {
    src: Arc<dyn ByteSource>,
    input: Input<RFeed>,
    dec: Decompress,
    /// While decoding a synthetic stream: its end-of-stream bit and where its output ends.
    synthetic: Option<(u64, u64)>,
    from_bit: u64,
    out_pos: u64,
    pending: Option<io::Error>,
}

impl fmt::Debug for Bz2Decoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bz2Decoder")
            .field("src", &self.src.describe())
            .field("from_bit", &self.from_bit)
            .field("out_pos", &self.out_pos)
            .finish()
    }
}

impl Bz2Decoder {
    fn ended(&self) -> io::Error {
        eof(format!(
            "{}: bzip2 data ends early after decompressed offset {} (reading from compressed bit {}; file changed since it was indexed?)",
            self.src.describe(),
            self.out_pos,
            self.from_bit
        ))
    }
}

impl Decode for Bz2Decoder {
    fn decode_some(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if let Some(e) = self.pending.take() {
            return Err(e);
        }
        loop {
            let fed = self.input.fill()?;
            let avail: &[u8] = if fed { self.input.avail() } else { &[] };
            let (r, used, made) = step(&mut self.dec, avail, out);
            self.input.consume(used);
            self.out_pos += made as u64;
            match r {
                Err(e) => {
                    let e = invalid(format!(
                        "{}: corrupt bzip2 data before decompressed offset {} (reading from compressed bit {}): {e} (file changed since it was indexed?)",
                        self.src.describe(),
                        self.out_pos,
                        self.from_bit
                    ));
                    // Bytes decoded in the failing call come first (a partial index may end
                    // right before damage the decoder reaches in the same call).
                    if made > 0 {
                        self.pending = Some(e);
                        return Ok(made);
                    }
                    return Err(e);
                }
                Ok(Status::StreamEnd) => {
                    if self.synthetic.is_some() {
                        return Err(self.ended());
                    }
                    // The next stream starts right after this one (bytes consumed exactly).
                    self.dec = Decompress::new(false);
                }
                Ok(Status::MemNeeded) => {
                    return Err(io::Error::new(io::ErrorKind::OutOfMemory, "bzip2 decoder out of memory"));
                }
                Ok(_) => {}
            }
            if made > 0 {
                return Ok(made);
            }
            if !fed {
                // Input exhausted and all output flushed.
                match self.synthetic.take() {
                    Some((eos_bit, out_end)) if eos_bit != UNKNOWN && self.out_pos == out_end => {
                        let next = (eos_bit + 80).div_ceil(8);
                        self.input = Input::new(
                            RFeed::Source(SourceFeed { src: self.src.clone(), pos: next }),
                            READER_IN_CHUNK,
                            next,
                        );
                        self.dec = Decompress::new(false);
                        self.from_bit = next * 8;
                    }
                    _ => return Err(self.ended()),
                }
            } else if used == 0 {
                return Err(invalid(format!("{}: bzip2 decoder made no progress", self.src.describe())));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Indexing pass.

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum IState {
    StreamHeader { first: bool },
    Stream,
    AfterStream,
    Done,
}

/// The bzip2 step of an indexing pass ([`Bz2Indexer`]).
pub struct Bz2Step<R: Read> {
    input: Input<ReadFeed<R>>,
    dec: Decompress,
    state: IState,
    spacing: u64,
    out_total: u64,
    verified_len: u64,
    compressed_end: u64,
    level: u8,
    stream_start: u64,
    /// Last confirmed block boundary (bit) and the output offset there.
    boundary_bit: u64,
    boundary_out: u64,
    cand: Option<(u64, Kind)>,
    scan_from: u64,
    eos_bit: Option<u64>,
    stream_first_point: usize,
    points: Vec<SeekPoint>,
    warnings: Vec<String>,
    /// Tests: also offer a false candidate every this many bits, to exercise their rejection.
    #[cfg(test)]
    fake_every: u64,
    #[cfg(test)]
    rejected: u64,
}

impl<R: Read> Bz2Indexer<R> {
    /// Wraps `inner` (positioned at the first stream header); `spacing` is the wanted minimum
    /// distance between seek points in uncompressed bytes (at least 1).
    pub fn new(inner: R, spacing: u64) -> Self {
        Pass::over(Bz2Step {
            input: Input::new(ReadFeed(inner), INDEX_IN_CHUNK, 0),
            dec: Decompress::new(false),
            state: IState::StreamHeader { first: true },
            spacing: spacing.max(1),
            out_total: 0,
            verified_len: 0,
            compressed_end: 0,
            level: 9,
            stream_start: 0,
            boundary_bit: 0,
            boundary_out: 0,
            cand: None,
            scan_from: 0,
            eos_bit: None,
            stream_first_point: 0,
            points: Vec::new(),
            warnings: Vec::new(),
            #[cfg(test)]
            fake_every: 0,
            #[cfg(test)]
            rejected: 0,
        })
    }
}

impl<R: Read> IndexStep for Bz2Step<R> {
    type Codec = Bz2;

    fn in_data(&self) -> bool {
        self.state == IState::Stream
    }

    fn advance(&mut self) -> io::Result<bool> {
        match self.state {
            IState::StreamHeader { first } => self.stream_header(first)?,
            IState::AfterStream => self.after_stream()?,
            IState::Stream => {}
            IState::Done => return Ok(false),
        }
        Ok(true)
    }

    fn decode(&mut self, out: &mut [u8]) -> (usize, Option<io::Error>) {
        self.decode_some(out)
    }

    fn progress(&self) -> Progress<'_> {
        Progress { compressed: self.input.pos(), uncompressed: self.out_total, warnings: &self.warnings }
    }

    fn into_index(mut self, failed: bool) -> Bz2Index {
        if self.points.is_empty() {
            // Nothing decoded: keep "point 0 at out 0" (a stream start at offset 0).
            self.points.push(SeekPoint {
                out: 0,
                bit: 32,
                eos_bit: UNKNOWN,
                stream_out_end: UNKNOWN,
                level: 9,
                flags: FLAG_STREAM_START,
            });
        }
        if let Some(w) = long_span_warning(
            "bzip2 block",
            self.points.iter().map(|p| p.out),
            self.out_total,
            self.spacing,
            "a bzip2 block of long runs",
        ) {
            self.warnings.push(w);
        }
        let mut compressed_len = if failed { self.input.pos() } else { self.compressed_end };
        if let [only] = &self.points[..]
            && self.out_total == 0
        {
            // The placeholder (or a stream cut in its header) names the 4-byte stream header:
            // claim at least those bytes, or the saved index fails its own consistency check.
            compressed_len = compressed_len.max(only.bit / 8);
        }
        let table = Table {
            uncompressed_len: self.out_total,
            compressed_len,
            verified_len: self.verified_len,
            points: self.points,
        };
        Index::new(table, self.warnings, ())
    }
}

impl<R: Read> Bz2Step<R> {
    fn stream_header(&mut self, first: bool) -> io::Result<()> {
        let at = self.input.pos();
        self.input.ensure(10)?;
        let a = self.input.avail();
        let Some(level) = stream_level(a) else {
            let k = a.len().min(3);
            if a.len() < 4 && a[..k] == b"BZh"[..k] {
                return Err(eof(format!("bzip2 stream truncated in its header at compressed offset {at}")));
            }
            debug_assert!(first);
            return Err(invalid(format!("not a bzip2 stream: no bzip2 header at compressed offset {at}")));
        };
        self.level = level;
        self.stream_start = at;
        self.dec = Decompress::new(false);
        self.boundary_bit = (at + 4) * 8;
        self.boundary_out = self.out_total;
        self.scan_from = self.boundary_bit + 48;
        self.cand = None;
        self.stream_first_point = self.points.len();
        let empty = magic_at(&a[4..]) == Some(Kind::Eos);
        self.eos_bit = empty.then_some(self.boundary_bit);
        if !empty {
            let p = SeekPoint {
                out: self.out_total,
                bit: self.boundary_bit,
                eos_bit: UNKNOWN,
                stream_out_end: UNKNOWN,
                level,
                flags: FLAG_STREAM_START,
            };
            if self.points.last().is_none_or(|l| l.out == p.out || p.out - l.out >= self.spacing) {
                push_spaced(&mut self.points, p, self.spacing);
                self.stream_first_point = self.points.len() - 1;
            }
        }
        self.state = IState::Stream;
        Ok(())
    }

    fn next_candidate(&mut self) {
        let a = self.input.avail();
        let base = self.input.pos();
        let from = self.scan_from.max(base * 8);
        #[cfg_attr(not(test), allow(unused_mut))]
        let mut c = find_magic(a, base, from);
        #[cfg(test)]
        if self.fake_every > 0 {
            let fake = from.div_ceil(self.fake_every) * self.fake_every;
            // Never within 64 bits before a real magic: real magics cannot be that close.
            if fake / 8 + 16 <= base + a.len() as u64 && c.is_none_or(|(b, _)| fake + 64 < b) {
                c = Some((fake, Kind::Block));
            }
        }
        match c {
            Some(c) => self.cand = Some(c),
            None => self.scan_from = from.max((base + a.len() as u64).saturating_sub(6) * 8),
        }
    }

    /// Confirms or rejects the pending candidate once the decoder stalled at it.
    fn settle_candidate(&mut self, q: u64, kind: Kind) {
        self.cand = None;
        if self.out_total > self.boundary_out {
            // A block ended here: its CRC was verified before the decoder looked further.
            self.verified_len = self.out_total;
            self.boundary_bit = q;
            self.boundary_out = self.out_total;
            self.scan_from = q + 48;
            match kind {
                Kind::Block => {
                    let p = SeekPoint {
                        out: self.out_total,
                        bit: q,
                        eos_bit: UNKNOWN,
                        stream_out_end: UNKNOWN,
                        level: self.level,
                        flags: 0,
                    };
                    if self.points.last().is_none_or(|l| p.out - l.out >= self.spacing) {
                        self.points.push(p);
                    }
                }
                Kind::Eos => self.eos_bit = Some(q),
            }
        } else {
            self.scan_from = q + 1;
            #[cfg(test)]
            {
                self.rejected += 1;
            }
        }
    }

    fn end_stream(&mut self) -> io::Result<()> {
        let Some(eos) = self.eos_bit else {
            return Err(invalid(format!(
                "bzip2 stream starting at compressed offset {} ended without a recognised end-of-stream marker",
                self.stream_start
            )));
        };
        for p in &mut self.points[self.stream_first_point..] {
            if p.eos_bit == UNKNOWN && p.bit >= (self.stream_start + 4) * 8 {
                p.eos_bit = eos;
                p.stream_out_end = self.out_total;
            }
        }
        self.verified_len = self.out_total;
        self.compressed_end = self.input.pos();
        self.state = IState::AfterStream;
        Ok(())
    }

    /// Decodes into `out` until it is full or the stream ends; bytes before an error come first.
    fn decode_some(&mut self, out: &mut [u8]) -> (usize, Option<io::Error>) {
        let mut made_total = 0;
        while made_total < out.len() {
            if self.cand.is_none() {
                if let Err(e) = self.input.fill() {
                    return (made_total, Some(e));
                }
                self.next_candidate();
            }
            let pos = self.input.pos();
            let end = pos + self.input.avail().len() as u64;
            let limit = match self.cand {
                Some((q, _)) => q / 8 + 1,
                None if self.input.feed_ended() => end,
                None => end.saturating_sub(6).max(pos),
            };
            let fed = (limit.max(pos) - pos) as usize;
            let space = out.len() - made_total;
            let (r, used, made) = step(&mut self.dec, &self.input.avail()[..fed], &mut out[made_total..]);
            self.input.consume(used);
            made_total += made;
            self.out_total += made as u64;
            match r {
                Err(e) => {
                    let e = invalid(format!(
                        "corrupt bzip2 data in the block at compressed offset {} (bit {}; stream starting at compressed offset {}): {e}",
                        self.boundary_bit / 8,
                        self.boundary_bit,
                        self.stream_start
                    ));
                    return (made_total, Some(e));
                }
                Ok(Status::StreamEnd) => {
                    if let Err(e) = self.end_stream() {
                        return (made_total, Some(e));
                    }
                    break;
                }
                Ok(Status::MemNeeded) => {
                    let e = io::Error::new(io::ErrorKind::OutOfMemory, "bzip2 decoder out of memory");
                    return (made_total, Some(e));
                }
                Ok(_) => {}
            }
            if !(used == fed && made < space) {
                continue;
            }
            match self.cand {
                Some((q, kind)) => self.settle_candidate(q, kind),
                None => {
                    // Everything buffered was fed: fetch more, or the stream is truncated.
                    if self.input.feed_ended() && self.input.avail().is_empty() {
                        let e = eof(format!(
                            "bzip2 stream truncated at compressed offset {} (block at compressed offset {}, stream starting at compressed offset {})",
                            self.input.pos(),
                            self.boundary_bit / 8,
                            self.stream_start
                        ));
                        return (made_total, Some(e));
                    }
                    if let Err(e) = self.input.top_up() {
                        return (made_total, Some(e));
                    }
                }
            }
        }
        (made_total, None)
    }

    fn after_stream(&mut self) -> io::Result<()> {
        if !self.input.fill()? {
            self.state = IState::Done;
            return Ok(());
        }
        self.input.ensure(4)?;
        if stream_level(self.input.avail()).is_some() {
            self.state = IState::StreamHeader { first: false };
            return Ok(());
        }
        if let Some(w) = self.input.trailing("bzip2", self.compressed_end)? {
            tracing::warn!("{w}");
            self.warnings.push(w);
        }
        self.state = IState::Done;
        Ok(())
    }
}

/// True when `first_bytes` (at least 4, ideally 10) start like a bzip2 stream.
pub fn looks_like_bzip2(first_bytes: &[u8]) -> bool {
    stream_level(first_bytes).is_some() && (first_bytes.len() < 10 || magic_at(&first_bytes[4..]).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::seekidx::testutil::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn bz(data: &[u8], level: u32) -> Vec<u8> {
        let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::new(level));
        io::Write::write_all(&mut e, data).unwrap();
        e.finish().unwrap()
    }

    fn index_with_fakes(z: &[u8], spacing: u64, seed: u64, fake_every: u64) -> (Vec<u8>, Bz2Index, Option<io::Error>) {
        let mut ix = Bz2Indexer::new(z, spacing);
        ix.step.fake_every = fake_every;
        let (out, err) = drain(&mut ix, seed);
        if let Some(expected) = (z.len() as u64 * 8).checked_div(fake_every) {
            assert!(ix.step.rejected > expected / 2, "only {} fakes rejected", ix.step.rejected);
        }
        let (idx, err2) = ix.finish_partial();
        assert_eq!(err.is_some(), err2.is_some());
        (out, idx, err)
    }

    #[test]
    fn an_index_of_a_stream_cut_in_its_header_loads_back() {
        // Fuzz find: "BZh9" alone (a download cut after 4 bytes) or a bad level byte left only the
        // placeholder point at bit 32 with 0 compressed bytes, which loading refused.
        for z in [&b"BZh9"[..], b"BZh", b"BZh\0\0\0\0\0\0\0\0", b"", b"BZh91AY&SY"] {
            let mut ix = Bz2Indexer::new(z, 1);
            let _ = io::copy(&mut ix, &mut io::sink());
            let (idx, err) = ix.finish_partial();
            assert!(err.is_some(), "{z:?}");
            let back = load::<Bz2>(&table_of(&idx)).unwrap_or_else(|e| panic!("{z:?}: {e}"));
            assert_eq!(back.points(), idx.points());
        }
    }

    fn index_with(z: &[u8], spacing: u64, seed: u64) -> (Vec<u8>, Bz2Index, Option<io::Error>) {
        index_with_fakes(z, spacing, seed, 0)
    }

    fn index_ok(z: &[u8], spacing: u64) -> Bz2Index {
        expect_ok(index_with(z, spacing, spacing))
    }

    #[test]
    fn magic_scanner() {
        for shift in 0..8u64 {
            for (m, k) in [(BLOCK_MAGIC, Kind::Block), (EOS_MAGIC, Kind::Eos)] {
                let mut v = vec![0xA5u8; 20];
                // Write the 48 magic bits starting at bit 8*5 + shift.
                for b in 0..48u64 {
                    let bit = 40 + shift + b;
                    let val = (m >> (47 - b)) & 1;
                    let byte = &mut v[(bit / 8) as usize];
                    let mask = 0x80u8 >> (bit % 8);
                    if val == 1 { *byte |= mask } else { *byte &= !mask }
                }
                assert_eq!(find_magic(&v, 100, 0), Some((800 + 40 + shift, k)), "shift {shift}");
                assert_eq!(find_magic(&v, 100, 800 + 41 + shift), None);
            }
        }
    }

    #[test]
    fn multi_block_random_access() {
        let data = mixed(1, 4 << 20);
        for level in [1, 5, 9] {
            let z = bz(&data, level);
            let idx = index_ok(&z, 1);
            // Level 1: 100k blocks (before RLE) -> dozens of points.
            if level == 1 {
                assert!(idx.points().len() > 20, "{}", idx.points().len());
            }
            assert!(idx.points().iter().any(|p| p.bit % 8 != 0) || idx.points().len() < 3);
            check(&data, &z, &idx, level as u64, 30);
            let idx2 = index_ok(&z, 1 << 20);
            assert!(idx2.points().len() <= 5);
            check(&data, &z, &idx2, level as u64 + 10, 10);
        }
    }

    #[test]
    fn false_candidates_are_rejected() {
        let data = mixed(2, 1 << 20);
        let z = bz(&data, 1);
        let real = index_ok(&z, 1);
        for every in [997u64, 8 * 1000 + 3, 65_537] {
            let (out, idx, err) = index_with_fakes(&z, 1, every, every);
            assert!(err.is_none(), "{err:?}");
            assert!(out == data);
            assert_eq!(idx.points(), real.points(), "every {every}");
        }
    }

    #[test]
    fn long_runs_make_huge_blocks() {
        // 30 MB of one byte: a level-1 block (100k after RLE1) covers ~5 MB of output.
        let mut data = vec![7u8; 30 << 20];
        data.extend(mixed(3, 300_000));
        let z = bz(&data, 1);
        assert!(z.len() < 400_000, "{}", z.len());
        let idx = index_ok(&z, 1);
        assert!(idx.points().len() >= 6, "{:?}", idx.points());
        check(&data, &z, &idx, 3, 10);
    }

    #[test]
    fn multi_stream_and_cli() {
        let parts: Vec<Vec<u8>> =
            (0..5).map(|i| mixed(10 + i, [1 << 20, 0, 300_000, 5, 700_000][i as usize])).collect();
        let mut z = Vec::new();
        let mut data = Vec::new();
        for (i, p) in parts.iter().enumerate() {
            let c = if i % 2 == 0 { tool("bzip2", &["-c", "-1"], p) } else { bz(p, 9) };
            z.extend(c);
            data.extend_from_slice(p);
        }
        for spacing in [1u64, 200_000, 1 << 30] {
            let idx = index_ok(&z, spacing);
            assert!(idx.warnings().is_empty(), "{:?}", idx.warnings());
            check(&data, &z, &idx, spacing, 30);
        }
        let idx = index_ok(&z, 1);
        assert!(idx.points().iter().filter(|p| p.is_stream_start()).count() >= 3);
        // Padding is silent, garbage warns.
        let mut p = z.clone();
        p.extend_from_slice(&[0u8; 7]);
        assert!(index_ok(&p, 1).warnings().is_empty());
        p.extend_from_slice(b"junk");
        let idx = index_ok(&p, 1);
        assert_eq!(idx.warnings().len(), 1);
        assert_eq!(idx.compressed_len(), z.len() as u64);
        check(&data, &p, &idx, 4, 10);
        // Empty input file (bzip2 of nothing) and read_span cap.
        let e = bz(b"", 9);
        let idx = index_ok(&e, 1);
        assert_eq!(idx.uncompressed_len(), 0);
        assert!(idx.read_span(src(&e), 0, 0).unwrap().is_empty());
        let e = index_ok(&z, 1).read_span(src(&z), 0, 10).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::OutOfMemory);
    }

    #[test]
    fn serialization_roundtrip_and_damage() {
        let data = mixed(5, 1 << 20);
        let mut z = bz(&data, 1);
        z.extend(bz(&data[..200_000], 2));
        let mut d = data.clone();
        d.extend_from_slice(&data[..200_000]);
        let idx = index_ok(&z, 150_000);
        let b = table_of(&idx);
        let back = load::<Bz2>(&b).unwrap();
        assert_eq!(table_of(&back), b);
        assert_eq!(back.points(), idx.points());
        check(&d, &z, &back, 5, 10);
        damage_rejected(&b, load::<Bz2>);
    }

    #[test]
    fn corrupt_and_truncated_inputs_fail_loudly() {
        let data = mixed(6, 600_000);
        let z = bz(&data, 1);
        let mut rng = StdRng::seed_from_u64(6);
        for _ in 0..150 {
            let mut c = z.clone();
            let i = rng.random_range(0..c.len());
            c[i] ^= 1 << rng.random_range(0..8);
            let (out, idx, err) = index_with(&c, 1, i as u64);
            match err {
                Some(e) => {
                    assert!(matches!(e.kind(), io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof), "{e}");
                    assert!(e.to_string().contains("offset"), "{e}");
                    assert!(data[..idx.verified_len() as usize] == out[..idx.verified_len() as usize]);
                    assert_eq!(idx.uncompressed_len(), out.len() as u64);
                }
                // A flip in the final padding bits is harmless.
                None => assert!(out == data && i == z.len() - 1, "flip at {i} gave no error"),
            }
        }
        for n in [0, 1, 3, 4, 9, 10, 50, z.len() / 2, z.len() - 10, z.len() - 5, z.len() - 1] {
            let (out, idx, err) = index_with(&z[..n], 1, n as u64);
            let e = err.expect("truncation must fail");
            assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "{n}: {e}");
            assert!(data.starts_with(&out));
            let mut v = Vec::new();
            idx.reader_at(src(&z[..n]), 0).unwrap().read_to_end(&mut v).unwrap();
            assert!(v == out, "{n}");
            if idx.points().len() > 1 {
                let p = idx.points()[idx.points().len() - 1];
                let mut v = Vec::new();
                idx.reader_at(src(&z[..n]), p.out).unwrap().read_to_end(&mut v).unwrap();
                assert!(v == out[p.out as usize..], "{n}");
            }
        }
        let (_, _, err) = index_with(b"\xfd7zXZ\x00 not bzip2", 1, 1);
        assert_eq!(err.unwrap().kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn misc() {
        fn send<T: Send>() {}
        send::<Bz2Reader>();
        send::<Bz2Indexer<std::fs::File>>();
        assert!(looks_like_bzip2(&bz(b"x", 9)));
        assert!(looks_like_bzip2(&bz(b"", 9)));
        assert!(looks_like_bzip2(b"BZh9"));
        assert!(!looks_like_bzip2(b"BZh0"));
        assert!(!looks_like_bzip2(b"BZh91AY&SX"));
    }

    #[test]
    fn conformance_files_match_bzip2() {
        let mut seen = 0;
        for f in [
            "libarchive/test_compat_bzip2_1.tbz",
            "libarchive/test_extract.tar.bz2",
            "ratarmount/2k-recursive-tars.tar.bz2",
            "ratarmount/file-with-attribute.bsd.tar.bz2",
            "ratarmount/file-with-attribute.gnu.tar.bz2",
            "ratarmount/nested-directly-compressed.tar.bz2",
            "ratarmount/tar-with-1-folders-with-1000-files-0B-files.tar.bz2",
            "ratarmount/tar-with-10-folders-with-1000-files-0B-files.tar.bz2",
        ] {
            let Some(p) = conformance(f) else { continue };
            seen += 1;
            let z = std::fs::read(&p).unwrap();
            let want = tool_dc("bzip2", &p);
            let s: Arc<dyn ByteSource> = Arc::new(crate::archive::FileSource::open(&p).unwrap());
            for spacing in [1u64, 1 << 20] {
                let mut ix = Bz2Indexer::new(&z[..], spacing);
                let mut out = Vec::new();
                ix.read_to_end(&mut out).unwrap_or_else(|e| panic!("{f}: {e}"));
                let idx = ix.finish().unwrap();
                assert!(out == want, "{f}: differs from bzip2 -dc");
                check_whole(&idx, &s, &out, f);
            }
        }
        assert!(seen > 0);
    }
}
