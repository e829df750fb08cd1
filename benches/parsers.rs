//! medfs's own zip, tar and DICOM readers against the crates the design names (`zip`, `tar`,
//! `dicom-object`), on the same generated files, measured in one run: `cargo bench --bench
//! parsers`. Prints one table (best of several runs, ratio = crate time / medfs time, so > 1
//! means medfs is faster) and what each crate can and cannot give medfs on the conformance
//! corpus. Data is generated deterministically in a temporary folder and removed afterwards.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dicom_dictionary_std::tags;
use dicom_object::{DefaultDicomObject, OpenFileOptions, Tag};
use medfs::archive::{ByteSource, DataLoc, FileSource, path, tar as mtar, zip as mzip};
use medfs::dicom::{self, DicomInfo};
use medfs::pool::Pool;
use medfs::reader::Reader;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha256};

const ZIP_MEMBERS: usize = 40_000;
const ZIP_READS: usize = 2_000;
const TAR_MEMBERS: usize = 5_000;
const DICOM_FILES: usize = 3_000;
/// The header rate the DICOM scan must reach (issue 5).
const HEADER_GOAL_PER_S: f64 = 20_000.0;
/// Timed repetitions of each case; the best is reported (the machine is shared).
const RUNS: usize = 5;

fn main() {
    let dir = tempfile::tempdir().expect("temporary folder");
    println!("generating data in {} ...", dir.path().display());
    let mut rows = Vec::new();
    let zip_path = dir.path().join("many.zip");
    write_zip(&zip_path);
    bench_zip(&zip_path, &mut rows);
    let (tar_path, tgz_path) = (dir.path().join("many.tar"), dir.path().join("many.tar.gz"));
    write_tar(&tar_path, &tgz_path);
    bench_tar(&tar_path, &tgz_path, &mut rows);
    let dicom_dir = dir.path().join("dicom");
    let files = write_dicom(&dicom_dir);
    bench_dicom(&files, &mut rows);
    print_table(&rows);
    println!();
    zip_crate_capabilities();
    tar_crate_capabilities();
}

/// One line of the table: what was done, medfs's time, the crate's time, and per how many items.
struct Row {
    case: String,
    items: usize,
    medfs: Duration,
    other: Duration,
    other_name: &'static str,
}

/// Best wall time of `RUNS` runs of `f`; the result of the last run is returned too.
fn best<T>(mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut best = Duration::MAX;
    let mut out = None;
    for _ in 0..RUNS {
        let t = Instant::now();
        let v = f();
        best = best.min(t.elapsed());
        out = Some(v);
    }
    (best, out.expect("RUNS > 0"))
}

fn per_item(d: Duration, items: usize) -> String {
    let us = d.as_secs_f64() * 1e6 / items as f64;
    if us >= 1000.0 { format!("{:.2} ms", us / 1000.0) } else { format!("{us:.2} us") }
}

fn print_table(rows: &[Row]) {
    println!();
    println!("| case | items | medfs total | medfs / item | crate | crate total | crate / item | crate / medfs |");
    println!("|---|---:|---:|---:|---|---:|---:|---:|");
    for r in rows {
        println!(
            "| {} | {} | {:.1} ms | {} | {} | {:.1} ms | {} | {:.2}x |",
            r.case,
            r.items,
            r.medfs.as_secs_f64() * 1e3,
            per_item(r.medfs, r.items),
            r.other_name,
            r.other.as_secs_f64() * 1e3,
            per_item(r.other, r.items),
            r.other.as_secs_f64() / r.medfs.as_secs_f64()
        );
    }
}

/// Bytes that compress like real data a little (repeated runs with noise), `len` long.
fn content(rng: &mut StdRng, len: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(len);
    while v.len() < len {
        let b: u8 = rng.random();
        let run = rng.random_range(1..8usize);
        v.extend(std::iter::repeat_n(b, run.min(len - v.len())));
    }
    v
}

// ----------------------------------------------------------------------------------------------
// zip

/// 40,000 small members in a TCIA-like layout, deflated and stored alternately.
fn write_zip(path: &Path) {
    let mut rng = StdRng::seed_from_u64(1);
    let mut w = zip::ZipWriter::new(io::BufWriter::new(File::create(path).expect("create zip")));
    for i in 0..ZIP_MEMBERS {
        let method = if i % 2 == 0 { zip::CompressionMethod::Deflated } else { zip::CompressionMethod::Stored };
        let opts = zip::write::SimpleFileOptions::default().compression_method(method);
        let name =
            format!("LIDC-IDRI-{:04}/01-01-2000-{:05}/3000566-{:05}/1-{:03}.dcm", i / 400, i / 100, i / 100, i % 100);
        w.start_file(name, opts).expect("zip member");
        let len = rng.random_range(200..4000);
        w.write_all(&content(&mut rng, len)).expect("zip data");
    }
    w.finish().expect("finish zip");
}

