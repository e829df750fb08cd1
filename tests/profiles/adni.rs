//! Golden test of `mounts/adni.toml`: two collection parts (raw DICOM S-folders, processed NIfTI
//! I-folders), visits from the collection CSV joined on Image Data ID, ADNIMERGE DX at the visit
//! with sc→bl, the date fallback without the CSV.

use crate::common::*;
use serde_json::json;

const COLLECTION: &str =
    "Image Data ID,Subject,Group,Sex,Age,Visit,Modality,Description,Type,Acq Date,Format,Downloaded
I303066,002_S_0295,MCI,M,85,sc,MRI,MPRAGE,Original,5/10/2012,DCM,4/5/2021
I303070,002_S_0295,MCI,M,85,sc,MRI,MPRAGE Repeat,Original,5/10/2012,DCM,4/5/2021
I45108,002_S_0295,MCI,M,85,sc,MRI,MPR; GradWarp; B1 Correction; N3; Scaled,Processed,5/10/2012,NiFTI,4/5/2021
I400001,002_S_0295,MCI,M,86,m12,MRI,MPRAGE,Original,5/20/2013,DCM,4/5/2021
";
const MERGE: &str = "RID,COLPROT,ORIGPROT,PTID,SITE,VISCODE,EXAMDATE,DX_bl,AGE,PTGENDER,DX
295,ADNI1,ADNI1,002_S_0295,2,bl,2012-05-10,LMCI,85,Male,MCI
295,ADNI1,ADNI1,002_S_0295,2,m12,2013-05-20,LMCI,85,Male,Dementia
";

fn adni_pool(with_csv: bool) -> MemPool {
    adni_pool_with(with_csv, COLLECTION)
}

fn adni_pool_with(with_csv: bool, collection: &str) -> MemPool {
    let mut p = MemPool::new();
    let z0 = "ADNI1_Annual 2 Yr 3T.zip";
    let z1 = "ADNI1_Annual 2 Yr 3T1.zip";
    for k in 1..=3 {
        p.touch(z0, &format!("ADNI/002_S_0295/MPRAGE/2012-05-10_15_44_50.0/S150055/ADNI_002_S_0295_MR_MPRAGE_br_raw_20120511095524148_{k}_S150055_I303066.dcm"));
    }
    p.touch(z0, "ADNI/002_S_0295/MPRAGE_Repeat/2012-05-10_15_50_10.0/S150056/ADNI_002_S_0295_MR_MPRAGE_Repeat_br_raw_20120511095524999_1_S150056_I303070.dcm");
    p.touch(z1, "ADNI/002_S_0295/MPR__GradWarp__B1_Correction__N3__Scaled/2012-05-10_15_44_50.0/I45108/ADNI_002_S_0295_MR_MPR__GradWarp__B1_Correction__N3__Scaled_Br_20070319113623975_S150055_I45108.nii");
    p.touch(z1, "ADNI/002_S_0295/MPRAGE/2013-05-20_10_00_00.0/S200001/ADNI_002_S_0295_MR_MPRAGE_br_raw_20130521000000000_1_S200001_I400001.dcm");
    if with_csv {
        p.add("ADNI1_Annual_2_Yr_3T_11_20_2025.csv", "ADNI1_Annual_2_Yr_3T_11_20_2025.csv", collection.to_string());
        p.add("ADNIMERGE.csv", "ADNIMERGE.csv", MERGE);
    }
    p
}

