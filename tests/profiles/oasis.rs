//! Golden tests of `mounts/oasis1.toml` and `mounts/oasis2.toml`: whole session folders with
//! relative paths, Analyze/NIfTI pairs kept together, blank and N/A cells as null, MR2 sessions,
//! n3..n6 processed names, the OASIS-2 stray `3906-3.nift.img`.

use crate::common::*;
use serde_json::json;

const CROSS: &str = "ID,M/F,Hand,Age,Educ,SES,MMSE,CDR,eTIV,nWBV,ASF,Delay
OAS1_0001_MR1,F,R,74,2,3,29,0,1344,0.743,1.306,N/A
OAS1_0002_MR1,F,R,25,,,,,1147,0.81,1.531,N/A
OAS1_0061_MR1,M,R,80,3,2,27,0.5,1500,0.7,1.2,N/A
OAS1_0061_MR2,M,R,80,3,2,27,0.5,1500,0.7,1.2,21
";

fn oasis1_session(p: &mut MemPool, disc: &str, s: &str, n: &str, runs: usize) {
    let tgz = format!("oasis_cross-sectional_{disc}.tar.gz");
    let pre = format!("{disc}/{s}");
    p.touch(&tgz, &format!("{pre}/{s}.txt")).touch(&tgz, &format!("{pre}/{s}.xml"));
    for k in 1..=runs {
        p.add(
            &tgz,
            &format!("{pre}/RAW/{s}_mpr-{k}_anon.hdr"),
            volume_header(&[256, 256, 128, 1], &[1.0, 1.0, 1.25, 0.0], true, &[0; 4], 0.0),
        )
        .touch(&tgz, &format!("{pre}/RAW/{s}_mpr-{k}_anon.img"))
        .touch(&tgz, &format!("{pre}/RAW/{s}_mpr-{k}_anon_sag_66.gif"));
    }
    for f in [
        format!("SUBJ_111/{s}_mpr_{n}_anon_sbj_111.hdr"),
        format!("SUBJ_111/{s}_mpr_{n}_anon_sbj_111.img"),
        format!("T88_111/{s}_mpr_{n}_anon_111_t88_gfc.hdr"),
        format!("T88_111/{s}_mpr_{n}_anon_111_t88_gfc.img"),
        format!("T88_111/{s}_mpr_{n}_anon_111_t88_masked_gfc.hdr"),
        format!("T88_111/{s}_mpr_{n}_anon_111_t88_masked_gfc.img"),
        format!("T88_111/{s}_mpr_{n}_anon_111_t88_gfc_tra_90.gif"),
    ] {
        p.touch(&tgz, &format!("{pre}/PROCESSED/MPRAGE/{f}"));
    }
    p.touch(&tgz, &format!("{pre}/FSL_SEG/{s}_mpr_{n}_anon_111_t88_masked_gfc_fseg.hdr"))
        .touch(&tgz, &format!("{pre}/FSL_SEG/{s}_mpr_{n}_anon_111_t88_masked_gfc_fseg.img"));
}

