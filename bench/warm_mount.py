#!/usr/bin/env python3
"""Issue 11: a warm `medfs mount` (persistent indexes and the persisted tree in place) of two
collection-scale pools, with datasets on: the time until the mount answers and the daemon's
idle RSS, for each medfs binary given, in one run.

Pools (generated once under --work, deterministic, tiny member bytes):
  nih    NIH ChestX-ray14 look-alike: 112,120 PNG members in 12 tar.gz, the label CSV and the
         split lists (as bench/nih_scale.py), times --scale;
  dicom  generic DICOM: 300,000 small DICOM files in 30 deflated zips, no profile claims them
         (organized by tags), times --scale;
  mura   (only when asked: --pools nih,dicom,mura) a MURA look-alike zip of 10,000 members and
         its label CSVs, times --scale.

Per binary and pool: one cold mount (lists, indexes, scans, organizes and saves), unmounted,
then --runs warm mounts, each after dropping the page cache: `medfs mount` ready time, and the
daemon's VmRSS after it has been idle for a second (nothing read). Medians are printed with the
goals (warm ready NIH <= 0.3 s, 300k DICOM <= 0.5 s; idle RSS <= 300 bytes per member + 64 MiB),
and a check that both binaries show the same number of names at the top of the dataset.

Usage (root: drops the page cache):
  python3 bench/warm_mount.py [--scale 1.0] [--runs 3] [--pools nih,dicom]
                              [--medfs before=PATH --medfs after=PATH]
Default binary: target/release/medfs (as "medfs").
"""
import argparse, io, os, random, shutil, statistics, subprocess, sys, tarfile, tempfile, time, zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from dicom_scan import dicom  # noqa: E402  (the same generated DICOM files as the scan bench)

MiB = 1 << 20
FINDINGS = ["Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumonia",
            "Pneumothorax", "Consolidation", "Edema", "Emphysema", "Fibrosis", "Pleural_Thickening", "Hernia"]


