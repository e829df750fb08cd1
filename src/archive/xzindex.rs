//! Random access into xz streams: one indexing pass records a seek point at xz block starts (at
//! least `spacing` uncompressed bytes apart), after which any byte range of the decompressed
//! stream is read by decoding from the nearest block start.
//!
//! xz blocks are independent: each restarts the LZMA2 dictionary. Multi-block files (`xz -T0`,
//! `xz --block-size`, pixz, pxz) are therefore randomly accessible per block. A plain
//! single-threaded `xz` file is a single block, so its only seek point is 0 and a read anywhere
//! decodes from the start of the stream (a warning in [`XzIndex::warnings`] says so when that
//! span is long; `read_span` refuses it above the caller's cap, after which the caller streams
//! with `reader_at`, or, with the disk cache on, `stream.rs` keeps the span's decoded 1 MiB
//! blocks on disk so it is decoded once). Seeking inside an LZMA2 block would need the whole dictionary (up to
//! 64 MiB at `-9`) saved per point, which this module does not do.
//!
//! The container (stream header, block headers, block padding, checks, index, stream footer,
//! stream padding) is parsed here; block data is decoded with lzma-rust2's raw LZMA2 decoder,
//! optionally behind one Delta or BCJ filter (the chains `xz` produces). The indexing pass
//! ([`XzIndexer`]) verifies each block's check (CRC32, CRC64 or SHA-256; other check IDs are
//! skipped with a warning, as `xz` does), the header CRCs, the declared sizes and the stream
//! index against the blocks actually seen. Concatenated streams form one output; zero stream
//! padding is accepted silently; other trailing bytes give a warning. Readers verify the check
//! of every block they decode to its end.

use std::fmt;
use std::io::{self, Read};
use std::sync::Arc;

use lzma_rust2::Lzma2Reader;
use lzma_rust2::filter::bcj::BcjReader;
use lzma_rust2::filter::delta::DeltaReader;
use sha2::Digest;

use serde::{Deserialize, Serialize};

use crate::archive::gzindex::WindowSource;
use crate::archive::seekidx::{
    Decode, Feed, Index, IndexStep, Input, Pass, Point, Progress, ReadFeed, SeekCodec, SourceFeed, SpanReader, Table,
    eof, invalid, long_span_warning, push_spaced,
};
use crate::archive::{ByteSource, FormatError};

const INDEX_IN_CHUNK: usize = 1 << 20;
const READER_IN_CHUNK: usize = 128 * 1024;
/// Largest slice handed to the LZMA2 decoder at once: output decoded before an error in the same
/// call is lost, so this bounds how many good bytes an error can swallow.
const DECODE_STEP: usize = 64 * 1024;

const XZ_MAGIC: [u8; 6] = [0xFD, b'7', b'z', b'X', b'Z', 0];
const FOOTER_MAGIC: [u8; 2] = *b"YZ";

/// Size in bytes of the check field for each check ID.
const CHECK_SIZE: [usize; 16] = [0, 4, 4, 4, 8, 8, 8, 16, 16, 16, 32, 32, 32, 64, 64, 64];

// ---------------------------------------------------------------------------------------------
// Checks.

const CRC64_TABLE: [u64; 256] = {
    let mut t = [0u64; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u64;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ 0xC96C_5795_D787_0F42 } else { c >> 1 };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};

enum Check {
    None,
    Crc32(crc32fast::Hasher),
    Crc64(u64),
    Sha256(Box<sha2::Sha256>),
    /// A check ID this module cannot compute: the field is skipped.
    Unknown,
}

