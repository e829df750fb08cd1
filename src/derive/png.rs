//! The PNG writer of derived images: grayscale, 8 or 16 bits, with **stored** (uncompressed)
//! deflate blocks, so that the file's size is a pure function of width, height and bit depth
//! (known when the tree is built) and any byte range can be made from the rows it covers.
//!
//! Layout, one *part* per line (parts are what `derive` caches and renders on demand):
//!
//! ```text
//! part 0          signature, IHDR                                          (33 bytes)
//! part 1..=n      one IDAT chunk per group of rows: [zlib header, in part 1 only] stored
//!                 blocks (<= 65,535 bytes each) of the rows, filter byte 0 before each
//!                 row; its CRC-32 covers that chunk only
//! part n+1        IDAT with the zlib stream's Adler-32 (4 bytes), IEND     (28 bytes)
//! ```
//!
//! Chunk CRCs are per chunk, so a row group's chunk is complete on its own. The Adler-32 at the
//! end of the zlib stream covers every row: each row part records the Adler-32 of its own data
//! when it is rendered (a per-file state in the cache, a few bytes a part), and the last part
//! combines them (`adler32_combine`, no pass over the data again); parts whose Adler-32 is not
//! known (evicted, or never read: a reader that starts at the end) are rendered through the
//! cache first. A first streaming pass at build time was the other choice: it would read and
//! decode every image at mount, which is what derived files exist to avoid.
//!
//! Decoders check it all: Pillow and libpng verify every chunk CRC and zlib the Adler-32.

use std::io;
use std::ops::Range;

use super::{RenderCx, bad};

/// Filtered bytes a row part aims at (rows are never split).
const PART_TARGET: u64 = 256 << 10;

/// Largest stored block.
const STORED_MAX: u64 = 65_535;

/// Largest side accepted.
const MAX_SIDE: u32 = 1 << 20;

/// A grayscale PNG's shape and its parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Shape {
    /// Pixels per row.
    pub width: u32,
    /// Rows.
    pub height: u32,
    /// Bits per sample: 8 or 16.
    pub depth: u8,
}

/// Where each part's rows are.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    /// The image.
    pub shape: Shape,
    /// Filtered bytes of one row (filter byte and samples).
    row_bytes: u64,
    /// Rows in each row part but maybe the last.
    rows_per_part: u32,
    /// Number of row parts.
    row_parts: usize,
}

impl Layout {
    /// The layout of `shape`, or why it cannot be a PNG here.
    pub fn new(shape: Shape) -> Result<Layout, String> {
        if !matches!(shape.depth, 8 | 16) {
            return Err(format!("{}-bit samples (8 or 16 only)", shape.depth));
        }
        if shape.width == 0 || shape.height == 0 || shape.width > MAX_SIDE || shape.height > MAX_SIDE {
            return Err(format!("{}x{} pixels", shape.width, shape.height));
        }
        let row_bytes = 1 + shape.width as u64 * (shape.depth as u64 / 8);
        let rows_per_part = (PART_TARGET / row_bytes).clamp(1, shape.height as u64) as u32;
        let row_parts = shape.height.div_ceil(rows_per_part) as usize;
        Ok(Layout { shape, row_bytes, rows_per_part, row_parts })
    }

    /// Number of parts.
    pub fn parts(&self) -> usize {
        self.row_parts + 2
    }

    /// Rows of part `part` (empty for the head and the tail).
    pub fn rows(&self, part: usize) -> Range<u32> {
        if part == 0 || part > self.row_parts {
            return 0..0;
        }
        let start = (part as u32 - 1) * self.rows_per_part;
        start..(start + self.rows_per_part).min(self.shape.height)
    }

    fn data_len(&self, part: usize) -> u64 {
        let r = self.rows(part);
        (r.end - r.start) as u64 * self.row_bytes
    }

    /// Byte length of each part.
    pub fn part_lens(&self) -> Vec<u64> {
        let mut lens = Vec::with_capacity(self.parts());
        lens.push(33);
        for p in 1..=self.row_parts {
            let d = self.data_len(p);
            lens.push(12 + if p == 1 { 2 } else { 0 } + d + 5 * d.div_ceil(STORED_MAX));
        }
        lens.push(16 + 12);
        lens
    }

    /// The file's size.
    pub fn size(&self) -> u64 {
        self.part_lens().iter().sum()
    }

    /// Part 0: signature and header.
    pub fn head(&self) -> Vec<u8> {
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut ihdr = Vec::with_capacity(13);
        ihdr.extend_from_slice(&self.shape.width.to_be_bytes());
        ihdr.extend_from_slice(&self.shape.height.to_be_bytes());
        // depth, grayscale, deflate, adaptive filtering (all rows use filter 0), no interlace
        ihdr.extend_from_slice(&[self.shape.depth, 0, 0, 0, 0]);
        chunk(&mut out, b"IHDR", &ihdr);
        out
    }

