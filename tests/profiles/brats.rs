//! Golden tests of `mounts/brats2020.toml`, `brats2021.toml`, `brats2023.toml`: official and
//! Kaggle layouts, survival/name-mapping CSVs (NA, ALIVE text, LGG without survival row),
//! validation cases without seg, 2021 tars with `./`, 2023 timepoints; shape and voxel size read
//! from the (gzipped) NIfTI headers.

use crate::common::*;
use serde_json::json;

const NAME_MAPPING: &str =
    "Grade,BraTS_2017_subject_ID,BraTS_2018_subject_ID,TCGA_TCIA_subject_ID,BraTS_2019_subject_ID,BraTS_2020_subject_ID
HGG,Brats17_CBICA_AAB_1,Brats18_CBICA_AAB_1,NA,BraTS19_CBICA_AAB_1,BraTS20_Training_001
HGG,Brats17_TCIA_167_1,Brats18_TCIA_167_1,TCGA-02-0003,BraTS19_TCIA_167_1,BraTS20_Training_002
LGG,Brats17_TCIA_101_1,Brats18_TCIA_101_1,TCGA-HT-7602,BraTS19_TCIA_101_1,BraTS20_Training_355
";
const SURVIVAL: &str = "Brats20ID,Age,Survival_days,Extent_of_Resection
BraTS20_Training_001,60.463,289,GTR
BraTS20_Training_002,52.263,ALIVE (361 days later),NA
";

fn brats2020(kaggle: bool) -> MemPool {
    let mut p = MemPool::new();
    let (tr, va, pre_t, pre_v, ext) = if kaggle {
        let z = "brats20-dataset-training-validation.zip";
        (
            z,
            z,
            "BraTS2020_TrainingData/MICCAI_BraTS2020_TrainingData/",
            "BraTS2020_ValidationData/MICCAI_BraTS2020_ValidationData/",
            "nii",
        )
    } else {
        (
            "MICCAI_BraTS2020_TrainingData.zip",
            "MICCAI_BraTS2020_ValidationData.zip",
            "MICCAI_BraTS2020_TrainingData/",
            "MICCAI_BraTS2020_ValidationData/",
            "nii.gz",
        )
    };
    let gz = !kaggle;
    for c in ["001", "002", "355"] {
        let case = format!("BraTS20_Training_{c}");
        for m in ["flair", "t1", "t1ce", "t2"] {
            p.add(tr, &format!("{pre_t}{case}/{case}_{m}.{ext}"), nifti(&[24, 20, 16], &[1.0, 1.0, 1.5], 1, gz));
        }
        let seg =
            if kaggle && c == "355" { "W39_1998.09.19_Segm.nii".to_string() } else { format!("{case}_seg.{ext}") };
        p.add(tr, &format!("{pre_t}{case}/{seg}"), nifti(&[24, 20, 16], &[1.0, 1.0, 1.5], 1, gz));
    }
    p.add(tr, &format!("{pre_t}name_mapping.csv"), NAME_MAPPING);
    p.add(tr, &format!("{pre_t}survival_info.csv"), SURVIVAL);
    let case = "BraTS20_Validation_001";
    for m in ["flair", "t1", "t1ce", "t2"] {
        p.add(va, &format!("{pre_v}{case}/{case}_{m}.{ext}"), nifti(&[24, 20, 16], &[1.0, 1.0, 1.5], 1, gz));
    }
    p.add(
        va,
        &format!("{pre_v}survival_evaluation.csv"),
        "BraTS20ID,Age,ResectionStatus\nBraTS20_Validation_001,68.2,GTR\n",
    );
    p
}

