//! The in-process conformance tier: a corpus archive mounted by the real core (detection and
//! listing by `Pool::from_sources`, the raw view by the tree builder, reads by `MedFs`), walked
//! through `readdir`, `lookup`, `readlink` and `read`, and judged by `check.py`'s rules.
//! `tests/conformance_mount.rs` runs `check.py` itself over a FUSE mount; this tier checks the
//! same things without a kernel and names every failure. Shared by `tar_conformance.rs` and
//! `zip_conformance.rs`; knows nothing about any format.

#![allow(dead_code)] // each test crate uses part of it

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, mpsc};
use std::time::Duration;

use medfs::archive::{ByteSource, FileSource};
use medfs::error::FsError;
use medfs::fs::{FileKind, Ino, MedFs};
use medfs::pool::Pool;
use medfs::reader::Reader;
use medfs::tree::{TreeBuilder, TreeOptions};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The corpus (README.md, manifest.json, check.py), copied into the repository.
pub const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/conformance");

/// Files larger than this are checked by size and the manifest's probes (as `check.py` does for
/// files with probes); the manifest has probes for every file over 64 MiB.
const MAX_HASH_BYTES: u64 = 64 << 20;

/// Mounting (detect + list + build the tree) that takes longer than this is treated as hung.
const MOUNT_TIMEOUT: Duration = Duration::from_secs(60);

/// The size of the kernel's read requests, which the core is driven with.
const READ_CHUNK: usize = 128 << 10;

/// Why an archive may show more than the manifest: `tar -x` keeps only the last entry of a
/// path, the raw view keeps every entry (issue 8, ARCHITECTURE.md).
pub const DUPLICATES: &str = "duplicate member paths are shown as name~2 (issue 8), not last-wins";

/// Corpus archives allowed to fail, each with the reason; both tiers use this one list. Their
/// failures must all be explained by duplicates shown as `name~N` (checked). The corpus expects
/// `tar -x` semantics (only the last entry, at the plain name); every member of an archive stays
/// reachable in `_archives/`, a later entry with an earlier entry's path as `name~2`, `~3`...
pub const KNOWN_DEVIATIONS: &[(&str, &str)] = &[
    ("go-tar/hdr-only.tar", DUPLICATES),
    ("ratarmount/concatenated.tar", DUPLICATES),
    ("ratarmount/file-existing-as-non-link-and-link.tar", DUPLICATES),
    ("ratarmount/two-self-links-to-existing-file.tar", DUPLICATES),
    ("ratarmount/updated-file.tar", DUPLICATES),
    ("ratarmount/updated-folder-with-file.tar", DUPLICATES),
    ("ratarmount/updated-folder.tar", DUPLICATES),
];

/// The manifest entries whose `format` is `format`.
pub fn corpus(format: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(PathBuf::from(CORPUS).join("manifest.json")).expect("read manifest.json");
    let manifest: Value = serde_json::from_str(&text).expect("parse manifest.json");
    manifest["archives"].as_array().expect("archives array").iter().filter(|a| a["format"] == format).cloned().collect()
}

pub fn archive_path(entry: &Value) -> PathBuf {
    PathBuf::from(CORPUS).join(entry["file"].as_str().expect("file"))
}

// ----------------------------------------------------------------------------------------------
// Mounting in process

/// One archive served by the core: `root` is the inode of `_archives/<name>`.
pub struct Mounted {
    pub fs: MedFs,
    pub root: Ino,
}

/// Mounts `entry`'s archive as the daemon does, without a kernel: the pool detects and lists
/// it, the tree builder makes its raw view, `MedFs` serves both. `Err` is the pool's refusal
/// (what the daemon prints before exiting).
pub fn mount(entry: &Value, keep_outside_symlinks: bool) -> Result<Mounted, String> {
    let path = archive_path(entry);
    let name = path.file_name().expect("file name").to_string_lossy().into_owned();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(build(&path, name, keep_outside_symlinks));
    });
    rx.recv_timeout(MOUNT_TIMEOUT).map_err(|_| format!("mounting did not finish in {MOUNT_TIMEOUT:?} (hang?)"))?
}

