//! The seek index shared by the four codecs: buffered compressed input with absolute offsets,
//! the points table with its span lookup, readers and saved form ([`Index`], [`SeekCodec`]), and
//! the indexing-pass loop ([`Pass`], [`IndexStep`]).

use std::fmt;
use std::io::{self, Read};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::archive::gzindex::WindowSource;
use crate::archive::{ByteSource, FormatError};

pub(crate) fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

pub(crate) fn eof(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, msg)
}

/// Where compressed bytes come from.
pub(crate) trait Feed {
    fn feed(&mut self, buf: &mut [u8]) -> io::Result<usize>;
}

/// The indexing pass reads a plain `Read`.
pub(crate) struct ReadFeed<R>(pub R);

impl<R: Read> Feed for ReadFeed<R> {
    fn feed(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.0.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => return r,
            }
        }
    }
}

/// Readers fetch from a `ByteSource` at increasing offsets.
pub(crate) struct SourceFeed {
    pub src: Arc<dyn ByteSource>,
    pub pos: u64,
}

impl Feed for SourceFeed {
    fn feed(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.src.read_at(self.pos, buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
                Ok(n) => {
                    self.pos += n as u64;
                    return Ok(n);
                }
            }
        }
    }
}

/// A refillable window onto the compressed stream, tracking absolute compressed offsets.
pub(crate) struct Input<F> {
    pub feed: F,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    /// Compressed offset of `buf[0]`.
    base: u64,
    /// The feed returned 0 once: no more bytes will come.
    at_eof: bool,
}

impl<F: Feed> Input<F> {
    pub fn new(feed: F, cap: usize, base: u64) -> Self {
        Input { feed, buf: vec![0u8; cap].into_boxed_slice(), start: 0, end: 0, base, at_eof: false }
    }

    /// Bytes of the buffer (for memory accounting).
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// Compressed offset of the next unconsumed byte.
    pub fn pos(&self) -> u64 {
        self.base + self.start as u64
    }

    pub fn avail(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    pub fn consume(&mut self, n: usize) {
        debug_assert!(n <= self.end - self.start);
        self.start += n;
    }

    /// True once the feed reported its end (nothing beyond `buffered_end`).
    pub fn feed_ended(&self) -> bool {
        self.at_eof
    }

    /// Makes at least one byte available; `Ok(false)` at end of input.
    pub fn fill(&mut self) -> io::Result<bool> {
        if self.start < self.end {
            return Ok(true);
        }
        if self.at_eof {
            return Ok(false);
        }
        self.base += self.end as u64;
        self.start = 0;
        self.end = 0;
        let n = self.feed.feed(&mut self.buf)?;
        self.end = n;
        self.at_eof = n == 0;
        Ok(n > 0)
    }

    /// Makes at least `n` (<= buffer size) bytes available if the input has them; returns
    /// whether it does.
    pub fn ensure(&mut self, n: usize) -> io::Result<bool> {
        debug_assert!(n <= self.buf.len());
        if self.end - self.start >= n {
            return Ok(true);
        }
        if self.at_eof {
            return Ok(false);
        }
        self.buf.copy_within(self.start..self.end, 0);
        self.base += self.start as u64;
        self.end -= self.start;
        self.start = 0;
        while self.end < n {
            let k = self.feed.feed(&mut self.buf[self.end..])?;
            if k == 0 {
                self.at_eof = true;
                return Ok(false);
            }
            self.end += k;
        }
        Ok(true)
    }

    /// Tops the buffer up as far as it goes (or the input ends), keeping unconsumed bytes.
    pub fn top_up(&mut self) -> io::Result<()> {
        let cap = self.buf.len();
        self.ensure(cap).map(|_| ())
    }

    /// The next byte, or `None` at the end of the input.
    pub fn byte(&mut self) -> io::Result<Option<u8>> {
        if !self.fill()? {
            return Ok(None);
        }
        let b = self.avail()[0];
        self.consume(1);
        Ok(Some(b))
    }

    /// Reads exactly `out.len()` bytes, or `None` if the input ends first.
    pub fn exact(&mut self, out: &mut [u8]) -> io::Result<Option<()>> {
        let mut done = 0;
        while done < out.len() {
            if !self.fill()? {
                return Ok(None);
            }
            let a = self.avail();
            let n = a.len().min(out.len() - done);
            out[done..done + n].copy_from_slice(&a[..n]);
            self.consume(n);
            done += n;
        }
        Ok(Some(()))
    }

    /// After a format's last stream: zero bytes to the end are padding (silent); anything else is
    /// trailing garbage, returned as a warning naming both offsets. Consumes everything it looks at.
    pub fn trailing(&mut self, what: &str, data_end: u64) -> io::Result<Option<String>> {
        loop {
            if !self.fill()? {
                return Ok(None);
            }
            let a = self.avail();
            match a.iter().position(|&b| b != 0) {
                Some(i) => {
                    self.consume(i);
                    return Ok(Some(format!(
                        "ignoring trailing garbage after the {what} data at compressed offset {} (data ends at {data_end})",
                        self.pos()
                    )));
                }
                None => {
                    let n = a.len();
                    self.consume(n);
                }
            }
        }
    }
}

/// `Input` as a `Read`, for decoders that pull their input (lzma-rust2).
impl<F: Feed> Read for Input<F> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() || !self.fill()? {
            return Ok(0);
        }
        let a = self.avail();
        let n = a.len().min(out.len());
        out[..n].copy_from_slice(&a[..n]);
        self.consume(n);
        Ok(n)
    }
}

