//! Golden test of `mounts/medpix.toml`: MedPix 2.0 (`images/MPX*_synpic*.png`, case id from the
//! name, `images_overview.csv` per image) and the MIT scrape (`Images/N.jpg` placed only with its
//! table row, case from the row).

use crate::common::*;
use serde_json::{Value, json};

#[test]
fn medpix_2_images_by_case_with_the_overview() {
    let mut p = MemPool::new();
    for (i, name) in ["MPX1009_synpic46283", "MPX1009_synpic46296", "MPX1024_synpic40274"].iter().enumerate() {
        p.add("MedPix-2.0.zip", &format!("MedPix-2-0/images/{name}.png"), png_bytes(i as u64));
    }
    p.add("MedPix-2.0.zip", "MedPix-2-0/Case_topic.json", b"[]".to_vec()).add(
        "MedPix-2.0.zip",
        "MedPix-2-0/images_overview.csv",
        b"Type,U_id,ID_Image,Img_Large,URL_Article_image\nTAC,MPX1009,MPX1009_synpic46283,https://x/1.png,https://medpix/a\nMRI,MPX1009,MPX1009_synpic46296,https://x/2.png,https://medpix/b\n".to_vec(),
    );
    let ds = p.organize_with("medpix").expect("recognized");
    check_invariants(&ds, &p.organize_with("medpix").unwrap());
    let files: Vec<&str> = ds.files.iter().map(|f| f.rel_path.as_str()).collect();
    assert_eq!(
        files,
        [
            "MPX1009/MPX1009/MPX1009_synpic46283.png",
            "MPX1009/MPX1009/MPX1009_synpic46296.png",
            "MPX1024/MPX1024/MPX1024_synpic40274.png"
        ]
    );
    assert_eq!(
        json(&ds, "MPX1009/MPX1009/labels.json"),
        json!({"images": [
            {"image": "MPX1009_synpic46283.png", "modality": "CT", "url": "https://medpix/a"},
            {"image": "MPX1009_synpic46296.png", "modality": "MR", "url": "https://medpix/b"}]})
    );
    // Not in the overview: nulls, never a guess.
    assert_eq!(json(&ds, "MPX1024/MPX1024/labels.json")["images"][0]["modality"], Value::Null);
    let m = json(&ds, "MPX1009/MPX1009/metadata.json");
    assert_eq!(
        (m["case"].clone(), m["form"].clone(), m["num_images"].clone()),
        (json!("MPX1009"), json!("medpix-2.0"), json!(2))
    );
}

fn png_bytes(seed: u64) -> Vec<u8> {
    medfs::fixtures::png(4, 4, 0, seed)
}

#[test]
fn mit_scrape_needs_its_table() {
    let mut p = MemPool::new();
    for n in [1, 2, 3] {
        p.add("medpix_mit.zip", &format!("Images/{n}.jpg"), jpeg(8, 8, n, false));
    }
    assert!(p.organize_with("medpix").is_none(), "Images/N.jpg alone is any folder of pictures");
    p.add(
        "medpix_mit.zip",
        "Dataset_MedPix_V1.csv",
        b"Image,U_id,Diagnosis\nImages/1.jpg,MPX7,Glioma\n2.0,MPX7,Glioma\n".to_vec(),
    );
    let ds = p.organize_with("medpix").expect("recognized with the table");
    check_invariants(&ds, &p.organize_with("medpix").unwrap());
    let files: Vec<&str> = ds.files.iter().map(|f| f.rel_path.as_str()).collect();
    assert_eq!(files, ["MPX7/MPX7/1.jpg", "MPX7/MPX7/2.jpg"]);
    assert_eq!(json(&ds, "MPX7/MPX7/labels.json"), json!({"diagnosis": "Glioma"}));
    assert_eq!(json(&ds, "MPX7/MPX7/metadata.json")["form"], "mit");
}
