#!/usr/bin/env bash
# Benchmarks medfs against the same files extracted on local disk and against every peer that is
# installed (ratarmount with and without `-gs 1`, fuse-zip, archivemount), and the bounds (the
# extracted tree served through FUSE by medfs as loose files; the members inflated on every core
# without FUSE, bounds.py), in one run, on the deterministic data of make_data.py; prints the
# tables, then medfs/extracted, medfs/best-peer and medfs/bound per row (ratios.py). Must run as
# root (drops the page cache between measurements). Every read through every tool is checked
# against the archive's manifest (size and CRC32 of each file read, file count and byte total of
# the walk).
#
#   bash bench/run.sh [ARCHIVE...]      default: mura_like.zip nih_like.tar.gz dicom_like.zip
#
# Also: random 4 KiB reads inside a 512 MiB deflated zip member (bigmember.py; BIGMEMBER=0 skips),
# and the collection-scale warm mounts (warm_mount.py; COLLECTION=0 skips).
#
# Env: MEDFS_BENCH_DIR (default /tmp/medfs-bench), SCALE (make_data.py's entry-count factor,
#      default 1.0; data of another scale goes to its own folder), REPS (default 3), CAP (seconds
#      per measurement, default 120), NRANDOM (files per random-read pass, default 2000),
#      PEERS=0 to leave the peers out, PEER_REPS (default REPS: the slow peers hit CAP on
#      every pass, so a quick run gives them 1), RATARMOUNT (default: on PATH, else
#      MEDFS_BENCH_DIR/venv-ratarmount/bin/ratarmount).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
W=${MEDFS_BENCH_DIR:-/tmp/medfs-bench}
SCALE=${SCALE:-1.0}
case "$SCALE" in 1|1.0) DATA=$W/data ;; *) DATA=$W/data-s${SCALE/./} ;; esac
OUT=$W/results-$(date +%Y%m%d-%H%M%S).jsonl
REPS=${REPS:-3}
CAP=${CAP:-120}
NRANDOM=${NRANDOM:-2000}
ARCHIVES=${*:-mura_like.zip nih_like.tar.gz dicom_like.zip}

cargo build --release --manifest-path "$ROOT/Cargo.toml" >&2
MEDFS=${CARGO_TARGET_DIR:-$ROOT/target}/release/medfs
for a in $ARCHIVES; do
  if [ ! -f "$DATA/$a" ]; then
    # make_data.py needs numpy and pydicom: a venv of the bench's own.
    [ -x "$W/venv/bin/python" ] || { python3 -m venv "$W/venv" && "$W/venv/bin/pip" install -q numpy pydicom; }
    "$W/venv/bin/python" "$HERE/make_data.py" "$DATA" --scale "$SCALE" --only "$(echo "$a" | cut -d_ -f1)" >&2
  fi
done

# Peers: each one found is measured; a missing one is skipped with how to install it.
RATARMOUNT=${RATARMOUNT:-$(command -v ratarmount || echo "$W/venv-ratarmount/bin/ratarmount")}
SKIPPED=" "
have() {
  [ "${PEERS:-1}" = 1 ] || return 1
  case "$SKIPPED" in *" $1 "*) return 1 ;; esac  # said once, not per archive
  case "$1" in
    ratarmount) [ -x "$RATARMOUNT" ] && return 0
      echo "skipped ratarmount: not installed (python3 -m venv $W/venv-ratarmount && $W/venv-ratarmount/bin/pip install ratarmount)" >&2 ;;
    fuse-zip) command -v fuse-zip >/dev/null && return 0
      echo "skipped fuse-zip: not installed (apt-get install fuse-zip)" >&2 ;;
    archivemount) command -v archivemount >/dev/null && return 0
      echo "skipped archivemount: not installed (apt-get install archivemount)" >&2 ;;
  esac
  SKIPPED="$SKIPPED$1 "
  return 1
}
# fuse-zip and archivemount are libfuse2 tools: their own fusermount when there is one.
FUSERMOUNT2=$(command -v fusermount || echo fusermount3)

