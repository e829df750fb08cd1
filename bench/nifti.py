#!/usr/bin/env python3
"""Issue 12: a derived NIfTI through the mount against dcm2niix on the extracted files, in one run.

Writes (once, under --work) a CT series of --slices 512x512 int16 slices with pydicom, zipped
(deflated) and extracted beside it. Per rep, page cache dropped before each timing:
  - medfs: a cold mount of the zip (datasets on); time to the first byte of the series' `.nii`
    and to its last byte, read front to back in 1 MiB pieces;
  - dcm2niix (`-z n`, uncompressed NIfTI) converting the extracted series folder;
and checks that both volumes have the same voxels (nibabel). Prints medians and ratios.

Usage (root): python3 bench/nifti.py [--slices 200] [--reps 3] [--medfs target/release/medfs]
Needs numpy, pydicom, nibabel and dcm2niix (PyPI) in the Python that runs it.
"""
import argparse
import glob
import os
import shutil
import statistics
import subprocess
import tempfile
import time
import zipfile

import nibabel
import numpy as np
import pydicom
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def drop():
    subprocess.run(["sync"], check=True)
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def write_series(folder, n):
    os.makedirs(folder, exist_ok=True)
    study, series = generate_uid(), generate_uid()
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:512, 0:512]
    for i in range(n):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
        ds.Modality, ds.PatientID, ds.StudyDate = "CT", "BENCH-0001", "20200101"
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SeriesNumber, ds.InstanceNumber = study, series, 2, i + 1
        ds.ImagePositionPatient = [-200.0, -180.0, -100.0 + 1.25 * i]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing, ds.SliceThickness = [0.7, 0.7], 1.25
        ds.Rows = ds.Columns = 512
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope = -1024, 1
        body = ((xx - 256) ** 2 + (yy - 256) ** 2 < (200 - abs(i - n / 2) / 2) ** 2) * 1000
        pix = (body + rng.integers(0, 60, (512, 512))).astype(np.int16)
        ds.PixelData = pix.tobytes()
        ds.save_as(os.path.join(folder, f"1-{i + 1:03d}.dcm"), enforce_file_format=True)


def timed_read(path):
    """Seconds to the first byte and to the last, reading 1 MiB pieces; bytes read."""
    t0 = time.monotonic()
    with open(path, "rb", buffering=0) as f:
        first = f.read(1)
        t1 = time.monotonic()
        n = len(first)
        while True:
            b = f.read(1 << 20)
            if not b:
                break
            n += len(b)
    return t1 - t0, time.monotonic() - t0, n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--slices", type=int, default=200)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--work", default="/tmp/medfs-bench/nifti")
    ap.add_argument("--medfs", default=os.path.join(ROOT, "target/release/medfs"))
    a = ap.parse_args()
    src = os.path.join(a.work, f"series-{a.slices}")
    zpath = os.path.join(a.work, f"ct-{a.slices}.zip")
    if not os.path.exists(zpath):
        write_series(os.path.join(src, "BENCH-CT", "series"), a.slices)
        with zipfile.ZipFile(zpath + ".tmp", "w", zipfile.ZIP_DEFLATED) as z:
            for p in sorted(glob.glob(os.path.join(src, "BENCH-CT", "series", "*.dcm"))):
                z.write(p, os.path.relpath(p, src))
        os.rename(zpath + ".tmp", zpath)
    dcm_dir = os.path.join(src, "BENCH-CT", "series")
    dcm2niix = shutil.which("dcm2niix") or os.path.join(os.path.dirname(os.path.realpath(os.sys.executable)), "dcm2niix")
    rows = {"medfs first byte": [], "medfs whole .nii": [], "dcm2niix": []}
    size = None
    for rep in range(a.reps):
        with tempfile.TemporaryDirectory() as tmp:
            mnt, idx, out = (os.path.join(tmp, d) for d in ("mnt", "idx", "out"))
            for d in (mnt, out):
                os.makedirs(d)
            drop()
            subprocess.run([a.medfs, "mount", "--index-dir", idx, zpath, mnt], check=True,
                           stderr=subprocess.DEVNULL)
            try:
                nii = [p for p in glob.glob(os.path.join(mnt, "**", "*.nii"), recursive=True)
                       if "/_archives/" not in p]
                if len(nii) != 1:
                    raise SystemExit(f"nifti.py: expected one .nii in the mount, found {nii}")
                drop()
                first, whole, n = timed_read(nii[0])
                size = n
                if n != os.stat(nii[0]).st_size:
                    raise SystemExit("nifti.py: st_size is not the bytes read")
                rows["medfs first byte"].append(first)
                rows["medfs whole .nii"].append(whole)
                if rep == 0:
                    ours = np.asanyarray(nibabel.load(nii[0]).dataobj)
            finally:
                subprocess.run([a.medfs, "unmount", mnt], check=True)
            drop()
            t0 = time.monotonic()
            subprocess.run([dcm2niix, "-z", "n", "-o", out, "-f", "vol", dcm_dir], check=True,
                           stdout=subprocess.DEVNULL)
            rows["dcm2niix"].append(time.monotonic() - t0)
            if rep == 0:
                theirs = np.asanyarray(nibabel.load(os.path.join(out, "vol.nii")).dataobj)
                if ours.shape != theirs.shape or not np.array_equal(ours, theirs):
                    raise SystemExit("nifti.py: medfs's voxels differ from dcm2niix's")
    med = {k: statistics.median(v) for k, v in rows.items()}
    print(f"{a.slices} slices of 512x512 int16, .nii of {size:,} bytes, medians of {a.reps} (page cache dropped):")
    for k, v in med.items():
        print(f"  {k:18} {v:7.3f} s")
    print(f"  medfs whole .nii / dcm2niix: {med['medfs whole .nii'] / med['dcm2niix']:.2f}x the time; "
          f"first byte {med['dcm2niix'] / med['medfs first byte']:.0f}x sooner than dcm2niix's output")


if __name__ == "__main__":
    main()
