//! Golden test of `mounts/scr.toml` (scr.md): JSRT raw .IMG (reduced 256×256), the two clinical
//! TXT files (exact name case), SCR masks in organ folders with spaces, fold1/fold2.

use crate::common::*;
use serde_json::json;

const ORGANS: [&str; 5] = ["heart", "left clavicle", "left lung", "right clavicle", "right lung"];

fn pool() -> MemPool {
    let mut p = MemPool::new();
    let img = vec![0u8; 256 * 256 * 2];
    p.add("All247images.zip", "All247images/JPCLN001.IMG", img.clone())
        .add("All247images.zip", "All247images/JPCLN002.IMG", img.clone())
        .add("All247images.zip", "All247images/JPCNN001.IMG", img)
        .add(
            "CLNDAT_EN.txt",
            "CLNDAT_EN.txt",
            "JPCLN001.IMG\t5\t15\t53\tmale\t1634\t692\tmalignant\tl.upper lobe\tlung cancer\n\
JPCLN002.IMG\t2\t7.5\t?\tfemale \t 1000\t500\tbenign\tr.lower lobe\tgranuloma\n",
        )
        .add("CNNDAT_EN.TXT", "CNNDAT_EN.TXT", "JPCNN001.IMG\t46\tfemale\tnon-nodule\n");
    for (id, fold) in [("JPCLN001", "fold1"), ("JPCLN002", "fold2"), ("JPCNN001", "fold1")] {
        for o in ORGANS {
            p.add("scratch.zip", &format!("scratch/{fold}/masks/{o}/{id}.gif"), gif(128, 128, 1));
        }
    }
    p.touch("scratch.zip", "scratch/fold1/landmarks/JPCLN001.pfs");
    p
}

fn masks(id: &str) -> serde_json::Value {
    json!({"heart": format!("{id}_heart.gif"), "left clavicle": format!("{id}_left_clavicle.gif"),
           "left lung": format!("{id}_left_lung.gif"), "right clavicle": format!("{id}_right_clavicle.gif"),
           "right lung": format!("{id}_right_lung.gif")})
}

#[test]
fn scr_tree_and_sidecars() {
    let p = pool();
    let ds = p.organize_with("scr").expect("recognized");
    check_invariants(&ds, &p.organize_with("scr").unwrap());
    let t = tree(&ds);
    let study: Vec<&String> = t.iter().filter(|x| x.starts_with("JPCLN001/")).collect();
    assert_eq!(
        study,
        [
            "JPCLN001/JPCLN001/JPCLN001.IMG",
            "JPCLN001/JPCLN001/JPCLN001_heart.gif",
            "JPCLN001/JPCLN001/JPCLN001_left_clavicle.gif",
            "JPCLN001/JPCLN001/JPCLN001_left_lung.gif",
            "JPCLN001/JPCLN001/JPCLN001_right_clavicle.gif",
            "JPCLN001/JPCLN001/JPCLN001_right_lung.gif",
            "JPCLN001/JPCLN001/labels.json",
            "JPCLN001/JPCLN001/metadata.json",
            "JPCLN001/patient.json",
        ]
    );
    assert_eq!(t.len(), 3 * 9 + 2);
    assert_eq!(
        json(&ds, "JPCLN001/JPCLN001/labels.json"),
        json!({"nodule": true, "subtlety": 5, "size_mm": 15, "x": 1634, "y": 692, "malignancy": "malignant",
               "location": "l.upper lobe", "diagnosis": "lung cancer", "segmentation_masks": masks("JPCLN001")})
    );
    assert_eq!(json(&ds, "JPCLN002/JPCLN002/labels.json")["size_mm"], 7.5);
    assert_eq!(
        json(&ds, "JPCNN001/JPCNN001/labels.json"),
        json!({"nodule": false, "segmentation_masks": masks("JPCNN001")})
    );
    let mut m = json(&ds, "JPCLN001/JPCLN001/metadata.json");
    assert_eq!(
        m["source"]["JPCLN001_left_clavicle.gif"],
        json!({"archive": "scratch.zip", "path": "scratch/fold1/masks/left clavicle/JPCLN001.gif"})
    );
    m.as_object_mut().unwrap().remove("source");
    assert_eq!(
        m,
        json!({"age": 53, "sex": "male", "width": 256, "height": 256, "bits_stored": 12, "dtype": ">u2",
               "pixel_spacing_mm": 0.175, "scr_fold": "fold1", "split": null})
    );
    let m = json(&ds, "JPCLN002/JPCLN002/metadata.json");
    assert_eq!(
        (m["age"].clone(), m["sex"].clone(), m["scr_fold"].clone()),
        (json!(null), json!("female"), json!("fold2"))
    );
    let m = json(&ds, "JPCNN001/JPCNN001/metadata.json");
    assert_eq!((m["age"].clone(), m["sex"].clone()), (json!(46), json!("female")));
    let csv = labels_csv(&ds);
    assert_eq!(
        csv.lines().next().unwrap(),
        "path,patient,study,split,nodule,subtlety,size_mm,x,y,malignancy,location,diagnosis,segmentation_masks"
    );
    assert!(ds.warnings.is_empty(), "{:?}", ds.warnings);
}

/// Derived files (`derive = ["jsrt_png", "preview"]`): a 16-bit PNG beside each .IMG, with the
/// size of a stored-deflate PNG of 256 x 256 (33 head, 12 + 2 + 256 x 513 + 3 x 5 rows, 28 tail),
/// and a preview of the same side at 8 bits; listed in labels.csv and metadata.json.
#[test]
fn scr_derived_files() {
    let p = pool();
    let ds = p.organize_derived("scr").expect("recognized");
    let got: Vec<(&str, u64, &str)> = ds
        .derived
        .iter()
        .map(|d| (d.rel_path.as_str(), d.size, medfs::derive::by_id(d.spec.kind).unwrap().name()))
        .collect();
    let png = 33 + 12 + 2 + 256 * 513 + 3 * 5 + 28;
    let preview = 33 + 12 + 2 + 256 * 257 + 2 * 5 + 28;
    assert_eq!(
        got,
        [
            ("JPCLN001/JPCLN001/JPCLN001.png", png, "jsrt_png"),
            ("JPCLN001/JPCLN001/preview.png", preview, "preview"),
            ("JPCLN002/JPCLN002/JPCLN002.png", png, "jsrt_png"),
            ("JPCLN002/JPCLN002/preview.png", preview, "preview"),
            ("JPCNN001/JPCNN001/JPCNN001.png", png, "jsrt_png"),
            ("JPCNN001/JPCNN001/preview.png", preview, "preview"),
        ]
    );
    assert_eq!(ds.derived[0].spec.inputs, vec![p.id("All247images.zip", "All247images/JPCLN001.IMG")]);
    let csv =
        String::from_utf8(ds.generated.iter().find(|g| g.rel_path == "labels.csv").unwrap().bytes.clone()).unwrap();
    assert!(csv.lines().any(|l| l.starts_with("JPCLN001/JPCLN001/JPCLN001.png,JPCLN001,JPCLN001,")), "{csv}");
    let meta = json(&ds, "JPCLN001/JPCLN001/metadata.json");
    assert_eq!(
        meta["derived"],
        json!({"JPCLN001.png": {"kind": "jsrt_png", "from": ["JPCLN001.IMG"]},
                                       "preview.png": {"kind": "preview", "from": ["JPCLN001.IMG"]}})
    );
    // Without derived files, the golden tree above is unchanged.
    assert!(p.organize_with("scr").unwrap().derived.is_empty());
}
