"""Call-level rules: absence (mandatory disclosure never said), ordering (disclosure after the
purchase confirmation) and window (something required within N utterances/seconds of an anchor)."""

from __future__ import annotations

from ..types import Violation
from .engine import AGENT_ROLES, Analyzed, Compiled, Engine, to_violation


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


def run_call_rules(eng: Engine, ans: list[Analyzed]) -> list[Violation]:
    out: list[Violation] = []
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
    return out
