"""FastAPI dependencies: the service context, a database session, the current user, role checks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Annotated, Iterator

from fastapi import Depends, HTTPException, Path, Query, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.engine import Engine
from sqlmodel import Session

from ..config import Settings
from ..store import CallRecord
from .auth import user_for_token
from .blobs import BlobStore
from .crypto import Crypto
from .dispatch import Dispatcher
from .models import User
from .settings import ServiceSettings

SESSION_COOKIE = "compliance_session"

#: integer ids as the databases store them (a 64-bit overflow must be a 422, not a 500)
MAX_ID = 2**31 - 1
RowId = Annotated[int, Path(ge=1, le=MAX_ID)]
OptionalRowId = Annotated[int | None, Query(ge=1, le=MAX_ID)]
TextId = Annotated[str, Path(min_length=1, max_length=64)]


@dataclass
class ServiceContext:
    settings: Settings
    svc: ServiceSettings
    engine: Engine
    blobs: BlobStore
    crypto: Crypto
    dispatcher: Dispatcher
    pool: object = None


def get_ctx(request: Request) -> ServiceContext:
    return request.app.state.ctx


def get_session(ctx: ServiceContext = Depends(get_ctx)) -> Iterator[Session]:
    with Session(ctx.engine) as session:
        yield session


_bearer = HTTPBearer(auto_error=False, description="An API token (`compliance users token NAME`) or the "
                                                   "token /api/v1/auth/login returns")


def current_token(request: Request, credentials: HTTPAuthorizationCredentials | None = Security(_bearer)) -> str:
    token = credentials.credentials if credentials else request.cookies.get(SESSION_COOKIE)
    if not token:
        raise HTTPException(401, "not authenticated: send 'Authorization: Bearer <token>' or log in",
                            headers={"WWW-Authenticate": "Bearer"})
    return token


def current_user(request: Request, token: str = Depends(current_token),
                 session: Session = Depends(get_session)) -> User:
    found = user_for_token(session, token)
    # Give the connection back now: a long request (an upload) must not hold one while it streams.
    session.close()
    if found is None:
        raise HTTPException(401, "invalid, expired or revoked token", headers={"WWW-Authenticate": "Bearer"})
    user, record = found
    request.state.token_id = record.id
    return user


def require(*roles: str, what: str = "do this"):
    """A dependency that lets through admins and the given roles, and refuses the rest with 403."""
    allowed = set(roles) | {"admin"}

    def check(user: User = Depends(current_user)) -> User:
        if user.role not in allowed:
            raise HTTPException(403, f"role '{user.role}' may not {what} (needs {' or '.join(sorted(allowed))})")
        return user

    return check


def call_for(session: Session, user: User, call_id: int) -> CallRecord:
    """The call, if `user` may see it: agents only their own calls."""
    call = session.get(CallRecord, call_id)
    if call is None:
        raise HTTPException(404, f"no call {call_id}")
    if user.role == "agent" and (not user.agent_id or call.agent_id != user.agent_id):
        raise HTTPException(403, "agents may only see their own calls")
    return call


def as_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    try:
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
    except OverflowError:
        raise HTTPException(422, f"date-time {value.isoformat()} is out of range") from None
