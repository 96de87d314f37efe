"""Plain typed objects that flow one way through the pipeline:
ingest -> diarize -> transcribe -> align -> detect -> store."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

Role = Literal["agent", "customer", "supervisor", "unknown"]
ROLES: tuple[str, ...] = ("agent", "customer", "supervisor", "unknown")


@dataclass
class Audio:
    """Decoded call audio: float32 samples in [-1, 1], shape (channels, samples), at `sample_rate`."""

    samples: np.ndarray
    sample_rate: int
    source: str
    sha256: str
    original_channels: int
    original_sample_rate: int
    codec: str = ""

    @property
    def channels(self) -> int:
        return int(self.samples.shape[0])

    @property
    def duration(self) -> float:
        return self.samples.shape[1] / float(self.sample_rate)

    def mono(self) -> np.ndarray:
        """Down-mix for single-channel processing (sum-preserving average of the channels)."""
        if self.channels == 1:
            return self.samples[0]
        return self.samples.mean(axis=0).astype(np.float32)


@dataclass
class SpeakerTurn:
    """A stretch of time in which one speaker talks, as a diarizer reports it."""

    speaker: str
    start: float
    end: float
    channel: int | None = None


@dataclass
class Word:
    text: str
    start: float
    end: float
    probability: float = 1.0
    speaker: str | None = None
    role: str = "unknown"
    #: True when the word fell in a diarization gap and was attached to the nearest turn.
    gap: bool = False


@dataclass
class Utterance:
    """One speaker's contiguous stretch of speech with its words; the unit the rule engine reads."""

    speaker: str
    start: float
    end: float
    text: str
    role: str = "unknown"
    words: list[Word] = field(default_factory=list)
    channel: int | None = None
    language: str = "zh"
    index: int = 0


@dataclass
class Violation:
    """A rule hit. `kind` is 'utterance' for a phrase in one utterance, 'absence' for a mandatory
    disclosure never said, 'ordering' for things said in the wrong order, and 'signal' for
    customer-side cues (risk, complaint) that are not agent misconduct."""

    rule_id: str
    title: str
    category: str
    severity: str
    start: float
    end: float
    speaker: str | None
    role: str
    matched_text: str
    context: str
    reason: str
    kind: str = "utterance"
    utterance_index: int | None = None
    pack: str = ""
    regulation: str = ""
    suggestion: str = ""


@dataclass
class SpeakerInfo:
    speaker: str
    role: str
    role_confidence: float
    channel: int | None = None
    talk_time: float = 0.0


@dataclass
class CallResult:
    """Everything the analysis of one call produced."""

    source: str
    sha256: str
    duration: float
    channels: int
    language: str
    speakers: list[SpeakerInfo]
    utterances: list[Utterance]
    violations: list[Violation]
    turns: list[SpeakerTurn] = field(default_factory=list)
    models: dict[str, str] = field(default_factory=dict)
    call_id: int | None = None
    reused: bool = False
