"""The review workflow on a flagged violation.

    open ──confirm──> confirmed ──(agent) acknowledge──> acknowledged
      │                   └──────(agent) dispute──────> disputed ──(officer) uphold──> appeal_upheld
      ├──dismiss (note)─> dismissed                          └───(officer) overturn─> appeal_granted
      └──escalate──> escalated ──confirm / dismiss──> ...

Each step is one conditional UPDATE (so two reviewers cannot both act on the same state) plus its
audit entry, in one transaction."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import update
from sqlmodel import Session

from ..store import CallRecord, ViolationRecord
from . import audit
from .models import User, utcnow

OPEN, CONFIRMED, DISMISSED, ESCALATED = "open", "confirmed", "dismissed", "escalated"
ACKNOWLEDGED, DISPUTED, APPEAL_UPHELD, APPEAL_GRANTED = "acknowledged", "disputed", "appeal_upheld", "appeal_granted"
STATUSES = (OPEN, CONFIRMED, DISMISSED, ESCALATED, ACKNOWLEDGED, DISPUTED, APPEAL_UPHELD, APPEAL_GRANTED)
#: a reviewer judged the flag right / wrong (for per-rule precision)
TRUE_POSITIVE = (CONFIRMED, ACKNOWLEDGED, DISPUTED, APPEAL_UPHELD)
FALSE_POSITIVE = (DISMISSED, APPEAL_GRANTED)

#: action -> (allowed from, to, note required)
REVIEW = {"confirm": ((OPEN, ESCALATED), CONFIRMED, False),
          "dismiss": ((OPEN, ESCALATED), DISMISSED, True),
          "escalate": ((OPEN,), ESCALATED, False)}
APPEAL = {"acknowledge": ((CONFIRMED,), ACKNOWLEDGED, False),
          "dispute": ((CONFIRMED,), DISPUTED, True)}
DECISION = {"uphold": ((DISPUTED,), APPEAL_UPHELD, True),
            "overturn": ((DISPUTED,), APPEAL_GRANTED, True)}


@dataclass
class ReviewError(Exception):
    status_code: int
    detail: str

    def __str__(self) -> str:
        return self.detail


def transition(session: Session, violation: ViolationRecord, call: CallRecord, actor: User, table: dict,
               action: str, note: str | None, kind: str) -> ViolationRecord:
    if action not in table:
        raise ReviewError(422, f"unknown action {action!r}: use one of {', '.join(table)}")
    allowed, target, needs_note = table[action]
    note = (note or "").strip() or None
    if needs_note and not note:
        raise ReviewError(422, f"{action} needs a note saying why")
    before = violation.status
    if before not in allowed:
        raise ReviewError(409, f"violation {violation.id} is '{before}'; {action} needs "
                               f"{' or '.join(repr(a) for a in allowed)}")
    now = utcnow()
    result = session.exec(update(ViolationRecord).where(ViolationRecord.id == violation.id,
                                                        ViolationRecord.status == before)
                          .values(status=target, updated_at=now))
    if result.rowcount != 1:
        session.rollback()
        raise ReviewError(409, f"violation {violation.id} was changed by someone else; reload and retry")
    audit.record(session, actor, f"{kind}.{action}", "violation", violation.id, call_id=call.id,
                 before={"status": before}, after={"status": target}, note=note)
    session.commit()
    session.refresh(violation)
    return violation
