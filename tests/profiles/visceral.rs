//! Golden test of `mounts/visceral.toml`: files assigned to volumes by name, masks by ascending
//! RadLex id (numerically), annotators, landmark/lesion files, short PatientIDs, two volumes of
//! one patient, geometry from the volume header.

use crate::common::*;
use serde_json::json;

#[test]
fn visceral_by_names() {
    let mut p = MemPool::new();
    let z = "Anatomy3-trainingset.zip";
    let pre = "Anatomy3-trainingset";
    p.add(
        z,
        &format!("{pre}/volumes/CTce_ThAb/10000100_1_CTce_ThAb.nii.gz"),
        nifti(&[30, 20, 10], &[0.8, 0.8, 1.5], 1, true),
    );
    for (r, a) in [("58", "1"), ("1247", "1"), ("170", "2"), ("480", "1")] {
        p.touch(z, &format!("{pre}/segmentations/CTce_ThAb/10000100_1_CTce_ThAb_{r}_{a}.nii.gz"));
    }
    p.touch(z, &format!("{pre}/segmentations/CTce_ThAb/10000100_1_CTce_ThAb_58_6.nii"));
    p.touch(z, &format!("{pre}/landmarks/10000100_1_CTce_ThAb_landmarks_1.fcsv"));
    p.touch(z, &format!("{pre}/landmarks/10000100_1_CTce_ThAb_lesions_2.fcsv"));
    p.add(z, &format!("{pre}/volumes/CT_wb/10000100_2_CT_wb.nii.gz"), nifti(&[30, 20, 40], &[1.0, 1.0, 1.0], 1, true));
    p.add(z, &format!("{pre}/volumes/MRT1_Ab/10001_2_MRT1_Ab.nii.gz"), nifti(&[30, 20, 10], &[1.2, 1.2, 3.0], 1, true));
    p.touch(z, &format!("{pre}/segmentations/MRT1_Ab/10001_2_MRT1_Ab_86_3.nii.gz"));
    p.touch(z, &format!("{pre}/README.txt"));
    let ds = p.organize_with("visceral").expect("recognized");
    check_invariants(&ds, &p.organize_with("visceral").unwrap());
    assert!(ds.warnings.is_empty(), "{:?}", ds.warnings);
    assert_eq!(json(&ds, "dataset.json")["counts"], json!({"patients": 2, "studies": 3, "files": 11}));
    assert_eq!(
        json(&ds, "10000100/10000100_1_CTce_ThAb/labels.json"),
        json!({"segmentations": [
            {"radlex_id": 58, "name": "liver", "annotator": 1, "file": "10000100_1_CTce_ThAb_58_1.nii.gz"},
            {"radlex_id": 58, "name": "liver", "annotator": 6, "file": "10000100_1_CTce_ThAb_58_6.nii"},
            {"radlex_id": 170, "name": "pancreas", "annotator": 2, "file": "10000100_1_CTce_ThAb_170_2.nii.gz"},
            {"radlex_id": 480, "name": "aorta", "annotator": 1, "file": "10000100_1_CTce_ThAb_480_1.nii.gz"},
            {"radlex_id": 1247, "name": "trachea", "annotator": 1, "file": "10000100_1_CTce_ThAb_1247_1.nii.gz"}],
            "landmark_files": ["10000100_1_CTce_ThAb_landmarks_1.fcsv"],
            "lesion_files": ["10000100_1_CTce_ThAb_lesions_2.fcsv"]})
    );
    assert_eq!(
        json(&ds, "10000100/10000100_2_CT_wb/labels.json"),
        json!({"segmentations": [], "landmark_files": [], "lesion_files": []})
    );
    let mut m = json(&ds, "10001/10001_2_MRT1_Ab/metadata.json");
    m.as_object_mut().unwrap().remove("source");
    assert_eq!(
        m,
        json!({"VolumeID": 2, "Modality": "MRT1", "Bodyregion": "Ab", "shape": [30, 20, 10], "voxel_size": [1.2, 1.2, 3.0], "split": "train"})
    );
}
