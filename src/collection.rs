//! Generic collections: which of the pool's unclaimed DICOM (and NIfTI) files form one generic
//! dataset, and the name it takes. Pure: takes where each archive came from, returns groups.
//!
//! The rule (TREE.md: one generic dataset per source):
//!
//! - **A folder given on the command line** is one collection, named after the folder: every
//!   archive found in it (at any depth, nested archives included) and every loose file in it. A
//!   TCIA collection downloaded as 30 zips into one folder, or as zips beside an extracted
//!   NBIA tree, is one dataset.
//! - **An archive (or file) given alone** is its own collection, named after its file stem
//!   (`HNSCC.zip` -> `HNSCC`; `.zip`, `.tar`, `.tar.gz`/`.tgz`, `.tar.bz2`, `.tar.xz`, `.tar.zst`,
//!   `.gz`, `.7z`, `.dcm`, `.nii`, `.nii.gz` are cut), **except** that archives given alone whose
//!   stems differ only by a trailing part number are one collection named after the common stem:
//!   `collection_00.zip ... collection_29.zip`, `TrainingSet_1_of_2.zip` + `TrainingSet_2_of_2.zip`,
//!   `LIDC-part1.zip` + `LIDC-part2.zip`. A part number is 1 to 4 digits after `_`, `-`, `.` or
//!   a space, optionally as `part<n>`/`vol<n>`/`disc<n>`/`disk<n>` and `<n>_of_<m>`; a 13-digit
//!   NBIA `manifest-1600709154662` is not a part number. A stem shared by only one archive is
//!   not cut (`scan_2.zip` alone stays `scan_2`).
//!
//! Collections are ordered by their first source on the command line; two collections with the
//! same name (two folders both called `data`) stay apart and the later one is shown `data~2`.

use std::collections::BTreeMap;

/// Where one archive of the pool came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin<'a> {
    /// Index of its command-line SOURCE.
    pub source: usize,
    /// That SOURCE is a folder.
    pub folder: bool,
    /// The SOURCE's own name (the folder's, or the file's when given alone).
    pub name: &'a str,
}

/// One collection: its name and the archives (indexes into the origins) it holds, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Collection {
    /// The name it is shown under (before the slug is made unique).
    pub name: String,
    /// Indexes of the origins (archives) in it, ascending.
    pub members: Vec<usize>,
}

/// Extensions cut from a source's name, longest first.
const EXTENSIONS: &[&str] =
    &[".tar.gz", ".tar.bz2", ".tar.xz", ".tar.zst", ".nii.gz", ".tgz", ".zip", ".tar", ".gz", ".7z", ".dcm", ".nii"];

/// A source's name without its archive (or image) extension.
pub fn stem(name: &str) -> &str {
    let lower = name.to_ascii_lowercase();
    let cut = EXTENSIONS.iter().find(|ext| lower.ends_with(*ext)).map_or(name.len(), |ext| name.len() - ext.len());
    &name[..cut]
}

/// The stem without a trailing part number (module documentation), or `None` when it has none.
pub fn part_stem(stem: &str) -> Option<&str> {
    static PART: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(
            r"(?i)^(.*?[^ _.-])[ _.-]+(?:(?:part|vol|disc|disk)[ _.-]?)?\d{1,4}(?:[ _.-]*of[ _.-]*\d{1,4})?$",
        )
        .expect("valid")
    });
    // `part3` glued to the stem (`LIDCpart3`) counts too; bare digits glued to a word do not
    // (`BraTS2021` is a name, not part 2021 of `BraTS`).
    static GLUED: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"(?i)^(.*?[^ _.-])(?:part|vol|disc|disk)\d{1,4}$").expect("valid")
    });
    let c = PART.captures(stem).or_else(|| GLUED.captures(stem))?;
    // A number longer than 4 digits before the match (`manifest-1600709154662`) never gets here:
    // `\d{1,4}$` after a separator needs the separator right before those digits.
    Some(c.get(1).expect("group 1").as_str())
}

