"""Counts of violations by rule, category, agent or day, and per-rule precision from reviewers'
decisions (confirmed / reviewed), so rule authors can see which rules cry wolf."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, select

from ..store import CallRecord, ViolationRecord
from .review import FALSE_POSITIVE, OPEN, TRUE_POSITIVE
from .schemas import CountRow, PrecisionRow

GROUPS = ("rule", "category", "agent", "day", "severity", "product")


def _rows(session: Session, date_from: datetime | None, date_to: datetime | None):
    when = func.coalesce(CallRecord.call_time, CallRecord.created_at)
    query = (select(ViolationRecord.rule_id, ViolationRecord.title, ViolationRecord.category,
                    ViolationRecord.severity, ViolationRecord.status, CallRecord.agent_id, CallRecord.product, when)
             .join(CallRecord, CallRecord.id == ViolationRecord.call_id))
    if date_from is not None:
        query = query.where(when >= date_from)
    if date_to is not None:
        query = query.where(when <= date_to)
    return session.exec(query).all()


def counts(session: Session, by: str, date_from=None, date_to=None) -> list[CountRow]:
    index = {"rule": 0, "category": 2, "severity": 3, "agent": 5, "product": 6}
    tally: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for row in _rows(session, date_from, date_to):
        if by == "day":
            when = row[7]
            key = when.date().isoformat() if hasattr(when, "date") else str(when)[:10]
        else:
            key = row[index[by]] or "(none)"
        t = tally[key]
        t[0] += 1
        status = row[4]
        t[1] += status == OPEN
        t[2] += status in TRUE_POSITIVE
        t[3] += status in FALSE_POSITIVE
    return [CountRow(key=k, total=t[0], open=t[1], confirmed=t[2], dismissed=t[3])
            for k, t in sorted(tally.items())]


def precision(session: Session, date_from=None, date_to=None) -> list[PrecisionRow]:
    tally: dict[str, list] = defaultdict(lambda: ["", 0, 0, 0])
    for row in _rows(session, date_from, date_to):
        t = tally[row[0]]
        t[0] = row[1]
        t[1] += 1
        t[2] += row[4] in TRUE_POSITIVE
        t[3] += row[4] in FALSE_POSITIVE
    out = []
    for rule_id, (title, flagged, confirmed, dismissed) in sorted(tally.items()):
        reviewed = confirmed + dismissed
        out.append(PrecisionRow(rule_id=rule_id, title=title, flagged=flagged, reviewed=reviewed,
                                confirmed=confirmed, dismissed=dismissed,
                                precision=round(confirmed / reviewed, 4) if reviewed else None))
    return out


def to_csv(rows) -> str:
    buffer = io.StringIO()
    if rows:
        fields = list(type(rows[0]).model_fields)
        writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if v is None else v) for k, v in row.model_dump().items()})
    return buffer.getvalue()
