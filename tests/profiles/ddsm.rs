//! Golden test of `mounts/ddsm.toml` (ddsm.md): the FTP mirror tree, the case0002 A/C collision,
//! overlays for masses and calcifications, a normal without overlays, and FTP strays.

use crate::common::*;
use serde_json::json;

const ICS_A1509: &str = "ics_version 1.0\nfilename A-1509-1\nDATE_OF_STUDY 2 7 1995\nPATIENT_AGE 42\nFILM \nFILM_TYPE REGULAR\nDENSITY 4\nDATE_DIGITIZED 7 22 1997\nDIGITIZER LUMISYS LASER\nSELECTED\n\
LEFT_CC LINES 4696 PIXELS_PER_LINE 3024 BITS_PER_PIXEL 12 RESOLUTION 50 NON_OVERLAY\n\
LEFT_MLO LINES 4688 PIXELS_PER_LINE 3048 BITS_PER_PIXEL 12 RESOLUTION 50 NON_OVERLAY\n\
RIGHT_CC LINES 4624 PIXELS_PER_LINE 3056 BITS_PER_PIXEL 12 RESOLUTION 50 OVERLAY\n\
RIGHT_MLO LINES 4664 PIXELS_PER_LINE 3120 BITS_PER_PIXEL 12 RESOLUTION 50 OVERLAY\n";

const OV_CC: &str = "TOTAL_ABNORMALITIES 2\nABNORMALITY 2\nLESION_TYPE CALCIFICATION TYPE PLEOMORPHIC DISTRIBUTION CLUSTERED\nASSESSMENT 4\nSUBTLETY 3\nPATHOLOGY MALIGNANT\nTOTAL_OUTLINES 1\nBOUNDARY\n10 20 1 1 2 #\n\
ABNORMALITY 1\nLESION_TYPE MASS SHAPE IRREGULAR MARGINS SPICULATED\nASSESSMENT 4\nSUBTLETY 2\nPATHOLOGY MALIGNANT\nTOTAL_OUTLINES 2\nBOUNDARY\n1410 2130 1 1 2 2 3 7 #\nCORE\n1400 2100 0 0 #\n";
const OV_MLO: &str = "TOTAL_ABNORMALITIES 1\nABNORMALITY 1\nLESION_TYPE MASS SHAPE IRREGULAR MARGINS SPICULATED\nASSESSMENT 4\nSUBTLETY 2\nPATHOLOGY MALIGNANT\nTOTAL_OUTLINES 1\nBOUNDARY\n1 2 3 #\n";

fn pool() -> MemPool {
    let mut p = MemPool::new();
    let a = "ddsm"; // a mirror folder: loose files relative to it
    let c = "cases/cancers/cancer_08/case1509";
    p.add(a, &format!("{c}/A-1509-1.ics"), ICS_A1509)
        .touch(a, &format!("{c}/A_1509_1.LEFT_CC.LJPEG"))
        .touch(a, &format!("{c}/A_1509_1.LEFT_MLO.LJPEG"))
        .touch(a, &format!("{c}/A_1509_1.RIGHT_CC.LJPEG"))
        .touch(a, &format!("{c}/A_1509_1.RIGHT_MLO.LJPEG"))
        .add(a, &format!("{c}/A_1509_1.RIGHT_MLO.OVERLAY"), OV_MLO)
        .add(a, &format!("{c}/A_1509_1.RIGHT_CC.OVERLAY"), OV_CC)
        .touch(a, &format!("{c}/TAPE_A_1509_1.COMB.16_PGM"))
        // strays
        .touch(a, &format!("{c}/A_1509_1.LEFT_CC.LJPEG.1"))
        .touch(a, &format!("{c}/A-1509-1.ics~"))
        .touch(a, &format!("{c}/A_1509_1.RIGHT_CC.OVERLAYu"))
        .touch(a, "cases/cancers/cancer_08/#mv.sh#")
        .touch(a, "cases/cancers/cancer_08/jpeg");
    for (cat, vol, letter) in [("normals", "normal_01", "A"), ("cancers", "cancer_01", "C")] {
        let c = format!("cases/{cat}/{vol}/case0002");
        p.add(a, &format!("{c}/{letter}-0002-1.ics"), format!("filename {letter}-0002-1\nPATIENT_AGE 60\n"));
        for v in ["LEFT_CC", "LEFT_MLO", "RIGHT_CC", "RIGHT_MLO"] {
            p.touch(a, &format!("{c}/{letter}_0002_1.{v}.LJPEG"));
        }
        p.touch(a, &format!("{c}/TAPE_{letter}_0002_1.COMB.16_PGM"));
    }
    p.add(a, "cases/cancers/cancer_01/case0002/C_0002_1.LEFT_MLO.OVERLAY", OV_MLO);
    p
}

