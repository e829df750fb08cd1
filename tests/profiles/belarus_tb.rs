//! Golden test of `mounts/belarus-tb.toml`: the TB Portals X-ray form (`images/` DICOM joined to
//! `tbportals_metadata.csv` by image stem, two column spellings) and the ImageCLEF CT form (NIfTI
//! volumes in part zips, masks zip or `_mask` names, md_* metadata CSV).

use crate::common::*;
use medfs::dicom::DicomInfo;
use serde_json::{Value, json};

fn xray(pid: &str) -> DicomInfo {
    DicomInfo {
        patient_id: Some(pid.into()),
        study_uid: Some(format!("1.2.3.{}", pid.len())),
        modality: Some("CR".into()),
        rows: Some(2048),
        columns: Some(2000),
        patient_sex: Some("M".into()),
        ..Default::default()
    }
}

fn xray_pool(header: &str, rows: &[&str]) -> MemPool {
    let mut p = MemPool::new();
    for img in ["00001", "00002", "00003"] {
        p.add_dicom("TB_Portal_CXR.zip", &format!("TB_Portal/images/{img}.dcm"), xray(img));
    }
    // Not in the table: left to the generic DICOM tree, with a warning.
    p.add_dicom("TB_Portal_CXR.zip", "TB_Portal/images/99999.dcm", xray("x"));
    let mut csv = format!("{header}\n");
    for r in rows {
        csv.push_str(r);
        csv.push('\n');
    }
    p.add("TB_Portal_CXR.zip", "TB_Portal/tbportals_metadata.csv", csv.into_bytes());
    p
}

#[test]
fn xray_images_joined_to_the_portal_table() {
    for (header, rows) in [
        (
            "image_index,study_id,patient_id,tb_location,projection",
            [
                "00001.dcm,S10,P1,pulmonary,PA",
                "00002.dcm,S11,P1,pulmonary and extrapulmonary,Lateral",
                "00003,S20,P2,pulmonary,AP",
            ],
        ),
        (
            "Image Index,Study ID,Patient ID,TB Location,Projection",
            [
                "images/00001.dcm,S10,P1,pulmonary,PA",
                "00002,S11,P1,pulmonary and extrapulmonary,Lateral",
                "00003.dcm,S20,P2,pulmonary,AP",
            ],
        ),
    ] {
        let p = xray_pool(header, &rows);
        let ds = p.organize_with("belarus-tb").expect("recognized");
        check_invariants(&ds, &p.organize_with("belarus-tb").unwrap());
        let files: Vec<&str> = ds.files.iter().map(|f| f.rel_path.as_str()).collect();
        assert_eq!(files, ["P1/S10/00001.dcm", "P1/S11/00002.dcm", "P2/S20/00003.dcm"], "{header}");
        assert_eq!(
            json(&ds, "P1/S11/labels.json"),
            json!({"tb_location": "pulmonary and extrapulmonary", "projection": "Lateral"})
        );
        let m = json(&ds, "P2/S20/metadata.json");
        assert_eq!(m["form"], "x-ray");
        assert_eq!(m["modality"], "CR");
        assert_eq!((m["rows"].clone(), m["columns"].clone()), (json!(2048), json!(2000)));
        assert_eq!(m["images"], json!(["00003.dcm"]));
        assert!(m["image_index"].as_str().unwrap().contains("00003"));
        assert!(ds.warnings.iter().any(|w| w.contains("99999.dcm")), "{:?}", ds.warnings);
    }
}

#[test]
fn images_without_the_portal_table_are_not_this_dataset() {
    let mut p = MemPool::new();
    p.add_dicom("x.zip", "images/00001.dcm", xray("P"));
    assert!(p.organize_with("belarus-tb").is_none());
}

#[test]
fn imageclef_ct_volumes_masks_and_md_columns() {
    let vol = |seed| nifti(&[8, 8, 4], &[0.8, 0.8, 2.5], seed, true);
    let mut p = MemPool::new();
    p.add("TrainingSet_1_of_2.zip", "TRN_000.nii.gz", vol(1))
        .add("TrainingSet_2_of_2.zip", "TrainingSet_2/TRN_001.nii.gz", vol(2))
        .add("TrainingSet_Masks.zip", "TRN_000.nii.gz", vol(3))
        .add("extra.zip", "masks/TRN_001_mask.nii.gz", vol(4))
        .add("TestSet.zip", "TST_005.nii.gz", vol(5))
        .add(
            "TrainingSet_metaData.csv",
            "TrainingSet_metaData.csv",
            b"Filename,md_Disability,md_Relapse,md_SymptomsOfTB,md_Comorbidity,md_Bacillary,md_DrugResistance,md_HigherEducation,md_ExPrisoner,md_Alcoholic,md_Smoking,md_Severity\nTRN_000.nii.gz,0,1,1,0,1,0,0,0,1,1,HIGH\nTRN_001.nii.gz,1,0,0,0,0,1,1,0,0,0,LOW\n".to_vec(),
        );
    let ds = p.organize_with("belarus-tb").expect("recognized");
    check_invariants(&ds, &p.organize_with("belarus-tb").unwrap());
    let files: Vec<&str> = ds.files.iter().map(|f| f.rel_path.as_str()).collect();
    assert_eq!(
        files,
        [
            "TRN_000/TRN_000/TRN_000.nii.gz",
            "TRN_000/TRN_000/mask/TRN_000.nii.gz",
            "TRN_001/TRN_001/TRN_001.nii.gz",
            "TRN_001/TRN_001/mask/TRN_001_mask.nii.gz",
            "TST_005/TST_005/TST_005.nii.gz",
        ]
    );
    assert_eq!(
        json(&ds, "TRN_000/TRN_000/labels.json"),
        json!({"mask": "mask/TRN_000.nii.gz", "severity": "HIGH", "md_Disability": "0", "md_Relapse": "1",
               "md_SymptomsOfTB": "1", "md_Comorbidity": "0", "md_Bacillary": "1", "md_DrugResistance": "0",
               "md_HigherEducation": "0", "md_ExPrisoner": "0", "md_Alcoholic": "1", "md_Smoking": "1"})
    );
    let test = json(&ds, "TST_005/TST_005/labels.json");
    assert_eq!(test["mask"], Value::Null);
    assert_eq!(test["severity"], Value::Null);
    let m = json(&ds, "TRN_001/TRN_001/metadata.json");
    assert_eq!(m["form"], "ct");
    assert_eq!(m["shape"], json!([8, 8, 4]));
    assert_eq!(m["voxel_size"], json!([0.8, 0.8, 2.5]));
    assert_eq!(m["volume"], "TRN_001.nii.gz");
    assert_eq!(
        m["source"]["mask/TRN_001_mask.nii.gz"],
        json!({"archive": "extra.zip", "path": "masks/TRN_001_mask.nii.gz"})
    );
}
