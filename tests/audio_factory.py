"""Make test audio of any container/codec with PyAV, from real samples."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

CODECS = {".wav": "pcm_s16le", ".flac": "flac", ".mp3": "libmp3lame", ".m4a": "aac", ".aac": "aac",
          ".ogg": "libopus", ".opus": "libopus"}


def write_audio(path: Path, samples: np.ndarray, rate: int) -> Path:
    """samples: (channels, n) float32 in [-1, 1]."""
    samples = np.atleast_2d(samples).astype(np.float32)
    channels = samples.shape[0]
    codec = CODECS[path.suffix]
    out_rate = 48000 if codec == "libopus" else rate
    fmt = "adts" if path.suffix == ".aac" else None
    with av.open(str(path), "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=out_rate)
        stream.layout = "stereo" if channels == 2 else "mono"
        if codec == "pcm_s16le":
            frame = av.AudioFrame.from_ndarray((samples.T.reshape(1, -1) * 32767).astype(np.int16),
                                               format="s16", layout=stream.layout.name)
        else:
            frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout=stream.layout.name)
        frame.sample_rate = rate
        frame.pts = 0
        frame.time_base = Fraction(1, rate)
        resampler = av.AudioResampler(format=stream.codec_context.format, layout=stream.layout.name, rate=out_rate)
        for chunk in resampler.resample(frame) + resampler.resample(None):
            chunk.pts = None
            for packet in stream.encode(chunk):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path