def gen_nih(work, n):
    """bench/nih_scale.py's pool with `n` images."""
    rng = random.Random(3)
    images = []
    patient, follow = 1, 0
    while len(images) < n:
        images.append((f"{patient:08d}_{follow:03d}.png", patient, follow))
        if rng.random() < 0.7:
            patient, follow = patient + 1, 0
        else:
            follow += 1
    per = (len(images) + 11) // 12
    for k in range(12):
        with tarfile.open(os.path.join(work, f"images_{k + 1:03d}.tar.gz"), "w:gz", compresslevel=1) as t:
            for name, _, _ in images[k * per:(k + 1) * per]:
                data = b"\x89PNG\r\n\x1a\n" + name.encode() * 4
                info = tarfile.TarInfo(f"images/{name}")
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
    with open(os.path.join(work, "Data_Entry_2017_v2020.csv"), "w") as f:
        f.write("Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Sex,View Position,"
                "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]\n")
        for name, p, fu in images:
            finding = "No Finding" if rng.random() < 0.5 else "|".join(sorted(rng.sample(FINDINGS, rng.randint(1, 3))))
            f.write(f"{name},{finding},{fu},{p},{rng.randint(1, 90)},{rng.choice('MF')},PA,2500,2048,0.143,0.143\n")
    names = [n for n, _, _ in images]
    with open(os.path.join(work, "train_val_list.txt"), "w") as f:
        f.write("\n".join(names[: len(names) * 4 // 5]) + "\n")
    with open(os.path.join(work, "test_list.txt"), "w") as f:
        f.write("\n".join(names[len(names) * 4 // 5:]) + "\n")
    return n


def gen_dicom(work, n, zips=30):
    """`n` DICOM files (100 slices a series, 10 series a study, 10 studies a patient) in `zips`
    deflated zips."""
    per = (n + zips - 1) // zips
    for k in range(zips):
        with zipfile.ZipFile(os.path.join(work, f"collection_{k + 1:02d}.zip"), "w", zipfile.ZIP_DEFLATED,
                             compresslevel=1) as z:
            for i in range(k * per, min(n, (k + 1) * per)):
                p, st, se = i // 10000, (i // 1000) % 10, (i // 100) % 10
                study = f"1.2.826.0.1.3680043.{p}.{st}"
                series = f"{study}.{se}"
                z.writestr(f"PT{p:05d}/{study}/{series}/1-{i % 100 + 1:03d}.dcm",
                           dicom(f"PT{p:05d}", study, series, i))
    return n


def gen_mura(work, n):
    """A MURA look-alike zip of `n` tiny PNG members (4 images a study) with its label CSVs."""
    with zipfile.ZipFile(os.path.join(work, "MURA-v1.1.zip"), "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        labeled = {"train": [], "valid": []}
        for i in range(n // 4):
            split = "valid" if i % 10 == 0 else "train"
            label = "positive" if i % 3 == 0 else "negative"
            study = f"MURA-v1.1/{split}/XR_WRIST/patient{i // 2:05d}/study{i % 2 + 1}_{label}/"
            labeled[split].append(f"{study},{int(label == 'positive')}\n")
            for k in range(4):
                z.writestr(f"{study}image{k + 1}.png", b"\x89PNG\r\n\x1a\n" + study.encode())
        for split, rows in labeled.items():
            z.writestr(f"MURA-v1.1/{split}_labeled_studies.csv", "".join(rows))
    return n


def drop():
    subprocess.run(["sync"])
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def daemon_pid(mnt):
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            args = open(f"/proc/{d}/cmdline", "rb").read().split(b"\0")
        except OSError:
            continue
        if args and b"medfs" in args[0] and b"mount" in args and mnt.encode() in args:
            return int(d)
    return None


def rss(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return None


def mount(medfs, work, idx, mnt, dataset):
    """Mounts, returns (ready seconds, idle RSS bytes, names in the dataset folder)."""
    t = time.monotonic()
    subprocess.run([medfs, "mount", "--index-dir", idx, work, mnt], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ready = time.monotonic() - t
    try:
        pid = daemon_pid(mnt)
        time.sleep(1.0)
        idle = rss(pid) if pid else None
        n = sum(1 for _ in os.scandir(os.path.join(mnt, dataset)))
    finally:
        # A failed check (a dataset not where expected) must not leave the mount behind.
        subprocess.run([medfs, "unmount", mnt], check=True)
    return ready, idle, n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--pools", default="nih,dicom")
    ap.add_argument("--medfs", action="append", default=[], help="NAME=PATH, repeatable")
    ap.add_argument("--work", default="/tmp/medfs-bench/warm-mount")
    ap.add_argument("--generate-only", action="store_true")
    a = ap.parse_args()
    binaries = [m.split("=", 1) for m in a.medfs] or [["medfs", os.path.join(ROOT, "target", "release", "medfs")]]
    pools = []
    for pool in a.pools.split(","):
        n = int({"nih": 112_120, "dicom": 300_000, "mura": 10_000}[pool] * a.scale)
        work = os.path.join(a.work, f"{pool}-{n}")
        if not os.path.exists(os.path.join(work, ".done")):
            shutil.rmtree(work, ignore_errors=True)
            os.makedirs(work)
            print(f"generating {pool} pool of {n} members in {work}", file=sys.stderr)
            {"nih": gen_nih, "dicom": gen_dicom, "mura": gen_mura}[pool](work, n)
            open(os.path.join(work, ".done"), "w").close()
        # The marker is not a source: mount a folder that holds only the pool.
        pools.append((pool, n, work, {"nih": "chestxray14", "dicom": "pool", "mura": "mura"}[pool]))
    for pool, n, work, dataset in pools:
        src = os.path.join(work, "pool")
        if not os.path.isdir(src):
            os.makedirs(src)
            for f in os.listdir(work):
                if f not in (".done", "pool"):
                    os.rename(os.path.join(work, f), os.path.join(src, f))
    if a.generate_only:
        return
    rows = []
    for pool, n, work, dataset in pools:
        src = os.path.join(work, "pool")
        for name, medfs in binaries:
            idx = tempfile.mkdtemp(prefix="medfs-warm-idx-")
            mnt = tempfile.mkdtemp(prefix="medfs-warm-mnt-")
            drop()
            cold, cold_rss, shown = mount(medfs, src, idx, mnt, dataset)
            warm = []
            for _ in range(a.runs):
                drop()
                warm.append(mount(medfs, src, idx, mnt, dataset))
            assert all(w[2] == shown for w in warm), (shown, warm)
            ready = statistics.median(w[0] for w in warm)
            idle = statistics.median(w[1] for w in warm)
            rows.append((pool, n, name, cold, cold_rss, ready, idle, shown))
            print(f"{pool} {name}: cold {cold:.2f} s, warm {[round(w[0], 3) for w in warm]} s, "
                  f"idle RSS {[round(w[1] / MiB, 1) for w in warm]} MiB", file=sys.stderr)
            shutil.rmtree(idx, ignore_errors=True)
            os.rmdir(mnt)
    print(f"\nwarm `medfs mount`, datasets on, page cache dropped, medians of {a.runs} (scale {a.scale})\n")
    print("| pool | members | binary | cold ready s | warm ready s | idle RSS MiB | bytes/member over 64 MiB "
          "| goal RSS MiB | names in dataset |")
    print("|---|---|---|---|---|---|---|---|---|")
    for pool, n, name, cold, cold_rss, ready, idle, shown in rows:
        per = (idle - 64 * MiB) / n
        goal = (300 * n + 64 * MiB) / MiB
        print(f"| {pool} | {n:,} | {name} | {cold:.2f} | {ready:.3f} | {idle / MiB:.1f} | {per:.0f} | {goal:.0f} "
              f"| {shown} |")
    for pool in {r[0] for r in rows}:
        shown = {r[7] for r in rows if r[0] == pool}
        assert len(shown) == 1, f"{pool}: binaries disagree on the dataset folder: {shown}"


if __name__ == "__main__":
    main()
