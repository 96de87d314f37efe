"""Alembic migrations for every table (analysis + review service).

`upgrade(engine)` brings a database to the newest revision; `compliance.store.make_engine` calls it,
so opening a database is enough. From a shell: `alembic upgrade head` in the repository root
(alembic.ini; the URL comes from -x url=..., $COMPLIANCE_DB_URL or the settings)."""

from __future__ import annotations

import contextlib
import fcntl
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Engine

HERE = Path(__file__).resolve().parent
#: the revision that matches the tables `create_all` made before migrations existed
BASELINE = "0001"
_PG_LOCK_KEY = 727_1001


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate `engine`'s database to `revision`, one process at a time (a PostgreSQL advisory
    lock, or a lock file beside a SQLite database), in one transaction where the database allows."""
    cfg = alembic_config()
    head = head_revision() if revision == "head" else revision
    with _file_lock(engine), engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_LOCK_KEY})")
        current = MigrationContext.configure(conn).get_current_revision()
        if current == head:
            return
        cfg.attributes["connection"] = conn
        if current is None and inspect(conn).has_table("call"):
            # A database made by create_all before migrations existed: it is the baseline schema.
            command.stamp(cfg, BASELINE)
        command.upgrade(cfg, revision)


def downgrade(engine: Engine, revision: str) -> None:
    cfg = alembic_config()
    with _file_lock(engine), engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


@contextlib.contextmanager
def _file_lock(engine: Engine):
    url = engine.url
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        yield
        return
    lock_path = Path(url.database).with_name(Path(url.database).name + ".migrate.lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
