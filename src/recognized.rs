//! What a mount recognized, said at every mount and `ls` (never silence): one line per dataset
//! (name, what recognized it, patients, studies, files) and one line for the pool files no
//! dataset took; with `-v`, per source the first such paths and the nearest profile's reason.
//! Built once with the tree and persisted with it (`treestore.rs`), so a warm mount says the same.

use std::collections::{BTreeMap, HashSet};

use crate::organize::{self, ContentSource, Dataset, PoolFile};
use crate::profile::Profile;

/// Paths shown per unclaimed source with `-v`.
const EXAMPLES: usize = 3;

/// The whole report.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Report {
    /// Datasets, in the order the tree shows them.
    pub datasets: Vec<Found>,
    /// Sources with files no dataset took, by source name.
    pub unclaimed: Vec<Unclaimed>,
}

/// One dataset.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Found {
    /// Folder name under the mountpoint.
    pub name: String,
    /// What recognized it: `profile mounts/mura.toml`, `DICOM tags`...
    pub by: String,
    /// Patient folders.
    pub patients: u64,
    /// Study folders.
    pub studies: u64,
    /// Study files (sidecars not counted).
    pub files: u64,
}

/// Files of one source that no dataset took.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Unclaimed {
    /// The source's name as under `_archives/` (a loose file's first path component).
    pub source: String,
    /// How many of its files.
    pub files: u64,
    /// Whether none of its files is in a dataset.
    pub whole: bool,
    /// The first few paths, sorted.
    pub examples: Vec<String>,
    /// The nearest profile and what it missed, or that no profile matches.
    pub reason: String,
}

impl Found {
    /// Counts a dataset's patients (first path component) and studies (first two).
    pub fn of(dataset: &Dataset, by: &str) -> Found {
        let mut patients: HashSet<&str> = HashSet::new();
        let mut studies: HashSet<(&str, &str)> = HashSet::new();
        for f in &dataset.files {
            let mut parts = f.rel_path.splitn(3, '/');
            let (Some(p), Some(s)) = (parts.next(), parts.next()) else { continue };
            patients.insert(p);
            studies.insert((p, s));
        }
        Found {
            name: dataset.slug.clone(),
            by: by.to_string(),
            patients: patients.len() as u64,
            studies: studies.len() as u64,
            files: dataset.files.len() as u64,
        }
    }
}

/// At most this many of a source's unclaimed files (in pool order) are tried against every
/// profile for the nearest one: enough to name it, and a million-member archive no profile
/// wants costs no more than a small one.
const SAMPLE: usize = 10_000;

/// The pool files that `taken` does not hold, per source, each with the reason of the profile
/// that came nearest to them ([`organize::near_miss`] on a sample: most files placed, then
/// matched, then tables). Holds indices, never copies of the pool.
pub fn unclaimed(
    pool: &[PoolFile],
    taken: &HashSet<(u32, u32)>,
    profiles: &[Profile],
    content: &(dyn ContentSource + Sync),
) -> Vec<Unclaimed> {
    let mut by_source: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    let mut claimed_sources: HashSet<&str> = HashSet::new();
    for (i, f) in pool.iter().enumerate() {
        if taken.contains(&f.id) {
            claimed_sources.insert(&f.archive);
        } else {
            by_source.entry(&f.archive).or_default().push(i);
        }
    }
    use rayon::prelude::*;
    let sources: Vec<(&str, Vec<usize>)> = by_source.into_iter().collect();
    sources
        .into_par_iter()
        .map(|(source, idx)| {
            // The first few paths in order, without sorting them all.
            let mut examples: Vec<&str> = Vec::with_capacity(EXAMPLES + 1);
            for &i in &idx {
                let p = pool[i].path.as_str();
                let at = examples.partition_point(|e| *e < p);
                if at < EXAMPLES {
                    examples.insert(at, p);
                    examples.truncate(EXAMPLES);
                }
            }
            let sample = &idx[..idx.len().min(SAMPLE)];
            let nearest = profiles
                .iter()
                .map(|p| (p, organize::near_miss(p, pool, sample, content)))
                .filter(|(_, m)| m.matched + m.tables > 0)
                .max_by_key(|(_, m)| (m.placed, m.matched, m.tables));
            let reason = match nearest {
                Some((p, m)) => format!("nearest profile {} ({}): {}", p.slug(), p.file(), m.reason),
                None => "no profile matches".to_string(),
            };
            Unclaimed {
                source: source.to_string(),
                files: idx.len() as u64,
                whole: !claimed_sources.contains(source),
                examples: examples.iter().map(|p| p.to_string()).collect(),
                reason,
            }
        })
        .collect()
}

