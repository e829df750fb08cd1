//! Compiled value expressions: where a labels/metadata/split value comes from and how it is typed.
//!
//! A field is one *source* (a capture, a table column, a constant, a study file's name, ...)
//! followed by a fixed pipeline of modifiers: `when` → null tokens → `extract` → `map` /
//! `otherwise` → `type` (+ `separator`, `remove`) → `default`. The order is fixed so that a
//! profile reads the same way whatever order its keys are written in.

use std::collections::HashMap;

use regex::Regex;
use serde_json::Value;

use super::pattern::{self, Names, Template};
use super::raw::{RawColumn, RawColumnOne, RawCond, RawField};

/// A named piece of dataset-specific Rust that profiles can call with `transform = "<name>"`.
///
/// Kept to formats that no table or pattern can describe (free-form text files, image headers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transform {
    /// `ddsm_overlays`: parses the study's DDSM `.OVERLAY` files (role given by `role`) into the
    /// `abnormalities` list: one entry per (view, abnormality), ordered by view then number.
    DdsmOverlays,
    /// `ddsm_ics`: parses the study's DDSM `.ics` file into an object of its fields (for
    /// `metadata.merge`): ics_filename, date_of_study, patient_age, film_type, density,
    /// date_digitized, digitizer, views.
    DdsmIcs,
    /// `image_width` / `image_height`: the pixel size of the study's first file of `role`, read
    /// from its header (PNG, GIF, JPEG, TIFF) or, for a headerless JSRT `.IMG`, from its size
    /// (square, 16 bits per pixel).
    ImageWidth,
    /// See [`Transform::ImageWidth`].
    ImageHeight,
    /// `volume_shape`: `dim[1..=dim[0]]` of the study's first file of `role`, read from its
    /// NIfTI-1, NIfTI-2 or Analyze 7.5 header (`.nii`, `.nii.gz`, `.hdr`, either byte order).
    VolumeShape,
    /// `voxel_size`: `pixdim[1..=dim[0]]` of the same header.
    VoxelSize,
    /// `lidc_reading_sessions`: number of `readingSession` elements in the role's LIDC XML files.
    LidcReadingSessions,
    /// `lidc_nodules`: `{series, reader, nodule_id, malignancy, rois}` per `unblindedReadNodule`.
    LidcNodules,
    /// `lidc_non_nodules`: `{series, reader, non_nodule_id}` per `nonNodule`.
    LidcNonNodules,
    /// `cbis_csv_role`: `image`, `cropped` or `roi`: which CBIS-DDSM case-description path
    /// column of the study's joined rows names the role's first file.
    CbisCsvRole,
}

impl Transform {
    /// Every transform, by the name profiles use.
    pub const ALL: [(&'static str, Transform); 10] = [
        ("ddsm_overlays", Transform::DdsmOverlays),
        ("ddsm_ics", Transform::DdsmIcs),
        ("image_width", Transform::ImageWidth),
        ("image_height", Transform::ImageHeight),
        ("volume_shape", Transform::VolumeShape),
        ("voxel_size", Transform::VoxelSize),
        ("lidc_reading_sessions", Transform::LidcReadingSessions),
        ("lidc_nodules", Transform::LidcNodules),
        ("lidc_non_nodules", Transform::LidcNonNodules),
        ("cbis_csv_role", Transform::CbisCsvRole),
    ];

    fn by_name(name: &str) -> Option<Transform> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
    }
}

/// `each = "*"`: every study file, whatever its role.
pub const ALL_ROLES: usize = usize::MAX;

/// How a string value is converted.
#[derive(Debug, Clone, PartialEq)]
pub enum Type {
    /// No conversion (strings stay strings, constants stay what they are).
    Keep,
    /// String.
    String,
    /// Integer (`"058"` → 58; `"2.0"` is not an integer).
    Int,
    /// Float.
    Float,
    /// Integer when it parses as one, else float.
    Number,
    /// `true/false/yes/no/1/0/t/f/y/n`, any case.
    Bool,
    /// Split on `separator`, each item trimmed, empty items and `remove` items dropped, each
    /// item converted with the inner type.
    List(Box<Type>),
}

