"""Calls: transcript (speakers, roles, words with times), violations, audio (HTTP Range), feedback,
and the call's audit trail."""

from __future__ import annotations

import json
from datetime import datetime

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import FileResponse
from sqlalchemy import func
from sqlmodel import Session, select

from ...store import CallRecord, SpeakerRecord, UtteranceRecord, ViolationRecord
from .. import audit
from ..convert import call_summary, violation_out
from ..deps import RowId, ServiceContext, as_utc, call_for, current_user, get_ctx, get_session, require
from ..feedback import call_feedback
from ..models import AuditLog, Blob, CallSecret, User
from ..schemas import AuditOut, CallFeedback, CallOut, CallSummary, Page, SpeakerOut, UtteranceOut, ViolationOut, WordOut

router = APIRouter(tags=["calls"])


def _violation_counts(session: Session, ids: list[int]) -> dict[int, int]:
    if not ids:
        return {}
    rows = session.exec(select(ViolationRecord.call_id, func.count()).where(ViolationRecord.call_id.in_(ids))
                        .group_by(ViolationRecord.call_id)).all()
    return dict(rows)


@router.get("/calls", response_model=Page[CallSummary])
def list_calls(agent_id: str | None = Query(None, max_length=128), product: str | None = Query(None, max_length=256),
               date_from: datetime | None = None, date_to: datetime | None = None,
               page: int = Query(1, ge=1, le=100000), page_size: int = Query(50, ge=1, le=500),
               user: User = Depends(current_user), session: Session = Depends(get_session),
               ctx: ServiceContext = Depends(get_ctx)):
    """Calls, newest first. Agents see only their own."""
    if user.role == "agent":
        if agent_id not in (None, user.agent_id):
            raise HTTPException(403, "agents may only see their own calls")
        agent_id = user.agent_id or "\x00none"
    when = func.coalesce(CallRecord.call_time, CallRecord.created_at)
    query = select(CallRecord)
    if agent_id:
        query = query.where(CallRecord.agent_id == agent_id)
    if product:
        query = query.where(CallRecord.product == product)
    if date_from:
        query = query.where(when >= as_utc(date_from))
    if date_to:
        query = query.where(when <= as_utc(date_to))
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    calls = session.exec(query.order_by(when.desc(), CallRecord.id.desc()).offset((page - 1) * page_size)
                         .limit(page_size)).all()
    counts = _violation_counts(session, [c.id for c in calls])
    return Page[CallSummary](items=[call_summary(c, ctx.crypto, counts.get(c.id, 0)) for c in calls], total=total,
                             page=page, page_size=page_size)


@router.get("/calls/{call_id}", response_model=CallOut)
def get_call(call_id: RowId, unmasked: bool = Query(False, description="admins only: the text before PII masking"),
             user: User = Depends(current_user), session: Session = Depends(get_session),
             ctx: ServiceContext = Depends(get_ctx)):
    """The transcript: speakers with roles, utterances with their words and times (PII masked)."""
    call = call_for(session, user, call_id)
    speakers = session.exec(select(SpeakerRecord).where(SpeakerRecord.call_id == call.id)
                            .order_by(SpeakerRecord.label)).all()
    utts = session.exec(select(UtteranceRecord).where(UtteranceRecord.call_id == call.id)
                        .order_by(UtteranceRecord.idx)).all()
    original = None
    if unmasked:
        if user.role != "admin":
            raise HTTPException(403, "only admins may read unmasked transcripts")
        secret = session.get(CallSecret, call.id)
        plain = ctx.crypto.decrypt(secret.ciphertext) if secret else None
        if not plain:
            raise HTTPException(404, "no unmasked transcript is kept for this call")
        original = {u["index"]: u for u in json.loads(plain)["utterances"]}
        audit.record(session, user, "call.read_unmasked", "call", call.id, call_id=call.id)
        session.commit()
    utterances = []
    for u in utts:
        words = [WordOut(text=w["text"], start=w["start"], end=w["end"], probability=w.get("probability", 1.0))
                 for w in (u.words or [])]
        text = u.text
        if original is not None and u.idx in original:
            text = original[u.idx]["text"]
            for w, plain_word in zip(words, original[u.idx]["words"]):
                w.text = plain_word
        utterances.append(UtteranceOut(index=u.idx, speaker=u.speaker, role=u.role, start=u.start, end=u.end,
                                       text=text, channel=u.channel, words=words))
    n = _violation_counts(session, [call.id]).get(call.id, 0)
    return CallOut(**call_summary(call, ctx.crypto, n), masked=original is None,
                   speakers=[SpeakerOut(speaker=s.label, role=s.role, role_confidence=s.role_confidence,
                                        channel=s.channel, talk_time=s.talk_time) for s in speakers],
                   utterances=utterances, audio_url=f"/api/v1/calls/{call.id}/audio")


@router.get("/calls/{call_id}/violations", response_model=list[ViolationOut])
def call_violations(call_id: RowId, user: User = Depends(current_user), session: Session = Depends(get_session)):
    call = call_for(session, user, call_id)
    rows = session.exec(select(ViolationRecord).where(ViolationRecord.call_id == call.id)
                        .order_by(ViolationRecord.start, ViolationRecord.id)).all()
    return [violation_out(v, call) for v in rows]


@router.get("/calls/{call_id}/audio", response_class=FileResponse,
            responses={200: {"content": {"audio/*": {}}}, 206: {"description": "the requested byte range"}})
def call_audio(call_id: RowId, user: User = Depends(current_user), session: Session = Depends(get_session),
               ctx: ServiceContext = Depends(get_ctx)):
    """The recording as uploaded. Supports `Range: bytes=...` (206), so a player can seek."""
    call = call_for(session, user, call_id)
    blob = session.get(Blob, call.sha256)
    path = ctx.blobs.path(call.sha256)
    if blob is None or not path.is_file():
        raise HTTPException(404, "the recording of this call is not stored here (analysed from the CLI?)")
    return FileResponse(path, media_type=blob.content_type, filename=call.source_name,
                        content_disposition_type="inline")


@router.get("/calls/{call_id}/feedback", response_model=CallFeedback)
def feedback(call_id: RowId, user: User = Depends(current_user), session: Session = Depends(get_session)):
    """For the agent: each flagged phrase with its words and second, missing disclosures, and the
    compliant wording. Flags dismissed by a reviewer (or overturned on appeal) are left out."""
    return call_feedback(session, call_for(session, user, call_id))


@router.get("/calls/{call_id}/audit", response_model=list[AuditOut])
def call_audit(call_id: RowId, user: User = Depends(require("officer", "qa", what="read the audit log")),
               session: Session = Depends(get_session)):
    call_for(session, user, call_id)
    rows = session.exec(select(AuditLog).where(AuditLog.call_id == call_id).order_by(AuditLog.id)).all()
    return [AuditOut(**r.model_dump()) for r in rows]
