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
from typing import NamedTuple

import ahocorasick

from ..types import Utterance, Violation
from . import cues
from .loader import Pack
from .schema import Element, Rule
from .text import HAN_RE as _HAN_RE
from .text import (clause_bounds, exact_table, gate_layer, gate_norm, gate_table, has_han, is_word, normalize,
                   pinyin_layer, pinyin_str, register_words, straddles_word, token_index)

AGENT_ROLES = frozenset({"agent", "unknown", "supervisor"})
CUSTOMER_ROLES = frozenset({"customer", "unknown"})
ANY_ROLES = frozenset({"agent", "customer", "unknown", "supervisor"})

# literal roles inside a rule
TRIG, NEAR_A, NEAR_B, KEY, ALL, NONE, EXCEPT, CTX, CTXN = range(9)


class Hit(NamedTuple):
    """A literal seen in the utterance (a tuple: built in the automaton loops, read by name)."""
    start: int
    end: int
    lit: str
    exact: bool

    def text(self, norm: str) -> str:
        return norm[self.start:self.end]


_tnew = tuple.__new__  # Hit/Match without the Python-level __new__: _tnew(Hit, (start, end, lit, exact))


class Analyzed:
    """One utterance after normalisation and the automaton pass. `norm` is computed on first use
    when the gate found nothing (most utterances); `cues` memoises the regex and suppressor checks
    per utterance, so rules that share a hit share the negation/question/quotation work.

    `live` says whether any rule can fire on the utterance for its speaker's role: False when the
    gate settled it (no trigger literal, or only `requires` keys whose regexes cannot or do not
    match)."""

    __slots__ = ("utt", "_norm", "hits", "layer", "scanned", "cues", "live", "ctx")

    def __init__(self, utt: Utterance, norm: str | None, hits: dict, layer: str = "", scanned: int = 0,
                 live: bool | None = None):
        self.utt = utt
        self._norm = norm
        self.hits = hits  # literal id -> hits
        self.layer = layer
        self.scanned = scanned  # bit set of the automata already run (1 trigger, 2 condition, 4 element)
        self.cues = None
        self.live = bool(hits) if live is None else live
        self.ctx = None  # call-scope context entries (Engine.context_of), on demand

    @property
    def norm(self) -> str:
        n = self._norm
        if n is None:  # the gate passed: normalize() is the character map alone
            n = self._norm = gate_norm(self.utt.text)
        return n

    @norm.setter
    def norm(self, value: str) -> None:
        self._norm = value


class Match(NamedTuple):
    start: int
    end: int
    how: str
    lit: str = ""
    exact: bool = True
    inner: int = -1  # start of the second element of a proximity match


