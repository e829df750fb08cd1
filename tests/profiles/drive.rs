//! Golden test of `mounts/drive.toml` (the drive profile's header): training.zip + test.zip, test manuals present
//! or withheld, DR-sign ids, sizes read from the (reduced) images.

use crate::common::*;
use medfs::organize::ContentSource;
use serde_json::json;

fn pool(withheld_test_manuals: bool, wrapper: Option<&str>) -> MemPool {
    let mut p = MemPool::new();
    let (tr, te, pre) = match wrapper {
        Some(w) => (w, w, "DRIVE/"),
        None => ("training.zip", "test.zip", ""),
    };
    for id in ["21", "25"] {
        p.add(tr, &format!("{pre}training/images/{id}_training.tif"), tiff(57, 58, false, false, 1))
            .add(tr, &format!("{pre}training/1st_manual/{id}_manual1.gif"), gif(57, 58, 1))
            .add(tr, &format!("{pre}training/mask/{id}_training_mask.gif"), gif(57, 58, 1));
    }
    for id in ["01", "03"] {
        p.add(te, &format!("{pre}test/images/{id}_test.tif"), tiff(57, 58, false, true, 2)).add(
            te,
            &format!("{pre}test/mask/{id}_test_mask.gif"),
            gif(57, 58, 1),
        );
        if !withheld_test_manuals {
            p.add(te, &format!("{pre}test/1st_manual/{id}_manual1.gif"), gif(57, 58, 1)).add(
                te,
                &format!("{pre}test/2nd_manual/{id}_manual2.gif"),
                gif(57, 58, 1),
            );
        }
    }
    p.touch(tr, &format!("{pre}training/"));
    p
}

#[test]
fn drive_tree_and_sidecars() {
    let p = pool(false, None);
    let ds = p.organize_with("drive").expect("recognized");
    check_invariants(&ds, &p.organize_with("drive").unwrap());
    assert_eq!(
        tree(&ds),
        [
            "01/01_test/01_manual1.gif",
            "01/01_test/01_manual2.gif",
            "01/01_test/01_test.tif",
            "01/01_test/01_test_mask.gif",
            "01/01_test/labels.json",
            "01/01_test/metadata.json",
            "01/patient.json",
            "03/03_test/03_manual1.gif",
            "03/03_test/03_manual2.gif",
            "03/03_test/03_test.tif",
            "03/03_test/03_test_mask.gif",
            "03/03_test/labels.json",
            "03/03_test/metadata.json",
            "03/patient.json",
            "21/21_training/21_manual1.gif",
            "21/21_training/21_training.tif",
            "21/21_training/21_training_mask.gif",
            "21/21_training/labels.json",
            "21/21_training/metadata.json",
            "21/patient.json",
            "25/25_training/25_manual1.gif",
            "25/25_training/25_training.tif",
            "25/25_training/25_training_mask.gif",
            "25/25_training/labels.json",
            "25/25_training/metadata.json",
            "25/patient.json",
            "dataset.json",
            "labels.csv",
        ]
    );
    assert_eq!(
        json(&ds, "21/21_training/labels.json"),
        json!({"vessel_manual1": "21_manual1.gif", "vessel_manual2": null, "fov_mask": "21_training_mask.gif", "dr_signs": false})
    );
    assert_eq!(
        json(&ds, "03/03_test/labels.json"),
        json!({"vessel_manual1": "03_manual1.gif", "vessel_manual2": "03_manual2.gif", "fov_mask": "03_test_mask.gif", "dr_signs": true})
    );
    assert_eq!(
        json(&ds, "21/21_training/metadata.json"),
        json!({"source_split": "training", "width": 57, "height": 58,
               "camera": "Canon CR5 non-mydriatic 3CCD", "fov_degrees": 45, "split": "train",
               "source": {
                 "21_manual1.gif": {"archive": "training.zip", "path": "training/1st_manual/21_manual1.gif"},
                 "21_training.tif": {"archive": "training.zip", "path": "training/images/21_training.tif"},
                 "21_training_mask.gif": {"archive": "training.zip", "path": "training/mask/21_training_mask.gif"}}})
    );
    let m = json(&ds, "01/01_test/metadata.json");
    assert_eq!(
        (m["split"].clone(), m["source_split"].clone(), m["width"].clone()),
        (json!("test"), json!("test"), json!(57))
    );
    let csv = labels_csv(&ds);
    // One row per fundus image; the manual segmentations and the FOV mask are columns of paths.
    assert_eq!(
        csv.lines().next().unwrap(),
        "path,patient,study,split,vessel_manual1,vessel_manual2,fov_mask,dr_signs,manual1,manual2,mask"
    );
    assert!(
        csv.contains(
            "\n25/25_training/25_training.tif,25,25_training,train,25_manual1.gif,,25_training_mask.gif,true,\
             25/25_training/25_manual1.gif,,25/25_training/25_training_mask.gif\n"
        ),
        "{csv}"
    );
    assert_eq!(csv.lines().count() - 1, ds.files.iter().filter(|f| f.rel_path.ends_with(".tif")).count(), "{csv}");
    assert!(ds.warnings.is_empty(), "{:?}", ds.warnings);
}

/// Withheld test manuals: not listed, and null in labels.json. Wrapped in DRIVE.zip/DRIVE/.
#[test]
fn drive_withheld_manuals_in_wrapper() {
    let p = pool(true, Some("DRIVE.zip"));
    let ds = p.organize_with("drive").unwrap();
    assert_eq!(ds.files.iter().filter(|f| f.rel_path.starts_with("01/")).count(), 2);
    assert_eq!(
        json(&ds, "01/01_test/labels.json"),
        json!({"vessel_manual1": null, "vessel_manual2": null, "fov_mask": "01_test_mask.gif", "dr_signs": false})
    );
    assert_eq!(json(&ds, "dataset.json")["source_archives"], json!(["DRIVE.zip"]));
}

/// DRIVE.zip holding training.zip and test.zip: each inner zip is an archive of the pool named
/// `DRIVE.zip/<inner>`, its members relative to it; the inner zips as members of the outer one
/// are no study files.
#[test]
fn drive_bundle_of_nested_zips() {
    let mut p = MemPool::new();
    let plain = pool(false, None);
    for f in &plain.files {
        let bytes = plain.read_all(f.id).unwrap();
        p.add(&format!("DRIVE.zip/{}", f.archive), &f.path, bytes);
    }
    p.touch("DRIVE.zip", "training.zip").touch("DRIVE.zip", "test.zip");
    let ds = p.organize_with("drive").unwrap();
    check_invariants(&ds, &p.organize_with("drive").unwrap());
    assert_eq!(tree(&ds), tree(&plain.organize_with("drive").unwrap()));
    assert_eq!(json(&ds, "dataset.json")["source_archives"], json!(["DRIVE.zip/test.zip", "DRIVE.zip/training.zip"]));
    assert_eq!(
        json(&ds, "03/03_test/metadata.json")["source"]["03_test.tif"],
        json!({"archive": "DRIVE.zip/test.zip", "path": "test/images/03_test.tif"})
    );
    assert_eq!(json(&ds, "25/25_training/labels.json")["dr_signs"], json!(true));
}
