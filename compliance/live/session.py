"""One live stream: the received PCM goes to the spool file, to each channel's streaming VAD, the
VAD's finished utterances to the shared ASR worker, their words to the incremental rule engine,
and the results to the client (and the supervisors) as JSON events. A pause the speaker talks on
after gets what was said so far decoded as a partial whose words the rules check at once (early
alerts, confirmed or retracted by the final words: LiveDetector.probe)."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import asdict

import numpy as np

from .asr import FINAL, PARTIAL
from .detector import LiveDetector, violation_key
from .protocol import ProtocolError, StartMessage
from .vad import SR, StreamingVad, Upsampler

log = logging.getLogger("compliance.live.session")

#: seconds of audio before an utterance decoded with it (its words are dropped)
LEFT_CONTEXT_S = 1.0
#: a partial transcript only of an utterance open this long, and (with clause cuts) a second
#: longer than the VAD's cut_after_s: a shorter one will be final at its next pause anyway
PARTIAL_MIN_S = 2.0
#: below this amplitude the left context counts as silence (about -60 dBFS)
SILENT = 1e-3
PARTIAL_EVERY_S = 2.0
#: no partial transcripts while the ASR worker was busy more than this share of the last
#: PARTIAL_BUSY_OVER_S seconds: partials are a nicety, finals (and their alerts) must not wait
PARTIAL_MAX_BUSY = 0.5
PARTIAL_BUSY_OVER_S = 10.0
#: a clause pause is worth an early decode once the segment holds this much speech, and this much
#: more than at its last early decode
PROBE_MIN_S = 0.8
PROBE_STEP_S = 0.5
WARN_EVERY_S = 5.0

VIOLATION_FIELDS = ("rule_id", "title", "category", "severity", "kind", "start", "end", "speaker", "role",
                    "matched_text", "context", "reason", "suggestion", "regulation", "pack")


def violation_json(v) -> dict:
    d = asdict(v)
    return {k: d[k] for k in VIOLATION_FIELDS}


def final_clip(buffer, seg, left_context_s: float = LEFT_CONTEXT_S) -> tuple[np.ndarray, int, float]:
    """What a final segment is decoded from: (samples, leading samples of left context, call time
    of samples[0]). Up to `left_context_s` of the audio before it, from its first sound on (a
    silent context is dropped: no help to the decoder)."""
    ctx_start = max(buffer.base, seg.start - int(left_context_s * SR))
    samples = buffer.get(ctx_start, seg.end)
    context = seg.start - ctx_start
    lead = np.flatnonzero(np.abs(samples[:context]) > SILENT)
    if len(lead) == 0 and context:  # the context is silence: no help to the decoder, drop it
        samples, ctx_start, context = samples[context:], seg.start, 0
    elif context:  # keep it from the first sound on
        samples, ctx_start, context = samples[lead[0]:], ctx_start + lead[0], context - lead[0]
    return samples, context, ctx_start / SR


class LiveSession:
    def __init__(self, hub, stream_id: str, start: StartMessage, user, spool, emit) -> None:
        self.hub, self.id, self.start, self.user, self.spool = hub, stream_id, start, user, spool
        self._emit = emit  # async callable(event dict) -> None, to the client
        self.loop = asyncio.get_running_loop()
        self.channels = start.channels
        self.vads = [StreamingVad(ch, **hub.vad_options) for ch in range(self.channels)]
        self.upsample = [Upsampler() for _ in range(self.channels)] if start.sample_rate == 8000 else None
        self.detector = LiveDetector(hub.rules, start.language or "zh")
        self.speakers = None
        if self.channels == 1:
            from .speakers import OnlineSpeakers

            self.speakers = OnlineSpeakers()
        self._carry = b""
        self.frames = 0  # samples per channel received (source rate)
        self.pending = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._seg_n = 0
        self._alert_n = 0
        self.alerts: dict[tuple, dict] = {}  # key -> event sent
        self._alert_db: dict[str, int] = {}
        self._partial_at = [0.0] * self.channels
        cut_after = hub.vad_options.get("cut_after_s") or 0.0
        self._partial_min_s = max(PARTIAL_MIN_S, cut_after + 1.0 if cut_after > 0 else 0.0)
        self._partial_busy = [False] * self.channels
        self._probed = [(-1, 0)] * self.channels  # (segment start, end) of each channel's last early decode
        self._warned_at = 0.0
        self.closed = False
        self.utterances = 0
        self.started_at = time.time()
        self.agent_id = start.call.get("agent_id")
        self.language = start.language

    # ------------------------------------------------------------------ helpers
    @property
    def t(self) -> float:
        """Seconds of call audio received."""
        return self.frames / self.start.sample_rate

    def role_of(self, channel: int, speaker: str) -> str:
        if self.channels == 2:
            return "agent" if channel == self.start.agent_channel else "customer"
        return self.speakers.role(speaker) if self.speakers else "unknown"

    async def emit(self, event: dict, *, publish: bool = False) -> None:
        event.setdefault("t", round(self.t, 3))
        if publish:
            self.hub.publish(self, event)
        if not self.closed:
            try:
                await self._emit(event)
            except Exception:  # the client went away; the receive loop will notice
                self.closed = True

    def _spawn(self, coro) -> None:
        task = self.loop.create_task(coro)
        self.hub.tasks.add(task)
        task.add_done_callback(self.hub.tasks.discard)

    # ------------------------------------------------------------------ audio in
    async def feed(self, data: bytes) -> None:
        if len(data) > 0:
            self.spool.append(data)
            if self.spool.due():
                await asyncio.to_thread(self.spool.sync)
        data = self._carry + data if self._carry else data
        fb = self.start.frame_bytes
        n = len(data) - len(data) % fb
        self._carry = data[n:]
        if n == 0:
            return
        pcm = np.frombuffer(data[:n], dtype="<i2").astype(np.float32) / 32768.0
        pcm = pcm.reshape(-1, self.channels).T
        self.frames += pcm.shape[1]
        for ch in range(self.channels):
            x = pcm[ch]
            if self.upsample is not None:
                x = self.upsample[ch](x)
            for seg in self.vads[ch].feed(x):
                self._final(seg)
            pause = self.vads[ch].take_pause()
            if pause is not None:
                self._maybe_probe(ch, *pause)
            self._maybe_partial(ch)
        await self._check_lag()

    async def _check_lag(self) -> None:
        lag = self.hub.asr.lag_s()
        now = time.monotonic()
        if lag > self.hub.max_lag_s and now - self._warned_at > WARN_EVERY_S:
            self._warned_at = now
            await self.emit({"type": "warning", "code": "behind", "lag_s": round(lag, 2),
                             "detail": f"the server is {lag:.1f} s behind real time (alerts are late)"})

    # ------------------------------------------------------------------ ASR
    def _final(self, seg) -> None:
        samples, context, offset = final_clip(self.vads[seg.channel].buffer, seg)
        self._seg_n += 1
        seg_id = f"u{self._seg_n}"
        self.pending += 1
        self._idle.clear()
        post = None
        if self.speakers is not None:
            embed_audio = samples[context:]

            def post(_words, audio=embed_audio):
                return self.speakers.assign(audio)

        cut_at = self.t

        def done(result, timing):
            self.loop.call_soon_threadsafe(self._spawn, self._on_final(seg, seg_id, result, timing, cut_at))

        self.hub.asr.submit(FINAL, samples, context, offset, self.language, done, post=post,
                            stale=lambda: self.closed)

    def _maybe_partial(self, ch: int) -> None:
        vad = self.vads[ch]
        start = vad.open_start
        if start is None or self._partial_busy[ch] or self.closed or not self.start.partials:
            return
        end = vad.open_end
        now = time.monotonic()
        if (end - start) / SR < self._partial_min_s or now - self._partial_at[ch] < PARTIAL_EVERY_S:
            return
        if not self.hub.asr.idle() or self.hub.asr.busy_fraction(PARTIAL_BUSY_OVER_S) > PARTIAL_MAX_BUSY:
            self._partial_at[ch] = now  # look again in PARTIAL_EVERY_S
            return
        self._submit_partial(ch, start, end)

    def _maybe_probe(self, ch: int, start: int, end: int) -> None:
        """A clause pause in the segment still being spoken on `ch`: decode what was said so far and
        check it (an early alert, see LiveDetector.probe) when the ASR worker is idle and has been
        busy at most `hub.early_max_busy` of the last seconds: finals come first, and one arriving
        meanwhile waits for one bounded partial decode at most (AsrWorker.partial_options)."""
        if self._partial_busy[ch] or self.closed or (end - start) / SR < PROBE_MIN_S:
            return
        last_start, last_end = self._probed[ch]
        if last_start == start and (end - last_end) / SR < PROBE_STEP_S:
            return
        asr = self.hub.asr
        if not asr.idle() or asr.busy_fraction(PARTIAL_BUSY_OVER_S) > self.hub.early_max_busy:
            return
        self._probed[ch] = (start, end)
        self._partial_at[ch] = time.monotonic()
        self._submit_partial(ch, start, end)

    def _submit_partial(self, ch: int, start: int, end: int) -> None:
        """Decode [start, end) of the segment still being spoken on `ch` (with the left context a
        final gets) at partial priority; dropped if the segment ends before its turn comes (its
        final is then queued ahead of it)."""
        from .vad import Segment

        vad = self.vads[ch]
        samples, context, offset = final_clip(vad.buffer, Segment(ch, start, end))
        self._partial_busy[ch] = True

        def stale() -> bool:
            return self.closed or vad.open_start != start

        def done(result, _timing):
            self.loop.call_soon_threadsafe(self._spawn, self._on_partial(ch, start, end, result))

        self.hub.asr.submit(PARTIAL, samples, context, offset, self.language, done, stale=stale)

    async def _on_partial(self, ch: int, start: int, end: int, result) -> None:
        self._partial_busy[ch] = False
        if isinstance(result, Exception):
            return
        words, _lang = result
        if not words:
            return
        speaker = f"CH{ch}" if self.channels == 2 else (self.speakers.last or "SPK0")
        role = self.role_of(ch, speaker)
        from ..transcribe import join_words

        if self.vads[ch].open_start == start and self.start.partials:
            await self.emit({"type": "partial", "channel": ch, "speaker": speaker, "role": role,
                             "start": round(start / SR, 3), "end": round(end / SR, 3),
                             "text": join_words([w.text for w in words])})
        # dual-channel only: on a mono stream who is speaking is known once the final segment's
        # voice is matched (OnlineSpeakers), and a rule scoped to the agent must not fire on a guess
        if self.hub.early_alerts and self.channels == 2 and not self.hub.rules_building():
            for v in self.detector.probe(speaker, ch, role, words, (ch, start)):
                await self._alert(v, None, early=True)

    async def _on_final(self, seg, seg_id: str, result, timing: dict, cut_at: float) -> None:
        try:
            self.detector.settle((seg.channel, seg.start))
            if isinstance(result, LookupError):  # dropped: the stream ended without waiting
                return
            if isinstance(result, Exception):
                await self.emit({"type": "error", "code": "asr_failed", "fatal": False,
                                 "detail": f"utterance {seg.start_s:.1f}-{seg.end_s:.1f}s could not be "
                                           f"transcribed ({type(result).__name__}); the post-call analysis "
                                           "will redo it"})
                return
            words, lang = result[0], result[1]
            label = result[2] if len(result) > 2 else None
            if self.language is None and lang:
                self.language = lang
            ch = seg.channel
            speaker = f"CH{ch}" if self.channels == 2 else (label or "SPK0")
            if self.speakers is not None:
                for spk, role in self.speakers.roles().items():
                    self.detector.set_role(spk, role)
            role = self.role_of(ch, speaker)
            if not words:
                if self.detector.early:  # early alerts of this segment the final words do not bear out
                    await self._apply(*self.detector.update(), seg_id)
                return
            from ..transcribe import join_words

            if self.hub.rules_building():  # the similarity layer is still training: wait off the loop
                await asyncio.to_thread(self.hub.rules_ready.wait, 300)
            self.utterances += 1
            utt = self.detector.add(speaker, ch if self.channels == 2 else None, role, words, seg_id)
            await self.emit({"type": "utterance", "id": seg_id, "channel": ch, "speaker": speaker, "role": role,
                             "start": words[0].start, "end": words[-1].end,
                             "text": join_words([w.text for w in words]),
                             "asr_wait_s": round(timing["wait_s"], 3),
                             "timing": {"segment_end": round(seg.end_s, 3), "cut_at": round(cut_at, 3),
                                        "forced": seg.forced, "asr_wait_s": round(timing["wait_s"], 3),
                                        "asr_decode_s": round(timing["decode_s"], 3), "batch": timing["batch"],
                                        "window_s": timing["window_s"]}},
                            publish=self.hub.publish_utterances)
            await self._apply(*self.detector.update(), seg_id)
            del utt
        finally:
            self.pending -= 1
            if self.pending == 0:
                self._idle.set()

    # ------------------------------------------------------------------ alerts
    async def _apply(self, new, gone, seg_id: str) -> None:
        for v in new:
            await self._alert(v, seg_id)
        for key, v in gone:
            await self._retract(key, v)

    async def _alert(self, v, seg_id: str | None, *, early: bool = False) -> None:
        key = violation_key(v, self.detector.whole_call)
        self._alert_n += 1
        alert_id = f"{self.id[:8]}-{self._alert_n}"
        provisional = key in {(r, v.kind) for r in self.detector.whole_call}
        event = {"type": "violation", "alert_id": alert_id, "utterance_id": seg_id, "provisional": provisional,
                 "early": early, **violation_json(v), "delay_s": round(max(0.0, self.t - v.end), 3)}
        self.alerts[key] = event
        self.hub.db(self._save_alert, alert_id, key, v, provisional, self.t)
        await self.emit(event, publish=True)

    def _save_alert(self, alert_id, key, v, provisional, at_s) -> None:
        self._alert_db[alert_id] = self.hub.store.save_alert(self.id, key, v, provisional=provisional, at_s=at_s)

    async def _retract(self, key, v) -> None:
        event = self.alerts.pop(key, None)
        if event is None:
            return
        alert_id = event["alert_id"]
        self.hub.db(lambda: self._alert_db.get(alert_id) and self.hub.store.retract_alert(self._alert_db[alert_id]))
        reason = "the utterance's final words do not bear it out" if event.get("early") else \
            "no longer holds given what was said since"
        await self.emit({"type": "retracted", "alert_id": alert_id, "rule_id": v.rule_id, "reason": reason},
                        publish=True)

    # ------------------------------------------------------------------ end
    async def finish(self, *, complete: bool, status: str, wait_s: float = 600.0) -> dict:
        """The call is over (complete) or the client is gone: decode what is left, evaluate the
        whole call, store the audio as a call job. Returns the summary event."""
        if self._carry:
            await self.emit({"type": "warning", "code": "partial_sample",
                             "detail": f"{len(self._carry)} trailing byte(s) did not make a whole sample; dropped"})
            self._carry = b""
        if complete:
            for vad in self.vads:
                for seg in vad.flush():
                    self._final(seg)
            try:
                await asyncio.wait_for(self._idle.wait(), wait_s)
            except asyncio.TimeoutError:
                log.warning("stream %s: gave up waiting for %d utterance(s)", self.id, self.pending)
        await asyncio.to_thread(self.spool.close)
        final = self.detector.evaluate()
        job_id = await asyncio.to_thread(self.hub.store.finish, self.id, status=status, complete=complete,
                                         start=self.start, user_id=getattr(self.user, "id", None))
        await self.hub.db_flush()
        missing = [violation_json(v) for v in final if v.kind == "absence"]
        return {"type": "summary", "stream_id": self.id, "duration": round(self.t, 3), "complete": complete,
                "utterances": self.utterances, "violations": [violation_json(v) for v in final],
                "alerts": len(self.alerts), "missing_disclosures": missing, "job_id": job_id,
                "post_call": "queued for full analysis" if job_id else "no audio received"}


__all__ = ["LiveSession", "ProtocolError", "PARTIAL"]
