//! Random access into zstd streams: one indexing pass records a seek point at frame starts
//! (at least `spacing` uncompressed bytes apart), after which any byte range of the decompressed
//! stream is read by decoding from the nearest frame start.
//!
//! zstd frames are independent (no window crosses a frame boundary), so a frame start needs no
//! saved state. Files written by `pzstd`, `zstd --patch-from`-free multi-frame tools, the zstd
//! seekable format (`t2sz`, `zstd_seekable`) or `cat a.zst b.zst` have many frames; a plain
//! `zstd` file is a single frame, whose only seek point is 0: random access then decodes from the
//! start of the stream (a warning says so when that span is long, see [`ZstdIndex::warnings`]).
//!
//! The indexing pass ([`ZstdIndexer`]) is a `Read` yielding the decompressed bytes of all frames
//! while libzstd checks each frame's structure, declared content size and (when the frame has one)
//! XXH64 content checksum. Skippable frames are skipped. Zero bytes after the last frame are
//! accepted silently; other trailing bytes give a warning. Frames needing a window larger than
//! 2^[`WINDOW_LOG_MAX`] bytes are refused, as the `zstd` tool does without `--memory`. Reads from a
//! seek point are checked by libzstd too (checksums of frames read to their end).

use std::fmt;
use std::io::{self, Read};
use std::sync::Arc;

use zstd::zstd_safe::{self, DCtx, DParameter, InBuffer, OutBuffer};

use serde::{Deserialize, Serialize};

use crate::archive::gzindex::WindowSource;
use crate::archive::seekidx::{
    Decode, Index, IndexStep, Input, Pass, Point, Progress, ReadFeed, SeekCodec, SourceFeed, SpanReader, Table, eof,
    invalid, long_span_warning,
};
use crate::archive::{ByteSource, FormatError};

/// Largest window accepted (log2): 128 MiB, libzstd's and the `zstd` tool's default limit.
pub const WINDOW_LOG_MAX: u32 = 27;
const INDEX_IN_CHUNK: usize = 1 << 20;
const READER_IN_CHUNK: usize = 128 * 1024;

const ZSTD_MAGIC: u32 = 0xFD2F_B528;

/// Kind of frame starting with these (at least 4) bytes.
fn frame_kind(b: &[u8]) -> Option<FrameKind> {
    let m = u32::from_le_bytes(b.get(..4)?.try_into().unwrap());
    if m == ZSTD_MAGIC {
        Some(FrameKind::Zstd)
    } else if m & 0xFFFF_FFF0 == 0x184D_2A50 {
        Some(FrameKind::Skippable)
    } else {
        None
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum FrameKind {
    Zstd,
    Skippable,
}

fn new_dctx() -> io::Result<DCtx<'static>> {
    let mut d =
        DCtx::try_create().ok_or_else(|| io::Error::new(io::ErrorKind::OutOfMemory, "ZSTD_createDCtx failed"))?;
    d.set_parameter(DParameter::WindowLogMax(WINDOW_LOG_MAX))
        .map_err(|c| io::Error::other(format!("zstd: {}", zstd_safe::get_error_name(c))))?;
    Ok(d)
}

/// One `ZSTD_decompressStream` call: (result, consumed, produced).
fn step(d: &mut DCtx<'static>, input: &[u8], output: &mut [u8]) -> (Result<usize, usize>, usize, usize) {
    let mut ib = InBuffer::around(input);
    let mut ob = OutBuffer::around(output);
    let r = d.decompress_stream(&mut ob, &mut ib);
    (r, ib.pos(), ob.pos())
}

// ---------------------------------------------------------------------------------------------
// The index.

/// A frame start: decoding can begin here with a fresh context.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeekPoint {
    /// Offset in the decompressed stream.
    pub out: u64,
    /// Compressed offset of the frame's magic number.
    pub input: u64,
}

impl Point for SeekPoint {
    fn out(&self) -> u64 {
        self.out
    }
}

/// The zstd codec of the shared seek index.
#[derive(Debug)]
pub struct Zstd;

