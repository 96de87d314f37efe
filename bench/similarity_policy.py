"""Replay the similarity layer's decisions from `bench/similarity_cv.py --dump` rows, at other
thresholds and narration vetoes, without training anything again:

    python bench/similarity_cv.py --no-group --no-calls --dump rows.jsonl   # out of fold, ~30 min
    python bench/similarity_policy.py rows.jsonl [--thresholds 0.58,0.62,0.66] [--narration 0.3,0.2,0.1]

Each dumped row holds what SimilarityLayer.review() reads (the rules' findings, the layer's
probability, the finding it would raise and whether a cue holds it back, the narration score), so
the replay gives the same prediction as the run at the run's settings; the script checks that first
and stops if a row disagrees. Then P/R pooled and as the mean over held-out batches, per setting.
Thresholds chosen here are chosen on these rows: confirm a change on batches nobody has scored.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from compliance.config import load_settings  # noqa: E402
from compliance.rules.similarity import QUESTION_SIGNAL_P  # noqa: E402


def predicted(row: dict, threshold: float, narration_veto: float) -> bool:
    """SimilarityLayer.review() on the dumped row (veto_below 0, as shipped)."""
    p = row["p"]
    if row["rules"]:
        if (row["scored"] and row["role"] == "unknown" and p < threshold and narration_veto
                and (row["narration"] or 0.0) >= narration_veto):
            return False
        return True
    if not row["scored"] or row["sim_kind"] is None or row["held_back"] or p < threshold:
        return False
    return not (row["sim_kind"] == "signal" and row["question"] and p < QUESTION_SIGNAL_P)


def scores(rows: list[dict], threshold: float, narration_veto: float) -> dict:
    per: dict[str, list[int]] = {}
    for r in rows:
        gold, pred = r["label"] == "violation", predicted(r, threshold, narration_veto)
        c = per.setdefault(r["fold"], [0, 0, 0])
        c[0] += gold and pred
        c[1] += pred and not gold
        c[2] += gold and not pred
    tp, fp, fn = (sum(c[i] for c in per.values()) for i in range(3))

    def mean(f) -> float:
        return sum(f(*c) for c in per.values()) / len(per)

    return {"tp": tp, "fp": fp, "fn": fn,
            "precision": round(tp / (tp + fp) if tp + fp else 1.0, 4),
            "recall": round(tp / (tp + fn) if tp + fn else 1.0, 4),
            "mean_precision": round(mean(lambda a, b, c: a / (a + b) if a + b else 1.0), 4),
            "mean_recall": round(mean(lambda a, b, c: a / (a + c) if a + c else 1.0), 4)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dumps", nargs="+", type=Path)
    ap.add_argument("--thresholds", default="", help="comma-separated layer thresholds to replay")
    ap.add_argument("--narration", default="", help="comma-separated narration vetoes to replay")
    a = ap.parse_args(argv)
    rows = [json.loads(line) for path in a.dumps for line in path.open(encoding="utf-8") if line.strip()]
    settings = load_settings()
    thr, nv = settings.similarity_threshold, settings.similarity_narration
    wrong = [r["id"] for r in rows if predicted(r, thr, nv) != r["predicted"]]
    if wrong:
        print(f"{len(wrong)} rows replay differently from the run (dumped with other settings or code?): "
              f"{', '.join(wrong[:10])}")
        return 1
    print(f"{len(rows)} rows from {len({r['fold'] for r in rows})} held-out batches; the replay matches the run")
    grid = [(thr, nv)] + [(float(t), nv) for t in a.thresholds.split(",") if t] + \
        [(thr, float(n)) for n in a.narration.split(",") if n]
    for t, n in dict.fromkeys(grid):
        s = scores(rows, t, n)
        print(f"threshold {t:.2f} narration veto {n:.2f}: pooled P {s['precision']:.4f} R {s['recall']:.4f} "
              f"(tp {s['tp']}, fp {s['fp']}, fn {s['fn']}); mean over batches P {s['mean_precision']:.4f} "
              f"R {s['mean_recall']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
