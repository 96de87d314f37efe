"""ASGI middleware: request body size cap and request time limits, both answering in JSON."""

from __future__ import annotations

import asyncio
import json


async def _send_json(send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class _BodyTooLarge(Exception):
    pass


class BodyLimit:
    """Refuse bodies over `max_bytes` (413): at once from Content-Length, else while they stream."""

    def __init__(self, app, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.max_bytes
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    return await _send_json(send, 400, "invalid Content-Length")
                if declared > limit:
                    return await _send_json(send, 413, f"request body of {declared / 1e6:.1f} MB is over the "
                                                       f"{limit / 1e6:.0f} MB upload limit")
        received = 0
        started = False

        async def counting_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge()
            return message

        async def tracking_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await _send_json(send, 413, f"request body is over the {limit / 1e6:.0f} MB upload limit")


class Timeout:
    """Answer 504 when a request takes longer than its limit (uploads get a longer one)."""

    def __init__(self, app, seconds: float, upload_seconds: float, upload_prefix: str) -> None:
        self.app, self.seconds, self.upload_seconds, self.upload_prefix = app, seconds, upload_seconds, upload_prefix

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.upload_seconds if scope["path"].startswith(self.upload_prefix) else self.seconds
        started = False

        async def tracking_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await asyncio.wait_for(self.app(scope, receive, tracking_send), timeout=limit)
        except asyncio.TimeoutError:
            if not started:
                await _send_json(send, 504, f"the request took longer than {limit:.0f} s")