/// Seek points into one zstd stream (all frames). Its warnings name trailing garbage, frames
/// without checksum and one huge frame.
pub type ZstdIndex = Index<Zstd>;

/// Sequential decompressed bytes from some offset of an indexed zstd stream; owns its libzstd
/// context and can be moved to any thread.
pub type ZstdReader = SpanReader<ZstdDecoder>;

/// Streams a zstd file once: `Read` yields the decompressed bytes (across frames) while seek
/// points are recorded at frame starts at least `spacing` uncompressed bytes apart (see
/// [`Pass`]).
pub type ZstdIndexer<R> = Pass<ZstdStep<R>>;

impl SeekCodec for Zstd {
    const NAME: &'static str = "zstd";
    const SUFFIXES: &'static [&'static str] = &[".zst", ".ZST", ".zstd"];
    const SPACING: u64 = 1 << 20;
    type Point = SeekPoint;
    type Extra = ();
    type Decoder = ZstdDecoder;

    fn looks_like(head: &[u8]) -> bool {
        looks_like_zstd(head)
    }

    fn start(index: &ZstdIndex, src: Arc<dyn ByteSource>, i: usize, _remaining: u64) -> io::Result<ZstdDecoder> {
        let p = index.points()[i];
        Ok(ZstdDecoder {
            input: Input::new(SourceFeed { src: src.clone(), pos: p.input }, READER_IN_CHUNK, p.input),
            d: new_dctx()?,
            src,
            in_frame: false,
            pending: None,
        })
    }

    /// The window (of which a decoder touches at most what it decoded since its seek point)
    /// plus buffers.
    fn decoder_bytes(decoded: usize) -> usize {
        (512usize << 10).saturating_add(decoded)
    }

    fn to_parts(index: &ZstdIndex) -> io::Result<(Vec<u8>, Vec<u8>)> {
        Ok((index.table.encode()?, Vec::new()))
    }

    fn from_parts(table: &[u8], _windows: WindowSource) -> Result<ZstdIndex, FormatError> {
        let t = Table::decode(table, "zstd", |t, p: &SeekPoint, prev| {
            p.input <= t.compressed_len && prev.is_none_or(|q| p.input > q.input)
        })?;
        Ok(Index::new(t, Vec::new(), ()))
    }
}

// ---------------------------------------------------------------------------------------------
// Random-access reader.

/// A libzstd context decoding from a frame start.
pub struct ZstdDecoder {
    src: Arc<dyn ByteSource>,
    input: Input<SourceFeed>,
    d: DCtx<'static>,
    in_frame: bool,
    pending: Option<io::Error>,
}

impl fmt::Debug for ZstdDecoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ZstdDecoder")
            .field("src", &self.src.describe())
            .field("compressed_pos", &self.input.pos())
            .finish()
    }
}

