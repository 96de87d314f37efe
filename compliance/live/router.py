"""HTTP and WebSocket routes of the live streams (under /api/v1/live) and the supervisor page."""

from __future__ import annotations

import asyncio
import json
import logging
import time

from fastapi import APIRouter, Depends, HTTPException, WebSocket
from fastapi.responses import HTMLResponse
from sqlmodel import Session, select
from starlette.websockets import WebSocketDisconnect, WebSocketState

from ..service.deps import SESSION_COOKIE, current_user, get_ctx, get_session
from ..service.models import User
from .hub import Watcher, visible
from .protocol import (CLOSE_FORBIDDEN, CLOSE_NORMAL, CLOSE_POLICY, CLOSE_TRY_LATER, CLOSE_UNAUTHORIZED,
                       MAX_FRAME_BYTES, MAX_TEXT_BYTES, ProtocolError, parse_start)
from .storage import LiveAlertRecord, LiveStreamRecord

log = logging.getLogger("compliance.live.router")
router = APIRouter(tags=["live"])
#: who may open a stream: agents (their own calls), QA (who upload calls) and admins
STREAM_ROLES = {"agent", "qa", "admin"}


def _hub(ws_or_request):
    return ws_or_request.app.state.live


def _token(ws: WebSocket) -> str | None:
    auth = ws.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return ws.query_params.get("token") or ws.cookies.get(SESSION_COOKIE)


async def _authenticate(ws: WebSocket) -> User | None:
    """Accept the socket and return the user; or send an error event and close (4401)."""
    from ..service.auth import user_for_token

    await ws.accept()
    token = _token(ws)
    user = None
    if token:
        def lookup():
            with Session(ws.app.state.ctx.engine) as session:
                found = user_for_token(session, token)
                if found is None:
                    return None
                session.expunge(found[0])
                return found[0]

        user = await asyncio.to_thread(lookup)
    if user is None:
        await _fail(ws, "unauthorized", "not authenticated: send 'Authorization: Bearer <token>', a 'token' "
                                        "query parameter, or log in" if not token else
                    "invalid, expired or revoked token", CLOSE_UNAUTHORIZED)
    return user


async def _fail(ws: WebSocket, code: str, detail: str, close_code: int) -> None:
    try:
        await ws.send_json({"type": "error", "code": code, "detail": detail, "fatal": True})
        await ws.close(close_code, reason=detail[:120])
    except Exception:
        pass


def _message(text: str) -> dict:
    if len(text.encode("utf-8")) > MAX_TEXT_BYTES:
        raise ProtocolError("bad_message", f"text message over {MAX_TEXT_BYTES} bytes")
    try:
        msg = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProtocolError("bad_message", f"not JSON ({exc.msg} at {exc.pos})") from None
    if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
        raise ProtocolError("bad_message", 'a message is a JSON object with a "type"')
    return msg


@router.websocket("/live/stream")
async def stream(ws: WebSocket):
    """A live call: start message, binary PCM16 frames, optional end message (see
    compliance.live.protocol)."""
    hub = _hub(ws)
    user = await _authenticate(ws)
    if user is None:
        return
    if user.role not in STREAM_ROLES:
        await _fail(ws, "forbidden", f"role '{user.role}' may not stream calls (needs agent, qa or admin)",
                    CLOSE_FORBIDDEN)
        return
    send_lock = asyncio.Lock()

    async def send(event: dict) -> None:
        async with send_lock:
            await ws.send_text(json.dumps(event, ensure_ascii=False))

    async def error(code: str, detail: str, fatal: bool = False) -> None:
        await send({"type": "error", "code": code, "detail": detail, "fatal": fatal})

    # --- the start message --------------------------------------------------------------------
    start = None
    while start is None:
        try:
            msg = await ws.receive()
        except WebSocketDisconnect:
            return
        if msg["type"] == "websocket.disconnect":
            return
        try:
            if msg.get("bytes") is not None:
                raise ProtocolError("not_started", "audio before the start message was dropped; send "
                                                   '{"type": "start", ...} first')
            body = _message(msg.get("text") or "")
            if body["type"] == "ping":
                await send({"type": "pong"})
                continue
            if body["type"] != "start":
                raise ProtocolError("not_started", f"expected the start message, got {body['type']!r}")
            start = parse_start(body)
        except ProtocolError as exc:
            await error(exc.code, exc.detail)
    if user.role == "agent":
        if start.call.get("agent_id") not in (None, user.agent_id):
            await _fail(ws, "forbidden", "agents may only stream their own calls", CLOSE_FORBIDDEN)
            return
        start.call["agent_id"] = user.agent_id
    refused = hub.admit()
    if refused:
        await _fail(ws, "over_capacity", refused + "; retry later", CLOSE_TRY_LATER)
        return
    from .session import LiveSession

    stream_id, spool = await asyncio.to_thread(hub.store.open, start, user)
    if hub._rules is None:  # being built (warm-up) or never built: not on the event loop
        await asyncio.to_thread(lambda: hub.rules)
    session = LiveSession(hub, stream_id, start, user, spool, send)
    hub.streams[stream_id] = session
    await session.emit({"type": "started", "stream_id": stream_id, "format": start.to_json(),
                        "max_frame_bytes": MAX_FRAME_BYTES, "limits": hub.stats()}, publish=True)
    complete, status = False, "interrupted"
    try:
        while True:
            msg = await ws.receive()
            if msg["type"] == "websocket.disconnect":
                break
            data = msg.get("bytes")
            try:
                if data is not None:
                    if len(data) > MAX_FRAME_BYTES:
                        raise ProtocolError("frame_too_large", f"a binary frame of {len(data)} bytes was dropped "
                                                               f"(the most is {MAX_FRAME_BYTES})")
                    await session.feed(data)
                    continue
                body = _message(msg.get("text") or "")
                kind = body["type"]
                if kind == "end":
                    complete, status = True, "ended"
                    break
                if kind == "ping":
                    await send({"type": "pong", "t": round(session.t, 3)})
                elif kind == "start":
                    raise ProtocolError("already_started", "the stream has started; a second start is ignored")
                else:
                    raise ProtocolError("bad_message", f"unknown message type {kind!r} (use end or ping)")
            except ProtocolError as exc:
                await error(exc.code, exc.detail, exc.fatal)
    except WebSocketDisconnect:
        pass
    except Exception:
        log.exception("live stream %s failed", stream_id)
        status = "failed"
    finally:
        if not complete:
            session.closed = True
        try:
            summary = await session.finish(complete=complete, status=status)
        except Exception:
            log.exception("live stream %s: storing the call failed; its files are kept for recovery", stream_id)
            summary = None
        hub.streams.pop(stream_id, None)
        if summary is not None:
            hub.publish(session, {"type": "ended", "complete": complete, "job_id": summary["job_id"],
                                  "alerts": list(session.alerts.values()), "t": summary["duration"]})
    if complete and summary is not None and ws.client_state == WebSocketState.CONNECTED:
        try:
            await send(summary)
            await ws.close(CLOSE_NORMAL)
        except Exception:
            pass