fn bench_zip(path: &Path, rows: &mut Vec<Row>) {
    // Listing: medfs's central-directory lister (member table with data locations, overlap and
    // ratio checks) against ZipArchive::new plus every entry's name, size and header offset.
    let (medfs, n) = best(|| {
        let src = FileSource::open(path).expect("open zip");
        mzip::list(&src).expect("medfs lists the zip").members.len()
    });
    let (other, m) = best(|| {
        let mut z = zip::ZipArchive::new(File::open(path).expect("open zip")).expect("zip crate opens the zip");
        let mut out = Vec::with_capacity(z.len());
        for i in 0..z.len() {
            let e = z.by_index_data(i).expect("entry");
            out.push((e.name_raw().to_vec(), e.size(), e.header_start()));
        }
        // ZipArchive keeps its own table; borrow it mutably once so the comparison includes
        // being able to read afterwards.
        let _ = z.by_index_raw(0);
        out.len()
    });
    assert_eq!((n, m), (ZIP_MEMBERS, ZIP_MEMBERS));
    rows.push(Row {
        case: "zip: list 40,000 members".into(),
        items: n,
        medfs,
        other,
        other_name: "zip 9 ZipArchive::new",
    });

    // Reading 2,000 random members whole: medfs's reader (lazy data offset, inflate, CRC check)
    // against the zip crate's by_index (local header, inflate, CRC check).
    let mut rng = StdRng::seed_from_u64(2);
    let picks: Vec<usize> = (0..ZIP_READS).map(|_| rng.random_range(0..ZIP_MEMBERS)).collect();
    // Each run opens the archive untimed and times only its reads (listing is the row above);
    // a CRC-32 of everything read (cheap next to inflating) proves both read the same bytes.
    let (mut medfs, mut other) = (Duration::MAX, Duration::MAX);
    let (_, a) = best(|| {
        let src: Arc<dyn ByteSource> = Arc::new(FileSource::open(path).expect("open zip"));
        let pool = Pool::from_sources(vec![("many.zip".into(), src)], 64 << 20, false).expect("pool");
        let reader = Reader::new(pool);
        let mut buf = Vec::new();
        let mut crc = crc32fast::Hasher::new();
        let t = Instant::now();
        for &i in &picks {
            reader.read(0, i as u32, 0, 1 << 20, &mut buf).expect("medfs reads the member");
            crc.update(&buf);
        }
        medfs = medfs.min(t.elapsed());
        crc.finalize()
    });
    let (_, b) = best(|| {
        let mut z = zip::ZipArchive::new(File::open(path).expect("open zip")).expect("zip crate opens the zip");
        let mut buf = Vec::new();
        let mut crc = crc32fast::Hasher::new();
        let t = Instant::now();
        for &i in &picks {
            buf.clear();
            z.by_index(i).expect("entry").read_to_end(&mut buf).expect("zip crate reads the member");
            crc.update(&buf);
        }
        other = other.min(t.elapsed());
        crc.finalize()
    });
    assert_eq!(a, b, "both read the same bytes");
    rows.push(Row {
        case: "zip: read 2,000 random members whole (archive open)".into(),
        items: ZIP_READS,
        medfs,
        other,
        other_name: "zip 9 by_index",
    });
}

