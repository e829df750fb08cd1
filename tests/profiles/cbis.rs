//! Golden test of `mounts/cbis-ddsm.toml`: NBIA tree + the four case CSVs, files renamed
//! `<Subject ID>__<Series Description>__<basename>`, ROI mask and crop in one series or two,
//! worst pathology, empty calc cells, quoted newlines in mass CSV paths, csv_role per file.

use crate::common::*;
use medfs::dicom::DicomInfo;
use serde_json::json;

const U: &str = "1.3.6.1.4.1.9590.100.1.2";

fn dcm(study: &str, series: &str) -> DicomInfo {
    DicomInfo {
        study_uid: Some(format!("{U}.{study}")),
        series_uid: Some(format!("{U}.{series}")),
        modality: Some("MG".into()),
        ..Default::default()
    }
}

const MASS_TRAIN: &str = "patient_id,breast_density,left or right breast,image view,abnormality id,abnormality type,mass shape,mass margins,assessment,pathology,subtlety,image file path,cropped image file path,ROI mask file path
P_00001,3,LEFT,CC,1,mass,IRREGULAR-ARCHITECTURAL_DISTORTION,SPICULATED,4,MALIGNANT,4,Mass-Training_P_00001_LEFT_CC/1.3.6.1.4.1.9590.100.1.2.1174994/1.3.6.1.4.1.9590.100.1.2.1124515/000000.dcm,\"Mass-Training_P_00001_LEFT_CC_1/1.3.6.1.4.1.9590.100.1.2.1218015/1.3.6.1.4.1.9590.100.1.2.1247061/000000.dcm
\",\"Mass-Training_P_00001_LEFT_CC_1/1.3.6.1.4.1.9590.100.1.2.1218015/1.3.6.1.4.1.9590.100.1.2.1247061/000001.dcm
\"
";
const CALC_TRAIN: &str = "patient_id,breast density,left or right breast,image view,abnormality id,abnormality type,calc type,calc distribution,assessment,pathology,subtlety,image file path,cropped image file path,ROI mask file path
P_00001,2,LEFT,CC,1,calcification,,CLUSTERED,3,BENIGN_WITHOUT_CALLBACK,2,Calc-Training_P_00001_LEFT_CC/1.3.6.1.4.1.9590.100.1.2.2211111/1.3.6.1.4.1.9590.100.1.2.2222222/000000.dcm,Calc-Training_P_00001_LEFT_CC_1/1.3.6.1.4.1.9590.100.1.2.2233333/1.3.6.1.4.1.9590.100.1.2.2244444/000000.dcm,Calc-Training_P_00001_LEFT_CC_1/1.3.6.1.4.1.9590.100.1.2.2233333/1.3.6.1.4.1.9590.100.1.2.2255555/000000.dcm
";
const CALC_TEST: &str = "patient_id,breast density,left or right breast,image view,abnormality id,abnormality type,calc type,calc distribution,assessment,pathology,subtlety,image file path,cropped image file path,ROI mask file path
P_00038,2,LEFT,CC,2,calcification,PLEOMORPHIC,,5,MALIGNANT,5,Calc-Test_P_00038_LEFT_CC/1.3.6.1.4.1.9590.100.1.2.3396009/1.3.6.1.4.1.9590.100.1.2.3363992/000000.dcm,Calc-Test_P_00038_LEFT_CC_2/1.3.6.1.4.1.9590.100.1.2.3391111/1.3.6.1.4.1.9590.100.1.2.3322222/000000.dcm,Calc-Test_P_00038_LEFT_CC_2/1.3.6.1.4.1.9590.100.1.2.3391111/1.3.6.1.4.1.9590.100.1.2.3333333/000000.dcm
P_00038,2,LEFT,CC,1,calcification,PUNCTATE-PLEOMORPHIC,CLUSTERED,4,BENIGN,3,Calc-Test_P_00038_LEFT_CC/1.3.6.1.4.1.9590.100.1.2.3396009/1.3.6.1.4.1.9590.100.1.2.3363992/000000.dcm,Calc-Test_P_00038_LEFT_CC_1/1.3.6.1.4.1.9590.100.1.2.3394942/1.3.6.1.4.1.9590.100.1.2.3318515/000001.dcm,Calc-Test_P_00038_LEFT_CC_1/1.3.6.1.4.1.9590.100.1.2.3394942/1.3.6.1.4.1.9590.100.1.2.3318515/000000.dcm
";