#[test]
fn ddsm_tree_and_sidecars() {
    let p = pool();
    let ds = p.organize_with("ddsm").expect("recognized");
    check_invariants(&ds, &p.organize_with("ddsm").unwrap());
    assert_eq!(
        tree(&ds),
        [
            "A_0002_1/case0002/A-0002-1.ics",
            "A_0002_1/case0002/A_0002_1.LEFT_CC.LJPEG",
            "A_0002_1/case0002/A_0002_1.LEFT_MLO.LJPEG",
            "A_0002_1/case0002/A_0002_1.RIGHT_CC.LJPEG",
            "A_0002_1/case0002/A_0002_1.RIGHT_MLO.LJPEG",
            "A_0002_1/case0002/TAPE_A_0002_1.COMB.16_PGM",
            "A_0002_1/case0002/labels.json",
            "A_0002_1/case0002/metadata.json",
            "A_0002_1/patient.json",
            "A_1509_1/case1509/A-1509-1.ics",
            "A_1509_1/case1509/A_1509_1.LEFT_CC.LJPEG",
            "A_1509_1/case1509/A_1509_1.LEFT_MLO.LJPEG",
            "A_1509_1/case1509/A_1509_1.RIGHT_CC.LJPEG",
            "A_1509_1/case1509/A_1509_1.RIGHT_CC.OVERLAY",
            "A_1509_1/case1509/A_1509_1.RIGHT_MLO.LJPEG",
            "A_1509_1/case1509/A_1509_1.RIGHT_MLO.OVERLAY",
            "A_1509_1/case1509/TAPE_A_1509_1.COMB.16_PGM",
            "A_1509_1/case1509/labels.json",
            "A_1509_1/case1509/metadata.json",
            "A_1509_1/patient.json",
            "C_0002_1/case0002/C-0002-1.ics",
            "C_0002_1/case0002/C_0002_1.LEFT_CC.LJPEG",
            "C_0002_1/case0002/C_0002_1.LEFT_MLO.LJPEG",
            "C_0002_1/case0002/C_0002_1.LEFT_MLO.OVERLAY",
            "C_0002_1/case0002/C_0002_1.RIGHT_CC.LJPEG",
            "C_0002_1/case0002/C_0002_1.RIGHT_MLO.LJPEG",
            "C_0002_1/case0002/TAPE_C_0002_1.COMB.16_PGM",
            "C_0002_1/case0002/labels.json",
            "C_0002_1/case0002/metadata.json",
            "C_0002_1/patient.json",
            "dataset.json",
            "labels.csv",
        ]
    );
    let mass = json!({"view": "RIGHT_CC", "abnormality": 1,
        "lesion_types": [{"lesion_type": "MASS", "shape": "IRREGULAR", "margins": "SPICULATED"}],
        "assessment": 4, "subtlety": 2, "pathology": "MALIGNANT", "total_outlines": 2});
    let calc = json!({"view": "RIGHT_CC", "abnormality": 2,
        "lesion_types": [{"lesion_type": "CALCIFICATION", "type": "PLEOMORPHIC", "distribution": "CLUSTERED"}],
        "assessment": 4, "subtlety": 3, "pathology": "MALIGNANT", "total_outlines": 1});
    let mlo = json!({"view": "RIGHT_MLO", "abnormality": 1,
        "lesion_types": [{"lesion_type": "MASS", "shape": "IRREGULAR", "margins": "SPICULATED"}],
        "assessment": 4, "subtlety": 2, "pathology": "MALIGNANT", "total_outlines": 1});
    assert_eq!(
        json(&ds, "A_1509_1/case1509/labels.json"),
        json!({"case_type": "cancer", "abnormalities": [mass, calc, mlo]})
    );
    assert_eq!(json(&ds, "A_0002_1/case0002/labels.json"), json!({"case_type": "normal", "abnormalities": []}));
    assert_eq!(json(&ds, "C_0002_1/case0002/labels.json")["case_type"], "cancer");
    let m = json(&ds, "A_1509_1/case1509/metadata.json");
    let mut m2 = m.clone();
    m2.as_object_mut().unwrap().remove("source");
    assert_eq!(
        m2,
        json!({"ics_filename": "A-1509-1", "date_of_study": "2 7 1995", "patient_age": 42, "film_type": "REGULAR",
               "density": 4, "date_digitized": "7 22 1997", "digitizer": "LUMISYS LASER",
               "views": {
                 "LEFT_CC": {"lines": 4696, "pixels_per_line": 3024, "bits_per_pixel": 12, "resolution": 50, "overlay": false},
                 "LEFT_MLO": {"lines": 4688, "pixels_per_line": 3048, "bits_per_pixel": 12, "resolution": 50, "overlay": false},
                 "RIGHT_CC": {"lines": 4624, "pixels_per_line": 3056, "bits_per_pixel": 12, "resolution": 50, "overlay": true},
                 "RIGHT_MLO": {"lines": 4664, "pixels_per_line": 3120, "bits_per_pixel": 12, "resolution": 50, "overlay": true}},
               "category": "cancers", "volume": "cancer_08", "split": null})
    );
    assert_eq!(m["source"].as_object().unwrap().len(), 8);
    assert_eq!(
        m["source"]["A-1509-1.ics"],
        json!({"archive": "ddsm", "path": "cases/cancers/cancer_08/case1509/A-1509-1.ics"})
    );
    let csv = labels_csv(&ds);
    assert_eq!(csv.lines().next().unwrap(), "path,patient,study,split,case_type,abnormalities");
    assert!(csv.contains("\nA_0002_1/case0002/A-0002-1.ics,A_0002_1,case0002,,normal,[]\n"), "{csv}");
    assert!(ds.warnings.is_empty(), "{:?}", ds.warnings);
}

