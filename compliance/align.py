"""Word-level speaker attribution: each word goes to the speaker whose turn covers it.

Segment-level assignment (one speaker per ASR segment) is how a customer's "嗯" ends up inside
the agent's sentence and how an agent's "保本吗? 不保本" ends up on the wrong side. Here:

* every word is scored against every speaker by how much of the word the speaker's turns cover;
  the best-covered speaker wins; ties inside overlapping speech go to the speaker who was
  already talking (sentence continuity), except for backchannel tokens (嗯/好的/对/ok...) that a
  short turn of another speaker covers -- those are the interjection;
* a word no turn touches (a diarization gap) goes to the nearest turn, with `gap=True`;
* no word is ever dropped, and words keep their order;
* utterances are cut where the speaker changes and at pauses of `gap_s` or more. A short
  interjection by another speaker inside a sentence (backchannel) becomes its own, overlapping
  utterance and does **not** cut the sentence around it, so phrase rules still see the whole
  sentence ("不保本" is never split into "不" + "保本").
"""

from __future__ import annotations

import re
from collections import defaultdict

from .types import SpeakerTurn, Utterance, Word

#: pause that ends an utterance (same as the dual-channel path)
UTTERANCE_GAP_S = 1.0
#: an interjection is at most this many words and this long
INTERJECTION_MAX_WORDS = 3
INTERJECTION_MAX_S = 1.5

_BACKCHANNEL = re.compile(
    r"^(嗯+|恩+|哦+|噢+|喔+|啊+|呃+|唔+|好+|好的|好吧|对+|对对|是+|是的|行|可以|明白|知道了|没问题|"
    r"mm+|mhm|uh-?huh|yeah|yes|yep|ok|okay|right|sure|i see)$",
    re.IGNORECASE,
)
_PUNCT = re.compile(r"[\s,.!?;:，。！？；：、…~\-\"'“”‘’（）()]+")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]")


_FILLER = re.compile(r"^(嗯+|恩+|哦+|噢+|喔+|呃+|唔+|mm+|mhm|uh-?huh)$", re.IGNORECASE)


def is_backchannel(text: str) -> bool:
    return bool(_BACKCHANNEL.match(_PUNCT.sub("", text or "")))


def _isolated_backchannel(words: list[Word], i: int, pause: float = 0.05) -> bool:
    """A backchannel token standing on its own: a pure filler (嗯), or a word such as 好的/对/行
    with a pause on at least one side (inside "我们行的产品", 行 is not a backchannel)."""
    text = _PUNCT.sub("", words[i].text or "")
    if _FILLER.match(text):
        return True
    if not _BACKCHANNEL.match(text):
        return False
    before = words[i].start - words[i - 1].end if i > 0 else 1.0
    after = words[i + 1].start - words[i].end if i + 1 < len(words) else 1.0
    return before >= pause or after >= pause


def join_words(words: list[str], language: str = "zh") -> str:
    """Words -> text: no spaces between CJK characters, single spaces between other words."""
    out = ""
    for w in words:
        w = w.strip()
        if not w:
            continue
        if out and not (_CJK.match(w[0]) or _CJK.match(out[-1]) or w[0] in ",.!?;:%，。！？；：、"):
            out += " "
        out += w
    return out


def _coverage(word: Word, turns: list[SpeakerTurn]) -> dict[str, float]:
    """Seconds of the word covered by each speaker's turns (a point word counts its midpoint)."""
    cov: dict[str, float] = defaultdict(float)
    s, e = word.start, max(word.end, word.start)
    for t in turns:
        if e > s:
            o = min(e, t.end) - max(s, t.start)
            if o > 0:
                cov[t.speaker] += o
        elif t.start <= s <= t.end:
            cov[t.speaker] += 1e-3
    return cov


def _nearest(word: Word, turns: list[SpeakerTurn], previous: str | None) -> SpeakerTurn:
    def dist(t: SpeakerTurn) -> tuple[float, int]:
        d = max(t.start - word.end, word.start - t.end, 0.0)
        return (round(d, 3), 0 if t.speaker == previous else 1)

    return min(turns, key=dist)


def _covering_turn(word: Word, turns: list[SpeakerTurn], speaker: str) -> SpeakerTurn | None:
    best, best_o = None, -1.0
    for t in turns:
        if t.speaker != speaker:
            continue
        o = min(word.end, t.end) - max(word.start, t.start)
        if o > best_o:
            best, best_o = t, o
    return best