impl Type {
    fn parse(s: &str) -> Option<Type> {
        Some(match s {
            "string" => Type::String,
            "int" => Type::Int,
            "float" => Type::Float,
            "number" => Type::Number,
            "bool" => Type::Bool,
            "list" => Type::List(Box::new(Type::String)),
            _ => {
                let inner = s.strip_prefix("list<")?.strip_suffix('>')?;
                match Type::parse(inner)? {
                    Type::List(_) => return None,
                    t => Type::List(Box::new(t)),
                }
            }
        })
    }
}

/// A column of a table, as alternatives tried in order against the header.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnAlt {
    /// Header cell, compared trimmed and case-insensitively.
    Name(String),
    /// 0-based position.
    Index(usize),
}

/// A column some field reads: the table and the alternatives. Resolved once per loaded table.
#[derive(Debug, Clone)]
pub struct ColumnUse {
    /// Table index.
    pub table: usize,
    /// Alternatives.
    pub alts: Vec<ColumnAlt>,
}

/// Converts a raw column reference.
pub fn column_alts(c: &RawColumn) -> Vec<ColumnAlt> {
    let one = |o: &RawColumnOne| match o {
        RawColumnOne::Index(i) => ColumnAlt::Index(*i),
        RawColumnOne::Name(n) => ColumnAlt::Name(n.clone()),
    };
    match c {
        RawColumn::Index(i) => vec![ColumnAlt::Index(*i)],
        RawColumn::Name(n) => vec![ColumnAlt::Name(n.clone())],
        RawColumn::Alternatives(v) => v.iter().map(one).collect(),
    }
}

/// What a condition tests.
#[derive(Debug, Clone)]
pub enum Cond {
    /// The capture is present (non-empty) and passes the test.
    Capture { slot: usize, test: Test },
    /// The study has a row in the table.
    Exists(usize),
    /// The study has a file of the role.
    File(usize),
}

/// Test applied to a captured value.
#[derive(Debug, Clone)]
pub enum Test {
    /// Non-empty.
    Present,
    /// Equal.
    Equals(String),
    /// Regex search.
    Matches(Regex),
}

/// Where a field's value comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A capture (study level: merged over the study's files).
    Capture(usize),
    /// A template over captures.
    Template(Template),
    /// A column of the study's joined row (first row of a multi table); index into
    /// [`super::Profile::columns`].
    Column(usize),
    /// A constant.
    Value(Value),
    /// `true` when the study has a row in the table.
    Exists(usize),
    /// Name of the study's first file of the role, or null.
    File(usize),
    /// Names of the study's files of the role: a list, or an object keyed by `key`.
    Files { role: usize, key: Option<Template> },
    /// Number of the study's files of the role.
    Count(usize),
    /// Every joined row of the table as an object built from `fields`.
    Rows {
        table: usize,
        fields: Vec<(String, Field)>,
        /// Objects ordered by this key's value (as `each`'s `sort`); else row order.
        sort: Option<String>,
    },
    /// The first alternative that is not null.
    First(Vec<Field>),
    /// Basename of the pool file the table was read from, or null.
    TableFile(usize),
    /// A named transform over the study's files of a role.
    Transform { transform: Transform, role: usize },
    /// An object whose keys are the given fields, evaluated for the study (or current row).
    Object(Vec<(String, Field)>),
    /// One object per study file of the role, built from `fields` evaluated on that file's
    /// captures; in file-name order, or sorted by the value of key `sort` (numbers before text,
    /// numbers numerically).
    Each {
        role: usize,
        fields: Vec<(String, Field)>,
        sort: Option<String>,
        /// With `group`: one object per distinct value of this template over the files'
        /// captures, evaluated on the group (its first file's captures, its files).
        group: Option<Template>,
        /// With `item`: a list of that field's values (nulls dropped) instead of objects.
        item: Option<Box<Field>>,
    },
    /// A DICOM keyword's typed value from the study's first file (of `role`, if given) that has
    /// a DICOM header.
    Dicom { keyword: &'static str, role: Option<usize> },
    /// Over every joined row of the column's table: the cell value that comes first in `order`
    /// (cells not in `order` rank after it, in row order); null without rows.
    Worst { column: usize, order: Vec<String> },
    /// The cell of `column` in the first row of its table (the whole table, not the study's
    /// joined rows) whose key equals `key` rendered on the current captures (inside `each`, the
    /// file's or group's); null without such a row.
    Lookup { column: usize, key: Template },
}

