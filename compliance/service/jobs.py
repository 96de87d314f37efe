"""The job queue, kept in the database so it survives restarts and works for every worker kind.

A worker *claims* a job with one conditional UPDATE (queued, or running with a lapsed lease), keeps
it with heartbeats, and finishes it in the same transaction that stores the call, on condition that
it still holds the lease. So a job whose worker died is picked up again once the lease lapses, and
however often a job is run, its call is stored once (and the store dedups by audio sha256 anyway)."""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Callable

from sqlalchemy import and_, or_, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from .. import store
from ..errors import ComplianceError
from .. import pii
from .blobs import BlobStore
from .crypto import Crypto
from .models import JOB_DONE, JOB_FAILED, JOB_QUEUED, JOB_RUNNING, CallSecret, Job, utcnow
from .settings import ServiceSettings

log = logging.getLogger("compliance.service.jobs")

#: one id per process start: tells this process's leases from those of a dead one with the same pid
BOOT_ID = uuid.uuid4().hex[:8]


def worker_owner(tag: str = "") -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{BOOT_ID}" + (f":{tag}" if tag else "")


class LeaseLost(Exception):
    """Another worker took the job over (this one was presumed dead): its work is discarded."""


def _claimable(now):
    return or_(Job.status == JOB_QUEUED,
               and_(Job.status == JOB_RUNNING, or_(Job.lease_expires_at.is_(None), Job.lease_expires_at < now)))


def claim(engine: Engine, job_id: str, owner: str, svc: ServiceSettings) -> Job | None:
    """Take `job_id` if it is free; None if it is done, failed, or held by a live worker."""
    now = utcnow()
    with Session(engine) as session:
        job = session.get(Job, job_id)
        if job is None:
            return None
        if job.status == JOB_RUNNING and job.attempts >= svc.max_attempts and \
                job.lease_expires_at is not None and job.lease_expires_at < now:
            _give_up(session, job, now)
            return None
        result = session.exec(update(Job).where(Job.id == job_id, _claimable(now)).values(
            status=JOB_RUNNING, lease_owner=owner, lease_expires_at=now + timedelta(seconds=svc.lease_s),
            attempts=Job.attempts + 1, started_at=now, stage="claimed", error=None))
        session.commit()
        if result.rowcount != 1:
            return None
        return session.get(Job, job_id)


def claim_next(engine: Engine, owner: str, svc: ServiceSettings) -> Job | None:
    """The oldest claimable job, or None."""
    for _ in range(20):  # another worker may win the race for a candidate: try the next one
        now = utcnow()
        with Session(engine) as session:
            candidate = session.exec(select(Job.id).where(_claimable(now)).order_by(Job.created_at, Job.id)
                                     .limit(1)).first()
        if candidate is None:
            return None
        job = claim(engine, candidate, owner, svc)
        if job is not None:
            return job
    return None


def _give_up(session: Session, job: Job, now) -> None:
    session.exec(update(Job).where(Job.id == job.id, Job.status == JOB_RUNNING,
                                   Job.lease_owner == job.lease_owner).values(
        status=JOB_FAILED, finished_at=now, lease_owner=None, lease_expires_at=None,
        error=f"the worker processing this call stopped {job.attempts} times (killed or out of memory); "
              "not retried again"))
    session.commit()


def reap(engine: Engine, svc: ServiceSettings) -> int:
    """Fail jobs whose lease lapsed after their last allowed attempt; returns how many."""
    now = utcnow()
    with Session(engine) as session:
        jobs = session.exec(select(Job).where(Job.status == JOB_RUNNING, Job.lease_expires_at < now,
                                              Job.attempts >= svc.max_attempts)).all()
        for job in jobs:
            _give_up(session, job, now)
        return len(jobs)


