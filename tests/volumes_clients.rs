//! Real clients read the volumetric datasets through their dataset trees (issue 5): nibabel loads
//! OASIS-1 Analyze 7.5 pairs (big-endian), OASIS-2 NIfTI pairs and BraTS `.nii.gz` from their
//! study folders (so each `.hdr` finds its `.img` next to it), and pydicom reads LIDC-IDRI slices
//! placed by their tags. The files are written by nibabel and pydicom themselves. Python comes
//! from the venv `./test.sh` sets up (`MEDFS_PYTHON`); without it these tests fail loudly.

mod common;

use common::*;

/// Writes the look-alike files under argv[1]; prints their relative paths.
const MAKE: &str = r#"
import sys, os, numpy as np, nibabel as nib
from pydicom.dataset import Dataset
from pydicom.uid import ImplicitVRLittleEndian, CTImageStorage
out = sys.argv[1]
def path(rel):
    p = os.path.join(out, rel); os.makedirs(os.path.dirname(p), exist_ok=True); return p
def vol(shape, k):
    return (np.arange(np.prod(shape), dtype=np.int16) * k).reshape(shape)
# OASIS-1: big-endian Analyze 7.5 pairs.
for s in ["OAS1_0001_MR1", "OAS1_0002_MR1"]:
    for r in (1, 2):
        h = nib.AnalyzeHeader(endianness=">")
        h.set_data_dtype(np.int16)
        img = nib.AnalyzeImage(vol((8, 8, 4, 1), r), np.diag([1.0, 1.0, 1.25, 1.0]), h)
        nib.save(img, path(f"oasis1/disc1/{s}/RAW/{s}_mpr-{r}_anon.hdr"))
    open(path(f"oasis1/disc1/{s}/{s}.txt"), "w").write(f"SESSION ID: {s}\n")
# OASIS-2: NIfTI-1 pairs named mpr-<k>.nifti.hdr / .img.
for s in ["OAS2_0001_MR1", "OAS2_0001_MR2"]:
    for r in (1, 2):
        img = nib.Nifti1Pair(vol((8, 8, 4), 10 + r), np.eye(4))
        nib.save(img, path(f"oasis2/OAS2_RAW_PART1/{s}/RAW/mpr-{r}.nifti.hdr"))
# BraTS 2021: .nii.gz.
for m in ["flair", "t1", "t1ce", "t2", "seg"]:
    img = nib.Nifti1Image(vol((8, 6, 4), 3), np.diag([1.0, 1.0, 1.5, 1.0]))
    nib.save(img, path(f"brats/BraTS2021_00000/BraTS2021_00000_{m}.nii.gz"))
# LIDC-IDRI, NBIA 3.x layout, Implicit VR Little Endian.
root = "1.3.6.1.4.1.14519.5.2.1.6279.6001"
for i in range(3):
    ds = Dataset()
    ds.PatientID = "LIDC-IDRI-0001"
    ds.StudyInstanceUID = root + ".298806137288633453246975630178"
    ds.SeriesInstanceUID = root + ".179049373636438705059720603192"
    ds.SOPInstanceUID = ds.SeriesInstanceUID + f".{i + 1}"
    ds.SOPClassUID = CTImageStorage
    ds.Modality = "CT"; ds.StudyDate = "20000101"; ds.SeriesNumber = 3000566; ds.InstanceNumber = i + 1
    ds.Manufacturer = "GE MEDICAL SYSTEMS"
    rel = f"lidc/LIDC-IDRI/LIDC-IDRI-0001/01-01-2000-30178/3000566-03192/{i + 1:06d}.dcm"
    save_ct_slice(ds, path(rel), i + 1, ImplicitVRLittleEndian)
for root_dir, _, files in os.walk(out):
    for f in files:
        print(os.path.relpath(os.path.join(root_dir, f), out))
"#;

/// Reads everything back through the mount.
const CHECK: &str = r#"
import sys, glob, numpy as np, nibabel as nib, pydicom
m = sys.argv[1]
def vol(shape, k):
    return (np.arange(np.prod(shape), dtype=np.int16) * k).reshape(shape)