#[test]
fn brats2020_official() {
    let p = brats2020(false);
    let ds = p.organize_with("brats2020").expect("recognized");
    check_invariants(&ds, &p.organize_with("brats2020").unwrap());
    assert!(ds.warnings.is_empty(), "{:?}", ds.warnings);
    let t = tree(&ds);
    assert_eq!(t.len(), 3 * (5 + 3) + (4 + 3) + 2);
    assert!(t.contains(&"BraTS20_Training_001/BraTS20_Training_001/BraTS20_Training_001_t1ce.nii.gz".to_string()));
    assert!(t.contains(&"BraTS20_Validation_001/BraTS20_Validation_001/metadata.json".to_string()));
    assert_eq!(
        json(&ds, "BraTS20_Training_001/BraTS20_Training_001/labels.json"),
        json!({"segmentation": "BraTS20_Training_001_seg.nii.gz",
               "label_values": {"0": "background", "1": "NCR/NET", "2": "ED", "4": "ET"},
               "grade": "HGG", "age": 60.463, "survival_days": "289", "extent_of_resection": "GTR"})
    );
    assert_eq!(
        json(&ds, "BraTS20_Training_002/BraTS20_Training_002/labels.json"),
        json!({"segmentation": "BraTS20_Training_002_seg.nii.gz",
               "label_values": {"0": "background", "1": "NCR/NET", "2": "ED", "4": "ET"},
               "grade": "HGG", "age": 52.263, "survival_days": "ALIVE (361 days later)", "extent_of_resection": null})
    );
    // LGG: no survival row.
    let l = json(&ds, "BraTS20_Training_355/BraTS20_Training_355/labels.json");
    assert_eq!(
        (l["grade"].clone(), l["age"].clone(), l["survival_days"].clone()),
        (json!("LGG"), json!(null), json!(null))
    );
    assert_eq!(
        json(&ds, "BraTS20_Validation_001/BraTS20_Validation_001/labels.json"),
        json!({"segmentation": null,
               "label_values": {"0": "background", "1": "NCR/NET", "2": "ED", "4": "ET"},
               "grade": null, "age": null, "survival_days": null, "extent_of_resection": null})
    );
    let m = json(&ds, "BraTS20_Training_001/BraTS20_Training_001/metadata.json");
    assert_eq!(
        m["modalities"],
        json!({"flair": "BraTS20_Training_001_flair.nii.gz", "t1": "BraTS20_Training_001_t1.nii.gz",
        "t1ce": "BraTS20_Training_001_t1ce.nii.gz", "t2": "BraTS20_Training_001_t2.nii.gz"})
    );
    assert_eq!(m["shape"], json!([24, 20, 16]));
    assert_eq!(m["voxel_size"], json!([1.0, 1.0, 1.5]));
    assert_eq!(m["split"], json!("train"));
    assert_eq!(
        m["name_mapping"],
        json!({"BraTS_2017_subject_ID": "Brats17_CBICA_AAB_1", "BraTS_2018_subject_ID": "Brats18_CBICA_AAB_1",
        "TCGA_TCIA_subject_ID": null, "BraTS_2019_subject_ID": "BraTS19_CBICA_AAB_1"})
    );
    assert_eq!(
        m["source"]["BraTS20_Training_001_seg.nii.gz"],
        json!({"archive": "MICCAI_BraTS2020_TrainingData.zip", "path": "MICCAI_BraTS2020_TrainingData/BraTS20_Training_001/BraTS20_Training_001_seg.nii.gz"})
    );
    let v = json(&ds, "BraTS20_Validation_001/BraTS20_Validation_001/metadata.json");
    assert_eq!((v["split"].clone(), v["name_mapping"].clone()), (json!("valid"), json!(null)));
    assert_eq!(json(&ds, "dataset.json")["counts"], json!({"patients": 4, "studies": 4, "files": 19}));
}