/// What the zip crate can give medfs, archive by archive of the corpus: does it open the
/// archive, and read every file the manifest expects with the expected bytes?
fn zip_crate_capabilities() {
    println!("zip crate on the conformance corpus (valid archives; medfs passes all of them):");
    let mut failed = Vec::new();
    let mut passed = 0;
    for a in corpus("zip").iter().filter(|a| a["expect"] == "valid") {
        let file = a["file"].as_str().expect("file");
        match zip_crate_reads(&corpus_path(file), a) {
            Ok(()) => passed += 1,
            Err(e) => failed.push(format!("{file}: {e}")),
        }
    }
    println!("  {passed} read as the manifest says, {} not:", failed.len());
    for f in &failed {
        println!("    {f}");
    }
    // Duplicate names: two members with one name. medfs shows both (`name~2`).
    let mut w = zip::ZipWriter::new(io::Cursor::new(Vec::new()));
    for (name, data) in [("dup-A.txt", b"first"), ("dup-B.txt", b"later")] {
        w.start_file(name, zip::write::SimpleFileOptions::default()).expect("member");
        w.write_all(data).expect("data");
    }
    let mut bytes = w.finish().expect("finish").into_inner();
    replace_all(&mut bytes, b"dup-B.txt", b"dup-A.txt");
    let medfs_n = mzip::list(&MemSource(bytes.clone())).map(|l| l.members.len());
    let crate_n = zip::ZipArchive::new(io::Cursor::new(bytes)).map(|z| z.len());
    println!("  duplicate names (2 members, one name): medfs lists {medfs_n:?}, zip crate {crate_n:?}");

    // A lying central directory: the second entry points at the first one's local header (the
    // overlapping-data zip bomb pattern). medfs marks it unreadable; what does the crate do?
    let mut w = zip::ZipWriter::new(io::Cursor::new(Vec::new()));
    for name in ["a.txt", "b.txt"] {
        let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
        w.start_file(name, opts).expect("member");
        w.write_all(b"same size").expect("data");
    }
    let mut bytes = w.finish().expect("finish").into_inner();
    let second_cd = bytes.windows(4).enumerate().filter(|(_, s)| *s == b"PK\x01\x02").nth(1).expect("two entries").0;
    bytes[second_cd + 42..second_cd + 46].copy_from_slice(&0u32.to_le_bytes());
    let medfs_b = mzip::list(&MemSource(bytes.clone())).map(|l| match &l.members[1].data {
        DataLoc::Bad { reason } => format!("b.txt refused: {reason}"),
        other => format!("b.txt readable at {other:?}"),
    });
    let crate_b = zip::ZipArchive::new(io::Cursor::new(bytes)).and_then(|mut z| {
        let mut v = Vec::new();
        z.by_index(1)?.read_to_end(&mut v)?;
        Ok(format!("b.txt reads {:?}", String::from_utf8_lossy(&v)))
    });
    println!("  overlapping members (lying directory): medfs {medfs_b:?}; zip crate {crate_b:?}");
}

/// Reads every `file` member of manifest entry `a` with the zip crate and compares its SHA-256.
fn zip_crate_reads(path: &Path, a: &serde_json::Value) -> Result<(), String> {
    let mut z = zip::ZipArchive::new(File::open(path).map_err(|e| e.to_string())?).map_err(|e| format!("open: {e}"))?;
    let mut by_path: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
    for i in 0..z.len() {
        let e = z.by_index_data(i).map_err(|e| e.to_string())?;
        if let Some(p) = normalized(e.name_raw()) {
            by_path.insert(p, i);
        }
    }
    for m in a["members"].as_array().into_iter().flatten().filter(|m| m["type"] == "file") {
        let p = manifest_path(m);
        let i = *by_path.get(&p).ok_or_else(|| format!("{} missing", String::from_utf8_lossy(&p)))?;
        let mut buf = Vec::new();
        z.by_index(i)
            .and_then(|mut f| f.read_to_end(&mut buf).map_err(Into::into))
            .map_err(|e| format!("{}: {e}", String::from_utf8_lossy(&p)))?;
        if let Some(want) = m["sha256"].as_str()
            && hex(&Sha256::digest(&buf)) != want
        {
            return Err(format!("{}: content differs", String::from_utf8_lossy(&p)));
        }
    }
    Ok(())
}

// ----------------------------------------------------------------------------------------------
// tar

/// 5,000 members; every third has a name over 100 bytes (a GNU long-name entry), every tenth a
/// pax header.
fn write_tar(tar_path: &Path, tgz_path: &Path) {
    let mut rng = StdRng::seed_from_u64(3);
    let mut b = tar::Builder::new(Vec::new());
    for i in 0..TAR_MEMBERS {
        let long =
            if i % 3 == 0 { "a-rather-long-folder-name-that-pushes-the-path-past-one-hundred-bytes/" } else { "" };
        let name = format!("NIH/images_{:03}/{long}000{:05}_{:03}.png", i / 500, i, i % 7);
        if i % 10 == 0 {
            b.append_pax_extensions([("comment", format!("member {i}").as_bytes())]).expect("pax");
        }
        let len = rng.random_range(200..6000);
        let data = content(&mut rng, len);
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(1_600_000_000);
        b.append_data(&mut h, &name, &data[..]).expect("tar member");
    }
    let bytes = b.into_inner().expect("finish tar");
    std::fs::write(tar_path, &bytes).expect("write tar");
    let mut gz =
        flate2::write::GzEncoder::new(File::create(tgz_path).expect("create tgz"), flate2::Compression::new(6));
    gz.write_all(&bytes).expect("write tgz");
    gz.finish().expect("finish tgz");
}

/// The tar crate's listing: path (long names and pax applied), size, data offset.
fn tar_crate_list<R: Read + io::Seek>(a: &mut tar::Archive<R>) -> Vec<(Vec<u8>, u64, u64)> {
    a.entries_with_seek()
        .expect("entries")
        .map(|e| {
            let e = e.expect("entry");
            (e.path_bytes().into_owned(), e.size(), e.raw_file_position())
        })
        .collect()
}

