//! Golden test of `mounts/mura.toml` on a path list mimicking `MURA-v1.1.zip` (the mura profile's header).

use crate::common::*;
use serde_json::json;

fn pool() -> MemPool {
    let mut p = MemPool::new();
    let z = "MURA-v1.1.zip";
    p.touch(z, "MURA-v1.1/train/XR_SHOULDER/patient00001/study1_positive/image1.png")
        .touch(z, "MURA-v1.1/train/XR_SHOULDER/patient00001/study1_positive/image2.png")
        .touch(z, "MURA-v1.1/train/XR_SHOULDER/patient00001/study1_positive/image3.png")
        // Same patient, two types, both `study1_*`; and two studies of one type.
        .touch(z, "MURA-v1.1/train/XR_WRIST/patient00002/study1_positive/image1.png")
        .touch(z, "MURA-v1.1/train/XR_WRIST/patient00002/study1_positive/._image1.png")
        .touch(z, "MURA-v1.1/train/XR_HAND/patient00002/study1_negative/image1.png")
        .touch(z, "MURA-v1.1/train/XR_HAND/patient00002/study2_positive/image1.png")
        .touch(z, "MURA-v1.1/valid/XR_WRIST/patient11185/study1_positive/image1.png")
        .touch(z, "MURA-v1.1/valid/XR_WRIST/patient11185/study1_positive/image2.png")
        .add(
            z,
            "MURA-v1.1/train_image_paths.csv",
            "MURA-v1.1/train/XR_SHOULDER/patient00001/study1_positive/image1.png\n",
        )
        .add(
            z,
            "MURA-v1.1/train_labeled_studies.csv",
            "MURA-v1.1/train/XR_SHOULDER/patient00001/study1_positive/,1\n\
             MURA-v1.1/train/XR_WRIST/patient00002/study1_positive/,1\n\
             MURA-v1.1/train/XR_HAND/patient00002/study1_negative/,0\n\
             MURA-v1.1/train/XR_HAND/patient00002/study2_positive/,1\n",
        )
        .add(z, "MURA-v1.1/valid_image_paths.csv", "")
        .add(z, "MURA-v1.1/valid_labeled_studies.csv", "MURA-v1.1/valid/XR_WRIST/patient11185/study1_positive/,1\n")
        .touch(z, "MURA-v1.1/");
    p
}

