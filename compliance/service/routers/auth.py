"""Login for the web pages, the current user, and user/token administration (admins)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from sqlmodel import Session, select

from ...errors import ComplianceError
from .. import audit
from ..auth import check_password, create_user, issue_token
from ..convert import user_out
from ..deps import RowId, SESSION_COOKIE, ServiceContext, current_user, get_ctx, get_session, require
from ..models import ApiToken, User, utcnow
from ..schemas import Login, TokenCreate, TokenOut, UserCreate, UserOut

router = APIRouter(tags=["auth and users"])


@router.post("/auth/login", response_model=TokenOut)
def login(body: Login, response: Response, session: Session = Depends(get_session),
          ctx: ServiceContext = Depends(get_ctx)):
    """Exchange a user name and password for a session token (also set as an HttpOnly cookie, so a
    browser's audio player can fetch the recording)."""
    user = check_password(session, body.username, body.password)
    if user is None:
        raise HTTPException(401, "wrong user name or password")
    token, record = issue_token(session, user, name="login", kind="session", ttl_h=ctx.svc.session_ttl_h)
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict", secure=ctx.svc.cookie_secure,
                        max_age=int(ctx.svc.session_ttl_h * 3600))
    return TokenOut(token=token, token_id=record.id, expires_at=record.expires_at, user=user_out(user))


@router.post("/auth/logout", status_code=204)
def logout(request: Request, response: Response, user: User = Depends(current_user),
           session: Session = Depends(get_session)):
    """Revoke the token this request was made with."""
    record = session.get(ApiToken, request.state.token_id)
    if record is not None and record.revoked_at is None:
        record.revoked_at = utcnow()
        session.add(record)
        session.commit()
    response.delete_cookie(SESSION_COOKIE)


@router.get("/me", response_model=UserOut)
def me(user: User = Depends(current_user)):
    return user_out(user)


@router.get("/users", response_model=list[UserOut])
def list_users(_: User = Depends(require(what="list users")), session: Session = Depends(get_session)):
    return [user_out(u) for u in session.exec(select(User).order_by(User.id)).all()]


@router.post("/users", response_model=UserOut, status_code=201)
def add_user(body: UserCreate, admin: User = Depends(require(what="create users")),
             session: Session = Depends(get_session)):
    try:
        user = create_user(session, body.username, body.role, password=body.password, agent_id=body.agent_id,
                           display_name=body.display_name)
    except ComplianceError as exc:
        raise HTTPException(409 if "exists" in str(exc) else 422, str(exc)) from None
    audit.record(session, admin, "user.create", "user", user.id,
                 after={"username": user.username, "role": user.role, "agent_id": user.agent_id})
    session.commit()
    return user_out(user)


@router.post("/users/{user_id}/tokens", response_model=TokenOut, status_code=201)
def add_token(user_id: RowId, body: TokenCreate, admin: User = Depends(require(what="issue tokens")),
              session: Session = Depends(get_session)):
    """Issue an API token for a user; the response is the only time it is shown."""
    user = session.get(User, user_id)
    if user is None:
        raise HTTPException(404, f"no user {user_id}")
    token, record = issue_token(session, user, name=body.name)
    audit.record(session, admin, "token.issue", "user", user.id, after={"token_id": record.id, "name": body.name})
    session.commit()
    return TokenOut(token=token, token_id=record.id, expires_at=None, user=user_out(user))


@router.post("/tokens/{token_id}/revoke", status_code=204)
def revoke_token(token_id: RowId, admin: User = Depends(require(what="revoke tokens")),
                 session: Session = Depends(get_session)):
    record = session.get(ApiToken, token_id)
    if record is None:
        raise HTTPException(404, f"no token {token_id}")
    if record.revoked_at is None:
        record.revoked_at = utcnow()
        session.add(record)
        audit.record(session, admin, "token.revoke", "user", record.user_id, before={"token_id": token_id})
        session.commit()
