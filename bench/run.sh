#!/usr/bin/env bash
# Benchmarks medfs against the same files extracted on local disk (and any peer installed), in
# one run, on the deterministic data of make_data.py; prints the table with medfs/extracted
# ratios. Must run as root (drops the page cache between measurements).
#
#   bash bench/run.sh [ARCHIVE...]      default: mura_like.zip nih_like.tar.gz
#
# Also: random 4 KiB reads inside a 512 MiB deflated zip member (bigmember.py).
#
# Env: MEDFS_BENCH_DIR (default /tmp/medfs-bench), REPS (default 3), CAP (seconds, default 120),
#      PEERS=1 to include fuse-zip / ratarmount when installed.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
W=${MEDFS_BENCH_DIR:-/tmp/medfs-bench}
DATA=$W/data
OUT=$W/results-$(date +%Y%m%d-%H%M%S).jsonl
REPS=${REPS:-3}
CAP=${CAP:-120}
ARCHIVES=${*:-mura_like.zip nih_like.tar.gz}

cargo build --release --manifest-path "$ROOT/Cargo.toml" >&2
MEDFS=$ROOT/target/release/medfs
for a in $ARCHIVES; do
  if [ ! -f "$DATA/$a" ]; then
    # make_data.py needs numpy and pydicom: a venv of the bench's own.
    [ -x "$W/venv/bin/python" ] || { python3 -m venv "$W/venv" && "$W/venv/bin/pip" install -q numpy pydicom; }
    "$W/venv/bin/python" "$HERE/make_data.py" "$DATA" --only "$(echo "$a" | cut -d_ -f1)" >&2
  fi
done

B=(python3 "$HERE/bench.py")
for a in $ARCHIVES; do
  name=$(basename "$a")
  "${B[@]}" baseline --label extracted --archive "$DATA/$a" --dir "$W/extracted/${name%%.*}" --extract \
      --cap "$CAP" --reps "$REPS" --out "$OUT"
  # The raw view only (--no-datasets), as the peers show it; cold: no persistent index; warm
  # (--remount): from the index the cold mount wrote.
  "${B[@]}" run --label medfs --archive "$DATA/$a" --subdir "_archives/$name" \
      --mount "$MEDFS mount --foreground --no-datasets --index-dir $W/index {archive} {mnt}" --unmount "$MEDFS unmount {mnt}" \
      --pre-cold "rm -rf $W/index" --remount --cap "$CAP" --reps "$REPS" --out "$OUT"
  case "$a" in
    *.tar.gz|*.tgz)
      # The first mount streams the whole tar.gz once: compare with plain decompression.
      sync; echo 3 > /proc/sys/vm/drop_caches
      /usr/bin/time -f "gzip -dc $a (cold, same run): %e s" gzip -dc "$DATA/$a" > /dev/null ;;
  esac
  if [ "${PEERS:-0}" = 1 ] && command -v fuse-zip >/dev/null && [ "${a##*.}" = zip ]; then
    "${B[@]}" run --label fuse-zip --archive "$DATA/$a" --mount 'fuse-zip -f -r {archive} {mnt}' \
        --cap "$CAP" --reps "$REPS" --out "$OUT"
  fi
done
"${B[@]}" table "$OUT"
python3 "$HERE/ratios.py" "$OUT"
python3 "$HERE/bigmember.py" --mib 512
echo "raw results: $OUT" >&2