#[test]
fn oasis1_sessions() {
    let mut p = MemPool::new();
    oasis1_session(&mut p, "disc1", "OAS1_0001_MR1", "n4", 4);
    oasis1_session(&mut p, "disc1", "OAS1_0002_MR1", "n3", 3);
    oasis1_session(&mut p, "disc2", "OAS1_0061_MR1", "n6", 4);
    oasis1_session(&mut p, "disc2", "OAS1_0061_MR2", "n5", 3);
    p.add("oasis_cross-sectional.csv", "oasis_cross-sectional.csv", CROSS);
    p.add(
        "oasis_cross-sectional-reliability.csv",
        "oasis_cross-sectional-reliability.csv",
        "ID,M/F,Hand,Age,Educ,SES,MMSE,CDR,eTIV,nWBV,ASF,Delay\nOAS1_0061_MR1,M,R,80,3,2,30,0,1,1,1,N/A\n",
    );
    let ds = p.organize_with("oasis1").expect("recognized");
    check_invariants(&ds, &p.organize_with("oasis1").unwrap());
    assert!(ds.warnings.is_empty(), "{:?}", ds.warnings);
    let t = tree(&ds);
    let s1: Vec<&String> = t.iter().filter(|x| x.starts_with("OAS1_0001/OAS1_0001_MR1/")).collect();
    assert_eq!(s1.len(), 2 + 12 + 7 + 2 + 2, "{s1:#?}");
    for f in [
        "OAS1_0001/OAS1_0001_MR1/OAS1_0001_MR1.xml",
        "OAS1_0001/OAS1_0001_MR1/RAW/OAS1_0001_MR1_mpr-1_anon.hdr",
        "OAS1_0001/OAS1_0001_MR1/RAW/OAS1_0001_MR1_mpr-1_anon.img",
        "OAS1_0001/OAS1_0001_MR1/PROCESSED/MPRAGE/T88_111/OAS1_0001_MR1_mpr_n4_anon_111_t88_masked_gfc.img",
        "OAS1_0001/OAS1_0001_MR1/FSL_SEG/OAS1_0001_MR1_mpr_n4_anon_111_t88_masked_gfc_fseg.hdr",
        "OAS1_0061/OAS1_0061_MR2/labels.json",
        "OAS1_0061/OAS1_0061_MR1/PROCESSED/MPRAGE/SUBJ_111/OAS1_0061_MR1_mpr_n6_anon_sbj_111.hdr",
    ] {
        assert!(t.contains(&f.to_string()), "{f}");
    }
    assert_eq!(json(&ds, "OAS1_0001/OAS1_0001_MR1/labels.json"), json!({"CDR": 0.0, "MMSE": 29}));
    assert_eq!(json(&ds, "OAS1_0002/OAS1_0002_MR1/labels.json"), json!({"CDR": null, "MMSE": null}));
    assert_eq!(json(&ds, "OAS1_0061/OAS1_0061_MR1/labels.json"), json!({"CDR": 0.5, "MMSE": 27}));
    let m = json(&ds, "OAS1_0001/OAS1_0001_MR1/metadata.json");
    let mut m2 = m.clone();
    m2.as_object_mut().unwrap().remove("source");
    assert_eq!(
        m2,
        json!({"M/F": "F", "Hand": "R", "Age": 74, "Educ": 2, "SES": 3, "eTIV": 1344, "nWBV": 0.743, "ASF": 1.306,
        "Delay": null, "disc": "disc1", "n_mpr": 4, "split": null})
    );
    assert_eq!(
        m["source"]["RAW/OAS1_0001_MR1_mpr-2_anon.img"],
        json!({"archive": "oasis_cross-sectional_disc1.tar.gz", "path": "disc1/OAS1_0001_MR1/RAW/OAS1_0001_MR1_mpr-2_anon.img"})
    );
    let m = json(&ds, "OAS1_0061/OAS1_0061_MR2/metadata.json");
    assert_eq!((m["Delay"].clone(), m["disc"].clone(), m["n_mpr"].clone()), (json!(21), json!("disc2"), json!(3)));
    let m = json(&ds, "OAS1_0002/OAS1_0002_MR1/metadata.json");
    assert_eq!((m["Educ"].clone(), m["SES"].clone()), (json!(null), json!(null)));
    assert_eq!(json(&ds, "dataset.json")["counts"]["studies"], json!(4));
    assert_eq!(json(&ds, "dataset.json")["counts"]["patients"], json!(3));
    assert!(p.organize_with("oasis2").is_none());
}

const LONGITUDINAL: &str = "Subject ID,MRI ID,Group,Visit,MR Delay,M/F,Hand,Age,EDUC,SES,MMSE,CDR,eTIV,nWBV,ASF
OAS2_0001,OAS2_0001_MR1,Nondemented,1,0,M,R,87,14,2,27,0,1987,0.696,0.883
OAS2_0001,OAS2_0001_MR2,Nondemented,2,457,M,R,88,14,2,30,0,2004,0.681,0.876
OAS2_0002,OAS2_0002_MR1,Demented,1,0,M,R,75,12,,23,0.5,1678,0.736,1.046
OAS2_0004,OAS2_0004_MR1,Converted,1,0,F,R,88,18,3,,0,1215,0.71,1.444
";

#[test]
fn oasis2_sessions() {
    oasis2_with_table("oasis_longitudinal.csv", LONGITUDINAL.as_bytes().to_vec());
}

/// The official download's table is the Excel workbook: the same labels and metadata.
#[test]
fn oasis2_official_xlsx_demographics() {
    let rows: Vec<Vec<&str>> = LONGITUDINAL.lines().map(|l| l.split(',').collect()).collect();
    oasis2_with_table("oasis_longitudinal_demographics.xlsx", xlsx(&rows));
}

