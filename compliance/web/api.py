"""JSON the pages need beyond the service's API (mounted under /api/v1/web): queue facets and
counts, waveform peaks, the role switch with re-detection, recent batches with per-call results,
and the dashboard aggregates."""

from __future__ import annotations

import statistics
import threading
from collections import OrderedDict, defaultdict
from datetime import date, datetime, timedelta
from typing import Literal

import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, Field
from sqlalchemy import String, cast, func
from sqlmodel import Session, select

from ..errors import AudioError, ComplianceError
from ..store import CallRecord, SpeakerRecord, ViolationRecord
from ..service import audit
from ..service.convert import job_out
from ..service.deps import ServiceContext, as_utc, call_for, current_user, get_ctx, get_session, require
from ..service.jobs import job_counts
from ..service.models import JOB_DONE, JOB_FAILED, AuditLog, Batch, Blob, Job, User
from ..service.review import FALSE_POSITIVE, TRUE_POSITIVE
from ..service.routers.violations import call_when, filter_queue
from ..service.schemas import JobOut

router = APIRouter(tags=["web pages"])

SEVERITIES = ("critical", "high", "medium", "low", "info")
#: states still waiting for someone: a reviewer (open, escalated) or an officer's decision (disputed)
BACKLOG = ("open", "escalated", "disputed")


# --- the review queue's filter values and counts ----------------------------------------------

_values_cache: dict[tuple, dict] = {}


def _filter_values(session: Session) -> dict:
    """The values the queue's filters offer, with how many flags have each. They change only when
    flags are added or removed, so they are kept per (number of flags, highest id)."""
    stamp = tuple(session.exec(select(func.count(), func.max(ViolationRecord.id))).one())
    key = (id(session.get_bind()), *stamp)
    if key in _values_cache:
        return _values_cache[key]
    rules: dict[str, dict] = {}
    for rule, title, n in session.exec(select(ViolationRecord.rule_id, ViolationRecord.title, func.count())
                                       .group_by(ViolationRecord.rule_id, ViolationRecord.title)).all():
        rules.setdefault(rule, {"id": rule, "title": title, "n": 0})["n"] += n
    categories = session.exec(select(ViolationRecord.category, func.count()).group_by(ViolationRecord.category)).all()
    per_call = (select(ViolationRecord.call_id, func.count().label("n")).group_by(ViolationRecord.call_id)
                .subquery())

    def by_call(column):
        rows = session.exec(select(column, func.sum(per_call.c.n)).join(per_call, per_call.c.call_id == CallRecord.id)
                            .where(column.is_not(None)).group_by(column)).all()
        return [{"id": v, "n": int(n)} for v, n in sorted(rows, key=lambda r: r[0])]

    values = {"rules": sorted(rules.values(), key=lambda r: r["id"]),
              "categories": [{"id": c, "n": n} for c, n in sorted(categories)],
              "agents": by_call(CallRecord.agent_id), "products": by_call(CallRecord.product)}
    if len(_values_cache) > 32:
        _values_cache.clear()
    _values_cache[key] = values
    return values


@router.get("/facets")
def queue_facets(status: str | None = Query(None, max_length=32), rule_id: str | None = Query(None, max_length=200),
                 category: str | None = Query(None, max_length=200), severity: str | None = Query(None, max_length=32),
                 agent_id: str | None = Query(None, max_length=128), product: str | None = Query(None, max_length=256),
                 date_from: datetime | None = None, date_to: datetime | None = None,
                 _: User = Depends(require("officer", "qa", what="read the review queue")),
                 session: Session = Depends(get_session)):
    """The values each queue filter offers (with how many flags have them), and for the current
    filters the counts by status and by severity (each ignoring its own filter)."""
    filters = dict(status=status, rule_id=rule_id, category=category, severity=severity, agent_id=agent_id,
                   product=product, date_from=date_from, date_to=date_to)
    needs_call = bool(agent_id or product or date_from or date_to)

    def grouped(column, exclude: str):
        query = select(column, func.count()).select_from(ViolationRecord)
        if needs_call:  # the call's columns are only joined when a filter needs them
            query = query.join(CallRecord, CallRecord.id == ViolationRecord.call_id)
        query = filter_queue(query, **{k: (None if k == exclude else v) for k, v in filters.items()})
        return dict(session.exec(query.group_by(column)).all())

    by_status = grouped(ViolationRecord.status, "status")
    by_severity = grouped(ViolationRecord.severity, "severity")
    total = sum(n for s, n in by_status.items() if not status or s == status)
    return {
        **_filter_values(session),
        "by_status": by_status,
        "by_severity": {s: by_severity.get(s, 0) for s in SEVERITIES} | {
            s: n for s, n in by_severity.items() if s not in SEVERITIES},
        "total": total,
    }