def assign_speakers(words: list[Word], turns: list[SpeakerTurn]) -> list[SpeakerTurn | None]:
    """Set `speaker` (and `gap`) on every word, in place; returns the turn each word went to."""
    ordered = sorted(turns, key=lambda t: (t.start, t.end))
    chosen: list[SpeakerTurn | None] = []
    previous: str | None = None
    for i, w in enumerate(words):
        cov = _coverage(w, ordered)
        if not ordered:
            w.speaker, w.gap = None, True
            chosen.append(None)
            continue
        if not cov:
            turn = _nearest(w, ordered, previous)
            w.speaker, w.gap = turn.speaker, True
            chosen.append(turn)
            previous = turn.speaker
            continue
        w.gap = False
        top = max(cov.values())
        # speakers covering (nearly) as much of the word as the best one
        close = [spk for spk, c in cov.items() if c >= top - 0.02 or c >= 0.8 * top]
        if len(close) == 1:
            speaker = close[0]
        else:
            speaker = None
            if _isolated_backchannel(words, i):
                # the interjecting speaker: the one whose covering turn is the short one
                short = [(t.end - t.start, spk) for spk in close
                         if (t := _covering_turn(w, ordered, spk)) is not None
                         and t.end - t.start <= INTERJECTION_MAX_S + 0.5 and spk != previous]
                if short:
                    speaker = min(short)[1]
            if speaker is None:
                speaker = previous if previous in close else max(close, key=lambda spk: cov[spk])
        w.speaker = speaker
        chosen.append(_covering_turn(w, ordered, speaker))
        previous = speaker
    return chosen


def _interjections(words: list[Word]) -> set[int]:
    """Indices of words that form a short interjection inside another speaker's sentence."""
    out: set[int] = set()
    i = 0
    n = len(words)
    while i < n:
        j = i
        while j + 1 < n and words[j + 1].speaker == words[i].speaker:
            j += 1
        if 0 < i and j < n - 1:
            before, after = words[i - 1], words[j + 1]
            run = words[i: j + 1]
            if (before.speaker == after.speaker != words[i].speaker
                    and len(run) <= INTERJECTION_MAX_WORDS
                    and run[-1].end - run[0].start <= INTERJECTION_MAX_S
                    and after.start - before.end < UTTERANCE_GAP_S + INTERJECTION_MAX_S):
                out.update(range(i, j + 1))
        i = j + 1
    return out


def attribute_words(words: list[Word], turns: list[SpeakerTurn], *, language: str = "zh",
                    gap_s: float = UTTERANCE_GAP_S) -> list[Utterance]:
    """Time-ordered words + diarization turns -> utterances (one speaker each), every word kept.

    Sets `speaker` and `gap` on the words (in place). Utterances are sorted by start time and
    indexed; an interjection overlaps the sentence it interrupts."""
    words = sorted(words, key=lambda w: (w.start, w.end))
    chosen = assign_speakers(words, turns)
    channel_of = {id(w): (t.channel if t is not None else None) for w, t in zip(words, chosen)}
    inter = _interjections(words)
    groups: list[list[Word]] = []
    open_group: dict[str | None, list[Word]] = {}  # the running sentence of each speaker
    current: str | None = None  # speaker holding the floor
    for i, w in enumerate(words):
        if i in inter:
            # a backchannel: its own utterance; the floor (and the sentence) stays with the holder
            if i - 1 in inter and groups and groups[-1][-1] is words[i - 1]:
                groups[-1].append(w)
            else:
                groups.append([w])
            continue
        g = open_group.get(w.speaker)
        if w.speaker == current and g is not None and w.start - g[-1].end < gap_s:
            g.append(w)
        else:
            g = [w]
            groups.append(g)
            open_group = {w.speaker: g}
            current = w.speaker
    utterances: list[Utterance] = []
    for g in groups:
        channels = [channel_of[id(w)] for w in g if channel_of[id(w)] is not None]
        utterances.append(Utterance(
            speaker=g[0].speaker or "UNKNOWN",
            start=g[0].start, end=max(w.end for w in g),
            text=join_words([w.text for w in g], language),
            words=g,
            channel=channels[0] if channels else None,
            language=language,
        ))
    utterances.sort(key=lambda u: (u.start, u.end))
    for i, u in enumerate(utterances):
        u.index = i
    return utterances