@dataclass(slots=True, eq=False)
class Compiled:
    rule: Rule
    pack: Pack
    idx: int
    roles: frozenset
    regexes: list = field(default_factory=list)  # (compiled, [unless compiled])
    has_keys: bool = False
    rx_keys: list = field(default_factory=list)
    rx_need: list = field(default_factory=list)  # per regex: its gate factors (_gate_factors)
    rx_free: tuple = ()  # indices of the regexes without `requires` (tried on every utterance)
    n_all: int = 0
    pin: bool = False  # homophone hits count
    has_near: bool = False
    # the rule's switches, read once per evaluation
    neg: bool = False  # negation suppresses
    question: bool = False  # a question suppresses
    hearsay: bool = False  # hearsay / quotation suppresses
    signal: bool = False  # a signal pack: advice to the listener is not the speaker's own
    context: bool = False
    context_none: bool = False
    call_scope: bool = False  # context read from earlier agent turns too
    regulation: str | None = None  # "document article", for the findings (to_violation)
    cond_lids: frozenset = frozenset()  # literals of its none / all / context / context_none lists
    elements: dict = field(default_factory=dict)  # name -> (Element, [lit ids], [compiled regex])
    el_pos: dict = field(default_factory=dict)  # name -> {lit id: first index in the element's list}
    el_id: dict = field(default_factory=dict)  # name -> an id unique in the engine
    pack_id: str = ""


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
        self._rx_ids: dict[tuple, int] = {}  # regex memo keys (Compiled.rx_keys)
        self._n_elements = 0
        self._exact = exact_table()  # exact toneless syllables, for short homophone hits
        self.call_rules: list[Compiled] = []
        # The rules' own examples, as a sample of what utterances hold (_gate_factors: the order of
        # the regex gate tests)
        self._sample = "\n".join(normalize(ex if isinstance(ex, str) else ex.text or "")
                                  for pk in packs for rule in pk.rules
                                  for ex in list(rule.examples.violation) + list(rule.examples.compliant))
        self._share: dict[str, float] = {}
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
        self._cond_lids = frozenset().union(*(c.cond_lids for c in self.rules))
        #: per literal: the categories of the rules that list it as a phrase (what a hit of it
        #: claims; the similarity layer asks whether such a hit is negated or asked)
        self.phrase_categories: list[frozenset] = [
            frozenset(self.rules[r].rule.category for r, role, _ in ents if role == TRIG)
            for ents in self._lit_entries]
        self._rank = _char_rank([self._sample] + self._lit_text)
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
        # The same per-role automata with what each hit means for the rules (the fast gate:
        # analyze), plus the regexes' gate factors.
        self._fast_autos = {}
        self._fast_ascii = {}
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
            self._fast_autos[role] = self._fast_automaton(role, sub)
            # All-ASCII text can only hit ASCII keys: their own, smaller automaton (pyahocorasick
            # looks a character up among a node's transitions one by one).
            self._fast_ascii[role] = self._fast_automaton(role, {k: v for k, v in sub.items() if k.isascii()})
        self._no_trig = [()] * len(self._lit_trig)
        # Per role and literal: its (rule idx, TRIG|KEY|NEAR_B, sub) entries for the rules of the
        # role, rules in the order candidates() selects them; per literal: rule -> (role, sub).
        self._trig_ents = {role: [tuple(sorted(((r, k, sub) for r, k, sub in ents
                                                if k in (TRIG, KEY, NEAR_B) and role in self.rules[r].roles),
                                               key=lambda x: x[0]))
                                  for ents in self._lit_entries]
                           for role in ANY_ROLES}
        # The same grouped by rule: per role and literal, (rule idx, number of its TRIG entries,
        # the subs of its KEY entries or None, whether a NEAR_B entry), rules in that order.
        self._trig_view = {role: [_group_entries(ents) for ents in lst] for role, lst in self._trig_ents.items()}
        self._lit_by_rule: list[dict[int, tuple]] = []
        for ents in self._lit_entries:
            by: dict[int, list] = {}
            for r, k, sub in ents:
                by.setdefault(r, []).append((k, sub))
            self._lit_by_rule.append({r: tuple(v) for r, v in by.items()})
        self._fast_for = self._role_autos  # the fast gate stands for these role automata only
        # The call-level rules' element literals, scanned on their own when those rules run.
        elem_keys: dict[str, list[int]] = {}
        for cr in self.call_rules:
            for _, lids, _ in cr.elements.values():
                for lid in lids:
                    if lid >= 0:
                        lst = elem_keys.setdefault(pinyin_layer(self._lit_text[lid]), [])
                        if lid not in lst:
                            lst.append(lid)
        self._elem_auto = self._automaton(elem_keys)
        self._elem_of: dict[int, tuple] = {}  # element literal -> the element ids that list it
        for cr in self.call_rules:
            for k, (_, lids, _) in cr.elements.items():
                for lid in set(lids):
                    if lid >= 0:
                        self._elem_of[lid] = self._elem_of.get(lid, ()) + (cr.el_id[k],)
        self._gate = gate_table()
        register_words(self._lit_text)
        #: the answer rules (calllevel.answer), whose findings detect() merges with the others
        self.answer_rules = [cr for cr in self.call_rules if cr.rule.kind == "answer"]
        self.answer_rule_ids = frozenset(cr.rule.id for cr in self.answer_rules)

    def _fast_automaton(self, role: str, by_key: dict[str, list[int]]):
        """The role's gate automaton (`by_key`: its trigger-group literals) with what each hit
        means. Each value: (length, ((lid, literal, Han count, latin edge, exact syllables, Chinese
        characters only, mode, keyed regexes), ...), the literals when all take exact hits only);
        mode and keyed regexes: what a hit of the literal selects among the role's rules (acts_of).
        Same literals, so the same hits in the same order as the role automaton."""
        def acts_of(lid):
            """(2: a hit selects a rule whatever it is, 1: a hit selects a rule when exact, 0: it
            selects none; the keyed regexes, each (memo key, regex, unless, unless_sentence, gate
            factors), or None)"""
            always = if_exact = False
            keys = {}
            for r, kind, sub in self._lit_entries[lid]:
                cr = self.rules[r]
                if role not in cr.roles:
                    continue
                if kind == TRIG:
                    if cr.rule.pinyin:
                        always = True
                    else:
                        if_exact = True
                elif kind == KEY:
                    rx, unless, _, unless_s = cr.regexes[sub]
                    keys[cr.rx_keys[sub]] = (cr.rx_keys[sub], rx, unless, unless_s, cr.rx_need[sub])
                elif kind == NEAR_B:
                    always = True
            return (2 if always else 1 if if_exact else 0, tuple(keys.values()) or None)

        if not by_key:
            return None
        words = {}
        for key, lids in by_key.items():
            lits = [self._lit_text[lid] for lid in lids]
            # Literals of one Chinese character take exact hits only: the texts that can hit them.
            exact_only = frozenset(lits) if all(self._lit_han[lid] < 2 and _all_han(self._lit_text[lid])
                                                for lid in lids) else None
            words[key] = (len(key), tuple(
                (lid, self._lit_text[lid], self._lit_han[lid], key[0] < "\u0080" or key[-1] < "\u0080",
                 self._lit_text[lid].translate(self._exact), _all_han(self._lit_text[lid])) + acts_of(lid)
                for lid in lids), exact_only)
        return self._build(words, (2, (), None))

    def _automaton(self, by_key: dict[str, list[int]]):
        """Each value: (length, ((lid, literal, Han count, latin edge), ...)). The latin edge flag
        (first or last character ASCII) is the same for the literal and for anything its pinyin
        key matches, since the layer leaves non-Han characters as they are."""
        if not by_key:
            return None
        return self._build({key: (len(key), tuple(
            (lid, self._lit_text[lid], self._lit_han[lid], key[0] < "\u0080" or key[-1] < "\u0080",
             self._lit_text[lid].translate(self._exact))
            for lid in lids)) for key, lids in by_key.items()}, (2, ()))

    def _build(self, words: dict, blank):
        """The automaton of `words` (key -> value), its keys added in the order of how often their
        characters occur (_char_rank): pyahocorasick looks a character up among a node's children
        one by one, in the order they were added, so the frequent ones should come first. Besides,
        every frequent character that begins no key gets a root child of its own (a key of it and
        a character text never holds, with the value `blank`, which stands for no literal): a
        character with no root child is compared with all of them, at every position that holds
        it. Same keys and values, so the same hits in the same order, whatever the order."""
        rank = self._rank
        big = len(rank)
        keys = list(words)
        firsts = {k[0] for k in keys}
        keys += [c + _NO_CHAR for c in rank if c not in firsts]
        keys.sort(key=lambda k: [rank.get(c, big) for c in k])
        auto = ahocorasick.Automaton()
        for key in keys:
            auto.add_word(key, words.get(key, blank))
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
        m = rule.match
        cr = Compiled(rule=rule, pack=pack, idx=ridx, roles=_roles(rule.speaker), pin=rule.pinyin,
                      has_near=bool(m and m.near), neg=rule.negation == "suppress",
                      question=rule.question == "suppress", hearsay=rule.hearsay == "suppress",
                      signal=pack.info.kind == "signal", context=bool(m and m.context),
                      context_none=bool(m and m.context_none), call_scope=bool(m and m.context_scope == "call"))
        self.rules.append(cr)
        cr.pack_id = pack.id
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
            elif rule.kind == "answer":
                a = rule.answer
                cr.elements["question"] = self._element(a.question, ridx)
                cr.elements["reply"] = self._element(a.reply, ridx)
                if a.hedge is not None:
                    cr.elements["hedge"] = self._element(a.hedge, ridx)
            elif rule.kind == "silence":
                if rule.silence.anchor is not None:
                    cr.elements["anchor"] = self._element(rule.silence.anchor, ridx)
            elif rule.kind == "rate":
                cr.elements["element"] = self._element(rule.rate.element, ridx)
            elif rule.kind == "overtalk":
                for key in ("during", "over"):
                    el = getattr(rule.overtalk, key)
                    if el is not None:
                        cr.elements[key] = self._element(el, ridx)
            for k, (_, lids, _) in cr.elements.items():
                pos: dict[int, int] = {}
                for i, lid in enumerate(lids):
                    pos.setdefault(lid, i)
                cr.el_pos[k] = pos
                cr.el_id[k] = self._n_elements
                self._n_elements += 1
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
        cr.rx_free = tuple(i for i, (_, _, rq, _) in enumerate(cr.regexes) if not rq)
        # memo key: the same pattern with the same exclusions is matched once per utterance
        # (an int: hashing a tuple that holds compiled patterns hashes their code every time)
        cr.rx_keys = [self._rx_ids.setdefault((rx.pattern, tuple(x.pattern for x in u), tuple(x.pattern for x in us)),
                                              len(self._rx_ids))
                      for rx, u, _, us in cr.regexes]
        cr.rx_need = [_gate_factors(rx.pattern, self._presence) for rx, _, _, _ in cr.regexes]
        cond = set()
        for gi, group in enumerate(m.all):
            for p in group:
                cond.add(self._lit(p, ridx, ALL, gi))
        cr.n_all = len(m.all)
        for p in m.none:
            cond.add(self._lit(p, ridx, NONE))
        for p in m.except_:
            self._lit(p, ridx, EXCEPT)
        for p in m.context:
            cond.add(self._lit(p, ridx, CTX))
        for p in m.context_none:
            cond.add(self._lit(p, ridx, CTXN))
        cond.discard(-1)
        cr.cond_lids = frozenset(cond)

    def _presence(self, f: frozenset) -> float:
        """A rough chance that one of the strings of a regex gate factor is in an utterance (the
        share of the rules' example lines holding it); it orders the gate tests, nothing else."""
        sample, share = self._sample, self._share
        lines = sample.count("\n") + 1
        out = 0.0
        for x in f:
            s = share.get(x)
            if s is None:
                s = share[x] = (sample.count(x) + 0.5) / lines
            out += s
        return out

    @property
    def unfiltered(self) -> list[Compiled]:
        return self._unfiltered

    def call_context(self, an: Analyzed, ctx: set) -> None:
        """Record call-scope context literals of an agent utterance: rule idx (context seen) or
        -idx-1 (an excluding context seen)."""
        ctx.update(self.context_of(an))

    def context_of(self, an: Analyzed) -> frozenset:
        """The call-scope context entries of one utterance (see call_context), memoised."""
        got = an.ctx
        if got is None:
            lit_ctx = self._lit_ctx
            got = an.ctx = frozenset(r if role == CTX else -r - 1 for lid in an.hits for r, role in lit_ctx[lid])
        return got

    # ---------------------------------------------------------------- per utterance
    def analyze(self, utt: Utterance) -> Analyzed:
        """The gate: one str.translate (full/half width, punctuation, case and the pinyin class of
        every Han character in one table) and one pass of the role's automaton, which also says
        which rules each hit can select. Only utterances with a hit get their normalised text
        built; those whose hits cannot give a rule a match (no phrase the rule accepts, no
        `requires` key whose regex matches) are settled there (`live` False). Text that the table
        cannot normalise on its own (Traditional characters, spaces, 百分之/个点 numbers) takes the
        full normalize() first."""
        text = utt.text
        if not text:
            return Analyzed(utt, "", {})
        if text.isascii():
            norm = layer = normalize(text)
        else:
            layer = gate_layer(text, self._gate)
            if layer is None:
                norm = normalize(text)
                layer = pinyin_layer(norm)
            else:
                norm = None
        if not layer:
            return Analyzed(utt, norm, {}, layer)
        role = utt.role or "unknown"
        if self._role_autos is not self._fast_for or self._unfiltered:
            an = Analyzed(utt, norm, {}, layer, 9)
            auto = self._role_autos.get(role)
            if auto is not None:
                self._scan_with(an, auto)
            an.live = bool(an.hits)
            return an
        an = Analyzed(utt, norm, {}, layer, 9, False)
        fast = (self._fast_autos if norm is None or not norm.isascii() else self._fast_ascii).get(role)
        if fast is None:
            return an
        # The hits, recorded as _scan_with does (same literals, same order), and what they select.
        # A literal of Chinese characters only is compared with the raw text (normalisation maps
        # those characters to themselves, one for one), so the normalised text is built only for
        # the others and for the regexes that run.
        hits = an.hits
        keyed = None  # per `requires` key hit, its keyed regexes (_keyed_match)
        trig = False  # a phrase or proximity trigger hit that its rule accepts
        src = text if norm is None else norm
        for end, (n, ents, exact_only) in fast.iter(layer):
            start = end + 1 - n
            seg = src[start:end + 1]
            if exact_only is not None and seg not in exact_only:
                continue  # a homophone of one-character literals: never a hit
            for lid, lit, nh, latin, lit_ex, pure, mode, keys in ents:
                if pure:
                    s_ = seg
                else:
                    if norm is None:
                        norm = an.norm
                    s_ = norm[start:end + 1]
                if s_ == lit:
                    exact = True
                elif self._asr_slip(s_, nh, lit_ex, src if pure else norm, start, end + 1):
                    exact = False
                else:
                    continue
                if latin:
                    if norm is None:
                        norm = an.norm
                    if not _word_bounded(norm, start, end + 1):
                        continue
                h = hits.get(lid)
                if h is None:
                    hits[lid] = [_tnew(Hit, (start, end + 1, lit, exact))]
                else:
                    h.append(_tnew(Hit, (start, end + 1, lit, exact)))
                if trig:
                    continue
                if mode == 2 or (mode and exact):
                    trig = True
                elif keys is not None:
                    if keyed is None:
                        keyed = [keys]
                    else:
                        keyed.append(keys)
        if trig:
            an.live = True
        elif keyed is not None:
            an.live = self._keyed_match(an, keyed)
        return an

    def _keyed_match(self, an: Analyzed, keyed: list) -> bool:
        """Whether one of the regexes whose `requires` key was hit matches (see _gated_spans), in
        the order the keys were hit (`keyed`: per hit, its literal's keyed regexes; a regex met
        again is read from the memo). The spans are memoised for the rule evaluation."""
        memo = an.cues
        if memo is None:
            memo = an.cues = {}
        norm = an._norm
        raw = norm if norm is not None else an.utt.text  # see analyze
        get = memo.get
        for keys in keyed:
            for rxi in keys:
                mk = rxi[0]
                spans = get(mk)
                if spans is None:
                    for strings, han in rxi[4]:
                        if han:
                            hay = raw
                        else:
                            if norm is None:
                                norm = an.norm
                            hay = norm
                        for x in strings:
                            if x in hay:
                                break
                        else:
                            spans = memo[mk] = []
                            break
                    else:
                        if norm is None:
                            norm = an.norm
                        spans = memo[mk] = _regex_spans(norm, rxi[1], rxi[2], rxi[3])
                if spans:
                    return True
        return False

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

    def _asr_slip(self, seg: str, nh: int, lit_ex: str, text: str, start: int, end: int) -> bool:
        """Whether `seg`, found on the pinyin layer where the literal's characters are not, is an ASR
        slip for the literal: long enough (`nh` Han characters) to judge, for two characters the same
        exact pinyin (`lit_ex`), not a real word that sounds alike (保障/包涨), and for two characters
        not straddling a word boundary of `text`. Called only off the exact-match path."""
        if nh < 2:
            return False
        if nh == 2 and seg.translate(self._exact) != lit_ex:  # exact_pinyin(seg) != exact_pinyin(lit)
            return False
        if is_word(seg):
            return False
        return not (nh == 2 and straddles_word(text, start, end))

    def _scan_with(self, an: Analyzed, auto) -> None:
        norm = None
        hits = an.hits
        for end, (n, ents) in auto.iter(an.layer):
            if norm is None:
                norm = an.norm
            start = end + 1 - n
            seg = norm[start:end + 1]
            for lid, lit, nh, latin, lit_ex in ents:
                exact = seg == lit
                if not exact and not self._asr_slip(seg, nh, lit_ex, norm, start, end + 1):
                    continue
                if latin and not _word_bounded(norm, start, end + 1):
                    continue
                h = hits.get(lid)
                if h is None:
                    hits[lid] = [_tnew(Hit, (start, end + 1, lit, exact))]
                else:
                    h.append(_tnew(Hit, (start, end + 1, lit, exact)))

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
        """Utterance-level rules that fire: (rule, match, reason).

        The rules that a trigger literal selected (as candidates() does) are first checked for
        anything to report: a phrase hit the rule accepts, a keyed regex that matches (gate
        factors first), or both sides of a proximity pair possible. Only a rule that has one gets
        the condition automaton's hits and the full evaluation (_eval), with the same per-role
        hit lists as candidates() builds."""
        role = an.utt.role or "unknown"
        out = []
        hits = an.hits
        view: dict[int, list] = {}
        if hits:
            trig_view = self._trig_view.get(role, self._no_trig)
            for lid, hl in hits.items():
                for r, nt, subs, nb in trig_view[lid]:
                    v = view.get(r)
                    if v is None:
                        view[r] = [hl * nt if nt else None, set(subs) if subs is not None else None, nb]
                        continue
                    if nt:
                        if v[0] is None:
                            v[0] = hl * nt
                        else:
                            for _ in range(nt):
                                v[0].extend(hl)
                    if subs is not None:
                        if v[1] is None:
                            v[1] = set(subs)
                        else:
                            v[1].update(subs)
                    if nb:
                        v[2] = True
        if self._unfiltered:
            for cr in self._unfiltered:
                view.setdefault(cr.idx, None)
        if not view:
            return out
        rules = self.rules
        if not an.scanned & 2:
            self._scan(an, 1)
            hits = an.hits
        # the literals seen that are some rule's condition (usually none): each rule's own
        # condition literals are disjoint from the hits exactly when they are from these
        cond_hit = self._cond_lids.intersection(hits)
        for ridx, v in view.items():
            cr = rules[ridx]
            if role not in cr.roles:
                continue
            if v is not None and cr.cond_lids.isdisjoint(cond_hit):
                # none of the rule's none/all/context literals in the utterance: _conditions on
                # empty lists, without building them
                if cr.n_all:
                    continue
                if cr.context and not (cr.call_scope and call_ctx is not None and cr.idx in call_ctx):
                    continue
                if cr.context_none and cr.call_scope and call_ctx is not None and -cr.idx - 1 in call_ctx:
                    continue
                d = None
            else:
                d = self._rule_hits(hits, ridx)
                if not self._conditions(cr, d, call_ctx):
                    continue
            if v is None:
                found = self._found(cr, an, [h for _, h in d.get(TRIG, ())], {sub for sub, _ in d.get(KEY, ())})
            else:
                found = self._found(cr, an, v[0], v[1])
            if not found and not (cr.has_near and v is not None and v[2]):
                continue
            if d is None:
                d = self._rule_hits(hits, ridx)
            if not found and not (NEAR_A in d and NEAR_B in d):
                continue
            res = self._first(cr, an, d, found)
            if res is not None:
                out.append((cr, res[0], res[1]))
        return out

    def _found(self, cr: Compiled, an: Analyzed, trig, keyed) -> list:
        """The rule's phrase and regex matches, in the order _eval lists them: its phrase hits
        (`trig`, in hit order; homophones only where pinyin matching is on), then the matches of
        its regexes in rule order (a keyed one only when its key was hit: `keyed`)."""
        found = []
        if trig is not None:
            pin = cr.pin
            for h in trig:
                if pin or h.exact:
                    found.append(_tnew(Match, (h[0], h[1], "phrase", h[2], h[3], -1)))
        if cr.regexes:
            idx = cr.rx_free
            if keyed:
                idx = sorted(keyed.union(idx)) if idx else sorted(keyed)
            if idx:
                memo = an.cues
                if memo is None:
                    memo = an.cues = {}
                norm = an.norm
                regexes, rx_keys, rx_need = cr.regexes, cr.rx_keys, cr.rx_need
                for i in idx:
                    mk = rx_keys[i]
                    spans = memo.get(mk)
                    if spans is None:
                        rx, unless, _, unless_s = regexes[i]
                        spans = memo[mk] = _gated_spans(norm, rx, unless, unless_s, rx_need[i])
                    if spans:
                        pat = regexes[i][0].pattern
                        for ms, me in spans:
                            found.append(_tnew(Match, (ms, me, "regex", pat, True, -1)))
        return found

    def _rule_hits(self, hits: dict, ridx: int) -> dict[int, list]:
        """role -> [(sub, Hit)] of one rule, in the order candidates() gives them."""
        d: dict[int, list] = {}
        by_rule = self._lit_by_rule
        for lid, hl in hits.items():
            ents = by_rule[lid].get(ridx)
            if ents is None:
                continue
            for role, sub in ents:
                lst = d.get(role)
                if lst is None:
                    lst = d[role] = []
                for h in hl:
                    lst.append((sub, h))
        return d

    def _ok_hit(self, cr: Compiled, h: Hit) -> bool:
        return h.exact or cr.rule.pinyin

    def _eval(self, cr: Compiled, an: Analyzed, d: dict, call_ctx, found: list | None = None) -> tuple[Match, str] | None:
        """The rule's first match that no condition or suppressor rules out, with the reason.
        `found`: its phrase and regex matches when already listed (_found)."""
        if not self._conditions(cr, d, call_ctx):
            return None
        return self._first(cr, an, d, found)

    def _conditions(self, cr: Compiled, d: dict, call_ctx) -> bool:
        """The rule's `none`, `all`, `context` and `context_none` conditions hold (`d`: its hits,
        role -> [(sub, Hit)]; `call_ctx`: the call-scope context so far)."""
        pin = cr.pin  # homophone hits count (else exact hits only)
        lst = d.get(NONE)
        if lst is not None:
            for _, h in lst:
                if pin or h.exact:
                    return False
        if cr.n_all:
            got = {sub for sub, h in d.get(ALL, ()) if pin or h.exact}
            if len(got) < cr.n_all:
                return False
        if cr.context:
            have = any(pin or h.exact for _, h in d.get(CTX, ()))
            if not have and cr.call_scope and call_ctx is not None:
                have = cr.idx in call_ctx
            if not have:
                return False
        if cr.context_none:
            if any(pin or h.exact for _, h in d.get(CTXN, ())):
                return False
            if cr.call_scope and call_ctx is not None and -cr.idx - 1 in call_ctx:
                return False
        return True

    def _first(self, cr: Compiled, an: Analyzed, d: dict, found: list | None) -> tuple[Match, str] | None:
        """The first of the rule's matches (phrases, regexes, proximity pairs) that no exception
        or suppressor (negation, question, mention, hearsay) rules out."""
        norm = an.norm
        if found is None:
            found = self._found(cr, an, [h for _, h in d.get(TRIG, ())], {sub for sub, _ in d.get(KEY, ())})
        else:
            found = list(found)
        if cr.has_near and NEAR_A in d and NEAR_B in d:
            found.extend(self._near(cr, an, d))
        if not found:
            return None
        excepts = d.get(EXCEPT)
        if len(found) > 1:
            found.sort(key=_span_order)
        memo = an.cues
        if memo is None:
            memo = an.cues = {}
        for f in found:
            s, e = f.start, f.end
            if excepts is not None and any(x.start < e and s < x.end for _, x in excepts):
                continue
            # The suppressor checks depend only on the text and the span (memoised per utterance).
            sp = memo.get((s, e))
            if sp is None:
                seg = norm[s:e]
                sp = memo[(s, e)] = [not seg.isascii() and _HAN_RE.search(seg) is not None,
                                     clause_bounds(norm, s, e), 0, 0, 0, 0, 0]
            zh, cb = sp[0], sp[1]
            if cr.neg:
                c = sp[2]
                if c == 0:
                    c = sp[2] = cues.negation(norm, s, e, zh, cb)
                if not c and f.inner > s:
                    key = ("inner", f.inner, e)
                    c = memo.get(key, 0)
                    if c == 0:
                        c = memo[key] = cues.negation(norm, f.inner, e, zh)
                if c:
                    continue
            if cr.question:
                c = sp[3]
                if c == 0:
                    c = sp[3] = cues.question(norm, s, e, zh, cb)
                if c:
                    continue
            k = 4 if cr.signal else 5
            c = sp[k]
            if c == 0:
                c = sp[k] = cues.meta(norm, s, e, zh, advice=k == 4)
            if c:
                continue
            if cr.hearsay:
                c = sp[6]
                if c == 0:
                    c = sp[6] = cues.hearsay(norm, s, e, zh, cb)
                if c:
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
        """Where the element `key` of a call-level rule is said in the utterance (not negated or
        asked, with check_neg), or None. Memoised on the analysis (live calls re-read it)."""
        memo = an.cues
        if memo is None:
            memo = an.cues = {}
        said = memo.get("els")  # the elements with a literal in the utterance
        if said is None:
            el_of = self._elem_of
            said = memo["els"] = {e for lid in self.element_hits(an) for e in el_of[lid]}
        eid = cr.el_id[key]
        if eid not in said and not cr.elements[key][2]:
            return None  # no literal of the element, and no regex
        mk = ("el", eid, check_neg)
        got = memo.get(mk, 0)
        if got == 0:
            got = memo[mk] = self._element_in(cr, key, an, check_neg)
        return got

    def element_hits(self, an: Analyzed) -> dict:
        """Hits of the call-level rules' element literals (their own automaton: the same hits
        those literals get in the others), memoised on the analysis."""
        memo = an.cues
        if memo is None:
            memo = an.cues = {}
        got = memo.get("el")
        if got is None:
            got = {}
            if self._elem_auto is not None and an.layer:
                probe = Analyzed(an.utt, an._norm, got, an.layer)
                self._scan_with(probe, self._elem_auto)
                if an._norm is None:
                    an._norm = probe._norm
            memo["el"] = got
        return got

    def _element_in(self, cr: Compiled, key: str, an: Analyzed, check_neg: bool) -> tuple[int, int] | None:
        spans = self.element_said(cr, key, an) if check_neg else self.element_spans(cr, key, an)
        return next(iter(spans), None)

    def element_said(self, cr: Compiled, key: str, an: Analyzed):
        """The spans of the element `key` in the utterance that are said: not negated or asked."""
        norm = an.norm
        for s, e in self.element_spans(cr, key, an):
            zh = has_han(norm[s:e])
            if not (cues.negation(norm, s, e, zh) or cues.question(norm, s, e, zh)):
                yield s, e

    def element_spans(self, cr: Compiled, key: str, an: Analyzed) -> list[tuple[int, int]]:
        """Every span of the element `key` in the utterance, negated or not: its literals' hits
        in the element's order, then its regexes' matches."""
        el, lids, rxs = cr.elements[key]
        norm = an.norm
        spans = []
        if lids and norm:
            hits = self.element_hits(an)
            if hits:
                # the element's literals that were seen, in the element's order
                pos = cr.el_pos[key]
                seen = [lid for lid in hits if lid in pos]
                if len(seen) > 1:
                    seen.sort(key=pos.__getitem__)
                pin = cr.pin
                for lid in seen:
                    for h in hits[lid]:
                        if h.exact or pin:
                            spans.append((h.start, h.end))
        for rx in rxs:
            for mm in rx.finditer(norm):
                spans.append((mm.start(), mm.end()))
        return spans


