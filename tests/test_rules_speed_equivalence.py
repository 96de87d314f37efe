"""The engine's speed devices give the results of the plain way of doing the same thing.

(Speed targets live in bench/rules.py; bench/rules_equivalence.py compares a whole engine with
that of another checkout. These check the devices one at a time, on the rules' examples and the
development set, in a few seconds.)"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from compliance.detect import detect, load_packs
from compliance.rules import engine as E
from compliance.rules.text import _breaks
from compliance.types import Utterance

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def eng():
    return load_packs(similarity=False)


def _texts(eng) -> list[tuple[str, str]]:
    out = []
    with (ROOT / "rules" / "corpus" / "real_dev.tsv").open(encoding="utf-8") as fh:
        for r in csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE):
            out.append((r["text"], r["role"] or "agent"))
    for pk in eng.packs:
        for rule in pk.rules:
            for ex in list(rule.examples.violation) + list(rule.examples.compliant):
                text = ex if isinstance(ex, str) else ex.text
                if text:
                    out.append((text, "customer" if rule.speaker == "customer" else "agent"))
    return out


def _run(e, text, role):
    an = e.analyze(Utterance(speaker=role, start=0.0, end=3.0, text=text, role=role))
    hits = [(e._lit_text[lid], tuple(h)) for lid, hl in an.hits.items() for h in hl]
    vs = detect([Utterance(speaker=role, start=0.0, end=3.0, text=text, role=role)], e, call_level=False)
    return an.live, hits, [(v.rule_id, v.start, v.end, v.matched_text, v.context, v.reason) for v in vs]


def test_automaton_key_order_changes_no_hit(eng, monkeypatch):
    """Keys added most frequent characters first, with blank root children (Engine._build),
    against the automata of the keys in plain order without them."""
    monkeypatch.setattr(E, "_char_rank", lambda texts: {})
    plain = E.Engine(eng.packs)
    assert not plain._rank and eng._rank
    texts = _texts(eng)
    assert len(texts) > 500
    for text, role in texts + [("这个产品保本" + E._NO_CHAR + "保本", "agent")]:
        assert _run(eng, text, role) == _run(plain, text, role), text


def test_gate_factor_order_keeps_the_factors():
    """Ordering the regex gate factors by how likely they are present changes which is tested
    first, never which are tested."""
    eng = load_packs(similarity=False)
    n = 0
    for cr in eng.rules:
        for (rx, _, _, _), need in zip(cr.regexes, cr.rx_need):
            assert sorted(need) == sorted(E._gate_factors(rx.pattern)), rx.pattern
            n += 1
    assert n > 100


def test_sentence_breaks_are_the_clause_breaks_at_sentence_marks(eng):
    sent = re.compile(r"[.?!]")
    for text in [t for t, _ in _texts(eng)] + ["收益0.95%.真的?是的!", "a.b 1.5, 2,000. ok?"]:
        ref = [m.start() for m in sent.finditer(text)]
        ref = tuple(i for i in ref if not (0 < i < len(text) - 1 and text[i] == "."
                                           and text[i - 1].isdigit() and text[i + 1].isdigit()))
        assert _breaks(text, True) == ref, text
