"""Users, passwords (argon2) and bearer tokens (only their sha256 is stored)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import Session, select

from ..errors import ComplianceError
from .models import ROLES, ApiToken, User, utcnow

TOKEN_PREFIX = "cpl_"
_hasher = PasswordHasher()
#: verified against when the user does not exist, so a wrong name costs as long as a wrong password
_DUMMY_HASH = _hasher.hash("not-a-password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_user(session: Session, username: str, role: str, *, password: str | None = None,
                agent_id: str | None = None, display_name: str = "") -> User:
    if role not in ROLES:
        raise ComplianceError(f"unknown role {role!r}: use one of {', '.join(ROLES)}")
    username = username.strip()
    if not username or len(username) > 128:
        raise ComplianceError("a user name must have 1 to 128 characters")
    if role == "agent" and not agent_id:
        raise ComplianceError("an agent user needs the agent id their calls are uploaded with")
    if session.exec(select(User).where(User.username == username)).first() is not None:
        raise ComplianceError(f"user {username!r} already exists")
    user = User(username=username, role=role, agent_id=agent_id, display_name=display_name,
                password_hash=hash_password(password) if password else None)
    session.add(user)
    session.commit()
    session.refresh(user)
    return user


def issue_token(session: Session, user: User, *, name: str = "", kind: str = "api",
                ttl_h: float | None = None) -> tuple[str, ApiToken]:
    """A new random token for `user`: the plain token is returned once, its hash is stored."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    record = ApiToken(user_id=user.id, token_hash=token_hash(token), name=name[:128], kind=kind,
                      expires_at=utcnow() + timedelta(hours=ttl_h) if ttl_h else None)
    session.add(record)
    session.commit()
    session.refresh(record)
    return token, record


def user_for_token(session: Session, token: str) -> tuple[User, ApiToken] | None:
    if not token or len(token) > 200:
        return None
    record = session.exec(select(ApiToken).where(ApiToken.token_hash == token_hash(token))).first()
    if record is None or record.revoked_at is not None:
        return None
    now = utcnow()
    if record.expires_at is not None and record.expires_at <= now:
        return None
    user = session.get(User, record.user_id)
    if user is None or not user.active:
        return None
    if record.last_used_at is None or (now - record.last_used_at).total_seconds() > 60:
        record.last_used_at = now
        session.add(record)
        session.commit()
        session.refresh(user)
        session.refresh(record)
    return user, record


def check_password(session: Session, username: str, password: str) -> User | None:
    user = session.exec(select(User).where(User.username == username)).first()
    stored = user.password_hash if user is not None and user.active else None
    try:
        _hasher.verify(stored or _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    return user if stored else None
