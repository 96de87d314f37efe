"""Leave-one-source-batch-out evaluation of the similarity layer (compliance/rules/similarity.py).

    python bench/similarity_cv.py [--folds real_batch_f,real_batch_g,...] [--no-group] [--json]

For every real batch of rules/corpus (default: every `real_batch_*.tsv`), a layer is trained on
everything except that batch -- the other corpus files and every rule's examples, minus any training
text that is also a row of the held-out batch (some rule examples were written from a batch's
misses) -- and `compliance rules eval`'s evaluate() scores rules + layer on the batch, beside the
rules alone. The table gives P/R/F1 per held-out batch and the mean over batches: choose changes by
the mean, never by one batch. The rules were tuned on the dev set and batch F (not G and later), so
the rules-alone figure on F is optimistic; what the layer adds is measured the same way on each.

Also (skip with --no-group): the layer ALONE (no rules) in a grouped 5-fold cross-validation over
every real row (dev set + batches), grouped by source article so that one article's quotes never
sit on both sides -- a steadier measure of the layer's own generalisation (many more rows than one
batch), reported as AUC and P/R at the threshold.

And ordinary call talk no corpus file holds (tests/data/ordinary_heldout.tsv): how many turns the
shipped layer flags (every one is a false alarm).

And the synthetic calls (../shared/audio/calls): with the shipped layer (all of the corpus),
dev05-08 (not in the corpus) must keep every planted violation found and every must-not-flag line
quiet; dev01-04 are checked the same way with a layer trained without calls_dev01-04.tsv. Extra
findings (neither planted nor must-not-flag) are counted.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from compliance.config import load_settings  # noqa: E402
from compliance.detect import detect, similarity_layer  # noqa: E402
from compliance.rules.engine import Engine  # noqa: E402
from compliance.rules.evaluate import Scores, evaluate, read_tsv  # noqa: E402
from compliance.rules.loader import RULES_DIR, load_pack_files  # noqa: E402
from compliance.rules.similarity import (SimilarityLayer, SimilarityModel, corpus_files, ends_as_question,  # noqa: E402
                                         read_corpus, training_set)
from compliance.types import Utterance  # noqa: E402

CORPUS = RULES_DIR / "corpus"
CALLS = ROOT.parent / "shared" / "audio" / "calls"


#: SimilarityModel keyword arguments for every layer trained here (--c, --pinyin)
MODEL: dict = {}
#: other thresholds each fold is also scored at (--thresholds)
THRESHOLDS: list[float] = []


def layer_without(packs, files, held_texts: set[str], settings) -> SimilarityLayer:
    """A layer over `files`, trained without any sample whose text is in `held_texts`."""
    layer = similarity_layer(packs, files, settings)
    layer.held_out = frozenset(held_texts)
    layer._model = SimilarityModel(layer.training_samples(), encoder=layer.encoder, mix=layer.mix, **MODEL)
    return layer


def engine_with(packs, layer) -> Engine:
    eng = Engine(packs)
    eng.similarity = layer
    return eng


def _mean(scores: list[dict]) -> dict:
    """Precision, recall and F1 averaged over folds (each fold's `overall` scores)."""
    return {m: round(sum(s[m] for s in scores) / len(scores), 4) for m in ("precision", "recall", "f1")}


def _prf(o: dict) -> str:
    return f"P {o['precision']:.3f} R {o['recall']:.3f} F1 {o['f1']:.3f}"


def batch_folds(packs, names: list[str], settings, verbose: bool) -> dict:
    files = corpus_files(RULES_DIR)
    rules_only = Engine(packs)
    out = {}
    for name in names:
        held = CORPUS / f"{name}.tsv"
        rows = read_tsv(held)
        texts = {r.text.strip() for r in rows}
        t0 = time.perf_counter()
        layer = layer_without(packs, [f for f in files if f != held], texts, settings)
        layer.model  # noqa: B018 (train now, for the timing)
        train_s = time.perf_counter() - t0
        alone = evaluate(read_tsv(held), rules_only)
        eng = engine_with(packs, layer)
        sweep = {}
        for thr in THRESHOLDS:  # the same trained layer at other thresholds (its scores are memoised)
            layer.threshold = thr
            sweep[thr] = evaluate(read_tsv(held), eng)["overall"]
        layer.threshold = settings.similarity_threshold
        both = evaluate(read_tsv(held), eng)
        assert both["in_training"] == 0, (name, both["in_training"])
        if DUMP is not None:
            _dump_rows(name, rows, rules_only, eng, layer, both)
        out[name] = {"rows": len(rows), "rules": alone["overall"], "layer": both["overall"], "sweep": sweep,
                     "train_s": round(train_s, 2), "misses": both["misses"], "false_alarms": both["false_alarms"]}
        if verbose:
            print(f"--- {name}: misses with the layer")
            for m in both["misses"]:
                print(f"  FN {m['id']} {m['role']:8} {m['category']:26} {m['text'][:90]}")
            for m in both["false_alarms"]:
                print(f"  FP {m['id']} {m['role']:8} {m['category']:26} {','.join(m['rules'])[:40]:40} "
                      f"{m['text'][:70]}")
    return out


#: a file that --dump appends each held-out row's scoring to (JSON lines), or None
DUMP: Path | None = None


def _dump_rows(fold: str, rows, rules_only, eng, layer, both) -> None:
    """Per held-out row, what the fold's layer made of it, whatever the threshold: the rules'
    findings (alone), the layer's probability, the category and kind of the finding it would raise
    and whether a cue would hold it back (question, relief, quoting, suppression, a disclosure),
    and the narration score that may veto an unknown speaker's rule hits. Enough to replay other
    thresholds per role, category or language offline (bench/similarity_policy.py)."""
    wrong = {m["id"] for m in both["misses"]} | {m["id"] for m in both["false_alarms"]}
    with DUMP.open("a", encoding="utf-8") as fh:
        for r in rows:
            u = Utterance(speaker=r.role, start=0.0, end=1.0, text=r.text, role=r.role, language=r.language)
            found = detect([u], rules_only, call_level=False)
            rec = {"fold": fold, "id": r.id, "label": r.label, "role": r.role, "language": r.language,
                   "category": r.category, "rules": sorted({v.rule_id for v in found}),
                   "kinds": sorted({v.kind for v in found}),
                   "predicted": (r.label == "violation") != (r.id in wrong),
                   "scored": layer._scored(u), "p": None, "sim_category": None, "sim_kind": None,
                   "held_back": None, "question": ends_as_question(r.text),
                   "narration": None}
            if rec["scored"]:
                p = rec["p"] = round(layer.probability(u), 5)
                rec["z_ngram"], rec["z_encoder"] = _parts(layer.model, r.text, r.role)
                if found and r.role == "unknown":
                    rec["narration"] = round(layer.register.narration(r.text), 5)
                v = layer.finding(u, p)
                if v is not None:
                    rec["sim_category"], rec["sim_kind"] = v.category, v.kind
                    an = eng.analyze(u)
                    if an.live:
                        eng.match_utterance(an)
                    if v.kind == "signal":
                        rec["held_back"] = layer._relieved(u) or layer._quotes_a_claim(u, eng)
                    else:
                        rec["held_back"] = layer._suppressed(v.category, an, eng) or layer._discloses(u)
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")


def _parts(model, text: str, role: str) -> tuple[float, float | None]:
    """The two logits the layer mixes (SimilarityModel.logits), rounded for the dump."""
    z, ze = model.logits(text, role)
    return round(z, 4), (round(ze, 4) if ze is not None else None)


_GROUP = re.compile(r"^\s*([^\s(]+)")


def _group(source: str) -> str:
    """The source article a row came from: the `source` column's leading address."""
    m = _GROUP.match(source.split(":", 1)[1] if ":" in source else source)
    return m.group(1) if m else source


def grouped_cv(packs, settings, k: int = 5) -> dict:
    """The layer alone, grouped k-fold over every real row (groups: source articles)."""
    import csv

    real = sorted(CORPUS.glob("real_*.tsv"))
    rows = []
    for path in real:
        with path.open(encoding="utf-8", newline="") as fh:
            for r in csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE):
                rows.append((path, r["id"], _group(r.get("source") or r["id"])))
    groups = sorted({g for _, _, g in rows})
    fold_of = {g: i % k for i, g in enumerate(sorted(groups, key=lambda g: hash_str(g)))}
    samples = read_corpus(real)
    others = [f for f in corpus_files(RULES_DIR) if f not in real]
    base = training_set(packs, others)
    langs = {p.info.language for p in packs}
    key = {(str(p.name), i): fold_of[g] for p, i, g in rows}
    probs, gold = [], []
    sc = Scores()
    thr = settings.similarity_threshold
    layer = similarity_layer(packs, [], settings)  # the settings' encoder and share, one model for every fold
    for f in range(k):
        test = [s for s in samples if key[tuple(s.source.split(":", 1))] == f]
        held = {s.text for s in test}
        train = [s for s in base + [s for s in samples if key[tuple(s.source.split(":", 1))] != f]
                 if s.text not in held and (s.language or "zh") in langs]
        model = SimilarityModel(train, encoder=layer.encoder, mix=layer.mix, **MODEL)
        for s in test:
            p = model.probability(s.text, s.role)
            probs.append(p)
            gold.append(s.violation)
            sc.add(s.violation, p >= thr)
    from sklearn.metrics import roc_auc_score

    return {"rows": len(gold), "groups": len(groups), "auc": round(float(roc_auc_score(gold, probs)), 4),
            "at_threshold": sc.as_dict()}