pub fn cbis_pool() -> MemPool {
    let mut p = MemPool::new();
    let m = "manifest-ZkhPvrLo5216730872708713142";
    let tree: [(&str, &str, &str, &str, &[&str]); 10] = [
        (
            "Mass-Training_P_00001_LEFT_CC",
            "07-20-2016-DDSM-74994",
            "1174994",
            "1.000000-full mammogram images-24515",
            &["1-1.dcm"],
        ),
        (
            "Mass-Training_P_00001_LEFT_CC_1",
            "07-21-2016-DDSM-NA-18015",
            "1218015",
            "1.000000-ROI mask images-47061",
            &["1-1.dcm", "1-2.dcm"],
        ),
        (
            "Calc-Training_P_00001_LEFT_CC",
            "09-06-2017-DDSM-NA-11111",
            "2211111",
            "1.000000-full mammogram images-22222",
            &["1-1.dcm"],
        ),
        (
            "Calc-Training_P_00001_LEFT_CC_1",
            "09-06-2017-DDSM-NA-33333",
            "2233333",
            "1.000000-cropped images-44444",
            &["1-1.dcm"],
        ),
        (
            "Calc-Training_P_00001_LEFT_CC_1",
            "09-06-2017-DDSM-NA-33333",
            "2233333",
            "1.000000-ROI mask images-55555",
            &["1-1.dcm"],
        ),
        (
            "Calc-Test_P_00038_LEFT_CC",
            "08-29-2017-DDSM-NA-96009",
            "3396009",
            "1.000000-full mammogram images-63992",
            &["1-1.dcm"],
        ),
        (
            "Calc-Test_P_00038_LEFT_CC_1",
            "08-29-2017-DDSM-NA-94942",
            "3394942",
            "1.000000-ROI mask images-18515",
            &["1-1.dcm", "1-2.dcm"],
        ),
        (
            "Calc-Test_P_00038_LEFT_CC_2",
            "08-29-2017-DDSM-NA-91111",
            "3391111",
            "1.000000-cropped images-22222",
            &["1-1.dcm"],
        ),
        (
            "Calc-Test_P_00038_LEFT_CC_2",
            "08-29-2017-DDSM-NA-91111",
            "3391111",
            "1.000000-ROI mask images-33333",
            &["1-1.dcm"],
        ),
        ("Calc-Test_P_00038_LEFT_CC_2", "08-29-2017-DDSM-NA-91111", "3391111", "NA-ROI mask images-33333", &[]),
    ];
    for (subject, study_dir, study_uid, series_dir, files) in tree {
        let se5 = &series_dir[series_dir.len() - 5..];
        let series_uid = format!("{}{se5}", &study_uid[..2]);
        for f in files {
            p.add_dicom(
                m,
                &format!("{m}/CBIS-DDSM/{subject}/{study_dir}/{series_dir}/{f}"),
                dcm(study_uid, &series_uid),
            );
        }
    }
    p.add(m, &format!("{m}/metadata.csv"), "Series UID,Collection\n");
    p.add("mass_case_description_train_set.csv", "mass_case_description_train_set.csv", MASS_TRAIN);
    p.add(
        "mass_case_description_test_set.csv",
        "mass_case_description_test_set.csv",
        MASS_TRAIN.lines().next().unwrap().to_string() + "\n",
    );
    p.add("calc_case_description_train_set.csv", "calc_case_description_train_set.csv", CALC_TRAIN);
    p.add("calc_case_description_test_set.csv", "calc_case_description_test_set.csv", CALC_TEST);
    p
}

