#!/usr/bin/env python3
"""Random 4 KiB reads inside one big deflated zip member (a 4D fMRI / CT volume), through a
medfs mount, against the same member extracted on local disk, in one run (issue 3).

Usage (root: drops the page cache):  python3 bench/bigmember.py [--mib 512] [--reads 2000]
"""
import argparse, os, random, subprocess, sys, tempfile, time, zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MEDFS = os.path.join(ROOT, "target", "release", "medfs")


def drop_caches():
    subprocess.run(["sync"])
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def volume(path, mib):
    """Noise with 4 bits of entropy per byte: deflates about 1.8x, like real CT/fMRI volumes."""
    table = bytes((i & 0x0F) + 0x40 for i in range(256))
    with open(path, "wb") as f:
        for _ in range(mib):
            f.write(os.urandom(1 << 20).translate(table))


def random_reads(path, size, n, seed):
    rng = random.Random(seed)
    offs = [rng.randrange(0, size - 4096) & ~4095 for _ in range(n)]
    fd = os.open(path, os.O_RDONLY)
    t = time.monotonic()
    for o in offs:
        assert len(os.pread(fd, 4096, o)) == 4096
    el = time.monotonic() - t
    os.close(fd)
    return n / el


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=512)
    ap.add_argument("--reads", type=int, default=2000)
    ap.add_argument("--work", default="/tmp/medfs-bench/bigmember")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    raw = os.path.join(a.work, "volume.nii")
    zpath = os.path.join(a.work, f"fmri_{a.mib}MiB.zip")
    if not os.path.exists(zpath):
        print(f"generating {a.mib} MiB volume and its zip ...", file=sys.stderr)
        volume(raw, a.mib)
        with zipfile.ZipFile(zpath, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as z:
            z.write(raw, "sub-01/func/bold.nii")
    size = a.mib << 20
    mnt = tempfile.mkdtemp(prefix="medfs-bigmember-")
    idx = tempfile.mkdtemp(prefix="medfs-bigmember-idx-")
    drop_caches()
    subprocess.run([MEDFS, "mount", "--index-dir", idx, zpath, mnt], check=True)
    try:
        member = os.path.join(mnt, "_archives", os.path.basename(zpath), "sub-01/func/bold.nii")
        t = time.monotonic()
        fd = os.open(member, os.O_RDONLY)
        os.pread(fd, 4096, size // 2)
        first = time.monotonic() - t
        os.close(fd)
        drop_caches()
        medfs_rate = random_reads(member, size, a.reads, 1)
    finally:
        subprocess.run([MEDFS, "unmount", mnt])
    # Remount: the member's seek points come from the index folder, no first pass.
    drop_caches()
    subprocess.run([MEDFS, "mount", "--index-dir", idx, zpath, mnt], check=True)
    try:
        t = time.monotonic()
        fd = os.open(member, os.O_RDONLY)
        os.pread(fd, 4096, size // 3)
        first_remount = time.monotonic() - t
        os.close(fd)
    finally:
        subprocess.run([MEDFS, "unmount", mnt])
    drop_caches()
    disk_rate = random_reads(raw, size, a.reads, 1)
    print(f"| what | random 4 KiB reads/s | ratio |")
    print(f"|---|---|---|")
    print(f"| extracted on disk | {disk_rate:.0f} | 1.00 |")
    print(f"| medfs (after the first pass) | {medfs_rate:.0f} | {medfs_rate / disk_rate:.2f} |")
    print(f"\nfirst random read (completes the indexing pass over {a.mib} MiB): {first:.2f} s")
    print(f"first random read after a remount (seek points from the index): {first_remount * 1000:.1f} ms")


if __name__ == "__main__":
    main()