fn oasis2_with_table(table: &str, bytes: Vec<u8>) {
    let mut p = MemPool::new();
    for (part, s, runs) in [
        ("OAS2_RAW_PART1", "OAS2_0001_MR1", 3),
        ("OAS2_RAW_PART1", "OAS2_0001_MR2", 2),
        ("OAS2_RAW_PART2", "OAS2_0002_MR1", 4),
        ("OAS2_RAW_PART2", "OAS2_0004_MR1", 3),
    ] {
        let tgz = format!("{part}.tar.gz");
        for k in 1..=runs {
            p.add(
                &tgz,
                &format!("{part}/{s}/RAW/mpr-{k}.nifti.hdr"),
                volume_header(&[256, 256, 128, 1], &[1.0, 1.0, 1.25, 0.0], false, b"ni1\0", 0.0),
            )
            .touch(&tgz, &format!("{part}/{s}/RAW/mpr-{k}.nifti.img"));
        }
    }
    p.touch("OAS2_RAW_PART2.tar.gz", "OAS2_RAW_PART2/OAS2_0002_MR1/RAW/3906-3.nift.img");
    p.add(table, table, bytes);
    let ds = p.organize_with("oasis2").expect("recognized");
    check_invariants(&ds, &p.organize_with("oasis2").unwrap());
    assert!(ds.warnings.is_empty(), "{:?}", ds.warnings);
    let t = tree(&ds);
    assert!(t.contains(&"OAS2_0001/OAS2_0001_MR2/RAW/mpr-2.nifti.img".to_string()));
    assert!(!t.iter().any(|x| x.contains("3906")));
    assert_eq!(json(&ds, "dataset.json")["counts"], json!({"patients": 3, "studies": 4, "files": 24}));
    assert_eq!(json(&ds, "OAS2_0002/OAS2_0002_MR1/labels.json"), json!({"Group": "Demented", "CDR": 0.5, "MMSE": 23}));
    assert_eq!(
        json(&ds, "OAS2_0004/OAS2_0004_MR1/labels.json"),
        json!({"Group": "Converted", "CDR": 0.0, "MMSE": null})
    );
    let mut m = json(&ds, "OAS2_0001/OAS2_0001_MR2/metadata.json");
    m.as_object_mut().unwrap().remove("source");
    assert_eq!(
        m,
        json!({"Visit": 2, "MR Delay": 457, "M/F": "M", "Hand": "R", "Age": 88, "EDUC": 14, "SES": 2, "eTIV": 2004,
        "nWBV": 0.681, "ASF": 0.876, "part": "OAS2_RAW_PART1", "split": null})
    );
    assert_eq!(json(&ds, "OAS2_0002/OAS2_0002_MR1/metadata.json")["SES"], json!(null));
    assert!(p.organize_with("oasis1").is_none());
}

/// The discs extracted into one folder (no `disc<N>/` level) and the FreeSurfer disc tarballs:
/// the same sessions, FreeSurfer's files kept at their path in the session folder, `disc` from
/// the archive name where no folder gives it.
#[test]
fn oasis1_merged_tree_and_freesurfer_discs() {
    let mut p = MemPool::new();
    oasis1_session(&mut p, "disc1", "OAS1_0001_MR1", "n4", 3);
    // Merged: the session folders directly in the download folder (loose files).
    for f in ["OAS1_0002_MR1.txt", "RAW/OAS1_0002_MR1_mpr-1_anon.hdr", "RAW/OAS1_0002_MR1_mpr-1_anon.img"] {
        p.touch("OAS1_0002_MR1", &format!("OAS1_0002_MR1/{f}"));
    }
    for (tgz, pre) in
        [("oasis_cs_freesurfer_disc1.tar.gz", "disc1/OAS1_0001_MR1"), ("oasis_cs_freesurfer_disc2.tar.gz", "OAS1_0061_MR1")]
    {
        for f in ["mri/aseg.mgz", "mri/brain.mgz", "surf/lh.white", "stats/aseg.stats", "label/lh.aparc.annot"] {
            p.touch(tgz, &format!("{pre}/{f}"));
        }
    }
    p.add("oasis_cross-sectional.csv", "oasis_cross-sectional.csv", CROSS);
    let ds = p.organize_with("oasis1").expect("recognized");
    check_invariants(&ds, &p.organize_with("oasis1").unwrap());
    assert!(ds.warnings.is_empty(), "{:?}", ds.warnings);
    let t = tree(&ds);
    for f in [
        "OAS1_0001/OAS1_0001_MR1/RAW/OAS1_0001_MR1_mpr-3_anon.img",
        "OAS1_0001/OAS1_0001_MR1/mri/aseg.mgz",
        "OAS1_0001/OAS1_0001_MR1/stats/aseg.stats",
        "OAS1_0002/OAS1_0002_MR1/RAW/OAS1_0002_MR1_mpr-1_anon.hdr",
        "OAS1_0061/OAS1_0061_MR1/surf/lh.white",
    ] {
        assert!(t.contains(&f.to_string()), "{f}: {t:#?}");
    }
    let meta = |s: &str| json(&ds, &format!("{}/{s}/metadata.json", &s[..9]));
    assert_eq!((meta("OAS1_0001_MR1")["disc"].clone(), meta("OAS1_0001_MR1")["n_mpr"].clone()), (json!("disc1"), json!(3)));
    assert_eq!((meta("OAS1_0002_MR1")["disc"].clone(), meta("OAS1_0002_MR1")["n_mpr"].clone()), (json!(null), json!(1)));
    assert_eq!((meta("OAS1_0061_MR1")["disc"].clone(), meta("OAS1_0061_MR1")["n_mpr"].clone()), (json!("disc2"), json!(0)));
    assert_eq!(json(&ds, "OAS1_0002/OAS1_0002_MR1/labels.json"), json!({"CDR": null, "MMSE": null}));
    assert_eq!(json(&ds, "OAS1_0061/OAS1_0061_MR1/labels.json"), json!({"CDR": 0.5, "MMSE": 27}));
}
