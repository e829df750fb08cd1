//! Derived files through a real FUSE mount (issue 12): PNGs beside JSRT raw images and DDSM
//! LJPEGs, mask PNGs of DDSM overlays, study previews. Each is read through the kernel, its
//! `st_size` (before and after the read) equals the bytes read, and it is decoded by Pillow and
//! compared with a reference computed independently from the input: numpy over the raw `.IMG`,
//! `imagecodecs.jpegsof3_decode` over the `.LJPEG` (written as SOF3 by `fixtures::ljpeg_lossless`),
//! Pillow's own polygon fill over the overlay's chain code. Concurrent readers of one file get
//! the same bytes and each part is rendered once (the daemon's debug log); `--no-derived` hides
//! them; a warm mount (persisted tree) serves the same bytes.

mod common;

use std::path::Path;

use common::*;
use medfs::fixtures::{jsrt_img, ljpeg_lossless, noise};

const CASE: &str = "cases/cancers/cancer_08/case1509";
const STUDY: &str = "ddsm/A_1509_1/case1509";
const ICS: &str = "ics_version 1.0\nfilename A-1509-1\nDATE_OF_STUDY 2 7 1995\nPATIENT_AGE 42\nFILM\n\
FILM_TYPE REGULAR\nDENSITY 4\nDATE_DIGITIZED 7 22 1997\nDIGITIZER LUMISYS LASER\nSELECTED\n\
LEFT_CC LINES 700 PIXELS_PER_LINE 900 BITS_PER_PIXEL 12 RESOLUTION 50 NON_OVERLAY\n\
RIGHT_CC LINES 300 PIXELS_PER_LINE 200 BITS_PER_PIXEL 12 RESOLUTION 50 OVERLAY\n";
/// Two abnormalities: a diamond and a rectangle, as Freeman chain codes.
const OVERLAY: &str = "TOTAL_ABNORMALITIES 2\nABNORMALITY 1\nLESION_TYPE MASS SHAPE IRREGULAR MARGINS SPICULATED\n\
ASSESSMENT 4\nSUBTLETY 2\nPATHOLOGY MALIGNANT\nTOTAL_OUTLINES 1\nBOUNDARY\n\
100 40 3 3 3 3 3 3 3 3 3 3 3 3 3 3 3 3 3 3 3 3 5 5 5 5 5 5 5 5 5 5 5 5 5 5 5 5 5 5 5 5\n\
7 7 7 7 7 7 7 7 7 7 7 7 7 7 7 7 7 7 7 7 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 #\n\
ABNORMALITY 2\nLESION_TYPE CALCIFICATION TYPE PLEOMORPHIC DISTRIBUTION CLUSTERED\nASSESSMENT 3\n\
SUBTLETY 3\nPATHOLOGY BENIGN\nTOTAL_OUTLINES 1\nBOUNDARY\n\
20 200 2 2 2 2 2 2 2 2 2 2 2 2 2 2 2 2 2 2 2 2 2 2 2 2 2 2 2 2 2 2 4 4 4 4 4 4 4 4 4 4 \
6 6 6 6 6 6 6 6 6 6 6 6 6 6 6 6 6 6 6 6 6 6 6 6 6 6 6 6 6 6 0 0 0 0 0 0 0 0 0 0 #\n";

fn samples(n: usize, bits: u8, seed: u64) -> Vec<u16> {
    noise(n * 2, seed, false).chunks(2).map(|c| u16::from_le_bytes([c[0], c[1]]) >> (16 - bits)).collect()
}

/// A JSRT zip (JPCLN001 1024 x 1024: 9 row parts; JPCNN001 64 x 64) and a DDSM mirror folder:
/// LEFT_CC 900 x 700 at 12 bits as the .ics says, RIGHT_CC 200 x 300 with its header transposed,
/// an overlay of two abnormalities on RIGHT_CC.
fn sources(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let zip = dir.join("All247images.zip");
    make_zip(
        &zip,
        &[entry("All247images/JPCLN001.IMG", jsrt_img(1024, 1)), entry("All247images/JPCNN001.IMG", jsrt_img(64, 2))],
        ZipMethod::Deflated,
    );
    let mirror = dir.join("ddsm");
    let case = mirror.join(CASE);
    std::fs::create_dir_all(&case).unwrap();
    std::fs::write(case.join("A-1509-1.ics"), ICS).unwrap();
    std::fs::write(case.join("A_1509_1.LEFT_CC.LJPEG"), ljpeg_lossless(900, 700, 12, &samples(900 * 700, 12, 3)))
        .unwrap();
    std::fs::write(case.join("A_1509_1.RIGHT_CC.LJPEG"), ljpeg_lossless(300, 200, 12, &samples(200 * 300, 12, 4)))
        .unwrap();
    std::fs::write(case.join("A_1509_1.RIGHT_CC.OVERLAY"), OVERLAY).unwrap();
    (zip, mirror)
}

