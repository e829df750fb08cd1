#!/usr/bin/env python3
"""Issue 8: the daemon's memory under --cache-size, and what the bound costs in speed.

A zip of N deflated members of 10 MiB (4-bit noise, deflate level 1: inflates at a real rate,
ratio ~1.7) mounted with --cache-size 64M, next to the same members extracted on local disk, in
one run. Phases, each after dropping the page cache, with the daemon's VmRSS sampled every 0.1 s
throughout:
  (a) the first 4 KiB of every member          (b) 4 KiB at offset 8 MiB of every member
  (c) every member whole
and a working set that fits the cache (5 members read whole twice, page cache dropped before
each pass, so pass 2 measures medfs's own cache). Per phase: time, reads/s or MB/s, peak RSS,
and medfs / extracted ratios; peak RSS against the goal cache + tree + 64 MiB ("tree" = the
daemon's RSS right after the mount answers). Reads: --threads workers over the members.

Usage (root: drops the page cache; 1.8 GB zip + 3.1 GB extracted under --work, generated once in
~3 min on 2 busy cores; then ~1.5 min per run; builds target/release/medfs when missing):
    python3 bench/memory.py [--members 300] [--threads 4] [--cache-size 64M] [--medfs PATH]
"""
import argparse
import os
import random
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from multiprocessing import Pool

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MEDFS = os.path.join(os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target"), "release", "medfs")
MiB = 1 << 20
BLOCK = 4096
SLACK = 64 * MiB  # what the daemon may use beyond cache and tree (the goal of issue 8)


def drop_caches():
    subprocess.run(["sync"])
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def parse_size(s):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(s[:-1]) * units[s[-1].upper()] if s[-1].upper() in units else int(s)


# ----------------------------------------------------------------------------- data
def member_name(i):
    return f"scans/s{i // 100:02d}/scan{i:04d}.raw"


def make_member(args):
    """Member i: 4-bit noise (deterministic per i); returns (i, crc, size, raw deflate bytes)."""
    i, mib, extracted = args
    table = bytes((b & 0x0F) + 0x40 for b in range(256))
    seed = zlib.crc32(struct.pack("<I", i))
    rng = random.Random(seed)
    raw = bytearray()
    for _ in range(mib):
        raw += rng.randbytes(MiB).translate(table)
    raw = bytes(raw)
    path = os.path.join(extracted, member_name(i))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(raw)
    c = zlib.compressobj(1, zlib.DEFLATED, -15)  # level 1: generated fast, inflates like level 6
    comp = c.compress(raw) + c.flush()
    return i, zlib.crc32(raw), len(raw), comp


def write_zip(zpath, members, mib, extracted, jobs):
    """Writes the zip (plain deflate members, no zip64: the archive stays under 4 GiB) and the
    extracted copy, members deflated on `jobs` processes."""
    central = []
    tmp = zpath + ".part"
    with open(tmp, "wb") as f, Pool(jobs) as pool:
        for i, crc, size, comp in pool.imap(make_member, [(i, mib, extracted) for i in range(members)]):
            name = member_name(i).encode()
            off = f.tell()
            assert off + len(comp) < 1 << 32, "zip over 4 GiB: use fewer members"
            dos_time, dos_date = (10 << 11) | (30 << 5), ((2020 - 1980) << 9) | (5 << 5) | 17
            f.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, dos_time, dos_date, crc, len(comp), size,
                                len(name), 0) + name)
            f.write(comp)
            central.append(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, (3 << 8) | 20, 20, 0, 8, dos_time, dos_date, crc,
                                       len(comp), size, len(name), 0, 0, 0, 0, 0o100444 << 16, off) + name)
            if i % 50 == 49:
                print(f"  {i + 1}/{members} members", file=sys.stderr)
        cd_off = f.tell()
        for c in central:
            f.write(c)
        cd_len = f.tell() - cd_off
        f.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(central), len(central), cd_len, cd_off, 0))
    os.rename(tmp, zpath)


# ----------------------------------------------------------------------------- RSS
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
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