impl Check {
    fn new(id: u8) -> Check {
        match id {
            0 => Check::None,
            1 => Check::Crc32(crc32fast::Hasher::new()),
            4 => Check::Crc64(!0),
            10 => Check::Sha256(Box::default()),
            _ => Check::Unknown,
        }
    }
    fn update(&mut self, b: &[u8]) {
        match self {
            Check::Crc32(h) => h.update(b),
            Check::Crc64(c) => {
                let mut x = *c;
                for &byte in b {
                    x = CRC64_TABLE[((x ^ byte as u64) & 0xFF) as usize] ^ (x >> 8);
                }
                *c = x;
            }
            Check::Sha256(h) => h.update(b),
            Check::None | Check::Unknown => {}
        }
    }
    /// The expected field bytes, or `None` when it cannot be computed.
    fn finish(self) -> Option<Vec<u8>> {
        match self {
            Check::None => Some(Vec::new()),
            Check::Crc32(h) => Some(h.finalize().to_le_bytes().to_vec()),
            Check::Crc64(c) => Some((!c).to_le_bytes().to_vec()),
            Check::Sha256(h) => Some(h.finalize().to_vec()),
            Check::Unknown => None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Block headers and the filter chain.

/// Parses a multibyte integer (xz "VLI") from `b` at `*pos`.
fn vli(b: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for i in 0..9 {
        let byte = *b.get(*pos)?;
        *pos += 1;
        v |= ((byte & 0x7F) as u64) << (7 * i);
        if byte & 0x80 == 0 {
            if byte == 0 && i > 0 {
                return None; // not minimally encoded
            }
            return Some(v);
        }
    }
    None
}

#[derive(Clone, Copy, Debug)]
enum PreFilter {
    Delta(usize),
    Bcj(u64, usize),
}

struct BlockHeader {
    size: u64,
    compressed: Option<u64>,
    uncompressed: Option<u64>,
    dict: u32,
    pre: Option<PreFilter>,
}

fn parse_block_header(h: &[u8], at: u64) -> io::Result<BlockHeader> {
    let bad = |why: &str| invalid(format!("corrupt xz block header at compressed offset {at}: {why}"));
    let n = h.len();
    if crc32fast::hash(&h[..n - 4]) != u32::from_le_bytes(h[n - 4..].try_into().unwrap()) {
        return Err(bad("CRC32 mismatch"));
    }
    let flags = h[1];
    if flags & 0x3C != 0 {
        return Err(bad("reserved flags set"));
    }
    let body = &h[..n - 4];
    let mut pos = 2;
    let compressed = if flags & 0x40 != 0 {
        Some(vli(body, &mut pos).filter(|&v| v > 0).ok_or_else(|| bad("bad compressed size"))?)
    } else {
        None
    };
    let uncompressed =
        if flags & 0x80 != 0 { Some(vli(body, &mut pos).ok_or_else(|| bad("bad uncompressed size"))?) } else { None };
    let nfilters = (flags & 3) as usize + 1;
    let mut pre = None;
    let mut dict = None;
    for k in 0..nfilters {
        let id = vli(body, &mut pos).ok_or_else(|| bad("bad filter ID"))?;
        let psize = vli(body, &mut pos).ok_or_else(|| bad("bad filter properties size"))? as usize;
        let props = body
            .get(pos..pos.checked_add(psize).ok_or_else(|| bad("bad filter properties"))?)
            .ok_or_else(|| bad("bad filter properties"))?;
        pos += psize;
        let last = k + 1 == nfilters;
        match (id, last) {
            (0x21, true) => {
                if psize != 1 || props[0] > 40 {
                    return Err(bad("bad LZMA2 properties"));
                }
                let d = props[0] as u32;
                dict = Some(if d == 40 { u32::MAX } else { (2 | (d & 1)) << (d / 2 + 11) });
            }
            (0x03, false) if psize == 1 && pre.is_none() => pre = Some(PreFilter::Delta(props[0] as usize + 1)),
            (0x04..=0x0B, false) if (psize == 0 || psize == 4) && pre.is_none() => {
                let start = if psize == 4 { u32::from_le_bytes(props.try_into().unwrap()) as usize } else { 0 };
                pre = Some(PreFilter::Bcj(id, start));
            }
            _ => {
                return Err(invalid(format!(
                    "unsupported xz filter chain in the block at compressed offset {at} (filter {id:#x}; \
                     supported: LZMA2, optionally after one Delta or BCJ filter)"
                )));
            }
        }
    }
    if body[pos..].iter().any(|&b| b != 0) {
        return Err(bad("non-zero header padding"));
    }
    Ok(BlockHeader { size: n as u64, compressed, uncompressed, dict: dict.unwrap(), pre })
}

/// The block decoder; it owns the compressed input while a block is being decoded.
enum Chain<F: Feed> {
    Plain(Lzma2Reader<Input<F>>),
    Delta(DeltaReader<Lzma2Reader<Input<F>>>),
    Bcj(BcjReader<Lzma2Reader<Input<F>>>),
}

impl<F: Feed> Chain<F> {
    fn new(input: Input<F>, h: &BlockHeader) -> Chain<F> {
        let lz = Lzma2Reader::new(input, h.dict, None);
        match h.pre {
            None => Chain::Plain(lz),
            Some(PreFilter::Delta(d)) => Chain::Delta(DeltaReader::new(lz, d)),
            Some(PreFilter::Bcj(id, s)) => Chain::Bcj(match id {
                0x04 => BcjReader::new_x86(lz, s),
                0x05 => BcjReader::new_ppc(lz, s),
                0x06 => BcjReader::new_ia64(lz, s),
                0x07 => BcjReader::new_arm(lz, s),
                0x08 => BcjReader::new_arm_thumb(lz, s),
                0x09 => BcjReader::new_sparc(lz, s),
                0x0A => BcjReader::new_arm64(lz, s),
                _ => BcjReader::new_riscv(lz, s),
            }),
        }
    }
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        match self {
            Chain::Plain(r) => r.read(out),
            Chain::Delta(r) => r.read(out),
            Chain::Bcj(r) => r.read(out),
        }
    }
    fn input(&self) -> &Input<F> {
        match self {
            Chain::Plain(r) => r.inner(),
            Chain::Delta(r) => r.inner().inner(),
            Chain::Bcj(r) => r.inner().inner(),
        }
    }
    fn into_input(self) -> Input<F> {
        match self {
            Chain::Plain(r) => r.into_inner(),
            Chain::Delta(r) => r.into_inner().into_inner(),
            Chain::Bcj(r) => r.into_inner().into_inner(),
        }
    }
}

enum Src<F: Feed> {
    Free(Input<F>),
    Block(Box<Chain<F>>),
    Gone,
}

// ---------------------------------------------------------------------------------------------
// The container decoder shared by the indexing pass and readers.

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum St {
    StreamHeader {
        first: bool,
    },
    /// A block header or the index indicator.
    BlockHeader,
    Block,
    /// After the stream footer: padding, another stream, garbage or the end.
    AfterStream,
    Done,
}

struct BlockState {
    start: u64,
    header: BlockHeader,
    data_start: u64,
    out: u64,
    check: Check,
}

struct Core<F: Feed> {
    src: Src<F>,
    st: St,
    check_id: u8,
    stream_flags: [u8; 2],
    stream_start: u64,
    block: Option<BlockState>,
    /// (unpadded size, uncompressed size) of this stream's blocks, or `None` when decoding began
    /// mid-stream (readers), where the index cannot be compared.
    records: Option<Vec<(u64, u64)>>,
    out_total: u64,
    verified_len: u64,
    compressed_end: u64,
    warned_unknown_check: bool,
    warnings: Vec<String>,
    /// Prefix for messages ("" in the indexing pass, "file: " in readers).
    who: String,
}

impl<F: Feed> Core<F> {
    fn input(&mut self) -> &mut Input<F> {
        match &mut self.src {
            Src::Free(i) => i,
            _ => unreachable!("xz input is owned by the block decoder"),
        }
    }

    fn pos(&self) -> u64 {
        match &self.src {
            Src::Free(i) => i.pos(),
            Src::Block(c) => c.input().pos(),
            Src::Gone => 0,
        }
    }

    fn read_exact_or(&mut self, buf: &mut [u8], what: &str) -> io::Result<()> {
        let at = self.pos();
        if self.input().exact(buf)?.is_none() {
            return Err(eof(format!("{}xz stream truncated in the {what} at compressed offset {at}", self.who)));
        }
        Ok(())
    }

    fn stream_header(&mut self, _first: bool) -> io::Result<()> {
        let at = self.pos();
        let input = self.input();
        input.ensure(12)?;
        let a = input.avail();
        let k = a.len().min(6);
        if a[..k] != XZ_MAGIC[..k] {
            return Err(invalid(format!("{}not an xz stream: no xz magic at compressed offset {at}", self.who)));
        }
        let mut h = [0u8; 12];
        self.read_exact_or(&mut h, "stream header")?;
        if h[..6] != XZ_MAGIC {
            return Err(invalid(format!("{}not an xz stream: no xz magic at compressed offset {at}", self.who)));
        }
        if crc32fast::hash(&h[6..8]) != u32::from_le_bytes(h[8..12].try_into().unwrap()) || h[6] != 0 || h[7] > 15 {
            return Err(invalid(format!("{}corrupt xz stream header at compressed offset {at}", self.who)));
        }
        self.stream_flags = [h[6], h[7]];
        self.check_id = h[7];
        self.stream_start = at;
        if self.records.is_some() {
            self.records = Some(Vec::new());
        }
        self.note_check();
        self.st = St::BlockHeader;
        Ok(())
    }

    fn note_check(&mut self) {
        if matches!(Check::new(self.check_id), Check::Unknown) && !self.warned_unknown_check {
            self.warned_unknown_check = true;
            self.warnings.push(format!("xz check type {} is not supported: block data is not verified", self.check_id));
        }
    }

    /// Parses a block header and starts its decoder, or, at the index indicator, the rest of
    /// the stream (index, footer). Returns the block start when a block began.
    fn block_header(&mut self) -> io::Result<Option<u64>> {
        let at = self.pos();
        let mut first = [0u8; 1];
        self.read_exact_or(&mut first, "block header")?;
        if first[0] == 0 {
            self.index_and_footer(at)?;
            return Ok(None);
        }
        let size = (first[0] as usize + 1) * 4;
        let mut h = vec![0u8; size];
        h[0] = first[0];
        self.read_exact_or(&mut h[1..], "block header")?;
        let header = parse_block_header(&h, at).map_err(|e| invalid(format!("{}{e}", self.who)))?;
        let data_start = self.pos();
        let Src::Free(input) = std::mem::replace(&mut self.src, Src::Gone) else { unreachable!() };
        self.src = Src::Block(Box::new(Chain::new(input, &header)));
        self.block = Some(BlockState { start: at, header, data_start, out: 0, check: Check::new(self.check_id) });
        self.st = St::Block;
        Ok(Some(at))
    }

    /// Decodes block data into `out` (at most one decoder call). 0 means the block ended (its
    /// padding and check were then verified).
    fn block_data(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = out.len().min(DECODE_STEP);
        let Src::Block(chain) = &mut self.src else { unreachable!() };
        let b = self.block.as_mut().unwrap();
        let r = chain.read(&mut out[..n]);
        let made = match r {
            Ok(m) => m,
            Err(e) => {
                let at = chain.input().pos();
                let start = b.start;
                return Err(if e.kind() == io::ErrorKind::UnexpectedEof {
                    eof(format!(
                        "{}xz stream truncated at compressed offset {at} (block starting at compressed offset {start})",
                        self.who
                    ))
                } else if e.kind() == io::ErrorKind::OutOfMemory {
                    e
                } else {
                    invalid(format!(
                        "{}corrupt xz data near compressed offset {at} (block starting at compressed offset {start}): {e}",
                        self.who
                    ))
                });
            }
        };
        b.check.update(&out[..made]);
        b.out += made as u64;
        self.out_total += made as u64;
        if let Some(u) = b.header.uncompressed
            && b.out > u
        {
            return Err(invalid(format!(
                "{}xz block at compressed offset {} decodes to more than its declared {u} bytes",
                self.who, b.start
            )));
        }
        if made > 0 {
            return Ok(made);
        }
        self.end_block()?;
        Ok(0)
    }

    fn end_block(&mut self) -> io::Result<()> {
        let Src::Block(chain) = std::mem::replace(&mut self.src, Src::Gone) else { unreachable!() };
        self.src = Src::Free(chain.into_input());
        let b = self.block.take().unwrap();
        let data_end = self.pos();
        let compressed = data_end - b.data_start;
        let who = self.who.clone();
        let bad = |why: String| invalid(format!("{who}xz block at compressed offset {}: {why}", b.start));
        if b.header.compressed.is_some_and(|c| c != compressed) {
            return Err(bad(format!(
                "compressed size {compressed} differs from the header's {:?}",
                b.header.compressed
            )));
        }
        if b.header.uncompressed.is_some_and(|u| u != b.out) {
            return Err(bad(format!(
                "uncompressed size {} differs from the header's {:?}",
                b.out, b.header.uncompressed
            )));
        }
        let unpadded_nocheck = b.header.size + compressed;
        let pad = ((4 - unpadded_nocheck % 4) % 4) as usize;
        let mut p = [0u8; 3];
        self.read_exact_or(&mut p[..pad], "block padding")?;
        if p.iter().any(|&x| x != 0) {
            return Err(bad("non-zero block padding".into()));
        }
        let csize = CHECK_SIZE[self.check_id as usize];
        let mut stored = vec![0u8; csize];
        self.read_exact_or(&mut stored, "block check")?;
        if let Some(want) = b.check.finish()
            && want != stored
        {
            return Err(bad(format!("check mismatch (check type {}): data is corrupt", self.check_id)));
        }
        if let Some(r) = &mut self.records {
            r.push((unpadded_nocheck + csize as u64, b.out));
        }
        self.verified_len = self.out_total;
        self.st = St::BlockHeader;
        Ok(())
    }

    /// Parses the index (its indicator byte at `at` already read) and the stream footer.
    fn index_and_footer(&mut self, at: u64) -> io::Result<()> {
        let who = self.who.clone();
        let bad = |why: &str| invalid(format!("{who}corrupt xz index at compressed offset {at}: {why}"));
        let mut crc = crc32fast::Hasher::new();
        crc.update(&[0]);
        // Read VLIs byte by byte, hashing as we go.
        let read_vli = |this: &mut Self, crc: &mut crc32fast::Hasher| -> io::Result<u64> {
            let mut bytes = Vec::with_capacity(9);
            loop {
                let mut b = [0u8; 1];
                this.read_exact_or(&mut b, "index")?;
                crc.update(&b);
                bytes.push(b[0]);
                if b[0] & 0x80 == 0 || bytes.len() == 9 {
                    break;
                }
            }
            let mut pos = 0;
            vli(&bytes, &mut pos).ok_or_else(|| bad("bad integer"))
        };
        let count = read_vli(self, &mut crc)?;
        let mut records = Vec::new();
        for _ in 0..count {
            let unpadded = read_vli(self, &mut crc)?;
            let uncompressed = read_vli(self, &mut crc)?;
            if let Some(seen) = &self.records {
                if records.len() >= seen.len() {
                    return Err(bad("more records than blocks"));
                }
            } else if records.len() > 1 << 20 {
                records.clear(); // readers do not compare: bound memory
            }
            records.push((unpadded, uncompressed));
        }
        let size_so_far = self.pos() - at;
        let pad = ((4 - size_so_far % 4) % 4) as usize;
        let mut p = [0u8; 3];
        self.read_exact_or(&mut p[..pad], "index")?;
        crc.update(&p[..pad]);
        if p.iter().any(|&x| x != 0) {
            return Err(bad("non-zero padding"));
        }
        let mut c = [0u8; 4];
        self.read_exact_or(&mut c, "index")?;
        if crc.finalize() != u32::from_le_bytes(c) {
            return Err(bad("CRC32 mismatch"));
        }
        if let Some(seen) = &self.records
            && *seen != records
        {
            return Err(bad("the index does not match the blocks"));
        }
        let index_size = self.pos() - at;
        let fat = self.pos();
        let mut f = [0u8; 12];
        self.read_exact_or(&mut f, "stream footer")?;
        let ok = f[10..12] == FOOTER_MAGIC
            && crc32fast::hash(&f[4..10]) == u32::from_le_bytes(f[..4].try_into().unwrap())
            && (u32::from_le_bytes(f[4..8].try_into().unwrap()) as u64 + 1) * 4 == index_size
            && f[8..10] == self.stream_flags;
        if !ok {
            return Err(invalid(format!("{}corrupt xz stream footer at compressed offset {fat}", self.who)));
        }
        self.compressed_end = self.pos();
        self.st = St::AfterStream;
        Ok(())
    }

    fn after_stream(&mut self) -> io::Result<()> {
        let end = self.compressed_end;
        let input = self.input();
        if !input.fill()? {
            self.st = St::Done;
            return Ok(());
        }
        input.ensure(6)?;
        if input.avail().starts_with(&XZ_MAGIC) {
            self.st = St::StreamHeader { first: false };
            return Ok(());
        }
        // Stream padding (zeros, a multiple of 4 in valid files) possibly followed by a stream.
        let mut zeros = 0u64;
        loop {
            if !input.fill()? {
                if !zeros.is_multiple_of(4) {
                    let w = format!(
                        "xz stream padding of {zeros} bytes after compressed offset {end} is not a multiple of 4"
                    );
                    self.warnings.push(w);
                }
                self.st = St::Done;
                return Ok(());
            }
            let a = input.avail();
            match a.iter().position(|&b| b != 0) {
                Some(i) => {
                    zeros += i as u64;
                    input.consume(i);
                    break;
                }
                None => {
                    zeros += a.len() as u64;
                    let n = a.len();
                    input.consume(n);
                }
            }
        }
        input.ensure(6)?;
        if input.avail().starts_with(&XZ_MAGIC) && zeros.is_multiple_of(4) {
            self.st = St::StreamHeader { first: false };
            return Ok(());
        }
        let w = format!(
            "ignoring trailing garbage after the xz data at compressed offset {} (data ends at {end})",
            input.pos()
        );
        tracing::warn!("{w}");
        self.warnings.push(w);
        self.st = St::Done;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// The index.

/// An xz block start: decoding can begin here with a fresh LZMA2 decoder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeekPoint {
    /// Offset in the decompressed stream.
    pub out: u64,
    /// Compressed offset of the block header.
    pub input: u64,
    /// Check ID of the stream containing the block.
    pub check: u8,
}

impl Point for SeekPoint {
    fn out(&self) -> u64 {
        self.out
    }
}

/// The xz codec of the shared seek index.
#[derive(Debug)]
pub struct Xz;

/// Seek points into one xz file (all streams). Its warnings name trailing garbage, an
/// unsupported check type and a long span without seek point.
pub type XzIndex = Index<Xz>;

/// Sequential decompressed bytes from some offset of an indexed xz file; can be moved to any
/// thread. Every block decoded to its end has its check verified.
pub type XzReader = SpanReader<XzDecoder>;

/// Streams an xz file once: `Read` yields the decompressed bytes (across blocks and streams)
/// while seek points are recorded at block starts at least `spacing` uncompressed bytes apart
/// and every check, size and index is verified (see [`Pass`]; a failing decoder call may lose
/// the last 64 KiB it decoded).
pub type XzIndexer<R> = Pass<XzStep<R>>;

impl SeekCodec for Xz {
    const NAME: &'static str = "xz";
    const SUFFIXES: &'static [&'static str] = &[".xz", ".XZ"];
    const SPACING: u64 = 1 << 20;
    type Point = SeekPoint;
    type Extra = ();
    type Decoder = XzDecoder;

    fn looks_like(head: &[u8]) -> bool {
        looks_like_xz(head)
    }

    fn start(index: &XzIndex, src: Arc<dyn ByteSource>, i: usize, _remaining: u64) -> io::Result<XzDecoder> {
        let p = index.points()[i];
        let input = Input::new(SourceFeed { src: src.clone(), pos: p.input }, READER_IN_CHUNK, p.input);
        Ok(XzDecoder {
            core: Core {
                src: Src::Free(input),
                // An empty stream has its point at the stream header, not at a block.
                st: if p.check == NO_BLOCK { St::StreamHeader { first: false } } else { St::BlockHeader },
                check_id: p.check & 15,
                stream_flags: [0, p.check & 15],
                stream_start: 0,
                block: None,
                records: None,
                out_total: p.out,
                verified_len: 0,
                compressed_end: 0,
                warned_unknown_check: true,
                warnings: Vec::new(),
                who: format!("{}: ", src.describe()),
            },
        })
    }

    /// The dictionary (of which a decoder touches at most what it decoded since its seek point)
    /// plus buffers.
    fn decoder_bytes(decoded: usize) -> usize {
        (512usize << 10).saturating_add(decoded)
    }

    fn to_parts(index: &XzIndex) -> io::Result<(Vec<u8>, Vec<u8>)> {
        Ok((index.table.encode()?, Vec::new()))
    }

    fn from_parts(table: &[u8], _windows: WindowSource) -> Result<XzIndex, FormatError> {
        let t = Table::decode(table, "xz", |t, p: &SeekPoint, prev| {
            p.input <= t.compressed_len
                && (p.check <= 15 || p.check == NO_BLOCK)
                && prev.is_none_or(|q| p.input > q.input)
        })?;
        Ok(Index::new(t, Vec::new(), ()))
    }
}

/// `SeekPoint::check` of the placeholder point of a file with no block at all (decoding starts
/// at a stream header).
const NO_BLOCK: u8 = 0xFF;

// ---------------------------------------------------------------------------------------------
// Random-access reader.

/// The container decoder running from a block start.
pub struct XzDecoder {
    core: Core<SourceFeed>,
}

impl fmt::Debug for XzDecoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("XzDecoder").field("compressed_pos", &self.core.pos()).finish()
    }
}

