//! Golden test of `mounts/i2cvb.toml`: `Patient <n>` folders, study from the T2W series'
//! StudyInstanceUID, paths kept below the patient folder, GT zones with and without `cap`.

use crate::common::*;
use medfs::dicom::DicomInfo;
use serde_json::json;

fn info(study: &str, series: &str, vendor: &str) -> DicomInfo {
    DicomInfo {
        study_uid: Some(study.into()),
        series_uid: Some(series.into()),
        manufacturer: Some(vendor.into()),
        modality: Some("MR".into()),
        ..Default::default()
    }
}

#[test]
fn i2cvb_patients() {
    let mut p = MemPool::new();
    let z = "I2CVB.zip";
    // Siemens patient 383 with every modality, MRSI and a cap mask.
    for (m, n) in [("T2W", 3), ("DCE", 2), ("ADC", 2), ("DWI", 2)] {
        for k in 1..=n {
            p.add_dicom(
                z,
                &format!("I2CVB/Patient 383/{m}/IM{k:04}.dcm"),
                info("1.2.3.383", &format!("1.2.3.383.{m}"), "SIEMENS"),
            );
        }
    }
    for zone in ["prostate", "pz", "cg", "cap"] {
        p.add_dicom(
            z,
            &format!("I2CVB/Patient 383/GT/{zone}/IM0001.dcm"),
            info("1.2.3.383.gt", &format!("1.2.3.383.{zone}"), "SIEMENS"),
        );
    }
    p.touch(z, "I2CVB/Patient 383/MRSI/spectra.rda");
    p.add_dicom(z, "I2CVB/Patient 383/DCE_reg_bspline/IM0001.dcm", info("1.2.3.383", "1.2.3.383.reg", "SIEMENS"));
    // GE patient 33540: T2W and DWI, no cancer.
    for (m, n) in [("T2W", 2), ("DWI", 1)] {
        for k in 1..=n {
            p.add_dicom(
                z,
                &format!("I2CVB/Patient 33540/{m}/IM{k:04}.dcm"),
                info("1.2.3.33540", &format!("1.2.3.33540.{m}"), "GE MEDICAL SYSTEMS"),
            );
        }
    }
    for zone in ["prostate", "pz", "cg"] {
        p.add_dicom(
            z,
            &format!("I2CVB/Patient 33540/GT/{zone}/IM0001.dcm"),
            info("1.2.3.33540", &format!("1.2.3.33540.{zone}"), "GE MEDICAL SYSTEMS"),
        );
    }
    let ds = p.organize_with("i2cvb").expect("recognized");
    check_invariants(&ds, &p.organize_with("i2cvb").unwrap());
    assert!(ds.warnings.is_empty(), "{:?}", ds.warnings);
    assert_eq!(json(&ds, "dataset.json")["counts"], json!({"patients": 2, "studies": 2, "files": 21}));
    let t = tree(&ds);
    for f in [
        "383/1.2.3.383/T2W/IM0003.dcm",
        "383/1.2.3.383/GT/cap/IM0001.dcm",
        "383/1.2.3.383/MRSI/spectra.rda",
        "383/1.2.3.383/DCE_reg_bspline/IM0001.dcm",
        "33540/1.2.3.33540/GT/cg/IM0001.dcm",
    ] {
        assert!(t.contains(&f.to_string()), "{f}: {t:#?}");
    }
    assert_eq!(
        json(&ds, "383/1.2.3.383/labels.json"),
        json!({"ground_truth": {"prostate": "GT/prostate", "pz": "GT/pz", "cg": "GT/cg", "cap": "GT/cap"}, "has_cancer": true})
    );
    assert_eq!(
        json(&ds, "33540/1.2.3.33540/labels.json"),
        json!({"ground_truth": {"prostate": "GT/prostate", "pz": "GT/pz", "cg": "GT/cg", "cap": null}, "has_cancer": false})
    );
    let mut m = json(&ds, "33540/1.2.3.33540/metadata.json");
    m.as_object_mut().unwrap().remove("source");
    assert_eq!(
        m,
        json!({"vendor": "GE MEDICAL SYSTEMS", "field_strength": 1.5, "modalities": ["DWI", "T2W"], "split": null,
        "series": [
          {"folder": "DWI", "SeriesInstanceUID": "1.2.3.33540.DWI", "n": 1},
          {"folder": "GT/cg", "SeriesInstanceUID": "1.2.3.33540.cg", "n": 1},
          {"folder": "GT/prostate", "SeriesInstanceUID": "1.2.3.33540.prostate", "n": 1},
          {"folder": "GT/pz", "SeriesInstanceUID": "1.2.3.33540.pz", "n": 1},
          {"folder": "T2W", "SeriesInstanceUID": "1.2.3.33540.T2W", "n": 2}]})
    );
    let m = json(&ds, "383/1.2.3.383/metadata.json");
    assert_eq!(
        (m["vendor"].clone(), m["field_strength"].clone(), m["modalities"].clone()),
        (json!("SIEMENS"), json!(3.0), json!(["ADC", "DCE", "DWI", "MRSI", "T2W"]))
    );
    assert_eq!(m["series"].as_array().unwrap().len(), 8);
}

