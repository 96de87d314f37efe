"""Database records -> API bodies."""

from __future__ import annotations

from ..store import CallRecord, ViolationRecord
from .crypto import Crypto
from .models import Job, User
from .schemas import CallSummary, JobOut, UserOut, ViolationOut


def user_out(user: User) -> UserOut:
    return UserOut(id=user.id, username=user.username, role=user.role, agent_id=user.agent_id,
                   display_name=user.display_name, active=user.active)


def job_out(job: Job) -> JobOut:
    return JobOut(id=job.id, batch_id=job.batch_id, filename=job.filename, status=job.status,
                  progress=round(100.0 * (job.progress or 0.0), 1), stage=job.stage or "", error=job.error,
                  call_id=job.call_id, attempts=job.attempts, agent_id=job.agent_id, product=job.product,
                  campaign=job.campaign, call_time=job.call_time, created_at=job.created_at,
                  started_at=job.started_at, finished_at=job.finished_at)


def violation_out(v: ViolationRecord, call: CallRecord | None = None) -> ViolationOut:
    return ViolationOut(id=v.id, call_id=v.call_id, rule_id=v.rule_id, title=v.title, category=v.category,
                        severity=v.severity, kind=v.kind, start=v.start, end=v.end, speaker=v.speaker, role=v.role,
                        matched_text=v.matched_text, context=v.context, reason=v.reason, regulation=v.regulation,
                        suggestion=v.suggestion, status=v.status, updated_at=v.updated_at,
                        agent_id=call.agent_id if call else None, product=call.product if call else None,
                        call_time=call.call_time if call else None)


def call_summary(call: CallRecord, crypto: Crypto, violations: int = 0) -> dict:
    return CallSummary(id=call.id, sha256=call.sha256, source_name=call.source_name, duration=call.duration,
                       channels=call.channels, language=call.language, agent_id=call.agent_id,
                       customer_id=crypto.decrypt(call.customer_id), product=call.product, campaign=call.campaign,
                       call_time=call.call_time, created_at=call.created_at, violations=violations).model_dump()
