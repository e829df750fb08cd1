//! Issue 4 acceptance, through real mounts: for each 2D dataset (the layout its profile's header describes) a
//! small but faithful look-alike of the real download is written (archive names, member paths,
//! CSV headers and quirks, junk files), mounted with the medfs binary, and the whole dataset tree
//! is checked: every patient and study folder, the exact files of each study, `labels.json` and
//! `metadata.json` (exact keys and JSON types), `labels.csv` (every row, every path opens and has
//! the right bytes), `dataset.json`, the image bytes, and the raw `_archives/` view of each study
//! file and of the junk no profile places.
//!
//! The ways users hold downloads (issue 4 item 5) are covered: archives named one by one on the
//! command line, a folder holding everything, and an already extracted download tree; and (issue
//! 10) the cervical screening 7z set with its encrypted stage-2 archive, and the bundles that hold
//! archives inside an archive (Kaggle's cervix and DR bundles, DRIVE.zip of zips).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use common::*;
// Image and volume bytes: where a profile reads width/height from the header (DRIVE .tif, Kaggle
// DR .jpeg, USC-SIPI .tiff) the files are valid images of the stated size; the rest carry real
// headers too.
use medfs::fixtures::{analyze_pair, gif, jpeg, jsrt_img, ljpeg, nifti as nii, pgm, png, tiff, voxels};
use serde_json::{Map, Value, json};

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
    /// Extra `7z a` switches of a 7z container (`-p<password>`, `-mhe=on`).
    sevenz_flags: BTreeMap<String, Vec<String>>,
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
                    let members: Vec<&Item> =
                        self.items.iter().filter(|i| i.container.as_deref() == Some(c.as_str())).collect();
                    let entries = with_dirs(&members);
                    if c.ends_with(".zip") {
                        make_zip(&target, &entries, ZipMethod::Deflated);
                    } else if c.ends_with(".tar.gz") || c.ends_with(".tgz") {
                        make_tar_gz(&target, &entries);
                    } else if c.ends_with(".tar") {
                        make_tar(&target, &entries);
                    } else if c.ends_with(".7z") {
                        let extra = self.sevenz_flags.get(&c).map_or(&[][..], Vec::as_slice);
                        let flags: Vec<&str> = ["-mx1"].into_iter().chain(extra.iter().map(String::as_str)).collect();
                        let files: Vec<Entry> = members.iter().map(|i| entry(&i.path, i.data.clone())).collect();
                        make_7z(&target, &files, &flags);
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
                assert!(
                    !g.is_f64() && g.as_i64() == w.as_i64() && g.as_u64() == w.as_u64(),
                    "{ctx}: got {g}, want the integer {w}"
                );
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
            let parsed: Value =
                serde_json::from_str(cell).unwrap_or_else(|e| panic!("{ctx}: cell {cell:?} is not JSON: {e}"));
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
    let top: BTreeSet<String> =
        std::fs::read_dir(&m.mnt).unwrap().map(|d| d.unwrap().file_name().to_string_lossy().into_owned()).collect();
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
        assert!(
            seen_studies.insert((s.patient.clone(), s.study.clone())),
            "test bug: study {}/{} twice",
            s.patient,
            s.study
        );
        want.insert(format!("{}/", s.patient));
        want.insert(format!("{}/patient.json", s.patient));
        want.insert(format!("{}/{}/", s.patient, s.study));
        want.insert(format!("{}/{}/labels.json", s.patient, s.study));
        want.insert(format!("{}/{}/metadata.json", s.patient, s.study));
        for f in &s.files {
            // Volumetric datasets keep relative paths inside the study (`RAW/x.hdr`): their folders.
            let parts: Vec<&str> = f.name.split('/').collect();
            for k in 1..parts.len() {
                want.insert(format!("{}/{}/{}/", s.patient, s.study, parts[..k].join("/")));
            }
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
    assert!(
        ds["homepage"].as_str().is_some_and(|h| h.starts_with("http")),
        "dataset.json homepage: {}",
        ds["homepage"]
    );
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
            let raw =
                if f.loose { format!("_archives/{}", f.path) } else { format!("_archives/{}/{}", f.archive, f.path) };
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
    let order: Vec<(&str, &str, &str)> =
        recs[1..].iter().map(|r| (&r[1], &r[2], r[0].splitn(3, '/').nth(2).unwrap())).collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{}: labels.csv rows not in (patient, study, file) order", e.slug);
    for r in &recs[1..] {
        assert_eq!(r.len(), header.len(), "labels.csv: ragged row {r:?}");
        assert!(rows.insert(r[0].to_string(), r).is_none(), "labels.csv: {} listed twice", &r[0]);
    }
    let want_rows: BTreeSet<String> = e
        .studies
        .iter()
        .flat_map(|s| s.files.iter().map(move |f| format!("{}/{}/{}", s.patient, s.study, f.name)))
        .collect();
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
            let got = std::fs::read(root.join(&path))
                .unwrap_or_else(|err| panic!("labels.csv path {path} does not open: {err}"));
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
    // Derived files (PNGs beside DDSM and JSRT images) are tests/derived.rs's.
    mount(&srcs, &tmp.join(name), &["--no-derived"])
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
    assert!(
        String::from_utf8_lossy(&csv_bytes)
            .starts_with("MURA-v1.1/train/XR_SHOULDER/patient00001/study1_positive/,1\n")
    );

    // (1) The zip named on the command line.
    let zips = d.write_archives(&tmp.path().join("dl"));
    let first = {
        let m = mount_at(tmp.path(), "mnt1", &zips);
        check(&m, &mura_expected(&studies, Form::Archives));
        check_raw(
            &m,
            &[
                (&format!("_archives/MURA-v1.1.zip/{junk}"), &junk_bytes),
                (&format!("_archives/MURA-v1.1.zip/{csv}"), &csv_bytes),
            ],
        );
        sidecars(&m, "mura")
    };
    // (2) A folder holding the download (and an unrelated checksum file).
    std::fs::write(tmp.path().join("dl/MURA-v1.1.zip.md5"), "4c36feddb7f5698c8bf291b912c438b1  MURA-v1.1.zip\n")
        .unwrap();
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
            "00000001_001.png" => {
                json!([{"label": "Cardiomegaly", "x": 376.135593220339, "y": 455.932203389831, "w": 475.661016949152, "h": 354.711864406779}])
            }
            "00013118_008.png" => json!([
                {"label": "Atelectasis", "x": 225.084745762712, "y": 547.019216763771, "w": 86.7796610169491, "h": 79.1864406779661},
                {"label": "Infiltrate", "x": 686.101694915254, "y": 131.254237288136, "w": 185.491525423729, "h": 313.491525423729},
            ]),
            "00030805_001.png" => {
                json!([{"label": "Mass", "x": 311.652539, "y": 490.326271, "w": 112.542373, "h": 108.745763}])
            }
            _ => json!([]),
        }
    };
    let csv = if mirror { CXR_V2017 } else { CXR_V2020 };
    let rows: BTreeMap<&str, Vec<&str>> =
        csv.lines().skip(1).map(|l| (l.split(',').next().unwrap(), l.split(',').collect())).collect();
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
    let mut archives: Vec<String> =
        ["BBox_List_2017.csv", "train_val_list.txt", "test_list.txt"].map(String::from).to_vec();
    if mirror {
        archives.extend(["Data_Entry_2017.csv", "images_001", "images_002", "images_003"].map(String::from));
    } else {
        archives.extend(
            ["Data_Entry_2017_v2020.csv", "images_001.tar.gz", "images_002.tar.gz", "images_003.tar.gz"]
                .map(String::from),
        );
    }
    Exp {
        slug: "chestxray14",
        label_columns: &["finding_labels", "findings", "no_finding", "bboxes"],
        studies,
        archives,
    }
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
        check_raw(
            &m,
            &[
                ("_archives/Data_Entry_2017.csv", CXR_V2017.as_bytes()),
                ("_archives/BBox_List_2017.csv", CXR_BBOX.as_bytes()),
            ],
        );
    }
    // (2) The Box folder as downloaded, READMEs and the download script included.
    std::fs::write(tmp.path().join("box/README_CHESTXRAY.pdf"), b"%PDF-1.4\n%fake\n").unwrap();
    std::fs::write(
        tmp.path().join("box/batch_download_zips.py"),
        b"# Download the 56 zip files in Images_png in batches\nimport urllib\n",
    )
    .unwrap();
    {
        let m = mount_at(tmp.path(), "mnt2", &[tmp.path().join("box")]);
        check(&m, &cxr_expected(false));
        check_raw(
            &m,
            &[
                ("_archives/README_CHESTXRAY.pdf", b"%PDF-1.4\n%fake\n"),
                ("_archives/images_003.tar.gz/images/00030805_000.png", &cxr_image(4)),
            ],
        );
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
        let ids: Vec<(usize, &str)> =
            DRIVE_IDS.iter().enumerate().filter(|(_, x)| x.0 == split).map(|(i, x)| (i, x.1)).collect();
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
    Exp {
        slug: "drive",
        label_columns: &["vessel_manual1", "vessel_manual2", "fov_mask", "dr_signs"],
        studies,
        archives,
    }
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
    for (zip, member, text) in [
        ("trainLabels.csv.zip", "trainLabels.csv", &labels),
        ("sampleSubmission.csv.zip", "sampleSubmission.csv", &submission),
    ] {
        make_zip(&dir.join(zip), &[entry(member, text.clone().into_bytes())], ZipMethod::Deflated);
        out.push(dir.join(zip));
    }
    // sample/ holds copies of train images: never separate studies.
    make_zip(
        &dir.join("sample.zip"),
        &[
            entry("sample/", vec![]),
            entry("sample/10_left.jpeg", kdr_jpeg(0)),
            entry("sample/10_right.jpeg", kdr_jpeg(1)),
            entry("sample/13_left.jpeg", kdr_jpeg(2)),
        ],
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
                files: vec![file(
                    &format!("{id}.jpeg"),
                    &kdr_jpeg(i),
                    loc(form, Some(&format!("{split}.zip")), &format!("{split}/{id}.jpeg")),
                )],
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
        check_raw(
            &m,
            &[
                ("_archives/sample.zip/sample/10_left.jpeg", &kdr_jpeg(0)),
                ("_archives/train.zip/train/16_right.jpeg", &kdr_jpeg(7)),
            ],
        );
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
    out.push((
        "cases/cancers/cancer_08/case1509/A_1509_1.RIGHT_MLO.OVERLAYu".into(),
        b"TOTAL_ABNORMALITIES 1\n".to_vec(),
        false,
    ));
    out.push(("cases/cancers/cancer_08/case1509/jpeg".into(), b"\x7fELF\x02\x01\x01fake-binary".to_vec(), false));
    out.push(("cases/cancers/cancer_01/#mv.sh#".into(), b"mv *.LJPEG.1 /tmp\n".to_vec(), false));
    out.push(("cases/cancers/cancer_01/cancer_01.html~".into(), b"<html></html>\n".to_vec(), false));
    out.push(("cases/normals/normal_01/jpeg".into(), b"\x7fELF\x02\x01\x01fake-binary".to_vec(), false));
    out
}

/// `strip`: the part of `cases/…` above the mounted folder; `archive`: the zip holding the tree
/// (when not `loose`); `gz`: the DDSM_GZ files are gzipped in the mirror.
fn ddsm_expected(
    cases: &[DdsmCase],
    tree: &[(String, Vec<u8>, bool)],
    archive: &str,
    strip: &str,
    loose: bool,
    gz: bool,
) -> Exp {
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
                        return F {
                            archive: format!("{path}.gz"),
                            path: name.clone(),
                            name,
                            data: data.clone(),
                            loose: false,
                        };
                    }
                    let archive = if loose { path.split('/').next().unwrap().to_string() } else { archive.to_string() };
                    F { name, data: data.clone(), archive, path, loose }
                })
                .collect();
            S {
                patient: c.prefix.into(),
                study: c.case_dir.into(),
                files,
                labels: c.labels.clone(),
                meta: c.meta.clone(),
                split: None,
            }
        })
        .collect::<Vec<_>>();
    let archives = archives_of(&studies);
    Exp { slug: "ddsm", label_columns: &["case_type", "abnormalities"], studies, archives }
}

/// Files a mirror holds `.gz`-compressed ("some ljpeg/overlay were .gz'd", ddsm.md).
const DDSM_GZ: [&str; 2] = [
    "cases/cancers/cancer_08/case1509/A_1509_1.RIGHT_MLO.OVERLAY",
    "cases/benigns/benign_09/case4012/D_4012_1.LEFT_CC.LJPEG",
];

/// Writes the mirror under `dir`, gzipping the DDSM_GZ files if asked (as `gzip` does: the
/// original name in the header, `.gz` appended).
fn ddsm_write_mirror(tree: &[(String, Vec<u8>, bool)], dir: &Path, gz: bool) {
    for (p, data, _) in tree {
        let f = dir.join(p);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        if gz && DDSM_GZ.contains(&p.as_str()) {
            let name = p.rsplit('/').next().unwrap();
            let mut e = flate2::GzBuilder::new()
                .filename(name)
                .mtime(1_000_000_000)
                .write(Vec::new(), flate2::Compression::best());
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
        check_raw(
            &m,
            &[
                ("_archives/cases/cancers/cancer_01/#mv.sh#", b"mv *.LJPEG.1 /tmp\n"),
                ("_archives/cases/cancers/cancer_08/case1509/jpeg", b"\x7fELF\x02\x01\x01fake-binary"),
            ],
        );
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
        check_raw(
            &m,
            &[("_archives/DDSM.zip/cases/normals/normal_01/case0002/A-0002-1.ics~", cases[0].ics.as_bytes())],
        );
    }
}

// ------------------------------------------------------------------------------------------------
// SCR + JSRT (scr.md)

const ORGANS: [&str; 5] = ["heart", "left clavicle", "left lung", "right clavicle", "right lung"];

/// (JSRT id, fold, .IMG side).
const SCR_IDS: [(&str, &str, usize); 4] =
    [("JPCLN001", "fold1", 64), ("JPCLN002", "fold2", 48), ("JPCNN001", "fold1", 64), ("JPCNN002", "fold2", 32)];

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
            d.add(
                Some("scratch.zip"),
                &format!("scratch/{fold}/masks/{organ}/{id}.gif"),
                gif(16, 16, 6100 + (i * 10 + k) as u64),
            );
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
                (
                    json!({"nodule": false, "segmentation_masks": masks}),
                    serde_json::from_str(r[1]).unwrap(),
                    r[2].to_string(),
                )
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
        label_columns: &[
            "nodule",
            "subtlety",
            "size_mm",
            "x",
            "y",
            "malignancy",
            "location",
            "diagnosis",
            "segmentation_masks",
        ],
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
        check_raw(
            &m,
            &[(
                "_archives/scratch.zip/scratch/fold1/masks/left clavicle/JPCLN001.gif",
                &d.items.iter().find(|i| i.path == "scratch/fold1/masks/left clavicle/JPCLN001.gif").unwrap().data,
            )],
        );
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
        assert_eq!(
            e.archives,
            ["Nodule154images.zip", "NonNodule93images.zip", "scratch.zip", "CLNDAT_EN.txt", "CNNDAT_EN.TXT"]
        );
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
    check_raw(
        &m,
        &[
            ("_archives/drive/test.zip/test/images/01_test.tif", &drive_tif(3)),
            ("_archives/kaggle/test.zip/test/2_right.jpeg", &kdr_jpeg(11)),
        ],
    );
}