/// The layout the published pipelines read: masks under `GT_inv/<zone>`; labels.json names the
/// folder present. A patient without a T2W folder keeps its series, its study taken from the
/// first DICOM file in its folder.
#[test]
fn i2cvb_gt_inv_and_patient_without_t2w() {
    let mut p = MemPool::new();
    let z = "I2CVB.zip";
    for (m, n) in [("T2W", 2), ("ADC", 1)] {
        for k in 1..=n {
            p.add_dicom(z, &format!("I2CVB/Patient 384/{m}/IM{k:04}.dcm"), info("1.2.384", &format!("1.2.384.{m}"), "SIEMENS"));
        }
    }
    for zone in ["prostate", "pz", "cg", "cap"] {
        p.add_dicom(z, &format!("I2CVB/Patient 384/GT_inv/{zone}/IM0001.dcm"), info("1.2.384", &format!("1.2.384.{zone}"), "SIEMENS"));
    }
    // No T2W: DWI and DCE only, masks under GT_inv without cap.
    p.add_dicom(z, "I2CVB/Patient 70168/DWI/IM0001.dcm", info("1.2.70168", "1.2.70168.DWI", "GE MEDICAL SYSTEMS"));
    p.add_dicom(z, "I2CVB/Patient 70168/DCE/IM0001.dcm", info("1.2.70168", "1.2.70168.DCE", "GE MEDICAL SYSTEMS"));
    for zone in ["prostate", "pz", "cg"] {
        p.add_dicom(z, &format!("I2CVB/Patient 70168/GT_inv/{zone}/IM0001.dcm"), info("1.2.70168", &format!("1.2.70168.{zone}"), "GE MEDICAL SYSTEMS"));
    }
    let ds = p.organize_with("i2cvb").expect("recognized");
    check_invariants(&ds, &p.organize_with("i2cvb").unwrap());
    assert!(ds.warnings.is_empty(), "{:?}", ds.warnings);
    assert_eq!(json(&ds, "dataset.json")["counts"], json!({"patients": 2, "studies": 2, "files": 12}));
    assert_eq!(
        json(&ds, "384/1.2.384/labels.json"),
        json!({"ground_truth": {"prostate": "GT_inv/prostate", "pz": "GT_inv/pz", "cg": "GT_inv/cg", "cap": "GT_inv/cap"}, "has_cancer": true})
    );
    assert_eq!(
        json(&ds, "70168/1.2.70168/labels.json"),
        json!({"ground_truth": {"prostate": "GT_inv/prostate", "pz": "GT_inv/pz", "cg": "GT_inv/cg", "cap": null}, "has_cancer": false})
    );
    let t = tree(&ds);
    for f in ["70168/1.2.70168/DWI/IM0001.dcm", "70168/1.2.70168/DCE/IM0001.dcm", "70168/1.2.70168/GT_inv/pz/IM0001.dcm"] {
        assert!(t.contains(&f.to_string()), "{f}: {t:#?}");
    }
    assert_eq!(json(&ds, "70168/1.2.70168/metadata.json")["modalities"], json!(["DCE", "DWI"]));
}