fn build(path: &std::path::Path, name: String, keep_outside_symlinks: bool) -> Result<Mounted, String> {
    let src: Arc<dyn ByteSource> = Arc::new(FileSource::open(path).map_err(|e| format!("open: {e}"))?);
    let pool = Pool::from_sources(vec![(name.clone(), src)], 64 << 20, false).map_err(|e| e.to_string())?;
    // The raw view exactly as the core's builder makes it with datasets off.
    let reader = Reader::new(pool);
    let newest = reader.pool().archives.iter().map(|a| a.mtime).max().unwrap_or(0);
    let mut builder = TreeBuilder::new(newest, TreeOptions { keep_outside_symlinks, datasets: false, derived: false });
    builder.archives_dir(newest);
    for (i, archive) in reader.pool().archives.iter().enumerate() {
        builder.add_archive(i as u32, archive);
    }
    let fs = MedFs::from_parts(builder.finish(), reader);
    let root = fs.resolve(format!("_archives/{name}").as_bytes()).map_err(|e| format!("_archives/{name}: {e}"))?;
    Ok(Mounted { fs, root })
}

/// What the walk saw at one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    Dir,
    File { ino: Ino, size: u64 },
    Symlink(Vec<u8>),
}

impl Seen {
    pub fn kind(&self) -> &'static str {
        match self {
            Seen::Dir => "dir",
            Seen::File { .. } => "file",
            Seen::Symlink(_) => "symlink",
        }
    }
}

/// Every path below the archive's root (root excluded), as `check.py`'s `scan` sees a mount:
/// `readdir` of each folder, each name looked up again (it must give the same inode and
/// attributes), links read with `readlink`.
pub fn scan(m: &Mounted) -> Result<BTreeMap<Vec<u8>, Seen>, String> {
    let fs = &m.fs;
    let mut out = BTreeMap::new();
    let mut stack = vec![(Vec::new(), m.root)];
    while let Some((rel, dir)) = stack.pop() {
        let mut entries = Vec::new();
        fs.readdir(dir, 0, |e| {
            entries.push((e.name.to_vec(), e.attr));
            false
        })
        .map_err(|e| format!("readdir {}: {e}", String::from_utf8_lossy(&rel)))?;
        for (name, attr) in entries.into_iter().filter(|(n, _)| n != b"." && n != b"..") {
            let p = if rel.is_empty() { name.clone() } else { [&rel[..], b"/", &name].concat() };
            let label = String::from_utf8_lossy(&p).into_owned();
            let looked = fs.lookup(dir, &name).map_err(|e| format!("lookup {label}: {e}"))?;
            if (looked.ino, looked.kind, looked.size) != (attr.ino, attr.kind, attr.size) {
                return Err(format!("{label}: lookup and readdir disagree"));
            }
            let seen = match attr.kind {
                FileKind::Dir => {
                    stack.push((p.clone(), attr.ino));
                    Seen::Dir
                }
                FileKind::File => Seen::File { ino: attr.ino, size: attr.size },
                FileKind::Symlink => {
                    Seen::Symlink(fs.readlink(attr.ino).map_err(|e| format!("readlink {label}: {e}"))?.to_vec())
                }
            };
            out.insert(p, seen);
        }
    }
    Ok(out)
}

/// `len` bytes at `off` of file `ino`, in kernel-sized requests.
pub fn read_range(fs: &MedFs, ino: Ino, off: u64, len: u64) -> Result<Vec<u8>, FsError> {
    let mut data = Vec::new();
    let mut buf = Vec::new();
    while (data.len() as u64) < len {
        let want = (len - data.len() as u64).min(READ_CHUNK as u64) as usize;
        fs.read(ino, off + data.len() as u64, want, &mut buf)?;
        if buf.is_empty() {
            break;
        }
        data.extend_from_slice(&buf);
    }
    Ok(data)
}

