#!/usr/bin/env python3
"""Parallel decode, read-ahead, request sizes and the DICOM header scan (issue 11, items 3-4),
in one run: two medfs binaries (before / after) against the extracted files, `unzip -p`,
Python's zlib and `zcat` on the same data.

Usage (root: drops the page cache, writes the mount's bdi read_ahead_kb):
  python3 bench/decode.py --before /tmp/medfs-before [--after target/release/medfs] [--reps 3]

Data (generated once under /tmp/medfs-bench/decode/, about 1 min):
- vol.zip: one 256 MiB member of 4-bit noise, deflated level 6 (ratio ~1.8, like CT volumes);
  vol.raw.gz the same bytes through gzip -6 (not .nii.gz: medfs shows those as they are);
  vol.nii extracted;
- small.zip: 2,000 deflated members of 60-260 KB (random whole-file reads), extracted to small/;
- dicom.zip: 1,200 DICOM members of 0.5 MB (header + 4-bit-noise pixel data), deflated.

Rows (each the median of --reps runs, page cache dropped before each):
- sequential 256 MiB member: first read of a fresh mount (the indexing pass), second read after
  a remount (seek points from the index, nothing cached), third read in the same mount; with
  `--cache-size 64M` too, where the first pass's blocks cannot stay; the same for vol.raw.gz;
- random whole-file reads of small.zip's members (1 and 8 threads), files/s;
- the DICOM zip's first mount with datasets on and off: seconds to ready, daemon RSS after it;
- the kernel's bdi readahead 128 KiB (default) against 1 MiB (`--ra-kb`), sequential and random.
The daemon's peak RSS (VmHWM) is given per row. Ratios are medfs / baseline (> 1: medfs faster).
"""
import argparse, concurrent.futures, os, random, shutil, statistics, subprocess, sys, tempfile, time, zipfile, zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dicom_scan import dicom  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = "/tmp/medfs-bench/decode"
MIB = 1 << 20


def drop():
    subprocess.run(["sync"])
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def noise(n, rng):
    table = bytes((i & 0x0F) + 0x40 for i in range(256))
    return rng.randbytes(n).translate(table)


def make_data():
    os.makedirs(WORK, exist_ok=True)
    rng = random.Random(11)
    vol = os.path.join(WORK, "vol.nii")
    if not os.path.exists(os.path.join(WORK, "vol.zip")):
        print("generating vol.nii / vol.zip / vol.raw.gz ...", file=sys.stderr)
        with open(vol, "wb") as f:
            for _ in range(256):
                f.write(noise(MIB, rng))
        with zipfile.ZipFile(os.path.join(WORK, "vol.zip.tmp"), "w", zipfile.ZIP_DEFLATED, compresslevel=6) as z:
            z.write(vol, "vol.nii")
        subprocess.run(f"gzip -6 -c {vol} > {WORK}/vol.raw.gz", shell=True, check=True)
        os.rename(os.path.join(WORK, "vol.zip.tmp"), os.path.join(WORK, "vol.zip"))
    if not os.path.exists(os.path.join(WORK, "small.zip")):
        print("generating small.zip ...", file=sys.stderr)
        ex = os.path.join(WORK, "small")
        shutil.rmtree(ex, ignore_errors=True)
        os.makedirs(ex)
        with zipfile.ZipFile(os.path.join(WORK, "small.zip.tmp"), "w", zipfile.ZIP_DEFLATED, compresslevel=6) as z:
            for i in range(2000):
                data = noise(60_000 + rng.randrange(200_000), rng)
                name = f"img/{i:05d}.png"
                z.writestr(name, data)
                os.makedirs(os.path.dirname(os.path.join(ex, name)), exist_ok=True)
                with open(os.path.join(ex, name), "wb") as f:
                    f.write(data)
        os.rename(os.path.join(WORK, "small.zip.tmp"), os.path.join(WORK, "small.zip"))
    if not os.path.exists(os.path.join(WORK, "dicom.zip")):
        print("generating dicom.zip ...", file=sys.stderr)
        with zipfile.ZipFile(os.path.join(WORK, "dicom.zip.tmp"), "w", zipfile.ZIP_DEFLATED, compresslevel=6) as z:
            for i in range(1200):
                p, st, se = f"P{i // 120:03d}", f"1.2.3.{i // 120}", f"1.2.3.{i // 120}.{i // 40}"
                head = dicom(p, st, se, i % 40 + 1)
                z.writestr(f"{p}/{i:05d}.dcm", head + noise(512 * 1024 - len(head), rng))
        os.rename(os.path.join(WORK, "dicom.zip.tmp"), os.path.join(WORK, "dicom.zip"))