/// Derived files (`derive = ["ddsm_png", "ddsm_mask", "preview"]`): the placeholder LJPEGs are
/// not JPEG streams, or have no view line in their .ics, so they get no PNG (a warning each,
/// naming the file) and the studies no preview; each outlined abnormality gets a mask the size of its view in the .ics (3056 x 4624
/// for RIGHT_CC, 3120 x 4664 for RIGHT_MLO); an overlay whose .ics has no line for its view gets
/// none (a warning).
#[test]
fn ddsm_derived_files() {
    let p = pool();
    let ds = p.organize_derived("ddsm").expect("recognized");
    let size = |w: u64, h: u64| {
        let row = w + 1;
        let per = (256 * 1024 / row).min(h);
        let mut total = 33 + 28;
        let mut left = h;
        let mut first = true;
        while left > 0 {
            let d = per.min(left) * row;
            total += 12 + if first { 2 } else { 0 } + d + 5 * d.div_ceil(65_535);
            first = false;
            left -= per.min(left);
        }
        total
    };
    let got: Vec<(&str, u64)> = ds.derived.iter().map(|d| (d.rel_path.as_str(), d.size)).collect();
    assert_eq!(
        got,
        [
            ("A_1509_1/case1509/A_1509_1.RIGHT_CC.mask1.png", size(3056, 4624)),
            ("A_1509_1/case1509/A_1509_1.RIGHT_CC.mask2.png", size(3056, 4624)),
            ("A_1509_1/case1509/A_1509_1.RIGHT_MLO.mask1.png", size(3120, 4664)),
        ]
    );
    let not_jpeg = ds.warnings.iter().filter(|w| w.contains("not a JPEG stream (no SOI marker); no PNG")).count();
    assert_eq!(not_jpeg, 4, "case1509's four: {:?}", ds.warnings);
    // The case0002 .ics files have no view lines: their 8 LJPEGs and one overlay.
    let no_dims = ds.warnings.iter().filter(|w| w.contains("no LINES and PIXELS_PER_LINE for its view")).count();
    assert_eq!(no_dims, 9, "{:?}", ds.warnings);
    assert!(
        ds.warnings.iter().any(|w| w.contains("C_0002_1.LEFT_MLO.OVERLAY: no LINES and PIXELS_PER_LINE")),
        "{:?}",
        ds.warnings
    );
    let meta = json(&ds, "A_1509_1/case1509/metadata.json");
    assert_eq!(
        meta["derived"]["A_1509_1.RIGHT_CC.mask2.png"],
        json!({"kind": "ddsm_mask", "from": ["A_1509_1.RIGHT_CC.OVERLAY"]})
    );
}
