"""The rule engine, incrementally: the same packs and the same checks as `compliance.detect.detect`,
re-evaluated each time an utterance becomes final, reporting what changed.

Final ASR segments are merged into utterances the way the post-call pipeline does it
(`split_at_pauses`: a pause under 1 s keeps one speaker's words in one utterance), so the live
result is the post-call result on the live transcript. Each utterance's normalised form and
automaton hits are computed once and reused; utterance-level violations of earlier utterances are
kept; call-level rules (absence, ordering, window) re-run over everything said so far.

`LiveDetector.update()` returns (new, gone): alerts to raise now, and earlier provisional alerts
that no longer hold (a mandatory disclosure read after the anchor, an utterance that grew and is
now negated).

`LiveDetector.probe()` checks the words of an utterance still being spoken (decoded at a clause
pause) as if they were final: an offending clause is alerted at its own pause instead of when the
speaker stops. Such an early alert stands until its segment's final words arrive (`settle`); then
the next `update()` keeps it if the final words raise the same rule at the same place (within
EARLY_MATCH_S), and withdraws it otherwise (the clause was questioned or denied after the pause,
or the final decode heard something else)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..pipeline import UTTERANCE_GAP_S
from ..transcribe import join_words
from ..types import Utterance, Violation, Word

CALL_LEVEL_KINDS = ("absence", "ordering")
#: an early alert is confirmed by a final finding of the same rule this close to it (seconds)
EARLY_MATCH_S = 1.0


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
        #: early alerts (key -> the segment they were raised on) whose segment is not final yet
        self.early: dict[tuple, tuple] = {}
        self._settled: set[tuple] = set()
        #: key of a final finding -> key of the early alert it confirmed (which stays its identity)
        self._alias: dict[tuple, tuple] = {}
        self.whole_call = frozenset(cr.rule.id for cr in getattr(engine, "call_rules", [])
                                    if cr.rule.kind in CALL_LEVEL_KINDS)

    def add(self, speaker: str, channel: int | None, role: str, words: list[Word], segment_id: str) -> Utterance | None:
        """A final segment's words; returns the utterance (turn) they now belong to."""
        words = [w for w in words if w.text]
        if not words:
            return None
        for w in words:
            w.speaker, w.role = speaker, role
        turn = self._continued(speaker, words[0].start)
        if turn is None:
            turn = _Turn(speaker=speaker, channel=channel, role=role)
            self.turns.append(turn)
            self._open[speaker] = turn
        turn.words.extend(words)
        turn.words.sort(key=lambda w: w.start)
        turn.segments.append(segment_id)
        turn.version += 1
        return turn.utterance(self.language)

    def _continued(self, speaker: str, start: float) -> _Turn | None:
        """The speaker's latest turn if words starting at `start` belong to it (a pause under gap_s)."""
        turn = self._open.get(speaker)
        if turn is None or start - turn.words[-1].end >= self.gap_s:
            return None
        return turn

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
        return self._evaluate(self.turns, call_level)

    def _evaluate(self, turns: list[_Turn], call_level: bool, scratch: _Turn | None = None) -> list[Violation]:
        """The findings on `turns`; `scratch` (a turn being tried out) is analysed afresh and not cached."""
        from ..detect import violations_from

        eng = self.engine
        order = sorted(turns, key=lambda t: (t.words[0].start, t.words[-1].end))
        analyzed = []
        for i, turn in enumerate(order):
            cached = self._cache.get(id(turn)) if turn is not scratch else None
            if cached is not None and cached[0] == turn.version:
                an = cached[1]
                an.utt.index = i
            else:
                u = turn.utterance(self.language)
                u.index = i
                an = eng.analyze(u)
                if turn is not scratch:
                    self._cache[id(turn)] = (turn.version, an)
            analyzed.append(an)
        return violations_from(eng, analyzed, call_level=call_level)

    def probe(self, speaker: str, channel: int | None, role: str, words: list[Word],
              segment: tuple) -> list[Violation]:
        """The rule findings `words` (what was said so far of an utterance still being spoken, on
        `segment`) would raise if they were final, not alerted yet; they are recorded as early
        alerts of `segment` (see the module's docstring). Similarity-layer findings and call-level
        rules wait for the final words: a half-said utterance is too little for them."""
        words = [w for w in words if w.text]
        if not words or segment in self._settled:
            return []
        scratch = _Turn(speaker=speaker, channel=channel, role=role)
        turns = list(self.turns)
        turn = self._continued(speaker, words[0].start)
        if turn is not None:
            turns.remove(turn)
            scratch.words = list(turn.words)
        scratch.words += [Word(text=w.text, start=w.start, end=w.end, probability=w.probability, speaker=speaker,
                               role=role) for w in words]
        scratch.words.sort(key=lambda w: w.start)
        turns.append(scratch)
        t0 = words[0].start
        out = []
        for v in self._evaluate(turns, call_level=False, scratch=scratch):
            if v.end < t0 or v.speaker != speaker or v.rule_id in self.whole_call or v.rule_id.startswith("SIM."):
                continue
            key = violation_key(v, self.whole_call)
            if key in self.current or self._alias.get(key) in self.current or \
                    self._confirms(v, self.current) is not None:
                continue
            self.current[key] = v
            self.early[key] = segment
            out.append(v)
        return out

    def settle(self, segment: tuple) -> None:
        """`segment`'s final words are in (or it has none): the next update() judges its early alerts."""
        self._settled.add(segment)

    @staticmethod
    def _confirms(v: Violation, pool: dict) -> tuple | None:
        """The key of the finding in `pool` that `v` repeats: same rule and kind, within EARLY_MATCH_S."""
        for k, a in pool.items():
            if a.rule_id == v.rule_id and a.kind == v.kind and \
                    max(a.start, v.start) - min(a.end, v.end) <= EARLY_MATCH_S:
                return k
        return None

    def update(self) -> tuple[list[Violation], list[tuple[tuple, Violation]]]:
        """Re-evaluate; (violations not alerted yet, (key, violation) of alerts that no longer hold).
        Early alerts of segments not final yet are kept; a settled one is kept when a final finding
        confirms it (that finding then goes by the early alert's key) and goes otherwise."""
        now = {}
        for v in self.evaluate():
            k = violation_key(v, self.whole_call)
            now.setdefault(self._alias.get(k, k), v)
        for k, segment in list(self.early.items()):
            if k in now:
                continue
            if segment not in self._settled:
                now[k] = self.current[k]
                continue
            match = self._confirms(self.current[k], {x: v for x, v in now.items() if x not in self.current})
            if match is not None:
                self._alias[match] = k
                now[k] = now.pop(match)
        for k in list(self.early):
            if self.early[k] in self._settled:
                del self.early[k]
        new = [v for k, v in now.items() if k not in self.current]
        gone = [(k, v) for k, v in self.current.items() if k not in now]
        self.current = now
        return new, gone