#[test]
fn adni_parts_visits_and_adnimerge() {
    let p = adni_pool(true);
    let ds = p.organize_with("adni").expect("recognized");
    check_invariants(&ds, &p.organize_with("adni").unwrap());
    assert!(ds.warnings.is_empty(), "{:?}", ds.warnings);
    let t = tree(&ds);
    for f in [
        "002_S_0295/sc/MPRAGE/I303066/ADNI_002_S_0295_MR_MPRAGE_br_raw_20120511095524148_2_S150055_I303066.dcm",
        "002_S_0295/sc/MPRAGE_Repeat/I303070/ADNI_002_S_0295_MR_MPRAGE_Repeat_br_raw_20120511095524999_1_S150056_I303070.dcm",
        "002_S_0295/sc/MPR__GradWarp__B1_Correction__N3__Scaled/I45108/ADNI_002_S_0295_MR_MPR__GradWarp__B1_Correction__N3__Scaled_Br_20070319113623975_S150055_I45108.nii",
        "002_S_0295/m12/MPRAGE/I400001/ADNI_002_S_0295_MR_MPRAGE_br_raw_20130521000000000_1_S200001_I400001.dcm",
    ] {
        assert!(t.contains(&f.to_string()), "{f}: {t:#?}");
    }
    assert_eq!(json(&ds, "dataset.json")["counts"], json!({"patients": 1, "studies": 2, "files": 6}));
    // labels.csv: one row per image (its I-folder), not per DICOM slice.
    let rows: Vec<String> = labels_csv(&ds).lines().skip(1).map(|l| l.split(',').next().unwrap().to_string()).collect();
    assert_eq!(
        rows,
        [
            "002_S_0295/m12/MPRAGE/I400001",
            "002_S_0295/sc/MPRAGE/I303066",
            "002_S_0295/sc/MPRAGE_Repeat/I303070",
            "002_S_0295/sc/MPR__GradWarp__B1_Correction__N3__Scaled/I45108"
        ]
    );
    assert_eq!(json(&ds, "002_S_0295/sc/labels.json"), json!({"group": "MCI", "dx": "MCI", "dx_bl": "LMCI"}));
    assert_eq!(json(&ds, "002_S_0295/m12/labels.json"), json!({"group": "MCI", "dx": "Dementia", "dx_bl": "LMCI"}));
    let mut m = json(&ds, "002_S_0295/sc/metadata.json");
    m.as_object_mut().unwrap().remove("source");
    assert_eq!(
        m,
        json!({"PTID": "002_S_0295", "RID": 295, "visit": "sc", "acq_date": "2012-05-10", "sex": "M", "age": 85,
        "collection_csv": "ADNI1_Annual_2_Yr_3T_11_20_2025.csv", "split": null,
        "images": [
          {"image_id": "I303066", "series_id": "S150055", "description": "MPRAGE", "type": "Original", "format": "DCM", "acq_datetime_folder": "2012-05-10_15_44_50.0", "modality": "MRI"},
          {"image_id": "I303070", "series_id": "S150056", "description": "MPRAGE Repeat", "type": "Original", "format": "DCM", "acq_datetime_folder": "2012-05-10_15_50_10.0", "modality": "MRI"},
          {"image_id": "I45108", "series_id": "S150055", "description": "MPR; GradWarp; B1 Correction; N3; Scaled", "type": "Processed", "format": "NiFTI", "acq_datetime_folder": "2012-05-10_15_44_50.0", "modality": "MRI"}]})
    );
}

#[test]
fn adni_without_collection_csv_uses_dates() {
    let p = adni_pool(false);
    let ds = p.organize_with("adni").expect("recognized");
    check_invariants(&ds, &p.organize_with("adni").unwrap());
    let t = tree(&ds);
    assert!(
        t.contains(&"002_S_0295/2012-05-10/MPRAGE/I303066/labels.json".to_string())
            || t.iter().any(|x| x.starts_with("002_S_0295/2012-05-10/MPRAGE/I303066/")),
        "{t:#?}"
    );
    assert!(t.iter().any(|x| x.starts_with("002_S_0295/2013-05-20/")));
    assert_eq!(json(&ds, "002_S_0295/2012-05-10/labels.json"), json!({"group": null, "dx": null, "dx_bl": null}));
    let m = json(&ds, "002_S_0295/2012-05-10/metadata.json");
    assert_eq!(
        (m["visit"].clone(), m["RID"].clone(), m["collection_csv"].clone()),
        (json!(null), json!(295), json!(null))
    );
    assert_eq!(m["images"][0]["description"], json!("MPRAGE"));
}

/// Older IDA exports write the visit as a number (`1` screening, `4` month 12): the same studies,
/// named by the code, and the same ADNIMERGE rows (`1` -> `sc` -> `bl`).
#[test]
fn adni_numeric_visits_of_older_exports() {
    let numeric = COLLECTION.replace(",sc,", ",1,").replace(",m12,", ",4,");
    assert_ne!(numeric, COLLECTION);
    let p = adni_pool_with(true, &numeric);
    let ds = p.organize_with("adni").expect("recognized");
    check_invariants(&ds, &p.organize_with("adni").unwrap());
    let codes = adni_pool(true).organize_with("adni").unwrap();
    assert_eq!(tree(&ds), tree(&codes));
    for study in ["002_S_0295/sc", "002_S_0295/m12"] {
        for f in ["labels.json", "metadata.json"] {
            assert_eq!(json(&ds, &format!("{study}/{f}")), json(&codes, &format!("{study}/{f}")), "{study}/{f}");
        }
    }
    assert_eq!(json(&ds, "002_S_0295/sc/labels.json"), json!({"group": "MCI", "dx": "MCI", "dx_bl": "LMCI"}));
    assert_eq!(json(&ds, "002_S_0295/m12/metadata.json")["visit"], json!("m12"));
}
