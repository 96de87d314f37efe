"""A client for live streams: send a recording as if it were a live call, get the events back.

    from compliance.live.client import stream_file
    summary = stream_file("http://127.0.0.1:8000", token, "call.flac", realtime=True, on_event=print)
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np

STREAM_PATH = "/api/v1/live/stream"


def ws_url(server: str, path: str = STREAM_PATH) -> str:
    server = server.rstrip("/")
    if server.startswith("https://"):
        server = "wss://" + server[8:]
    elif server.startswith("http://"):
        server = "ws://" + server[7:]
    elif not server.startswith(("ws://", "wss://")):
        server = "ws://" + server
    return server + path


def pcm16(path: str | Path, *, mono: bool = False, sample_rate: int = 16000) -> tuple[bytes, int]:
    """The recording as interleaved PCM16 LE at `sample_rate`: (bytes, channels)."""
    from ..ingest import load_audio

    audio = load_audio(path, sample_rate=sample_rate)
    samples = audio.samples
    if mono and samples.shape[0] > 1:
        samples = samples.sum(axis=0, keepdims=True)
    pcm = np.clip(np.round(samples.T * 32768.0), -32768, 32767).astype("<i2")
    return pcm.tobytes(), samples.shape[0]


class StreamError(Exception):
    pass


def stream_pcm(server: str, token: str | None, data: bytes, *, channels: int, sample_rate: int = 16000,
               agent_channel: int | None = 0, language: str | None = "zh", call: dict | None = None,
               realtime: bool = False, chunk_s: float = 0.1, on_event: Callable[[dict], None] | None = None,
               end: bool = True, stop_after_s: float | None = None, timeout_s: float = 900.0,
               sent_at: dict | None = None) -> dict | None:
    """Stream raw PCM16 to the server; returns the summary event (None when `end` is False or the
    connection dropped). `stop_after_s`: drop the connection after that much audio (tests);
    `sent_at`: filled with stream second -> wall-clock time it was sent (latency measurement)."""
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    start = {"type": "start", "sample_rate": sample_rate, "channels": channels, "encoding": "pcm_s16le",
             "language": language or "auto", "call": call or {}}
    if channels == 2:
        start["agent_channel"] = agent_channel if agent_channel is not None else 0
    frame = 2 * channels
    chunk = max(frame, int(chunk_s * sample_rate) * frame)
    summary: dict | None = None
    with connect(ws_url(server), additional_headers=headers, max_size=None, open_timeout=30,
                 close_timeout=5) as ws:
        ws.send(json.dumps(start))
        first = json.loads(ws.recv(timeout=30))
        if on_event:
            on_event(first)
        if first.get("type") != "started":
            raise StreamError(first.get("detail") or f"stream refused: {first}")
        failure: list[BaseException] = []

        def sender() -> None:
            t0 = time.monotonic()
            try:
                for offset in range(0, len(data), chunk):
                    pos = offset / frame / sample_rate
                    if stop_after_s is not None and pos >= stop_after_s:
                        ws.close()
                        return
                    if realtime:
                        delay = t0 + pos - time.monotonic()
                        if delay > 0:
                            time.sleep(delay)
                    ws.send(data[offset: offset + chunk])
                    if sent_at is not None:
                        sent_at[round(pos + chunk / frame / sample_rate, 3)] = time.time()
                if end:
                    ws.send(json.dumps({"type": "end"}))
                else:
                    ws.close()
            except ConnectionClosed:
                pass
            except BaseException as exc:  # reported by the caller
                failure.append(exc)

        thread = threading.Thread(target=sender, name="live-client-send", daemon=True)
        thread.start()
        deadline = time.monotonic() + timeout_s
        try:
            while time.monotonic() < deadline:
                try:
                    message = ws.recv(timeout=max(0.1, deadline - time.monotonic()))
                except TimeoutError:
                    break
                event = json.loads(message)
                event.setdefault("received_at", time.time())
                if on_event:
                    on_event(event)
                if event.get("type") == "summary":
                    summary = event
                    break
        except ConnectionClosed:
            pass
        thread.join(timeout=10)
        if failure:
            raise failure[0]
    return summary


def stream_file(server: str, token: str | None, path: str | Path, *, mono: bool = False, **kwargs) -> dict | None:
    data, channels = pcm16(path, mono=mono)
    return stream_pcm(server, token, data, channels=channels, **kwargs)


def format_event(event: dict) -> str:
    """One line per event, for the terminal."""
    kind = event.get("type")
    t = event.get("t", 0.0)
    head = f"[{t:7.2f}s] "
    if kind == "utterance":
        return head + f"{event['role']:<8} {event['start']:6.2f}-{event['end']:6.2f}  {event['text']}"
    if kind == "partial":
        return head + f"{event['role']:<8} …{event['text']}"
    if kind == "violation":
        flag = " (provisional)" if event.get("provisional") else ""
        return head + (f"ALERT {event['severity']} {event['rule_id']}{flag}: {event['title']} — "
                       f"'{event['matched_text']}' at {event['start']:.1f}s (+{event.get('delay_s', 0):.1f}s)")
    if kind == "retracted":
        return head + f"retracted {event['alert_id']} ({event['rule_id']})"
    if kind == "summary":
        missing = ", ".join(v["rule_id"] for v in event["missing_disclosures"]) or "none"
        return head + (f"END {event['duration']:.1f}s, {event['utterances']} utterances, "
                       f"{len(event['violations'])} violations, missing disclosures: {missing}; "
                       f"post-call job {event['job_id']}")
    if kind in ("error", "warning"):
        return head + f"{kind.upper()} {event.get('code')}: {event.get('detail')}"
    if kind == "started":
        return head + f"stream {event['stream_id']} started"
    return head + json.dumps(event, ensure_ascii=False)