#[test]
fn brats2020_kaggle_mirror() {
    let p = brats2020(true);
    let ds = p.organize_with("brats2020").expect("recognized");
    check_invariants(&ds, &p.organize_with("brats2020").unwrap());
    assert!(ds.warnings.is_empty(), "{:?}", ds.warnings);
    let t = tree(&ds);
    assert!(t.contains(&"BraTS20_Training_355/BraTS20_Training_355/W39_1998.09.19_Segm.nii".to_string()));
    assert_eq!(
        json(&ds, "BraTS20_Training_355/BraTS20_Training_355/labels.json")["segmentation"],
        json!("W39_1998.09.19_Segm.nii")
    );
    let m = json(&ds, "BraTS20_Training_001/BraTS20_Training_001/metadata.json");
    assert_eq!(m["shape"], json!([24, 20, 16]));
    assert_eq!(m["modalities"]["flair"], json!("BraTS20_Training_001_flair.nii"));
    assert_eq!(json(&ds, "BraTS20_Validation_001/BraTS20_Validation_001/metadata.json")["split"], json!("valid"));
    assert_eq!(json(&ds, "dataset.json")["counts"], json!({"patients": 4, "studies": 4, "files": 19}));
    // Not a BraTS 2021 or 2023 download.
    assert!(p.organize_with("brats2021").is_none());
    assert!(p.organize_with("brats2023").is_none());
}

#[test]
fn brats2021_tar_and_kaggle_tars() {
    let mut p = MemPool::new();
    let tar = "BraTS2021_Training_Data.tar";
    for (c, pre) in [("00000", "./"), ("00002", ""), ("01666", "")] {
        let case = format!("BraTS2021_{c}");
        for m in ["flair", "t1", "t1ce", "t2", "seg"] {
            p.add(tar, &format!("{pre}{case}/{case}_{m}.nii.gz"), nifti(&[24, 20, 16], &[1.0, 1.0, 1.0], 1, true));
        }
    }
    for c in ["00495", "00621"] {
        let case = format!("BraTS2021_{c}");
        for m in ["flair", "t1", "t1ce", "t2", "seg"] {
            p.add(
                &format!("{case}.tar"),
                &format!("{case}/{case}_{m}.nii.gz"),
                nifti(&[24, 20, 16], &[1.0, 1.0, 1.0], 1, true),
            );
        }
    }
    let va = "RSNA_ASNR_MICCAI_BraTS2021_ValidationData.zip";
    for m in ["flair", "t1", "t1ce", "t2"] {
        p.add(
            va,
            &format!("RSNA_ASNR_MICCAI_BraTS2021_ValidationData/BraTS2021_00001/BraTS2021_00001_{m}.nii.gz"),
            nifti(&[24, 20, 16], &[1.0, 1.0, 1.0], 1, true),
        );
    }
    let ds = p.organize_with("brats2021").expect("recognized");
    check_invariants(&ds, &p.organize_with("brats2021").unwrap());
    assert!(ds.warnings.is_empty(), "{:?}", ds.warnings);
    assert_eq!(json(&ds, "dataset.json")["counts"], json!({"patients": 6, "studies": 6, "files": 29}));
    assert_eq!(
        json(&ds, "BraTS2021_00000/BraTS2021_00000/labels.json"),
        json!({"segmentation": "BraTS2021_00000_seg.nii.gz", "label_values": {"0": "background", "1": "NCR", "2": "ED", "4": "ET"}})
    );
    let m = json(&ds, "BraTS2021_00495/BraTS2021_00495/metadata.json");
    assert_eq!(m["split"], json!("train"));
    assert_eq!(m["shape"], json!([24, 20, 16]));
    assert_eq!(m["voxel_size"], json!([1.0, 1.0, 1.0]));
    assert_eq!(m["modalities"]["t1ce"], json!("BraTS2021_00495_t1ce.nii.gz"));
    let v = json(&ds, "BraTS2021_00001/BraTS2021_00001/metadata.json");
    assert_eq!(v["split"], json!("valid"));
    assert_eq!(json(&ds, "BraTS2021_00001/BraTS2021_00001/labels.json")["segmentation"], json!(null));
    assert!(p.organize_with("brats2020").is_none());
}