/// A compiled field.
#[derive(Debug, Clone)]
pub struct Field {
    /// The source.
    pub source: Source,
    /// When false, the field is null (then `default`).
    pub when: Option<Cond>,
    /// Values (after trimming) that mean null; default `[""]`.
    pub null: Vec<String>,
    /// Regex whose group `value` (or group 1, or whole match) replaces the string; no match is null.
    pub extract: Option<Regex>,
    /// With `extract`: replacement (`$1`, `${name}`) expanded from the match instead of its group.
    pub rewrite: Option<String>,
    /// String → value replacements.
    pub map: Option<HashMap<String, Value>>,
    /// Value for strings missing from `map` (else they pass through).
    pub otherwise: Option<Value>,
    /// Conversion of string values.
    pub ty: Type,
    /// List separator.
    pub separator: String,
    /// List items to drop.
    pub remove: Vec<String>,
    /// Value used when the result is null.
    pub default: Option<Value>,
}

/// Everything a field may refer to while it is compiled.
pub struct FieldCtx<'a> {
    /// Slot names visible at study level.
    pub names: &'a Names,
    /// Table names, by index.
    pub tables: &'a [String],
    /// Logical columns of each table (`[tables.x.columns]`).
    pub table_columns: &'a [Vec<(String, Vec<ColumnAlt>)>],
    /// Roles, by index.
    pub roles: &'a [String],
    /// Registry of column uses (appended to).
    pub columns: &'a mut Vec<ColumnUse>,
    /// Inside `rows`: the table whose rows are being read.
    pub row_table: Option<usize>,
}

/// A compile error: the key path below the field, and the problem.
pub type FieldError = (String, String);

fn err<T>(key: &str, problem: impl Into<String>) -> Result<T, FieldError> {
    Err((key.to_string(), problem.into()))
}

/// Converts a TOML value to JSON (datetimes become strings).
pub fn toml_to_json(v: &toml::Value) -> Value {
    match v {
        toml::Value::String(s) => Value::String(s.clone()),
        toml::Value::Integer(i) => Value::from(*i),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f).map(Value::Number).unwrap_or(Value::Null),
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(a) => Value::Array(a.iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => Value::Object(t.iter().map(|(k, v)| (k.clone(), toml_to_json(v))).collect()),
    }
}

