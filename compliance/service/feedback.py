"""Feedback for agents: what was flagged (the exact words and the second), which mandatory
disclosures were missing, and how the rule says it should have been put."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, select

from ..store import CallRecord, UtteranceRecord, ViolationRecord
from .review import FALSE_POSITIVE
from .schemas import AgentFeedback, CallFeedback, FeedbackItem, MissingDisclosure, RuleTally, WordOut


def _words_between(utterances: list[UtteranceRecord], v: ViolationRecord) -> list[WordOut]:
    pool = [u for u in utterances if u.idx == v.utterance_idx] if v.utterance_idx is not None else utterances
    words = []
    for utt in pool:
        for w in utt.words or []:
            if w["end"] > v.start - 0.05 and w["start"] < v.end + 0.05:
                words.append(WordOut(text=w["text"], start=w["start"], end=w["end"],
                                     probability=w.get("probability", 1.0)))
    return words


def call_feedback(session: Session, call: CallRecord) -> CallFeedback:
    violations = session.exec(select(ViolationRecord).where(ViolationRecord.call_id == call.id,
                                                            ViolationRecord.status.not_in(FALSE_POSITIVE))
                              .order_by(ViolationRecord.start, ViolationRecord.id)).all()
    utterances = session.exec(select(UtteranceRecord).where(UtteranceRecord.call_id == call.id)
                              .order_by(UtteranceRecord.idx)).all()
    flagged, missing = [], []
    for v in violations:
        if v.kind == "absence":
            missing.append(MissingDisclosure(violation_id=v.id, rule_id=v.rule_id, title=v.title, status=v.status,
                                             compliant_wording=v.suggestion, regulation=v.regulation))
            continue
        flagged.append(FeedbackItem(violation_id=v.id, rule_id=v.rule_id, title=v.title, category=v.category,
                                    severity=v.severity, status=v.status, second=int(v.start), start=v.start,
                                    end=v.end, said=v.matched_text, words=_words_between(utterances, v),
                                    context=v.context, why=v.reason, compliant_wording=v.suggestion,
                                    regulation=v.regulation))
    return CallFeedback(call_id=call.id, agent_id=call.agent_id, call_time=call.call_time, product=call.product,
                        flagged=flagged, missing_disclosures=missing)


def agent_feedback(session: Session, agent_id: str, date_from: datetime | None,
                   date_to: datetime | None) -> AgentFeedback:
    when = func.coalesce(CallRecord.call_time, CallRecord.created_at)
    query = select(CallRecord).where(CallRecord.agent_id == agent_id)
    if date_from is not None:
        query = query.where(when >= date_from)
    if date_to is not None:
        query = query.where(when <= date_to)
    calls = session.exec(query.order_by(when, CallRecord.id)).all()
    per_call = [call_feedback(session, c) for c in calls]
    by_rule: dict[str, list] = defaultdict(lambda: ["", 0, ""])
    missing: dict[str, list] = defaultdict(lambda: ["", 0, ""])
    for fb in per_call:
        for item in fb.flagged:
            entry = by_rule[item.rule_id]
            entry[0], entry[1], entry[2] = item.title, entry[1] + 1, item.compliant_wording
        for item in fb.missing_disclosures:
            entry = missing[item.rule_id]
            entry[0], entry[1], entry[2] = item.title, entry[1] + 1, item.compliant_wording

    def tallies(d):
        return [RuleTally(rule_id=k, title=t, count=n, compliant_wording=s)
                for k, (t, n, s) in sorted(d.items(), key=lambda kv: (-kv[1][1], kv[0]))]

    return AgentFeedback(agent_id=agent_id, date_from=date_from, date_to=date_to, calls=len(calls),
                         flagged=sum(len(f.flagged) for f in per_call), by_rule=tallies(by_rule),
                         missing_disclosures=tallies(missing), per_call=per_call)
