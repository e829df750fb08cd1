//! Generic DICOM collections through real FUSE mounts: DICOM that no profile claims is one
//! dataset per source (a folder given on the command line, or the part archives of one
//! collection given alone), patients merged across its archives and loose folders, study and
//! series folders named as the NBIA Data Retriever names them, UIDs kept in metadata.json; a
//! profile claiming part of a folder leaves the rest to the generic dataset.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::*;
use serde_json::{Value, json};

/// The tags of one generated slice.
#[derive(Clone)]
struct Img {
    patient: &'static str,
    study: &'static str,
    study_id: Option<&'static str>,
    study_desc: Option<&'static str>,
    series: &'static str,
    number: Option<i64>,
    series_desc: Option<&'static str>,
    instance: i64,
}

/// A valid DICOM slice (Implicit VR Little Endian data set with 8x8 pixels) carrying `i`'s tags.
fn dicom(i: &Img) -> Vec<u8> {
    use medfs::fixtures::Dv::{Raw, Text, Uid, Us};
    let sop = format!("{}.{}", i.series, i.instance);
    let (number, instance) = (i.number.map(|n| n.to_string()), i.instance.to_string());
    let pixels = bytes(128, i.instance as u64 * 31 + i.series.len() as u64, false);
    let mut el = vec![(8, 0x18, Uid(&sop)), (8, 0x20, Text("19981205")), (8, 0x60, Text("CT"))];
    el.extend(i.study_desc.map(|d| (8, 0x1030, Text(d))));
    el.extend(i.series_desc.map(|d| (8, 0x103E, Text(d))));
    el.extend([(0x10, 0x20, Text(i.patient)), (0x20, 0x0D, Uid(i.study)), (0x20, 0x0E, Uid(i.series))]);
    el.extend(i.study_id.map(|s| (0x20, 0x10, Text(s))));
    el.extend(number.as_deref().map(|n| (0x20, 0x11, Text(n))));
    el.extend([(0x20, 0x13, Text(&instance)), (0x28, 0x10, Us(8)), (0x28, 0x11, Us(8)), (0x7FE0, 0x10, Raw(&pixels))]);
    medfs::fixtures::dicom(&el)
}

const STUDY_A: &str = "1.3.6.1.4.1.14519.5.2.1.1706.8040.141473127645431244275904143582";
const STUDY_B: &str = "1.3.6.1.4.1.14519.5.2.1.1706.8040.227180113037748503185792359359";
const STUDY_C: &str = "1.3.6.1.4.1.14519.5.2.1.1706.8040.330000000000000000000000000101";
const SERIES_A1: &str = "1.3.6.1.4.1.14519.5.2.1.1706.8040.305212762308252149853668331515";
const SERIES_A2: &str = "1.3.6.1.4.1.14519.5.2.1.1706.8040.898612621408214889027419428768";
const SERIES_B1: &str = "1.3.6.1.4.1.14519.5.2.1.1706.8040.400000000000000000000000000201";
const SERIES_C1: &str = "1.3.6.1.4.1.14519.5.2.1.1706.8040.500000000000000000000000000301";

fn img(patient: &'static str, study: &'static str, series: &'static str, instance: i64) -> Img {
    let (study_desc, number, series_desc) = match series {
        SERIES_A1 => (Some("RT SIMULATION"), Some(601), Some("PETCoronal")),
        SERIES_A2 => (Some("RT SIMULATION"), None, None),
        SERIES_B1 => (Some("PETCT HEAD  NECK CA"), Some(5), Some("PET NO AC")),
        _ => (None, Some(2), Some("CT/Recon")),
    };
    Img { patient, study, study_id: None, study_desc, series, number, series_desc, instance }
}

/// The collection's slices: patient 1 has study A (series A1 in part 1, A2 in part 2) and
/// study C (in the loose folder); patient 2 has study B (in part 2).
fn collection() -> Vec<(&'static str, String, Img)> {
    let mut out = Vec::new();
    let p1 = "HNSCC-01-0001";
    let p2 = "HNSCC-01-0002";
    for k in 1..=3 {
        out.push(("part1", format!("HNSCC/{p1}/a/601/1-{k}.dcm"), img(p1, STUDY_A, SERIES_A1, k)));
    }
    for k in 1..=2 {
        out.push(("part2", format!("HNSCC/{p1}/a/na/1-{k}.dcm"), img(p1, STUDY_A, SERIES_A2, k)));
        out.push(("part2", format!("HNSCC/{p2}/b/5/1-{k}.dcm"), img(p2, STUDY_B, SERIES_B1, k)));
    }
    out.push(("loose", format!("{p1}/c/2/000001.dcm"), img(p1, STUDY_C, SERIES_C1, 1)));
    out
}

