"""The embedded worker pool: threads that claim jobs from the database and run them, each with an
analyzer whose models stay loaded. `compliance serve` runs one beside the API; `compliance worker`
runs one alone (several machines may share the database)."""

from __future__ import annotations

import logging
import threading
from typing import Callable

from .jobs import JobContext, claim_next, reap, release, requeue_orphans, run_job, warm, worker_owner

log = logging.getLogger("compliance.service.worker")


class WorkerPool:
    def __init__(self, make_context: Callable[[], JobContext], size: int = 1) -> None:
        self._make_context = make_context
        self.size = max(1, size)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._threads: list[threading.Thread] = []
        self._current: dict[str, tuple[str, JobContext]] = {}
        self._lock = threading.Lock()
        self.ready = threading.Event()
        self.processed = 0

    def start(self) -> None:
        for i in range(self.size):
            t = threading.Thread(target=self._loop, args=(i,), name=f"compliance-worker-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    def wake(self) -> None:
        """New jobs were queued: look now rather than at the next poll."""
        self._wake.set()

    def alive(self) -> int:
        return sum(t.is_alive() for t in self._threads)

    def stop(self, grace_s: float = 10.0) -> None:
        """Stop claiming; wait `grace_s` for running jobs, then hand them back to the queue."""
        self._stop.set()
        self._wake.set()
        for t in self._threads:
            t.join(timeout=grace_s / max(1, len(self._threads)))
        with self._lock:
            for job_id, (owner, ctx) in list(self._current.items()):
                release(ctx.engine, job_id, owner, reason="worker shut down")

    def _loop(self, index: int) -> None:
        ctx = None
        owner = worker_owner(f"w{index}")
        while not self._stop.is_set():
            try:
                if ctx is None:
                    ctx = self._make_context()
                    warm(ctx.analyzer)
                    requeue_orphans(ctx.engine)
                    reap(ctx.engine, ctx.svc)
                    self.ready.set()
                job = claim_next(ctx.engine, owner, ctx.svc)
                if job is None:
                    self._wake.wait(ctx.svc.poll_s)
                    self._wake.clear()
                    reap(ctx.engine, ctx.svc)
                    continue
                with self._lock:
                    self._current[job.id] = (owner, ctx)
                try:
                    status = run_job(ctx, job, owner)
                    log.info("job %s (%s): %s", job.id, job.filename, status)
                    self.processed += 1
                finally:
                    with self._lock:
                        self._current.pop(job.id, None)
            except Exception:  # never let a worker thread die: log, pause, go on
                log.exception("worker %d: unexpected error", index)
                self._stop.wait(2.0)
