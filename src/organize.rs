//! The organizer: turns the pool's file list into `/<dataset>/<patient>/<study>/` trees with their
//! sidecars, following compiled [`crate::profile::Profile`]s. Pure: no FUSE, no archive parsing;
//! bytes of small files (label tables, DDSM text files, image headers) come through
//! [`ContentSource`].
//!
//! Per profile: one pass over the pool places study files (rule regexes tried through a
//! `RegexSet`, so a member costs one scan whatever the number of rules) and finds table files;
//! tables are read and indexed; files are grouped by (patient, study); then each study's
//! labels/metadata are evaluated and rendered. Everything is sorted before rendering, so the
//! output depends only on the pool's contents, not its order.
//!
//! A new dataset is a profile, not code here: the steps are in `mounts/README.md` ("Adding a
//! dataset").

pub(crate) mod eval;
pub(crate) mod sidecar;
pub(crate) mod table;
pub(crate) mod transform;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use crate::profile::Profile;
use crate::profile::pattern::{FILE_BUILTINS, SLOT_PATIENT, SLOT_STUDY};
use eval::{Env, Problems, StudyFile, StudyView};
use sidecar::LabelsCsv;

/// One file of the pool as the organizer sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolFile {
    /// Opaque id the lead uses to find the bytes (archive index, member index).
    pub id: (u32, u32),
    /// Name of the archive (or loose-file source) it comes from, as shown under `_archives/`,
    /// e.g. "MURA-v1.1.zip", "images_001.tar.gz", "Data_Entry_2017.csv" for a loose file,
    /// "sub/train.zip" for an archive found in a folder.
    pub archive: String,
    /// Normalized member path inside that archive ('/'-separated, no leading '/', no '..');
    /// for a loose file, its path relative to its source folder.
    pub path: String,
    /// Uncompressed size.
    pub size: u64,
    /// Modification time (seconds since the epoch).
    pub mtime: i64,
    /// The DICOM header, when the file is DICOM (read once per archive, kept in its index).
    pub dicom: Option<std::sync::Arc<crate::dicom::DicomInfo>>,
}

/// Reads a whole (small) pool file, e.g. a CSV; the lead implements it over the archive readers.
pub trait ContentSource {
    /// The file's bytes.
    fn read_all(&self, id: (u32, u32)) -> std::io::Result<Vec<u8>>;
    /// At least the first `len` bytes (all of them if the file is shorter). Used for image
    /// headers (`image_width`/`image_height` transforms); override it to avoid inflating whole
    /// images.
    fn read_head(&self, id: (u32, u32), len: usize) -> std::io::Result<Vec<u8>> {
        let _ = len;
        self.read_all(id)
    }
}

/// A recognized dataset and its tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dataset {
    /// Folder name under the mountpoint.
    pub slug: String,
    /// Study files, sorted by `rel_path`.
    pub files: Vec<DatasetFile>,
    /// Sidecars, sorted by `rel_path`.
    pub generated: Vec<GeneratedFile>,
    /// Derived files (`derive/`), sorted by `rel_path`.
    pub derived: Vec<DerivedFile>,
    /// Problems worth telling the user about (skipped files, unreadable tables, bad values).
    pub warnings: Vec<String>,
}

/// An image or per-image file placed in the dataset tree: `rel_path` is relative to the dataset
/// folder, e.g. "patient00001/XR_WRIST_study1_positive/image1.png".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetFile {
    /// Path below the dataset folder.
    pub rel_path: String,
    /// Pool id of the bytes.
    pub source: (u32, u32),
}

/// A derived file placed in the dataset tree: computed on demand from `spec`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DerivedFile {
    /// Path below the dataset folder.
    pub rel_path: String,
    /// What it is computed from.
    pub spec: crate::derive::Spec,
    /// Exact size.
    pub size: u64,
}

/// A sidecar: dataset.json, labels.csv, <patient>/patient.json, <patient>/<study>/labels.json,
/// .../metadata.json; `bytes` final content (deterministic).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedFile {
    /// Path below the dataset folder.
    pub rel_path: String,
    /// Content.
    pub bytes: Vec<u8>,
}

/// Recognizes datasets in the pool with the given profiles and builds their trees.
///
/// Profiles are independent: a pool may hold several datasets, and one pool file may belong to
/// more than one of them.
pub fn organize(profiles: &[Profile], pool: &[PoolFile], content: &(dyn ContentSource + Sync)) -> Vec<Dataset> {
    organize_with(profiles, pool, content, false)
}

/// [`organize`], with the derived files the profiles ask for (`derive = [...]`) when `derived`.
pub fn organize_with(
    profiles: &[Profile],
    pool: &[PoolFile],
    content: &(dyn ContentSource + Sync),
    derived: bool,
) -> Vec<Dataset> {
    // Profiles are independent: each looks at its candidates on its own. Run them on every core
    // (NIH scale with 18 profiles is 2 s on one); rayon's collect keeps the profiles' order.
    use rayon::prelude::*;
    let candidates = candidates(profiles, pool);
    profiles.par_iter().zip(&candidates).filter_map(|(p, c)| organize_one(p, pool, c, content, derived)).collect()
}

