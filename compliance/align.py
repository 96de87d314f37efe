"""Word-level speaker attribution: each word goes to the speaker whose turn covers it."""

from __future__ import annotations

from .transcribe import join_words
from .types import SpeakerTurn, Utterance, Word


def attribute_words(words: list[Word], turns: list[SpeakerTurn], *, language: str = "zh") -> list[Utterance]:
    utterances: list[Utterance] = []
    for word in words:
        mid = (word.start + word.end) / 2
        covering = [t for t in turns if t.start <= mid <= t.end]
        if covering:
            turn = covering[0]
        else:
            turn = min(turns, key=lambda t: min(abs(t.start - mid), abs(t.end - mid)))
            word.gap = True
        word.speaker = turn.speaker
        if utterances and utterances[-1].speaker == turn.speaker:
            utterances[-1].words.append(word)
        else:
            utterances.append(Utterance(speaker=turn.speaker, start=word.start, end=word.end, text="",
                                        words=[word], channel=turn.channel, language=language))
    for i, utt in enumerate(utterances):
        utt.start, utt.end = utt.words[0].start, utt.words[-1].end
        utt.text = join_words([w.text for w in utt.words])
        utt.index = i
    return utterances
