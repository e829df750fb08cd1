//! Issue 4 acceptance, through real mounts: for each 2D dataset (shared/datasets/<slug>.md) a
//! small but faithful look-alike of the real download is written (archive names, member paths,
//! CSV headers and quirks, junk files), mounted with the medfs binary, and the whole dataset tree
//! is checked: every patient and study folder, the exact files of each study, `labels.json` and
//! `metadata.json` (exact keys and JSON types), `labels.csv` (every row, every path opens and has
//! the right bytes), `dataset.json`, the image bytes, and the raw `_archives/` view of each study
//! file and of the junk no profile places.
//!
//! The ways users hold downloads (issue 4 item 5) are covered: archives named one by one on the
//! command line, a folder holding everything, and an already extracted download tree.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use common::*;
use serde_json::{Map, Value, json};

// ------------------------------------------------------------------------------------------------
// Image bytes. Where a profile reads width/height from the header (DRIVE .tif, Kaggle DR .jpeg,
// USC-SIPI .tiff) the files are valid images of the stated size; the rest carry real headers too.

/// A real PNG (8-bit; color type 0 gray, 2 RGB, 6 RGBA) of pseudo-random pixels.
fn png(w: u32, h: u32, color: u8, seed: u64) -> Vec<u8> {
    let ch = match color {
        2 => 3,
        6 => 4,
        _ => 1,
    } as usize;
    let px = bytes(w as usize * h as usize * ch, seed, false);
    let mut raw = Vec::new();
    for row in px.chunks(w as usize * ch) {
        raw.push(0);
        raw.extend_from_slice(row);
    }
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(&raw).unwrap();
    let idat = z.finish().unwrap();
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = |ty: &[u8], data: &[u8]| {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        out.extend_from_slice(ty);
        out.extend_from_slice(data);
        let mut c = ty.to_vec();
        c.extend_from_slice(data);
        out.extend_from_slice(&crc32fast::hash(&c).to_be_bytes());
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

/// A real two-colour GIF89a (a 0/255 mask): LZW with a clear code before every pixel.
fn gif(w: u16, h: u16, seed: u64) -> Vec<u8> {
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
    for p in bytes(w as usize * h as usize, seed, false) {
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

/// A real uncompressed baseline TIFF (gray or RGB, 8 bits), little- or big-endian, with its IFD
/// after the pixels (as many writers do); width/height as SHORT or LONG.
fn tiff(w: u32, h: u32, rgb: bool, big_endian: bool, seed: u64) -> Vec<u8> {
    let spp: u32 = if rgb { 3 } else { 1 };
    let u16b = |v: u16| if big_endian { v.to_be_bytes() } else { v.to_le_bytes() };
    let u32b = |v: u32| if big_endian { v.to_be_bytes() } else { v.to_le_bytes() };
    let mut out = Vec::new();
    out.extend_from_slice(if big_endian { b"MM\0*" } else { b"II*\0" });
    out.extend_from_slice(&[0; 4]);
    let strip = out.len() as u32;
    out.extend_from_slice(&bytes((w * h * spp) as usize, seed, false));
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

/// A baseline JFIF JPEG header (APP0, optional APP1 Exif before the frame, DQT, SOF0, DHT, SOS)
/// with stuffed entropy-coded bytes.
fn jpeg(w: u16, h: u16, seed: u64, exif: bool) -> Vec<u8> {
    let mut o = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0];
    if exif {
        let body = bytes(3000, seed, true);
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
    for b in bytes(700, seed, false) {
        o.push(b);
        if b == 0xFF {
            o.push(0);
        }
    }
    o.extend_from_slice(&[0xFF, 0xD9]);
    o
}

/// An ITU-T.81 SOF3 (lossless) header as in DDSM `.LJPEG`, with `bits` precision.
fn ljpeg(w: u16, h: u16, bits: u8, seed: u64) -> Vec<u8> {
    let mut o = vec![0xFF, 0xD8, 0xFF, 0xC3, 0x00, 0x0B, bits];
    o.extend_from_slice(&h.to_be_bytes());
    o.extend_from_slice(&w.to_be_bytes());
    o.extend_from_slice(&[1, 1, 0x11, 0]);
    o.extend_from_slice(&[0xFF, 0xC4, 0x00, 0x14, 0x00, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    o.extend_from_slice(&[0xFF, 0xDA, 0x00, 0x08, 0x01, 1, 0x00, 0x01, 0x00, 0x00]);
    for b in bytes(900, seed, false) {
        o.push(b);
        if b == 0xFF {
            o.push(0);
        }
    }
    o.extend_from_slice(&[0xFF, 0xD9]);
    o
}

/// An 8-bit binary PGM (the DDSM `COMB.16_PGM` stand-in).
fn pgm(w: u32, h: u32, seed: u64) -> Vec<u8> {
    let mut o = format!("P5\n{w} {h}\n255\n").into_bytes();
    o.extend(bytes((w * h) as usize, seed, false));
    o
}

/// A raw JSRT `.IMG`: headerless big-endian 16-bit, 12 bits used.
fn jsrt_img(side: usize, seed: u64) -> Vec<u8> {
    bytes(side * side * 2, seed, false)
        .chunks(2)
        .flat_map(|c| ((u16::from_be_bytes([c[0], c[1]])) & 0x0FFF).to_be_bytes())
        .collect()
}

// ------------------------------------------------------------------------------------------------
// Look-alike downloads and the ways users hold them.

/// One file of a download: `container` is the archive it ships in (None: a loose file), `path`
/// its member path (for a loose file, its path relative to the download folder).
#[derive(Clone)]
struct Item {
    container: Option<String>,
    path: String,
    data: Vec<u8>,
}

#[derive(Clone, Default)]
struct Download {
    items: Vec<Item>,
}

impl Download {
    fn add(&mut self, container: Option<&str>, path: &str, data: impl Into<Vec<u8>>) -> &mut Self {
        self.items.push(Item { container: container.map(str::to_string), path: path.into(), data: data.into() });
        self
    }

    /// Writes every archive (zip with explicit folder entries, tar.gz with folder entries) and
    /// loose file into `dir`; returns the top-level sources written, in download order.
    fn write_archives(&self, dir: &Path) -> Vec<PathBuf> {
        std::fs::create_dir_all(dir).unwrap();
        let mut order: Vec<(Option<String>, String)> = Vec::new();
        for it in &self.items {
            let key = match &it.container {
                Some(c) => (Some(c.clone()), c.clone()),
                None => (None, it.path.clone()),
            };
            if !order.contains(&key) {
                order.push(key);
            }
        }
        let mut out = Vec::new();
        for (container, name) in order {
            let target = dir.join(&name);
            match container {
                Some(c) => {
                    let members: Vec<&Item> = self.items.iter().filter(|i| i.container.as_deref() == Some(c.as_str())).collect();
                    let entries = with_dirs(&members);
                    if c.ends_with(".zip") {
                        make_zip(&target, &entries, ZipMethod::Deflated);
                    } else if c.ends_with(".tar.gz") || c.ends_with(".tgz") {
                        make_tar_gz(&target, &entries);
                    } else if c.ends_with(".tar") {
                        make_tar(&target, &entries);
                    } else {
                        panic!("unknown archive kind {c}");
                    }
                }
                None => {
                    let data = &self.items.iter().find(|i| i.container.is_none() && i.path == name).unwrap().data;
                    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
                    std::fs::write(&target, data).unwrap();
                }
            }
            out.push(target);
        }
        out
    }

    /// Writes the download as the tree extracting it in `dir` gives (`unzip`, `tar -x`).
    fn write_extracted(&self, dir: &Path) {
        for it in &self.items {
            let p = dir.join(&it.path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, &it.data).unwrap();
        }
    }
}

/// Archive entries with an explicit entry for every folder, before its first member.
fn with_dirs(items: &[&Item]) -> Vec<Entry> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for it in items {
        let parts: Vec<&str> = it.path.split('/').collect();
        for k in 1..parts.len() {
            let d = format!("{}/", parts[..k].join("/"));
            if seen.insert(d.clone()) {
                out.push(entry(&d, vec![]));
            }
        }
        out.push(entry(&it.path, it.data.clone()));
    }
    out
}

/// How the download is held.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Form {
    /// The archives (and loose files) as downloaded.
    Archives,
    /// Every archive extracted in place into one folder.
    Extracted,
}

/// Where a study file comes from in a form: (`archive` as medfs names the source, member path,
/// whether it is a loose file). Loose files are named after their first path component.
fn loc(form: Form, container: Option<&str>, member: &str) -> (String, String, bool) {
    match (form, container) {
        (Form::Archives, Some(c)) => (c.to_string(), member.to_string(), false),
        _ => (member.split('/').next().unwrap().to_string(), member.to_string(), true),
    }
}

// ------------------------------------------------------------------------------------------------
// Expectations and the checker.

/// A study file: its name in the study folder, bytes, and provenance.
#[derive(Clone, Debug)]
struct F {
    name: String,
    data: Vec<u8>,
    archive: String,
    path: String,
    loose: bool,
}

fn file(name: &str, data: &[u8], (archive, path, loose): (String, String, bool)) -> F {
    F { name: name.into(), data: data.to_vec(), archive, path, loose }
}

#[derive(Clone, Debug)]
struct S {
    patient: String,
    study: String,
    files: Vec<F>,
    labels: Value,
    /// metadata.json without `split` and `source` (added by the checker).
    meta: Value,
    split: Option<&'static str>,
}

struct Exp {
    slug: &'static str,
    /// labels.csv label columns (the union of labels.json keys over the variants).
    label_columns: &'static [&'static str],
    studies: Vec<S>,
    /// dataset.json `source_archives`.
    archives: Vec<String>,
}

/// Compares JSON exactly (same keys, same order in lists, integers stay integers), floats to
/// 1e-9 relative.
fn same_json(ctx: &str, got: &Value, want: &Value) {
    match (got, want) {
        (Value::Object(g), Value::Object(w)) => {
            let gk: BTreeSet<&String> = g.keys().collect();
            let wk: BTreeSet<&String> = w.keys().collect();
            assert_eq!(gk, wk, "{ctx}: keys differ\n got: {got}\nwant: {want}");
            for (k, wv) in w {
                same_json(&format!("{ctx}.{k}"), &g[k], wv);
            }
        }
        (Value::Array(g), Value::Array(w)) => {
            assert_eq!(g.len(), w.len(), "{ctx}: list lengths differ\n got: {got}\nwant: {want}");
            for (i, (gv, wv)) in g.iter().zip(w).enumerate() {
                same_json(&format!("{ctx}[{i}]"), gv, wv);
            }
        }
        (Value::Number(g), Value::Number(w)) => {
            if w.is_f64() {
                let (a, b) = (g.as_f64().unwrap(), w.as_f64().unwrap());
                assert!((a - b).abs() <= 1e-9 * b.abs().max(1.0), "{ctx}: got {g}, want {w}");
            } else {
                assert!(!g.is_f64() && g.as_i64() == w.as_i64() && g.as_u64() == w.as_u64(), "{ctx}: got {g}, want the integer {w}");
            }
        }
        _ => assert_eq!(got, want, "{ctx}"),
    }
}

/// A labels.csv cell against the labels.json value: empty for null/absent, text verbatim,
/// numbers/booleans as JSON, lists and objects as compact JSON.
fn check_cell(ctx: &str, cell: &str, want: Option<&Value>) {
    match want {
        None | Some(Value::Null) => assert_eq!(cell, "", "{ctx}: cell should be empty"),
        Some(Value::String(s)) => assert_eq!(cell, s, "{ctx}"),
        Some(Value::Bool(b)) => assert_eq!(cell, b.to_string(), "{ctx}"),
        Some(v) => {
            let parsed: Value = serde_json::from_str(cell).unwrap_or_else(|e| panic!("{ctx}: cell {cell:?} is not JSON: {e}"));
            if !matches!(v, Value::Number(_)) {
                assert!(!cell.contains('\n') && !cell.contains(": "), "{ctx}: not compact JSON: {cell}");
            }
            same_json(ctx, &parsed, v);
        }
    }
}

/// Reads a file, checking that the size `stat` gave before the read is the size read.
fn read_sized(p: &Path) -> Vec<u8> {
    let len = std::fs::metadata(p).unwrap_or_else(|e| panic!("stat {}: {e}", p.display())).len();
    let data = std::fs::read(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
    assert_eq!(len, data.len() as u64, "{}: stat size {len} before the read, {} bytes read", p.display(), data.len());
    data
}

fn read_json(p: &Path) -> Value {
    let data = read_sized(p);
    assert!(data.ends_with(b"\n"), "{}: no trailing newline", p.display());
    serde_json::from_slice(&data).unwrap_or_else(|e| panic!("{}: not JSON: {e}", p.display()))
}

fn set_diff(got: &BTreeSet<String>, want: &BTreeSet<String>) -> String {
    let missing: Vec<&String> = want.difference(got).collect();
    let extra: Vec<&String> = got.difference(want).collect();
    format!("missing: {missing:#?}\nextra: {extra:#?}")
}

/// Asserts the mount shows exactly these datasets (and `_archives/`).
fn check_top(m: &Mounted, slugs: &[&str]) {
    let top: BTreeSet<String> = std::fs::read_dir(&m.mnt).unwrap().map(|d| d.unwrap().file_name().to_string_lossy().into_owned()).collect();
    let mut want: BTreeSet<String> = slugs.iter().map(|s| s.to_string()).collect();
    want.insert("_archives".into());
    assert_eq!(top, want, "top level of the mount (datasets recognized); mount stderr: {}", m.stderr);
}

/// Checks a mount holding this one dataset.
fn check(m: &Mounted, e: &Exp) {
    check_top(m, &[e.slug]);
    check_dataset(m, e);
}

/// Checks the whole dataset tree of a mount against the expectation.
fn check_dataset(m: &Mounted, e: &Exp) {
    let root = m.path(e.slug);

    // The tree: exactly the documented folders and files.
    let mut want = BTreeSet::new();
    want.insert("dataset.json".to_string());
    want.insert("labels.csv".to_string());
    let mut seen_studies = BTreeSet::new();
    for s in &e.studies {
        assert!(seen_studies.insert((s.patient.clone(), s.study.clone())), "test bug: study {}/{} twice", s.patient, s.study);
        want.insert(format!("{}/", s.patient));
        want.insert(format!("{}/patient.json", s.patient));
        want.insert(format!("{}/{}/", s.patient, s.study));
        want.insert(format!("{}/{}/labels.json", s.patient, s.study));
        want.insert(format!("{}/{}/metadata.json", s.patient, s.study));
        for f in &s.files {
            assert!(want.insert(format!("{}/{}/{}", s.patient, s.study, f.name)), "test bug: file twice");
        }
    }
    let got: BTreeSet<String> = walk(&root).into_iter().collect();
    assert!(got == want, "{}: tree differs\n{}", e.slug, set_diff(&got, &want));
    // Read-only: files 0444, folders 0555.
    for p in &got {
        let mode = std::fs::metadata(root.join(p)).unwrap().mode() & 0o7777;
        assert_eq!(mode, if p.ends_with('/') { 0o555 } else { 0o444 }, "{}/{p}: mode {mode:o}", e.slug);
    }

    // dataset.json.
    let ds = read_json(&root.join("dataset.json"));
    let keys: BTreeSet<&str> = ds.as_object().expect("dataset.json is an object").keys().map(String::as_str).collect();
    assert_eq!(keys, BTreeSet::from(["counts", "homepage", "slug", "source_archives", "title"]), "dataset.json keys");
    assert_eq!(ds["slug"], json!(e.slug));
    assert!(ds["title"].as_str().is_some_and(|t| !t.is_empty()), "dataset.json title: {}", ds["title"]);
    assert!(ds["homepage"].as_str().is_some_and(|h| h.starts_with("http")), "dataset.json homepage: {}", ds["homepage"]);
    let patients: BTreeSet<&str> = e.studies.iter().map(|s| s.patient.as_str()).collect();
    let nfiles: usize = e.studies.iter().map(|s| s.files.len()).sum();
    same_json(
        "dataset.json counts",
        &ds["counts"],
        &json!({"patients": patients.len(), "studies": e.studies.len(), "files": nfiles}),
    );
    let mut archives = e.archives.clone();
    archives.sort();
    assert_eq!(ds["source_archives"], json!(archives), "dataset.json source_archives");

    // Per patient and study: sidecars, files, raw view.
    for p in &patients {
        let pj = read_json(&root.join(p).join("patient.json"));
        assert_eq!(pj, json!({}), "{p}/patient.json (no patient-level facts documented)");
    }
    for s in &e.studies {
        let dir = root.join(&s.patient).join(&s.study);
        let ctx = format!("{}/{}/{}", e.slug, s.patient, s.study);
        same_json(&format!("{ctx}/labels.json"), &read_json(&dir.join("labels.json")), &s.labels);
        let mut meta = s.meta.as_object().expect("test bug: meta is an object").clone();
        meta.insert("split".into(), json!(s.split));
        let source: Map<String, Value> =
            s.files.iter().map(|f| (f.name.clone(), json!({"archive": f.archive, "path": f.path}))).collect();
        meta.insert("source".into(), Value::Object(source));
        same_json(&format!("{ctx}/metadata.json"), &read_json(&dir.join("metadata.json")), &Value::Object(meta));
        for f in &s.files {
            let got = read_sized(&dir.join(&f.name));
            assert!(got == f.data, "{ctx}/{}: bytes differ ({} vs {} bytes)", f.name, got.len(), f.data.len());
            let raw = if f.loose { format!("_archives/{}", f.path) } else { format!("_archives/{}/{}", f.archive, f.path) };
            let got = read_sized(&m.path(&raw));
            assert!(got == f.data, "{raw}: raw view bytes differ");
        }
    }

    // labels.csv: one row per study file; every path opens with the study file's bytes.
    let raw = read_sized(&root.join("labels.csv"));
    let mut rdr = csv::ReaderBuilder::new().has_headers(false).from_reader(&raw[..]);
    let recs: Vec<csv::StringRecord> = rdr.records().map(|r| r.expect("labels.csv parses")).collect();
    let header: Vec<&str> = recs[0].iter().collect();
    assert_eq!(header[..4], ["path", "patient", "study", "split"], "labels.csv header: {header:?}");
    let cols: BTreeSet<&str> = header[4..].iter().copied().collect();
    assert_eq!(header.len() - 4, cols.len(), "labels.csv: duplicate columns {header:?}");
    assert_eq!(cols, e.label_columns.iter().copied().collect::<BTreeSet<_>>(), "labels.csv label columns");
    let mut rows: BTreeMap<String, &csv::StringRecord> = BTreeMap::new();
    // Rows in (patient, study, file) order.
    let order: Vec<(&str, &str, &str)> = recs[1..].iter().map(|r| (&r[1], &r[2], r[0].rsplit('/').next().unwrap())).collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{}: labels.csv rows not in (patient, study, file) order", e.slug);
    for r in &recs[1..] {
        assert_eq!(r.len(), header.len(), "labels.csv: ragged row {r:?}");
        assert!(rows.insert(r[0].to_string(), r).is_none(), "labels.csv: {} listed twice", &r[0]);
    }
    let want_rows: BTreeSet<String> =
        e.studies.iter().flat_map(|s| s.files.iter().map(move |f| format!("{}/{}/{}", s.patient, s.study, f.name))).collect();
    let got_rows: BTreeSet<String> = rows.keys().cloned().collect();
    assert!(got_rows == want_rows, "labels.csv rows differ\n{}", set_diff(&got_rows, &want_rows));
    for s in &e.studies {
        for f in &s.files {
            let path = format!("{}/{}/{}", s.patient, s.study, f.name);
            let r = rows[&path];
            assert_eq!((&r[1], &r[2]), (s.patient.as_str(), s.study.as_str()), "labels.csv {path}");
            assert_eq!(&r[3], s.split.unwrap_or(""), "labels.csv {path}: split");
            for (i, col) in header.iter().enumerate().skip(4) {
                check_cell(&format!("labels.csv {path} column {col}"), &r[i], s.labels.get(*col));
            }
            let got = std::fs::read(root.join(&path)).unwrap_or_else(|err| panic!("labels.csv path {path} does not open: {err}"));
            assert!(got == f.data, "labels.csv path {path}: bytes differ");
        }
    }
}

/// Asserts that raw-view paths (junk, READMEs, label files) are reachable with these bytes.
fn check_raw(m: &Mounted, raw: &[(&str, &[u8])]) {
    for (p, data) in raw {
        let got = read_sized(&m.path(p));
        assert!(got == *data, "{p}: raw view bytes differ");
    }
}

/// Every generated file of a dataset (JSON sidecars, labels.csv) with its bytes.
fn sidecars(m: &Mounted, slug: &str) -> BTreeMap<String, Vec<u8>> {
    let root = m.path(slug);
    walk(&root)
        .into_iter()
        .filter(|p| p.ends_with(".json") || p == "labels.csv")
        .map(|p| {
            let data = read_sized(&root.join(&p));
            (p, data)
        })
        .collect()
}

/// The expectation for the same download held in the subfolder `sub` of the mounted folder: an
/// archive `x.zip` becomes `sub/x.zip`; loose files become `sub/...`, named after `sub`.
fn relocate(mut e: Exp, sub: &str) -> Exp {
    for s in &mut e.studies {
        for f in &mut s.files {
            if f.loose {
                f.path = format!("{sub}/{}", f.path);
                f.archive = sub.to_string();
            } else {
                f.archive = format!("{sub}/{}", f.archive);
            }
        }
    }
    let is_archive = |a: &str| [".zip", ".tar.gz", ".tgz", ".tar", ".gz"].iter().any(|x| a.ends_with(x));
    let archives: BTreeSet<String> =
        e.archives.iter().map(|a| if is_archive(a) { format!("{sub}/{a}") } else { sub.to_string() }).collect();
    e.archives = archives.into_iter().collect();
    e
}

/// `source_archives` of a dataset without label tables: the sources of its files.
fn archives_of(studies: &[S]) -> Vec<String> {
    let set: BTreeSet<String> = studies.iter().flat_map(|s| s.files.iter().map(|f| f.archive.clone())).collect();
    set.into_iter().collect()
}

fn mount_at(tmp: &Path, name: &str, sources: &[PathBuf]) -> Mounted {
    let srcs: Vec<&Path> = sources.iter().map(PathBuf::as_path).collect();
    mount(&srcs, &tmp.join(name), &[])
}

// ------------------------------------------------------------------------------------------------
// MURA (mura.md)

struct MuraStudy {
    split: &'static str,
    xr: &'static str,
    patient: &'static str,
    dir: &'static str,
    images: Vec<(String, Vec<u8>)>,
    apple_double: bool,
}

fn mura_studies() -> Vec<MuraStudy> {
    let specs: [(&str, &str, &str, &str, usize, bool); 12] = [
        ("train", "XR_SHOULDER", "patient00001", "study1_positive", 3, false),
        ("train", "XR_SHOULDER", "patient00002", "study1_positive", 1, false),
        ("train", "XR_ELBOW", "patient00031", "study1_negative", 2, false),
        ("train", "XR_WRIST", "patient05000", "study1_negative", 1, false),
        ("train", "XR_WRIST", "patient05000", "study2_positive", 2, true),
        ("train", "XR_WRIST", "patient05000", "study3_negative", 1, false),
        // One patient, `study1_positive` under two study types: two studies.
        ("train", "XR_WRIST", "patient09734", "study1_positive", 2, true),
        ("train", "XR_HAND", "patient09734", "study1_positive", 3, false),
        ("valid", "XR_WRIST", "patient11185", "study1_positive", 2, true),
        ("valid", "XR_FINGER", "patient11186", "study1_negative", 2, false),
        ("valid", "XR_FOREARM", "patient11187", "study1_positive", 1, false),
        ("valid", "XR_HUMERUS", "patient11187", "study1_negative", 1, false),
    ];
    let mut seed = 1000;
    specs
        .iter()
        .map(|&(split, xr, patient, dir, n, apple_double)| MuraStudy {
            split,
            xr,
            patient,
            dir,
            images: (1..=n)
                .map(|k| {
                    seed += 1;
                    // Mostly grayscale, some RGB, sizes vary.
                    let color = if seed % 3 == 0 { 2 } else { 0 };
                    (format!("image{k}.png"), png(20 + (seed % 7) as u32, 16 + (seed % 5) as u32, color, seed))
                })
                .collect(),
            apple_double,
        })
        .collect()
}

fn mura_download(studies: &[MuraStudy]) -> Download {
    let z = Some("MURA-v1.1.zip");
    let mut d = Download::default();
    for split in ["train", "valid"] {
        let mut paths = String::new();
        let mut labeled = String::new();
        for s in studies.iter().filter(|s| s.split == split) {
            let sp = format!("MURA-v1.1/{split}/{}/{}/{}/", s.xr, s.patient, s.dir);
            labeled.push_str(&format!("{sp},{}\n", if s.dir.ends_with("positive") { 1 } else { 0 }));
            for (name, _) in &s.images {
                paths.push_str(&format!("{sp}{name}\n"));
            }
        }
        d.add(z, &format!("MURA-v1.1/{split}_image_paths.csv"), paths);
        d.add(z, &format!("MURA-v1.1/{split}_labeled_studies.csv"), labeled);
    }
    for s in studies {
        let sp = format!("MURA-v1.1/{}/{}/{}/{}/", s.split, s.xr, s.patient, s.dir);
        if s.apple_double {
            // macOS AppleDouble junk, not in the CSVs.
            d.add(z, &format!("{sp}._image1.png"), b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        ".to_vec());
        }
        for (name, data) in &s.images {
            d.add(z, &format!("{sp}{name}"), data.clone());
        }
    }
    d
}

fn mura_expected(studies: &[MuraStudy], form: Form) -> Exp {
    let z = Some("MURA-v1.1.zip");
    Exp {
        slug: "mura",
        label_columns: &["label", "label_name"],
        studies: studies
            .iter()
            .map(|s| {
                let sp = format!("MURA-v1.1/{}/{}/{}/{}/", s.split, s.xr, s.patient, s.dir);
                let positive = s.dir.ends_with("positive");
                S {
                    patient: s.patient.into(),
                    study: format!("{}_{}", s.xr, s.dir),
                    files: s.images.iter().map(|(n, data)| file(n, data, loc(form, z, &format!("{sp}{n}")))).collect(),
                    labels: json!({"label": if positive { 1 } else { 0 }, "label_name": if positive { "positive" } else { "negative" }}),
                    meta: json!({
                        "study_type": s.xr, "study_dir": s.dir, "source_path": sp,
                        "num_images": s.images.len(), "source_split": s.split,
                    }),
                    split: Some(s.split),
                }
            })
            .collect(),
        archives: vec![if form == Form::Archives { "MURA-v1.1.zip" } else { "MURA-v1.1" }.to_string()],
    }
}

#[test]
fn mura_zip_folder_and_extracted_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let studies = mura_studies();
    let d = mura_download(&studies);
    let junk = "MURA-v1.1/train/XR_WRIST/patient09734/study1_positive/._image1.png";
    let junk_bytes = d.items.iter().find(|i| i.path == junk).unwrap().data.clone();
    let csv = "MURA-v1.1/train_labeled_studies.csv";
    let csv_bytes = d.items.iter().find(|i| i.path == csv).unwrap().data.clone();
    assert!(String::from_utf8_lossy(&csv_bytes).starts_with("MURA-v1.1/train/XR_SHOULDER/patient00001/study1_positive/,1\n"));

    // (1) The zip named on the command line.
    let zips = d.write_archives(&tmp.path().join("dl"));
    let first = {
        let m = mount_at(tmp.path(), "mnt1", &zips);
        check(&m, &mura_expected(&studies, Form::Archives));
        check_raw(&m, &[(&format!("_archives/MURA-v1.1.zip/{junk}"), &junk_bytes), (&format!("_archives/MURA-v1.1.zip/{csv}"), &csv_bytes)]);
        sidecars(&m, "mura")
    };
    // (2) A folder holding the download (and an unrelated checksum file).
    std::fs::write(tmp.path().join("dl/MURA-v1.1.zip.md5"), "4c36feddb7f5698c8bf291b912c438b1  MURA-v1.1.zip\n").unwrap();
    {
        let m = mount_at(tmp.path(), "mnt2", &[tmp.path().join("dl")]);
        check(&m, &mura_expected(&studies, Form::Archives));
        check_raw(&m, &[(&format!("_archives/MURA-v1.1.zip/{junk}"), &junk_bytes)]);
        // Same input, same bytes: every sidecar of the two mounts is identical.
        assert!(sidecars(&m, "mura") == first, "sidecars differ between two mounts of the same zip");
    }
    // (3) The extracted tree (`unzip MURA-v1.1.zip`), AppleDouble junk included.
    d.write_extracted(&tmp.path().join("ex"));
    {
        let m = mount_at(tmp.path(), "mnt3", &[tmp.path().join("ex")]);
        check(&m, &mura_expected(&studies, Form::Extracted));
        check_raw(&m, &[(&format!("_archives/{junk}"), &junk_bytes), (&format!("_archives/{csv}"), &csv_bytes)]);
    }
}

// ------------------------------------------------------------------------------------------------
// NIH ChestX-ray14 (chestxray14.md)

const CXR_V2020: &str = "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Sex,View Position,OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y],\n\
00000001_000.png,Cardiomegaly,0,1,57,M,PA,2682,2749,0.14300000000000002,0.14300000000000002,\n\
00000001_001.png,Cardiomegaly|Emphysema,1,1,58,M,PA,2894,2729,0.14300000000000002,0.14300000000000002,\n\
00000002_000.png,No Finding,0,2,80,M,PA,2500,2048,0.171,0.171,\n\
00000003_001.png,Hernia,0,3,74,F,PA,2500,2048,0.168,0.168,\n\
00013118_008.png,Atelectasis|Infiltration,8,13118,41,F,AP,3056,2544,0.139,0.139,\n\
00030805_000.png,No Finding,0,30805,39,M,PA,2048,2500,0.168,0.168,\n\
00030805_001.png,Effusion|Infiltration|Mass,1,30805,40,M,AP,2021,2021,0.194311,0.194311,\n";

// The 2017 original: `Patient Gender`, trailing comma in the header only, an impossible age.
const CXR_V2017: &str = "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y],\n\
00000001_000.png,Cardiomegaly,0,1,58,M,PA,2682,2749,0.143,0.143\n\
00000001_001.png,Cardiomegaly|Emphysema,1,1,58,M,PA,2894,2729,0.143,0.143\n\
00000002_000.png,No Finding,0,2,81,M,PA,2500,2048,0.171,0.171\n\
00000003_001.png,Hernia,0,3,414,F,PA,2500,2048,0.168,0.168\n\
00013118_008.png,Atelectasis|Infiltration,8,13118,41,F,AP,3056,2544,0.139,0.139\n\
00030805_000.png,No Finding,0,30805,39,M,PA,2048,2500,0.168,0.168\n\
00030805_001.png,Effusion|Infiltration|Mass,1,30805,40,M,AP,2021,2021,0.194311,0.194311\n";

// Three trailing commas in the header only; `Infiltrate` where Data_Entry says `Infiltration`;
// rows of one image not adjacent.
const CXR_BBOX: &str = "Image Index,Finding Label,Bbox [x,y,w,h],,,\n\
00013118_008.png,Atelectasis,225.084745762712,547.019216763771,86.7796610169491,79.1864406779661\n\
00000001_001.png,Cardiomegaly,376.135593220339,455.932203389831,475.661016949152,354.711864406779\n\
00013118_008.png,Infiltrate,686.101694915254,131.254237288136,185.491525423729,313.491525423729\n\
00030805_001.png,Mass,311.652539,490.326271,112.542373,108.745763\n";

const CXR_TRAIN_VAL: &str = "00000001_000.png\n00000001_001.png\n00000002_000.png\n00000003_001.png\n";
const CXR_TEST: &str = "00013118_008.png\n00030805_000.png\n00030806_000.png\n";

/// (tarball, Image Index, color type); tarballs chunked in name order.
const CXR_IMAGES: [(&str, &str, u8); 6] = [
    ("images_001.tar.gz", "00000001_000.png", 0),
    ("images_001.tar.gz", "00000001_001.png", 0),
    ("images_001.tar.gz", "00000003_001.png", 0),
    ("images_002.tar.gz", "00013118_008.png", 0),
    ("images_003.tar.gz", "00030805_000.png", 6),
    ("images_003.tar.gz", "00030805_001.png", 0),
];

fn cxr_image(i: usize) -> Vec<u8> {
    png(32, 32, CXR_IMAGES[i].2, 2000 + i as u64)
}

/// The NIH Box download: tarballs of `images/…` plus the loose label files and PDFs.
fn cxr_box_download() -> Download {
    let mut d = Download::default();
    for (i, (tb, idx, _)) in CXR_IMAGES.iter().enumerate() {
        d.add(Some(tb), &format!("images/{idx}"), cxr_image(i));
    }
    d.add(None, "Data_Entry_2017_v2020.csv", CXR_V2020)
        .add(None, "Data_Entry_2017.csv", CXR_V2017)
        .add(None, "BBox_List_2017.csv", CXR_BBOX)
        .add(None, "train_val_list.txt", CXR_TRAIN_VAL)
        .add(None, "test_list.txt", CXR_TEST);
    d
}

/// Expected tree. `mirror`: the extracted Kaggle mirror (`images_00N/images/…`, 2017 CSV only).
fn cxr_expected(mirror: bool) -> Exp {
    let boxes = |idx: &str| -> Value {
        match idx {
            "00000001_001.png" => json!([{"label": "Cardiomegaly", "x": 376.135593220339, "y": 455.932203389831, "w": 475.661016949152, "h": 354.711864406779}]),
            "00013118_008.png" => json!([
                {"label": "Atelectasis", "x": 225.084745762712, "y": 547.019216763771, "w": 86.7796610169491, "h": 79.1864406779661},
                {"label": "Infiltrate", "x": 686.101694915254, "y": 131.254237288136, "w": 185.491525423729, "h": 313.491525423729},
            ]),
            "00030805_001.png" => json!([{"label": "Mass", "x": 311.652539, "y": 490.326271, "w": 112.542373, "h": 108.745763}]),
            _ => json!([]),
        }
    };
    let csv = if mirror { CXR_V2017 } else { CXR_V2020 };
    let rows: BTreeMap<&str, Vec<&str>> = csv.lines().skip(1).map(|l| (l.split(',').next().unwrap(), l.split(',').collect())).collect();
    let studies = CXR_IMAGES
        .iter()
        .enumerate()
        .map(|(i, (tb, idx, _))| {
            let r = &rows[idx];
            let stem = idx.trim_end_matches(".png");
            let findings: Vec<&str> = r[1].split('|').filter(|f| *f != "No Finding").collect();
            let split = if CXR_TRAIN_VAL.lines().any(|l| l == *idx) {
                Some("train")
            } else if CXR_TEST.lines().any(|l| l == *idx) {
                Some("test")
            } else {
                None
            };
            let (archive, path, loose) = if mirror {
                let folder = tb.trim_end_matches(".tar.gz");
                (folder.to_string(), format!("{folder}/images/{idx}"), true)
            } else {
                (tb.to_string(), format!("images/{idx}"), false)
            };
            let num = |s: &str| -> Value { serde_json::from_str(s).unwrap() };
            S {
                patient: stem[..8].into(),
                study: stem.into(),
                files: vec![F { name: idx.to_string(), data: cxr_image(i), archive, path, loose }],
                labels: json!({
                    "finding_labels": r[1], "findings": findings,
                    "no_finding": r[1] == "No Finding", "bboxes": boxes(idx),
                }),
                meta: json!({
                    "image_index": idx, "patient_id": num(r[3]), "follow_up": num(r[2]),
                    "patient_age": num(r[4]), "patient_sex": r[5], "view_position": r[6],
                    "original_width": num(r[7]), "original_height": num(r[8]),
                    "pixel_spacing_x": num(r[9]).as_f64().unwrap(), "pixel_spacing_y": num(r[10]).as_f64().unwrap(),
                    // The source holding the image as medfs names it (profiles golden test
                    // `chestxray14_kaggle_mirror`): the tarball, or the extracted folder.
                    "source_tarball": if mirror { tb.trim_end_matches(".tar.gz") } else { tb },
                    "label_file": if mirror { "Data_Entry_2017.csv" } else { "Data_Entry_2017_v2020.csv" },
                }),
                split,
            }
        })
        .collect();
    let mut archives: Vec<String> = ["BBox_List_2017.csv", "train_val_list.txt", "test_list.txt"].map(String::from).to_vec();
    if mirror {
        archives.extend(["Data_Entry_2017.csv", "images_001", "images_002", "images_003"].map(String::from));
    } else {
        archives.extend(["Data_Entry_2017_v2020.csv", "images_001.tar.gz", "images_002.tar.gz", "images_003.tar.gz"].map(String::from));
    }
    Exp { slug: "chestxray14", label_columns: &["finding_labels", "findings", "no_finding", "bboxes"], studies, archives }
}

#[test]
fn chestxray14_named_one_by_one_folder_and_extracted_mirror() {
    let tmp = tempfile::tempdir().unwrap();
    let d = cxr_box_download();
    let sources = d.write_archives(&tmp.path().join("box"));
    assert_eq!(sources.len(), 8, "3 tarballs + 5 label files");
    // (1) Twelve-tarball style: every archive and label file named on the command line.
    {
        let m = mount_at(tmp.path(), "mnt1", &sources);
        check(&m, &cxr_expected(false));
        check_raw(&m, &[("_archives/Data_Entry_2017.csv", CXR_V2017.as_bytes()), ("_archives/BBox_List_2017.csv", CXR_BBOX.as_bytes())]);
    }
    // (2) The Box folder as downloaded, READMEs and the download script included.
    std::fs::write(tmp.path().join("box/README_CHESTXRAY.pdf"), b"%PDF-1.4\n%fake\n").unwrap();
    std::fs::write(tmp.path().join("box/batch_download_zips.py"), b"# Download the 56 zip files in Images_png in batches\nimport urllib\n").unwrap();
    {
        let m = mount_at(tmp.path(), "mnt2", &[tmp.path().join("box")]);
        check(&m, &cxr_expected(false));
        check_raw(&m, &[("_archives/README_CHESTXRAY.pdf", b"%PDF-1.4\n%fake\n"), ("_archives/images_003.tar.gz/images/00030805_000.png", &cxr_image(4))]);
    }
    // (3) The Kaggle mirror, extracted: images_00N/images/*.png and only the 2017 CSV.
    let mut k = Download::default();
    for (i, (tb, idx, _)) in CXR_IMAGES.iter().enumerate() {
        k.add(None, &format!("{}/images/{idx}", tb.trim_end_matches(".tar.gz")), cxr_image(i));
    }
    k.add(None, "Data_Entry_2017.csv", CXR_V2017)
        .add(None, "BBox_List_2017.csv", CXR_BBOX)
        .add(None, "train_val_list.txt", CXR_TRAIN_VAL)
        .add(None, "test_list.txt", CXR_TEST)
        .add(None, "README_CHESTXRAY.pdf", b"%PDF-1.4\n".to_vec());
    k.write_extracted(&tmp.path().join("kaggle"));
    {
        let m = mount_at(tmp.path(), "mnt3", &[tmp.path().join("kaggle")]);
        check(&m, &cxr_expected(true));
    }
}

// ------------------------------------------------------------------------------------------------
// DRIVE (drive.md)

/// (split dir, id, DR signs per drive.md, TIFF big-endian).
const DRIVE_IDS: [(&str, &str, bool); 6] = [
    ("training", "21", false),
    ("training", "22", false),
    ("training", "25", true),
    ("test", "01", false),
    ("test", "02", false),
    ("test", "03", true),
];

fn drive_tif(i: usize) -> Vec<u8> {
    // Reduced from 565×584; read from the file.
    tiff(57, 58, true, i % 2 == 1, 3000 + i as u64)
}

/// `training.zip` and `test.zip` (folders grouped: images/, 1st_manual/, 2nd_manual/, mask/).
fn drive_download(manuals_in_test: bool, prefix: &str, wrapper: Option<&str>) -> Download {
    let mut d = Download::default();
    for split in ["training", "test"] {
        let zip = format!("{split}.zip");
        let z = Some(wrapper.unwrap_or(zip.as_str()));
        let ids: Vec<(usize, &str)> = DRIVE_IDS.iter().enumerate().filter(|(_, x)| x.0 == split).map(|(i, x)| (i, x.1)).collect();
        for &(i, id) in &ids {
            d.add(z, &format!("{prefix}{split}/images/{id}_{split}.tif"), drive_tif(i));
        }
        if split == "training" || manuals_in_test {
            for &(i, id) in &ids {
                d.add(z, &format!("{prefix}{split}/1st_manual/{id}_manual1.gif"), gif(57, 58, 3100 + i as u64));
            }
        }
        if split == "test" && manuals_in_test {
            for &(i, id) in &ids {
                d.add(z, &format!("{prefix}{split}/2nd_manual/{id}_manual2.gif"), gif(57, 58, 3200 + i as u64));
            }
        }
        for &(i, id) in &ids {
            d.add(z, &format!("{prefix}{split}/mask/{id}_{split}_mask.gif"), gif(57, 58, 3300 + i as u64));
        }
    }
    d
}

fn drive_expected(d: &Download, form: Form) -> Exp {
    let find = |path: &str| d.items.iter().find(|i| i.path.ends_with(path));
    let studies = DRIVE_IDS
        .iter()
        .map(|&(split, id, dr)| {
            let mut files = Vec::new();
            let mut name_of = |rel: String| -> Value {
                match find(&rel) {
                    Some(it) => {
                        let name = rel.rsplit('/').next().unwrap().to_string();
                        files.push(file(&name, &it.data, loc(form, it.container.as_deref(), &it.path)));
                        json!(name)
                    }
                    None => Value::Null,
                }
            };
            name_of(format!("{split}/images/{id}_{split}.tif"));
            let m1 = name_of(format!("{split}/1st_manual/{id}_manual1.gif"));
            let m2 = name_of(format!("{split}/2nd_manual/{id}_manual2.gif"));
            let mask = name_of(format!("{split}/mask/{id}_{split}_mask.gif"));
            S {
                patient: id.into(),
                study: format!("{id}_{split}"),
                files,
                labels: json!({"vessel_manual1": m1, "vessel_manual2": m2, "fov_mask": mask, "dr_signs": dr}),
                meta: json!({
                    "source_split": split, "width": 57, "height": 58,
                    "camera": "Canon CR5 non-mydriatic 3CCD", "fov_degrees": 45,
                }),
                split: Some(if split == "training" { "train" } else { "test" }),
            }
        })
        .collect::<Vec<S>>();
    let _ = form;
    let archives = archives_of(&studies);
    Exp { slug: "drive", label_columns: &["vessel_manual1", "vessel_manual2", "fov_mask", "dr_signs"], studies, archives }
}

#[test]
fn drive_zips_extracted_folder_and_withheld_manuals() {
    let tmp = tempfile::tempdir().unwrap();
    // (1) training.zip and test.zip named on the command line.
    let d = drive_download(true, "", None);
    let zips = d.write_archives(&tmp.path().join("gc"));
    {
        let m = mount_at(tmp.path(), "mnt1", &zips);
        check(&m, &drive_expected(&d, Form::Archives));
    }
    // (2) The orobix-style extracted folder DRIVE/training/…, DRIVE/test/….
    let dx = drive_download(true, "DRIVE/", None);
    dx.write_extracted(&tmp.path().join("ex"));
    {
        let m = mount_at(tmp.path(), "mnt2", &[tmp.path().join("ex")]);
        let e = drive_expected(&dx, Form::Extracted);
        assert_eq!(e.archives, ["DRIVE"]);
        check(&m, &e);
    }
    // (3) A folder with training.zip and a test.zip whose manuals are withheld: absent manuals
    // are null and not listed.
    let dw = drive_download(false, "", None);
    dw.write_archives(&tmp.path().join("withheld"));
    {
        let m = mount_at(tmp.path(), "mnt3", &[tmp.path().join("withheld")]);
        let e = drive_expected(&dw, Form::Archives);
        let t = e.studies.iter().find(|s| s.study == "03_test").unwrap();
        assert_eq!(t.labels["vessel_manual1"], Value::Null);
        assert_eq!(t.files.len(), 2);
        assert_eq!(e.archives, ["test.zip", "training.zip"]);
        check(&m, &e);
    }
    // (4) A redistribution wrapping both in DRIVE.zip (DRIVE/training/…, DRIVE/test/…).
    let dz = drive_download(true, "DRIVE/", Some("DRIVE.zip"));
    let zips = dz.write_archives(&tmp.path().join("wrapped"));
    {
        let m = mount_at(tmp.path(), "mnt4", &zips);
        let e = drive_expected(&dz, Form::Archives);
        assert_eq!(e.archives, ["DRIVE.zip"]);
        check(&m, &e);
    }
}

// ------------------------------------------------------------------------------------------------
// Kaggle Diabetic Retinopathy (kaggle-dr.md)

/// (split dir, image id, level, Usage, jpeg w, h).
const KDR: [(&str, &str, u8, &str, u16, u16); 12] = [
    ("train", "10_left", 0, "", 389, 259),
    ("train", "10_right", 0, "", 389, 259),
    ("train", "13_left", 0, "", 259, 194),
    ("train", "13_right", 1, "", 259, 194),
    ("train", "15_left", 1, "", 475, 317),
    ("train", "15_right", 2, "", 475, 317),
    ("train", "16_left", 4, "", 300, 200),
    ("train", "16_right", 3, "", 300, 200),
    ("test", "1_left", 0, "Private", 389, 259),
    ("test", "1_right", 0, "Public", 389, 259),
    ("test", "2_left", 3, "Public", 640, 480),
    ("test", "2_right", 4, "Private", 640, 480),
];

fn kdr_jpeg(i: usize) -> Vec<u8> {
    let (_, _, _, _, w, h) = KDR[i];
    jpeg(w, h, 4000 + i as u64, i.is_multiple_of(3))
}

/// Cuts `data` into `n` byte ranges the way `split -b` does (equal parts, the last shorter).
fn byte_split(data: &[u8], n: usize) -> Vec<&[u8]> {
    let size = data.len().div_ceil(n);
    let parts: Vec<&[u8]> = data.chunks(size).collect();
    assert_eq!(parts.len(), n, "test bug: zip too small to cut in {n}");
    parts
}

/// Writes the competition files into `dir`: train.zip.001–005, test.zip.001–007 (each one zip
/// cut in byte ranges), trainLabels.csv.zip, sampleSubmission.csv.zip, sample.zip and, if asked,
/// retinopathy_solution.csv. Returns every file written.
fn kdr_write(dir: &Path, solution: bool) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).unwrap();
    let mut out = Vec::new();
    for (split, n) in [("train", 5), ("test", 7)] {
        let mut entries = vec![entry(&format!("{split}/"), vec![])];
        for (i, k) in KDR.iter().enumerate().filter(|(_, k)| k.0 == split) {
            entries.push(entry(&format!("{split}/{}.jpeg", k.1), kdr_jpeg(i)));
        }
        let whole = dir.join(format!("{split}.zip"));
        make_zip(&whole, &entries, ZipMethod::Deflated);
        let data = std::fs::read(&whole).unwrap();
        std::fs::remove_file(&whole).unwrap();
        for (k, part) in byte_split(&data, n).into_iter().enumerate() {
            let p = dir.join(format!("{split}.zip.{:03}", k + 1));
            std::fs::write(&p, part).unwrap();
            out.push(p);
        }
    }
    let mut labels = "image,level\n".to_string();
    let mut submission = "image,level\n".to_string();
    let mut sol = "image,level,Usage\n".to_string();
    for k in &KDR {
        if k.0 == "train" {
            labels.push_str(&format!("{},{}\n", k.1, k.2));
        } else {
            submission.push_str(&format!("{},0\n", k.1));
            sol.push_str(&format!("{},{},{}\n", k.1, k.2, k.3));
        }
    }
    for (zip, member, text) in [("trainLabels.csv.zip", "trainLabels.csv", &labels), ("sampleSubmission.csv.zip", "sampleSubmission.csv", &submission)] {
        make_zip(&dir.join(zip), &[entry(member, text.clone().into_bytes())], ZipMethod::Deflated);
        out.push(dir.join(zip));
    }
    // sample/ holds copies of train images: never separate studies.
    make_zip(
        &dir.join("sample.zip"),
        &[entry("sample/", vec![]), entry("sample/10_left.jpeg", kdr_jpeg(0)), entry("sample/10_right.jpeg", kdr_jpeg(1)), entry("sample/13_left.jpeg", kdr_jpeg(2))],
        ZipMethod::Deflated,
    );
    out.push(dir.join("sample.zip"));
    if solution {
        std::fs::write(dir.join("retinopathy_solution.csv"), sol).unwrap();
        out.push(dir.join("retinopathy_solution.csv"));
    }
    out
}

fn kdr_expected(solution: bool, form: Form) -> Exp {
    let names = ["No DR", "Mild", "Moderate", "Severe", "Proliferative DR"];
    let studies = KDR
        .iter()
        .enumerate()
        .map(|(i, &(split, id, level, usage, w, h))| {
            let (subject, eye) = id.split_once('_').unwrap();
            let labels = if split == "train" {
                json!({"level": level, "level_name": names[level as usize]})
            } else if solution {
                json!({"level": level, "level_name": names[level as usize], "usage": usage})
            } else {
                json!({})
            };
            S {
                patient: subject.into(),
                study: id.into(),
                files: vec![file(&format!("{id}.jpeg"), &kdr_jpeg(i), loc(form, Some(&format!("{split}.zip")), &format!("{split}/{id}.jpeg")))],
                labels,
                meta: json!({"eye": eye, "image_id": id, "source_split": split, "width": w, "height": h}),
                split: Some(split),
            }
        })
        .collect();
    let mut archives = match form {
        Form::Archives => vec!["test.zip".to_string(), "train.zip".to_string(), "trainLabels.csv.zip".to_string()],
        Form::Extracted => vec!["test".to_string(), "train".to_string(), "trainLabels.csv".to_string()],
    };
    if solution {
        archives.push("retinopathy_solution.csv".into());
    }
    Exp { slug: "kaggle-dr", label_columns: &["level", "level_name", "usage"], studies, archives }
}

#[test]
fn kaggle_dr_byte_split_zips() {
    let tmp = tempfile::tempdir().unwrap();
    // (1) The competition folder with everything, the solution file included.
    let files = kdr_write(&tmp.path().join("comp"), true);
    // The parts really are one zip cut in pieces: joined, they list every image.
    let mut joined = Vec::new();
    for p in files.iter().filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("train.zip.")) {
        joined.extend(std::fs::read(p).unwrap());
    }
    assert_eq!(zip::ZipArchive::new(std::io::Cursor::new(joined)).unwrap().len(), 9);
    {
        let m = mount_at(tmp.path(), "mnt1", &[tmp.path().join("comp")]);
        check(&m, &kdr_expected(true, Form::Archives));
        check_raw(&m, &[("_archives/sample.zip/sample/10_left.jpeg", &kdr_jpeg(0)), ("_archives/train.zip/train/16_right.jpeg", &kdr_jpeg(7))]);
    }
    // (2) Without the solution file, every part named one by one: test studies get {}.
    let files = kdr_write(&tmp.path().join("nosol"), false);
    assert_eq!(files.len(), 5 + 7 + 3);
    {
        let m = mount_at(tmp.path(), "mnt2", &files);
        check(&m, &kdr_expected(false, Form::Archives));
    }
    // (3) Extracted: train/, test/, sample/ and the CSVs out of their zips.
    let ex = tmp.path().join("ex");
    for (i, k) in KDR.iter().enumerate() {
        std::fs::create_dir_all(ex.join(k.0)).unwrap();
        std::fs::write(ex.join(format!("{}/{}.jpeg", k.0, k.1)), kdr_jpeg(i)).unwrap();
    }
    std::fs::create_dir_all(ex.join("sample")).unwrap();
    std::fs::write(ex.join("sample/10_left.jpeg"), kdr_jpeg(0)).unwrap();
    let labels: String = std::iter::once("image,level\n".to_string())
        .chain(KDR.iter().filter(|k| k.0 == "train").map(|k| format!("{},{}\n", k.1, k.2)))
        .collect();
    std::fs::write(ex.join("trainLabels.csv"), labels).unwrap();
    std::fs::write(ex.join("sampleSubmission.csv"), "image,level\n1_left,0\n1_right,0\n2_left,0\n2_right,0\n").unwrap();
    std::fs::copy(tmp.path().join("comp/retinopathy_solution.csv"), ex.join("retinopathy_solution.csv")).unwrap();
    {
        let m = mount_at(tmp.path(), "mnt3", &[ex]);
        check(&m, &kdr_expected(true, Form::Extracted));
    }
}

// ------------------------------------------------------------------------------------------------
// DDSM (ddsm.md): no archive, the FTP mirror tree cases/<category>/<volume>/<case>/.

struct DdsmCase {
    category: &'static str,
    volume: &'static str,
    case_dir: &'static str,
    prefix: &'static str,
    ics: String,
    /// (view, OVERLAY text)
    overlays: Vec<(&'static str, String)>,
    labels: Value,
    meta: Value,
}

const VIEWS: [&str; 4] = ["LEFT_CC", "LEFT_MLO", "RIGHT_CC", "RIGHT_MLO"];

fn ddsm_cases() -> Vec<DdsmCase> {
    let views = |dims: [(u32, u32); 4], bits: u32, res: u32, overlay: [bool; 4]| -> (String, Value) {
        let mut text = String::new();
        let mut obj = Map::new();
        for (k, v) in VIEWS.iter().enumerate() {
            text.push_str(&format!(
                "{v} LINES {} PIXELS_PER_LINE {} BITS_PER_PIXEL {bits} RESOLUTION {res} {}\n",
                dims[k].0,
                dims[k].1,
                if overlay[k] { "OVERLAY" } else { "NON_OVERLAY" }
            ));
            obj.insert(
                v.to_string(),
                json!({"lines": dims[k].0, "pixels_per_line": dims[k].1, "bits_per_pixel": bits, "resolution": res, "overlay": overlay[k]}),
            );
        }
        (text, Value::Object(obj))
    };
    let mut out = Vec::new();

    // A normal (no overlays), DBA digitizer, `SEQUENCE` instead of `SELECTED`.
    let (vt, vj) = views([(5200, 3100), (5220, 3080), (5180, 3120), (5210, 3090)], 16, 42, [false; 4]);
    out.push(DdsmCase {
        category: "normals",
        volume: "normal_01",
        case_dir: "case0002",
        prefix: "A_0002_1",
        ics: format!("ics_version 1.0\nfilename A-0002-1\nDATE_OF_STUDY 12 3 1997\nPATIENT_AGE 65\nFILM\nFILM_TYPE REGULAR\nDENSITY 2\nDATE_DIGITIZED 4 15 1998\nDIGITIZER DBA 21\nSEQUENCE\n{vt}"),
        overlays: vec![],
        labels: json!({"case_type": "normal", "abnormalities": []}),
        meta: json!({"ics_filename": "A-0002-1", "date_of_study": "12 3 1997", "patient_age": 65, "film_type": "REGULAR", "density": 2,
            "date_digitized": "4 15 1998", "digitizer": "DBA 21", "views": vj, "category": "normals", "volume": "normal_01"}),
    });

    // The same case folder name in another category: C_0002_1, a calcification.
    let (vt, vj) = views([(4696, 3024), (4688, 3048), (4624, 3056), (4664, 3120)], 12, 50, [true, false, false, false]);
    out.push(DdsmCase {
        category: "cancers",
        volume: "cancer_01",
        case_dir: "case0002",
        prefix: "C_0002_1",
        ics: format!("ics_version 1.0\nfilename C-0002-1\nDATE_OF_STUDY 2 7 1995\nPATIENT_AGE 42\nFILM\nFILM_TYPE REGULAR\nDENSITY 4\nDATE_DIGITIZED 7 22 1997\nDIGITIZER LUMISYS LASER\nSELECTED\n{vt}"),
        overlays: vec![(
            "LEFT_CC",
            "TOTAL_ABNORMALITIES 1\nABNORMALITY 1\nLESION_TYPE CALCIFICATION TYPE PLEOMORPHIC DISTRIBUTION CLUSTERED\nASSESSMENT 5\nSUBTLETY 3\nPATHOLOGY MALIGNANT\nTOTAL_OUTLINES 1\nBOUNDARY\n2110 1840 0 0 1 2 2 3 4 4 5 6 6 7 #\n".into(),
        )],
        labels: json!({"case_type": "cancer", "abnormalities": [
            {"view": "LEFT_CC", "abnormality": 1, "lesion_types": [{"lesion_type": "CALCIFICATION", "type": "PLEOMORPHIC", "distribution": "CLUSTERED"}],
             "assessment": 5, "subtlety": 3, "pathology": "MALIGNANT", "total_outlines": 1}]}),
        meta: json!({"ics_filename": "C-0002-1", "date_of_study": "2 7 1995", "patient_age": 42, "film_type": "REGULAR", "density": 4,
            "date_digitized": "7 22 1997", "digitizer": "LUMISYS LASER", "views": vj, "category": "cancers", "volume": "cancer_01"}),
    });

    // case1509 as in ddsm.md: overlays on RIGHT_CC and RIGHT_MLO; two abnormalities, two
    // lesion types in one, outlines with CORE.
    let (vt, vj) = views([(4696, 3024), (4688, 3048), (4624, 3056), (4664, 3120)], 12, 43, [false, false, true, true]);
    out.push(DdsmCase {
        category: "cancers",
        volume: "cancer_08",
        case_dir: "case1509",
        prefix: "A_1509_1",
        ics: format!("ics_version 1.0\nfilename A-1509-1\nDATE_OF_STUDY 2 7 1995\nPATIENT_AGE 42\nFILM \nFILM_TYPE REGULAR\nDENSITY 4\nDATE_DIGITIZED 7 22 1997\nDIGITIZER HOWTEK 960\nSELECTED\n{vt}"),
        overlays: vec![
            ("RIGHT_CC", "TOTAL_ABNORMALITIES 1\nABNORMALITY 1\nLESION_TYPE MASS SHAPE IRREGULAR MARGINS SPICULATED\nASSESSMENT 4\nSUBTLETY 2\nPATHOLOGY MALIGNANT\nTOTAL_OUTLINES 1\nBOUNDARY\n1410 2130 1 1 2 2 3 4 5 6 7 #\n".into()),
            ("RIGHT_MLO", "TOTAL_ABNORMALITIES 2\nABNORMALITY 1\nLESION_TYPE MASS SHAPE IRREGULAR MARGINS SPICULATED\nASSESSMENT 4\nSUBTLETY 2\nPATHOLOGY MALIGNANT\nTOTAL_OUTLINES 1\nBOUNDARY\n1520 2210 0 1 2 3 4 5 6 7 #\nABNORMALITY 2\nLESION_TYPE CALCIFICATION TYPE AMORPHOUS DISTRIBUTION SEGMENTAL\nLESION_TYPE MASS SHAPE OVAL MARGINS CIRCUMSCRIBED\nASSESSMENT 3\nSUBTLETY 5\nPATHOLOGY BENIGN\nTOTAL_OUTLINES 2\nBOUNDARY\n900 1100 2 2 4 4 6 6 0 0 #\nCORE\n910 1110 2 4 6 0 #\n".into()),
        ],
        labels: json!({"case_type": "cancer", "abnormalities": [
            {"view": "RIGHT_CC", "abnormality": 1, "lesion_types": [{"lesion_type": "MASS", "shape": "IRREGULAR", "margins": "SPICULATED"}],
             "assessment": 4, "subtlety": 2, "pathology": "MALIGNANT", "total_outlines": 1},
            {"view": "RIGHT_MLO", "abnormality": 1, "lesion_types": [{"lesion_type": "MASS", "shape": "IRREGULAR", "margins": "SPICULATED"}],
             "assessment": 4, "subtlety": 2, "pathology": "MALIGNANT", "total_outlines": 1},
            {"view": "RIGHT_MLO", "abnormality": 2, "lesion_types": [
                {"lesion_type": "CALCIFICATION", "type": "AMORPHOUS", "distribution": "SEGMENTAL"},
                {"lesion_type": "MASS", "shape": "OVAL", "margins": "CIRCUMSCRIBED"}],
             "assessment": 3, "subtlety": 5, "pathology": "BENIGN", "total_outlines": 2}]}),
        meta: json!({"ics_filename": "A-1509-1", "date_of_study": "2 7 1995", "patient_age": 42, "film_type": "REGULAR", "density": 4,
            "date_digitized": "7 22 1997", "digitizer": "HOWTEK 960", "views": vj, "category": "cancers", "volume": "cancer_08"}),
    });

    // benign_without_callback_02 (B and C letters): LUMISYS LASER_DENSOTOMETER.
    let (vt, vj) = views([(4600, 2900), (4610, 2950), (4620, 2960), (4630, 2970)], 12, 50, [false, true, false, false]);
    out.push(DdsmCase {
        category: "benign_without_callbacks",
        volume: "benign_without_callback_02",
        case_dir: "case3370",
        prefix: "B_3370_1",
        ics: format!("ics_version 1.0\nfilename B-3370-1\nDATE_OF_STUDY 5 11 1996\nPATIENT_AGE 51\nFILM\nFILM_TYPE REGULAR\nDENSITY 3\nDATE_DIGITIZED 9 2 1997\nDIGITIZER LUMISYS LASER_DENSOTOMETER\nSELECTED\n{vt}"),
        overlays: vec![(
            "LEFT_MLO",
            "TOTAL_ABNORMALITIES 1\nABNORMALITY 1\nLESION_TYPE MASS SHAPE LOBULATED MARGINS OBSCURED\nASSESSMENT 2\nSUBTLETY 4\nPATHOLOGY BENIGN_WITHOUT_CALLBACK\nTOTAL_OUTLINES 1\nBOUNDARY\n1200 1500 3 3 4 4 #\n".into(),
        )],
        labels: json!({"case_type": "benign_without_callback", "abnormalities": [
            {"view": "LEFT_MLO", "abnormality": 1, "lesion_types": [{"lesion_type": "MASS", "shape": "LOBULATED", "margins": "OBSCURED"}],
             "assessment": 2, "subtlety": 4, "pathology": "BENIGN_WITHOUT_CALLBACK", "total_outlines": 1}]}),
        meta: json!({"ics_filename": "B-3370-1", "date_of_study": "5 11 1996", "patient_age": 51, "film_type": "REGULAR", "density": 3,
            "date_digitized": "9 2 1997", "digitizer": "LUMISYS LASER_DENSOTOMETER", "views": vj,
            "category": "benign_without_callbacks", "volume": "benign_without_callback_02"}),
    });

    // benign_09 (D): two views with overlays, listed LEFT_CC before LEFT_MLO.
    let (vt, vj) = views([(6000, 3400), (6010, 3410), (6020, 3420), (6030, 3430)], 12, 43, [true, true, false, false]);
    out.push(DdsmCase {
        category: "benigns",
        volume: "benign_09",
        case_dir: "case4012",
        prefix: "D_4012_1",
        ics: format!("ics_version 1.0\nfilename D-4012-1\nDATE_OF_STUDY 8 30 1999\nPATIENT_AGE 60\nFILM\nFILM_TYPE REGULAR\nDENSITY 1\nDATE_DIGITIZED 1 12 2000\nDIGITIZER HOWTEK 960\nSELECTED\n{vt}"),
        overlays: vec![
            ("LEFT_CC", "TOTAL_ABNORMALITIES 1\nABNORMALITY 1\nLESION_TYPE MASS SHAPE ROUND MARGINS CIRCUMSCRIBED\nASSESSMENT 3\nSUBTLETY 4\nPATHOLOGY BENIGN\nTOTAL_OUTLINES 1\nBOUNDARY\n800 900 0 2 4 6 #\n".into()),
            ("LEFT_MLO", "TOTAL_ABNORMALITIES 1\nABNORMALITY 1\nLESION_TYPE MASS SHAPE ROUND MARGINS CIRCUMSCRIBED\nASSESSMENT 3\nSUBTLETY 4\nPATHOLOGY BENIGN\nTOTAL_OUTLINES 1\nBOUNDARY\n820 940 0 2 4 6 #\n".into()),
        ],
        labels: json!({"case_type": "benign", "abnormalities": [
            {"view": "LEFT_CC", "abnormality": 1, "lesion_types": [{"lesion_type": "MASS", "shape": "ROUND", "margins": "CIRCUMSCRIBED"}],
             "assessment": 3, "subtlety": 4, "pathology": "BENIGN", "total_outlines": 1},
            {"view": "LEFT_MLO", "abnormality": 1, "lesion_types": [{"lesion_type": "MASS", "shape": "ROUND", "margins": "CIRCUMSCRIBED"}],
             "assessment": 3, "subtlety": 4, "pathology": "BENIGN", "total_outlines": 1}]}),
        meta: json!({"ics_filename": "D-4012-1", "date_of_study": "8 30 1999", "patient_age": 60, "film_type": "REGULAR", "density": 1,
            "date_digitized": "1 12 2000", "digitizer": "HOWTEK 960", "views": vj, "category": "benigns", "volume": "benign_09"}),
    });
    out
}

/// The mirror tree: (path under the mirror root, bytes, is a study file).
fn ddsm_tree(cases: &[DdsmCase]) -> Vec<(String, Vec<u8>, bool)> {
    let mut out = Vec::new();
    let mut seed = 5000;
    for c in cases {
        let dir = format!("cases/{}/{}/{}", c.category, c.volume, c.case_dir);
        let dashed = c.prefix.replace('_', "-");
        out.push((format!("{dir}/{dashed}.ics"), c.ics.clone().into_bytes(), true));
        for (k, v) in VIEWS.iter().enumerate() {
            seed += 1;
            // Reduced sizes; the first view's header dims are transposed (the .ics is right).
            let (w, h) = if k == 0 { (40, 24) } else { (24, 40) };
            out.push((format!("{dir}/{}.{v}.LJPEG", c.prefix), ljpeg(w, h, 12, seed), true));
        }
        for (v, text) in &c.overlays {
            out.push((format!("{dir}/{}.{v}.OVERLAY", c.prefix), text.clone().into_bytes(), true));
        }
        out.push((format!("{dir}/TAPE_{}.COMB.16_PGM", c.prefix), pgm(24, 10, seed), true));
        // FTP strays: never study files.
        out.push((format!("{dir}/{}.LEFT_CC.LJPEG.1", c.prefix), bytes(300, seed, false), false));
        out.push((format!("{dir}/{dashed}.ics~"), c.ics.clone().into_bytes(), false));
    }
    out.push(("cases/cancers/cancer_08/case1509/A_1509_1.RIGHT_CC.LJPEG.2".into(), bytes(200, 1, false), false));
    out.push(("cases/cancers/cancer_08/case1509/A_1509_1.RIGHT_MLO.OVERLAYu".into(), b"TOTAL_ABNORMALITIES 1\n".to_vec(), false));
    out.push(("cases/cancers/cancer_08/case1509/jpeg".into(), b"\x7fELF\x02\x01\x01fake-binary".to_vec(), false));
    out.push(("cases/cancers/cancer_01/#mv.sh#".into(), b"mv *.LJPEG.1 /tmp\n".to_vec(), false));
    out.push(("cases/cancers/cancer_01/cancer_01.html~".into(), b"<html></html>\n".to_vec(), false));
    out.push(("cases/normals/normal_01/jpeg".into(), b"\x7fELF\x02\x01\x01fake-binary".to_vec(), false));
    out
}

/// `strip`: the part of `cases/…` above the mounted folder; `archive`: the zip holding the tree
/// (when not `loose`); `gz`: the DDSM_GZ files are gzipped in the mirror.
fn ddsm_expected(cases: &[DdsmCase], tree: &[(String, Vec<u8>, bool)], archive: &str, strip: &str, loose: bool, gz: bool) -> Exp {
    let studies = cases
        .iter()
        .map(|c| {
            let dir = format!("cases/{}/{}/{}/", c.category, c.volume, c.case_dir);
            let files = tree
                .iter()
                .filter(|(p, _, study)| *study && p.starts_with(&dir))
                .map(|(p, data, _)| {
                    let path = p.strip_prefix(strip).unwrap().to_string();
                    let name = p.rsplit('/').next().unwrap().to_string();
                    if gz && DDSM_GZ.contains(&p.as_str()) {
                        // A bare .gz is an archive whose member is the decompressed file.
                        return F { archive: format!("{path}.gz"), path: name.clone(), name, data: data.clone(), loose: false };
                    }
                    let archive = if loose { path.split('/').next().unwrap().to_string() } else { archive.to_string() };
                    F { name, data: data.clone(), archive, path, loose }
                })
                .collect();
            S { patient: c.prefix.into(), study: c.case_dir.into(), files, labels: c.labels.clone(), meta: c.meta.clone(), split: None }
        })
        .collect::<Vec<_>>();
    let archives = archives_of(&studies);
    Exp { slug: "ddsm", label_columns: &["case_type", "abnormalities"], studies, archives }
}

/// Files a mirror holds `.gz`-compressed ("some ljpeg/overlay were .gz'd", ddsm.md).
const DDSM_GZ: [&str; 2] = ["cases/cancers/cancer_08/case1509/A_1509_1.RIGHT_MLO.OVERLAY", "cases/benigns/benign_09/case4012/D_4012_1.LEFT_CC.LJPEG"];

/// Writes the mirror under `dir`, gzipping the DDSM_GZ files if asked (as `gzip` does: the
/// original name in the header, `.gz` appended).
fn ddsm_write_mirror(tree: &[(String, Vec<u8>, bool)], dir: &Path, gz: bool) {
    for (p, data, _) in tree {
        let f = dir.join(p);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        if gz && DDSM_GZ.contains(&p.as_str()) {
            let name = p.rsplit('/').next().unwrap();
            let mut e = flate2::GzBuilder::new().filename(name).mtime(1_000_000_000).write(Vec::new(), flate2::Compression::best());
            e.write_all(data).unwrap();
            std::fs::write(dir.join(format!("{p}.gz")), e.finish().unwrap()).unwrap();
        } else {
            std::fs::write(f, data).unwrap();
        }
    }
}

#[test]
fn ddsm_mirror_tree_and_zipped_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let cases = ddsm_cases();
    let tree = ddsm_tree(&cases);
    ddsm_write_mirror(&tree, &tmp.path().join("mirror"), true);
    // (1) The wget mirror folder holding cases/….
    {
        let m = mount_at(tmp.path(), "mnt1", &[tmp.path().join("mirror")]);
        let e = ddsm_expected(&cases, &tree, "", "", true, true);
        assert_eq!(e.archives.len(), 3, "cases + 2 gzipped files: {:?}", e.archives);
        check(&m, &e);
        check_raw(&m, &[("_archives/cases/cancers/cancer_01/#mv.sh#", b"mv *.LJPEG.1 /tmp\n"), ("_archives/cases/cancers/cancer_08/case1509/jpeg", b"\x7fELF\x02\x01\x01fake-binary")]);
    }
    // (2) The cases/ folder itself named as the source: paths start at the category.
    {
        let m = mount_at(tmp.path(), "mnt2", &[tmp.path().join("mirror/cases")]);
        check(&m, &ddsm_expected(&cases, &tree, "", "cases/", true, true));
    }
    // (3) The mirror zipped afterwards.
    let entries: Vec<Entry> = tree.iter().map(|(p, d, _)| entry(p, d.clone())).collect();
    make_zip(&tmp.path().join("DDSM.zip"), &entries, ZipMethod::Deflated);
    {
        let m = mount_at(tmp.path(), "mnt3", &[tmp.path().join("DDSM.zip")]);
        check(&m, &ddsm_expected(&cases, &tree, "DDSM.zip", "", false, false));
        check_raw(&m, &[("_archives/DDSM.zip/cases/normals/normal_01/case0002/A-0002-1.ics~", cases[0].ics.as_bytes())]);
    }
}

// ------------------------------------------------------------------------------------------------
// SCR + JSRT (scr.md)

const ORGANS: [&str; 5] = ["heart", "left clavicle", "left lung", "right clavicle", "right lung"];

/// (JSRT id, fold, .IMG side).
const SCR_IDS: [(&str, &str, usize); 4] = [("JPCLN001", "fold1", 64), ("JPCLN002", "fold2", 48), ("JPCNN001", "fold1", 64), ("JPCNN002", "fold2", 32)];

const CLNDAT: &str = "JPCLN001.IMG\t5\t15\t53\tmale\t1634\t692\tmalignant\tl.upper lobe\tlung cancer\r\n\
JPCLN002.IMG\t2\t25\t72\tfemale\t1284\t1488\tbenign\tr.lower lobe\tgranuloma\r\n\
JPCLN003.IMG\t4\t10\t55\tmale\t640\t1152\tmalignant\tr.upper lobe\tadenocarcinoma\r\n";
const CNNDAT: &str = "JPCNN001.IMG\t46\tfemale\tnon-nodule\r\nJPCNN002.IMG\t61\tmale\tnon-nodule\r\n";

fn scr_download() -> Download {
    let mut d = Download::default();
    for (i, (id, _, side)) in SCR_IDS.iter().enumerate() {
        d.add(Some("All247images.zip"), &format!("All247images/{id}.IMG"), jsrt_img(*side, 6000 + i as u64));
    }
    for (i, (id, fold, _)) in SCR_IDS.iter().enumerate() {
        for (k, organ) in ORGANS.iter().enumerate() {
            d.add(Some("scratch.zip"), &format!("scratch/{fold}/masks/{organ}/{id}.gif"), gif(16, 16, 6100 + (i * 10 + k) as u64));
        }
    }
    d.add(None, "CLNDAT_EN.txt", CLNDAT).add(None, "CNNDAT_EN.TXT", CNNDAT);
    d
}

fn scr_expected(d: &Download, form: Form) -> Exp {
    let studies = SCR_IDS
        .iter()
        .map(|(id, fold, side)| {
            let img = d.items.iter().find(|i| i.path.ends_with(&format!("{id}.IMG"))).unwrap();
            let mut files = vec![file(&format!("{id}.IMG"), &img.data, loc(form, img.container.as_deref(), &img.path))];
            let mut masks = Map::new();
            for organ in ORGANS {
                let it = d.items.iter().find(|i| i.path == format!("scratch/{fold}/masks/{organ}/{id}.gif")).unwrap();
                let name = format!("{id}_{}.gif", organ.replace(' ', "_"));
                files.push(file(&name, &it.data, loc(form, it.container.as_deref(), &it.path)));
                masks.insert(organ.to_string(), json!(name));
            }
            let (labels, age, sex) = if id.starts_with("JPCLN") {
                let r: Vec<&str> = CLNDAT.lines().find(|l| l.starts_with(id)).unwrap().trim_end().split('\t').collect();
                let n = |s: &str| -> Value { serde_json::from_str(s).unwrap() };
                (
                    json!({"nodule": true, "subtlety": n(r[1]), "size_mm": n(r[2]), "x": n(r[5]), "y": n(r[6]),
                        "malignancy": r[7], "location": r[8], "diagnosis": r[9], "segmentation_masks": masks}),
                    n(r[3]),
                    r[4].to_string(),
                )
            } else {
                let r: Vec<&str> = CNNDAT.lines().find(|l| l.starts_with(id)).unwrap().trim_end().split('\t').collect();
                (json!({"nodule": false, "segmentation_masks": masks}), serde_json::from_str(r[1]).unwrap(), r[2].to_string())
            };
            S {
                patient: id.to_string(),
                study: id.to_string(),
                files,
                labels,
                meta: json!({"age": age, "sex": sex, "width": side, "height": side, "bits_stored": 12, "dtype": ">u2",
                    "pixel_spacing_mm": 0.175, "scr_fold": fold}),
                split: None,
            }
        })
        .collect::<Vec<S>>();
    let mut archives = archives_of(&studies);
    archives.extend(["CLNDAT_EN.txt".to_string(), "CNNDAT_EN.TXT".to_string()]);
    Exp {
        slug: "scr",
        label_columns: &["nodule", "subtlety", "size_mm", "x", "y", "malignancy", "location", "diagnosis", "segmentation_masks"],
        studies,
        archives,
    }
}

#[test]
fn scr_jsrt_zips_and_extracted_folders() {
    let tmp = tempfile::tempdir().unwrap();
    let d = scr_download();
    // (1) A folder with All247images.zip, scratch.zip and the two clinical lists.
    d.write_archives(&tmp.path().join("dl"));
    {
        let m = mount_at(tmp.path(), "mnt1", &[tmp.path().join("dl")]);
        check(&m, &scr_expected(&d, Form::Archives));
        check_raw(&m, &[("_archives/scratch.zip/scratch/fold1/masks/left clavicle/JPCLN001.gif", &d.items.iter().find(|i| i.path == "scratch/fold1/masks/left clavicle/JPCLN001.gif").unwrap().data)]);
    }
    // (2) The common on-disk form: All247images/ and scratch/ extracted, lists beside them.
    d.write_extracted(&tmp.path().join("ex"));
    {
        let m = mount_at(tmp.path(), "mnt2", &[tmp.path().join("ex")]);
        let e = scr_expected(&d, Form::Extracted);
        assert_eq!(e.archives, ["All247images", "scratch", "CLNDAT_EN.txt", "CNNDAT_EN.TXT"]);
        check(&m, &e);
    }
    // (3) JSRT as Nodule154images.zip + NonNodule93images.zip, each named on the command line.
    let mut d2 = d.clone();
    for it in &mut d2.items {
        if it.path.starts_with("All247images/") {
            let stem = if it.path.contains("JPCLN") { "Nodule154images" } else { "NonNodule93images" };
            it.container = Some(format!("{stem}.zip"));
            it.path = it.path.replace("All247images/", &format!("{stem}/"));
        }
    }
    let sources = d2.write_archives(&tmp.path().join("split"));
    {
        let m = mount_at(tmp.path(), "mnt3", &sources);
        let e = scr_expected(&d2, Form::Archives);
        assert_eq!(e.archives, ["Nodule154images.zip", "NonNodule93images.zip", "scratch.zip", "CLNDAT_EN.txt", "CNNDAT_EN.TXT"]);
        check(&m, &e);
    }
}

// ------------------------------------------------------------------------------------------------
// USC-SIPI (usc-sipi.md)

/// (volume, file, side in the test (reduced), RGB, description or None, nominal size, type).
#[allow(clippy::type_complexity)]
const SIPI: [(&str, &str, u32, bool, Option<&str>, Option<u32>, Option<&str>); 12] = [
    ("misc", "4.2.03.tiff", 32, true, Some("Mandrill (a.k.a. Baboon)"), Some(512), Some("Color")),
    ("misc", "4.2.07.tiff", 32, true, Some("Peppers"), Some(512), Some("Color")),
    // Lena: removed from the index, still in older downloads; size from the catalogue name.
    ("misc", "4.2.04.tiff", 32, true, None, Some(512), None),
    ("misc", "5.1.09.tiff", 16, false, Some("Moon surface"), Some(256), Some("Gray")),
    ("misc", "boat.512.tiff", 32, false, Some("Fishing Boat"), Some(512), Some("Gray")),
    ("misc", "house.tiff", 32, true, Some("House"), Some(512), Some("Color")),
    ("misc", "ruler.512.tiff", 32, false, None, None, None),
    ("textures", "1.1.01.tiff", 32, false, Some("Grass"), Some(512), Some("Gray")),
    ("textures", "texmos1.p512.tiff", 32, false, Some("Texture mosaic #1"), Some(512), Some("Gray")),
    ("aerials", "2.1.01.tiff", 32, true, Some("San Diego (Miramar NAS)"), Some(512), Some("Color")),
    // Big enough that the IFD lies past the first 64 KiB.
    ("aerials", "2.2.01.tiff", 160, true, Some("San Diego (North Island NAS)"), Some(1024), Some("Color")),
    ("sequences", "6.1.01.tiff", 16, false, Some("Moving head"), Some(256), Some("Gray")),
];

fn sipi_tiff(i: usize) -> Vec<u8> {
    let (_, _, side, rgb, ..) = SIPI[i];
    tiff(side, side, rgb, i.is_multiple_of(3), 7000 + i as u64)
}

fn sipi_download() -> Download {
    let mut d = Download::default();
    for (i, (vol, name, ..)) in SIPI.iter().enumerate() {
        let tgz = format!("{vol}.tar.gz");
        d.add(Some(&tgz), &format!("{vol}/{name}"), sipi_tiff(i));
    }
    d
}

fn sipi_expected(form: Form) -> Exp {
    let studies = SIPI
        .iter()
        .enumerate()
        .map(|(i, &(vol, name, side, _, desc, size, ty))| {
            let tgz = format!("{vol}.tar.gz");
            S {
                patient: vol.into(),
                study: name.trim_end_matches(".tiff").into(),
                files: vec![file(name, &sipi_tiff(i), loc(form, Some(&tgz), &format!("{vol}/{name}")))],
                labels: json!({"description": desc}),
                meta: json!({"volume": vol, "size": size, "type": ty, "width": side, "height": side}),
                split: None,
            }
        })
        .collect();
    let archives = ["misc", "textures", "aerials", "sequences"]
        .iter()
        .map(|v| if form == Form::Archives { format!("{v}.tar.gz") } else { v.to_string() })
        .collect();
    Exp { slug: "usc-sipi", label_columns: &["description"], studies, archives }
}

#[test]
fn usc_sipi_volume_tarballs_and_extracted_volumes() {
    let tmp = tempfile::tempdir().unwrap();
    let d = sipi_download();
    // (1) The four volume archives named on the command line.
    let tgzs = d.write_archives(&tmp.path().join("dl"));
    assert_eq!(tgzs.len(), 4);
    {
        let m = mount_at(tmp.path(), "mnt1", &tgzs);
        check(&m, &sipi_expected(Form::Archives));
    }
    // (2) `tar -xzf misc.tar.gz` etc. in one folder.
    d.write_extracted(&tmp.path().join("ex"));
    {
        let m = mount_at(tmp.path(), "mnt2", &[tmp.path().join("ex")]);
        check(&m, &sipi_expected(Form::Extracted));
    }
}

// ------------------------------------------------------------------------------------------------
// All seven downloads in one folder (one subfolder each, as users keep them): one pool, seven
// datasets, none hiding or claiming another's files. DRIVE's and Kaggle DR's `test.zip` coexist.

#[test]
fn all_seven_downloads_in_one_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let all = tmp.path().join("all");
    let studies = mura_studies();
    mura_download(&studies).write_archives(&all.join("mura"));
    cxr_box_download().write_archives(&all.join("nih"));
    let dd = drive_download(true, "", None);
    dd.write_archives(&all.join("drive"));
    kdr_write(&all.join("kaggle"), true);
    let cases = ddsm_cases();
    let tree = ddsm_tree(&cases);
    ddsm_write_mirror(&tree, &all.join("ddsm"), true);
    let ds = scr_download();
    ds.write_archives(&all.join("jsrt"));
    sipi_download().write_archives(&all.join("sipi"));

    let m = mount_at(tmp.path(), "mnt", &[all]);
    check_top(&m, &["chestxray14", "ddsm", "drive", "kaggle-dr", "mura", "scr", "usc-sipi"]);
    check_dataset(&m, &relocate(mura_expected(&studies, Form::Archives), "mura"));
    check_dataset(&m, &relocate(cxr_expected(false), "nih"));
    check_dataset(&m, &relocate(drive_expected(&dd, Form::Archives), "drive"));
    check_dataset(&m, &relocate(kdr_expected(true, Form::Archives), "kaggle"));
    check_dataset(&m, &relocate(ddsm_expected(&cases, &tree, "", "", true, true), "ddsm"));
    check_dataset(&m, &relocate(scr_expected(&ds, Form::Archives), "jsrt"));
    check_dataset(&m, &relocate(sipi_expected(Form::Archives), "sipi"));
    check_raw(&m, &[("_archives/drive/test.zip/test/images/01_test.tif", &drive_tif(3)), ("_archives/kaggle/test.zip/test/2_right.jpeg", &kdr_jpeg(11))]);
}