# --- waveform peaks -------------------------------------------------------------------------

_peaks_cache: OrderedDict[tuple[str, int], dict] = OrderedDict()
_peaks_lock = threading.Lock()


def compute_peaks(samples: np.ndarray, sample_rate: int, n: int) -> dict:
    """Per channel, `n` buckets of the largest absolute sample (0..1, 3 decimals)."""
    channels, length = samples.shape
    n = max(1, min(n, length)) if length else 1
    edges = np.linspace(0, length, n + 1).astype(np.int64)
    out = []
    for ch in range(channels):
        x = np.abs(samples[ch])
        if length == 0:
            out.append([0.0])
            continue
        peaks = np.maximum.reduceat(x, edges[:-1]) if length else np.zeros(n)
        out.append([round(float(p), 3) for p in peaks])
    return {"duration": length / sample_rate if sample_rate else 0.0, "buckets": n, "channels": out}


@router.get("/calls/{call_id}/peaks")
def call_peaks(call_id: int, n: int = Query(600, ge=16, le=4000), user: User = Depends(current_user),
               session: Session = Depends(get_session), ctx: ServiceContext = Depends(get_ctx)):
    """The recording's waveform outline for the player, one row per channel."""
    from ..ingest import load_audio

    call = call_for(session, user, call_id)
    key = (call.sha256, n)
    with _peaks_lock:
        if key in _peaks_cache:
            _peaks_cache.move_to_end(key)
            return _peaks_cache[key]
    path = ctx.blobs.path(call.sha256)
    if session.get(Blob, call.sha256) is None or not path.is_file():
        raise HTTPException(404, "the recording of this call is not stored here")
    try:
        audio = load_audio(path, max_duration_s=ctx.settings.max_duration_s,
                           max_file_bytes=ctx.settings.max_file_bytes, sample_rate=8000)
    except AudioError as exc:
        raise HTTPException(422, str(exc)) from None
    peaks = compute_peaks(audio.samples, audio.sample_rate, n)
    with _peaks_lock:
        _peaks_cache[key] = peaks
        while len(_peaks_cache) > 64:
            _peaks_cache.popitem(last=False)
    return peaks


# --- role switch --------------------------------------------------------------------------

class RolesIn(BaseModel):
    #: swap agent and customer; or give the roles explicitly
    swap: bool = False
    roles: dict[str, Literal["agent", "customer", "supervisor", "unknown"]] = Field(default_factory=dict)


_analyzers: dict[int, object] = {}
_analyzer_lock = threading.Lock()


def _detector(ctx: ServiceContext):
    """An Analyzer for re-detection only (rule packs; no ASR model is loaded)."""
    from ..pipeline import Analyzer

    with _analyzer_lock:
        analyzer = _analyzers.get(id(ctx))
        if analyzer is None:
            analyzer = _analyzers[id(ctx)] = Analyzer(ctx.settings, engine=ctx.engine)
        return analyzer


@router.post("/calls/{call_id}/roles")
def switch_roles(call_id: int, body: RolesIn,
                 user: User = Depends(require("officer", "qa", what="correct speaker roles")),
                 session: Session = Depends(get_session), ctx: ServiceContext = Depends(get_ctx)):
    """Correct who is the agent (diarization or the channel layout got it backwards); detection
    re-runs on the corrected roles, so the call's flags are replaced (and their review states with
    them). Audited as call.roles."""
    from ..pipeline import override_roles

    call = call_for(session, user, call_id)
    speakers = session.exec(select(SpeakerRecord).where(SpeakerRecord.call_id == call.id)).all()
    before = {s.label: s.role for s in speakers}
    roles = dict(body.roles)
    if body.swap:
        flip = {"agent": "customer", "customer": "agent"}
        roles = {label: flip[role] for label, role in before.items() if role in flip}
    if not roles:
        raise HTTPException(422, "nothing to change: send swap=true or roles {speaker: role}")
    n_before = session.exec(select(func.count()).select_from(ViolationRecord)
                            .where(ViolationRecord.call_id == call.id)).one()
    try:
        result = override_roles(_detector(ctx), call.id, roles)
    except ComplianceError as exc:
        raise HTTPException(422, str(exc)) from None
    after = {s.speaker: s.role for s in result.speakers}
    audit.record(session, user, "call.roles", "call", call.id, call_id=call.id,
                 before={"roles": before, "violations": n_before},
                 after={"roles": after, "violations": len(result.violations)})
    session.commit()
    return {"call_id": call.id, "roles": after, "violations": len(result.violations)}


