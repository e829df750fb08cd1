//! Golden test of `mounts/chestxray14.toml`: tarballs `images_00N.tar.gz` with `images/...`, and
//! the loose label files with their quirks (the chestxray14 profile's header).

use crate::common::*;
use serde_json::json;

const V2020: &str = "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Sex,View Position,OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y],\n\
00000001_000.png,Cardiomegaly,0,1,57,M,PA,2682,2749,0.14300000000000002,0.14300000000000002,\n\
00000001_001.png,Cardiomegaly|Emphysema,1,1,58,M,PA,2894,2729,0.14300000000000002,0.14300000000000002,\n\
00000003_001.png,Hernia,0,3,74,F,PA,2500,2048,0.168,0.168,\n\
00013118_008.png,Infiltration,8,13118,41,F,AP,3056,2544,0.139,0.139,\n\
00030805_000.png,No Finding,0,30805,39,M,PA,2048,2500,0.168,0.168,\n";

const V2017: &str = "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y],\n\
00000001_000.png,Cardiomegaly,0,1,414,M,PA,2682,2749,0.143,0.143\n\
00000001_001.png,Cardiomegaly|Emphysema,1,1,058Y,M,PA,2894,2729,0.143,0.143\n\
00000003_001.png,Hernia,0,3,74,F,PA,2500,2048,0.168,0.168\n\
00013118_008.png,Infiltration,8,13118,41,F,AP,3056,2544,0.139,0.139\n\
00030805_000.png,No Finding,0,30805,39,M,PA,2048,2500,0.168,0.168\n";

const BBOX: &str = "Image Index,Finding Label,Bbox [x,y,w,h],,,\n\
00013118_008.png,Atelectasis,225.084745762712,547.019216763771,86.7796610169491,79.1864406779661\n\
00013118_008.png,Infiltrate,10.5,20,30.25,40\n";

fn pool(with_v2020: bool) -> MemPool {
    let mut p = MemPool::new();
    p.touch("images_001.tar.gz", "images/00000001_000.png")
        .touch("images_001.tar.gz", "images/00000001_001.png")
        .touch("images_001.tar.gz", "images/00000003_001.png")
        .touch("images_002.tar.gz", "images/00013118_008.png")
        .touch("images_012.tar.gz", "images/00030805_000.png")
        // An image no list mentions: split null.
        .touch("images_012.tar.gz", "images/00030805_001.png");
    if with_v2020 {
        p.add("Data_Entry_2017_v2020.csv", "Data_Entry_2017_v2020.csv", V2020);
    }
    p.add("Data_Entry_2017.csv", "Data_Entry_2017.csv", V2017)
        .add("BBox_List_2017.csv", "BBox_List_2017.csv", BBOX)
        .add("train_val_list.txt", "train_val_list.txt", "00000001_000.png\n00000001_001.png\n00000003_001.png\n")
        .add("test_list.txt", "test_list.txt", "00013118_008.png\r\n00030805_000.png\r\n")
        .touch("README_CHESTXRAY.pdf", "README_CHESTXRAY.pdf");
    p
}

