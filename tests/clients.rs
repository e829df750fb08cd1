//! Real clients through real mounts: pydicom reads DICOM and nibabel reads NIfTI and Analyze
//! pairs out of zip and tar.gz archives, and DICOM that no profile claims is organized by its
//! tags (PatientID / study / series, named as the NBIA Data Retriever names them). Python comes from the venv that
//! `./test.sh` sets up (`MEDFS_PYTHON`); without pydicom/nibabel these tests fail loudly.

mod common;

use std::path::Path;

use common::*;

/// Writes 2 patients × 2 studies × (2 series of 3 slices) as DICOM files into `dir`, half in
/// Explicit VR, half in Implicit VR; prints `path\tpatient\tstudy\tseries` lines.
const MAKE_DICOM: &str = r#"
import sys, os
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, CTImageStorage
out = sys.argv[1]
n = 0
for p in range(2):
    for s in range(2):
        study = f"1.2.826.0.1.3680043.8.498.{p}{s}1"
        for r in range(2):
            series = f"{study}.{r + 1}"
            for i in range(3):
                ds = Dataset()
                ds.PatientID = f"PAT-{p:03d}"
                ds.PatientName = f"Test^{p}"
                ds.PatientSex = "F" if p else "M"
                ds.StudyInstanceUID = study
                ds.SeriesInstanceUID = series
                ds.SOPInstanceUID = f"{series}.{i + 1}"
                ds.SOPClassUID = CTImageStorage
                ds.Modality = "CT"
                ds.StudyDate = "20200102"
                ds.StudyDescription = "CHEST"
                ds.SeriesDescription = f"series {r}"
                ds.InstanceNumber = i + 1
                ds.ImagePositionPatient = [0, 0, float(i) * 2.5]
                ds.PixelSpacing = [0.7, 0.7]
                ds.SliceThickness = 2.5
                rel = f"export/case{p}{s}/{r}/1-{i + 1:03d}.dcm"
                os.makedirs(os.path.dirname(os.path.join(out, rel)), exist_ok=True)
                syntax = ExplicitVRLittleEndian if n % 2 == 0 else ImplicitVRLittleEndian
                save_ct_slice(ds, os.path.join(out, rel), n + 1, syntax)
                print(f"{rel}\t{ds.PatientID}\t{study}\t{series}")
                n += 1
"#;

fn dicom_files(dir: &Path) -> Vec<(String, String, String, String)> {
    py(&format!("{PY_CT_SLICE}{MAKE_DICOM}"), &[dir])
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[0].into(), f[1].into(), f[2].into(), f[3].into())
        })
        .collect()
}

fn entries_of(dir: &Path, rels: &[String]) -> Vec<Entry> {
    rels.iter().map(|r| entry(r, std::fs::read(dir.join(r)).unwrap())).collect()
}