@router.websocket("/live/watch")
async def watch(ws: WebSocket):
    """Supervisors (officer, qa, admin): every live call and its alerts as they happen; agents: their
    own. A snapshot first, then events with their stream_id. `?utterances=1` adds the transcript."""
    hub = _hub(ws)
    user = await _authenticate(ws)
    if user is None:
        return
    watcher = Watcher(user, asyncio.get_running_loop(), ws.query_params.get("utterances") in ("1", "true"))
    hub.watchers.add(watcher)
    try:
        await ws.send_json({"type": "snapshot", "streams": hub.snapshot(user), "limits": hub.stats(),
                            "user": {"username": user.username, "role": user.role}})

        async def pump():
            while True:
                event = await watcher.queue.get()
                await ws.send_text(json.dumps(event, ensure_ascii=False))

        async def drain():
            while True:
                msg = await ws.receive()
                if msg["type"] == "websocket.disconnect":
                    return

        tasks = [asyncio.create_task(pump()), asyncio.create_task(drain())]
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for t in pending:
            t.cancel()
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        hub.watchers.discard(watcher)


def _stream_out(rec: LiveStreamRecord, crypto, live=None) -> dict:
    return {"stream_id": rec.id, "agent_id": rec.agent_id, "customer_id": crypto.decrypt(rec.customer_id),
            "product": rec.product, "campaign": rec.campaign, "call_time": rec.call_time,
            "sample_rate": rec.sample_rate, "channels": rec.channels, "agent_channel": rec.agent_channel,
            "language": rec.language, "status": rec.status, "live": live is not None, "complete": rec.complete,
            "received_s": round(live.t, 3) if live is not None else rec.received_s, "started_at": rec.started_at,
            "ended_at": rec.ended_at, "job_id": rec.job_id, "call_id": rec.call_id}


@router.get("/live/streams")
def list_streams(limit: int = 50, user: User = Depends(current_user), session: Session = Depends(get_session),
                 ctx=Depends(get_ctx)):
    """Live and recent streams, newest first (agents: their own), with the server's load."""
    hub = ctx_hub(ctx)
    query = select(LiveStreamRecord).order_by(LiveStreamRecord.started_at.desc()).limit(max(1, min(limit, 500)))
    if user.role == "agent":
        query = query.where(LiveStreamRecord.agent_id == (user.agent_id or "\x00none"))
    rows = session.exec(query).all()
    return {"streams": [_stream_out(r, ctx.crypto, hub.streams.get(r.id)) for r in rows], "load": hub.stats()}


@router.get("/live/streams/{stream_id}")
def get_stream(stream_id: str, user: User = Depends(current_user), session: Session = Depends(get_session),
               ctx=Depends(get_ctx)):
    """One stream with its live alerts and, once the post-call analysis is done, the stored
    violation each alert became (`violation_id`), the alerts it did not confirm, and the
    violations only the post-call analysis found."""
    hub = ctx_hub(ctx)
    rec = session.get(LiveStreamRecord, stream_id)
    if rec is None or not visible(user, rec.agent_id):
        raise HTTPException(404, f"no live stream {stream_id}")
    links = hub.store.link(stream_id)
    session.expire_all()
    rec = session.get(LiveStreamRecord, stream_id)
    alerts = session.exec(select(LiveAlertRecord).where(LiveAlertRecord.stream_id == stream_id)
                          .order_by(LiveAlertRecord.id)).all()
    return {**_stream_out(rec, ctx.crypto, hub.streams.get(stream_id)),
            "alerts": [a.model_dump(exclude={"alert_key", "extra"}) for a in alerts], "post_call": links}


_HUBS: dict[int, object] = {}


def ctx_hub(ctx):
    return _HUBS[id(ctx)]


page_router = APIRouter()


@page_router.get("/live", response_class=HTMLResponse, include_in_schema=False)
def live_page():
    from pathlib import Path

    return HTMLResponse((Path(__file__).parent / "supervisor.html").read_text(encoding="utf-8"))


_ = (time, CLOSE_POLICY)