class Sampler(threading.Thread):
    """VmRSS of `pid` every 0.1 s, with the time of each sample."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.samples, self.stop = pid, [], threading.Event()

    def run(self):
        while not self.stop.is_set():
            r = rss(self.pid)
            if r is not None:
                self.samples.append((time.monotonic(), r))
            self.stop.wait(0.1)

    def peak(self, t0, t1):
        return max((r for t, r in self.samples if t0 <= t <= t1), default=0)


# ----------------------------------------------------------------------------- reads
def read_block(path, off):
    fd = os.open(path, os.O_RDONLY)
    try:
        b = os.pread(fd, BLOCK, off)
    finally:
        os.close(fd)
    assert len(b) == BLOCK, f"{path}@{off}: short read {len(b)}"
    return zlib.crc32(b)


def read_whole(path):
    buf = bytearray(MiB)
    mv = memoryview(buf)
    n = 0
    fd = os.open(path, os.O_RDONLY)
    try:
        while True:
            k = os.readv(fd, [mv])
            if k == 0:
                return n
            n += k
    finally:
        os.close(fd)


def run_phase(fn, paths, threads):
    t = time.monotonic()
    with ThreadPoolExecutor(threads) as ex:
        out = list(ex.map(fn, paths))
    return time.monotonic() - t, out


def phases(root, n, mib, threads, sampler=None):
    """The three phases over `root` (a mount's archive folder or the extracted folder)."""
    paths = [os.path.join(root, member_name(i)) for i in range(n)]
    res = {}
    for name, fn, unit in [
        ("a: first 4 KiB", lambda p: read_block(p, 0), "reads"),
        ("b: 4 KiB @ 8 MiB", lambda p: read_block(p, min(8 * MiB, mib * MiB - BLOCK)), "reads"),
        ("c: whole members", read_whole, "bytes"),
    ]:
        drop_caches()
        t0 = time.monotonic()
        el, out = run_phase(fn, paths, threads)
        t1 = time.monotonic()
        rate = (n / el) if unit == "reads" else (sum(out) / el / 1e6)
        res[name] = {"s": el, "rate": rate, "unit": "reads/s" if unit == "reads" else "MB/s", "out": out,
                     "peak": sampler.peak(t0, t1) if sampler else None}
        print(f"  {name:<18} {el:7.2f} s  {rate:9.1f} {res[name]['unit']}"
              + (f"  peak RSS {res[name]['peak'] / MiB:6.1f} MiB" if sampler else ""), file=sys.stderr)
    return res


def fits(root, k, passes, threads, sampler=None):
    """k members read whole `passes` times, page cache dropped before each pass."""
    paths = [os.path.join(root, member_name(i)) for i in range(k)]
    res = []
    for p in range(passes):
        drop_caches()
        t0 = time.monotonic()
        el, out = run_phase(read_whole, paths, threads)
        t1 = time.monotonic()
        res.append({"s": el, "rate": sum(out) / el / 1e6, "peak": sampler.peak(t0, t1) if sampler else None})
        print(f"  fits pass {p + 1}: {el:7.2f} s  {res[-1]['rate']:9.1f} MB/s"
              + (f"  peak RSS {res[-1]['peak'] / MiB:6.1f} MiB" if sampler else ""), file=sys.stderr)
    return res


class Mount:
    """medfs mount (daemonized) of one zip, with its RSS sampler; unmounts on exit."""

    def __init__(self, medfs, zpath, cache):
        self.medfs = medfs
        self.mnt = tempfile.mkdtemp(prefix="medfs-memory-")
        self.idx = tempfile.mkdtemp(prefix="medfs-memory-idx-")
        self.zpath, self.cache = zpath, cache

    def __enter__(self):
        drop_caches()
        t = time.monotonic()
        subprocess.run([self.medfs, "mount", "--cache-size", self.cache, "--index-dir", self.idx,
                        "--log-file", self.idx + ".log", self.zpath, self.mnt], check=True)
        self.ready = time.monotonic() - t
        self.pid = daemon_pid(self.mnt)
        assert self.pid, "daemon pid not found"
        time.sleep(0.3)
        self.tree = rss(self.pid)
        self.sampler = Sampler(self.pid)
        self.sampler.start()
        self.root = os.path.join(self.mnt, "_archives", os.path.basename(self.zpath))
        return self

    def __exit__(self, *exc):
        self.sampler.stop.set()
        self.sampler.join()
        subprocess.run([self.medfs, "unmount", self.mnt])
        os.rmdir(self.mnt)
        subprocess.run(["rm", "-rf", self.idx, self.idx + ".log"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--members", type=int, default=300)
    ap.add_argument("--mib", type=int, default=10, help="size of each member in MiB")
    ap.add_argument("--threads", type=int, default=4, help="reader threads (same for medfs and extracted)")
    ap.add_argument("--cache-size", default="64M")
    ap.add_argument("--fit-members", type=int, default=5)
    ap.add_argument("--fit-passes", type=int, default=2)
    ap.add_argument("--work", default="/tmp/medfs-bench/memory")
    ap.add_argument("--medfs", default=MEDFS, help="medfs binary (default: target/release/medfs)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="processes generating the data")
    a = ap.parse_args()
    assert a.mib * MiB > 8 * MiB, "phase b reads at 8 MiB: members must be bigger"
    if os.geteuid() != 0:
        sys.exit("memory.py drops the page cache: run it as root")
    if a.medfs == MEDFS and not os.path.exists(MEDFS):
        subprocess.run(["cargo", "build", "--release", "--manifest-path", os.path.join(ROOT, "Cargo.toml")], check=True)
    os.makedirs(a.work, exist_ok=True)
    zpath = os.path.join(a.work, f"scans_{a.members}x{a.mib}MiB.zip")
    extracted = os.path.join(a.work, f"scans_{a.members}x{a.mib}MiB")
    if not os.path.exists(zpath):
        print(f"generating {a.members} x {a.mib} MiB members (zip and extracted copy) ...", file=sys.stderr)
        t = time.monotonic()
        write_zip(zpath, a.members, a.mib, extracted, a.jobs)
        print(f"  generated in {time.monotonic() - t:.0f} s", file=sys.stderr)
    cache = parse_size(a.cache_size)
    zsize = os.path.getsize(zpath)
    started = time.monotonic()
    print(f"zip {zsize / 1e6:.0f} MB, {a.members} x {a.mib} MiB deflated (ratio {a.members * a.mib * MiB / zsize:.2f}),"
          f" --cache-size {a.cache_size}, {a.threads} reader threads, medfs {a.medfs}", file=sys.stderr)

    print("extracted folder:", file=sys.stderr)
    base = phases(extracted, a.members, a.mib, a.threads)
    base_fit = fits(extracted, a.fit_members, a.fit_passes, a.threads)
    print("medfs:", file=sys.stderr)
    with Mount(a.medfs, zpath, a.cache_size) as m:
        print(f"  mounted in {m.ready:.2f} s, tree RSS {m.tree / MiB:.1f} MiB", file=sys.stderr)
        res = phases(m.root, a.members, a.mib, a.threads, m.sampler)
        tree = m.tree
        rss_all = [r for _, r in m.sampler.samples]
    # Correctness of what phases a and b read: the same 4 KiB blocks as on disk.
    for name in ("a: first 4 KiB", "b: 4 KiB @ 8 MiB"):
        bad = [i for i, (x, y) in enumerate(zip(res[name]["out"], base[name]["out"])) if x != y]
        assert not bad, f"{name}: members {bad[:5]} differ from the extracted files"
    total = a.members * a.mib * MiB
    assert all(n == a.mib * MiB for n in res["c: whole members"]["out"]), "phase c: short members"
    with Mount(a.medfs, zpath, a.cache_size) as m2:
        fit = fits(m2.root, a.fit_members, a.fit_passes, a.threads, m2.sampler)
        fit_tree = m2.tree

    goal = cache + tree + SLACK
    print(f"\n## memory.py: {a.members} x {a.mib} MiB deflated zip, --cache-size {a.cache_size}, {a.threads} threads"
          f" ({total / 1e9:.2f} GB read in phase c)\n")
    print(f"daemon tree RSS {tree / MiB:.1f} MiB; goal: peak <= cache {cache / MiB:.0f} + tree {tree / MiB:.1f}"
          f" + {SLACK / MiB:.0f} = {goal / MiB:.1f} MiB; RSS samples: {len(rss_all)},"
          f" median {sorted(rss_all)[len(rss_all) // 2] / MiB if rss_all else 0:.1f} MiB\n")
    print("| phase | extracted | medfs | medfs / extracted | medfs peak RSS | within goal |")
    print("|---|---|---|---|---|---|")
    for name, r in res.items():
        b = base[name]
        print(f"| {name} | {b['s']:.2f} s, {b['rate']:.1f} {b['unit']} | {r['s']:.2f} s, {r['rate']:.1f} {r['unit']}"
              f" | {r['rate'] / b['rate']:.3g}x | {r['peak'] / MiB:.1f} MiB | {'yes' if r['peak'] <= goal else 'NO'} |")
    fit_goal = cache + fit_tree + SLACK
    for p, (r, b) in enumerate(zip(fit, base_fit)):
        print(f"| fits ({a.fit_members} x {a.mib} MiB) pass {p + 1} | {b['s']:.2f} s, {b['rate']:.1f} MB/s"
              f" | {r['s']:.2f} s, {r['rate']:.1f} MB/s | {r['rate'] / b['rate']:.3g}x | {r['peak'] / MiB:.1f} MiB"
              f" | {'yes' if r['peak'] <= fit_goal else 'NO'} |")
    if len(fit) > 1:
        print(f"\nfits: medfs pass 2 / pass 1 = {fit[1]['rate'] / fit[0]['rate']:.2f}x (cache hits after the first pass)")
    peak = max(r["peak"] for r in res.values())
    print(f"\npeak RSS {peak / MiB:.1f} MiB vs goal {goal / MiB:.1f} MiB: {'within' if peak <= goal else 'OVER'}"
          f" ({peak / goal:.2f}x of the goal); ratios > 1 mean medfs faster than the extracted files;"
          f" measurement time {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
