"""End-to-end accuracy on the synthetic sales calls: audio in, findings out, against ground truth.

    python bench/calls.py [--mono] [--calls dev04,dev05]

For each call in ../shared/audio/calls, runs the whole pipeline (decode, channel split or
diarization, ASR, roles, rules) and matches findings to the planted violations: same category and
overlapping time (±1.5 s; call-level missing_disclosure by presence). Prints per-call and overall
precision / recall, every miss and false alarm, and hits on the must-not-flag traps."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "audio" / "calls"

from compliance.config import load_settings  # noqa: E402
from compliance.pipeline import AnalysisOptions, Analyzer  # noqa: E402

SLACK_S = 1.5


def overlaps(v, start: float, end: float) -> bool:
    return v.start <= end + SLACK_S and v.end >= start - SLACK_S


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mono", action="store_true", help="use the mono mixes (diarization) instead of stereo")
    parser.add_argument("--calls", default="", help="comma-separated ids (default: all)")
    args = parser.parse_args()
    ids = [c for c in args.calls.split(",") if c] or sorted(p.stem for p in SHARED.glob("dev*.json"))
    with tempfile.TemporaryDirectory() as tmp:
        analyzer = Analyzer(load_settings(data_dir=Path(tmp)))
        tp = fp = fn = traps = 0
        audio_s = wall_s = 0.0
        for cid in ids:
            truth = json.loads((SHARED / f"{cid}.json").read_text(encoding="utf-8"))
            path = SHARED / truth["audio"]["mono" if args.mono else "stereo"]
            t0 = time.perf_counter()
            result = analyzer.analyze(path, AnalysisOptions(store=False))
            wall_s += time.perf_counter() - t0
            audio_s += result.duration
            found = list(result.violations)
            matched = set()
            misses = []
            for gt in truth["violations"]:
                cands = [i for i, v in enumerate(found) if i not in matched and v.category == gt["category"]
                         and (gt["category"] == "missing_disclosure" or overlaps(v, gt["start"], gt["end"]))]
                if cands:
                    matched.add(cands[0])
                    # one planted violation may be flagged by several rules: they are not false alarms
                    matched.update(i for i in cands[1:] if found[i].kind != "absence")
                else:
                    misses.append(gt)
            extra = [v for i, v in enumerate(found) if i not in matched]
            # a finding on the same planted span under another rule is a duplicate, not a false alarm
            false_alarms = [v for v in extra if not any(overlaps(v, g["start"], g["end"]) for g in truth["violations"]
                                                        if g["category"] != "missing_disclosure")]
            trap_hits = [(t, v) for t in truth["must_not_flag"] for v in found
                         if v.kind in ("utterance", "signal") and overlaps(v, t["start"] + SLACK_S, t["end"] - SLACK_S)
                         and not any(overlaps(v, g["start"], g["end"]) for g in truth["violations"])]
            n_true = len(truth["violations"])
            tp += n_true - len(misses)
            fn += len(misses)
            fp += len(false_alarms)
            traps += len(trap_hits)
            roles = " ".join(f"{s.speaker}={s.role}({s.role_confidence:.2f})" for s in result.speakers)
            print(f"{cid}: planted {n_true}, found {n_true - len(misses)}, missed {len(misses)}, "
                  f"false alarms {len(false_alarms)}, trap hits {len(trap_hits)}  [{roles}]")
            for gt in misses:
                print(f"    MISS {gt['category']:28} {gt['start']:6.1f}-{gt['end']:6.1f} {gt['text']}")
            for v in false_alarms:
                print(f"    FA   {v.category:28} {v.start:6.1f}-{v.end:6.1f} {v.rule_id} {v.role} «{v.matched_text}»")
            for t, v in trap_hits:
                print(f"    TRAP {v.rule_id} on «{t['text']}» ({t['why']})")
        precision = tp / (tp + fp) if tp + fp else 1.0
        recall = tp / (tp + fn) if tp + fn else 1.0
        print(f"\n{'mono' if args.mono else 'stereo'}: {len(ids)} calls, {audio_s:.0f} s audio, "
              f"wall {wall_s:.0f} s (RTF {wall_s / audio_s:.3f})")
        print(f"precision {precision:.3f}  recall {recall:.3f}  (tp {tp}, fp {fp}, fn {fn}); trap hits {traps}")


if __name__ == "__main__":
    main()
