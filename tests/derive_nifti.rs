//! The derived NIfTI of a DICOM series (`medfs::derive::nifti`) through a real mount, against
//! independent readers: series written by `medfs::fixtures` (and compressed or multi-frame
//! copies Python makes) in a zip, mounted; every `<series>.nii` / `.json` medfs lists is read
//! (its `st_size` exact before and after), loaded by nibabel and compared with pydicom's reading
//! of the same DICOM files (shape, affine computed in Python from the tags, voxels, scaling,
//! sidecar fields) and with dcm2niix's conversion of them (affine, voxels, sidecar). The pure
//! API (`plan`, `read_at`, `render_slice`) gives the same bytes in process.
//! Compressed copies: RLE by pydicom, JPEG Lossless by libjpeg-turbo and JPEG 2000 by OpenJPEG
//! (imagecodecs), decoded by medfs through dicom-rs and checked against pydicom / imagecodecs /
//! dcm2niix decoding them. Multi-frame: an Enhanced MR file of one series (plain and RLE),
//! planned from its functional groups.
//! Needs `$MEDFS_PYTHON` with pydicom, nibabel, numpy, imagecodecs and dcm2niix (./test.sh).

mod common;

use std::path::{Path, PathBuf};

use common::{mount, read_checked, walk};
use medfs::derive::nifti::{self, VolumePlan};
use medfs::dicom::{self, DicomInfo};
use medfs::fixtures::{Dv, ZipMethod, dicom as dicom_file, entry, write_zip};

/// One series to write: geometry, pixel type, rescale, instance numbering.
#[derive(Clone)]
struct Case {
    name: &'static str,
    /// Its SeriesInstanceUID (so its folder in the mount).
    series: &'static str,
    iop: [f64; 6],
    origin: [f64; 3],
    /// Signed distance of slice k from the origin along the normal, in write order.
    along: Vec<f64>,
    instance: Vec<i64>,
    rows: u16,
    cols: u16,
    spacing: [f64; 2],
    signed: bool,
    slope: &'static str,
    inter: &'static str,
}

fn ds(v: &[f64]) -> String {
    v.iter().map(|x| format!("{x:.6}")).collect::<Vec<_>>().join("\\")
}

/// Pixel (r, c) of the slice written k-th: varied, negative too when signed.
fn pixel(k: usize, r: usize, c: usize, signed: bool) -> u16 {
    let v = ((k * 7919 + r * 131 + c * 17) % 4000) as i32;
    if signed { (v - 1000) as i16 as u16 } else { v as u16 }
}