# ------------------------------------------------------------------ regex literal factors
# What every match of a regex must contain: a list of factors, each a set of strings one of which
# occurs in the matched text (`(是|就是)(我们|银行)的(理财|产品)` needs one of 是/就是, one of 我们/银行,
# 的, one of 理财/产品). Before a regex runs, up to three of its smaller factors are looked up in
# the text (substring tests); a missing one means it cannot match. Derived from the pattern, so it
# only skips regexes that cannot match; anything the analysis does not understand (flags,
# classes, back-references) yields no factor rather than a wrong one.

_EXACT_MAX = 64  # the most alternative strings tracked for one run of a pattern


def regex_factors(pattern: str) -> list[frozenset]:
    try:
        from re import _constants as C
        from re import _parser as P
    except ImportError:  # pragma: no cover - Python < 3.11
        import sre_constants as C
        import sre_parse as P
    try:
        tree = P.parse(pattern)
    except Exception:  # pragma: no cover - the pattern compiled already
        return []
    if tree.state.flags & (C.SRE_FLAG_IGNORECASE | C.SRE_FLAG_VERBOSE):
        return []
    _, factors = _rx_seq(list(tree), C)
    out: list[frozenset] = []
    for f in factors:
        if f and "" not in f:
            # a string that holds another string of the factor adds nothing (收益 covers %收益)
            f = frozenset(x for x in f if not any(y != x and y in x for y in f))
            if f not in out:
                out.append(f)
    return out