# --- batches ----------------------------------------------------------------------------------

def _batch_view(session: Session, batch: Batch) -> dict:
    jobs = session.exec(select(Job).where(Job.batch_id == batch.id).order_by(Job.created_at, Job.id)).all()
    counts = job_counts(session, batch.id)
    finished = counts[JOB_DONE] + counts[JOB_FAILED]
    partial = sum(j.progress or 0.0 for j in jobs if j.status == "running")
    call_ids = [j.call_id for j in jobs if j.call_id]
    flags: dict[int, dict[str, int]] = defaultdict(dict)
    if call_ids:
        for call_id, severity, n in session.exec(
                select(ViolationRecord.call_id, ViolationRecord.severity, func.count())
                .where(ViolationRecord.call_id.in_(call_ids))
                .group_by(ViolationRecord.call_id, ViolationRecord.severity)).all():
            flags[call_id][severity] = n
    out_jobs = []
    for j in jobs:
        item = JobOut.model_validate(job_out(j)).model_dump(mode="json")
        by_sev = flags.get(j.call_id, {}) if j.call_id else {}
        item["flags"] = sum(by_sev.values())
        item["flags_by_severity"] = by_sev
        out_jobs.append(item)
    return {"id": batch.id, "name": batch.name, "created_at": as_utc(batch.created_at).isoformat(),
            "total": len(jobs), "counts": counts, "finished": finished == len(jobs),
            "progress": round(100.0 * (finished + partial) / len(jobs), 1) if jobs else 100.0,
            "flags": sum(j["flags"] for j in out_jobs), "jobs": out_jobs}


@router.get("/batches")
def recent_batches(limit: int = Query(10, ge=1, le=100),
                   user: User = Depends(require("qa", what="see batches")), session: Session = Depends(get_session)):
    """The most recent batches (QA sees its own; admins all), each with its jobs and flag counts."""
    query = select(Batch)
    if user.role != "admin":
        query = query.where(Batch.created_by == user.id)
    batches = session.exec(query.order_by(Batch.created_at.desc(), Batch.id).limit(limit)).all()
    return [_batch_view(session, b) for b in batches]


@router.get("/batches/{batch_id}")
def one_batch(batch_id: str, _: User = Depends(require("qa", "officer", what="see batches")),
              session: Session = Depends(get_session)):
    batch = session.get(Batch, batch_id)
    if batch is None:
        raise HTTPException(404, f"no batch {batch_id}")
    return _batch_view(session, batch)


# --- dashboards -----------------------------------------------------------------------------

def _bucket(value: datetime | date | str | None, size: str) -> str:
    if value is None:
        return "?"
    if isinstance(value, str):
        value = datetime.fromisoformat(value[:19])
    day = value.date() if isinstance(value, datetime) else value
    if size == "week":
        day = day - timedelta(days=day.weekday())
    return day.isoformat()


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0], 2)
    return round(statistics.quantiles(values, n=100, method="inclusive")[int(q * 100) - 1], 2)


