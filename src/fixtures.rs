//! The files `medfs demo` and the tests write, each format written once: archives (zip, tar,
//! tar.gz) through the `zip` and `tar` crates, and small but valid images and headers (PNG, GIF,
//! TIFF, JPEG, lossless JPEG, PGM, JSRT raw, DICOM, NIfTI-1 / Analyze 7.5). Not medfs's API: the
//! test crates reach it as `medfs::fixtures::...`.

use std::io::{self, Write};
use std::path::Path;

use flate2::Compression;

/// Deterministic pseudo-random bytes (xorshift), compressible when `text` is set.
pub fn noise(len: usize, seed: u64, text: bool) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E3779B97F4A7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if text { b"ACGT \n"[(x % 6) as usize] } else { x as u8 }
        })
        .collect()
}

// ------------------------------------------------------------------------------------------------
// Archives.

/// A file to put in an archive.
#[derive(Clone, Debug)]
pub struct Entry {
    /// Path inside the archive (a trailing `/` makes a directory).
    pub path: String,
    /// Content.
    pub data: Vec<u8>,
}

/// Shorthand.
pub fn entry(path: &str, data: Vec<u8>) -> Entry {
    Entry { path: path.into(), data }
}

/// How zip members are stored.
#[derive(Clone, Copy, Debug)]
pub enum ZipMethod {
    Stored,
    Deflated,
}

fn named(path: &Path, e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("{}: {e}", path.display()))
}

/// Writes a zip of `entries` at `path` (directories as directory entries, every member dated
/// 2020-05-17 10:30 so that archives are the same from run to run).
pub fn write_zip(path: &Path, entries: &[Entry], method: ZipMethod) -> io::Result<()> {
    let file = std::fs::File::create(path).map_err(|e| named(path, e))?;
    let mut w = zip::ZipWriter::new(io::BufWriter::new(file));
    let method = match method {
        ZipMethod::Stored => zip::CompressionMethod::Stored,
        ZipMethod::Deflated => zip::CompressionMethod::Deflated,
    };
    let date = zip::DateTime::from_date_and_time(2020, 5, 17, 10, 30, 0).map_err(|e| named(path, e))?;
    for e in entries {
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(method)
            .large_file(e.data.len() > u32::MAX as usize)
            .last_modified_time(date);
        if e.path.ends_with('/') {
            w.add_directory(e.path.trim_end_matches('/'), opts).map_err(|e| named(path, e))?;
        } else {
            w.start_file(e.path.as_str(), opts).map_err(|e| named(path, e))?;
            w.write_all(&e.data).map_err(|e| named(path, e))?;
        }
    }
    w.finish().map_err(|e| named(path, e))?.flush().map_err(|e| named(path, e))
}

/// A tar (GNU long names as needed) of `entries`, every member dated 2020-09-13.
pub fn tar_bytes(entries: &[Entry]) -> io::Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(1_600_000_000);
        if e.path.ends_with('/') {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
            h.set_size(0);
            b.append_data(&mut h, &e.path, &[][..])?;
        } else {
            h.set_mode(0o644);
            h.set_size(e.data.len() as u64);
            b.append_data(&mut h, &e.path, &e.data[..])?;
        }
    }
    b.into_inner()
}

/// Writes a plain tar.
pub fn write_tar(path: &Path, entries: &[Entry]) -> io::Result<()> {
    std::fs::write(path, tar_bytes(entries).map_err(|e| named(path, e))?).map_err(|e| named(path, e))
}

/// Writes a tar.gz.
pub fn write_tar_gz(path: &Path, entries: &[Entry]) -> io::Result<()> {
    std::fs::write(path, gzip(&tar_bytes(entries).map_err(|e| named(path, e))?)).map_err(|e| named(path, e))
}

/// `data` gzip-compressed (fast level: fixtures are many, their ratio does not matter).
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), Compression::fast());
    e.write_all(data).expect("writing to memory");
    e.finish().expect("writing to memory")
}

// ------------------------------------------------------------------------------------------------
// 2D images. Valid files of the stated size: viewers open them, medfs's size readers agree.

/// Channels of a PNG color type (0 gray, 2 RGB, 6 RGBA).
fn png_channels(color: u8) -> usize {
    match color {
        2 => 3,
        6 => 4,
        _ => 1,
    }
}

