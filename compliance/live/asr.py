"""One inference worker shared by every live stream (2 cores: parallel decoders would only fight
over them). Final utterances are decoded first, in the order they ended; partial transcripts of
utterances still being spoken only when nothing final is waiting and the worker has been mostly
idle (`busy_fraction`), and dropped when stale.

Live decodes are cheaper than post-call ones: whisper's encoder normally runs on a 30 s window
whatever the clip's length, which is most of the cost of a short utterance; the live path pads a
clip only to `DecodeOptions.window_s` (10 s by default, growing in 5 s steps for longer clips) and
decodes with a smaller beam (2 by default; Settings.live_asr_window_s, live_beam_size;
bench/stream.py --phases cer gives the accuracy cost).

The worker measures its own lag (how long the oldest waiting final has waited, and the backlog in
seconds of decoding, from the measured speed), which the hub uses to refuse new streams and to
warn streams that the server is behind."""

from __future__ import annotations

import collections
import dataclasses
import itertools
import math
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..transcribe import whisper_word
from ..types import Word
from .vad import SR

log = logging.getLogger("compliance.live.asr")

FINAL, PARTIAL = 0, 1


#: finals waiting together are decoded as one clip of at most this many seconds (one decoder run
#: instead of one each), separated by this much silence. With a short encoder window a pack is
#: kept to about that window: the encoder's cost grows faster than the audio (attention), so a
#: 28 s pack in a 30 s window costs more per second than separate 10 s windows.
PACK_MAX_S = 28.0
PACK_GAP_S = 0.3
#: most tokens a partial decode (DecodeOptions.fallback False) may give per second of audio (speech
#: runs at about 4-6 Chinese characters or 2-4 English words a second)
TOKENS_PER_S = 12
#: whisper's own window, seconds
FULL_WINDOW_S = 30.0
#: encoder windows grow in steps of this many seconds to fit a longer clip
WINDOW_STEP_S = 5.0


@dataclass
class DecodeOptions:
    """How the live path decodes (Settings.live_asr_window_s, live_beam_size, live_pack_max_s)."""

    #: smallest encoder window, seconds (30: whisper's standard window, as the post-call analysis)
    window_s: float = FULL_WINDOW_S
    #: beam size (0: the transcriber's own)
    beam_size: int = 0
    #: longest pack of waiting finals, seconds (0: the window less half a second)
    pack_max_s: float = 0.0
    #: packs decoded together as one batch (Settings.live_batch_max; 1: one decode per pack)
    batch_max: int = 1
    #: False: one greedy-temperature pass, no fallback to higher temperatures, and at most
    #: TOKENS_PER_S tokens a second of audio: a partial decode (of an utterance cut at a pause in
    #: mid-sentence, which whisper may loop on) costs one bounded pass, so that a final arriving
    #: meanwhile waits little; the final decode of the same words has the full treatment
    fallback: bool = True

    @property
    def pack_limit_s(self) -> float:
        if self.pack_max_s > 0:
            return self.pack_max_s
        return min(PACK_MAX_S, max(self.window_s, 5.0) - 0.5)


def window_for(clip_s: float, window_s: float) -> float:
    """The encoder window (seconds) a clip of `clip_s` is padded to: `window_s`, or the next step
    up that holds the clip with half a second to spare, at most whisper's 30 s."""
    if window_s <= 0 or window_s >= FULL_WINDOW_S:
        return FULL_WINDOW_S
    need = clip_s + 0.5
    w = window_s
    while w < need and w < FULL_WINDOW_S:
        w += WINDOW_STEP_S
    return min(w, FULL_WINDOW_S)


@dataclass(order=True)
class _Task:
    priority: int
    seq: int
    samples: np.ndarray = field(compare=False)
    context: int = field(compare=False)  # leading samples of left context (their words are dropped)
    offset: float = field(compare=False)  # call time of samples[0]
    language: str | None = field(compare=False)
    done: Callable[[object, dict], None] = field(compare=False)
    stale: Callable[[], bool] = field(compare=False, default=lambda: False)
    post: Callable[[list], object] | None = field(compare=False, default=None)
    submitted: float = field(compare=False, default_factory=time.monotonic)

    @property
    def audio_s(self) -> float:
        return len(self.samples) / SR