/// Largest stream length (compressed or decompressed) a loaded index may claim: 1 EiB, as tar
/// bounds sizes. Offsets add lengths (an offset plus a read size), so a table claiming `u64::MAX`
/// bytes (corrupt, with matching checksums) must be refused before anything adds to it.
pub(crate) const MAX_STREAM_LEN: u64 = 1 << 60;

/// Spans longer than this get a warning: random access inside them decodes from their start.
pub(crate) const LONG_SPAN: u64 = 64 << 20;

/// A warning for an index whose longest span makes random access slow, or `None`.
pub(crate) fn long_span_warning(
    what: &str,
    outs: impl Iterator<Item = u64>,
    total: u64,
    spacing: u64,
    hint: &str,
) -> Option<String> {
    let mut prev = None::<u64>;
    let mut worst = (0u64, 0u64);
    for o in outs.chain(std::iter::once(total)) {
        if let Some(p) = prev
            && o - p > worst.1
        {
            worst = (p, o - p);
        }
        prev = Some(o);
    }
    (worst.1 > LONG_SPAN.max(spacing.saturating_mul(4))).then(|| {
        format!(
            "{what}: {} decompressed bytes from offset {} have no seek point inside (the format \
             only allows one per {}); reads there decode from offset {}, up to {} bytes of work per \
             read, once per 1 MiB block when the disk cache is on ({hint})",
            worst.1, worst.0, what, worst.0, worst.1
        )
    })
}

// ---------------------------------------------------------------------------------------------
// The seek index every codec shares: a table of points, the span lookup, readers from a point,
// the saved form and its checks. A codec supplies only what differs, through [`SeekCodec`].

/// A place in a compressed stream where decoding can start.
pub trait Point {
    /// Its offset in the decompressed stream.
    fn out(&self) -> u64;
}

