"""Scale-out: the API sends jobs to Redis; a real `compliance worker --celery` runs them. A worker
killed mid-job (SIGKILL) leaves its task unacknowledged; the next worker redoes it, once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import func
from sqlmodel import Session, select

from test_service_support import (NO_REDIS, REDIS_URL, LiveServer, client, make_users, service_settings, settings_for,
                                  trimmed_call, wait_job)

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not REDIS_URL, reason=NO_REDIS)]
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _worker(tmp_path, db_url, log_name):
    env = dict(os.environ, COMPLIANCE_DATA_DIR=str(tmp_path / "data"), COMPLIANCE_DB_URL=db_url,
               COMPLIANCE_BROKER_URL=REDIS_URL, COMPLIANCE_LEASE_S="6", COMPLIANCE_VISIBILITY_TIMEOUT_S="20",
               COMPLIANCE_SECRET_KEY="celery-test-key")
    log = open(tmp_path / log_name, "wb")
    return subprocess.Popen([sys.executable, "-m", "compliance", "worker", "--celery", "--log-level", "info"],
                            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)


def test_celery_worker_killed_mid_job_the_job_finishes_once(tmp_path, shared, monkeypatch):
    import redis

    from compliance import store
    from compliance.service import create_app
    from compliance.service.models import Job

    redis.Redis.from_url(REDIS_URL).flushdb()
    monkeypatch.setenv("COMPLIANCE_BROKER_URL", REDIS_URL)
    db_url = f"sqlite:///{tmp_path / 'data' / 'celery.db'}"
    settings = settings_for(tmp_path, db_url)
    engine = store.make_engine(db_url)
    tokens = make_users(engine)
    app = create_app(settings, service_settings(queue="celery", secret_key="celery-test-key"), engine=engine)
    audio = trimmed_call(shared / "audio" / "calls" / "dev06.stereo.flac", tmp_path / "dev06-35s.wav", 35)
    worker = _worker(tmp_path, db_url, "worker1.log")
    try:
        with LiveServer(app) as server, client(server.url, tokens["qa"]) as qa, \
                open(audio, "rb") as fh:
            job = qa.post("/api/v1/uploads", files={"files": ("dev06.flac", fh)},
                          data={"agent_id": "A2"}).json()["jobs"][0]
            end = time.monotonic() + 180
            while True:
                state = qa.get(f"/api/v1/jobs/{job['id']}").json()
                if state["status"] == "running" and state["stage"].startswith("transcribing") and state["progress"] > 0:
                    break
                assert worker.poll() is None, (tmp_path / "worker1.log").read_text()[-3000:]
                assert state["status"] in ("queued", "running") and time.monotonic() < end, state
                time.sleep(0.05)
            worker.send_signal(signal.SIGKILL)
            worker.wait(timeout=30)
            with Session(engine) as session:
                assert session.get(Job, job["id"]).status == "running"
                assert session.exec(select(func.count()).select_from(store.CallRecord)).one() == 0

            worker = _worker(tmp_path, db_url, "worker2.log")
            done = wait_job(qa, job["id"], deadline_s=300)
            assert done["status"] == "done", done["error"]
            assert done["attempts"] == 2
            call = qa.get(f"/api/v1/calls/{done['call_id']}").json()
            assert call["agent_id"] == "A2" and call["utterances"]
        with Session(engine) as session:
            assert session.exec(select(func.count()).select_from(store.CallRecord)).one() == 1
            violations = session.exec(select(store.ViolationRecord)).all()
            keys = [(v.rule_id, v.start, v.end) for v in violations]
            assert len(keys) == len(set(keys))
    finally:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