/// Per profile, the pool files (indices, in pool order) that any of its rule or table patterns
/// matches: only those can be placed or read as its tables. One `RegexSet` of every profile's
/// patterns scans each path once, where each profile scanning the whole pool with its own two
/// sets cost two scans per path per profile (the NIH look-alike's 112,120 paths against 26
/// profiles: most of a cold mount's organizing). Each pattern keeps its own meaning in a set, so
/// the candidates are exactly the paths the profile's own sets match.
fn candidates(profiles: &[Profile], pool: &[PoolFile]) -> Vec<Vec<usize>> {
    use rayon::prelude::*;
    let mut owner: Vec<usize> = Vec::new();
    let mut patterns: Vec<&str> = Vec::new();
    for (i, p) in profiles.iter().enumerate() {
        for pat in p.rule_set.patterns().iter().chain(p.table_set.patterns()) {
            owner.push(i);
            patterns.push(pat);
        }
    }
    let all = || vec![(0..pool.len()).collect(); profiles.len()];
    // The profiles' own sets compiled, so the union does too; a union too big for the regex
    // size limit falls back to every profile scanning every path.
    let Ok(set) = regex::RegexSetBuilder::new(&patterns).size_limit(64 << 20).build() else { return all() };
    let hits: Vec<Vec<usize>> = pool
        .par_iter()
        .map(|f| {
            let mut of: Vec<usize> = set.matches(&f.path).iter().map(|m| owner[m]).collect();
            of.dedup();
            of
        })
        .collect();
    let mut out: Vec<Vec<usize>> = vec![Vec::new(); profiles.len()];
    for (i, of) in hits.into_iter().enumerate() {
        for p in of {
            out[p].push(i);
        }
    }
    out
}

/// A pool file placed by a rule.
struct Placed {
    pool: usize,
    rule: usize,
    caps: Vec<Option<String>>,
    patient: String,
    study: String,
    name: String,
}

/// Names medfs writes itself at each level; a dataset id or file with one of them would hide it.
const DATASET_RESERVED: [&str; 2] = ["dataset.json", "labels.csv"];
const PATIENT_RESERVED: [&str; 1] = ["patient.json"];
const STUDY_RESERVED: [&str; 2] = ["labels.json", "metadata.json"];

fn bad_component(s: &str) -> bool {
    s.is_empty() || s == "." || s == ".." || s.contains('/') || s.contains('\0')
}

/// A study file name may be a relative path (`RAW/mpr-1.nifti.hdr`, `<series>/1-001.dcm`): every
/// `/`-separated component must be a valid name, and a top-level name must not be a sidecar's.
fn bad_file_name(s: &str) -> bool {
    s.split('/').any(bad_component) || STUDY_RESERVED.contains(&s)
}

/// Splits a member path into the per-file builtin captures (archive, path, dir, file, stem, ext),
/// and gives the file's size.
fn file_builtins(f: &PoolFile, caps: &mut [Option<String>]) {
    let (dir, file) = match f.path.rfind('/') {
        Some(i) => (&f.path[..i], &f.path[i + 1..]),
        None => ("", f.path.as_str()),
    };
    let (stem, ext) = match file.rfind('.') {
        Some(i) if i > 0 => (&file[..i], &file[i + 1..]),
        _ => (file, ""),
    };
    let size = f.size.to_string();
    let vals = [f.archive.as_str(), f.path.as_str(), dir, file, stem, ext, size.as_str()];
    for (slot, v) in vals.iter().enumerate().take(FILE_BUILTINS) {
        caps[slot] = Some(v.to_string());
    }
}

/// Per table, per file pattern: the pool files it matches.
fn table_hits(profile: &Profile, pool: &[PoolFile], candidates: &[usize]) -> Vec<Vec<Vec<usize>>> {
    let mut table_hits: Vec<Vec<Vec<usize>>> = profile.tables.iter().map(|t| vec![Vec::new(); t.files.len()]).collect();
    if profile.table_set.is_empty() {
        return table_hits;
    }
    for &i in candidates {
        let f = &pool[i];
        if profile.exclude.as_ref().is_some_and(|x| x.is_match(&f.path)) {
            continue;
        }
        for m in profile.table_set.matches(&f.path).iter() {
            let (t, p) = profile.table_set_owner[m];
            table_hits[t][p].push(i);
        }
    }
    table_hits
}