#[test]
fn cbis_ddsm_tree_and_case_csvs() {
    let p = cbis_pool();
    let ds = p.organize_with("cbis-ddsm").expect("recognized");
    check_invariants(&ds, &p.organize_with("cbis-ddsm").unwrap());
    assert!(ds.warnings.is_empty(), "{:?}", ds.warnings);
    let t = tree(&ds);
    for f in [
        "P_00001/Mass-Training_P_00001_LEFT_CC/Mass-Training_P_00001_LEFT_CC__full_mammogram_images__1-1.dcm",
        "P_00001/Mass-Training_P_00001_LEFT_CC/Mass-Training_P_00001_LEFT_CC_1__ROI_mask_images__1-2.dcm",
        "P_00001/Calc-Training_P_00001_LEFT_CC/Calc-Training_P_00001_LEFT_CC_1__cropped_images__1-1.dcm",
        "P_00038/Calc-Test_P_00038_LEFT_CC/Calc-Test_P_00038_LEFT_CC_2__ROI_mask_images__1-1.dcm",
    ] {
        assert!(t.contains(&f.to_string()), "{f}: {t:#?}");
    }
    assert_eq!(json(&ds, "dataset.json")["counts"], json!({"patients": 2, "studies": 3, "files": 11}));
    assert_eq!(
        json(&ds, "P_00001/Mass-Training_P_00001_LEFT_CC/labels.json"),
        json!({"pathology": "MALIGNANT", "abnormalities": [{"abnormality_id": 1, "abnormality_type": "mass",
            "mass_shape": "IRREGULAR-ARCHITECTURAL_DISTORTION", "mass_margins": "SPICULATED", "calc_type": null, "calc_distribution": null,
            "assessment": 4, "pathology": "MALIGNANT", "subtlety": 4}]})
    );
    assert_eq!(
        json(&ds, "P_00001/Calc-Training_P_00001_LEFT_CC/labels.json"),
        json!({"pathology": "BENIGN_WITHOUT_CALLBACK", "abnormalities": [{"abnormality_id": 1, "abnormality_type": "calcification",
            "mass_shape": null, "mass_margins": null, "calc_type": null, "calc_distribution": "CLUSTERED",
            "assessment": 3, "pathology": "BENIGN_WITHOUT_CALLBACK", "subtlety": 2}]})
    );
    // Rows listed 2 then 1 in the CSV come out by abnormality id.
    let l = json(&ds, "P_00038/Calc-Test_P_00038_LEFT_CC/labels.json");
    assert_eq!(l["abnormalities"][0]["abnormality_id"], json!(1));
    assert_eq!(l["pathology"], json!("MALIGNANT"));
    assert_eq!(l["abnormalities"][1]["calc_distribution"], json!(null));
    assert_eq!(l["abnormalities"][1]["abnormality_id"], json!(2));
    let mut m = json(&ds, "P_00001/Mass-Training_P_00001_LEFT_CC/metadata.json");
    m.as_object_mut().unwrap().remove("source");
    assert_eq!(
        m,
        json!({"breast_density": 3, "laterality": "LEFT", "view": "CC", "abnormality_type": "mass",
            "subject_id": "Mass-Training_P_00001_LEFT_CC", "study_uid": format!("{U}.1174994"), "source_split": "Training", "split": "train",
            "series": [
              {"file": "Mass-Training_P_00001_LEFT_CC_1__ROI_mask_images__1-1.dcm", "series_uid": format!("{U}.1247061"), "series_description": "ROI mask images", "csv_role": "cropped"},
              {"file": "Mass-Training_P_00001_LEFT_CC_1__ROI_mask_images__1-2.dcm", "series_uid": format!("{U}.1247061"), "series_description": "ROI mask images", "csv_role": "roi"},
              {"file": "Mass-Training_P_00001_LEFT_CC__full_mammogram_images__1-1.dcm", "series_uid": format!("{U}.1124515"), "series_description": "full mammogram images", "csv_role": "image"}]})
    );
    // Crop and mask in one series, in the other order (CSV: cropped = 000001, ROI = 000000).
    let m = json(&ds, "P_00038/Calc-Test_P_00038_LEFT_CC/metadata.json");
    let roles: Vec<(String, String)> = m["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["file"].as_str().unwrap().to_string(), s["csv_role"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(
        roles,
        [
            ("Calc-Test_P_00038_LEFT_CC_1__ROI_mask_images__1-1.dcm".to_string(), "roi".to_string()),
            ("Calc-Test_P_00038_LEFT_CC_1__ROI_mask_images__1-2.dcm".into(), "cropped".into()),
            ("Calc-Test_P_00038_LEFT_CC_2__ROI_mask_images__1-1.dcm".into(), "roi".into()),
            ("Calc-Test_P_00038_LEFT_CC_2__cropped_images__1-1.dcm".into(), "cropped".into()),
            ("Calc-Test_P_00038_LEFT_CC__full_mammogram_images__1-1.dcm".into(), "image".into()),
        ]
    );
    assert_eq!(
        (m["split"].clone(), m["source_split"].clone(), m["breast_density"].clone()),
        (json!("test"), json!("Test"), json!(2))
    );
    assert!(p.organize_with("ddsm").is_none());
    assert!(p.organize_with("lidc-idri").is_none());
}
