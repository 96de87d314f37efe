"""Online speaker assignment for mono streams: each final utterance gets the label of the nearest
speaker centroid (CAM++ embeddings, cosine), or a new label while fewer than `max_speakers` are
known and none is near. Roles follow the post-call rule (`compliance.roles`): the speaker who has
talked most so far is the agent. The stored call is re-diarized after the stream, which is the
result reviewers see; this only labels the live alerts."""

from __future__ import annotations

import logging
import threading

import numpy as np

from .vad import SR

log = logging.getLogger("compliance.live.speakers")

_embedder = None
_lock = threading.Lock()
MIN_EMBED_S = 0.8
#: the middle this-many seconds of an utterance are enough to tell two voices apart
MAX_EMBED_S = 3.0


def embedder():
    """The CAM++ embedding model of the diarizer (loaded once); None if it is not installed."""
    global _embedder
    with _lock:
        if _embedder is None:
            try:
                from ..config import load_settings
                from ..embedding_campplus import CampplusEmbedding
                from ..models import model_path

                _embedder = CampplusEmbedding(model_path("embedding", load_settings()))
            except Exception as exc:  # no weights: every utterance gets the same speaker
                log.warning("no speaker embedding model for mono live streams (%s)", exc)
                _embedder = False
        return _embedder or None


class OnlineSpeakers:
    def __init__(self, max_speakers: int = 2, threshold: float = 0.45, embed=None) -> None:
        self.max_speakers = max_speakers
        self.threshold = threshold
        self._embed = embed
        self.centroids: list[np.ndarray] = []
        self.counts: list[int] = []
        self.talk: dict[str, float] = {}
        self.first: str | None = None
        self.last: str | None = None
        self._lock = threading.Lock()

    def _vector(self, audio: np.ndarray) -> np.ndarray | None:
        model = self._embed or embedder()
        if model is None or len(audio) < MIN_EMBED_S * SR:
            return None
        if len(audio) > MAX_EMBED_S * SR:
            mid, half = len(audio) // 2, int(MAX_EMBED_S * SR) // 2
            audio = audio[mid - half: mid + half]
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # a 3 s clip: one thread is as fast, and far faster on a busy machine
        try:
            v = np.asarray(model.embed_waveform(np.asarray(audio, dtype=np.float32)), dtype=np.float64).reshape(-1)
        finally:
            torch.set_num_threads(threads)
        n = np.linalg.norm(v)
        return v / n if n > 0 else None

    def assign(self, audio: np.ndarray | None) -> str:
        """The speaker label of one utterance's audio (called from the ASR worker)."""
        v = self._vector(audio) if audio is not None else None
        with self._lock:
            if v is None:
                label = self.last or "SPK0"
            else:
                sims = [float(c @ v) / (np.linalg.norm(c) or 1.0) for c in self.centroids]
                best = int(np.argmax(sims)) if sims else -1
                if best >= 0 and (sims[best] >= self.threshold or len(self.centroids) >= self.max_speakers):
                    self.centroids[best] = self.centroids[best] + v
                    self.counts[best] += 1
                    label = f"SPK{best}"
                else:
                    self.centroids.append(v.copy())
                    self.counts.append(1)
                    label = f"SPK{len(self.centroids) - 1}"
            if audio is not None:
                self.talk[label] = self.talk.get(label, 0.0) + len(audio) / SR
            self.first = self.first or label
            self.last = label
            return label

    def roles(self) -> dict[str, str]:
        with self._lock:
            if not self.talk:
                return {}
            ranked = sorted(self.talk, key=lambda s: (-self.talk[s], s != self.first))
            return {s: ("agent" if i == 0 else "customer") for i, s in enumerate(ranked)}

    def role(self, speaker: str) -> str:
        return self.roles().get(speaker, "unknown")