fn tar_crate_list_stream<R: Read>(r: R) -> Vec<(Vec<u8>, u64, u64)> {
    let mut a = tar::Archive::new(r);
    a.entries()
        .expect("entries")
        .map(|e| {
            let e = e.expect("entry");
            (e.path_bytes().into_owned(), e.size(), e.raw_file_position())
        })
        .collect()
}

fn bench_tar(tar_path: &Path, tgz_path: &Path, rows: &mut Vec<Row>) {
    let (medfs, listed) = best(|| {
        let src = FileSource::open(tar_path).expect("open tar");
        mtar::list_source(&src, "many.tar").expect("medfs lists the tar").members
    });
    let (other, theirs) = best(|| tar_crate_list(&mut tar::Archive::new(File::open(tar_path).expect("open"))));
    assert_eq!(listed.len(), TAR_MEMBERS);
    assert_eq!(theirs.len(), TAR_MEMBERS);
    for (m, (p, size, pos)) in listed.iter().zip(&theirs) {
        assert_eq!((&m.path, m.size), (p, *size), "both read the same names and sizes");
        assert!(matches!(m.data, DataLoc::Raw { offset } if offset == *pos), "both find the same data offsets");
    }
    rows.push(Row {
        case: "tar: list 5,000 members".into(),
        items: TAR_MEMBERS,
        medfs,
        other,
        other_name: "tar 0.4 entries_with_seek",
    });

    // tar.gz: the listers over the same gzip decoder (flate2 on zlib-rs), so only the tar
    // parsing differs; then medfs's real path, which also records gzip seek points.
    let (medfs, n) = best(|| {
        let mut gz = flate2::read::GzDecoder::new(io::BufReader::new(File::open(tgz_path).expect("open")));
        mtar::list(&mut gz, "many.tar.gz").expect("medfs lists the tar.gz").members.len()
    });
    let (other, m) = best(|| {
        let gz = flate2::read::GzDecoder::new(io::BufReader::new(File::open(tgz_path).expect("open")));
        tar_crate_list_stream(gz).len()
    });
    assert_eq!((n, m), (TAR_MEMBERS, TAR_MEMBERS));
    rows.push(Row {
        case: "tar.gz: list 5,000 members (same gzip decoder)".into(),
        items: TAR_MEMBERS,
        medfs,
        other,
        other_name: "tar 0.4 entries over GzDecoder",
    });
    let (medfs, n) = best(|| {
        let src: Arc<dyn ByteSource> = Arc::new(FileSource::open(tgz_path).expect("open"));
        let pool = Pool::from_sources(vec![("many.tar.gz".into(), src)], 64 << 20, false).expect("pool");
        pool.archives[0].members.len()
    });
    assert_eq!(n, TAR_MEMBERS);
    rows.push(Row {
        case: "tar.gz: medfs detect + list + gzip seek points, one pass (vs crate list only)".into(),
        items: TAR_MEMBERS,
        medfs,
        other,
        other_name: "tar 0.4 entries over GzDecoder",
    });
}

/// What the tar crate gives on the corpus's valid plain tars: every manifest file found under
/// its name with its size and bytes.
fn tar_crate_capabilities() {
    println!("tar crate on the conformance corpus (valid plain tars; medfs passes all of them):");
    let mut failed = Vec::new();
    let mut passed = 0;
    for a in corpus("tar").iter().filter(|a| a["expect"] == "valid") {
        let file = a["file"].as_str().expect("file");
        match tar_crate_reads(&corpus_path(file), a) {
            Ok(()) => passed += 1,
            Err(e) => failed.push(format!("{file}: {e}")),
        }
    }
    println!("  {passed} read as the manifest says, {} not:", failed.len());
    for f in &failed {
        println!("    {f}");
    }
}

fn tar_crate_reads(path: &Path, a: &serde_json::Value) -> Result<(), String> {
    let mut ar = tar::Archive::new(File::open(path).map_err(|e| e.to_string())?);
    let mut files: BTreeMap<Vec<u8>, (u64, String)> = BTreeMap::new();
    for e in ar.entries().map_err(|e| format!("entries: {e}"))? {
        let mut e = e.map_err(|e| format!("entry: {e}"))?;
        let Some(p) = normalized(&e.path_bytes()) else { continue };
        // Streamed: the corpus has members of several GiB (sparse, or claimed by a header).
        let size = e.size();
        let sha = if size <= 64 << 20 {
            let mut h = Sha256::new();
            io::copy(&mut e, &mut HashWriter(&mut h))
                .map_err(|err| format!("{}: read: {err}", String::from_utf8_lossy(&p)))?;
            hex(&h.finalize())
        } else {
            String::new()
        };
        // Later entries win, as `tar -x` (the manifest's reading).
        files.insert(p, (size, sha));
    }
    for m in a["members"].as_array().into_iter().flatten().filter(|m| m["type"] == "file") {
        let p = manifest_path(m);
        let label = String::from_utf8_lossy(&p).into_owned();
        let Some((size, sha)) = files.get(&p) else { return Err(format!("{label} missing")) };
        if m["size"].as_u64().is_some_and(|s| s != *size) {
            return Err(format!("{label}: size {size}, expected {}", m["size"]));
        }
        if !sha.is_empty() && m["sha256"].as_str().is_some_and(|want| want != sha) {
            return Err(format!("{label}: content differs"));
        }
    }
    Ok(())
}