class AsrWorker:
    def __init__(self, transcriber_factory: Callable[[], object], *, threads: int = 1, pack: bool = True,
                 options: DecodeOptions | None = None) -> None:
        self._factory = transcriber_factory
        self._transcriber = None
        self._tasks: list[_Task] = []
        self._cond = threading.Condition()
        self._seq = itertools.count()
        self._stop = False
        self._threads: list[threading.Thread] = []
        self._n = max(1, threads)
        self.pack = pack
        self.options = options or DecodeOptions()
        self.rtf = 0.25  # decoding seconds per audio second (updated as it runs)
        #: decode time = fixed_s + per_s * audio seconds, fitted to the recent decodes (a short clip
        #: costs far more per second than a long one: the window and the decoder's start)
        self.fixed_s, self.per_s = 0.0, self.rtf
        self._costs: collections.deque = collections.deque(maxlen=64)  # (audio_s, took)
        self._busy_until = 0.0
        self._busy_start = 0.0
        self._recent: collections.deque = collections.deque()  # (start, end) monotonic of recent decodes
        self.decoded_s = 0.0
        self.busy_s = 0.0  # decoding finals, seconds
        self.partial_busy_s = 0.0  # decoding partials, seconds
        self.max_wait_s = 0.0
        self.last_wait_s = 0.0
        self.decodes = 0
        self.partials = 0
        self.packed = 0
        self.batches = 0  # decodes of more than one pack at once
        self.batched = 0  # packs decoded in them
        self.redone = 0  # packs of a batch decoded again alone (unfinished or low-confidence output)
        self._load_lock = threading.Lock()

    @property
    def partial_options(self) -> DecodeOptions:
        """How partial decodes go: one bounded pass (see DecodeOptions.fallback)."""
        return dataclasses.replace(self.options, fallback=False)

    @property
    def transcriber(self):
        """The model, loaded on first use (or by `warm_up`) once: a second caller waits for the
        load under way instead of loading another copy."""
        if self._transcriber is None:
            with self._load_lock:
                if self._transcriber is None:
                    self._transcriber = self._factory()
        return self._transcriber

    @transcriber.setter
    def transcriber(self, value) -> None:
        self._transcriber = value

    def warm_up(self, stop: threading.Event | None = None) -> None:
        """Load the model and run it once the way the worker will (the encoder on a window, a
        single and, with batching, a batch of two; a few decoder steps; the word alignment): the
        first call of a freshly loaded model pays for allocations and lazy set-up that a stream
        should not see. Not a whole decode of a made-up clip: whisper may hallucinate on it up to
        its 448-token limit, through every fallback temperature (a minute of CPU). Called from a
        background thread at startup, directly (the model takes concurrent calls), not through
        the queue."""
        transcriber = self.transcriber
        if stop is not None and stop.is_set():
            return
        model = getattr(transcriber, "model", None)
        if hasattr(model, "feature_extractor") and hasattr(model, "hf_tokenizer"):
            _warm_whisper(model, self.options, getattr(transcriber, "beam_size", 5))
        else:  # another engine: one short clip through its own transcribe
            transcriber.transcribe(np.zeros(SR, dtype=np.float32), language="zh")

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
        """Queue a clip. `done(result, timing)` is called from the worker thread: result is
        (words, language[, post's result]) or an exception (LookupError: dropped, stale); timing
        has wait_s (queued), decode_s (the decode it was part of), batch (clips in it), window_s."""
        import heapq

        with self._cond:
            heapq.heappush(self._tasks, _Task(priority, next(self._seq), samples, context, offset, language, done,
                                              stale, post))
            self._cond.notify()

    def idle(self) -> bool:
        with self._cond:
            return not any(t.priority == FINAL for t in self._tasks) and time.monotonic() >= self._busy_until

    def busy_fraction(self, over_s: float = 10.0) -> float:
        """Share of the last `over_s` seconds the worker spent decoding (the decode under way
        included)."""
        now = time.monotonic()
        since = now - over_s
        with self._cond:
            spans = list(self._recent)
            if self._busy_until > 0.0:
                spans.append((self._busy_start, now))
        busy = sum(max(0.0, min(e, now) - max(s, since)) for s, e in spans)
        return min(1.0, busy / over_s)

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
            audio = sum(t.audio_s for t in finals) + PACK_GAP_S * (len(finals) - 1)
            decodes = len(finals) if not self.pack else max(1, math.ceil(audio / self.options.pack_limit_s))
            decodes = math.ceil(decodes / max(1, self.options.batch_max))  # packs decoded together
            ahead = decodes * self.fixed_s + audio * self.per_s
            return now - oldest + ahead + max(0.0, self._busy_until - now)

    def estimate_s(self, audio_s: float) -> float:
        """Expected decoding time of a clip of `audio_s` seconds."""
        return self.fixed_s + self.per_s * audio_s

    def _learn(self, audio_s: float, took: float) -> None:
        self._costs.append((audio_s, took))
        self.rtf = 0.8 * self.rtf + 0.2 * (took / audio_s)
        if len(self._costs) < 4:
            self.fixed_s, self.per_s = 0.0, self.rtf
            return
        x = np.array([c[0] for c in self._costs])
        y = np.array([c[1] for c in self._costs])
        if np.ptp(x) < 1.0:  # all about as long: no slope to fit
            self.fixed_s, self.per_s = 0.0, float(y.sum() / x.sum())
            return
        per_s, fixed_s = np.polyfit(x, y, 1)
        if per_s < 0 or fixed_s < 0:  # noise: a line through the origin instead
            self.fixed_s, self.per_s = 0.0, float(y.sum() / x.sum())
        else:
            self.fixed_s, self.per_s = float(fixed_s), float(per_s)

    def _take(self) -> list[_Task]:
        """The next decode: the oldest final and the finals queued behind it that fit in one pack
        (stale ones answered without decoding), else the oldest partial."""
        import heapq

        batch: list[_Task] = []
        total = 0.0
        limit = self.options.pack_limit_s
        while self._tasks:
            nxt = self._tasks[0]
            if batch and (nxt.priority != FINAL or not self.pack or nxt.language != batch[0].language):
                break
            if nxt.stale():
                self._drop(heapq.heappop(self._tasks))
                continue
            if batch and total + PACK_GAP_S + nxt.audio_s > limit:
                break
            batch.append(heapq.heappop(self._tasks))
            total += (PACK_GAP_S if len(batch) > 1 else 0.0) + nxt.audio_s
            if nxt.priority != FINAL:
                break
        return batch

    def _take_batch(self) -> list[list[_Task]]:
        """The next decode as packs: the first pack as `_take` gives it and, when it holds finals,
        up to `options.batch_max - 1` more packs of the finals queued behind it (same language,
        same encoder window: one batch is one tensor), decoded together. Packs are filled first:
        a short encoder window holds several utterances for the price of one, while a batch costs
        the encoder each pack's window again and saves on the decoder's steps."""
        import heapq

        first = self._take()
        packs = [first] if first else []
        if not first or first[0].priority != FINAL or not self.pack:
            return packs
        window = window_for(_pack_s(first), self.options.window_s)
        while len(packs) < max(1, self.options.batch_max):
            if not self._tasks or self._tasks[0].priority != FINAL or self._tasks[0].language != first[0].language:
                break
            nxt = self._take()
            if not nxt:
                break
            if window_for(_pack_s(nxt), self.options.window_s) != window:  # back in the queue, in its place
                for t in nxt:
                    heapq.heappush(self._tasks, t)
                break
            packs.append(nxt)
        return packs

    @staticmethod
    def _drop(task: _Task) -> None:
        """A task nobody waits for any more (its stream was dropped, or the partial is out of
        date): answered without decoding."""
        try:
            task.done(LookupError("stale"), {"wait_s": 0.0, "decode_s": 0.0, "batch": 0, "window_s": 0.0})
        except Exception:
            log.exception("live ASR callback failed")

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._tasks and not self._stop:
                    self._cond.wait()
                if self._stop:
                    return
                packs = self._take_batch()
                if not packs:
                    continue
                audio_s = sum(_pack_s(p) for p in packs)
                self._busy_start = time.monotonic()
                self._busy_until = self._busy_start + self.estimate_s(audio_s)
            t0 = time.monotonic()
            redone = 0
            try:
                options = self.options if packs[0][0].priority == FINAL else self.partial_options
                results = decode_packs(self.transcriber, packs, options)
                redone = getattr(results, "redone", 0)
            except Exception as exc:  # a decoding failure must not kill the worker
                log.exception("live ASR failed")
                results = [[(exc, None)] * len(p) for p in packs]
            t1 = time.monotonic()
            took = t1 - t0
            with self._cond:
                self._busy_until = 0.0
                self._recent.append((t0, t1))
                while self._recent and self._recent[0][1] < t1 - 60.0:
                    self._recent.popleft()
            final = packs[0][0].priority == FINAL
            if final:
                self.decodes += 1
                self.busy_s += took
                if len(packs) > 1:
                    self.batches += 1
                    self.batched += len(packs)
                    self.redone += redone
            else:
                self.partials += 1
                self.partial_busy_s += took
            if final and audio_s > 0.5 and not isinstance(results[0][0][0], Exception):
                self._learn(audio_s, took)  # the lag is the finals' (partials are bounded, and optional)
            window = window_for(max(_pack_s(p) for p in packs), self.options.window_s)
            for batch, batch_results in zip(packs, results):
                for task, (words, lang) in zip(batch, batch_results):
                    wait = t0 - task.submitted
                    timing = {"wait_s": wait, "decode_s": took, "batch": len(batch), "packs": len(packs),
                              "window_s": window}
                    result = words if isinstance(words, Exception) else (words, lang)
                    if final:
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
                        task.done(result, timing)
                    except Exception:
                        log.exception("live ASR callback failed")


