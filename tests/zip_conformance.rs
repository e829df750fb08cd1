//! Zip conformance: every `format == "zip"` archive of the shared corpus is listed with
//! `archive::zip::list`, turned into the tree the mount shows (paths normalized, last duplicate
//! wins, implicit parents), and compared with the manifest by the rules of the corpus README /
//! check.py: types, sizes, symlink targets, SHA-256 of content read through `open_member`, read
//! errors where `expect_read_error` says so; `optional`, `any_type`, `alternatives`,
//! `also_acceptable`, `tolerated_members` and `lenient_members` as documented there.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use medfs::archive::{ByteSource, DataLoc, FileSource, Member, MemberKind, path, zip};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The corpus (README.md, manifest.json, check.py), copied into the repository.
const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/conformance");

/// Archives allowed to fail, each with the reason. Keep empty unless a deviation is deliberate.
const KNOWN_DEVIATIONS: &[(&str, &str)] = &[];

/// One node of the mounted tree.
#[derive(Clone)]
enum Node {
    Dir,
    File(Member),
    Symlink(Vec<u8>),
}

/// Builds the tree the mount will show: normalized paths, the last entry for a path wins, every
/// parent exists (implicit directories), and a non-directory hides whatever was below it.
fn build_tree(members: &[Member]) -> BTreeMap<Vec<u8>, Node> {
    let mut tree: BTreeMap<Vec<u8>, Node> = BTreeMap::new();
    for m in members {
        let Some(clean) = path::normalize(&m.path) else {
            continue;
        };
        for i in 1..clean.components.len() {
            let parent = path::join(&clean.components[..i]);
            if !matches!(tree.get(&parent), Some(Node::Dir)) {
                tree.insert(parent, Node::Dir);
            }
        }
        let p = path::join(&clean.components);
        let node = match &m.kind {
            MemberKind::Dir => Node::Dir,
            MemberKind::File => Node::File(m.clone()),
            MemberKind::Symlink { target } => Node::Symlink(target.clone()),
        };
        if !matches!(node, Node::Dir) {
            let mut prefix = p.clone();
            prefix.push(b'/');
            let below: Vec<_> = tree
                .range(prefix.clone()..)
                .take_while(|(k, _)| k.starts_with(&prefix))
                .map(|(k, _)| k.clone())
                .collect();
            for k in below {
                tree.remove(&k);
            }
        }
        tree.insert(p, node);
    }
    tree
}