// ----------------------------------------------------------------------------------------------
// DICOM

/// A TCIA-length UID (64 characters at most, as the standard allows; TCIA's are 60 to 64).
fn uid(kind: u32, a: usize, b: usize) -> String {
    let u = format!("1.3.6.1.4.1.14519.5.2.1.6279.6001.{kind}{a:07}{b:05}4713302638283155012");
    u[..u.len().min(64)].to_string()
}

/// A little DICOM writer: elements in the order given (callers keep tags ascending).
struct W {
    out: Vec<u8>,
    explicit: bool,
}

impl W {
    fn head(&mut self, tag: u32, vr: &[u8; 2], len: u32) {
        self.out.extend_from_slice(&((tag >> 16) as u16).to_le_bytes());
        self.out.extend_from_slice(&(tag as u16).to_le_bytes());
        let long = matches!(vr, b"OB" | b"OW" | b"SQ" | b"UN" | b"UT");
        if self.explicit && tag >> 16 != 0xFFFE {
            self.out.extend_from_slice(vr);
            if long {
                self.out.extend_from_slice(&[0, 0]);
                self.out.extend_from_slice(&len.to_le_bytes());
            } else {
                self.out.extend_from_slice(&(len as u16).to_le_bytes());
            }
        } else {
            self.out.extend_from_slice(&len.to_le_bytes());
        }
    }

    /// A value padded to even length (NUL for UI and OB, space otherwise).
    fn el(&mut self, tag: u32, vr: &[u8; 2], value: &[u8]) {
        let pad = value.len() % 2;
        self.head(tag, vr, (value.len() + pad) as u32);
        self.out.extend_from_slice(value);
        if pad == 1 {
            self.out.push(if matches!(vr, b"UI" | b"OB") { 0 } else { b' ' });
        }
    }

    fn s(&mut self, tag: u32, vr: &[u8; 2], value: &str) {
        self.el(tag, vr, value.as_bytes());
    }

    fn us(&mut self, tag: u32, v: u16) {
        self.el(tag, b"US", &v.to_le_bytes());
    }
}

const TS_EXPLICIT: &str = "1.2.840.10008.1.2.1";
const TS_IMPLICIT: &str = "1.2.840.10008.1.2";
const CT_IMAGE: &str = "1.2.840.10008.5.1.4.1.1.2";

