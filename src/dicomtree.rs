//! Generic organization of DICOM files that no profile claims (TREE.md: DICOM that no profile
//! claims appears as a generic dataset, one per source, organized by DICOM tags; which files
//! form one collection is `collection.rs`). Pure: takes already-parsed headers
//! ([`crate::dicom::DicomInfo`]), returns the tree.
//!
//! ```text
//! <slug>/
//! ├── dataset.json        slug, title, homepage (null), source_archives, counts
//! ├── labels.csv          path,patient,study,split: one row per series, its folder as path
//! │                       (no label columns; split empty)
//! └── <PatientID>/
//!     ├── patient.json    PatientSex / PatientAge / PatientBirthDate when present, else {}
//!     └── 12-05-1998-NA-RT SIMULATION-43582/          <- the study
//!         ├── labels.json     {}
//!         ├── metadata.json   split (null), source, study_instance_uid, modality, study_date,
//!         │                   ..., series (by folder name, each with its series_instance_uid)
//!         └── 601.000000-PETCoronal-31515/<basename>  <- the series
//! ```
//!
//! Patients are grouped by PatientID, studies by StudyInstanceUID, series by
//! SeriesInstanceUID, wherever the files lie: a patient whose series sit in two archives of the
//! collection is one folder, its studies merged. Study and series folders are named as the NBIA
//! Data Retriever's default "descriptive" layout names them, which TCIA users already know
//! (a file manager shows dates and descriptions, not 60-digit UIDs):
//!
//! - study: `<StudyDate as MM-DD-YYYY>-<StudyID>-<StudyDescription>-<last 5 characters of
//!   StudyInstanceUID>` ([`study_folder`]); series: `<SeriesNumber as %.6f>-<SeriesDescription>-
//!   <last 5 characters of SeriesInstanceUID>`, the number and its `-` left out when the series
//!   has none ([`series_folder`]). A missing or blank field is `NA`; in a field `/`, `\`, NUL
//!   and control characters become `_`, spaces are kept. Each value is the first present among
//!   the study's files in source order, or the series' files in InstanceNumber order.
//! - Files without StudyInstanceUID are the study `unknown-study`, without SeriesInstanceUID the
//!   series `unknown-series`.
//! - Two studies (or series) of one folder with the same name: the one with the smaller UID keeps
//!   it, the others get `~2`, `~3`, ... in UID order, so a name depends only on the set of
//!   UIDs there, never on the order files were found. The UIDs are in `metadata.json`
//!   (`study_instance_uid`, and `series.<folder>.series_instance_uid`).
//!
//! Patient folders are the PatientID, sanitized ([`folder_name`]): `/` and NUL become `_`; `.`,
//! `..` and the names medfs writes at that level (`dataset.json`, `labels.csv`, `patient.json`,
//! `labels.json`, `metadata.json`) get a leading `_`; more than 255 bytes are cut to 246 and
//! suffixed `~<8 hex of FNV-1a of the full value>` (study and series names too). A missing
//! PatientID is `unknown`. If two different PatientIDs end up with the same folder name (e.g.
//! `a/b` and `a_b`), the value that is its own folder name keeps it (else the one that sorts
//! first), and the others get a `~<8 hex of FNV-1a>` suffix too; a missing tag never takes a
//! real value's name.
//!
//! Basenames are kept exactly. When several files of one series folder share a basename (the
//! same series from two download layouts, or a flat dump renamed by a tool), every one of them
//! is renamed `<stem>_<SOPInstanceUID><.ext>` (`nosop` when the file has none), and if that still
//! collides (the same instance twice), the second and later in (archive, path) order get
//! `~2`, `~3`, … before the extension. Each rename is reported in `warnings`.
//!
//! Derived files (`derive/`): kinds whose [`Kind::dicom_series`](crate::derive::Kind::dicom_series)
//! is true are planned once per series folder (a [`Study`](crate::derive::Study) of that series'
//! files, named `<series folder>/<basename>`, role `""`, each with its header), their files listed
//! in `labels.csv` and in the study's `metadata.json` (`derived`) as in profile datasets.
//!
//! Output depends only on the set of files, not on their order.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use crate::derive::{Kind, StudyFile};
use crate::dicom::DicomInfo;
use crate::organize::sidecar::{self, LabelsCsv};
use crate::organize::{ContentSource, Dataset, DatasetFile, DerivedFile, GeneratedFile};

/// One DICOM member of the pool with its parsed header.
#[derive(Debug, Clone, PartialEq)]
pub struct DicomFile {
    /// Pool id of the bytes (archive index, member index).
    pub id: (u32, u32),
    /// Archive name as shown under `_archives/`.
    pub archive: String,
    /// Member path inside the archive.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Its header.
    pub info: DicomInfo,
}

const DATASET_RESERVED: &[&str] = &["dataset.json", "labels.csv"];
const PATIENT_RESERVED: &[&str] = &["patient.json"];
const STUDY_RESERVED: &[&str] = &["labels.json", "metadata.json"];
const MAX_NAME: usize = 255;

fn fnv8(s: &str) -> String {
    let mut h: u32 = 0x811c_9dc5;
    for &b in s.as_bytes() {
        h ^= b as u32;
        h = h.wrapping_mul(0x0100_0193);
    }
    format!("{h:08x}")
}

/// `s` cut to at most `max` bytes on a char boundary.
fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut i = max;
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    &s[..i]
}

/// A tag value as a folder name at a level where `reserved` names are taken (see the module
/// documentation for the rules).
pub fn folder_name(value: &str, reserved: &[&str]) -> String {
    let mut s: String = value.chars().map(|c| if c == '/' || c == '\0' { '_' } else { c }).collect();
    if s.is_empty() {
        s.push('_');
    }
    if s == "." || s == ".." || reserved.contains(&s.as_str()) {
        s.insert(0, '_');
    }
    if s.len() > MAX_NAME {
        s = format!("{}~{}", cut(&s, MAX_NAME - 9), fnv8(value));
    }
    s
}

