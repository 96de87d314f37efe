"""The rule engine: every literal of every rule goes into one Aho-Corasick automaton (run over the
pinyin layer of the normalized text, so exact and homophone matches come from one pass); only the
rules whose literals were seen are evaluated. Call-level rules (absence, ordering, window) read the
per-utterance hits afterwards.

The gate (analyze): one str.translate maps the raw text straight to the pinyin layer of its
normalised form (width, punctuation, case and each Han character's pinyin class in one table), and
one pass of the automaton for the speaker's role finds the trigger literals. An utterance without
a hit costs that and nothing else: its normalised text is built only when something reads it.
Text the table cannot normalise on its own (Traditional characters, white space, 百分之/个点
numbers) goes through normalize() first, with the same result.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import ahocorasick

from ..types import Utterance, Violation
from . import cues
from .loader import Pack
from .schema import Element, Rule
from .text import (clause_bounds, exact_pinyin, gate_layer, gate_norm, gate_table, has_han, is_word, normalize, pinyin_layer,
                   pinyin_str, register_words, straddles_word)

AGENT_ROLES = frozenset({"agent", "unknown", "supervisor"})
CUSTOMER_ROLES = frozenset({"customer", "unknown"})
ANY_ROLES = frozenset({"agent", "customer", "unknown", "supervisor"})

# literal roles inside a rule
TRIG, NEAR_A, NEAR_B, KEY, ALL, NONE, EXCEPT, CTX, CTXN = range(9)


@dataclass(slots=True)
class Hit:
    start: int
    end: int
    lit: str
    exact: bool

    def text(self, norm: str) -> str:
        return norm[self.start:self.end]


class Analyzed:
    """One utterance after normalisation and the automaton pass. `norm` is computed on first use
    when the gate found nothing (most utterances); `cues` memoises the suppressor checks per span,
    so rules that share a hit share the negation/question/quotation work."""

    __slots__ = ("utt", "_norm", "hits", "layer", "scanned", "cues")

    def __init__(self, utt: Utterance, norm: str | None, hits: dict, layer: str = "", scanned: int = 0):
        self.utt = utt
        self._norm = norm
        self.hits = hits  # literal id -> hits
        self.layer = layer
        self.scanned = scanned  # bit set of the automata already run (1 trigger, 2 condition, 4 element)
        self.cues = None

    @property
    def norm(self) -> str:
        n = self._norm
        if n is None:  # the gate passed: normalize() is the character map alone
            n = self._norm = gate_norm(self.utt.text)
        return n

    @norm.setter
    def norm(self, value: str) -> None:
        self._norm = value


@dataclass(slots=True)
class Match:
    start: int
    end: int
    how: str
    lit: str = ""
    exact: bool = True
    inner: int = -1  # start of the second element of a proximity match


@dataclass
class Compiled:
    rule: Rule
    pack: Pack
    idx: int
    roles: frozenset
    regexes: list = field(default_factory=list)  # (compiled, [unless compiled])
    has_keys: bool = False
    rx_keys: list = field(default_factory=list)
    n_all: int = 0
    elements: dict = field(default_factory=dict)  # name -> (Element, [lit ids], [compiled regex])


def _roles(speaker: str) -> frozenset:
    return {"agent": AGENT_ROLES, "customer": CUSTOMER_ROLES}.get(speaker, ANY_ROLES)


class Engine:
    def __init__(self, packs: list[Pack]):
        self.packs = packs
        self.rules: list[Compiled] = []
        self._lits: dict[str, int] = {}
        self._lit_text: list[str] = []
        self._lit_han: list[int] = []  # number of Han chars
        self._lit_entries: list[list[tuple[int, int, int]]] = []  # (rule idx, role, sub)
        self.call_rules: list[Compiled] = []
        for pk in packs:
            for rule in pk.rules:
                if rule.enabled:
                    self._compile(rule, pk)
        # Per literal: the rules it can trigger (phrases, regex prefilter keys, the `b` side of a
        # proximity pair). Other literals (context, exclusions, `a` side) are only read for rules
        # that some trigger literal selected.
        self._lit_trig: list[tuple[int, ...]] = [
            tuple(sorted({r for r, role, _ in ents if role in (TRIG, KEY, NEAR_B)}))
            for ents in self._lit_entries]
        self._lit_ctx: list[tuple[tuple[int, int], ...]] = [
            tuple((r, role) for r, role, _ in ents if role in (CTX, CTXN)
                  and self.rules[r].rule.match.context_scope == "call")
            for ents in self._lit_entries]
        self._unfiltered = [c for c in self.rules
                            if c.rule.kind == "utterance" and c.regexes and not c.has_keys]
        # Three automata over the pinyin layer, each literal in one of them: trigger literals (and
        # call-scope context) run on every utterance; condition literals only when a trigger hit;
        # call-level element literals only when the call-level checks run.
        groups: list[dict[str, list[int]]] = [{}, {}, {}]
        for lid, lit in enumerate(self._lit_text):
            if self._lit_trig[lid] or self._lit_ctx[lid]:
                g = 0
            elif self._lit_entries[lid]:
                g = 1
            else:
                g = 2
            groups[g].setdefault(pinyin_layer(lit), []).append(lid)
        self._autos = [self._automaton(by_key) for by_key in groups]
        # Per role: literal id -> the rules it can trigger for an utterance of that role.
        self._trig_by_role = {role: [tuple(r for r in rs if role in self.rules[r].roles) for rs in self._lit_trig]
                              for role in ANY_ROLES}
        # Per role, the gate automaton: the trigger-group literals that matter for an utterance of
        # that role (any literal of a rule that applies to the role; call-scope context on agent
        # turns). A customer turn is not scanned for literals only agent rules read. Call-level
        # checks rescan with the full automata (ensure_elements).
        self._role_autos = {}
        self._role_rest = {}  # the other trigger-group literals, for the call-level checks
        for role in ANY_ROLES:
            keep = {lid for lid, ents in enumerate(self._lit_entries)
                    if any(role in self.rules[r].roles for r, _, _ in ents)
                    or (role in AGENT_ROLES and self._lit_ctx[lid])}
            sub, rest = {}, {}
            for key, lids in groups[0].items():
                lk = [lid for lid in lids if lid in keep]
                if lk:
                    sub[key] = lk
                lr = [lid for lid in lids if lid not in keep]
                if lr:
                    rest[key] = lr
            self._role_autos[role] = self._automaton(sub)
            self._role_rest[role] = self._automaton(rest)
        self._no_trig = [()] * len(self._lit_trig)
        self._gate = gate_table()
        register_words(self._lit_text)

    def _automaton(self, by_key: dict[str, list[int]]):
        """Each value: (length, ((lid, literal, Han count, latin edge), ...)). The latin edge flag
        (first or last character ASCII) is the same for the literal and for anything its pinyin
        key matches, since the layer leaves non-Han characters as they are."""
        if not by_key:
            return None
        auto = ahocorasick.Automaton()
        for key, lids in by_key.items():
            auto.add_word(key, (len(key), tuple(
                (lid, self._lit_text[lid], self._lit_han[lid], key[0] < "\u0080" or key[-1] < "\u0080")
                for lid in lids)))
        auto.make_automaton()
        return auto

    # ---------------------------------------------------------------- compile
    def _lit(self, phrase: str, ridx: int, role: int, sub: int = 0) -> int:
        p = normalize(phrase)
        if not p:
            return -1
        lid = self._lits.get(p)
        if lid is None:
            lid = len(self._lit_text)
            self._lits[p] = lid
            self._lit_text.append(p)
            self._lit_han.append(sum(1 for c in p if "\u3400" <= c <= "\u9fff"))
            self._lit_entries.append([])
        if ridx >= 0:
            self._lit_entries[lid].append((ridx, role, sub))
        return lid

    def _element(self, el: Element, ridx: int):
        lids = [self._lit(p, -1, 0) for p in el.phrases]
        rx = [re.compile(p) for p in el.regex]
        return (el, [x for x in lids if x >= 0], rx)

    def _compile(self, rule: Rule, pack: Pack) -> None:
        ridx = len(self.rules)
        cr = Compiled(rule=rule, pack=pack, idx=ridx, roles=_roles(rule.speaker))
        self.rules.append(cr)
        if rule.kind != "utterance":
            if rule.kind == "absence":
                a = rule.absence
                cr.elements["_purchase"] = self._element(Element(name="purchase", phrases=a.purchase or ["\x00"]), ridx)
                cr.elements["_recommend"] = self._element(Element(name="recommend", phrases=a.recommend or ["\x00"]), ridx)
                if a.scope:
                    cr.elements["_scope"] = self._element(Element(name="scope", phrases=a.scope), ridx)
                if a.when or a.when_regex:
                    cr.elements["_when"] = (Element(name="when", phrases=a.when or ["\x00"]),
                                            [self._lit(p, -1, 0) for p in a.when],
                                            [re.compile(p) for p in a.when_regex])
                for v in a.variants:
                    if v.when:
                        cr.elements[f"_variant:{v.name}"] = self._element(Element(name=v.name, phrases=v.when), ridx)
                    for el in v.required:
                        cr.elements[f"{v.name}:{el.name}"] = self._element(el, ridx)
            elif rule.kind == "ordering":
                cr.elements["first"] = self._element(rule.ordering.first, ridx)
                cr.elements["then"] = self._element(rule.ordering.then, ridx)
            elif rule.kind == "window":
                cr.elements["anchor"] = self._element(rule.window.anchor, ridx)
                cr.elements["required"] = self._element(rule.window.required, ridx)
            self.call_rules.append(cr)
            return
        m = rule.match
        for p in m.phrases:
            self._lit(p, ridx, TRIG)
        for i, nr in enumerate(m.near):
            for p in nr.a:
                self._lit(p, ridx, NEAR_A, i)
            for p in nr.b:
                self._lit(p, ridx, NEAR_B, i)
        for i, rp in enumerate(m.regex):
            cr.regexes.append((re.compile(rp.pattern), [re.compile(u) for u in rp.unless],
                               bool(rp.requires), [re.compile(u) for u in rp.unless_sentence]))
            for p in rp.requires:
                self._lit(p, ridx, KEY, i)
                cr.has_keys = True
        # A regex without `requires` has no prefilter: it is tried on every utterance.
        cr.has_keys = all(rq for _, _, rq, _ in cr.regexes)
        # memo key: the same pattern with the same exclusions is matched once per utterance
        cr.rx_keys = [("rx", rx, tuple(u), tuple(us)) for rx, u, _, us in cr.regexes]
        for gi, group in enumerate(m.all):
            for p in group:
                self._lit(p, ridx, ALL, gi)
        cr.n_all = len(m.all)
        for p in m.none:
            self._lit(p, ridx, NONE)
        for p in m.except_:
            self._lit(p, ridx, EXCEPT)
        for p in m.context:
            self._lit(p, ridx, CTX)
        for p in m.context_none:
            self._lit(p, ridx, CTXN)

    @property
    def unfiltered(self) -> list[Compiled]:
        return self._unfiltered

    def call_context(self, an: Analyzed, ctx: set) -> None:
        """Record call-scope context literals of an agent utterance: rule idx (context seen) or
        -idx-1 (an excluding context seen)."""
        lit_ctx = self._lit_ctx
        for lid in an.hits:
            for r, role in lit_ctx[lid]:
                ctx.add(r if role == CTX else -r - 1)

    # ---------------------------------------------------------------- per utterance
    def analyze(self, utt: Utterance) -> Analyzed:
        """The gate: one str.translate (full/half width, punctuation, case and the pinyin class of
        every Han character in one table) and one pass of the trigger automaton. Only utterances
        with a hit get their normalised text built and go on to the Python checks; text that the
        table cannot normalise on its own (Traditional characters, spaces, 百分之/个点 numbers) takes
        the full normalize() first."""
        text = utt.text
        if not text:
            return Analyzed(utt, "", {})
        if text.isascii():
            norm = normalize(text)
            an = Analyzed(utt, norm, {}, norm)
        else:
            layer = gate_layer(text, self._gate)
            if layer is None:
                norm = normalize(text)
                an = Analyzed(utt, norm, {}, pinyin_layer(norm))
            else:
                an = Analyzed(utt, None, {}, layer)
        if an.layer:
            auto = self._role_autos.get(utt.role or "unknown")
            an.scanned = 9  # trigger group scanned, for this role only
            if auto is not None:
                self._scan_with(an, auto)
        return an

    def ensure_elements(self, an: Analyzed) -> None:
        """Add the call-level element literals' hits (run once per utterance, on demand)."""
        if an.norm and not an.scanned & 4:
            if an.scanned & 8:  # the role's gate automaton only: add the rest of the trigger group
                role = an.utt.role or "unknown"
                rest = self._role_rest.get(role)
                if role not in self._role_rest:
                    an.hits = {}
                    self._scan(an, 0)
                elif rest is not None:
                    self._scan_with(an, rest)
                an.scanned &= ~8
            self._scan(an, 2)
            if not an.scanned & 2:
                self._scan(an, 1)

    def _scan(self, an: Analyzed, g: int) -> None:
        an.scanned |= 1 << g
        auto = self._autos[g]
        if auto is not None:
            self._scan_with(an, auto)

    def _scan_with(self, an: Analyzed, auto) -> None:
        norm = None
        hits = an.hits
        for end, (n, ents) in auto.iter(an.layer):
            if norm is None:
                norm = an.norm
            start = end + 1 - n
            seg = norm[start:end + 1]
            for lid, lit, nh, latin in ents:
                exact = seg == lit
                if not exact:
                    if nh < 2:
                        continue
                    if nh == 2 and (exact_pinyin(seg) != exact_pinyin(lit)
                                    or straddles_word(norm, start, end + 1)):
                        continue
                    if is_word(seg):
                        continue  # a real word that sounds alike (保障/包涨), not an ASR slip
                if latin and not _word_bounded(norm, start, end + 1):
                    continue
                h = hits.get(lid)
                if h is None:
                    hits[lid] = [Hit(start, end + 1, lit, exact)]
                else:
                    h.append(Hit(start, end + 1, lit, exact))

    def candidates(self, an: Analyzed) -> dict[int, dict[int, list]]:
        """rule idx -> role -> [(sub, Hit)] for the rules that a trigger literal selected and that
        apply to the utterance's speaker role (the condition automaton runs only then)."""
        hits = an.hits
        lit_trig = self._trig_by_role.get(an.utt.role or "unknown", self._no_trig)
        out: dict[int, dict[int, list]] = {}
        for lid in hits:
            for r in lit_trig[lid]:
                if r not in out:
                    out[r] = {}
        if not out:
            return out
        if not an.scanned & 2:
            self._scan(an, 1)
            hits = an.hits
        entries = self._lit_entries
        for lid, hl in hits.items():
            for ridx, role, sub in entries[lid]:
                d = out.get(ridx)
                if d is None:
                    continue
                lst = d.get(role)
                if lst is None:
                    lst = d[role] = []
                for h in hl:
                    lst.append((sub, h))
        return out

    def match_utterance(self, an: Analyzed, call_ctx: set | None = None) -> list[tuple[Compiled, Match, str]]:
        """Utterance-level rules that fire: (rule, match, reason)."""
        role = an.utt.role or "unknown"
        out = []
        cands = self.candidates(an) if an.hits else {}
        if self._unfiltered:
            for cr in self._unfiltered:
                cands.setdefault(cr.idx, {})
        rules = self.rules
        for ridx, d in cands.items():
            cr = rules[ridx]
            if role not in cr.roles:
                continue
            res = self._eval(cr, an, d, call_ctx)
            if res is not None:
                out.append((cr, res[0], res[1]))
        return out

    def _ok_hit(self, cr: Compiled, h: Hit) -> bool:
        return h.exact or cr.rule.pinyin

    def _eval(self, cr: Compiled, an: Analyzed, d: dict, call_ctx) -> tuple[Match, str] | None:
        rule = cr.rule
        m = rule.match
        norm = an.norm
        pin = rule.pinyin  # homophone hits count (else exact hits only)
        if NONE in d and any(pin or h.exact for _, h in d[NONE]):
            return None
        if cr.n_all:
            got = {sub for sub, h in d.get(ALL, ()) if pin or h.exact}
            if len(got) < cr.n_all:
                return None
        if m.context:
            have = any(pin or h.exact for _, h in d.get(CTX, ()))
            if not have and m.context_scope == "call" and call_ctx is not None:
                have = cr.idx in call_ctx
            if not have:
                return None
        if m.context_none:
            if any(pin or h.exact for _, h in d.get(CTXN, ())):
                return None
            if m.context_scope == "call" and call_ctx is not None and -cr.idx - 1 in call_ctx:
                return None
        found: list[Match] = []
        for _, h in d.get(TRIG, ()):
            if pin or h.exact:
                found.append(Match(h.start, h.end, "phrase", h.lit, h.exact))
        if cr.regexes:
            keyed = {sub for sub, _ in d.get(KEY, ())}
            memo = an.cues
            if memo is None:
                memo = an.cues = {}
            rx_keys = cr.rx_keys
            for i, (rx, unless, needs_key, unless_s) in enumerate(cr.regexes):
                if needs_key and i not in keyed:
                    continue
                mk = rx_keys[i]
                spans = memo.get(mk)
                if spans is None:
                    spans = memo[mk] = _regex_spans(norm, rx, unless, unless_s)
                for ms, me in spans:
                    found.append(Match(ms, me, "regex", rx.pattern))
        if m.near and (NEAR_A in d and NEAR_B in d):
            found.extend(self._near(cr, an, d))
        if not found:
            return None
        excepts = [h for _, h in d.get(EXCEPT, ())]
        found.sort(key=lambda x: (x.start, -x.end))
        last_reason = None
        memo = an.cues
        if memo is None:
            memo = an.cues = {}
        for f in found:
            if any(e.start < f.end and f.start < e.end for e in excepts):
                continue
            s, e = f.start, f.end
            # The suppressor checks depend only on the text and the span (memoised per utterance).
            sp = memo.get((s, e))
            if sp is None:
                sp = memo[(s, e)] = [has_han(norm[s:e]), clause_bounds(norm, s, e), 0, 0, 0, 0, 0]
            zh, cb = sp[0], sp[1]
            if rule.negation == "suppress":
                c = sp[2]
                if c == 0:
                    c = sp[2] = cues.negation(norm, s, e, zh, cb)
                if not c and f.inner > s:
                    key = ("inner", f.inner, e)
                    c = memo.get(key, 0)
                    if c == 0:
                        c = memo[key] = cues.negation(norm, f.inner, e, zh)
                if c:
                    last_reason = f"negated by '{c}'"
                    continue
            if rule.question == "suppress":
                c = sp[3]
                if c == 0:
                    c = sp[3] = cues.question(norm, s, e, zh, cb)
                if c:
                    last_reason = f"question ('{c}')"
                    continue
            k = 4 if cr.pack.info.kind == "signal" else 5
            c = sp[k]
            if c == 0:
                c = sp[k] = cues.meta(norm, s, e, zh, advice=k == 4)
            if c:
                last_reason = f"mentioned, not used ('{c}')"
                continue
            if rule.hearsay == "suppress":
                c = sp[6]
                if c == 0:
                    c = sp[6] = cues.hearsay(norm, s, e, zh, cb)
                if c:
                    last_reason = f"hearsay/quotation ('{c}')"
                    continue
            return f, _reason(f, norm, an.utt.role)
        return None

    def _near(self, cr: Compiled, an: Analyzed, d: dict) -> list[Match]:
        out = []
        norm = an.norm
        tix = None
        for i, nr in enumerate(cr.rule.match.near):
            A = [h for sub, h in d.get(NEAR_A, ()) if sub == i and self._ok_hit(cr, h)]
            B = [h for sub, h in d.get(NEAR_B, ()) if sub == i and self._ok_hit(cr, h)]
            for a in A:
                for b in B:
                    if a.start < b.end and b.start < a.end:
                        continue  # overlapping: the same words
                    if nr.ordered and not a.start < b.start:
                        continue
                    first, second = (a, b) if a.start <= b.start else (b, a)
                    if nr.unit == "chars":
                        dist = second.start - first.end
                    elif nr.unit == "tokens":
                        if tix is None:
                            from .text import token_index

                            tix = token_index(norm)
                        dist = tix[second.start] - tix[max(first.end - 1, 0)] - 1
                    else:  # seconds, estimated from the utterance's timing
                        u = an.utt
                        rate = (u.end - u.start) / max(len(norm), 1)
                        dist = (second.start - first.end) * rate
                    if dist <= nr.within:
                        out.append(Match(first.start, second.end, "near",
                                         f"{a.lit} ~ {b.lit} within {nr.within:g} {nr.unit}",
                                         a.exact and b.exact, second.start))
        return out

    # ---------------------------------------------------------------- elements (call-level)
    def element_in(self, cr: Compiled, key: str, an: Analyzed, check_neg: bool = True) -> tuple[int, int] | None:
        self.ensure_elements(an)
        el, lids, rxs = cr.elements[key]
        norm = an.norm
        spans = []
        for lid in lids:
            for h in an.hits.get(lid, ()):
                if h.exact or cr.rule.pinyin:
                    spans.append((h.start, h.end))
        for rx in rxs:
            for mm in rx.finditer(norm):
                spans.append((mm.start(), mm.end()))
        for s, e in spans:
            zh = has_han(norm[s:e])
            if check_neg and (cues.negation(norm, s, e, zh) or cues.question(norm, s, e, zh)):
                continue
            return (s, e)
        return None


