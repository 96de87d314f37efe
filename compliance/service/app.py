"""The FastAPI application: `create_app()` wires settings, database, blob store, key, the job
dispatcher and (embedded mode) the worker pool; routes live in compliance.service.routers."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from typing import Callable

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import DataError, OperationalError
from sqlmodel import Session

from .. import __version__, store
from ..config import Settings, load_settings
from ..errors import ComplianceError
from .deps import ServiceContext
from .dispatch import Dispatcher
from .jobs import JobContext, job_counts
from .runtime import blob_store, crypto_for
from .settings import ServiceSettings, load_service_settings
from .worker import WorkerPool

log = logging.getLogger("compliance.service")
API = "/api/v1"


def create_app(settings: Settings | None = None, svc: ServiceSettings | None = None, *, analyzer=None,
               analyzer_factory: Callable[[], object] | None = None, engine=None,
               start_workers: bool = True, extensions: tuple[str, ...] | None = None) -> FastAPI:
    """`analyzer`: one shared Analyzer for the embedded workers (tests pass one with a loaded model);
    `analyzer_factory`: one per worker; default: a new Analyzer(settings) per worker."""
    settings = settings or load_settings()
    svc = svc or load_service_settings()
    engine = engine or store.make_engine(settings.db_url)
    blobs = blob_store(settings)
    crypto = crypto_for(settings, svc)

    def make_context() -> JobContext:
        from ..pipeline import Analyzer

        worker_analyzer = analyzer or (analyzer_factory() if analyzer_factory else Analyzer(settings, engine=engine))
        return JobContext(engine=engine, analyzer=worker_analyzer, blobs=blobs, crypto=crypto, svc=svc)

    pool = WorkerPool(make_context, svc.workers) if svc.queue == "embedded" and start_workers else None
    ctx = ServiceContext(settings=settings, svc=svc, engine=engine, blobs=blobs, crypto=crypto,
                         dispatcher=Dispatcher(svc.queue, pool, svc.broker_url), pool=pool)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        if pool is not None:
            pool.start()
        try:
            yield
        finally:
            if pool is not None:
                pool.stop()

    app = FastAPI(title="Compliance review service", version=__version__, lifespan=lifespan,
                  description="Upload recorded sales calls, follow their analysis, review what was flagged, "
                              "handle agents' appeals, and report. Authenticate with `Authorization: Bearer "
                              "<token>` (API tokens from `compliance users token`, or /api/v1/auth/login).")
    app.state.ctx = ctx

    from .routers import auth, calls, jobs, reports, violations

    for module in (auth, jobs, calls, violations, reports):
        app.include_router(module.router, prefix=API)
    _mount_extensions(app, ctx, extensions)

    @app.get("/healthz", tags=["health"])
    def healthz():
        """Liveness and readiness: the database answers; job counts; embedded workers alive."""
        try:
            with Session(engine) as session:
                session.exec(text("SELECT 1"))
                counts = job_counts(session)
        except OperationalError:
            return JSONResponse({"status": "unavailable", "detail": "the database does not answer"}, 503)
        return {"status": "ok", "queue": svc.queue, "workers": pool.alive() if pool else 0, "jobs": counts}

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError):
        """422 with one readable line in `detail` (and the structured list in `errors`)."""
        errors = jsonable_encoder(exc.errors(), custom_encoder={Exception: str})
        parts = []
        for error in errors[:10]:
            where = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body",)) or "request"
            parts.append(f"{where}: {error.get('msg', 'invalid')}")
        return JSONResponse({"detail": "; ".join(parts), "errors": errors}, status_code=422)

    @app.exception_handler(ComplianceError)
    async def _compliance_error(_request: Request, exc: ComplianceError):
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(DataError)
    async def _bad_value(_request: Request, exc: DataError):
        # e.g. a NUL character or an out-of-range number the database cannot take
        return JSONResponse({"detail": f"a value cannot be stored or searched for: {exc.orig}".splitlines()[0]},
                            status_code=422)

    @app.exception_handler(OverflowError)
    async def _out_of_range(_request: Request, exc: OverflowError):
        # a number or date the database cannot represent (routes should bound their inputs; this is the net)
        return JSONResponse({"detail": f"a value is out of range: {exc}"}, status_code=422)

    @app.exception_handler(OperationalError)
    async def _db_down(_request: Request, exc: OperationalError):
        log.error("database error: %s", exc)
        return JSONResponse({"detail": "the database is unavailable; retry shortly"}, status_code=503,
                            headers={"Retry-After": "5"})

    from .middleware import BodyLimit, Timeout

    # Multipart framing adds a little to the files themselves.
    app.add_middleware(BodyLimit, max_bytes=svc.max_upload_bytes + 1024 * 1024)
    app.add_middleware(Timeout, seconds=svc.request_timeout_s, upload_seconds=svc.upload_timeout_s,
                       upload_prefix=f"{API}/uploads")
    return app


#: optional parts that plug into the app (web pages, live streams): each has `mount(app, ctx)`
EXTENSIONS = ("compliance.web", "compliance.live")


def _mount_extensions(app: FastAPI, ctx: ServiceContext, names: tuple[str, ...] | None = None) -> None:
    """`names` default: $COMPLIANCE_EXTENSIONS (comma-separated; empty for the bare API), else EXTENSIONS."""
    import importlib
    import os

    if names is None:
        env = os.environ.get("COMPLIANCE_EXTENSIONS")
        names = EXTENSIONS if env is None else tuple(n.strip() for n in env.split(",") if n.strip())
    for name in names:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        module.mount(app, ctx)
