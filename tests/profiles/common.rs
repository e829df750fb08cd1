//! Shared helpers for the organizer tests: an in-memory pool and lookups into a `Dataset`; the
//! image and volume files come from `medfs::fixtures`.
#![allow(dead_code)]

use std::collections::HashMap;

pub use medfs::fixtures::{gif, jpeg, nifti, tiff, volume_header};
use medfs::organize::{ContentSource, Dataset, PoolFile, organize};
use medfs::profile::{self, Profile};
use serde_json::Value;

/// An in-memory pool: files with their bytes, ids assigned per archive in insertion order.
#[derive(Default)]
pub struct MemPool {
    pub files: Vec<PoolFile>,
    bytes: HashMap<(u32, u32), Vec<u8>>,
    archives: Vec<String>,
    counts: Vec<u32>,
}

impl MemPool {
    pub fn new() -> MemPool {
        MemPool::default()
    }

    /// Adds `archive`:`path` with `bytes`.
    pub fn add(&mut self, archive: &str, path: &str, bytes: impl Into<Vec<u8>>) -> &mut Self {
        let a = match self.archives.iter().position(|x| x == archive) {
            Some(a) => a,
            None => {
                self.archives.push(archive.to_string());
                self.counts.push(0);
                self.archives.len() - 1
            }
        };
        let id = (a as u32, self.counts[a]);
        self.counts[a] += 1;
        let bytes = bytes.into();
        self.files.push(PoolFile {
            id,
            archive: archive.into(),
            path: path.into(),
            size: bytes.len() as u64,
            mtime: 0,
            dicom: None,
        });
        self.bytes.insert(id, bytes);
        self
    }

    /// Adds a file whose content does not matter (a few placeholder bytes).
    pub fn touch(&mut self, archive: &str, path: &str) -> &mut Self {
        self.add(archive, path, b"x".to_vec())
    }

    /// Runs the organizer with the built-in profiles.
    pub fn organize(&self) -> Vec<Dataset> {
        organize(&profile::builtin(), &self.files, self)
    }

    /// Runs the organizer with one built-in profile.
    pub fn organize_with(&self, slug: &str) -> Option<Dataset> {
        let p: Vec<Profile> = profile::builtin().into_iter().filter(|p| p.slug() == slug).collect();
        assert_eq!(p.len(), 1, "no built-in profile {slug}");
        organize(&p, &self.files, self).pop()
    }

    /// Runs the organizer with one built-in profile and its derived files on.
    pub fn organize_derived(&self, slug: &str) -> Option<Dataset> {
        let p: Vec<Profile> = profile::builtin().into_iter().filter(|p| p.slug() == slug).collect();
        assert_eq!(p.len(), 1, "no built-in profile {slug}");
        medfs::organize::organize_with(&p, &self.files, self, true).pop()
    }

    /// Id of a file.
    pub fn id(&self, archive: &str, path: &str) -> (u32, u32) {
        self.files.iter().find(|f| f.archive == archive && f.path == path).expect("file in pool").id
    }
}

impl ContentSource for MemPool {
    fn read_all(&self, id: (u32, u32)) -> std::io::Result<Vec<u8>> {
        self.bytes.get(&id).cloned().ok_or_else(|| std::io::Error::other("no such file"))
    }
}

/// Every path of the dataset tree (files and sidecars), sorted.
pub fn tree(ds: &Dataset) -> Vec<String> {
    let mut v: Vec<String> =
        ds.files.iter().map(|f| f.rel_path.clone()).chain(ds.generated.iter().map(|g| g.rel_path.clone())).collect();
    v.sort();
    v
}

/// A generated file's bytes.
pub fn bytes<'a>(ds: &'a Dataset, rel: &str) -> &'a [u8] {
    &ds.generated.iter().find(|g| g.rel_path == rel).unwrap_or_else(|| panic!("no generated {rel}")).bytes
}

/// A generated JSON file, parsed.
pub fn json(ds: &Dataset, rel: &str) -> Value {
    serde_json::from_slice(bytes(ds, rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// labels.csv as text.
pub fn labels_csv(ds: &Dataset) -> String {
    String::from_utf8(bytes(ds, "labels.csv").to_vec()).unwrap()
}

/// Checks the invariants every dataset must satisfy: sorted unique paths, every study dir has
/// labels.json + metadata.json with `split` and `source`, every patient dir has patient.json,
/// labels.csv has one row per file, and organizing twice gives identical bytes.
pub fn check_invariants(ds: &Dataset, again: &Dataset) {
    assert_eq!(ds, again, "organize is not deterministic");
    let t = tree(ds);
    let mut u = t.clone();
    u.dedup();
    assert_eq!(t, u, "duplicate paths");
    for f in &ds.files {
        // Volumetric datasets keep relative paths inside the study (`RAW/x.hdr`).
        let parts: Vec<&str> = f.rel_path.splitn(3, '/').collect();
        assert_eq!(parts.len(), 3, "{}", f.rel_path);
        let study = format!("{}/{}", parts[0], parts[1]);
        let meta = json(ds, &format!("{study}/metadata.json"));
        assert!(meta.get("split").is_some(), "{study}: no split");
        assert!(meta["source"].get(parts[2]).is_some(), "{study}: no source for {}", parts[2]);
        json(ds, &format!("{study}/labels.json"));
        json(ds, &format!("{}/patient.json", parts[0]));
    }
    let csv = labels_csv(ds);
    assert_eq!(csv.lines().count(), ds.files.len() + 1, "labels.csv rows");
    let mut rdr = csv::Reader::from_reader(csv.as_bytes());
    for r in rdr.records() {
        let r = r.unwrap();
        assert!(ds.files.iter().any(|f| f.rel_path == r[0]), "labels.csv path {} is not a file", &r[0]);
    }
    let dj = json(ds, "dataset.json");
    assert_eq!(dj["counts"]["files"], ds.files.len());
}

impl MemPool {
    /// Adds a DICOM file whose header (as the scanner would have read it) is `info`.
    pub fn add_dicom(&mut self, archive: &str, path: &str, info: medfs::dicom::DicomInfo) -> &mut Self {
        self.touch(archive, path);
        self.files.last_mut().unwrap().dicom = Some(std::sync::Arc::new(info));
        self
    }
}
