"""Evaluate the packs on a labelled TSV: header `id text label category role language` (extra
columns allowed). label is 'violation' or 'compliant'. A row counts as predicted 'violation' when
any utterance-level rule or customer signal fires on it (call-level checks need a whole call and
are not run here). Precision, recall and F1 overall and per category; every miss and false alarm."""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import ComplianceError
from ..types import Utterance

REQUIRED = ("id", "text", "label", "category", "role", "language")


@dataclass
class Row:
    id: str
    text: str
    label: str
    category: str
    role: str
    language: str
    predicted: bool = False
    categories: list[str] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)
    reason: str = ""


@dataclass
class Scores:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def add(self, gold: bool, pred: bool) -> None:
        if gold and pred:
            self.tp += 1
        elif pred:
            self.fp += 1
        elif gold:
            self.fn += 1
        else:
            self.tn += 1

    def as_dict(self) -> dict:
        return {"tp": self.tp, "fp": self.fp, "fn": self.fn, "tn": self.tn,
                "precision": round(self.precision, 4), "recall": round(self.recall, 4),
                "f1": round(self.f1, 4), "n": self.tp + self.fp + self.fn + self.tn}


def read_tsv(path: str | Path) -> list[Row]:
    path = Path(path)
    if not path.exists():
        raise ComplianceError(f"{path}: file not found")
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        cols = reader.fieldnames or []
        missing = [c for c in REQUIRED if c not in cols]
        if missing:
            raise ComplianceError(f"{path}: missing column(s) {', '.join(missing)}; "
                                  f"the header must include {' '.join(REQUIRED)}")
        rows = []
        for n, r in enumerate(reader, start=2):
            label = (r.get("label") or "").strip().lower()
            if label not in ("violation", "compliant"):
                raise ComplianceError(f"{path}: line {n}: label must be 'violation' or "
                                      f"'compliant', got {r.get('label')!r}")
            role = (r.get("role") or "unknown").strip().lower() or "unknown"
            if role not in ("agent", "customer", "unknown", "supervisor"):
                raise ComplianceError(f"{path}: line {n}: role must be agent, customer or "
                                      f"unknown, got {role!r}")
            rows.append(Row(id=(r.get("id") or str(n)).strip(), text=r.get("text") or "",
                            label=label, category=(r.get("category") or "").strip(),
                            role=role, language=(r.get("language") or "zh").strip() or "zh"))
    return rows


def evaluate(rows: list[Row], engine) -> dict:
    from ..detect import detect

    overall = Scores()
    per_cat: dict[str, Scores] = {}
    misses, false_alarms = [], []
    cat_agree = 0
    sim = getattr(engine, "similarity", None)
    utts = [Utterance(speaker=r.role, start=0.0, end=1.0, text=r.text, role=r.role, language=r.language)
            for r in rows]
    for k, (r, u) in enumerate(zip(rows, utts)):
        if sim is not None and k % 256 == 0:
            sim.prepare(utts[k:k + 256])  # each row is its own call: embed them in batches all the same
        vs = detect([u], engine, call_level=False)
        r.predicted = bool(vs)
        r.categories = sorted({v.category for v in vs})
        r.rules = sorted({v.rule_id for v in vs})
        r.reason = vs[0].reason if vs else ""
        gold = r.label == "violation"
        overall.add(gold, r.predicted)
        per_cat.setdefault(r.category or "-", Scores()).add(gold, r.predicted)
        if gold and r.predicted and r.category in r.categories:
            cat_agree += 1
        if gold and not r.predicted:
            misses.append(r)
        elif r.predicted and not gold:
            false_alarms.append(r)
    n_tp = overall.tp
    sim = getattr(engine, "similarity", None)
    trained = {s.text for s in sim.model.samples} if sim is not None else set()
    return {
        "in_training": sum(r.text in trained for r in rows),
        "overall": overall.as_dict(),
        "per_category": {k: v.as_dict() for k, v in sorted(per_cat.items())},
        "category_agreement": round(cat_agree / n_tp, 4) if n_tp else 1.0,
        "misses": [asdict(r) for r in misses],
        "false_alarms": [asdict(r) for r in false_alarms],
        "rows": len(rows),
    }