impl Report {
    /// The lines every mount prints: one per dataset, one for what no dataset took.
    pub fn summary(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .datasets
            .iter()
            .map(|d| {
                format!(
                    "dataset {}: {} patients, {} studies, {} files (recognized by {})",
                    d.name, d.patients, d.studies, d.files, d.by
                )
            })
            .collect();
        if self.datasets.is_empty() {
            out.push("no dataset recognized".to_string());
        }
        if !self.unclaimed.is_empty() {
            let files: u64 = self.unclaimed.iter().map(|u| u.files).sum();
            let whole: Vec<&str> = self.unclaimed.iter().filter(|u| u.whole).map(|u| u.source.as_str()).collect();
            let mut line = format!(
                "not in any dataset: {files} files of {} source(s), shown under _archives/ only",
                self.unclaimed.len()
            );
            if !whole.is_empty() {
                let shown: Vec<&str> = whole.iter().take(EXAMPLES).copied().collect();
                let more = if whole.len() > EXAMPLES {
                    format!(" and {} more", whole.len() - EXAMPLES)
                } else {
                    String::new()
                };
                line.push_str(&format!("; no profile recognized {}{more}", shown.join(", ")));
            }
            line.push_str(" (-v says why)");
            out.push(line);
        }
        out
    }

    /// The lines `-v` adds: per source, its first unclaimed paths and the nearest profile's reason.
    pub fn details(&self) -> Vec<String> {
        self.unclaimed
            .iter()
            .map(|u| {
                let more = if u.files as usize > u.examples.len() { ", ..." } else { "" };
                format!(
                    "{}: {} file(s) not in any dataset ({}{more}): {}",
                    u.source,
                    u.files,
                    u.examples.join(", "),
                    u.reason
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::organize::DatasetFile;

    struct NoBytes;
    impl ContentSource for NoBytes {
        fn read_all(&self, _: (u32, u32)) -> std::io::Result<Vec<u8>> {
            Err(std::io::Error::other("none"))
        }
    }

    fn file(a: u32, m: u32, archive: &str, path: &str) -> PoolFile {
        PoolFile { id: (a, m), archive: archive.into(), path: path.into(), size: 1, mtime: 0, dicom: None }
    }

    #[test]
    fn counts_and_reasons() {
        let ds = Dataset {
            slug: "toy".into(),
            files: ["p1/s1/a.png", "p1/s1/b.png", "p1/s2/c.png", "p2/s1/d.png"]
                .iter()
                .enumerate()
                .map(|(i, r)| DatasetFile { rel_path: r.to_string(), source: (0, i as u32) })
                .collect(),
            generated: Vec::new(),
            derived: Vec::new(),
            warnings: Vec::new(),
        };
        let f = Found::of(&ds, "profile mounts/toy.toml");
        assert_eq!((f.patients, f.studies, f.files), (2, 3, 4));

        let toy = crate::profile::parse(
            "toy.toml",
            "title = \"Toy\"\n[recognize]\nmin_files = 3\n[[files]]\nrole = \"image\"\n\
             path = '(?:^|/)toy/(?P<p>[^/]+)\\.png$'\npatient = \"{p}\"\nstudy = \"{p}\"\n",
        )
        .unwrap();
        let pool = vec![
            file(0, 0, "toy.zip", "toy/a.png"),
            file(0, 1, "toy.zip", "toy/b.png"),
            file(1, 0, "readme.zip", "README.txt"),
            file(2, 0, "mixed.zip", "in.png"),
            file(2, 1, "mixed.zip", "notes.txt"),
        ];
        let taken: HashSet<(u32, u32)> = [(2, 0)].into_iter().collect();
        let u = unclaimed(&pool, &taken, &[toy], &NoBytes);
        let by: BTreeMap<&str, &Unclaimed> = u.iter().map(|u| (u.source.as_str(), u)).collect();
        assert_eq!(by.len(), 3, "{u:?}");
        assert!(by["toy.zip"].whole);
        assert_eq!(by["toy.zip"].examples, ["toy/a.png", "toy/b.png"]);
        assert!(
            by["toy.zip"].reason.contains("nearest profile toy")
                && by["toy.zip"].reason.contains("2 file(s) placed")
                && by["toy.zip"].reason.contains("min_files` = 3"),
            "{}",
            by["toy.zip"].reason
        );
        assert_eq!(by["readme.zip"].reason, "no profile matches");
        assert!(!by["mixed.zip"].whole);
        assert_eq!(by["mixed.zip"].files, 1);

        let r = Report { datasets: vec![f], unclaimed: u };
        let s = r.summary();
        assert_eq!(s[0], "dataset toy: 2 patients, 3 studies, 4 files (recognized by profile mounts/toy.toml)");
        assert!(s[1].starts_with("not in any dataset: 4 files of 3 source(s)"), "{}", s[1]);
        assert!(s[1].contains("no profile recognized readme.zip, toy.zip"), "{}", s[1]);
        let d = r.details();
        assert!(
            d.iter().any(|l| l.starts_with("readme.zip: 1 file(s) not in any dataset (README.txt): no profile")),
            "{d:?}"
        );
    }
}
