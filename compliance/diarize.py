"""Who spoke when. The pipeline only knows the `Diarizer` protocol; implementations plug in."""

from __future__ import annotations

from typing import Protocol

from .config import Settings
from .errors import ModelError
from .types import Audio, SpeakerTurn


class Diarizer(Protocol):
    def diarize(self, audio: Audio, *, num_speakers: int | None = None, min_speakers: int | None = None,
                max_speakers: int | None = None) -> list[SpeakerTurn]:
        ...


def get_diarizer(settings: Settings) -> Diarizer:
    raise ModelError("mono diarization is not available yet: use a dual-channel recording")
