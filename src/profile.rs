//! Dataset profiles: `mounts/<slug>.toml` parsed (serde, [`raw`]) then validated and compiled.
//!
//! A profile says how a dataset is recognized in the pool, how member paths map to patient and
//! study, which tables (CSV/TSV/line lists, or rows written in the profile) carry labels, and how
//! each key of `labels.json` / `metadata.json` is computed. `mounts/README.md` documents every
//! key; this module enforces it, with errors that name the file, the key and the problem.

pub(crate) mod dicomtag;
pub(crate) mod field;
pub(crate) mod pattern;
pub(crate) mod raw;

use std::collections::HashSet;
use std::path::Path;

use regex::{Regex, RegexSet};

use field::{ColumnAlt, ColumnUse, Cond, Field, FieldCtx, column_alts};
use pattern::{FILE_BUILTINS, Names, Template};
use raw::RawProfile;

/// Why a profile could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProfileError {
    /// Not valid TOML, an unknown key, or a value of the wrong type (toml's message names the key
    /// and shows the line).
    #[error("{file}: {message}")]
    Syntax {
        /// Profile file.
        file: String,
        /// toml/serde message.
        message: String,
    },
    /// Valid TOML whose meaning is wrong (bad regex, unknown capture, table or type...).
    #[error("{file}: key `{key}`: {problem}")]
    Invalid {
        /// Profile file.
        file: String,
        /// Dotted key path, e.g. `files[0].path` or `labels[1].fields.level.type`.
        key: String,
        /// What is wrong, quoting the offending value.
        problem: String,
    },
    /// Reading the file or folder failed.
    #[error("{file}: {error}")]
    Io {
        /// File or folder.
        file: String,
        /// Cause (in the message, not a `source()`, so that a printed chain says it once).
        error: std::io::Error,
    },
    /// Two profiles claim the same slug.
    #[error("{file}: slug `{slug}` is already defined by {other}")]
    DuplicateSlug {
        /// Second file.
        file: String,
        /// The slug.
        slug: String,
        /// First file.
        other: String,
    },
}

/// One `[[files]]` rule, compiled.
#[derive(Debug, Clone)]
pub struct FileRule {
    /// Role index into [`Profile::roles`].
    pub role: usize,
    /// Searched in the member path.
    pub path: Regex,
    /// When set, must match the archive name; its captures join the path's.
    pub archive: Option<Regex>,
    /// `(capture slot, group index)` of the path regex's named groups.
    pub path_groups: Vec<(usize, usize)>,
    /// Same for the archive regex.
    pub archive_groups: Vec<(usize, usize)>,
    /// Patient id.
    pub patient: Template,
    /// Study id.
    pub study: Template,
    /// File name inside the study directory.
    pub name: Template,
    /// `(capture slot, DICOM keyword)`: captures filled from the file's DICOM header. A rule with
    /// any only places files that have a header (see `dicom_folder`).
    pub dicom: Vec<(usize, &'static str)>,
    /// Where the header comes from (`dicom_from`).
    pub dicom_from: DicomFrom,
    /// Captures looked up in tables while placing (`lookup`), in order.
    pub lookups: Vec<Lookup>,
}

/// A `lookup` capture: the first row of `table` whose key is `key` gives `column`'s cell;
/// without one (or with a blank cell) `default`, else unset.
#[derive(Debug, Clone)]
pub struct Lookup {
    /// Capture slot filled.
    pub slot: usize,
    /// Table index.
    pub table: usize,
    /// Key, over the rule's captures.
    pub key: Template,
    /// Column alternatives.
    pub column: Vec<ColumnAlt>,
    /// Whole cell values replaced (`map`), e.g. ADNI's old numeric visits `"1"` -> `"sc"`.
    pub map: Vec<(String, String)>,
    /// Fallback, over the rule's captures.
    pub default: Option<Template>,
}

/// `dicom_from` of a `[[files]]` rule.
#[derive(Debug, Clone)]
pub enum DicomFrom {
    /// `"file"` (default): the file's own header.
    File,
    /// `"folder"`: the first DICOM file (by path) of the same archive and folder, for non-DICOM
    /// files that belong with a series (LIDC XML reading sessions).
    Folder,
    /// `"series"`: a DICOM file of the series the file names itself (an annotation XML's
    /// `SeriesInstanceUid`), wherever it is in the pool (LIDC's XML-only download).
    Series,
    /// Any other text, or a list of them tried in order: templates giving a folder path (same
    /// archive) whose first DICOM file (by path) is used, e.g. `{pdir}/T2W` (I2CVB: every file
    /// takes the T2W series' study); a template ending in `/**` takes the first DICOM file (by
    /// path) anywhere below the folder (`["{pdir}/T2W", "{pdir}/**"]`: a patient without T2W
    /// takes any of its series').
    Template(Vec<FolderFrom>),
}

/// One folder template of `dicom_from`.
#[derive(Debug, Clone)]
pub struct FolderFrom {
    /// The folder, over the rule's captures.
    pub folder: Template,
    /// `/**`: anywhere below the folder, not just in it.
    pub below: bool,
}

/// Text format of a table file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableFormat {
    /// Comma-separated (quotes honoured, ragged rows allowed).
    Csv,
    /// Tab-separated (no quoting).
    Tsv,
    /// One value per non-blank line (column 0).
    Lines,
}