B=(python3 "$HERE/bench.py")
C=(--cap "$CAP" --reps "$REPS" --nrandom "$NRANDOM" --out "$OUT")
P=(--cap "$CAP" --reps "${PEER_REPS:-$REPS}" --nrandom "$NRANDOM" --out "$OUT")
for a in $ARCHIVES; do
  name=$(basename "$a")
  "${B[@]}" baseline --label extracted --archive "$DATA/$a" --dir "$W/extracted/${name%%.*}" --extract "${C[@]}"
  # The bounds: the extracted tree served by medfs itself as loose files (the same FUSE layer
  # and request handling with no archive under it: what FUSE costs per request here; bindfs was
  # tried and is slower than medfs on the archive, so it bounds nothing), and, for zips of
  # deflated members, the same members inflated on every core without FUSE (bounds.py).
  "${B[@]}" run --label "bound: FUSE, medfs over the extracted tree" --archive "$DATA/$a" --subdir _archives \
      --mount "$MEDFS mount --foreground --no-datasets --index-dir $W/index-extracted $W/extracted/${name%%.*} {mnt}" \
      --unmount "$MEDFS unmount {mnt}" "${C[@]}"
  python3 "$HERE/bounds.py" --archive "$DATA/$a" "${C[@]}"
  # The raw view only (--no-datasets), as the peers show it; cold: no persistent index; warm
  # (--remount): from the index the cold mount wrote.
  "${B[@]}" run --label medfs --archive "$DATA/$a" --subdir "_archives/$name" \
      --mount "$MEDFS mount --foreground --no-datasets --index-dir $W/index {archive} {mnt}" --unmount "$MEDFS unmount {mnt}" \
      --pre-cold "rm -rf $W/index" --remount "${C[@]}"
  case "$a" in
    *.tar.gz|*.tgz)
      # The first mount streams the whole tar.gz once: compare with plain decompression.
      sync; echo 3 > /proc/sys/vm/drop_caches
      /usr/bin/time -f "gzip -dc $a (cold, same run): %e s" gzip -dc "$DATA/$a" > /dev/null ;;
  esac
  # Peers keep their index out of the data folder and start cold (index deleted) each rep.
  PI=$W/peer-index
  mkdir -p "$PI"
  if have ratarmount; then
    "${B[@]}" run --label ratarmount --archive "$DATA/$a" \
        --mount "$RATARMOUNT -f --index-file $PI/{archive_name}.sqlite {archive} {mnt}" \
        --pre-cold "rm -f $PI/{archive_name}.sqlite" "${P[@]}"
    case "$a" in
      *.tar.gz|*.tgz)  # seek points every 1 MiB instead of 16: its fastest random reads
        "${B[@]}" run --label "ratarmount -gs 1" --archive "$DATA/$a" \
            --mount "$RATARMOUNT -f -gs 1 --index-file $PI/{archive_name}.gs1.sqlite {archive} {mnt}" \
            --pre-cold "rm -f $PI/{archive_name}.gs1.sqlite" "${P[@]}" ;;
    esac
  fi
  if [ "${a##*.}" = zip ] && have fuse-zip; then
    "${B[@]}" run --label fuse-zip --archive "$DATA/$a" --mount "fuse-zip -f -r {archive} {mnt}" \
        --unmount "$FUSERMOUNT2 -u {mnt}" "${P[@]}"
  fi
  if have archivemount; then
    "${B[@]}" run --label archivemount --archive "$DATA/$a" --mount "archivemount -f -o readonly {archive} {mnt}" \
        --unmount "$FUSERMOUNT2 -u {mnt}" "${P[@]}"
  fi
done
"${B[@]}" table "$OUT"
python3 "$HERE/ratios.py" "$OUT"
[ "${BIGMEMBER:-1}" = 0 ] || python3 "$HERE/bigmember.py" --mib 512
# Collection scale: warm mounts (persisted indexes and tree) of an NIH look-alike of 112,120
# images in 12 tar.gz and of 300,000 generic DICOM files in 30 zips, with datasets on: ready time
# and idle RSS against the goals (warm_mount.py; SCALE applies).
[ "${COLLECTION:-1}" = 0 ] || python3 "$HERE/warm_mount.py" --scale "$SCALE" --runs "$REPS" --medfs "medfs=$MEDFS"
echo "raw results: $OUT" >&2
