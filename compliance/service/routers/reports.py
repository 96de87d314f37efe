"""Reports (JSON or CSV), agent feedback over a period, and the audit log (read only)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi import Path as PathParam
from fastapi.responses import Response
from sqlalchemy import func
from sqlmodel import Session, select

from .. import reports
from ..deps import OptionalRowId, as_utc, current_user, get_session, require
from ..feedback import agent_feedback
from ..models import AuditLog, User
from ..schemas import AgentFeedback, AuditOut, CountRow, Page, PrecisionRow

router = APIRouter(tags=["reports"])

_CSV = {200: {"content": {"text/csv": {}}, "description": "JSON, or CSV with format=csv"}}


def _reply(rows, fmt: str, name: str):
    if fmt == "csv":
        return Response(reports.to_csv(rows), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})
    return rows


@router.get("/reports/counts", response_model=list[CountRow], responses=_CSV)
def report_counts(by: Literal["rule", "category", "agent", "day", "severity", "product"] = "rule", date_from: datetime | None = None,
                  date_to: datetime | None = None, format: Literal["json", "csv"] = "json",
                  _: User = Depends(require("qa", "officer", what="read reports")),
                  session: Session = Depends(get_session)):
    """Violations counted by rule, category, agent, day, severity or product, with their review state."""
    return _reply(reports.counts(session, by, as_utc(date_from), as_utc(date_to)), format, f"counts-by-{by}")


@router.get("/reports/precision", response_model=list[PrecisionRow], responses=_CSV)
def report_precision(date_from: datetime | None = None, date_to: datetime | None = None,
                     format: Literal["json", "csv"] = "json",
                     _: User = Depends(require("qa", "officer", what="read reports")),
                     session: Session = Depends(get_session)):
    """Per rule: flagged, reviewed, confirmed, dismissed, and precision = confirmed / reviewed."""
    return _reply(reports.precision(session, as_utc(date_from), as_utc(date_to)), format, "rule-precision")


@router.get("/agents/{agent_id}/feedback", response_model=AgentFeedback)
def feedback_for_agent(agent_id: Annotated[str, PathParam(min_length=1, max_length=128)],
                       date_from: datetime | None = None, date_to: datetime | None = None,
                       user: User = Depends(current_user), session: Session = Depends(get_session)):
    """An agent's feedback over a period: per rule how often, the compliant wording, and every call."""
    if user.role == "agent" and user.agent_id != agent_id:
        raise HTTPException(403, "agents may only see their own feedback")
    return agent_feedback(session, agent_id, as_utc(date_from), as_utc(date_to))


@router.get("/audit", response_model=Page[AuditOut])
def audit_log(entity_type: str | None = Query(None, max_length=32), entity_id: str | None = Query(None, max_length=64),
              call_id: OptionalRowId = None, actor: str | None = Query(None, max_length=128),
              action: str | None = Query(None, max_length=64),
              page: int = Query(1, ge=1, le=100000), page_size: int = Query(100, ge=1, le=1000),
              _: User = Depends(require("officer", what="read the audit log")), session: Session = Depends(get_session)):
    """The append-only audit log, oldest first. There is no route that changes or deletes an entry."""
    query = select(AuditLog)
    for column, value in ((AuditLog.entity_type, entity_type), (AuditLog.entity_id, entity_id),
                          (AuditLog.call_id, call_id), (AuditLog.actor, actor), (AuditLog.action, action)):
        if value is not None:
            query = query.where(column == value)
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = session.exec(query.order_by(AuditLog.id).offset((page - 1) * page_size).limit(page_size)).all()
    return Page[AuditOut](items=[AuditOut(**r.model_dump()) for r in rows], total=total, page=page,
                          page_size=page_size)
