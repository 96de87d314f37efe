"""The review service: a FastAPI application over the analysis pipeline, with a durable job queue
(embedded worker pool or Celery), users and roles, the review workflow with an append-only audit log,
PII masking and encryption, feedback and reports. Start it with `compliance serve`."""

from .app import create_app

__all__ = ["create_app"]