def hash_str(s: str) -> int:
    """A stable hash (Python's str hash is salted per process)."""
    import zlib

    return zlib.crc32(s.encode("utf-8"))


def calls_check(packs, settings) -> dict:
    if not CALLS.is_dir():
        return {"skipped": f"{CALLS} not present"}
    files = corpus_files(RULES_DIR)
    calls_file = CORPUS / "calls_dev01-04.tsv"
    full = engine_with(packs, layer_without(packs, files, set(), settings))
    blind = engine_with(packs, layer_without(packs, [f for f in files if f != calls_file], set(), settings))
    out = {}
    for path in sorted(CALLS.glob("dev0*.json")):
        d = json.loads(path.read_text(encoding="utf-8"))
        eng = full if path.stem >= "dev05" else blind
        utts = [Utterance(speaker=t["speaker"], start=t["start"], end=t["end"], text=t["text"], role=t["speaker"],
                          index=i, language="zh") for i, t in enumerate(d["turns"])]
        every = detect(utts, eng)
        vs = [v for v in every if v.kind != "absence"]
        flagged = {v.utterance_index for v in vs}
        planted = {v["turn_index"] for v in d["violations"] if v.get("turn_index") is not None}
        quiet = {m["turn_index"] for m in d["must_not_flag"]}
        out[path.stem] = {"layer": "all corpus" if path.stem >= "dev05" else "without calls_dev01-04",
                          "missed": sorted(planted - {v.utterance_index for v in every}),
                          "must_not_flagged": sorted(flagged & quiet),
                          "extra": sorted((flagged - planted) - quiet),
                          "sim_findings": sorted(v.utterance_index for v in vs if v.rule_id.startswith("SIM."))}
    return out