def _warm_whisper(model, options: DecodeOptions, default_beam: int = 5) -> None:
    """One pass through each CTranslate2 call a live decode makes, on a second of silence, with the
    decoder held to a few tokens (see AsrWorker.warm_up)."""
    from faster_whisper.tokenizer import Tokenizer

    fe = model.feature_extractor
    clip = np.zeros(SR, dtype=np.float32)
    model.transcribe(clip, language="zh", vad_filter=False)  # builds options and features; decodes nothing
    frames = int(round(window_for(1.0, options.window_s) * SR / fe.hop_length))
    f = fe(clip)[:, :frames]
    f = np.pad(f, ((0, 0), (0, frames - f.shape[-1]))) if f.shape[-1] < frames else f
    tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language="zh")
    prompt = model.get_prompt(tokenizer, [], without_timestamps=False)
    text = tokenizer.encode(" 好")
    for n in sorted({1, 2 if options.batch_max > 1 else 1}):
        encoded = model.encode(np.ascontiguousarray(np.stack([f] * n)))
        model.model.generate(encoded, [list(prompt) for _ in range(n)], beam_size=options.beam_size or default_beam,
                             max_length=len(prompt) + 4, return_scores=True, return_no_speech_prob=True)
        model.model.align(encoded, tokenizer.sot_sequence, [list(text) for _ in range(n)], [frames] * n)


