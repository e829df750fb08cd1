//! Golden test of `mounts/i-elcap.toml`: DICOM slices under `W<4 digits>` case folders grouped by
//! study and series UID, a notes file beside the slices, a nodule table keyed by case.

use crate::common::*;
use medfs::dicom::DicomInfo;
use serde_json::json;

fn slice(case: usize, k: i64) -> DicomInfo {
    DicomInfo {
        patient_id: Some("anonymous".into()),
        study_uid: Some(format!("1.2.840.1.{case}")),
        series_uid: Some(format!("1.2.840.1.{case}.1")),
        modality: Some("CT".into()),
        study_date: Some("20031114".into()),
        slice_thickness: Some(1.25),
        instance_number: Some(k),
        ..Default::default()
    }
}

#[test]
fn cases_slices_notes_and_nodules() {
    let mut p = MemPool::new();
    for case in [1, 2] {
        for k in 1..=3 {
            p.add_dicom("ELCAP.zip", &format!("ELCAP/W{case:04}/1.2.840.1.{case}/{k:04}"), slice(case, k));
        }
    }
    p.add("ELCAP.zip", "ELCAP/W0001/1.2.840.1.1/nodules.txt", b"slice 2: 100,120".to_vec()).add(
        "ELCAP.zip",
        "ELCAP/ELCAP_nodule_list.csv",
        b"case,slice,x,y\nW0001,61,306,186\nW0001,70,210,200\n".to_vec(),
    );
    let ds = p.organize_with("i-elcap").expect("recognized");
    check_invariants(&ds, &p.organize_with("i-elcap").unwrap());
    let st = "W0001/1.2.840.1.1";
    assert_eq!(
        tree(&ds).into_iter().filter(|t| t.starts_with(st)).collect::<Vec<_>>(),
        [
            format!("{st}/1.2.840.1.1.1/0001"),
            format!("{st}/1.2.840.1.1.1/0002"),
            format!("{st}/1.2.840.1.1.1/0003"),
            format!("{st}/labels.json"),
            format!("{st}/metadata.json"),
            format!("{st}/notes/nodules.txt"),
        ]
    );
    assert_eq!(
        json(&ds, &format!("{st}/labels.json")),
        json!({"nodules": [{"slice": 61, "x": 306, "y": 186}, {"slice": 70, "x": 210, "y": 200}],
               "annotation_files": ["notes/nodules.txt"]})
    );
    assert_eq!(json(&ds, "W0002/1.2.840.1.2/labels.json"), json!({"nodules": [], "annotation_files": []}));
    let m = json(&ds, &format!("{st}/metadata.json"));
    assert_eq!(m["case"], "W0001");
    assert_eq!(m["num_slices"], 3);
    assert_eq!(m["slice_thickness"], 1.25);
    assert_eq!(m["series"], json!(["1.2.840.1.1.1"]));
}