fn place(
    profile: &Profile,
    pool: &[PoolFile],
    candidates: &[usize],
    tables: &[table::LoadedTable],
    warnings: &mut Vec<String>,
) -> Vec<Placed> {
    let mut placed = Vec::new();
    let nslots = profile.names.len();
    // `dicom_from = "folder"`: the first DICOM file (by path) of each (archive, folder);
    // `dicom_from = "series"`: the first DICOM file (by path) of each series. Only real DICOM
    // files count (an annotation XML's header names a series and nothing else).
    let mut folder_dicom: std::collections::HashMap<(&str, &str), usize> = Default::default();
    let mut series_dicom: std::collections::HashMap<&str, usize> = Default::default();
    // `/**` folders: every DICOM file, by (archive, path).
    let mut by_path: Vec<usize> = Vec::new();
    if profile
        .rules
        .iter()
        .any(|r| matches!(&r.dicom_from, crate::profile::DicomFrom::Template(l) if l.iter().any(|t| t.below)))
    {
        by_path =
            (0..pool.len()).filter(|&i| pool[i].dicom.as_deref().is_some_and(|d| !d.is_series_reference())).collect();
        by_path.sort_by(|&a, &b| (&pool[a].archive, &pool[a].path).cmp(&(&pool[b].archive, &pool[b].path)));
    }
    if profile.rules.iter().any(|r| !matches!(r.dicom_from, crate::profile::DicomFrom::File)) {
        for (i, f) in pool.iter().enumerate() {
            let Some(d) = f.dicom.as_deref() else { continue };
            if d.is_series_reference() {
                continue;
            }
            if let Some(uid) = d.series_uid.as_deref() {
                let e = series_dicom.entry(uid).or_insert(i);
                if pool[*e].path > f.path {
                    *e = i;
                }
            }
            let dir = f.path.rsplit_once('/').map_or("", |(d, _)| d);
            let e = folder_dicom.entry((f.archive.as_str(), dir)).or_insert(i);
            if pool[*e].path > f.path {
                *e = i;
            }
        }
    }
    for &i in candidates {
        let f = &pool[i];
        if profile.exclude.as_ref().is_some_and(|x| x.is_match(&f.path)) {
            continue;
        }
        let matches = profile.rule_set.matches(&f.path);
        if !matches.matched_any() {
            continue;
        }
        for r in matches.iter() {
            let rule = &profile.rules[r];
            let archive_caps = match &rule.archive {
                Some(re) => match re.captures(&f.archive) {
                    Some(c) => Some(c),
                    None => continue,
                },
                None => None,
            };
            let Some(pc) = rule.path.captures(&f.path) else {
                continue;
            };
            let mut caps = vec![None; nslots];
            file_builtins(f, &mut caps);
            if let Some(ac) = &archive_caps {
                for (slot, g) in &rule.archive_groups {
                    if let Some(m) = ac.get(*g) {
                        caps[*slot] = Some(m.as_str().to_string());
                    }
                }
            }
            for (slot, g) in &rule.path_groups {
                if let Some(m) = pc.get(*g) {
                    caps[*slot] = Some(m.as_str().to_string());
                }
            }
            if !rule.dicom.is_empty() {
                use crate::profile::DicomFrom;
                let folder =
                    |dir: &str| folder_dicom.get(&(f.archive.as_str(), dir)).and_then(|j| pool[*j].dicom.as_deref());
                // The first DICOM file by path anywhere below `dir` (same archive).
                let below = |dir: &str| {
                    let prefix = format!("{dir}/");
                    let at = by_path.partition_point(|&j| {
                        (pool[j].archive.as_str(), pool[j].path.as_str()) < (f.archive.as_str(), prefix.as_str())
                    });
                    by_path
                        .get(at)
                        .filter(|&&j| pool[j].archive == f.archive && pool[j].path.starts_with(&prefix))
                        .and_then(|&j| pool[j].dicom.as_deref())
                };
                let info = match &rule.dicom_from {
                    DicomFrom::File => f.dicom.as_deref(),
                    DicomFrom::Folder => folder(f.path.rsplit_once('/').map_or("", |(d, _)| d)),
                    DicomFrom::Series => f
                        .dicom
                        .as_deref()
                        .and_then(|d| d.series_uid.as_deref())
                        .and_then(|uid| series_dicom.get(uid))
                        .and_then(|j| pool[*j].dicom.as_deref()),
                    DicomFrom::Template(list) => list.iter().find_map(|t| {
                        let dir = t.folder.render(&caps);
                        let dir = dir.trim_end_matches('/');
                        if t.below { below(dir) } else { folder(dir) }
                    }),
                };
                let Some(d) = info else { continue };
                for (slot, kw) in &rule.dicom {
                    caps[*slot] = crate::profile::dicomtag::text(d, kw);
                }
            }
            for l in &rule.lookups {
                let t = &tables[l.table];
                let cell = t
                    .index
                    .get(&l.key.render(&caps))
                    .and_then(|rows| rows.first())
                    .and_then(|r| t.rows[*r as usize].get(t.resolve(&l.column)?))
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(|c| l.map.iter().find(|(from, _)| from == c).map_or(c, |(_, to)| to.as_str()).to_string());
                caps[l.slot] = cell.or_else(|| l.default.as_ref().map(|d| d.render(&caps)));
            }
            let patient = rule.patient.render(&caps);
            let study = rule.study.render(&caps);
            let name = rule.name.render(&caps);
            let problem = if bad_component(&patient) || DATASET_RESERVED.contains(&patient.as_str()) {
                Some(format!("patient id `{patient}`"))
            } else if bad_component(&study) || PATIENT_RESERVED.contains(&study.as_str()) {
                Some(format!("study id `{study}`"))
            } else if bad_file_name(&name) {
                Some(format!("file name `{name}`"))
            } else {
                None
            };
            if let Some(p) = problem {
                warnings.push(format!("{}:{}: skipped, {p} cannot be a folder or file name here", f.archive, f.path));
                break;
            }
            // Study-level names live in the same slots, so a one-file study can use these
            // captures as they are.
            caps[SLOT_PATIENT] = Some(patient.clone());
            caps[SLOT_STUDY] = Some(study.clone());
            placed.push(Placed { pool: i, rule: r, caps, patient, study, name });
            break;
        }
    }
    placed
}

