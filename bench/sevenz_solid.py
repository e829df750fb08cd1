#!/usr/bin/env python3
"""Issue 10: random whole-file reads in a big solid 7z through medfs, against `7z x`, the
extracted tree and ratarmount, in one run; with the daemon's peak RSS and the disk cache's size.

A solid 7z of --size-mb (default 520 MB) of image-like files (8-bit grayscale scans of 100-300 KB:
smooth shading plus 2 to 5 bits of noise a pixel, so LZMA2 works for a ~1.6x ratio) is written once
with the `7z` tool under --data and reused. Then, in one run, with the page cache dropped before
every timed phase:
  - baselines: `7z x` of the whole archive (wall time), then --reads random files (fixed --seed)
    read whole from the extracted tree;
  - medfs at --cache-size (default 512M), fresh index and --disk-cache-dir: cold pass, a second
    pass of the same reads in the same daemon (memory and disk cache warm), and a remount reading
    them again (index and disk cache warm);
  - medfs at --small-cache (default 64M, below the solid block), cold and second pass;
  - ratarmount in a venv under --data, if it installs and mounts (else the reason is printed).
Every file read through a mount is checked byte-exact against the extracted tree. The daemon's
VmHWM and VmRSS are sampled every 0.1 s, the disk cache's size (bytes of its files) every 0.25 s;
per pass the daemon's CPU time (user + system) and the folder decoders it started (logged at
debug level, MEDFS_LOG=medfs::archive::sevenz=debug) tell whether a folder was decoded again.

Usage (root: drops the page cache and mounts; about 2 min to generate on 2 busy cores, 7 min a
run with ratarmount's 300 s; builds target/release/medfs when missing):
    python3 bench/sevenz_solid.py [--size-mb 520] [--files 2600] [--reads 500] [--seed 10]
        [--cache-size 512M] [--small-cache 64M] [--data /tmp/medfs-bench/sevenz] [--no-ratarmount]
"""
import argparse
import hashlib
import math
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from multiprocessing import Pool

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MEDFS = os.path.join(os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target"), "release", "medfs")
MiB = 1 << 20
WIDTH = 512  # pixels a row of every generated scan


def drop_caches():
    subprocess.run(["sync"])
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


def parse_size(s):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(s[:-1]) * units[s[-1].upper()] if s[-1].upper() in units else int(s)


# ----------------------------------------------------------------------------- data
def profiles():
    """256 smooth rows (0..255), neighbours alike: consecutive rows of a scan walk through them."""
    rows = []
    for j in range(256):
        ph = 2 * math.pi * j / 256
        rows.append(bytes(int(127.5 + 127 * math.sin(2 * math.pi * 1.5 * x / WIDTH + ph) * math.cos(ph / 2 + x / 300))
                          for x in range(WIDTH)))
    return rows


PROFILES = None


def make_scan(args):
    """Scan i of `size` bytes: a PGM header, then smooth shading (profile rows walked at a per-scan
    pace, scaled to leave room) plus k bits of noise a pixel, k in 2..5 (per scan)."""
    global PROFILES
    i, size, seed, path = args
    if PROFILES is None:
        PROFILES = profiles()
    rng = random.Random(seed * 1000003 + i)
    k = rng.choice((2, 3, 3, 4, 4, 5))
    head_len = len(f"P5\n{WIDTH} 0000\n255\n")
    n = size - head_len
    h = n // WIDTH
    header = f"P5\n{WIDTH} {h:04d}\n255\n".encode()
    start, pace = rng.randrange(256), rng.randrange(1, 16)
    base = b"".join(PROFILES[(start + r * pace // 8) % 256] for r in range(h + 1))[:n]
    scale = bytes(v * (256 - (1 << k)) // 256 for v in range(256))
    noise = rng.randbytes(n).translate(bytes(b & ((1 << k) - 1) for b in range(256)))
    # Byte-wise base + noise with no carries (each sum < 256): one big-integer addition.
    pixels = (int.from_bytes(base.translate(scale), "little") + int.from_bytes(noise, "little")).to_bytes(n, "little")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(header + pixels)
    return size


def scan_name(i):
    return f"case_{i // 100:03d}/scan_{i:05d}.pgm"


def generate(src, size_mb, files, seed, jobs):
    """`files` scans of 100-300 KB scaled to add up to size_mb MB (10^6 bytes)."""
    rng = random.Random(seed)
    raw = [rng.uniform(100, 300) for _ in range(files)]
    scale = size_mb * 1_000_000 / sum(raw)
    sizes = [max(WIDTH * 2, int(r * scale)) for r in raw]
    with Pool(jobs) as pool:
        done = 0
        for n, _ in enumerate(pool.imap_unordered(make_scan, [(i, s, seed, os.path.join(src, scan_name(i)))
                                                              for i, s in enumerate(sizes)], chunksize=16)):
            if n % 500 == 499:
                print(f"  {n + 1}/{files} scans", file=sys.stderr)
            done += 1
    return sum(sizes)


def seven_z_args(mx, solid, mt):
    return ["-t7z", "-m0=lzma2", f"-mx={mx}", f"-ms={solid}", f"-mmt={mt}"]


def listing(archive):
    """(path, size, block) of every file of the archive, from `7z l -slt`."""
    out = subprocess.run(["7z", "l", "-slt", archive], capture_output=True, text=True, check=True).stdout
    files, cur = [], {}
    for line in out.split("\n----------\n", 1)[1].splitlines() + [""]:
        if not line.strip():
            if cur.get("Path") and "Size" in cur and not cur.get("Attributes", "").startswith("D"):
                files.append((cur["Path"], int(cur["Size"]), int(cur.get("Block") or -1)))
            cur = {}
            continue
        k, _, v = line.partition(" = ")
        cur[k] = v
    return files


def method(archive):
    out = subprocess.run(["7z", "l", "-slt", archive], capture_output=True, text=True, check=True).stdout
    head = out.split("\n----------\n", 1)[0]
    return {k: v for k, _, v in (line.partition(" = ") for line in head.splitlines()) if v}


# ----------------------------------------------------------------------------- sampling
def daemon_pid(mnt):
    """The medfs daemon serving `mnt` (as bench/memory.py finds it)."""
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


def status(pid, field):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def cpu_seconds(pid):
    """User + system CPU time of the process (all its threads)."""
    try:
        f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def tree_bytes(path):
    """Bytes of the files under `path` (the disk cache), missing files skipped."""
    total = 0
    for dirpath, _, names in os.walk(path):
        for n in names:
            try:
                total += os.lstat(os.path.join(dirpath, n)).st_size
            except OSError:
                pass
    return total


class Sampler(threading.Thread):
    """The daemon's VmRSS every 0.1 s, the disk cache's bytes every 0.25 s."""

    def __init__(self, pid, disk_dir):
        super().__init__(daemon=True)
        self.pid, self.disk_dir, self.stop = pid, disk_dir, threading.Event()
        self.rss, self.disk = [], []

    def run(self):
        n = 0
        while not self.stop.is_set():
            now = time.monotonic()
            r = status(self.pid, "VmRSS")
            if r is not None:
                self.rss.append((now, r))
            if n % 3 == 0 and self.disk_dir:
                self.disk.append((now, tree_bytes(self.disk_dir)))
            n += 1
            self.stop.wait(0.1)

    def peak_rss(self, t0, t1):
        return max((r for t, r in self.rss if t0 <= t <= t1), default=0)

    def peak_disk(self, t0, t1):
        return max((d for t, d in self.disk if t0 <= t <= t1), default=0)


# ----------------------------------------------------------------------------- reads
def read_files(root, names, deadline=None):
    """Reads each file whole, in order; returns (seconds, contents). With a deadline, stops after
    the file that passes it (contents then shorter than names)."""
    out = []
    t = time.monotonic()
    for n in names:
        with open(os.path.join(root, n), "rb", buffering=0) as f:
            chunks = []
            while True:
                b = f.read(MiB)
                if not b:
                    break
                chunks.append(b)
        out.append(b"".join(chunks))
        if deadline and time.monotonic() > deadline:
            break
    return time.monotonic() - t, out


def check(label, names, got, ref):
    bad = [n for n, g, r in zip(names, got, ref) if g != r]
    if bad:
        print(f"  {label}: {len(bad)} files DIFFER from the extraction, first {bad[:3]}", file=sys.stderr)
    return len(bad)


class Medfs:
    """One `medfs mount` of the archive (daemonized), with its sampler; unmounts on exit."""

    def __init__(self, medfs, archive, cache, index_dir, disk_dir, log):
        self.medfs, self.archive, self.cache = medfs, archive, cache
        self.index_dir, self.disk_dir, self.log = index_dir, disk_dir, log
        self.mnt = tempfile.mkdtemp(prefix="medfs-7z-")

    def __enter__(self):
        drop_caches()
        t = time.monotonic()
        # The 7z reader logs each decoder it starts at debug level: counted per pass.
        env = dict(os.environ, MEDFS_LOG="medfs=warn,medfs::archive::sevenz=debug")
        subprocess.run([self.medfs, "mount", "--cache-size", self.cache, "--index-dir", self.index_dir,
                        "--disk-cache-dir", self.disk_dir, "--no-datasets", "--log-file", self.log,
                        self.archive, self.mnt], check=True, env=env)
        self.mount_s = time.monotonic() - t
        self.pid = daemon_pid(self.mnt)
        assert self.pid, "daemon pid not found"
        self.sampler = Sampler(self.pid, self.disk_dir)
        self.sampler.start()
        self.root = os.path.join(self.mnt, "_archives", os.path.basename(self.archive))
        return self

    def hwm(self):
        return status(self.pid, "VmHWM") or 0

    def passes(self, label, names, ref):
        """One pass of the reads after dropping the page cache: a result row."""
        drop_caches()
        cpu0 = cpu_seconds(self.pid)
        log0 = os.path.getsize(self.log) if os.path.exists(self.log) else 0
        t0 = time.monotonic()
        el, got = read_files(self.root, names)
        t1 = time.monotonic()
        cpu = cpu_seconds(self.pid) - cpu0
        time.sleep(0.3)  # one more disk sample after the pass
        with open(self.log, "rb") as f:
            f.seek(log0)
            starts = [line for line in f.read().decode(errors="replace").splitlines() if "decoding from its start" in line]
        folders = {}
        for line in starts:
            k = line.split("7z folder ", 1)[1].split(":", 1)[0]
            folders[k] = folders.get(k, 0) + 1
        row = {"label": label, "s": el, "n": len(names), "bad": check(label, names, got, ref),
               "rss": self.sampler.peak_rss(t0, t1), "hwm": self.hwm(), "cpu": cpu,
               "disk": self.sampler.peak_disk(t0, time.monotonic()), "disk_end": tree_bytes(self.disk_dir),
               "cache": self.cache, "starts": len(starts), "folders": folders}
        print(f"  {label:<34} {el:7.2f} s  {len(names) / el:7.1f} files/s  daemon CPU {cpu:6.2f} s"
              f"  VmHWM {row['hwm'] / MiB:6.1f} MiB  disk cache {row['disk'] / MiB:6.1f} MiB"
              f"  decoder starts {len(starts)} (by folder {dict(sorted(folders.items(), key=lambda kv: int(kv[0])))})",
              file=sys.stderr)
        return row

    def __exit__(self, *exc):
        self.sampler.stop.set()
        self.sampler.join()
        subprocess.run([self.medfs, "unmount", self.mnt])
        os.rmdir(self.mnt)


# ----------------------------------------------------------------------------- ratarmount
def ratarmount(data, archive, names, ref, timeout):
    """Installs ratarmount in a venv under `data` (once) and reads the files through it. Returns
    (rows, note); rows empty and note saying why when it cannot."""
    venv = os.path.join(data, "venv-ratarmount")
    exe = os.path.join(venv, "bin", "ratarmount")
    py = os.path.join(venv, "bin", "python")
    # ratarmount reads 7z through py7zr (or libarchive, which needs the system's libarchive.so):
    # the `7z` extra brings both bindings, but its py7zr pin (~=1.0) lets pip take 1.1, which
    # ratarmountcore 0.11 refuses ("Wrong version found!", then "unrecognized format"): pin 1.0.
    ok = "import py7zr; assert py7zr.__version__.startswith('1.0')"
    if not os.path.exists(exe) or subprocess.run([py, "-c", ok], capture_output=True).returncode:
        print("  installing ratarmount[7z] in a venv ...", file=sys.stderr)
        r = subprocess.run([sys.executable, "-m", "venv", venv], capture_output=True, text=True)
        if r.returncode != 0:
            return [], f"python3 -m venv failed: {r.stderr.strip().splitlines()[-1:]}"
        r = subprocess.run([os.path.join(venv, "bin", "pip"), "install", "-q", "ratarmount[7z]", "py7zr~=1.0.0"],
                           capture_output=True, text=True)
        if r.returncode != 0 or not os.path.exists(exe):
            shutil.rmtree(venv, ignore_errors=True)
            return [], f"pip install ratarmount failed: {(r.stderr.strip().splitlines() or ['?'])[-1]}"
    version = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout.split("\n")[0].strip()
    py7zr = subprocess.run([py, "-c", "import py7zr; print(py7zr.__version__)"], capture_output=True, text=True)
    version += f" (py7zr {py7zr.stdout.strip() or 'missing'})"
    mnt = tempfile.mkdtemp(prefix="ratarmount-7z-")
    idx = tempfile.mkdtemp(prefix="ratarmount-idx-")
    rows = []
    try:
        drop_caches()
        t = time.monotonic()
        try:
            r = subprocess.run([exe, "--index-folders", idx, archive, mnt], capture_output=True, text=True,
                               timeout=timeout)
        except subprocess.TimeoutExpired:
            return [], f"{version}: mount did not answer in {timeout} s"
        mount_s = time.monotonic() - t
        if r.returncode != 0 or not os.path.ismount(mnt):
            err = (r.stderr.strip() or r.stdout.strip()).splitlines()
            return [], f"{version}: mount failed ({r.returncode}): {' / '.join(err[-2:])[:300]}"
        first = names[0]
        if not os.path.exists(os.path.join(mnt, first)):
            return [], f"{version}: mounted, but {first} is not in the mount: {os.listdir(mnt)[:5]}"
        for label in ("ratarmount cold", "ratarmount second pass"):
            drop_caches()
            res = {}

            def run():
                res["r"] = read_files(mnt, names, deadline=time.monotonic() + timeout)

            th = threading.Thread(target=run, daemon=True)
            th.start()
            th.join(timeout + 60)
            if "r" not in res:
                return rows, f"{version}: {label}: one file read took over {timeout + 60} s, stopped"
            el, got = res["r"]
            row = {"label": label, "s": el, "n": len(got), "bad": check(label, names, got, ref), "mount_s": mount_s}
            print(f"  {label:<34} {el:7.2f} s  {len(got) / el:7.1f} files/s ({len(got)} of {len(names)})",
                  file=sys.stderr)
            rows.append(row)
            if len(got) < len(names):
                return rows, f"{version}: {label} stopped after {timeout} s, {len(got)} of {len(names)} files read"
        return rows, f"{version}, mounted in {mount_s:.1f} s (index built)"
    finally:
        subprocess.run(["fusermount", "-u", mnt], capture_output=True)
        if os.path.ismount(mnt):
            subprocess.run(["fusermount", "-uz", mnt], capture_output=True)
        time.sleep(0.5)
        shutil.rmtree(idx, ignore_errors=True)
        try:
            os.rmdir(mnt)
        except OSError:
            pass


# ----------------------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size-mb", type=int, default=520, help="archive contents in MB (10^6 bytes)")
    ap.add_argument("--files", type=int, default=2600, help="number of scans (mean size: size / files)")
    ap.add_argument("--reads", type=int, default=500, help="random files read whole")
    ap.add_argument("--seed", type=int, default=10)
    ap.add_argument("--mx", default="1", help="7z -mx level")
    ap.add_argument("--solid", default="on", help="7z -ms value (on: 7z's solid block size for the level)")
    ap.add_argument("--cache-size", default="512M")
    ap.add_argument("--small-cache", default="64M", help="second medfs run, a cache below the solid block ('' skips)")
    ap.add_argument("--data", default="/tmp/medfs-bench/sevenz", help="generated archive (kept), venvs, scratch")
    ap.add_argument("--medfs", default=MEDFS, help="medfs binary (default: target/release/medfs)")
    ap.add_argument("--jobs", type=int, default=2, help="processes generating the scans")
    ap.add_argument("--no-ratarmount", action="store_true")
    ap.add_argument("--ratarmount-timeout", type=int, default=300, help="seconds for its mount and each pass")
    ap.add_argument("--generate-only", action="store_true")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("sevenz_solid.py drops the page cache and mounts: run it as root")
    if a.medfs == MEDFS and not os.path.exists(MEDFS):
        subprocess.run(["cargo", "build", "--release", "--manifest-path", os.path.join(ROOT, "Cargo.toml")], check=True)

    # -- the archive, generated once
    os.makedirs(a.data, exist_ok=True)
    cmd7 = seven_z_args(a.mx, a.solid, 2)
    archive = os.path.join(a.data, f"scans_{a.size_mb}MB_{a.files}f_mx{a.mx}_s{a.solid}.7z")
    if not os.path.exists(archive):
        src = os.path.join(a.data, "src")
        shutil.rmtree(src, ignore_errors=True)
        print(f"generating {a.files} scans, {a.size_mb} MB ...", file=sys.stderr)
        t = time.monotonic()
        generate(src, a.size_mb, a.files, a.seed, a.jobs)
        print(f"  scans in {time.monotonic() - t:.0f} s; 7z a {' '.join(cmd7)} ...", file=sys.stderr)
        t = time.monotonic()
        subprocess.run(["7z", "a", "-bd", *cmd7, archive + ".part", "."], cwd=src, check=True,
                       stdout=subprocess.DEVNULL)
        os.rename(archive + ".part", archive)
        print(f"  7z a in {time.monotonic() - t:.0f} s", file=sys.stderr)
        shutil.rmtree(src)
    if a.generate_only:
        return
    files = listing(archive)
    head = method(archive)
    assert files, f"no files listed in {archive}"
    total = sum(s for _, s, _ in files)
    asize = os.path.getsize(archive)
    blocks = {}
    for _, s, b in files:
        blocks[b] = blocks.get(b, 0) + s
    rng = random.Random(a.seed)
    names = [p for p, _, _ in rng.sample(files, min(a.reads, len(files)))]
    cache = parse_size(a.cache_size)
    started = time.monotonic()
    dropped = drop_caches()
    print(f"archive {asize / 1e6:.1f} MB, {len(files)} files, {total / 1e6:.1f} MB decoded (ratio {total / asize:.2f}),"
          f" written by `7z a {' '.join(cmd7)}` ({head.get('Method')}, {len(blocks)} solid block(s):"
          f" {', '.join(f'{v / MiB:.0f} MiB' for v in blocks.values())}); page cache"
          f" {'dropped before each phase' if dropped else 'NOT droppable (not root?)'}", file=sys.stderr)

    scratch = tempfile.mkdtemp(prefix="run-", dir=a.data)
    try:
        # -- baselines
        extracted = os.path.join(scratch, "extracted")
        drop_caches()
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.monotonic()
        subprocess.run(["7z", "x", "-bd", "-y", f"-o{extracted}", archive], check=True, stdout=subprocess.DEVNULL)
        x_s = time.monotonic() - t
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        x_cpu = ru1.ru_utime - ru0.ru_utime + ru1.ru_stime - ru0.ru_stime
        print(f"  {'7z x (whole archive)':<34} {x_s:7.2f} s  CPU {x_cpu:6.2f} s", file=sys.stderr)
        drop_caches()
        ext_s, ref = read_files(extracted, names)
        print(f"  {'extracted tree':<34} {ext_s:7.2f} s  {len(names) / ext_s:7.1f} files/s", file=sys.stderr)
        ext_bytes = sum(len(r) for r in ref)
        assert all(len(r) == s for r, s in zip(ref, [dict((p, s) for p, s, _ in files)[n] for n in names]))

        # -- medfs
        rows = []
        runs = [a.cache_size] + ([a.small_cache] if a.small_cache else [])
        for c in runs:
            index_dir = os.path.join(scratch, f"index-{c}")
            disk_dir = os.path.join(scratch, f"blocks-{c}")
            log = os.path.join(scratch, f"medfs-{c}.log")
            with Medfs(a.medfs, archive, c, index_dir, disk_dir, log) as m:
                print(f"medfs --cache-size {c}: mounted in {m.mount_s:.2f} s (cold index)", file=sys.stderr)
                r = m.passes(f"medfs {c} cold", names, ref)
                r["mount_s"] = m.mount_s
                rows.append(r)
                rows.append(m.passes(f"medfs {c} second pass", names, ref))
            if c == a.cache_size:
                with Medfs(a.medfs, archive, c, index_dir, disk_dir, log) as m:
                    print(f"medfs --cache-size {c}: remounted in {m.mount_s:.2f} s (warm index)", file=sys.stderr)
                    r = m.passes(f"medfs {c} remount", names, ref)
                    r["mount_s"] = m.mount_s
                    rows.append(r)
            shutil.rmtree(disk_dir, ignore_errors=True)

        # -- ratarmount
        if a.no_ratarmount:
            rat_rows, rat_note = [], "skipped (--no-ratarmount)"
        else:
            print("ratarmount:", file=sys.stderr)
            rat_rows, rat_note = ratarmount(a.data, archive, names, ref, a.ratarmount_timeout)
            print(f"  {rat_note}", file=sys.stderr)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    # -- the table
    bad = sum(r["bad"] for r in rows + rat_rows)
    print(f"\n## sevenz_solid.py: {a.reads} random whole-file reads (seed {a.seed}) in a solid 7z\n")
    print(f"Archive: {asize / 1e6:.1f} MB, {len(files)} scans of 100-300 KB, {total / 1e6:.1f} MB decoded"
          f" (ratio {total / asize:.2f}), `7z a {' '.join(cmd7)}` ({head.get('Method')},"
          f" {len(blocks)} solid block(s) of {', '.join(f'{v / MiB:.0f} MiB' for v in blocks.values())});"
          f" the reads: {ext_bytes / 1e6:.1f} MB. Page cache dropped before every row; one reader thread."
          f" Ratios: time of the baseline / time of the row (> 1: the row is faster).\n")
    print("| what | time | files/s | vs `7z x` | vs extracted | CPU | decoder starts | peak RSS (VmHWM) | disk cache peak / end |")
    print("|---|---|---|---|---|---|---|---|---|")
    print(f"| `7z x` whole archive | {x_s:.2f} s | {len(files) / x_s:.0f} (all {len(files)}) | 1 | | {x_cpu:.2f} s"
          f" | {len(blocks)} | | |")
    print(f"| extracted tree | {ext_s:.2f} s | {len(names) / ext_s:.0f} | {x_s / ext_s:.3g}x | 1 | | | | |")
    for r in rows:
        mnt = f" (+{r['mount_s']:.2f} s mount)" if "mount_s" in r else ""
        print(f"| {r['label']}{mnt} | {r['s']:.2f} s | {r['n'] / r['s']:.1f} | {x_s / r['s']:.3g}x | {ext_s / r['s']:.3g}x"
              f" | {r['cpu']:.2f} s | {r['starts']} | {r['hwm'] / MiB:.0f} MiB"
              f" | {r['disk'] / MiB:.0f} / {r['disk_end'] / MiB:.0f} MiB |")
    for r in rat_rows:
        part = "" if r["n"] == len(names) else f" ({r['n']} of {len(names)} files)"
        part += f" (+{r['mount_s']:.2f} s mount)" if r is rat_rows[0] else ""
        print(f"| {r['label']}{part} | {r['s']:.2f} s | {r['n'] / r['s']:.1f} | {x_s * r['n'] / len(names) / r['s']:.3g}x"
              f" | {ext_s * r['n'] / len(names) / r['s']:.3g}x | | | | |")
    print(f"\nratarmount: {rat_note}.")
    print(f"\nByte-exact against the extraction: {'all files of every pass' if bad == 0 else f'{bad} files DIFFER'};"
          f" measurement time {time.monotonic() - started:.0f} s.")
    if bad:
        sys.exit(1)


if __name__ == "__main__":
    main()