// ------------------------------------------------------------------------------------------------
// Volumes (issue 5 item 3). NIfTI-1 / Analyze 7.5 files are real: a 348-byte header, then int16
// voxels, so nibabel could load them; `.nii.gz` is gzipped.

// ---- BraTS 2020 / 2021 / 2023 (brats20xx.md)

const BRATS_SHAPE: [i16; 3] = [12, 10, 8];

fn brats20_download(kaggle: bool) -> Download {
    let mut d = Download::default();
    let (tr, va, pt, pv, ext) = if kaggle {
        let z = "brats20-dataset-training-validation.zip";
        (
            z,
            z,
            "BraTS2020_TrainingData/MICCAI_BraTS2020_TrainingData/",
            "BraTS2020_ValidationData/MICCAI_BraTS2020_ValidationData/",
            "nii",
        )
    } else {
        (
            "MICCAI_BraTS2020_TrainingData.zip",
            "MICCAI_BraTS2020_ValidationData.zip",
            "MICCAI_BraTS2020_TrainingData/",
            "MICCAI_BraTS2020_ValidationData/",
            "nii.gz",
        )
    };
    for (i, c) in ["001", "002", "355"].iter().enumerate() {
        let case = format!("BraTS20_Training_{c}");
        for (k, m) in ["flair", "t1", "t1ce", "t2", "seg"].iter().enumerate() {
            let name = if kaggle && *c == "355" && *m == "seg" {
                "W39_1998.09.19_Segm.nii".to_string()
            } else {
                format!("{case}_{m}.{ext}")
            };
            d.add(
                Some(tr),
                &format!("{pt}{case}/{name}"),
                nii(&BRATS_SHAPE, &[1.0, 1.0, 1.0], (i * 10 + k) as u64, !kaggle),
            );
        }
    }
    d.add(Some(tr), &format!("{pt}name_mapping.csv"), "Grade,BraTS_2017_subject_ID,BraTS_2018_subject_ID,TCGA_TCIA_subject_ID,BraTS_2019_subject_ID,BraTS_2020_subject_ID\r\nHGG,Brats17_CBICA_AAB_1,Brats18_CBICA_AAB_1,NA,BraTS19_CBICA_AAB_1,BraTS20_Training_001\r\nHGG,Brats17_2013_2_1,Brats18_2013_2_1,NA,BraTS19_2013_2_1,BraTS20_Training_002\r\nLGG,Brats17_TCIA_101_1,Brats18_TCIA_101_1,TCGA-HT-7602,BraTS19_TCIA_101_1,BraTS20_Training_355\r\n");
    d.add(Some(tr), &format!("{pt}survival_info.csv"), "Brats20ID,Age,Survival_days,Extent_of_Resection\nBraTS20_Training_001,60.463,289,GTR\nBraTS20_Training_002,52.263,ALIVE (361 days later),NA\n");
    for (k, m) in ["flair", "t1", "t1ce", "t2"].iter().enumerate() {
        d.add(
            Some(va),
            &format!("{pv}BraTS20_Validation_001/BraTS20_Validation_001_{m}.{ext}"),
            nii(&BRATS_SHAPE, &[1.0, 1.0, 1.0], 90 + k as u64, !kaggle),
        );
    }
    d.add(
        Some(va),
        &format!("{pv}survival_evaluation.csv"),
        "BraTS20ID,Age,ResectionStatus\nBraTS20_Validation_001,68.2,GTR\n",
    );
    d
}

/// The study files of a case, from a download: every item under `<case>/`.
fn case_files(d: &Download, case: &str, form: Form) -> Vec<F> {
    d.items
        .iter()
        .filter(|it| it.path.contains(&format!("{case}/")))
        .map(|it| file(it.path.rsplit('/').next().unwrap(), &it.data, loc(form, it.container.as_deref(), &it.path)))
        .collect()
}

fn modalities(files: &[F], mods: &[&str], sep: char) -> Value {
    let mut o = Map::new();
    for m in mods {
        if let Some(f) = files.iter().find(|f| f.name.split('.').next().unwrap().ends_with(&format!("{sep}{m}"))) {
            o.insert(m.to_string(), json!(f.name));
        }
    }
    Value::Object(o)
}

fn brats20_expected(d: &Download, kaggle: bool, form: Form) -> Exp {
    let lv = json!({"0": "background", "1": "NCR/NET", "2": "ED", "4": "ET"});
    let clinical: [(&str, Value, Value); 4] = [
        (
            "BraTS20_Training_001",
            json!({"grade": "HGG", "age": 60.463, "survival_days": "289", "extent_of_resection": "GTR"}),
            json!({"BraTS_2017_subject_ID": "Brats17_CBICA_AAB_1", "BraTS_2018_subject_ID": "Brats18_CBICA_AAB_1", "TCGA_TCIA_subject_ID": null, "BraTS_2019_subject_ID": "BraTS19_CBICA_AAB_1"}),
        ),
        (
            "BraTS20_Training_002",
            json!({"grade": "HGG", "age": 52.263, "survival_days": "ALIVE (361 days later)", "extent_of_resection": null}),
            json!({"BraTS_2017_subject_ID": "Brats17_2013_2_1", "BraTS_2018_subject_ID": "Brats18_2013_2_1", "TCGA_TCIA_subject_ID": null, "BraTS_2019_subject_ID": "BraTS19_2013_2_1"}),
        ),
        (
            "BraTS20_Training_355",
            json!({"grade": "LGG", "age": null, "survival_days": null, "extent_of_resection": null}),
            json!({"BraTS_2017_subject_ID": "Brats17_TCIA_101_1", "BraTS_2018_subject_ID": "Brats18_TCIA_101_1", "TCGA_TCIA_subject_ID": "TCGA-HT-7602", "BraTS_2019_subject_ID": "BraTS19_TCIA_101_1"}),
        ),
        (
            "BraTS20_Validation_001",
            json!({"grade": null, "age": null, "survival_days": null, "extent_of_resection": null}),
            json!(null),
        ),
    ];
    let studies = clinical
        .iter()
        .map(|(case, clin, nm)| {
            let files = case_files(d, case, form);
            let seg = files.iter().find(|f| f.name.contains("seg") || f.name.contains("Segm")).map(|f| f.name.clone());
            let mut labels = clin.clone();
            labels["segmentation"] = json!(seg);
            labels["label_values"] = lv.clone();
            S {
                patient: case.to_string(),
                study: case.to_string(),
                meta: json!({"modalities": modalities(&files, &["flair", "t1", "t1ce", "t2"], '_'), "shape": BRATS_SHAPE, "voxel_size": [1.0, 1.0, 1.0], "name_mapping": nm}),
                files,
                labels,
                split: Some(if case.contains("Training") { "train" } else { "valid" }),
            }
        })
        .collect();
    let archives = if form == Form::Extracted {
        vec![
            if kaggle { "BraTS2020_TrainingData".to_string() } else { "MICCAI_BraTS2020_TrainingData".to_string() },
            if kaggle { "BraTS2020_ValidationData".into() } else { "MICCAI_BraTS2020_ValidationData".into() },
        ]
    } else if kaggle {
        vec!["brats20-dataset-training-validation.zip".into()]
    } else {
        vec!["MICCAI_BraTS2020_TrainingData.zip".into(), "MICCAI_BraTS2020_ValidationData.zip".into()]
    };
    Exp {
        slug: "brats2020",
        label_columns: &["segmentation", "label_values", "grade", "age", "survival_days", "extent_of_resection"],
        studies,
        archives,
    }
}

fn brats21_download() -> Download {
    let mut d = Download::default();
    for (i, (tar, c)) in [
        ("BraTS2021_Training_Data.tar", "00000"),
        ("BraTS2021_Training_Data.tar", "00002"),
        ("BraTS2021_Training_Data.tar", "01666"),
        ("BraTS2021_00495.tar", "00495"),
    ]
    .iter()
    .enumerate()
    {
        let case = format!("BraTS2021_{c}");
        for (k, m) in ["flair", "t1", "t1ce", "t2", "seg"].iter().enumerate() {
            d.add(
                Some(tar),
                &format!("{case}/{case}_{m}.nii.gz"),
                nii(&BRATS_SHAPE, &[1.0, 1.0, 1.0], (200 + i * 10 + k) as u64, true),
            );
        }
    }
    d
}

fn brats_simple_expected(
    d: &Download,
    slug: &'static str,
    cases: &[(&str, &str, bool)],
    mods: &[&str],
    sep: char,
    lv: Value,
    form: Form,
) -> Exp {
    let studies: Vec<S> = cases
        .iter()
        .map(|(patient, case, train)| {
            let files = case_files(d, case, form);
            let seg = files.iter().find(|f| f.name.contains("seg")).map(|f| f.name.clone());
            S {
                patient: patient.to_string(),
                study: case.to_string(),
                meta: json!({"modalities": modalities(&files, mods, sep), "shape": BRATS_SHAPE, "voxel_size": [1.0, 1.0, 1.0]}),
                files,
                labels: json!({"segmentation": seg, "label_values": lv}),
                split: Some(if *train { "train" } else { "valid" }),
            }
        })
        .collect();
    let archives = archives_of(&studies);
    Exp { slug, label_columns: &["segmentation", "label_values"], studies, archives }
}

fn brats23_download() -> Download {
    let mut d = Download::default();
    let z = "ASNR-MICCAI-BraTS2023-GLI-Challenge-TrainingData.zip";
    for (i, case) in ["BraTS-GLI-00000-000", "BraTS-GLI-00009-000", "BraTS-GLI-00009-001"].iter().enumerate() {
        for (k, m) in ["t1c", "t1n", "t2f", "t2w", "seg"].iter().enumerate() {
            d.add(
                Some(z),
                &format!("ASNR-MICCAI-BraTS2023-GLI-Challenge-TrainingData/{case}/{case}-{m}.nii.gz"),
                nii(&BRATS_SHAPE, &[1.0, 1.0, 1.0], (300 + i * 10 + k) as u64, true),
            );
        }
    }
    let v = "ASNR-MICCAI-BraTS2023-GLI-Challenge-ValidationData.zip";
    for (k, m) in ["t1c", "t1n", "t2f", "t2w"].iter().enumerate() {
        d.add(
            Some(v),
            &format!(
                "ASNR-MICCAI-BraTS2023-GLI-Challenge-ValidationData/BraTS-GLI-00001-000/BraTS-GLI-00001-000-{m}.nii.gz"
            ),
            nii(&BRATS_SHAPE, &[1.0, 1.0, 1.0], 390 + k as u64, true),
        );
    }
    d
}

#[test]
fn brats_official_kaggle_2021_tars_and_2023_timepoints() {
    let tmp = tempfile::tempdir().unwrap();
    // (1) BraTS 2020: the two official zips named on the command line.
    let d = brats20_download(false);
    let zips = d.write_archives(&tmp.path().join("b20"));
    {
        let m = mount_at(tmp.path(), "mnt1", &zips);
        check(&m, &brats20_expected(&d, false, Form::Archives));
        check_raw(
            &m,
            &[(
                "_archives/MICCAI_BraTS2020_ValidationData.zip/MICCAI_BraTS2020_ValidationData/survival_evaluation.csv",
                b"BraTS20ID,Age,ResectionStatus\nBraTS20_Validation_001,68.2,GTR\n",
            )],
        );
    }
    // (2) The Kaggle mirror, extracted: plain .nii, case 355's W39 seg.
    let dk = brats20_download(true);
    dk.write_extracted(&tmp.path().join("b20k"));
    {
        let m = mount_at(tmp.path(), "mnt2", &[tmp.path().join("b20k")]);
        check(&m, &brats20_expected(&dk, true, Form::Extracted));
    }
    // (3) BraTS 2021 training tar + a Kaggle single-case tar, in a folder.
    let d21 = brats21_download();
    d21.write_archives(&tmp.path().join("b21"));
    {
        let m = mount_at(tmp.path(), "mnt3", &[tmp.path().join("b21")]);
        let cases = [
            ("BraTS2021_00000", "BraTS2021_00000", true),
            ("BraTS2021_00002", "BraTS2021_00002", true),
            ("BraTS2021_00495", "BraTS2021_00495", true),
            ("BraTS2021_01666", "BraTS2021_01666", true),
        ];
        check(
            &m,
            &brats_simple_expected(
                &d21,
                "brats2021",
                &cases,
                &["flair", "t1", "t1ce", "t2"],
                '_',
                json!({"0": "background", "1": "NCR", "2": "ED", "4": "ET"}),
                Form::Archives,
            ),
        );
    }
    // (4) BraTS 2023: training + validation zips; a patient with two timepoints.
    let d23 = brats23_download();
    let zips = d23.write_archives(&tmp.path().join("b23"));
    {
        let m = mount_at(tmp.path(), "mnt4", &zips);
        let cases = [
            ("BraTS-GLI-00000", "BraTS-GLI-00000-000", true),
            ("BraTS-GLI-00001", "BraTS-GLI-00001-000", false),
            ("BraTS-GLI-00009", "BraTS-GLI-00009-000", true),
            ("BraTS-GLI-00009", "BraTS-GLI-00009-001", true),
        ];
        check(
            &m,
            &brats_simple_expected(
                &d23,
                "brats2023",
                &cases,
                &["t1c", "t1n", "t2f", "t2w"],
                '-',
                json!({"0": "background", "1": "NETC", "2": "SNFH", "3": "ET"}),
                Form::Archives,
            ),
        );
    }
}

/// The study files under `<dir>/` in a download, named by their path relative to that folder.
fn files_under(d: &Download, dir: &str, form: Form) -> Vec<F> {
    let needle = format!("{dir}/");
    d.items
        .iter()
        .filter_map(|it| {
            let at = if it.path.starts_with(&needle) { 0 } else { it.path.find(&format!("/{needle}"))? + 1 };
            let rel = &it.path[at + needle.len()..];
            Some(file(rel, &it.data, loc(form, it.container.as_deref(), &it.path)))
        })
        .collect()
}

// ---- OASIS-1 (oasis1.md)

const OASIS1: [(&str, &str, &str, usize); 4] = [
    ("disc1", "OAS1_0001_MR1", "n4", 4),
    ("disc1", "OAS1_0002_MR1", "n3", 3),
    ("disc2", "OAS1_0061_MR1", "n6", 3),
    ("disc2", "OAS1_0061_MR2", "n5", 3),
];