def _rx_node(op, av, C) -> tuple[set | None, list[frozenset]]:
    """(the exact set of strings the node matches, or None; factors of its matches)."""
    if op is C.LITERAL:
        return {chr(av)}, []
    if op is C.IN:
        chars: set = set()
        for iop, iav in av:
            if iop is C.LITERAL:
                chars.add(chr(iav))
            elif iop is C.RANGE and iav[1] - iav[0] < 32:
                chars.update(chr(c) for c in range(iav[0], iav[1] + 1))
            else:  # NEGATE, CATEGORY, wide ranges
                return None, []
        return (chars if len(chars) <= _EXACT_MAX else None), []
    if op is C.SUBPATTERN:
        _, add, rem, sub = av
        if (add or 0) & C.SRE_FLAG_IGNORECASE or (rem or 0):
            return None, []
        return _rx_seq(list(sub), C)
    if op is C.BRANCH:
        alts = [_rx_seq(list(b), C) for b in av[1]]
        if all(ex is not None for ex, _ in alts):
            ex = set().union(*(ex for ex, _ in alts))
            if len(ex) <= _EXACT_MAX:
                return ex, ([frozenset(ex)] if "" not in ex else [])
        best = []
        for ex, fs in alts:
            cands = list(fs) + ([frozenset(ex)] if ex is not None and "" not in ex else [])
            if not cands:
                return None, []
            best.append(max(cands, key=_factor_strength))
        return None, [frozenset().union(*best)]
    if op in (C.MAX_REPEAT, C.MIN_REPEAT, getattr(C, "POSSESSIVE_REPEAT", None)):
        lo, hi, sub = av
        ex, fs = _rx_seq(list(sub), C)
        if lo == 0:
            return ({""} | ex if hi == 1 and ex is not None else None), []
        if lo == hi == 1:
            return ex, fs
        return None, fs + ([frozenset(ex)] if ex is not None and "" not in ex else [])
    if op is C.AT or op in (C.ASSERT, C.ASSERT_NOT):
        return {""}, []  # zero width: the matched text is the concatenation of the rest
    if op is getattr(C, "ATOMIC_GROUP", None):
        return _rx_seq(list(av), C)
    return None, []  # ANY, NOT_LITERAL, GROUPREF, ...