fn write_series(dir: &Path, case: &Case) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).unwrap();
    let r = [case.iop[0], case.iop[1], case.iop[2]];
    let c = [case.iop[3], case.iop[4], case.iop[5]];
    let n = [r[1] * c[2] - r[2] * c[1], r[2] * c[0] - r[0] * c[2], r[0] * c[1] - r[1] * c[0]];
    let mut paths = Vec::new();
    for (k, (&d, &inst)) in case.along.iter().zip(&case.instance).enumerate() {
        let ipp: Vec<f64> = (0..3).map(|a| case.origin[a] + d * n[a]).collect();
        let px: Vec<u8> = (0..case.rows as usize)
            .flat_map(|row| (0..case.cols as usize).map(move |col| (row, col)))
            .flat_map(|(row, col)| pixel(k, row, col, case.signed).to_le_bytes())
            .collect();
        let sop = format!("1.2.826.0.1.3680043.9.7.{}.{k}", case.name.len());
        let (ipp, iop, spacing, inst) = (ds(&ipp), ds(&case.iop), ds(&case.spacing), inst.to_string());
        let bytes = dicom_file(&[
            (8, 0x08, Dv::Text("ORIGINAL\\PRIMARY\\M\\ND")),
            (8, 0x16, Dv::Uid("1.2.840.10008.5.1.4.1.1.4")),
            (8, 0x18, Dv::Uid(&sop)),
            (8, 0x60, Dv::Text("MR")),
            (8, 0x70, Dv::Text("SIEMENS")),
            (8, 0x103E, Dv::Text(case.name)),
            (8, 0x1090, Dv::Text("Prisma")),
            (0x10, 0x20, Dv::Text("P1")),
            (0x18, 0x50, Dv::Text("1.5")),
            (0x18, 0x80, Dv::Text("2300")),
            (0x18, 0x81, Dv::Text("2.98")),
            (0x18, 0x87, Dv::Text("3")),
            (0x18, 0x1030, Dv::Text("t1_mprage")),
            (0x18, 0x1314, Dv::Text("9")),
            (0x20, 0x0D, Dv::Uid("1.2.3")),
            (0x20, 0x0E, Dv::Uid(case.series)),
            (0x20, 0x11, Dv::Text("5")),
            (0x20, 0x13, Dv::Text(&inst)),
            (0x20, 0x32, Dv::Text(&ipp)),
            (0x20, 0x37, Dv::Text(&iop)),
            (0x28, 0x02, Dv::Us(1)),
            (0x28, 0x04, Dv::Text("MONOCHROME2")),
            (0x28, 0x10, Dv::Us(case.rows)),
            (0x28, 0x11, Dv::Us(case.cols)),
            (0x28, 0x30, Dv::Text(&spacing)),
            (0x28, 0x100, Dv::Us(16)),
            (0x28, 0x101, Dv::Us(16)),
            (0x28, 0x102, Dv::Us(15)),
            (0x28, 0x103, Dv::Us(case.signed as u16)),
            (0x28, 0x1052, Dv::Text(case.inter)),
            (0x28, 0x1053, Dv::Text(case.slope)),
            (0x7FE0, 0x10, Dv::Raw(&px)),
        ]);
        let p = dir.join(format!("{k:03}.dcm"));
        std::fs::write(&p, bytes).unwrap();
        paths.push(p);
    }
    paths
}

/// Converts the series in `dir` in process with the pure API: headers -> plan -> every byte of
/// the file through `read_at` and `render_slice`. Returns the plan, the `.nii` and the `.json`.
fn convert(dir: &Path) -> (VolumePlan, Vec<u8>, Vec<u8>) {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files.reverse(); // the order given must not matter
    let bytes: Vec<Vec<u8>> = files.iter().map(|p| std::fs::read(p).unwrap()).collect();
    let infos: Vec<DicomInfo> = bytes.iter().map(|b| dicom::parse_header_sized(b, b.len() as u64).unwrap()).collect();
    let refs: Vec<&DicomInfo> = infos.iter().collect();
    let plan = nifti::plan(&refs).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut nii = vec![0u8; plan.size() as usize];
    let n = plan.read_at(0, &mut nii, |k| nifti::render_slice(&plan, &bytes[plan.order[k]])).unwrap();
    assert_eq!(n as u64, plan.size());
    let json = medfs::derive::bids::sidecar(&plan, &refs);
    (plan, nii, json)
}

const CHECK: &str = r#"
import json, os, subprocess, sys
import numpy as np
import nibabel as nib
import pydicom
import SimpleITK as sitk

root = sys.argv[1]
mode = sys.argv[2]


def renamed(ds):
    """A copy's own series (argv[5]) and instance UIDs."""
    from pydicom.uid import generate_uid
    ds.SeriesInstanceUID = sys.argv[5]
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID

if mode == "rle":
    # An RLE Lossless copy of a series, encoded by pydicom.
    from pydicom.uid import RLELossless
    src, dst = os.path.join(root, sys.argv[3]), os.path.join(root, sys.argv[4])
    os.makedirs(dst, exist_ok=True)
    for f in sorted(os.listdir(src)):
        ds = pydicom.dcmread(os.path.join(src, f))
        renamed(ds)
        ds.compress(RLELossless, ds.pixel_array)
        ds.save_as(os.path.join(dst, f), enforce_file_format=True)
    print(json.dumps({"rle": len(os.listdir(dst))}))
    sys.exit(0)