/// A PNG (8-bit; color type 0 gray, 2 RGB, 6 RGBA) of pseudo-random pixels.
pub fn png(w: u32, h: u32, color: u8, seed: u64) -> Vec<u8> {
    png_of(w, h, color, &noise(w as usize * h as usize * png_channels(color), seed, false))
}

/// A PNG of the given pixels (`h` rows of `w` pixels, 8 bits a channel).
pub fn png_of(w: u32, h: u32, color: u8, pixels: &[u8]) -> Vec<u8> {
    let mut raw = Vec::with_capacity(pixels.len() + h as usize);
    for row in pixels.chunks((w as usize * png_channels(color)).max(1)) {
        raw.push(0); // filter type: none
        raw.extend_from_slice(row);
    }
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), Compression::default());
    z.write_all(&raw).expect("writing to memory");
    let idat = z.finish().expect("writing to memory");
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = |ty: &[u8; 4], data: &[u8]| {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let start = out.len();
        out.extend_from_slice(ty);
        out.extend_from_slice(data);
        let crc = crc32fast::hash(&out[start..]);
        out.extend_from_slice(&crc.to_be_bytes());
    };
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, color, 0, 0, 0]);
    chunk(b"IHDR", &ihdr);
    chunk(b"IDAT", &idat);
    chunk(b"IEND", &[]);
    out
}

/// A two-colour GIF89a (a 0/255 mask): LZW with a clear code before every pixel.
pub fn gif(w: u16, h: u16, seed: u64) -> Vec<u8> {
    let mut out = b"GIF89a".to_vec();
    out.extend_from_slice(&w.to_le_bytes());
    out.extend_from_slice(&h.to_le_bytes());
    out.extend_from_slice(&[0x80, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0x2C, 0, 0, 0, 0]);
    out.extend_from_slice(&w.to_le_bytes());
    out.extend_from_slice(&h.to_le_bytes());
    out.extend_from_slice(&[0, 2]);
    let (mut acc, mut nbits, mut data) = (0u32, 0u32, Vec::new());
    let mut put = |code: u32, data: &mut Vec<u8>| {
        acc |= code << nbits;
        nbits += 3;
        while nbits >= 8 {
            data.push(acc as u8);
            acc >>= 8;
            nbits -= 8;
        }
    };
    for p in noise(w as usize * h as usize, seed, false) {
        put(4, &mut data);
        put((p & 1) as u32, &mut data);
    }
    put(5, &mut data);
    if nbits > 0 {
        data.push(acc as u8);
    }
    for block in data.chunks(255) {
        out.push(block.len() as u8);
        out.extend_from_slice(block);
    }
    out.extend_from_slice(&[0, 0x3B]);
    out
}

/// An uncompressed baseline TIFF (gray or RGB, 8 bits), little- or big-endian, with its IFD
/// after the pixels (as many writers do); width/height as LONG for an even `seed`, else SHORT.
pub fn tiff(w: u32, h: u32, rgb: bool, big_endian: bool, seed: u64) -> Vec<u8> {
    let spp: u32 = if rgb { 3 } else { 1 };
    let u16b = |v: u16| if big_endian { v.to_be_bytes() } else { v.to_le_bytes() };
    let u32b = |v: u32| if big_endian { v.to_be_bytes() } else { v.to_le_bytes() };
    let mut out = Vec::new();
    out.extend_from_slice(if big_endian { b"MM\0*" } else { b"II*\0" });
    out.extend_from_slice(&[0; 4]);
    let strip = out.len() as u32;
    out.extend_from_slice(&noise((w * h * spp) as usize, seed, false));
    if out.len() % 2 == 1 {
        out.push(0);
    }
    let bps_at = out.len() as u32;
    if rgb {
        for _ in 0..3 {
            out.extend_from_slice(&u16b(8));
        }
    }
    let ifd = out.len() as u32;
    out[4..8].copy_from_slice(&u32b(ifd));
    const SHORT: u16 = 3;
    const LONG: u16 = 4;
    let dim = if seed.is_multiple_of(2) { LONG } else { SHORT };
    let entries: [(u16, u16, u32, u32); 10] = [
        (256, dim, 1, w),
        (257, dim, 1, h),
        (258, SHORT, spp, if rgb { bps_at } else { 8 }),
        (259, SHORT, 1, 1),
        (262, SHORT, 1, if rgb { 2 } else { 1 }),
        (273, LONG, 1, strip),
        (277, SHORT, 1, spp),
        (278, LONG, 1, h),
        (279, LONG, 1, w * h * spp),
        (284, SHORT, 1, 1),
    ];
    out.extend_from_slice(&u16b(entries.len() as u16));
    for (tag, ty, count, value) in entries {
        out.extend_from_slice(&u16b(tag));
        out.extend_from_slice(&u16b(ty));
        out.extend_from_slice(&u32b(count));
        if ty == SHORT && count == 1 {
            out.extend_from_slice(&u16b(value as u16));
            out.extend_from_slice(&[0, 0]);
        } else {
            out.extend_from_slice(&u32b(value));
        }
    }
    out.extend_from_slice(&u32b(0));
    out
}

