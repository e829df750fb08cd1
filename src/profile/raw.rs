//! Serde mirror of a profile TOML file: one struct per table, types only, no meaning checked.
//!
//! Like ripgrep's `LowArgs`, these structs stay as close to the file as possible so that serde's
//! own errors (unknown key, wrong type) point at the right line; everything that needs judgment
//! (regexes, templates, references between tables) happens in `profile.rs` when compiling.

use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};

/// A TOML table kept in document order (labels.csv columns follow the order keys are written in).
///
/// Order comes from toml's `preserve_order` feature; a plain `BTreeMap` would sort the keys.
#[derive(Debug, Clone)]
pub struct Ordered<T>(pub Vec<(String, T)>);

impl<T> Default for Ordered<T> {
    fn default() -> Self {
        Ordered(Vec::new())
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Ordered<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Ordered<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a table")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered<T>, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, T>()? {
                    out.push((k, v));
                }
                Ok(Ordered(out))
            }
        }
        d.deserialize_map(V(PhantomData))
    }
}

/// The whole profile file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProfile {
    pub slug: Option<String>,
    pub title: String,
    pub homepage: Option<String>,
    #[serde(default)]
    pub passwords: Vec<String>,
    #[serde(default)]
    pub recognize: RawRecognize,
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Derived-file kinds to make per study (`derive/`), in order.
    #[serde(default)]
    pub derive: Vec<String>,
    #[serde(default)]
    pub files: Vec<RawFileRule>,
    #[serde(default)]
    pub tables: Ordered<RawTable>,
    #[serde(default)]
    pub labels: Vec<RawLabels>,
    #[serde(default)]
    pub metadata: RawMetadata,
    pub split: Option<RawField>,
    #[serde(default)]
    pub patient: Ordered<RawField>,
}

/// `[recognize]`: when the dataset counts as present in the pool.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRecognize {
    pub min_files: Option<usize>,
}

/// One `[[files]]` rule: which members are study files and where they go.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFileRule {
    pub role: String,
    pub path: String,
    pub archive: Option<String>,
    pub patient: String,
    pub study: String,
    pub name: Option<String>,
    pub dicom: Option<Ordered<String>>,
    pub dicom_from: Option<String>,
    pub lookup: Option<Ordered<RawLookup>>,
}

/// One `lookup` capture of a `[[files]]` rule: a table cell found while placing the file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLookup {
    pub table: String,
    pub key: String,
    pub column: RawColumn,
    pub default: Option<String>,
}

/// A column reference: header name, 0-based index, or alternatives tried in order.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawColumn {
    Index(usize),
    Name(String),
    Alternatives(Vec<RawColumnOne>),
}

/// One alternative of a [`RawColumn`].
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawColumnOne {
    Index(usize),
    Name(String),
}

/// One `[tables.<name>]`: a CSV/TSV/line list from the pool, or rows written in the profile.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTable {
    #[serde(default)]
    pub files: Vec<String>,
    pub rows: Option<Vec<Vec<String>>>,
    pub format: Option<String>,
    pub header: Option<bool>,
    pub key: RawColumn,
    pub key_pattern: Option<String>,
    pub key_rewrite: Option<String>,
    #[serde(default)]
    pub key_also: Vec<RawColumnOne>,
    pub join: String,
    #[serde(default)]
    pub columns: Ordered<RawColumn>,
    #[serde(default)]
    pub multi: bool,
}

/// One `[[labels]]` variant: a key set and when it applies.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLabels {
    pub when: Option<RawCond>,
    #[serde(default)]
    pub fields: Ordered<RawField>,
}

/// `[metadata]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMetadata {
    #[serde(default)]
    pub fields: Ordered<RawField>,
    #[serde(default)]
    pub merge: Vec<RawField>,
}

/// A condition (`when`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCond {
    pub capture: Option<String>,
    pub equals: Option<String>,
    pub matches: Option<String>,
    pub exists: Option<String>,
    pub file: Option<String>,
}

/// A value: one source key plus modifiers.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawField {
    // Sources: exactly one.
    pub capture: Option<String>,
    pub template: Option<String>,
    pub column: Option<String>,
    pub value: Option<toml::Value>,
    pub exists: Option<String>,
    pub file: Option<String>,
    pub files: Option<String>,
    pub count: Option<String>,
    pub rows: Option<String>,
    pub first: Option<Vec<RawField>>,
    pub table_file: Option<String>,
    pub transform: Option<String>,
    pub object: Option<Ordered<RawField>>,
    pub each: Option<String>,
    pub dicom: Option<String>,
    pub worst: Option<String>,
    pub lookup: Option<String>,
    // Arguments of some sources.
    pub role: Option<String>,
    pub key: Option<String>,
    pub sort: Option<String>,
    pub group: Option<String>,
    pub order: Option<Vec<String>>,
    pub item: Option<Box<RawField>>,
    #[serde(default)]
    pub fields: Ordered<RawField>,
    // Modifiers.
    pub when: Option<RawCond>,
    pub null: Option<Vec<String>>,
    pub extract: Option<String>,
    pub rewrite: Option<String>,
    pub map: Option<toml::Table>,
    pub otherwise: Option<toml::Value>,
    #[serde(rename = "type")]
    pub ty: Option<String>,
    pub separator: Option<String>,
    pub remove: Option<Vec<String>>,
    pub default: Option<toml::Value>,
}