/// Folder names for a set of distinct values at one level (None = the tag is missing), unique
/// and independent of input order.
fn name_level(
    values: BTreeSet<Option<&str>>,
    missing: &str,
    reserved: &[&str],
    what: &str,
    warnings: &mut Vec<String>,
) -> BTreeMap<Option<String>, String> {
    let mut used = BTreeSet::new();
    let mut out = BTreeMap::new();
    // Values that are their own folder name first: they never lose it to a sanitized one.
    let (exact, other): (Vec<_>, Vec<_>) =
        values.into_iter().partition(|v| v.is_some_and(|s| folder_name(s, reserved) == s));
    for v in exact.into_iter().chain(other) {
        let raw = v.unwrap_or(missing);
        let mut name = folder_name(raw, reserved);
        if used.contains(&name) {
            // Another value already has this folder: disambiguate by the value's hash.
            let key = v.map(|s| format!("={s}")).unwrap_or_default();
            let suffix = format!("~{}", fnv8(&key));
            let mut n = 1u32;
            loop {
                let extra = if n == 1 { suffix.clone() } else { format!("{suffix}~{n}") };
                let cand = format!("{}{extra}", cut(&name, MAX_NAME - extra.len()));
                if !used.contains(&cand) {
                    name = cand;
                    break;
                }
                n += 1;
            }
        }
        if v.is_none() || name != raw {
            match v {
                None => {}
                Some(s) => warnings.push(format!("{what} {s:?} shown as folder {name:?}")),
            }
        }
        used.insert(name.clone());
        out.insert(v.map(str::to_string), name);
    }
    out
}

fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

fn split_ext(name: &str) -> (&str, &str) {
    match name.rfind('.') {
        Some(i) if i > 0 => (&name[..i], &name[i..]),
        _ => (name, ""),
    }
}

fn opt_str(v: &Option<String>) -> Value {
    v.as_ref().map_or(Value::Null, |s| Value::String(s.clone()))
}

fn num(x: f64) -> Value {
    serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
}

/// First non-null of `f` over `files`, in order.
fn first<'a, T: 'a>(
    files: impl IntoIterator<Item = &'a DicomFile>,
    f: impl Fn(&'a DicomInfo) -> Option<T>,
) -> Option<T> {
    files.into_iter().find_map(|d| f(&d.info))
}

/// `files[idx]` in InstanceNumber order (missing last; ties keep source order).
fn by_instance<'a>(files: &'a [DicomFile], idx: &[usize]) -> Vec<&'a DicomFile> {
    let mut inst: Vec<&DicomFile> = idx.iter().map(|&i| &files[i]).collect();
    inst.sort_by_key(|f| (f.info.instance_number.is_none(), f.info.instance_number));
    inst
}

/// A tag's text as a field of a descriptive name: `NA` when missing or blank; `/`, `\`, NUL
/// and other control characters become `_` (spaces, double ones included, are kept).
fn field(v: Option<&str>) -> String {
    match v.map(str::trim) {
        None | Some("") => "NA".into(),
        Some(t) => t.chars().map(|c| if c == '/' || c == '\\' || c.is_control() { '_' } else { c }).collect(),
    }
}

/// The last 5 characters of a UID (all of it when shorter), sanitized like a field.
fn uid_tail(uid: &str) -> String {
    let n = uid.chars().count();
    field(Some(&uid.chars().skip(n.saturating_sub(5)).collect::<String>()))
}

/// A study's folder name as the NBIA Data Retriever's descriptive layout writes it:
/// `<StudyDate MM-DD-YYYY|NA>-<StudyID|NA>-<StudyDescription|NA>-<last 5 of StudyInstanceUID>`,
/// e.g. `12-05-1998-NA-RT SIMULATION-43582`. A StudyDate that is not `YYYYMMDD` is `NA`.
pub fn study_folder(date: Option<&str>, study_id: Option<&str>, description: Option<&str>, uid: &str) -> String {
    let date = match date.map(str::trim) {
        Some(d) if d.len() == 8 && d.bytes().all(|b| b.is_ascii_digit()) => {
            format!("{}-{}-{}", &d[4..6], &d[6..8], &d[..4])
        }
        _ => "NA".into(),
    };
    format!("{date}-{}-{}-{}", field(study_id), field(description), uid_tail(uid))
}

/// A series' folder name as the NBIA Data Retriever's descriptive layout writes it:
/// `<SeriesNumber as %.6f>-<SeriesDescription|NA>-<last 5 of SeriesInstanceUID>`, e.g.
/// `601.000000-PETCoronal-31515`; without a SeriesNumber `<SeriesDescription|NA>-<last 5>`
/// (`NA-28768`).
pub fn series_folder(number: Option<i64>, description: Option<&str>, uid: &str) -> String {
    let tail = format!("{}-{}", field(description), uid_tail(uid));
    match number {
        Some(n) => format!("{n}.000000-{tail}"),
        None => tail,
    }
}

/// Makes the names of one level unique: values whose names collide keep them in UID order, the
/// first plain and the later ones `~2`, `~3`, ... (a missing UID last); a suffixed name that is
/// another value's name already moves on to the next number. Independent of input order.
fn unique_names(mut items: Vec<(Option<String>, String)>) -> BTreeMap<Option<String>, String> {
    items.sort_by(|a, b| (&a.1, a.0.is_none(), &a.0).cmp(&(&b.1, b.0.is_none(), &b.0)));
    let taken: BTreeSet<String> = items.iter().map(|(_, n)| n.clone()).collect();
    let mut used: BTreeSet<String> = BTreeSet::new();
    let mut out = BTreeMap::new();
    for (uid, name) in items {
        let mut chosen = name.clone();
        let mut n = 2u32;
        while used.contains(&chosen) || (chosen != name && taken.contains(&chosen)) {
            let extra = format!("~{n}");
            chosen = format!("{}{extra}", cut(&name, MAX_NAME - extra.len()));
            n += 1;
        }
        used.insert(chosen.clone());
        out.insert(uid, chosen);
    }
    out
}