    /// A row part: `samples` are its rows' samples (big-endian when 16-bit), no filter bytes.
    /// Returns the part and the Adler-32 of the zlib data it carries.
    pub fn row_part(&self, part: usize, samples: &[u8]) -> io::Result<(Vec<u8>, u32)> {
        let r = self.rows(part);
        let stride = (self.row_bytes - 1) as usize;
        if r.is_empty() || samples.len() != (r.end - r.start) as usize * stride {
            return Err(bad(format!("{} sample bytes for rows {r:?} of {stride} bytes", samples.len())));
        }
        let mut data = Vec::with_capacity(self.data_len(part) as usize);
        for row in samples.chunks(stride) {
            data.push(0);
            data.extend_from_slice(row);
        }
        let adler = adler32(1, &data);
        let mut body = Vec::with_capacity(data.len() + 2 + 5 * data.len().div_ceil(STORED_MAX as usize));
        if part == 1 {
            // CMF: deflate, 32K window; FLG: no dictionary, fastest, check bits (0x7801 % 31 == 0).
            body.extend_from_slice(&[0x78, 0x01]);
        }
        let blocks = data.len().div_ceil(STORED_MAX as usize);
        for (i, block) in data.chunks(STORED_MAX as usize).enumerate() {
            let last = part == self.row_parts && i + 1 == blocks;
            let len = block.len() as u16;
            body.push(last as u8);
            body.extend_from_slice(&len.to_le_bytes());
            body.extend_from_slice(&(!len).to_le_bytes());
            body.extend_from_slice(block);
        }
        let mut out = Vec::with_capacity(body.len() + 12);
        chunk(&mut out, b"IDAT", &body);
        Ok((out, adler))
    }

    /// The last part, given the Adler-32 of every row part's data in order.
    pub fn tail(&self, adlers: &[u32]) -> Vec<u8> {
        let mut adler = 1u32;
        for (p, a) in adlers.iter().enumerate() {
            adler = adler32_combine(adler, *a, self.data_len(p + 1));
        }
        let mut out = Vec::with_capacity(28);
        chunk(&mut out, b"IDAT", &adler.to_be_bytes());
        chunk(&mut out, b"IEND", &[]);
        out
    }

    /// Renders part `part` for a kind: `rows(range)` gives the samples of those rows. Row parts
    /// record their Adler-32 in the file's state; the tail gathers them (rendering parts whose
    /// value is not known through the cache).
    pub fn render(
        &self,
        part: usize,
        cx: &RenderCx<'_>,
        rows: impl FnOnce(Range<u32>) -> io::Result<Vec<u8>>,
    ) -> io::Result<Vec<u8>> {
        let adlers = cx.state(|| (Adlers(parking_lot::Mutex::new(vec![None; self.row_parts])), self.row_parts * 8));
        if part == 0 {
            return Ok(self.head());
        }
        if part <= self.row_parts {
            let (bytes, adler) = self.row_part(part, &rows(self.rows(part))?)?;
            if let Some(slot) = adlers.0.lock().get_mut(part - 1) {
                *slot = Some(adler);
            }
            return Ok(bytes);
        }
        let mut all = Vec::with_capacity(self.row_parts);
        for p in 1..=self.row_parts {
            let known = adlers.0.lock().get(p - 1).copied().flatten();
            let a = match known {
                Some(a) => a,
                None => {
                    // Cached or rendered now (which records it); computed from the bytes if the
                    // state was evicted in between.
                    let bytes = cx.part(p)?;
                    match adlers.0.lock().get(p - 1).copied().flatten() {
                        Some(a) => a,
                        None => adler_of_part(&bytes, p == 1)?,
                    }
                }
            };
            all.push(a);
        }
        Ok(self.tail(&all))
    }
}

/// The Adler-32 of each row part's data, as known so far.
struct Adlers(parking_lot::Mutex<Vec<Option<u32>>>);

/// The Adler-32 of the zlib data inside a rendered row part (its IDAT chunk of stored blocks).
fn adler_of_part(bytes: &[u8], first: bool) -> io::Result<u32> {
    let body = bytes.get(8..bytes.len().saturating_sub(4)).ok_or_else(|| bad("short IDAT part"))?;
    let mut at = if first { 2 } else { 0 };
    let mut adler = 1u32;
    while at < body.len() {
        let len = u16::from_le_bytes([body[at + 1], body[at + 2]]) as usize;
        let block = body.get(at + 5..at + 5 + len).ok_or_else(|| bad("bad stored block"))?;
        adler = adler32(adler, block);
        at += 5 + len;
    }
    Ok(adler)
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut h = crc32fast::Hasher::new();
    h.update(kind);
    h.update(data);
    out.extend_from_slice(&h.finalize().to_be_bytes());
}

const ADLER_MOD: u32 = 65_521;

