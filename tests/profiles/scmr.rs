//! Golden test of `mounts/scmr.toml`: cine CMR DICOM under an SCMR folder (or an archive named
//! like it), contours beside their series, pathology from a case table.

use crate::common::*;
use medfs::dicom::DicomInfo;
use serde_json::{Value, json};

fn frame(case: usize, series: usize, k: i64) -> DicomInfo {
    DicomInfo {
        patient_id: Some(format!("CAP-{case}")),
        study_uid: Some(format!("1.3.9.{case}")),
        series_uid: Some(format!("1.3.9.{case}.{series}")),
        modality: Some("MR".into()),
        manufacturer: Some("SIEMENS".into()),
        instance_number: Some(k),
        ..Default::default()
    }
}

#[test]
fn cases_contours_and_pathology() {
    let mut p = MemPool::new();
    for se in [1, 2] {
        for k in 1..=2 {
            p.add_dicom("download.zip", &format!("SCMR_Consensus/SCD0001/SA{se}/IM{k}.dcm"), frame(1, se, k));
        }
    }
    p.add("download.zip", "SCMR_Consensus/SCD0001/SA1/ED_contours.txt", b"12.5 30.25\n".to_vec()).add(
        "download.zip",
        "SCMR_Consensus/cases.csv",
        b"case,pathology\nSCD0001,MI\n".to_vec(),
    );
    // An archive named like the collection, cases at its top.
    p.add_dicom("SCMR.zip", "SCD0002/cine/IM1.dcm", frame(2, 1, 1));
    let ds = p.organize_with("scmr").expect("recognized");
    check_invariants(&ds, &p.organize_with("scmr").unwrap());
    let files: Vec<&str> = ds.files.iter().map(|f| f.rel_path.as_str()).collect();
    assert_eq!(
        files,
        [
            "SCD0001/1.3.9.1/1.3.9.1.1/IM1.dcm",
            "SCD0001/1.3.9.1/1.3.9.1.1/IM2.dcm",
            "SCD0001/1.3.9.1/1.3.9.1.2/IM1.dcm",
            "SCD0001/1.3.9.1/1.3.9.1.2/IM2.dcm",
            "SCD0001/1.3.9.1/contours/ED_contours.txt",
            "SCD0002/1.3.9.2/1.3.9.2.1/IM1.dcm",
        ]
    );
    assert_eq!(
        json(&ds, "SCD0001/1.3.9.1/labels.json"),
        json!({"pathology": "MI", "contour_files": ["contours/ED_contours.txt"]})
    );
    assert_eq!(json(&ds, "SCD0002/1.3.9.2/labels.json")["pathology"], Value::Null);
    let m = json(&ds, "SCD0001/1.3.9.1/metadata.json");
    assert_eq!(m["series"], json!(["1.3.9.1.1", "1.3.9.1.2"]));
    assert_eq!(m["num_images"], 4);
    assert_eq!(m["manufacturer"], "SIEMENS");
}

#[test]
fn dicom_elsewhere_is_not_scmr() {
    let mut p = MemPool::new();
    p.add_dicom("cardiac.zip", "study/SA1/IM1.dcm", frame(1, 1, 1));
    assert!(p.organize_with("scmr").is_none());
}
