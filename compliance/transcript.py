"""Read a transcript from a file into utterances for the rules: the call JSON `compliance analyze
--json` writes (docs/call-json.md), or a plain JSON list of its segments. So the rules can be run
again over a stored call, or over another transcriber's output, without the audio."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import TranscriptError
from .types import Utterance, Word

#: a transcript is text: a file this large is not one
MAX_BYTES = 50 * 1024 * 1024


class _Word(BaseModel):
    model_config = ConfigDict(extra="ignore")
    text: str
    start: float = Field(ge=0)
    end: float = Field(ge=0)
    probability: float = 1.0


class _Segment(BaseModel):
    model_config = ConfigDict(extra="ignore")
    speaker: str | None = None
    role: Literal["agent", "customer", "unknown", "supervisor"] = "unknown"
    channel: int | None = None
    start: float = Field(ge=0)
    end: float = Field(ge=0)
    text: str
    words: list[_Word] = Field(default_factory=list)

    @model_validator(mode="after")
    def _order(self):
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self


def read_transcript(path: Path, language: str = "zh") -> list[Utterance]:
    """The utterances of a transcript file, in time order. `language`: for a plain list of
    segments (a call JSON carries its own). Raises TranscriptError naming the file and the field."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_BYTES:
            raise TranscriptError(f"{path}: {path.stat().st_size} bytes is too large for a transcript "
                                  f"(at most {MAX_BYTES})")
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TranscriptError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise TranscriptError(f"{path}: cannot be read as UTF-8 text ({e})") from None
    except json.JSONDecodeError as e:
        raise TranscriptError(f"{path}: not JSON ({e.msg} at line {e.lineno}, column {e.colno})") from None
    if isinstance(doc, dict):
        if "segments" not in doc:
            raise TranscriptError(f"{path}: a call JSON needs 'segments' (docs/call-json.md)")
        language = ((doc.get("call") or {}).get("language") or language)
        segments = doc["segments"]
    else:
        segments = doc
    if not isinstance(segments, list):
        raise TranscriptError(f"{path}: 'segments' must be a list of utterances")
    out = []
    for i, raw in enumerate(segments):
        try:
            s = _Segment.model_validate(raw)
        except ValidationError as e:
            err = e.errors()[0]
            where = ".".join(str(x) for x in err["loc"])
            raise TranscriptError(f"{path}: segments[{i}]{'.' + where if where else ''}: {err['msg']}") from None
        out.append(Utterance(speaker=s.speaker or s.role, start=s.start, end=s.end, text=s.text, role=s.role,
                             words=[Word(w.text, w.start, w.end, w.probability, s.speaker or s.role, s.role)
                                    for w in s.words],
                             channel=s.channel, language=language))
    out.sort(key=lambda u: (u.start, u.end))
    for i, u in enumerate(out):
        u.index = i
    return out