impl Decode for ZstdDecoder {
    fn decode_some(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if let Some(e) = self.pending.take() {
            return Err(e);
        }
        loop {
            if !self.input.fill()? {
                return Err(eof(format!(
                    "{}: zstd data ends early at compressed offset {} (file changed since it was indexed?)",
                    self.src.describe(),
                    self.input.pos()
                )));
            }
            let at = self.input.pos();
            let (r, used, made) = step(&mut self.d, self.input.avail(), out);
            self.input.consume(used);
            match r {
                Ok(0) => self.in_frame = false,
                Ok(_) => self.in_frame = true,
                Err(c) => {
                    let e = invalid(format!(
                        "{}: corrupt zstd data near compressed offset {at}: {} (file changed since it was indexed?)",
                        self.src.describe(),
                        zstd_safe::get_error_name(c)
                    ));
                    // Bytes decoded in the failing call come first (the indexing pass yielded them).
                    if made > 0 {
                        self.pending = Some(e);
                        return Ok(made);
                    }
                    return Err(e);
                }
            }
            if made > 0 {
                return Ok(made);
            }
            if used == 0 && self.in_frame {
                return Err(invalid(format!(
                    "{}: zstd made no progress at compressed offset {at}",
                    self.src.describe()
                )));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Indexing pass.

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum IState {
    /// Expecting a frame (`first`: the very first one, which must exist).
    FrameStart {
        first: bool,
    },
    Frame,
    Done,
}

/// The zstd step of an indexing pass ([`ZstdIndexer`]): libzstd checks each frame's structure,
/// declared content size and (when the frame has one) content checksum.
pub struct ZstdStep<R: Read> {
    input: Input<ReadFeed<R>>,
    d: DCtx<'static>,
    state: IState,
    spacing: u64,
    out_total: u64,
    frame_in: u64,
    points: Vec<SeekPoint>,
    verified_len: u64,
    compressed_end: u64,
    unchecked_frames: u64,
    warnings: Vec<String>,
    blocks: Blocks,
}

/// Follows the block structure of the frame being decoded, as libzstd consumes its bytes, to know
/// whether the stream stops inside a raw block. libzstd hands out a raw block's bytes as they
/// arrive, before anything checks them; when a damaged block header makes compressed bytes look
/// like a raw block running past the end of the file, those bytes are garbage that only the
/// frame checksum (never reached) would have caught. So a stream that ends inside a raw block is
/// trusted only up to where that block began. (A real truncation loses a little: the start of its
/// last raw block.)
#[derive(Default)]
struct Blocks {
    state: BState,
    /// Output position when the raw block being consumed began.
    open_raw: Option<u64>,
}

#[derive(Default)]
enum BState {
    /// Not in a zstd frame (skippable frame, or between frames).
    #[default]
    Idle,
    /// `seen` bytes of the frame header so far; `total` is known once the descriptor is read.
    FrameHeader {
        seen: usize,
        total: usize,
        checksum: bool,
    },
    BlockHeader {
        h: [u8; 3],
        seen: usize,
        checksum: bool,
    },
    Body {
        left: u64,
        last: bool,
        checksum: bool,
    },
    Checksum {
        left: u64,
    },
}

impl Blocks {
    fn start_frame(&mut self, zstd: bool) {
        self.open_raw = None;
        self.state = if zstd { BState::FrameHeader { seen: 0, total: 5, checksum: false } } else { BState::Idle };
    }

    /// `bytes` were just consumed by the decoder, which had produced `out` bytes before them.
    fn feed(&mut self, mut bytes: &[u8], out: u64) {
        while !bytes.is_empty() {
            match &mut self.state {
                BState::Idle => return,
                BState::FrameHeader { seen, total, checksum } => {
                    if *seen == 4 {
                        let fhd = bytes[0];
                        let single = fhd & 0x20 != 0;
                        let fcs = match fhd >> 6 {
                            0 => usize::from(single),
                            1 => 2,
                            2 => 4,
                            _ => 8,
                        };
                        *total = 5 + usize::from(!single) + [0, 1, 2, 4][(fhd & 3) as usize] + fcs;
                        *checksum = fhd & 4 != 0;
                    }
                    // Stop at the descriptor byte (offset 4): it says how long the header is.
                    let stop = if *seen < 4 { 4 } else { *total };
                    let n = (stop - *seen).min(bytes.len());
                    *seen += n;
                    bytes = &bytes[n..];
                    if *seen == *total {
                        self.state = BState::BlockHeader { h: [0; 3], seen: 0, checksum: *checksum };
                    }
                }
                BState::BlockHeader { h, seen, checksum } => {
                    h[*seen] = bytes[0];
                    *seen += 1;
                    bytes = &bytes[1..];
                    if *seen == 3 {
                        let v = u32::from_le_bytes([h[0], h[1], h[2], 0]);
                        let (last, kind, size) = (v & 1 == 1, (v >> 1) & 3, (v >> 3) as u64);
                        let left = if kind == 1 { 1 } else { size };
                        if kind == 0 && left > 0 {
                            self.open_raw = Some(out);
                        }
                        self.state = BState::Body { left, last, checksum: *checksum };
                        self.after_body();
                    }
                }
                BState::Body { left, .. } => {
                    let n = (*left).min(bytes.len() as u64);
                    *left -= n;
                    bytes = &bytes[n as usize..];
                    self.after_body();
                }
                BState::Checksum { left } => {
                    let n = (*left).min(bytes.len() as u64);
                    *left -= n;
                    bytes = &bytes[n as usize..];
                    if *left == 0 {
                        self.state = BState::Idle;
                    }
                }
            }
        }
    }

    /// How many bytes the decoder may be given next without crossing into the next header or
    /// body: stepping one piece at a time is what makes the output count at a raw block's start
    /// exact (it is one call per block header and a few per body, so it costs nothing).
    fn until_boundary(&self) -> usize {
        let left = match &self.state {
            BState::Idle => return usize::MAX,
            BState::FrameHeader { seen, total, .. } => (if *seen < 4 { 4 } else { *total }) - seen,
            BState::BlockHeader { seen, .. } => 3 - seen,
            BState::Body { left, .. } | BState::Checksum { left } => usize::try_from(*left).unwrap_or(usize::MAX),
        };
        left.max(1)
    }

    /// Moves past a block whose body has been consumed whole.
    fn after_body(&mut self) {
        if let BState::Body { left: 0, last, checksum } = self.state {
            self.open_raw = None;
            self.state = match (last, checksum) {
                (false, _) => BState::BlockHeader { h: [0; 3], seen: 0, checksum },
                (true, true) => BState::Checksum { left: 4 },
                (true, false) => BState::Idle,
            };
        }
    }
}

impl<R: Read> ZstdIndexer<R> {
    /// Wraps `inner` (positioned at the first frame); `spacing` is the wanted minimum distance
    /// between seek points in uncompressed bytes (at least 1).
    pub fn new(inner: R, spacing: u64) -> Self {
        Pass::over(ZstdStep {
            input: Input::new(ReadFeed(inner), INDEX_IN_CHUNK, 0),
            d: new_dctx().expect("ZSTD_createDCtx failed"),
            state: IState::FrameStart { first: true },
            spacing: spacing.max(1),
            out_total: 0,
            frame_in: 0,
            points: Vec::new(),
            verified_len: 0,
            compressed_end: 0,
            unchecked_frames: 0,
            warnings: Vec::new(),
            blocks: Blocks::default(),
        })
    }
}

impl<R: Read> IndexStep for ZstdStep<R> {
    type Codec = Zstd;

    fn in_data(&self) -> bool {
        self.state == IState::Frame
    }

    fn advance(&mut self) -> io::Result<bool> {
        match self.state {
            IState::FrameStart { first } => self.start_frame(first).map(|()| true),
            IState::Frame => Ok(true),
            IState::Done => Ok(false),
        }
    }

    fn decode(&mut self, out: &mut [u8]) -> (usize, Option<io::Error>) {
        self.decode_some(out)
    }

    fn last_point(&self) -> Option<u64> {
        self.points.last().map(|p| p.out)
    }

    fn progress(&self) -> Progress<'_> {
        Progress { compressed: self.input.pos(), uncompressed: self.out_total, warnings: &self.warnings }
    }

    fn into_index(mut self, failed: bool) -> ZstdIndex {
        if self.points.is_empty() {
            self.points.push(SeekPoint { out: 0, input: 0 });
        }
        if !failed && self.unchecked_frames > 0 {
            self.warnings.push(format!(
                "{} zstd frame(s) carry no content checksum: their data is only structurally checked",
                self.unchecked_frames
            ));
        }
        if let Some(w) = long_span_warning(
            "zstd frame",
            self.points.iter().map(|p| p.out),
            self.out_total,
            self.spacing,
            "recompress with `pzstd` or the seekable format for faster access",
        ) {
            self.warnings.push(w);
        }
        let compressed_len = if failed { self.input.pos() } else { self.compressed_end };
        let table = Table {
            uncompressed_len: self.out_total,
            compressed_len,
            verified_len: self.verified_len,
            points: self.points,
        };
        Index::new(table, self.warnings, ())
    }
}

impl<R: Read> ZstdStep<R> {
    fn start_frame(&mut self, first: bool) -> io::Result<()> {
        let at = self.input.pos();
        if !first {
            // Another frame, zero padding, garbage or the end.
            if !self.input.fill()? {
                self.state = IState::Done;
                return Ok(());
            }
            self.input.ensure(4)?;
            if frame_kind(self.input.avail()).is_none() {
                if let Some(w) = self.input.trailing("zstd", at)? {
                    tracing::warn!("{w}");
                    self.warnings.push(w);
                }
                self.state = IState::Done;
                return Ok(());
            }
        }
        self.input.ensure(5)?;
        self.blocks.start_frame(matches!(frame_kind(self.input.avail()), Some(FrameKind::Zstd)));
        match frame_kind(self.input.avail()) {
            Some(FrameKind::Zstd) => {
                if let Some(&fhd) = self.input.avail().get(4)
                    && fhd & 4 == 0
                {
                    self.unchecked_frames += 1;
                }
            }
            Some(FrameKind::Skippable) => {}
            None if self.input.avail().len() < 4 => {
                return Err(eof(format!("zstd stream truncated in a frame header at compressed offset {at}")));
            }
            None => return Err(invalid(format!("not a zstd stream: no frame magic at compressed offset {at}"))),
        }
        self.frame_in = at;
        let due = self.points.last().is_none_or(|p| self.out_total - p.out >= self.spacing);
        if let Some(last) = self.points.last_mut()
            && last.out == self.out_total
        {
            // The previous frame was empty: start at the later one.
            last.input = at;
        } else if due {
            self.points.push(SeekPoint { out: self.out_total, input: at });
        }
        self.state = IState::Frame;
        Ok(())
    }

    /// Decodes into `out` until it is full or the frame ends; bytes before an error come first.
    fn decode_some(&mut self, out: &mut [u8]) -> (usize, Option<io::Error>) {
        let mut made_total = 0;
        let mut stalls = 0;
        while made_total < out.len() {
            match self.input.fill() {
                Ok(true) => {}
                Ok(false) => {
                    if let Some(start) = self.blocks.open_raw {
                        // See `Blocks`: the bytes of a raw block cut short are not trusted.
                        self.out_total = self.out_total.min(start);
                    }
                    let e = eof(format!(
                        "zstd stream truncated at compressed offset {} (frame starting at compressed offset {})",
                        self.input.pos(),
                        self.frame_in
                    ));
                    return (made_total, Some(e));
                }
                Err(e) => return (made_total, Some(e)),
            }
            let piece = self.input.avail().len().min(self.blocks.until_boundary());
            let (r, used, made) = step(&mut self.d, &self.input.avail()[..piece], &mut out[made_total..]);
            let at = self.input.pos();
            self.blocks.feed(&self.input.avail()[..used], self.out_total);
            self.input.consume(used);
            made_total += made;
            self.out_total += made as u64;
            match r {
                Ok(0) => {
                    self.verified_len = self.out_total;
                    self.compressed_end = self.input.pos();
                    self.state = IState::FrameStart { first: false };
                    break;
                }
                Ok(_) => {}
                Err(c) => {
                    let name = zstd_safe::get_error_name(c);
                    let e = if name.contains("memory") || name.contains("indowLog") {
                        invalid(format!(
                            "zstd frame at compressed offset {} needs a window over 2^{WINDOW_LOG_MAX} bytes: {name}",
                            self.frame_in
                        ))
                    } else {
                        invalid(format!(
                            "corrupt zstd data near compressed offset {} (frame starting at compressed offset {}): {name}",
                            at + used as u64,
                            self.frame_in
                        ))
                    };
                    return (made_total, Some(e));
                }
            }
            if used == 0 && made == 0 {
                stalls += 1;
                if stalls > 2 {
                    let e = invalid(format!("zstd made no progress at compressed offset {}", self.input.pos()));
                    return (made_total, Some(e));
                }
            } else {
                stalls = 0;
            }
        }
        (made_total, None)
    }
}

/// True when `first_bytes` (at least 4) start like a zstd frame (or a skippable frame).
pub fn looks_like_zstd(first_bytes: &[u8]) -> bool {
    frame_kind(first_bytes).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::seekidx::testutil::*;

    fn zst(data: &[u8], level: i32, checksum: bool) -> Vec<u8> {
        let mut e = zstd::stream::Encoder::new(Vec::new(), level).unwrap();
        e.include_checksum(checksum).unwrap();
        e.include_contentsize(true).unwrap();
        e.set_pledged_src_size(Some(data.len() as u64)).unwrap();
        io::Write::write_all(&mut e, data).unwrap();
        e.finish().unwrap()
    }

    /// Several frames of varied sizes (some empty), one skippable frame in the middle.
    fn multi(seed: u64) -> (Vec<u8>, Vec<u8>) {
        let sizes = [700_000usize, 0, 1_500_000, 1000, 300_000, 2_000_000, 5, 900_000];
        let mut data = Vec::new();
        let mut z = Vec::new();
        for (i, &n) in sizes.iter().enumerate() {
            let d = mixed(seed + i as u64, n);
            z.extend(zst(&d, [1, 3, 19][i % 3], i % 2 == 0));
            if i == 3 {
                z.extend_from_slice(&0x184D_2A5Au32.to_le_bytes());
                z.extend_from_slice(&6u32.to_le_bytes());
                z.extend_from_slice(b"skipme");
            }
            data.extend(d);
        }
        (data, z)
    }

    fn index_with(z: &[u8], spacing: u64, seed: u64) -> (Vec<u8>, ZstdIndex, Option<io::Error>) {
        run_pass(ZstdIndexer::new(z, spacing), seed)
    }

    fn index_ok(z: &[u8], spacing: u64) -> ZstdIndex {
        expect_ok(index_with(z, spacing, spacing))
    }

    #[test]
    fn multi_frame_random_access() {
        let (data, z) = multi(1);
        for spacing in [1u64, 64 << 10, 1 << 20, 1 << 30] {
            let idx = index_ok(&z, spacing);
            if spacing == 1 {
                assert_eq!(idx.points().len(), 7, "{:?}", idx.points()); // empty frames merge
            }
            for w in idx.points().windows(2) {
                assert!(w[1].out - w[0].out >= spacing.min(5));
            }
            check(&data, &z, &idx, spacing, 40);
            assert_eq!(idx.warnings().len(), 1, "{:?}", idx.warnings()); // unchecked frames
        }
    }

    #[test]
    fn cli_multi_frame_and_single_frame() {
        let data = mixed(3, 3 << 20);
        // Single frame (zstd tool, checksum on by default): one point.
        let z = tool("zstd", &["-q", "-3", "-c"], &data);
        let idx = index_ok(&z, 1 << 16);
        assert_eq!(idx.points().len(), 1);
        assert!(idx.warnings().is_empty(), "{:?}", idx.warnings());
        check(&data, &z, &idx, 5, 10);
        // Concatenated CLI outputs.
        let mut z2 = z.clone();
        z2.extend(tool("zstd", &["-q", "-19", "-c"], &data[..100_000]));
        let mut d2 = data.clone();
        d2.extend_from_slice(&data[..100_000]);
        let idx = index_ok(&z2, 1 << 16);
        assert_eq!(idx.points().len(), 2);
        check(&d2, &z2, &idx, 6, 10);
    }

    #[test]
    fn serialization_roundtrip_and_damage() {
        let (data, z) = multi(2);
        let idx = index_ok(&z, 100_000);
        let b = table_of(&idx);
        let back = load::<Zstd>(&b).unwrap();
        assert_eq!(table_of(&back), b);
        assert_eq!(back.points(), idx.points());
        check(&data, &z, &back, 3, 10);
        damage_rejected(&b, load::<Zstd>);
        assert!(idx.memory_bytes() >= idx.points().len() * 16);
    }

    #[test]
    fn a_damaged_block_header_that_runs_into_the_end_is_not_trusted() {
        // Compressible data: compressed blocks. The second block's header is rewritten into a
        // raw block running past the (cut) end: libzstd hands out the compressed bytes as data.
        let data = mixed(7, 400_000);
        let z = zst(&data, 3, true);
        let mut b = Blocks::default();
        b.start_frame(true);
        let mut header_len = 0;
        while !matches!(b.state, BState::BlockHeader { .. }) {
            b.feed(&z[header_len..header_len + 1], 0);
            header_len += 1;
        }
        let first = u32::from_le_bytes([z[header_len], z[header_len + 1], z[header_len + 2], 0]);
        assert_eq!((first >> 1) & 3, 2, "the first block is compressed");
        let second = header_len + 3 + (first >> 3) as usize;
        let mut c = z[..second + 3 + 1000].to_vec();
        c[second..second + 3].copy_from_slice(&(5000u32 << 3).to_le_bytes()[..3]);
        let (out, idx, err) = index_with(&c, 1 << 16, 3);
        assert_eq!(err.expect("cut short").kind(), io::ErrorKind::UnexpectedEof);
        assert!(out.len() as u64 > idx.uncompressed_len(), "the garbage block was decoded");
        let n = idx.uncompressed_len() as usize;
        assert!(n > 0 && out[..n] == data[..n], "only the intact first block is trusted ({n} bytes)");
    }

    #[test]
    fn corrupt_and_truncated_inputs_fail_loudly() {
        let data = mixed(4, 1 << 20);
        let z = zst(&data, 3, true);
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(4);
        for _ in 0..100 {
            let mut c = z.clone();
            let i = rand::Rng::random_range(&mut rng, 0..c.len());
            c[i] ^= 1 << rand::Rng::random_range(&mut rng, 0..8);
            let (out, idx, err) = index_with(&c, 1 << 16, i as u64);
            match err {
                Some(e) => {
                    assert!(matches!(e.kind(), io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof), "{e}");
                    assert!(e.to_string().contains("offset"), "{e}");
                    assert_eq!(idx.verified_len(), 0);
                    assert!(idx.uncompressed_len() <= out.len() as u64);
                    if e.kind() == io::ErrorKind::UnexpectedEof {
                        // An "early end" is trusted up to the index's length: those bytes must
                        // be right, even when a flipped block header caused the early end.
                        let n = idx.uncompressed_len() as usize;
                        assert!(out[..n] == data[..n], "flip at {i}: wrong bytes trusted");
                    }
                }
                None => assert!(out == data, "flip at {i} gave wrong bytes without an error"),
            }
        }
        for n in [0, 1, 3, 4, 5, 10, z.len() / 2, z.len() - 4, z.len() - 1] {
            let (out, idx, err) = index_with(&z[..n], 1 << 16, n as u64);
            let e = err.expect("truncation must fail");
            assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "{n}: {e}");
            assert!(data.starts_with(&out));
            let mut v = Vec::new();
            idx.reader_at(src(&z[..n]), 0).unwrap().read_to_end(&mut v).unwrap();
            assert!(v == out[..idx.uncompressed_len() as usize]);
        }
        // Truncated second frame: the first stays verified.
        let mut two = z.clone();
        let z2 = zst(&data, 1, true);
        two.extend_from_slice(&z2[..z2.len() / 2]);
        let (out, idx, err) = index_with(&two, 1 << 16, 8);
        assert_eq!(err.unwrap().kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(idx.verified_len(), data.len() as u64);
        assert!(out.len() >= data.len());
        // Not zstd at all; garbage and padding after the data.
        let (_, _, err) = index_with(b"BZh91AY&SY not zstd", 1 << 16, 1);
        assert_eq!(err.unwrap().kind(), io::ErrorKind::InvalidData);
        let mut p = z.clone();
        p.extend_from_slice(&[0u8; 100]);
        let idx = index_ok(&p, 1 << 16);
        assert!(idx.warnings().is_empty());
        assert_eq!(idx.compressed_len(), z.len() as u64);
        p.extend_from_slice(b"junk");
        let idx = index_ok(&p, 1 << 16);
        assert_eq!(idx.warnings().len(), 1);
        let e = idx.read_span(src(&p), 0, 10).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::OutOfMemory);
        // Bad content checksum (last 4 bytes): all data is yielded, then the error.
        let mut c = z.clone();
        let n = c.len();
        c[n - 1] ^= 1;
        let (out, idx, err) = index_with(&c, 1 << 16, 9);
        let e = err.unwrap();
        assert!(e.to_string().contains("checksum"), "{e}");
        assert_eq!(idx.verified_len(), 0);
        let mut v = Vec::new();
        // Reading the frame to its end meets the bad checksum again (the indexer now steps one
        // block at a time, so it yields the last block before the checksum fails).
        let r = idx.reader_at(src(&c), 0).unwrap().read_to_end(&mut v);
        assert!(out.starts_with(&v));
        if let Err(e) = r {
            assert!(e.to_string().contains("checksum"), "{e}");
        }
    }

    #[test]
    fn reader_is_send() {
        fn send<T: Send>() {}
        send::<ZstdReader>();
        send::<ZstdIndexer<std::fs::File>>();
        assert!(looks_like_zstd(&zst(b"x", 1, false)));
        assert!(looks_like_zstd(&[0x5E, 0x2A, 0x4D, 0x18]));
        assert!(!looks_like_zstd(b"\x28\xb5\x2f"));
        assert!(!looks_like_zstd(b"BZh9"));
    }

    #[test]
    fn conformance_files_match_zstd() {
        let mut seen = 0;
        for f in [
            "libarchive/test_compat_zstd_1.tar.zst",
            "libarchive/test_compat_zstd_2.tar.zst",
            "libarchive/test_extract.tar.zst",
        ] {
            let Some(p) = conformance(f) else { continue };
            seen += 1;
            let z = std::fs::read(&p).unwrap();
            let want = tool_dc("zstd", &p);
            let s: Arc<dyn ByteSource> = Arc::new(crate::archive::FileSource::open(&p).unwrap());
            for spacing in [1u64, 1 << 20] {
                let mut ix = ZstdIndexer::new(&z[..], spacing);
                let mut out = Vec::new();
                ix.read_to_end(&mut out).unwrap_or_else(|e| panic!("{f}: {e}"));
                let idx = ix.finish().unwrap();
                assert!(out == want, "{f}: differs from zstd -dc");
                check_whole(&idx, &s, &out, f);
            }
        }
        assert!(seen > 0);
    }

    /// The 9 GiB sparse-file archive: indexing streams (bounded memory); checks its first 100 MB.
    #[test]
    fn huge_single_frame_streams() {
        let Some(p) = conformance("ratarmount/sparse-file-larger-than-8GiB-followed-by-normal-file.tar.zst") else {
            return;
        };
        let f = std::fs::File::open(&p).unwrap();
        let mut ix = ZstdIndexer::new(f, 1 << 20);
        let mut buf = vec![0u8; 1 << 20];
        let mut got = 0u64;
        let mut h = crc32fast::Hasher::new();
        while got < 100_000_000 {
            let n = ix.read(&mut buf).unwrap();
            assert!(n > 0);
            h.update(&buf[..n]);
            got += n as u64;
        }
        let o = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("zstd -dc '{}' | head -c {got}", p.display()))
            .output()
            .expect("sh");
        assert_eq!(o.stdout.len() as u64, got, "`zstd -dc` gave too few bytes: install the `zstd` package");
        assert_eq!(h.finalize(), crc32fast::hash(&o.stdout));
        assert!(ix.compressed_pos() < std::fs::metadata(&p).unwrap().len() + 1);
    }
}