/// One `[tables.<name>]`, compiled.
#[derive(Debug, Clone)]
pub struct Table {
    /// Name used by fields.
    pub name: String,
    /// Member path regexes in preference order: the first that matches any pool file wins and
    /// all files it matches (one per basename) are read and concatenated.
    pub files: Vec<Regex>,
    /// Rows written in the profile (instead of `files`).
    pub rows: Option<Vec<Vec<String>>>,
    /// Text format.
    pub format: TableFormat,
    /// Whether the first row is a header.
    pub header: bool,
    /// Key column.
    pub key: Vec<ColumnAlt>,
    /// Applied to the key cell: the group `key` becomes the key; rows that do not match are
    /// dropped.
    pub key_pattern: Option<Regex>,
    /// With `key_pattern`: the key is this replacement (`$1`, `${name}`) expanded from the match
    /// instead of the group `key`, so keys written several ways (`Type_1\x.jpg`, `Type_1/x.jpg`)
    /// become one.
    pub key_rewrite: Option<String>,
    /// More key columns (`key_also`): the key is the cells joined with `|`.
    pub key_also: Vec<Vec<ColumnAlt>>,
    /// Study-level template giving the key to look up.
    pub join: Template,
    /// Whether several rows per key are kept (else the first wins).
    pub multi: bool,
}

/// What a role's files are in `labels.csv` (`[labels_csv]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsvRole {
    /// Each file is a row (an image or volume).
    Row,
    /// Each folder of such files inside the study is a row (a DICOM series).
    Series,
    /// Not a row: a column named after the role holding the study's files of the role.
    Column,
    /// Neither (previews, headers' companion files, text reports).
    Neither,
}

/// One `[[labels]]` variant.
#[derive(Debug, Clone)]
pub struct LabelVariant {
    /// When it applies (first matching variant wins; none = always).
    pub when: Option<Cond>,
    /// Keys and their fields, in document order.
    pub fields: Vec<(String, Field)>,
}

/// A validated, compiled dataset profile.
#[derive(Debug, Clone)]
pub struct Profile {
    pub(crate) file: String,
    pub(crate) slug: String,
    pub(crate) title: String,
    pub(crate) homepage: Option<String>,
    pub(crate) min_files: usize,
    pub(crate) exclude: Option<RegexSet>,
    pub(crate) rules: Vec<FileRule>,
    /// All rules' path regexes, so one scan per member finds the candidate rules.
    pub(crate) rule_set: RegexSet,
    pub(crate) roles: Vec<String>,
    pub(crate) names: Names,
    pub(crate) tables: Vec<Table>,
    /// Every (table, file regex) pair, flattened, for one scan per member.
    pub(crate) table_set: RegexSet,
    pub(crate) table_set_owner: Vec<(usize, usize)>,
    pub(crate) columns: Vec<ColumnUse>,
    pub(crate) labels: Vec<LabelVariant>,
    /// Union of the variants' keys, in order of first appearance (labels.csv columns).
    pub(crate) label_columns: Vec<String>,
    pub(crate) metadata: Vec<(String, Field)>,
    pub(crate) metadata_merge: Vec<Field>,
    pub(crate) split: Option<Field>,
    pub(crate) patient: Vec<(String, Field)>,
    pub(crate) passwords: Vec<String>,
    /// Derived-file kinds made per study (`derive = [...]`), in order.
    pub(crate) derive: Vec<crate::derive::KindId>,
    /// Per role (index into `roles`): its files' part in labels.csv.
    pub(crate) csv_roles: Vec<CsvRole>,
    /// The roles that are labels.csv columns, in `[labels_csv] columns` order.
    pub(crate) csv_file_columns: Vec<usize>,
    /// SHA-256 of the file name and text the profile was parsed from: keys the persisted tree.
    pub(crate) digest: [u8; 32],
}