def _regex_spans(norm: str, rx, unless, unless_s) -> list[tuple[int, int]]:
    out = []
    for mm in rx.finditer(norm):
        if mm.end() <= mm.start():
            continue
        if unless:
            cs, ce = _clause(norm, mm.start(), mm.end())
            if any(u.search(norm[cs:ce]) for u in unless):
                continue
        if unless_s:
            cs, ce = clause_bounds(norm, mm.start(), mm.end(), marks=".?!")
            if any(u.search(norm[cs:ce]) for u in unless_s):
                continue
        out.append((mm.start(), mm.end()))
    return out


_WORDCH = re.compile(r"[a-z0-9]")


def _word_bounded(norm: str, s: int, e: int) -> bool:
    """Latin literals must match whole words ('no risk' not inside 'piano risk')."""
    if s > 0 and _WORDCH.match(norm[s]) and _WORDCH.match(norm[s - 1]):
        return False
    if e < len(norm) and _WORDCH.match(norm[e - 1]) and _WORDCH.match(norm[e]):
        return False
    return True


def _clause(norm, s, e):
    from .text import clause_bounds

    return clause_bounds(norm, s, e)


def _reason(f: Match, norm: str, role: str) -> str:
    seen = norm[f.start:f.end]
    if f.how == "phrase":
        if f.exact:
            r = f"phrase '{f.lit}'"
        else:
            r = f"homophone of '{f.lit}' ({pinyin_str(f.lit)}) heard as '{seen}'"
    elif f.how == "regex":
        r = f"pattern /{f.lit}/ matched '{seen}'"
    else:
        r = f"proximity {f.lit}" + ("" if f.exact else " (homophone)")
    return f"{r}; not negated, not a question, not quoted; speaker role {role or 'unknown'}"