/// A CT slice: Part-10 preamble and meta, ~60 attributes with two sequences (one with items of
/// undefined length, one nested), a Siemens-style private block, and the start of the pixel
/// data. Two files in three are Explicit VR Little Endian, the third Implicit VR.
fn ct_slice(i: usize) -> Vec<u8> {
    let (patient, series, instance) = (i / 300, i / 100, i % 100 + 1);
    let explicit = i % 3 != 2;
    let sop = uid(3, series, instance);
    let mut meta = W { out: Vec::new(), explicit: true };
    meta.el(0x0002_0001, b"OB", &[0, 1]);
    meta.s(0x0002_0002, b"UI", CT_IMAGE);
    meta.s(0x0002_0003, b"UI", &sop);
    meta.s(0x0002_0010, b"UI", if explicit { TS_EXPLICIT } else { TS_IMPLICIT });
    meta.s(0x0002_0012, b"UI", "1.2.276.0.7230010.3.0.3.6.4");
    meta.s(0x0002_0013, b"SH", "OFFIS_DCMTK_364");
    let mut out = vec![0u8; 128];
    out.extend_from_slice(b"DICM");
    let mut w = W { out, explicit: true };
    w.el(0x0002_0000, b"UL", &(meta.out.len() as u32).to_le_bytes());
    w.out.extend_from_slice(&meta.out);
    w.explicit = explicit;
    let z = -100.0 - 1.25 * instance as f64;
    w.s(0x0008_0005, b"CS", "ISO_IR 100");
    w.s(0x0008_0008, b"CS", "ORIGINAL\\PRIMARY\\AXIAL");
    w.s(0x0008_0016, b"UI", CT_IMAGE);
    w.s(0x0008_0018, b"UI", &sop);
    w.s(0x0008_0020, b"DA", "20000101");
    w.s(0x0008_0021, b"DA", "20000101");
    w.s(0x0008_0030, b"TM", "120000.000000");
    w.s(0x0008_0050, b"SH", &format!("ACC{patient:06}"));
    w.s(0x0008_0060, b"CS", "CT");
    w.s(0x0008_0070, b"LO", "SIEMENS");
    w.s(0x0008_0090, b"PN", "");
    w.s(0x0008_1030, b"LO", "CHEST CT W/O CONTRAST");
    w.s(0x0008_103E, b"LO", "Thorax 1.0 B30f");
    w.s(0x0008_1090, b"LO", "Sensation 16");
    // ReferencedImageSequence: two items of undefined length.
    w.head(0x0008_1140, b"SQ", 0xFFFF_FFFF);
    for k in 0..2 {
        w.head(0xFFFE_E000, b"  ", 0xFFFF_FFFF);
        w.s(0x0008_1150, b"UI", CT_IMAGE);
        w.s(0x0008_1155, b"UI", &uid(3, series, k));
        w.head(0xFFFE_E00D, b"  ", 0);
    }
    w.head(0xFFFE_E0DD, b"  ", 0);
    w.s(0x0010_0010, b"PN", &format!("LIDC-IDRI-{patient:04}"));
    w.s(0x0010_0020, b"LO", &format!("LIDC-IDRI-{patient:04}"));
    w.s(0x0010_0030, b"DA", "");
    w.s(0x0010_0040, b"CS", if patient % 2 == 0 { "M" } else { "F" });
    w.s(0x0010_1010, b"AS", "063Y");
    w.s(0x0018_0015, b"CS", "CHEST");
    w.s(0x0018_0050, b"DS", "1.25");
    w.s(0x0018_0060, b"DS", "120");
    w.s(0x0018_1150, b"IS", "570");
    w.s(0x0018_5100, b"CS", "FFS");
    w.s(0x0020_000D, b"UI", &uid(1, patient, 0));
    w.s(0x0020_000E, b"UI", &uid(2, series, 0));
    w.s(0x0020_0010, b"SH", "");
    w.s(0x0020_0011, b"IS", &format!("{}", 3000 + series % 10));
    w.s(0x0020_0013, b"IS", &instance.to_string());
    w.s(0x0020_0032, b"DS", &format!("-166.000000\\-171.699997\\{z:.6}"));
    w.s(0x0020_0037, b"DS", "1.000000\\0.000000\\0.000000\\0.000000\\1.000000\\0.000000");
    w.s(0x0020_0052, b"UI", &uid(4, patient, 0));
    w.s(0x0020_1041, b"DS", &format!("{z:.6}"));
    w.us(0x0028_0002, 1);
    w.s(0x0028_0004, b"CS", "MONOCHROME2");
    w.us(0x0028_0010, 512);
    w.us(0x0028_0011, 512);
    w.s(0x0028_0030, b"DS", "0.703125\\0.703125");
    w.us(0x0028_0100, 16);
    w.us(0x0028_0101, 12);
    w.us(0x0028_0102, 11);
    w.us(0x0028_0103, 0);
    w.s(0x0028_1050, b"DS", "-600");
    w.s(0x0028_1051, b"DS", "1600");
    w.s(0x0028_1052, b"DS", "-1024");
    w.s(0x0028_1053, b"DS", "1");
    // A private block as Siemens writes it (CSA headers), skipped by both readers' users.
    w.s(0x0029_0010, b"LO", "SIEMENS CSA HEADER");
    w.el(0x0029_1010, b"OB", &vec![0x5a; 6000]);
    // (0040,0260) PerformedProtocolCodeSequence: one defined-length item with a nested sequence.
    let mut inner = W { out: Vec::new(), explicit };
    inner.s(0x0008_0100, b"SH", "CTCHEST");
    inner.s(0x0008_0102, b"SH", "99LOCAL");
    let mut item = W { out: Vec::new(), explicit };
    item.s(0x0008_0100, b"SH", "P1");
    item.head(0x0040_A170, b"SQ", (inner.out.len() + 8) as u32);
    item.head(0xFFFE_E000, b"  ", inner.out.len() as u32);
    item.out.extend_from_slice(&inner.out);
    w.head(0x0040_0260, b"SQ", (item.out.len() + 8) as u32);
    w.head(0xFFFE_E000, b"  ", item.out.len() as u32);
    w.out.extend_from_slice(&item.out);
    // Pixel data: declared whole, written only far enough that the file is past the 64 KiB
    // head medfs's scan reads (neither reader goes into it).
    w.head(0x7FE0_0010, b"OW", 512 * 512 * 2);
    let fill = dicom::DEFAULT_HEAD + 4096 - w.out.len();
    w.out.extend(std::iter::repeat_n(0u8, fill));
    w.out
}