def status(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None


class Mount:
    """A medfs daemon serving `src` at a fresh mountpoint."""

    def __init__(self, exe, src, idx, cache="512M", datasets=False, ra_kb=None, log=None):
        self.mnt = tempfile.mkdtemp(prefix="medfs-decode-")
        self.exe = exe
        args = [exe] + (["-vv"] if log else []) + ["mount", "--index-dir", idx, "--cache-size", cache]
        args += ["--log-file", log or "/dev/null"]
        if not datasets:
            args.append("--no-datasets")
        t = time.monotonic()
        subprocess.run(args + [src, self.mnt], check=True)
        self.ready = time.monotonic() - t
        self.pid = None
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    cmd = open(f"/proc/{d}/cmdline", "rb").read().split(b"\0")
                except OSError:
                    continue
                if self.mnt.encode() in cmd and b"medfs" in os.path.basename(cmd[0]):
                    self.pid = int(d)
        self.rss_ready = status(self.pid, "VmRSS")
        if ra_kb:
            dev = os.stat(self.mnt).st_dev
            with open(f"/sys/class/bdi/{os.major(dev)}:{os.minor(dev)}/read_ahead_kb", "w") as f:
                f.write(f"{ra_kb}\n")

    def path(self, *p):
        return os.path.join(self.mnt, "_archives", *p)

    def hwm(self):
        return status(self.pid, "VmHWM")

    def close(self):
        subprocess.run([self.exe, "unmount", self.mnt], check=False)
        for _ in range(100):
            if self.pid is None or not os.path.exists(f"/proc/{self.pid}"):
                break
            time.sleep(0.05)
        os.rmdir(self.mnt)


def seq(path):
    """MB/s reading `path` front to back with 1 MiB reads."""
    t = time.monotonic()
    n = 0
    with open(path, "rb", buffering=0) as f:
        while True:
            b = f.read(MIB)
            if not b:
                break
            n += len(b)
    return n / (time.monotonic() - t) / 1e6


def cmd_rate(cmd, size):
    t = time.monotonic()
    subprocess.run(cmd, shell=True, check=True, stdout=subprocess.DEVNULL)
    return size / (time.monotonic() - t) / 1e6


def py_zlib(path, size):
    """Python's zlib streaming over the zip member's raw deflate data."""
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("vol.nii")
    t = time.monotonic()
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        h = f.read(30)
        f.seek(info.header_offset + 30 + int.from_bytes(h[26:28], "little") + int.from_bytes(h[28:30], "little"))
        d = zlib.decompressobj(-15)
        left = info.compress_size
        while left:
            c = f.read(min(left, MIB))
            left -= len(c)
            d.decompress(c)
    return size / (time.monotonic() - t) / 1e6


def whole_files(root, names, threads):
    def one(n):
        with open(os.path.join(root, n), "rb", buffering=0) as f:
            while f.read(MIB):
                pass
    t = time.monotonic()
    if threads == 1:
        for n in names:
            one(n)
    else:
        with concurrent.futures.ThreadPoolExecutor(threads) as ex:
            list(ex.map(one, names))
    return len(names) / (time.monotonic() - t)


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", required=True)
    ap.add_argument("--after", default=os.path.join(ROOT, "target", "release", "medfs"))
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--only", default="seq,gz,random,dicom,ra")
    a = ap.parse_args()
    only = a.only.split(",")
    make_data()
    vol_zip, vol_gz = os.path.join(WORK, "vol.zip"), os.path.join(WORK, "vol.raw.gz")
    size = 256 * MIB
    bins = [("before", a.before), ("after", a.after)]
    rows = []  # (row, baseline name, baseline value, {bin: (value, rss)})

    def run(fn):
        vals = [fn() for _ in range(a.reps)]
        return med([v[0] for v in vals]), med([v[1] for v in vals])

    base = {}
    if "seq" in only or "gz" in only:
        drop()
        base["extracted"] = med([(drop(), seq(os.path.join(WORK, "vol.nii")))[1] for _ in range(a.reps)])
        base["unzip -p"] = med([(drop(), cmd_rate(f"unzip -p {vol_zip}", size))[1] for _ in range(a.reps)])
        base["python zlib"] = med([(drop(), py_zlib(vol_zip, size))[1] for _ in range(a.reps)])
        base["zcat"] = med([(drop(), cmd_rate(f"zcat {vol_gz}", size))[1] for _ in range(a.reps)])
        print("baselines MB/s:", {k: round(v) for k, v in base.items()}, file=sys.stderr)

    def seq_rows(src, member, cache, label, ra_kb=None):
        out = {}
        for name, exe in bins:
            firsts, seconds, thirds, rss = [], [], [], []
            for _ in range(a.reps):
                idx = tempfile.mkdtemp(prefix="medfs-decode-idx-")
                drop()
                m = Mount(exe, src, idx, cache=cache, ra_kb=ra_kb)
                try:
                    firsts.append(seq(m.path(*member)))
                finally:
                    m.close()
                drop()
                m = Mount(exe, src, idx, cache=cache, ra_kb=ra_kb)
                try:
                    seconds.append(seq(m.path(*member)))
                    drop()
                    thirds.append(seq(m.path(*member)))
                    rss.append(m.hwm())
                finally:
                    m.close()
                shutil.rmtree(idx)
            out[name] = (med(firsts), med(seconds), med(thirds), med(rss))
            print(label, name, out[name], file=sys.stderr)
        return out

    table = []

    def add_seq(label, res, baselines):
        for i, what in enumerate(["first read (fresh mount)", "second read (remount, points saved)",
                                  "third read (same mount)"]):
            b, af = res["before"][i], res["after"][i]
            ratios = ", ".join(f"{af / base[k]:.2f}x {k}" for k in baselines)
            table.append((f"{label}: {what}", f"{b:.0f}", f"{af:.0f}", f"{af / b:.2f}", ratios,
                          f"{res['before'][3]:.0f} / {res['after'][3]:.0f}"))

    if "seq" in only:
        for cache in ["512M", "64M"]:
            r = seq_rows(vol_zip, ("vol.zip", "vol.nii"), cache, f"zip {cache}")
            add_seq(f"256 MiB deflated zip member, MB/s, cache {cache}", r, ["extracted", "unzip -p", "python zlib"])
    if "gz" in only:
        r = seq_rows(vol_gz, ("vol.raw.gz", "vol.raw"), "512M", "gz")
        add_seq("256 MiB .gz stream, MB/s, cache 512M", r, ["extracted", "zcat"])
    if "ra" in only:
        for ra in [1024]:
            r = seq_rows(vol_zip, ("vol.zip", "vol.nii"), "64M", f"zip ra {ra}", ra_kb=ra)
            add_seq(f"same, cache 64M, bdi read_ahead_kb {ra}", r, ["extracted", "unzip -p"])
    if "random" in only:
        src = os.path.join(WORK, "small.zip")
        names = [f"img/{i:05d}.png" for i in range(2000)]
        random.Random(5).shuffle(names)
        for threads in [1, 8]:
            ex = med([(drop(), whole_files(os.path.join(WORK, "small"), names, threads))[1] for _ in range(a.reps)])
            for ra in [None, 1024]:
                res = {}
                for name, exe in bins:
                    vals, rss = [], []
                    idx = tempfile.mkdtemp(prefix="medfs-decode-idx-")
                    Mount(exe, src, idx).close()  # the index exists: measure reads, not listing
                    for _ in range(a.reps):
                        drop()
                        m = Mount(exe, src, idx, ra_kb=ra)
                        try:
                            vals.append(whole_files(m.path("small.zip"), names, threads))
                            rss.append(m.hwm())
                        finally:
                            m.close()
                    shutil.rmtree(idx)
                    res[name] = (med(vals), med(rss))
                    print("random", threads, ra, name, res[name], file=sys.stderr)
                b, af = res["before"][0], res["after"][0]
                table.append((f"2,000 random whole files (60-260 KB), {threads} thread(s), files/s"
                              + (f", read_ahead_kb {ra}" if ra else ""), f"{b:.0f}", f"{af:.0f}", f"{af / b:.2f}",
                              f"{af / ex:.2f}x extracted ({ex:.0f})", f"{res['before'][1]:.0f} / {res['after'][1]:.0f}"))
    if "dicom" in only:
        src = os.path.join(WORK, "dicom.zip")
        for datasets in [True, False]:
            res = {}
            for name, exe in bins:
                t, rss = [], []
                for _ in range(a.reps):
                    idx = tempfile.mkdtemp(prefix="medfs-decode-idx-")
                    drop()
                    m = Mount(exe, src, idx, datasets=datasets)
                    t.append(m.ready)
                    rss.append(m.rss_ready)
                    m.close()
                    shutil.rmtree(idx)
                res[name] = (med(t), med(rss))
                print("dicom", datasets, name, res[name], file=sys.stderr)
            b, af = res["before"], res["after"]
            table.append((f"1,200-member DICOM zip (0.5 MB each), first mount {'with' if datasets else 'without'} "
                          "datasets: s to ready / RSS after (MiB)", f"{b[0]:.2f} s / {b[1]:.0f}",
                          f"{af[0]:.2f} s / {af[1]:.0f}", f"{b[0] / af[0]:.2f} (time)", "", ""))
    print("\n| row | before | after | after/before | after vs baselines | daemon peak RSS MiB before / after |")
    print("|---|---|---|---|---|---|")
    for r in table:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