def requeue_orphans(engine: Engine) -> int:
    """Put back at once the running jobs of an earlier incarnation of this process (same host and
    pid, another boot id: a restart after a crash) or of a dead process on this host."""
    host, pid = socket.gethostname(), os.getpid()
    count = 0
    with Session(engine) as session:
        for job in session.exec(select(Job).where(Job.status == JOB_RUNNING)).all():
            parts = (job.lease_owner or "").split(":")
            if len(parts) < 3 or parts[0] != host or not parts[1].isdigit():
                continue
            owner_pid, boot = int(parts[1]), parts[2]
            dead = (owner_pid == pid and boot != BOOT_ID) or (owner_pid != pid and not _pid_alive(owner_pid))
            if dead:
                result = session.exec(update(Job).where(Job.id == job.id, Job.lease_owner == job.lease_owner,
                                                        Job.status == JOB_RUNNING)
                                      .values(lease_expires_at=utcnow() - timedelta(seconds=1)))
                count += result.rowcount
        session.commit()
    return count


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def release(engine: Engine, job_id: str, owner: str, reason: str = "") -> None:
    """Hand a job back to the queue (shutdown, transient error)."""
    with Session(engine) as session:
        session.exec(update(Job).where(Job.id == job_id, Job.lease_owner == owner, Job.status == JOB_RUNNING)
                     .values(status=JOB_QUEUED, lease_owner=None, lease_expires_at=None, stage=reason[:128]))
        session.commit()


def fail(engine: Engine, job_id: str, owner: str, reason: str) -> bool:
    with Session(engine) as session:
        result = session.exec(update(Job).where(Job.id == job_id, Job.lease_owner == owner,
                                                Job.status == JOB_RUNNING).values(
            status=JOB_FAILED, error=reason, finished_at=utcnow(), lease_owner=None, lease_expires_at=None,
            stage="failed"))
        session.commit()
        return result.rowcount == 1


class Heartbeat:
    """Renews a job's lease and publishes its progress from a side thread while the analysis runs."""

    def __init__(self, engine: Engine, job_id: str, owner: str, svc: ServiceSettings) -> None:
        self.engine, self.job_id, self.owner, self.svc = engine, job_id, owner, svc
        self.progress, self.stage = 0.0, "starting"
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{job_id[:8]}", daemon=True)
        self.interval = max(0.2, min(2.0, svc.lease_s / 4))

    def __enter__(self) -> "Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def update(self, fraction: float, stage: str) -> None:
        self.progress, self.stage = max(0.0, min(1.0, fraction)), stage

    def beat(self) -> bool:
        with Session(self.engine) as session:
            result = session.exec(update(Job).where(Job.id == self.job_id, Job.lease_owner == self.owner,
                                                    Job.status == JOB_RUNNING).values(
                lease_expires_at=utcnow() + timedelta(seconds=self.svc.lease_s),
                progress=round(self.progress, 4), stage=self.stage[:128]))
            session.commit()
            return result.rowcount == 1

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                if not self.beat():
                    self.lost = True
                    return
            except Exception:  # a database hiccup: the next beat retries; the lease has slack
                log.warning("heartbeat for job %s failed", self.job_id, exc_info=True)


@dataclass
class JobContext:
    """What running a job needs; built once per worker (the analyzer keeps its models loaded)."""

    engine: Engine
    analyzer: object  # compliance.pipeline.Analyzer
    blobs: BlobStore
    crypto: Crypto
    svc: ServiceSettings


def warm(analyzer) -> None:
    """Load the models and rules now, so the first job does not wait for them (and a missing model
    shows in the log at start). Failures are logged; jobs then fail with the reason."""
    for attr in ("transcriber", "packs"):
        try:
            getattr(analyzer, attr, None)
        except Exception:
            log.exception("could not load the analyzer's %s", attr)


#: test hook: called with (job, stage) at the points a crash can happen
crash_hook: Callable[[Job, str], None] | None = None


