"""Call-level rules: absence (mandatory disclosure never said), ordering (disclosure after the
purchase confirmation), window (something required within N utterances/seconds of an anchor),
answer (a claim made by answering the customer's question: "保本吗？" — "当然"), and the timing
rules silence, overtalk and rate (timing.py)."""

from __future__ import annotations

import re

from ..types import Violation
from . import cues
from .engine import AGENT_ROLES, Analyzed, Compiled, Engine, Match, has_han, to_violation
from .text import clause_bounds
from .timing import call_language, overtalk, rate, silence


def _agent(ans: list[Analyzed]) -> list[Analyzed]:
    return [a for a in ans if (a.utt.role or "unknown") in AGENT_ROLES]


def _found(eng: Engine, cr: Compiled, key: str, ans: list[Analyzed]) -> list[int]:
    """Positions (in `ans`) of the utterances holding the element."""
    return [i for i, a in enumerate(ans) if eng.element_in(cr, key, a) is not None]


def absence(eng: Engine, cr: Compiled, ans: list[Analyzed]) -> Violation | None:
    ag = _agent(ans)
    if not ag:
        return None
    a = cr.rule.absence
    if a.scope and not any(eng.element_in(cr, "_scope", x, check_neg=False) for x in ans):
        return None
    if "_when" in cr.elements and not _found(eng, cr, "_when", ag):
        return None
    purchases = _found(eng, cr, "_purchase", ag) if a.purchase else []
    recs = _found(eng, cr, "_recommend", ag) if a.recommend else []
    if purchases:
        anchor, why = ag[purchases[-1]], "purchase confirmation"
    elif recs:
        anchor, why = ag[recs[-1]], "last recommendation"
    else:
        return None
    variant = None
    for v in a.variants:
        if not v.when:
            variant = variant or v
            continue
        if _found(eng, cr, f"_variant:{v.name}", ag):
            variant = v
            break
    if variant is None:
        return None
    missing = [el.name for el in variant.required if not _found(eng, cr, f"{variant.name}:{el.name}", ag)]
    if not missing:
        return None
    reason = (f"{variant.name}: the agent never said {', '.join(missing)} "
              f"(required before the sale); anchored at the {why}")
    v = to_violation(cr, anchor.utt, anchor.norm, None, reason, kind="absence")
    v.matched_text = anchor.utt.text
    return v


def ordering(eng: Engine, cr: Compiled, ans: list[Analyzed]) -> Violation | None:
    ag = _agent(ans)
    firsts = _found(eng, cr, "first", ag)
    thens = _found(eng, cr, "then", ag)
    if not firsts or not thens or min(firsts) < min(thens):
        return None
    t = ag[min(thens)]
    f = ag[min(firsts)]
    reason = (f"'{cr.rule.ordering.then.name}' at {t.utt.start:.1f}s came before "
              f"'{cr.rule.ordering.first.name}' at {f.utt.start:.1f}s")
    return to_violation(cr, t.utt, t.norm, None, reason, kind="ordering")


def window(eng: Engine, cr: Compiled, ans: list[Analyzed]) -> list[Violation]:
    ag = _agent(ans)
    w = cr.rule.window
    out = []
    anchors = _found(eng, cr, "anchor", ag)
    if not anchors:
        return out
    req = set(_found(eng, cr, "required", ag))
    for i in anchors:
        if w.unit == "utterances":
            ok = any(j in req for j in range(i, min(len(ag), i + int(w.within))))
        else:
            t0 = ag[i].utt.start
            ok = any(j in req for j in range(i, len(ag)) if ag[j].utt.start - t0 <= w.within)
        if not ok:
            reason = (f"'{w.anchor.name}' was not followed by '{w.required.name}' within "
                      f"{w.within:g} {w.unit}")
            v = to_violation(cr, ag[i].utt, ag[i].norm, None, reason, kind="absence")
            out.append(v)
    return out


#: what may come before a reply's opening word: pauses, hesitations, a form of address
#: ("嗯，阿姨，当然了", "Oh, well, absolutely")
_LEAD_IN = re.compile(r"(?:[\s,.!;:]|嗯+|啊+|呃+|哦+|噢+|额+|唉|哎|诶|这个|那个|阿姨|叔叔|大姐|大哥|姐|哥|先生|女士|老师|"
                      r"\b(?:um+|uh+|oh|well|so|ah|hmm+|mm+|look|listen|sir|madam|ma'am)\b)*")


def _reply(eng: Engine, cr: Compiled, an: Analyzed, pos: int = 0) -> tuple[int, int] | None:
    """The first span of the rule's `reply` that opens the text from `pos` (the turn, or the
    sentence after a question): only a lead-in (_LEAD_IN) between `pos` and it."""
    norm = an.norm
    for s, e in sorted(eng.element_spans(cr, "reply", an)):
        if s >= pos and _LEAD_IN.fullmatch(norm, pos, s) is not None:
            return s, e
    return None


def _hedged(eng: Engine, cr: Compiled, an: Analyzed) -> bool:
    """Whether the utterance says one of the rule's hedges, not negated or asked."""
    return "hedge" in cr.elements and eng.element_in(cr, "hedge", an) is not None