/// Where the generic dataset shows each slice (relative to the dataset folder).
fn shown(i: &Img, path: &str) -> String {
    let study = match i.study {
        STUDY_A => "12-05-1998-NA-RT SIMULATION-43582",
        STUDY_B => "12-05-1998-NA-PETCT HEAD  NECK CA-59359",
        _ => "12-05-1998-NA-NA-00101",
    };
    let series = match i.series {
        SERIES_A1 => "601.000000-PETCoronal-31515",
        SERIES_A2 => "NA-28768",
        SERIES_B1 => "5.000000-PET NO AC-00201",
        _ => "2.000000-CT_Recon-00301",
    };
    format!("{}/{study}/{series}/{}", i.patient, path.rsplit('/').next().unwrap())
}

fn read_json(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).unwrap()
}

/// The top-level names of a mount, without `_archives`.
fn datasets(mnt: &Path) -> BTreeSet<String> {
    std::fs::read_dir(mnt)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "_archives")
        .collect()
}

/// Checks the generic dataset `slug` holds exactly the collection's slices, at their
/// descriptive places, byte for byte, with one folder per patient and study.
fn check_collection(m: &Mounted, slug: &str, slices: &[(&str, String, Img)]) {
    for (_, path, i) in slices {
        let at = m.path(&format!("{slug}/{}", shown(i, path)));
        let got = std::fs::read(&at).unwrap_or_else(|e| panic!("{}: {e}", at.display()));
        assert!(got == dicom(i), "{}: bytes differ", at.display());
    }
    let dcm: Vec<String> = walk(&m.path(slug)).into_iter().filter(|p| p.ends_with(".dcm")).collect();
    assert_eq!(dcm.len(), slices.len(), "{dcm:?}");
    let patients: BTreeSet<String> = slices.iter().map(|(_, _, i)| i.patient.to_string()).collect();
    let on_disk: BTreeSet<String> = std::fs::read_dir(m.path(slug))
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(on_disk, patients, "one folder per patient, wherever its files were");
    // Study A of patient 1: one folder holding the series of both archives, its UIDs in
    // metadata.json under the readable names.
    let study_a = format!("{slug}/HNSCC-01-0001/12-05-1998-NA-RT SIMULATION-43582");
    let meta = read_json(&m.path(&format!("{study_a}/metadata.json")));
    assert_eq!(meta["study_instance_uid"], STUDY_A);
    assert_eq!(meta["study_description"], "RT SIMULATION");
    assert_eq!(meta["series"]["601.000000-PETCoronal-31515"]["series_instance_uid"], SERIES_A1);
    assert_eq!(meta["series"]["601.000000-PETCoronal-31515"]["num_instances"], 3);
    assert_eq!(meta["series"]["NA-28768"]["series_instance_uid"], SERIES_A2);
    assert_eq!(meta["series"]["NA-28768"]["series_number"], Value::Null);
    let sources: BTreeSet<&str> =
        meta["source"].as_object().unwrap().values().map(|v| v["archive"].as_str().unwrap()).collect();
    assert_eq!(sources.len(), 2, "study A comes from two archives: {sources:?}");
    // labels.csv: one row per series, its folder as path, each folder there.
    let csv = std::fs::read_to_string(m.path(&format!("{slug}/labels.csv"))).unwrap();
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(rows.len(), 4, "{csv}");
    let row =
        "HNSCC-01-0001/12-05-1998-NA-RT SIMULATION-43582/NA-28768,HNSCC-01-0001,12-05-1998-NA-RT SIMULATION-43582,";
    assert!(rows.contains(&row), "{csv}");
    for r in &rows {
        let path = r.split(',').next().unwrap();
        assert!(m.path(&format!("{slug}/{path}")).is_dir(), "{path}");
    }
    let ds = read_json(&m.path(&format!("{slug}/dataset.json")));
    assert_eq!(ds["slug"], slug);
    assert_eq!(ds["counts"], json!({"patients": 2, "studies": 3, "series": 4, "files": slices.len()}));
}