def _pack_s(batch: list[_Task]) -> float:
    """Seconds of the clip a pack of tasks is decoded as (their audio and the gaps between)."""
    return sum(t.audio_s for t in batch) + PACK_GAP_S * (len(batch) - 1)


class _Windowed:
    """A faster-whisper model seen through a shorter encoder window: `encode` keeps the first
    `frames` mel frames of the 30 s (3000-frame) padded window it is given, so the encoder works on
    the clip (padded to the window) instead of 30 s. Everything else is the model's own code
    (`WhisperModel.transcribe` and `generate_segments` run with this object as `self`), so the
    decoding options, timestamps and word alignment are unchanged. Stateless: the shared model is
    not modified (faster-whisper's `chunk_length` would change its feature extractor for every
    caller, and still pads the encoder input to 3000 frames)."""

    def __init__(self, model, frames: int) -> None:
        self._model = model
        self._frames = frames

    def __getattr__(self, name):
        return getattr(self._model, name)

    def encode(self, features):
        if features.shape[-1] > self._frames:
            features = np.ascontiguousarray(features[..., : self._frames])
        return self._model.encode(features)

    def generate_segments(self, *args, **kwargs):
        from faster_whisper import WhisperModel

        return WhisperModel.generate_segments(self, *args, **kwargs)

    def transcribe(self, *args, **kwargs):
        from faster_whisper import WhisperModel

        return WhisperModel.transcribe(self, *args, **kwargs)


