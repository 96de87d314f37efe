"""Memory and speed on a long call: `python bench/long_call.py [--minutes 60] [--mono]`.

Builds a dual-channel call of the requested length by repeating the synthetic sales calls in
../shared/audio/calls (so it is real speech throughout, with the usual pauses), writes it as FLAC,
and runs the full `Analyzer.analyze` on it (decode, per-channel VAD + transcription, detection,
store) while sampling the process's resident memory. Prints the peak RSS, the RSS the decoded audio
alone accounts for, and the real-time factor."""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
SHARED = ROOT.parent / "shared" / "audio" / "calls"

from audio_factory import write_audio  # noqa: E402
from compliance.config import load_settings  # noqa: E402
from compliance.ingest import load_audio  # noqa: E402
from compliance.pipeline import Analyzer  # noqa: E402


def rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize() / 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--mono", action="store_true", help="a mono call (diarized) instead of dual-channel")
    args = parser.parse_args()
    calls = sorted(SHARED.glob("dev*.stereo.flac"))
    if not calls:
        sys.exit(f"no calls in {SHARED}")
    target = int(args.minutes * 60 * 16000)
    pieces, total = [], 0
    while total < target:
        for path in calls:
            samples = load_audio(path).samples
            pieces.append(samples)
            total += samples.shape[1]
            if total >= target:
                break
    audio = np.concatenate(pieces, axis=1)[:, :target]
    del pieces
    if args.mono:
        audio = audio.sum(axis=0, keepdims=True)
    with tempfile.TemporaryDirectory() as tmp:
        path = write_audio(Path(tmp) / "long.flac", audio, 16000)
        audio_mb = audio.nbytes / 1e6
        del audio
        settings = load_settings(data_dir=Path(tmp) / "data")
        analyzer = Analyzer(settings)
        _ = analyzer.transcriber  # load the model before measuring
        base = rss_mb()
        peak = [base]
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.5):
                peak[0] = max(peak[0], rss_mb())

        threading.Thread(target=sample, daemon=True).start()
        t0 = time.perf_counter()
        result = analyzer.analyze(path)
        elapsed = time.perf_counter() - t0
        done.set()
    print(f"call: {args.minutes:.0f} min, {'mono' if args.mono else 'dual-channel'}; "
          f"{len(result.utterances)} utterances, {len(result.violations)} findings")
    print(f"decoded audio (float32): {audio_mb:.0f} MB")
    print(f"RSS after model load: {base:.0f} MB; peak during analysis: {peak[0]:.0f} MB "
          f"(+{peak[0] - base:.0f} MB, {(peak[0] - base) / audio_mb:.1f}x the decoded audio)")
    print(f"wall time {elapsed:.0f} s, RTF {elapsed / (args.minutes * 60):.3f}")


if __name__ == "__main__":
    main()