#[test]
fn chestxray14_tree_and_sidecars() {
    let p = pool(true);
    let ds = p.organize_with("chestxray14").expect("recognized");
    check_invariants(&ds, &p.organize_with("chestxray14").unwrap());
    assert_eq!(
        tree(&ds),
        [
            "00000001/00000001_000/00000001_000.png",
            "00000001/00000001_000/labels.json",
            "00000001/00000001_000/metadata.json",
            "00000001/00000001_001/00000001_001.png",
            "00000001/00000001_001/labels.json",
            "00000001/00000001_001/metadata.json",
            "00000001/patient.json",
            "00000003/00000003_001/00000003_001.png",
            "00000003/00000003_001/labels.json",
            "00000003/00000003_001/metadata.json",
            "00000003/patient.json",
            "00013118/00013118_008/00013118_008.png",
            "00013118/00013118_008/labels.json",
            "00013118/00013118_008/metadata.json",
            "00013118/patient.json",
            "00030805/00030805_000/00030805_000.png",
            "00030805/00030805_000/labels.json",
            "00030805/00030805_000/metadata.json",
            "00030805/00030805_001/00030805_001.png",
            "00030805/00030805_001/labels.json",
            "00030805/00030805_001/metadata.json",
            "00030805/patient.json",
            "dataset.json",
            "labels.csv",
        ]
    );
    assert_eq!(
        json(&ds, "00000001/00000001_001/labels.json"),
        json!({"finding_labels": "Cardiomegaly|Emphysema", "findings": ["Cardiomegaly", "Emphysema"],
               "no_finding": false, "bboxes": []})
    );
    // Box labels verbatim (`Infiltrate`), file order, full precision.
    assert_eq!(
        json(&ds, "00013118/00013118_008/labels.json"),
        json!({"finding_labels": "Infiltration", "findings": ["Infiltration"], "no_finding": false,
               "bboxes": [
                 {"label": "Atelectasis", "x": 225.084745762712, "y": 547.019216763771, "w": 86.7796610169491, "h": 79.1864406779661},
                 {"label": "Infiltrate", "x": 10.5, "y": 20.0, "w": 30.25, "h": 40.0}]})
    );
    assert_eq!(
        json(&ds, "00030805/00030805_000/labels.json"),
        json!({"finding_labels": "No Finding", "findings": [], "no_finding": true, "bboxes": []})
    );
    // v2020 wins: age 57 (not 2017's 414), float artefacts kept, `Patient Sex` header.
    assert_eq!(
        json(&ds, "00000001/00000001_000/metadata.json"),
        json!({"image_index": "00000001_000.png", "patient_id": 1, "follow_up": 0,
               "patient_age": 57, "patient_sex": "M", "view_position": "PA",
               "original_width": 2682, "original_height": 2749,
               "pixel_spacing_x": 0.14300000000000002, "pixel_spacing_y": 0.14300000000000002,
               "source_tarball": "images_001.tar.gz", "label_file": "Data_Entry_2017_v2020.csv",
               "split": "train",
               "source": {"00000001_000.png": {"archive": "images_001.tar.gz", "path": "images/00000001_000.png"}}})
    );
    // `_001` suffix with Follow-up # 0.
    let m = json(&ds, "00000003/00000003_001/metadata.json");
    assert_eq!((m["follow_up"].clone(), m["split"].clone()), (json!(0), json!("train")));
    assert_eq!(json(&ds, "00013118/00013118_008/metadata.json")["split"], "test");
    // In no list, not in the CSV: everything null but the documented defaults.
    assert_eq!(
        json(&ds, "00030805/00030805_001/labels.json"),
        json!({"finding_labels": null, "findings": null, "no_finding": null, "bboxes": []})
    );
    let m = json(&ds, "00030805/00030805_001/metadata.json");
    assert_eq!((m["split"].clone(), m["patient_id"].clone()), (json!(null), json!(null)));
    let csv = labels_csv(&ds);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "path,patient,study,split,finding_labels,findings,no_finding,bboxes");
    assert_eq!(
        lines[2],
        r#"00000001/00000001_001/00000001_001.png,00000001,00000001_001,train,Cardiomegaly|Emphysema,"[""Cardiomegaly"",""Emphysema""]",false,[]"#
    );
    assert_eq!(lines[6], "00030805/00030805_001/00030805_001.png,00030805,00030805_001,,,,,[]");
    let dj = json(&ds, "dataset.json");
    assert_eq!(
        dj["source_archives"],
        json!([
            "BBox_List_2017.csv",
            "Data_Entry_2017_v2020.csv",
            "images_001.tar.gz",
            "images_002.tar.gz",
            "images_012.tar.gz",
            "test_list.txt",
            "train_val_list.txt"
        ])
    );
    assert_eq!(dj["counts"], json!({"patients": 4, "studies": 6, "files": 6}));
    assert!(ds.warnings.is_empty(), "{:?}", ds.warnings);
}

/// Only the 2017 original: `Patient Gender`, `058Y` ages, the impossible 414 kept as given.
#[test]
fn chestxray14_with_2017_csv_only() {
    let ds = pool(false).organize_with("chestxray14").unwrap();
    let m = json(&ds, "00000001/00000001_001/metadata.json");
    assert_eq!(m["patient_age"], 58);
    assert_eq!(m["patient_sex"], "M");
    assert_eq!(m["pixel_spacing_x"], 0.143);
    assert_eq!(m["label_file"], "Data_Entry_2017.csv");
    assert_eq!(json(&ds, "00000001/00000001_000/metadata.json")["patient_age"], 414);
}

/// Kaggle mirror layout: `images_001/images/...` in one bundle, CSVs at its root.
#[test]
fn chestxray14_kaggle_mirror() {
    let mut p = MemPool::new();
    let b = "nih-chest-xrays.zip";
    p.touch(b, "images_001/images/00000001_000.png")
        .touch(b, "images_002/images/00013118_008.png")
        .add(b, "Data_Entry_2017.csv", V2017)
        .add(b, "BBox_List_2017.csv", BBOX)
        .add(b, "test_list.txt", "00013118_008.png\n");
    let ds = p.organize_with("chestxray14").unwrap();
    assert_eq!(ds.files.len(), 2);
    let m = json(&ds, "00013118/00013118_008/metadata.json");
    assert_eq!((m["split"].clone(), m["source_tarball"].clone()), (json!("test"), json!(b)));
    assert_eq!(json(&ds, "00013118/00013118_008/labels.json")["bboxes"].as_array().unwrap().len(), 2);
}
