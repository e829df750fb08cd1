//! Broken profiles give errors that name the file, the key and the problem.

use medfs::profile::{self, ProfileError};

const GOOD: &str = r#"
title = "Toy"
[[files]]
role = "image"
path = '(?P<p>\w+)/(?P<s>\w+)/(?P<img>[^/]+\.png)$'
patient = "{p}"
study = "{s}"
[tables.t]
files = ['labels\.csv$']
key = "image"
join = "{img}"
[[labels]]
[labels.fields]
x = { column = "t.x", type = "int" }
"#;

fn err(text: &str) -> String {
    match profile::parse("mounts/toy.toml", text) {
        Ok(_) => panic!("profile accepted:\n{text}"),
        Err(e) => e.to_string(),
    }
}

fn invalid(text: &str) -> (String, String, String) {
    match profile::parse("mounts/toy.toml", text) {
        Err(ProfileError::Invalid { file, key, problem }) => (file, key, problem),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn good_profile_parses() {
    let p = profile::parse("mounts/toy.toml", GOOD).unwrap();
    assert_eq!(p.slug(), "toy");
    assert_eq!(p.title(), "Toy");
}

#[test]
fn unknown_key() {
    let e = err(&GOOD.replace("title = \"Toy\"", "title = \"Toy\"\nhompage = \"x\""));
    assert!(e.starts_with("mounts/toy.toml: "), "{e}");
    assert!(e.contains("hompage"), "{e}");
    let e = err(&GOOD.replace("type = \"int\"", "type = \"int\", sperator = \",\""));
    assert!(e.contains("sperator") && e.contains("mounts/toy.toml"), "{e}");
}

#[test]
fn bad_regex() {
    let (file, key, problem) = invalid(&GOOD.replace(r"(?P<img>[^/]+\.png)$", r"(?P<img>[^/+\.png)$"));
    assert_eq!(file, "mounts/toy.toml");
    assert_eq!(key, "files[0].path");
    assert!(problem.contains("invalid regex"), "{problem}");
    let e = err(&GOOD.replace(r"(?P<img>[^/]+\.png)$", r"(?P<img>[^/+\.png)$"));
    assert!(e.starts_with("mounts/toy.toml: key `files[0].path`: invalid regex"), "{e}");
}

#[test]
fn capture_name_missing() {
    let (_, key, problem) = invalid(&GOOD.replace("study = \"{s}\"", "study = \"{series}\""));
    assert_eq!(key, "files[0].study");
    assert!(problem.contains("{series}") && problem.contains("not a capture name"), "{problem}");
    // Study-level templates see every rule's captures, but not unknown ones.
    let (_, key, _) = invalid(&GOOD.replace("join = \"{img}\"", "join = \"{image}\""));
    assert_eq!(key, "tables.t.join");
    // A capture may not shadow a built-in name.
    let (_, key, problem) = invalid(&GOOD.replace("(?P<s>", "(?P<study>").replace("{s}", "{study}"));
    assert_eq!(key, "files[0].path");
    assert!(problem.contains("reserved"), "{problem}");
}

#[test]
fn bad_type() {
    let (_, key, problem) = invalid(&GOOD.replace("type = \"int\"", "type = \"integer\""));
    assert_eq!(key, "labels[0].fields.x.type");
    assert!(problem.contains("unknown type `integer`"), "{problem}");
    // A wrong TOML type is a syntax error that names the key.
    let e = err(&GOOD.replace("title = \"Toy\"", "title = 3"));
    assert!(e.contains("title") && e.contains("mounts/toy.toml"), "{e}");
}

#[test]
fn references_checked() {
    let (_, key, problem) = invalid(&GOOD.replace("column = \"t.x\"", "column = \"u.x\""));
    assert_eq!(key, "labels[0].fields.x.column");
    assert!(problem.contains("no table named `u`"), "{problem}");
    let (_, key, problem) =
        invalid(&GOOD.replace("column = \"t.x\", type = \"int\"", "transform = \"frobnicate\", role = \"image\""));
    assert_eq!(key, "labels[0].fields.x.transform");
    assert!(problem.contains("unknown transform"), "{problem}");
    let (_, key, problem) = invalid(&GOOD.replace("column = \"t.x\", type = \"int\"", "count = \"mask\""));
    assert_eq!(key, "labels[0].fields.x.count");
    assert!(problem.contains("role `mask`"), "{problem}");
    let (_, key, problem) = invalid(&GOOD.replace("column = \"t.x\", type = \"int\"", "capture = \"p\", value = 1"));
    assert_eq!(key, "labels[0].fields.x");
    assert!(problem.contains("several value sources"), "{problem}");
    let (_, key, problem) = invalid(&GOOD.replace("join = \"{img}\"", "join = \"{img}\"\nkey_pattern = '(?P<k>.*)'"));
    assert_eq!(key, "tables.t.key_pattern");
    assert!(problem.contains("no group named `key`"), "{problem}");
    let (_, key, _) = invalid(&GOOD.replace("x = {", "split = {"));
    assert_eq!(key, "labels[0].fields.split");
    let (_, key, _) = invalid(&GOOD.replace("{p}", "{p|rot13}"));
    assert_eq!(key, "files[0].patient");
}

#[test]
fn load_dir_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.toml"), GOOD).unwrap();
    std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
    let ps = profile::load_dir(dir.path()).unwrap();
    assert_eq!(ps.len(), 1);
    assert_eq!(ps[0].slug(), "a");
    std::fs::write(dir.path().join("b.toml"), GOOD.replace("title = \"Toy\"", "slug = \"a\"\ntitle = \"Toy\""))
        .unwrap();
    match profile::load_dir(dir.path()) {
        Err(ProfileError::DuplicateSlug { file, slug, .. }) => {
            assert!(file.ends_with("b.toml"));
            assert_eq!(slug, "a");
        }
        other => panic!("{other:?}"),
    }
    std::fs::write(dir.path().join("b.toml"), GOOD.replace("type = \"int\"", "type = \"nope\"")).unwrap();
    let e = profile::load_dir(dir.path()).unwrap_err().to_string();
    assert!(e.contains("b.toml") && e.contains("labels[0].fields.x.type") && e.contains("nope"), "{e}");
    // The built-ins and a user profile combine; the user one replaces a same-slug built-in.
    let merged = profile::merge(profile::builtin(), vec![profile::parse("x/mura.toml", GOOD).unwrap()]);
    assert_eq!(merged.iter().filter(|p| p.slug() == "mura").count(), 1);
    assert_eq!(merged.last().unwrap().title(), "Toy");
}

#[test]
fn print_sample_errors() {
    // Shown with --nocapture, to eyeball the wording.
    for broken in [
        GOOD.replace("title = \"Toy\"", "title = \"Toy\"\nhompage = \"x\""),
        GOOD.replace("study = \"{s}\"", "study = \"{series}\""),
        GOOD.replace("type = \"int\"", "type = \"integer\""),
    ] {
        println!("{}\n", err(&broken));
    }
}

#[test]
fn lookup_and_rewrite_checked() {
    let ok = GOOD.replace(
        r#"x = { column = "t.x", type = "int" }"#,
        r#"x = { lookup = "t.x", key = "{p}", extract = '^(\d)(\d)$', rewrite = "${2}${1}" }"#,
    );
    profile::parse("mounts/toy.toml", &ok).unwrap();
    let (_, key, problem) = invalid(&GOOD.replace(r#"column = "t.x""#, r#"lookup = "t.x""#));
    assert_eq!(key, "labels[0].fields.x");
    assert!(problem.contains("`lookup` needs `key`"), "{problem}");
    let (_, key, _) = invalid(&GOOD.replace(r#"column = "t.x""#, r#"lookup = "u.x", key = "{p}""#));
    assert_eq!(key, "labels[0].fields.x.lookup");
    let (_, key, problem) = invalid(&GOOD.replace(r#"type = "int""#, r#"rewrite = "$1""#));
    assert_eq!(key, "labels[0].fields.x.rewrite");
    assert!(problem.contains("only goes with `extract`"), "{problem}");
}

#[test]
fn labels_csv_and_dicom_from_lists_are_checked() {
    let (_, key, problem) = invalid(&format!("{GOOD}[labels_csv]\nrows = [\"imgs\"]\n"));
    assert_eq!(key, "labels_csv.rows[0]");
    assert!(problem.contains("no [[files]] role `imgs`") && problem.contains("image"), "{problem}");
    let (_, key, problem) = invalid(&format!("{GOOD}[labels_csv]\ncolumns = [\"image\"]\n"));
    assert_eq!(key, "labels_csv");
    assert!(problem.contains("no role gives rows"), "{problem}");
    let (_, key, problem) = invalid(&format!("{GOOD}[labels_csv]\nrows = [\"image\"]\nseries = [\"image\"]\n"));
    assert_eq!((key.as_str(), problem.contains("listed twice")), ("labels_csv.series[0]", true), "{problem}");
    let with_from = GOOD.replace("study = \"{s}\"", "study = \"{s}\"\ndicom = { u = \"StudyInstanceUID\" }\ndicom_from = [\"{p}/T2W\", \"folder\"]");
    let (_, key, problem) = invalid(&with_from);
    assert_eq!(key, "files[0].dicom_from[1]");
    assert!(problem.contains("stands alone"), "{problem}");
    assert!(err(&format!("{GOOD}[labels_csv]\nrow = [\"image\"]\n")).contains("unknown field"));
}
