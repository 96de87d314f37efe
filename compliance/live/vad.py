"""Streaming voice activity detection: cuts one channel's audio into utterances as it arrives.

Silero VAD (the ONNX model faster-whisper ships) scores each 32 ms window (512 samples at 16 kHz,
with the previous window's last 64 samples as context, exactly as faster-whisper's offline VAD
does, so the scores equal the offline ones). A hysteresis state machine turns the scores into
speech segments: speech starts at a score >= `threshold`, ends once the score stays below
`threshold - 0.15` for `min_silence_s`, or, once the segment is `cut_after_s` long, for the
shorter `cut_silence_s` (a clause pause: a long turn is cut clause by clause, so what was said is
final soon after it was said instead of when the speaker stops); a segment longer than
`max_segment_s` is cut at its longest inner pause. A pause of at least `probe_pause_s` that did
not end the segment (the speaker went on) is reported (`take_pause`) as speech resumes: the live
session may decode what was said before it and check it, so that an offending clause said in the
middle of a turn is alerted at its own pause, not when the turn is cut. Cost: about 0.5 % of one
core per channel."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

SR = 16000
WIN = 512
CTX = 64
WIN_S = WIN / SR

_model = None
_model_lock = threading.Lock()


def silero():
    global _model
    with _model_lock:
        if _model is None:
            from faster_whisper.vad import get_vad_model

            _model = get_vad_model()
        return _model


class AudioBuffer:
    """A channel's recent audio (float32, 16 kHz) addressed by absolute sample index."""

    def __init__(self, capacity: int = SR * 30) -> None:
        self._data = np.zeros(capacity, dtype=np.float32)
        self.base = 0  # absolute index of _data[0]
        self.size = 0  # samples held
        self.total = 0  # samples ever appended (absolute end)

    def append(self, x: np.ndarray) -> None:
        n = len(x)
        if self.size + n > len(self._data):
            cap = max(len(self._data) * 2, self.size + n)
            data = np.zeros(cap, dtype=np.float32)
            data[: self.size] = self._data[: self.size]
            self._data = data
        self._data[self.size: self.size + n] = x
        self.size += n
        self.total += n

    def get(self, start: int, end: int) -> np.ndarray:
        """Samples [start, end) (absolute), clipped to what is held."""
        s = max(start, self.base) - self.base
        e = min(end, self.total) - self.base
        if e <= s:
            return np.zeros(0, dtype=np.float32)
        return self._data[s:e].copy()

    def trim(self, keep_from: int) -> None:
        """Forget samples before `keep_from` (absolute)."""
        drop = min(max(0, keep_from - self.base), self.size)
        if drop < SR * 5:  # move memory only now and then
            return
        self._data[: self.size - drop] = self._data[drop: self.size]
        self.size -= drop
        self.base += drop
        if len(self._data) > 4 * max(self.size, SR * 30):
            self._data = self._data[: max(self.size * 2, SR * 30)].copy()


@dataclass
class Segment:
    """Speech from sample `start` to `end` (absolute, 16 kHz) on one channel."""

    channel: int
    start: int
    end: int
    forced: bool = False  # cut because it grew too long, not at a pause

    @property
    def start_s(self) -> float:
        return self.start / SR

    @property
    def end_s(self) -> float:
        return self.end / SR


