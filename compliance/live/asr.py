"""One inference worker shared by every live stream (2 cores: parallel decoders would only fight
over them). Final utterances are decoded first, in the order they ended; partial transcripts of
utterances still being spoken only when nothing final is waiting, and dropped when stale.

The worker measures its own lag (how long the oldest waiting final has waited, and the backlog in
seconds of decoding, from the measured speed), which the hub uses to refuse new streams and to
warn streams that the server is behind."""

from __future__ import annotations

import itertools
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..types import Word
from .vad import SR

log = logging.getLogger("compliance.live.asr")

FINAL, PARTIAL = 0, 1


#: finals waiting together are decoded as one clip of at most this many seconds (one encoder pass
#: instead of one each: whisper pads every clip to 30 s, so short utterances cost as much as long
#: ones), separated by this much silence (short enough for the transcriber's VAD to keep one clip)
PACK_MAX_S = 28.0
PACK_GAP_S = 0.3


@dataclass(order=True)
class _Task:
    priority: int
    seq: int
    samples: np.ndarray = field(compare=False)
    context: int = field(compare=False)  # leading samples of left context (their words are dropped)
    offset: float = field(compare=False)  # call time of samples[0]
    language: str | None = field(compare=False)
    done: Callable[[object, float], None] = field(compare=False)
    stale: Callable[[], bool] = field(compare=False, default=lambda: False)
    post: Callable[[list], object] | None = field(compare=False, default=None)
    submitted: float = field(compare=False, default_factory=time.monotonic)

    @property
    def audio_s(self) -> float:
        return len(self.samples) / SR


