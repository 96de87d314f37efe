"""Embedded workers: a `compliance serve` killed mid-job resumes the job after a restart and the
call is stored once. Also the queue's lease rules, with a fake analyzer (fast)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import func
from sqlmodel import Session, select

from test_service_support import (FakeAnalyzer, client, db_url, free_port, make_users, service_settings, trimmed_call,  # noqa: F401
                                  wait_job)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _serve(tmp_path, db_url, port, log_name):
    env = dict(os.environ, COMPLIANCE_DATA_DIR=str(tmp_path / "data"), COMPLIANCE_DB_URL=db_url,
               COMPLIANCE_LEASE_S="6", COMPLIANCE_POLL_S="0.5", COMPLIANCE_SECRET_KEY="kill-test-key")
    log = open(tmp_path / log_name, "wb")
    return subprocess.Popen([sys.executable, "-m", "compliance", "serve", "--port", str(port), "--log-level",
                             "warning"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)


def _wait_http(url, proc, log_path, deadline_s=120):
    import httpx

    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise AssertionError(f"server exited: {log_path.read_text()[-3000:]}")
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("server did not come up")


@pytest.mark.slow
def test_killed_server_resumes_the_job_and_stores_the_call_once(tmp_path, shared):
    from compliance import store
    from compliance.service.models import Job

    db_url = f"sqlite:///{tmp_path / 'data' / 'kill.db'}"
    engine = store.make_engine(db_url)
    tokens = make_users(engine)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = _serve(tmp_path, db_url, port, "serve1.log")
    try:
        _wait_http(url, proc, tmp_path / "serve1.log")
        audio = trimmed_call(shared / "audio" / "calls" / "dev05.stereo.flac", tmp_path / "dev05-35s.wav", 35)
        with client(url, tokens["qa"]) as qa, open(audio, "rb") as fh:
            job = qa.post("/api/v1/uploads", files={"files": ("dev05.flac", fh)}, data={"agent_id": "A1"}).json()["jobs"][0]
            end = time.monotonic() + 180
            while True:  # kill it while the call is being transcribed
                state = qa.get(f"/api/v1/jobs/{job['id']}").json()
                if state["status"] == "running" and state["stage"].startswith("transcribing") and state["progress"] > 0:
                    break
                assert state["status"] in ("queued", "running") and time.monotonic() < end, state
                time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        with Session(engine) as session:
            assert session.get(Job, job["id"]).status == "running"  # left behind by the dead worker
            assert session.exec(select(func.count()).select_from(store.CallRecord)).one() == 0

        proc = _serve(tmp_path, db_url, port, "serve2.log")
        _wait_http(url, proc, tmp_path / "serve2.log")
        with client(url, tokens["qa"]) as qa:
            done = wait_job(qa, job["id"])
        assert done["status"] == "done", done["error"]
        assert done["attempts"] == 2
        with Session(engine) as session:
            calls = session.exec(select(store.CallRecord)).all()
            assert len(calls) == 1 and calls[0].id == done["call_id"] and calls[0].agent_id == "A1"
            violations = session.exec(select(store.ViolationRecord)).all()
            keys = [(v.rule_id, v.start, v.end, v.matched_text) for v in violations]
            assert violations and len(keys) == len(set(keys))
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                proc.kill()


# --- queue rules with a fake analyzer (no models) ------------------------------------------------

def _queued_job(tmp_path, engine, blobs, name="a.wav", content=None):
    import io

    import numpy as np

    from compliance.service.models import Blob, Job

    if content is None:
        import wave

        buf = io.BytesIO()
        with wave.open(buf, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(16000)
            tone = (np.sin(np.arange(16000) * 2 * np.pi * 440 / 16000) * 8000 * (1 + len(name) / 100)).astype("<i2")
            w.writeframes(tone.tobytes())
        content = buf.getvalue()
    tmp, sha, _ = blobs.spool(io.BytesIO(content), 10**8)
    stored = blobs.commit(tmp, sha, name)
    with Session(engine) as session:
        if session.get(Blob, sha) is None:
            session.add(Blob(sha256=sha, size=stored.size))
        job = Job(blob_sha256=sha, filename=name, agent_id="A1")
        session.add(job)
        session.commit()
        session.refresh(job)
        return job


@pytest.fixture()
def queue_env(tmp_path):
    from compliance import store
    from compliance.service.blobs import BlobStore
    from compliance.service.crypto import Crypto

    engine = store.make_engine(f"sqlite:///{tmp_path / 'q.db'}")
    return engine, BlobStore(tmp_path / "blobs"), Crypto("k")


def test_a_claimed_job_is_not_claimed_twice_until_its_lease_lapses(queue_env, tmp_path):
    from compliance.service import jobs
    from compliance.service.models import Job

    engine, blobs, _ = queue_env
    svc = service_settings(lease_s=30)
    job = _queued_job(tmp_path, engine, blobs)
    assert jobs.claim_next(engine, "w1", svc).id == job.id
    assert jobs.claim_next(engine, "w2", svc) is None
    assert jobs.claim(engine, job.id, "w2", svc) is None
    with Session(engine) as session:  # the first worker stops heartbeating: its lease lapses
        row = session.get(Job, job.id)
        row.lease_expires_at = row.lease_expires_at - timedelta(seconds=60)
        session.add(row)
        session.commit()
    taken = jobs.claim_next(engine, "w2", svc)
    assert taken.id == job.id and taken.attempts == 2 and taken.lease_owner == "w2"
    # the first worker, back from the dead, cannot finish or fail the job any more
    assert jobs.fail(engine, job.id, "w1", "late") is False


def test_a_job_whose_worker_keeps_dying_fails_with_a_reason(queue_env, tmp_path):
    from compliance.service import jobs
    from compliance.service.models import Job

    engine, blobs, _ = queue_env
    svc = service_settings(lease_s=30, max_attempts=2)
    job = _queued_job(tmp_path, engine, blobs)
    for attempt in (1, 2):
        claimed = jobs.claim_next(engine, f"w{attempt}", svc)
        assert claimed.attempts == attempt
        with Session(engine) as session:
            row = session.get(Job, job.id)
            row.lease_expires_at = row.lease_expires_at - timedelta(seconds=60)
            session.add(row)
            session.commit()
    assert jobs.claim_next(engine, "w3", svc) is None
    with Session(engine) as session:
        row = session.get(Job, job.id)
        assert row.status == "failed" and "stopped 2 times" in row.error


def test_a_redone_job_reuses_the_stored_call(queue_env, tmp_path):
    from compliance import store
    from compliance.service import jobs
    from compliance.service.models import CallSecret, Job

    engine, blobs, crypto = queue_env
    svc = service_settings()
    analyzer = FakeAnalyzer()
    ctx = jobs.JobContext(engine=engine, analyzer=analyzer, blobs=blobs, crypto=crypto, svc=svc)
    first = _queued_job(tmp_path, engine, blobs)
    again = _queued_job(tmp_path, engine, blobs)  # the same recording uploaded twice
    for job in (first, again):
        claimed = jobs.claim(engine, job.id, "w", svc)
        assert jobs.run_job(ctx, claimed, "w") == "done"
    assert analyzer.calls == 1
    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(store.CallRecord)).one() == 1
        rows = session.exec(select(Job)).all()
        assert {r.status for r in rows} == {"done"} and len({r.call_id for r in rows}) == 1
        utt = session.exec(select(store.UtteranceRecord)).one()
        assert "13812345678" not in utt.text and "*******5678" in utt.text  # stored masked
        assert "13812345678" not in str(utt.words)
        secret = session.get(CallSecret, rows[0].call_id)
        assert "13812345678" not in secret.ciphertext and "13812345678" in crypto.decrypt(secret.ciphertext)


def test_a_bad_recording_fails_its_job_with_the_reason_and_stores_nothing(queue_env, tmp_path):
    from compliance import store
    from compliance.errors import AudioError
    from compliance.service import jobs
    from compliance.service.models import Job

    engine, blobs, crypto = queue_env
    svc = service_settings()
    ctx = jobs.JobContext(engine=engine, analyzer=FakeAnalyzer(fail=AudioError(f"{tmp_path}/x: corrupt audio")),
                          blobs=blobs, crypto=crypto, svc=svc)
    job = _queued_job(tmp_path, engine, blobs)
    claimed = jobs.claim(engine, job.id, "w", svc)
    assert jobs.run_job(ctx, claimed, "w") == "failed"
    with Session(engine) as session:
        row = session.get(Job, job.id)
        assert row.status == "failed" and "corrupt audio" in row.error and row.attempts == 1
        assert session.exec(select(func.count()).select_from(store.CallRecord)).one() == 0


def test_a_worker_that_lost_its_lease_stores_nothing(queue_env, tmp_path):
    from compliance import store
    from compliance.service import jobs
    from compliance.service.models import Job

    engine, blobs, crypto = queue_env
    svc = service_settings(lease_s=30)
    gate = threading.Event()
    ctx = jobs.JobContext(engine=engine, analyzer=FakeAnalyzer(gate=gate), blobs=blobs, crypto=crypto, svc=svc)
    job = _queued_job(tmp_path, engine, blobs)
    claimed = jobs.claim(engine, job.id, "slow", svc)
    result = {}
    t = threading.Thread(target=lambda: result.setdefault("status", jobs.run_job(ctx, claimed, "slow")))
    t.start()
    time.sleep(0.3)
    with Session(engine) as session:  # presumed dead: another worker takes over
        session.exec(Job.__table__.update().where(Job.id == job.id).values(lease_owner="other"))
        session.commit()
    gate.set()
    t.join(30)
    assert result["status"] == "lost"
    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(store.CallRecord)).one() == 0
        assert session.get(Job, job.id).status == "running"


def test_workers_racing_for_one_job_one_wins(tmp_path, db_url):  # noqa: F811  (SQLite and PostgreSQL)
    from compliance import store
    from compliance.service import jobs
    from compliance.service.blobs import BlobStore

    engine = store.make_engine(db_url)
    blobs = BlobStore(tmp_path / "blobs")
    job = _queued_job(tmp_path, engine, blobs)
    svc = service_settings(lease_s=30)
    start = threading.Barrier(6)
    winners = []

    def race(i):
        start.wait()
        claimed = jobs.claim_next(engine, f"w{i}", svc)
        if claimed is not None:
            winners.append((i, claimed.id))

    threads = [threading.Thread(target=race, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(winners) == 1 and winners[0][1] == job.id
    engine.dispose()