#[test]
fn brats2023_timepoints() {
    let mut p = MemPool::new();
    let z = "ASNR-MICCAI-BraTS2023-GLI-Challenge-TrainingData.zip";
    for case in ["BraTS-GLI-00000-000", "BraTS-GLI-00009-000", "BraTS-GLI-00009-001"] {
        for m in ["t1c", "t1n", "t2f", "t2w", "seg"] {
            p.add(
                z,
                &format!("ASNR-MICCAI-BraTS2023-GLI-Challenge-TrainingData/{case}/{case}-{m}.nii.gz"),
                nifti(&[24, 20, 16], &[1.0, 1.0, 1.0], 1, true),
            );
        }
    }
    let v = "ASNR-MICCAI-BraTS2023-GLI-Challenge-ValidationData.zip";
    for m in ["t1c", "t1n", "t2f", "t2w"] {
        p.add(
            v,
            &format!(
                "ASNR-MICCAI-BraTS2023-GLI-Challenge-ValidationData/BraTS-GLI-00001-000/BraTS-GLI-00001-000-{m}.nii.gz"
            ),
            nifti(&[24, 20, 16], &[1.0, 1.0, 1.0], 1, true),
        );
    }
    let ds = p.organize_with("brats2023").expect("recognized");
    check_invariants(&ds, &p.organize_with("brats2023").unwrap());
    assert!(ds.warnings.is_empty(), "{:?}", ds.warnings);
    let t = tree(&ds);
    assert!(t.contains(&"BraTS-GLI-00009/BraTS-GLI-00009-000/BraTS-GLI-00009-000-seg.nii.gz".to_string()));
    assert!(t.contains(&"BraTS-GLI-00009/BraTS-GLI-00009-001/BraTS-GLI-00009-001-t2w.nii.gz".to_string()));
    assert_eq!(json(&ds, "dataset.json")["counts"], json!({"patients": 3, "studies": 4, "files": 19}));
    // labels.csv: one row per modality volume, the segmentation a column of its path.
    let csv = labels_csv(&ds);
    assert!(csv.lines().next().unwrap().ends_with(",seg"), "{csv}");
    assert_eq!(csv.lines().count() - 1, 16, "{csv}");
    let c = "BraTS-GLI-00009/BraTS-GLI-00009-001";
    let row = csv.lines().find(|l| l.starts_with(&format!("{c}/BraTS-GLI-00009-001-t2w.nii.gz,"))).expect("t2w row");
    assert!(row.ends_with(&format!(",{c}/BraTS-GLI-00009-001-seg.nii.gz")), "{row}");
    assert!(!csv.contains("-seg.nii.gz,BraTS"), "no seg row: {csv}");
    assert_eq!(
        json(&ds, "BraTS-GLI-00009/BraTS-GLI-00009-001/labels.json"),
        json!({"segmentation": "BraTS-GLI-00009-001-seg.nii.gz", "label_values": {"0": "background", "1": "NETC", "2": "SNFH", "3": "ET"}})
    );
    let m = json(&ds, "BraTS-GLI-00009/BraTS-GLI-00009-001/metadata.json");
    assert_eq!(
        m["modalities"],
        json!({"t1c": "BraTS-GLI-00009-001-t1c.nii.gz", "t1n": "BraTS-GLI-00009-001-t1n.nii.gz",
        "t2f": "BraTS-GLI-00009-001-t2f.nii.gz", "t2w": "BraTS-GLI-00009-001-t2w.nii.gz"})
    );
    assert_eq!(m["split"], json!("train"));
    let m = json(&ds, "BraTS-GLI-00001/BraTS-GLI-00001-000/metadata.json");
    assert_eq!(m["split"], json!("valid"));
    assert_eq!(json(&ds, "BraTS-GLI-00001/BraTS-GLI-00001-000/labels.json")["segmentation"], json!(null));
}

