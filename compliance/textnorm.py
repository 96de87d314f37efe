"""Text normalisation shared by transcription and the rule engine."""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1)
def _t2s():
    import opencc

    return opencc.OpenCC("t2s")


def to_simplified(text: str) -> str:
    """Traditional -> Simplified Chinese (OpenCC t2s); whisper often writes Traditional for Mandarin."""
    if not text:
        return text
    return _t2s().convert(text)
