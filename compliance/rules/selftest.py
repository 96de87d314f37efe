"""Run every rule's own examples: violation examples must fire the rule, compliant ones must not."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..types import Utterance
from .engine import Compiled, Engine
from .calllevel import run_call_rules, self_answers
from .schema import Example


@dataclass
class ExampleResult:
    rule_id: str
    pack: str
    expected: str  # 'violation' | 'compliant'
    text: str
    role: str
    passed: bool
    detail: str = ""


def _default_role(cr: Compiled) -> str:
    return {"agent": "agent", "customer": "customer"}.get(cr.rule.speaker, "unknown")


def _as_example(x) -> Example:
    return Example(text=x) if isinstance(x, str) else x


#: "[12.5-18] agent: ..." — an example line's own start and end seconds (timing rules need them)
_TIMES = re.compile(r"^\s*\[\s*(\d+(?:\.\d+)?)\s*-\s*(\d+(?:\.\d+)?)\s*\]\s*")


def _call_utts(lines: list[str], lang: str) -> list[Utterance]:
    """A call example's utterances: one per line, 5 s apart (4 s of speech, 1 s of silence)
    unless the line gives its times."""
    out = []
    for i, line in enumerate(lines):
        start, end = i * 5.0, i * 5.0 + 4.0
        t = _TIMES.match(line)
        if t is not None:
            start, end = float(t.group(1)), float(t.group(2))
            line = line[t.end():]
        role, _, text = line.partition(":")
        role = role.strip().lower()
        if role not in ("agent", "customer", "unknown", "supervisor"):
            role, text = "unknown", line
        out.append(Utterance(speaker=role, start=start, end=end, text=text.strip(),
                             role=role, language=lang, index=i))
    out.sort(key=lambda u: u.start)
    for i, u in enumerate(out):
        u.index = i
    return out


def _call_findings(eng: Engine, ans: list) -> list:
    """The call-level rules' findings, with the answers an agent gives its own question."""
    return run_call_rules(eng, ans) + [v for a in ans for v in self_answers(eng, a)]


def run_examples(eng: Engine) -> list[ExampleResult]:
    results: list[ExampleResult] = []
    for cr in eng.rules:
        rule = cr.rule
        for expected, items in (("violation", rule.examples.violation),
                                ("compliant", rule.examples.compliant)):
            for raw in items:
                ex = _as_example(raw)
                if ex.call is not None:
                    utts = _call_utts(ex.call, rule.language)
                    ans = [eng.analyze(u) for u in utts]
                    if rule.kind == "utterance":
                        fired = [m for a in ans for (c, m, _) in eng.match_utterance(a) if c is cr]
                        got = bool(fired)
                        detail = ""
                    else:
                        vs = [v for v in _call_findings(eng, ans) if v.rule_id == rule.id]
                        got = bool(vs)
                        detail = vs[0].reason if vs else ""
                    text = " / ".join(ex.call)
                    role = "call"
                else:
                    role = ex.role or _default_role(cr)
                    u = Utterance(speaker=role, start=0.0, end=1.0, text=ex.text, role=role,
                                  language=rule.language)
                    if rule.kind != "utterance":
                        ans = [eng.analyze(u)]
                        vs = [v for v in _call_findings(eng, ans) if v.rule_id == rule.id]
                        got, detail = bool(vs), (vs[0].reason if vs else "")
                    else:
                        fired = [(m, r) for (c, m, r) in eng.match_utterance(eng.analyze(u)) if c is cr]
                        got = bool(fired)
                        detail = fired[0][1] if fired else ""
                    text = ex.text
                passed = got == (expected == "violation")
                if not passed and not detail:
                    detail = "rule did not fire" if expected == "violation" else "rule fired"
                results.append(ExampleResult(rule.id, cr.pack.id, expected, text, role, passed,
                                             detail))
    return results