/// Organizes `files` (all DICOM, typically one archive's) as the dataset `slug`.
pub fn organize_dicom(slug: &str, files: &[DicomFile]) -> crate::organize::Dataset {
    organize_dicom_with(slug, files, &[], None)
}

/// [`organize_dicom`] with the derived files of `kinds`, planned per series folder reading
/// headers through `content` (none without it).
pub fn organize_dicom_with(
    slug: &str,
    files: &[DicomFile],
    kinds: &[&'static dyn Kind],
    content: Option<&dyn ContentSource>,
) -> crate::organize::Dataset {
    let mut warnings = Vec::new();
    let mut out_derived: Vec<DerivedFile> = Vec::new();
    // Order-independence: work on the files sorted by their source.
    let mut order: Vec<usize> = (0..files.len()).collect();
    order.sort_by(|&a, &b| {
        (&files[a].archive, &files[a].path, files[a].id).cmp(&(&files[b].archive, &files[b].path, files[b].id))
    });

    // Level 1: patients.
    let pids: BTreeSet<Option<&str>> = files.iter().map(|f| f.info.patient_id.as_deref()).collect();
    let patient_names = name_level(pids, "unknown", DATASET_RESERVED, "PatientID", &mut warnings);
    let missing = files.iter().filter(|f| f.info.patient_id.is_none()).count();
    if missing > 0 {
        warnings.push(format!("{missing} DICOM file(s) without PatientID placed under \"unknown\""));
    }

    // patient folder → study raw → series raw → file indices (in source order).
    type Series = BTreeMap<Option<String>, Vec<usize>>;
    let mut by_patient: BTreeMap<&str, BTreeMap<Option<String>, Series>> = BTreeMap::new();
    for &i in &order {
        let info = &files[i].info;
        let p = &patient_names[&info.patient_id];
        by_patient
            .entry(p.as_str())
            .or_default()
            .entry(info.study_uid.clone())
            .or_default()
            .entry(info.series_uid.clone())
            .or_default()
            .push(i);
    }
    let n_missing_study = files.iter().filter(|f| f.info.study_uid.is_none()).count();
    if n_missing_study > 0 {
        warnings
            .push(format!("{n_missing_study} DICOM file(s) without StudyInstanceUID placed under \"unknown-study\""));
    }
    let n_missing_series = files.iter().filter(|f| f.info.series_uid.is_none()).count();
    if n_missing_series > 0 {
        warnings.push(format!(
            "{n_missing_series} DICOM file(s) without SeriesInstanceUID placed under \"unknown-series\""
        ));
    }

    let mut out_files: Vec<DatasetFile> = Vec::with_capacity(files.len());
    let mut generated: Vec<GeneratedFile> = Vec::new();
    let mut rows: Vec<[String; 3]> = Vec::new();
    let mut archives: BTreeSet<&str> = BTreeSet::new();
    let (mut n_studies, mut n_series) = (0usize, 0usize);

    for (patient, studies) in &by_patient {
        // patient.json: the first value found in source order of the patient's files.
        let pfiles: Vec<&DicomFile> = studies.values().flat_map(|s| s.values().flatten()).map(|&i| &files[i]).collect();
        let mut pj = Map::new();
        for (key, v) in [
            ("PatientSex", first(pfiles.iter().copied(), |i| i.patient_sex.clone())),
            ("PatientAge", first(pfiles.iter().copied(), |i| i.patient_age.clone())),
            ("PatientBirthDate", first(pfiles.iter().copied(), |i| i.patient_birth_date.clone())),
        ] {
            if let Some(v) = v {
                pj.insert(key.into(), Value::String(v));
            }
        }
        generated.push(GeneratedFile {
            rel_path: format!("{patient}/patient.json"),
            bytes: sidecar::json(&Value::Object(pj)),
        });

        // Study and series folders: the NBIA Data Retriever's descriptive names (module doc).
        let study_names = unique_names(
            studies
                .iter()
                .map(|(uid, series)| {
                    let sf: Vec<&DicomFile> = series.values().flatten().map(|&i| &files[i]).collect();
                    let name = match uid {
                        None => "unknown-study".to_string(),
                        Some(uid) => study_folder(
                            first(sf.iter().copied(), |i| i.study_date.clone()).as_deref(),
                            first(sf.iter().copied(), |i| i.study_id.clone()).as_deref(),
                            first(sf.iter().copied(), |i| i.study_description.clone()).as_deref(),
                            uid,
                        ),
                    };
                    (uid.clone(), folder_name(&name, PATIENT_RESERVED))
                })
                .collect(),
        );
        for (study_raw, series_map) in studies {
            let study = &study_names[study_raw];
            let dir = format!("{patient}/{study}");
            n_studies += 1;
            let series_names = unique_names(
                series_map
                    .iter()
                    .map(|(uid, idx)| {
                        let inst = by_instance(files, idx);
                        let name = match uid {
                            None => "unknown-series".to_string(),
                            Some(uid) => series_folder(
                                first(inst.iter().copied(), |i| i.series_number),
                                first(inst.iter().copied(), |i| i.series_description.clone()).as_deref(),
                                uid,
                            ),
                        };
                        (uid.clone(), folder_name(&name, STUDY_RESERVED))
                    })
                    .collect(),
            );
            let sfiles: Vec<&DicomFile> = series_map.values().flatten().map(|&i| &files[i]).collect();
            let mut source = Map::new();
            let mut derived = Map::new();
            let mut series_json = Map::new();
            let mut modalities = BTreeSet::new();
            // What the series' kinds planned, and each input's path in the study, for the
            // study's preview (made after every series is planned).
            let mut study_planned: Vec<crate::derive::Planned> = Vec::new();
            let mut rel_of: BTreeMap<(u32, u32), String> = BTreeMap::new();
            for (series_raw, idx) in series_map {
                n_series += 1;
                let folder = &series_names[series_raw];
                let names = file_names(files, idx, &mut warnings, &dir, folder);
                // labels.csv: one row per image unit, here the series (its folder as path).
                rows.push([format!("{dir}/{folder}"), patient.to_string(), study.clone()]);
                for (&i, name) in idx.iter().zip(&names) {
                    let f = &files[i];
                    let rel = format!("{folder}/{name}");
                    source.insert(rel.clone(), json!({"archive": f.archive, "path": f.path}));
                    archives.insert(f.archive.as_str());
                    let rel_path = format!("{dir}/{rel}");
                    out_files.push(DatasetFile { rel_path, source: f.id });
                    if let Some(m) = &f.info.modality {
                        modalities.insert(m.clone());
                    }
                }
                if let (Some(content), false) = (content, kinds.is_empty()) {
                    let rel: Vec<String> = names.iter().map(|n| format!("{folder}/{n}")).collect();
                    let series = crate::derive::Study {
                        dataset: slug,
                        dir: &dir,
                        files: idx
                            .iter()
                            .zip(&rel)
                            .map(|(&i, name)| StudyFile {
                                name,
                                role: "",
                                id: files[i].id,
                                size: files[i].size,
                                dicom: Some(&files[i].info),
                            })
                            .collect(),
                        planned: &[],
                    };
                    for p in crate::derive::plan_study(kinds, series, STUDY_RESERVED, content, &mut warnings) {
                        let kind = crate::derive::by_id(p.spec.kind).map_or("", |k| k.name());
                        let from: Vec<&str> = p
                            .spec
                            .inputs
                            .iter()
                            .filter_map(|id| idx.iter().position(|&i| files[i].id == *id).map(|k| rel[k].as_str()))
                            .collect();
                        derived.insert(p.name.clone(), json!({"kind": kind, "from": from}));
                        for (&i, r) in idx.iter().zip(&rel) {
                            rel_of.insert(files[i].id, r.clone());
                        }
                        study_planned.push(p.clone());
                        let rel_path = format!("{dir}/{}", p.name);
                        if p.beside.is_some() {
                            rows.push([rel_path.clone(), patient.to_string(), study.clone()]);
                        }
                        out_derived.push(DerivedFile { rel_path, spec: p.spec, size: p.size });
                    }
                }
                // Series facts: from the instances in InstanceNumber order (missing last), the
                // first value present.
                let inst = by_instance(files, idx);
                let fi = || inst.iter().copied();
                series_json.insert(
                    folder.clone(),
                    json!({
                        "series_instance_uid": opt_str(series_raw),
                        "series_number": first(fi(), |i| i.series_number),
                        "modality": first(fi(), |i| i.modality.clone()),
                        "series_description": first(fi(), |i| i.series_description.clone()),
                        "body_part": first(fi(), |i| i.body_part.clone()),
                        "manufacturer": first(fi(), |i| i.manufacturer.clone()),
                        "num_instances": idx.len(),
                        "rows": first(fi(), |i| i.rows),
                        "columns": first(fi(), |i| i.columns),
                        "pixel_spacing": first(fi(), |i| i.pixel_spacing).map(|p| vec![num(p[0]), num(p[1])]),
                        "slice_thickness": first(fi(), |i| i.slice_thickness).map(num),
                        "transfer_syntax": first(fi(), |i| i.transfer_syntax.clone()),
                    }),
                );
            }
            // A preview of the study (a volume's middle slice, downscaled) beside its series
            // folders, so a file manager shows a picture there; in no labels.csv row.
            if let (Some(content), Some(preview)) = (content, crate::derive::by_name("preview"))
                && !study_planned.is_empty()
            {
                let view =
                    crate::derive::Study { dataset: slug, dir: &dir, files: Vec::new(), planned: &study_planned };
                for p in preview.plan(&view, content, &mut warnings) {
                    let from: Vec<&str> =
                        p.spec.inputs.iter().filter_map(|id| rel_of.get(id).map(String::as_str)).collect();
                    derived.insert(p.name.clone(), json!({"kind": preview.name(), "from": from}));
                    out_derived.push(DerivedFile { rel_path: format!("{dir}/{}", p.name), spec: p.spec, size: p.size });
                }
            }
            let modality = if modalities.len() == 1 { modalities.iter().next().cloned() } else { None };
            let mut meta = json!({
                "split": null,
                "source": source,
                "patient_id": first(sfiles.iter().copied(), |i| i.patient_id.clone()),
                "study_instance_uid": opt_str(study_raw),
                "study_id": first(sfiles.iter().copied(), |i| i.study_id.clone()),
                "modality": modality,
                "modalities": modalities,
                "study_date": first(sfiles.iter().copied(), |i| i.study_date.clone()),
                "study_description": first(sfiles.iter().copied(), |i| i.study_description.clone()),
                "series": series_json,
            });
            if !derived.is_empty() {
                meta["derived"] = Value::Object(derived);
            }
            generated.push(GeneratedFile { rel_path: format!("{dir}/labels.json"), bytes: sidecar::json(&json!({})) });
            generated.push(GeneratedFile { rel_path: format!("{dir}/metadata.json"), bytes: sidecar::json(&meta) });
        }
    }

    rows.sort();
    let mut csv = LabelsCsv::new(&[]);
    for [path, patient, study] in rows {
        csv.row(&[path, patient, study, String::new()]);
    }
    let dataset_json = json!({
        "slug": slug,
        "title": title(&archives),
        "homepage": null,
        "organized_by": "DICOM tags: PatientID / study (StudyDate-StudyID-StudyDescription-end of StudyInstanceUID) / series (SeriesNumber-SeriesDescription-end of SeriesInstanceUID)",
        "source_archives": archives.iter().collect::<Vec<_>>(),
        "counts": {"patients": by_patient.len(), "studies": n_studies, "series": n_series, "files": out_files.len()},
    });
    sidecar::finish_dataset(&mut out_files, &mut generated, &dataset_json, csv);
    out_derived.sort_by(|a, b| a.rel_path.cmp(&b.rel_path));
    Dataset { slug: slug.to_string(), files: out_files, generated, derived: out_derived, warnings }
}

/// `DICOM files of a.zip, b.zip`; past three archives, the first three and how many more.
fn title(archives: &BTreeSet<&str>) -> String {
    let shown: Vec<&str> = archives.iter().copied().take(3).collect();
    let more = archives.len().saturating_sub(shown.len());
    let list = shown.iter().map(|a| if a.is_empty() { "loose files" } else { a }).collect::<Vec<_>>().join(", ");
    if more == 0 { format!("DICOM files of {list}") } else { format!("DICOM files of {list} and {more} more archives") }
}

/// Names of the files `idx` (source order) in one series folder: basenames, with colliding
/// ones renamed (module documentation).
fn file_names(files: &[DicomFile], idx: &[usize], warnings: &mut Vec<String>, dir: &str, folder: &str) -> Vec<String> {
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for &i in idx {
        *count.entry(basename(&files[i].path)).or_default() += 1;
    }
    let plain: BTreeSet<&str> = count.iter().filter(|(_, n)| **n == 1).map(|(b, _)| *b).collect();
    let mut used: BTreeSet<String> = plain.iter().map(|s| s.to_string()).collect();
    idx.iter()
        .map(|&i| {
            let f = &files[i];
            let base = basename(&f.path);
            if plain.contains(base) {
                return base.to_string();
            }
            let (stem, ext) = split_ext(base);
            let sop = folder_name(f.info.sop_uid.as_deref().unwrap_or("nosop"), &[]);
            let mut name = format!("{stem}_{sop}{ext}");
            let mut n = 2;
            while used.contains(&name) || name.len() > MAX_NAME {
                let extra = if used.contains(&name) { format!("~{n}") } else { String::new() };
                let keep = MAX_NAME.saturating_sub(extra.len() + ext.len());
                let body = format!("{stem}_{sop}");
                name = format!("{}{extra}{ext}", cut(&body, keep));
                if !used.contains(&name) && name.len() <= MAX_NAME {
                    break;
                }
                n += 1;
            }
            warnings.push(format!(
                "{}:{} shown as {dir}/{folder}/{name} (basename shared within the series)",
                f.archive, f.path
            ));
            used.insert(name.clone());
            name
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dicom::parse_header;
    use crate::dicom::testgen::{Opts, Syntax, ct_info, write};

    fn file(id: u32, archive: &str, path: &str, info: DicomInfo) -> DicomFile {
        DicomFile { id: (0, id), archive: archive.into(), path: path.into(), size: 1000 + id as u64, info }
    }

    fn get<'a>(d: &'a Dataset, rel: &str) -> &'a str {
        let g = d.generated.iter().find(|g| g.rel_path == rel).unwrap_or_else(|| panic!("no {rel}"));
        std::str::from_utf8(&g.bytes).unwrap()
    }

    fn json_of(d: &Dataset, rel: &str) -> Value {
        serde_json::from_str(get(d, rel)).unwrap()
    }

    /// A small collection parsed from generated bytes: 2 patients, one with 2 studies (CT + CR),
    /// a CT study with 2 series, NBIA-like paths.
    fn collection() -> Vec<DicomFile> {
        let mut out = Vec::new();
        let mut id = 0;
        for p in 1..=2usize {
            for (study, series_list, n) in [(1usize, vec![1usize, 2], 3usize), (2, vec![1], 1)] {
                if p == 2 && study == 2 {
                    continue;
                }
                for &se in &series_list {
                    for k in 0..n {
                        let mut info = ct_info(p, study, se, k);
                        if study == 2 {
                            info.modality = Some("CR".into());
                            info.study_description = Some("Chest PA Lateral".into());
                        }
                        let syntax = if k % 2 == 0 { Syntax::ImplicitLe } else { Syntax::ExplicitLe };
                        let bytes = write(&info, &Opts { syntax, ..Opts::default() });
                        let parsed = parse_header(&bytes).unwrap();
                        let path = format!(
                            "manifest-1600000000000/LIDC-IDRI/LIDC-IDRI-{p:04}/01-01-2000-NA-{study}/{se}.000000-NA-{se}/1-{:02}.dcm",
                            k + 1
                        );
                        out.push(file(id, "manifest-1600000000000.zip", &path, parsed));
                        id += 1;
                    }
                }
            }
        }
        out
    }

    #[test]
    fn tree_and_sidecars() {
        let files = collection();
        let d = organize_dicom("manifest-1600000000000", &files);
        assert_eq!(d.slug, "manifest-1600000000000");
        assert!(d.warnings.is_empty(), "{:?}", d.warnings);
        assert_eq!(d.files.len(), files.len());
        let i0 = &files[0].info;
        let (p, st_uid, se_uid) =
            (i0.patient_id.clone().unwrap(), i0.study_uid.clone().unwrap(), i0.series_uid.clone().unwrap());
        // Descriptive names: date, StudyID (none: NA), description, end of the UID.
        let (st, se) = ("01-01-2000-NA-CT CHEST W CONT-60011".to_string(), "3001.000000-Recon 1-00111".to_string());
        assert!(st_uid.ends_with("60011") && se_uid.ends_with("00111"));
        let first = &d.files.iter().find(|f| f.source == (0, 0)).unwrap().rel_path;
        assert_eq!(first, &format!("{p}/{st}/{se}/1-01.dcm"));
        // The radiograph study of the same patient: its own description, its own UID end.
        assert!(d.files.iter().any(|f| {
            f.rel_path.starts_with(&format!("{p}/01-01-2000-NA-Chest PA Lateral-60012/3001.000000-Recon 1-00121/"))
        }));
        // Paths sorted, sidecars present.
        let mut sorted = d.files.clone();
        sorted.sort_by(|a, b| a.rel_path.cmp(&b.rel_path));
        assert_eq!(sorted, d.files);
        let names: Vec<&str> = d.generated.iter().map(|g| g.rel_path.as_str()).collect();
        assert_eq!(names.iter().filter(|n| n.ends_with("/patient.json")).count(), 2);
        assert_eq!(names.iter().filter(|n| n.ends_with("/metadata.json")).count(), 3);
        assert_eq!(names.iter().filter(|n| n.ends_with("/labels.json")).count(), 3);
        assert_eq!(get(&d, &format!("{p}/{st}/labels.json")), "{}\n");

        let ds = json_of(&d, "dataset.json");
        assert_eq!(ds["counts"], json!({"patients": 2, "studies": 3, "series": 5, "files": 13}));
        assert_eq!(ds["source_archives"], json!(["manifest-1600000000000.zip"]));
        // Same style as the other sidecars: pretty, sorted keys, trailing newline.
        let text = get(&d, "dataset.json");
        assert!(text.starts_with("{\n  \"counts\": {") && text.ends_with("}\n"), "{text}");

        let pj = json_of(&d, &format!("{p}/patient.json"));
        assert_eq!(pj, json!({"PatientAge": "041Y", "PatientSex": "F"}));

        let meta = json_of(&d, &format!("{p}/{st}/metadata.json"));
        assert_eq!(meta["split"], Value::Null);
        assert_eq!(meta["modality"], "CT");
        assert_eq!(meta["modalities"], json!(["CT"]));
        assert_eq!(meta["study_date"], "20000101");
        assert_eq!(meta["study_description"], "CT CHEST W CONT");
        assert_eq!(meta["study_instance_uid"], st_uid.as_str());
        assert_eq!(meta["source"].as_object().unwrap().len(), 6);
        assert_eq!(
            meta["source"][format!("{se}/1-01.dcm")],
            json!({"archive": "manifest-1600000000000.zip", "path": files[0].path})
        );
        let s = &meta["series"][se.as_str()];
        assert_eq!(meta["series"].as_object().unwrap().len(), 2);
        assert_eq!(
            *s,
            json!({"series_instance_uid": se_uid, "series_number": 3001, "modality": "CT",
                   "series_description": "Recon 1", "body_part": "CHEST",
                   "manufacturer": "GE MEDICAL SYSTEMS", "num_instances": 3, "rows": 512,
                   "columns": 512, "pixel_spacing": [0.703125, 0.703125], "slice_thickness": 2.5,
                   "transfer_syntax": "1.2.840.10008.1.2"})
        );
        let csv = get(&d, "labels.csv");
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], "path,patient,study,split");
        assert_eq!(lines.len(), 1 + 5, "one row per series: {csv}");
        assert!(lines.contains(&format!("{p}/{st}/{se},{p},{st},").as_str()), "{csv}");
    }

    /// A kind made per series: one file in the series folder, beside the series' first file,
    /// whose bytes are the number of instances it saw.
    struct PerSeries;

    impl crate::derive::Kind for PerSeries {
        fn id(&self) -> crate::derive::KindId {
            250
        }
        fn name(&self) -> &'static str {
            "per_series"
        }
        fn plan(
            &self,
            study: &crate::derive::Study<'_>,
            _: &dyn ContentSource,
            _: &mut Vec<String>,
        ) -> Vec<crate::derive::Planned> {
            assert!(study.files.iter().all(|f| f.role.is_empty() && f.dicom.is_some() && f.size >= 1000));
            let folder = study.files[0].name.split('/').next().unwrap();
            let n = study.files.len().to_string().into_bytes();
            vec![crate::derive::Planned {
                name: format!("{folder}/{folder}.n"),
                size: n.len() as u64,
                spec: crate::derive::Spec { kind: 250, inputs: study.files.iter().map(|f| f.id).collect(), params: n },
                beside: Some(0),
            }]
        }
        fn parts(&self, spec: &crate::derive::Spec) -> Result<Vec<u64>, String> {
            Ok(vec![spec.params.len() as u64])
        }
        fn render(
            &self,
            spec: &crate::derive::Spec,
            _: usize,
            _: &crate::derive::RenderCx<'_>,
        ) -> std::io::Result<Vec<u8>> {
            Ok(spec.params.clone())
        }
        fn dicom_series(&self) -> bool {
            true
        }
    }

    struct NoContent;
    impl ContentSource for NoContent {
        fn read_all(&self, _: (u32, u32)) -> std::io::Result<Vec<u8>> {
            Err(std::io::Error::other("not read"))
        }
    }

    #[test]
    fn series_kinds_plan_one_file_per_series_folder_listed_like_the_originals() {
        let files = collection();
        let plain = organize_dicom("x", &files);
        assert!(plain.derived.is_empty());
        let d = organize_dicom_with("x", &files, &[&PerSeries], Some(&NoContent));
        assert_eq!(d.files, plain.files, "the originals are untouched");
        // One per series: patient 1 has two CT series and a CR one, patient 2 two CT series.
        assert_eq!(d.derived.len(), 5, "{:?}", d.derived);
        for f in &d.derived {
            let parts: Vec<&str> = f.rel_path.split('/').collect();
            assert_eq!(parts.len(), 4, "{}", f.rel_path);
            assert_eq!(parts[3], format!("{}.n", parts[2]));
            let n: usize = String::from_utf8(f.spec.params.clone()).unwrap().parse().unwrap();
            assert_eq!(f.spec.inputs.len(), n);
            let csv = get(&d, "labels.csv");
            assert!(csv.lines().any(|l| l.starts_with(&format!("{},{},{},", f.rel_path, parts[0], parts[1]))), "{csv}");
            let meta = json_of(&d, &format!("{}/{}/metadata.json", parts[0], parts[1]));
            let from = meta["derived"][format!("{}/{}", parts[2], parts[3])]["from"].as_array().unwrap().len();
            assert_eq!(from, n);
        }
        // Deterministic: another order gives the same derived files.
        let mut rev = files.clone();
        rev.reverse();
        assert_eq!(organize_dicom_with("x", &rev, &[&PerSeries], Some(&NoContent)), d);
    }

    #[test]
    fn deterministic_under_reordering() {
        let files = collection();
        let a = organize_dicom("x", &files);
        let mut rev = files.clone();
        rev.reverse();
        rev.swap(1, 4);
        assert_eq!(organize_dicom("x", &rev), a);
    }

    #[test]
    fn missing_ids_odd_ids_and_collisions() {
        let base = ct_info(1, 1, 1, 0);
        let mut files = Vec::new();
        // No ids at all.
        files.push(file(0, "a.zip", "x/IM0001", DicomInfo::default()));
        // Ids needing sanitization.
        let mut odd = base.clone();
        odd.patient_id = Some("../evil/..".into());
        odd.study_uid = Some(".".into());
        odd.series_uid = Some("labels.json".into());
        files.push(file(1, "a.zip", "y/1.dcm", odd.clone()));
        // Sanitizes to the same folder as "../evil/.." → hash suffix.
        let mut twin = base.clone();
        twin.patient_id = Some(".._evil_..".into());
        files.push(file(2, "a.zip", "y/2.dcm", twin));
        // A patient named like a dataset-level sidecar; a very long one.
        let mut res = base.clone();
        res.patient_id = Some("labels.csv".into());
        files.push(file(3, "a.zip", "z/3.dcm", res));
        let mut long = base.clone();
        long.patient_id = Some("é".repeat(200));
        files.push(file(4, "a.zip", "z/4.dcm", long));
        // Same basename twice in one series, same SOP twice.
        let mut s1 = base.clone();
        s1.sop_uid = Some("1.2.3.1".into());
        files.push(file(5, "a.zip", "layout1/1-001.dcm", s1.clone()));
        files.push(file(6, "a.zip", "layout2/1-001.dcm", s1.clone()));
        let mut s2 = base.clone();
        s2.sop_uid = Some("1.2.3.2".into());
        files.push(file(7, "a.zip", "layout3/1-001.dcm", s2));

        let d = organize_dicom("a", &files);
        let paths: Vec<&str> = d.files.iter().map(|f| f.rel_path.as_str()).collect();
        assert!(paths.contains(&"unknown/unknown-study/unknown-series/IM0001"), "{paths:?}");
        // "../evil/.." sanitizes to ".._evil_..", which another PatientID is verbatim: the
        // verbatim one keeps the name.
        let odd_path = paths.iter().find(|p| p.ends_with("/1.dcm")).unwrap();
        assert!(
            odd_path.starts_with(".._evil_..~")
                && odd_path.ends_with("/01-01-2000-NA-CT CHEST W CONT-./3001.000000-Recon 1-.json/1.dcm"),
            "{odd_path}"
        );
        let twin_path = paths.iter().find(|p| p.ends_with("/2.dcm")).unwrap();
        assert!(twin_path.starts_with(".._evil_../"), "{twin_path}");
        assert!(paths.iter().any(|p| p.starts_with("_labels.csv/")));
        let long_path = paths.iter().find(|p| p.ends_with("/4.dcm")).unwrap();
        let long_dir = long_path.split('/').next().unwrap();
        assert!(long_dir.len() <= 255 && long_dir.contains('~'), "{long_dir}");
        let dir = "LIDC-IDRI-0001/01-01-2000-NA-CT CHEST W CONT-60011/3001.000000-Recon 1-00111";
        for want in ["1-001_1.2.3.1.dcm", "1-001_1.2.3.1~2.dcm", "1-001_1.2.3.2.dcm"] {
            assert!(paths.contains(&format!("{dir}/{want}").as_str()), "{want} in {paths:?}");
        }
        // The first in (archive, path) order keeps the plain SOP name.
        let f5 = d.files.iter().find(|f| f.source == (0, 5)).unwrap();
        assert!(f5.rel_path.ends_with("/1-001_1.2.3.1.dcm"));
        // Every component is a valid name; no two files share a path.
        for p in &paths {
            for c in p.split('/') {
                assert!(!c.is_empty() && c != "." && c != ".." && c.len() <= 255 && !c.contains('\0'));
            }
        }
        let uniq: BTreeSet<&&str> = paths.iter().collect();
        assert_eq!(uniq.len(), paths.len());
        assert!(d.warnings.iter().any(|w| w.contains("without PatientID")));
        assert!(d.warnings.iter().any(|w| w.contains("basename shared")));
        assert_eq!(json_of(&d, "unknown/patient.json"), json!({}));
        let meta = json_of(&d, "unknown/unknown-study/metadata.json");
        assert_eq!(meta["study_instance_uid"], Value::Null);
        assert_eq!(meta["modality"], Value::Null);
        assert_eq!(meta["series"]["unknown-series"]["num_instances"], 1);
        // Order independence holds with collisions too.
        let mut rev = files.clone();
        rev.reverse();
        assert_eq!(organize_dicom("a", &rev), d);
    }

    #[test]
    fn descriptive_names() {
        assert_eq!(
            study_folder(
                Some("19981205"),
                None,
                Some("RT SIMULATION"),
                "1.3.6.1.4.1.14519.5.2.1.1706.8040.141473127645431244275904143582"
            ),
            "12-05-1998-NA-RT SIMULATION-43582"
        );
        assert_eq!(study_folder(Some("20170829"), Some("DDSM"), None, "1.2.96009"), "08-29-2017-DDSM-NA-96009");
        // Double spaces kept; separators and control characters replaced; a bad date is NA.
        assert_eq!(
            study_folder(Some("2000-01-01"), Some(" "), Some("PETCT HEAD  NECK/CA\\x\ty "), "12"),
            "NA-NA-PETCT HEAD  NECK_CA_x_y-12"
        );
        assert_eq!(series_folder(Some(601), Some("PETCoronal"), "1.2.3.31515"), "601.000000-PETCoronal-31515");
        assert_eq!(series_folder(Some(3000566), None, "1.03192"), "3000566.000000-NA-03192");
        assert_eq!(series_folder(None, Some("NA"), "1.2.28768"), "NA-28768");
        assert_eq!(series_folder(Some(-1), Some("x"), "1"), "-1.000000-x-1");
    }

    /// Two series of one study whose descriptive names collide: the smaller UID keeps the name,
    /// whatever the order the files come in; the UIDs stay in metadata.json.
    #[test]
    fn colliding_names_are_numbered_in_uid_order() {
        let mut files = Vec::new();
        for (k, uid) in ["1.2.9.12345", "1.2.8.12345", "1.2.7.12345"].iter().enumerate() {
            let mut info = ct_info(1, 1, 1, k);
            info.series_uid = Some(uid.to_string());
            files.push(file(k as u32, "a.zip", &format!("s{k}/1.dcm"), info));
        }
        let d = organize_dicom("a", &files);
        let study = "LIDC-IDRI-0001/01-01-2000-NA-CT CHEST W CONT-60011";
        let where_ = |id: u32| d.files.iter().find(|f| f.source == (0, id)).unwrap().rel_path.clone();
        assert_eq!(where_(2), format!("{study}/3001.000000-Recon 1-12345/1.dcm"));
        assert_eq!(where_(1), format!("{study}/3001.000000-Recon 1-12345~2/1.dcm"));
        assert_eq!(where_(0), format!("{study}/3001.000000-Recon 1-12345~3/1.dcm"));
        let meta = json_of(&d, &format!("{study}/metadata.json"));
        assert_eq!(meta["series"]["3001.000000-Recon 1-12345~2"]["series_instance_uid"], "1.2.8.12345");
        // A suffixed name never takes a name another value has on its own.
        let names = unique_names(vec![
            (Some("b".into()), "x".into()),
            (Some("a".into()), "x".into()),
            (Some("c".into()), "x~2".into()),
            (None, "x".into()),
        ]);
        let got: Vec<(&str, &str)> = names.iter().map(|(k, v)| (k.as_deref().unwrap_or("-"), v.as_str())).collect();
        assert_eq!(got, [("-", "x~4"), ("a", "x"), ("b", "x~3"), ("c", "x~2")]);
        let mut rev = files.clone();
        rev.reverse();
        assert_eq!(organize_dicom("a", &rev), d);
    }

    /// One patient's series spread over two archives (and a third archive holding a second
    /// study of it): one patient folder, one study folder holding both series.
    #[test]
    fn a_patient_across_archives_is_merged() {
        let mut files = Vec::new();
        for (id, (archive, se)) in [("part1.zip", 1), ("part2.zip", 2)].into_iter().enumerate() {
            files.push(file(id as u32, archive, &format!("x/{se}/1-1.dcm"), ct_info(3, 1, se, 0)));
        }
        files.push(file(2, "part3.zip", "y/1-1.dcm", ct_info(3, 2, 1, 0)));
        let d = organize_dicom("c", &files);
        let ds = json_of(&d, "dataset.json");
        assert_eq!(ds["counts"], json!({"patients": 1, "studies": 2, "series": 3, "files": 3}));
        assert_eq!(ds["source_archives"], json!(["part1.zip", "part2.zip", "part3.zip"]));
        assert_eq!(ds["title"], "DICOM files of part1.zip, part2.zip, part3.zip");
        let meta = json_of(&d, "LIDC-IDRI-0003/01-01-2000-NA-CT CHEST W CONT-60031/metadata.json");
        assert_eq!(meta["series"].as_object().unwrap().len(), 2);
        assert_eq!(
            meta["source"]["3002.000000-Recon 2-00312/1-1.dcm"],
            json!({"archive": "part2.zip", "path": "x/2/1-1.dcm"})
        );
    }

    #[test]
    fn folder_name_rules() {
        assert_eq!(folder_name("1.2.3", &[]), "1.2.3");
        assert_eq!(folder_name("a/b\0c", &[]), "a_b_c");
        assert_eq!(folder_name("..", &[]), "_..");
        assert_eq!(folder_name("", &[]), "_");
        assert_eq!(folder_name("patient.json", PATIENT_RESERVED), "_patient.json");
        let long = "x".repeat(300);
        let n = folder_name(&long, &[]);
        assert_eq!(n.len(), 255);
        assert_eq!(n, folder_name(&long, &[]));
    }
}