n = 0
for s in ["OAS1_0001_MR1", "OAS1_0002_MR1"]:
    for r in (1, 2):
        img = nib.load(f"{m}/oasis1/{s[:9]}/{s}/RAW/{s}_mpr-{r}_anon.hdr")
        assert isinstance(img, nib.AnalyzeImage), type(img)
        assert img.header.endianness == ">", img.header.endianness
        assert np.array_equal(np.asarray(img.dataobj), vol((8, 8, 4, 1), r))
        n += 1
for s in ["OAS2_0001_MR1", "OAS2_0001_MR2"]:
    for r in (1, 2):
        img = nib.load(f"{m}/oasis2/OAS2_0001/{s}/RAW/mpr-{r}.nifti.hdr")
        assert isinstance(img, nib.Nifti1Pair), type(img)
        assert np.array_equal(np.asarray(img.dataobj), vol((8, 8, 4), 10 + r))
        n += 1
for f in sorted(glob.glob(f"{m}/brats2021/BraTS2021_00000/BraTS2021_00000/*.nii.gz")):
    img = nib.load(f)
    assert img.shape == (8, 6, 4) and np.array_equal(np.asarray(img.dataobj), vol((8, 6, 4), 3))
    n += 1
paths = sorted(glob.glob(f"{m}/lidc-idri/*/*/*/*.dcm"))
assert len(paths) == 3, paths
for p in paths:
    ds = pydicom.dcmread(p)
    assert ds.PatientID in p and ds.StudyInstanceUID in p and ds.SeriesInstanceUID in p
    assert ds.pixel_array.shape == (16, 16)
    n += 1
print(n)
"#;

#[test]
fn nibabel_and_pydicom_read_volumes_through_the_dataset_trees() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let mut rels: Vec<String> = py(&format!("{PY_CT_SLICE}{MAKE}"), &[&src]).lines().map(str::to_string).collect();
    // Tar order: each `.hdr` before its `.img`, as in the OASIS streams.
    rels.sort();
    let entries = |prefix: &str, strip: &str| -> Vec<Entry> {
        rels.iter()
            .filter(|r| r.starts_with(prefix))
            .map(|r| entry(r.strip_prefix(strip).unwrap(), std::fs::read(src.join(r)).unwrap()))
            .collect()
    };
    let dl = dir.path().join("dl");
    std::fs::create_dir_all(&dl).unwrap();
    make_tar_gz(&dl.join("oasis_cross-sectional_disc1.tar.gz"), &entries("oasis1/", "oasis1/"));
    std::fs::write(
        dl.join("oasis_cross-sectional.csv"),
        "ID,M/F,Hand,Age,Educ,SES,MMSE,CDR,eTIV,nWBV,ASF,Delay\nOAS1_0001_MR1,F,R,74,2,3,29,0,1344,0.743,1.306,N/A\n",
    )
    .unwrap();
    make_tar_gz(&dl.join("OAS2_RAW_PART1.tar.gz"), &entries("oasis2/", "oasis2/"));
    make_tar(&dl.join("BraTS2021_Training_Data.tar"), &entries("brats/", "brats/"));
    make_zip(&dl.join("LIDC-IDRI.zip"), &entries("lidc/", "lidc/"), ZipMethod::Deflated);
    let m = mount(&[&dl], &dir.path().join("mnt"), &[]);
    assert_eq!(py(CHECK, &[&m.mnt]).trim(), "16");
    // The geometry in metadata.json comes from the headers nibabel wrote.
    let meta: serde_json::Value = serde_json::from_slice(
        &std::fs::read(m.path("brats2021/BraTS2021_00000/BraTS2021_00000/metadata.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(meta["shape"], serde_json::json!([8, 6, 4]));
    assert_eq!(meta["voxel_size"], serde_json::json!([1.0, 1.0, 1.5]));
    let labels: serde_json::Value =
        serde_json::from_slice(&std::fs::read(m.path("oasis1/OAS1_0001/OAS1_0001_MR1/labels.json")).unwrap()).unwrap();
    assert_eq!(labels, serde_json::json!({"CDR": 0.0, "MMSE": 29}));
}