/// What one codec adds to the shared [`Index`]: its seek point, how a decoder starts at one, and
/// how its table is saved. Implemented by the four codec marker types (`Gz`, `Bz2`, `Xz`,
/// `Zstd`); `codec.rs` is the registry that knows there are four.
pub trait SeekCodec: Sized + Send + Sync + 'static {
    /// Name in messages ("gzip").
    const NAME: &'static str;
    /// File-name suffixes of a bare compressed file, stripped to name its content.
    const SUFFIXES: &'static [&'static str];
    /// Wanted distance between seek points (see `Codec::spacing`).
    const SPACING: u64;
    /// A place where decoding can start.
    type Point: Point + fmt::Debug + Send + Sync;
    /// What the index holds beyond its points (gzip: where its windows are).
    type Extra: fmt::Debug + Default + Send + Sync;
    /// A decoder started at a point, yielding the decompressed stream from there.
    type Decoder: Decode + fmt::Debug + Send;

    /// True when `head` starts like a stream of this codec.
    fn looks_like(head: &[u8]) -> bool;

    /// A decoder started at point `i` of `index`, of which `remaining` bytes will be read.
    fn start(index: &Index<Self>, src: Arc<dyn ByteSource>, i: usize, remaining: u64) -> io::Result<Self::Decoder>;

    /// Working memory of a decoder that decodes `decoded` bytes from a seek point.
    fn decoder_bytes(decoded: usize) -> usize;

    /// Heap bytes the index holds beyond its points and warnings (gzip: windows in memory).
    fn extra_bytes(_index: &Index<Self>) -> usize {
        0
    }

    /// The saved form: a table loaded at every mount, and a section read on demand (gzip's
    /// windows; empty for the others).
    fn to_parts(index: &Index<Self>) -> io::Result<(Vec<u8>, Vec<u8>)>;

    /// Parses [`to_parts`](Self::to_parts) output; anything inconsistent is an error.
    fn from_parts(table: &[u8], windows: WindowSource) -> Result<Index<Self>, FormatError>;
}

/// The saved part of an index: lengths and points, through serde (postcard). It carries no magic,
/// version or checksum of its own: the index file's envelope does.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Table<P> {
    pub uncompressed_len: u64,
    pub compressed_len: u64,
    pub verified_len: u64,
    pub points: Vec<P>,
}

impl<P: Point> Table<P> {
    pub fn encode(&self) -> io::Result<Vec<u8>>
    where
        P: Serialize,
    {
        postcard::to_stdvec(self).map_err(|e| io::Error::other(format!("encoding a seek-point table: {e}")))
    }

    /// Parses a table and checks what every codec's table must satisfy (lengths under
    /// [`MAX_STREAM_LEN`], the verified part inside the stream, a first point at 0, points in
    /// strictly increasing order inside the stream), then `point_ok(table, point, previous)` for
    /// each point. Postcard reads lengths as it goes: a count claiming more points than the bytes
    /// hold fails when they run out (serde preallocates at most 1 MiB from a claimed count).
    pub fn decode<'a>(
        b: &'a [u8],
        what: &str,
        point_ok: impl Fn(&Self, &P, Option<&P>) -> bool,
    ) -> Result<Self, FormatError>
    where
        P: Deserialize<'a>,
    {
        let bad = |why: String| FormatError::Corrupt(format!("{what} index: {why}"));
        let (t, rest): (Table<P>, _) =
            postcard::take_from_bytes(b).map_err(|e| bad(format!("unreadable table: {e}")))?;
        if !rest.is_empty() {
            return Err(bad("trailing bytes".into()));
        }
        if t.verified_len > t.uncompressed_len || t.uncompressed_len.max(t.compressed_len) > MAX_STREAM_LEN {
            return Err(bad("inconsistent lengths".into()));
        }
        if t.points.is_empty() {
            return Err(bad("bad point count".into()));
        }
        let mut prev: Option<&P> = None;
        for p in &t.points {
            let ordered = match prev {
                None => p.out() == 0,
                Some(q) => p.out() > q.out(),
            };
            if !ordered || p.out() > t.uncompressed_len || !point_ok(&t, p, prev) {
                return Err(bad("inconsistent seek point".into()));
            }
            prev = Some(p);
        }
        Ok(t)
    }
}

/// Seek points into one compressed stream, sorted by strictly increasing `out`; the first is
/// always at `out == 0`.
pub struct Index<C: SeekCodec> {
    pub(crate) table: Table<C::Point>,
    pub(crate) warnings: Vec<String>,
    pub(crate) extra: C::Extra,
}

impl<C: SeekCodec> fmt::Debug for Index<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(C::NAME).field("table", &self.table).field("extra", &self.extra).finish()
    }
}

impl<C: SeekCodec> Index<C> {
    pub(crate) fn new(mut table: Table<C::Point>, warnings: Vec<String>, extra: C::Extra) -> Self {
        table.points.shrink_to_fit();
        Index { table, warnings, extra }
    }

    /// Length of the decompressed stream this index covers (for a partial index, the bytes
    /// decoded before the error).
    pub fn uncompressed_len(&self) -> u64 {
        self.table.uncompressed_len
    }

