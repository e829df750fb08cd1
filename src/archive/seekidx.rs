//! Pieces shared by the bzip2, xz and zstd random-access indexes: buffered compressed input with
//! absolute offsets, error helpers, span bookkeeping and the checksummed serialization envelope.

use std::io::{self, Read};
use std::sync::Arc;

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

/// Fails with `OutOfMemory` when a span of `len` bytes exceeds `max`.
/// The span holding `offset` among seek points sorted by their uncompressed offset (`out_of`):
/// its index, its start, and its end (the next point's start, or `total`). An offset past the
/// end maps to the last span. Shared by every codec's index.
pub(crate) fn span_of<P>(points: &[P], out_of: impl Fn(&P) -> u64, total: u64, offset: u64) -> (usize, u64, u64) {
    let i = points.partition_point(|p| out_of(p) <= offset).saturating_sub(1);
    (i, out_of(&points[i]), span_end(points, out_of, total, i))
}

/// Where span `i` ends: the next point's start, or `total` for the last.
pub(crate) fn span_end<P>(points: &[P], out_of: impl Fn(&P) -> u64, total: u64, i: usize) -> u64 {
    points.get(i + 1).map_or(total, out_of)
}

pub(crate) fn check_span(src: &dyn ByteSource, what: &str, i: usize, len: u64, max: usize) -> io::Result<()> {
    if len > max as u64 {
        return Err(io::Error::new(
            io::ErrorKind::OutOfMemory,
            format!("{}: {what} span {i} is {len} bytes, over the {max}-byte limit", src.describe()),
        ));
    }
    Ok(())
}

pub(crate) fn past_end(src: &dyn ByteSource, offset: u64, len: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{}: offset {offset} is past the end of the decompressed stream ({len})", src.describe()),
    )
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
             read ({hint})",
            worst.1, worst.0, what, worst.0, worst.1
        )
    })
}

// ---------------------------------------------------------------------------------------------
// Serialization envelope: magic, version, body, CRC-32 of everything before it.

pub(crate) struct Ser(pub Vec<u8>);

impl Ser {
    pub fn new(magic: &[u8; 8], version: u8, cap: usize) -> Ser {
        let mut b = Vec::with_capacity(cap + 13);
        b.extend_from_slice(magic);
        b.push(version);
        Ser(b)
    }
    pub fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    pub fn seal(mut self) -> Vec<u8> {
        let crc = crc32fast::hash(&self.0);
        self.0.extend_from_slice(&crc.to_le_bytes());
        self.0
    }
}

pub(crate) struct De<'a> {
    r: &'a [u8],
    what: &'static str,
}

impl<'a> De<'a> {
    /// Checks magic, version and checksum before anything else is parsed.
    pub fn open(b: &'a [u8], magic: &[u8; 8], version: u8, what: &'static str) -> Result<De<'a>, FormatError> {
        let bad = |why: String| FormatError::Corrupt(format!("{what} index: {why}"));
        if b.len() < magic.len() + 1 + 4 || &b[..magic.len()] != magic {
            return Err(bad("not an index blob".into()));
        }
        if b[magic.len()] != version {
            return Err(bad(format!("unsupported version {}", b[magic.len()])));
        }
        let (body, crc) = b.split_at(b.len() - 4);
        if crc32fast::hash(body) != u32::from_le_bytes(crc.try_into().unwrap()) {
            return Err(bad("checksum mismatch".into()));
        }
        Ok(De { r: &body[magic.len() + 1..], what })
    }
    pub fn bad(&self, why: &str) -> FormatError {
        FormatError::Corrupt(format!("{} index: {why}", self.what))
    }
    pub fn u64(&mut self) -> Result<u64, FormatError> {
        if self.r.len() < 8 {
            return Err(self.bad("truncated"));
        }
        let (a, rest) = self.r.split_at(8);
        self.r = rest;
        Ok(u64::from_le_bytes(a.try_into().unwrap()))
    }
    pub fn u8(&mut self) -> Result<u8, FormatError> {
        let (&a, rest) = self.r.split_first().ok_or_else(|| self.bad("truncated"))?;
        self.r = rest;
        Ok(a)
    }
    pub fn remaining(&self) -> usize {
        self.r.len()
    }
    pub fn finish(self) -> Result<(), FormatError> {
        if self.r.is_empty() { Ok(()) } else { Err(self.bad("trailing bytes")) }
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
    //! Helpers shared by the three modules' tests.
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

    /// Runs a command-line compressor (`None` if it is not installed).
    pub fn tool(cmd: &str, args: &[&str], data: &[u8]) -> Option<Vec<u8>> {
        use std::io::Write;
        use std::process::{Command, Stdio};
        let mut child = Command::new(cmd)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let mut stdin = child.stdin.take().unwrap();
        let data = data.to_vec();
        let t = std::thread::spawn(move || {
            let _ = stdin.write_all(&data);
        });
        let out = child.wait_with_output().ok()?;
        t.join().unwrap();
        out.status.success().then_some(out.stdout)
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

    /// Flips random bits in a serialized index and truncates it: all must be rejected.
    pub fn damage_rejected<T>(b: &[u8], parse: impl Fn(&[u8]) -> Result<T, FormatError>) {
        for n in (0..b.len()).step_by(37).chain([b.len() - 1]) {
            assert!(parse(&b[..n]).is_err(), "truncated to {n}");
        }
        let mut rng = StdRng::seed_from_u64(9);
        for _ in 0..200 {
            let mut c = b.to_vec();
            let i = rng.random_range(0..c.len());
            c[i] ^= 1 << rng.random_range(0..8);
            assert!(parse(&c).is_err(), "flip at {i}");
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

    /// `tool -dc path` output, or `None` when the tool is missing.
    pub fn tool_dc(cmd: &str, p: &std::path::Path) -> Option<Vec<u8>> {
        let o = std::process::Command::new(cmd).arg("-dc").arg(p).output().ok()?;
        assert!(o.status.success(), "{cmd} -dc {} failed", p.display());
        Some(o.stdout)
    }
}
