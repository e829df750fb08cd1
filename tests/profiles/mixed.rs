//! One folder of everything: every dataset is recognized, and no profile claims another's files.

use crate::common::*;

#[test]
fn one_folder_of_everything() {
    let mut p = MemPool::new();
    p.touch("MURA-v1.1.zip", "MURA-v1.1/train/XR_WRIST/patient00001/study1_positive/image1.png")
        .touch("MURA-v1.1.zip", "MURA-v1.1/train/XR_WRIST/patient00001/study1_positive/._image1.png")
        .touch("images_001.tar.gz", "images/00000001_000.png")
        .add("Data_Entry_2017.csv", "Data_Entry_2017.csv", "Image Index,Finding Labels\n00000001_000.png,Hernia\n")
        .add("training.zip", "training/images/21_training.tif", tiff(5, 5, false, false, 1))
        .touch("training.zip", "training/mask/21_training_mask.gif")
        .add("train.zip.001", "train/10_left.jpeg", jpeg(4, 3, 1, false))
        .touch("sample.zip", "sample/10_left.jpeg")
        .add("ddsm", "cases/normals/normal_01/case0002/A-0002-1.ics", "filename A-0002-1\n")
        .touch("ddsm", "cases/normals/normal_01/case0002/A_0002_1.LEFT_CC.LJPEG")
        .add("All247images.zip", "All247images/JPCNN001.IMG", vec![0u8; 8])
        .add("misc.tar.gz", "misc/4.2.03.tiff", tiff(2, 2, false, false, 1))
        .touch("readme", "README.txt");
    let all = p.organize();
    let summary: Vec<(String, Vec<String>)> =
        all.iter().map(|d| (d.slug.clone(), d.files.iter().map(|f| f.rel_path.clone()).collect())).collect();
    let expect = [
        ("mura", vec!["patient00001/XR_WRIST_study1_positive/image1.png"]),
        ("chestxray14", vec!["00000001/00000001_000/00000001_000.png"]),
        ("drive", vec!["21/21_training/21_training.tif", "21/21_training/21_training_mask.gif"]),
        ("kaggle-dr", vec!["10/10_left/10_left.jpeg"]),
        ("ddsm", vec!["A_0002_1/case0002/A-0002-1.ics", "A_0002_1/case0002/A_0002_1.LEFT_CC.LJPEG"]),
        ("scr", vec!["JPCNN001/JPCNN001/JPCNN001.IMG"]),
        ("usc-sipi", vec!["misc/4.2.03/4.2.03.tiff"]),
    ];
    // Datasets come in profile order, which is the profiles' file-name order.
    let mut expect: Vec<(String, Vec<String>)> =
        expect.iter().map(|(s, v)| (s.to_string(), v.iter().map(|x| x.to_string()).collect())).collect();
    expect.sort();
    assert_eq!(summary, expect);
    let again = p.organize();
    for (a, b) in all.iter().zip(&again) {
        check_invariants(a, b);
    }
    // The 2017 CSV alone is used (no v2020 in the pool).
    let cx = all.iter().find(|d| d.slug == "chestxray14").unwrap();
    assert_eq!(json(cx, "00000001/00000001_000/metadata.json")["label_file"], "Data_Entry_2017.csv");
    assert_eq!(json(cx, "00000001/00000001_000/labels.json")["findings"], serde_json::json!(["Hernia"]));
}