    /// Compressed bytes of the codec's data (to the end of the last member, stream or frame;
    /// trailing padding or garbage excluded). For a partial index, where decoding stopped.
    pub fn compressed_len(&self) -> u64 {
        self.table.compressed_len
    }

    /// Decompressed bytes up to the end of the last part whose check (CRC, checksum, declared
    /// size) passed. Equals [`uncompressed_len`](Self::uncompressed_len) for an intact stream.
    pub fn verified_len(&self) -> u64 {
        self.table.verified_len
    }

    /// The seek points, sorted by `out`.
    pub fn points(&self) -> &[C::Point] {
        &self.table.points
    }

    /// Non-fatal problems met while indexing (trailing garbage, a long span without seek point,
    /// unchecked frames). Not saved.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Index of the last point with `out <= offset`, and the range `[start, end)` of the
    /// decompressed stream it covers until the next point (`end = uncompressed_len` for the last).
    /// An offset past the end maps to the last span.
    pub fn span_of(&self, offset: u64) -> (usize, u64, u64) {
        let points = &self.table.points;
        let i = points.partition_point(|p| p.out() <= offset).saturating_sub(1);
        (i, points[i].out(), self.span_end(i))
    }

    /// Where span `i` ends: the next point's start, or the stream's end for the last.
    fn span_end(&self, i: usize) -> u64 {
        self.table.points.get(i + 1).map_or(self.table.uncompressed_len, Point::out)
    }

    /// A reader yielding the decompressed stream from `offset` to the end, decoding from the
    /// nearest seek point at or before `offset`. `src` must be the indexed file.
    pub fn reader_at(&self, src: Arc<dyn ByteSource>, offset: u64) -> io::Result<SpanReader<C::Decoder>> {
        let len = self.table.uncompressed_len;
        if offset > len {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{}: offset {offset} is past the end of the decompressed stream ({len})", src.describe()),
            ));
        }
        let (i, start, _) = self.span_of(offset);
        let remaining = len - offset;
        Ok(SpanReader { dec: C::start(self, src, i, remaining)?, remaining, skip: offset - start })
    }

    /// Decompresses exactly span `i` (see [`span_of`](Self::span_of)). Fails with
    /// `ErrorKind::OutOfMemory`, before allocating, when the span is longer than `max` bytes:
    /// the caller should stream it with [`reader_at`](Self::reader_at) instead.
    pub fn read_span(&self, src: Arc<dyn ByteSource>, i: usize, max: usize) -> io::Result<Vec<u8>> {
        let Some(start) = self.table.points.get(i).map(Point::out) else {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("no {} span {i}", C::NAME)));
        };
        let len = self.span_end(i) - start;
        if len > max as u64 {
            return Err(io::Error::new(
                io::ErrorKind::OutOfMemory,
                format!("{}: {} span {i} is {len} bytes, over the {max}-byte limit", src.describe(), C::NAME),
            ));
        }
        let mut rd = self.reader_at(src, start)?;
        let mut buf = vec![0u8; len as usize];
        rd.read_exact(&mut buf)?;
        Ok(buf)
    }

    /// Working memory of a decoder started at a seek point that decodes `decoded` bytes, for the
    /// memory budget.
    pub fn decoder_bytes(&self, decoded: u64) -> usize {
        C::decoder_bytes(usize::try_from(decoded).unwrap_or(usize::MAX))
    }

    /// Approximate heap use in bytes.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.table.points.capacity() * std::mem::size_of::<C::Point>()
            + self.warnings.iter().map(|w| w.capacity() + std::mem::size_of::<String>()).sum::<usize>()
            + C::extra_bytes(self)
    }

    /// Saved for the persistent index: a table loaded at every mount, and a section read on
    /// demand (gzip's windows; empty for the others).
    pub fn to_parts(&self) -> io::Result<(Vec<u8>, Vec<u8>)> {
        C::to_parts(self)
    }

    /// Parses [`to_parts`](Self::to_parts) output; any inconsistency is an error, never a panic.
    pub fn from_parts(table: &[u8], windows: WindowSource) -> Result<Self, FormatError> {
        C::from_parts(table, windows)
    }
}