impl Profile {
    /// SHA-256 of the profile's file name and text (a persisted tree is valid only for the
    /// same profiles).
    pub fn digest(&self) -> &[u8; 32] {
        &self.digest
    }
    /// The dataset folder name, e.g. `mura`.
    pub fn slug(&self) -> &str {
        &self.slug
    }
    /// Human title.
    pub fn title(&self) -> &str {
        &self.title
    }
    /// Homepage URL, if the profile gives one.
    pub fn homepage(&self) -> Option<&str> {
        self.homepage.as_deref()
    }
    /// Roles of the `[[files]]` rules, in order of first appearance.
    pub fn roles(&self) -> &[String] {
        &self.roles
    }
    /// The file the profile was read from (`mounts/mura.toml` for built-ins).
    pub fn file(&self) -> &str {
        &self.file
    }
    /// Whether the profile reads the member at `path` as one of its label tables (a table file
    /// pattern matches and no `exclude` does).
    pub fn reads_as_table(&self, path: &str) -> bool {
        self.table_set.is_match(path) && !self.exclude.as_ref().is_some_and(|x| x.is_match(path))
    }
    /// Passwords the dataset publishes for its encrypted archives (`passwords`), in order.
    pub fn passwords(&self) -> &[String] {
        &self.passwords
    }
}

/// Every password the profiles publish, in profile order, each once: medfs tries them after the
/// user's own (`--password`, `MEDFS_PASSWORD`), so a dataset whose password is public (the
/// cervical screening `test_stg2.7z`) mounts with none given.
pub fn published_passwords(profiles: &[Profile]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for p in profiles.iter().flat_map(|p| &p.passwords) {
        if !out.contains(p) {
            out.push(p.clone());
        }
    }
    out
}

/// [`published_passwords`] of the built-in profiles merged with those of `dir` (as [`merge`]
/// does), from TOML alone: no pattern is compiled. Listing needs the passwords before anything
/// else, and a warm mount needs nothing more of the profiles; compiling all of them took 10-40 ms
/// of a 50 ms warm mount. A profile that is not valid TOML fails here as it would when parsed.
pub fn published_passwords_raw(dir: Option<&Path>) -> Result<Vec<String>, ProfileError> {
    let slugged = |name: &str, text: &str| -> Result<(String, Vec<String>), ProfileError> {
        let raw: RawProfile = toml::from_str(text).map_err(|e| ProfileError::Syntax {
            file: name.to_string(),
            message: e.to_string().trim_end().to_string(),
        })?;
        let stem = Path::new(name).file_name().and_then(|n| n.to_str()).unwrap_or_default();
        Ok((raw.slug.unwrap_or_else(|| stem.strip_suffix(".toml").unwrap_or(stem).to_string()), raw.passwords))
    };
    let user = match dir {
        Some(dir) => dir_texts(dir)?.iter().map(|(n, t)| slugged(n, t)).collect::<Result<Vec<_>, _>>()?,
        None => Vec::new(),
    };
    let builtin = BUILTIN.iter().map(|(n, t)| slugged(n, t)).collect::<Result<Vec<_>, _>>()?;
    let mut out: Vec<String> = Vec::new();
    let kept = builtin.iter().filter(|(slug, _)| !user.iter().any(|(u, _)| u == slug));
    for p in kept.chain(&user).flat_map(|(_, passwords)| passwords) {
        if !p.is_empty() && !out.contains(p) {
            out.push(p.clone());
        }
    }
    Ok(out)
}