fn write_dicom(dir: &Path) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).expect("create dicom folder");
    (0..DICOM_FILES)
        .map(|i| {
            let p = dir.join(format!("{i:05}.dcm"));
            std::fs::write(&p, ct_slice(i)).expect("write dicom");
            p
        })
        .collect()
}

/// The first `DEFAULT_HEAD` bytes of a file, as medfs's scan reads a member.
fn head_of(path: &Path) -> Vec<u8> {
    let mut head = Vec::with_capacity(dicom::DEFAULT_HEAD);
    File::open(path).expect("open dicom").take(dicom::DEFAULT_HEAD as u64).read_to_end(&mut head).expect("read head");
    head
}

/// The fields medfs extracts, read from a dicom-object object the way medfs reads them.
fn info_from_object(obj: &DefaultDicomObject) -> DicomInfo {
    let text = |tag: Tag| {
        let e = obj.element_opt(tag).ok().flatten()?;
        let s = e.to_str().ok()?;
        let s = s.trim_end_matches([' ', '\0']).trim_start_matches(' ');
        (!s.is_empty()).then(|| s.to_string())
    };
    let floats = |tag: Tag| obj.element_opt(tag).ok().flatten()?.to_multi_float64().ok();
    let float = |tag: Tag| floats(tag).and_then(|v| v.first().copied());
    let int = |tag: Tag| obj.element_opt(tag).ok().flatten()?.to_int::<i64>().ok();
    let ts = obj.meta().transfer_syntax().trim_end_matches(['\0', ' ']).to_string();
    DicomInfo {
        transfer_syntax: (!ts.is_empty()).then_some(ts),
        sop_class_uid: text(tags::SOP_CLASS_UID),
        sop_uid: text(tags::SOP_INSTANCE_UID),
        study_date: text(tags::STUDY_DATE),
        modality: text(tags::MODALITY),
        manufacturer: text(tags::MANUFACTURER),
        study_description: text(tags::STUDY_DESCRIPTION),
        series_description: text(tags::SERIES_DESCRIPTION),
        patient_id: text(tags::PATIENT_ID),
        patient_birth_date: text(tags::PATIENT_BIRTH_DATE),
        patient_sex: text(tags::PATIENT_SEX),
        patient_age: text(tags::PATIENT_AGE),
        body_part: text(tags::BODY_PART_EXAMINED),
        slice_thickness: float(tags::SLICE_THICKNESS),
        study_uid: text(tags::STUDY_INSTANCE_UID),
        series_uid: text(tags::SERIES_INSTANCE_UID),
        study_id: text(tags::STUDY_ID),
        series_number: int(tags::SERIES_NUMBER),
        instance_number: int(tags::INSTANCE_NUMBER),
        image_position: floats(tags::IMAGE_POSITION_PATIENT).and_then(|v| v.try_into().ok()),
        image_orientation: floats(tags::IMAGE_ORIENTATION_PATIENT).and_then(|v| v.try_into().ok()),
        slice_location: float(tags::SLICE_LOCATION),
        number_of_frames: int(tags::NUMBER_OF_FRAMES),
        rows: obj.element_opt(tags::ROWS).ok().flatten().and_then(|e| e.to_int::<u32>().ok()),
        columns: obj.element_opt(tags::COLUMNS).ok().flatten().and_then(|e| e.to_int::<u32>().ok()),
        pixel_spacing: floats(tags::PIXEL_SPACING).and_then(|v| v.try_into().ok()),
        image_type: text(tags::IMAGE_TYPE),
        manufacturer_model: text(tags::MANUFACTURER_MODEL_NAME),
        repetition_time: float(tags::REPETITION_TIME),
        echo_time: float(tags::ECHO_TIME),
        magnetic_field_strength: float(tags::MAGNETIC_FIELD_STRENGTH),
        spacing_between_slices: float(tags::SPACING_BETWEEN_SLICES),
        software_versions: text(tags::SOFTWARE_VERSIONS),
        protocol_name: text(tags::PROTOCOL_NAME),
        flip_angle: float(tags::FLIP_ANGLE),
        patient_position: text(tags::PATIENT_POSITION),
        samples_per_pixel: obj.element_opt(tags::SAMPLES_PER_PIXEL).ok().flatten().and_then(|e| e.to_int::<u32>().ok()),
        bits_allocated: obj.element_opt(tags::BITS_ALLOCATED).ok().flatten().and_then(|e| e.to_int::<u32>().ok()),
        pixel_representation: obj
            .element_opt(tags::PIXEL_REPRESENTATION)
            .ok()
            .flatten()
            .and_then(|e| e.to_int::<u32>().ok()),
        rescale_intercept: float(tags::RESCALE_INTERCEPT),
        rescale_slope: float(tags::RESCALE_SLOPE),
    }
}

