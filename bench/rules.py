"""Rule-engine throughput: utterances/s for the full packs (one Aho-Corasick gate over all rules)
against a naive per-rule regex loop, on the same input, in one run, on one core.

    python bench/rules.py [--n 10000] [--repeat 5] [--json]

Input, reported separately: real call turns (the ground-truth turns of ../shared/audio/calls/dev0*.json,
mostly non-violating) and the development set (rules/corpus/real_dev.tsv), each repeated to --n
utterances. Every utterance is normalised and matched afresh (no result caching; the engine's
memos live on one utterance's analysis, and its clause-break cache holds the last few texts only,
so the repeated benchmark texts are not served from it). The engine is the rules alone
(load_packs(similarity=False)); detect() with the similarity layer is reported on a line of its own,
with the layer's (text, role) memo switched off for the same reason, one utterance at a time and in
12-turn calls (where its sentence encoder embeds a call's utterances in one batch).

The naive loop does the matching job the same way a rule-by-rule engine would: the same
normalisation (normalize() and the pinyin layer, so that it finds the same homophones), then for
every rule ONE compiled regex (its phrases and proximity pairs OR'd together, over the pinyin
layer) plus one for its own regexes (over the normalised text). It only finds raw hits (no
negation, question or context checks), so it does less work per hit than the engine.

Times are CPU time of this process (time.process_time), pinned to one core; engine and naive run
interleaved, in chunks of 500 utterances, and each chunk counts with the best of --repeat rounds
(the machine may be shared and loaded: a short chunk is more often undisturbed than a whole pass).

Besides, where the engine's time goes: its CPU time per utterance on each of three paths, the
distinct utterances split by what the gate made of them (no trigger literal at all; trigger
literals, but settled by the gate; evaluated by the rules), each path's utterances timed as above.
This is reported on a line of its own; the rates above are measured as before.
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
from compliance.rules.text import normalize, pinyin_layer  # noqa: E402
from compliance.types import Utterance  # noqa: E402


def dev_corpus() -> list[tuple[str, str]]:
    out = []
    with (ROOT / "rules" / "corpus" / "real_dev.tsv").open(encoding="utf-8") as fh:
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
    """Every rule's phrases and regexes as separate compiled patterns (phrases over the pinyin
    layer, regexes over the normalised text; see _layer_pattern)."""
    return [[re.compile(p) for p in pats] for pats in _rule_patterns(eng)]


def _rule_patterns(eng) -> list[list[str]]:
    per_rule = []
    for cr in eng.rules:
        r = cr.rule
        lay: list[str] = []
        txt: list[str] = []
        if r.kind == "utterance":
            m = r.match
            lay += [re.escape(pinyin_layer(normalize(p))) for p in m.phrases if normalize(p)]
            txt += [rp.pattern for rp in m.regex]
            for nr in m.near:
                a = "|".join(re.escape(pinyin_layer(normalize(x))) for x in nr.a if normalize(x))
                b = "|".join(re.escape(pinyin_layer(normalize(x))) for x in nr.b if normalize(x))
                lay.append(f"(?:{a}).{{0,{int(nr.within)}}}(?:{b})")
        else:
            for _, lids, rxs in cr.elements.values():
                lay += [re.escape(pinyin_layer(eng._lit_text[i])) for i in lids]
                txt += [rx.pattern for rx in rxs]
        per_rule.append([_LAYER_TAG + p for p in lay] + txt)
    return per_rule


_LAYER_TAG = "(?#layer)"  # marks a pattern that runs over the pinyin layer


def naive_alternations(eng) -> list[tuple[re.Pattern | None, re.Pattern | None]]:
    """Per rule: one compiled alternation of its phrases (pinyin layer) and one of its regexes."""
    out = []
    for pats in _rule_patterns(eng):
        lay = [p for p in pats if p.startswith(_LAYER_TAG)]
        txt = [p for p in pats if not p.startswith(_LAYER_TAG)]
        out.append((re.compile("|".join(f"(?:{p})" for p in lay)) if lay else None,
                    re.compile("|".join(f"(?:{p})" for p in txt)) if txt else None))
    return out


def _utts(items, n):
    items = (items * (n // max(len(items), 1) + 1))[:n]
    return [Utterance(speaker=r, start=0.0, end=3.0, text=t, role=r) for t, r in items]


def _engine_pass(eng, utts) -> float:
    t0 = time.process_time()
    for u in utts:
        detect([u], eng, call_level=False)
    return time.process_time() - t0


def _naive_pass(per_rule, utts) -> float:
    """Regex per pattern, rule by rule (stops at a rule's first hit)."""
    t0 = time.process_time()
    for u in utts:
        norm = normalize(u.text)
        layer = pinyin_layer(norm)
        for pats in per_rule:
            for p in pats:
                if p.search(layer if p.pattern.startswith(_LAYER_TAG) else norm):
                    break
    return time.process_time() - t0


def _alt_pass(alts, utts) -> float:
    """One alternation per rule (phrases over the layer, regexes over the text)."""
    t0 = time.process_time()
    for u in utts:
        norm = normalize(u.text)
        layer = pinyin_layer(norm)
        for lay, txt in alts:
            if lay is not None and lay.search(layer):
                continue
            if txt is not None:
                txt.search(norm)
    return time.process_time() - t0


CHUNK = 500  # utterances timed at a time (see _rates)


def _rates(eng, utts, repeat: int, per_pattern: bool = True) -> dict:
    """Utterances/s of the engine and the naive loops, run interleaved: the input is timed in
    chunks of CHUNK utterances, `repeat` rounds, and each chunk counts with its best round (on a
    shared machine a whole pass is rarely undisturbed; a short chunk often is). The same for
    every contender."""
    alts = naive_alternations(eng)
    pats = naive_patterns(eng) if per_pattern else None
    for u in utts[:300]:  # warm-up: lazy tables (jieba dictionary, regex caches) fill on first use
        detect([u], eng, call_level=False)
    chunks = [utts[i:i + CHUNK] for i in range(0, len(utts), CHUNK)]
    inf = float("inf")
    per = {k: [inf] * len(chunks) for k in ("engine", "alt", "pat")}
    for _ in range(repeat):
        for c, chunk in enumerate(chunks):
            per["engine"][c] = min(per["engine"][c], _engine_pass(eng, chunk))
            per["alt"][c] = min(per["alt"][c], _alt_pass(alts, chunk))
            if pats is not None:
                per["pat"][c] = min(per["pat"][c], _naive_pass(pats, chunk))
    best = {k: sum(v) for k, v in per.items()}
    n = len(utts)
    out = {"engine_utt_per_s": round(n / max(best["engine"], 1e-9)),
           "naive_per_rule_alternation_utt_per_s": round(n / max(best["alt"], 1e-9))}
    if pats is not None:
        out["naive_per_pattern_utt_per_s"] = round(n / max(best["pat"], 1e-9))
    out["speedup_vs_naive"] = round(best["alt"] / best["engine"], 1)
    return out


def _replicated(eng, k: int):
    """The same packs with every rule copied k times under new ids (k times the rules)."""
    from compliance.rules.engine import Engine
    from compliance.rules.loader import Pack

    packs = []
    for pk in eng.packs:
        rules = [r.model_copy(update={"id": f"{r.id}#{i}"}) for i in range(k) for r in pk.rules]
        packs.append(Pack(info=pk.info, rules=rules, path=pk.path))
    return Engine(packs)


def _gated_out(eng, utts) -> tuple[float, float]:
    """Shares of utterances the gate settles: with no trigger literal of the role at all, and
    with nothing a rule could report (no accepted phrase hit, no keyed regex that matches: the
    automaton pass and the regex checks it asks for, nothing else)."""
    ans = [eng.analyze(u) for u in utts]
    n = max(len(utts), 1)
    return sum(1 for a in ans if not a.hits) / n, sum(1 for a in ans if not a.live) / n


def _paths(eng, distinct, repeat: int) -> dict:
    """The engine's CPU microseconds per utterance (detect, as _engine_pass) on each path, with
    the share of the distinct utterances that take it."""
    groups: dict[str, list] = {"no_trigger": [], "gated_out": [], "evaluated": []}
    for u in distinct:
        a = eng.analyze(u)
        groups["evaluated" if a.live else "gated_out" if a.hits else "no_trigger"].append(u)
    out = {}
    for name, us in groups.items():
        if not us:
            continue
        reps = us * (CHUNK // len(us) + 1)
        t = _chunked(lambda part: _engine_pass(eng, part), reps, repeat, CHUNK)
        out[name] = {"share": round(len(us) / len(distinct), 3), "us_per_utt": round(t / len(reps) * 1e6, 1)}
    return out


def _one_core() -> str:
    try:
        cpus = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpus[-1]})
        return f"pinned to cpu {cpus[-1]}"
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return "one process"