/// Adler-32 of `data` continuing from `adler` (1 to start).
pub fn adler32(adler: u32, data: &[u8]) -> u32 {
    let (mut a, mut b) = (adler & 0xffff, adler >> 16);
    // 5552: the most bytes before the sums can overflow u32 (zlib's NMAX).
    for chunk in data.chunks(5552) {
        for &byte in chunk {
            a += byte as u32;
            b += a;
        }
        a %= ADLER_MOD;
        b %= ADLER_MOD;
    }
    b << 16 | a
}

/// The Adler-32 of `A ++ B` from those of `A` and `B` and the length of `B` (zlib's
/// `adler32_combine`).
pub fn adler32_combine(adler1: u32, adler2: u32, len2: u64) -> u32 {
    let rem = (len2 % ADLER_MOD as u64) as u32;
    let mut sum1 = adler1 & 0xffff;
    let mut sum2 = (rem * sum1) % ADLER_MOD;
    sum1 += (adler2 & 0xffff) + ADLER_MOD - 1;
    sum2 += (adler1 >> 16) + (adler2 >> 16) + ADLER_MOD - rem;
    if sum1 >= ADLER_MOD {
        sum1 -= ADLER_MOD;
    }
    if sum1 >= ADLER_MOD {
        sum1 -= ADLER_MOD;
    }
    if sum2 >= ADLER_MOD << 1 {
        sum2 -= ADLER_MOD << 1;
    }
    if sum2 >= ADLER_MOD {
        sum2 -= ADLER_MOD;
    }
    sum2 << 16 | sum1
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole file, parts in order, Adler-32s passed along.
    pub(crate) fn whole(layout: &Layout, samples: &[u8]) -> Vec<u8> {
        let stride = layout.shape.width as usize * (layout.shape.depth as usize / 8);
        let mut out = layout.head();
        let mut adlers = Vec::new();
        for p in 1..layout.parts() - 1 {
            let r = layout.rows(p);
            let (bytes, a) = layout.row_part(p, &samples[r.start as usize * stride..r.end as usize * stride]).unwrap();
            out.extend_from_slice(&bytes);
            adlers.push(a);
        }
        out.extend_from_slice(&layout.tail(&adlers));
        out
    }

    fn decode(bytes: &[u8]) -> (png::OutputInfo, Vec<u8>) {
        let mut reader = png::Decoder::new(std::io::Cursor::new(bytes)).read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        buf.truncate(info.buffer_size());
        (info, buf)
    }

    #[test]
    fn adler_combine_matches_one_pass() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 31 + i / 7) as u8).collect();
        for cut in [0, 1, 5552, 65_521, 200_000, 300_000] {
            let (a, b) = data.split_at(cut);
            assert_eq!(adler32_combine(adler32(1, a), adler32(1, b), b.len() as u64), adler32(1, &data), "{cut}");
        }
        assert_eq!(adler32(1, b"Wikipedia"), 0x11E6_0398);
    }

    #[test]
    fn sizes_are_exact_and_the_png_crate_decodes_every_shape() {
        for (w, h, depth) in [(1, 1, 8), (3, 2, 16), (700, 5, 16), (40_000, 3, 16), (513, 2100, 16), (257, 9000, 8)] {
            let shape = Shape { width: w, height: h, depth };
            let layout = Layout::new(shape).unwrap();
            let n = (w * h) as usize * (depth as usize / 8);
            let samples: Vec<u8> = (0..n).map(|i| (i % 251) as u8 ^ (i / 251) as u8).collect();
            let file = whole(&layout, &samples);
            assert_eq!(file.len() as u64, layout.size(), "{w}x{h}x{depth}");
            let lens = layout.part_lens();
            assert_eq!(lens.len(), layout.parts());
            let (info, pixels) = decode(&file);
            assert_eq!((info.width, info.height), (w, h));
            assert_eq!(info.bit_depth as u8, depth);
            assert_eq!(pixels, samples, "{w}x{h}x{depth}");
        }
        assert!(Layout::new(Shape { width: 0, height: 1, depth: 8 }).is_err());
        assert!(Layout::new(Shape { width: 1, height: 1, depth: 12 }).is_err());
    }

    #[test]
    fn the_adler_of_a_rendered_part_is_recovered_from_its_bytes() {
        let layout = Layout::new(Shape { width: 40_000, height: 60, depth: 16 }).unwrap();
        let stride = 80_000usize;
        let samples: Vec<u8> = (0..stride * 60).map(|i| (i * 7) as u8).collect();
        for p in 1..layout.parts() - 1 {
            let r = layout.rows(p);
            let (bytes, a) = layout.row_part(p, &samples[r.start as usize * stride..r.end as usize * stride]).unwrap();
            assert_eq!(adler_of_part(&bytes, p == 1).unwrap(), a);
        }
    }
}
