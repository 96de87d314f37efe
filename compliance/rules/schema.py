"""Pydantic (v2) schema of a rule pack file. Unknown fields are rejected (extra="forbid").

A pack file looks like::

    pack: {id: zh-sales, version: 1.0.0, language: zh, title: ..., kind: agent}
    lexicon: {DEPOSIT: [存款, 定期, 储蓄]}          # named synonym sets, referenced as "@DEPOSIT"
    rules:
      - id: ZH-GP-001
        title: ...
        category: guarantee_of_principal
        severity: high
        language: zh
        speaker: agent
        regulation: {document: ..., article: ...}
        description: ...
        suggestion: ...
        match: {phrases: [...], regex: [...], near: [...], all: [...], none: [...], except: [...]}
        examples: {violation: [...], compliant: [...]}
"""

from __future__ import annotations

import re
from typing import Literal, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Severity = Literal["low", "medium", "high", "critical"]
Speaker = Literal["agent", "customer", "any"]
Language = Literal["zh", "en"]
RoleName = Literal["agent", "customer", "unknown", "supervisor"]
ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


class Regulation(Strict):
    document: str = Field(min_length=2)
    article: str = Field(min_length=1)
    url: str | None = None


class Near(Strict):
    """A near B: a phrase of `a` and a phrase of `b` within `within` units (ordered: a before b)."""

    a: list[str] = Field(min_length=1)
    b: list[str] = Field(min_length=1)
    within: float = Field(gt=0)
    unit: Literal["chars", "tokens", "seconds"] = "chars"
    ordered: bool = False


class RegexPattern(Strict):
    pattern: str
    #: literals at least one of which must be present for the regex to be tried (the prefilter).
    requires: list[str] = Field(default_factory=list)
    #: regexes that cancel a match when they match the matched text or its clause.
    unless: list[str] = Field(default_factory=list)
    #: regexes that cancel a match when they match anywhere in its sentence.
    unless_sentence: list[str] = Field(default_factory=list)

    @field_validator("pattern", "unless", "unless_sentence")
    @classmethod
    def _compiles(cls, v):
        for p in [v] if isinstance(v, str) else v:
            try:
                re.compile(p)
            except re.error as e:  # noqa: PERF203
                raise ValueError(f"invalid regular expression {p!r}: {e}") from None
        return v


class Match(Strict):
    """How an utterance-level rule matches. The rule fires when any trigger (phrase, regex, near)
    matches and survives the suppressors, and the utterance-level conditions hold."""

    phrases: list[str] = Field(default_factory=list)
    regex: list[RegexPattern] = Field(default_factory=list)
    near: list[Near] = Field(default_factory=list)
    #: every group must be present somewhere in the utterance (each group is any-of).
    all: list[list[str]] = Field(default_factory=list)
    #: none of these may appear anywhere in the utterance.
    none: list[str] = Field(default_factory=list)
    #: a trigger match that overlaps one of these phrases is cancelled (e.g. 随时 inside 随时联系).
    except_: list[str] = Field(default_factory=list, alias="except")
    #: required context: one of these phrases in the utterance (scope utterance) or in any earlier
    #: or current agent utterance of the call (scope call).
    context: list[str] = Field(default_factory=list)
    context_scope: Literal["utterance", "call"] = "utterance"
    #: the rule does not fire when one of these is in the utterance / call context.
    context_none: list[str] = Field(default_factory=list)

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @field_validator("regex", mode="before")
    @classmethod
    def _regex_items(cls, v):
        out = []
        for item in v or []:
            out.append({"pattern": item} if isinstance(item, str) else item)
        return out

    @model_validator(mode="after")
    def _has_trigger(self):
        if not (self.phrases or self.regex or self.near):
            raise ValueError("match needs at least one trigger: phrases, regex or near")
        return self


class Element(Strict):
    """One required element of a call-level check (e.g. 理财非存款)."""

    name: str
    phrases: list[str] = Field(default_factory=list)
    regex: list[str] = Field(default_factory=list)
    #: every phrase is a risk warning in itself ("may lose value", 产品有风险), not a mere descriptor
    #: (风险等级, 现金价值): the similarity layer raises no finding on an agent's utterance that says
    #: one, unnegated, since a warning reads much like the claim it warns about
    warning: bool = False

    @model_validator(mode="after")
    def _nonempty(self):
        if not (self.phrases or self.regex):
            raise ValueError(f"element {self.name!r} needs phrases or regex")
        for p in self.regex:
            try:
                re.compile(p)
            except re.error as e:
                raise ValueError(f"invalid regular expression {p!r}: {e}") from None
        return self


class Variant(Strict):
    """A product-specific checklist for an absence rule (e.g. insurance vs wealth management)."""

    name: str
    #: the variant applies when one of these is said by the agent (empty = default variant).
    when: list[str] = Field(default_factory=list)
    required: list[Element] = Field(min_length=1)


class Absence(Strict):
    """Call-level: mandatory elements the agent must say, checked when the call contains a sale
    trigger. Anchored at the purchase confirmation if any, else the last recommendation."""

    purchase: list[str] = Field(default_factory=list)
    recommend: list[str] = Field(default_factory=list)
    #: the call must be about one of these products for the rule to apply (empty = any call).
    scope: list[str] = Field(default_factory=list)
    #: an extra trigger; when set, the rule applies only if one of these was said by the agent.
    when: list[str] = Field(default_factory=list)
    when_regex: list[str] = Field(default_factory=list)
    variants: list[Variant] = Field(min_length=1)

    @model_validator(mode="after")
    def _trigger(self):
        if not (self.purchase or self.recommend):
            raise ValueError("absence needs purchase and/or recommend phrases")
        return self