def _in_language(cr: Compiled, an: Analyzed) -> bool:
    """Whether the utterance is in the rule's language (Han characters for zh)."""
    return (cr.rule.language == "zh") == has_han(an.norm)


def _questions(eng: Engine, cr: Compiled, an: Analyzed):
    """(start, end, position of the question mark after it or -1) of each span of the rule's
    question that is asked (a question by cues.question)."""
    norm = an.norm
    for s, e in eng.element_spans(cr, "question", an):
        if cues.question(norm, s, e, has_han(norm[s:e])):
            yield s, e, norm.find("?", e)


def _asked(eng: Engine, cr: Compiled, an: Analyzed) -> tuple[int, int] | None:
    """The span of the rule's question in the customer's utterance, when it is asked in the
    utterance's last question: "这个保本吗？手续费多少？" asks about the fee last, so a "是的" after it
    does not answer the first question."""
    for s, e, q in _questions(eng, cr, an):
        if q < 0 or "?" not in an.norm[q + 1:]:
            return s, e
    return None


def _self_answered(eng: Engine, cr: Compiled, an: Analyzed) -> tuple[tuple[int, int], str] | None:
    """The `reply` span that opens the sentence after the speaker's own `question` ("会不会亏？不会的，
    您放心"; "Is it safe? Absolutely."), and the question, when the utterance says no unnegated hedge."""
    norm = an.norm
    for s, e, q in _questions(eng, cr, an):
        if q < 0:
            continue
        span = _reply(eng, cr, an, q + 1)
        if span is not None:
            if _hedged(eng, cr, an):
                return None
            return span, norm[clause_bounds(norm, s, e, marks=".?!")[0]:q + 1]
    return None


def may_self_answer(text: str) -> bool:
    """A question mark with something after it: the cheap test before self_answers."""
    t = text.rstrip(" 。.!！\n")[:-1]
    return "?" in t or "？" in t


def self_answers(eng: Engine, an: Analyzed) -> list[Violation]:
    """The answer rules' findings on one agent utterance that asks the rule's question and answers
    it in the next sentence ("会不会亏？不会的，您放心"; "Is it safe? Absolutely."), with no hedge."""
    role = an.utt.role or "unknown"
    if role not in AGENT_ROLES or not an.norm:
        return []
    out = []
    for cr in eng.answer_rules:
        if not _in_language(cr, an):
            continue
        got = _self_answered(eng, cr, an)
        if got is not None:
            (s, e), asked = got
            reason = f"asks '{asked}' and answers it with '{an.norm[s:e]}', no caveat; speaker role {role}"
            out.append(to_violation(cr, an.utt, an.norm, Match(s, e, "answer"), reason))
    return out


def answer(eng: Engine, cr: Compiled, ans: list[Analyzed]) -> list[Violation]:
    """The agent utterances that answer a customer's `question` with `reply` at their opening and
    say no unnegated `hedge`: the next agent utterance within `within` utterances (or seconds) of
    the question, with no other customer question between. (The agent who asks the question and
    answers it in one utterance: self_answers, per utterance.)"""
    a = cr.rule.answer
    out = []
    for i, q in enumerate(ans):
        if (q.utt.role or "unknown") != "customer" or not q.norm or not _in_language(cr, q):
            continue
        qs = _asked(eng, cr, q)
        if qs is None:
            continue
        for j in range(i + 1, len(ans)):
            r = ans[j]
            if a.unit == "utterances" and j - i > a.within:
                break
            if a.unit == "seconds" and r.utt.start - q.utt.end > a.within:
                break
            role = r.utt.role or "unknown"
            if role not in AGENT_ROLES:
                if role == "customer" and "?" in r.norm:
                    break  # another question: the reply answers that one
                continue
            norm = r.norm
            span = _reply(eng, cr, r)
            if span is not None and not _hedged(eng, cr, r):
                asked = q.utt.text.strip()
                reason = (f"answers the customer's question '{asked}' with '{norm[span[0]:span[1]]}', "
                          f"no caveat in the reply; speaker role {role}")
                v = to_violation(cr, r.utt, norm, Match(span[0], span[1], "answer"), reason)
                v.context = f"{asked} → {v.context}"
                if not v.utterance_index:
                    v.utterance_index = j
                out.append(v)
            break
    return out


_TIMING = {"silence": silence, "overtalk": overtalk, "rate": rate}


def run_call_rules(eng: Engine, ans: list[Analyzed]) -> list[Violation]:
    out: list[Violation] = []
    lang = None  # the call's language, for the timing rules
    for cr in eng.call_rules:
        k = cr.rule.kind
        if k == "absence":
            v = absence(eng, cr, ans)
            if v:
                out.append(v)
        elif k == "ordering":
            v = ordering(eng, cr, ans)
            if v:
                out.append(v)
        elif k == "window":
            out.extend(window(eng, cr, ans))
        elif k == "answer":
            out.extend(answer(eng, cr, ans))
        elif k in _TIMING:
            if lang is None:
                lang = call_language(ans)
            if cr.rule.language == lang:
                out.extend(_TIMING[k](eng, cr, ans))
    return out
