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

/// The classic NBIA layout (study and series folders named by UID, `00000N.dcm`, as in the case
/// CSVs' paths): the series description from NBIA's metadata.csv, or from the DICOM header
/// without it; the same study, names and CSV roles.
fn classic_pool(with_metadata_csv: bool) -> MemPool {
    let mut p = MemPool::new();
    let root = "CBIS-DDSM";
    // (subject, study uid, series uid, description, files)
    let series: [(&str, &str, &str, &str, &[&str]); 5] = [
        ("Mass-Training_P_00001_LEFT_CC", "1174994", "1124515", "full mammogram images", &["000000.dcm"]),
        ("Mass-Training_P_00001_LEFT_CC_1", "1218015", "1247061", "ROI mask images", &["000000.dcm", "000001.dcm"]),
        ("Calc-Training_P_00001_LEFT_CC", "2211111", "2222222", "full mammogram images", &["000000.dcm"]),
        ("Calc-Training_P_00001_LEFT_CC_1", "2233333", "2244444", "cropped images", &["000000.dcm"]),
        ("Calc-Training_P_00001_LEFT_CC_1", "2233333", "2255555", "ROI mask images", &["000000.dcm"]),
    ];
    let mut csv = String::from(
        "Series UID,Collection,3rd Party Analysis,Data Description URI,Subject ID,Study UID,Study Description,Study Date,\
         Series Description,Manufacturer,Modality,SOP Class Name,SOP Class UID,Number of Images,File Size,File Location,\
         Download Timestamp\n",
    );
    for (subject, study, se, desc, files) in series {
        let mut info = dcm(study, se);
        if !with_metadata_csv {
            info.series_description = Some(desc.into());
        }
        for f in files {
            p.add_dicom("cbis", &format!("{root}/{subject}/{U}.{study}/{U}.{se}/{f}"), info.clone());
        }
        csv.push_str(&format!(
            "{U}.{se},CBIS-DDSM,NO,,{subject},{U}.{study},DDSM,,{desc},,MG,Secondary Capture Image Storage,\
             1.2.840.10008.5.1.4.1.1.7,{},1 MB,./CBIS-DDSM/{subject}/{U}.{study}/{U}.{se},\n",
            files.len()
        ));
    }
    if with_metadata_csv {
        p.add("cbis", "metadata.csv", csv);
    }
    p.add("mass_case_description_train_set.csv", "mass_case_description_train_set.csv", MASS_TRAIN);
    p.add("calc_case_description_train_set.csv", "calc_case_description_train_set.csv", CALC_TRAIN);
    p
}

#[test]
fn cbis_ddsm_classic_uid_folders_with_and_without_metadata_csv() {
    for with_csv in [true, false] {
        let p = classic_pool(with_csv);
        let ds = p.organize_with("cbis-ddsm").expect("recognized");
        check_invariants(&ds, &p.organize_with("cbis-ddsm").unwrap());
        assert!(ds.warnings.is_empty(), "{with_csv}: {:?}", ds.warnings);
        let t = tree(&ds);
        for f in [
            "P_00001/Mass-Training_P_00001_LEFT_CC/Mass-Training_P_00001_LEFT_CC__full_mammogram_images__000000.dcm",
            "P_00001/Mass-Training_P_00001_LEFT_CC/Mass-Training_P_00001_LEFT_CC_1__ROI_mask_images__000001.dcm",
            "P_00001/Calc-Training_P_00001_LEFT_CC/Calc-Training_P_00001_LEFT_CC_1__cropped_images__000000.dcm",
        ] {
            assert!(t.contains(&f.to_string()), "{with_csv}: {f}: {t:#?}");
        }
        assert_eq!(json(&ds, "dataset.json")["counts"], json!({"patients": 1, "studies": 2, "files": 6}), "{with_csv}");
        let m = json(&ds, "P_00001/Mass-Training_P_00001_LEFT_CC/metadata.json");
        let series: Vec<(String, String, String)> = m["series"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["file"].as_str().unwrap().into(),
                    s["series_description"].as_str().unwrap().into(),
                    s["csv_role"].as_str().unwrap().into(),
                )
            })
            .collect();
        assert_eq!(
            series,
            [
                ("Mass-Training_P_00001_LEFT_CC_1__ROI_mask_images__000000.dcm".into(), "ROI mask images".into(), "cropped".into()),
                ("Mass-Training_P_00001_LEFT_CC_1__ROI_mask_images__000001.dcm".into(), "ROI mask images".into(), "roi".into()),
                (
                    "Mass-Training_P_00001_LEFT_CC__full_mammogram_images__000000.dcm".to_string(),
                    "full mammogram images".to_string(),
                    "image".to_string()
                ),
            ],
            "{with_csv}"
        );
        assert_eq!(m["study_uid"], json!(format!("{U}.1174994")));
        assert_eq!(json(&ds, "P_00001/Mass-Training_P_00001_LEFT_CC/labels.json")["pathology"], "MALIGNANT");
    }
}
