"""Equivalence check for rule-engine changes: the engine of another checkout (`--base`, e.g. a
`git worktree add /tmp/engine_base <commit>`) and this checkout's engine load the SAME rule YAML
(this checkout's rules/, or --rules) and must say the same about every input:

    python bench/rules_equivalence.py --base /tmp/engine_base [--variants 20000] [--seed 1]

Inputs: every labelled TSV under rules/corpus/ and tests/data/, every rule example (utterance
examples and call examples), the turns of ../shared/audio/calls/*.json, and generated variants of
all of those (negated, questioned, Traditional characters, full-width forms, English mixed in,
homophone swaps, numbers in words, odd white space, joined utterances, every speaker role).

Per utterance it compares analyze() (whether the gate lets it through, the literal hits in the
order recorded, with their spans and exactness, the normalised text), match_utterance() on that
analysis (rules, matches, reasons, and the hits after it) and detect(call_level=False) (rule ids, spans, matched
text, context, reason, every field of the findings); per call (the call files, the call examples
and runs of 12 consecutive inputs) detect() with the call-level checks. The rules alone
(similarity=False). Prints the number of comparisons and every difference (up to --show).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import importlib
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _import_engine(checkout: Path, alias: str):
    """The `compliance` package of `checkout` under the module name `alias` (its rules code only
    uses relative imports, so a renamed copy is self-contained)."""
    tmp = Path(tempfile.mkdtemp(prefix="rules_equiv_"))
    shutil.copytree(checkout / "compliance", tmp / alias,
                    ignore=shutil.ignore_patterns("__pycache__", "migrations", "web", "live", "service"))
    sys.path.insert(0, str(tmp))
    return importlib.import_module(f"{alias}.detect"), importlib.import_module(f"{alias}.types")


# ------------------------------------------------------------------ inputs

def _tsv_items() -> list[tuple[str, str]]:
    out = []
    for p in sorted((ROOT / "rules" / "corpus").glob("*.tsv")) + sorted((ROOT / "tests" / "data").glob("*.tsv")):
        with p.open(encoding="utf-8") as fh:
            for r in csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE):
                if r.get("text"):
                    out.append((r["text"], r.get("role") or "agent"))
    return out


def _call_files() -> list[list[tuple[str, str]]]:
    calls = ROOT.parent / "shared" / "audio" / "calls"
    out = []
    for p in sorted(calls.glob("*.json")) if calls.is_dir() else []:
        try:
            turns = json.loads(p.read_text(encoding="utf-8"))["turns"]
        except (KeyError, ValueError):
            continue
        out.append([(t["text"], t["speaker"]) for t in turns])
    return out


def _examples(eng) -> tuple[list[tuple[str, str]], list[list[tuple[str, str]]], list[str]]:
    """Utterance examples (text, role), call examples, and every phrase of every rule."""
    utts, calls, phrases = [], [], []
    for pk in eng.packs:
        for r in pk.rules:
            default_role = {"customer": "customer"}.get(r.speaker, "agent")
            for ex in list(r.examples.violation) + list(r.examples.compliant):
                if isinstance(ex, str):
                    utts.append((ex, default_role))
                elif ex.text is not None:
                    utts.append((ex.text, ex.role or default_role))
                else:
                    call = []
                    for line in ex.call or []:
                        role, _, text = line.partition(":")
                        call.append((text.strip(), role.strip() or "agent"))
                    calls.append(call)
            m = r.match
            if m is not None:
                phrases += list(m.phrases) + [p for nr in m.near for p in list(nr.a) + list(nr.b)]
                phrases += [p for rx in m.regex for p in rx.requires]
                phrases += list(m.none) + list(m.context) + list(m.except_)
            for name in ("absence", "ordering", "window"):
                obj = getattr(r, name, None)
                if obj is not None:
                    for v in obj.model_dump().values():
                        if isinstance(v, list):
                            phrases += [x for x in v if isinstance(x, str)]
                        elif isinstance(v, dict):
                            phrases += [x for x in v.get("phrases", []) or [] if isinstance(x, str)]
    return utts, calls, sorted(set(p for p in phrases if p))


_NEG = ["不", "不是", "没有", "绝对不", "我不能说", "别说", "不能保证", "谁也没法", "not ", "never ", "no "]
_Q = ["吗？", "吗", "是不是？", "?", "呢", "对不对", "，是吗", "? ", " right?"]
_PRE = ["他说", "听说", "很多人以为", "以前的产品", "如果您", "他们说“", "禁止说", "\"", "说是"]
_POST = ["，这是不对的", "是骗人的", "的情况", "”", "\"", "。", "，您放心", "，真的", "", " ok"]
_EN = ["OK", "ok，", "yes ", "Hello ", "APP", "the fund", "guaranteed ", "no risk ", "100%", "5% return",
       "E-mail", "ID", "VIP", "BTW "]
_NUM = [("5%", "百分之五"), ("5%", "五个点"), ("3.5%", "百分之三点五"), ("3.5%", "三点五个点"),
        ("10%", "百分之十"), ("6%", "百分之6"), ("2", "两"), ("100%", "百分之百"), ("4.2%", "四点二个点")]
_WS = [" ", "  ", "\t", "\n", "\u3000", " \u3000 "]
_FW = {c: chr(ord(c) + 0xFEE0) for c in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789%!?,.:;()"}
_CJK_P = {",": "，", ".": "。", "?": "？", "!": "！", ":": "：", ";": "；", "(": "（", ")": "）"}


class _Variants:
    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self._homo = None
        self._s2t = None

    def homophones(self) -> dict[str, list[str]]:
        if self._homo is None:
            from pypinyin.pinyin_dict import pinyin_dict

            by: dict[str, list[str]] = {}
            for cp, reading in pinyin_dict.items():
                if 0x4E00 <= cp <= 0x9FFF:
                    by.setdefault(reading.split(",")[0], []).append(chr(cp))
            self._homo = {}
            for reading, chars in by.items():
                for c in chars:
                    self._homo[c] = chars
        return self._homo

    def trad(self, text: str) -> str:
        if self._s2t is None:
            import opencc

            self._s2t = opencc.OpenCC("s2t")
        return self._s2t.convert(text)

    def one(self, text: str, phrases: list[str], pool: list[str]) -> str:
        rng = self.rng
        t = text
        for _ in range(rng.randint(1, 3)):
            op = rng.randrange(13)
            if op == 0:  # negated
                p = rng.choice(_NEG)
                if t and rng.random() < 0.5:
                    i = rng.randrange(len(t))
                    t = t[:i] + p + t[i:]
                else:
                    t = p + t
            elif op == 1:  # questioned
                t = t.rstrip("。.!！") + rng.choice(_Q)
            elif op == 2:  # reported / quoted / advised
                t = rng.choice(_PRE) + t + rng.choice(_POST)
            elif op == 3:  # Traditional characters
                t = self.trad(t)
            elif op == 4:  # full-width forms and CJK punctuation
                t = "".join(_FW.get(c, c) if rng.random() < 0.7 else _CJK_P.get(c, c) for c in t)
            elif op == 5:  # English mixed in
                i = rng.randrange(len(t) + 1)
                t = t[:i] + rng.choice(_EN) + t[i:]
            elif op == 6:  # homophone swaps (包本 for 保本)
                h = self.homophones()
                cs = list(t)
                for _ in range(rng.randint(1, 3)):
                    if not cs:
                        break
                    i = rng.randrange(len(cs))
                    alts = h.get(cs[i])
                    if alts:
                        cs[i] = rng.choice(alts)
                t = "".join(cs)
            elif op == 7:  # numbers in words
                a, b = rng.choice(_NUM)
                t = t.replace(a, b) if a in t else t + rng.choice(["收益", "年化", "利率"]) + b
            elif op == 8:  # white space
                cs = list(t)
                for _ in range(rng.randint(1, 3)):
                    cs.insert(rng.randrange(len(cs) + 1), rng.choice(_WS))
                t = "".join(cs)
            elif op == 9:  # a rule phrase planted in another utterance
                p = rng.choice(phrases)
                i = rng.randrange(len(t) + 1)
                t = t[:i] + p + t[i:]
            elif op == 10:  # joined with another input
                t = t + rng.choice(["，", "。", " ", ""]) + rng.choice(pool)
            elif op == 11:  # case
                t = t.upper() if rng.random() < 0.5 else t.swapcase()
            else:  # cut
                if len(t) > 4:
                    a = rng.randrange(len(t) // 2)
                    t = t[a:a + rng.randint(2, len(t))]
        return t


# ------------------------------------------------------------------ comparison

def _hits(eng, an) -> list:
    """The hits in the order they were recorded (later stages read them in that order)."""
    return [(eng._lit_text[lid], h.start, h.end, h.exact) for lid, hl in an.hits.items() for h in hl]


def _viol(v) -> dict:
    return dataclasses.asdict(v)


def _utt(types_mod, text, role, i=0):
    return types_mod.Utterance(speaker=role or "spk", start=float(i) * 3.0, end=float(i) * 3.0 + 2.5,
                               text=text, role=role)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", required=True, type=Path, help="checkout holding the reference engine")
    ap.add_argument("--rules", type=Path, default=ROOT / "rules")
    ap.add_argument("--variants", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--show", type=int, default=20)
    a = ap.parse_args()
    base_detect, base_types = _import_engine(a.base.resolve(), "compliance_base_ref")
    sys.path.insert(0, str(ROOT))
    import compliance.detect as new_detect
    import compliance.types as new_types

    eb = base_detect.load_packs(paths=[a.rules], similarity=False)
    en = new_detect.load_packs(paths=[a.rules], similarity=False)
    assert eb._lit_text == en._lit_text, "the two engines number the literals differently"

    items = _tsv_items()
    ex_utts, ex_calls, phrases = _examples(en)
    call_files = _call_files()
    items += ex_utts + [t for c in call_files for t in c] + [t for c in ex_calls for t in c]
    items += [(p, r) for p in phrases for r in ("agent", "customer")]
    base_items = list(dict.fromkeys(items))
    gen = _Variants(a.seed)
    pool = [t for t, _ in base_items]
    roles = ["agent", "customer", "unknown", "supervisor", None, "agent", "customer"]
    variants = []
    for i in range(a.variants):
        t, r = base_items[gen.rng.randrange(len(base_items))]
        variants.append((gen.one(t, phrases, pool), r if gen.rng.random() < 0.8 else gen.rng.choice(roles)))
    all_items = base_items + variants

    diffs = []
    n_utt = n_fire = 0
    t0 = time.perf_counter()
    for text, role in all_items:
        ub, un = _utt(base_types, text, role), _utt(new_types, text, role)
        ab, an = eb.analyze(ub), en.analyze(un)
        got_b = (ab.live, _hits(eb, ab), ab.norm)
        got_n = (an.live, _hits(en, an), an.norm)
        # the rule evaluation on those analyses (no call context), and the hits after it (it
        # adds the condition literals' hits, which the similarity layer reads)
        got_b += ([(c.rule.id, tuple(m), r) for c, m, r in eb.match_utterance(ab)], _hits(eb, ab))
        got_n += ([(c.rule.id, tuple(m), r) for c, m, r in en.match_utterance(an)], _hits(en, an))
        vb = [_viol(v) for v in base_detect.detect([_utt(base_types, text, role)], eb, call_level=False)]
        vn = [_viol(v) for v in new_detect.detect([_utt(new_types, text, role)], en, call_level=False)]
        n_utt += 1
        n_fire += bool(vb)
        if got_b != got_n:
            diffs.append(("analyze", text, role, got_b, got_n))
        if vb != vn:
            diffs.append(("detect", text, role, vb, vn))
    calls = call_files + ex_calls
    rng = random.Random(a.seed + 1)
    for _ in range(max(len(all_items) // 12, 1)):
        i = rng.randrange(len(all_items))
        calls.append(all_items[i:i + 12])
    n_calls = 0
    for call in calls:
        cb = [_utt(base_types, t, r, i) for i, (t, r) in enumerate(call)]
        cn = [_utt(new_types, t, r, i) for i, (t, r) in enumerate(call)]
        vb = [_viol(v) for v in base_detect.detect(cb, eb)]
        vn = [_viol(v) for v in new_detect.detect(cn, en)]
        n_calls += 1
        if vb != vn:
            diffs.append(("call", call, None, vb, vn))
    print(f"{n_utt} utterances ({len(base_items)} inputs, {len(variants)} variants; {n_fire} with a finding), "
          f"{n_calls} calls compared in {time.perf_counter() - t0:.0f} s: {len(diffs)} differences")
    for d in diffs[: a.show]:
        print("---", d[0], repr(d[1])[:300], d[2])
        print("  base:", repr(d[3])[:1500])
        print("  new: ", repr(d[4])[:1500])
    sys.exit(1 if diffs else 0)


if __name__ == "__main__":
    main()