/// Picks a table's files: the first pattern with hits; one file per basename (a second copy of
/// the same CSV in another archive would double every row), in (archive, path) order.
fn table_files(hits: &[Vec<usize>], pool: &[PoolFile]) -> Vec<usize> {
    let Some(group) = hits.iter().find(|h| !h.is_empty()) else {
        return Vec::new();
    };
    let mut g = group.clone();
    g.sort_by(|a, b| (&pool[*a].archive, &pool[*a].path).cmp(&(&pool[*b].archive, &pool[*b].path)));
    let mut seen = BTreeSet::new();
    g.retain(|i| {
        let p = &pool[*i].path;
        seen.insert(p.rsplit('/').next().unwrap_or(p).to_string())
    });
    g
}

fn organize_one(
    profile: &Profile,
    pool: &[PoolFile],
    candidates: &[usize],
    content: &dyn ContentSource,
    derived: bool,
) -> Option<Dataset> {
    let mut warnings = Vec::new();
    let table_hits = table_hits(profile, pool, candidates);
    // Tables are read before placing only when a rule looks captures up in them (`lookup`):
    // otherwise an unrecognized dataset costs no table read.
    let early = profile.rules.iter().any(|r| !r.lookups.is_empty());
    let load_tables = |warnings: &mut Vec<String>| -> Vec<table::LoadedTable> {
        profile
            .tables
            .iter()
            .zip(&table_hits)
            .map(|(t, hits)| table::load(t, &table_files(hits, pool), pool, content, warnings))
            .collect()
    };
    let mut tables: Vec<table::LoadedTable> = if early { load_tables(&mut warnings) } else { Vec::new() };
    let placed = place(profile, pool, candidates, &tables, &mut warnings);
    if placed.len() < profile.min_files {
        return None;
    }
    if !early {
        tables = load_tables(&mut warnings);
    }

    let mut archives: BTreeSet<&str> = BTreeSet::new();
    for t in &tables {
        archives.extend(t.archives.iter().map(String::as_str));
    }
    let columns: Vec<Option<usize>> = profile
        .columns
        .iter()
        .map(|c| {
            let r = tables[c.table].resolve(&c.alts);
            if r.is_none() && tables[c.table].is_loaded() {
                let msg = format!(
                    "table `{}` ({}): no column {:?}; its values are null",
                    profile.tables[c.table].name,
                    tables[c.table].source_name.as_deref().unwrap_or("inline"),
                    c.alts
                );
                if !warnings.contains(&msg) {
                    warnings.push(msg);
                }
            }
            r
        })
        .collect();

    // Group by (patient, study); inside a study, by name. Sorting by rule then source makes the
    // kept copy of a duplicated file (same study file in two downloads) deterministic.
    let mut order: Vec<usize> = (0..placed.len()).collect();
    order.sort_by(|&a, &b| {
        let (x, y) = (&placed[a], &placed[b]);
        (&x.patient, &x.study, &x.name, x.rule, &pool[x.pool].archive, &pool[x.pool].path).cmp(&(
            &y.patient,
            &y.study,
            &y.name,
            y.rule,
            &pool[y.pool].archive,
            &pool[y.pool].path,
        ))
    });

    let env = Env {
        profile,
        pool,
        content,
        tables: &tables,
        columns: &columns,
        problems: RefCell::new(Problems::default()),
        sizes: RefCell::new(Default::default()),
        volumes: RefCell::new(Default::default()),
    };

    let mut files = Vec::with_capacity(placed.len());
    let mut generated = Vec::new();
    let mut derived_files: Vec<DerivedFile> = Vec::new();
    let kinds: Vec<&dyn crate::derive::Kind> =
        if derived { profile.derive.iter().filter_map(|id| crate::derive::by_id(*id)).collect() } else { Vec::new() };
    // labels.csv columns: the labels, the label files' roles, then each derived kind whose files
    // are label files (DDSM masks), holding their paths; derived images and volumes are units
    // of their own (a row each), study-wide files (previews) neither.
    let derived_columns: Vec<crate::derive::KindId> =
        kinds.iter().filter(|k| k.csv_role() == crate::profile::CsvRole::Column).map(|k| k.id()).collect();
    let mut csv_header = profile.label_columns.clone();
    csv_header.extend(profile.csv_file_columns.iter().map(|&r| profile.roles[r].clone()));
    csv_header.extend(derived_columns.iter().filter_map(|&k| crate::derive::by_id(k)).map(|k| k.name().to_string()));
    let mut csv = LabelsCsv::new(&csv_header);
    let mut patients: BTreeMap<&str, Option<usize>> = BTreeMap::new();
    let mut n_studies = 0usize;
    let nslots = profile.names.len();

    let mut i = 0;
    while i < order.len() {
        let first = &placed[order[i]];
        let mut j = i;
        let mut members: Vec<&Placed> = Vec::new();
        while j < order.len() && placed[order[j]].patient == first.patient && placed[order[j]].study == first.study {
            let p = &placed[order[j]];
            match members.last() {
                Some(last) if last.name == p.name => warnings.push(format!(
                    "{}/{}: two files named `{}`; kept {}:{}, skipped {}:{}",
                    p.patient,
                    p.study,
                    p.name,
                    pool[last.pool].archive,
                    pool[last.pool].path,
                    pool[p.pool].archive,
                    pool[p.pool].path
                )),
                _ => members.push(p),
            }
            j += 1;
        }
        i = j;

        // Study captures: first value wins, taking files in rule order then path order.
        let merged;
        let caps: &[Option<String>] = if members.len() == 1 {
            &members[0].caps
        } else {
            let mut by_rule: Vec<&Placed> = members.clone();
            by_rule.sort_by(|a, b| (a.rule, &pool[a.pool].path).cmp(&(b.rule, &pool[b.pool].path)));
            let mut caps = vec![None; nslots];
            for m in &by_rule {
                for (slot, v) in m.caps.iter().enumerate() {
                    if caps[slot].is_none() && v.is_some() {
                        caps[slot] = v.clone();
                    }
                }
            }
            merged = caps;
            &merged
        };

        let rows: Vec<&[u32]> = profile
            .tables
            .iter()
            .zip(&tables)
            .map(|(t, lt)| match lt.index.get(&t.join.render(caps)) {
                Some(r) => r.as_slice(),
                None => &[][..],
            })
            .collect();
        let view = StudyView {
            patient: &first.patient,
            study: &first.study,
            caps,
            files: members
                .iter()
                .map(|m| StudyFile { role: profile.rules[m.rule].role, name: &m.name, pool: m.pool, caps: &m.caps })
                .collect(),
            rows,
        };

        let variant = profile.labels.iter().find(|v| v.when.as_ref().is_none_or(|c| env.cond(c, &view)));
        let mut labels = Map::new();
        if let Some(v) = variant {
            for (k, f) in &v.fields {
                labels.insert(k.clone(), env.eval(k, f, &view, None));
            }
        }
        let split = match &profile.split {
            Some(f) => match env.eval("split", f, &view, None) {
                Value::String(s) if ["train", "valid", "test"].contains(&s.as_str()) => Value::String(s),
                Value::Null => Value::Null,
                other => {
                    warnings.push(format!(
                        "{}: split {other} is not train, valid, test or null; written as null",
                        view.label()
                    ));
                    Value::Null
                }
            },
            None => Value::Null,
        };
        let mut meta = Map::new();
        for f in &profile.metadata_merge {
            if let Value::Object(o) = env.eval("metadata.merge", f, &view, None) {
                meta.extend(o);
            }
        }
        for (k, f) in &profile.metadata {
            meta.insert(k.clone(), env.eval(k, f, &view, None));
        }
        meta.insert("split".into(), split.clone());
        let source: Map<String, Value> = members
            .iter()
            .map(|m| {
                let pf = &pool[m.pool];
                (m.name.clone(), json!({"archive": pf.archive, "path": pf.path}))
            })
            .collect();
        meta.insert("source".into(), Value::Object(source));

        let dir = format!("{}/{}", first.patient, first.study);
        // Derived files, listed where their originals are: a labels.csv column of their kind in
        // the row of the file they are made from, and `derived` in metadata.json (name -> kind
        // and inputs).
        let planned = if kinds.is_empty() {
            Vec::new()
        } else {
            let study = crate::derive::Study {
                dataset: profile.slug(),
                dir: &dir,
                files: members
                    .iter()
                    .map(|m| crate::derive::StudyFile {
                        name: &m.name,
                        role: &profile.roles[profile.rules[m.rule].role],
                        id: pool[m.pool].id,
                        size: pool[m.pool].size,
                        dicom: pool[m.pool].dicom.as_deref(),
                    })
                    .collect(),
                planned: &[],
            };
            crate::derive::plan_study(&kinds, study, &STUDY_RESERVED, content, &mut warnings)
        };
        if !planned.is_empty() {
            let by_id: std::collections::HashMap<(u32, u32), &str> =
                members.iter().map(|m| (pool[m.pool].id, m.name.as_str())).collect();
            let listed: Map<String, Value> = planned
                .iter()
                .map(|p| {
                    let kind = crate::derive::by_id(p.spec.kind).map_or("", |k| k.name());
                    let from: Vec<&str> = p.spec.inputs.iter().filter_map(|i| by_id.get(i).copied()).collect();
                    (p.name.clone(), json!({"kind": kind, "from": from}))
                })
                .collect();
            meta.insert("derived".into(), Value::Object(listed));
        }
        let split_cell = sidecar::cell(&split);
        let label_cells: Vec<String> =
            profile.label_columns.iter().map(|c| labels.get(c).map(sidecar::cell).unwrap_or_default()).collect();
        // labels.csv: one row per image unit (a file, or a series' folder), label files as
        // columns holding their paths.
        let mut units: BTreeSet<String> = BTreeSet::new();
        let mut columns: Vec<Vec<String>> = vec![Vec::new(); profile.csv_file_columns.len()];
        for m in &members {
            let pf = &pool[m.pool];
            archives.insert(&pf.archive);
            let rel_path = format!("{dir}/{}", m.name);
            let role = profile.rules[m.rule].role;
            match profile.csv_roles[role] {
                crate::profile::CsvRole::Row => {
                    units.insert(rel_path.clone());
                }
                crate::profile::CsvRole::Series => {
                    let folder = m.name.rsplit_once('/').map_or(rel_path.clone(), |(d, _)| format!("{dir}/{d}"));
                    units.insert(folder);
                }
                crate::profile::CsvRole::Column => {
                    let c = profile.csv_file_columns.iter().position(|&r| r == role).expect("a column role");
                    columns[c].push(rel_path.clone());
                }
                crate::profile::CsvRole::Neither => {}
            }
            files.push(DatasetFile { rel_path, source: pf.id });
        }
        // Derived files: an image or volume is a unit (a row, with the cells of the study);
        // a label file is a cell of its kind's column, in its original's row when that is a
        // unit, else in every row of the study. A derived file's sidecar (`.json`) is neither.
        let mut derived_rows: BTreeSet<String> = BTreeSet::new();
        let mut derived_cells: BTreeMap<Option<String>, Vec<Vec<String>>> = BTreeMap::new();
        for p in planned {
            let rel_path = format!("{dir}/{}", p.name);
            let role = crate::derive::by_id(p.spec.kind).map_or(crate::profile::CsvRole::Neither, |k| k.csv_role());
            match role {
                _ if p.name.ends_with(".json") => {}
                crate::profile::CsvRole::Row | crate::profile::CsvRole::Series if p.beside.is_some() => {
                    derived_rows.insert(rel_path.clone());
                }
                crate::profile::CsvRole::Column => {
                    let c = derived_columns.iter().position(|&k| k == p.spec.kind).expect("a column kind");
                    let unit = p.beside.and_then(|i| members.get(i)).and_then(|m| {
                        let path = format!("{dir}/{}", m.name);
                        match profile.csv_roles[profile.rules[m.rule].role] {
                            crate::profile::CsvRole::Row => Some(path),
                            crate::profile::CsvRole::Series => {
                                m.name.rsplit_once('/').map(|(d, _)| format!("{dir}/{d}"))
                            }
                            _ => None,
                        }
                    });
                    let unit = unit.filter(|u| units.contains(u));
                    derived_cells.entry(unit).or_insert_with(|| vec![Vec::new(); derived_columns.len()])[c]
                        .push(rel_path.clone());
                }
                _ => {}
            }
            derived_files.push(DerivedFile { rel_path, spec: p.spec, size: p.size });
        }
        let cell = |mut paths: Vec<String>| match paths.len() {
            0 => String::new(),
            1 => paths.pop().expect("one"),
            _ => {
                paths.sort();
                Value::from(paths).to_string()
            }
        };
        let file_cells: Vec<String> = columns.into_iter().map(cell).collect();
        let study_wide = derived_cells.remove(&None).unwrap_or_else(|| vec![Vec::new(); derived_columns.len()]);
        units.extend(derived_rows);
        for unit in units {
            let mut row = vec![unit.clone(), first.patient.clone(), first.study.clone(), split_cell.clone()];
            row.extend(label_cells.iter().cloned());
            row.extend(file_cells.iter().cloned());
            let own = derived_cells.get(&Some(unit));
            for c in 0..derived_columns.len() {
                let mut paths = study_wide[c].clone();
                paths.extend(own.map(|o| o[c].clone()).unwrap_or_default());
                row.push(cell(paths));
            }
            csv.row(&row);
        }
        generated.push(GeneratedFile {
            rel_path: format!("{dir}/labels.json"),
            bytes: sidecar::json(&Value::Object(labels)),
        });
        generated.push(GeneratedFile {
            rel_path: format!("{dir}/metadata.json"),
            bytes: sidecar::json(&Value::Object(meta)),
        });
        n_studies += 1;
        // The patient's facts come from its first study (in study order).
        patients.entry(first.patient.as_str()).or_insert_with(|| {
            if profile.patient.is_empty() {
                return None;
            }
            let obj: Map<String, Value> =
                profile.patient.iter().map(|(k, f)| (k.clone(), env.eval(k, f, &view, None))).collect();
            generated.push(GeneratedFile {
                rel_path: format!("{}/patient.json", first.patient),
                bytes: sidecar::json(&Value::Object(obj)),
            });
            Some(0)
        });
    }
    for (p, done) in &patients {
        if done.is_none() {
            generated.push(GeneratedFile { rel_path: format!("{p}/patient.json"), bytes: sidecar::json(&json!({})) });
        }
    }

    let dataset_json = json!({
        "slug": profile.slug(),
        "title": profile.title(),
        "homepage": profile.homepage(),
        "source_archives": archives.iter().collect::<Vec<_>>(),
        "counts": {"patients": patients.len(), "studies": n_studies, "files": files.len()},
    });
    sidecar::finish_dataset(&mut files, &mut generated, &dataset_json, csv);
    derived_files.sort_by(|a, b| a.rel_path.cmp(&b.rel_path));
    warnings.extend(env.problems.into_inner().into_warnings());
    for w in &warnings {
        tracing::warn!(dataset = profile.slug(), "{w}");
    }
    Some(Dataset { slug: profile.slug().to_string(), files, generated, derived: derived_files, warnings })
}

