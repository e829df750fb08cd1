//! Conformance of the tar lister against the shared corpus (other projects' test archives).
//!
//! Every plain-tar archive of the manifest is listed with `tar::list`, turned into the tree the
//! mount would show, and compared with the manifest the way `check.py` compares a mount.
//! The helpers (`corpus`, `Tree`, `Content`, `evaluate`) know nothing about tar, so other
//! formats can reuse them; the test functions at the bottom hold the assertions.

// Scratch crate paths; in medfs this is `use medfs::archive::...`.
use medfs::archive::{ByteSource, DataLoc, FileSource, Listing, MemberKind, path, tar as tar_format};

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;
use sha2::{Digest, Sha256};

/// Where the corpus lives. In medfs: `concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/conformance")`.
const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/conformance");

/// Archives allowed to fail, each with the reason. Keep it empty if at all possible.
const KNOWN_DEVIATIONS: &[(&str, &str)] = &[];

/// Files larger than this are checked by size and the manifest's probes (as `check.py` does for
/// files with probes); the manifest has probes for every file over 64 MiB.
const MAX_HASH_BYTES: u64 = 64 << 20;

/// A lister that takes longer than this is treated as hung.
const LIST_TIMEOUT: Duration = Duration::from_secs(60);

// ----------------------------------------------------------------------------------------------
// Corpus access

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
// The tree a mount would show

/// Where a file's bytes are.
#[derive(Debug, Clone)]
pub struct Content {
    pub size: u64,
    pub data: DataLoc,
}

#[derive(Debug, Clone)]
pub enum Node {
    Dir,
    File(Content),
    Symlink(Vec<u8>),
}

/// Normalized path -> node, root excluded.
pub type Tree = BTreeMap<Vec<u8>, Node>;

/// Builds the raw tree as the mount does: names normalized, last entry wins, parents implied.
pub fn build_tree(listing: &Listing) -> Tree {
    let mut tree = Tree::new();
    for m in &listing.members {
        let Some(clean) = path::normalize(&m.path) else { continue }; // the root itself
        let comps = &clean.components;
        for i in 1..comps.len() {
            let parent = path::join(&comps[..i]);
            if !matches!(tree.get(&parent), Some(Node::Dir)) {
                // A file that a later entry needs as a directory is replaced (last wins).
                tree.insert(parent, Node::Dir);
            }
        }
        let key = path::join(comps);
        let node = match &m.kind {
            MemberKind::Dir => Node::Dir,
            MemberKind::Symlink { target } => Node::Symlink(target.clone()),
            MemberKind::File => Node::File(Content { size: m.size, data: m.data.clone() }),
        };
        if matches!(tree.get(&key), Some(Node::Dir)) && !matches!(node, Node::Dir) {
            let mut prefix = key.clone();
            prefix.push(b'/');
            tree.retain(|k, _| !k.starts_with(&prefix));
        }
        tree.insert(key, node);
    }
    tree
}

/// Reads `len` bytes at logical offset `off` of a file, the way the shared reader will.
pub fn read_range(src: &dyn ByteSource, c: &Content, off: u64, len: u64) -> io::Result<Vec<u8>> {
    let len = len.min(c.size.saturating_sub(off));
    let mut buf = vec![0u8; len as usize];
    match &c.data {
        DataLoc::None if c.size == 0 => {}
        DataLoc::Raw { offset } => src.read_exact_at(offset + off, &mut buf)?,
        DataLoc::Sparse { extents } => {
            let end = off + len;
            for e in extents.iter().filter(|e| e.logical < end && e.logical + e.len > off) {
                let from = e.logical.max(off);
                let to = (e.logical + e.len).min(end);
                let dst = &mut buf[(from - off) as usize..(to - off) as usize];
                src.read_exact_at(e.offset + (from - e.logical), dst)?;
            }
        }
        other => return Err(io::Error::other(format!("unreadable: {other:?}"))),
    }
    Ok(buf)
}