if mode in ("jpegll", "j2k"):
    # A JPEG Lossless (process 14, selection value 1) copy encoded by libjpeg-turbo, or a
    # lossless JPEG 2000 one encoded by OpenJPEG (both through imagecodecs).
    import imagecodecs
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEG2000Lossless, JPEGLosslessSV1
    src, dst = os.path.join(root, sys.argv[3]), os.path.join(root, sys.argv[4])
    os.makedirs(dst, exist_ok=True)
    for f in sorted(os.listdir(src)):
        ds = pydicom.dcmread(os.path.join(src, f))
        renamed(ds)
        if mode == "jpegll":
            frame = imagecodecs.jpeg8_encode(ds.pixel_array.view(np.uint16), lossless=True, predictor=1)
        else:
            frame = imagecodecs.jpeg2k_encode(ds.pixel_array, level=0, codecformat="J2K", reversible=True)
        ds.PixelData = encapsulate([frame])
        ds["PixelData"].VR = "OB"
        ds.file_meta.TransferSyntaxUID = JPEGLosslessSV1 if mode == "jpegll" else JPEG2000Lossless
        ds.save_as(os.path.join(dst, f), enforce_file_format=True)
    print(json.dumps({mode: len(os.listdir(dst))}))
    sys.exit(0)


if mode == "enhanced":
    # One Enhanced MR multi-frame file of a series' slices, geometry and rescale in the
    # functional groups only.
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid
    src, dst = os.path.join(root, sys.argv[3]), os.path.join(root, sys.argv[4])
    os.makedirs(dst, exist_ok=True)
    dss = [pydicom.dcmread(os.path.join(src, f)) for f in sorted(os.listdir(src))]
    first = dss[0]
    normal = np.cross(np.array(first.ImageOrientationPatient[:3], dtype=float),
                      np.array(first.ImageOrientationPatient[3:], dtype=float))
    # Frames stored top-down along the normal (dcm2niix reads enhanced frames in stored order).
    dss.sort(key=lambda x: -float(np.dot(np.array(x.ImagePositionPatient, dtype=float), normal)))
    ds = Dataset()
    for kw in ["ImageType", "Modality", "Manufacturer", "SeriesDescription", "ManufacturerModelName",
               "PatientID", "RepetitionTime", "EchoTime", "MagneticFieldStrength", "ProtocolName",
               "FlipAngle", "StudyInstanceUID", "SeriesNumber", "Rows", "Columns", "SamplesPerPixel",
               "PhotometricInterpretation", "BitsAllocated", "BitsStored", "HighBit",
               "PixelRepresentation"]:
        setattr(ds, kw, getattr(first, kw))
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.4.1"
    ds.SOPInstanceUID = generate_uid()
    ds.SeriesInstanceUID = sys.argv[5]
    ds.InstanceNumber = 1
    ds.NumberOfFrames = len(dss)
    shared, pm, po, pvt = Dataset(), Dataset(), Dataset(), Dataset()
    pm.PixelSpacing = first.PixelSpacing
    pm.SliceThickness = first.SliceThickness
    po.ImageOrientationPatient = first.ImageOrientationPatient
    pvt.RescaleIntercept, pvt.RescaleSlope, pvt.RescaleType = first.RescaleIntercept, first.RescaleSlope, "US"
    shared.PixelMeasuresSequence = Sequence([pm])
    shared.PlaneOrientationSequence = Sequence([po])
    shared.PixelValueTransformationSequence = Sequence([pvt])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    per = []
    for i, x in enumerate(dss):
        f, pp, fc = Dataset(), Dataset(), Dataset()
        pp.ImagePositionPatient = x.ImagePositionPatient
        fc.StackID = "1"
        fc.InStackPositionNumber = i + 1
        fc.DimensionIndexValues = [1, i + 1]
        f.PlanePositionSequence = Sequence([pp])
        f.FrameContentSequence = Sequence([fc])
        per.append(f)
    ds.PerFrameFunctionalGroupsSequence = Sequence(per)
    ds.PixelData = b"".join(x.pixel_array.tobytes() for x in dss)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    ds.save_as(os.path.join(dst, "frames.dcm"), enforce_file_format=True)
    print(json.dumps({"enhanced": len(dss)}))
    sys.exit(0)


