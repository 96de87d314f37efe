"""Persistence: calls, speakers, utterances (with their words) and violations, via SQLModel.

SQLite in the data directory by default; any SQLAlchemy URL (PostgreSQL in production) works.
A call is written in one transaction, so a failure never leaves half a call behind, and the
audio's sha256 is unique, so the same recording is never stored twice."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import JSON, Column, UniqueConstraint, event
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, create_engine, delete, select

from .types import CallResult, SpeakerInfo, Utterance, Violation, Word

SCHEMA_VERSION = 1


def _now() -> datetime:
    return datetime.now(timezone.utc)


class CallRecord(SQLModel, table=True):
    __tablename__ = "call"
    id: int | None = Field(default=None, primary_key=True)
    sha256: str = Field(index=True, unique=True, max_length=64)
    source_name: str
    duration: float
    channels: int
    language: str
    models: dict = Field(default_factory=dict, sa_column=Column(JSON))
    created_at: datetime = Field(default_factory=_now)
    # Call metadata from the upload (the review service); empty for calls analysed from the CLI.
    agent_id: str | None = Field(default=None, index=True, max_length=128)
    #: the service stores this encrypted (see compliance.service.crypto)
    customer_id: str | None = Field(default=None, max_length=512)
    product: str | None = Field(default=None, index=True, max_length=256)
    campaign: str | None = Field(default=None, max_length=256)
    call_time: datetime | None = Field(default=None, index=True)


class SpeakerRecord(SQLModel, table=True):
    __tablename__ = "speaker"
    __table_args__ = (UniqueConstraint("call_id", "label"),)
    id: int | None = Field(default=None, primary_key=True)
    call_id: int = Field(foreign_key="call.id", index=True, ondelete="CASCADE")
    label: str
    role: str
    role_confidence: float
    channel: int | None = None
    talk_time: float = 0.0


class UtteranceRecord(SQLModel, table=True):
    __tablename__ = "utterance"
    id: int | None = Field(default=None, primary_key=True)
    call_id: int = Field(foreign_key="call.id", index=True, ondelete="CASCADE")
    idx: int
    speaker: str
    role: str
    start: float
    end: float
    text: str
    channel: int | None = None
    language: str = "zh"
    words: list = Field(default_factory=list, sa_column=Column(JSON))


class ViolationRecord(SQLModel, table=True):
    __tablename__ = "violation"
    #: ids are cited by the audit log and live alerts: SQLite must not hand a deleted id out again
    __table_args__ = {"sqlite_autoincrement": True}
    id: int | None = Field(default=None, primary_key=True)
    call_id: int = Field(foreign_key="call.id", index=True, ondelete="CASCADE")
    utterance_idx: int | None = None
    rule_id: str = Field(index=True)
    title: str
    category: str = Field(index=True)
    severity: str = Field(index=True)
    kind: str
    start: float
    end: float
    speaker: str | None = None
    role: str
    matched_text: str
    context: str
    reason: str
    pack: str = ""
    regulation: str = ""
    suggestion: str = ""
    #: review state (compliance.service.review): open, confirmed, dismissed, escalated, acknowledged,
    #: disputed, appeal_upheld, appeal_granted
    status: str = Field(default="open", index=True, max_length=32)
    updated_at: datetime | None = None


#: metadata columns `save_call(meta=...)` may set on a new call
CALL_META_FIELDS = ("agent_id", "customer_id", "product", "campaign", "call_time")


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if str(path) != ":memory:":
            path.parent.mkdir(parents=True, exist_ok=True)
    sqlite = url.startswith("sqlite")
    in_memory = sqlite and (url in ("sqlite://", "sqlite:///") or ":memory:" in url)
    # A server runs up to 40 request threads plus its workers: room for all of them.
    pool = {} if in_memory else {"pool_size": 10, "max_overflow": 40, "pool_timeout": 60}
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30} if sqlite else {},
                           pool_pre_ping=not sqlite, **pool)
    if sqlite:
        event.listen(engine, "connect", _sqlite_pragmas)
    # The schema is Alembic's (compliance/migrations): bring the database to the newest revision.
    from .migrations import upgrade

    upgrade(engine)
    return engine


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def find_call(session: Session, sha256: str) -> CallRecord | None:
    return session.exec(select(CallRecord).where(CallRecord.sha256 == sha256)).first()


def save_call(session: Session, result: CallResult, *, replace: bool = False,
              meta: dict | None = None, before_commit=None) -> CallRecord:
    """Store a finished analysis atomically; an existing call with the same audio is kept
    (or replaced when `replace`), never duplicated. `meta` sets CALL_META_FIELDS on a new call;
    `before_commit(session, call)` adds more to the same transaction (and may raise to undo it all)."""
    existing = find_call(session, result.sha256)
    if existing is not None and not replace:
        return existing
    meta = {k: v for k, v in (meta or {}).items() if k in CALL_META_FIELDS}
    if existing is not None:  # a replaced call keeps the metadata it was uploaded with
        meta = {k: getattr(existing, k) for k in CALL_META_FIELDS} | {k: v for k, v in meta.items() if v is not None}
    try:
        if existing is not None:
            _delete_children(session, existing.id)
            session.delete(existing)
            session.flush()
        call = CallRecord(sha256=result.sha256, source_name=Path(result.source).name, duration=result.duration,
                          channels=result.channels, language=result.language, models=result.models,
                          **meta)
        session.add(call)
        session.flush()
        for info in result.speakers:
            session.add(SpeakerRecord(call_id=call.id, label=info.speaker, role=info.role,
                                      role_confidence=info.role_confidence, channel=info.channel,
                                      talk_time=info.talk_time))
        for utt in result.utterances:
            session.add(UtteranceRecord(call_id=call.id, idx=utt.index, speaker=utt.speaker, role=utt.role,
                                        start=utt.start, end=utt.end, text=utt.text, channel=utt.channel,
                                        language=utt.language, words=[asdict(w) for w in utt.words]))
        _add_violations(session, call.id, result.violations)
        if before_commit is not None:
            session.flush()
            before_commit(session, call)
        session.commit()
    except Exception:
        session.rollback()
        raise
    session.refresh(call)
    return call


def replace_violations(session: Session, call_id: int, violations: list[Violation]) -> None:
    """Swap a call's violations for a new detection run (e.g. after roles were corrected). A finding
    that is still there (same rule, place and words) keeps its review status."""
    try:
        reviewed = {_finding_key(v): (v.status, v.updated_at) for v in session.exec(
            select(ViolationRecord).where(ViolationRecord.call_id == call_id)).all() if v.status != "open"}
        session.exec(delete(ViolationRecord).where(ViolationRecord.call_id == call_id))
        _add_violations(session, call_id, violations)
        if reviewed:
            session.flush()
            for record in session.exec(select(ViolationRecord).where(ViolationRecord.call_id == call_id)).all():
                if _finding_key(record) in reviewed:
                    record.status, record.updated_at = reviewed[_finding_key(record)]
                    session.add(record)
        session.commit()
    except Exception:
        session.rollback()
        raise


def _finding_key(v) -> tuple:
    return (v.rule_id, v.kind, round(v.start, 2), round(v.end, 2), v.matched_text)


def _add_violations(session: Session, call_id: int, violations: list[Violation]) -> None:
    for v in violations:
        session.add(ViolationRecord(call_id=call_id, utterance_idx=v.utterance_index, rule_id=v.rule_id,
                                    title=v.title, category=v.category, severity=v.severity, kind=v.kind,
                                    start=v.start, end=v.end, speaker=v.speaker, role=v.role,
                                    matched_text=v.matched_text, context=v.context, reason=v.reason,
                                    pack=v.pack, regulation=v.regulation, suggestion=v.suggestion))


def _delete_children(session: Session, call_id: int) -> None:
    for table in (ViolationRecord, UtteranceRecord, SpeakerRecord):
        session.exec(delete(table).where(table.call_id == call_id))


def load_call(session: Session, call: CallRecord) -> CallResult:
    """Rebuild the pipeline's CallResult from the database (for re-detection and output)."""
    speakers = session.exec(select(SpeakerRecord).where(SpeakerRecord.call_id == call.id)).all()
    utts = session.exec(select(UtteranceRecord).where(UtteranceRecord.call_id == call.id)
                        .order_by(UtteranceRecord.idx)).all()
    viols = session.exec(select(ViolationRecord).where(ViolationRecord.call_id == call.id)
                         .order_by(ViolationRecord.start)).all()
    return CallResult(
        source=call.source_name, sha256=call.sha256, duration=call.duration, channels=call.channels,
        language=call.language, models=dict(call.models or {}), call_id=call.id, reused=True,
        speakers=[SpeakerInfo(s.label, s.role, s.role_confidence, s.channel, s.talk_time) for s in speakers],
        utterances=[Utterance(speaker=u.speaker, start=u.start, end=u.end, text=u.text, role=u.role,
                              words=[Word(**w) for w in (u.words or [])], channel=u.channel,
                              language=u.language, index=u.idx) for u in utts],
        violations=[Violation(rule_id=v.rule_id, title=v.title, category=v.category, severity=v.severity,
                              start=v.start, end=v.end, speaker=v.speaker, role=v.role,
                              matched_text=v.matched_text, context=v.context, reason=v.reason, kind=v.kind,
                              utterance_index=v.utterance_idx, pack=v.pack, regulation=v.regulation,
                              suggestion=v.suggestion) for v in viols],
    )


def dumps(obj) -> str:
    return json.dumps(obj, ensure_ascii=False)
