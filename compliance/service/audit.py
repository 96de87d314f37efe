"""The append-only audit log: who did what, when, to which record, with the state before and after.

Entries are only ever inserted (in the same transaction as the change they describe); the database
refuses UPDATE and DELETE on the table, and the API has no route that changes one."""

from __future__ import annotations

from sqlmodel import Session

from .models import AuditLog, User


def record(session: Session, actor: User | None, action: str, entity_type: str, entity_id, *,
           call_id: int | None = None, before: dict | None = None, after: dict | None = None,
           note: str | None = None) -> AuditLog:
    entry = AuditLog(actor_id=actor.id if actor else None, actor=actor.username if actor else "system",
                     actor_role=actor.role if actor else "", action=action, entity_type=entity_type,
                     entity_id=str(entity_id), call_id=call_id, before=before, after=after, note=note)
    session.add(entry)
    return entry