class StreamingVad:
    def __init__(self, channel: int = 0, *, threshold: float = 0.5, min_silence_s: float = 0.5,
                 min_speech_s: float = 0.2, max_segment_s: float = 12.0, pad_s: float = 0.15,
                 min_cut_pause_s: float = 0.12, keep_s: float = 3.0, cut_after_s: float = 0.0,
                 cut_silence_s: float = 0.25, probe_pause_s: float = 0.0) -> None:
        self.channel = channel
        self.keep_s = keep_s
        self.threshold, self.neg = threshold, threshold - 0.15
        self.min_silence = max(1, round(min_silence_s / WIN_S))
        #: past this many windows of segment (0: never), `cut_silence` windows of silence end it
        self.cut_after = round(cut_after_s / WIN_S) if cut_after_s > 0 else 0
        self.cut_silence = min(self.min_silence, max(1, round(cut_silence_s / WIN_S)))
        self.min_speech = max(1, round(min_speech_s / WIN_S))
        #: this many windows of silence inside a segment are a pause worth reporting (0: never)
        self.probe_pause = max(1, round(probe_pause_s / WIN_S)) if probe_pause_s > 0 else 0
        self._pause: tuple[int, int] | None = None  # (segment start window, speech end window)
        self.max_segment = round(max_segment_s / WIN_S)
        self.min_cut_pause = max(1, round(min_cut_pause_s / WIN_S))
        self.pad = int(pad_s * SR)
        self.buffer = AudioBuffer()
        self._pending = np.zeros(0, dtype=np.float32)
        self._ctx = np.zeros(CTX, dtype=np.float32)
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._k = 0  # windows scored so far
        self.in_speech = False
        self._seg_start = 0  # window index
        self._last_speech = 0  # last window index with speech
        self._sil_start: int | None = None
        self._pauses: list[tuple[int, int]] = []  # (start, end) windows of silence inside the segment
        self.speech_windows = 0

    @property
    def open_start(self) -> int | None:
        """Start sample of the segment being spoken, if any."""
        return max(0, self._seg_start * WIN - self.pad) if self.in_speech else None

    @property
    def open_end(self) -> int:
        return (self._last_speech + 1) * WIN

    def feed(self, samples: np.ndarray) -> list[Segment]:
        """Append 16 kHz float32 audio; return the segments that ended. Their audio stays in
        `buffer` (with `keep_s` before it) until the next call."""
        # Segments returned by the previous call have been read by now: forget older audio.
        keep = self._seg_start * WIN - self.pad if self.in_speech else self._k * WIN
        self.buffer.trim(keep - int(self.keep_s * SR))
        self.buffer.append(samples)
        x = np.concatenate([self._pending, samples]) if len(self._pending) else samples
        n = len(x) // WIN
        self._pending = x[n * WIN:].copy()
        if n == 0:
            return []
        windows = x[: n * WIN].reshape(n, WIN)
        ctx = np.concatenate([self._ctx[None], windows[:-1, -CTX:]], 0)
        self._ctx = windows[-1, -CTX:].copy()
        probs = self._score(np.concatenate([ctx, windows], 1))
        out: list[Segment] = []
        for p in probs:
            seg = self._step(float(p))
            if seg is not None:
                out.append(seg)
            self._k += 1
        return out

    def _score(self, batch: np.ndarray) -> np.ndarray:
        """Speech probability per window; the model's recurrent state carries over between calls,
        so the scores do not depend on how the audio was framed."""
        model = silero()
        out, self._h, self._c = model.session.run(None, {"input": batch.astype(np.float32), "h": self._h,
                                                          "c": self._c})
        return out.reshape(-1)

    def _step(self, p: float) -> Segment | None:
        k = self._k
        if not self.in_speech:
            if p >= self.threshold:
                self.in_speech, self._seg_start, self._last_speech = True, k, k
                self._sil_start, self._pauses = None, []
            return None
        if p >= self.neg and self.probe_pause and k - self._last_speech - 1 >= self.probe_pause:
            self._pause = (self._seg_start, self._last_speech + 1)  # a pause that did not end the segment
        if p >= self.threshold:
            if self._sil_start is not None:
                if k - self._sil_start >= self.min_cut_pause:
                    self._pauses.append((self._sil_start, k))
                self._sil_start = None
            self._last_speech = k
            self.speech_windows += 1
        elif p < self.neg:
            if self._sil_start is None:
                self._sil_start = k
            silent = k - self._last_speech
            if silent >= self.min_silence or (self.cut_after and silent >= self.cut_silence and
                                              self._last_speech + 1 - self._seg_start >= self.cut_after):
                return self._close(self._last_speech + 1)
        else:
            self._last_speech = k  # between the thresholds: still speech
        if k + 1 - self._seg_start >= self.max_segment:
            return self._force_cut(k)
        return None

    def _close(self, end_win: int, forced: bool = False) -> Segment | None:
        start_win = self._seg_start
        self.in_speech, self._sil_start, self._pauses = False, None, []
        if end_win - start_win < self.min_speech:
            return None
        start = max(0, start_win * WIN - self.pad)
        end = min(self.buffer.total, end_win * WIN + self.pad)
        return Segment(self.channel, start, end, forced)

    def _force_cut(self, k: int) -> Segment | None:
        """Too long: cut in the middle of the longest pause of its last two thirds (else right
        here) and go on with the rest as a new segment."""
        floor = self._seg_start + (k - self._seg_start) // 3
        pauses = [p for p in self._pauses if p[0] >= floor]
        start = max(0, self._seg_start * WIN - self.pad)
        if pauses:
            s, e = max(pauses, key=lambda p: p[1] - p[0])
            seg = Segment(self.channel, start, ((s + e) // 2) * WIN)
            self._seg_start = e
            self._pauses = [p for p in self._pauses if p[0] >= e]
        else:
            seg = Segment(self.channel, start, (k + 1) * WIN, forced=True)
            self._seg_start, self._pauses = k + 1, []
        return seg

    def take_pause(self) -> tuple[int, int] | None:
        """The latest pause (of at least `probe_pause_s`, the speaker having gone on after it) in the
        segment still being spoken, as (segment start, end of the speech before the pause) in
        samples, once; None when there was none since the last call or its segment has ended since."""
        pause, self._pause = self._pause, None
        if pause is None or not self.in_speech or pause[0] != self._seg_start:
            return None
        return self.open_start, min(self.buffer.total, pause[1] * WIN + self.pad)

    def flush(self) -> list[Segment]:
        """The stream ended: close the open segment."""
        if not self.in_speech:
            return []
        seg = self._close(self._last_speech + 1)
        return [seg] if seg else []


class Upsampler:
    """8 kHz -> 16 kHz by linear interpolation, streaming (keeps the last sample between calls)."""

    def __init__(self) -> None:
        self._last: float | None = None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if len(x) == 0:
            return x
        prev = x[0] if self._last is None else self._last
        out = np.empty(2 * len(x), dtype=np.float32)
        shifted = np.concatenate([[prev], x[:-1]]).astype(np.float32)
        out[0::2] = (shifted + x) / 2
        out[1::2] = x
        self._last = float(x[-1])
        return out