fn oasis1_download() -> Download {
    let mut d = Download::default();
    let mut seed = 500;
    for (disc, s, n, runs) in OASIS1 {
        let tgz = format!("oasis_cross-sectional_{disc}.tar.gz");
        let tgz = Some(tgz.as_str());
        let pre = format!("{disc}/{s}");
        d.add(tgz, &format!("{pre}/{s}.txt"), format!("SESSION ID: {s}\n"));
        d.add(tgz, &format!("{pre}/{s}.xml"), format!("<xnat:MRSession ID=\"{s}\"/>\n"));
        let pair = |d: &mut Download, rel: &str, shape: &[i16], seed: &mut u64| {
            *seed += 1;
            let (h, i) = analyze_pair(shape, &[1.0, 1.0, 1.25, 0.0], true, b"\0\0\0\0", *seed);
            d.add(tgz, &format!("{pre}/{rel}.hdr"), h).add(tgz, &format!("{pre}/{rel}.img"), i);
        };
        for k in 1..=runs {
            pair(&mut d, &format!("RAW/{s}_mpr-{k}_anon"), &[16, 16, 8, 1], &mut seed);
            d.add(tgz, &format!("{pre}/RAW/{s}_mpr-{k}_anon_sag_66.gif"), gif(16, 8, seed));
        }
        pair(&mut d, &format!("PROCESSED/MPRAGE/SUBJ_111/{s}_mpr_{n}_anon_sbj_111"), &[16, 16, 8, 1], &mut seed);
        pair(&mut d, &format!("PROCESSED/MPRAGE/T88_111/{s}_mpr_{n}_anon_111_t88_gfc"), &[11, 13, 11, 1], &mut seed);
        pair(
            &mut d,
            &format!("PROCESSED/MPRAGE/T88_111/{s}_mpr_{n}_anon_111_t88_masked_gfc"),
            &[11, 13, 11, 1],
            &mut seed,
        );
        for v in ["tra_90", "sag_95", "cor_110"] {
            d.add(
                tgz,
                &format!("{pre}/PROCESSED/MPRAGE/T88_111/{s}_mpr_{n}_anon_111_t88_gfc_{v}.gif"),
                gif(11, 13, seed),
            );
        }
        pair(&mut d, &format!("FSL_SEG/{s}_mpr_{n}_anon_111_t88_masked_gfc_fseg"), &[11, 13, 11, 1], &mut seed);
    }
    d.add(None, "oasis_cross-sectional.csv", "ID,M/F,Hand,Age,Educ,SES,MMSE,CDR,eTIV,nWBV,ASF,Delay\nOAS1_0001_MR1,F,R,74,2,3,29,0,1344,0.743,1.306,N/A\nOAS1_0002_MR1,F,R,25,,,,,1147,0.81,1.531,N/A\nOAS1_0061_MR1,M,R,80,3,2,27,0.5,1500,0.7,1.2,N/A\nOAS1_0061_MR2,M,R,80,3,2,27,0.5,1500,0.7,1.2,21\n");
    d.add(
        None,
        "oasis_cross-sectional-reliability.csv",
        "ID,M/F,Hand,Age,Educ,SES,MMSE,CDR,eTIV,nWBV,ASF,Delay\nOAS1_0061_MR2,M,R,80,3,2,27,0.5,1500,0.7,1.2,21\n",
    );
    d
}

fn oasis1_expected(d: &Download, form: Form) -> Exp {
    let facts: [Value; 4] = [
        json!([{"CDR": 0.0, "MMSE": 29}, {"M/F": "F", "Hand": "R", "Age": 74, "Educ": 2, "SES": 3, "eTIV": 1344, "nWBV": 0.743, "ASF": 1.306, "Delay": null}]),
        json!([{"CDR": null, "MMSE": null}, {"M/F": "F", "Hand": "R", "Age": 25, "Educ": null, "SES": null, "eTIV": 1147, "nWBV": 0.81, "ASF": 1.531, "Delay": null}]),
        json!([{"CDR": 0.5, "MMSE": 27}, {"M/F": "M", "Hand": "R", "Age": 80, "Educ": 3, "SES": 2, "eTIV": 1500, "nWBV": 0.7, "ASF": 1.2, "Delay": null}]),
        json!([{"CDR": 0.5, "MMSE": 27}, {"M/F": "M", "Hand": "R", "Age": 80, "Educ": 3, "SES": 2, "eTIV": 1500, "nWBV": 0.7, "ASF": 1.2, "Delay": 21}]),
    ];
    let studies = OASIS1
        .iter()
        .zip(facts)
        .map(|((disc, s, _, runs), f)| {
            let mut meta = f[1].clone();
            meta["disc"] = json!(disc);
            meta["n_mpr"] = json!(runs);
            S {
                patient: s[..9].to_string(),
                study: s.to_string(),
                files: files_under(d, s, form),
                labels: f[0].clone(),
                meta,
                split: None,
            }
        })
        .collect();
    let mut archives: Vec<String> = if form == Form::Archives {
        vec!["oasis_cross-sectional_disc1.tar.gz".into(), "oasis_cross-sectional_disc2.tar.gz".into()]
    } else {
        vec!["disc1".into(), "disc2".into()]
    };
    archives.extend(["oasis_cross-sectional.csv".to_string(), "oasis_cross-sectional-reliability.csv".to_string()]);
    Exp { slug: "oasis1", label_columns: &["CDR", "MMSE"], studies, archives }
}

#[test]
fn oasis1_disc_tarballs_and_extracted_discs() {
    let tmp = tempfile::tempdir().unwrap();
    let d = oasis1_download();
    let srcs = d.write_archives(&tmp.path().join("dl"));
    {
        let m = mount_at(tmp.path(), "mnt1", &srcs);
        check(&m, &oasis1_expected(&d, Form::Archives));
    }
    d.write_extracted(&tmp.path().join("ex"));
    {
        let m = mount_at(tmp.path(), "mnt2", &[tmp.path().join("ex")]);
        check(&m, &oasis1_expected(&d, Form::Extracted));
    }
}

// ---- OASIS-2 (oasis2.md)

const OASIS2: [(&str, &str, usize); 4] = [
    ("OAS2_RAW_PART1", "OAS2_0001_MR1", 3),
    ("OAS2_RAW_PART1", "OAS2_0001_MR2", 2),
    ("OAS2_RAW_PART2", "OAS2_0002_MR1", 4),
    ("OAS2_RAW_PART2", "OAS2_0004_MR1", 3),
];

fn oasis2_download() -> Download {
    let mut d = Download::default();
    for (i, (part, s, runs)) in OASIS2.iter().enumerate() {
        let tgz = format!("{part}.tar.gz");
        for k in 1..=*runs {
            let (h, img) =
                analyze_pair(&[16, 16, 8, 1], &[1.0, 1.0, 1.25, 0.0], false, b"ni1\0", (600 + i * 10 + k) as u64);
            d.add(Some(&tgz), &format!("{part}/{s}/RAW/mpr-{k}.nifti.hdr"), h).add(
                Some(&tgz),
                &format!("{part}/{s}/RAW/mpr-{k}.nifti.img"),
                img,
            );
        }
        if *s == "OAS2_0002_MR1" {
            d.add(Some(&tgz), &format!("{part}/{s}/RAW/3906-3.nift.img"), voxels(&[16, 16, 8], 699));
        }
    }
    d.add(None, "oasis_longitudinal.csv", "Subject ID,MRI ID,Group,Visit,MR Delay,M/F,Hand,Age,EDUC,SES,MMSE,CDR,eTIV,nWBV,ASF\nOAS2_0001,OAS2_0001_MR1,Nondemented,1,0,M,R,87,14,2,27,0,1987,0.696,0.883\nOAS2_0001,OAS2_0001_MR2,Nondemented,2,457,M,R,88,14,2,30,0,2004,0.681,0.876\nOAS2_0002,OAS2_0002_MR1,Demented,1,0,M,R,75,12,,23,0.5,1678,0.736,1.046\nOAS2_0004,OAS2_0004_MR1,Converted,1,0,F,R,88,18,3,,0,1215,0.71,1.444\n");
    d
}

fn oasis2_expected(d: &Download, form: Form) -> Exp {
    let facts = [
        json!([{"Group": "Nondemented", "CDR": 0.0, "MMSE": 27}, {"Visit": 1, "MR Delay": 0, "M/F": "M", "Hand": "R", "Age": 87, "EDUC": 14, "SES": 2, "eTIV": 1987, "nWBV": 0.696, "ASF": 0.883}]),
        json!([{"Group": "Nondemented", "CDR": 0.0, "MMSE": 30}, {"Visit": 2, "MR Delay": 457, "M/F": "M", "Hand": "R", "Age": 88, "EDUC": 14, "SES": 2, "eTIV": 2004, "nWBV": 0.681, "ASF": 0.876}]),
        json!([{"Group": "Demented", "CDR": 0.5, "MMSE": 23}, {"Visit": 1, "MR Delay": 0, "M/F": "M", "Hand": "R", "Age": 75, "EDUC": 12, "SES": null, "eTIV": 1678, "nWBV": 0.736, "ASF": 1.046}]),
        json!([{"Group": "Converted", "CDR": 0.0, "MMSE": null}, {"Visit": 1, "MR Delay": 0, "M/F": "F", "Hand": "R", "Age": 88, "EDUC": 18, "SES": 3, "eTIV": 1215, "nWBV": 0.71, "ASF": 1.444}]),
    ];
    let studies = OASIS2
        .iter()
        .zip(facts)
        .map(|((part, s, _), f)| {
            let mut meta = f[1].clone();
            meta["part"] = json!(part);
            let files = files_under(d, s, form).into_iter().filter(|f| !f.name.contains("3906")).collect();
            S { patient: s[..9].to_string(), study: s.to_string(), files, labels: f[0].clone(), meta, split: None }
        })
        .collect::<Vec<S>>();
    let mut archives = archives_of(&studies);
    archives.push("oasis_longitudinal.csv".into());
    Exp { slug: "oasis2", label_columns: &["Group", "CDR", "MMSE"], studies, archives }
}

#[test]
fn oasis2_raw_parts_and_stray_file() {
    let tmp = tempfile::tempdir().unwrap();
    let d = oasis2_download();
    d.write_archives(&tmp.path().join("dl"));
    let m = mount_at(tmp.path(), "mnt", &[tmp.path().join("dl")]);
    check(&m, &oasis2_expected(&d, Form::Archives));
    check_raw(
        &m,
        &[(
            "_archives/OAS2_RAW_PART2.tar.gz/OAS2_RAW_PART2/OAS2_0002_MR1/RAW/3906-3.nift.img",
            &voxels(&[16, 16, 8], 699),
        )],
    );
}

// ---- ABIDE (abide.md)

const ABIDE_HEADER: &str = ",Unnamed: 0,SUB_ID,X,subject,SITE_ID,FILE_ID,DX_GROUP,DSM_IV_TR,AGE_AT_SCAN,SEX,HANDEDNESS_CATEGORY,HANDEDNESS_SCORES,FIQ,VIQ,PIQ,FIQ_TEST_TYPE,VIQ_TEST_TYPE,PIQ_TEST_TYPE,ADI_R_SOCIAL_TOTAL_A,ADI_R_VERBAL_TOTAL_BV,ADI_RRB_TOTAL_C,ADI_R_ONSET_TOTAL_D,ADI_R_RSRCH_RELIABLE,ADOS_MODULE,ADOS_TOTAL,ADOS_COMM,ADOS_SOCIAL,ADOS_STEREO_BEHAV,ADOS_RSRCH_RELIABLE,ADOS_GOTHAM_SOCAFFECT,ADOS_GOTHAM_RRB,ADOS_GOTHAM_TOTAL,ADOS_GOTHAM_SEVERITY,SRS_VERSION,SRS_RAW_TOTAL,SRS_AWARENESS,SRS_COGNITION,SRS_COMMUNICATION,SRS_MOTIVATION,SRS_MANNERISMS,SCQ_TOTAL,AQ_TOTAL,COMORBIDITY,CURRENT_MED_STATUS,MEDICATION_NAME,OFF_STIMULANTS_AT_SCAN,VINELAND_RECEPTIVE_V_SCALED,VINELAND_EXPRESSIVE_V_SCALED,VINELAND_WRITTEN_V_SCALED,VINELAND_COMMUNICATION_STANDARD,VINELAND_PERSONAL_V_SCALED,VINELAND_DOMESTIC_V_SCALED,VINELAND_COMMUNITY_V_SCALED,VINELAND_DAILYLVNG_STANDARD,VINELAND_INTERPERSONAL_V_SCALED,VINELAND_PLAY_V_SCALED,VINELAND_COPING_V_SCALED,VINELAND_SOCIAL_STANDARD,VINELAND_SUM_SCORES,VINELAND_ABC_STANDARD,VINELAND_INFORMANT,WISC_IV_VCI,WISC_IV_PRI,WISC_IV_WMI,WISC_IV_PSI,WISC_IV_SIM_SCALED,WISC_IV_VOCAB_SCALED,WISC_IV_INFO_SCALED,WISC_IV_BLK_DSN_SCALED,WISC_IV_PIC_CON_SCALED,WISC_IV_MATRIX_SCALED,WISC_IV_DIGIT_SPAN_SCALED,WISC_IV_LET_NUM_SCALED,WISC_IV_CODING_SCALED,WISC_IV_SYM_SCALED,EYE_STATUS_AT_SCAN,AGE_AT_MPRAGE,BMI,anat_cnr,anat_efc,anat_fber,anat_fwhm,anat_qi1,anat_snr,func_efc,func_fber,func_fwhm,func_dvars,func_outlier,func_quality,func_mean_fd,func_num_fd,func_perc_fd,func_gsr,qc_rater_1,qc_notes_rater_1,qc_anat_rater_2,qc_anat_notes_rater_2,qc_func_rater_2,qc_func_notes_rater_2,qc_anat_rater_3,qc_anat_notes_rater_3,qc_func_rater_3,qc_func_notes_rater_3,SUB_IN_SMP";

/// A 106-column phenotypic row from the first 12 cells and a few named ones; the rest -9999.
fn abide_row(first12: &str, named: &[(&str, &str)]) -> String {
    let cols: Vec<&str> = ABIDE_HEADER.split(',').collect();
    let mut cells: Vec<String> = vec!["-9999".into(); cols.len()];
    for (i, v) in first12.split(',').enumerate() {
        cells[i] = v.into();
    }
    for (k, v) in named {
        cells[cols.iter().position(|c| c == k).unwrap()] = v.to_string();
    }
    cells.join(",")
}