ORDINARY = ROOT / "tests" / "data" / "ordinary_heldout.tsv"


def ordinary_check(packs, settings) -> dict:
    """What the shipped layer (all of the corpus) raises on ordinary call talk that no corpus file
    holds (tests/data/ordinary_heldout.tsv): the false alarms a real call's many ordinary turns get."""
    if not ORDINARY.is_file():
        return {"skipped": f"{ORDINARY} not present"}
    eng = engine_with(packs, layer_without(packs, corpus_files(RULES_DIR), set(), settings))
    out: dict = {}
    for r in read_tsv(ORDINARY):
        key = f"{r.language}/{r.role}"
        got = out.setdefault(key, {"rows": 0, "flagged": 0})
        got["rows"] += 1
        u = Utterance(speaker=r.role, start=0.0, end=1.0, text=r.text, role=r.role, language=r.language)
        got["flagged"] += bool(detect([u], eng, call_level=False))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--folds", help="comma-separated corpus batch names (default: every real_batch_*)")
    ap.add_argument("--no-group", action="store_true", help="skip the grouped CV of the layer alone")
    ap.add_argument("--no-calls", action="store_true", help="skip the synthetic calls check")
    ap.add_argument("-v", "--verbose", action="store_true", help="list each fold's misses and false alarms")
    ap.add_argument("--c", type=float, help="the logistic regression's C (default: similarity.C)")
    ap.add_argument("--pinyin", metavar="LO,HI", help="add pinyin-layer n-grams of these lengths")
    ap.add_argument("--thresholds", metavar="T,T,...", help="also score every fold at these layer thresholds")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--dump", type=Path, help="append each held-out row's scoring to this file (JSON lines)")
    a = ap.parse_args(argv)
    global DUMP
    DUMP = a.dump
    if a.thresholds:
        THRESHOLDS.extend(float(t) for t in a.thresholds.split(","))
    if a.c:
        MODEL["c"] = a.c
    if a.pinyin:
        from compliance.rules.similarity import Featurizer

        MODEL["featurizer"] = Featurizer(pinyin=tuple(int(n) for n in a.pinyin.split(",")))
    settings = load_settings()
    packs = load_pack_files(None)
    names = a.folds.split(",") if a.folds else [p.stem for p in sorted(CORPUS.glob("real_batch_*.tsv"))]
    res = {"threshold": settings.similarity_threshold, "veto_below": settings.similarity_veto,
           "model": {k: str(v) for k, v in MODEL.items()},
           "folds": batch_folds(packs, names, settings, a.verbose and not a.json)}
    folds = list(res["folds"].values())
    mean = {what: _mean([f[what] for f in folds]) for what in ("rules", "layer")}
    res["mean"] = mean
    res["mean_at_threshold"] = {thr: _mean([f["sweep"][thr] for f in folds]) for thr in THRESHOLDS}
    if not a.no_group:
        res["grouped_cv_layer_alone"] = grouped_cv(packs, settings)
    if not a.no_calls:
        res["calls"] = calls_check(packs, settings)
    res["ordinary"] = ordinary_check(packs, settings)
    if a.json:
        for f in res["folds"].values():
            f["misses"] = [m["id"] for m in f["misses"]]
            f["false_alarms"] = [m["id"] for m in f["false_alarms"]]
        print(json.dumps(res, indent=1, ensure_ascii=False))
        return 0
    print(f"threshold {res['threshold']}, veto below {res['veto_below']}")
    print(f"{'held-out batch':16} {'rows':>4}  {'rules alone':30}  {'rules + layer (trained without it)':30}")
    for name, f in res["folds"].items():
        print(f"{name:16} {f['rows']:4}  {_prf(f['rules']):30}  {_prf(f['layer']):30}  "
              f"(fp {f['layer']['fp']}, fn {f['layer']['fn']}; train {f['train_s']} s)")
    print(f"{'mean':16} {'':4}  {_prf(mean['rules']):30}  {_prf(mean['layer']):30}")
    for thr, m in res["mean_at_threshold"].items():
        print(f"{'mean at ' + str(thr):16} {'':4}  {'':30}  {_prf(m):30}")
    if "grouped_cv_layer_alone" in res:
        g = res["grouped_cv_layer_alone"]
        print(f"layer alone, grouped 5-fold over {g['rows']} real rows ({g['groups']} sources): AUC {g['auc']:.4f}, "
              f"at threshold {_prf(g['at_threshold'])}")
    if "calls" in res:
        bad = 0
        for stem, c in res.get("calls", {}).items():
            if stem == "skipped":
                print("calls:", c)
                continue
            bad += bool(c["missed"] or c["must_not_flagged"])
            print(f"{stem} ({c['layer']}): missed {c['missed']} must-not-flag flagged {c['must_not_flagged']} "
                  f"extra {c['extra']} SIM findings {c['sim_findings']}")
        print("calls:", "OK" if not bad else f"{bad} call(s) FAIL")
    o = res["ordinary"]
    if "skipped" in o:
        print("ordinary talk:", o["skipped"])
    else:
        print(f"ordinary talk nobody trained on ({ORDINARY.name}): {sum(v['flagged'] for v in o.values())} of "
              f"{sum(v['rows'] for v in o.values())} flagged (" + ", ".join(
                  f"{k} {v['flagged']}/{v['rows']}" for k, v in sorted(o.items())) + ")")
    return 0


if __name__ == "__main__":
    sys.exit(main())