/// BraTS 2018 / 2019: `HGG/` and `LGG/` folders give the grade, `survival_data.csv` (each
/// year's own, both named alike) the age, survival and (2019) resection; validation cases sit
/// without a grade folder and without seg.
fn brats_legacy(year: &str) -> MemPool {
    let mut p = MemPool::new();
    let (yy, pre) = if year == "2018" { ("18", "Brats18") } else { ("19", "BraTS19") };
    let tr = format!("MICCAI_BraTS_{year}_Data_Training");
    let z = format!("{tr}.zip");
    for (grade, case) in [("HGG", format!("{pre}_2013_2_1")), ("HGG", format!("{pre}_CBICA_AAB_1")), ("LGG", format!("{pre}_TCIA10_103_1"))] {
        for m in ["flair", "t1", "t1ce", "t2", "seg"] {
            p.add(&z, &format!("{tr}/{grade}/{case}/{case}_{m}.nii.gz"), nifti(&[24, 20, 16], &[1.0, 1.0, 1.0], 1, true));
        }
    }
    let survival = if year == "2018" {
        format!("BraTS18ID,Age,Survival\n{pre}_2013_2_1,60.463,289\n{pre}_CBICA_AAB_1,52.263,ALIVE (361 days later)\n")
    } else {
        format!("BraTS19ID,Age,Survival,ResectionStatus\n{pre}_2013_2_1,60.463,289,GTR\n{pre}_CBICA_AAB_1,52.263,616,NA\n")
    };
    p.add(&z, &format!("{tr}/survival_data.csv"), survival);
    let va = format!("MICCAI_BraTS_{year}_Data_Validation");
    for m in ["flair", "t1", "t1ce", "t2"] {
        p.add(&format!("{va}.zip"), &format!("{va}/{pre}_CBICA_AAM_1/{pre}_CBICA_AAM_1_{m}.nii.gz"), nifti(&[24, 20, 16], &[1.0, 1.0, 1.0], 1, true));
    }
    let _ = yy;
    p
}

#[test]
fn brats2018_and_2019_grade_folders_and_survival() {
    for (year, slug, pre) in [("2018", "brats2018", "Brats18"), ("2019", "brats2019", "BraTS19")] {
        let p = brats_legacy(year);
        let ds = p.organize_with(slug).expect("recognized");
        check_invariants(&ds, &p.organize_with(slug).unwrap());
        assert!(ds.warnings.is_empty(), "{year}: {:?}", ds.warnings);
        assert_eq!(json(&ds, "dataset.json")["counts"], json!({"patients": 4, "studies": 4, "files": 19}), "{year}");
        let c = format!("{pre}_2013_2_1");
        let l = json(&ds, &format!("{c}/{c}/labels.json"));
        assert_eq!(
            l,
            json!({"segmentation": format!("{c}_seg.nii.gz"), "label_values": {"0": "background", "1": "NCR/NET", "2": "ED", "4": "ET"},
                "grade": "HGG", "age": 60.463, "survival_days": "289", "extent_of_resection": if year == "2019" { json!("GTR") } else { json!(null) }}),
            "{year}"
        );
        let c = format!("{pre}_CBICA_AAB_1");
        let l = json(&ds, &format!("{c}/{c}/labels.json"));
        assert_eq!(l["extent_of_resection"], json!(null), "{year}: NA is null");
        let c = format!("{pre}_TCIA10_103_1");
        let l = json(&ds, &format!("{c}/{c}/labels.json"));
        assert_eq!((l["grade"].clone(), l["age"].clone()), (json!("LGG"), json!(null)), "{year}: LGG without survival row");
        let c = format!("{pre}_CBICA_AAM_1");
        assert_eq!(json(&ds, &format!("{c}/{c}/metadata.json"))["split"], json!("valid"), "{year}");
        assert_eq!(json(&ds, &format!("{c}/{c}/labels.json"))["segmentation"], json!(null), "{year}");
        assert_eq!(json(&ds, &format!("{c}/{c}/labels.json"))["grade"], json!(null), "{year}");
        // Neither year claims the other's cases, nor do 2020's profiles.
        let other = if slug == "brats2018" { "brats2019" } else { "brats2018" };
        assert!(p.organize_with(other).is_none(), "{year}");
        assert!(p.organize_with("brats2020").is_none(), "{year}");
    }
    assert!(brats_legacy("2018").organize_with("brats2018").is_some());
    assert!(brats_legacy("2019").organize_with("brats2019").is_some());
}

