"""Call-level timing rules: silence (dead air; a confirmation question met by silence while the
agent goes on), overtalk (the agent talking over the customer; a risk warning read over the
customer's words) and rate (a risk warning rushed through). They read when each utterance was said
(word times where the transcript has them), which no text rule can see."""

from __future__ import annotations

import re

from ..types import Utterance, Violation
from . import cues
from .engine import Analyzed, Compiled, Engine, Match, _span_time, has_han, to_violation
from .text import HAN_RE, clause_bounds

#: the roles on each side of a timing rule; an unknown speaker is on neither side but "any"
_SIDE = {"agent": frozenset({"agent", "supervisor"}), "customer": frozenset({"customer"}),
         "any": frozenset({"agent", "supervisor", "customer", "unknown"})}
#: who counts as interrupted when `by` talks over them
_OTHER = {"agent": _SIDE["customer"], "customer": _SIDE["agent"], "any": _SIDE["any"]}

#: word gaps shorter than this are one stretch of speech (a pause inside a sentence is not silence)
JOIN_S = 0.3
#: how many earlier utterances may still be running when one starts (diarised turns are short)
_LOOKBACK = 20

_LATIN = re.compile(r"[A-Za-z]")
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def call_language(ans: list[Analyzed]) -> str:
    """The language most of the call's utterances are in (Han characters: zh; Latin letters: en;
    neither: the transcriber's label). Timing rules read no words, so a pack's timing rules apply
    to the calls in its language only, and a call gets one pack's, not both."""
    zh = en = 0
    for a in ans:
        t = a.utt.text or ""
        lang = "zh" if has_han(t) else "en" if _LATIN.search(t) else (a.utt.language or "")[:2]
        zh += lang == "zh"
        en += lang == "en"
    return "en" if en > zh else "zh"


def _speech(u: Utterance) -> list[tuple[float, float]]:
    """The stretches of the utterance with speech: its words joined across short gaps, else the
    utterance's own start and end."""
    out: list[tuple[float, float]] = []
    for w in sorted(u.words, key=lambda w: w.start):
        if w.end <= w.start:
            continue
        if out and w.start - out[-1][1] < JOIN_S:
            if w.end > out[-1][1]:
                out[-1] = (out[-1][0], w.end)
        else:
            out.append((w.start, w.end))
    if not out and u.end > u.start:
        out.append((u.start, u.end))
    return out


def _together(a: list[tuple[float, float]], b: list[tuple[float, float]], since: float) -> list[tuple[float, float]]:
    """Where both speak, from `since` on."""
    out = []
    for s1, e1 in a:
        for s2, e2 in b:
            s, e = max(s1, s2, since), min(e1, e2)
            if e > s:
                out.append((s, e))
    out.sort()
    return out


def _said_at(eng: Engine, cr: Compiled, key: str, an: Analyzed) -> list[tuple[float, float]]:
    """The times of the clauses where the utterance says the element, not negated or asked."""
    return [_span_time(an.utt, an.norm, s, e) for s, e in eng.element_said(cr, key, an)]


def _asks(an: Analyzed) -> bool:
    """Whether the utterance ends by asking something: its last clause is a question by the
    question cues (a question mark, or without one 吗/是否/是不是… or English interrogative word
    order, since ASR often drops the mark)."""
    norm = an.norm
    end = len(norm.rstrip(" .!。！…~"))
    if not end:
        return False
    if norm[end - 1] == "?":
        return True
    return cues.question(norm, end - 1, end, has_han(norm[:end])) is not None


def _role(an: Analyzed) -> str:
    return an.utt.role or "unknown"


def _quote(u: Utterance, n: int = 60) -> str:
    t = (u.text or "").strip()
    return t if len(t) <= n else t[:n] + "…"


def silence(eng: Engine, cr: Compiled, ans: list[Analyzed]) -> list[Violation]:
    """Each gap of at least min_s seconds between the end of all speech so far and the next
    utterance, where the utterances on either side meet the rule's roles, question and anchor."""
    r = cr.rule.silence
    after, before = _SIDE[r.after], _SIDE[r.before]
    out: list[Violation] = []
    heard = None  # when the speech so far ends
    last: Analyzed | None = None  # the utterance that ends it
    last_j = 0  # its position
    for j, a in enumerate(ans):
        sp = _speech(a.utt)
        if not sp:
            continue
        if last is not None:
            gap = sp[0][0] - heard
            if (gap >= r.min_s and _role(last) in after and _role(a) in before
                    and (not r.question or _asks(last))
                    and (r.anchor is None or eng.element_in(cr, "anchor", last, check_neg=False) is not None)):
                u, p = a.utt, last.utt
                reason = (f"{gap:.1f} s of silence after {p.speaker} ({_role(last)}) said "
                          f"'{_quote(p)}'; then {u.speaker} ({_role(a)}) spoke at {sp[0][0]:.1f} s")
                # the finding is the agent's (dead air is the agent's to manage): the agent's side of the gap
                owner = last if cr.rule.speaker == "agent" and _role(a) not in _SIDE["agent"] \
                    and _role(last) in _SIDE["agent"] else a
                v = to_violation(cr, owner.utt, owner.norm, None, reason, kind="silence")
                v.start, v.end = round(heard, 3), round(sp[0][0], 3)
                v.matched_text = p.text
                v.context = f"{p.speaker}: {p.text} … [{gap:.1f} s] … {u.speaker}: {u.text}"
                if not v.utterance_index:
                    v.utterance_index = j if owner is a else last_j
                out.append(v)
        if heard is None or sp[-1][1] > heard:
            heard, last, last_j = sp[-1][1], a, j
    return out