/// Reads a whole file: (bytes read, sha256 hex).
pub fn hash_content(src: &dyn ByteSource, c: &Content) -> io::Result<(u64, String)> {
    let mut h = Sha256::new();
    let mut off = 0;
    loop {
        let chunk = read_range(src, c, off, 1 << 20)?;
        if chunk.is_empty() {
            break;
        }
        off += chunk.len() as u64;
        h.update(&chunk);
    }
    if let DataLoc::None = c.data
        && c.size > 0
    {
        return Err(io::Error::other("no data for a non-empty file"));
    }
    Ok((off, hex(&h.finalize())))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

// ----------------------------------------------------------------------------------------------
// Comparison with the manifest (mirrors check.py's `evaluate`)

fn bytes_field(m: &Value, text: &str, hex_key: &str) -> Option<Vec<u8>> {
    if let Some(h) = m[hex_key].as_str().filter(|h| !h.is_empty()) {
        return Some((0..h.len()).step_by(2).map(|i| u8::from_str_radix(&h[i..i + 2], 16).expect("hex")).collect());
    }
    m[text].as_str().map(|s| s.as_bytes().to_vec())
}

fn flag(m: &Value, key: &str) -> bool {
    m[key].as_bool().unwrap_or(false)
}

/// Returns (passes, failures) of `tree` against the expected `members`.
pub fn evaluate(tree: &Tree, src: &dyn ByteSource, members: &[Value]) -> (usize, Vec<String>) {
    let mut passes = 0;
    let mut fails = Vec::new();
    let mut expected = BTreeMap::new();
    for m in members {
        expected.insert(bytes_field(m, "path", "path_hex").expect("member path"), m);
    }
    for (p, m) in &expected {
        let label = String::from_utf8_lossy(p);
        let want = match m["type"].as_str().expect("type") {
            "file" | "hardlink" => "file",
            other => other,
        };
        let Some(node) = tree.get(p) else {
            if flag(m, "optional") {
                passes += 1;
            } else {
                fails.push(format!("{label}: missing (expected {want})"));
            }
            continue;
        };
        let got = match node {
            Node::Dir => "dir",
            Node::File(_) => "file",
            Node::Symlink(_) => "symlink",
        };
        if got != want {
            if flag(m, "any_type") {
                passes += 1;
            } else {
                fails.push(format!("{label}: type {got}, expected {want}"));
            }
            continue;
        }
        match node {
            Node::Dir => passes += 1,
            Node::Symlink(t) => match bytes_field(m, "target", "target_hex") {
                Some(exp) if &exp != t => fails.push(format!(
                    "{label}: symlink target {:?}, expected {:?}",
                    String::from_utf8_lossy(t),
                    String::from_utf8_lossy(&exp)
                )),
                _ => passes += 1,
            },
            Node::File(c) => match check_file(src, c, m) {
                Ok(()) => passes += 1,
                Err(e) => fails.push(format!("{label}: {e}")),
            },
        }
    }
    for p in tree.keys().filter(|p| !expected.contains_key(*p)) {
        fails.push(format!("{}: unexpected entry in mount", String::from_utf8_lossy(p)));
    }
    (passes, fails)
}

fn check_file(src: &dyn ByteSource, c: &Content, m: &Value) -> Result<(), String> {
    if flag(m, "expect_read_error") || flag(m, "expect_read_error_or_any") {
        return match hash_content(src, c) {
            Err(_) => Ok(()),
            Ok(_) if flag(m, "expect_read_error_or_any") => Ok(()),
            Ok(_) => Err("read succeeded, but this entry is corrupt and must fail with an I/O error".into()),
        };
    }
    let size = m["size"].as_u64();
    if let Some(size) = size
        && c.size != size
    {
        return Err(format!("size {}, expected {size}", c.size));
    }
    if let (Some(size), Some(probes)) = (size, m["probes"].as_array())
        && size > MAX_HASH_BYTES
    {
        for p in probes {
            let (off, len) = (p["offset"].as_u64().expect("offset"), p["length"].as_u64().expect("length"));
            let b = read_range(src, c, off, len).map_err(|e| format!("read failed at probe {off}: {e}"))?;
            if hex(&Sha256::digest(&b)) != p["sha256"].as_str().expect("probe sha256") {
                return Err(format!("content differs at probe offset {off}"));
            }
        }
        return Ok(());
    }
    let Some(want) = m["sha256"].as_str() else { return Ok(()) };
    let (n, sha) = hash_content(src, c).map_err(|e| format!("read failed: {e}"))?;
    if size.is_some_and(|s| s != n) {
        Err(format!("read {n} bytes, expected {size:?}"))
    } else if sha != want {
        Err(format!("sha256 {sha}, expected {want}"))
    } else {
        Ok(())
    }
}

/// What a harness would conclude for one archive, given the lister's result.
pub struct Verdict {
    pub pass: bool,
    pub detail: String,
}

/// Judges one archive per the README's valid/partial/invalid rules.
pub fn judge(entry: &Value, listed: Result<Listing, String>, src: &dyn ByteSource) -> Verdict {
    let expect = entry["expect"].as_str().expect("expect");
    let acceptable: Vec<&str> =
        entry["also_acceptable"].as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
    let listing = match listed {
        Err(e) => {
            let pass = expect == "invalid" || acceptable.contains(&"reject");
            return Verdict { pass, detail: format!("refused: {e}") };
        }
        Ok(l) => l,
    };
    let tree = build_tree(&listing);
    let note =
        format!("{} members, damaged={}, {} warnings", listing.members.len(), listing.damaged, listing.warnings.len());
    let members = |key: &str| entry[key].as_array().cloned().unwrap_or_default();
    let mut readings: Vec<(String, Vec<Value>)> = Vec::new();
    if expect == "invalid" {
        let tolerated = members("tolerated_members");
        if tree.is_empty() {
            let pass = acceptable.contains(&"empty") || !tolerated.is_empty();
            return Verdict { pass, detail: format!("mounted empty ({note})") };
        }
        if !tolerated.is_empty() {
            readings.push(("tolerated".into(), tolerated));
        }
        if acceptable.contains(&"mount-as-listed") {
            readings.push(("lenient".into(), members("lenient_members")));
        }
        if readings.is_empty() {
            return Verdict {
                pass: false,
                detail: format!("invalid archive mounted with {} entries ({note})", tree.len()),
            };
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
    let results: Vec<(String, usize, Vec<String>)> = readings
        .into_iter()
        .map(|(label, ms)| {
            let (p, f) = evaluate(&tree, src, &ms);
            (label, p, f)
        })
        .collect();
    let (label, passes, fails) =
        results.into_iter().min_by_key(|(_, p, f)| (f.len(), usize::MAX - p)).expect("at least one reading");
    Verdict {
        pass: fails.is_empty(),
        detail: format!(
            "{label}: {passes} ok, {} failed ({note}){}",
            fails.len(),
            fails.iter().map(|f| format!("\n      {f}")).collect::<String>()
        ),
    }
}

/// A reader that returns at most a few bytes per call, to prove the lister copes with short
/// reads (decompressors return whatever they have).
struct Dribble<R>(R, usize);

impl<R: Read> Read for Dribble<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.1 = self.1 % 13 + 1;
        let n = buf.len().min(self.1 * 97);
        self.0.read(&mut buf[..n])
    }
}

/// Lists `entry`'s archive on a worker thread so a hang is reported instead of hanging the test.
fn list_with_timeout(entry: &Value, dribble: bool) -> Result<Result<Listing, String>, String> {
    let path = archive_path(entry);
    let name = entry["file"].as_str().expect("file").to_string();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).expect("open archive");
        let r = if dribble {
            tar_format::list(&mut Dribble(io::BufReader::with_capacity(64, file), 0), &name)
        } else {
            tar_format::list(&mut { file }, &name)
        };
        let _ = tx.send(r.map_err(|e| e.to_string()));
    });
    rx.recv_timeout(LIST_TIMEOUT).map_err(|_| format!("lister did not finish in {LIST_TIMEOUT:?} (hang?)"))
}