fn dicom_object_parse(head: &[u8]) -> DicomInfo {
    let obj = OpenFileOptions::new()
        .read_until(tags::PIXEL_DATA)
        .read_preamble(dicom_object::file::ReadPreamble::Always)
        .from_reader(head)
        .expect("dicom-object reads the header");
    info_from_object(&obj)
}

fn bench_dicom(files: &[PathBuf], rows: &mut Vec<Row>) {
    let heads: Vec<Vec<u8>> = files.iter().map(|p| head_of(p)).collect();
    // Same values from both, or the comparison means nothing.
    let mut differ = 0;
    for h in &heads {
        let ours = dicom::parse_header(h).expect("medfs reads the header");
        let theirs = dicom_object_parse(h);
        if ours != theirs {
            if differ == 0 {
                println!("first difference:\n  medfs:        {ours:?}\n  dicom-object: {theirs:?}");
            }
            differ += 1;
        }
    }
    println!("DICOM: {} headers, {differ} read differently by the two readers", heads.len());
    // Each pass sums the instance numbers, so no parse can be optimized away.
    let (medfs, a) =
        best(|| heads.iter().filter_map(|h| dicom::parse_header(h).expect("header").instance_number).sum::<i64>());
    let (other, b) = best(|| heads.iter().filter_map(|h| dicom_object_parse(h).instance_number).sum::<i64>());
    assert_eq!(a, b);
    rows.push(Row {
        case: "DICOM: parse 3,000 CT headers, in memory (same 27 fields)".into(),
        items: heads.len(),
        medfs,
        other,
        other_name: "dicom-object 0.10 read_until(PIXEL_DATA)",
    });
    let (medfs_f, a) = best(|| {
        files.iter().filter_map(|p| dicom::parse_header(&head_of(p)).expect("header").instance_number).sum::<i64>()
    });
    let (other_f, b) = best(|| {
        files
            .iter()
            .filter_map(|p| {
                let obj = OpenFileOptions::new().read_until(tags::PIXEL_DATA).open_file(p).expect("open_file");
                info_from_object(&obj).instance_number
            })
            .sum::<i64>()
    });
    assert_eq!(a, b);
    rows.push(Row {
        case: "DICOM: open + read + parse 3,000 files (page cache warm)".into(),
        items: files.len(),
        medfs: medfs_f,
        other: other_f,
        other_name: "dicom-object 0.10 open_file",
    });
    let rate = |d: Duration| heads.len() as f64 / d.as_secs_f64();
    println!(
        "DICOM headers/s in memory: medfs {:.0}, dicom-object {:.0} (goal {HEADER_GOAL_PER_S:.0}: medfs {}, dicom-object {})",
        rate(medfs),
        rate(other),
        if rate(medfs) >= HEADER_GOAL_PER_S { "meets it" } else { "misses it" },
        if rate(other) >= HEADER_GOAL_PER_S { "meets it" } else { "misses it" },
    );
}

// ----------------------------------------------------------------------------------------------
// Shared

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/conformance");

fn corpus(format: &str) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(Path::new(CORPUS).join("manifest.json")).expect("manifest.json");
    let manifest: serde_json::Value = serde_json::from_str(&text).expect("manifest parses");
    manifest["archives"].as_array().expect("archives").iter().filter(|a| a["format"] == format).cloned().collect()
}

fn corpus_path(file: &str) -> PathBuf {
    Path::new(CORPUS).join(file)
}

fn manifest_path(m: &serde_json::Value) -> Vec<u8> {
    match m["path_hex"].as_str().filter(|h| !h.is_empty()) {
        Some(h) => (0..h.len()).step_by(2).map(|i| u8::from_str_radix(&h[i..i + 2], 16).expect("hex")).collect(),
        None => m["path"].as_str().expect("path").as_bytes().to_vec(),
    }
}

/// A member path as the mount shows it (medfs's one normalization), None for the root.
fn normalized(raw: &[u8]) -> Option<Vec<u8>> {
    path::normalize(raw).map(|c| path::join(&c.components))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn replace_all(hay: &mut [u8], from: &[u8], to: &[u8]) {
    let mut i = 0;
    while i + from.len() <= hay.len() {
        if &hay[i..i + from.len()] == from {
            hay[i..i + from.len()].copy_from_slice(to);
        }
        i += 1;
    }
}

/// Feeds what is written into a SHA-256.
struct HashWriter<'a>(&'a mut Sha256);

impl Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Bytes in memory as a medfs source.
struct MemSource(Vec<u8>);

impl ByteSource for MemSource {
    fn len(&self) -> u64 {
        self.0.len() as u64
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let start = (offset.min(self.0.len() as u64)) as usize;
        let n = buf.len().min(self.0.len() - start);
        buf[..n].copy_from_slice(&self.0[start..start + n]);
        Ok(n)
    }

    fn describe(&self) -> String {
        "bytes in memory".into()
    }
}