def run_job(ctx: JobContext, job: Job, owner: str) -> str:
    """Analyse a claimed job and store its call; returns the job's final status."""
    from ..pipeline import AnalysisOptions

    path = ctx.blobs.path(job.blob_sha256)
    try:
        with Heartbeat(ctx.engine, job.id, owner, ctx.svc) as hb:
            with Session(ctx.engine) as session:
                known = store.find_call(session, job.blob_sha256)
            if known is not None:  # analysed before (a redone job, or the same audio uploaded again)
                _finish(ctx, job, owner, known.id)
                return JOB_DONE
            if not path.is_file():
                raise ComplianceError(f"{job.filename}: the stored upload is missing ({path.name})")
            roles = ({job.agent_channel: "agent", 1 - job.agent_channel: "customer"}
                     if job.agent_channel in (0, 1) else None)
            options = AnalysisOptions(language=job.language or None, channel_roles=roles, store=False)
            result = ctx.analyzer.analyze(path, options, progress=hb.update)
            if crash_hook:
                crash_hook(job, "analysed")
            if hb.lost:
                raise LeaseLost()
            hb.update(0.99, "saving")
            result.source = job.filename
            masked, _n = pii.mask_result(result)
            secret = None
            if ctx.svc.keep_unmasked:
                secret = ctx.crypto.encrypt(_unmasked_json(result))
            meta = {"agent_id": job.agent_id, "customer_id": job.customer_id, "product": job.product,
                    "campaign": job.campaign, "call_time": job.call_time}

            def before_commit(session: Session, call) -> None:
                if secret:
                    session.add(CallSecret(call_id=call.id, ciphertext=secret))
                _mark_done(session, job, owner, call.id)

            with Session(ctx.engine) as session:
                call = store.save_call(session, masked, meta=meta, before_commit=before_commit)
                if call.sha256 == job.blob_sha256 and not _is_done(ctx.engine, job.id):
                    # stored by someone else in the meantime: point this job at it
                    _finish(ctx, job, owner, call.id)
        return JOB_DONE
    except LeaseLost:
        log.warning("job %s: lease lost to another worker; this run's result is discarded", job.id)
        return "lost"
    except ComplianceError as exc:
        reason = str(exc).replace(str(path), job.filename)
        fail(ctx.engine, job.id, owner, reason)
        return JOB_FAILED
    except Exception as exc:  # a bug or an outage: retry until max_attempts, then fail with the reason
        log.exception("job %s failed", job.id)
        reason = f"internal error: {type(exc).__name__}: {exc}"[:2000]
        if job.attempts >= ctx.svc.max_attempts:
            fail(ctx.engine, job.id, owner, reason)
            return JOB_FAILED
        release(ctx.engine, job.id, owner, reason="retrying after an error")
        return JOB_QUEUED


def _unmasked_json(result) -> str:
    import json

    return json.dumps({"utterances": [{"index": u.index, "text": u.text, "words": [w.text for w in u.words]}
                                      for u in result.utterances],
                       "violations": [{"start": v.start, "rule_id": v.rule_id, "matched_text": v.matched_text,
                                       "context": v.context} for v in result.violations]}, ensure_ascii=False)


def _mark_done(session: Session, job: Job, owner: str, call_id: int) -> None:
    result = session.exec(update(Job).where(Job.id == job.id, Job.lease_owner == owner, Job.status == JOB_RUNNING)
                          .values(status=JOB_DONE, call_id=call_id, progress=1.0, stage="done",
                                  finished_at=utcnow(), lease_owner=None, lease_expires_at=None))
    if result.rowcount != 1:
        raise LeaseLost()


def _finish(ctx: JobContext, job: Job, owner: str, call_id: int) -> None:
    with Session(ctx.engine) as session:
        call = session.get(store.CallRecord, call_id)
        for field in store.CALL_META_FIELDS:  # an earlier upload without metadata: fill it in
            if getattr(call, field) is None and getattr(job, field) is not None:
                setattr(call, field, getattr(job, field))
        session.add(call)
        _mark_done(session, job, owner, call_id)
        session.commit()


def _is_done(engine: Engine, job_id: str) -> bool:
    with Session(engine) as session:
        job = session.get(Job, job_id)
        return job is not None and job.status == JOB_DONE


def job_counts(session: Session, batch_id: str | None = None) -> dict[str, int]:
    from sqlalchemy import func

    query = select(Job.status, func.count()).group_by(Job.status)
    if batch_id:
        query = query.where(Job.batch_id == batch_id)
    counts = {s: 0 for s in (JOB_QUEUED, JOB_RUNNING, JOB_DONE, JOB_FAILED)}
    counts.update({status: n for status, n in session.exec(query).all()})
    return counts


def blob_path(blobs: BlobStore, sha256: str) -> Path:
    return blobs.path(sha256)
