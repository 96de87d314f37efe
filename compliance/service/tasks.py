"""The same job code on Celery workers with a Redis broker (`compliance worker --celery`).

Late acknowledgement: a task is acknowledged only when it returns, so if its worker is killed the
broker hands it to another worker (immediately for a dead pool process, after the visibility timeout
for a dead worker). The database lease decides who really runs a job, so a duplicate delivery never
runs it twice; a delivery that finds the job held by a live worker checks back after a lease."""

from __future__ import annotations

import logging
import os
import threading

from celery import Celery
from celery.signals import worker_process_init, worker_ready

from .settings import load_service_settings

log = logging.getLogger("compliance.service.tasks")

_svc = load_service_settings()
app = Celery("compliance", broker=os.environ.get("COMPLIANCE_BROKER_URL", _svc.broker_url))
app.conf.update(
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_default_queue="compliance",
    broker_transport_options={"visibility_timeout": _svc.visibility_timeout_s},
    broker_connection_retry_on_startup=True,
    task_ignore_result=True,
    worker_hijack_root_logger=False,
)

_ctx = None
_ctx_lock = threading.Lock()


def context():
    """Engine, analyzer (models loaded once per worker process), blob store, key."""
    global _ctx
    with _ctx_lock:
        if _ctx is None:
            from .runtime import build_job_context

            _ctx = build_job_context()
        return _ctx


@worker_process_init.connect
def _load_models_in_pool_process(**_kwargs) -> None:
    """Prefork: each pool process loads the models when it starts, not on its first task."""
    from .jobs import warm

    warm(context().analyzer)


@worker_ready.connect
def _load_models_in_worker(**_kwargs) -> None:
    """Solo pool: the worker process itself runs the tasks (set by `compliance worker --celery`)."""
    if os.environ.get("COMPLIANCE_CELERY_POOL") == "solo":
        from .jobs import warm

        warm(context().analyzer)


@app.task(bind=True, name="compliance.process_job", max_retries=None)
def process_job(self, job_id: str) -> str:
    from .jobs import claim, run_job, worker_owner
    from .models import JOB_DONE, JOB_FAILED, Job

    ctx = context()
    owner = worker_owner(f"celery-{self.request.id or ''}"[:60])
    job = claim(ctx.engine, job_id, owner, ctx.svc)
    if job is None:
        from sqlmodel import Session

        with Session(ctx.engine) as session:
            current = session.get(Job, job_id)
        if current is None or current.status in (JOB_DONE, JOB_FAILED):
            return current.status if current else "missing"
        # held by a live worker (or a duplicate delivery): come back once its lease could have lapsed
        raise self.retry(countdown=max(1.0, ctx.svc.lease_s))
    status = run_job(ctx, job, owner)
    if status == "queued":  # a transient error: run it again soon
        raise self.retry(countdown=5)
    return status


def send(job_id: str) -> None:
    process_job.apply_async(args=[job_id])


def resend_pending(engine) -> int:
    """Send every queued or stalled job again (after a broker outage or at worker start); safe since
    a job is claimed in the database before it runs."""
    from sqlmodel import Session, select

    from .models import JOB_QUEUED, JOB_RUNNING, Job

    with Session(engine) as session:
        ids = session.exec(select(Job.id).where(Job.status.in_([JOB_QUEUED, JOB_RUNNING]))
                           .order_by(Job.created_at)).all()
    for job_id in ids:
        send(job_id)
    return len(ids)