#[test]
fn pydicom_reads_dicom_through_the_mount_and_unclaimed_dicom_is_organized_by_tags() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let files = dicom_files(&src);
    assert_eq!(files.len(), 24);
    let rels: Vec<String> = files.iter().map(|f| f.0.clone()).collect();
    let zip = dir.path().join("ScannerExport.zip");
    make_zip(&zip, &entries_of(&src, &rels), ZipMethod::Deflated);
    let tgz = dir.path().join("Second_Site.tar.gz");
    make_tar_gz(&tgz, &entries_of(&src, &rels[..6]));

    let m = mount(&[&zip, &tgz], &dir.path().join("mnt"), &[]);
    // The tag tree of the zip: every file at PatientID/<study>/<series>/basename, the study and
    // series folders named as the NBIA Data Retriever names them.
    for (rel, patient, study, series) in &files {
        let base = rel.rsplit('/').next().unwrap();
        let r: usize = rel.split('/').nth(2).unwrap().parse().unwrap();
        let study_dir = medfs::dicomtree::study_folder(Some("20200102"), None, Some("CHEST"), study);
        let series_dir = medfs::dicomtree::series_folder(None, Some(&format!("series {r}")), series);
        assert!(
            study_dir.starts_with("01-02-2020-NA-CHEST-") && series_dir.starts_with("series "),
            "{study_dir} {series_dir}"
        );
        let placed = m.path(&format!("ScannerExport/{patient}/{study_dir}/{series_dir}/{base}"));
        let got = std::fs::read(&placed).unwrap_or_else(|e| panic!("{}: {e}", placed.display()));
        assert!(got == std::fs::read(src.join(rel)).unwrap(), "{rel}: bytes differ");
    }
    assert!(m.path("Second_Site/PAT-000").is_dir(), "the tar.gz is its own dataset");
    assert!(!m.path("Second_Site/PAT-001").exists(), "and holds only its own patients");
    let study = &files[0].2;
    let study_dir = medfs::dicomtree::study_folder(Some("20200102"), None, Some("CHEST"), study);
    let meta: serde_json::Value = serde_json::from_slice(
        &std::fs::read(m.path(&format!("ScannerExport/PAT-000/{study_dir}/metadata.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(meta["study_instance_uid"], study.as_str(), "the UID stays in metadata.json");
    assert_eq!(meta["modality"], "CT");
    assert_eq!(meta["study_date"], "20200102");
    assert!(meta["split"].is_null());
    assert_eq!(meta["series"].as_object().unwrap().len(), 2);
    let labels = std::fs::read_to_string(m.path("ScannerExport/labels.csv")).unwrap();
    assert_eq!(labels.lines().count(), 1 + 8, "one row per series: {labels}");

    // pydicom reads every organized file through the kernel and gets the pixels written.
    let check = r#"
import sys, glob, numpy as np, pydicom
paths = sorted(glob.glob(sys.argv[1] + "/*/*/*/*.dcm"))
assert len(paths) == 24, len(paths)
for p in paths:
    ds = pydicom.dcmread(p)
    n = int(ds.SOPInstanceUID.rsplit(".", 1)[1])
    assert ds.pixel_array.shape == (16, 16)
    parts = p.split("/")
    assert parts[-4] == ds.PatientID and parts[-3].endswith("-" + ds.StudyInstanceUID[-5:]), p
    assert parts[-2] == f"{ds.SeriesDescription}-{ds.SeriesInstanceUID[-5:]}", p
print(len(paths))
"#;
    assert_eq!(py(check, &[&m.path("ScannerExport")]).trim(), "24");
}

#[test]
fn nibabel_reads_nifti_and_analyze_pairs_through_the_mount() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let make = r#"
import sys, os, numpy as np, nibabel as nib
out = sys.argv[1]
data = (np.arange(24 * 20 * 12, dtype=np.int16).reshape(24, 20, 12) % 317)
affine = np.diag([1.5, 1.5, 3.0, 1.0])
nib.save(nib.Nifti1Image(data, affine), os.path.join(out, "t1.nii.gz"))
nib.save(nib.Nifti1Image(data.astype(np.float32) / 3, affine), os.path.join(out, "bold.nii"))
nib.save(nib.AnalyzeImage(data, affine), os.path.join(out, "mpr-1.nifti.img"))
"#;
    py(make, &[&src]);
    let names = ["t1.nii.gz", "bold.nii", "mpr-1.nifti.img", "mpr-1.nifti.hdr"];
    let entries: Vec<Entry> =
        names.iter().map(|n| entry(&format!("OAS2_0001_MR1/RAW/{n}"), std::fs::read(src.join(n)).unwrap())).collect();
    let zip = dir.path().join("volumes.zip");
    make_zip(&zip, &entries, ZipMethod::Deflated);
    let tgz = dir.path().join("volumes.tar.gz");
    make_tar_gz(&tgz, &entries);
    let m = mount(&[&zip, &tgz], &dir.path().join("mnt"), &[]);
    let check = r#"
import sys, numpy as np, nibabel as nib
want = (np.arange(24 * 20 * 12, dtype=np.int16).reshape(24, 20, 12) % 317)
for root in sys.argv[1:]:
    t1 = nib.load(root + "/OAS2_0001_MR1/RAW/t1.nii.gz")
    assert (np.asarray(t1.dataobj) == want).all()
    assert np.allclose(t1.affine, np.diag([1.5, 1.5, 3.0, 1.0]))
    bold = nib.load(root + "/OAS2_0001_MR1/RAW/bold.nii")
    assert np.allclose(bold.get_fdata(), want / 3, atol=1e-4)
    pair = nib.load(root + "/OAS2_0001_MR1/RAW/mpr-1.nifti.img")
    assert (np.asarray(pair.dataobj) == want).all()
print("ok")
"#;
    let out = py(check, &[&m.path("_archives/volumes.zip"), &m.path("_archives/volumes.tar.gz")]);
    assert_eq!(out.trim(), "ok");
}
