#!/usr/bin/env python3
"""The decoding bound of a zip's random reads: the members bench.py's random passes read, inflated
from the archive without FUSE by medfs's own decoder (benches/inflate_bound.rs: positioned reads,
flate2 on zlib-rs; Python's zlib was slower than medfs itself), one thread for the 1-thread pass
and one per core for the 8-thread pass. No FUSE filesystem that must inflate these members on this
machine reads them faster. Writes a row labelled "bound: inflate, N cores" to the results file, so
ratios.py can set medfs against it.

Tar.gz archives get no row: how much a random read must inflate depends on the tool's seek points.
Archives whose picked members are mostly stored get none either (nothing to inflate).

Usage: python3 bounds.py --archive A.zip [--reps 3] [--nrandom 2000] [--cap 120] --out R.jsonl
"""
import argparse
import json
import os
import statistics
import struct
import subprocess
import tempfile
import zipfile

import bench  # the same picks (seeds), cache dropping and manifest loading as the passes


def locate(archive):
    """name -> (data offset, compressed size, method, crc)."""
    out = {}
    with open(archive, "rb") as f, zipfile.ZipFile(archive) as z:
        for i in z.infolist():
            f.seek(i.header_offset)
            h = f.read(30)
            n, e = struct.unpack("<HH", h[26:30])
            out[i.filename] = (i.header_offset + 30 + n + e, i.compress_size, i.compress_type, i.CRC)
    return out


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def bound_binary():
    """Builds benches/inflate_bound.rs (release) and returns its path."""
    out = subprocess.run(["cargo", "bench", "--no-run", "--bench", "inflate_bound", "--message-format=json",
                          "--manifest-path", os.path.join(ROOT, "Cargo.toml")],
                         check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        msg = json.loads(line)
        if msg.get("reason") == "compiler-artifact" and msg["target"]["name"] == "inflate_bound" \
                and msg.get("executable"):
            return msg["executable"]
    raise SystemExit("bounds.py: inflate_bound did not build")


def one_pass(binary, archive, jobs, threads):
    bench.drop_caches()
    with tempfile.NamedTemporaryFile("w", suffix=".jobs") as f:
        f.write("".join(" ".join(map(str, j)) + "\n" for j in jobs))
        f.flush()
        out = subprocess.run([binary, archive, f.name, str(threads)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--archive", required=True)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--nrandom", type=int, default=2000)
    p.add_argument("--cap", type=float, default=120, help="accepted for run.sh; a pass is never capped")
    p.add_argument("--out", required=True)
    a = p.parse_args()
    if not a.archive.endswith(".zip"):
        return
    man = bench.load_manifest(a.archive)
    where = locate(a.archive)
    top = man.get("top") or []
    cores = os.cpu_count() or 2

    def jobs(seed):
        out = []
        for path, size, crc in bench.pick(man, a.nrandom, seed):
            # Manifest paths are relative to the archive's root folder when it has one.
            name = path if path in where else next((f"{t}/{path}" for t in top if f"{t}/{path}" in where), None)
            if name is None:
                raise SystemExit(f"bounds.py: {path} not found in {a.archive}")
            off, csize, method, zcrc = where[name]
            out.append((off, csize, method, size, zcrc))
        return out

    picks = jobs(1)
    if sum(j[2] == zipfile.ZIP_DEFLATED for j in picks) < len(picks) / 2:
        return
    binary = bound_binary()
    label = f"bound: inflate, {cores} cores"
    random_runs = [one_pass(binary, a.archive, jobs(1 + 1000 * r), 1) for r in range(a.reps)]
    parallel_runs = [one_pass(binary, a.archive, jobs(2 + 1000 * r), cores) for r in range(a.reps)]
    bad = sum(r["bad"] for r in random_runs + parallel_runs)
    if bad:
        raise SystemExit(f"bounds.py: {bad} members inflated to the wrong bytes")
    med = lambda runs: {"files_s": statistics.median(r["files_s"] for r in runs), "bad": 0}
    row = {"label": label, "archive": os.path.basename(a.archive), "archive_bytes": man["archive_bytes"],
           "results": {"random": med(random_runs), "parallel": med(parallel_runs)}, "reps": a.reps}
    with open(a.out, "a") as f:
        f.write(json.dumps(row) + "\n")
    print(f"{label} on {row['archive']}: 1 process {row['results']['random']['files_s']:,.0f} files/s, "
          f"{cores} processes {row['results']['parallel']['files_s']:,.0f} files/s")


if __name__ == "__main__":
    main()
