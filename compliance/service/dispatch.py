"""Telling workers about new jobs: wake the embedded pool, or send a Celery task."""

from __future__ import annotations

import logging

log = logging.getLogger("compliance.service.dispatch")


class Dispatcher:
    def __init__(self, queue: str, pool=None, broker_url: str = "") -> None:
        self.queue, self.pool, self.broker_url = queue, pool, broker_url

    def notify(self, job_ids: list[str]) -> None:
        if not job_ids:
            return
        if self.queue == "embedded" and self.pool is not None:
            self.pool.wake()
        elif self.queue == "celery":
            from .tasks import send

            for job_id in job_ids:
                try:
                    send(job_id)
                except Exception:  # broker down: the job stays queued; `compliance worker --celery` resends it
                    log.exception("could not send job %s to the broker", job_id)
