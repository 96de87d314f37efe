"""Shared fixtures. Real models load once per session; data comes from ../shared beside the repo."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"

os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def shared() -> Path:
    if not (SHARED / "audio").is_dir():
        pytest.skip(f"{SHARED} (the project's shared test data) is not beside the checkout")
    return SHARED


@pytest.fixture()
def settings(tmp_path, monkeypatch):
    """Settings pointing at a private data directory and database for one test."""
    from compliance.config import load_settings

    monkeypatch.setenv("COMPLIANCE_DATA_DIR", str(tmp_path / "data"))
    return load_settings(data_dir=tmp_path / "data")


@pytest.fixture(scope="session")
def whisper():
    """The real default ASR model (whisper base, int8, CPU), loaded once."""
    from compliance.config import load_settings
    from compliance.errors import ModelError
    from compliance.models import resolve
    from compliance.transcribe import WhisperTranscriber

    s = load_settings()
    try:
        model = resolve("asr", s)
    except ModelError as exc:
        pytest.skip(f"ASR weights not installed ({exc}); run ./install.sh")
    return WhisperTranscriber(model, compute_type=s.compute_type, beam_size=s.beam_size, batch_size=s.batch_size)