/// A codec's decoder running from a seek point.
pub trait Decode {
    /// Decodes into `out` (not empty) until at least one byte is produced; an error when the
    /// stream ends or is damaged.
    fn decode_some(&mut self, out: &mut [u8]) -> io::Result<usize>;
}

/// Sequential decompressed bytes from some offset of an indexed stream: a decoder started at the
/// seek point before it, whose first `skip` bytes are dropped. Owns its decoder, so it can be
/// moved to any thread.
#[derive(Debug)]
pub struct SpanReader<D> {
    dec: D,
    /// Bytes left to yield before the end of the indexed stream.
    remaining: u64,
    /// Bytes still to decode and drop before the requested offset.
    skip: u64,
}

impl<D: Decode> Read for SpanReader<D> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        if self.skip > 0 {
            let mut scratch = vec![0u8; (self.skip as usize).clamp(1, 64 * 1024)];
            while self.skip > 0 {
                let n = (self.skip as usize).min(scratch.len());
                let made = self.dec.decode_some(&mut scratch[..n])?;
                self.skip -= made as u64;
            }
        }
        let want = (buf.len() as u64).min(self.remaining) as usize;
        let n = self.dec.decode_some(&mut buf[..want])?;
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// Adds a seek point found by a pass: one at the same output offset replaces the last (it is
/// later in the input, so at least as good); one closer than `spacing` to the last is dropped.
pub(crate) fn push_spaced<P: Point>(points: &mut Vec<P>, p: P, spacing: u64) {
    match points.last_mut() {
        Some(last) if last.out() == p.out() => *last = p,
        Some(last) if p.out() - last.out() < spacing => {}
        _ => points.push(p),
    }
}

// ---------------------------------------------------------------------------------------------
// The indexing pass every codec shares.

/// Output buffer of an indexing pass, used when the caller's buffer is small.
const PASS_OUT_CHUNK: usize = 256 * 1024;
/// A caller buffer at least this large is decoded into directly.
pub(crate) const DIRECT_MIN: usize = 32 * 1024;

/// The codec-specific half of an indexing pass; [`Pass`] is the loop around it.
pub trait IndexStep {
    /// The codec whose index the pass builds.
    type Codec: SeekCodec;
    /// True while the pass is inside compressed data, where [`decode`](Self::decode) yields bytes.
    fn in_data(&self) -> bool;
    /// One step outside the data (a header, a trailer, what follows a stream); `Ok(false)` once
    /// the pass is over.
    fn advance(&mut self) -> io::Result<bool>;
    /// Decodes into `out` until it is full or the data part ends. Bytes decoded before an error
    /// come with it (they are yielded before the error is).
    fn decode(&mut self, out: &mut [u8]) -> (usize, Option<io::Error>);
    /// How far the pass has come.
    fn progress(&self) -> Progress<'_>;
    /// Where the last seek point recorded so far starts in the decompressed stream, for codecs
    /// whose points can lie far apart (xz blocks, zstd frames); `None` when not tracked.
    fn last_point(&self) -> Option<u64> {
        None
    }
    /// The index of what decoded; `failed` when the pass stopped at damage.
    fn into_index(self, failed: bool) -> Index<Self::Codec>;
}

/// How far an indexing pass has come.
pub struct Progress<'a> {
    /// Compressed bytes consumed.
    pub compressed: u64,
    /// Decompressed bytes produced.
    pub uncompressed: u64,
    /// Non-fatal problems met.
    pub warnings: &'a [String],
}

/// Streams a compressed file once: `Read` yields the decompressed bytes while the codec's step
/// records seek points and verifies every check. A corrupt or truncated stream makes `read` fail
/// (`InvalidData` or `UnexpectedEof`, naming the compressed offset) after the bytes decoded
/// before the damage have been yielded; every later `read` repeats the error.
pub struct Pass<S> {
    pub(crate) step: S,
    obuf: Box<[u8]>,
    opos: usize,
    olen: usize,
    failed: Option<(io::ErrorKind, String)>,
}

impl<S: IndexStep> Pass<S> {
    pub(crate) fn over(step: S) -> Self {
        Pass { step, obuf: Box::default(), opos: 0, olen: 0, failed: None }
    }

