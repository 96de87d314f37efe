"""The review queue and the review, appeal and decision actions."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from sqlalchemy import case, func
from sqlmodel import Session, select

from ...store import CallRecord, ViolationRecord
from ..convert import violation_out
from ..deps import RowId, as_utc, call_for, current_user, get_session, require
from ..models import User
from ..review import APPEAL, DECISION, REVIEW, ReviewError, transition
from ..schemas import AppealIn, DecisionIn, Page, ReviewIn, ViolationOut

router = APIRouter(tags=["review"])

SEVERITY_ORDER = ("critical", "high", "medium", "low", "info")


def call_when():
    """When a call happened: its call time if the uploader gave one, else when it was stored."""
    return func.coalesce(CallRecord.call_time, CallRecord.created_at)


def filter_queue(query, *, status=None, rule_id=None, category=None, severity=None, agent_id=None,
                 product=None, date_from=None, date_to=None):
    """The review queue's filters on a query over violation joined with call."""
    when = call_when()
    for column, value in ((ViolationRecord.status, status), (ViolationRecord.rule_id, rule_id),
                          (ViolationRecord.category, category), (ViolationRecord.severity, severity),
                          (CallRecord.agent_id, agent_id), (CallRecord.product, product)):
        if value:
            query = query.where(column == value)
    if date_from:
        query = query.where(when >= as_utc(date_from))
    if date_to:
        query = query.where(when <= as_utc(date_to))
    return query


def severity_rank():
    return case({s: i for i, s in enumerate(SEVERITY_ORDER)}, value=ViolationRecord.severity,
                else_=len(SEVERITY_ORDER))


@router.get("/violations", response_model=Page[ViolationOut])
def review_queue(status: Literal["open", "confirmed", "dismissed", "escalated", "acknowledged", "disputed",
                                 "appeal_upheld", "appeal_granted"] | None = None, rule_id: str | None = Query(None, max_length=200),
                 category: str | None = Query(None, max_length=200), severity: str | None = Query(None, max_length=32),
                 agent_id: str | None = Query(None, max_length=128), product: str | None = Query(None, max_length=256),
                 date_from: datetime | None = None, date_to: datetime | None = None,
                 page: int = Query(1, ge=1, le=100000), page_size: int = Query(50, ge=1, le=500),
                 _: User = Depends(require("officer", "qa", what="read the review queue")),
                 session: Session = Depends(get_session)):
    """Flagged violations, most severe first, then oldest call first (then position in the call)."""
    when = call_when()
    query = filter_queue(select(ViolationRecord, CallRecord).join(CallRecord, CallRecord.id == ViolationRecord.call_id),
                         status=status, rule_id=rule_id, category=category, severity=severity,
                         agent_id=agent_id, product=product, date_from=date_from, date_to=date_to)
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = session.exec(query.order_by(severity_rank(), when, CallRecord.id, ViolationRecord.start,
                                       ViolationRecord.id).offset((page - 1) * page_size).limit(page_size)).all()
    return Page[ViolationOut](items=[violation_out(v, c) for v, c in rows], total=total, page=page,
                              page_size=page_size)


def _load(session: Session, user: User, violation_id: RowId) -> tuple[ViolationRecord, CallRecord]:
    violation = session.get(ViolationRecord, violation_id)
    if violation is None:
        raise HTTPException(404, f"no violation {violation_id}")
    return violation, call_for(session, user, violation.call_id)


@router.get("/violations/{violation_id}", response_model=ViolationOut)
def get_violation(violation_id: RowId, user: User = Depends(current_user), session: Session = Depends(get_session)):
    violation, call = _load(session, user, violation_id)
    return violation_out(violation, call)


def _apply(session, user, violation_id, table, action, note, kind):
    violation, call = _load(session, user, violation_id)
    try:
        return violation_out(transition(session, violation, call, user, table, action, note, kind), call)
    except ReviewError as exc:
        raise HTTPException(exc.status_code, exc.detail) from None


@router.post("/violations/{violation_id}/review", response_model=ViolationOut,
             responses={409: {"description": "not in a state this action applies to"}})
def review(violation_id: RowId, body: ReviewIn, user: User = Depends(require("officer", what="review violations")),
           session: Session = Depends(get_session)):
    """Confirm, dismiss as a false positive (a note is required), or escalate."""
    return _apply(session, user, violation_id, REVIEW, body.action, body.note, "review")


@router.post("/violations/{violation_id}/appeal", response_model=ViolationOut,
             responses={409: {"description": "only a confirmed violation can be appealed"}})
def appeal(violation_id: RowId, body: AppealIn, user: User = Depends(require("agent", what="appeal violations")),
           session: Session = Depends(get_session)):
    """The agent acknowledges a confirmed violation, or disputes it (with a note)."""
    if user.role != "agent":
        raise HTTPException(403, "only the agent on the call may acknowledge or dispute")
    return _apply(session, user, violation_id, APPEAL, body.action, body.note, "appeal")


@router.post("/violations/{violation_id}/decision", response_model=ViolationOut,
             responses={409: {"description": "only a disputed violation can be decided"}})
def decide(violation_id: RowId, body: DecisionIn, user: User = Depends(require("officer", what="decide appeals")),
           session: Session = Depends(get_session)):
    """An officer decides a dispute: uphold the violation, or overturn it."""
    return _apply(session, user, violation_id, DECISION, body.decision, body.note, "appeal")
