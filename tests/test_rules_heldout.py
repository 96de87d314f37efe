"""Batch E: tests/data/rules_heldout.tsv holds real utterances (regulators' notices, court and penalty
reports, news quotes of agents' words; zh and en) that were held out until round 5 of rule tuning, when
they were tuned on (the blind check is now batch G, tests/test_rules_similarity.py). The rows also appear
in rules/corpus/real_dev.tsv (tagged [heldout-*] in `source`). The floors are the rules alone (no
similarity layer, which trains on the corpus), kept as they were measured while the rows were unseen."""

from pathlib import Path

from compliance.detect import load_packs
from compliance.rules.evaluate import evaluate, read_tsv

HELDOUT = Path(__file__).parent / "data" / "rules_heldout.tsv"

# Batch E (26 rows, 10 violations), never tuned on: original packs P 0.60/R 0.30, after round 3 and
# round 4 P 0.75/R 0.30. Earlier batches, each measured while still held out (before -> after one round):
# B (108) P 0.78/R 0.57 -> P 0.80/R 0.67; C (50) P 0.38/R 0.33 -> P 0.50/R 0.50; D (36) P 0.67/R 0.46 ->
# P 0.86/R 0.46. Floors sit a little below the last measurement; recall on unseen rows is the weak point.
P_FLOOR = 0.70
R_FLOOR = 0.25


def test_heldout_floors():
    rows = read_tsv(HELDOUT)
    assert len(rows) >= 20
    rep = evaluate(rows, load_packs(similarity=False))
    o = rep["overall"]
    assert o["precision"] >= P_FLOOR, rep["false_alarms"]
    assert o["recall"] >= R_FLOOR, [m["text"] for m in rep["misses"]]


def test_heldout_rows_are_in_dev_set():
    dev = {r.text for r in read_tsv(HELDOUT.parents[2] / "rules" / "corpus" / "real_dev.tsv")}
    assert all(r.text in dev for r in read_tsv(HELDOUT))