fn abide_download() -> Download {
    let mut d = Download::default();
    let z = Some("ABIDE_pcp.zip");
    let csv = [
        ABIDE_HEADER.to_string(),
        abide_row(
            "0,1,50002,1,50002,PITT,no_filename,1,1,16.77,1,Ambi",
            &[("FIQ", "103"), ("func_mean_fd", "0.1"), ("qc_rater_1", "OK"), ("SUB_IN_SMP", "1")],
        ),
        abide_row(
            "1,2,50003,2,50003,PITT,Pitt_0050003,1,1,24.45,1,R",
            &[
                ("FIQ", "124"),
                ("func_mean_fd", "0.0803"),
                ("qc_rater_1", "OK"),
                ("qc_func_rater_2", "OK"),
                ("qc_func_rater_3", "fail"),
                ("qc_notes_rater_1", "\"motion, slight\""),
                ("SUB_IN_SMP", "1"),
            ],
        ),
        abide_row(
            "26,27,50030,27,50030,PITT,Pitt_0050030,2,0,25.12,1,-9999",
            &[
                ("func_mean_fd", "0.12"),
                ("qc_rater_1", "OK"),
                ("qc_func_rater_2", ""),
                ("qc_func_rater_3", "OK"),
                ("SUB_IN_SMP", "0"),
            ],
        ),
        abide_row(
            "400,401,51334,401,51334,MAX_MUN,MaxMun_c_0051334,1,-9999,12.5,2,R",
            &[
                ("FIQ", "110"),
                ("func_mean_fd", "0.2"),
                ("qc_rater_1", "maybe"),
                ("qc_func_rater_2", "OK"),
                ("qc_func_rater_3", "OK"),
                ("SUB_IN_SMP", "1"),
            ],
        ),
    ]
    .join("\n")
        + "\n";
    d.add(z, "ABIDE_pcp/Phenotypic_V1_0b_preprocessed1.csv", csv);
    for (i, fid) in ["Pitt_0050003", "Pitt_0050030", "MaxMun_c_0051334"].iter().enumerate() {
        d.add(
            z,
            &format!("ABIDE_pcp/cpac/nofilt_noglobal/{fid}_func_preproc.nii.gz"),
            nii(&[8, 8, 6, 5], &[3.0, 3.0, 3.0, 2.0], 700 + i as u64, true),
        );
        d.add(z, &format!("ABIDE_pcp/cpac/nofilt_noglobal/{fid}_rois_cc200.1D"), format!("#1\t#2\n{}\t{}\n", i, i + 1));
    }
    d
}

fn abide_expected(d: &Download, form: Form) -> Exp {
    let subs = [
        (
            "0050003",
            json!({"DX_GROUP": 1, "diagnosis": "autism", "DSM_IV_TR": 1}),
            json!({"SITE_ID": "PITT", "FILE_ID": "Pitt_0050003", "AGE_AT_SCAN": 24.45, "SEX": 1, "HANDEDNESS_CATEGORY": "R", "FIQ": 124, "func_mean_fd": 0.0803, "qc_rater_1": "OK", "qc_func_rater_2": "OK", "qc_func_rater_3": "fail", "SUB_IN_SMP": 1}),
        ),
        (
            "0050030",
            json!({"DX_GROUP": 2, "diagnosis": "control", "DSM_IV_TR": 0}),
            json!({"SITE_ID": "PITT", "FILE_ID": "Pitt_0050030", "AGE_AT_SCAN": 25.12, "SEX": 1, "HANDEDNESS_CATEGORY": null, "FIQ": null, "func_mean_fd": 0.12, "qc_rater_1": "OK", "qc_func_rater_2": null, "qc_func_rater_3": "OK", "SUB_IN_SMP": 0}),
        ),
        (
            "0051334",
            json!({"DX_GROUP": 1, "diagnosis": "autism", "DSM_IV_TR": null}),
            json!({"SITE_ID": "MAX_MUN", "FILE_ID": "MaxMun_c_0051334", "AGE_AT_SCAN": 12.5, "SEX": 2, "HANDEDNESS_CATEGORY": "R", "FIQ": 110, "func_mean_fd": 0.2, "qc_rater_1": "maybe", "qc_func_rater_2": "OK", "qc_func_rater_3": "OK", "SUB_IN_SMP": 1}),
        ),
    ];
    let studies = subs
        .iter()
        .map(|(sub, labels, meta)| {
            let files = d
                .items
                .iter()
                .filter(|it| it.path.contains(&format!("_{sub}_")))
                .map(|it| {
                    let rel = it.path.strip_prefix("ABIDE_pcp/").unwrap();
                    file(rel, &it.data, loc(form, it.container.as_deref(), &it.path))
                })
                .collect();
            S {
                patient: sub.to_string(),
                study: "session_1".into(),
                files,
                labels: labels.clone(),
                meta: meta.clone(),
                split: None,
            }
        })
        .collect();
    let archives = vec![if form == Form::Archives { "ABIDE_pcp.zip".into() } else { "ABIDE_pcp".into() }];
    Exp { slug: "abide", label_columns: &["DX_GROUP", "diagnosis", "DSM_IV_TR"], studies, archives }
}

#[test]
fn abide_pcp_zip_and_nilearn_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let d = abide_download();
    let srcs = d.write_archives(&tmp.path().join("dl"));
    {
        let m = mount_at(tmp.path(), "mnt1", &srcs);
        check(&m, &abide_expected(&d, Form::Archives));
    }
    // The zip found in a folder.
    {
        let m = mount_at(tmp.path(), "mnt2", &[tmp.path().join("dl")]);
        check(&m, &abide_expected(&d, Form::Archives));
    }
}

/// nilearn's own tree (no archive): `~/nilearn_data/ABIDE_pcp/...` with loose `.nii.gz` files.
/// nilearn's own loose tree: the pool keeps a loose `*.nii.gz` as a file (not a gzip archive to
/// open), so the study gets the file under its own name with its own bytes.
#[test]
fn abide_nilearn_tree_with_loose_nii_gz() {
    let tmp = tempfile::tempdir().unwrap();
    let d = abide_download();
    d.write_extracted(&tmp.path().join("nilearn_data"));
    let m = mount_at(tmp.path(), "mnt", &[tmp.path().join("nilearn_data")]);
    check(&m, &abide_expected(&d, Form::Extracted));
}

// ---- VISCERAL (visceral.md)

fn visceral_download() -> Download {
    let mut d = Download::default();
    let z = Some("Anatomy3-trainingset.zip");
    let p = "Anatomy3-trainingset";
    d.add(
        z,
        &format!("{p}/volumes/CTce_ThAb/10000100_1_CTce_ThAb.nii.gz"),
        nii(&[12, 10, 8], &[0.8, 0.8, 1.5], 800, true),
    );
    for (i, (r, a)) in [("58", "1"), ("1247", "1"), ("170", "2")].iter().enumerate() {
        d.add(
            z,
            &format!("{p}/segmentations/CTce_ThAb/10000100_1_CTce_ThAb_{r}_{a}.nii.gz"),
            nii(&[12, 10, 8], &[0.8, 0.8, 1.5], 810 + i as u64, true),
        );
    }
    d.add(
        z,
        &format!("{p}/segmentations/CTce_ThAb/10000100_1_CTce_ThAb_58_6.nii"),
        nii(&[12, 10, 8], &[0.8, 0.8, 1.5], 819, false),
    );
    d.add(z, &format!("{p}/landmarks/10000100_1_CTce_ThAb_landmarks_1.fcsv"), "# Markups fiducial file version = 4.4\n# CoordinateSystem = 0\n# columns = id,x,y,z,ow,ox,oy,oz,vis,sel,lock,label,desc,associatedNodeID\nvtkMRMLMarkupsFiducialNode_0,66.189,-68.661,-204.430,0,0,0,1,1,1,0,Aortic arch,,\n");
    d.add(z, &format!("{p}/volumes/CT_wb/10000100_2_CT_wb.nii.gz"), nii(&[12, 10, 20], &[1.0, 1.0, 1.0], 820, true));
    d.add(z, &format!("{p}/volumes/MRT1_Ab/10001_2_MRT1_Ab.nii.gz"), nii(&[12, 10, 8], &[1.2, 1.2, 3.0], 830, true));
    d.add(
        z,
        &format!("{p}/segmentations/MRT1_Ab/10001_2_MRT1_Ab_86_3.nii.gz"),
        nii(&[12, 10, 8], &[1.2, 1.2, 3.0], 831, true),
    );
    d.add(z, &format!("{p}/README.txt"), "VISCERAL Anatomy3 training set\n");
    d
}

#[test]
fn visceral_zip_by_file_names() {
    let tmp = tempfile::tempdir().unwrap();
    let d = visceral_download();
    let srcs = d.write_archives(&tmp.path().join("dl"));
    let m = mount_at(tmp.path(), "mnt", &srcs);
    let of = |vol: &str| -> Vec<F> {
        d.items
            .iter()
            .filter(|it| {
                it.path.rsplit('/').next().unwrap().starts_with(&format!("{vol}."))
                    || it.path.rsplit('/').next().unwrap().starts_with(&format!("{vol}_"))
            })
            .map(|it| {
                file(
                    it.path.rsplit('/').next().unwrap(),
                    &it.data,
                    loc(Form::Archives, it.container.as_deref(), &it.path),
                )
            })
            .collect()
    };
    let studies = vec![
        S {
            patient: "10000100".into(),
            study: "10000100_1_CTce_ThAb".into(),
            files: of("10000100_1_CTce_ThAb"),
            labels: json!({"segmentations": [
                {"radlex_id": 58, "name": "liver", "annotator": 1, "file": "10000100_1_CTce_ThAb_58_1.nii.gz"},
                {"radlex_id": 58, "name": "liver", "annotator": 6, "file": "10000100_1_CTce_ThAb_58_6.nii"},
                {"radlex_id": 170, "name": "pancreas", "annotator": 2, "file": "10000100_1_CTce_ThAb_170_2.nii.gz"},
                {"radlex_id": 1247, "name": "trachea", "annotator": 1, "file": "10000100_1_CTce_ThAb_1247_1.nii.gz"}],
                "landmark_files": ["10000100_1_CTce_ThAb_landmarks_1.fcsv"], "lesion_files": []}),
            meta: json!({"VolumeID": 1, "Modality": "CTce", "Bodyregion": "ThAb", "shape": [12, 10, 8], "voxel_size": [0.8, 0.8, 1.5]}),
            split: Some("train"),
        },
        S {
            patient: "10000100".into(),
            study: "10000100_2_CT_wb".into(),
            files: of("10000100_2_CT_wb"),
            labels: json!({"segmentations": [], "landmark_files": [], "lesion_files": []}),
            meta: json!({"VolumeID": 2, "Modality": "CT", "Bodyregion": "wb", "shape": [12, 10, 20], "voxel_size": [1.0, 1.0, 1.0]}),
            split: Some("train"),
        },
        S {
            patient: "10001".into(),
            study: "10001_2_MRT1_Ab".into(),
            files: of("10001_2_MRT1_Ab"),
            labels: json!({"segmentations": [{"radlex_id": 86, "name": "spleen", "annotator": 3, "file": "10001_2_MRT1_Ab_86_3.nii.gz"}], "landmark_files": [], "lesion_files": []}),
            meta: json!({"VolumeID": 2, "Modality": "MRT1", "Bodyregion": "Ab", "shape": [12, 10, 8], "voxel_size": [1.2, 1.2, 3.0]}),
            split: Some("train"),
        },
    ];
    check(
        &m,
        &Exp {
            slug: "visceral",
            label_columns: &["segmentations", "landmark_files", "lesion_files"],
            studies,
            archives: vec!["Anatomy3-trainingset.zip".into()],
        },
    );
    check_raw(
        &m,
        &[("_archives/Anatomy3-trainingset.zip/Anatomy3-trainingset/README.txt", b"VISCERAL Anatomy3 training set\n")],
    );
}

// ---- LIDC-IDRI (lidc-idri.md): real DICOM (Implicit VR Little Endian, preamble and meta group)

/// The tags a look-alike LIDC slice carries.
struct Slice<'a> {
    patient: &'a str,
    study: &'a str,
    series: &'a str,
    series_number: i64,
    instance: i64,
    modality: &'a str,
    description: Option<&'a str>,
}

/// A small but valid DICOM file: Part 10 preamble, Explicit VR meta group, then an Implicit VR
/// Little Endian data set ending with 8×8 16-bit pixels.
fn dicom_file(s: &Slice) -> Vec<u8> {
    dicom_file_by(s, "GE MEDICAL SYSTEMS")
}

/// [`dicom_file`] with another Manufacturer.
fn dicom_file_by(s: &Slice, manufacturer: &str) -> Vec<u8> {
    use medfs::fixtures::Dv::{Raw, Text, Uid, Us};
    let sop = format!("{}.{}", s.series, s.instance);
    let (number, instance) = (s.series_number.to_string(), s.instance.to_string());
    let position = format!("-166\\-171.7\\{}", -10 - 2 * s.instance);
    let pixels = bytes(128, s.instance as u64, false);
    let mut el = vec![
        (8, 0x16, Uid("1.2.840.10008.5.1.4.1.1.2")),
        (8, 0x18, Uid(&sop)),
        (8, 0x20, Text("20000101")),
        (8, 0x60, Text(s.modality)),
        (8, 0x70, Text(manufacturer)),
    ];
    el.extend(s.description.map(|d| (8, 0x103E, Text(d))));
    el.extend([
        (0x10, 0x20, Text(s.patient)),
        (0x20, 0x0D, Uid(s.study)),
        (0x20, 0x0E, Uid(s.series)),
        (0x20, 0x11, Text(&number)),
        (0x20, 0x13, Text(&instance)),
        (0x20, 0x32, Text(&position)),
        (0x28, 0x10, Us(8)),
        (0x28, 0x11, Us(8)),
        (0x7FE0, 0x10, Raw(&pixels)),
    ]);
    medfs::fixtures::dicom(&el)
}

const LIDC_ROOT: &str = "1.3.6.1.4.1.14519.5.2.1.6279.6001";
/// (patient, study suffix, series suffix, SeriesNumber, modality, images)
const LIDC_SERIES: [(&str, &str, &str, i64, &str, usize); 4] = [
    ("LIDC-IDRI-0001", "298806137288633453246975630178", "179049373636438705059720603192", 3000566, "CT", 12),
    ("LIDC-IDRI-0001", "298806137288633453246975630178", "141365756818074696859567662357", 3000923, "CT", 9),
    ("LIDC-IDRI-0001", "175012972118199124641098335511", "141365756818074696859567630033", 1, "CR", 1),
    ("LIDC-IDRI-0002", "490157381160200744295382098329", "619372068417051974713149104919", 3000522, "CT", 3),
];

const LIDC_XML: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<LidcReadMessage uid="1.3.6.1.4.1.14519.5.2.1.6279.6001.1308168927827.0" xmlns="http://www.nih.gov">
<ResponseHeader><Version>1.8.1</Version><SeriesInstanceUid>1.3.6.1.4.1.14519.5.2.1.6279.6001.179049373636438705059720603192</SeriesInstanceUid><StudyInstanceUID>1.3.6.1.4.1.14519.5.2.1.6279.6001.298806137288633453246975630178</StudyInstanceUID></ResponseHeader>
<readingSession><annotationVersion>3.12</annotationVersion><servicingRadiologistID>anonymous</servicingRadiologistID>
<unblindedReadNodule><noduleID>Nodule 001</noduleID><characteristics><subtlety>5</subtlety><malignancy>4</malignancy></characteristics>
<roi><imageZposition>-20.0</imageZposition><imageSOP_UID>x.5</imageSOP_UID><inclusion>TRUE</inclusion><edgeMap><xCoord>3</xCoord><yCoord>4</yCoord></edgeMap></roi>
<roi><imageZposition>-22.0</imageZposition><imageSOP_UID>x.6</imageSOP_UID><inclusion>TRUE</inclusion><edgeMap><xCoord>3</xCoord><yCoord>4</yCoord></edgeMap></roi></unblindedReadNodule>
<nonNodule><nonNoduleID>Non-nodule 001</nonNoduleID><imageZposition>-30.0</imageZposition><imageSOP_UID>x.10</imageSOP_UID><locus><xCoord>5</xCoord><yCoord>6</yCoord></locus></nonNodule>
</readingSession>
<readingSession><annotationVersion>3.12</annotationVersion><servicingRadiologistID>anonymous</servicingRadiologistID>
<unblindedReadNodule><noduleID>IL057_127364</noduleID><roi><imageZposition>-40.0</imageZposition><imageSOP_UID>x.11</imageSOP_UID><inclusion>TRUE</inclusion><edgeMap><xCoord>7</xCoord><yCoord>8</yCoord></edgeMap></roi></unblindedReadNodule>
</readingSession>
</LidcReadMessage>
"#;