#[test]
fn mura_tree_and_sidecars() {
    let p = pool();
    let ds = p.organize_with("mura").expect("mura recognized");
    check_invariants(&ds, &p.organize_with("mura").unwrap());
    assert_eq!(
        tree(&ds),
        [
            "dataset.json",
            "labels.csv",
            "patient00001/XR_SHOULDER_study1_positive/image1.png",
            "patient00001/XR_SHOULDER_study1_positive/image2.png",
            "patient00001/XR_SHOULDER_study1_positive/image3.png",
            "patient00001/XR_SHOULDER_study1_positive/labels.json",
            "patient00001/XR_SHOULDER_study1_positive/metadata.json",
            "patient00001/patient.json",
            "patient00002/XR_HAND_study1_negative/image1.png",
            "patient00002/XR_HAND_study1_negative/labels.json",
            "patient00002/XR_HAND_study1_negative/metadata.json",
            "patient00002/XR_HAND_study2_positive/image1.png",
            "patient00002/XR_HAND_study2_positive/labels.json",
            "patient00002/XR_HAND_study2_positive/metadata.json",
            "patient00002/XR_WRIST_study1_positive/image1.png",
            "patient00002/XR_WRIST_study1_positive/labels.json",
            "patient00002/XR_WRIST_study1_positive/metadata.json",
            "patient00002/patient.json",
            "patient11185/XR_WRIST_study1_positive/image1.png",
            "patient11185/XR_WRIST_study1_positive/image2.png",
            "patient11185/XR_WRIST_study1_positive/labels.json",
            "patient11185/XR_WRIST_study1_positive/metadata.json",
            "patient11185/patient.json",
        ]
    );
    let f = ds.files.iter().find(|f| f.rel_path == "patient00002/XR_WRIST_study1_positive/image1.png").unwrap();
    assert_eq!(f.source, p.id("MURA-v1.1.zip", "MURA-v1.1/train/XR_WRIST/patient00002/study1_positive/image1.png"));
    assert_eq!(
        json(&ds, "patient00002/XR_HAND_study1_negative/labels.json"),
        json!({"label": 0, "label_name": "negative"})
    );
    assert_eq!(
        json(&ds, "patient11185/XR_WRIST_study1_positive/metadata.json"),
        json!({
            "study_type": "XR_WRIST", "study_dir": "study1_positive",
            "source_path": "MURA-v1.1/valid/XR_WRIST/patient11185/study1_positive/",
            "num_images": 2, "source_split": "valid", "split": "valid",
            "source": {
                "image1.png": {"archive": "MURA-v1.1.zip", "path": "MURA-v1.1/valid/XR_WRIST/patient11185/study1_positive/image1.png"},
                "image2.png": {"archive": "MURA-v1.1.zip", "path": "MURA-v1.1/valid/XR_WRIST/patient11185/study1_positive/image2.png"},
            }
        })
    );
    assert_eq!(json(&ds, "patient00001/patient.json"), json!({}));
    assert_eq!(
        labels_csv(&ds),
        "path,patient,study,split,label,label_name\n\
         patient00001/XR_SHOULDER_study1_positive/image1.png,patient00001,XR_SHOULDER_study1_positive,train,1,positive\n\
         patient00001/XR_SHOULDER_study1_positive/image2.png,patient00001,XR_SHOULDER_study1_positive,train,1,positive\n\
         patient00001/XR_SHOULDER_study1_positive/image3.png,patient00001,XR_SHOULDER_study1_positive,train,1,positive\n\
         patient00002/XR_HAND_study1_negative/image1.png,patient00002,XR_HAND_study1_negative,train,0,negative\n\
         patient00002/XR_HAND_study2_positive/image1.png,patient00002,XR_HAND_study2_positive,train,1,positive\n\
         patient00002/XR_WRIST_study1_positive/image1.png,patient00002,XR_WRIST_study1_positive,train,1,positive\n\
         patient11185/XR_WRIST_study1_positive/image1.png,patient11185,XR_WRIST_study1_positive,valid,1,positive\n\
         patient11185/XR_WRIST_study1_positive/image2.png,patient11185,XR_WRIST_study1_positive,valid,1,positive\n"
    );
    assert_eq!(
        json(&ds, "dataset.json"),
        json!({"slug": "mura", "title": "MURA v1.1 (Stanford musculoskeletal radiographs)",
               "homepage": "https://stanfordmlgroup.github.io/competitions/mura/",
               "source_archives": ["MURA-v1.1.zip"],
               "counts": {"patients": 3, "studies": 5, "files": 8}})
    );
    assert!(ds.warnings.is_empty(), "{:?}", ds.warnings);
}

/// An extracted tree without the top folder, no CSVs: labels come from the folder names, and the
/// label disagrees with nothing.
#[test]
fn mura_extracted_without_top_folder_or_csv() {
    let mut p = MemPool::new();
    p.touch("mura", "train/XR_ELBOW/patient00031/study1_negative/image1.png")
        .touch("mura", "valid/XR_WRIST/patient11185/study1_positive/image1.png");
    let ds = p.organize_with("mura").unwrap();
    assert_eq!(
        json(&ds, "patient00031/XR_ELBOW_study1_negative/labels.json"),
        json!({"label": 0, "label_name": "negative"})
    );
    let m = json(&ds, "patient00031/XR_ELBOW_study1_negative/metadata.json");
    assert_eq!(m["source_path"], "train/XR_ELBOW/patient00031/study1_negative/");
    assert_eq!(m["split"], "train");
}

/// Other datasets' profiles do not claim MURA files.
#[test]
fn only_mura_recognized() {
    let all = pool().organize();
    let slugs: Vec<&str> = all.iter().map(|d| d.slug.as_str()).collect();
    assert_eq!(slugs, ["mura"]);
}