/// The profiles compiled into medfs: every `mounts/*.toml`, sorted by file name, found by the
/// build script (`build.rs`), so a new profile file is built in with no edit here.
const BUILTIN: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/builtin_profiles.rs"));

/// The built-in profiles, in file-name order.
///
/// They are checked by the test suite, so a failure here is a build defect, not a user error.
pub fn builtin() -> Vec<Profile> {
    BUILTIN
        .iter()
        .map(|(name, text)| parse(name, text).unwrap_or_else(|e| panic!("built-in profile is broken: {e}")))
        .collect()
}

/// Loads every `*.toml` in `dir` (for `--profiles DIR`), sorted by file name.
pub fn load_dir(dir: &Path) -> Result<Vec<Profile>, ProfileError> {
    let mut out: Vec<Profile> = Vec::new();
    for (file, text) in dir_texts(dir)? {
        let prof = parse(&file, &text)?;
        if let Some(other) = out.iter().find(|o| o.slug == prof.slug) {
            return Err(ProfileError::DuplicateSlug { file, slug: prof.slug, other: other.file.clone() });
        }
        out.push(prof);
    }
    Ok(out)
}

/// The `*.toml` files of `dir` as (file name, text), sorted by file name.
fn dir_texts(dir: &Path) -> Result<Vec<(String, String)>, ProfileError> {
    let io = |e| ProfileError::Io { file: dir.display().to_string(), error: e };
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .map_err(io)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(io)?
        .into_iter()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml") && p.is_file())
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let file = p.display().to_string();
            let text = std::fs::read_to_string(&p).map_err(|e| ProfileError::Io { file: file.clone(), error: e })?;
            Ok((file, text))
        })
        .collect()
}

/// A digest of the texts the built-in profiles and those of `dir` are parsed from, without
/// parsing them (compiling their patterns is most of a warm mount's work): it keys the persisted
/// tree, and the profiles are parsed only when the tree must be built.
pub fn texts_digest(dir: Option<&Path>) -> Result<[u8; 32], ProfileError> {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    let user = match dir {
        Some(dir) => dir_texts(dir)?,
        None => Vec::new(),
    };
    for (name, text) in BUILTIN.iter().map(|(n, t)| (*n, *t)).chain(user.iter().map(|(n, t)| (n.as_str(), t.as_str())))
    {
        h.update(digest(name, text));
    }
    Ok(h.finalize().into())
}

fn digest(name: &str, text: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::new().chain_update(name).chain_update([0]).chain_update(text).finalize().into()
}

/// Merges user profiles over built-ins: a user profile with a built-in's slug replaces it.
pub fn merge(builtin: Vec<Profile>, user: Vec<Profile>) -> Vec<Profile> {
    let mut out: Vec<Profile> = builtin.into_iter().filter(|b| !user.iter().any(|u| u.slug == b.slug)).collect();
    out.extend(user);
    out
}

/// Parses and validates one profile; `name` is the file name used in errors and as the default
/// slug (its stem).
pub fn parse(name: &str, toml_text: &str) -> Result<Profile, ProfileError> {
    let raw: RawProfile = toml::from_str(toml_text)
        .map_err(|e| ProfileError::Syntax { file: name.to_string(), message: e.to_string().trim_end().to_string() })?;
    let mut profile = compile(name, raw)?;
    profile.digest = digest(name, toml_text);
    Ok(profile)
}

