"""Speech to words with timestamps: faster-whisper behind a small interface.

Tests and the live path can swap in any object with the same `transcribe` method."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np

from .errors import ModelError
from .models import ResolvedModel
from .textnorm import to_simplified
from .types import Word

SAMPLE_RATE = 16000


@dataclass
class Segment:
    start: float
    end: float
    text: str
    words: list[Word] = field(default_factory=list)


@dataclass
class Transcript:
    language: str
    language_probability: float
    segments: list[Segment]

    @property
    def words(self) -> list[Word]:
        return [w for s in self.segments for w in s.words]


class Transcriber(Protocol):
    name: str

    def transcribe(self, samples: np.ndarray, *, language: str | None = None,
                   progress: Callable[[float], None] | None = None) -> Transcript:
        """Transcribe mono float32 16 kHz samples; `progress` gets the seconds of audio done."""
        ...


# Keep only the spacing that matters: Chinese words join without spaces, Latin words with one.
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def join_words(words: list[str]) -> str:
    out = ""
    for word in words:
        word = word.strip()
        if not word:
            continue
        if out and not (_CJK.match(word[0]) or _CJK.match(out[-1]) or word[0] in ",.!?;:%，。！？；：、"):
            out += " "
        out += word
    return out


#: pauses shorter than this stay inside one clip (Mandarin clause pauses are 0.1-0.45 s)
CLIP_JOIN_GAP_S = 0.6
CLIP_MAX_S = 28.0


def speech_clips(samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> list[dict]:
    """Silero VAD speech regions joined into clips of at most CLIP_MAX_S seconds.

    Each clip is decoded on its own, so word times stay exact: faster-whisper's own batching
    concatenates speech across the silences it removes, and words near a join can land on the
    wrong side of a pause (and so in the wrong utterance)."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    regions = get_speech_timestamps(samples, VadOptions(min_silence_duration_ms=300, speech_pad_ms=200,
                                                        max_speech_duration_s=CLIP_MAX_S))
    clips: list[dict] = []
    for region in regions:
        start, end = region["start"] / sample_rate, region["end"] / sample_rate
        if clips and start - clips[-1]["end"] < CLIP_JOIN_GAP_S and end - clips[-1]["start"] <= CLIP_MAX_S:
            clips[-1]["end"] = end
        elif clips and start < clips[-1]["end"]:
            clips[-1]["end"] = start  # padding made neighbours overlap: cut at the meeting point
            clips.append({"start": start, "end": end})
        else:
            clips.append({"start": start, "end": end})
    return [c for c in clips if c["end"] - c["start"] > 0.1]


class WhisperTranscriber:
    """faster-whisper with word timestamps and Silero VAD (which also keeps long silences out of
    the decoder, so hour-long calls are processed in bounded memory, 30 s window by window)."""

    def __init__(self, model: ResolvedModel, *, device: str = "cpu", compute_type: str = "int8",
                 cpu_threads: int = 0, beam_size: int = 5, batch_size: int = 0,
                 allow_download: bool = False, prompt: str = "") -> None:
        from faster_whisper import BatchedInferencePipeline, WhisperModel

        self.name = model.name
        self.beam_size = beam_size
        self.batch_size = batch_size
        self.prompt = prompt or None
        threads = cpu_threads or os.cpu_count() or 1
        try:
            self.model = WhisperModel(model.location, device=device, compute_type=compute_type,
                                      cpu_threads=threads, local_files_only=not allow_download)
        except Exception as exc:  # ctranslate2 raises RuntimeError/ValueError with a reason
            raise ModelError(f"cannot load ASR model {model.name} from {model.location}: {exc}") from None
        self.pipeline = BatchedInferencePipeline(self.model) if batch_size > 1 else None

    def transcribe(self, samples: np.ndarray, *, language: str | None = None,
                   progress: Callable[[float], None] | None = None) -> Transcript:
        samples = np.ascontiguousarray(samples, dtype=np.float32)
        options = dict(language=language, beam_size=self.beam_size, word_timestamps=True,
                       vad_filter=True, condition_on_previous_text=False,
                       initial_prompt=self.prompt)
        if self.pipeline is not None:
            clips = speech_clips(samples)
            if not clips:
                return Transcript(language=language or "", language_probability=0.0, segments=[])
            options.pop("vad_filter")
            segments, info = self.pipeline.transcribe(samples, batch_size=self.batch_size,
                                                      clip_timestamps=clips, **options)
        else:
            segments, info = self.model.transcribe(samples, **options)
        out: list[Segment] = []
        lang = info.language
        for seg in segments:
            words = [w for w in (whisper_word(x.word, x.start, x.end, x.probability, lang) for x in seg.words or [])
                     if w.text]
            text = join_words([w.text for w in words]) if words else whisper_text(seg.text, lang)
            if not text:
                continue
            out.append(Segment(start=float(seg.start), end=float(seg.end), text=text, words=words))
            if progress:
                progress(float(seg.end))
        return Transcript(language=lang, language_probability=float(info.language_probability), segments=out)


def whisper_text(text: str, language: str) -> str:
    """Whisper's text as ours: stripped, and Simplified for Chinese (whisper often writes Traditional)."""
    text = text.strip()
    return to_simplified(text) if language == "zh" else text


def whisper_word(text: str, start, end, probability, language: str) -> Word:
    """One faster-whisper word as ours (the post-call transcriber and the live decoder both use it);
    its text may come back empty (a lone space or punctuation token): callers drop those."""
    return Word(text=whisper_text(text, language), start=round(float(start), 3), end=round(float(end), 3),
                probability=round(float(probability), 4))
