"""The live-stream hub of one server process: the shared ASR worker, the rule engine, the open
streams, their watchers (supervisors, agents), admission control, durability and recovery."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time

from .asr import AsrWorker, DecodeOptions
from .storage import LiveStore

log = logging.getLogger("compliance.live.hub")

WATCH_QUEUE = 1000


class LiveHub:
    def __init__(self, ctx, *, transcriber=None) -> None:
        self.ctx = ctx
        self.store = LiveStore(ctx)
        s = getattr(ctx, "settings", None)
        if s is None:
            from ..config import load_settings

            s = load_settings()
        #: most streams at once (Settings.live_max_streams, COMPLIANCE_LIVE_MAX_STREAMS)
        self.max_streams = int(s.live_max_streams)
        #: refuse new streams (and warn open ones) past this ASR lag, seconds (COMPLIANCE_LIVE_MAX_LAG_S)
        self.max_lag_s = float(s.live_max_lag_s)
        #: the streaming VAD's cut (Settings.live_min_silence_s, live_cut_after_s, ...)
        self.vad_options: dict = {"min_silence_s": s.live_min_silence_s, "max_segment_s": s.live_max_segment_s,
                                  "cut_after_s": s.live_cut_after_s, "cut_silence_s": s.live_cut_silence_s,
                                  "probe_pause_s": s.live_early_pause_s}
        #: early alerts from clause pauses (Settings.live_early_pause_s, live_early_max_busy)
        self.early_alerts = s.live_early_pause_s > 0
        self.early_max_busy = float(s.live_early_max_busy)
        self.publish_utterances = True
        options = DecodeOptions(window_s=float(s.live_asr_window_s), beam_size=int(s.live_beam_size),
                                pack_max_s=float(s.live_pack_max_s),
                                batch_max=max(1, int(s.live_batch_max)))
        self.asr = AsrWorker(self._make_transcriber, options=options)
        if transcriber is not None:
            self.asr.transcriber = transcriber
        self._rules = None
        self._rules_lock = threading.Lock()
        #: warm the models at startup (Settings.live_warmup); `rules_ready` is set once the rule
        #: packs and their similarity layer are built (at once when not warming: built on first use)
        self.warmup = bool(s.live_warmup)
        self.rules_ready = threading.Event()
        self.warm: dict = {}  # what the warm-up did and how long each part took
        self._warmer: threading.Thread | None = None
        self.streams: dict[str, object] = {}
        self.watchers: set = set()
        self.tasks: set = set()
        self._db = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="live-db")
        self._db_pending: list = []
        self._lock = threading.Lock()
        self.recovered: list = []
        self._linker: threading.Thread | None = None
        self._stop = threading.Event()

    # ------------------------------------------------------------------ models
    def _make_transcriber(self):
        from ..pipeline import Analyzer

        return Analyzer(self.ctx.settings, engine=self.ctx.engine).transcriber

    @property
    def rules(self):
        """The rule engine (built once; a second caller waits for the first one's build)."""
        if self._rules is None:
            with self._rules_lock:
                if self._rules is None:
                    from ..detect import load_packs

                    self._rules = load_packs()
        return self._rules

    def rules_building(self) -> bool:
        """True while the warm-up is building the rule packs or their similarity layer (a stream
        then waits for it off the event loop instead of blocking every stream on the build)."""
        return not self.rules_ready.is_set() and self._warmer is not None and self._warmer.is_alive()

    def warm_up(self) -> dict:
        """Build what the first live utterance would otherwise pay for, in this order: the rule
        packs, their similarity layer (trained on first use, seconds), one utterance through the
        engine (segmenter, pinyin tables, automata), then the ASR model and one decode of each kind
        the worker runs (a single clip and a batch). Each part is built once under its own lock,
        so a stream that needs a part while it is being built waits for that build rather than
        starting a second one. Returns the seconds each part took."""
        took: dict = {}
        t0 = time.monotonic()
        try:
            engine = self.rules
            similarity = getattr(engine, "similarity", None)
            if similarity is not None:
                _ = similarity.model
            took["rules_s"] = round(time.monotonic() - t0, 2)
            from .detector import LiveDetector
            from ..types import Word

            detector = LiveDetector(engine, "zh")
            detector.add("CH0", 0, "agent", [Word(text="这款产品保本保收益", start=0.0, end=2.0)], "warm")
            detector.update()
            took["first_utterance_s"] = round(time.monotonic() - t0 - took["rules_s"], 2)
        except Exception as exc:  # e.g. a broken pack: the first stream reports it
            log.warning("live: warming the rule packs failed (%s: %s); they load on first use", type(exc).__name__, exc)
        finally:
            self.rules_ready.set()
        t1 = time.monotonic()
        try:
            self.asr.warm_up(stop=self._stop)
            took["asr_s"] = round(time.monotonic() - t1, 2)
        except Exception as exc:  # e.g. weights not installed: the first stream reports it
            log.warning("live: warming the ASR model failed (%s: %s); it loads on first use", type(exc).__name__, exc)
        self.warm = took
        log.info("live: warmed up in %.1f s (%s)", time.monotonic() - t0, took)
        return took

    # ------------------------------------------------------------------ lifecycle
    def startup(self) -> None:
        self.asr.start()
        self._stop.clear()
        if self.warmup and self._warmer is None:  # in the background: startup is not held up
            self._warmer = threading.Thread(target=self.warm_up, name="live-warmup", daemon=True)
            self._warmer.start()
        elif not self.warmup:
            self.rules_ready.set()
        try:
            self.recovered = self.store.recover()
        except Exception:
            log.exception("live: recovery of interrupted streams failed")
        self._stop.clear()
        self._linker = threading.Thread(target=self._link_loop, name="live-linker", daemon=True)
        self._linker.start()

    def shutdown(self) -> None:
        self._stop.set()
        self.asr.stop()
        self._db.shutdown(wait=True)
        self._db = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="live-db")

    def _link_loop(self) -> None:
        """Link live alerts to the post-call violations once the streams' jobs are done."""
        from sqlmodel import Session, select

        from .storage import LiveStreamRecord

        while not self._stop.wait(2.0):
            try:
                with Session(self.ctx.engine) as session:
                    ids = session.exec(select(LiveStreamRecord.id).where(
                        LiveStreamRecord.job_id.is_not(None), LiveStreamRecord.linked_at.is_(None))).all()
                for stream_id in ids:
                    self.store.link(stream_id)
            except Exception:
                log.exception("live: linking alerts failed")

    # ------------------------------------------------------------------ admission
    def admit(self) -> str | None:
        """None if a new stream may start, else why not."""
        if len(self.streams) >= self.max_streams:
            return f"over capacity: {len(self.streams)} live streams already (the most is {self.max_streams})"
        lag = self.asr.lag_s()
        if lag > self.max_lag_s:
            return f"over capacity: transcription is {lag:.1f} s behind (the limit is {self.max_lag_s:g} s)"
        return None

    # ------------------------------------------------------------------ database writes, in order
    def db(self, fn, *args) -> None:
        fut = self._db.submit(fn, *args)
        self._db_pending.append(fut)
        self._db_pending = [f for f in self._db_pending if not f.done()]

    async def db_flush(self) -> None:
        pending = [asyncio.wrap_future(f) for f in self._db_pending]
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    # ------------------------------------------------------------------ watchers
    def publish(self, session, event: dict) -> None:
        payload = {**event, "stream_id": session.id, "agent_id": session.agent_id}
        for watcher in list(self.watchers):
            watcher.offer(payload)

    def snapshot(self, user) -> list[dict]:
        out = []
        for s in list(self.streams.values()):
            if not visible(user, s.agent_id):
                continue
            out.append({"stream_id": s.id, "agent_id": s.agent_id, "channels": s.channels,
                        "started_at": s.started_at, "t": round(s.t, 3), "utterances": s.utterances,
                        "alerts": list(s.alerts.values())})
        return out

    def stats(self) -> dict:
        return {"streams": len(self.streams), "max_streams": self.max_streams, "lag_s": round(self.asr.lag_s(), 3),
                "max_lag_s": self.max_lag_s, "asr_rtf": round(self.asr.rtf, 3),
                "asr_cost_s": [round(self.asr.fixed_s, 3), round(self.asr.per_s, 3)],
                "asr_busy_s": round(self.asr.busy_s, 1), "asr_decoded_s": round(self.asr.decoded_s, 1),
                "asr_partial_busy_s": round(self.asr.partial_busy_s, 1),
                "asr_window_s": self.asr.options.window_s, "asr_batches": self.asr.batches,
                "asr_batched": self.asr.batched, "warm_up": self.warm,
                "asr_max_wait_s": round(self.asr.max_wait_s, 3)}


def visible(user, agent_id: str | None) -> bool:
    if user.role != "agent":
        return True
    return bool(user.agent_id) and agent_id == user.agent_id


class Watcher:
    """A supervisor's or agent's subscription: events of the streams the user may see."""

    def __init__(self, user, loop: asyncio.AbstractEventLoop, utterances: bool = False) -> None:
        self.user, self.loop, self.utterances = user, loop, utterances
        self.queue: asyncio.Queue = asyncio.Queue(WATCH_QUEUE)
        self.dropped = 0

    def offer(self, event: dict) -> None:
        if not visible(self.user, event.get("agent_id")):
            return
        if event["type"] in ("utterance", "partial") and not self.utterances:
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped += 1

    def __hash__(self) -> int:
        return id(self)


_ = time