/// A folder holding a TCIA collection as two zips plus an extracted folder, and an LIDC-IDRI
/// zip the lidc-idri profile claims: two datasets, `lidc-idri` and the folder's, which holds the
/// other collection only (one patient across both zips and the loose folder).
#[test]
fn a_folder_is_one_collection_beside_a_profile() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("TCIA downloads");
    std::fs::create_dir_all(&src).unwrap();
    let slices = collection();
    for part in ["part1", "part2"] {
        let entries: Vec<Entry> = slices
            .iter()
            .filter(|s| s.0 == part)
            .map(|(_, p, i)| entry(&format!("manifest-1632/{p}"), dicom(i)))
            .collect();
        make_zip(&src.join(format!("HNSCC_{part}.zip")), &entries, ZipMethod::Deflated);
    }
    for (_, p, i) in slices.iter().filter(|s| s.0 == "loose") {
        let at = src.join("HNSCC extracted").join(p);
        std::fs::create_dir_all(at.parent().unwrap()).unwrap();
        std::fs::write(at, dicom(i)).unwrap();
    }
    // LIDC-IDRI in the classic layout: claimed by its profile, never shown generically.
    let lidc_study = "1.3.6.1.4.1.14519.5.2.1.6279.6001.298806137288633453246975630178";
    let lidc_series = "1.3.6.1.4.1.14519.5.2.1.6279.6001.179049373636438705059720603192";
    let lidc: Vec<Entry> = (1..=2)
        .map(|k| {
            let i = Img {
                patient: "LIDC-IDRI-0001",
                study: lidc_study,
                study_id: None,
                study_desc: None,
                series: lidc_series,
                number: Some(3000566),
                series_desc: None,
                instance: k,
            };
            entry(&format!("LIDC-IDRI/LIDC-IDRI-0001/{lidc_study}/{lidc_series}/{k:06}.dcm"), dicom(&i))
        })
        .collect();
    make_zip(&src.join("LIDC-IDRI.zip"), &lidc, ZipMethod::Stored);

    let m = mount(&[&src], &tmp.path().join("mnt"), &[]);
    assert_eq!(datasets(&m.mnt), BTreeSet::from(["TCIA downloads".to_string(), "lidc-idri".to_string()]));
    check_collection(&m, "TCIA downloads", &slices);
    assert!(!m.path("TCIA downloads/LIDC-IDRI-0001").exists(), "LIDC-IDRI is its profile's");
    assert!(m.path(&format!("lidc-idri/LIDC-IDRI-0001/{lidc_study}")).is_dir());
    let ds = read_json(&m.path("TCIA downloads/dataset.json"));
    assert_eq!(
        ds["source_archives"],
        json!(["HNSCC extracted", "HNSCC_part1.zip", "HNSCC_part2.zip"]),
        "the loose folder and both zips (not the LIDC zip)"
    );
}

/// The parts of one collection given alone on the command line are one dataset named after
/// their common stem; another archive given alone is its own.
#[test]
fn parts_given_alone_are_one_collection() {
    let tmp = tempfile::tempdir().unwrap();
    let slices: Vec<_> =
        collection().into_iter().map(|(w, p, i)| (if w == "loose" { "part2" } else { w }, p, i)).collect();
    let mut args = Vec::new();
    for part in ["part1", "part2"] {
        let entries: Vec<Entry> = slices.iter().filter(|s| s.0 == part).map(|(_, p, i)| entry(p, dicom(i))).collect();
        let zip = tmp.path().join(format!("HNSCC-{part}.zip"));
        make_zip(&zip, &entries, ZipMethod::Deflated);
        args.push(zip);
    }
    let other = Img {
        patient: "OTHER-1",
        study: "1.2.3.4.5.6",
        study_id: Some("S1"),
        study_desc: Some("BRAIN"),
        series: "1.2.3.4.5.6.7",
        number: Some(1),
        series_desc: Some("T1"),
        instance: 1,
    };
    let other_tgz = tmp.path().join("scan_7.tar.gz");
    make_tar_gz(&other_tgz, &[entry("x/IM0001", dicom(&other))]);
    args.push(other_tgz);
    let refs: Vec<&Path> = args.iter().map(|p| p.as_path()).collect();
    let m = mount(&refs, &tmp.path().join("mnt"), &[]);
    assert_eq!(datasets(&m.mnt), BTreeSet::from(["HNSCC".to_string(), "scan_7".to_string()]));
    check_collection(&m, "HNSCC", &slices);
    let placed = m.path("scan_7/OTHER-1/12-05-1998-S1-BRAIN-4.5.6/1.000000-T1-5.6.7/IM0001");
    assert_eq!(std::fs::read(&placed).unwrap(), dicom(&other));
}

