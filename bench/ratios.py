#!/usr/bin/env python3
"""Prints each tool's numbers next to the extracted-on-disk baseline of the same run, as ratios,
then one line per (archive, metric): extracted, medfs, the best peer, the tightest bound (rows
labelled "bound: ...": the extracted tree through a FUSE passthrough, the members inflated without
FUSE), medfs/extracted, medfs/best-peer and medfs/bound.

Usage: python3 ratios.py RESULTS.jsonl   (rows written by bench.py; medians when --reps > 1)
"""
import json
import sys

METRICS = [
    # (name, path into results, higher is better)
    ("walk s (find)", ("walk", "elapsed"), False),
    ("stat s", ("stat", "elapsed"), False),
    ("rand 1T files/s", ("random", "files_s"), True),
    ("rand 8T files/s", ("parallel", "files_s"), True),
    ("seq MB/s", ("seq", "MB_s"), True),
    ("deep read s", ("deep", "total_s"), False),
]


def get(row, path):
    v = row.get("results", {})
    for k in path:
        if not isinstance(v, dict) or k not in v:
            return None
        v = v[k]
    return v


# (name, op whose failed check keeps a tool out of "best peer", value of a row, higher is better)
SUMMARY = [
    ("random 1 thread, files/s", "random", lambda r: get(r, ("random", "files_s")), True),
    ("random 8 threads, files/s", "parallel", lambda r: get(r, ("parallel", "files_s")), True),
    ("big member sequential, MB/s", "seq", lambda r: get(r, ("seq", "MB_s")), True),
    ("walk (find), s", "walk", lambda r: get(r, ("walk", "elapsed")), False),
    ("stat all, s", "stat", lambda r: get(r, ("stat", "elapsed")), False),
    ("peak RSS, MiB", None, lambda r: r.get("rss_peak_MiB"), False),
]


def fmt(v):
    return "-" if v is None else f"{v:,.0f}" if v >= 100 else f"{v:.3g}"


def ratio(a, b, higher):
    if a is None or b is None or not a or not b:
        return "-"
    return f"{(a / b if higher else b / a):.2f}x"


def is_bound(row):
    """Rows of bench/run.sh's bounds (a FUSE passthrough, inflating without FUSE), not peers."""
    return row["label"].startswith("bound:")


def summary(rows):
    print("\n### medfs against the extracted tree and the best peer (same run; x > 1: medfs better)\n")
    print("| archive | metric | extracted | medfs | best peer | tightest bound | medfs/extracted "
          "| medfs/best peer | medfs/bound |")
    print("|---|---|---|---|---|---|---|---|---|")
    probs = []
    for archive in sorted({r["archive"] for r in rows}):
        mine = [r for r in rows if r["archive"] == archive]
        base = next((r for r in mine if r["label"] == "extracted"), None)
        med = next((r for r in mine if r["label"] == "medfs"), None)
        peers = [r for r in mine if r["label"] not in ("extracted", "medfs") and not is_bound(r)]
        bounds = [r for r in mine if is_bound(r)]
        for r in mine:
            for p in r.get("problems") or []:
                probs.append(f"{r['label']} on {archive}: {p}")
        for name, op, val, higher in SUMMARY:
            cands = [(val(r), r["label"]) for r in peers if val(r) is not None
                     and not (op and any(p.startswith(op) for p in r.get("problems") or []))]
            best = (max if higher else min)(cands) if cands else (None, None)
            b, m = val(base) if base else None, val(med) if med else None
            peer = f"{best[1]} {fmt(best[0])}" if best[1] else "-"
            # Each bound caps what any tool can reach here; the tightest one is the one that binds.
            lims = [(val(r), r["label"][len("bound: "):]) for r in bounds if val(r) is not None]
            lim = (min if higher else max)(lims) if lims else (None, None)
            bound = f"{lim[1]} {fmt(lim[0])}" if lim[1] else "-"
            print(f"| {archive} | {name} | {fmt(b)} | {fmt(m)} | {peer} | {bound} | "
                  f"{ratio(m, b, higher) if name != 'peak RSS, MiB' else '-'} | {ratio(m, best[0], higher)} | "
                  f"{ratio(m, lim[0], higher)} |")
    for p in probs:
        print(f"- check failed: {p}")


def main():
    rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
    for archive in sorted({r["archive"] for r in rows}):
        base = next((r for r in rows if r["archive"] == archive and r["label"] == "extracted"), None)
        print(f"\n### {archive}: each tool against the extracted tree (same run)\n")
        print("| tool | ready s | " + " | ".join(m[0] for m in METRICS) + " |")
        print("|---|---|" + "---|" * len(METRICS))
        for r in rows:
            if r["archive"] != archive:
                continue
            ready = r.get("ready_cold_s", r.get("extract_s"))
            cells = [f"{ready:.2f}" if ready is not None else "-"]
            for _, path, higher in METRICS:
                v = get(r, path)
                b = get(base, path) if base else None
                if v is None:
                    cells.append("-")
                elif b and r is not base:
                    ratio = v / b if higher else b / v if v else float("inf")
                    cells.append(f"{v:.3g} ({ratio:.2f}x)")
                else:
                    cells.append(f"{v:.3g}")
            print(f"| {r['label']} | " + " | ".join(cells) + " |")
        print("\n(x = tool relative to extracted; > 1 means faster than the files on disk)")
    summary(rows)


if __name__ == "__main__":
    main()