const LIDC_CR_XML: &str = "<?xml version=\"1.0\"?>\n<IdriReadMessage xmlns=\"http://www.nih.gov/idri\"><ResponseHeader><SeriesInstanceUid>1.3.6.1.4.1.14519.5.2.1.6279.6001.141365756818074696859567630033</SeriesInstanceUid></ResponseHeader></IdriReadMessage>\n";

/// The series folder of series `i` in a layout (`nbia`, `nbia3`, `classic`), and its file names.
fn lidc_dir(layout: &str, i: usize) -> String {
    let (pid, st, se, num, modality, _) = LIDC_SERIES[i];
    let (st5, se5) = (&st[st.len() - 5..], &se[se.len() - 5..]);
    match layout {
        "nbia" => format!(
            "manifest-1600709154662/LIDC-IDRI/{pid}/01-01-2000-NA-NA-{st5}/{num}.000000-{}-{se5}",
            if modality == "CR" { "Chest PA" } else { "NA" }
        ),
        "nbia3" => format!("LIDC-IDRI/{pid}/01-01-2000-{st5}/{num}-{se5}"),
        _ => format!("LIDC-IDRI/{pid}/{LIDC_ROOT}.{st}/{LIDC_ROOT}.{se}"),
    }
}

fn lidc_name(layout: &str, k: usize, n: usize) -> String {
    if layout == "nbia" {
        let w = if n >= 100 {
            3
        } else if n >= 10 {
            2
        } else {
            1
        };
        format!("1-{:0w$}.dcm", k + 1)
    } else {
        format!("{:06}.dcm", k + 1)
    }
}

fn lidc_download(layout: &str, container: Option<&str>) -> Download {
    let mut d = Download::default();
    for (i, (pid, st, se, num, modality, n)) in LIDC_SERIES.iter().enumerate() {
        let dir = lidc_dir(layout, i);
        let (study, series) = (format!("{LIDC_ROOT}.{st}"), format!("{LIDC_ROOT}.{se}"));
        for k in 0..*n {
            let s = Slice {
                patient: pid,
                study: &study,
                series: &series,
                series_number: *num,
                instance: k as i64 + 1,
                modality,
                description: (*modality == "CR").then_some("Chest PA"),
            };
            d.add(container, &format!("{dir}/{}", lidc_name(layout, k, *n)), dicom_file(&s));
        }
        if i == 0 {
            d.add(container, &format!("{dir}/069.xml"), LIDC_XML);
        }
        if i == 2 {
            d.add(container, &format!("{dir}/158.xml"), LIDC_CR_XML);
        }
    }
    if layout == "nbia" {
        d.add(container, "manifest-1600709154662/metadata.csv", "Series UID,Collection,3rd Party Analysis,Data Description URI,Subject ID,Study UID,Study Description,Study Date,Series Description,Manufacturer,Modality,SOP Class Name,SOP Class UID,Number of Images,File Size,File Location,Download Timestamp\n");
    }
    d
}

fn lidc_expected(d: &Download, layout: &str, form: Form) -> Exp {
    let mut studies: Vec<S> = Vec::new();
    let studies_of: [(&str, &str, &[usize]); 3] = [
        ("LIDC-IDRI-0001", LIDC_SERIES[0].1, &[1, 0]),
        ("LIDC-IDRI-0001", LIDC_SERIES[2].1, &[2]),
        ("LIDC-IDRI-0002", LIDC_SERIES[3].1, &[3]),
    ];
    for (pid, st, series) in studies_of {
        let mut files = Vec::new();
        let mut list = Vec::new();
        for &i in series {
            let (_, _, se, num, modality, n) = LIDC_SERIES[i];
            let dir = lidc_dir(layout, i);
            let uid = format!("{LIDC_ROOT}.{se}");
            for it in d.items.iter().filter(|it| it.path.rsplit_once('/').unwrap().0 == dir) {
                let base = it.path.rsplit('/').next().unwrap();
                files.push(file(&format!("{uid}/{base}"), &it.data, loc(form, it.container.as_deref(), &it.path)));
            }
            list.push(json!({"SeriesInstanceUID": uid, "SeriesNumber": num, "SeriesDescription": if modality == "CR" { json!("Chest PA") } else { json!(null) },
                "Modality": modality, "Manufacturer": "GE MEDICAL SYSTEMS", "number_of_images": n, "source_folder": dir}));
        }
        let se0 = format!("{LIDC_ROOT}.{}", LIDC_SERIES[0].2);
        let labels = match series[0] {
            1 => json!({"annotation_files": [format!("{se0}/069.xml")], "reading_sessions": 2,
                "nodules": [{"series": se0, "reader": 1, "nodule_id": "Nodule 001", "malignancy": 4, "rois": 2},
                            {"series": se0, "reader": 2, "nodule_id": "IL057_127364", "malignancy": null, "rois": 1}],
                "non_nodules": [{"series": se0, "reader": 1, "non_nodule_id": "Non-nodule 001"}]}),
            2 => {
                json!({"annotation_files": [format!("{LIDC_ROOT}.{}/158.xml", LIDC_SERIES[2].2)], "reading_sessions": 0, "nodules": [], "non_nodules": []})
            }
            _ => json!({"annotation_files": [], "reading_sessions": 0, "nodules": [], "non_nodules": []}),
        };
        studies.push(S {
            patient: pid.into(),
            study: format!("{LIDC_ROOT}.{st}"),
            files,
            labels,
            meta: json!({"collection": "LIDC-IDRI", "StudyInstanceUID": format!("{LIDC_ROOT}.{st}"), "StudyDate": "20000101", "StudyDescription": null,
                "series": list, "source_layout": layout}),
            split: None,
        });
    }
    let archives = archives_of(&studies);
    Exp {
        slug: "lidc-idri",
        label_columns: &["annotation_files", "reading_sessions", "nodules", "non_nodules"],
        studies,
        archives,
    }
}

#[test]
fn lidc_idri_three_layouts_by_dicom_tags() {
    let tmp = tempfile::tempdir().unwrap();
    // NBIA 4.x tree zipped (manifest-<13 digits>.zip), with metadata.csv.
    let d = lidc_download("nbia", Some("manifest-1600709154662.zip"));
    let srcs = d.write_archives(&tmp.path().join("nbia"));
    {
        let m = mount_at(tmp.path(), "mnt1", &srcs);
        check(&m, &lidc_expected(&d, "nbia", Form::Archives));
        check_raw(
            &m,
            &[(
                "_archives/manifest-1600709154662.zip/manifest-1600709154662/metadata.csv",
                &d.items.last().unwrap().data,
            )],
        );
    }
    // NBIA 3.x tree zipped as LIDC-IDRI.zip.
    let d = lidc_download("nbia3", Some("LIDC-IDRI.zip"));
    let srcs = d.write_archives(&tmp.path().join("nbia3"));
    {
        let m = mount_at(tmp.path(), "mnt2", &srcs);
        check(&m, &lidc_expected(&d, "nbia3", Form::Archives));
    }
    // The classic (pylidc-era) tree, as a plain folder.
    let d = lidc_download("classic", None);
    d.write_extracted(&tmp.path().join("classic"));
    {
        let m = mount_at(tmp.path(), "mnt3", &[tmp.path().join("classic")]);
        check(&m, &lidc_expected(&d, "classic", Form::Extracted));
    }
}

// ---- CBIS-DDSM (cbis-ddsm.md): NBIA tree of real DICOM next to the four case CSVs

const CBIS_U: &str = "1.3.6.1.4.1.9590.100.1.2";
/// (Subject ID, study folder, study uid suffix, series folder, files)
const CBIS_TREE: [(&str, &str, &str, &str, &[&str]); 6] = [
    (
        "Mass-Training_P_00001_LEFT_CC",
        "07-20-2016-DDSM-74994",
        "1174994",
        "1.000000-full mammogram images-24515",
        &["1-1.dcm"],
    ),
    (
        "Mass-Training_P_00001_LEFT_CC_1",
        "07-21-2016-DDSM-NA-18015",
        "1218015",
        "1.000000-ROI mask images-47061",
        &["1-1.dcm", "1-2.dcm"],
    ),
    (
        "Calc-Test_P_00001_LEFT_CC",
        "08-29-2017-DDSM-NA-11111",
        "2211111",
        "1.000000-full mammogram images-22222",
        &["1-1.dcm"],
    ),
    (
        "Calc-Test_P_00001_LEFT_CC_1",
        "08-29-2017-DDSM-NA-33333",
        "2233333",
        "1.000000-cropped images-44444",
        &["1-1.dcm"],
    ),
    (
        "Calc-Test_P_00001_LEFT_CC_1",
        "08-29-2017-DDSM-NA-33333",
        "2233333",
        "1.000000-ROI mask images-55555",
        &["1-1.dcm"],
    ),
    (
        "Mass-Training_P_00005_RIGHT_MLO",
        "07-20-2016-DDSM-77777",
        "3377777",
        "1.000000-full mammogram images-88888",
        &["1-1.dcm"],
    ),
];

fn cbis_series_uid(study: &str, series_dir: &str) -> String {
    format!("{CBIS_U}.{}{}", &study[..2], &series_dir[series_dir.len() - 5..])
}

fn cbis_download() -> Download {
    let mut d = Download::default();
    let m = "manifest-ZkhPvrLo5216730872708713142";
    for (subject, study_dir, st, series_dir, files) in CBIS_TREE {
        let desc = series_dir.split('-').nth(1).unwrap();
        for (k, f) in files.iter().enumerate() {
            let s = Slice {
                patient: subject,
                study: &format!("{CBIS_U}.{st}"),
                series: &cbis_series_uid(st, series_dir),
                series_number: 1,
                instance: k as i64 + 1,
                modality: "MG",
                description: Some(desc),
            };
            d.add(None, &format!("{m}/CBIS-DDSM/{subject}/{study_dir}/{series_dir}/{f}"), dicom_file(&s));
        }
    }
    d.add(None, &format!("{m}/metadata.csv"), "Series UID,Collection,3rd Party Analysis,Data Description URI,Subject ID,Study UID,Study Description,Study Date,Series Description,Manufacturer,Modality,SOP Class Name,SOP Class UID,Number of Images,File Size,File Location,Download Timestamp\n");
    let mass_h = "patient_id,breast_density,left or right breast,image view,abnormality id,abnormality type,mass shape,mass margins,assessment,pathology,subtlety,image file path,cropped image file path,ROI mask file path\n";
    let calc_h = "patient_id,breast density,left or right breast,image view,abnormality id,abnormality type,calc type,calc distribution,assessment,pathology,subtlety,image file path,cropped image file path,ROI mask file path\n";
    d.add(None, "mass_case_description_train_set.csv", format!("{mass_h}P_00001,3,LEFT,CC,1,mass,IRREGULAR-ARCHITECTURAL_DISTORTION,SPICULATED,4,MALIGNANT,4,Mass-Training_P_00001_LEFT_CC/{u}.1174994/{u}.1124515/000000.dcm,\"Mass-Training_P_00001_LEFT_CC_1/{u}.1218015/{u}.1247061/000000.dcm\n\",\"Mass-Training_P_00001_LEFT_CC_1/{u}.1218015/{u}.1247061/000001.dcm\n\"\nP_00005,3,RIGHT,MLO,1,mass,ROUND,CIRCUMSCRIBED,3,BENIGN,3,Mass-Training_P_00005_RIGHT_MLO/{u}.3377777/{u}.3388888/000000.dcm,\"Mass-Training_P_00005_RIGHT_MLO_1/x/y/000000.dcm\n\",\"Mass-Training_P_00005_RIGHT_MLO_1/x/y/000001.dcm\n\"\nP_00005,3,RIGHT,MLO,2,mass,OVAL,OBSCURED,4,MALIGNANT,2,Mass-Training_P_00005_RIGHT_MLO/{u}.3377777/{u}.3388888/000000.dcm,\"Mass-Training_P_00005_RIGHT_MLO_2/x/y/000000.dcm\n\",\"Mass-Training_P_00005_RIGHT_MLO_2/x/y/000001.dcm\n\"\n", u = CBIS_U));
    d.add(None, "mass_case_description_test_set.csv", mass_h.to_string());
    d.add(None, "calc_case_description_train_set.csv", calc_h.to_string());
    d.add(None, "calc_case_description_test_set.csv", format!("{calc_h}P_00001,2,LEFT,CC,1,calcification,,CLUSTERED,3,BENIGN_WITHOUT_CALLBACK,2,Calc-Test_P_00001_LEFT_CC/{u}.2211111/{u}.2222222/000000.dcm,Calc-Test_P_00001_LEFT_CC_1/{u}.2233333/{u}.2244444/000000.dcm,Calc-Test_P_00001_LEFT_CC_1/{u}.2233333/{u}.2255555/000000.dcm\n", u = CBIS_U));
    d
}