def _decode(transcriber, clip: np.ndarray, language: str | None,
            options: DecodeOptions | None = None) -> tuple[list[Word], str | None]:
    """Words of one clip (times relative to it). With a faster-whisper transcriber the model is
    called directly, without its VAD (the clip is speech the streaming VAD cut, and packed: the VAD
    would split a packed clip back into one 30 s window per utterance), with the encoder window cut
    to `options.window_s` (see `window_for`). Other transcribers (tests, other engines) go through
    their own `transcribe`."""
    clip = np.ascontiguousarray(clip, dtype=np.float32)
    model = getattr(transcriber, "model", None)
    if model is None or not hasattr(model, "transcribe"):
        transcript = transcriber.transcribe(clip, language=language)
        return list(transcript.words), transcript.language
    options = options or DecodeOptions()
    window = window_for(len(clip) / SR, options.window_s)
    if window < FULL_WINDOW_S and hasattr(model, "feature_extractor"):
        frames = int(round(window * SR / model.feature_extractor.hop_length))
        model = _Windowed(model, frames)
    beam = options.beam_size or getattr(transcriber, "beam_size", 5)
    bounded = {} if options.fallback else {"temperature": 0.0,
                                           "max_new_tokens": int(TOKENS_PER_S * len(clip) / SR) + 8}
    segments, info = model.transcribe(clip, language=language, beam_size=beam,
                                      word_timestamps=True, vad_filter=False, condition_on_previous_text=False,
                                      initial_prompt=getattr(transcriber, "prompt", None), **bounded)
    lang = info.language
    words = [w for w in (whisper_word(x.word, x.start, x.end, x.probability, lang)
                         for seg in segments for x in seg.words or []) if w.text]
    return words, lang


def _pack_clip(batch: list[_Task]) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """The tasks' audio as one clip (PACK_GAP_S of silence between them) and each one's span in it."""
    gap = np.zeros(int(PACK_GAP_S * SR), dtype=np.float32)
    parts, spans, pos = [], [], 0
    for t in batch:
        if parts:
            parts.append(gap)
            pos += len(gap)
        parts.append(t.samples)
        spans.append((pos, pos + len(t.samples)))
        pos += len(t.samples)
    return (np.concatenate(parts) if len(parts) > 1 else parts[0]), spans


def _split(batch: list[_Task], spans, words: list[Word], lang) -> list[tuple[list[Word], str | None]]:
    """Each task's words of a pack's words: those inside its own stretch (minus its left context),
    in call time."""
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


def decode_batch(transcriber, batch: list[_Task],
                 options: DecodeOptions | None = None) -> list[tuple[list[Word], str | None]]:
    """Decode the tasks' audio as one clip; each task gets the words inside its own stretch (minus
    its left context), in call time."""
    clip, spans = _pack_clip(batch)
    words, lang = _decode(transcriber, clip, batch[0].language, options)
    return _split(batch, spans, words, lang)


class _Decoded(list):
    """decode_packs' answer: per pack, per task (words, language); `redone`: packs of a batch that
    were decoded again alone."""

    redone = 0


