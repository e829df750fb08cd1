#!/usr/bin/env bash
# The whole test suite: sets up the Python venv the client tests use (pydicom, nibabel, numpy;
# Pillow, imagecodecs and SimpleITK for the derived images of tests/derived.rs; dcm2niix and
# SimpleITK for the derived NIfTI of tests/derive_nifti.rs; target/pyenv, reused), then runs
# every test, real FUSE mounts included.
set -euo pipefail
cd "$(dirname "$0")"
PYENV=target/pyenv
if ! "$PYENV/bin/python" -c "import pydicom, nibabel, numpy, PIL, imagecodecs, SimpleITK" 2>/dev/null || [ ! -x "$PYENV/bin/dcm2niix" ]; then
    python3 -m venv "$PYENV"
    "$PYENV/bin/pip" install -q --disable-pip-version-check pydicom nibabel numpy pillow imagecodecs dcm2niix SimpleITK
fi
export MEDFS_PYTHON="$PWD/$PYENV/bin/python"
export MEDFS_REQUIRE_PYDICOM=1
exec cargo test --release "$@"
