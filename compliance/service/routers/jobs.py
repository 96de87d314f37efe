"""Uploading calls (one, several, or a zip) and following their jobs and batches."""

from __future__ import annotations

import json
import zipfile
from datetime import datetime
from pathlib import PurePosixPath
from typing import Literal

from fastapi import APIRouter, Depends, File, Form, HTTPException, Query, UploadFile
from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from ...errors import AudioError
from .. import audit
from ..blobs import StoredBlob, TooLarge, safe_filename
from ..convert import job_out
from ..deps import TextId, ServiceContext, as_utc, get_ctx, get_session, require
from ..jobs import job_counts
from ..models import JOB_DONE, JOB_FAILED, Batch, Blob, Job, User
from ..schemas import BatchOut, JobOut, Page, Rejected, UploadOut

router = APIRouter(tags=["uploads and jobs"])

META_KEYS = ("agent_id", "customer_id", "product", "campaign", "call_time", "agent_channel", "language")


def _parse_time(value, where: str) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        return as_utc(datetime.fromisoformat(str(value).replace("Z", "+00:00")))
    except ValueError:
        raise HTTPException(422, f"{where}: call_time {value!r} is not an ISO 8601 date-time") from None


def _meta(base: dict, override: dict, where: str) -> dict:
    meta = dict(base)
    for key, value in override.items():
        if key not in META_KEYS:
            raise HTTPException(422, f"metadata for {where}: unknown field {key!r} (use {', '.join(META_KEYS)})")
        meta[key] = value
    meta["call_time"] = _parse_time(meta.get("call_time"), where)
    channel = meta.get("agent_channel")
    if channel not in (None, ""):
        try:
            channel = int(channel)
        except (TypeError, ValueError):
            channel = -1
        if channel not in (0, 1):
            raise HTTPException(422, f"{where}: agent_channel must be 0 or 1")
        meta["agent_channel"] = channel
    else:
        meta["agent_channel"] = None
    for key in ("agent_id", "customer_id", "product", "campaign"):
        value = meta.get(key)
        meta[key] = str(value).strip()[:128 if key == "agent_id" else 256] if value not in (None, "") else None
    language = meta.get("language") or "zh"
    if language == "auto":
        language = None
    elif not (isinstance(language, str) and language.isalpha() and len(language) <= 8):
        raise HTTPException(422, f"{where}: language must be a code like zh or en, or auto")
    meta["language"] = language
    return meta


def _store_blob(ctx: ServiceContext, blob: StoredBlob) -> None:
    with Session(ctx.engine) as session:
        if session.get(Blob, blob.sha256) is not None:
            return
        session.add(Blob(sha256=blob.sha256, size=blob.size, content_type=blob.content_type, format=blob.format,
                         duration=blob.duration, channels=blob.channels))
        try:
            session.commit()
        except IntegrityError:  # the same recording arrived at the same moment in another request
            session.rollback()


def _accept(ctx: ServiceContext, source, name: str, stored: list, rejected: list) -> None:
    """Spool, hash, validate and store one file (a zip: each of its members)."""
    cap = ctx.svc.max_upload_bytes
    try:
        tmp, sha, _size = ctx.blobs.spool(source, cap)
    except TooLarge as exc:
        raise HTTPException(413, f"{name}: {exc}") from None
    if zipfile.is_zipfile(tmp):
        try:
            _accept_zip(ctx, tmp, name, stored, rejected)
        finally:
            ctx.blobs.discard(tmp)
        return
    try:
        blob = ctx.blobs.commit(tmp, sha, name)
    except AudioError as exc:
        rejected.append(Rejected(filename=name, reason=str(exc)))
        return
    _store_blob(ctx, blob)
    stored.append((name, blob))


def _accept_zip(ctx: ServiceContext, path, name: str, stored: list, rejected: list) -> None:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        rejected.append(Rejected(filename=name, reason=f"{name}: not a readable zip ({exc})"))
        return
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir() and not _junk(m.filename)]
        if len(members) > ctx.svc.max_zip_members:
            raise HTTPException(413, f"{name}: {len(members)} files; at most {ctx.svc.max_zip_members} per zip")
        declared = sum(m.file_size for m in members)
        if declared > ctx.svc.max_zip_bytes:
            raise HTTPException(413, f"{name}: {declared / 1e6:.0f} MB uncompressed is over the "
                                     f"{ctx.svc.max_zip_bytes / 1e6:.0f} MB limit")
        for member in members:
            member_name = safe_filename(member.filename)
            try:
                with archive.open(member) as source:
                    _accept(ctx, source, member_name, stored, rejected)
            except HTTPException:
                raise
            except (RuntimeError, zipfile.BadZipFile, NotImplementedError, OSError, EOFError) as exc:
                # encrypted, unsupported compression, or a damaged member
                rejected.append(Rejected(filename=member_name, reason=f"{member_name}: cannot be extracted ({exc})"))


def _junk(path: str) -> bool:
    parts = PurePosixPath(path.replace("\\", "/")).parts
    return any((p.startswith(".") and p not in (".", "..")) or p == "__MACOSX" for p in parts)


@router.post("/uploads", response_model=UploadOut, status_code=201,
             responses={413: {"description": "over the size limit"}, 422: {"description": "nothing usable"}})