def _rx_seq(items, C) -> tuple[set | None, list[frozenset]]:
    """A sequence: runs of nodes with exact sets multiply out (每年 + (定期)? + 存 -> 每年存, 每年定期存);
    each run and each node's factors are factors of the sequence."""
    factors: list[frozenset] = []
    run: set | None = {""}
    whole = True  # every node exact so far
    for op, av in items:
        ex, fs = _rx_node(op, av, C)
        factors.extend(fs)
        if ex is not None and run is not None and len(run) * len(ex) <= _EXACT_MAX:
            run = {a + b for a in run for b in ex}
            continue
        if run is not None and "" not in run:
            factors.append(frozenset(run))
        if ex is None:
            whole = False
            run = {""}
        else:  # too many combinations: start a new run here
            whole = False
            run = set(ex)
    if run is not None and "" not in run:
        factors.append(frozenset(run))
    return (run if whole else None), factors


def _factor_strength(f: frozenset) -> tuple[int, int]:
    return (min((len(x) for x in f), default=0), -len(f))


def _gate_factors(pattern: str, presence=None) -> tuple[tuple[tuple[str, ...], bool], ...]:
    """The factors checked before a regex runs, each (its strings, all Chinese): at most three,
    of at most 16 strings (those with the fewest strings), the least likely present first. A substring test costs the same for one
    character as for four, so any Chinese character counts; Latin strings need three letters
    ('in', 'a' are everywhere), a lone sign ('%') does."""
    def usable(x: str) -> bool:
        if not x.isascii() or len(x) >= 3:
            return not x.isspace()
        return len(x) == 1 and not x.isalnum() and x != " "

    fs = [f for f in regex_factors(pattern) if len(f) <= 16 and all(usable(x) for x in f)]
    fs.sort(key=lambda f: (len(f), -min(len(x) for x in f)))
    # The three chosen, tested the likeliest to be missing first (a one-character string such as
    # 是 or 我 is in most sentences; 的产品 is not: `presence` estimates it), so that the first
    # test settles most regexes. Which factors are tested does not change, only their order.
    fs = sorted(fs[:3], key=presence or _presence)
    return tuple((tuple(sorted(f, key=lambda x: (len(x), x))), all(_all_han(x) for x in f)) for f in fs)


