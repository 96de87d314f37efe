#!/usr/bin/env python3
"""Make torchaudio usable on a CPU-only torch.

Why: every torchaudio wheel on PyPI that pairs with our pinned CPU torch (constraints.txt) is a
CUDA build (``torchaudio 2.11.0+cu130``). Its compiled extension ``lib/_torchaudio*.so`` links
against ``libc10_cuda.so``, which a CPU torch does not ship, so ``import torchaudio`` -- and with
it ``import pyannote.audio`` -- dies with ``OSError: Could not load this library``.

torchaudio treats a *missing* extension as "not built" and falls back to pure Python, which is
all pyannote.audio needs (resample, kaldi fbank, transforms). This script therefore renames the
CUDA-only shared objects in ``torchaudio/lib/`` to ``*.so.cuda-disabled`` -- only when torch is a
CPU build and torchaudio cannot be imported as installed. Idempotent: running it again, or on a
machine where torchaudio already imports, changes nothing. ``--restore`` undoes it.

Usage (inside the project virtualenv, after ``pip install -c constraints.txt -e .``)::

    python scripts/fix_torchaudio.py          # fix if needed, then verify
    python scripts/fix_torchaudio.py --check  # exit 1 if torchaudio / pyannote.audio fail to import

torchcodec (also a CUDA build) is left alone: pyannote.audio catches its import failure and only
loses file decoding, which this project never uses (audio is passed in memory as a waveform).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

SUFFIX = ".cuda-disabled"


def _torchaudio_lib() -> Path | None:
    spec = importlib.util.find_spec("torchaudio")  # does not execute torchaudio/__init__.py
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "lib"


def _probe(code: str) -> tuple[bool, str]:
    env = dict(os.environ, PYANNOTE_METRICS_ENABLED="false", PYTHONWARNINGS="ignore")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    return p.returncode == 0, (p.stdout + p.stderr).strip()


def _torch_is_cpu() -> bool:
    ok, out = _probe("import torch; print('CUDA' if torch.version.cuda else 'CPU')")
    return ok and out.splitlines()[-1] == "CPU"


def check(verbose: bool = True) -> bool:
    ok_ta, out_ta = _probe("import torchaudio, torchaudio.compliance.kaldi, torchaudio.functional")
    ok_pa, out_pa = _probe("import pyannote.audio; from pyannote.audio import Model, Inference")
    if verbose:
        print(f"import torchaudio:     {'ok' if ok_ta else 'FAILED'}")
        if importlib.util.find_spec("pyannote") is not None:
            print(f"import pyannote.audio: {'ok' if ok_pa else 'FAILED'}")
        if not ok_ta:
            print(out_ta.splitlines()[-1] if out_ta else "")
    has_pa = importlib.util.find_spec("pyannote") is not None
    return ok_ta and (ok_pa or not has_pa)


def fix() -> int:
    lib = _torchaudio_lib()
    if lib is None:
        print("fix_torchaudio: torchaudio is not installed; nothing to do.")
        return 0
    ok, out = _probe("import torchaudio")
    if ok:
        print(f"fix_torchaudio: torchaudio imports as installed ({lib.parent}); nothing to do.")
        return 0 if check() else 1
    if not _torch_is_cpu():
        print("fix_torchaudio: torch is a CUDA build but torchaudio fails to import; not touching it:")
        print(out)
        return 1
    moved = []
    for so in sorted(lib.glob("*.so")):
        so.rename(so.with_name(so.name + SUFFIX))
        moved.append(so.name)
    if moved:
        print(
            "fix_torchaudio: torchaudio's compiled extensions are CUDA builds that a CPU torch cannot "
            f"load; disabled {', '.join(moved)} in {lib} (torchaudio now runs its pure-Python code)."
        )
    else:
        print(f"fix_torchaudio: no compiled extensions left in {lib}; torchaudio still fails:")
        print(out)
    return 0 if check() else 1


def restore() -> int:
    lib = _torchaudio_lib()
    if lib is None:
        return 0
    for so in sorted(lib.glob("*.so" + SUFFIX)):
        so.rename(so.with_name(so.name[: -len(SUFFIX)]))
        print(f"restored {so.name[: -len(SUFFIX)]}")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="only verify the imports")
    ap.add_argument("--restore", action="store_true", help="re-enable the renamed extensions")
    a = ap.parse_args()
    if a.restore:
        return restore()
    if a.check:
        return 0 if check() else 1
    return fix()


if __name__ == "__main__":
    sys.exit(main())
