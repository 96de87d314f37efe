"""Decode any call recording to 16 kHz float32 with its channels kept apart.

PyAV (FFmpeg) does the decoding and resampling, so every container and codec FFmpeg knows works
(wav, mp3, m4a/aac, flac, ogg/opus, amr, ...). A file is judged by decoding it, never by its name."""

from __future__ import annotations

import hashlib
from pathlib import Path

import av
import numpy as np

from .errors import AudioError
from .types import Audio

SAMPLE_RATE = 16000
#: peak below this (about -74 dBFS) counts as silence
SILENCE_PEAK = 2e-4
#: channels whose difference never exceeds this are one signal copied twice
DUPLICATE_CHANNEL_TOLERANCE = 1e-3
MAX_CHANNELS = 8


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def load_audio(path: str | Path, *, max_duration_s: float = 4 * 3600.0,
               max_file_bytes: int = 2 * 1024**3, sample_rate: int = SAMPLE_RATE,
               sha256: str | None = None) -> Audio:
    """Decode `path` to float32 samples of shape (channels, n) at `sample_rate`.

    `sha256`: the file's hash when the caller already computed it (saves reading the file again).
    Raises AudioError with a one-line reason for anything that is not a usable recording."""
    path = Path(path)
    if not path.exists():
        raise AudioError(f"{path}: no such file")
    if not path.is_file():
        raise AudioError(f"{path}: not a file")
    size = path.stat().st_size
    if size == 0:
        raise AudioError(f"{path}: empty file (0 bytes)")
    if size > max_file_bytes:
        raise AudioError(f"{path}: {size / 1e6:.0f} MB is over the {max_file_bytes / 1e6:.0f} MB limit")
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except (av.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise AudioError(f"{path}: not a readable audio file ({_reason(exc)})") from None
    with container:
        if not container.streams.audio:
            raise AudioError(f"{path}: contains no audio stream")
        stream = container.streams.audio[0]
        channels = stream.codec_context.channels or 1
        if channels > MAX_CHANNELS:
            raise AudioError(f"{path}: {channels} channels; at most {MAX_CHANNELS} are supported")
        declared = _declared_duration(container, stream)
        if declared is not None and declared > max_duration_s:
            raise AudioError(f"{path}: {declared / 60:.1f} min is over the {max_duration_s / 60:.0f} min limit")
        codec = stream.codec_context.name or ""
        original_rate = stream.codec_context.sample_rate or 0
        samples = _decode(container, stream, channels, sample_rate, max_duration_s, path)
    if samples.shape[1] == 0:
        raise AudioError(f"{path}: no audio samples could be decoded")
    if float(np.max(np.abs(samples))) < SILENCE_PEAK:
        raise AudioError(f"{path}: the recording is silent")
    if samples.shape[0] > 1 and _channels_identical(samples):
        samples = samples[:1]
    return Audio(samples=samples, sample_rate=sample_rate, source=str(path), sha256=sha256 or file_sha256(path),
                 original_channels=channels, original_sample_rate=original_rate, codec=codec)


def _declared_duration(container, stream) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000
    return None


def _decode(container, stream, channels: int, rate: int, max_duration_s: float, path: Path) -> np.ndarray:
    layout = {1: "mono", 2: "stereo"}.get(channels) or av.AudioLayout(channels).name
    resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
    limit = int(max_duration_s * rate)
    chunks: list[np.ndarray] = []
    total = 0
    errors = 0
    try:
        for packet in container.demux(stream):
            try:
                frames = packet.decode()
            except av.FFmpegError:
                # A damaged packet inside an otherwise good file: skip it, as players do.
                errors += 1
                if errors > 50 and total == 0:
                    raise
                continue
            for frame in frames:
                frame.pts = None
                for out in resampler.resample(frame):
                    total += _append(chunks, out)
            if total > limit:
                raise AudioError(f"{path}: longer than the {max_duration_s / 60:.0f} min limit")
        for out in resampler.resample(None):
            total += _append(chunks, out)
    except av.FFmpegError as exc:
        if total == 0:
            raise AudioError(f"{path}: corrupt or unsupported audio ({_reason(exc)})") from None
    if not chunks:
        return np.zeros((channels, 0), dtype=np.float32)
    return np.ascontiguousarray(np.concatenate(chunks, axis=1), dtype=np.float32)


def _append(chunks: list[np.ndarray], frame) -> int:
    array = frame.to_ndarray()
    if array.ndim == 1:
        array = array[None, :]
    chunks.append(array.astype(np.float32, copy=False))
    return array.shape[1]


def _channels_identical(samples: np.ndarray) -> bool:
    """A mono recording stored as stereo: treat it as mono so channel != speaker is not assumed."""
    first = samples[0]
    return all(float(np.max(np.abs(first - other))) <= DUPLICATE_CHANNEL_TOLERANCE for other in samples[1:])


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return text.split(":")[-1].strip() if ":" in text else text