def _presence(f: frozenset) -> float:
    """A rough chance that one of the factor's strings occurs in an utterance, by length alone."""
    return sum(0.3 if len(x) == 1 else 0.03 if len(x) == 2 else 0.005 for x in f)


class CallContext:
    """The call-scope context of the agent turns up to `upto` (inclusive), read on demand: a
    rule's `r in ctx` / `-r-1 in ctx` reads the turns not read yet (violations_from)."""

    __slots__ = ("eng", "ans", "upto", "_next", "_seen")

    def __init__(self, eng: "Engine", ans: list):
        self.eng = eng
        self.ans = ans
        self.upto = -1
        self._next = 0
        self._seen: set = set()

    def __contains__(self, x) -> bool:
        if self._next <= self.upto:
            eng, ans = self.eng, self.ans
            while self._next <= self.upto:
                an = ans[self._next]
                self._next += 1
                if (an.utt.role or "unknown") in AGENT_ROLES:
                    self._seen.update(eng.context_of(an))
        return x in self._seen


_NO_CHAR = "\U0010fffe"  # a noncharacter: ends the blank keys of _build (a text holding it hits nothing)


def _char_rank(texts) -> dict[str, int]:
    """Characters of the pinyin layers of `texts` (the rules' examples and literals), most
    frequent first: the order _build adds automaton keys in."""
    from collections import Counter

    freq: Counter = Counter()
    for t in texts:
        freq.update(pinyin_layer(t))
    freq.pop(_NO_CHAR, None)
    return {c: i for i, (c, _) in enumerate(freq.most_common())}


