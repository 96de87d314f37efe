"""Helpers for the review-service tests (no tests here): a live server on loopback, databases
(SQLite, and PostgreSQL when COMPLIANCE_TEST_PG_URL is set), users with tokens."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest

PG_URL = os.environ.get("COMPLIANCE_TEST_PG_URL")
REDIS_URL = os.environ.get("COMPLIANCE_TEST_REDIS_URL")
NO_PG = "PostgreSQL tests need COMPLIANCE_TEST_PG_URL (eval \"$(scripts/ci-services.sh)\")"
NO_REDIS = "Celery tests need COMPLIANCE_TEST_REDIS_URL (eval \"$(scripts/ci-services.sh)\")"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """uvicorn serving `app` on a loopback port in a thread; real HTTP."""

    def __init__(self, app) -> None:
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> "LiveServer":
        self.thread.start()
        for _ in range(200):
            if self.server.started:
                return self
            time.sleep(0.05)
        raise RuntimeError("server did not start")

    def __exit__(self, *_exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def pg_database_url() -> str:
    """A fresh, empty PostgreSQL database (dropped by drop_pg_database)."""
    import psycopg

    base = PG_URL.replace("postgresql+psycopg://", "postgresql://")
    name = f"ctest_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return PG_URL.rsplit("/", 1)[0] + "/" + name


def drop_pg_database(url: str) -> None:
    """Drop a test database; a connection that cannot be ended yet only delays it (cleanup never
    fails a test: a database left behind is reported as a warning)."""
    import warnings

    import psycopg

    name = url.rsplit("/", 1)[1]
    base = PG_URL.replace("postgresql+psycopg://", "postgresql://")
    last = None
    for attempt in range(20):
        try:
            with psycopg.connect(base, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}"' + (" WITH (FORCE)" if attempt % 2 else ""))
            return
        except psycopg.Error as exc:
            last = exc
            time.sleep(0.5)
    warnings.warn(f"could not drop test database {name}: {last}")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """Each test that uses it runs on SQLite and on PostgreSQL (skipped without the server)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'service.db'}"
        return
    if not PG_URL:
        pytest.skip(NO_PG)
    url = pg_database_url()
    try:
        yield url
    finally:
        from sqlalchemy import create_engine  # noqa: F401  (engines are disposed with the process)

        drop_pg_database(url)


def make_users(engine) -> dict[str, str]:
    """admin, qa, officer, agent A1 (alice) and agent A2 (bob): name -> bearer token."""
    from sqlmodel import Session

    from compliance.service.auth import create_user, issue_token

    tokens = {}
    with Session(engine) as session:
        for name, role, agent in (("admin", "admin", None), ("qa", "qa", None), ("officer", "officer", None),
                                  ("alice", "agent", "A1"), ("bob", "agent", "A2")):
            # argon2 is slow on purpose: only the user the login test signs in with gets a password
            user = create_user(session, name, role, agent_id=agent,
                               password=f"{name}-password" if name == "alice" else None)
            tokens[name], _ = issue_token(session, user, name="test")
    return tokens


def client(url: str, token: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=url, headers=headers, timeout=60)


def wait_job(http: httpx.Client, job_id: str, deadline_s: float = 240, until=("done", "failed")) -> dict:
    end = time.monotonic() + deadline_s
    while True:
        job = http.get(f"/api/v1/jobs/{job_id}").raise_for_status().json()
        if job["status"] in until:
            return job
        if time.monotonic() > end:
            raise AssertionError(f"job {job_id} still {job['status']} ({job['stage']}) after {deadline_s} s")
        time.sleep(0.25)


def service_settings(**overrides):
    from compliance.service.settings import ServiceSettings

    values = dict(workers=1, lease_s=10.0, poll_s=0.5, secret_key="test-key-" + "x" * 20)
    values.update(overrides)
    return ServiceSettings(**values)


def settings_for(tmp_path: Path, db_url: str):
    from compliance.config import load_settings

    return load_settings(data_dir=tmp_path / "data", db_url=db_url)


def trimmed_call(source: Path, target: Path, seconds: float) -> Path:
    """The first `seconds` of a real dual-channel call, as a 16 kHz PCM16 stereo WAV (a shorter real
    job for tests that only need one to be running)."""
    import wave

    import numpy as np

    from compliance.ingest import load_audio

    audio = load_audio(source)
    samples = audio.samples[:, : int(seconds * audio.sample_rate)]
    pcm = (np.clip(samples.T, -1, 1) * 32767).astype("<i2")
    with wave.open(str(target), "wb") as out:
        out.setnchannels(samples.shape[0])
        out.setsampwidth(2)
        out.setframerate(audio.sample_rate)
        out.writeframes(pcm.tobytes())
    return target


class FakeAnalyzer:
    """Stands in for the pipeline in queue-semantics tests: returns a fixed result for any file."""

    def __init__(self, gate: threading.Event | None = None, fail: Exception | None = None) -> None:
        self.gate, self.fail, self.calls = gate, fail, 0

    def analyze(self, path, options, progress=None):
        from compliance.ingest import file_sha256
        from compliance.types import CallResult, SpeakerInfo, Utterance, Violation, Word

        self.calls += 1
        if progress:
            progress(0.5, "transcribing channel 0")
        if self.gate is not None:
            self.gate.wait(30)
        if self.fail is not None:
            raise self.fail
        words = [Word("我的手机", 1.0, 1.5), Word("13812345678", 1.5, 2.5), Word("保本", 2.5, 3.0)]
        utt = Utterance("CH0", 1.0, 3.0, "我的手机13812345678保本", role="agent", words=words, channel=0)
        v = Violation("zh.guarantee", "保本承诺", "guarantee_of_principal", "high", 2.5, 3.0, "CH0", "agent", "保本",
                      "我的手机13812345678保本", "phrase 保本", utterance_index=0, suggestion="本产品不保本")
        return CallResult(source=str(path), sha256=file_sha256(path), duration=5.0, channels=2, language="zh",
                          speakers=[SpeakerInfo("CH0", "agent", 1.0, 0)], utterances=[utt], violations=[v])


def tone_wav(seconds: float = 1.0, freq: float = 440.0, channels: int = 2) -> bytes:
    """A short real WAV (a tone; each frequency gives different bytes, so a different sha256)."""
    import io
    import wave

    import numpy as np

    t = np.arange(int(16000 * seconds)) / 16000
    pcm = (np.sin(2 * np.pi * freq * t) * 8000).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(np.repeat(pcm[:, None], channels, axis=1).tobytes())
    return buf.getvalue()