/// 2023's other tasks (MEN, MET, PED, SSA) beside GLI, the task in metadata.json; 2024's cases
/// (same names) are BraTS 2024's, with its label values per task; an extracted 2024 folder too.
#[test]
fn brats2023_all_tasks_and_brats2024() {
    let mut p = MemPool::new();
    let vol = || nifti(&[24, 20, 16], &[1.0, 1.0, 1.0], 1, true);
    for task in ["GLI", "MEN", "MET", "PED", "SSA"] {
        let top = format!("ASNR-MICCAI-BraTS2023-{task}-Challenge-TrainingData");
        let case = format!("BraTS-{task}-00004-000");
        for m in ["t1c", "t1n", "t2f", "t2w", "seg"] {
            p.add(&format!("{top}.zip"), &format!("{top}/{case}/{case}-{m}.nii.gz"), vol());
        }
    }
    for (z, top, case) in [
        ("BraTS2024-BraTS-GLI-TrainingData.zip", "training_data1_v2", "BraTS-GLI-02073-100"),
        ("BraTS2024-PED-Challenge-TrainingData.zip", "BraTS2024-PED-Challenge-TrainingData", "BraTS-PED-00001-000"),
    ] {
        for m in ["t1c", "t1n", "t2f", "t2w", "seg"] {
            p.add(z, &format!("{top}/{case}/{case}-{m}.nii.gz"), vol());
        }
    }
    // Extracted: 2024 only in a folder name.
    for m in ["t1c", "t1n", "t2f", "t2w"] {
        let case = "BraTS-MET-00010-000";
        p.add("BraTS2024_MET", &format!("BraTS2024_MET/validation/{case}/{case}-{m}.nii.gz"), vol());
    }
    let ds = p.organize_with("brats2023").expect("2023 recognized");
    check_invariants(&ds, &p.organize_with("brats2023").unwrap());
    assert!(ds.warnings.is_empty(), "{:?}", ds.warnings);
    assert_eq!(json(&ds, "dataset.json")["counts"], json!({"patients": 5, "studies": 5, "files": 25}));
    for task in ["GLI", "MEN", "MET", "PED", "SSA"] {
        let m = json(&ds, &format!("BraTS-{task}-00004/BraTS-{task}-00004-000/metadata.json"));
        assert_eq!((m["task"].clone(), m["split"].clone()), (json!(task), json!("train")));
    }
    let ds = p.organize_with("brats2024").expect("2024 recognized");
    check_invariants(&ds, &p.organize_with("brats2024").unwrap());
    assert!(ds.warnings.is_empty(), "{:?}", ds.warnings);
    assert_eq!(json(&ds, "dataset.json")["counts"], json!({"patients": 3, "studies": 3, "files": 14}));
    assert_eq!(
        json(&ds, "BraTS-GLI-02073/BraTS-GLI-02073-100/labels.json"),
        json!({"segmentation": "BraTS-GLI-02073-100-seg.nii.gz", "label_values": {"0": "background", "1": "NETC", "2": "SNFH", "3": "ET", "4": "RC"}})
    );
    assert_eq!(
        json(&ds, "BraTS-PED-00001/BraTS-PED-00001-000/labels.json")["label_values"],
        json!({"0": "background", "1": "ET", "2": "NET", "3": "CC", "4": "ED"})
    );
    let m = json(&ds, "BraTS-MET-00010/BraTS-MET-00010-000/metadata.json");
    assert_eq!((m["task"].clone(), m["split"].clone()), (json!("MET"), json!("valid")));
    assert_eq!(
        json(&ds, "BraTS-MET-00010/BraTS-MET-00010-000/labels.json"),
        json!({"segmentation": null, "label_values": {"0": "background", "1": "NETC", "2": "SNFH", "3": "ET"}})
    );
}
