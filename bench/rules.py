"""Rule-engine throughput: utterances/s for the full packs (one Aho-Corasick prefilter over all
rules) against a naive loop that runs every rule's patterns as separate regexes, on the same input,
in one run, on one core.

    python bench/rules.py [--n 20000] [--json]

Times are the process's CPU time (time.process_time), so that other load on the machine does not
count against either path. Input: the development set (tests/data/rules_dev.tsv) plus the turns of the shared synthetic calls
(when ../shared is present), repeated to --n utterances. Every utterance is normalised and matched
afresh (no result caching). Both paths use the same normalisation; the naive path only finds raw
pattern hits (no negation, question or context checks), so it does less work per hit than the engine.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from compliance.detect import detect, load_packs  # noqa: E402
from compliance.rules.text import normalize  # noqa: E402
from compliance.types import Utterance  # noqa: E402


def dev_corpus() -> list[tuple[str, str]]:
    out = []
    with (ROOT / "tests" / "data" / "rules_dev.tsv").open(encoding="utf-8") as fh:
        for r in csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE):
            out.append((r["text"], r["role"]))
    return out


def call_corpus() -> list[tuple[str, str]]:
    calls = ROOT.parent / "shared" / "audio" / "calls"
    out = []
    for p in sorted(calls.glob("dev0*.json")) if calls.is_dir() else []:
        for t in json.loads(p.read_text(encoding="utf-8"))["turns"]:
            out.append((t["text"], t["speaker"]))
    return out


def corpus() -> list[tuple[str, str]]:
    return dev_corpus() + call_corpus()


def naive_patterns(eng) -> list[list[re.Pattern]]:
    """Every rule's phrases (escaped) and regexes as separate compiled patterns."""
    per_rule = []
    for cr in eng.rules:
        r = cr.rule
        pats: list[str] = []
        if r.kind == "utterance":
            m = r.match
            pats += [re.escape(normalize(p)) for p in m.phrases]
            pats += [rp.pattern for rp in m.regex]
            for nr in m.near:
                a = "|".join(re.escape(normalize(x)) for x in nr.a)
                b = "|".join(re.escape(normalize(x)) for x in nr.b)
                pats.append(f"(?:{a}).{{0,{int(nr.within)}}}(?:{b})")
        else:
            for _, lids, rxs in cr.elements.values():
                pats += [re.escape(eng._lit_text[i]) for i in lids]
                pats += [rx.pattern for rx in rxs]
        per_rule.append([re.compile(p) for p in pats if p])
    return per_rule


