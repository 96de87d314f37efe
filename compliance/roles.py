"""Which speaker is the agent: from the channel layout when known, else from what they say."""

from __future__ import annotations

from .types import SpeakerInfo, Utterance


def assign_roles(utterances: list[Utterance], *, channel_roles: dict[int, str] | None = None) -> list[SpeakerInfo]:
    talk: dict[str, float] = {}
    channels: dict[str, int | None] = {}
    for utt in utterances:
        talk[utt.speaker] = talk.get(utt.speaker, 0.0) + (utt.end - utt.start)
        channels.setdefault(utt.speaker, utt.channel)
    infos = []
    ranked = sorted(talk, key=talk.get, reverse=True)
    for rank, speaker in enumerate(ranked):
        channel = channels[speaker]
        if channel_roles and channel is not None and channel in channel_roles:
            role, confidence = channel_roles[channel], 1.0
        else:
            role, confidence = ("agent" if rank == 0 else "customer"), 0.5
        infos.append(SpeakerInfo(speaker=speaker, role=role, role_confidence=confidence, channel=channel,
                                 talk_time=round(talk[speaker], 3)))
    by_speaker = {i.speaker: i.role for i in infos}
    for utt in utterances:
        utt.role = by_speaker[utt.speaker]
        for word in utt.words:
            word.role = utt.role
            word.speaker = utt.speaker
    return infos