class Frame:
    """One frame of an enhanced multi-frame file, with the slice attributes the check uses."""
    def __init__(self, ds, i, arr):
        self.__dict__.update({k: getattr(ds, k) for k in ["Rows", "Columns", "EchoTime",
            "RepetitionTime", "SeriesDescription", "ImageType", "MagneticFieldStrength",
            "file_meta", "PixelRepresentation"]})
        g = ds.SharedFunctionalGroupsSequence[0]
        f = ds.PerFrameFunctionalGroupsSequence[i]
        self.ImagePositionPatient = f.PlanePositionSequence[0].ImagePositionPatient
        self.ImageOrientationPatient = g.PlaneOrientationSequence[0].ImageOrientationPatient
        self.PixelSpacing = g.PixelMeasuresSequence[0].PixelSpacing
        self.RescaleSlope = g.PixelValueTransformationSequence[0].RescaleSlope
        self.RescaleIntercept = g.PixelValueTransformationSequence[0].RescaleIntercept
        self.frame = arr[i]


def read_slices(d):
    dss = [pydicom.dcmread(os.path.join(d, f)) for f in sorted(os.listdir(d))]
    if len(dss) == 1 and int(dss[0].get("NumberOfFrames", 1)) > 1:
        arr = dss[0].pixel_array
        return [Frame(dss[0], i, arr) for i in range(int(dss[0].NumberOfFrames))]
    return dss


def pixels(x):
    """The slice's stored values, decoded without dicom-rs."""
    if isinstance(x, Frame):
        return x.frame
    if x.file_meta.TransferSyntaxUID in ("1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.4.90"):
        import imagecodecs
        from pydicom.encaps import generate_frames
        frame = next(generate_frames(x.PixelData, number_of_frames=1))
        if x.file_meta.TransferSyntaxUID.endswith(".90"):
            a = imagecodecs.jpeg2k_decode(frame)
        else:
            a = imagecodecs.jpeg8_decode(frame)
        return a.view(np.int16) if x.PixelRepresentation == 1 else a.view(np.uint16)
    return x.pixel_array