def decode_packs(transcriber, packs: list[list[_Task]], options: DecodeOptions | None = None) -> _Decoded:
    """Decode several packs (each one clip, see decode_batch). One pack, or a transcriber that is
    not faster-whisper, or no language given: one decode per pack. Otherwise the packs' clips are
    decoded as one batch (`_decode_many`); a pack whose batched output is not final (whisper
    stopped before the end of the clip, or the output fails the temperature-fallback checks) is
    decoded again alone the usual way, so every pack ends up with what decode_batch would give."""
    options = options or DecodeOptions()
    out = _Decoded()
    model = getattr(transcriber, "model", None)
    language = packs[0][0].language if packs and packs[0] else None
    if len(packs) < 2 or language is None or not hasattr(model, "feature_extractor") \
            or not hasattr(model, "hf_tokenizer") or any(p[0].language != language for p in packs):
        out.extend(decode_batch(transcriber, p, options) for p in packs)
        return out
    clips = [_pack_clip(p) for p in packs]
    decoded = _decode_many(transcriber, [c for c, _ in clips], language, options)
    for pack, (_clip, spans), got in zip(packs, clips, decoded):
        if got is None:
            out.append(decode_batch(transcriber, pack, options))
            out.redone += 1
        else:
            out.append(_split(pack, spans, *got))
    return out


class _Aligned:
    """The model with one clip's word alignment already computed (by the batch's one `align`
    call): faster-whisper's own `add_word_timestamps` then runs on it unchanged, per clip."""

    def __init__(self, model, alignment) -> None:
        self._model = model
        self._alignment = alignment

    def __getattr__(self, name):
        return getattr(self._model, name)

    def find_alignment(self, *_args, **_kwargs):
        return [self._alignment]

    def add_word_timestamps(self, *args, **kwargs):
        from faster_whisper import WhisperModel

        return WhisperModel.add_word_timestamps(self, *args, **kwargs)


