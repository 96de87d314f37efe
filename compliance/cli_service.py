"""`compliance serve`, `compliance worker [--celery]` and `compliance users ...`: the review service's
commands, added to the main CLI by `register(app)`."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from typing import Optional

import typer

users_app = typer.Typer(help="Users of the review service and their API tokens.", no_args_is_help=True)


def _logging(level: str) -> None:
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def serve(host: str = typer.Option("127.0.0.1", help="Address to listen on (0.0.0.0 in a container)."),
          port: int = typer.Option(8000, help="Port."),
          workers: Optional[int] = typer.Option(None, "--workers", "-w",
                                                help="Embedded analysis workers (default $COMPLIANCE_WORKERS or 1)."),
          queue: Optional[str] = typer.Option(None, help="embedded (default), celery (send jobs to Redis), or none."),
          db: Optional[str] = typer.Option(None, "--db", help="SQLAlchemy URL of the database."),
          log_level: str = typer.Option("info", help="debug, info, warning, error.")) -> None:
    """Run the API (docs at /docs) and, by default, a pool of analysis workers, in one process.
    Jobs live in the database: a restart resumes queued and interrupted jobs."""
    import uvicorn

    from .config import load_settings
    from .service import create_app
    from .service.settings import load_service_settings

    _logging(log_level)
    settings = load_settings(db_url=db)
    svc = load_service_settings(workers=workers, queue=queue)
    app = create_app(settings, svc)
    uvicorn.run(app, host=host, port=port, log_level=log_level, timeout_keep_alive=30,
                timeout_graceful_shutdown=30)


def worker(celery: bool = typer.Option(False, "--celery", help="Run as a Celery worker on the Redis broker "
                                                                 "($COMPLIANCE_BROKER_URL)."),
           concurrency: int = typer.Option(1, "--concurrency", "-c", help="Jobs at a time (each loads the models)."),
           db: Optional[str] = typer.Option(None, "--db", help="SQLAlchemy URL of the database."),
           log_level: str = typer.Option("info")) -> None:
    """Process queued jobs without serving the API (scale-out). Without --celery it polls the
    database like the workers inside `compliance serve`."""
    import os

    from .config import load_settings

    _logging(log_level)
    if db:
        os.environ["COMPLIANCE_DB_URL"] = db
    settings = load_settings(db_url=db)
    if celery:
        _celery_worker(settings, concurrency, log_level)
        return
    from .service.runtime import build_job_context
    from .service.settings import load_service_settings
    from .service.worker import WorkerPool

    svc = load_service_settings()
    pool = WorkerPool(lambda: build_job_context(settings, svc), concurrency)
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    pool.start()
    typer.echo(f"worker: {concurrency} thread(s) on {settings.db_url.split('@')[-1]}", err=True)
    done.wait()
    pool.stop()


def _celery_worker(settings, concurrency: int, log_level: str) -> None:
    import os

    from . import store
    from .service import tasks

    engine = store.make_engine(settings.db_url)  # migrate before the first task

    def resend() -> None:
        try:
            n = tasks.resend_pending(engine)
            logging.getLogger("compliance.service.tasks").info("re-sent %d pending job(s)", n)
        except Exception:
            logging.getLogger("compliance.service.tasks").exception("could not re-send pending jobs")

    threading.Timer(2.0, resend).start()
    pool = "solo" if concurrency == 1 else "prefork"
    os.environ["COMPLIANCE_CELERY_POOL"] = pool
    tasks.app.worker_main(["worker", f"--loglevel={log_level.upper()}", f"--concurrency={concurrency}",
                           f"--pool={pool}", "-Q", "compliance", "--without-gossip", "--without-mingle"])


@users_app.command("create")
def users_create(username: str = typer.Argument(...),
                 role: str = typer.Option(..., "--role", help="admin, officer, qa or agent."),
                 agent_id: Optional[str] = typer.Option(None, "--agent-id", help="Agents: the id their calls carry."),
                 password_stdin: bool = typer.Option(False, "--password-stdin", help="Read a login password from stdin."),
                 token: bool = typer.Option(False, "--token", help="Also issue an API token and print it."),
                 db: Optional[str] = typer.Option(None, "--db")) -> None:
    """Create a user (and optionally print an API token for it)."""
    from sqlmodel import Session

    from . import store
    from .config import load_settings
    from .service import audit
    from .service.auth import create_user, issue_token

    settings = load_settings(db_url=db)
    password = sys.stdin.readline().rstrip("\n") if password_stdin else None
    with Session(store.make_engine(settings.db_url)) as session:
        user = create_user(session, username, role, password=password, agent_id=agent_id)
        audit.record(session, None, "user.create", "user", user.id,
                     after={"username": user.username, "role": user.role, "agent_id": user.agent_id}, note="cli")
        session.commit()
        typer.echo(f"created {user.role} {user.username} (id {user.id})", err=True)
        if token:
            plain, _ = issue_token(session, user, name="cli")
            typer.echo(plain)


@users_app.command("token")
def users_token(username: str = typer.Argument(...), name: str = typer.Option("cli", "--name"),
                db: Optional[str] = typer.Option(None, "--db")) -> None:
    """Issue a new API token for a user and print it (it is shown only this once)."""
    from sqlmodel import Session, select

    from . import store
    from .config import load_settings
    from .errors import ComplianceError
    from .service import audit
    from .service.auth import issue_token
    from .service.models import User

    settings = load_settings(db_url=db)
    with Session(store.make_engine(settings.db_url)) as session:
        user = session.exec(select(User).where(User.username == username)).first()
        if user is None:
            raise ComplianceError(f"no user {username!r}")
        plain, record = issue_token(session, user, name=name)
        audit.record(session, None, "token.issue", "user", user.id, after={"token_id": record.id, "name": name},
                     note="cli")
        session.commit()
        typer.echo(plain)


@users_app.command("list")
def users_list(db: Optional[str] = typer.Option(None, "--db")) -> None:
    """List users and roles."""
    from sqlmodel import Session, select

    from . import store
    from .config import load_settings
    from .service.models import User

    settings = load_settings(db_url=db)
    with Session(store.make_engine(settings.db_url)) as session:
        for user in session.exec(select(User).order_by(User.id)).all():
            typer.echo(f"{user.id}\t{user.username}\t{user.role}\t{user.agent_id or '-'}\t"
                       f"{'active' if user.active else 'disabled'}")


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.command("worker")(worker)
    app.add_typer(users_app, name="users")