#[test]
fn cbis_ddsm_nbia_tree_and_case_csvs() {
    let tmp = tempfile::tempdir().unwrap();
    let d = cbis_download();
    d.write_extracted(&tmp.path().join("cbis"));
    let m = mount_at(tmp.path(), "mnt", &[tmp.path().join("cbis")]);
    let files_of = |study: &str| -> Vec<F> {
        d.items
            .iter()
            .filter(|it| it.path.contains(&format!("/{study}/")) || it.path.contains(&format!("/{study}_")))
            .map(|it| {
                let parts: Vec<&str> = it.path.split('/').collect();
                let desc = parts[4].split('-').nth(1).unwrap().replace(' ', "_");
                file(&format!("{}__{desc}__{}", parts[2], parts[5]), &it.data, loc(Form::Extracted, None, &it.path))
            })
            .collect()
    };
    let ser = |file: &str, st: &str, dir: &str, role: &str| json!({"file": file, "series_uid": cbis_series_uid(st, dir), "series_description": dir.split('-').nth(1).unwrap(), "csv_role": role});
    let mass = |id: i64, shape: &str, margins: &str, a: i64, p: &str, s: i64| json!({"abnormality_id": id, "abnormality_type": "mass", "mass_shape": shape, "mass_margins": margins, "calc_type": null, "calc_distribution": null, "assessment": a, "pathology": p, "subtlety": s});
    let studies = vec![
        S {
            patient: "P_00001".into(),
            study: "Calc-Test_P_00001_LEFT_CC".into(),
            files: files_of("Calc-Test_P_00001_LEFT_CC"),
            labels: json!({"pathology": "BENIGN_WITHOUT_CALLBACK", "abnormalities": [{"abnormality_id": 1, "abnormality_type": "calcification", "mass_shape": null, "mass_margins": null, "calc_type": null, "calc_distribution": "CLUSTERED", "assessment": 3, "pathology": "BENIGN_WITHOUT_CALLBACK", "subtlety": 2}]}),
            meta: json!({"breast_density": 2, "laterality": "LEFT", "view": "CC", "abnormality_type": "calcification", "subject_id": "Calc-Test_P_00001_LEFT_CC", "study_uid": format!("{CBIS_U}.2211111"), "source_split": "Test",
                "series": [ser("Calc-Test_P_00001_LEFT_CC_1__ROI_mask_images__1-1.dcm", "2233333", CBIS_TREE[4].3, "roi"),
                           ser("Calc-Test_P_00001_LEFT_CC_1__cropped_images__1-1.dcm", "2233333", CBIS_TREE[3].3, "cropped"),
                           ser("Calc-Test_P_00001_LEFT_CC__full_mammogram_images__1-1.dcm", "2211111", CBIS_TREE[2].3, "image")]}),
            split: Some("test"),
        },
        S {
            patient: "P_00001".into(),
            study: "Mass-Training_P_00001_LEFT_CC".into(),
            files: files_of("Mass-Training_P_00001_LEFT_CC"),
            labels: json!({"pathology": "MALIGNANT", "abnormalities": [mass(1, "IRREGULAR-ARCHITECTURAL_DISTORTION", "SPICULATED", 4, "MALIGNANT", 4)]}),
            meta: json!({"breast_density": 3, "laterality": "LEFT", "view": "CC", "abnormality_type": "mass", "subject_id": "Mass-Training_P_00001_LEFT_CC", "study_uid": format!("{CBIS_U}.1174994"), "source_split": "Training",
                "series": [ser("Mass-Training_P_00001_LEFT_CC_1__ROI_mask_images__1-1.dcm", "1218015", CBIS_TREE[1].3, "cropped"),
                           ser("Mass-Training_P_00001_LEFT_CC_1__ROI_mask_images__1-2.dcm", "1218015", CBIS_TREE[1].3, "roi"),
                           ser("Mass-Training_P_00001_LEFT_CC__full_mammogram_images__1-1.dcm", "1174994", CBIS_TREE[0].3, "image")]}),
            split: Some("train"),
        },
        S {
            patient: "P_00005".into(),
            study: "Mass-Training_P_00005_RIGHT_MLO".into(),
            files: files_of("Mass-Training_P_00005_RIGHT_MLO"),
            labels: json!({"pathology": "MALIGNANT", "abnormalities": [mass(1, "ROUND", "CIRCUMSCRIBED", 3, "BENIGN", 3), mass(2, "OVAL", "OBSCURED", 4, "MALIGNANT", 2)]}),
            meta: json!({"breast_density": 3, "laterality": "RIGHT", "view": "MLO", "abnormality_type": "mass", "subject_id": "Mass-Training_P_00005_RIGHT_MLO", "study_uid": format!("{CBIS_U}.3377777"), "source_split": "Training",
                "series": [ser("Mass-Training_P_00005_RIGHT_MLO__full_mammogram_images__1-1.dcm", "3377777", CBIS_TREE[5].3, "image")]}),
            split: Some("train"),
        },
    ];
    let archives = [
        "calc_case_description_test_set.csv",
        "calc_case_description_train_set.csv",
        "manifest-ZkhPvrLo5216730872708713142",
        "mass_case_description_test_set.csv",
        "mass_case_description_train_set.csv",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    check(&m, &Exp { slug: "cbis-ddsm", label_columns: &["pathology", "abnormalities"], studies, archives });
}

// ---- I2CVB (i2cvb.md)

#[test]
fn i2cvb_zip_patient_folders() {
    let tmp = tempfile::tempdir().unwrap();
    let mut d = Download::default();
    let z = Some("I2CVB.zip");
    // (patient, vendor, [(folder, images)], mrsi)
    /// Patient, study, (series, slices), whether it has masks.
    type Patient<'a> = (&'a str, &'a str, &'a [(&'a str, usize)], bool);
    let patients: [Patient; 2] = [
        (
            "383",
            "SIEMENS",
            &[
                ("T2W", 3),
                ("DCE", 2),
                ("ADC", 1),
                ("DWI", 1),
                ("GT/prostate", 1),
                ("GT/pz", 1),
                ("GT/cg", 1),
                ("GT/cap", 1),
            ],
            true,
        ),
        (
            "33540",
            "GE MEDICAL SYSTEMS",
            &[("T2W", 2), ("DWI", 1), ("GT/prostate", 1), ("GT/pz", 1), ("GT/cg", 1)],
            false,
        ),
    ];
    for (n, vendor, series, mrsi) in patients {
        let study = format!("1.2.826.0.1.3680043.2.{n}");
        for (si, (folder, count)) in series.iter().enumerate() {
            for k in 0..*count {
                let s = Slice {
                    patient: n,
                    study: &study,
                    series: &format!("{study}.{}", si + 1),
                    series_number: si as i64 + 1,
                    instance: k as i64 + 1,
                    modality: "MR",
                    description: Some(folder),
                };
                d.add(z, &format!("I2CVB/Patient {n}/{folder}/IM{:04}.dcm", k + 1), dicom_file_by(&s, vendor));
            }
        }
        if mrsi {
            d.add(
                z,
                &format!("I2CVB/Patient {n}/MRSI/spectra.rda"),
                b">>> Begin of header <<<\r\nPatientName: x\r\n>>> End of header <<<\r\n".to_vec(),
            );
        }
    }
    d.add(z, "I2CVB/README.md", "I2CVB prostate dataset\n");
    let srcs = d.write_archives(&tmp.path().join("dl"));
    let m = mount_at(tmp.path(), "mnt", &srcs);
    let mut studies = Vec::new();
    for (n, vendor, series, mrsi) in patients {
        let study = format!("1.2.826.0.1.3680043.2.{n}");
        let files: Vec<F> = d
            .items
            .iter()
            .filter(|it| it.path.starts_with(&format!("I2CVB/Patient {n}/")))
            .map(|it| file(&it.path[format!("I2CVB/Patient {n}/").len()..], &it.data, loc(Form::Archives, z, &it.path)))
            .collect();
        let mut list: Vec<(String, Value)> = series
            .iter()
            .enumerate()
            .map(|(si, (folder, count))| {
                (
                    folder.to_string(),
                    json!({"folder": folder, "SeriesInstanceUID": format!("{study}.{}", si + 1), "n": count}),
                )
            })
            .collect();
        list.sort_by(|a, b| a.0.cmp(&b.0));
        let mut mods: Vec<&str> = series.iter().map(|s| s.0).filter(|f| !f.starts_with("GT")).collect();
        if mrsi {
            mods.push("MRSI");
        }
        mods.sort();
        let cap = series.iter().any(|s| s.0 == "GT/cap");
        studies.push(S {
            patient: n.into(),
            study,
            files,
            labels: json!({"ground_truth": {"prostate": "GT/prostate", "pz": "GT/pz", "cg": "GT/cg", "cap": if cap { json!("GT/cap") } else { json!(null) }}, "has_cancer": cap}),
            meta: json!({"vendor": vendor, "field_strength": if vendor == "SIEMENS" { 3.0 } else { 1.5 }, "modalities": mods, "series": list.into_iter().map(|x| x.1).collect::<Vec<_>>()}),
            split: None,
        });
    }
    check(
        &m,
        &Exp {
            slug: "i2cvb",
            label_columns: &["ground_truth", "has_cancer"],
            studies,
            archives: vec!["I2CVB.zip".into()],
        },
    );
    check_raw(&m, &[("_archives/I2CVB.zip/I2CVB/README.md", b"I2CVB prostate dataset\n")]);
}

// ---- ADNI (adni.md)

#[test]
fn adni_collection_parts_csv_and_adnimerge() {
    let tmp = tempfile::tempdir().unwrap();
    let mut d = Download::default();
    let (z0, z1) = (Some("ADNI1_Annual 2 Yr 3T.zip"), Some("ADNI1_Annual 2 Yr 3T1.zip"));
    let raw = |iid: &str, sid: &str, k: i64| {
        let s = Slice {
            patient: "002_S_0295",
            study: "1.2.3.4.295",
            series: &format!("1.2.3.4.295.{sid}"),
            series_number: 1,
            instance: k,
            modality: "MR",
            description: Some("MPRAGE"),
        };
        let _ = iid;
        dicom_file(&s)
    };
    // (part, description folder, date folder, leaf, file, data)
    let mut items: Vec<(Option<&str>, String, Vec<u8>)> = Vec::new();
    for k in 1..=2 {
        items.push((z0, format!("ADNI/002_S_0295/MPRAGE/2012-05-10_15_44_50.0/S150055/ADNI_002_S_0295_MR_MPRAGE_br_raw_20120511095524148_{k}_S150055_I303066.dcm"), raw("303066", "150055", k)));
    }
    items.push((z0, "ADNI/002_S_0295/MPRAGE_Repeat/2012-05-10_15_50_10.0/S150056/ADNI_002_S_0295_MR_MPRAGE_Repeat_br_raw_20120511095524999_1_S150056_I303070.dcm".into(), raw("303070", "150056", 1)));
    items.push((z0, "ADNI/011_S_0442/MPRAGE/2007-05-27_09_00_00.0/S30001/ADNI_011_S_0442_MR_MPRAGE_br_raw_20070528000000000_1_S30001_I60001.dcm".into(), raw("60001", "30001", 1)));
    items.push((z1, "ADNI/002_S_0295/MPR__GradWarp__B1_Correction__N3__Scaled/2012-05-10_15_44_50.0/I45108/ADNI_002_S_0295_MR_MPR__GradWarp__B1_Correction__N3__Scaled_Br_20070319113623975_S150055_I45108.nii".into(), nii(&[8, 8, 6], &[1.2, 1.0, 1.0], 950, false)));
    items.push((z1, "ADNI/002_S_0295/MPRAGE/2013-05-20_10_00_00.0/I400001/ADNI_002_S_0295_MR_MPRAGE_br_raw_20130521000000000_1_S200001_I400001.nii".into(), nii(&[8, 8, 6], &[1.2, 1.0, 1.0], 951, false)));
    for (c, p, data) in &items {
        d.add(*c, p, data.clone());
    }
    d.add(None, "ADNI1_Annual_2_Yr_3T_11_20_2025.csv", "Image Data ID,Subject,Group,Sex,Age,Visit,Modality,Description,Type,Acq Date,Format,Downloaded\nI303066,002_S_0295,MCI,M,85,sc,MRI,MPRAGE,Original,5/10/2012,DCM,4/5/2021\nI303070,002_S_0295,MCI,M,85,sc,MRI,MPRAGE Repeat,Original,5/10/2012,DCM,4/5/2021\nI45108,002_S_0295,MCI,M,85,sc,MRI,MPR; GradWarp; B1 Correction; N3; Scaled,Processed,5/10/2012,NiFTI,4/5/2021\nI400001,002_S_0295,MCI,M,86,m12,MRI,MPRAGE,Original,5/20/2013,NiFTI,4/5/2021\nI60001,011_S_0442,AD,F,74,m06,MRI,MPRAGE,Original,5/27/2007,DCM,4/5/2021\n");
    d.add(None, "ADNIMERGE.csv", "RID,COLPROT,ORIGPROT,PTID,SITE,VISCODE,EXAMDATE,DX_bl,AGE,PTGENDER,DX\n295,ADNI1,ADNI1,002_S_0295,2,bl,2012-05-10,LMCI,85,Male,MCI\n295,ADNI1,ADNI1,002_S_0295,2,m12,2013-05-20,LMCI,85,Male,Dementia\n442,ADNI1,ADNI1,011_S_0442,11,bl,2006-11-27,AD,74,Female,Dementia\n442,ADNI1,ADNI1,011_S_0442,11,m06,2007-05-27,AD,74,Female,\n");
    let srcs = d.write_archives(&tmp.path().join("dl"));
    let m = mount_at(tmp.path(), "mnt", &srcs);
    let f_of = |needle: &[&str]| -> Vec<F> {
        items
            .iter()
            .filter(|(_, p, _)| needle.iter().any(|n| p.contains(n)))
            .map(|(c, p, data)| {
                let parts: Vec<&str> = p.split('/').collect();
                let iid = p.rsplit("_I").next().unwrap().split('.').next().unwrap();
                file(&format!("{}/I{iid}/{}", parts[2], parts[5]), data, loc(Form::Archives, *c, p))
            })
            .collect()
    };
    let img = |iid: &str, sid: &str, desc: &str, ty: &str, fmt: &str, acq: &str| json!({"image_id": iid, "series_id": sid, "description": desc, "type": ty, "format": fmt, "acq_datetime_folder": acq, "modality": "MRI"});
    let studies = vec![
        S {
            patient: "002_S_0295".into(),
            study: "m12".into(),
            files: f_of(&["I400001"]),
            labels: json!({"group": "MCI", "dx": "Dementia", "dx_bl": "LMCI"}),
            meta: json!({"PTID": "002_S_0295", "RID": 295, "visit": "m12", "acq_date": "2013-05-20", "sex": "M", "age": 86, "collection_csv": "ADNI1_Annual_2_Yr_3T_11_20_2025.csv",
                "images": [img("I400001", "S200001", "MPRAGE", "Original", "NiFTI", "2013-05-20_10_00_00.0")]}),
            split: None,
        },
        S {
            patient: "002_S_0295".into(),
            study: "sc".into(),
            files: f_of(&["I303066", "I303070", "I45108"]),
            labels: json!({"group": "MCI", "dx": "MCI", "dx_bl": "LMCI"}),
            meta: json!({"PTID": "002_S_0295", "RID": 295, "visit": "sc", "acq_date": "2012-05-10", "sex": "M", "age": 85, "collection_csv": "ADNI1_Annual_2_Yr_3T_11_20_2025.csv",
                "images": [img("I303066", "S150055", "MPRAGE", "Original", "DCM", "2012-05-10_15_44_50.0"), img("I303070", "S150056", "MPRAGE Repeat", "Original", "DCM", "2012-05-10_15_50_10.0"),
                           img("I45108", "S150055", "MPR; GradWarp; B1 Correction; N3; Scaled", "Processed", "NiFTI", "2012-05-10_15_44_50.0")]}),
            split: None,
        },
        S {
            patient: "011_S_0442".into(),
            study: "m06".into(),
            files: f_of(&["I60001"]),
            labels: json!({"group": "AD", "dx": null, "dx_bl": "AD"}),
            meta: json!({"PTID": "011_S_0442", "RID": 442, "visit": "m06", "acq_date": "2007-05-27", "sex": "F", "age": 74, "collection_csv": "ADNI1_Annual_2_Yr_3T_11_20_2025.csv",
                "images": [img("I60001", "S30001", "MPRAGE", "Original", "DCM", "2007-05-27_09_00_00.0")]}),
            split: None,
        },
    ];
    let archives = [
        "ADNI1_Annual 2 Yr 3T.zip",
        "ADNI1_Annual 2 Yr 3T1.zip",
        "ADNI1_Annual_2_Yr_3T_11_20_2025.csv",
        "ADNIMERGE.csv",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    check(&m, &Exp { slug: "adni", label_columns: &["group", "dx", "dx_bl"], studies, archives });
}

// ------------------------------------------------------------------------------------------------
// Intel & MobileODT cervical cancer screening (mounts/cervix.toml): the competition's 7z set with
// the AES-encrypted test_stg2.7z (mounted with no password: the profile publishes it), the Kaggle
// API bundle (pre-extracted folders, test_stg2.7z nested in the zip), the loaders' extracted tree.

const CX_BUNDLE: &str = "intel-mobileodt-cervical-cancer-screening.zip";
const CX_PASSWORD: &str = "byecervicalcancer";

/// (set, type folder or "", image number, bytes): the same name in two sets (80, 7, 12), an
/// empty and a truncated JPEG in the additional sets, corrected and removed images.
fn cx_images() -> Vec<(&'static str, &'static str, &'static str, Vec<u8>)> {
    let j = |seed: u64, w: u16| jpeg(w, w * 3 / 4, 6000 + seed, seed.is_multiple_of(4));
    let mut cut = j(9, 96);
    cut.truncate(cut.len() / 2);
    vec![
        ("train", "1", "80", j(1, 64)),
        ("train", "1", "1339", j(2, 64)),
        ("train", "2", "7", j(3, 80)),
        ("train", "2", "10", j(4, 64)),
        ("train", "3", "968", j(5, 64)),
        ("train", "3", "1120", j(6, 96)),
        ("test", "", "0", j(7, 64)),
        ("test", "", "1", j(8, 64)),
        ("test", "", "15", j(17, 64)),
        ("additional_Type_1_v2", "1", "80", j(10, 64)),
        ("additional_Type_1_v2", "1", "12", j(11, 64)),
        ("additional_Type_1_v2", "1", "5893", Vec::new()),
        ("additional_Type_1_v2", "1", "3068", cut.clone()),
        ("additional_Type_2_v2", "2", "7", cut),
        ("additional_Type_2_v2", "2", "12", j(12, 64)),
        ("additional_Type_2_v2", "2", "20", j(13, 64)),
        ("additional_Type_2_v2", "2", "2845", Vec::new()),
        ("additional_Type_3_v2", "3", "31", j(14, 64)),
        ("additional_Type_3_v2", "3", "32", j(15, 64)),
        ("test_stg2", "", "00528", j(16, 64)),
        ("test_stg2", "", "00529", j(18, 80)),
    ]
}

/// The five CSVs: corrections with and without a `Type_N\` folder and a numeric label, removed
/// files named three ways (and one naming a train image, which marks nothing), the one-hot
/// stage-1 solution, and two submissions that hold no labels.
const CX_CSVS: [(&str, &str); 5] = [
    (
        "fixed_labels_v2.csv",
        "filename,old_label,new_label\r\n80.jpg,Type_1,Type_3\r\n968.jpg,Type_3,Type_1\r\nType_3\\1120.jpg,Type_3,1\r\n",
    ),
    ("removed_files.csv", "filename\nType_1/12.jpg\n20.jpg\nadditional\\Type_3\\32.jpg\ntrain/Type_2/10.jpg\n"),
    ("solution_stg1_release.csv", "image_name,Type_1,Type_2,Type_3\n0.jpg,0,1,0\n1.jpg,0,0,1\n15.jpg,1,0,0\n"),
    ("sample_submission.csv", "image_name,Type_1,Type_2,Type_3\n0.jpg,0.168805,0.527346,0.303849\n"),
    ("sample_submission_stg2.csv", "image_name,Type_1,Type_2,Type_3\n00528.jpg,0.3,0.3,0.4\n"),
];

/// Where an image sits in the competition's 7z set: (archive, member path).
fn cx_in_7z(set: &str, folder: &str, n: &str) -> (String, String) {
    match set {
        "train" => ("train.7z".into(), format!("train/Type_{folder}/{n}.jpg")),
        "test" | "test_stg2" => (format!("{set}.7z"), format!("{set}/{n}.jpg")),
        _ => (format!("{set}.7z"), format!("Type_{folder}/{n}.jpg")),
    }
}

/// The competition's files: train.7z, test.7z, the three additional 7z, test_stg2.7z encrypted
/// (`hidden_names`: its headers too), the CSVs loose.
fn cx_7z_set(hidden_names: bool) -> Download {
    let mut d = Download::default();
    for (set, folder, n, data) in cx_images() {
        let (archive, path) = cx_in_7z(set, folder, n);
        d.add(Some(&archive), &path, data);
    }
    for (name, text) in CX_CSVS {
        d.add(None, name, text);
    }
    let mut flags = vec![format!("-p{CX_PASSWORD}")];
    if hidden_names {
        flags.push("-mhe=on".into());
    }
    d.sevenz_flags.insert("test_stg2.7z".into(), flags);
    d
}

/// The Kaggle API bundle: the first five 7z pre-extracted into folders named after them, the
/// CSVs, and (unless `stage2` is false) test_stg2.7z as written by the competition, nested.
fn cx_bundle(tmp: &Path, stage2: bool) -> Download {
    let mut d = Download::default();
    let b = Some(CX_BUNDLE);
    for (set, folder, n, data) in cx_images() {
        match set {
            "train" => d.add(b, &format!("train/train/Type_{folder}/{n}.jpg"), data),
            "test" => d.add(b, &format!("test/test/{n}.jpg"), data),
            "test_stg2" => continue,
            _ => d.add(b, &format!("{set}/Type_{folder}/{n}.jpg"), data),
        };
    }
    if stage2 {
        let mut inner = Download::default();
        for (set, _, n, data) in cx_images().into_iter().filter(|i| i.0 == "test_stg2") {
            inner.add(Some("test_stg2.7z"), &format!("{set}/{n}.jpg"), data);
        }
        inner.sevenz_flags.insert("test_stg2.7z".into(), vec![format!("-p{CX_PASSWORD}")]);
        let written = inner.write_archives(&tmp.join("stage2"));
        d.add(b, "test_stg2.7z", std::fs::read(&written[0]).unwrap());
    }
    for (name, text) in CX_CSVS {
        d.add(b, name, text);
    }
    d
}

/// Where an image of (set, type folder, number) sits in a form: (archive, member path, loose).
type CxPlace<'a> = &'a dyn Fn(&str, &str, &str) -> (String, String, bool);

/// The expected dataset: `place` gives each image's (archive, member path, loose) in the form.
fn cx_expected(place: CxPlace, stage2: bool, archives: &[&str]) -> Exp {
    let studies = cx_images()
        .into_iter()
        .filter(|i| stage2 || i.0 != "test_stg2")
        .map(|(set, folder, n, data)| {
            let labels = match set {
                "test_stg2" => json!({}),
                "test" => {
                    let t = match n {
                        "0" => "Type_2",
                        "1" => "Type_3",
                        _ => "Type_1",
                    };
                    json!({"cervix_type": t, "folder_type": null, "removed": false})
                }
                _ => {
                    let cervix_type = match (set, n) {
                        ("train", "80") => "Type_3".to_string(),
                        ("train", "968" | "1120") => "Type_1".to_string(),
                        _ => format!("Type_{folder}"),
                    };
                    let removed = matches!(
                        (set, n),
                        ("additional_Type_1_v2", "12") | ("additional_Type_2_v2", "20") | ("additional_Type_3_v2", "32")
                    );
                    json!({"cervix_type": cervix_type, "folder_type": format!("Type_{folder}"), "removed": removed})
                }
            };
            let truncated = match (set, n) {
                ("additional_Type_1_v2", "3068") | ("additional_Type_2_v2", "7") => json!(true),
                _ if data.is_empty() => Value::Null,
                _ => json!(false),
            };
            let (archive, path, loose) = place(set, folder, n);
            S {
                patient: set.into(),
                study: n.into(),
                files: vec![file(&format!("{n}.jpg"), &data, (archive.clone(), path.clone(), loose))],
                labels,
                meta: json!({"source_archive": archive, "source_path": path, "bytes": data.len(), "truncated": truncated}),
                split: Some(if set.starts_with("test") { "test" } else { "train" }),
            }
        })
        .collect();
    Exp {
        slug: "cervix",
        label_columns: &["cervix_type", "folder_type", "removed"],
        studies,
        archives: archives.iter().map(|s| s.to_string()).collect(),
    }
}

const CX_7Z_SOURCES: [&str; 9] = [
    "additional_Type_1_v2.7z",
    "additional_Type_2_v2.7z",
    "additional_Type_3_v2.7z",
    "fixed_labels_v2.csv",
    "removed_files.csv",
    "solution_stg1_release.csv",
    "test.7z",
    "test_stg2.7z",
    "train.7z",
];

fn cx_7z_place(set: &str, folder: &str, n: &str) -> (String, String, bool) {
    let (a, p) = cx_in_7z(set, folder, n);
    (a, p, false)
}

#[test]
fn cervix_7z_set_mounts_with_the_published_password() {
    let tmp = tempfile::tempdir().unwrap();
    // (1) The competition folder, no password given: the profile's opens test_stg2.7z (its
    // headers encrypted too); an empty and a truncated JPEG are study files of their size.
    let d = cx_7z_set(true);
    let files = d.write_archives(&tmp.path().join("comp"));
    {
        let m = mount_at(tmp.path(), "mnt1", &[tmp.path().join("comp")]);
        check(&m, &cx_expected(&cx_7z_place, true, &CX_7Z_SOURCES));
        assert_eq!(std::fs::metadata(m.path("cervix/additional_Type_1_v2/5893/5893.jpg")).unwrap().len(), 0);
        check_raw(
            &m,
            &[
                ("_archives/sample_submission.csv", CX_CSVS[3].1.as_bytes()),
                ("_archives/test_stg2.7z/test_stg2/00529.jpg", &cx_images()[20].3),
            ],
        );
    }
    // (2) Every file named one by one, with a wrong password of the user's own tried first and
    // stage 2's names in the clear: the published password still opens it.
    let d = cx_7z_set(false);
    let files2 = d.write_archives(&tmp.path().join("named"));
    assert_eq!(files.len(), files2.len());
    {
        let srcs: Vec<&Path> = files2.iter().map(PathBuf::as_path).collect();
        let m = mount(&srcs, &tmp.path().join("mnt2"), &["--password", "not it"]);
        check(&m, &cx_expected(&cx_7z_place, true, &CX_7Z_SOURCES));
    }
    // (3) The same profile without `passwords` (--profiles replaces the built-in): test_stg2.7z
    // is refused with one line naming it, and everything else mounts.
    let profiles = tmp.path().join("profiles");
    std::fs::create_dir(&profiles).unwrap();
    let builtin = include_str!("../mounts/cervix.toml");
    assert!(builtin.contains("\npasswords = [\"byecervicalcancer\"]\n"));
    std::fs::write(profiles.join("cervix.toml"), builtin.replace("\npasswords = [\"byecervicalcancer\"]\n", "\n"))
        .unwrap();
    {
        let m =
            mount(&[&tmp.path().join("comp")], &tmp.path().join("mnt3"), &["--profiles", profiles.to_str().unwrap()]);
        let line = m.stderr.lines().find(|l| l.contains("test_stg2.7z")).unwrap_or_else(|| panic!("{}", m.stderr));
        assert!(line.contains("no password"), "{line}");
        let archives: Vec<&str> = CX_7Z_SOURCES.iter().copied().filter(|a| *a != "test_stg2.7z").collect();
        check(&m, &cx_expected(&cx_7z_place, false, &archives));
    }
}

#[test]
fn cervix_loaders_extracted_tree() {
    // train/Type_K/, test/, test_stg2/ and the three additional sets merged in additional/Type_K/.
    let tmp = tempfile::tempdir().unwrap();
    let ex = tmp.path().join("ex");
    let path_of = |set: &str, folder: &str, n: &str| match set {
        "train" => format!("train/Type_{folder}/{n}.jpg"),
        "test" | "test_stg2" => format!("{set}/{n}.jpg"),
        _ => format!("additional/Type_{folder}/{n}.jpg"),
    };
    let mut d = Download::default();
    for (set, folder, n, data) in cx_images() {
        d.add(None, &path_of(set, folder, n), data);
    }
    for (name, text) in CX_CSVS {
        d.add(None, name, text);
    }
    d.write_extracted(&ex);
    let m = mount_at(tmp.path(), "mnt", &[ex]);
    let place = |set: &str, folder: &str, n: &str| loc(Form::Extracted, None, &path_of(set, folder, n));
    let sources = [
        "additional",
        "fixed_labels_v2.csv",
        "removed_files.csv",
        "solution_stg1_release.csv",
        "test",
        "test_stg2",
        "train",
    ];
    check(&m, &cx_expected(&place, true, &sources));
}

fn cx_bundle_place(set: &str, folder: &str, n: &str) -> (String, String, bool) {
    let path = match set {
        "train" => format!("train/train/Type_{folder}/{n}.jpg"),
        "test" => format!("test/test/{n}.jpg"),
        "test_stg2" => return (format!("{CX_BUNDLE}/test_stg2.7z"), format!("test_stg2/{n}.jpg"), false),
        _ => format!("{set}/Type_{folder}/{n}.jpg"),
    };
    (CX_BUNDLE.into(), path, false)
}

#[test]
fn cervix_kaggle_bundle_without_stage2() {
    let tmp = tempfile::tempdir().unwrap();
    let d = cx_bundle(tmp.path(), false);
    let srcs = d.write_archives(&tmp.path().join("dl"));
    assert_eq!(srcs.len(), 1);
    let m = mount_at(tmp.path(), "mnt", &srcs);
    check(&m, &cx_expected(&cx_bundle_place, false, &[CX_BUNDLE]));
}

/// Needs nested archives (issue 10 item 3): test_stg2.7z inside the bundle zip joins the pool as
/// `<bundle>/test_stg2.7z`, opened with the password the profile publishes.
#[test]
fn cervix_kaggle_bundle_with_nested_encrypted_stage2() {
    let tmp = tempfile::tempdir().unwrap();
    let d = cx_bundle(tmp.path(), true);
    let srcs = d.write_archives(&tmp.path().join("dl"));
    let m = mount_at(tmp.path(), "mnt", &srcs);
    let nested = format!("{CX_BUNDLE}/test_stg2.7z");
    check(&m, &cx_expected(&cx_bundle_place, true, &[CX_BUNDLE, &nested]));
    check_raw(&m, &[(&format!("_archives/{CX_BUNDLE}/removed_files.csv"), CX_CSVS[1].1.as_bytes())]);
}

// ------------------------------------------------------------------------------------------------
// Bundles of nested archives (issue 10 item 3): Kaggle DR's diabetic-retinopathy-detection.zip
// holding the byte-split zips, DRIVE.zip holding training.zip and test.zip. A nested archive is
// named `<outer>/<member>` (split parts joined), its members relative to it.

/// Zips `files` (flat, by file name) into `dir/name`: a bundle as Kaggle's API or a mirror makes it.
fn bundle_of(dir: &Path, name: &str, files: &[PathBuf]) -> PathBuf {
    let entries: Vec<Entry> =
        files.iter().map(|p| entry(&p.file_name().unwrap().to_string_lossy(), std::fs::read(p).unwrap())).collect();
    let out = dir.join(name);
    make_zip(&out, &entries, ZipMethod::Deflated);
    out
}

/// The expectation for archives that now sit inside `outer`.
fn nested_in(mut e: Exp, outer: &str) -> Exp {
    for s in &mut e.studies {
        for f in &mut s.files {
            assert!(!f.loose, "test bug: a loose file in a bundle");
            f.archive = format!("{outer}/{}", f.archive);
        }
    }
    e.archives = e.archives.iter().map(|a| format!("{outer}/{a}")).collect();
    e
}

#[test]
fn kaggle_dr_api_bundle_of_split_zips() {
    let tmp = tempfile::tempdir().unwrap();
    let parts = kdr_write(&tmp.path().join("parts"), false);
    let b = bundle_of(tmp.path(), "diabetic-retinopathy-detection.zip", &parts);
    let m = mount_at(tmp.path(), "mnt", &[b]);
    check(&m, &nested_in(kdr_expected(false, Form::Archives), "diabetic-retinopathy-detection.zip"));
    check_raw(&m, &[("_archives/diabetic-retinopathy-detection.zip/sample.zip/sample/10_left.jpeg", &kdr_jpeg(0))]);
}

#[test]
fn drive_zip_holding_training_and_test_zips() {
    let tmp = tempfile::tempdir().unwrap();
    let d = drive_download(true, "", None);
    let zips = d.write_archives(&tmp.path().join("inner"));
    let b = bundle_of(tmp.path(), "DRIVE.zip", &zips);
    let m = mount_at(tmp.path(), "mnt", &[b]);
    let e = nested_in(drive_expected(&d, Form::Archives), "DRIVE.zip");
    assert_eq!(e.archives, ["DRIVE.zip/test.zip", "DRIVE.zip/training.zip"]);
    check(&m, &e);
}

// ---- Belarus TB, VIA/I-ELCAP, SCMR, MedPix (issue 13: collections without a profile before)

/// A slice of a look-alike collection (the LIDC writer's DICOM: Implicit VR, 8x8 pixels).
fn slice_dcm(patient: &str, study: &str, series: &str, instance: i64, modality: &str) -> Vec<u8> {
    dicom_file_by(&Slice { patient, study, series, series_number: 1, instance, modality, description: None }, "SIEMENS")
}

/// labels.csv columns of belarus-tb: the X-ray keys, then the CT keys (the md_* columns last).
const BELARUS_LABELS: [&str; 14] = [
    "tb_location",
    "projection",
    "mask",
    "severity",
    "md_Disability",
    "md_Relapse",
    "md_SymptomsOfTB",
    "md_Comorbidity",
    "md_Bacillary",
    "md_DrugResistance",
    "md_HigherEducation",
    "md_ExPrisoner",
    "md_Alcoholic",
    "md_Smoking",
];

/// Belarus TB: the TB Portals X-ray zip beside its table (named one by one), then the
/// ImageCLEF CT zips, masks zip and md_* CSV in one folder.
#[test]
fn belarus_tb_xray_dicom_with_table_and_imageclef_ct_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let mut d = Download::default();
    let z = Some("TB_Portal_CXR_Belarus.zip");
    let rows = [
        ("00001", "P1", "S10", "pulmonary", "PA"),
        ("00002", "P1", "S11", "pulmonary and extrapulmonary", "Lateral"),
        ("00003", "P2", "S20", "pulmonary", "AP"),
    ];
    let mut csv = String::from("image_index,study_id,patient_id,tb_location,projection\n");
    for (k, (img, pid, sid, loc, proj)) in rows.iter().enumerate() {
        d.add(
            z,
            &format!("Belarus/images/{img}.dcm"),
            slice_dcm(pid, &format!("1.2.9.{k}"), &format!("1.2.9.{k}.1"), 1, "CR"),
        );
        csv.push_str(&format!("{img}.dcm,{sid},{pid},{loc},{proj}\n"));
    }
    d.add(None, "tbportals_metadata.csv", csv);
    let srcs = d.write_archives(&tmp.path().join("xray"));
    let m = mount_at(tmp.path(), "mnt1", &srcs);
    let studies: Vec<S> = rows
        .iter()
        .map(|(img, pid, sid, loc, proj)| {
            let it = d.items.iter().find(|i| i.path.ends_with(&format!("{img}.dcm"))).unwrap();
            S {
                patient: pid.to_string(),
                study: sid.to_string(),
                files: vec![file(&format!("{img}.dcm"), &it.data, loc_of(it))],
                labels: json!({"tb_location": loc, "projection": proj}),
                meta: json!({"form": "x-ray", "image_index": format!("{img}.dcm"), "images": [format!("{img}.dcm")],
                    "modality": "CR", "rows": 8, "columns": 8, "sex": null, "age": null, "volume": null,
                    "shape": null, "voxel_size": null}),
                split: None,
            }
        })
        .collect();
    let label_columns = &BELARUS_LABELS[..];
    let mut archives = archives_of(&studies);
    archives.push("tbportals_metadata.csv".into());
    check(&m, &Exp { slug: "belarus-tb", label_columns, studies, archives });
    drop(m);

    // CT: volumes in two part zips, masks in their own zip (same names), metadata CSV.
    let mut d = Download::default();
    let vol = |seed| nii(&[10, 8, 6], &[0.7, 0.7, 2.5], seed, true);
    d.add(Some("TrainingSet_1_of_2.zip"), "TRN_000.nii.gz", vol(1));
    d.add(Some("TrainingSet_2_of_2.zip"), "TRN_001.nii.gz", vol(2));
    d.add(Some("TrainingSet_Masks.zip"), "TRN_000.nii.gz", vol(3));
    d.add(Some("TrainingSet_Masks.zip"), "TRN_001.nii.gz", vol(4));
    d.add(None, "TrainingSet_metaData.csv", "Filename,md_Disability,md_Relapse,md_SymptomsOfTB,md_Comorbidity,md_Bacillary,md_DrugResistance,md_HigherEducation,md_ExPrisoner,md_Alcoholic,md_Smoking,md_Severity\nTRN_000.nii.gz,0,1,1,0,1,0,0,0,1,1,HIGH\nTRN_001.nii.gz,1,0,0,0,0,1,1,0,0,0,LOW\n");
    let dir = tmp.path().join("ImageCLEF");
    d.write_archives(&dir);
    let m = mount_at(tmp.path(), "mnt2", &[dir]);
    let md = [
        ("TRN_000", ["0", "1", "1", "0", "1", "0", "0", "0", "1", "1"], "HIGH"),
        ("TRN_001", ["1", "0", "0", "0", "0", "1", "1", "0", "0", "0"], "LOW"),
    ];
    let keys = &BELARUS_LABELS[4..];
    let studies: Vec<S> = md
        .iter()
        .map(|(id, vals, sev)| {
            let name = format!("{id}.nii.gz");
            let ct = d.items.iter().find(|i| i.path == name && !i.container.as_deref().unwrap().contains("Masks")).unwrap();
            let mask = d.items.iter().find(|i| i.path == name && i.container.as_deref().unwrap().contains("Masks")).unwrap();
            let mut labels = json!({"mask": format!("mask/{name}"), "severity": sev});
            for (k, v) in keys.iter().zip(vals) {
                labels[*k] = json!(v);
            }
            S {
                patient: id.to_string(),
                study: id.to_string(),
                files: vec![file(&name, &ct.data, loc_of(ct)), file(&format!("mask/{name}"), &mask.data, loc_of(mask))],
                labels,
                meta: json!({"form": "ct", "image_index": null, "images": [], "modality": null, "rows": null,
                    "columns": null, "sex": null, "age": null, "volume": name, "shape": [10, 8, 6], "voxel_size": [0.7, 0.7, 2.5]}),
                split: None,
            }
        })
        .collect();
    let mut archives = archives_of(&studies);
    archives.push("TrainingSet_metaData.csv".into());
    check(&m, &Exp { slug: "belarus-tb", label_columns, studies, archives });
}

/// Where an item of an archives-form download comes from.
fn loc_of(it: &Item) -> (String, String, bool) {
    loc(Form::Archives, it.container.as_deref(), &it.path)
}

/// VIA/I-ELCAP: case folders of DICOM slices in one zip, a notes file beside the slices, the
/// nodule list at the top; SCMR: case folders under an SCMR folder, contours beside a series,
/// the case table; MedPix 2.0: the extracted export. Each mounted alone.
#[test]
fn i_elcap_scmr_and_medpix_look_alikes() {
    let tmp = tempfile::tempdir().unwrap();
    // I-ELCAP.
    let mut d = Download::default();
    let z = Some("ELCAP.zip");
    for case in [1, 2] {
        for k in 1..=3 {
            d.add(
                z,
                &format!("ELCAP/W{case:04}/{k:04}"),
                slice_dcm("anon", &format!("1.2.840.5.{case}"), &format!("1.2.840.5.{case}.1"), k, "CT"),
            );
        }
    }
    d.add(z, "ELCAP/W0001/nodules.txt", "slice 2: 100,120\n");
    d.add(z, "ELCAP/ELCAP_nodule_list.csv", "case,slice,x,y\nW0001,61,306,186\n");
    let srcs = d.write_archives(&tmp.path().join("elcap"));
    let m = mount_at(tmp.path(), "mnt1", &srcs);
    let studies: Vec<S> = [1, 2]
        .iter()
        .map(|case| {
            let (st, se) = (format!("1.2.840.5.{case}"), format!("1.2.840.5.{case}.1"));
            let mut files: Vec<F> = d
                .items
                .iter()
                .filter(|i| i.path.starts_with(&format!("ELCAP/W{case:04}/0")))
                .map(|i| file(&format!("{se}/{}", i.path.rsplit('/').next().unwrap()), &i.data, loc_of(i)))
                .collect();
            let mut notes = vec![];
            if *case == 1 {
                let n = d.items.iter().find(|i| i.path.ends_with("nodules.txt")).unwrap();
                files.push(file("notes/nodules.txt", &n.data, loc_of(n)));
                notes.push("notes/nodules.txt");
            }
            S {
                patient: format!("W{case:04}"),
                study: st.clone(),
                files,
                labels: json!({"nodules": if *case == 1 { json!([{"slice": 61, "x": 306, "y": 186}]) } else { json!([]) }, "annotation_files": notes}),
                meta: json!({"case": format!("W{case:04}"), "study_instance_uid": st, "study_date": "20000101",
                    "modality": "CT", "slice_thickness": null, "num_slices": 3, "series": [se]}),
                split: None,
            }
        })
        .collect();
    let archives = archives_of(&studies);
    check(&m, &Exp { slug: "i-elcap", label_columns: &["nodules", "annotation_files"], studies, archives });
    drop(m);

    // SCMR.
    let mut d = Download::default();
    let z = Some("SCMR_consensus_data.zip");
    for se in [1, 2] {
        for k in 1..=2 {
            d.add(
                z,
                &format!("SCMR/SCD0001/SA{se}/IM{k}.dcm"),
                slice_dcm("CAP-1", "1.3.9.1", &format!("1.3.9.1.{se}"), k, "MR"),
            );
        }
    }
    d.add(z, "SCMR/SCD0001/SA1/ED_contours.txt", "12.5 30.25\n");
    d.add(z, "SCMR/cases.csv", "case,pathology\nSCD0001,MI\n");
    let srcs = d.write_archives(&tmp.path().join("scmr"));
    let m = mount_at(tmp.path(), "mnt2", &srcs);
    let mut files: Vec<F> = d
        .items
        .iter()
        .filter(|i| i.path.ends_with(".dcm"))
        .map(|i| {
            let se = &i.path["SCMR/SCD0001/SA".len().."SCMR/SCD0001/SA".len() + 1];
            file(&format!("1.3.9.1.{se}/{}", i.path.rsplit('/').next().unwrap()), &i.data, loc_of(i))
        })
        .collect();
    let c = d.items.iter().find(|i| i.path.ends_with(".txt")).unwrap();
    files.push(file("contours/ED_contours.txt", &c.data, loc_of(c)));
    let studies = vec![S {
        patient: "SCD0001".into(),
        study: "1.3.9.1".into(),
        files,
        labels: json!({"pathology": "MI", "contour_files": ["contours/ED_contours.txt"]}),
        meta: json!({"case": "SCD0001", "study_instance_uid": "1.3.9.1", "study_date": "20000101", "manufacturer": "SIEMENS",
            "modality": "MR", "num_images": 4, "series": ["1.3.9.1.1", "1.3.9.1.2"]}),
        split: None,
    }];
    let archives = archives_of(&studies);
    check(&m, &Exp { slug: "scmr", label_columns: &["pathology", "contour_files"], studies, archives });
    drop(m);

    // MedPix 2.0, extracted.
    let mut d = Download::default();
    let pics = ["MPX1009_synpic46283", "MPX1009_synpic46296", "MPX1024_synpic40274"];
    for (k, p) in pics.iter().enumerate() {
        d.add(None, &format!("MedPix-2-0/images/{p}.png"), png(6, 6, k as u8, k as u64));
    }
    d.add(None, "MedPix-2-0/Case_topic.json", "[]\n");
    d.add(None, "MedPix-2-0/images_overview.csv", "Type,U_id,ID_Image,Img_Large,URL_Article_image\nTAC,MPX1009,MPX1009_synpic46283,https://x/1.png,https://medpix/a\nMRI,MPX1009,MPX1009_synpic46296,https://x/2.png,https://medpix/b\nTAC,MPX1024,MPX1024_synpic40274,https://x/3.png,https://medpix/c\n");
    let dir = tmp.path().join("medpix");
    d.write_extracted(&dir);
    let m = mount_at(tmp.path(), "mnt3", &[dir]);
    let f = |p: &str| {
        let it = d.items.iter().find(|i| i.path.ends_with(&format!("{p}.png"))).unwrap();
        file(&format!("{p}.png"), &it.data, loc(Form::Extracted, None, &it.path))
    };
    let studies = vec![
        S {
            patient: "MPX1009".into(),
            study: "MPX1009".into(),
            files: vec![f(pics[0]), f(pics[1])],
            labels: json!({"images": [
                {"image": format!("{}.png", pics[0]), "modality": "CT", "url": "https://medpix/a"},
                {"image": format!("{}.png", pics[1]), "modality": "MR", "url": "https://medpix/b"}]}),
            meta: json!({"case": "MPX1009", "form": "medpix-2.0", "num_images": 2}),
            split: None,
        },
        S {
            patient: "MPX1024".into(),
            study: "MPX1024".into(),
            files: vec![f(pics[2])],
            labels: json!({"images": [{"image": format!("{}.png", pics[2]), "modality": "CT", "url": "https://medpix/c"}]}),
            meta: json!({"case": "MPX1024", "form": "medpix-2.0", "num_images": 1}),
            split: None,
        },
    ];
    check(
        &m,
        &Exp { slug: "medpix", label_columns: &["images", "diagnosis"], studies, archives: vec!["MedPix-2-0".into()] },
    );
}
