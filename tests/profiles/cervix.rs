//! Golden test of `mounts/cervix.toml`: the competition's 7z set (additional sets named by their
//! archive), the Kaggle bundle (pre-extracted folders, test_stg2.7z nested in it), and the
//! loaders' extracted tree; fixed labels, removed files, empty and truncated JPEGs.

use crate::common::*;
use serde_json::{Value, json};

const BUNDLE: &str = "intel-mobileodt-cervical-cancer-screening.zip";

const FIXED: &str =
    "filename,old_label,new_label\n80.jpg,Type_1,Type_3\n968.jpg,Type_3,Type_1\nType_3\\1120.jpg,Type_3,1\n";
const REMOVED: &str = "filename\nType_1/12.jpg\n20.jpg\nType_3\\32.jpg\ntrain/Type_2/10.jpg\n";
const SOLUTION: &str = "image_name,Type_1,Type_2,Type_3\n0.jpg,0,1,0\n1.jpg,0,0,1\n";

/// (set, type folder or "", image number, bytes); the set is the patient.
fn images() -> Vec<(&'static str, &'static str, &'static str, Vec<u8>)> {
    let j = |seed: u64| jpeg(64, 48, seed, false);
    let mut cut = j(9);
    cut.truncate(300);
    vec![
        ("train", "1", "80", j(1)),
        ("train", "1", "1339", j(2)),
        ("train", "2", "7", j(3)),
        ("train", "2", "10", j(4)),
        ("train", "3", "968", j(5)),
        ("train", "3", "1120", j(6)),
        ("test", "", "0", j(7)),
        ("test", "", "1", j(8)),
        ("additional_Type_1_v2", "1", "80", j(10)),
        ("additional_Type_1_v2", "1", "12", j(11)),
        ("additional_Type_1_v2", "1", "5893", Vec::new()),
        ("additional_Type_1_v2", "1", "3068", cut.clone()),
        ("additional_Type_2_v2", "2", "7", cut),
        ("additional_Type_2_v2", "2", "12", j(12)),
        ("additional_Type_2_v2", "2", "20", j(13)),
        // removed_files.csv names train/Type_2/10.jpg: not this one.
        ("additional_Type_2_v2", "2", "10", j(16)),
        ("additional_Type_3_v2", "3", "32", j(14)),
        ("test_stg2", "", "00528", j(15)),
    ]
}

/// (archive, member path) of an image in the 7z set.
fn in_7z(set: &str, folder: &str, n: &str) -> (String, String) {
    match set {
        "train" => ("train.7z".into(), format!("train/Type_{folder}/{n}.jpg")),
        "test" | "test_stg2" => (format!("{set}.7z"), format!("{set}/{n}.jpg")),
        _ => (format!("{set}.7z"), format!("Type_{folder}/{n}.jpg")),
    }
}

/// (archive, member path) of an image in the Kaggle bundle.
fn in_bundle(set: &str, folder: &str, n: &str) -> (String, String) {
    match set {
        "train" => (BUNDLE.into(), format!("train/train/Type_{folder}/{n}.jpg")),
        "test" => (BUNDLE.into(), format!("test/test/{n}.jpg")),
        "test_stg2" => (format!("{BUNDLE}/test_stg2.7z"), format!("test_stg2/{n}.jpg")),
        _ => (BUNDLE.into(), format!("{set}/Type_{folder}/{n}.jpg")),
    }
}

fn csvs(p: &mut MemPool, archive: Option<&str>) {
    for (name, text) in [
        ("fixed_labels_v2.csv", FIXED),
        ("removed_files.csv", REMOVED),
        ("solution_stg1_release.csv", SOLUTION),
        ("sample_submission.csv", "image_name,Type_1,Type_2,Type_3\n0.jpg,0.168805,0.527346,0.303849\n"),
        ("sample_submission_stg2.csv", "image_name,Type_1,Type_2,Type_3\n00528.jpg,0.3,0.3,0.4\n"),
    ] {
        p.add(archive.unwrap_or(name), name, text);
    }
}

fn labels_of(set: &str, folder: &str, n: &str) -> Value {
    match (set, n) {
        ("test_stg2", _) => json!({}),
        ("test", "0") => json!({"cervix_type": "Type_2", "folder_type": null, "removed": false}),
        ("test", _) => json!({"cervix_type": "Type_3", "folder_type": null, "removed": false}),
        _ => {
            let fixed = match (set, n) {
                ("train", "80") => "Type_3".to_string(),
                ("train", "968" | "1120") => "Type_1".to_string(),
                _ => format!("Type_{folder}"),
            };
            let removed = matches!(
                (set, n),
                ("additional_Type_1_v2", "12") | ("additional_Type_2_v2", "20") | ("additional_Type_3_v2", "32")
            );
            json!({"cervix_type": fixed, "folder_type": format!("Type_{folder}"), "removed": removed})
        }
    }
}