/// Unclaimed NIfTI volumes of a folder form its generic NIfTI dataset (BIDS subjects and
/// sessions, else folder and stem), beside its generic DICOM one (`<folder>-nifti`); a BraTS
/// case in the same folder stays its profile's.
#[test]
fn unclaimed_volumes_form_a_generic_nifti_dataset() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("study");
    std::fs::create_dir_all(&src).unwrap();
    let vol = |seed: u64| medfs::fixtures::nifti(&[6, 5, 4], &[0.9, 0.9, 3.0], seed, true);
    let bids = [
        ("ds/sub-01/ses-pre/anat/sub-01_ses-pre_T1w.nii.gz", "sub-01/ses-pre/anat/sub-01_ses-pre_T1w.nii.gz"),
        ("ds/sub-01/ses-post/anat/sub-01_ses-post_T1w.nii.gz", "sub-01/ses-post/anat/sub-01_ses-post_T1w.nii.gz"),
        ("ds/sub-02/anat/sub-02_T1w.nii.gz", "sub-02/sub-02_T1w/sub-02_T1w.nii.gz"),
    ];
    let mut entries: Vec<Entry> = bids.iter().enumerate().map(|(i, (p, _))| entry(p, vol(i as u64))).collect();
    // A BraTS 2021 case: the brats2021 profile claims it.
    for m in ["flair", "t1", "t1ce", "t2", "seg"] {
        entries.push(entry(&format!("BraTS2021_00000/BraTS2021_00000_{m}.nii.gz"), vol(9)));
    }
    make_zip(&src.join("volumes.zip"), &entries, ZipMethod::Stored);
    // Loose: a volume in a folder, and DICOM (so the folder also has a generic DICOM dataset).
    std::fs::create_dir_all(src.join("extra/case7")).unwrap();
    std::fs::write(src.join("extra/case7/flair.nii.gz"), vol(7)).unwrap();
    let (_, path, i) = &collection()[0];
    std::fs::create_dir_all(src.join("dicom")).unwrap();
    std::fs::write(src.join("dicom/1.dcm"), dicom(i)).unwrap();

    let m = mount(&[&src], &tmp.path().join("mnt"), &[]);
    let want: BTreeSet<String> = ["brats2021", "study", "study-nifti"].iter().map(|s| s.to_string()).collect();
    assert_eq!(datasets(&m.mnt), want);
    assert!(m.path(&format!("study/{}", shown(i, path)).replace("1-1.dcm", "1.dcm")).is_file());
    for (k, (_, shown)) in bids.iter().enumerate() {
        assert_eq!(std::fs::read(m.path(&format!("study-nifti/{shown}"))).unwrap(), vol(k as u64), "{shown}");
    }
    assert_eq!(std::fs::read(m.path("study-nifti/case7/flair/flair.nii.gz")).unwrap(), vol(7));
    let vols: Vec<String> = walk(&m.path("study-nifti")).into_iter().filter(|p| p.ends_with(".nii.gz")).collect();
    assert_eq!(vols.len(), 4, "the BraTS case is not generic: {vols:?}");
    let meta = read_json(&m.path("study-nifti/sub-01/ses-pre/metadata.json"));
    assert_eq!(meta["shape"], json!([6, 5, 4]));
    assert_eq!(meta["source"]["anat/sub-01_ses-pre_T1w.nii.gz"]["archive"], "volumes.zip");
    let ds = read_json(&m.path("study-nifti/dataset.json"));
    assert_eq!(ds["title"], "NIfTI volumes of study");
    assert_eq!(ds["counts"], json!({"patients": 3, "studies": 4, "files": 4}));
}
