//! Derived files in the core: sizes exact before any read, bytes decoded by the `png` crate equal
//! to the inputs, parts rendered once under concurrent readers, random reads equal to the
//! sequential bytes, the budget kept, and broken inputs failing with EIO, never wrong bytes.

use std::sync::Arc;

use medfs::archive::ByteSource;
use medfs::error::FsError;
use medfs::fixtures::{ljpeg_lossless, noise};
use medfs::fs::MedFs;
use medfs::pool::Pool;
use medfs::tree::TreeOptions;

use super::{ZipMethod, entry, ino, read_all, zip_bytes};

const ICS: &str = "ics_version 1.0\nfilename A-1509-1\nDIGITIZER LUMISYS LASER\nSELECTED\n\
LEFT_CC LINES 700 PIXELS_PER_LINE 900 BITS_PER_PIXEL 12 RESOLUTION 50 NON_OVERLAY\n\
RIGHT_CC LINES 300 PIXELS_PER_LINE 200 BITS_PER_PIXEL 12 RESOLUTION 50 OVERLAY\n";
pub(super) const DIR: &str = "ddsm/A_1509_1/case1509";
pub(super) const CASE: &str = "cases/cancers/cancer_08/case1509";

fn samples(n: usize, bits: u8, seed: u64) -> Vec<u16> {
    noise(n * 2, seed, false).chunks(2).map(|c| u16::from_le_bytes([c[0], c[1]]) >> (16 - bits)).collect()
}

/// A DDSM case in a zip: LEFT_CC 900x700 (header as the .ics), RIGHT_CC 200x300 with its header
/// transposed, an overlay for RIGHT_CC; and a JSRT image. The core with datasets and derived
/// files on.
pub(super) fn core(cache: usize, derived: bool) -> (MedFs, Vec<u16>, Vec<u16>, Vec<u8>) {
    let left = samples(900 * 700, 12, 1);
    let right = samples(200 * 300, 12, 2);
    let img = medfs::fixtures::jsrt_img(512, 3);
    let overlay = "TOTAL_ABNORMALITIES 1\nABNORMALITY 1\nLESION_TYPE MASS SHAPE ROUND MARGINS CIRCUMSCRIBED\n\
                   ASSESSMENT 4\nSUBTLETY 2\nPATHOLOGY BENIGN\nTOTAL_OUTLINES 1\nBOUNDARY\n50 60 2 2 2 2 4 4 4 4 6 6 6 6 0 0 0 0 #\n";
    let zip = zip_bytes(
        &[
            entry(&format!("{CASE}/A-1509-1.ics"), ICS.as_bytes().to_vec()),
            entry(&format!("{CASE}/A_1509_1.LEFT_CC.LJPEG"), ljpeg_lossless(900, 700, 12, &left)),
            entry(&format!("{CASE}/A_1509_1.RIGHT_CC.LJPEG"), ljpeg_lossless(300, 200, 12, &right)),
            entry(&format!("{CASE}/A_1509_1.RIGHT_CC.OVERLAY"), overlay.as_bytes().to_vec()),
            entry("All247images/JPCLN001.IMG", img.clone()),
        ],
        ZipMethod::Deflated,
    );
    let src: Arc<dyn ByteSource> = Arc::new(medfs::fuzzing::Mem(zip));
    let pool = Pool::from_sources(vec![("d.zip".into(), src)], cache, false).unwrap();
    let opts = TreeOptions { datasets: true, derived, ..Default::default() };
    let (tree, reader) = medfs::build::parts(pool, opts, &medfs::profile::builtin());
    (MedFs::from_parts(tree, reader), left, right, img)
}

fn decode(png: &[u8]) -> (u32, u32, u8, Vec<u8>) {
    let mut r = png::Decoder::new(std::io::Cursor::new(png)).read_info().unwrap();
    let mut buf = vec![0; r.output_buffer_size().unwrap()];
    let info = r.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    (info.width, info.height, info.bit_depth as u8, buf)
}

fn be(samples: &[u16]) -> Vec<u8> {
    samples.iter().flat_map(|s| s.to_be_bytes()).collect()
}