report = {}
for case in sys.argv[3:]:
    d = os.path.join(root, case)
    dss = read_slices(d)
    iop = np.array(dss[0].ImageOrientationPatient, dtype=float)
    r, c = iop[:3], iop[3:]
    n = np.cross(r, c)
    # Slices ascending along the normal (what dcm2niix ends with, whatever the numbering).
    dss.sort(key=lambda x: float(np.dot(np.array(x.ImagePositionPatient, dtype=float), n)))
    p0 = np.array(dss[0].ImagePositionPatient, dtype=float)
    p1 = np.array(dss[-1].ImagePositionPatient, dtype=float)
    dr, dc = (float(v) for v in dss[0].PixelSpacing)
    ny, nx, nz = int(dss[0].Rows), int(dss[0].Columns), len(dss)
    # LPS affine of the stored order, from the tags: the slice column from the real positions.
    lps = np.eye(4)
    lps[:3, 0] = r * dc
    lps[:3, 1] = c * dr
    lps[:3, 2] = (p1 - p0) / (nz - 1)
    lps[:3, 3] = p0
    # Rows flipped as dcm2niix does (NIfTI row 0 = DICOM's last row), then LPS -> RAS.
    flip = np.eye(4)
    flip[1, 1] = -1
    flip[1, 3] = ny - 1
    want_aff = np.diag([-1, -1, 1, 1]) @ lps @ flip
    img = nib.load(d + ".nii")
    assert img.shape == (nx, ny, nz), (case, img.shape)
    assert np.allclose(img.affine, want_aff, atol=1e-4), (case, img.affine, want_aff)
    assert img.header["sform_code"] == 1 and img.header["qform_code"] == 1
    assert np.allclose(img.get_qform(), want_aff, atol=2e-3), (case, img.get_qform(), want_aff)
    raw = np.asanyarray(img.dataobj.get_unscaled())
    stack = np.stack([pixels(x) for x in dss], axis=-1)  # (rows, cols, slices)
    want = stack.transpose(1, 0, 2)[:, ::-1, :]
    assert raw.dtype == stack.dtype, (case, raw.dtype, stack.dtype)
    assert np.array_equal(raw, want), case
    slope, inter = float(dss[0].RescaleSlope), float(dss[0].RescaleIntercept)
    assert np.allclose(img.get_fdata(), want * slope + inter), case
    # SimpleITK reads the same volume: voxels (z, y, x order, rescaled) and spacing.
    itk = sitk.ReadImage(d + ".nii")
    assert np.allclose(sitk.GetArrayFromImage(itk).transpose(2, 1, 0), want * slope + inter), ("SimpleITK", case)
    assert np.allclose(itk.GetSpacing(), img.header.get_zooms()[:3], atol=1e-4), ("SimpleITK", case, itk.GetSpacing())
    side = json.load(open(d + ".json"))
    assert side["EchoTime"] == round(float(dss[0].EchoTime) / 1000, 8), side
    assert side["RepetitionTime"] == float(dss[0].RepetitionTime) / 1000, side
    assert side["SeriesDescription"] == dss[0].SeriesDescription, side
    assert side["ImageType"] == list(dss[0].ImageType), side
    assert side["MagneticFieldStrength"] == float(dss[0].MagneticFieldStrength), side
    # dcm2niix over the same files: same affine, same voxels, same sidecar fields.
    exe = os.path.join(os.path.dirname(sys.executable), "dcm2niix")
    assert os.access(exe, os.X_OK), f"{exe} missing: run ./test.sh (pip install dcm2niix)"
    out = os.path.join(root, "dcm2niix", case)
    os.makedirs(out)
    subprocess.run([exe, "-f", "ref", "-o", out, "-z", "n", "-b", "y", d], check=True, capture_output=True)
    ref = nib.load(os.path.join(out, "ref.nii"))
    assert ref.shape == img.shape, (case, ref.shape, img.shape)
    assert np.allclose(ref.affine, img.affine, atol=1e-3), (case, ref.affine, img.affine)
    refraw = np.asanyarray(ref.dataobj.get_unscaled())
    if case == "oblique_frames_rle":
        # dcm2niix (v1.0.20260724) reverses the frames of this top-down RLE Enhanced file but
        # not its affine (the plain copy it gets right); pydicom's frames, sorted by position
        # above, agree with medfs. Its slices are ours in reverse.
        refraw = refraw[:, :, ::-1]
    assert np.array_equal(refraw, raw), case
    assert np.allclose(ref.dataobj.slope, img.dataobj.slope) and np.allclose(ref.dataobj.inter, img.dataobj.inter), case
    rside = json.load(open(os.path.join(out, "ref.json")))
    # dcm2niix writes its own vendor name ("Siemens") and appends what it infers to ImageType
    # ("MAGNITUDE"); medfs writes the DICOM's values.
    same = [k for k in side if k in rside and not k.startswith("Conversion") and k != "Manufacturer"]
    diff = [(k, rside[k], side[k]) for k in same
            if rside[k] != side[k] and not (k == "ImageType" and rside[k][:len(side[k])] == side[k])]
    assert not diff, (case, diff)
    missing = sorted(k for k in rside if k not in side)
    report[case] = {"shape": list(img.shape), "codes": "".join(nib.aff2axcodes(img.affine)),
                    "dtype": str(raw.dtype), "syntax": str(dss[0].file_meta.TransferSyntaxUID),
                    "dcm2niix_keys_agree": sorted(same), "only_dcm2niix": missing}