class AsrWorker:
    def __init__(self, transcriber_factory: Callable[[], object], *, threads: int = 1, pack: bool = True) -> None:
        self._factory = transcriber_factory
        self._transcriber = None
        self._tasks: list[_Task] = []
        self._cond = threading.Condition()
        self._seq = itertools.count()
        self._stop = False
        self._threads: list[threading.Thread] = []
        self._n = max(1, threads)
        self.pack = pack
        self.rtf = 0.25  # decoding seconds per audio second (updated as it runs)
        self._busy_until = 0.0
        self.decoded_s = 0.0
        self.busy_s = 0.0
        self.max_wait_s = 0.0
        self.last_wait_s = 0.0
        self.decodes = 0
        self.packed = 0

    @property
    def transcriber(self):
        if self._transcriber is None:
            self._transcriber = self._factory()
        return self._transcriber

    @transcriber.setter
    def transcriber(self, value) -> None:
        self._transcriber = value

    def start(self) -> None:
        if self._threads:
            return
        self._stop = False
        for i in range(self._n):
            t = threading.Thread(target=self._loop, name=f"live-asr-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        for t in self._threads:
            t.join(timeout=30)
        self._threads = []

    def submit(self, priority: int, samples: np.ndarray, context: int, offset: float, language: str | None,
               done, *, stale=lambda: False, post=None) -> None:
        import heapq

        with self._cond:
            heapq.heappush(self._tasks, _Task(priority, next(self._seq), samples, context, offset, language, done,
                                              stale, post))
            self._cond.notify()

    def idle(self) -> bool:
        with self._cond:
            return not any(t.priority == FINAL for t in self._tasks) and time.monotonic() >= self._busy_until

    def pending(self) -> int:
        with self._cond:
            return sum(t.priority == FINAL for t in self._tasks)

    def lag_s(self) -> float:
        """How far behind the finals are: the oldest one's wait plus the decoding still ahead of it."""
        with self._cond:
            finals = [t for t in self._tasks if t.priority == FINAL]
            now = time.monotonic()
            if not finals:
                return max(0.0, self._busy_until - now)
            oldest = min(t.submitted for t in finals)
            ahead = sum(t.audio_s for t in finals) * self.rtf / (2.0 if self.pack and len(finals) > 1 else 1.0)
            return now - oldest + ahead + max(0.0, self._busy_until - now)

    def _take(self) -> list[_Task]:
        import heapq

        first = heapq.heappop(self._tasks)
        while first.priority == FINAL and first.stale() and self._tasks:
            self._drop(first)
            first = heapq.heappop(self._tasks)
        batch = [first]
        if first.priority != FINAL or not self.pack:
            return batch
        total = first.audio_s
        while self._tasks and self._tasks[0].priority == FINAL and self._tasks[0].language == first.language:
            nxt = self._tasks[0]
            if nxt.stale():
                self._drop(heapq.heappop(self._tasks))
                continue
            if total + PACK_GAP_S + nxt.audio_s > PACK_MAX_S:
                break
            batch.append(heapq.heappop(self._tasks))
            total += PACK_GAP_S + nxt.audio_s
        return batch

    @staticmethod
    def _drop(task: _Task) -> None:
        """A task nobody waits for any more (its stream was dropped): answered without decoding."""
        try:
            task.done(LookupError("stale"), 0.0)
        except Exception:
            log.exception("live ASR callback failed")

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._tasks and not self._stop:
                    self._cond.wait()
                if self._stop:
                    return
                batch = self._take()
                audio_s = sum(t.audio_s for t in batch)
                self._busy_until = time.monotonic() + audio_s * self.rtf
            if batch[0].stale():
                self._busy_until = 0.0
                self._drop(batch[0])
                continue
            t0 = time.monotonic()
            try:
                results = decode_batch(self.transcriber, batch)
            except Exception as exc:  # a decoding failure must not kill the worker
                log.exception("live ASR failed")
                results = [(exc, None)] * len(batch)
            took = time.monotonic() - t0
            self._busy_until = 0.0
            self.decodes += 1
            if audio_s > 0.5 and not isinstance(results[0][0], Exception):
                self.rtf = 0.8 * self.rtf + 0.2 * (took / audio_s)
            for task, (words, lang) in zip(batch, results):
                wait = t0 - task.submitted
                result = words if isinstance(words, Exception) else (words, lang)
                if task.priority == FINAL:
                    self.decoded_s += task.audio_s
                    self.last_wait_s = wait
                    self.max_wait_s = max(self.max_wait_s, wait)
                    if len(batch) > 1:
                        self.packed += 1
                if task.post is not None and not isinstance(result, Exception):
                    try:
                        result = (words, lang, task.post(words))
                    except Exception as exc:
                        log.exception("live ASR post-processing failed")
                        result = exc
                try:
                    task.done(result, wait)
                except Exception:
                    log.exception("live ASR callback failed")
            if batch[0].priority == FINAL:
                self.busy_s += took


def _decode(transcriber, clip: np.ndarray, language: str | None) -> tuple[list[Word], str | None]:
    """Words of one clip (times relative to it). With a faster-whisper transcriber the model is
    called directly, without its VAD: the clip is speech the streaming VAD cut (and packed), and
    the VAD would split a packed clip back into one 30 s window per utterance. Other transcribers
    (tests, other engines) go through their own `transcribe`."""
    clip = np.ascontiguousarray(clip, dtype=np.float32)
    model = getattr(transcriber, "model", None)
    if model is None or not hasattr(model, "transcribe"):
        transcript = transcriber.transcribe(clip, language=language)
        return list(transcript.words), transcript.language
    from ..textnorm import to_simplified

    segments, info = model.transcribe(clip, language=language, beam_size=getattr(transcriber, "beam_size", 5),
                                      word_timestamps=True, vad_filter=False, condition_on_previous_text=False,
                                      initial_prompt=getattr(transcriber, "prompt", None))
    lang = info.language
    words = []
    for seg in segments:
        for w in seg.words or []:
            text = w.word.strip()
            if lang == "zh":
                text = to_simplified(text)
            if text:
                words.append(Word(text=text, start=round(float(w.start), 3), end=round(float(w.end), 3),
                                  probability=round(float(w.probability), 4)))
    return words, lang


def decode_batch(transcriber, batch: list[_Task]) -> list[tuple[list[Word], str | None]]:
    """Decode the tasks' audio as one clip; each task gets the words inside its own stretch (minus
    its left context), in call time."""
    gap = np.zeros(int(PACK_GAP_S * SR), dtype=np.float32)
    parts, spans, pos = [], [], 0
    for t in batch:
        if parts:
            parts.append(gap)
            pos += len(gap)
        parts.append(t.samples)
        spans.append((pos, pos + len(t.samples)))
        pos += len(t.samples)
    words, lang = _decode(transcriber, np.concatenate(parts) if len(parts) > 1 else parts[0], batch[0].language)
    out: list[tuple[list[Word], str | None]] = [([], lang) for _ in batch]
    for w in words:
        mid = (w.start + w.end) / 2 * SR
        for i, (a, b) in enumerate(spans):
            if a + batch[i].context <= mid < b:
                shift = batch[i].offset - a / SR
                out[i][0].append(Word(text=w.text, start=round(max(w.start, a / SR) + shift, 3),
                                      end=round(min(w.end, b / SR) + shift, 3), probability=w.probability))
                break
    return out


def transcribe_segment(transcriber, samples: np.ndarray, context: int, language: str | None,
                       offset_s: float) -> tuple[list[Word], str | None]:
    """Decode `samples` whose first `context` samples are left context (already transcribed: it
    helps the decoder, its words are dropped). Word times come back in call time (+ offset_s)."""
    task = _Task(FINAL, 0, samples, context, offset_s, language, lambda *_: None)
    return decode_batch(transcriber, [task])[0]
