#!/usr/bin/env python3
"""Prints each tool's numbers next to the extracted-on-disk baseline of the same run, as ratios.

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


if __name__ == "__main__":
    main()