@router.get("/dashboard")
def dashboard(date_from: datetime | None = None, date_to: datetime | None = None,
              bucket: Literal["day", "week"] = "day",
              _: User = Depends(require("officer", "qa", what="read reports")),
              session: Session = Depends(get_session)):
    """Everything the dashboards draw, for calls in [date_from, date_to] (aggregated in SQL)."""
    when = call_when()
    day = func.date(when)

    def calls_where(query):
        if date_from:
            query = query.where(when >= as_utc(date_from))
        if date_to:
            query = query.where(when <= as_utc(date_to))
        return query

    def flags(*columns):
        query = (select(*columns, func.count()).select_from(ViolationRecord)
                 .join(CallRecord, CallRecord.id == ViolationRecord.call_id))
        return session.exec(calls_where(query).group_by(*columns)).all()

    n_calls = session.exec(calls_where(select(func.count()).select_from(CallRecord))).one()
    by_cat: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    by_sev: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for d, category, severity, n in flags(day, ViolationRecord.category, ViolationRecord.severity):
        b = _bucket(d, bucket)
        by_cat[b][category] += n
        by_sev[b][severity] += n
    rules: dict[str, dict] = {}
    backlog: dict[str, int] = {s: 0 for s in BACKLOG}
    total = 0
    for rule_id, title, status, n in flags(ViolationRecord.rule_id, ViolationRecord.title, ViolationRecord.status):
        r = rules.setdefault(rule_id, {"rule_id": rule_id, "title": title, "flagged": 0, "confirmed": 0,
                                       "dismissed": 0})
        r["flagged"] += n
        r["confirmed"] += n if status in TRUE_POSITIVE else 0
        r["dismissed"] += n if status in FALSE_POSITIVE else 0
        if status in backlog:
            backlog[status] += n
        total += n
    buckets = sorted(by_cat)
    categories = sorted({c for d in by_cat.values() for c in d})
    severities = [s for s in SEVERITIES if any(s in d for d in by_sev.values())] + sorted(
        {s for d in by_sev.values() for s in d} - set(SEVERITIES))

    agent_flags = dict(flags(CallRecord.agent_id))
    agent_calls = session.exec(calls_where(select(CallRecord.agent_id, func.count()).where(
        CallRecord.agent_id.is_not(None))).group_by(CallRecord.agent_id)).all()
    agents = sorted(({"agent_id": a, "calls": n, "violations": agent_flags.get(a, 0),
                      "per_call": round(agent_flags.get(a, 0) / n, 2)} for a, n in agent_calls),
                    key=lambda r: (-r["per_call"], r["agent_id"]))

    precision = []
    for r in sorted(rules.values(), key=lambda r: r["rule_id"]):
        reviewed = r["confirmed"] + r["dismissed"]
        precision.append(dict(r, reviewed=reviewed,
                              precision=round(r["confirmed"] / reviewed, 4) if reviewed else None))

    # turnaround: from the call's analysis to the first reviewer decision on each flag
    first = (select(AuditLog.entity_id.label("vid"), func.min(AuditLog.at).label("at"))
             .where(AuditLog.entity_type == "violation", AuditLog.action.like("review.%"))
             .group_by(AuditLog.entity_id).subquery())
    reviewed_calls = {cid for (cid,) in session.exec(calls_where(select(CallRecord.id))).all()} \
        if (date_from or date_to) else None
    turn: dict[str, list[float]] = defaultdict(list)
    rows = session.exec(select(first.c.vid, first.c.at, ViolationRecord.id, CallRecord.id, CallRecord.created_at)
                        .join(ViolationRecord, cast(ViolationRecord.id, String) == first.c.vid)
                        .join(CallRecord, CallRecord.id == ViolationRecord.call_id)).all()
    for _vid, at, _v, call_id, created in rows:
        if reviewed_calls is not None and call_id not in reviewed_calls:
            continue
        hours = max(0.0, (as_utc(at) - as_utc(created)).total_seconds() / 3600.0)
        turn[_bucket(as_utc(at), bucket)].append(hours)
    all_hours = [h for v in turn.values() for h in v]
    return {
        "bucket": bucket, "calls": n_calls, "violations": total,
        "over_time": {"buckets": buckets, "categories": categories, "severities": severities,
                      "by_category": {c: [by_cat[b].get(c, 0) for b in buckets] for c in categories},
                      "by_severity": {s: [by_sev[b].get(s, 0) for b in buckets] for s in severities}},
        "top_rules": sorted(({"rule_id": r["rule_id"], "title": r["title"], "count": r["flagged"]}
                             for r in rules.values()), key=lambda r: (-r["count"], r["rule_id"]))[:15],
        "agents": agents[:30],
        "precision": precision,
        "backlog": backlog,
        "turnaround": {"median_h": _quantile(all_hours, 0.5), "p90_h": _quantile(all_hours, 0.9),
                       "reviewed": len(all_hours),
                       "buckets": [{"bucket": b, "reviewed": len(v), "median_h": _quantile(v, 0.5),
                                    "p90_h": _quantile(v, 0.9)} for b, v in sorted(turn.items())]},
    }