fn check_form(p: &MemPool, place: fn(&str, &str, &str) -> (String, String)) {
    let ds = p.organize_with("cervix").expect("recognized");
    check_invariants(&ds, &p.organize_with("cervix").unwrap());
    assert!(ds.warnings.is_empty(), "{:?}", ds.warnings);
    let mut want: Vec<String> = vec!["dataset.json".into(), "labels.csv".into()];
    for (set, folder, n, data) in images() {
        let dir = format!("{set}/{n}");
        want.extend([format!("{dir}/{n}.jpg"), format!("{dir}/labels.json"), format!("{dir}/metadata.json")]);
        want.push(format!("{set}/patient.json"));
        let (archive, path) = place(set, folder, n);
        assert_eq!(json(&ds, &format!("{dir}/labels.json")), labels_of(set, folder, n), "{dir}");
        let truncated = match (set, n) {
            (_, "5893") => Value::Null,
            ("additional_Type_1_v2", "3068") | ("additional_Type_2_v2", "7") => json!(true),
            _ => json!(false),
        };
        let split = if set.starts_with("test") { "test" } else { "train" };
        assert_eq!(
            json(&ds, &format!("{dir}/metadata.json")),
            json!({"source_archive": archive, "source_path": path, "bytes": data.len(), "truncated": truncated,
                   "split": split, "source": {format!("{n}.jpg"): {"archive": archive, "path": path}}}),
            "{dir}"
        );
        let f = ds.files.iter().find(|f| f.rel_path == format!("{dir}/{n}.jpg")).unwrap();
        assert_eq!(f.source, p.id(&archive, &path), "{dir}");
    }
    want.sort();
    want.dedup();
    assert_eq!(tree(&ds), want);
    let csv = labels_csv(&ds);
    assert_eq!(csv.lines().next().unwrap(), "path,patient,study,split,cervix_type,folder_type,removed");
    assert!(csv.contains("\ntrain/80/80.jpg,train,80,train,Type_3,Type_1,false\n"), "{csv}");
    assert!(csv.contains("\ntest/1/1.jpg,test,1,test,Type_3,,false\n"), "{csv}");
    assert!(csv.contains("\ntest_stg2/00528/00528.jpg,test_stg2,00528,test,,,\n"), "{csv}");
    let dj = json(&ds, "dataset.json");
    assert_eq!(dj["counts"], json!({"patients": 6, "studies": 18, "files": 18}));
}

#[test]
fn cervix_7z_set() {
    let mut p = MemPool::new();
    for (set, folder, n, data) in images() {
        let (archive, path) = in_7z(set, folder, n);
        p.add(&archive, &path, data);
    }
    csvs(&mut p, None);
    check_form(&p, in_7z);
    let dj = json(&p.organize_with("cervix").unwrap(), "dataset.json");
    assert_eq!(
        dj["source_archives"],
        json!([
            "additional_Type_1_v2.7z",
            "additional_Type_2_v2.7z",
            "additional_Type_3_v2.7z",
            "fixed_labels_v2.csv",
            "removed_files.csv",
            "solution_stg1_release.csv",
            "test.7z",
            "test_stg2.7z",
            "train.7z"
        ])
    );
}

#[test]
fn cervix_kaggle_bundle_with_nested_stage2() {
    let mut p = MemPool::new();
    for (set, folder, n, data) in images() {
        let (archive, path) = in_bundle(set, folder, n);
        p.add(&archive, &path, data);
    }
    // The nested archive's own member in the outer zip is no study file.
    p.touch(BUNDLE, "test_stg2.7z");
    csvs(&mut p, Some(BUNDLE));
    check_form(&p, in_bundle);
}

#[test]
fn cervix_loaders_extracted_tree() {
    // Loose files: the "archive" is the first path component.
    fn place(set: &str, folder: &str, n: &str) -> (String, String) {
        let path = match set {
            "train" => format!("train/Type_{folder}/{n}.jpg"),
            "test" | "test_stg2" => format!("{set}/{n}.jpg"),
            _ => format!("additional/Type_{folder}/{n}.jpg"),
        };
        (path.split('/').next().unwrap().to_string(), path)
    }
    let mut p = MemPool::new();
    for (set, folder, n, data) in images() {
        let (archive, path) = place(set, folder, n);
        p.add(&archive, &path, data);
    }
    csvs(&mut p, None);
    check_form(&p, place);
}

#[test]
fn cervix_without_tables_types_come_from_folders() {
    let mut p = MemPool::new();
    for (set, folder, n, data) in images() {
        let (archive, path) = in_7z(set, folder, n);
        p.add(&archive, &path, data);
    }
    let ds = p.organize_with("cervix").unwrap();
    assert_eq!(
        json(&ds, "train/80/labels.json"),
        json!({"cervix_type": "Type_1", "folder_type": "Type_1", "removed": false})
    );
    assert_eq!(json(&ds, "test/0/labels.json"), json!({"cervix_type": null, "folder_type": null, "removed": false}));
    assert_eq!(json(&ds, "additional_Type_1_v2/12/labels.json")["removed"], json!(false));
}