def _decode_many(transcriber, clips: list[np.ndarray], language: str,
                 options: DecodeOptions) -> list[tuple[list[Word], str] | None]:
    """Several clips through faster-whisper's first decoding pass at once: one encoder call on
    the batch of (windowed) mel features, one batched beam search (CTranslate2 `generate` takes a
    batch of encoder outputs; the prompts are the same, so of the same length as it requires), one
    batched `align` for the word times. Everything else is what `_decode` does through
    `WhisperModel.transcribe`, step by step: the same options (transcribe() builds them; its
    generator is never run), features, prompt, generate arguments at temperature 0, segment split
    and word timestamps. A clip gets None where the single path would go on: its output fails the
    fallback thresholds (it would be decoded again at a higher temperature) or ends before the clip
    does (it would seek and decode the rest). On CPU the encoder costs the same batched or not; the
    saving is the decoder's per-step overhead, shared by the batch."""
    from faster_whisper.tokenizer import Tokenizer
    from faster_whisper.transcribe import get_compression_ratio

    model = transcriber.model
    fe = model.feature_extractor
    window = window_for(max(len(c) for c in clips) / SR, options.window_s)
    frames = int(round(window * SR / fe.hop_length))
    beam = options.beam_size or getattr(transcriber, "beam_size", 5)
    _segments, info = model.transcribe(clips[0], language=language, beam_size=beam, word_timestamps=True,
                                       vad_filter=False, condition_on_previous_text=False,
                                       initial_prompt=getattr(transcriber, "prompt", None))
    opts = info.transcription_options
    feats, contents = [], []
    for clip in clips:
        f = fe(np.ascontiguousarray(clip, dtype=np.float32))
        n = f.shape[-1] - 1  # content frames, as generate_segments counts them
        f = f[:, : min(n, frames)]
        if f.shape[-1] < frames:  # pad_or_trim's zeros, then the window (see _Windowed)
            f = np.pad(f, ((0, 0), (0, frames - f.shape[-1])))
        feats.append(f)
        contents.append(n)
    encoder_output = model.encode(np.ascontiguousarray(np.stack(feats)))
    tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language=language)
    previous: list[int] = []
    if opts.initial_prompt is not None:
        previous = tokenizer.encode(" " + opts.initial_prompt.strip()) if isinstance(opts.initial_prompt, str) \
            else list(opts.initial_prompt)
    prompt = model.get_prompt(tokenizer, previous, without_timestamps=opts.without_timestamps, prefix=opts.prefix,
                              hotwords=opts.hotwords)
    max_length = len(prompt) + opts.max_new_tokens if opts.max_new_tokens is not None else model.max_length
    results = model.model.generate(
        encoder_output, [list(prompt) for _ in clips], beam_size=opts.beam_size, patience=opts.patience,
        length_penalty=opts.length_penalty, repetition_penalty=opts.repetition_penalty,
        no_repeat_ngram_size=opts.no_repeat_ngram_size, max_length=max_length, return_scores=True,
        return_no_speech_prob=True, suppress_blank=opts.suppress_blank, suppress_tokens=opts.suppress_tokens,
        max_initial_timestamp_index=int(round(opts.max_initial_timestamp / model.time_precision)))
    pending = []  # (index, segments, where the single path would seek next)
    out: list[tuple[list[Word], str] | None] = [None] * len(clips)
    for i, result in enumerate(results):
        tokens = result.sequences_ids[0]
        seq_len = len(tokens)
        avg_logprob = result.scores[0] * (seq_len ** opts.length_penalty) / (seq_len + 1)
        low = opts.log_prob_threshold is not None and avg_logprob < opts.log_prob_threshold
        if opts.no_speech_threshold is not None and result.no_speech_prob > opts.no_speech_threshold and low:
            out[i] = ([], language)  # silence: the single path skips the window
            continue
        if low or (opts.compression_ratio_threshold is not None and
                   get_compression_ratio(tokenizer.decode(tokens).strip()) > opts.compression_ratio_threshold):
            continue  # it would fall back to a higher temperature: decoded again alone
        segments, seek, _single_ending = model._split_segments_by_timestamps(
            tokenizer=tokenizer, tokens=tokens, time_offset=0.0, segment_size=contents[i],
            segment_duration=contents[i] * fe.time_per_frame, seek=0)
        pending.append((i, segments, seek))
    if not pending:
        return out
    text_tokens = [[[t for t in tokens if t < tokenizer.eot] for tokens in (s["tokens"] for s in segs)]
                   for _i, segs, _e in pending]
    flat = [[t for part in parts for t in part] for parts in text_tokens]
    if len(pending) == len(clips):
        alignments = model.find_alignment(tokenizer, flat, encoder_output, contents)
    else:  # the batch's encoder output is one tensor: align every clip, use the ones kept
        by_index = dict(zip((p[0] for p in pending), flat))
        everything = model.find_alignment(tokenizer, [by_index.get(i, []) for i in range(len(clips))],
                                          encoder_output, contents)
        alignments = [everything[i] for i, _s, _e in pending]
    for (i, segments, seek), alignment in zip(pending, alignments):
        _Aligned(model, alignment).add_word_timestamps([segments], tokenizer, None, contents[i],
                                                       opts.prepend_punctuations, opts.append_punctuations,
                                                       last_speech_timestamp=0.0)
        if seek < contents[i]:  # whisper stopped short: the single path seeks to the last word and goes on
            ends = [w["end"] for s in segments for w in s.get("words") or []]
            if ends and ends[-1] > 0:
                seek = round(ends[-1] * model.frames_per_second)
            if seek < contents[i]:
                continue  # decoded again alone
        words = []
        for seg in segments:
            if seg["start"] == seg["end"] or not tokenizer.decode(seg["tokens"]).strip():
                continue
            words += [w for x in seg.get("words") or []
                      if (w := whisper_word(x["word"], x["start"], x["end"], x["probability"], language)).text]
        out[i] = (words, language)
    return out


def transcribe_segment(transcriber, samples: np.ndarray, context: int, language: str | None,
                       offset_s: float, options: DecodeOptions | None = None) -> tuple[list[Word], str | None]:
    """Decode `samples` whose first `context` samples are left context (already transcribed: it
    helps the decoder, its words are dropped). Word times come back in call time (+ offset_s)."""
    task = _Task(FINAL, 0, samples, context, offset_s, language, lambda *_: None)
    return decode_batch(transcriber, [task], options)[0]