def run(n: int, repeat: int = 5, scale=(1, 4, 10)) -> dict:
    core = _one_core()
    t0 = time.perf_counter()
    eng = load_packs(similarity=False)  # the rule engine alone (the similarity layer: see below)
    load_s = time.perf_counter() - t0
    res = {"rules": len(eng.rules), "literals": len(eng._lit_text), "load_s": round(load_s, 3),
           "cpu": core, "repeat": repeat, "loadavg": os.getloadavg()[0], "corpora": {}}
    res["naive_patterns"] = sum(len(p) for p in naive_patterns(eng))
    for name, items in (("calls", call_corpus()), ("dev_set", dev_corpus())):
        if not items:
            continue
        utts = _utts(items, n)
        r = _rates(eng, utts, repeat)
        distinct = utts[:len(items)]
        hits = sum(1 for u in distinct if detect([u], eng, call_level=False))
        no_trigger, settled = _gated_out(eng, distinct)
        res["corpora"][name] = {"utterances": len(utts), "distinct": len(items),
                                "share_with_hits": round(hits / len(items), 3),
                                "share_no_trigger": round(no_trigger, 3),
                                "share_gated_out": round(settled, 3), **r,
                                "paths": _paths(eng, distinct, repeat)}
    calls = call_corpus()
    if calls:
        utts = _utts(calls, n)
        calls12 = [utts[i:i + 12] for i in range(0, len(utts), 12)]  # 12-turn calls, call-level checks on
        res["calls_call_level_utt_per_s"] = round(len(utts) / _chunked(
            lambda part: [detect(c, eng) for c in part], calls12, repeat, CHUNK // 12))
        small = utts[: max(len(utts) // 4, 500)]
        res["scaling"] = []
        for k in scale:
            ek = eng if k == 1 else _replicated(eng, k)
            res["scaling"].append({"rules": len(ek.rules), **_rates(ek, small, max(repeat // 2, 1), per_pattern=False)})
        # What detect() costs with the similarity layer (compliance/rules/similarity.py, on by default
        # in the settings) on top of the rules: not part of the rule engine, reported apart.
        sim = load_packs()
        if getattr(sim, "similarity", None) is not None:
            sim.similarity._cache = _NoCache()  # the layer memoises (text, role); the bench's texts repeat
            for u in utts[:300]:
                detect([u], sim, call_level=False)
            res["calls_with_similarity_utt_per_s"] = round(len(utts) / _chunked(
                lambda part: [detect([u], sim, call_level=False) for u in part], utts, max(repeat // 2, 1), CHUNK))
            # whole 12-turn calls: the layer embeds a call's utterances in one batch (prepare)
            res["calls_with_similarity_batched_utt_per_s"] = round(len(utts) / _chunked(
                lambda part: [detect(c, sim, call_level=False) for c in part], calls12, max(repeat // 2, 1),
                CHUNK // 12))
            enc = getattr(sim.similarity, "encoder", None)
            res["similarity_encoder"] = enc.name if enc is not None else "none"
    return res


class _NoCache(dict):
    """A memo that keeps nothing, so every repeated benchmark text is scored afresh."""

    def __setitem__(self, key, value) -> None:
        pass


def _timed(fn) -> float:
    t0 = time.process_time()
    fn()
    return max(time.process_time() - t0, 1e-9)


def _chunked(fn, items, repeat: int, size: int) -> float:
    """CPU seconds of fn over `items`, timed in chunks of `size` items, each at its best round."""
    parts = [items[i:i + size] for i in range(0, len(items), size)]
    return sum(min(_timed(lambda: fn(p)) for _ in range(repeat)) for p in parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    res = run(a.n, a.repeat)
    if a.json:
        print(json.dumps(res, indent=2))
        return
    print(f"{res['rules']} rules, {res['literals']} literals in one Aho-Corasick gate "
          f"({res['naive_patterns']} patterns for the naive loops); packs load {res['load_s']} s; "
          f"CPU time, {res['cpu']}, chunks of {CHUNK} at their best of {res['repeat']} interleaved rounds "
          f"(machine load average {res['loadavg']:.1f})")
    for name, c in res["corpora"].items():
        print(f"[{name}] {c['utterances']} utterances ({c['distinct']} distinct, {c['share_with_hits']:.0%} with a "
              f"violation; {c['share_no_trigger']:.0%} without a trigger literal, {c['share_gated_out']:.0%} settled "
              f"by the gate)")
        print(f"  engine, full packs:                        {c['engine_utt_per_s']:>9,} utterances/s")
        print(f"  naive per-rule loop, one regex per rule:   {c['naive_per_rule_alternation_utt_per_s']:>9,} utterances/s"
              f" -> engine {c['speedup_vs_naive']}x")
        print(f"  naive per-rule loop, one regex per phrase: {c['naive_per_pattern_utt_per_s']:>9,} utterances/s")
        p = c.get("paths", {})
        labels = {"no_trigger": "no trigger literal", "gated_out": "settled by the gate", "evaluated": "evaluated"}
        print("  engine CPU per utterance by path: " + "; ".join(
            f"{labels[k]} {v['us_per_utt']:g} us ({v['share']:.0%})" for k, v in p.items()))
    if "calls_call_level_utt_per_s" in res:
        print(f"[calls] engine incl. call-level checks: {res['calls_call_level_utt_per_s']:,} utterances/s")
    if "calls_with_similarity_utt_per_s" in res:
        print(f"[calls] detect() with the similarity layer as well (not the rule engine; encoder "
              f"{res['similarity_encoder']}): {res['calls_with_similarity_utt_per_s']:,} utterances/s one at a time, "
              f"{res['calls_with_similarity_batched_utt_per_s']:,}/s in 12-turn calls")
    sc = res.get("scaling", [])
    for x in sc:
        print(f"[scaling, calls] {x['rules']:>4} rules: engine {x['engine_utt_per_s']:>8,}/s, naive per-rule regex "
              f"{x['naive_per_rule_alternation_utt_per_s']:>7,}/s -> engine {x['speedup_vs_naive']}x")
    if len(sc) > 1:
        f = sc[-1]["rules"] / sc[0]["rules"]
        print(f"[scaling] rules x{f:g}: engine cost x{sc[0]['engine_utt_per_s'] / max(sc[-1]['engine_utt_per_s'], 1):.1f}, "
              f"naive cost x{sc[0]['naive_per_rule_alternation_utt_per_s'] / max(sc[-1]['naive_per_rule_alternation_utt_per_s'], 1):.1f}")


if __name__ == "__main__":
    main()