const DERIVED: [&str; 8] = [
    "scr/JPCLN001/JPCLN001/JPCLN001.png",
    "scr/JPCLN001/JPCLN001/preview.png",
    "scr/JPCNN001/JPCNN001/JPCNN001.png",
    "ddsm/A_1509_1/case1509/A_1509_1.LEFT_CC.png",
    "ddsm/A_1509_1/case1509/A_1509_1.RIGHT_CC.png",
    "ddsm/A_1509_1/case1509/A_1509_1.RIGHT_CC.mask1.png",
    "ddsm/A_1509_1/case1509/A_1509_1.RIGHT_CC.mask2.png",
    "ddsm/A_1509_1/case1509/preview.png",
];

/// Pillow decodes every derived file to the reference computed from its input, and SimpleITK
/// reads the same pixels.
const CHECK: &str = r##"
import sys, os, numpy as np, imagecodecs
import SimpleITK as sitk
from PIL import Image, ImageDraw
mnt = sys.argv[1]
def png(rel, mode=None):
    im = Image.open(os.path.join(mnt, rel)); im.load()
    if mode: assert im.mode == mode, (rel, im.mode)
    got = np.array(im)
    itk = sitk.GetArrayFromImage(sitk.ReadImage(os.path.join(mnt, rel)))
    assert itk.shape == got.shape and (itk.astype(np.int64) == got.astype(np.int64)).all(), ("SimpleITK", rel)
    return got
# JSRT: the raw big-endian samples, values kept.
for id, side in [("JPCLN001", 1024), ("JPCNN001", 64)]:
    raw = np.fromfile(os.path.join(mnt, f"scr/{id}/{id}/{id}.IMG"), dtype=">u2").reshape(side, side)
    got = png(f"scr/{id}/{id}/{id}.png")
    assert got.shape == raw.shape and (got.astype(np.uint16) == raw).all(), id
# DDSM: imagecodecs' SOF3 decoder over the LJPEG, reshaped to the .ics (LINES, PIXELS_PER_LINE).
study = "ddsm/A_1509_1/case1509"
for view, (lines, ppl) in [("LEFT_CC", (700, 900)), ("RIGHT_CC", (300, 200))]:
    ref = imagecodecs.jpegsof3_decode(open(os.path.join(mnt, study, f"A_1509_1.{view}.LJPEG"), "rb").read())
    ref = ref.reshape(lines, ppl)
    got = png(f"{study}/A_1509_1.{view}.png")
    assert got.shape == (lines, ppl) and (got.astype(np.uint16) == ref).all(), view
    assert got.max() < 4096, "12-bit values kept"
# Masks: the chain code walked here, filled by Pillow's polygon (outline included).
steps = [(0, -1), (1, -1), (1, 0), (1, 1), (0, 1), (-1, 1), (-1, 0), (-1, -1)]
text = open(os.path.join(mnt, study, "A_1509_1.RIGHT_CC.OVERLAY")).read()
chains = [c.split("#")[0].split() for c in text.split("BOUNDARY")[1:]]
for n, chain in enumerate(chains, 1):
    x, y = int(chain[0]), int(chain[1]); pts = [(x, y)]
    for d in chain[2:]:
        dx, dy = steps[int(d)]; x += dx; y += dy; pts.append((x, y))
    ref = Image.new("L", (200, 300), 0); ImageDraw.Draw(ref).polygon(pts, fill=255, outline=255)
    ref = np.array(ref); got = png(f"{study}/A_1509_1.RIGHT_CC.mask{n}.png", "L")
    assert set(np.unique(got)) <= {0, 255}
    assert all(got[py, px] == 255 for px, py in pts), f"outline {n}"
    diff = int((got != ref).sum())
    assert diff <= len(pts) // 4, f"mask {n}: {diff} pixels differ from Pillow's fill of {int((ref > 0).sum())}"
    assert (ref > 0).sum() > 300
# Previews: small 8-bit images.
for rel, shape in [("scr/JPCLN001/JPCLN001/preview.png", (256, 256)), (f"{study}/preview.png", (175, 225))]:
    got = png(rel, "L")
    assert got.shape == shape, (rel, got.shape)
    assert got.min() == 0 and got.max() == 255
print("ok")
"##;