#[test]
fn derived_pngs_have_exact_sizes_and_the_inputs_values() {
    let (fs, left, right, img) = core(64 << 20, true);
    let size = |p: &str| fs.getattr(ino(&fs, p)).unwrap().size;
    let left_png = format!("{DIR}/A_1509_1.LEFT_CC.png");
    let stat_before = size(&left_png);
    assert_eq!(fs.derived_work(), (0, 0), "nothing is computed before a read");
    let bytes = read_all(&fs, &left_png, 128 << 10).unwrap();
    assert_eq!(bytes.len() as u64, stat_before);
    assert_eq!(decode(&bytes), (900, 700, 16, be(&left)));
    // Transposed header: the samples in stream order, shaped as the .ics says.
    let right_png = read_all(&fs, &format!("{DIR}/A_1509_1.RIGHT_CC.png"), 1 << 20).unwrap();
    assert_eq!(decode(&right_png), (200, 300, 16, be(&right)));
    // JSRT: the raw big-endian samples as they are.
    let jsrt = read_all(&fs, "scr/JPCLN001/JPCLN001/JPCLN001.png", 64 << 10).unwrap();
    assert_eq!(decode(&jsrt), (512, 512, 16, img));
    // The mask: the 5x5 square from (50, 60), filled.
    let mask = decode(&read_all(&fs, &format!("{DIR}/A_1509_1.RIGHT_CC.mask1.png"), 4096).unwrap());
    assert_eq!((mask.0, mask.1, mask.2), (200, 300, 8));
    for (i, &v) in mask.3.iter().enumerate() {
        let (x, y) = (i % 200, i / 200);
        assert_eq!(v == 255, (50..=54).contains(&x) && (60..=64).contains(&y), "({x}, {y})");
    }
    // Previews: 8-bit, longest side at most 256.
    for p in [format!("{DIR}/preview.png"), "scr/JPCLN001/JPCLN001/preview.png".into()] {
        let (w, h, depth, _) = decode(&read_all(&fs, &p, 1 << 20).unwrap());
        assert!(depth == 8 && w.max(h) <= 256 && w.max(h) > 128, "{p}: {w}x{h}x{depth}");
    }
    // Random reads give the same bytes as the sequential one.
    let id = ino(&fs, &left_png);
    let mut out = Vec::new();
    for (off, len) in [(0u64, 10usize), (33, 5000), (1_000_000, 300_000), (stat_before - 20, 100), (stat_before, 10)] {
        fs.read(id, off, len, &mut out).unwrap();
        let end = (off + len as u64).min(stat_before) as usize;
        assert_eq!(out, bytes[off.min(stat_before) as usize..end], "{off}+{len}");
    }
    // Listed where the originals are.
    let csv = read_all(&fs, "ddsm/labels.csv", 1 << 20).unwrap();
    let csv = String::from_utf8(csv).unwrap();
    assert!(csv.contains("A_1509_1/case1509/A_1509_1.LEFT_CC.png,A_1509_1,case1509"), "{csv}");
    // Masks are label files: a column of their kind, not rows.
    assert!(csv.lines().next().unwrap().ends_with(",ddsm_mask"), "{csv}");
    assert!(csv.contains("A_1509_1/case1509/A_1509_1.RIGHT_CC.mask1.png"), "{csv}");
    assert!(!csv.lines().any(|l| l.starts_with("A_1509_1/case1509/A_1509_1.RIGHT_CC.mask1.png")), "{csv}");
    assert!(!csv.contains("preview.png"), "a study's preview has no row of its own: {csv}");
    let meta: serde_json::Value =
        serde_json::from_slice(&read_all(&fs, &format!("{DIR}/metadata.json"), 1 << 20).unwrap()).unwrap();
    assert_eq!(
        meta["derived"]["A_1509_1.LEFT_CC.png"],
        serde_json::json!({"kind": "ddsm_png", "from": ["A_1509_1.LEFT_CC.LJPEG"]})
    );
}

#[test]
fn concurrent_readers_render_each_part_once_within_the_budget() {
    // 900x700 16-bit: 1.26 MB decoded, a PNG of 5 row parts of about 256 KiB: 2.6 MB at most in
    // the cache, under a budget of 8 MiB. (A budget under the working set evicts parts that slower
    // readers still need, which are then made again: correct bytes, more work; checked below.)
    let budget = 8 << 20;
    let (fs, left, _, _) = core(budget, true);
    let fs = Arc::new(fs);
    let path = format!("{DIR}/A_1509_1.LEFT_CC.png");
    let results: Vec<Vec<u8>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let (fs, path) = (fs.clone(), path.clone());
                s.spawn(move || read_all(&fs, &path, [4096, 128 << 10, 1 << 20][i % 3]).unwrap())
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(results.windows(2).all(|w| w[0] == w[1]), "every reader got the same bytes");
    assert_eq!(decode(&results[0]).3, be(&left));
    let (parts, memos) = fs.derived_work();
    // Head, 5 row parts, tail: each once; the LJPEG decoded once.
    assert_eq!((parts, memos), (7, 1), "parts rendered, images decoded");
    let peak = fs.pool().cache.peak_bytes();
    assert!(peak <= budget, "cache peak {peak} over the budget {budget}");

    // A budget of 3 MiB, just above the decoder's working memory (4 bytes a pixel, 2.5 MB,
    // reserved while it runs) and about the file's working set: the same bytes, the peak within.
    let budget = 3 << 20;
    let (fs, ..) = core(budget, true);
    let again = std::thread::scope(|s| {
        let a = s.spawn(|| read_all(&fs, &path, 128 << 10).unwrap());
        let b = s.spawn(|| read_all(&fs, &path, 1 << 20).unwrap());
        [a.join().unwrap(), b.join().unwrap()]
    });
    assert!(again.iter().all(|r| *r == results[0]));
    let peak = fs.pool().cache.peak_bytes();
    assert!(peak <= budget, "cache peak {peak} over the budget {budget}");
}