    /// Bytes of the pass's own output buffer (for memory accounting).
    pub(crate) fn buffer_bytes(&self) -> usize {
        self.obuf.len()
    }

    /// Compressed bytes consumed so far (for a progress bar).
    pub fn compressed_pos(&self) -> u64 {
        self.step.progress().compressed
    }

    /// Decompressed bytes produced so far.
    pub fn uncompressed_pos(&self) -> u64 {
        self.step.progress().uncompressed
    }

    /// Non-fatal problems so far.
    pub fn warnings(&self) -> &[String] {
        self.step.progress().warnings
    }

    /// See [`IndexStep::last_point`].
    pub fn last_point(&self) -> Option<u64> {
        self.step.last_point()
    }

    /// Reads the rest of the stream (the caller may have stopped early, e.g. at the tar
    /// end-of-archive marker) and returns the complete index; any damage is an error.
    pub fn finish(self) -> Result<Index<S::Codec>, FormatError> {
        finish_result(self.finish_partial())
    }

    /// Like [`finish`](Self::finish), but on damage still returns the index of what decoded
    /// before the error (its `uncompressed_len` stops there; only its `verified_len` bytes
    /// passed a check), together with the error.
    pub fn finish_partial(mut self) -> (Index<S::Codec>, Option<io::Error>) {
        let mut err = None;
        let mut sink = vec![0u8; DIRECT_MIN];
        loop {
            match self.read(&mut sink) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
        }
        let idx = self.step.into_index(err.is_some());
        tracing::debug!(
            points = idx.points().len(),
            uncompressed = idx.uncompressed_len(),
            compressed = idx.compressed_len(),
            failed = err.is_some(),
            "{} index built",
            S::Codec::NAME
        );
        (idx, err)
    }

    fn decode(&mut self, out: &mut [u8]) -> io::Result<usize> {
        match self.step.decode(out) {
            (n, None) => Ok(n),
            (n, Some(e)) => {
                let e = self.fail(e);
                if n > 0 { Ok(n) } else { Err(e) }
            }
        }
    }

    fn fail(&mut self, e: io::Error) -> io::Error {
        self.failed = Some((e.kind(), e.to_string()));
        e
    }
}

impl<S: IndexStep> Read for Pass<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if self.opos < self.olen {
                let n = (self.olen - self.opos).min(buf.len());
                buf[..n].copy_from_slice(&self.obuf[self.opos..self.opos + n]);
                self.opos += n;
                return Ok(n);
            }
            if let Some((kind, msg)) = &self.failed {
                return Err(io::Error::new(*kind, msg.clone()));
            }
            if !self.step.in_data() {
                match self.step.advance() {
                    Ok(true) => continue,
                    Ok(false) => return Ok(0),
                    Err(e) => return Err(self.fail(e)),
                }
            }
            if buf.len() >= DIRECT_MIN {
                match self.decode(buf) {
                    Ok(0) => continue,
                    r => return r,
                }
            }
            // A small caller buffer: decode a larger piece and hand it out in parts, so the
            // codec's per-call work is spread over many bytes.
            let mut obuf = std::mem::take(&mut self.obuf);
            if obuf.is_empty() {
                obuf = vec![0u8; PASS_OUT_CHUNK].into_boxed_slice();
            }
            let r = self.decode(&mut obuf);
            self.obuf = obuf;
            self.olen = r?;
            self.opos = 0;
        }
    }
}
/// Maps an indexing-pass error to the `finish()` result, as gzindex does.
pub(crate) fn finish_result<T>(r: (T, Option<io::Error>)) -> Result<T, FormatError> {
    match r {
        (idx, None) => Ok(idx),
        (_, Some(e)) => match e.kind() {
            io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof => Err(FormatError::Corrupt(e.to_string())),
            _ => Err(FormatError::Io(e)),
        },
    }
}