#[test]
fn derived_pngs_read_through_the_mount_equal_their_references() {
    let tmp = tempfile::tempdir().unwrap();
    let (zip, mirror) = sources(tmp.path());
    let mnt = tmp.path().join("mnt");
    let log = mnt.with_extension("log");
    let parts_of = |path: &str| -> Vec<String> {
        let log = std::fs::read_to_string(&log).unwrap_or_default();
        let needle = format!("derived {path}: part ");
        log.lines().filter_map(|l| l.split_once(&needle).map(|(_, rest)| rest.to_string())).collect()
    };
    let left;
    {
        // A budget of 8 MiB: more than one decoded LJPEG and its parts (2.6 MB), less than all
        // the derived files' bytes (about 5 MB of PNGs plus 1.4 MB decoded).
        let m = mount(&[&zip, &mirror], &mnt, &["-vv", "--cache-size", "8M"]);
        // Listed beside the originals, and in labels.csv / metadata.json.
        let names: Vec<String> = walk(&m.path(STUDY));
        for want in ["A_1509_1.LEFT_CC.LJPEG", "A_1509_1.LEFT_CC.png", "A_1509_1.RIGHT_CC.mask2.png", "preview.png"] {
            assert!(names.iter().any(|n| n == want), "{want} in {names:?}");
        }
        let csv = std::fs::read_to_string(m.path("ddsm/labels.csv")).unwrap();
        assert!(csv.contains("A_1509_1/case1509/A_1509_1.RIGHT_CC.png,A_1509_1,case1509,"), "{csv}");
        let csv = std::fs::read_to_string(m.path("scr/labels.csv")).unwrap();
        assert!(csv.contains("JPCLN001/JPCLN001/JPCLN001.png,JPCLN001,JPCLN001,"), "{csv}");
        let meta = std::fs::read_to_string(m.path("scr/JPCLN001/JPCLN001/metadata.json")).unwrap();
        assert!(meta.contains("\"JPCLN001.png\": {\n      \"from\": [\n        \"JPCLN001.IMG\""), "{meta}");

        // Eight readers at once on a file nobody read yet: the same bytes, each part made once.
        let left_png = m.path("ddsm/A_1509_1/case1509/A_1509_1.LEFT_CC.png");
        let reads: Vec<Vec<u8>> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..8).map(|_| s.spawn(|| std::fs::read(&left_png).unwrap())).collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(reads.windows(2).all(|w| w[0] == w[1]), "concurrent readers got different bytes");
        left = reads[0].clone();

        for rel in DERIVED {
            read_checked(&m.path(rel));
        }
        let out = py(CHECK, &[&m.mnt]);
        assert_eq!(out.trim(), "ok");
    }
    // The daemon's cache never passed the budget (its own count, logged when the mount ends).
    // The daemon writes it as it exits, which may be just after the unmount returns: wait for it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let logged = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("cache peak ") || std::time::Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let peak_line = logged.lines().find(|l| l.contains("cache peak ")).expect("the cache peak is logged at unmount");
    let peak: usize = peak_line.split("cache peak ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
    eprintln!("{peak_line}");
    assert!(peak <= 8 << 20, "{peak_line}");
    assert!(peak > 1 << 20, "the derived files went through the cache: {peak_line}");
    // Head, 5 row parts (900 x 700 x 16 bits in 256 KiB parts), tail: each rendered once.
    let mut parts = parts_of("ddsm/A_1509_1/case1509/A_1509_1.LEFT_CC.png");
    parts.sort();
    let want: Vec<String> = (0..7).map(|p| format!("{p} of 7 rendered (ddsm_png)")).collect();
    assert_eq!(parts, want, "each part of the PNG rendered once");

    // A warm mount loads the persisted tree: same sizes and bytes, specs read from the file.
    let _ = std::fs::remove_file(&log);
    {
        let m = mount(&[&zip, &mirror], &mnt, &["-v"]);
        let again = read_checked(&m.path("ddsm/A_1509_1/case1509/A_1509_1.LEFT_CC.png"));
        assert_eq!(again, left);
        let log = std::fs::read_to_string(&log).unwrap() + &m.stderr;
        assert!(log.contains("loaded from"), "the warm mount loads the persisted tree: {log}");
    }

    // --no-derived: the originals only, and no `derived` key.
    {
        let m = mount(&[&zip, &mirror], &mnt, &["--no-derived"]);
        for rel in DERIVED {
            assert!(!m.path(rel).exists(), "{rel} with --no-derived");
        }
        assert!(m.path("ddsm/A_1509_1/case1509/A_1509_1.LEFT_CC.LJPEG").exists());
        let meta = std::fs::read_to_string(m.path("scr/JPCLN001/JPCLN001/metadata.json")).unwrap();
        assert!(!meta.contains("derived"), "{meta}");
    }
}