#[test]
fn a_reader_starting_at_the_end_gets_the_checksum_of_every_row() {
    let (fs, left, _, _) = core(64 << 20, true);
    let path = format!("{DIR}/A_1509_1.LEFT_CC.png");
    let id = ino(&fs, &path);
    let size = fs.getattr(id).unwrap().size;
    let mut tail = Vec::new();
    fs.read(id, size - 28, 28, &mut tail).unwrap();
    let whole = read_all(&fs, &path, 1 << 20).unwrap();
    assert_eq!(&whole[whole.len() - 28..], &tail[..]);
    assert_eq!(decode(&whole).3, be(&left));
}

#[test]
fn no_derived_hides_them_and_a_broken_input_fails_without_bytes() {
    let (fs, ..) = core(64 << 20, false);
    assert!(fs.resolve(format!("{DIR}/A_1509_1.LEFT_CC.png").as_bytes()).is_err());
    assert!(fs.resolve(format!("{DIR}/A_1509_1.LEFT_CC.LJPEG").as_bytes()).is_ok());
    let meta = read_all(&fs, &format!("{DIR}/metadata.json"), 1 << 20).unwrap();
    assert!(!String::from_utf8(meta).unwrap().contains("derived"));

    // A stream that says SOF3 and whose scan is codes its Huffman table lacks (`11111`): planned
    // (the header is fine), every read of the image's rows fails with EIO, the head still reads.
    let mut bad = ljpeg_lossless(900, 700, 12, &samples(900 * 700, 12, 1));
    let n = bad.len();
    // SOI 2, SOF3 13, DHT 38, SOS 10: the scan starts at byte 63.
    bad[63..n - 2].fill(0xFE);
    let zip = zip_bytes(
        &[
            entry(&format!("{CASE}/A-1509-1.ics"), ICS.as_bytes().to_vec()),
            entry(&format!("{CASE}/A_1509_1.LEFT_CC.LJPEG"), bad),
        ],
        ZipMethod::Stored,
    );
    let src: Arc<dyn ByteSource> = Arc::new(medfs::fuzzing::Mem(zip));
    let pool = Pool::from_sources(vec![("d.zip".into(), src)], 64 << 20, false).unwrap();
    let opts = TreeOptions { datasets: true, derived: true, ..Default::default() };
    let (tree, reader) = medfs::build::parts(pool, opts, &medfs::profile::builtin());
    let fs = MedFs::from_parts(tree, reader);
    let id = ino(&fs, &format!("{DIR}/A_1509_1.LEFT_CC.png"));
    let mut out = Vec::new();
    fs.read(id, 0, 33, &mut out).unwrap();
    assert_eq!(&out[..8], b"\x89PNG\r\n\x1a\n");
    let err = fs.read(id, 0, 1 << 20, &mut out).unwrap_err();
    assert!(matches!(err, FsError::Unreadable { .. }), "{err:?}");
    assert_eq!(err.errno(), libc::EIO);
    assert!(err.to_string().contains("lossless JPEG"), "{err}");
    // Failed for good: later reads fail at once, without decoding again.
    let memos = fs.derived_work().1;
    assert!(fs.read(id, 300_000, 4096, &mut out).unwrap_err().to_string().contains("lossless JPEG"));
    assert_eq!(fs.derived_work().1, memos, "no second decode");
}

#[test]
fn an_image_too_big_for_the_budget_is_refused_not_taken() {
    // 900x700 needs 2.5 MB to decode; a budget of 2 MiB refuses it with a clear error, while the
    // JSRT PNG (read row by row, nothing decoded) still reads.
    let (fs, _, _, img) = core(2 << 20, true);
    let err = read_all(&fs, &format!("{DIR}/A_1509_1.LEFT_CC.png"), 1 << 20).unwrap_err();
    assert_eq!(err.errno(), libc::EIO);
    assert!(err.to_string().contains("more than the cache budget (--cache-size)"), "{err}");
    let jsrt = read_all(&fs, "scr/JPCLN001/JPCLN001/JPCLN001.png", 128 << 10).unwrap();
    assert_eq!(decode(&jsrt).3, img);
    assert!(fs.pool().cache.peak_bytes() <= 2 << 20);
}