print(json.dumps(report))
"#;

#[test]
fn nibabel_reads_what_pydicom_reads() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let (a, b) = (30f64.to_radians(), 15f64.to_radians());
    let cases = [
        // Axial, numbered top-down while z goes up: still stored bottom-up (slice axis S).
        Case {
            name: "axial",
            series: "1.2.3.4.1",
            iop: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0],
            origin: [-120.5, -100.25, -40.0],
            along: (0..5).map(|k| 2.5 * k as f64).collect(),
            instance: (0..5).map(|k| 10 - k).collect(),
            rows: 6,
            cols: 8,
            spacing: [0.8, 0.7],
            signed: true,
            slope: "1",
            inter: "-1024",
        },
        // Oblique sagittal-ish, numbered out of order: sorted by position.
        Case {
            name: "oblique",
            series: "1.2.3.4.2",
            iop: [0.0, a.cos(), a.sin(), -b.sin(), -a.sin() * b.cos(), a.cos() * b.cos()],
            origin: [40.0, -90.0, 60.0],
            along: (0..4).map(|k| 1.2 * k as f64).collect(),
            instance: vec![3, 1, 4, 2],
            rows: 5,
            cols: 7,
            spacing: [1.1, 0.9],
            signed: false,
            slope: "0.5",
            inter: "10",
        },
        // Coronal.
        Case {
            name: "coronal",
            series: "1.2.3.4.3",
            iop: [1.0, 0.0, 0.0, 0.0, 0.0, -1.0],
            origin: [-30.0, 12.0, 50.0],
            along: (0..3).map(|k| -3.0 * k as f64).collect(),
            instance: vec![1, 2, 3],
            rows: 4,
            cols: 4,
            spacing: [2.0, 2.0],
            signed: true,
            slope: "1",
            inter: "0",
        },
    ];
    for case in &cases {
        write_series(&root.join(case.name), case);
    }
    // Copies under new series UIDs: (mode, from, to, SeriesInstanceUID, files written).
    let copies = [
        ("rle", "axial", "axial_rle", "1.2.3.4.11", 5),
        ("jpegll", "axial", "axial_jpegll", "1.2.3.4.12", 5),
        ("j2k", "coronal", "coronal_j2k", "1.2.3.4.13", 3),
        ("enhanced", "oblique", "oblique_frames", "1.2.3.4.14", 4),
        ("rle", "oblique_frames", "oblique_frames_rle", "1.2.3.4.15", 1),
    ];
    for (mode, from, to, uid, n) in copies {
        let out = common::py(CHECK, &[root, Path::new(mode), Path::new(from), Path::new(to), Path::new(uid)]);
        assert!(out.contains(&format!("\"{mode}\": {n}")), "{out}");
    }
    // Every series in one zip, mounted: the generic DICOM dataset `series` lists each volume's
    // `.nii` and `.json` in its series folder (a multi-frame file's named after the file).
    let mut series: Vec<(&str, &str, &str)> = cases.iter().map(|c| (c.name, c.series, c.series)).collect();
    for (_, _, to, uid, _) in &copies[..3] {
        series.push((to, uid, uid));
    }
    for (_, _, to, uid, _) in &copies[3..] {
        series.push((to, uid, "frames"));
    }
    let mut entries = Vec::new();
    for (name, _, _) in &series {
        for e in std::fs::read_dir(root.join(name)).unwrap() {
            let p = e.unwrap().path();
            entries.push(entry(
                &format!("{name}/{}", p.file_name().unwrap().to_string_lossy()),
                std::fs::read(&p).unwrap(),
            ));
        }
    }
    // A lone image is no volume: no .nii, a debug line saying why.
    let single = Case { name: "single", series: "1.2.3.4.9", along: vec![0.0], instance: vec![1], ..cases[2].clone() };
    for p in write_series(&root.join("single"), &single) {
        entries
            .push(entry(&format!("single/{}", p.file_name().unwrap().to_string_lossy()), std::fs::read(&p).unwrap()));
    }
    let zip = root.join("series.zip");
    write_zip(&zip, &entries, ZipMethod::Deflated).unwrap();
    let mnt = root.join("mnt");
    let build_log;
    // Where each case's volume is (its path below the dataset), from the study's metadata.json:
    // the `.nii`'s first input's source path starts with the case's folder in the zip.
    let mut nii_of: std::collections::HashMap<String, String> = Default::default();
    let single_folder;
    {
        let m = mount(&[&zip], &mnt, &["-vv"]);
        build_log = m.stderr.clone();
        let patient = m.path("series/P1");
        let studies: Vec<_> = std::fs::read_dir(&patient)
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| e.file_type().unwrap().is_dir())
            .map(|e| e.file_name())
            .collect();
        assert_eq!(studies.len(), 1, "{studies:?}");
        let study_name = studies[0].to_string_lossy().into_owned();
        let study = patient.join(&study_name);
        let meta: serde_json::Value =
            serde_json::from_slice(&std::fs::read(study.join("metadata.json")).unwrap()).unwrap();
        let case_of = |rel: &str| -> String {
            let src = meta["source"][rel]["path"].as_str().unwrap_or_else(|| panic!("{rel}: {meta}"));
            src.split('/').next().unwrap().to_string()
        };
        // The study's preview: an 8-bit PNG of the first volume's middle slice, downscaled.
        assert_eq!(meta["derived"]["preview.png"]["kind"], "preview", "{meta}");
        let preview = read_checked(&study.join("preview.png"));
        assert_eq!(&preview[..8], b"\x89PNG\r\n\x1a\n");
        for (name, d) in meta["derived"].as_object().unwrap() {
            if name == "preview.png" {
                continue;
            }
            assert_eq!(d["kind"], "nifti", "{meta}");
            if let Some(stem) = name.strip_suffix(".nii") {
                let from = d["from"][0].as_str().unwrap();
                nii_of.insert(case_of(from), format!("P1/{study_name}/{stem}"));
            }
        }
        let listed = walk(&study);
        let single_dcm = listed.iter().find(|rel| meta["source"][rel.as_str()]["path"] == "single/000.dcm").unwrap();
        single_folder = format!("P1/{study_name}/{}", single_dcm.rsplit_once('/').unwrap().0);
        assert!(!nii_of.contains_key("single"), "a lone image has no .nii: {nii_of:?}");
        // Eight readers at once on a volume nobody read yet: the same bytes (each part made
        // once: the log below).
        let first = m.path(&format!("series/{}.nii", nii_of["axial"]));
        let reads: Vec<Vec<u8>> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..8).map(|_| s.spawn(|| std::fs::read(&first).unwrap())).collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(reads.windows(2).all(|w| w[0] == w[1]), "concurrent readers got different bytes");
        for (name, _, stem) in &series {
            let base = nii_of.get(*name).unwrap_or_else(|| panic!("no .nii for {name}: {nii_of:?}"));
            // Named after its series folder, or after the multi-frame file.
            let folder = base.rsplit_once('/').unwrap().0.rsplit('/').next().unwrap();
            let want = if *stem == "frames" { "frames" } else { folder };
            assert!(base.ends_with(&format!("/{want}")), "{base}");
            for ext in ["nii", "json"] {
                let bytes = read_checked(&m.path(&format!("series/{base}.{ext}")));
                std::fs::write(root.join(format!("{name}.{ext}")), &bytes).unwrap();
            }
        }
        // Listed where the originals are: a labels.csv row (metadata.json: above).
        let csv = std::fs::read_to_string(m.path("series/labels.csv")).unwrap();
        assert!(csv.lines().any(|l| l.starts_with(&format!("{}.nii,P1,", nii_of["axial"]))), "{csv}");
    }
    // A warm mount loads the persisted tree (specs and sizes) and serves the same bytes.
    {
        let m = mount(&[&zip], &mnt, &["-v"]);
        let again = read_checked(&m.path(&format!("series/{}.nii", nii_of["oblique_frames"])));
        assert!(again == std::fs::read(root.join("oblique_frames.nii")).unwrap(), "warm mount: other bytes");
        let log = std::fs::read_to_string(mnt.with_extension("log")).unwrap() + &m.stderr;
        assert!(log.contains("loaded from"), "the warm mount loads the persisted tree: {log}");
    }
    // Header and the one slice group of the first volume: each rendered once for 8 readers.
    let log = std::fs::read_to_string(mnt.with_extension("log")).unwrap() + &build_log;
    let why = |l: &str| l.contains(&format!("{single_folder}/")) && l.ends_with(": no .nii: 1 slice(s)");
    assert!(log.lines().any(why), "{single_folder}: {log}");
    let needle = format!("derived series/{}.nii: part ", nii_of["axial"]);
    let mut parts: Vec<&str> = log.lines().filter_map(|l| l.split_once(&needle).map(|(_, rest)| rest)).collect();
    parts.sort();
    assert_eq!(parts, ["0 of 2 rendered (nifti)", "1 of 2 rendered (nifti)"], "{log}");
    // The pure API in process gives the bytes the mount served.
    for (name, _, stem) in &series {
        if *stem == "frames" {
            continue;
        }
        let (plan, nii, json) = convert(&root.join(name));
        assert!(nii == std::fs::read(root.join(format!("{name}.nii"))).unwrap(), "{name}.nii");
        assert_eq!(json, std::fs::read(root.join(format!("{name}.json"))).unwrap(), "{name}.json");
        assert!(plan.dim[2] >= 3);
    }
    let names: Vec<&str> = series.iter().map(|s| s.0).collect();
    let mut args: Vec<&Path> = vec![root, Path::new("check")];
    args.extend(names.iter().map(Path::new));
    let out = common::py(CHECK, &args);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    // An axial stack is LAS whatever its numbering, as dcm2niix writes it; the RLE copy too.
    assert_eq!(v["axial"]["codes"], "LAS", "{v}");
    assert_eq!(v["axial_rle"]["codes"], "LAS", "{v}");
    assert_eq!(v["axial_rle"]["syntax"], "1.2.840.10008.1.2.5", "{v}");
    // The sidecar keys both write (and that agree) are not a vacuous few.
    let agree = v["oblique_frames"]["dcm2niix_keys_agree"].as_array().unwrap();
    for k in ["EchoTime", "RepetitionTime", "ImageOrientationPatientDICOM", "SeriesNumber", "FlipAngle"] {
        assert!(agree.iter().any(|x| x == k), "{k}: {v}");
    }
    assert_eq!(v["axial_jpegll"]["syntax"], "1.2.840.10008.1.2.4.70", "{v}");
    assert_eq!(v["axial_jpegll"]["codes"], "LAS", "{v}");
    assert_eq!(v["coronal_j2k"]["syntax"], "1.2.840.10008.1.2.4.90", "{v}");
    assert_eq!(v["coronal_j2k"]["codes"], v["coronal"]["codes"], "{v}");
    assert_eq!(v["oblique"]["dtype"], "uint16", "{v}");
    // The multi-frame copy of the oblique series is the same volume.
    assert_eq!(v["oblique_frames"]["codes"], v["oblique"]["codes"], "{v}");
    assert_eq!(v["oblique_frames"]["shape"], v["oblique"]["shape"], "{v}");
    assert_eq!(v["oblique_frames_rle"]["syntax"], "1.2.840.10008.1.2.5", "{v}");
    assert_eq!(v["axial"]["shape"], serde_json::json!([8, 6, 5]), "{v}");
    eprintln!("derive_nifti: {v}");
}