def _group_entries(ents: tuple) -> tuple:
    """(rule idx, TRIG|KEY|NEAR_B, sub) entries, sorted by rule, as one tuple per rule: (rule
    idx, number of TRIG entries, frozenset of the KEY subs or None, any NEAR_B entry)."""
    out: list = []
    for r, kind, sub in ents:
        if not out or out[-1][0] != r:
            out.append([r, 0, None, False])
        g = out[-1]
        if kind == TRIG:
            g[1] += 1
        elif kind == KEY:
            g[2] = (g[2] or frozenset()) | {sub}
        else:
            g[3] = True
    return tuple(tuple(g) for g in out)


def _all_han(text: str) -> bool:
    """Only characters of the CJK blocks normalize() leaves as they are (and maps nothing onto):
    such a string occurs in the normalised text exactly where it occurs in the raw text."""
    return bool(text) and all("\u3400" <= c <= "\u9fff" for c in text)


def _span_order(m: "Match") -> tuple[int, int]:
    return (m.start, -m.end)


def _gated_spans(norm: str, rx, unless, unless_s, need) -> list[tuple[int, int]]:
    """_regex_spans, or [] at once when a gate factor of the regex is missing from the text
    (`need`: factors, each a tuple of strings one of which every match contains)."""
    for strings, _ in need:
        for x in strings:
            if x in norm:
                break
        else:
            return []
    return _regex_spans(norm, rx, unless, unless_s)


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


_WORDCH = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")  # [a-z0-9]


def _word_bounded(norm: str, s: int, e: int) -> bool:
    """Latin literals must match whole words ('no risk' not inside 'piano risk')."""
    if s > 0 and norm[s] in _WORDCH and norm[s - 1] in _WORDCH:
        return False
    if e < len(norm) and norm[e - 1] in _WORDCH and norm[e] in _WORDCH:
        return False
    return True


def _clause(norm, s, e):
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
        kind = "signal" if cr.signal else "utterance"
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
    regulation = cr.regulation
    if regulation is None:
        reg = rule.regulation
        regulation = cr.regulation = f"{reg.document} {reg.article}".strip()
    return Violation(
        rule_id=rule.id, title=rule.title, category=rule.category, severity=rule.severity,
        start=round(start, 3), end=round(end, 3), speaker=utt.speaker, role=utt.role or "unknown",
        matched_text=matched, context=context, reason=reason, kind=kind,
        utterance_index=utt.index, pack=cr.pack_id or cr.pack.id,
        regulation=regulation, suggestion=rule.suggestion)


def _span_time(utt: Utterance, norm: str, s: int, e: int) -> tuple[float, float]:
    """Time of the clause holding the match: word timings when present, else by character share."""
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
