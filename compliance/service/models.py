"""The review service's tables, beside the analysis tables in compliance.store.

Times are timezone-aware UTC (SQLModel stores them as UTC on SQLite and PostgreSQL)."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

from sqlalchemy import JSON, Column, Text
from sqlmodel import Field, SQLModel

ROLES = ("admin", "officer", "qa", "agent")

JOB_QUEUED, JOB_RUNNING, JOB_DONE, JOB_FAILED = "queued", "running", "done", "failed"
JOB_STATES = (JOB_QUEUED, JOB_RUNNING, JOB_DONE, JOB_FAILED)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def new_id() -> str:
    return uuid.uuid4().hex


class User(SQLModel, table=True):
    __tablename__ = "app_user"
    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(index=True, unique=True, max_length=128)
    role: str = Field(max_length=16)
    #: for role 'agent': the agent id their calls are uploaded with
    agent_id: str | None = Field(default=None, index=True, max_length=128)
    display_name: str = Field(default="", max_length=256)
    password_hash: str | None = Field(default=None, max_length=512)
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow)


class ApiToken(SQLModel, table=True):
    """A bearer token. Only its sha256 is stored; the token itself is shown once when issued."""

    __tablename__ = "api_token"
    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="app_user.id", index=True, ondelete="CASCADE")
    token_hash: str = Field(index=True, unique=True, max_length=64)
    name: str = Field(default="", max_length=128)
    #: 'api' (long-lived, issued by an admin) or 'session' (from /auth/login, expires)
    kind: str = Field(default="api", max_length=16)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None


class Blob(SQLModel, table=True):
    """An uploaded recording, stored once per content hash under <data_dir>/blobs."""

    __tablename__ = "blob"
    sha256: str = Field(primary_key=True, max_length=64)
    size: int
    content_type: str = Field(default="application/octet-stream", max_length=128)
    format: str = Field(default="", max_length=64)
    duration: float | None = None
    channels: int | None = None
    created_at: datetime = Field(default_factory=utcnow)


class Batch(SQLModel, table=True):
    __tablename__ = "batch"
    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    name: str = Field(default="", max_length=256)
    created_by: int | None = Field(default=None, foreign_key="app_user.id", ondelete="SET NULL")
    created_at: datetime = Field(default_factory=utcnow)


class Job(SQLModel, table=True):
    """One uploaded call to analyse. Workers claim it by lease; a lapsed lease puts it back."""

    __tablename__ = "job"
    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    batch_id: str | None = Field(default=None, foreign_key="batch.id", index=True, ondelete="CASCADE", max_length=32)
    status: str = Field(default=JOB_QUEUED, index=True, max_length=16)
    progress: float = 0.0
    stage: str = Field(default="", max_length=128)
    error: str | None = Field(default=None, sa_column=Column(Text))
    blob_sha256: str = Field(foreign_key="blob.sha256", index=True, max_length=64)
    filename: str = Field(max_length=255)
    agent_id: str | None = Field(default=None, max_length=128)
    #: encrypted (compliance.service.crypto)
    customer_id: str | None = Field(default=None, max_length=512)
    product: str | None = Field(default=None, max_length=256)
    campaign: str | None = Field(default=None, max_length=256)
    call_time: datetime | None = None
    agent_channel: int | None = None
    language: str | None = Field(default="zh", max_length=16)
    call_id: int | None = Field(default=None, foreign_key="call.id", index=True, ondelete="SET NULL")
    attempts: int = 0
    lease_owner: str | None = Field(default=None, max_length=200)
    lease_expires_at: datetime | None = Field(default=None, index=True)
    created_by: int | None = Field(default=None, foreign_key="app_user.id", ondelete="SET NULL")
    created_at: datetime = Field(default_factory=utcnow, index=True)
    started_at: datetime | None = None
    finished_at: datetime | None = None


class AuditLog(SQLModel, table=True):
    """Append-only: the database refuses UPDATE and DELETE on this table (triggers, see the
    migrations), and no API route writes to it except by inserting."""

    __tablename__ = "audit_log"
    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, index=True)
    actor_id: int | None = None
    actor: str = Field(default="", max_length=128)
    actor_role: str = Field(default="", max_length=16)
    action: str = Field(max_length=64)
    entity_type: str = Field(max_length=32)
    entity_id: str = Field(index=True, max_length=64)
    call_id: int | None = Field(default=None, index=True)
    before: dict | None = Field(default=None, sa_column=Column(JSON))
    after: dict | None = Field(default=None, sa_column=Column(JSON))
    note: str | None = Field(default=None, sa_column=Column(Text))


class CallSecret(SQLModel, table=True):
    """The unmasked transcript of a call, encrypted with the service key; admins only."""

    __tablename__ = "call_secret"
    call_id: int = Field(foreign_key="call.id", primary_key=True, ondelete="CASCADE")
    ciphertext: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