def to_violation(cr: Compiled, utt: Utterance, norm: str, m: Match | None, reason: str,
                 kind: str | None = None) -> Violation:
    rule = cr.rule
    if kind is None:
        kind = "signal" if cr.pack.info.kind == "signal" else "utterance"
    if m is not None and norm:
        start, end = _span_time(utt, norm, m.start, m.end)
        # Evidence in the speaker's own characters (Traditional, full-width, the ASR's homophone)
        # when normalisation kept the offsets; otherwise in normalised form.
        src = utt.text if len(utt.text) == len(norm) else norm
        matched = src[m.start:m.end]
        a, b = max(0, m.start - 25), min(len(src), m.end + 25)
        context = ("…" if a > 0 else "") + src[a:m.start] + "【" + matched + "】" + src[m.end:b] + (
            "…" if b < len(src) else "")
    else:
        start, end = utt.start, utt.end
        matched = utt.text
        context = utt.text
    reg = rule.regulation
    return Violation(
        rule_id=rule.id, title=rule.title, category=rule.category, severity=rule.severity,
        start=round(start, 3), end=round(end, 3), speaker=utt.speaker, role=utt.role or "unknown",
        matched_text=matched, context=context, reason=reason, kind=kind,
        utterance_index=utt.index, pack=cr.pack.id,
        regulation=f"{reg.document} {reg.article}".strip(), suggestion=rule.suggestion)


def _span_time(utt: Utterance, norm: str, s: int, e: int) -> tuple[float, float]:
    """Time of the clause holding the match: word timings when present, else by character share."""
    from .text import clause_bounds

    cs, ce = clause_bounds(norm, s, e)
    dur = max(utt.end - utt.start, 0.0)
    n = max(len(norm), 1)
    if utt.words:
        offs = []
        pos = 0
        for w in utt.words:
            wn = normalize(w.text)
            offs.append((pos, pos + len(wn), w))
            pos += len(wn)
        if pos and abs(pos - n) <= max(3, n // 5):
            scale = pos / n
            ws = [w for a, b, w in offs if b > cs * scale and a < ce * scale]
            if ws:
                return ws[0].start, ws[-1].end
    return utt.start + dur * cs / n, utt.start + dur * ce / n