def overtalk(eng: Engine, cr: Compiled, ans: list[Analyzed]) -> list[Violation]:
    """The moments a `by` speaker starts while another (interrupted) speaker is talking and both talk
    for at least min_s seconds, with the rule's `during` / `over` elements where it has them."""
    r = cr.rule.overtalk
    by, other = _SIDE[r.by], _OTHER[r.by]
    speech: dict[int, list] = {}

    def sp(i: int) -> list:
        got = speech.get(i)
        if got is None:
            got = speech[i] = _speech(ans[i].utt)
        return got

    events = []  # (x, y, seconds together, where)
    for j, x in enumerate(ans):
        ux = x.utt
        if _role(x) not in by:
            continue
        best = None
        for i in range(max(0, j - _LOOKBACK), j):
            y = ans[i]
            uy = y.utt
            if uy.speaker == ux.speaker or _role(y) not in other or not uy.start < ux.start < uy.end:
                continue
            both = _together(sp(j), sp(i), ux.start)
            secs = sum(e - s for s, e in both)
            if secs < r.min_s or (best is not None and secs <= best[2]):
                continue
            if r.over is not None and eng.element_in(cr, "over", y) is None:
                continue
            if r.during is not None:
                said = _said_at(eng, cr, "during", x)
                if not any(s < e2 and s2 < e for s, e in both for s2, e2 in said):
                    continue
            best = (j, i, secs, both)
        if best is not None:
            events.append(best)
    if len(events) < r.min_count:
        return []
    out = []
    for j, i, secs, both in events if r.min_count == 1 else events[:1]:
        x, y = ans[j], ans[i]
        ux, uy = x.utt, y.utt
        if r.min_count == 1:
            what = f", saying {r.during.name}" if r.during is not None else ""
            over = f" {r.over.name}" if r.over is not None else ""
            reason = (f"{ux.speaker} ({_role(x)}) started at {ux.start:.1f} s while {uy.speaker} "
                      f"({_role(y)}) was saying{over} '{_quote(uy)}'; both talked for {secs:.1f} s{what}")
        else:
            total = sum(ev[2] for ev in events)
            who = {"agent": "the agent talked over the customer", "customer": "the customer talked over the agent",
                   "any": "the speakers talked over each other"}[r.by]
            reason = (f"{who} {len(events)} times ({total:.1f} s in all, "
                      f"each at least {r.min_s:g} s), first at {ux.start:.1f} s over '{_quote(uy)}'")
        v = to_violation(cr, ux, x.norm, None, reason, kind="overtalk")
        v.start, v.end = round(both[0][0], 3), round(both[-1][1], 3)
        v.context = f"{uy.speaker}: {uy.text} ‖ {ux.speaker}: {ux.text}"
        if not v.utterance_index:
            v.utterance_index = j
        out.append(v)
    return out


def rate(eng: Engine, cr: Compiled, ans: list[Analyzed]) -> list[Violation]:
    """The agent utterances that say the rule's element (not negated or asked) in a sentence spoken
    faster than max_rate Han characters (zh) or words (en) a second: one finding per utterance."""
    r = cr.rule.rate
    zh = cr.rule.language == "zh"
    unit = "characters" if zh else "words"
    out: list[Violation] = []
    for j, a in enumerate(ans):
        if _role(a) not in _SIDE["agent"] or not a.norm or eng.element_in(cr, "element", a) is None:
            continue
        norm, done = a.norm, set()
        for s, e in eng.element_said(cr, "element", a):
            ss, se = clause_bounds(norm, s, e, marks=".?!")
            if (ss, se) in done:
                continue
            done.add((ss, se))
            t0, t1 = _span_time(a.utt, norm, ss, se)
            if t1 - t0 < r.min_s:
                continue
            sentence = norm[ss:se]
            n = len(HAN_RE.findall(sentence)) if zh else len(_WORD.findall(sentence))
            speed = n / (t1 - t0)
            if speed <= r.max_rate:
                continue
            reason = (f"'{r.element.name}' said at {speed:.1f} {unit} a second ({n} in {t1 - t0:.1f} s), "
                      f"faster than {r.max_rate:g}")
            v = to_violation(cr, a.utt, norm, Match(ss, se, "rate"), reason, kind="rate")
            if not v.utterance_index:
                v.utterance_index = j
            out.append(v)
            break
    return out
