"""The rule engine, incrementally: the same packs and the same checks as `compliance.detect.detect`,
re-evaluated each time an utterance becomes final, reporting what changed.

Final ASR segments are merged into utterances the way the post-call pipeline does it
(`split_at_pauses`: a pause under 1 s keeps one speaker's words in one utterance), so the live
result is the post-call result on the live transcript. Each utterance's normalised form and
automaton hits are computed once and reused; utterance-level violations of earlier utterances are
kept; call-level rules (absence, ordering, window) re-run over everything said so far.

`LiveDetector.update()` returns (new, gone): alerts to raise now, and earlier provisional alerts
that no longer hold (a mandatory disclosure read after the anchor, an utterance that grew and is
now negated)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..pipeline import UTTERANCE_GAP_S
from ..transcribe import join_words
from ..types import Utterance, Violation, Word

CALL_LEVEL_KINDS = ("absence", "ordering")


def violation_key(v: Violation, whole_call: frozenset = frozenset()) -> tuple:
    """Identity of an alert across re-evaluations: absence and ordering rules (`whole_call`) give one
    alert per rule (their anchor moves as the call goes on); the others are tied to their place."""
    if v.rule_id in whole_call:
        return (v.rule_id, v.kind)
    return (v.rule_id, v.kind, round(v.start, 1))


@dataclass
class _Turn:
    speaker: str
    channel: int | None
    role: str
    words: list[Word] = field(default_factory=list)
    segments: list[str] = field(default_factory=list)  # ids of the final segments in it
    version: int = 0

    def utterance(self, language: str) -> Utterance:
        w = self.words
        return Utterance(speaker=self.speaker, start=w[0].start, end=w[-1].end,
                         text=join_words([x.text for x in w]), role=self.role, words=list(w),
                         channel=self.channel, language=language)


class LiveDetector:
    def __init__(self, engine, language: str = "zh", gap_s: float = UTTERANCE_GAP_S) -> None:
        self.engine = engine
        self.language = language or "zh"
        self.gap_s = gap_s
        self.turns: list[_Turn] = []
        self._open: dict[str, _Turn] = {}  # speaker -> its latest turn
        self._cache: dict[int, tuple[int, object]] = {}  # id(turn) -> (version, Analyzed)
        self.current: dict[tuple, Violation] = {}
        self.whole_call = frozenset(cr.rule.id for cr in getattr(engine, "call_rules", [])
                                    if cr.rule.kind in CALL_LEVEL_KINDS)

    def add(self, speaker: str, channel: int | None, role: str, words: list[Word], segment_id: str) -> Utterance | None:
        """A final segment's words; returns the utterance (turn) they now belong to."""
        words = [w for w in words if w.text]
        if not words:
            return None
        for w in words:
            w.speaker, w.role = speaker, role
        turn = self._open.get(speaker)
        if turn is None or words[0].start - turn.words[-1].end >= self.gap_s:
            turn = _Turn(speaker=speaker, channel=channel, role=role)
            self.turns.append(turn)
            self._open[speaker] = turn
        turn.words.extend(words)
        turn.words.sort(key=lambda w: w.start)
        turn.segments.append(segment_id)
        turn.version += 1
        return turn.utterance(self.language)

    def set_role(self, speaker: str, role: str) -> None:
        """Online speaker assignment changed its mind about who a speaker is."""
        for t in self.turns:
            if t.speaker == speaker and t.role != role:
                t.role = role
                t.version += 1
                for w in t.words:
                    w.role = role

    def utterances(self) -> list[Utterance]:
        utts = sorted((t.utterance(self.language) for t in self.turns), key=lambda u: (u.start, u.end))
        for i, u in enumerate(utts):
            u.index = i
        return utts

    def evaluate(self, call_level: bool = True) -> list[Violation]:
        """Everything the rules say about the call so far (what detect() would say)."""
        from ..detect import violations_from

        eng = self.engine
        order = sorted(self.turns, key=lambda t: (t.words[0].start, t.words[-1].end))
        analyzed = []
        for i, turn in enumerate(order):
            cached = self._cache.get(id(turn))
            if cached is not None and cached[0] == turn.version:
                an = cached[1]
                an.utt.index = i
            else:
                u = turn.utterance(self.language)
                u.index = i
                an = eng.analyze(u)
                self._cache[id(turn)] = (turn.version, an)
            analyzed.append(an)
        return violations_from(eng, analyzed, call_level=call_level)

    def update(self) -> tuple[list[Violation], list[tuple[tuple, Violation]]]:
        """Re-evaluate; (violations not alerted yet, (key, violation) of alerts that no longer hold)."""
        now = {}
        for v in self.evaluate():
            now.setdefault(violation_key(v, self.whole_call), v)
        new = [v for k, v in now.items() if k not in self.current]
        gone = [(k, v) for k, v in self.current.items() if k not in now]
        self.current = now
        return new, gone