def _utts(items, n):
    items = (items * (n // max(len(items), 1) + 1))[:n]
    return [Utterance(speaker=r, start=0.0, end=3.0, text=t, role=r) for t, r in items]


def _engine_rate(eng, utts) -> float:
    for u in utts[:200]:  # warm-up: lazy tables (pinyin, jieba dictionary) fill on first use
        detect([u], eng, call_level=False)
    t0 = time.process_time()
    for u in utts:
        detect([u], eng, call_level=False)
    return len(utts) / max(time.process_time() - t0, 1e-9)


def _naive_rate(per_rule, utts) -> float:
    t0 = time.process_time()
    for u in utts:
        text = normalize(u.text)
        for pats in per_rule:
            for p in pats:
                if p.search(text):
                    break
    return len(utts) / max(time.process_time() - t0, 1e-9)


def _alt_rate(per_rule, utts) -> float:
    alt = [re.compile("|".join(f"(?:{p.pattern})" for p in pats)) for pats in per_rule if pats]
    t0 = time.process_time()
    for u in utts:
        text = normalize(u.text)
        for p in alt:
            p.search(text)
    return len(utts) / max(time.process_time() - t0, 1e-9)


def _replicated(eng, k: int):
    """The same packs with every rule copied k times under new ids (k times the rules)."""
    from compliance.rules.engine import Engine
    from compliance.rules.loader import Pack

    packs = []
    for pk in eng.packs:
        rules = [r.model_copy(update={"id": f"{r.id}#{i}"}) for i in range(k) for r in pk.rules]
        packs.append(Pack(info=pk.info, rules=rules, path=pk.path))
    return Engine(packs)


def run(n: int, scale=(1, 4, 10)) -> dict:
    t0 = time.perf_counter()
    eng = load_packs()
    load_s = time.perf_counter() - t0
    res = {"rules": len(eng.rules), "literals": len(eng._lit_text), "load_s": round(load_s, 3),
           "cpu_count": os.cpu_count(), "loadavg": os.getloadavg()[0], "corpora": {}}
    per_rule = naive_patterns(eng)
    res["naive_patterns"] = sum(len(p) for p in per_rule)
    for name, items in (("calls", call_corpus()), ("dev_set", dev_corpus())):
        if not items:
            continue
        utts = _utts(items, n)
        e, nv, al = _engine_rate(eng, utts), _naive_rate(per_rule, utts), _alt_rate(per_rule, utts)
        hits = sum(1 for u in utts[:len(items)] if detect([u], eng, call_level=False))
        res["corpora"][name] = {"utterances": len(utts), "distinct": len(items),
                                "share_with_hits": round(hits / len(items), 3),
                                "engine_utt_per_s": round(e), "naive_per_pattern_utt_per_s": round(nv),
                                "naive_per_rule_alternation_utt_per_s": round(al),
                                "speedup_vs_naive": round(e / nv, 1), "speedup_vs_alternation": round(e / al, 1)}
    calls = call_corpus()
    if calls:
        utts = _utts(calls, n)
        res["calls_call_level_utt_per_s"] = round(len(utts) / _timed(lambda: [detect(utts[i:i + 12], eng) for i in range(0, len(utts), 12)]))
        small = utts[: max(len(utts) // 4, 200)]
        res["scaling"] = []
        for k in scale:
            ek = eng if k == 1 else _replicated(eng, k)
            pk = naive_patterns(ek)
            res["scaling"].append({"rules": len(ek.rules), "engine_utt_per_s": round(_engine_rate(ek, small)),
                                   "naive_per_pattern_utt_per_s": round(_naive_rate(pk, small)),
                                   "naive_per_rule_alternation_utt_per_s": round(_alt_rate(pk, small))})
    return res


def _timed(fn) -> float:
    t0 = time.process_time()
    fn()
    return max(time.process_time() - t0, 1e-9)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    res = run(a.n)
    if a.json:
        print(json.dumps(res, indent=2))
        return
    print(f"{res['rules']} rules, {res['literals']} literals in one Aho-Corasick prefilter "
          f"({res['naive_patterns']} separate patterns for the naive loop); packs load {res['load_s']} s; "
          f"CPU time of one process (machine load average {res['loadavg']:.1f} on {res['cpu_count']} cores)")
    for name, c in res["corpora"].items():
        print(f"[{name}] {c['utterances']} utterances ({c['distinct']} distinct, {c['share_with_hits']:.0%} with a hit)")
        print(f"  engine, full packs:                  {c['engine_utt_per_s']:>9,} utterances/s")
        print(f"  naive per-rule loop, regex per pattern: {c['naive_per_pattern_utt_per_s']:>9,} utterances/s -> engine {c['speedup_vs_naive']}x")
        print(f"  naive per-rule loop, one alternation:   {c['naive_per_rule_alternation_utt_per_s']:>9,} utterances/s -> engine {c['speedup_vs_alternation']}x")
    if "calls_call_level_utt_per_s" in res:
        print(f"[calls] engine incl. call-level checks: {res['calls_call_level_utt_per_s']:,} utterances/s")
    for sc in res.get("scaling", []):
        print(f"[scaling, calls] {sc['rules']:>4} rules: engine {sc['engine_utt_per_s']:>8,}/s, naive per pattern "
              f"{sc['naive_per_pattern_utt_per_s']:>7,}/s, naive alternation {sc['naive_per_rule_alternation_utt_per_s']:>7,}/s")


if __name__ == "__main__":
    main()