/// Groups the archives of a pool into collections (module documentation).
pub fn collections(origins: &[Origin]) -> Vec<Collection> {
    // Part stems shared by archives given alone from at least two different sources.
    let mut part_sources: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for o in origins.iter().filter(|o| !o.folder) {
        if let Some(p) = part_stem(stem(o.name)) {
            let v = part_sources.entry(p).or_default();
            if !v.contains(&o.source) {
                v.push(o.source);
            }
        }
    }
    #[derive(PartialEq, Eq, PartialOrd, Ord)]
    enum Key<'a> {
        Source(usize),
        Parts(&'a str),
    }
    let mut groups: Vec<(Key, Collection, usize)> = Vec::new();
    for (i, o) in origins.iter().enumerate() {
        let (key, name) = if o.folder {
            (Key::Source(o.source), o.name.to_string())
        } else {
            match part_stem(stem(o.name)).filter(|p| part_sources.get(p).is_some_and(|v| v.len() > 1)) {
                Some(p) => (Key::Parts(p), p.to_string()),
                None => (Key::Source(o.source), stem(o.name).to_string()),
            }
        };
        match groups.iter_mut().find(|(k, _, _)| *k == key) {
            Some((_, c, first)) => {
                c.members.push(i);
                *first = (*first).min(o.source);
            }
            None => groups.push((key, Collection { name, members: vec![i] }, o.source)),
        }
    }
    groups.sort_by_key(|(_, c, first)| (*first, c.members[0]));
    groups.into_iter().map(|(_, c, _)| c).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(source: usize, folder: bool, name: &str) -> Origin<'_> {
        Origin { source, folder, name }
    }

    #[test]
    fn stems_and_part_numbers() {
        assert_eq!(stem("HNSCC.zip"), "HNSCC");
        assert_eq!(stem("x.TAR.GZ"), "x");
        assert_eq!(stem("vol.nii.gz"), "vol");
        assert_eq!(stem("noext"), "noext");
        for (name, want) in [
            ("collection_00", Some("collection")),
            ("collection_29", Some("collection")),
            ("TrainingSet_1_of_2", Some("TrainingSet")),
            ("LIDC-part3", Some("LIDC")),
            ("LIDC part 3", Some("LIDC")),
            ("LIDCpart3", Some("LIDC")),
            ("LIDC-IDRI-0001", Some("LIDC-IDRI")),
            ("images.001", Some("images")),
            ("manifest-1600709154662", None),
            ("BraTS2021", None),
            ("scan", None),
            ("_1", None),
            ("1", None),
        ] {
            assert_eq!(part_stem(name), want, "{name}");
        }
    }

    #[test]
    fn a_folder_is_one_collection_and_parts_given_alone_join() {
        let origins = [
            o(0, true, "downloads"),
            o(0, true, "downloads"),
            o(1, false, "HNSCC_part1.zip"),
            o(2, false, "other.zip"),
            o(3, false, "HNSCC_part2.zip"),
            o(3, false, "HNSCC_part2.zip"), // a nested archive of source 3
            o(4, false, "scan_2.zip"),
            o(5, true, "data"),
            o(6, true, "data"),
        ];
        let c = collections(&origins);
        let got: Vec<(&str, &[usize])> = c.iter().map(|c| (c.name.as_str(), c.members.as_slice())).collect();
        assert_eq!(
            got,
            [
                ("downloads", &[0, 1][..]),
                ("HNSCC", &[2, 4, 5][..]),
                ("other", &[3][..]),
                ("scan_2", &[6][..]),
                ("data", &[7][..]),
                ("data", &[8][..]),
            ]
        );
        // The same archives in another order give the same collections (by their members).
        let mut rev = origins.to_vec();
        rev.reverse();
        let c2 = collections(&rev);
        assert_eq!(c2.len(), c.len());
        assert_eq!(c2.iter().find(|c| c.name == "HNSCC").unwrap().members, [3, 4, 6]);
    }
}
