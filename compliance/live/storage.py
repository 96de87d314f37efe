"""Durability and bookkeeping of live streams.

* Audio: every received byte is appended to <data_dir>/live/<stream_id>.pcm (exactly as sent,
  fsynced about once a second) beside <stream_id>.json, a sidecar with the start message and the
  owning process. When the stream ends (or the client vanishes, or at the next start after a
  crash), the PCM becomes a WAV blob in the service's blob store and a normal analysis job, so the
  call is re-analysed with the batch models like an upload. An interrupted stream is stored too,
  marked incomplete (`live_stream.complete = false`, job file name `live-<id>-incomplete.wav`).
* Tables `live_stream` and `live_alert` (own metadata, created on mount; not in the Alembic
  schema yet): streams, and each alert raised live, linked after the post-call analysis to the
  stored violation it corresponds to (same rule, overlapping time)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import struct
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import JSON, Column, Text
from sqlmodel import Field, Session, SQLModel, select

from ..types import Violation
from .protocol import StartMessage

log = logging.getLogger("compliance.live.storage")

def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class LiveStreamRecord(SQLModel, table=True):
    __tablename__ = "live_stream"
    id: str = Field(primary_key=True, max_length=32)
    user_id: int | None = None
    agent_id: str | None = Field(default=None, index=True, max_length=128)
    #: encrypted like the job's
    customer_id: str | None = Field(default=None, max_length=512)
    product: str | None = Field(default=None, max_length=256)
    campaign: str | None = Field(default=None, max_length=256)
    call_time: datetime | None = None
    sample_rate: int = 16000
    channels: int = 2
    agent_channel: int | None = None
    language: str | None = Field(default="zh", max_length=16)
    #: live, ended, interrupted (client gone), recovered (server restarted), empty (no audio)
    status: str = Field(default="live", index=True, max_length=16)
    complete: bool = False
    received_s: float = 0.0
    started_at: datetime = Field(default_factory=utcnow, index=True)
    ended_at: datetime | None = None
    job_id: str | None = Field(default=None, max_length=32)
    call_id: int | None = Field(default=None, index=True)
    linked_at: datetime | None = None


class LiveAlertRecord(SQLModel, table=True):
    __tablename__ = "live_alert"
    id: int | None = Field(default=None, primary_key=True)
    stream_id: str = Field(index=True, max_length=32)
    alert_key: str = Field(max_length=256)
    rule_id: str = Field(max_length=128)
    title: str = ""
    category: str = Field(default="", max_length=128)
    severity: str = Field(default="", max_length=32)
    kind: str = Field(default="utterance", max_length=16)
    start: float = 0.0
    end: float = 0.0
    speaker: str | None = None
    role: str = "unknown"
    matched_text: str = Field(default="", sa_column=Column(Text))
    reason: str = Field(default="", sa_column=Column(Text))
    provisional: bool = False
    retracted: bool = False
    #: seconds of call audio received when the alert was raised
    raised_at_s: float = 0.0
    raised_at: datetime = Field(default_factory=utcnow)
    #: after the post-call analysis: the stored violation this alert became (None: not confirmed)
    violation_id: int | None = Field(default=None, index=True)
    extra: dict = Field(default_factory=dict, sa_column=Column(JSON))


def owner_id() -> str:
    from ..service.jobs import worker_owner

    return worker_owner("live")


def _owner_dead(owner: str) -> bool:
    from ..service.jobs import BOOT_ID, _pid_alive

    parts = owner.split(":")
    if len(parts) < 3 or parts[0] != socket.gethostname() or not parts[1].isdigit():
        return False
    pid, boot = int(parts[1]), parts[2]
    if pid == os.getpid():
        return boot != BOOT_ID
    return not _pid_alive(pid)


class Spool:
    """The append-only audio file of one stream."""

    SYNC_EVERY_S = 1.0

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh = open(path, "ab")
        self.bytes = self._fh.tell()
        self._synced = time.monotonic()

    def append(self, data: bytes) -> None:
        self._fh.write(data)
        self.bytes += len(data)

    def due(self) -> bool:
        return time.monotonic() - self._synced >= self.SYNC_EVERY_S

    def sync(self) -> None:
        if self._fh.closed:
            return
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._synced = time.monotonic()

    def close(self) -> None:
        if not self._fh.closed:
            self.sync()
            self._fh.close()


def wav_header(data_bytes: int, sample_rate: int, channels: int) -> bytes:
    block = 2 * channels
    return (b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVE" + b"fmt " +
            struct.pack("<IHHIIHH", 16, 1, channels, sample_rate, sample_rate * block, block, 16) +
            b"data" + struct.pack("<I", data_bytes))


class LiveStore:
    def __init__(self, ctx) -> None:
        self.ctx = ctx
        self.root = Path(ctx.settings.data_dir) / "live"
        self.root.mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------ files
    def paths(self, stream_id: str) -> tuple[Path, Path]:
        return self.root / f"{stream_id}.pcm", self.root / f"{stream_id}.json"

    def open(self, start: StartMessage, user) -> tuple[str, Spool]:
        stream_id = uuid.uuid4().hex
        pcm, side = self.paths(stream_id)
        sidecar = {"stream_id": stream_id, "start": start.to_json(), "user_id": getattr(user, "id", None),
                   "owner": owner_id(), "created": utcnow().isoformat()}
        tmp = side.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(sidecar, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, side)
        spool = Spool(pcm)
        call = start.call
        call_time = None
        if call.get("call_time"):
            call_time = datetime.fromisoformat(call["call_time"].replace("Z", "+00:00"))
            call_time = call_time.replace(tzinfo=timezone.utc) if call_time.tzinfo is None else call_time
        with Session(self.ctx.engine) as session:
            session.add(LiveStreamRecord(
                id=stream_id, user_id=getattr(user, "id", None), agent_id=call.get("agent_id"),
                customer_id=self.ctx.crypto.encrypt(call.get("customer_id")), product=call.get("product"),
                campaign=call.get("campaign"), call_time=call_time, sample_rate=start.sample_rate,
                channels=start.channels, agent_channel=start.agent_channel, language=start.language))
            session.commit()
        return stream_id, spool

    # ------------------------------------------------------------------ end of a stream
    def finish(self, stream_id: str, *, status: str, complete: bool, start: StartMessage | None = None,
               user_id: int | None = None) -> str | None:
        """Turn the spooled audio into a blob and a queued analysis job; returns the job id (None
        when no audio arrived). Safe to call again after a crash half-way (the blob is content-
        addressed, the files go only after the job is committed)."""
        from ..service import audit
        from ..service.blobs import AudioError
        from ..service.models import Blob, Job

        pcm, side = self.paths(stream_id)
        if start is None or user_id is None:
            meta = json.loads(side.read_text(encoding="utf-8"))
            from .protocol import parse_start

            body = dict(meta["start"])
            body.pop("type", None)
            start = start or parse_start(body)
            user_id = user_id if user_id is not None else meta.get("user_id")
        size = pcm.stat().st_size if pcm.exists() else 0
        usable = size - size % start.frame_bytes
        received_s = usable / start.frame_bytes / start.sample_rate
        job_id = None
        with Session(self.ctx.engine) as session:
            rec = session.get(LiveStreamRecord, stream_id)
            if rec is not None and rec.job_id:
                job_id = rec.job_id
        if job_id is None and usable > 0:
            blobs = self.ctx.blobs
            tmp = blobs.tmp / f"{uuid.uuid4().hex}.part"
            digest = hashlib.sha256()
            with open(tmp, "wb") as out, open(pcm, "rb") as src:
                header = wav_header(usable, start.sample_rate, start.channels)
                out.write(header)
                digest.update(header)
                left = usable
                while left > 0:
                    block = src.read(min(1 << 20, left))
                    if not block:
                        break
                    left -= len(block)
                    out.write(block)
                    digest.update(block)
                out.flush()
                os.fsync(out.fileno())
            name = f"live-{stream_id[:12]}{'' if complete else '-incomplete'}.wav"
            try:
                blob = blobs.commit(tmp, digest.hexdigest(), name)
            except AudioError:
                log.exception("live stream %s: the received audio could not be stored", stream_id)
                blob = None
            if blob is not None:
                with Session(self.ctx.engine) as session:
                    if session.get(Blob, blob.sha256) is None:
                        session.add(Blob(sha256=blob.sha256, size=blob.size, content_type=blob.content_type,
                                         format=blob.format, duration=blob.duration, channels=blob.channels))
                        session.flush()
                    rec = session.get(LiveStreamRecord, stream_id)
                    call = start.call
                    call_time = rec.call_time if rec is not None else None
                    job = Job(blob_sha256=blob.sha256, filename=name, created_by=user_id,
                              agent_id=call.get("agent_id"), customer_id=self.ctx.crypto.encrypt(call.get("customer_id")),
                              product=call.get("product"), campaign=call.get("campaign"), call_time=call_time,
                              agent_channel=start.agent_channel if start.channels == 2 else None,
                              language=start.language)
                    session.add(job)
                    session.flush()
                    job_id = job.id
                    if rec is None:  # recovered from files only (its row never committed)
                        rec = LiveStreamRecord(id=stream_id, user_id=user_id, agent_id=call.get("agent_id"),
                                               sample_rate=start.sample_rate, channels=start.channels,
                                               agent_channel=start.agent_channel, language=start.language)
                    rec.job_id = job_id
                    rec.status, rec.complete, rec.received_s = status, complete, round(received_s, 3)
                    rec.ended_at = utcnow()
                    session.add(rec)
                    audit.record(session, None, "live.stored", "live_stream", stream_id,
                                 after={"job": job_id, "complete": complete, "status": status,
                                        "seconds": round(received_s, 3)})
                    session.commit()
                self.ctx.dispatcher.notify([job_id])
        if job_id is None:
            with Session(self.ctx.engine) as session:
                rec = session.get(LiveStreamRecord, stream_id)
                if rec is not None:
                    rec.status = "empty" if usable == 0 else status
                    rec.complete, rec.received_s, rec.ended_at = complete, round(received_s, 3), utcnow()
                    session.add(rec)
                    session.commit()
        pcm.unlink(missing_ok=True)
        side.unlink(missing_ok=True)
        return job_id

    def orphans(self, stale_s: float = 600.0) -> list[str]:
        """Streams whose owner died (this host), or whose files stopped changing long ago."""
        out = []
        for side in sorted(self.root.glob("*.json")):
            try:
                meta = json.loads(side.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            pcm = side.with_suffix(".pcm")
            mtime = max(side.stat().st_mtime, pcm.stat().st_mtime if pcm.exists() else 0)
            if _owner_dead(meta.get("owner", "")) or time.time() - mtime > stale_s:
                out.append(meta["stream_id"])
        return out

    def recover(self) -> list[tuple[str, str | None]]:
        """Store the streams a dead server left behind as incomplete calls."""
        done = []
        for stream_id in self.orphans():
            try:
                done.append((stream_id, self.finish(stream_id, status="recovered", complete=False)))
                log.warning("live stream %s: recovered after a restart (job %s)", stream_id, done[-1][1])
            except Exception:
                log.exception("live stream %s: recovery failed; the files are kept", stream_id)
        return done

    # ------------------------------------------------------------------ alerts
    def save_alert(self, stream_id: str, key: tuple, v: Violation, *, provisional: bool, at_s: float) -> int:
        with Session(self.ctx.engine) as session:
            rec = LiveAlertRecord(stream_id=stream_id, alert_key=json.dumps(key, ensure_ascii=False)[:256],
                                  rule_id=v.rule_id, title=v.title, category=v.category, severity=v.severity,
                                  kind=v.kind, start=v.start, end=v.end, speaker=v.speaker, role=v.role,
                                  matched_text=v.matched_text, reason=v.reason, provisional=provisional,
                                  raised_at_s=round(at_s, 3))
            session.add(rec)
            session.commit()
            return rec.id

    def retract_alert(self, alert_id: int) -> None:
        with Session(self.ctx.engine) as session:
            rec = session.get(LiveAlertRecord, alert_id)
            if rec is not None:
                rec.retracted = True
                session.add(rec)
                session.commit()

    def link(self, stream_id: str, tolerance_s: float = 2.0) -> dict | None:
        """Once the stream's post-call job is done: match each live alert to the stored violation of
        the same rule that overlaps it in time (within `tolerance_s`). Returns the link summary."""
        from ..service.models import JOB_DONE, Job
        from ..store import ViolationRecord

        with Session(self.ctx.engine) as session:
            rec = session.get(LiveStreamRecord, stream_id)
            if rec is None or not rec.job_id:
                return None
            job = session.get(Job, rec.job_id)
            if job is None or job.status != JOB_DONE or job.call_id is None:
                return None
            alerts = session.exec(select(LiveAlertRecord).where(LiveAlertRecord.stream_id == stream_id)
                                  .order_by(LiveAlertRecord.id)).all()
            finals = session.exec(select(ViolationRecord).where(ViolationRecord.call_id == job.call_id)).all()
            if rec.linked_at is None:
                taken: set[int] = set()
                for a in alerts:
                    if a.retracted:
                        continue
                    best, best_d = None, None
                    for f in finals:
                        if f.rule_id != a.rule_id or f.id in taken:
                            continue
                        if f.kind in ("absence", "ordering") and a.kind == f.kind:
                            d = 0.0
                        else:
                            d = max(0.0, max(a.start, f.start) - min(a.end, f.end))
                            if d > tolerance_s:
                                continue
                        if best_d is None or d < best_d:
                            best, best_d = f, d
                    if best is not None:
                        a.violation_id = best.id
                        taken.add(best.id)
                        session.add(a)
                rec.call_id, rec.linked_at = job.call_id, utcnow()
                session.add(rec)
                session.commit()
                for a in alerts:
                    session.refresh(a)
            linked = {a.violation_id for a in alerts if a.violation_id}
            return {"call_id": job.call_id,
                    "confirmed": [a.id for a in alerts if a.violation_id and not a.retracted],
                    "live_only": [a.id for a in alerts if not a.violation_id and not a.retracted],
                    "post_call_only": [f.id for f in finals if f.id not in linked]}
