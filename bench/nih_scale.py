#!/usr/bin/env python3
"""NIH ChestX-ray14 at full scale (112,120 images in 12 tar.gz + the 112k-row label CSV, tiny
image bytes): time for `medfs mount` to be ready from a warm index (issue 4: under 2 s), next to
the cold first mount, in one run.

Usage: python3 bench/nih_scale.py [--work /tmp/medfs-bench/nih-scale]
"""
import argparse, io, os, random, subprocess, tarfile, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MEDFS = os.path.join(ROOT, "target", "release", "medfs")
FINDINGS = ["Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumonia",
            "Pneumothorax", "Consolidation", "Edema", "Emphysema", "Fibrosis", "Pleural_Thickening", "Hernia"]


def generate(work):
    rng = random.Random(3)
    images = []
    patient, follow = 1, 0
    while len(images) < 112_120:
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


def timed_mount(work, idx, mnt):
    subprocess.run(["sync"])
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")
    t = time.monotonic()
    subprocess.run([MEDFS, "mount", "--index-dir", idx, work, mnt], check=True)
    ready = time.monotonic() - t
    n = sum(1 for _ in os.scandir(os.path.join(mnt, "chestxray14")))
    subprocess.run([MEDFS, "unmount", mnt], check=True)
    return ready, n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", default="/tmp/medfs-bench/nih-scale")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    if not os.path.exists(os.path.join(a.work, "test_list.txt")):
        generate(a.work)
    idx = tempfile.mkdtemp(prefix="medfs-nih-idx-")
    mnt = tempfile.mkdtemp(prefix="medfs-nih-mnt-")
    cold, n = timed_mount(a.work, idx, mnt)
    warm, n2 = timed_mount(a.work, idx, mnt)
    assert n == n2
    print("| mount of 12 tar.gz + CSV (112,120 images) | ready s |")
    print("|---|---|")
    print(f"| cold (lists and indexes the archives) | {cold:.2f} |")
    print(f"| warm (from the persistent index) | {warm:.2f} |")
    print(f"\n{n - 2} patients under /chestxray14 (plus dataset.json, labels.csv)")


if __name__ == "__main__":
    main()
