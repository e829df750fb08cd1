//! Evaluation of compiled fields for one study: sources, then the fixed modifier pipeline.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Number, Value};

use crate::organize::table::LoadedTable;
use crate::organize::{ContentSource, PoolFile, transform};
use crate::profile::Profile;
use crate::profile::field::{ALL_ROLES, Cond, Field, Source, Test, Transform, Type};

/// Conversion problems, grouped per (key, problem) so one bad column gives one warning.
#[derive(Default)]
pub struct Problems {
    map: BTreeMap<(String, String), (usize, String)>,
}

impl Problems {
    fn add(&mut self, key: &str, problem: String, example: String) {
        let e = self.map.entry((key.to_string(), problem)).or_insert((0, example));
        e.0 += 1;
    }

    /// One line per kind of problem.
    pub fn into_warnings(self) -> Vec<String> {
        self.map
            .into_iter()
            .map(|((key, problem), (n, ex))| format!("`{key}`: {n} value(s) {problem}, e.g. {ex}; written as null"))
            .collect()
    }
}

/// Everything fixed for one dataset while its studies are evaluated.
pub struct Env<'a> {
    pub profile: &'a Profile,
    pub pool: &'a [PoolFile],
    pub content: &'a dyn ContentSource,
    pub tables: &'a [LoadedTable],
    /// Resolved column index of each `profile.columns` entry.
    pub columns: &'a [Option<usize>],
    pub problems: RefCell<Problems>,
    /// Image sizes already read, by pool index.
    pub sizes: RefCell<HashMap<usize, Option<(u64, u64)>>>,
    /// Volume headers already read, by pool index.
    pub volumes: RefCell<HashMap<usize, Option<transform::VolumeHeader>>>,
}

/// A file of a study as fields see it.
pub struct StudyFile<'a> {
    pub role: usize,
    pub name: &'a str,
    pub pool: usize,
    pub caps: &'a [Option<String>],
}

/// One study as fields see it.
pub struct StudyView<'a> {
    /// Patient id, for messages.
    pub patient: &'a str,
    /// Study id, for messages.
    pub study: &'a str,
    pub caps: &'a [Option<String>],
    /// Sorted by name.
    pub files: Vec<StudyFile<'a>>,
    /// Joined row numbers per table.
    pub rows: Vec<&'a [u32]>,
}

/// Order of `each` objects: numbers (numerically) before text, null last.
fn sort_key(v: Option<&Value>) -> (u8, f64, String) {
    match v {
        Some(Value::Number(n)) => (0, n.as_f64().unwrap_or(0.0), String::new()),
        Some(Value::String(s)) => (1, 0.0, s.clone()),
        Some(Value::Null) | None => (3, 0.0, String::new()),
        Some(other) => (2, 0.0, other.to_string()),
    }
}

impl StudyView<'_> {
    /// `patient/study`, for messages.
    pub fn label(&self) -> String {
        format!("{}/{}", self.patient, self.study)
    }
}

