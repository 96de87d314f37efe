"""Alembic environment. Programmatic runs (compliance.migrations.upgrade) hand over a connection;
the `alembic` command builds one from -x url=..., sqlalchemy.url, $COMPLIANCE_DB_URL or the settings."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool
from sqlmodel import SQLModel

config = context.config


def target_metadata():
    from compliance import store  # noqa: F401  (registers the analysis tables)
    from compliance.live import storage  # noqa: F401  (registers the live-stream tables)
    from compliance.service import models  # noqa: F401  (registers the service tables)

    return SQLModel.metadata


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    if url:
        return url
    if os.environ.get("COMPLIANCE_DB_URL"):
        return os.environ["COMPLIANCE_DB_URL"]
    from compliance.config import load_settings

    return load_settings().db_url


def _configure(**kwargs) -> None:
    context.configure(target_metadata=target_metadata(), compare_type=True, **kwargs)


def run_offline() -> None:
    url = _url()
    _configure(url=url, literal_binds=True, dialect_opts={"paramstyle": "named"},
               render_as_batch=url.startswith("sqlite"))
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(_url(), poolclass=NullPool)
    with engine.connect() as connection:
        _run(connection)


def _run(connection) -> None:
    _configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
