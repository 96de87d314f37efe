"""Request and response bodies (they are the OpenAPI schema at /docs)."""

from __future__ import annotations

from datetime import datetime
from typing import Generic, Literal, TypeVar

from pydantic import BaseModel, Field

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    page: int
    page_size: int


class UserOut(BaseModel):
    id: int
    username: str
    role: str
    agent_id: str | None = None
    display_name: str = ""
    active: bool = True


class UserCreate(BaseModel):
    username: str = Field(min_length=1, max_length=128)
    role: Literal["admin", "officer", "qa", "agent"]
    password: str | None = Field(default=None, min_length=8, max_length=256)
    agent_id: str | None = Field(default=None, max_length=128)
    display_name: str = Field(default="", max_length=256)


class TokenCreate(BaseModel):
    name: str = Field(default="", max_length=128)


class TokenOut(BaseModel):
    token: str = Field(description="shown once; only its hash is stored")
    token_id: int
    expires_at: datetime | None = None
    user: UserOut


class Login(BaseModel):
    username: str = Field(min_length=1, max_length=128)
    password: str = Field(min_length=1, max_length=256)


class JobOut(BaseModel):
    id: str
    batch_id: str | None
    filename: str
    status: Literal["queued", "running", "done", "failed"]
    progress: float = Field(description="percent, 0-100")
    stage: str
    error: str | None = None
    call_id: int | None = None
    attempts: int
    agent_id: str | None = None
    product: str | None = None
    campaign: str | None = None
    call_time: datetime | None = None
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None


class Rejected(BaseModel):
    filename: str
    reason: str


class UploadOut(BaseModel):
    batch_id: str
    jobs: list[JobOut]
    rejected: list[Rejected]


class BatchOut(BaseModel):
    id: str
    name: str
    created_at: datetime
    total: int
    counts: dict[str, int]
    progress: float = Field(description="percent of the batch finished (done or failed)")
    jobs: list[JobOut]


class WordOut(BaseModel):
    text: str
    start: float
    end: float
    probability: float = 1.0


class UtteranceOut(BaseModel):
    index: int
    speaker: str
    role: str
    start: float
    end: float
    text: str
    channel: int | None = None
    words: list[WordOut]


class SpeakerOut(BaseModel):
    speaker: str
    role: str
    role_confidence: float
    channel: int | None = None
    talk_time: float


class ViolationOut(BaseModel):
    id: int
    call_id: int
    rule_id: str
    title: str
    category: str
    severity: str
    kind: str
    start: float
    end: float
    speaker: str | None = None
    role: str
    matched_text: str
    context: str
    reason: str
    regulation: str = ""
    suggestion: str = ""
    status: str
    updated_at: datetime | None = None
    agent_id: str | None = None
    product: str | None = None
    call_time: datetime | None = None


class CallSummary(BaseModel):
    id: int
    sha256: str
    source_name: str
    duration: float
    channels: int
    language: str
    agent_id: str | None = None
    customer_id: str | None = None
    product: str | None = None
    campaign: str | None = None
    call_time: datetime | None = None
    created_at: datetime
    violations: int = 0


class CallOut(CallSummary):
    masked: bool = True
    speakers: list[SpeakerOut]
    utterances: list[UtteranceOut]
    audio_url: str


class ReviewIn(BaseModel):
    action: Literal["confirm", "dismiss", "escalate"]
    note: str | None = Field(default=None, max_length=4000, description="required to dismiss")


class AppealIn(BaseModel):
    action: Literal["acknowledge", "dispute"]
    note: str | None = Field(default=None, max_length=4000, description="required to dispute")


class DecisionIn(BaseModel):
    decision: Literal["uphold", "overturn"]
    note: str = Field(min_length=1, max_length=4000)


class AuditOut(BaseModel):
    id: int
    at: datetime
    actor: str
    actor_role: str
    action: str
    entity_type: str
    entity_id: str
    call_id: int | None = None
    before: dict | None = None
    after: dict | None = None
    note: str | None = None


class FeedbackItem(BaseModel):
    violation_id: int
    rule_id: str
    title: str
    category: str
    severity: str
    status: str
    second: int = Field(description="where it was said, whole seconds from the start of the call")
    start: float
    end: float
    said: str = Field(description="the words that matched")
    words: list[WordOut] = Field(description="the transcript's words in that stretch, with their times")
    context: str
    why: str
    compliant_wording: str
    regulation: str = ""


class MissingDisclosure(BaseModel):
    violation_id: int
    rule_id: str
    title: str
    status: str
    compliant_wording: str
    regulation: str = ""


class CallFeedback(BaseModel):
    call_id: int
    agent_id: str | None
    call_time: datetime | None
    product: str | None
    flagged: list[FeedbackItem]
    missing_disclosures: list[MissingDisclosure]


class RuleTally(BaseModel):
    rule_id: str
    title: str
    count: int
    compliant_wording: str


class AgentFeedback(BaseModel):
    agent_id: str
    date_from: datetime | None
    date_to: datetime | None
    calls: int
    flagged: int
    by_rule: list[RuleTally]
    missing_disclosures: list[RuleTally]
    per_call: list[CallFeedback]


class CountRow(BaseModel):
    key: str
    total: int
    open: int
    confirmed: int
    dismissed: int


class PrecisionRow(BaseModel):
    rule_id: str
    title: str
    flagged: int
    reviewed: int
    confirmed: int
    dismissed: int
    precision: float | None = Field(description="confirmed / reviewed; null before any review")
