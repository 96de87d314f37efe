"""Live calls: screening agents' words while the customer is still on the line.

A WebSocket (/api/v1/live/stream, authenticated like the API) takes a call's PCM audio as it
happens; per channel a streaming VAD cuts utterances, the shared faster-whisper model transcribes
each (with a second of left context), and the same rule engine as the post-call analysis checks
each final utterance, so alerts reach the client, the supervisors (/api/v1/live/watch, /live) and
the agent within seconds. The audio is appended to disk as it arrives; when the stream ends, breaks
off, or the server restarts, it becomes a normal stored call, re-analysed with the batch models,
and the live alerts are linked to the final violations.

`compliance.service.app` calls `mount(app, ctx)`. See protocol.py for the messages."""

from __future__ import annotations

from contextlib import asynccontextmanager


def mount(app, ctx, *, transcriber=None):
    from .hub import LiveHub
    from .router import _HUBS, page_router, router

    hub = LiveHub(ctx, transcriber=transcriber)
    app.state.live = hub
    _HUBS[id(ctx)] = hub
    app.include_router(router, prefix="/api/v1")
    app.include_router(page_router)
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a):
        hub.startup()
        try:
            async with inner(a) as state:
                yield state
        finally:
            hub.shutdown()

    app.router.lifespan_context = lifespan
    return hub


def set_transcriber(app, transcriber) -> None:
    """Use this (already loaded) transcriber for the live streams (tests, or to share the
    analysis workers' model)."""
    app.state.live.asr.transcriber = transcriber