impl Env<'_> {
    /// Evaluates `field` (named `key` for messages) for `study`; `row` is the current row while
    /// building the objects of a `rows` source.
    pub fn eval(&self, key: &str, field: &Field, study: &StudyView, row: Option<(usize, u32)>) -> Value {
        if let Some(c) = &field.when
            && !self.cond(c, study)
        {
            return field.default.clone().unwrap_or(Value::Null);
        }
        let v = self.source(key, field, study, row);
        let v = match v {
            Value::String(s) => self.pipeline(key, field, &s, study),
            other => other,
        };
        match v {
            Value::Null => field.default.clone().unwrap_or(Value::Null),
            v => v,
        }
    }

    /// Whether a condition holds for the study.
    pub fn cond(&self, c: &Cond, study: &StudyView) -> bool {
        match c {
            Cond::Capture { slot, test } => match study.caps.get(*slot).and_then(|v| v.as_deref()) {
                None | Some("") => false,
                Some(v) => match test {
                    Test::Present => true,
                    Test::Equals(e) => v == e,
                    Test::Matches(re) => re.is_match(v),
                },
            },
            Cond::Exists(t) => !study.rows[*t].is_empty(),
            Cond::File(r) => study.files.iter().any(|f| f.role == *r),
        }
    }

    fn source(&self, key: &str, field: &Field, study: &StudyView, row: Option<(usize, u32)>) -> Value {
        let s = |o: Option<&str>| o.map(|x| Value::String(x.to_string())).unwrap_or(Value::Null);
        match &field.source {
            Source::Capture(slot) => s(study.caps.get(*slot).and_then(|v| v.as_deref())),
            Source::Template(t) => Value::String(t.render(study.caps)),
            Source::Column(cu) => {
                let table = self.profile.columns[*cu].table;
                let r = match row {
                    Some((t, r)) if t == table => Some(r),
                    _ => study.rows[table].first().copied(),
                };
                let cell = r.and_then(|r| {
                    let col = self.columns[*cu]?;
                    self.tables[table].rows[r as usize].get(col)
                });
                s(cell)
            }
            Source::Value(v) => v.clone(),
            Source::Exists(t) => Value::Bool(!study.rows[*t].is_empty()),
            Source::File(role) => s(study.files.iter().find(|f| f.role == *role).map(|f| f.name)),
            Source::Files { role, key: None } => Value::Array(
                study.files.iter().filter(|f| f.role == *role).map(|f| Value::String(f.name.to_string())).collect(),
            ),
            Source::Files { role, key: Some(k) } => Value::Object(
                study
                    .files
                    .iter()
                    .filter(|f| f.role == *role)
                    .map(|f| (k.render(f.caps), Value::String(f.name.to_string())))
                    .collect(),
            ),
            Source::Count(role) => Value::from(study.files.iter().filter(|f| f.role == *role).count()),
            Source::Rows { table, fields, sort } => {
                let mut out: Vec<Map<String, Value>> = study.rows[*table]
                    .iter()
                    .map(|r| {
                        fields
                            .iter()
                            .map(|(k, f)| (k.clone(), self.eval(&format!("{key}.{k}"), f, study, Some((*table, *r)))))
                            .collect()
                    })
                    .collect();
                if let Some(s) = sort {
                    out.sort_by(|a, b| {
                        sort_key(a.get(s)).partial_cmp(&sort_key(b.get(s))).unwrap_or(std::cmp::Ordering::Equal)
                    });
                }
                Value::Array(out.into_iter().map(Value::Object).collect())
            }
            Source::First(alts) => {
                alts.iter().map(|a| self.eval(key, a, study, row)).find(|v| !v.is_null()).unwrap_or(Value::Null)
            }
            Source::TableFile(t) => s(self.tables[*t].source_name.as_deref()),
            Source::Transform { transform, role } => self.transform(key, *transform, *role, study),
            Source::Worst { column, order } => {
                let table = self.profile.columns[*column].table;
                let Some(col) = self.columns[*column] else {
                    return Value::Null;
                };
                study.rows[table]
                    .iter()
                    .filter_map(|r| self.tables[table].rows[*r as usize].get(col))
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .enumerate()
                    .min_by_key(|(i, c)| (order.iter().position(|o| o == c).unwrap_or(order.len()), *i))
                    .map(|(_, c)| Value::String(c.to_string()))
                    .unwrap_or(Value::Null)
            }
            Source::Lookup { column, key } => {
                let table = self.profile.columns[*column].table;
                let lt = &self.tables[table];
                let cell = lt
                    .index
                    .get(key.render(study.caps).as_str())
                    .and_then(|rows| rows.first())
                    .and_then(|r| lt.rows[*r as usize].get(self.columns[*column]?));
                s(cell)
            }
            Source::Dicom { keyword, role } => study
                .files
                .iter()
                .filter(|f| role.is_none_or(|r| f.role == r))
                .find_map(|f| self.pool[f.pool].dicom.as_ref())
                .and_then(|d| crate::profile::dicomtag::value(d, keyword))
                .unwrap_or(Value::Null),
            Source::Each { role, fields, sort, group, item } => {
                let mut groups: Vec<Vec<&StudyFile>> = Vec::new();
                match group {
                    None => groups
                        .extend(study.files.iter().filter(|f| f.role == *role || *role == ALL_ROLES).map(|f| vec![f])),
                    Some(t) => {
                        let mut by: BTreeMap<String, Vec<&StudyFile>> = BTreeMap::new();
                        for f in study.files.iter().filter(|f| f.role == *role || *role == ALL_ROLES) {
                            by.entry(t.render(f.caps)).or_default().push(f);
                        }
                        groups.extend(by.into_values());
                    }
                }
                let mut out: Vec<Map<String, Value>> = groups
                    .into_iter()
                    .map(|g| {
                        let one = StudyView {
                            patient: study.patient,
                            study: study.study,
                            caps: g[0].caps,
                            files: g
                                .iter()
                                .map(|f| StudyFile { role: f.role, name: f.name, pool: f.pool, caps: f.caps })
                                .collect(),
                            rows: study.rows.clone(),
                        };
                        match item {
                            Some(it) => {
                                let mut m = Map::new();
                                m.insert(String::new(), self.eval(key, it, &one, row));
                                m
                            }
                            None => fields
                                .iter()
                                .map(|(k, fl)| (k.clone(), self.eval(&format!("{key}.{k}"), fl, &one, row)))
                                .collect(),
                        }
                    })
                    .collect();
                if item.is_some() {
                    return Value::Array(
                        out.into_iter().filter_map(|mut m| m.remove("")).filter(|v| !v.is_null()).collect(),
                    );
                }
                if let Some(s) = sort {
                    // Stable: equal keys keep file-name order.
                    out.sort_by(|a, b| {
                        sort_key(a.get(s)).partial_cmp(&sort_key(b.get(s))).unwrap_or(std::cmp::Ordering::Equal)
                    });
                }
                Value::Array(out.into_iter().map(Value::Object).collect())
            }
            Source::Object(fields) => Value::Object(
                fields.iter().map(|(k, f)| (k.clone(), self.eval(&format!("{key}.{k}"), f, study, row))).collect(),
            ),
        }
    }

    fn transform(&self, key: &str, t: Transform, role: usize, study: &StudyView) -> Value {
        let mut files = study.files.iter().filter(|f| f.role == role);
        match t {
            Transform::DdsmIcs => {
                let Some(f) = files.next() else {
                    return Value::Null;
                };
                match self.read_text(key, f.pool, study) {
                    Some(text) => transform::ddsm_ics(&text),
                    None => Value::Null,
                }
            }
            Transform::DdsmOverlays => {
                let mut out = Vec::new();
                for f in files {
                    let view = transform::ddsm_view(f.name).unwrap_or("");
                    if let Some(text) = self.read_text(key, f.pool, study) {
                        out.extend(transform::ddsm_overlay(view, &text));
                    }
                }
                transform::ddsm_sort(&mut out);
                Value::Array(out)
            }
            Transform::ImageWidth | Transform::ImageHeight => {
                let Some(f) = files.next() else {
                    return Value::Null;
                };
                match self.image_size(key, f.pool, study) {
                    Some((w, h)) => Value::from(if t == Transform::ImageWidth { w } else { h }),
                    None => Value::Null,
                }
            }
            Transform::LidcReadingSessions | Transform::LidcNodules | Transform::LidcNonNodules => {
                let mut sessions = 0usize;
                let mut list = Vec::new();
                for f in files {
                    let Some(text) = self.read_text(key, f.pool, study) else { continue };
                    let x = match transform::lidc_xml(&text) {
                        Ok(x) if x.lidc => x,
                        Ok(_) => continue,
                        Err(e) => {
                            let pf = &self.pool[f.pool];
                            self.problems.borrow_mut().add(
                                key,
                                "are not well-formed XML (the file is left out)".into(),
                                format!("{}:{} ({e}) in {}", pf.archive, pf.path, study.label()),
                            );
                            continue;
                        }
                    };
                    // The series: the header's SeriesInstanceUid, else the file's folder in the study.
                    let series = x.series.clone().or_else(|| f.name.rsplit_once('/').map(|(d, _)| d.to_string()));
                    sessions += x.sessions;
                    match t {
                        Transform::LidcNodules => {
                            for (reader, id, malignancy, rois) in x.nodules {
                                list.push(serde_json::json!({"series": series, "reader": reader,
                                    "nodule_id": id, "malignancy": malignancy, "rois": rois}));
                            }
                        }
                        Transform::LidcNonNodules => {
                            for (reader, id) in x.non_nodules {
                                list.push(serde_json::json!({"series": series, "reader": reader, "non_nodule_id": id}));
                            }
                        }
                        _ => {}
                    }
                }
                if t == Transform::LidcReadingSessions { Value::from(sessions) } else { Value::Array(list) }
            }
            Transform::CbisCsvRole => {
                let Some(f) = files.next() else {
                    return Value::Null;
                };
                let pf = &self.pool[f.pool];
                let Some(series) = pf.dicom.as_ref().and_then(|d| d.series_uid.clone()) else {
                    return Value::Null;
                };
                let base = pf.path.rsplit('/').next().unwrap_or(&pf.path);
                let mut paths: Vec<(&'static str, &str)> = Vec::new();
                for (t, rows) in study.rows.iter().enumerate() {
                    let lt = &self.tables[t];
                    for (role, col) in [
                        ("image", "image file path"),
                        ("cropped", "cropped image file path"),
                        ("roi", "roi mask file path"),
                    ] {
                        let Some(c) = lt.header.iter().position(|h| h == col) else { continue };
                        for r in rows.iter() {
                            if let Some(cell) = lt.rows[*r as usize].get(c) {
                                paths.push((role, cell.trim()));
                            }
                        }
                    }
                }
                transform::cbis_csv_role(&series, base, &paths).map_or(Value::Null, |r| Value::String(r.into()))
            }
            Transform::VolumeShape | Transform::VoxelSize => {
                let Some(f) = files.next() else {
                    return Value::Null;
                };
                match self.volume(key, f.pool, study) {
                    Some(h) if t == Transform::VolumeShape => {
                        Value::Array(h.shape.iter().map(|d| Value::from(*d)).collect())
                    }
                    Some(h) => Value::Array(
                        h.voxel_size
                            .iter()
                            .map(|d| Number::from_f64(*d).map(Value::Number).unwrap_or(Value::Null))
                            .collect(),
                    ),
                    None => Value::Null,
                }
            }
        }
    }

    fn volume(&self, key: &str, pool: usize, study: &StudyView) -> Option<transform::VolumeHeader> {
        if let Some(h) = self.volumes.borrow().get(&pool) {
            return h.clone();
        }
        let f = &self.pool[pool];
        let h =
            self.content.read_head(f.id, transform::VOLUME_HEAD).ok().and_then(|head| transform::volume_header(&head));
        if h.is_none() {
            self.problems.borrow_mut().add(
                key,
                "have no readable NIfTI/Analyze header".into(),
                format!("{}:{} in {}", f.archive, f.path, study.label()),
            );
        }
        self.volumes.borrow_mut().insert(pool, h.clone());
        h
    }

    fn read_text(&self, key: &str, pool: usize, study: &StudyView) -> Option<String> {
        let f = &self.pool[pool];
        match self.content.read_all(f.id) {
            Ok(b) => Some(String::from_utf8_lossy(&b).into_owned()),
            Err(e) => {
                self.problems.borrow_mut().add(
                    key,
                    "could not be read".into(),
                    format!("{}:{} ({e}) in {}", f.archive, f.path, study.label()),
                );
                None
            }
        }
    }

    fn image_size(&self, key: &str, pool: usize, study: &StudyView) -> Option<(u64, u64)> {
        if let Some(s) = self.sizes.borrow().get(&pool) {
            return *s;
        }
        let f = &self.pool[pool];
        let size = if f.path.to_ascii_lowercase().ends_with(".img") {
            transform::jsrt_side(f.size).map(|s| (s, s))
        } else {
            match self.content.read_head(f.id, transform::IMAGE_HEAD) {
                Ok(head) => transform::image_size(&head, &mut || self.content.read_all(f.id).ok()),
                Err(_) => None,
            }
        };
        if size.is_none() {
            self.problems.borrow_mut().add(
                key,
                "have no readable image size".into(),
                format!("{}:{} in {}", f.archive, f.path, study.label()),
            );
        }
        self.sizes.borrow_mut().insert(pool, size);
        size
    }

    fn pipeline(&self, key: &str, field: &Field, raw: &str, study: &StudyView) -> Value {
        let t = raw.trim();
        if field.null.iter().any(|n| n == t) {
            return Value::Null;
        }
        let extracted;
        let t = match &field.extract {
            Some(re) => match re.captures(t) {
                Some(c) => {
                    extracted = match &field.rewrite {
                        Some(r) => {
                            let mut out = String::new();
                            c.expand(r, &mut out);
                            Some(out)
                        }
                        None => {
                            c.name("value").or_else(|| c.get(1)).or_else(|| c.get(0)).map(|m| m.as_str().to_string())
                        }
                    };
                    extracted.as_deref().unwrap_or("")
                }
                None => {
                    self.problems.borrow_mut().add(
                        key,
                        "did not match `extract`".into(),
                        format!("`{t}` in {}", study.label()),
                    );
                    return Value::Null;
                }
            },
            None => t,
        };
        if let Some(m) = &field.map {
            // A mapped string that is a `null` token (e.g. `otherwise = ""`) is null.
            match (m.get(t), &field.otherwise) {
                (Some(Value::String(s)), _) | (None, Some(Value::String(s))) => {
                    if field.null.iter().any(|n| n == s.trim()) {
                        return Value::Null;
                    }
                    return self.convert(key, &field.ty, field, s, study);
                }
                (Some(v), _) => return v.clone(),
                (None, Some(o)) => return o.clone(),
                (None, None) => {}
            }
        }
        self.convert(key, &field.ty, field, t, study)
    }

    fn convert(&self, key: &str, ty: &Type, field: &Field, t: &str, study: &StudyView) -> Value {
        let bad = |what: &str| {
            self.problems.borrow_mut().add(key, format!("are not {what}"), format!("`{t}` in {}", study.label()));
            Value::Null
        };
        match ty {
            Type::Keep | Type::String => Value::String(t.to_string()),
            Type::Int => match t.parse::<i64>() {
                Ok(i) => Value::from(i),
                Err(_) => bad("integers"),
            },
            Type::Float => match t.parse::<f64>().ok().and_then(Number::from_f64) {
                Some(n) => Value::Number(n),
                None => bad("numbers"),
            },
            Type::Number => match t.parse::<i64>() {
                Ok(i) => Value::from(i),
                Err(_) => match t.parse::<f64>().ok().and_then(Number::from_f64) {
                    Some(n) => Value::Number(n),
                    None => bad("numbers"),
                },
            },
            Type::Bool => match t.to_ascii_lowercase().as_str() {
                "true" | "t" | "yes" | "y" | "1" => Value::Bool(true),
                "false" | "f" | "no" | "n" | "0" => Value::Bool(false),
                _ => bad("booleans"),
            },
            Type::List(item) => Value::Array(
                t.split(field.separator.as_str())
                    .map(str::trim)
                    .filter(|x| !x.is_empty() && !field.remove.iter().any(|r| r == x))
                    .map(|x| self.convert(key, item, field, x, study))
                    .filter(|v| !v.is_null())
                    .collect(),
            ),
        }
    }
}