impl Decode for XzDecoder {
    fn decode_some(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            let c = &mut self.core;
            match c.st {
                St::StreamHeader { first } => c.stream_header(first)?,
                St::BlockHeader => {
                    c.block_header()?;
                }
                St::Block => {
                    let n = c.block_data(out)?;
                    if n > 0 {
                        return Ok(n);
                    }
                }
                St::AfterStream => c.after_stream()?,
                St::Done => {
                    return Err(eof(format!(
                        "{}xz data ends early at compressed offset {} (file changed since it was indexed?)",
                        c.who,
                        c.pos()
                    )));
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Indexing pass.

/// The xz step of an indexing pass ([`XzIndexer`]).
pub struct XzStep<R: Read> {
    core: Core<ReadFeed<R>>,
    spacing: u64,
    points: Vec<SeekPoint>,
}

impl<R: Read> XzIndexer<R> {
    /// Wraps `inner` (positioned at the first stream header); `spacing` is the wanted minimum
    /// distance between seek points in uncompressed bytes (at least 1).
    pub fn new(inner: R, spacing: u64) -> Self {
        Pass::over(XzStep {
            core: Core {
                src: Src::Free(Input::new(ReadFeed(inner), INDEX_IN_CHUNK, 0)),
                st: St::StreamHeader { first: true },
                check_id: 0,
                stream_flags: [0, 0],
                stream_start: 0,
                block: None,
                records: Some(Vec::new()),
                out_total: 0,
                verified_len: 0,
                compressed_end: 0,
                warned_unknown_check: false,
                warnings: Vec::new(),
                who: String::new(),
            },
            spacing: spacing.max(1),
            points: Vec::new(),
        })
    }
}

impl<R: Read> IndexStep for XzStep<R> {
    type Codec = Xz;

    fn in_data(&self) -> bool {
        self.core.st == St::Block
    }

    fn advance(&mut self) -> io::Result<bool> {
        match self.core.st {
            St::Done => return Ok(false),
            St::StreamHeader { first } => self.core.stream_header(first)?,
            St::BlockHeader => {
                if let Some(at) = self.core.block_header()? {
                    let p = SeekPoint { out: self.core.out_total, input: at, check: self.core.check_id };
                    push_spaced(&mut self.points, p, self.spacing);
                }
            }
            St::AfterStream => self.core.after_stream()?,
            St::Block => {}
        }
        Ok(true)
    }

    fn decode(&mut self, out: &mut [u8]) -> (usize, Option<io::Error>) {
        let mut made = 0;
        while made < out.len() && self.core.st == St::Block {
            match self.core.block_data(&mut out[made..]) {
                Ok(0) => break,
                Ok(n) => made += n,
                Err(e) => return (made, Some(e)),
            }
        }
        (made, None)
    }

    fn last_point(&self) -> Option<u64> {
        self.points.last().map(|p| p.out)
    }

    fn progress(&self) -> Progress<'_> {
        Progress { compressed: self.core.pos(), uncompressed: self.core.out_total, warnings: &self.core.warnings }
    }

    fn into_index(mut self, failed: bool) -> XzIndex {
        if self.points.is_empty() {
            // No block at all (empty streams, or not xz): keep "point 0 at out 0".
            self.points.push(SeekPoint { out: 0, input: 0, check: NO_BLOCK });
        }
        let total = self.core.out_total;
        let mut warnings = std::mem::take(&mut self.core.warnings);
        if let Some(w) = long_span_warning(
            "xz block",
            self.points.iter().map(|p| p.out),
            total,
            self.spacing,
            "recompress with `xz -T0` or pixz for faster access",
        ) {
            warnings.push(w);
        }
        let compressed_len = if failed { self.core.pos() } else { self.core.compressed_end };
        let table = Table {
            uncompressed_len: total,
            compressed_len,
            verified_len: self.core.verified_len,
            points: self.points,
        };
        Index::new(table, warnings, ())
    }
}

/// True when `first_bytes` (at least 6) start like an xz stream.
pub fn looks_like_xz(first_bytes: &[u8]) -> bool {
    first_bytes.starts_with(&XZ_MAGIC) && first_bytes.get(6).is_none_or(|&b| b == 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::seekidx::testutil::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn xz(data: &[u8], args: &[&str]) -> Vec<u8> {
        let mut a = vec!["-c", "-q"];
        a.extend_from_slice(args);
        tool("xz", &a, data)
    }

    fn index_with(z: &[u8], spacing: u64, seed: u64) -> (Vec<u8>, XzIndex, Option<io::Error>) {
        run_pass(XzIndexer::new(z, spacing), seed)
    }

    fn index_ok(z: &[u8], spacing: u64) -> XzIndex {
        expect_ok(index_with(z, spacing, spacing))
    }

    #[test]
    fn multi_block_random_access() {
        let data = mixed(1, 5 << 20);
        for (args, min_blocks) in [
            (&["-6", "--block-size=300KiB", "-T1"][..], 17),
            (&["-1", "-T2", "--block-size=1MiB", "--check=crc32"][..], 5),
            (&["-3", "--block-size=700KiB", "--check=sha256"][..], 7),
            (&["-0", "--block-size=512KiB", "--check=none"][..], 10),
            (&["--x86", "--lzma2=preset=1", "--block-size=1MiB"][..], 5),
            (&["--delta=dist=4", "--lzma2=preset=1", "--block-size=1MiB"][..], 5),
        ] {
            let z = xz(&data, args);
            let idx = index_ok(&z, 1);
            assert!(idx.points().len() >= min_blocks, "{args:?}: {} points", idx.points().len());
            check(&data, &z, &idx, 7, 30);
            let idx2 = index_ok(&z, 2 << 20);
            assert!(idx2.points().len() < idx.points().len());
            check(&data, &z, &idx2, 8, 15);
        }
    }

    #[test]
    fn single_block_and_multi_stream() {
        let data = mixed(2, 3 << 20);
        let z1 = xz(&data, &["-6"]);
        let idx = index_ok(&z1, 1 << 16);
        assert_eq!(idx.points().len(), 1);
        check(&data, &z1, &idx, 1, 10);
        // Concatenated streams with stream padding between, an empty stream, and trailing padding.
        let b = &data[..500_000];
        let mut z = z1.clone();
        z.extend_from_slice(&[0u8; 8]);
        z.extend(xz(b"", &["-0"]));
        z.extend(xz(b, &["-9", "--block-size=100KiB", "--check=crc64"]));
        z.extend_from_slice(&[0u8; 4]);
        let mut d = data.clone();
        d.extend_from_slice(b);
        let idx = index_ok(&z, 1);
        assert!(idx.warnings().is_empty(), "{:?}", idx.warnings());
        assert_eq!(idx.points().len(), 6);
        check(&d, &z, &idx, 2, 20);
        // Garbage after the data: warning.
        z.extend_from_slice(b"junk");
        let idx = index_ok(&z, 1);
        assert_eq!(idx.warnings().len(), 1, "{:?}", idx.warnings());
        // Empty file.
        let e = xz(b"", &[]);
        let idx = index_ok(&e, 1);
        assert_eq!(idx.uncompressed_len(), 0);
        let mut v = Vec::new();
        idx.reader_at(src(&e), 0).unwrap().read_to_end(&mut v).unwrap();
        assert!(v.is_empty());
        assert!(idx.read_span(src(&e), 0, 0).unwrap().is_empty());
    }

    #[test]
    fn serialization_roundtrip_and_damage() {
        let data = mixed(3, 2 << 20);
        let z = xz(&data, &["-1", "--block-size=200KiB"]);
        let idx = index_ok(&z, 300_000);
        let b = table_of(&idx);
        let back = load::<Xz>(&b).unwrap();
        assert_eq!(table_of(&back), b);
        assert_eq!(back.points(), idx.points());
        check(&data, &z, &back, 3, 10);
        damage_rejected(&b, load::<Xz>);
        let e = idx.read_span(src(&z), 0, 10).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::OutOfMemory);
    }

    #[test]
    fn a_table_claiming_over_an_exbibyte_is_refused() {
        // uncompressed_len 2^64 - 256 (varint), compressed_len 511, verified_len 7168, one point
        // {0, 0, 0}: consistent but for the claim, which `read_at` offsets would overflow on.
        let t = [0x80, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0xff, 0x03, 0x80, 0x38, 1, 0, 0, 0];
        let e = load::<Xz>(&t).unwrap_err().to_string();
        assert!(e.contains("inconsistent lengths"), "{e}");
        // The same table claiming 16384 bytes loads.
        let small = [0x80, 0x80, 0x01, 0xff, 0x03, 0x80, 0x38, 1, 0, 0, 0];
        assert_eq!(load::<Xz>(&small).unwrap().uncompressed_len(), 16384);
    }

    #[test]
    fn corrupt_and_truncated_inputs_fail_loudly() {
        let data = mixed(4, 1 << 20);
        for args in [&["-6", "--block-size=128KiB"][..], &["-6", "--check=sha256"][..]] {
            let z = xz(&data, args);
            let mut rng = StdRng::seed_from_u64(4);
            for _ in 0..100 {
                let mut c = z.clone();
                let i = rng.random_range(0..c.len());
                c[i] ^= 1 << rng.random_range(0..8);
                let (out, idx, err) = index_with(&c, 1 << 16, i as u64);
                let e = err.unwrap_or_else(|| panic!("flip at {i} not detected"));
                assert!(matches!(e.kind(), io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof), "{e}");
                assert!(e.to_string().contains("offset"), "{e}");
                assert!(idx.verified_len() <= out.len() as u64);
                assert!(data[..idx.verified_len() as usize] == out[..idx.verified_len() as usize]);
            }
            for n in [0, 1, 6, 12, 13, 30, z.len() / 2, z.len() - 13, z.len() - 12, z.len() - 1] {
                let (out, idx, err) = index_with(&z[..n], 1 << 16, n as u64);
                let e = err.expect("truncation must fail");
                assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "{n}: {e}");
                assert!(data.starts_with(&out));
                let mut v = Vec::new();
                idx.reader_at(src(&z[..n]), 0).unwrap().read_to_end(&mut v).unwrap();
                assert!(v == out);
            }
        }
        let (_, _, err) = index_with(b"\x28\xb5\x2f\xfd not xz", 1 << 16, 1);
        assert_eq!(err.unwrap().kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn misc() {
        fn send<T: Send>() {}
        send::<XzReader>();
        send::<XzIndexer<std::fs::File>>();
        assert!(looks_like_xz(&XZ_MAGIC));
        assert!(!looks_like_xz(b"\xfd7zXZ"));
        // CRC64 known answer ("123456789" -> 0x995DC9BBDF1939FA).
        let mut c = Check::new(4);
        c.update(b"123456789");
        assert_eq!(c.finish().unwrap(), 0x995D_C9BB_DF19_39FAu64.to_le_bytes());
    }

    #[test]
    fn conformance_files_match_xz() {
        let mut seen = 0;
        for f in ["libarchive/test_compat_xz_1.txz", "libarchive/test_extract.tar.xz", "cpython/testtar.tar.xz"] {
            let Some(p) = conformance(f) else { continue };
            seen += 1;
            let z = std::fs::read(&p).unwrap();
            let want = tool_dc("xz", &p);
            let s: Arc<dyn ByteSource> = Arc::new(crate::archive::FileSource::open(&p).unwrap());
            for spacing in [1u64, 1 << 20] {
                let mut ix = XzIndexer::new(&z[..], spacing);
                let mut out = Vec::new();
                ix.read_to_end(&mut out).unwrap_or_else(|e| panic!("{f}: {e}"));
                let idx = ix.finish().unwrap();
                assert!(out == want, "{f}: differs from xz -dc");
                check_whole(&idx, &s, &out, f);
            }
        }
        assert!(seen > 0);
    }
}
