#!/usr/bin/env python3
"""Issue 5: the DICOM header scan of 100,000 small DICOM members in a zip, cold, in members/s,
next to the time to just read the same members' bytes (Python zipfile), in one run.

Usage (root: drops the page cache): python3 bench/dicom_scan.py [--n 100000]
"""
import argparse, os, re, struct, subprocess, tempfile, time, zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MEDFS = os.path.join(ROOT, "target", "release", "medfs")


def element(tag, vr, value):
    g, e = tag
    if len(value) % 2:
        value += b" " if vr in (b"CS", b"LO", b"SH", b"DA", b"PN", b"DS", b"IS") else b"\0"
    if vr in (b"OB", b"OW", b"SQ", b"UN", b"UT"):
        return struct.pack("<HH2sHI", g, e, vr, 0, len(value)) + value
    return struct.pack("<HH2sH", g, e, vr, len(value)) + value


def dicom(patient, study, series, instance):
    sop = f"{series}.{instance}".encode()
    meta = element((2, 0x10), b"UI", b"1.2.840.10008.1.2.1\0") + element((2, 3), b"UI", sop)
    ds = b"".join([
        element((8, 0x16), b"UI", b"1.2.840.10008.5.1.4.1.1.2\0"), element((8, 0x18), b"UI", sop),
        element((8, 0x20), b"DA", b"20200101"), element((8, 0x60), b"CS", b"CT"),
        element((0x10, 0x20), b"LO", patient.encode()), element((0x20, 0x0D), b"UI", study.encode()),
        element((0x20, 0x0E), b"UI", series.encode()), element((0x20, 0x13), b"IS", str(instance).encode()),
        element((0x28, 0x10), b"US", struct.pack("<H", 8)), element((0x28, 0x11), b"US", struct.pack("<H", 8)),
        element((0x7FE0, 0x10), b"OW", bytes(range(128)) * 1),
    ])
    group_len = element((2, 0), b"UL", struct.pack("<I", len(meta)))
    return b"\0" * 128 + b"DICM" + group_len + meta + ds


def drop():
    subprocess.run(["sync"])
    open("/proc/sys/vm/drop_caches", "w").write("3\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--work", default="/tmp/medfs-bench/dicom-scan")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    zpath = os.path.join(a.work, f"tcia_{a.n}.zip")
    if not os.path.exists(zpath):
        with zipfile.ZipFile(zpath, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as z:
            for i in range(a.n):
                p, st, se = i // 1000, (i // 100) % 10, (i // 10) % 10
                study = f"1.2.3.{p}.{st}"
                series = f"{study}.{se}"
                z.writestr(f"LIDC-IDRI/P{p:04d}/{study}/{series}/1-{i % 10 + 1:03d}-{i}.dcm", dicom(f"P{p:04d}", study, series, i))
    drop()
    t = time.monotonic()
    n = 0
    with zipfile.ZipFile(zpath) as z:
        for info in z.infolist():
            n += len(z.read(info))
    read_s = time.monotonic() - t
    idx = tempfile.mkdtemp(prefix="medfs-dicom-idx-")
    drop()
    out = subprocess.run([MEDFS, "-v", "index", "--index-dir", idx, zpath], capture_output=True, text=True, check=True)
    m = re.search(r"(\d+) DICOM headers found among (\d+) candidates in ([0-9.]+) s", out.stderr)
    found, cands, scan_s = int(m.group(1)), int(m.group(2)), float(m.group(3))
    print("| 100k small DICOM members in a zip (cold) | seconds | members/s |")
    print("|---|---|---|")
    print(f"| medfs header scan ({found} of {cands} members are DICOM) | {scan_s:.2f} | {found / scan_s:,.0f} |")
    print(f"| reading every member's bytes (Python zipfile) | {read_s:.2f} | {a.n / read_s:,.0f} |")


if __name__ == "__main__":
    main()
