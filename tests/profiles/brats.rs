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