/// Reads a whole file front to back as `check.py` does: (bytes read, sha256 hex).
pub fn hash_file(fs: &MedFs, ino: Ino) -> Result<(u64, String), FsError> {
    let mut h = Sha256::new();
    let mut n = 0u64;
    let mut buf = Vec::new();
    loop {
        fs.read(ino, n, READ_CHUNK, &mut buf)?;
        if buf.is_empty() {
            break;
        }
        n += buf.len() as u64;
        h.update(&buf);
    }
    Ok((n, hex(&h.finalize())))
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

// ----------------------------------------------------------------------------------------------
// Judging, by check.py's rules

fn bytes_field(m: &Value, text: &str, hex_key: &str) -> Option<Vec<u8>> {
    if let Some(h) = m[hex_key].as_str().filter(|h| !h.is_empty()) {
        return Some((0..h.len()).step_by(2).map(|i| u8::from_str_radix(&h[i..i + 2], 16).expect("hex")).collect());
    }
    m[text].as_str().map(|s| s.as_bytes().to_vec())
}

pub fn member_path(m: &Value) -> Vec<u8> {
    bytes_field(m, "path", "path_hex").expect("member path")
}

fn flag(m: &Value, key: &str) -> bool {
    m[key].as_bool().unwrap_or(false)
}

/// `check.py`'s `evaluate`: (passes, failures) of the walked tree against `members`.
pub fn evaluate(fs: &MedFs, actual: &BTreeMap<Vec<u8>, Seen>, members: &[Value]) -> (usize, Vec<String>) {
    let mut passes = 0;
    let mut fails = Vec::new();
    let expected: BTreeMap<Vec<u8>, &Value> = members.iter().map(|m| (member_path(m), m)).collect();
    for (p, m) in &expected {
        let label = String::from_utf8_lossy(p);
        let want = match m["type"].as_str().expect("type") {
            "hardlink" => "file",
            other => other,
        };
        let Some(seen) = actual.get(p) else {
            if flag(m, "optional") {
                passes += 1;
            } else {
                fails.push(format!("{label}: missing (expected {want})"));
            }
            continue;
        };
        if seen.kind() != want {
            if flag(m, "any_type") {
                passes += 1;
            } else {
                fails.push(format!("{label}: type {}, expected {want}", seen.kind()));
            }
            continue;
        }
        match seen {
            Seen::Dir => passes += 1,
            Seen::Symlink(t) => match bytes_field(m, "target", "target_hex") {
                Some(exp) if &exp != t => fails.push(format!(
                    "{label}: symlink target {:?}, expected {:?}",
                    String::from_utf8_lossy(t),
                    String::from_utf8_lossy(&exp)
                )),
                _ => passes += 1,
            },
            Seen::File { ino, size } => match check_file(fs, *ino, *size, m) {
                Ok(()) => passes += 1,
                Err(e) => fails.push(format!("{label}: {e}")),
            },
        }
    }
    for p in actual.keys().filter(|p| !expected.contains_key(*p)) {
        fails.push(format!("{}: unexpected entry in mount", String::from_utf8_lossy(p)));
    }
    (passes, fails)
}

fn check_file(fs: &MedFs, ino: Ino, got_size: u64, m: &Value) -> Result<(), String> {
    if flag(m, "expect_read_error") || flag(m, "expect_read_error_or_any") {
        return match hash_file(fs, ino) {
            Err(_) => Ok(()),
            Ok(_) if flag(m, "expect_read_error_or_any") => Ok(()),
            Ok(_) => Err("read succeeded, but this entry is corrupt and must fail with an I/O error".into()),
        };
    }
    let size = m["size"].as_u64();
    if let Some(size) = size
        && got_size != size
    {
        return Err(format!("size {got_size}, expected {size}"));
    }
    if let (Some(size), Some(probes)) = (size, m["probes"].as_array())
        && size > MAX_HASH_BYTES
    {
        for p in probes {
            let (off, len) = (p["offset"].as_u64().expect("offset"), p["length"].as_u64().expect("length"));
            let b = read_range(fs, ino, off, len).map_err(|e| format!("read failed at probe {off}: {e}"))?;
            if hex(&Sha256::digest(&b)) != p["sha256"].as_str().expect("probe sha256") {
                return Err(format!("content differs at probe offset {off}"));
            }
        }
        return Ok(());
    }
    let Some(want) = m["sha256"].as_str() else { return Ok(()) };
    let (n, sha) = hash_file(fs, ino).map_err(|e| format!("read failed: {e}"))?;
    // Beyond check.py: the bytes served must also add up to the size `getattr` showed.
    if size.is_some_and(|s| s != n) || n != got_size {
        Err(format!("read {n} bytes, stat size {got_size}, manifest size {size:?}"))
    } else if sha != want {
        Err(format!("sha256 {sha}, expected {want}"))
    } else {
        Ok(())
    }
}

/// What `check.py` concludes for one archive.
pub struct Verdict {
    pub pass: bool,
    /// The reading that matched best and its failures, for the log and for deviations.
    pub label: String,
    pub fails: Vec<String>,
    pub detail: String,
}

/// Judges one archive as `check.py` does: a refusal passes only for invalid (or
/// reject-tolerated) archives; a mounted archive is compared with the manifest, its
/// alternatives, or for an invalid one its tolerated / lenient readings, the best one counting.
pub fn judge(entry: &Value, mounted: &Result<Mounted, String>) -> Verdict {
    let expect = entry["expect"].as_str().expect("expect");
    let acceptable: Vec<&str> =
        entry["also_acceptable"].as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
    let verdict = |pass: bool, detail: String| Verdict { pass, label: String::new(), fails: Vec::new(), detail };
    let m = match mounted {
        Err(e) => return verdict(expect == "invalid" || acceptable.contains(&"reject"), format!("refused: {e}")),
        Ok(m) => m,
    };
    let actual = match scan(m) {
        Ok(a) => a,
        Err(e) => return verdict(false, format!("walk failed: {e}")),
    };
    let members = |key: &str| entry[key].as_array().cloned().unwrap_or_default();
    let mut readings: Vec<(String, Vec<Value>)> = Vec::new();
    if expect == "invalid" {
        let tolerated = members("tolerated_members");
        if actual.is_empty() {
            let pass = acceptable.contains(&"empty") || !tolerated.is_empty();
            return verdict(pass, "mounted empty".into());
        }
        if !tolerated.is_empty() {
            readings.push(("tolerated".into(), tolerated));
        }
        if acceptable.contains(&"mount-as-listed") {
            readings.push(("lenient".into(), members("lenient_members")));
        }
        if readings.is_empty() {
            return verdict(false, format!("invalid archive mounted with {} entries", actual.len()));
        }
    } else {
        readings.push(("manifest".into(), members("members")));
        for alt in entry["alternatives"].as_array().into_iter().flatten() {
            readings.push((
                alt["label"].as_str().unwrap_or("alternative").into(),
                alt["members"].as_array().cloned().unwrap_or_default(),
            ));
        }
    }
    let (label, passes, fails) = readings
        .into_iter()
        .map(|(label, ms)| {
            let (p, f) = evaluate(&m.fs, &actual, &ms);
            (label, p, f)
        })
        .min_by_key(|(_, p, f)| (f.len(), usize::MAX - p))
        .expect("at least one reading");
    let detail = format!(
        "{label}: {passes} ok, {} failed ({} entries){}",
        fails.len(),
        actual.len(),
        fails.iter().map(|f| format!("\n      {f}")).collect::<String>()
    );
    Verdict { pass: fails.is_empty(), label, fails, detail }
}

/// For an archive with duplicate paths, whether the product's documented behaviour explains
/// every failure: each one is about a duplicated name (an extra `name~N`, or the plain name
/// holding the first entry), and the last `name~N` holds exactly what the manifest expects at
/// the plain name (the last entry, as `tar -x` leaves it). `exists(path)` says whether a path is
/// shown; `contents(path)` gives a shown file's size and SHA-256. The one rule of both tiers:
/// this one over `MedFs`, `conformance_mount.rs` over a FUSE mount.
pub fn duplicates_explain_by(
    entry: &Value,
    fails: &[&str],
    exists: impl Fn(&str) -> bool,
    contents: impl Fn(&str) -> Option<(u64, String)>,
) -> bool {
    let duplicated = |p: &str| exists(&format!("{p}~2"));
    let explained = fails.iter().all(|f| {
        let path = f.split(':').next().unwrap_or("");
        match path.rsplit_once('~') {
            Some((base, n)) if n.parse::<u32>().is_ok() && f.contains("unexpected entry") => duplicated(base),
            _ => duplicated(path),
        }
    });
    if !explained || fails.is_empty() {
        return false;
    }
    let members = entry["members"].as_array().map(Vec::as_slice).unwrap_or_default();
    members.iter().filter(|e| e["type"] == "file").filter(|e| duplicated(e["path"].as_str().unwrap_or(""))).all(|e| {
        let path = e["path"].as_str().expect("path");
        let last = (2..).map(|n| format!("{path}~{n}")).take_while(|p| exists(p)).last();
        let Some((n, sha)) = last.and_then(|p| contents(&p)) else { return false };
        Some(n) == e["size"].as_u64() && e["sha256"].as_str().is_none_or(|want| want == sha)
    })
}

/// [`duplicates_explain_by`] over an archive mounted in process.
pub fn duplicates_explain(m: &Mounted, entry: &Value, fails: &[String]) -> bool {
    let Ok(actual) = scan(m) else { return false };
    let fails: Vec<&str> = fails.iter().map(String::as_str).collect();
    duplicates_explain_by(
        entry,
        &fails,
        |p| actual.contains_key(p.as_bytes()),
        |p| match actual.get(p.as_bytes()) {
            Some(Seen::File { ino, .. }) => hash_file(&m.fs, *ino).ok(),
            _ => None,
        },
    )
}

/// Runs the corpus of `format` through the core and asserts the outcome: every archive passes
/// `check.py`'s rules, except those in `deviations`, whose failures must all be explained by
/// duplicates shown as `name~N` (and which must still fail that way: a fixed one is reported).
pub fn run_corpus(format: &str, deviations: &[(&str, &str)]) {
    let entries = corpus(format);
    assert!(!entries.is_empty(), "no {format} archives in {CORPUS}");
    let (mut passed, mut deviating) = (0, 0);
    let mut unexpected = Vec::new();
    let mut stale = Vec::new();
    for entry in &entries {
        let file = entry["file"].as_str().expect("file");
        let expect = entry["expect"].as_str().expect("expect");
        // Outside symlinks shown, as conformance_mount.rs mounts with --keep-outside-symlinks:
        // the manifest lists them.
        let mounted = mount(entry, true);
        let verdict = judge(entry, &mounted);
        let deviation = deviations.iter().find(|(f, _)| *f == file);
        let explained = deviation.is_some()
            && !verdict.pass
            && verdict.label == "manifest"
            && mounted.as_ref().is_ok_and(|m| duplicates_explain(m, entry, &verdict.fails));
        let status = match (verdict.pass, deviation, explained) {
            (true, None, _) => {
                passed += 1;
                "PASS"
            }
            (true, Some(_), _) => {
                stale.push(file.to_string());
                "PASS (listed as a deviation: remove it)"
            }
            (false, Some(_), true) => {
                deviating += 1;
                "DEVIATION (name~N, checked)"
            }
            (false, _, _) => {
                unexpected.push(file.to_string());
                "FAIL"
            }
        };
        println!("{status} {file} [{expect}] {}", verdict.detail);
    }
    println!(
        "{format} conformance in process: {passed} passed, {deviating} show duplicates as name~N (checked), {} failed",
        unexpected.len()
    );
    assert!(unexpected.is_empty(), "archives failing conformance: {unexpected:?}");
    assert!(stale.is_empty(), "known deviations that now pass (remove them): {stale:?}");
}

/// With default options, the core hides exactly the symlinks that may leave the archive: the
/// default tree is the `--keep-outside-symlinks` tree minus some symlinks, each of which has an
/// absolute target or climbs with `..`. Returns how many were hidden, for the caller to check
/// that the corpus exercised it.
pub fn check_outside_symlinks_hidden(format: &str) -> usize {
    let mut hidden = 0;
    for entry in corpus(format) {
        let file = entry["file"].as_str().expect("file");
        let (Ok(shown), Ok(default)) = (mount(&entry, true), mount(&entry, false)) else { continue };
        let (Ok(shown), Ok(default)) = (scan(&shown), scan(&default)) else { continue };
        // Inode numbers differ (hidden links take none); what is shown must not.
        let same = |a: &Seen, b: &Seen| match (a, b) {
            (Seen::File { size: x, .. }, Seen::File { size: y, .. }) => x == y,
            _ => a == b,
        };
        for (p, seen) in &default {
            let with_keep = shown.get(p);
            assert!(
                with_keep.is_some_and(|s| same(s, seen)),
                "{file}: {} differs with --keep-outside-symlinks",
                show(p)
            );
        }
        for (p, seen) in shown.iter().filter(|(p, _)| !default.contains_key(*p)) {
            let Seen::Symlink(target) = seen else {
                panic!("{file}: {} ({}) is hidden by default, but only symlinks may be", show(p), seen.kind())
            };
            let may_leave = target.first() == Some(&b'/') || target.split(|&b| b == b'/').any(|c| c == b"..");
            assert!(may_leave, "{file}: symlink {} -> {} hidden although it stays inside", show(p), show(target));
            hidden += 1;
        }
        for (p, seen) in &default {
            if let Seen::Symlink(target) = seen {
                assert!(target.first() != Some(&b'/'), "{file}: {} -> {} shown by default", show(p), show(target));
            }
        }
    }
    hidden
}

fn show(p: &[u8]) -> String {
    String::from_utf8_lossy(p).into_owned()
}