impl FieldCtx<'_> {
    fn table(&self, key: &str, name: &str) -> Result<usize, FieldError> {
        self.tables
            .iter()
            .position(|t| t == name)
            .ok_or_else(|| (key.to_string(), format!("no table named `{name}` (tables: {})", list(self.tables))))
    }

    fn role(&self, key: &str, name: &str) -> Result<usize, FieldError> {
        self.roles.iter().position(|r| r == name).ok_or_else(|| {
            (key.to_string(), format!("no [[files]] rule has role `{name}` (roles: {})", list(self.roles)))
        })
    }

    fn slot(&self, key: &str, name: &str) -> Result<usize, FieldError> {
        self.names
            .get(name)
            .ok_or_else(|| (key.to_string(), format!("`{name}` is not a capture name of any [[files]] rule")))
    }

    fn column(&mut self, key: &str, spec: &str) -> Result<usize, FieldError> {
        let (table, col) = match (self.row_table, spec.split_once('.')) {
            (Some(t), _) => (t, spec),
            (None, Some((t, c))) => (self.table(key, t)?, c),
            (None, None) => return err(key, format!("`{spec}` must be `<table>.<column>`")),
        };
        let alts = match self.table_columns[table].iter().find(|(n, _)| n == col) {
            Some((_, alts)) => alts.clone(),
            None => match col.parse::<usize>() {
                Ok(i) => vec![ColumnAlt::Index(i)],
                Err(_) => vec![ColumnAlt::Name(col.to_string())],
            },
        };
        self.columns.push(ColumnUse { table, alts });
        Ok(self.columns.len() - 1)
    }

    /// Compiles a condition.
    pub fn cond(&mut self, key: &str, c: &RawCond) -> Result<Cond, FieldError> {
        let subjects = [c.capture.is_some(), c.exists.is_some(), c.file.is_some()];
        if subjects.iter().filter(|b| **b).count() != 1 {
            return err(key, "a condition needs exactly one of `capture`, `exists`, `file`");
        }
        if c.capture.is_none() && (c.equals.is_some() || c.matches.is_some()) {
            return err(key, "`equals` / `matches` only go with `capture`");
        }
        if let Some(cap) = &c.capture {
            let slot = self.slot(&format!("{key}.capture"), cap)?;
            let test = match (&c.equals, &c.matches) {
                (Some(_), Some(_)) => return err(key, "give `equals` or `matches`, not both"),
                (Some(e), None) => Test::Equals(e.clone()),
                (None, Some(m)) => Test::Matches(pattern::regex(m).map_err(|p| (format!("{key}.matches"), p))?),
                (None, None) => Test::Present,
            };
            return Ok(Cond::Capture { slot, test });
        }
        if let Some(t) = &c.exists {
            return Ok(Cond::Exists(self.table(&format!("{key}.exists"), t)?));
        }
        Ok(Cond::File(self.role(&format!("{key}.file"), c.file.as_deref().unwrap_or_default())?))
    }

    /// Compiles a field; `key` is its path for errors (e.g. `labels[0].fields.label`).
    pub fn field(&mut self, key: &str, f: &RawField) -> Result<Field, FieldError> {
        let sources = [
            ("capture", f.capture.is_some()),
            ("template", f.template.is_some()),
            ("column", f.column.is_some()),
            ("value", f.value.is_some()),
            ("exists", f.exists.is_some()),
            ("file", f.file.is_some()),
            ("files", f.files.is_some()),
            ("count", f.count.is_some()),
            ("rows", f.rows.is_some()),
            ("first", f.first.is_some()),
            ("table_file", f.table_file.is_some()),
            ("transform", f.transform.is_some()),
            ("object", f.object.is_some()),
            ("each", f.each.is_some()),
            ("dicom", f.dicom.is_some()),
            ("worst", f.worst.is_some()),
            ("lookup", f.lookup.is_some()),
        ];
        let given: Vec<&str> = sources.iter().filter(|s| s.1).map(|s| s.0).collect();
        if given.len() != 1 {
            let names: Vec<&str> = sources.iter().map(|s| s.0).collect();
            return err(
                key,
                if given.is_empty() {
                    format!("no value source; give exactly one of {}", names.join(", "))
                } else {
                    format!("several value sources ({}); give exactly one", given.join(", "))
                },
            );
        }
        let sub = |k: &str| format!("{key}.{k}");
        let resolve_names = self.names;
        let source = match given[0] {
            "capture" => Source::Capture(self.slot(&sub("capture"), f.capture.as_deref().unwrap())?),
            "template" => Source::Template(
                Template::parse(f.template.as_deref().unwrap(), &|n| resolve_names.get(n))
                    .map_err(|p| (sub("template"), p))?,
            ),
            "column" => Source::Column(self.column(&sub("column"), f.column.as_deref().unwrap())?),
            "value" => Source::Value(toml_to_json(f.value.as_ref().unwrap())),
            "exists" => Source::Exists(self.table(&sub("exists"), f.exists.as_deref().unwrap())?),
            "file" => Source::File(self.role(&sub("file"), f.file.as_deref().unwrap())?),
            "files" => {
                let role = self.role(&sub("files"), f.files.as_deref().unwrap())?;
                let key_t = match &f.key {
                    Some(k) => Some(Template::parse(k, &|n| resolve_names.get(n)).map_err(|p| (sub("key"), p))?),
                    None => None,
                };
                Source::Files { role, key: key_t }
            }
            "count" => Source::Count(self.role(&sub("count"), f.count.as_deref().unwrap())?),
            "rows" => {
                let table = self.table(&sub("rows"), f.rows.as_deref().unwrap())?;
                if f.fields.0.is_empty() {
                    return err(&sub("fields"), "`rows` needs a `fields` table describing each row object");
                }
                let outer = self.row_table.replace(table);
                let mut fields = Vec::new();
                for (k, rf) in &f.fields.0 {
                    let compiled = self.field(&format!("{key}.fields.{k}"), rf);
                    match compiled {
                        Ok(c) => fields.push((k.clone(), c)),
                        Err(e) => {
                            self.row_table = outer;
                            return Err(e);
                        }
                    }
                }
                self.row_table = outer;
                if let Some(s) = &f.sort
                    && !fields.iter().any(|(k, _)| k == s)
                {
                    return err(&sub("sort"), format!("`sort = \"{s}\"` is not one of the `fields` keys"));
                }
                Source::Rows { table, fields, sort: f.sort.clone() }
            }
            "first" => {
                let alts = f.first.as_ref().unwrap();
                if alts.is_empty() {
                    return err(&sub("first"), "`first` needs at least one alternative");
                }
                let mut out = Vec::new();
                for (i, a) in alts.iter().enumerate() {
                    out.push(self.field(&format!("{key}.first[{i}]"), a)?);
                }
                Source::First(out)
            }
            "table_file" => Source::TableFile(self.table(&sub("table_file"), f.table_file.as_deref().unwrap())?),
            "transform" => {
                let name = f.transform.as_deref().unwrap();
                let transform = Transform::by_name(name).ok_or_else(|| {
                    let known: Vec<&str> = Transform::ALL.iter().map(|t| t.0).collect();
                    (sub("transform"), format!("unknown transform `{name}` (known: {})", known.join(", ")))
                })?;
                let role = match &f.role {
                    Some(r) => self.role(&sub("role"), r)?,
                    None => return err(key, format!("transform `{name}` needs `role`")),
                };
                Source::Transform { transform, role }
            }
            "each" => {
                let role = match f.each.as_deref().unwrap() {
                    "*" => ALL_ROLES,
                    r => self.role(&sub("each"), r)?,
                };
                if f.fields.0.is_empty() == f.item.is_none() {
                    return err(
                        &sub("fields"),
                        "`each` needs either `fields` (an object per file or group) or `item` (a value per file or group)",
                    );
                }
                let item = match &f.item {
                    Some(i) => Some(Box::new(self.field(&sub("item"), i)?)),
                    None => None,
                };
                let mut fields = Vec::new();
                for (k, ef) in &f.fields.0 {
                    fields.push((k.clone(), self.field(&format!("{key}.fields.{k}"), ef)?));
                }
                if let Some(s) = &f.sort
                    && !fields.iter().any(|(k, _)| k == s)
                {
                    return err(&sub("sort"), format!("`sort = \"{s}\"` is not one of the `fields` keys"));
                }
                let group = match &f.group {
                    Some(g) => Some(Template::parse(g, &|n| resolve_names.get(n)).map_err(|p| (sub("group"), p))?),
                    None => None,
                };
                Source::Each { role, fields, sort: f.sort.clone(), group, item }
            }
            "worst" => {
                let column = self.column(&sub("worst"), f.worst.as_deref().unwrap())?;
                let Some(order) = f.order.clone() else {
                    return err(key, "`worst` needs `order` (the values, worst first)");
                };
                Source::Worst { column, order }
            }
            "lookup" => {
                let column = self.column(&sub("lookup"), f.lookup.as_deref().unwrap())?;
                let Some(k) = &f.key else {
                    return err(key, "`lookup` needs `key` (a template giving the table key to find)");
                };
                let key_t = Template::parse(k, &|n| resolve_names.get(n)).map_err(|p| (sub("key"), p))?;
                Source::Lookup { column, key: key_t }
            }
            "dicom" => {
                let kw = f.dicom.as_deref().unwrap();
                let keyword = super::dicomtag::KEYWORDS.iter().copied().find(|k| *k == kw).ok_or_else(|| {
                    (
                        sub("dicom"),
                        format!("unknown DICOM keyword `{kw}` (known: {})", super::dicomtag::KEYWORDS.join(", ")),
                    )
                })?;
                let role = match &f.role {
                    Some(r) => Some(self.role(&sub("role"), r)?),
                    None => None,
                };
                Source::Dicom { keyword, role }
            }
            "object" => {
                let mut fields = Vec::new();
                for (k, of) in &f.object.as_ref().unwrap().0 {
                    fields.push((k.clone(), self.field(&format!("{key}.object.{k}"), of)?));
                }
                Source::Object(fields)
            }
            _ => unreachable!(),
        };
        if f.role.is_some() && f.transform.is_none() && f.dicom.is_none() {
            return err(&sub("role"), "`role` only goes with `transform` or `dicom`");
        }
        if f.item.is_some() && f.each.is_none() {
            return err(&sub("item"), "`item` only goes with `each`");
        }
        if f.order.is_some() && f.worst.is_none() {
            return err(&sub("order"), "`order` only goes with `worst`");
        }
        if f.group.is_some() && f.each.is_none() {
            return err(&sub("group"), "`group` only goes with `each`");
        }
        if f.key.is_some() && f.files.is_none() && f.lookup.is_none() {
            return err(&sub("key"), "`key` only goes with `files` or `lookup`");
        }
        if f.rewrite.is_some() && f.extract.is_none() {
            return err(&sub("rewrite"), "`rewrite` only goes with `extract`");
        }
        if !f.fields.0.is_empty() && f.rows.is_none() && f.each.is_none() {
            return err(&sub("fields"), "`fields` only goes with `rows` or `each`");
        }
        if f.sort.is_some() && f.each.is_none() && f.rows.is_none() {
            return err(&sub("sort"), "`sort` only goes with `each` or `rows`");
        }
        let ty = match &f.ty {
            None => Type::Keep,
            Some(t) => Type::parse(t).ok_or_else(|| {
                (
                    sub("type"),
                    format!(
                        "unknown type `{t}` (known: string, int, float, number, bool, list, list<string|int|float|number|bool>)"
                    ),
                )
            })?,
        };
        if (f.separator.is_some() || f.remove.is_some()) && !matches!(ty, Type::List(_)) {
            return err(key, "`separator` / `remove` need `type = \"list\"`");
        }
        let when = match &f.when {
            Some(c) => Some(self.cond(&sub("when"), c)?),
            None => None,
        };
        let extract = match &f.extract {
            Some(e) => Some(pattern::regex(e).map_err(|p| (sub("extract"), p))?),
            None => None,
        };
        Ok(Field {
            source,
            when,
            null: f.null.clone().unwrap_or_else(|| vec![String::new()]),
            extract,
            rewrite: f.rewrite.clone(),
            map: f.map.as_ref().map(|m| m.iter().map(|(k, v)| (k.clone(), toml_to_json(v))).collect()),
            otherwise: f.otherwise.as_ref().map(toml_to_json),
            ty,
            separator: f.separator.clone().unwrap_or_else(|| "|".into()),
            remove: f.remove.clone().unwrap_or_default(),
            default: f.default.as_ref().map(toml_to_json),
        })
    }
}

fn list(v: &[String]) -> String {
    if v.is_empty() { "none".into() } else { v.join(", ") }
}