#[cfg(test)]
pub(crate) mod testutil {
    //! Helpers shared by the four codecs' tests.
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, RngCore, SeedableRng};

    /// An in-memory `ByteSource`.
    pub struct Mem(pub Vec<u8>);

    impl ByteSource for Mem {
        fn len(&self) -> u64 {
            self.0.len() as u64
        }
        fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
            let off = (offset as usize).min(self.0.len());
            let n = buf.len().min(self.0.len() - off);
            buf[..n].copy_from_slice(&self.0[off..off + n]);
            Ok(n)
        }
        fn describe(&self) -> String {
            "mem".into()
        }
    }

    pub fn src(b: &[u8]) -> Arc<dyn ByteSource> {
        Arc::new(Mem(b.to_vec()))
    }

    /// Data of mixed compressibility: random runs, text-like runs, zeros, small alphabets.
    pub fn mixed(seed: u64, len: usize) -> Vec<u8> {
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
                    let stop = v.len() + run;
                    while v.len() < stop {
                        let w = words[rng.random_range(0..words.len())];
                        v.extend_from_slice(&w[..w.len().min(stop - v.len())]);
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

    /// The package that provides a command-line tool the tests run (CI installs them all).
    fn package_of(cmd: &str) -> &str {
        match cmd {
            "xz" => "xz-utils",
            other => other,
        }
    }

    /// Spawns a command-line tool; a missing tool fails the test, naming what to install.
    fn spawn(cmd: &mut std::process::Command, name: &str) -> std::process::Child {
        cmd.spawn().unwrap_or_else(|e| {
            panic!("cannot run `{name}` ({e}): install the `{}` package to run this test", package_of(name))
        })
    }

    /// Runs a command-line compressor over `data`; a missing tool or a failed run fails the test.
    pub fn tool(cmd: &str, args: &[&str], data: &[u8]) -> Vec<u8> {
        use std::io::Write;
        use std::process::{Command, Stdio};
        let mut c = Command::new(cmd);
        c.args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::null());
        let mut child = spawn(&mut c, cmd);
        let mut stdin = child.stdin.take().unwrap();
        let data = data.to_vec();
        let t = std::thread::spawn(move || {
            let _ = stdin.write_all(&data);
        });
        let out = child.wait_with_output().unwrap_or_else(|e| panic!("{cmd} {args:?}: {e}"));
        t.join().unwrap();
        assert!(out.status.success(), "{cmd} {args:?} failed: {}", out.status);
        out.stdout
    }

    /// Reads with random-sized `read` calls until EOF or error.
    pub fn drain<R: Read>(r: &mut R, seed: u64) -> (Vec<u8>, Option<io::Error>) {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut out = Vec::new();
        let mut buf = vec![0u8; 300_000];
        let err = loop {
            let n = match rng.random_range(0..3) {
                0 => rng.random_range(1..600),
                1 => 512,
                _ => rng.random_range(32 * 1024..buf.len()),
            };
            match r.read(&mut buf[..n]) {
                Ok(0) => break None,
                Ok(k) => out.extend_from_slice(&buf[..k]),
                Err(e) => break Some(e),
            }
        };
        (out, err)
    }

    /// Drains a pass with random-sized reads: its output, its index and its error (the same
    /// error the pass's `finish_partial` reports).
    pub fn run_pass<S: IndexStep>(mut ix: Pass<S>, seed: u64) -> (Vec<u8>, Index<S::Codec>, Option<io::Error>) {
        let (out, err) = drain(&mut ix, seed);
        let (idx, err2) = ix.finish_partial();
        assert_eq!(err.is_some(), err2.is_some());
        (out, idx, err)
    }

    /// The index of a pass that must succeed and cover everything it yielded.
    pub fn expect_ok<C: SeekCodec>((out, idx, err): (Vec<u8>, Index<C>, Option<io::Error>)) -> Index<C> {
        assert!(err.is_none(), "{err:?}");
        assert_eq!(out.len() as u64, idx.uncompressed_len());
        idx
    }

    /// An index of `z` against its data: lengths, random reads, and every span in turn.
    pub fn check<C: SeekCodec>(data: &[u8], z: &[u8], idx: &Index<C>, seed: u64, reads: usize) {
        let s = src(z);
        assert_eq!(idx.uncompressed_len(), data.len() as u64);
        assert_eq!(idx.verified_len(), data.len() as u64);
        let starts: Vec<u64> = idx.points().iter().map(Point::out).collect();
        random_reads(data, &starts, seed, reads, |o| idx.reader_at(s.clone(), o));
        let mut all = Vec::new();
        for i in 0..idx.points().len() {
            let (j, a, b) = idx.span_of(idx.points()[i].out());
            assert_eq!(j, i);
            let sp = idx.read_span(s.clone(), i, usize::MAX).unwrap();
            assert_eq!(sp.len() as u64, b - a);
            all.extend(sp);
        }
        assert!(all == data);
    }

    /// A conformance file's index against the tool's output: all spans, and the tail from a third.
    pub fn check_whole<C: SeekCodec>(idx: &Index<C>, s: &Arc<dyn ByteSource>, out: &[u8], f: &str) {
        let mut all = Vec::new();
        for i in 0..idx.points().len() {
            all.extend(idx.read_span(s.clone(), i, usize::MAX).unwrap());
        }
        assert!(all == out, "{f}: spans");
        let off = out.len() as u64 / 3;
        let mut v = Vec::new();
        idx.reader_at(s.clone(), off).unwrap().read_to_end(&mut v).unwrap();
        assert!(v == out[off as usize..], "{f}: reader_at");
    }

    /// Random reads through `reader_at` (some straddling point boundaries) compared to `data`.
    pub fn random_reads<R: Read>(
        data: &[u8],
        starts: &[u64],
        seed: u64,
        reads: usize,
        mut reader_at: impl FnMut(u64) -> io::Result<R>,
    ) {
        let mut rng = StdRng::seed_from_u64(seed);
        for k in 0..reads {
            let off = if k % 3 == 0 && starts.len() > 1 {
                starts[rng.random_range(1..starts.len())].saturating_sub(rng.random_range(0..5000))
            } else {
                rng.random_range(0..=data.len() as u64)
            };
            let len = rng.random_range(0..300_000);
            let mut v = Vec::new();
            reader_at(off).unwrap().take(len as u64).read_to_end(&mut v).unwrap();
            let end = (off as usize + len).min(data.len());
            assert!(v == data[off as usize..end], "mismatch at {off}+{len}");
        }
    }

    /// Truncates a saved table and appends to it: all must be rejected. Flips random bits:
    /// none may panic, and a flipped table that loads passed every consistency check (catching
    /// every flip is the index file's checksum's job, not the table's).
    pub fn damage_rejected<T>(b: &[u8], parse: impl Fn(&[u8]) -> Result<T, FormatError>) {
        for n in (0..b.len()).step_by(37).chain([b.len() - 1]) {
            assert!(parse(&b[..n]).is_err(), "truncated to {n}");
        }
        let mut rng = StdRng::seed_from_u64(9);
        for _ in 0..200 {
            let mut c = b.to_vec();
            let i = rng.random_range(0..c.len());
            c[i] ^= 1 << rng.random_range(0..8);
            let _ = parse(&c);
        }
        let mut c = b.to_vec();
        c.push(0);
        assert!(parse(&c).is_err());
    }

    /// A file of the conformance corpus copied into the repository (it must be there).
    pub fn conformance(rel: &str) -> Option<std::path::PathBuf> {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance").join(rel);
        assert!(p.exists(), "conformance file {rel} missing from tests/conformance");
        Some(p)
    }

    /// `tool -dc path` output; a missing tool fails the test.
    pub fn tool_dc(cmd: &str, p: &std::path::Path) -> Vec<u8> {
        let child = spawn(std::process::Command::new(cmd).arg("-dc").arg(p).stdout(std::process::Stdio::piped()), cmd);
        let o = child.wait_with_output().unwrap_or_else(|e| panic!("{cmd} -dc {}: {e}", p.display()));
        // gzip exits 2 after a warning (trailing garbage) with all the data written.
        let warned = cmd == "gzip" && o.status.code() == Some(2);
        assert!(o.status.success() || warned, "{cmd} -dc {} failed", p.display());
        o.stdout
    }

    /// The saved table of an index (windows dropped).
    pub fn table_of<C: SeekCodec>(idx: &Index<C>) -> Vec<u8> {
        idx.to_parts().unwrap().0
    }

    /// Loads a saved table with no windows.
    pub fn load<C: SeekCodec>(b: &[u8]) -> Result<Index<C>, FormatError> {
        Index::from_parts(b, WindowSource::Mem(Vec::new()))
    }
}