/// How close a profile came to recognizing some files: why a download shows only under
/// `_archives/` (`crate::recognized`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NearMiss {
    /// Files whose path matches one of its `[[files]]` patterns.
    pub matched: usize,
    /// Files its rules placed (patient, study and name rendered).
    pub placed: usize,
    /// Files matching one of its table patterns.
    pub tables: usize,
    /// Why the matched files were not a dataset, in words.
    pub reason: String,
}

/// Tries `profile` on the pool files `idx` as [`organize`] would, without rendering anything,
/// and says how far it got. Only the files its patterns match are copied to be placed, and tables
/// are read only for a profile that looks captures up in them (ADNI).
pub fn near_miss(profile: &Profile, pool: &[PoolFile], idx: &[usize], content: &dyn ContentSource) -> NearMiss {
    let kept = |f: &PoolFile| !profile.exclude.as_ref().is_some_and(|x| x.is_match(&f.path));
    let (mut matched, mut tables) = (0, 0);
    let mut subset: Vec<PoolFile> = Vec::new();
    for f in idx.iter().map(|&i| &pool[i]).filter(|f| kept(f)) {
        let (m, t) = (profile.rule_set.is_match(&f.path), profile.table_set.is_match(&f.path));
        matched += m as usize;
        tables += t as usize;
        if m || t {
            subset.push(f.clone());
        }
    }
    let files = subset.as_slice();
    let every: Vec<usize> = (0..files.len()).collect();
    let mut warnings = Vec::new();
    let loaded: Vec<table::LoadedTable> = if matched > 0 && profile.rules.iter().any(|r| !r.lookups.is_empty()) {
        let hits = table_hits(profile, files, &every);
        profile
            .tables
            .iter()
            .zip(&hits)
            .map(|(t, h)| table::load(t, &table_files(h, files), files, content, &mut warnings))
            .collect()
    } else {
        profile.tables.iter().map(|_| table::LoadedTable::default()).collect()
    };
    let placed = if matched > 0 { place(profile, files, &every, &loaded, &mut warnings).len() } else { 0 };
    let skipped = warnings.iter().find(|w| w.contains(": skipped, "));
    let reason = if placed > 0 {
        format!("{placed} file(s) placed, but the profile needs `recognize.min_files` = {}", profile.min_files)
    } else if let Some(w) = skipped {
        format!("{matched} path(s) match its [[files]] patterns, but their names are unusable (e.g. {w})")
    } else if matched > 0 {
        let dicom = profile.rules.iter().any(|r| !r.dicom.is_empty());
        let archive = profile.rules.iter().any(|r| r.archive.is_some());
        let what = match (dicom, archive) {
            (true, true) => "the archive name its rules require, or the DICOM header they read",
            (true, false) => "the DICOM header its rules read",
            (false, _) => "the archive name its rules require",
        };
        format!("{matched} path(s) match its [[files]] patterns, but none has {what}")
    } else if tables > 0 {
        format!("only its label table(s) are here ({tables} file(s)), none of its study files")
    } else {
        "no profile matches".to_string()
    };
    NearMiss { matched, placed, tables, reason }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Files with their bytes, all in one archive (also the pool of niftitree.rs' tests).
    pub(crate) struct Mem(pub(crate) Vec<(PoolFile, Vec<u8>)>);

    #[test]
    fn one_scan_finds_exactly_the_paths_each_profile_matches() {
        // Paths of many built-in datasets' downloads, and some of none.
        let paths = [
            "MURA-v1.1/train/XR_HAND/patient00001/study1_positive/image1.png",
            "MURA-v1.1/train_image_paths.csv",
            "images/00000001_000.png",
            "Data_Entry_2017_v2020.csv",
            "BraTS2021_00000/BraTS2021_00000_flair.nii.gz",
            "MICCAI_BraTS2020_TrainingData/BraTS20_Training_001/BraTS20_Training_001_seg.nii",
            "LIDC-IDRI/LIDC-IDRI-0001/01-01-2000-NA-30178/3000566.000000-NA-03192/1-001.dcm",
            "DRIVE/training/images/21_training.tif",
            "cases/A_1509_1.LEFT_CC.LJPEG",
            "disc1/OAS1_0001_MR1/RAW/OAS1_0001_MR1_mpr-1_anon.img",
            "notes/readme.txt",
            "x/y/z.bin",
        ];
        let pool: Vec<PoolFile> = Mem::in_archive("a.zip", paths.iter().map(|p| (p.to_string(), vec![0])))
            .0
            .into_iter()
            .map(|(f, _)| f)
            .collect();
        let profiles = crate::profile::builtin();
        let got = candidates(&profiles, &pool);
        let mut any = 0;
        for (p, c) in profiles.iter().zip(&got) {
            let want: Vec<usize> = (0..pool.len())
                .filter(|&i| p.rule_set.is_match(&pool[i].path) || p.table_set.is_match(&pool[i].path))
                .collect();
            assert_eq!(c, &want, "profile {}", p.slug());
            any += c.len();
        }
        assert!(any >= 8, "the paths above are candidates of some profile ({any})");
    }

    impl Mem {
        fn new(files: &[(&str, &[u8])]) -> Mem {
            Mem::in_archive("a.zip", files.iter().map(|(p, b)| (p.to_string(), b.to_vec())))
        }
        /// `files` (path, bytes) as members of `archive`, numbered in order.
        pub(crate) fn in_archive(archive: &str, files: impl IntoIterator<Item = (String, Vec<u8>)>) -> Mem {
            Mem(files
                .into_iter()
                .enumerate()
                .map(|(i, (path, bytes))| {
                    let f = PoolFile {
                        id: (0, i as u32),
                        archive: archive.into(),
                        path,
                        size: bytes.len() as u64,
                        mtime: 0,
                        dicom: None,
                    };
                    (f, bytes)
                })
                .collect())
        }
        fn organize(&self, toml: &str) -> Dataset {
            let p = crate::profile::parse("toy.toml", toml).unwrap();
            let pool: Vec<PoolFile> = self.0.iter().map(|(f, _)| f.clone()).collect();
            organize(&[p], &pool, self).pop().expect("recognized")
        }
    }

    impl ContentSource for Mem {
        fn read_all(&self, id: (u32, u32)) -> std::io::Result<Vec<u8>> {
            Ok(self.0[id.1 as usize].1.clone())
        }
    }

    fn labels(ds: &Dataset, study: &str) -> Value {
        let g = ds.generated.iter().find(|g| g.rel_path == format!("{study}/labels.json")).unwrap();
        serde_json::from_slice(&g.bytes).unwrap()
    }

    #[test]
    fn size_is_a_per_file_builtin() {
        let mem = Mem::new(&[("p/s1/x.jpg", b""), ("p/s2/x.jpg", b"12345"), ("p/s3/x.jpg", b"123")]);
        let ds = mem.organize(
            r#"title = "t"
[[files]]
role = "i"
path = '^(?P<p>\w+)/(?P<s>\w+)/[^/]+$'
patient = "{p}"
study = "{s}"
name = "{size}-{file}"
[[labels]]
[labels.fields]
bytes = { capture = "size", type = "int" }
empty = { value = true, when = { capture = "size", equals = "0" }, default = false }
"#,
        );
        assert_eq!(labels(&ds, "p/s1"), json!({"bytes": 0, "empty": true}));
        assert_eq!(labels(&ds, "p/s2"), json!({"bytes": 5, "empty": false}));
        let names: Vec<&str> = ds.files.iter().map(|f| f.rel_path.as_str()).collect();
        assert_eq!(names, ["p/s1/0-x.jpg", "p/s2/5-x.jpg", "p/s3/3-x.jpg"]);
        // A capture of its own may not take the name.
        let e = crate::profile::parse(
            "toy.toml",
            "title = \"t\"\n[[files]]\nrole = \"i\"\npath = '(?P<size>x)'\npatient = \"p\"\nstudy = \"s\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("`size` is reserved"), "{e}");
    }

    #[test]
    fn key_rewrite_makes_keys_written_several_ways_one() {
        let csv = b"filename\nType_1\\12.jpg\nadditional/Type_2/12.jpg\n/Type_3/7.jpg\n20.jpg\n";
        let mem = Mem::new(&[
            ("Type_1/12.jpg", b"a"),
            ("Type_2/12.jpg", b"b"),
            ("Type_3/12.jpg", b"c"),
            ("Type_3/7.jpg", b"d"),
            ("Type_3/20.jpg", b"e"),
            ("removed.csv", csv),
        ]);
        let ds = mem.organize(
            r#"title = "t"
[[files]]
role = "i"
path = '^Type_(?P<t>\d)/(?P<n>\d+)\.jpg$'
patient = "T{t}"
study = "{n}"
[tables.removed]
files = ['removed\.csv$']
key = "filename"
key_pattern = '(?:^|[\\/])(?P<folder>Type_\d)[\\/](?P<name>[^\\/]+)$'
key_rewrite = '${folder}/${name}'
join = "Type_{t}/{n}.jpg"
[[labels]]
[labels.fields]
removed = { exists = "removed" }
"#,
        );
        for (study, removed) in [("T1/12", true), ("T2/12", true), ("T3/12", false), ("T3/7", true), ("T3/20", false)] {
            assert_eq!(labels(&ds, study), json!({ "removed": removed }), "{study}");
        }
        // `key_rewrite` needs `key_pattern`; with it, the pattern needs no `key` group.
        let base = "title = \"t\"\n[[files]]\nrole = \"i\"\npath = 'x'\npatient = \"p\"\nstudy = \"s\"\n[tables.t]\nfiles = ['x']\nkey = 0\njoin = \"{file}\"\n";
        let e = crate::profile::parse("toy.toml", &format!("{base}key_rewrite = '$1'\n")).unwrap_err().to_string();
        assert!(e.contains("tables.t.key_rewrite") && e.contains("only goes with `key_pattern`"), "{e}");
        let e = crate::profile::parse("toy.toml", &format!("{base}key_pattern = '(x)'\n")).unwrap_err().to_string();
        assert!(e.contains("no group named `key` (or give `key_rewrite`)"), "{e}");
        crate::profile::parse("toy.toml", &format!("{base}key_pattern = '(x)'\nkey_rewrite = 'y$1'\n")).unwrap();
    }

    #[test]
    fn passwords_are_published_and_checked() {
        let base = "title = \"t\"\n[[files]]\nrole = \"i\"\npath = 'x'\npatient = \"p\"\nstudy = \"s\"\n";
        let p = crate::profile::parse("toy.toml", &format!("passwords = [\"pw 1\", \"pw2\"]\n{base}")).unwrap();
        assert_eq!(p.passwords(), ["pw 1", "pw2"]);
        assert!(crate::profile::parse("toy.toml", base).unwrap().passwords().is_empty());
        let e = crate::profile::parse("toy.toml", &format!("passwords = [\"\"]\n{base}")).unwrap_err().to_string();
        assert!(e.contains("key `passwords[0]`: must not be empty"), "{e}");
    }
}