/// Entropy-coded bytes of a JPEG scan: noise with every 0xFF stuffed.
fn scan_bytes(len: usize, seed: u64) -> Vec<u8> {
    noise(len, seed, false).into_iter().flat_map(|b| if b == 0xFF { vec![b, 0] } else { vec![b] }).collect()
}

/// A baseline JFIF JPEG header (APP0, optional APP1 Exif before the frame, DQT, SOF0, DHT, SOS)
/// with stuffed entropy-coded bytes.
pub fn jpeg(w: u16, h: u16, seed: u64, exif: bool) -> Vec<u8> {
    let mut o = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0];
    if exif {
        let body = noise(3000, seed, true);
        o.extend_from_slice(&[0xFF, 0xE1]);
        o.extend_from_slice(&((body.len() + 8) as u16).to_be_bytes());
        o.extend_from_slice(b"Exif\0\0");
        o.extend_from_slice(&body);
    }
    o.extend_from_slice(&[0xFF, 0xDB, 0x00, 0x43, 0x00]);
    o.extend(1..=64u8);
    o.extend_from_slice(&[0xFF, 0xC0, 0x00, 0x11, 0x08]);
    o.extend_from_slice(&h.to_be_bytes());
    o.extend_from_slice(&w.to_be_bytes());
    o.extend_from_slice(&[3, 1, 0x22, 0, 2, 0x11, 0, 3, 0x11, 0]);
    o.extend_from_slice(&[0xFF, 0xC4, 0x00, 0x14, 0x00, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    o.extend_from_slice(&[0xFF, 0xDA, 0x00, 0x0C, 0x03, 1, 0x00, 2, 0x11, 3, 0x11, 0x00, 0x3F, 0x00]);
    o.extend(scan_bytes(700, seed));
    o.extend_from_slice(&[0xFF, 0xD9]);
    o
}

/// An ITU-T.81 SOF3 (lossless) header as in DDSM `.LJPEG`, with `bits` precision.
pub fn ljpeg(w: u16, h: u16, bits: u8, seed: u64) -> Vec<u8> {
    let mut o = vec![0xFF, 0xD8, 0xFF, 0xC3, 0x00, 0x0B, bits];
    o.extend_from_slice(&h.to_be_bytes());
    o.extend_from_slice(&w.to_be_bytes());
    o.extend_from_slice(&[1, 1, 0x11, 0]);
    o.extend_from_slice(&[0xFF, 0xC4, 0x00, 0x14, 0x00, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    o.extend_from_slice(&[0xFF, 0xDA, 0x00, 0x08, 0x01, 1, 0x00, 0x01, 0x00, 0x00]);
    o.extend(scan_bytes(900, seed));
    o.extend_from_slice(&[0xFF, 0xD9]);
    o
}

/// A decodable lossless JPEG (ITU-T T.81 process 14, SOF3) of one component: `samples` (row
/// after row, `bits` of precision used) coded with predictor 1 (the left neighbour; the first
/// column from above, the first sample from `2^(bits-1)`) and one Huffman table giving every
/// difference category (0-16) a 5-bit code. The header says `w` x `h`; DDSM files whose header
/// is transposed against their `.ics` are written by giving `h`, `w`.
pub fn ljpeg_lossless(w: u16, h: u16, bits: u8, samples: &[u16]) -> Vec<u8> {
    assert_eq!(samples.len(), w as usize * h as usize, "one sample per pixel");
    assert!((2..=16).contains(&bits));
    let mut o = vec![0xFF, 0xD8, 0xFF, 0xC3, 0x00, 0x0B, bits];
    o.extend_from_slice(&h.to_be_bytes());
    o.extend_from_slice(&w.to_be_bytes());
    o.extend_from_slice(&[1, 1, 0x11, 0]);
    // DHT: DC table 0, 17 codes of 5 bits for categories 0..=16.
    o.extend_from_slice(&[0xFF, 0xC4, 0x00, 36, 0x00]);
    let mut counts = [0u8; 16];
    counts[4] = 17;
    o.extend_from_slice(&counts);
    o.extend(0..=16u8);
    // SOS: one component, table 0, predictor 1, Se 0, Ah/Al 0.
    o.extend_from_slice(&[0xFF, 0xDA, 0x00, 0x08, 0x01, 1, 0x00, 1, 0, 0]);
    let (mut acc, mut nbits) = (0u64, 0u32);
    let mut put = |o: &mut Vec<u8>, value: u32, len: u32| {
        acc = acc << len | (value as u64 & ((1u64 << len) - 1));
        nbits += len;
        while nbits >= 8 {
            let byte = (acc >> (nbits - 8)) as u8;
            o.push(byte);
            if byte == 0xFF {
                o.push(0); // byte stuffing
            }
            nbits -= 8;
        }
    };
    let (w, h) = (w as usize, h as usize);
    for y in 0..h {
        for x in 0..w {
            let pred = match (x, y) {
                (0, 0) => 1i32 << (bits - 1),
                (0, _) => samples[(y - 1) * w] as i32,
                _ => samples[y * w + x - 1] as i32,
            };
            // Differences are taken modulo 2^16, in -32767..=32768.
            let mut diff = (samples[y * w + x] as i32 - pred).rem_euclid(65_536);
            if diff > 32_768 {
                diff -= 65_536;
            }
            let ssss = 32 - diff.unsigned_abs().leading_zeros();
            put(&mut o, ssss, 5);
            if (1..16).contains(&ssss) {
                let extra = if diff < 0 { diff - 1 } else { diff };
                put(&mut o, extra as u32, ssss);
            }
        }
    }
    // Pad the last byte with one bits: seven of them complete any partial byte, and what stays
    // in the accumulator is padding only.
    put(&mut o, 0x7F, 7);
    o.extend_from_slice(&[0xFF, 0xD9]);
    o
}

/// An 8-bit binary PGM (the DDSM `COMB.16_PGM` stand-in).
pub fn pgm(w: u32, h: u32, seed: u64) -> Vec<u8> {
    let mut o = format!("P5\n{w} {h}\n255\n").into_bytes();
    o.extend(noise((w * h) as usize, seed, false));
    o
}

/// A raw JSRT `.IMG`: headerless big-endian 16-bit, 12 bits used.
pub fn jsrt_img(side: usize, seed: u64) -> Vec<u8> {
    noise(side * side * 2, seed, false)
        .chunks(2)
        .flat_map(|c| (u16::from_be_bytes([c[0], c[1]]) & 0x0FFF).to_be_bytes())
        .collect()
}

// ------------------------------------------------------------------------------------------------
// Volumes: NIfTI-1 / Analyze 7.5 share the 348-byte header; voxels are int16, so nibabel could
// load the files.

/// A 348-byte NIfTI-1 / Analyze 7.5 header of `shape` (unused dimensions 1) and voxel size
/// `pixdim`; `big` writes big-endian (OASIS-1 Analyze); `magic` is `n+1\0` for a single-file
/// NIfTI, `ni1\0` for the `.hdr` of a NIfTI pair, zeros for Analyze.
pub fn volume_header(shape: &[i16], pixdim: &[f32], big: bool, magic: &[u8; 4], vox_offset: f32) -> Vec<u8> {
    let mut h = vec![0u8; 348];
    let i16b = |v: i16| if big { v.to_be_bytes() } else { v.to_le_bytes() };
    let f32b = |v: f32| if big { v.to_be_bytes() } else { v.to_le_bytes() };
    h[0..4].copy_from_slice(&(if big { 348i32.to_be_bytes() } else { 348i32.to_le_bytes() }));
    h[38] = b'r';
    h[40..42].copy_from_slice(&i16b(shape.len() as i16));
    for i in 0..7 {
        h[42 + 2 * i..44 + 2 * i].copy_from_slice(&i16b(shape.get(i).copied().unwrap_or(1)));
    }
    h[70..72].copy_from_slice(&i16b(4)); // datatype int16
    h[72..74].copy_from_slice(&i16b(16)); // bitpix
    h[76..80].copy_from_slice(&f32b(1.0));
    for (i, d) in pixdim.iter().enumerate() {
        h[80 + 4 * i..84 + 4 * i].copy_from_slice(&f32b(*d));
    }
    h[108..112].copy_from_slice(&f32b(vox_offset));
    h[112..116].copy_from_slice(&f32b(1.0)); // scl_slope
    h[344..348].copy_from_slice(magic);
    h
}

/// int16 voxels of `shape`, pseudo-random.
pub fn voxels(shape: &[i16], seed: u64) -> Vec<u8> {
    let n: usize = shape.iter().map(|d| *d as usize).product();
    noise(n * 2, seed, false)
}

/// A single-file NIfTI-1 `.nii` (voxels at 352), gzipped (`.nii.gz`) with `gz`.
pub fn nifti(shape: &[i16], pixdim: &[f32], seed: u64, gz: bool) -> Vec<u8> {
    let mut v = volume_header(shape, pixdim, false, b"n+1\0", 352.0);
    v.extend_from_slice(&[0; 4]);
    v.extend_from_slice(&voxels(shape, seed));
    if gz { gzip(&v) } else { v }
}

/// An Analyze 7.5 / NIfTI pair: (`.hdr`, `.img`).
pub fn analyze_pair(shape: &[i16], pixdim: &[f32], big: bool, magic: &[u8; 4], seed: u64) -> (Vec<u8>, Vec<u8>) {
    (volume_header(shape, pixdim, big, magic, 0.0), voxels(shape, seed))
}

// ------------------------------------------------------------------------------------------------
// DICOM.

/// The value of a DICOM element, padded to an even length as its VR wants.
#[derive(Clone, Copy, Debug)]
pub enum Dv<'a> {
    /// A UID (padded with NUL).
    Uid(&'a str),
    /// Text (padded with a space).
    Text(&'a str),
    /// An unsigned short (US).
    Us(u16),
    /// Raw bytes, as they are.
    Raw(&'a [u8]),
}

impl Dv<'_> {
    fn bytes(&self) -> Vec<u8> {
        let (mut v, pad) = match self {
            Dv::Uid(s) => (s.as_bytes().to_vec(), 0),
            Dv::Text(s) => (s.as_bytes().to_vec(), b' '),
            Dv::Us(n) => (n.to_le_bytes().to_vec(), 0),
            Dv::Raw(b) => return b.to_vec(),
        };
        if v.len() % 2 == 1 {
            v.push(pad);
        }
        v
    }
}

/// CT Image Storage, the SOP class when the elements name none.
const CT_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.2";

/// A small but valid DICOM file: Part 10 preamble, Explicit VR meta group (SOP class and
/// instance from (0008,0016) and (0008,0018)), then an Implicit VR Little Endian data set of
/// `elements` ((group, element, value), written in the order given: give them sorted).
pub fn dicom(elements: &[(u16, u16, Dv)]) -> Vec<u8> {
    let find = |g: u16, e: u16| elements.iter().find(|x| (x.0, x.1) == (g, e)).map(|x| x.2.bytes());
    let short = |out: &mut Vec<u8>, g: u16, e: u16, vr: &[u8; 2], v: &[u8]| {
        out.extend_from_slice(&g.to_le_bytes());
        out.extend_from_slice(&e.to_le_bytes());
        out.extend_from_slice(vr);
        out.extend_from_slice(&(v.len() as u16).to_le_bytes());
        out.extend_from_slice(v);
    };
    let mut body = Vec::new();
    body.extend_from_slice(&[2, 0, 1, 0]);
    body.extend_from_slice(b"OB\0\0");
    body.extend_from_slice(&2u32.to_le_bytes());
    body.extend_from_slice(&[0, 1]);
    short(&mut body, 2, 2, b"UI", &find(8, 0x16).unwrap_or_else(|| Dv::Uid(CT_IMAGE_STORAGE).bytes()));
    short(&mut body, 2, 3, b"UI", &find(8, 0x18).unwrap_or_default());
    short(&mut body, 2, 0x10, b"UI", &Dv::Uid("1.2.840.10008.1.2").bytes());
    let mut out = vec![0u8; 128];
    out.extend_from_slice(b"DICM");
    short(&mut out, 2, 0, b"UL", &(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    for (g, e, v) in elements {
        let v = v.bytes();
        out.extend_from_slice(&g.to_le_bytes());
        out.extend_from_slice(&e.to_le_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
        out.extend_from_slice(&v);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::organize::transform::{image_size, volume_header as read_volume};

    /// Every image fixture is read back at its size by medfs's own header readers.
    #[test]
    fn images_have_the_size_they_say() {
        for seed in [1, 2] {
            assert_eq!(image_size(&png(57, 58, 2, seed), &mut || None), Some((57, 58)));
            assert_eq!(image_size(&gif(57, 58, seed), &mut || None), Some((57, 58)));
            assert_eq!(image_size(&tiff(57, 58, seed == 1, seed == 2, seed), &mut || None), Some((57, 58)));
            assert_eq!(image_size(&jpeg(57, 58, seed, seed == 2), &mut || None), Some((57, 58)));
            assert_eq!(image_size(&ljpeg(57, 58, 12, seed), &mut || None), Some((57, 58)));
        }
        let v = read_volume(&nifti(&[4, 3, 2], &[1.0, 1.0, 1.5], 1, true)).unwrap();
        assert_eq!((v.shape, v.voxel_size), (vec![4, 3, 2], vec![1.0, 1.0, 1.5]));
        let (hdr, img) = analyze_pair(&[4, 3, 2, 1], &[1.0, 1.0, 1.25, 0.0], true, &[0; 4], 1);
        assert_eq!(read_volume(&hdr).unwrap().shape, vec![4, 3, 2, 1]);
        assert_eq!(img.len(), 4 * 3 * 2 * 2);
    }

    /// A DICOM fixture is read by medfs's DICOM reader with the tags it was given.
    #[test]
    fn dicom_has_the_tags_it_was_given() {
        let f = dicom(&[
            (8, 0x18, Dv::Uid("1.2.3.4")),
            (8, 0x60, Dv::Text("CT")),
            (0x10, 0x20, Dv::Text("PAT")),
            (0x20, 0x0E, Dv::Uid("1.2.3")),
            (0x28, 0x10, Dv::Us(8)),
            (0x7FE0, 0x10, Dv::Raw(&[0; 128])),
        ]);
        assert_eq!(&f[128..132], b"DICM");
        let info = crate::dicom::parse_header(&f).expect("a DICOM header");
        assert_eq!(info.patient_id.as_deref(), Some("PAT"));
        assert_eq!(info.series_uid.as_deref(), Some("1.2.3"));
        assert_eq!(info.sop_uid.as_deref(), Some("1.2.3.4"));
        assert_eq!(info.rows, Some(8));
    }

    /// Archives written here list back with their members and bytes.
    #[test]
    fn archives_hold_their_entries() {
        let dir = std::env::temp_dir().join(format!("medfs-fixtures-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let entries = [entry("a/", vec![]), entry("a/b.txt", b"hello".to_vec())];
        write_zip(&dir.join("x.zip"), &entries, ZipMethod::Deflated).unwrap();
        let mut z = zip::ZipArchive::new(std::fs::File::open(dir.join("x.zip")).unwrap()).unwrap();
        let mut s = String::new();
        io::Read::read_to_string(&mut z.by_name("a/b.txt").unwrap(), &mut s).unwrap();
        assert_eq!((z.len(), s.as_str()), (2, "hello"));
        let t = tar_bytes(&entries).unwrap();
        let names: Vec<String> = tar::Archive::new(&t[..])
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["a/", "a/b.txt"]);
        assert!(
            write_zip(&dir.join("no/such/dir.zip"), &entries, ZipMethod::Stored)
                .unwrap_err()
                .to_string()
                .contains("dir.zip")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