class Ordering(Strict):
    """Call-level: `first` must be said by the agent before `then` (e.g. risk disclosure before the
    purchase confirmation). Fires only when both occur and the first `then` precedes every `first`."""

    first: Element
    then: Element


class Window(Strict):
    """Call-level: after an agent utterance matching `anchor`, `required` must be said by the agent
    within `within` utterances (same one included) or seconds."""

    anchor: Element
    required: Element
    within: float = Field(gt=0)
    unit: Literal["utterances", "seconds"] = "utterances"


class Answer(Strict):
    """Call-level: the agent's reply makes a claim by answering the customer's question ("这个保本吗？"
    — "当然，您放心"; "Can I lose money?" — "No, no way"): a customer utterance asks `question`,
    and the next agent utterance within `within` utterances (or seconds) opens with `reply`, with
    no `hedge` (a caveat, unnegated) anywhere in it. Neither the question (asking is not claiming)
    nor the bare reply (a 'yes' claims nothing alone) is a violation on its own."""
    question: Element
    reply: Element
    hedge: Element | None = None
    within: float = Field(default=1, gt=0)
    unit: Literal["utterances", "seconds"] = "utterances"


class Silence(Strict):
    """Call-level: nobody speaks for at least `min_s` seconds (dead air), measured from the end of
    all speech so far to the next utterance. `after` / `before`: the roles of the utterances on
    either side of the gap; `question`: the utterance before the gap asks a question; `anchor`:
    it says this element (a confirmation question: "您清楚了吗？" met by silence and the agent
    going on means the recording holds no confirmation)."""
    min_s: float = Field(gt=0)
    after: Speaker = "any"
    before: Speaker = "any"
    question: bool = False
    anchor: Element | None = None


class Overtalk(Strict):
    """Call-level: a `by` speaker starts talking while another speaker is talking, and both talk
    together for at least `min_s` seconds (by word times where the transcript has them), so a
    backchannel ("嗯", "right") does not count. `during`: only where the overlap covers the
    interrupter saying this element (a risk warning read over the customer, who cannot have
    heard it); `over`: only where the interrupted utterance says it. The rule fires when the
    call holds at least `min_count` such moments: one finding each, or with min_count > 1 one
    finding for the call at the first of them."""
    min_s: float = Field(default=1.0, gt=0)
    by: Speaker = "agent"
    during: Element | None = None
    over: Element | None = None
    min_count: int = Field(default=1, ge=1)


class Rate(Strict):
    """Call-level: the agent says `element` (a mandatory warning) faster than `max_rate` a second,
    counted over the sentence that says it: Han characters for a Chinese pack, words for an English
    one, over the sentence's time (word times where the transcript has them, else its share of the
    utterance). A sentence shorter than `min_s` seconds is not judged (too short to time)."""
    element: Element
    max_rate: float = Field(gt=0)
    min_s: float = Field(default=1.5, gt=0)


class Example(Strict):
    text: str | None = None
    role: RoleName | None = None
    call: list[str] | None = None  # "agent: ..." / "customer: ..." lines for call-level rules
    note: str | None = None

    @model_validator(mode="after")
    def _one(self):
        if (self.text is None) == (self.call is None):
            raise ValueError("an example has either text or call")
        return self


class Examples(Strict):
    violation: list[Union[str, Example]] = Field(min_length=3)
    compliant: list[Union[str, Example]] = Field(min_length=3)


class Rule(Strict):
    id: str
    title: str = Field(min_length=2)
    category: str
    severity: Severity
    language: Language
    speaker: Speaker
    regulation: Regulation
    description: str = Field(min_length=5)
    suggestion: str = Field(min_length=2)
    kind: Literal["utterance", "absence", "ordering", "window", "answer", "silence", "overtalk", "rate"] = "utterance"
    match: Match | None = None
    absence: Absence | None = None
    ordering: Ordering | None = None
    window: Window | None = None
    answer: Answer | None = None
    silence: Silence | None = None
    overtalk: Overtalk | None = None
    rate: Rate | None = None
    negation: Literal["suppress", "ignore"] = "suppress"
    question: Literal["suppress", "ignore"] = "suppress"
    hearsay: Literal["suppress", "ignore"] = "suppress"
    #: homophone / pinyin matching of Chinese phrases (ASR confusions such as 保本/爆本)
    pinyin: bool = True
    enabled: bool = True
    examples: Examples

    @field_validator("id")
    @classmethod
    def _id(cls, v):
        if not ID_RE.match(v):
            raise ValueError(f"rule id {v!r} must be letters, digits, '.', '_' or '-'")
        return v

    @model_validator(mode="after")
    def _kind_body(self):
        bodies = {"utterance": self.match, "absence": self.absence, "ordering": self.ordering,
                  "window": self.window, "answer": self.answer, "silence": self.silence,
                  "overtalk": self.overtalk, "rate": self.rate}
        if bodies[self.kind] is None:
            field = "match" if self.kind == "utterance" else self.kind
            raise ValueError(f"a rule of kind {self.kind!r} needs a {field!r} section")
        for k, body in bodies.items():
            if k != self.kind and body is not None:
                raise ValueError(f"section {('match' if k == 'utterance' else k)!r} does not belong "
                                 f"in a rule of kind {self.kind!r}")
        return self


class PackInfo(Strict):
    id: str
    version: str = Field(pattern=r"^\d+\.\d+(\.\d+)?$")
    language: Language
    title: str
    #: 'agent' packs report misconduct; 'signal' packs report customer-side cues (kind='signal').
    kind: Literal["agent", "signal"] = "agent"
    description: str | None = None


class PackFile(Strict):
    pack: PackInfo
    lexicon: dict[str, list[str]] = Field(default_factory=dict)
    rules: list[Rule] = Field(min_length=1)