fn summary(l: &Result<Listing, String>) -> String {
    match l {
        Err(e) => format!("Err({e})"),
        Ok(l) => format!("{:?} {:?} {}", l.members, l.warnings, l.damaged),
    }
}

// ----------------------------------------------------------------------------------------------
// Assertions

#[test]
fn tar_conformance() {
    let entries = corpus("tar");
    assert!(entries.len() > 50, "corpus not found at {CORPUS}");
    let (mut passed, mut failed) = (0, Vec::new());
    for entry in &entries {
        let file = entry["file"].as_str().expect("file");
        let expect = entry["expect"].as_str().expect("expect");
        let verdict = match (list_with_timeout(entry, false), list_with_timeout(entry, true)) {
            (Ok(listed), Ok(dribbled)) if summary(&listed) != summary(&dribbled) => {
                Verdict { pass: false, detail: "listing differs when the input arrives in short reads".into() }
            }
            (Ok(listed), Ok(_)) => {
                let src = FileSource::open(&archive_path(entry)).expect("open archive");
                judge(entry, listed, &src)
            }
            (Err(e), _) | (_, Err(e)) => Verdict { pass: false, detail: e },
        };
        println!("{} {file} [{expect}] {}", if verdict.pass { "PASS" } else { "FAIL" }, verdict.detail);
        if verdict.pass {
            passed += 1;
        } else {
            failed.push(file.to_string());
        }
    }
    println!("tar conformance: {passed} passed, {} failed", failed.len());
    let unexpected: Vec<&String> = failed.iter().filter(|f| !KNOWN_DEVIATIONS.iter().any(|(k, _)| k == f)).collect();
    assert!(unexpected.is_empty(), "archives failing conformance: {unexpected:?}");
    let stale: Vec<&str> =
        KNOWN_DEVIATIONS.iter().map(|(k, _)| *k).filter(|k| !failed.iter().any(|f| f == k)).collect();
    assert!(stale.is_empty(), "known deviations that now pass (remove them): {stale:?}");
}

#[test]
fn detection_accepts_every_listable_corpus_tar() {
    // Every archive that lists with members must also be recognised by content.
    for entry in corpus("tar") {
        let bytes = std::fs::read(archive_path(&entry)).expect("read archive");
        let listed = tar_format::list(&mut &bytes[..], "x");
        if let Ok(l) = listed
            && !l.members.is_empty()
        {
            assert!(tar_format::looks_like_tar(&bytes), "{} lists but is not detected", entry["file"]);
        }
    }
}
