//! Golden test of `mounts/kaggle-dr.toml` (the kaggle-dr profile's header): train/ and test/ images from the joined
//! byte-split zips, trainLabels.csv from trainLabels.csv.zip, sample/ copies, the solution file.

use crate::common::*;
use medfs::organize::ContentSource;
use serde_json::json;

fn pool(with_solution: bool) -> MemPool {
    let mut p = MemPool::new();
    p.add("train.zip.001", "train/10_left.jpeg", jpeg(388, 259, 1, false))
        .add("train.zip.001", "train/10_right.jpeg", jpeg(388, 259, 1, false))
        .add("train.zip.001", "train/15_right.jpeg", jpeg(259, 194, 1, false))
        .add("test.zip.001", "test/1_left.jpeg", jpeg(475, 316, 1, false))
        .add("test.zip.001", "test/1_right.jpeg", jpeg(475, 316, 1, false))
        .add("sample.zip", "sample/10_left.jpeg", jpeg(388, 259, 1, false))
        .add(
            "trainLabels.csv.zip",
            "trainLabels.csv",
            "image,level\n10_left,0\n10_right,0\n13_left,0\n15_left,1\n15_right,2\n16_left,4\n",
        )
        .add("sampleSubmission.csv.zip", "sampleSubmission.csv", "image,level\n1_left,0\n1_right,0\n");
    if with_solution {
        p.add(
            "retinopathy_solution.csv",
            "retinopathy_solution.csv",
            "image,level,Usage\n1_left,0,Private\n1_right,3,Public\n",
        );
    }
    p
}

#[test]
fn kaggle_dr_with_solution() {
    let p = pool(true);
    let ds = p.organize_with("kaggle-dr").expect("recognized");
    check_invariants(&ds, &p.organize_with("kaggle-dr").unwrap());
    assert_eq!(
        tree(&ds),
        [
            "1/1_left/1_left.jpeg",
            "1/1_left/labels.json",
            "1/1_left/metadata.json",
            "1/1_right/1_right.jpeg",
            "1/1_right/labels.json",
            "1/1_right/metadata.json",
            "1/patient.json",
            "10/10_left/10_left.jpeg",
            "10/10_left/labels.json",
            "10/10_left/metadata.json",
            "10/10_right/10_right.jpeg",
            "10/10_right/labels.json",
            "10/10_right/metadata.json",
            "10/patient.json",
            "15/15_right/15_right.jpeg",
            "15/15_right/labels.json",
            "15/15_right/metadata.json",
            "15/patient.json",
            "dataset.json",
            "labels.csv",
        ]
    );
    // sample/ is not a source of 10_left.
    let f = ds.files.iter().find(|f| f.rel_path == "10/10_left/10_left.jpeg").unwrap();
    assert_eq!(f.source, p.id("train.zip.001", "train/10_left.jpeg"));
    assert_eq!(json(&ds, "15/15_right/labels.json"), json!({"level": 2, "level_name": "Moderate"}));
    assert_eq!(json(&ds, "1/1_right/labels.json"), json!({"level": 3, "level_name": "Severe", "usage": "Public"}));
    assert_eq!(
        json(&ds, "10/10_left/metadata.json"),
        json!({"eye": "left", "image_id": "10_left", "source_split": "train", "width": 388, "height": 259,
               "split": "train",
               "source": {"10_left.jpeg": {"archive": "train.zip.001", "path": "train/10_left.jpeg"}}})
    );
    assert_eq!(json(&ds, "1/1_left/metadata.json")["split"], "test");
    let csv = labels_csv(&ds);
    assert_eq!(csv.lines().next().unwrap(), "path,patient,study,split,level,level_name,usage");
    assert!(csv.contains("\n10/10_right/10_right.jpeg,10,10_right,train,0,No DR,\n"), "{csv}");
    assert!(csv.contains("\n1/1_left/1_left.jpeg,1,1_left,test,0,No DR,Private\n"), "{csv}");
}

#[test]
fn kaggle_dr_without_solution_test_is_empty() {
    let ds = pool(false).organize_with("kaggle-dr").unwrap();
    assert_eq!(json(&ds, "1/1_left/labels.json"), json!({}));
    assert_eq!(json(&ds, "10/10_right/labels.json"), json!({"level": 0, "level_name": "No DR"}));
    assert!(labels_csv(&ds).contains("\n1/1_left/1_left.jpeg,1,1_left,test,,,\n"));
}

/// The Kaggle API bundle diabetic-retinopathy-detection.zip: the byte-split zips inside it are
/// joined into `<bundle>/train.zip` and `<bundle>/test.zip`, the CSV zips are nested archives
/// too; the parts themselves, members of the bundle, are no study files.
#[test]
fn kaggle_dr_bundle_of_nested_zips() {
    const B: &str = "diabetic-retinopathy-detection.zip";
    let plain = pool(false);
    let mut p = MemPool::new();
    for f in &plain.files {
        let inner = f.archive.strip_suffix(".001").unwrap_or(&f.archive);
        p.add(&format!("{B}/{inner}"), &f.path, plain.read_all(f.id).unwrap());
    }
    for part in ["train.zip.001", "train.zip.002", "test.zip.001", "trainLabels.csv.zip", "sample.zip"] {
        p.touch(B, part);
    }
    let ds = p.organize_with("kaggle-dr").unwrap();
    check_invariants(&ds, &p.organize_with("kaggle-dr").unwrap());
    assert_eq!(tree(&ds), tree(&plain.organize_with("kaggle-dr").unwrap()));
    assert_eq!(
        json(&ds, "dataset.json")["source_archives"],
        json!([format!("{B}/test.zip"), format!("{B}/train.zip"), format!("{B}/trainLabels.csv.zip")])
    );
    assert_eq!(json(&ds, "15/15_right/labels.json"), json!({"level": 2, "level_name": "Moderate"}));
    assert_eq!(
        json(&ds, "10/10_left/metadata.json")["source"],
        json!({"10_left.jpeg": {"archive": format!("{B}/train.zip"), "path": "train/10_left.jpeg"}})
    );
}