def upload(files: list[UploadFile] = File(..., description="audio files, or zips of them"),
           agent_id: str | None = Form(None, max_length=128), customer_id: str | None = Form(None, max_length=256),
           product: str | None = Form(None, max_length=256), campaign: str | None = Form(None, max_length=256),
           call_time: str | None = Form(None, description="ISO 8601; UTC if no offset", max_length=64),
           agent_channel: int | None = Form(None, description="dual-channel files: the agent's channel, 0 or 1"),
           language: str = Form("zh", max_length=8, description="zh, en, ... or auto"),
           batch_name: str = Form("", max_length=256),
           metadata: str | None = Form(None, description='per-file overrides as JSON: {"name.wav": {"agent_id": ...}}'),
           user: User = Depends(require("qa", what="upload calls")), ctx: ServiceContext = Depends(get_ctx)):
    """Store each recording (content-addressed, once per sha256) and queue one job per call. The
    files are on disk and the jobs in the database before this returns."""
    try:
        per_file = json.loads(metadata) if metadata else {}
    except json.JSONDecodeError as exc:
        raise HTTPException(422, f"metadata is not valid JSON ({exc.msg})") from None
    if not isinstance(per_file, dict) or not all(isinstance(v, dict) for v in per_file.values()):
        raise HTTPException(422, 'metadata must map a file name to an object: {"a.wav": {"agent_id": "A1"}}')
    base = _meta({"agent_id": agent_id, "customer_id": customer_id, "product": product, "campaign": campaign,
                  "call_time": call_time, "agent_channel": agent_channel, "language": language}, {}, "upload")
    stored: list[tuple[str, StoredBlob]] = []
    rejected: list[Rejected] = []
    for upload_file in files:
        _accept(ctx, upload_file.file, safe_filename(upload_file.filename), stored, rejected)
    if not stored:
        raise HTTPException(422, "no usable audio: " + "; ".join(r.reason for r in rejected) if rejected
                            else "no files")
    with Session(ctx.engine) as session:
        batch = Batch(name=batch_name.strip()[:256], created_by=user.id)
        session.add(batch)
        session.flush()
        jobs = []
        for name, blob in stored:
            meta = _meta(base, per_file.get(name, {}), name)
            job = Job(batch_id=batch.id, blob_sha256=blob.sha256, filename=name, created_by=user.id,
                      agent_id=meta["agent_id"], customer_id=ctx.crypto.encrypt(meta["customer_id"]),
                      product=meta["product"], campaign=meta["campaign"], call_time=meta["call_time"],
                      agent_channel=meta["agent_channel"], language=meta["language"])
            session.add(job)
            jobs.append(job)
        session.flush()
        audit.record(session, user, "batch.upload", "batch", batch.id,
                     after={"jobs": [j.id for j in jobs], "files": [n for n, _ in stored],
                            "rejected": [r.filename for r in rejected]})
        session.commit()
        out = UploadOut(batch_id=batch.id, jobs=[job_out(j) for j in jobs], rejected=rejected)
    ctx.dispatcher.notify([j.id for j in out.jobs])
    return out


@router.get("/jobs/{job_id}", response_model=JobOut)
def get_job(job_id: TextId, _: User = Depends(require("qa", "officer", what="see jobs")),
            session: Session = Depends(get_session)):
    job = session.get(Job, job_id)
    if job is None:
        raise HTTPException(404, f"no job {job_id}")
    return job_out(job)


@router.get("/jobs", response_model=Page[JobOut])
def list_jobs(status: Literal["queued", "running", "done", "failed"] | None = None, batch_id: str | None = None,
              page: int = Query(1, ge=1, le=100000), page_size: int = Query(50, ge=1, le=500),
              _: User = Depends(require("qa", "officer", what="see jobs")), session: Session = Depends(get_session)):
    query = select(Job)
    if status:
        query = query.where(Job.status == status)
    if batch_id:
        query = query.where(Job.batch_id == batch_id)
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = session.exec(query.order_by(Job.created_at.desc(), Job.id).offset((page - 1) * page_size)
                        .limit(page_size)).all()
    return Page[JobOut](items=[job_out(j) for j in rows], total=total, page=page, page_size=page_size)


@router.get("/batches/{batch_id}", response_model=BatchOut)
def get_batch(batch_id: TextId, _: User = Depends(require("qa", "officer", what="see batches")),
              session: Session = Depends(get_session)):
    batch = session.get(Batch, batch_id)
    if batch is None:
        raise HTTPException(404, f"no batch {batch_id}")
    jobs = session.exec(select(Job).where(Job.batch_id == batch_id).order_by(Job.created_at, Job.id)).all()
    counts = job_counts(session, batch_id)
    finished = counts[JOB_DONE] + counts[JOB_FAILED]
    partial = sum(j.progress or 0.0 for j in jobs if j.status == "running")
    progress = 100.0 * (finished + partial) / len(jobs) if jobs else 100.0
    return BatchOut(id=batch.id, name=batch.name, created_at=batch.created_at, total=len(jobs), counts=counts,
                    progress=round(progress, 1), jobs=[job_out(j) for j in jobs])