fn compile(file: &str, raw: RawProfile) -> Result<Profile, ProfileError> {
    let inv =
        |key: &str, problem: String| ProfileError::Invalid { file: file.to_string(), key: key.to_string(), problem };
    let stem = Path::new(file)
        .file_name()
        .and_then(|n| n.to_str())
        .map(|n| n.strip_suffix(".toml").unwrap_or(n).to_string())
        .unwrap_or_default();
    let (slug, slug_key) = match &raw.slug {
        Some(s) => (s.clone(), "slug"),
        None => (stem, "slug (from the file name)"),
    };
    let slug_ok = !slug.is_empty()
        && slug.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c))
        && !slug.starts_with(['.', '-', '_']);
    if !slug_ok {
        return Err(inv(
            slug_key,
            format!("`{slug}` must be lower-case letters, digits, `-`, `_`, `.`, and not start with punctuation"),
        ));
    }
    if raw.title.trim().is_empty() {
        return Err(inv("title", "must not be empty".into()));
    }
    if let Some(i) = raw.passwords.iter().position(|p| p.is_empty()) {
        return Err(inv(&format!("passwords[{i}]"), "must not be empty".into()));
    }
    let mut derive = Vec::new();
    for (i, name) in raw.derive.iter().enumerate() {
        let kind = crate::derive::by_name(name).ok_or_else(|| {
            let known: Vec<&str> = crate::derive::KINDS.iter().map(|k| k.name()).collect();
            inv(&format!("derive[{i}]"), format!("no derived-file kind `{name}` (known: {})", known.join(", ")))
        })?;
        if derive.contains(&kind.id()) {
            return Err(inv(&format!("derive[{i}]"), format!("`{name}` is listed twice")));
        }
        derive.push(kind.id());
    }

    let exclude = if raw.exclude.is_empty() {
        None
    } else {
        for (i, e) in raw.exclude.iter().enumerate() {
            pattern::regex(e).map_err(|p| inv(&format!("exclude[{i}]"), p))?;
        }
        Some(RegexSet::new(&raw.exclude).map_err(|e| inv("exclude", e.to_string()))?)
    };

    // [[files]]: captures first, since every later template may use them.
    if raw.files.is_empty() {
        return Err(inv("files", "a profile needs at least one [[files]] rule".into()));
    }
    let mut names = Names::default();
    let mut roles: Vec<String> = Vec::new();
    let mut rules = Vec::new();
    for (i, r) in raw.files.iter().enumerate() {
        let key = |k: &str| format!("files[{i}].{k}");
        if r.role.trim().is_empty() {
            return Err(inv(&key("role"), "must not be empty".into()));
        }
        let role = match roles.iter().position(|x| *x == r.role) {
            Some(p) => p,
            None => {
                roles.push(r.role.clone());
                roles.len() - 1
            }
        };
        let path = pattern::regex(&r.path).map_err(|p| inv(&key("path"), p))?;
        let archive = match &r.archive {
            Some(a) => Some(pattern::regex(a).map_err(|p| inv(&key("archive"), p))?),
            None => None,
        };
        let mut visible: HashSet<usize> = (0..FILE_BUILTINS).collect();
        let mut groups = |re: &Regex, which: &str| -> Result<Vec<(usize, usize)>, ProfileError> {
            let mut out = Vec::new();
            for (gi, n) in re.capture_names().enumerate() {
                let Some(n) = n else { continue };
                if pattern::BUILTINS.contains(&n) {
                    return Err(inv(
                        &key(which),
                        format!("capture name `{n}` is reserved (built-in names: {})", pattern::BUILTINS.join(", ")),
                    ));
                }
                let slot = names.intern(n);
                visible.insert(slot);
                out.push((slot, gi));
            }
            Ok(out)
        };
        let path_groups = groups(&path, "path")?;
        let archive_groups = match &archive {
            Some(a) => groups(a, "archive")?,
            None => Vec::new(),
        };
        let mut dicom = Vec::new();
        for (cap, kw) in r.dicom.as_ref().map(|d| d.0.as_slice()).unwrap_or(&[]) {
            let Some(kw) = dicomtag::KEYWORDS.iter().copied().find(|k| k == kw) else {
                return Err(inv(
                    &key(&format!("dicom.{cap}")),
                    format!("unknown DICOM keyword `{kw}` (known: {})", dicomtag::KEYWORDS.join(", ")),
                ));
            };
            if pattern::BUILTINS.contains(&cap.as_str()) {
                return Err(inv(
                    &key(&format!("dicom.{cap}")),
                    format!("capture name `{cap}` is reserved (built-in names: {})", pattern::BUILTINS.join(", ")),
                ));
            }
            let slot = names.intern(cap);
            visible.insert(slot);
            dicom.push((slot, kw));
        }
        let from: &[String] = r.dicom_from.as_ref().map(|d| d.as_slice()).unwrap_or(&[]);
        let dicom_from = match from {
            [] => DicomFrom::File,
            [one] if one == "file" => DicomFrom::File,
            [one] if one == "folder" => DicomFrom::Folder,
            [one] if one == "series" => DicomFrom::Series,
            list => {
                let names_ref = &names;
                let resolve = |n: &str| names_ref.get(n).filter(|s| visible.contains(s));
                let mut out = Vec::new();
                for (i, t) in list.iter().enumerate() {
                    let k = if list.len() == 1 { key("dicom_from") } else { key(&format!("dicom_from[{i}]")) };
                    if ["file", "folder", "series"].contains(&t.as_str()) {
                        return Err(inv(&k, format!("`{t}` stands alone, not in a list of folder templates")));
                    }
                    let (text, below) = match t.strip_suffix("/**") {
                        Some(folder) => (folder, true),
                        None => (t.as_str(), false),
                    };
                    let folder = Template::parse(text, &resolve).map_err(|p| {
                        inv(&k, format!("{p} (`file`, `folder`, `series`, or folder templates, `/**` for below one)"))
                    })?;
                    out.push(FolderFrom { folder, below });
                }
                DicomFrom::Template(out)
            }
        };
        let mut lookups = Vec::new();
        for (cap, l) in r.lookup.as_ref().map(|d| d.0.as_slice()).unwrap_or(&[]) {
            let lk = |k: &str| key(&format!("lookup.{cap}.{k}"));
            if pattern::BUILTINS.contains(&cap.as_str()) {
                return Err(inv(&key(&format!("lookup.{cap}")), format!("capture name `{cap}` is reserved")));
            }
            let Some(table) = raw.tables.0.iter().position(|(n, _)| *n == l.table) else {
                return Err(inv(&lk("table"), format!("no table named `{}`", l.table)));
            };
            let names_ref = &names;
            let resolve = |n: &str| names_ref.get(n).filter(|s| visible.contains(s));
            let key_t = Template::parse(&l.key, &resolve).map_err(|p| inv(&lk("key"), p))?;
            let default = match &l.default {
                Some(d) => Some(Template::parse(d, &resolve).map_err(|p| inv(&lk("default"), p))?),
                None => None,
            };
            let slot = names.intern(cap);
            visible.insert(slot);
            let map = l.map.as_ref().map(|m| m.0.clone()).unwrap_or_default();
            lookups.push(Lookup { slot, table, key: key_t, column: column_alts(&l.column), map, default });
        }
        if r.dicom_from.is_some() && dicom.is_empty() {
            return Err(inv(&key("dicom_from"), "`dicom_from` needs `dicom`".into()));
        }
        let names_ref = &names;
        let resolve = |n: &str| names_ref.get(n).filter(|s| visible.contains(s));
        let tpl = |k: &str, t: &str| {
            Template::parse(t, &resolve)
                .map_err(|p| inv(&key(k), format!("{p} (this rule's names: {})", rule_names(names_ref, &visible))))
        };
        rules.push(FileRule {
            role,
            patient: tpl("patient", &r.patient)?,
            study: tpl("study", &r.study)?,
            name: tpl("name", r.name.as_deref().unwrap_or("{file}"))?,
            path,
            archive,
            path_groups,
            archive_groups,
            dicom,
            dicom_from,
            lookups,
        });
    }
    let rule_set = RegexSet::new(raw.files.iter().map(|r| &r.path)).map_err(|e| inv("files", e.to_string()))?;

    // [tables.*]
    let table_names: Vec<String> = raw.tables.0.iter().map(|(n, _)| n.clone()).collect();
    let mut table_columns = Vec::new();
    for (n, t) in &raw.tables.0 {
        if n.contains('.') {
            return Err(inv(&format!("tables.{n}"), "table names must not contain `.`".into()));
        }
        table_columns.push(t.columns.0.iter().map(|(c, r)| (c.clone(), column_alts(r))).collect::<Vec<_>>());
    }
    let mut tables = Vec::new();
    let mut table_patterns = Vec::new();
    let mut table_set_owner = Vec::new();
    for (ti, (n, t)) in raw.tables.0.iter().enumerate() {
        let key = |k: &str| format!("tables.{n}.{k}");
        if t.files.is_empty() == t.rows.is_none() {
            return Err(inv(
                &format!("tables.{n}"),
                "give exactly one of `files` (read from the pool) and `rows` (written here)".into(),
            ));
        }
        let mut files = Vec::new();
        for (i, f) in t.files.iter().enumerate() {
            files.push(pattern::regex(f).map_err(|p| inv(&key(&format!("files[{i}]")), p))?);
            table_patterns.push(f.clone());
            table_set_owner.push((ti, i));
        }
        let format = match t.format.as_deref().unwrap_or("csv") {
            "csv" => TableFormat::Csv,
            "tsv" => TableFormat::Tsv,
            "lines" => TableFormat::Lines,
            other => {
                return Err(inv(&key("format"), format!("unknown format `{other}` (known: csv, tsv, lines)")));
            }
        };
        let header = t.header.unwrap_or(format != TableFormat::Lines);
        if header && t.rows.is_some() {
            return Err(inv(&key("header"), "inline `rows` have no header; name columns in `columns`".into()));
        }
        let key_alts = {
            let alts = column_alts(&t.key);
            // A key given as a logical column name resolves to that column's alternatives.
            match alts.as_slice() {
                [ColumnAlt::Name(c)] => {
                    table_columns[ti].iter().find(|(n, _)| n == c).map(|(_, a)| a.clone()).unwrap_or(alts)
                }
                _ => alts,
            }
        };
        if !header && key_alts.iter().all(|a| matches!(a, ColumnAlt::Name(_))) {
            return Err(inv(&key("key"), "a table without header needs a column index".into()));
        }
        let key_pattern = match &t.key_pattern {
            Some(p) => {
                let re = pattern::regex(p).map_err(|e| inv(&key("key_pattern"), e))?;
                if t.key_rewrite.is_none() && !re.capture_names().any(|c| c == Some("key")) {
                    return Err(inv(
                        &key("key_pattern"),
                        format!("`{p}` has no group named `key` (or give `key_rewrite`)"),
                    ));
                }
                Some(re)
            }
            None => None,
        };
        if t.key_rewrite.is_some() && key_pattern.is_none() {
            return Err(inv(&key("key_rewrite"), "`key_rewrite` only goes with `key_pattern`".into()));
        }
        let join = Template::parse(&t.join, &|x| names.get(x)).map_err(|p| inv(&key("join"), p))?;
        tables.push(Table {
            name: n.clone(),
            files,
            rows: t.rows.clone(),
            format,
            header,
            key: key_alts,
            key_pattern,
            key_rewrite: t.key_rewrite.clone(),
            key_also: t
                .key_also
                .iter()
                .map(|c| match c {
                    raw::RawColumnOne::Index(i) => vec![ColumnAlt::Index(*i)],
                    raw::RawColumnOne::Name(n) => vec![ColumnAlt::Name(n.clone())],
                })
                .collect(),
            join,
            multi: t.multi,
        });
    }
    let table_set = RegexSet::new(&table_patterns).map_err(|e| inv("tables", e.to_string()))?;

    // Fields.
    let mut columns = Vec::new();
    let mut ctx = FieldCtx {
        names: &names,
        tables: &table_names,
        table_columns: &table_columns,
        roles: &roles,
        columns: &mut columns,
        row_table: None,
    };
    let mut labels = Vec::new();
    let mut label_columns: Vec<String> = Vec::new();
    for (vi, v) in raw.labels.iter().enumerate() {
        let when = match &v.when {
            Some(c) => Some(ctx.cond(&format!("labels[{vi}].when"), c).map_err(|(k, p)| inv(&k, p))?),
            None => None,
        };
        let mut fields = Vec::new();
        for (k, f) in &v.fields.0 {
            let key = format!("labels[{vi}].fields.{k}");
            if ["path", "patient", "study", "split"].contains(&k.as_str()) {
                return Err(inv(&key, format!("`{k}` is a labels.csv column of its own; pick another label name")));
            }
            fields.push((k.clone(), ctx.field(&key, f).map_err(|(k, p)| inv(&k, p))?));
            if !label_columns.contains(k) {
                label_columns.push(k.clone());
            }
        }
        labels.push(LabelVariant { when, fields });
    }
    if labels.is_empty() {
        // No [[labels]]: every study gets `{}`.
        labels.push(LabelVariant { when: None, fields: Vec::new() });
    }
    let mut metadata = Vec::new();
    for (k, f) in &raw.metadata.fields.0 {
        let key = format!("metadata.fields.{k}");
        if k == "split" || k == "source" {
            return Err(inv(&key, format!("`{k}` is written by medfs itself (use the top-level `split` key)")));
        }
        metadata.push((k.clone(), ctx.field(&key, f).map_err(|(k, p)| inv(&k, p))?));
    }
    let mut metadata_merge = Vec::new();
    for (i, f) in raw.metadata.merge.iter().enumerate() {
        metadata_merge.push(ctx.field(&format!("metadata.merge[{i}]"), f).map_err(|(k, p)| inv(&k, p))?);
    }
    let split = match &raw.split {
        Some(f) => Some(ctx.field("split", f).map_err(|(k, p)| inv(&k, p))?),
        None => None,
    };
    let mut patient = Vec::new();
    for (k, f) in &raw.patient.0 {
        patient.push((k.clone(), ctx.field(&format!("patient.{k}"), f).map_err(|(k, p)| inv(&k, p))?));
    }

    // [labels_csv]: without it every study file is a row.
    let mut csv_roles = vec![CsvRole::Row; roles.len()];
    let mut csv_file_columns = Vec::new();
    if let Some(lc) = &raw.labels_csv {
        csv_roles = vec![CsvRole::Neither; roles.len()];
        for (kind, list, name) in [
            (CsvRole::Row, &lc.rows, "rows"),
            (CsvRole::Series, &lc.series, "series"),
            (CsvRole::Column, &lc.columns, "columns"),
        ] {
            for (i, role) in list.iter().enumerate() {
                let key = format!("labels_csv.{name}[{i}]");
                let Some(r) = roles.iter().position(|x| x == role) else {
                    return Err(inv(&key, format!("no [[files]] role `{role}` (roles: {})", roles.join(", "))));
                };
                if csv_roles[r] != CsvRole::Neither {
                    return Err(inv(&key, format!("role `{role}` is listed twice")));
                }
                if kind == CsvRole::Column {
                    if label_columns.contains(role) || ["path", "patient", "study", "split"].contains(&role.as_str()) {
                        return Err(inv(&key, format!("column `{role}` is also a label key or a fixed column")));
                    }
                    csv_file_columns.push(r);
                }
                csv_roles[r] = kind;
            }
        }
        if !csv_roles.iter().any(|k| matches!(k, CsvRole::Row | CsvRole::Series)) {
            return Err(inv("labels_csv", "no role gives rows: list at least one in `rows` or `series`".into()));
        }
    }

    Ok(Profile {
        file: file.to_string(),
        slug,
        title: raw.title,
        homepage: raw.homepage,
        min_files: raw.recognize.min_files.unwrap_or(1).max(1),
        exclude,
        rules,
        rule_set,
        roles,
        names,
        tables,
        table_set,
        table_set_owner,
        columns,
        labels,
        label_columns,
        metadata,
        metadata_merge,
        split,
        patient,
        passwords: raw.passwords,
        derive,
        csv_roles,
        csv_file_columns,
        digest: [0; 32],
    })
}

fn rule_names(names: &Names, visible: &HashSet<usize>) -> String {
    let mut v: Vec<&str> = visible.iter().map(|s| names.name(*s)).collect();
    v.sort();
    v.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_parse() {
        for (name, text) in BUILTIN {
            if let Err(e) = parse(name, text) {
                panic!("{e}");
            }
        }
        // Every profile file is built in, by its name, with none listed anywhere.
        let mut stems: Vec<String> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/mounts"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter_map(|n| n.strip_suffix(".toml").map(str::to_string))
            .collect();
        stems.sort();
        let files: Vec<String> = builtin().iter().map(|p| p.file().to_string()).collect();
        assert_eq!(files, stems.iter().map(|s| format!("mounts/{s}.toml")).collect::<Vec<_>>());
        assert!(files.len() >= 19, "{files:?}");
    }
}