fn read_all(src: &Arc<dyn ByteSource>, m: &Member) -> std::io::Result<Vec<u8>> {
    match &m.data {
        DataLoc::None => Ok(Vec::new()),
        DataLoc::Zip(zd) => {
            let mut v = Vec::new();
            zip::open_member(src.clone(), zd, m.size)?.read_to_end(&mut v)?;
            // Stored members can also be served by positioned reads: check that path agrees.
            if zd.method == 0 {
                let off = zip::stored_data_offset(&**src, zd)?;
                let mut raw = vec![0u8; v.len()];
                src.read_exact_at(off, &mut raw)?;
                assert_eq!(raw, v, "stored_data_offset disagrees with open_member");
            }
            Ok(v)
        }
        DataLoc::Bad { reason } => Err(std::io::Error::other(reason.clone())),
        other => Err(std::io::Error::other(format!("unexpected data location {other:?}"))),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn member_path(m: &Value) -> Vec<u8> {
    match m.get("path_hex").and_then(Value::as_str) {
        Some(h) => unhex(h),
        None => m["path"].as_str().unwrap().as_bytes().to_vec(),
    }
}

fn member_target(m: &Value) -> Option<Vec<u8>> {
    if let Some(h) = m.get("target_hex").and_then(Value::as_str) {
        return Some(unhex(h));
    }
    m.get("target").and_then(Value::as_str).map(|t| t.as_bytes().to_vec())
}

fn flag(m: &Value, k: &str) -> bool {
    m.get(k).and_then(Value::as_bool).unwrap_or(false)
}

/// check.py's `evaluate`: the failures of `tree` against one expected member list.
fn evaluate(src: &Arc<dyn ByteSource>, tree: &BTreeMap<Vec<u8>, Node>, members: &[Value]) -> Vec<String> {
    let mut fails = Vec::new();
    let mut expected = BTreeMap::new();
    for m in members {
        expected.insert(member_path(m), m);
    }
    for (p, m) in &expected {
        let label = String::from_utf8_lossy(p);
        let want = match m["type"].as_str().unwrap() {
            "hardlink" => "file",
            t => t,
        };
        let Some(node) = tree.get(p) else {
            if !flag(m, "optional") {
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
            if !flag(m, "any_type") {
                fails.push(format!("{label}: type {got}, expected {want}"));
            }
            continue;
        }
        match node {
            Node::Dir => {}
            Node::Symlink(t) => {
                if let Some(exp) = member_target(m)
                    && *t != exp
                {
                    fails.push(format!(
                        "{label}: symlink target {:?}, expected {:?}",
                        String::from_utf8_lossy(t),
                        String::from_utf8_lossy(&exp)
                    ));
                }
            }
            Node::File(mem) => {
                let res = read_all(src, mem);
                if flag(m, "expect_read_error") || flag(m, "expect_read_error_or_any") {
                    if res.is_ok() && !flag(m, "expect_read_error_or_any") {
                        fails.push(format!("{label}: read succeeded, but this entry must fail with an I/O error"));
                    }
                    continue;
                }
                if let Some(size) = m.get("size").and_then(Value::as_u64)
                    && mem.size != size
                {
                    fails.push(format!("{label}: size {}, expected {size}", mem.size));
                    continue;
                }
                match res {
                    Err(e) => fails.push(format!("{label}: read failed: {e}")),
                    Ok(data) => {
                        if data.len() as u64 != mem.size {
                            fails.push(format!("{label}: read {} bytes, size {}", data.len(), mem.size));
                        } else if let Some(sha) = m.get("sha256").and_then(Value::as_str) {
                            let got = hex(&Sha256::digest(&data));
                            if got != sha {
                                fails.push(format!("{label}: sha256 {got}, expected {sha}"));
                            }
                        }
                    }
                }
            }
        }
    }
    for p in tree.keys() {
        if !expected.contains_key(p) {
            fails.push(format!("{}: unexpected entry", String::from_utf8_lossy(p)));
        }
    }
    fails
}

/// Checks one manifest entry; `Ok(summary)` on pass, `Err(failures)` otherwise.
fn check_archive(ent: &Value) -> Result<String, Vec<String>> {
    let file = ent["file"].as_str().unwrap();
    let expect = ent["expect"].as_str().unwrap();
    let acceptable: Vec<&str> = ent
        .get("also_acceptable")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let src: Arc<dyn ByteSource> = Arc::new(FileSource::open(&Path::new(CORPUS).join(file)).unwrap());
    let listing = match zip::list(&*src) {
        Err(e) => {
            return if expect == "invalid" || acceptable.contains(&"reject") {
                Ok(format!("refused ({e})"))
            } else {
                Err(vec![format!("list failed but the archive is {expect}: {e}")])
            };
        }
        Ok(l) => l,
    };
    let tree = build_tree(&listing.members);
    let note = format!(
        "{} members{}{}",
        listing.members.len(),
        if listing.damaged { ", damaged" } else { "" },
        if listing.warnings.is_empty() { String::new() } else { format!(", warnings: {:?}", listing.warnings) }
    );
    let arr = |k: &str| ent.get(k).and_then(Value::as_array).cloned().unwrap_or_default();
    let mut readings: Vec<(String, Vec<Value>)> = Vec::new();
    if expect == "invalid" {
        let tolerated = arr("tolerated_members");
        if tree.is_empty() {
            return if acceptable.contains(&"empty") || !tolerated.is_empty() {
                Ok(format!("mounted empty (tolerated); {note}"))
            } else {
                Err(vec![format!("invalid archive listed as an empty tree; {note}")])
            };
        }
        if !tolerated.is_empty() {
            readings.push(("tolerated".into(), tolerated));
        }
        if acceptable.contains(&"mount-as-listed") {
            readings.push(("lenient".into(), arr("lenient_members")));
        }
        if readings.is_empty() {
            return Err(vec![format!("invalid archive was listed with {} entries; {note}", tree.len())]);
        }
    } else {
        readings.push(("manifest".into(), arr("members")));
        for alt in arr("alternatives") {
            readings.push((alt["label"].as_str().unwrap().to_string(), alt["members"].as_array().unwrap().clone()));
        }
    }
    let mut best: Option<(String, Vec<String>)> = None;
    for (label, members) in readings {
        let fails = evaluate(&src, &tree, &members);
        if best.as_ref().is_none_or(|(_, f)| fails.len() < f.len()) {
            best = Some((label, fails));
        }
    }
    let (label, fails) = best.unwrap();
    if fails.is_empty() {
        Ok(if label == "manifest" { note } else { format!("matched \"{label}\"; {note}") })
    } else {
        Err(fails.into_iter().map(|f| format!("[{label}] {f}")).chain([note]).collect())
    }
}

#[test]
fn zip_conformance() {
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(Path::new(CORPUS).join("manifest.json")).expect("conformance corpus in tests/conformance"),
    )
    .unwrap();
    let (mut passed, mut failed, mut deviated) = (0, 0, 0);
    let mut unexpected = Vec::new();
    for ent in manifest["archives"].as_array().unwrap() {
        if ent["format"] != "zip" {
            continue;
        }
        let file = ent["file"].as_str().unwrap();
        let expect = ent["expect"].as_str().unwrap();
        let deviation = KNOWN_DEVIATIONS.iter().find(|(f, _)| *f == file);
        match (check_archive(ent), deviation) {
            (Ok(summary), None) => {
                passed += 1;
                println!("PASS {file} [{expect}]: {summary}");
            }
            (Ok(summary), Some(_)) => {
                passed += 1;
                println!("PASS {file} [{expect}] (listed as a known deviation; remove it): {summary}");
            }
            (Err(fails), Some((_, why))) => {
                deviated += 1;
                println!("DEVIATION {file} [{expect}]: {why}");
                for f in fails {
                    println!("    {f}");
                }
            }
            (Err(fails), None) => {
                failed += 1;
                println!("FAIL {file} [{expect}]");
                for f in &fails {
                    println!("    {f}");
                }
                unexpected.push(file.to_string());
            }
        }
    }
    println!("zip conformance: {passed} passed, {failed} failed, {deviated} known deviations");
    assert!(unexpected.is_empty(), "unexpected conformance failures: {unexpected:?}");
}
