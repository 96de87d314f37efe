"""Who spoke when, for single-channel calls.

The pipeline only knows the `Diarizer` protocol. The default implementation is built from
pyannote.audio's own parts, fully offline:

* pyannote **segmentation-3.0** (PyanNet, powerset: up to 3 speakers per 10 s chunk, 2 at once)
  through `pyannote.audio.Inference` on in-memory waveforms (no torchcodec, no file decoding);
* **CAM++** zh+en speaker embeddings (3D-Speaker) in place of pyannote's WeSpeaker model, applied
  the way pyannote applies masked embeddings, but with the network run once per call
  (`compliance.embedding_campplus.FrameEmbedder`);
* pyannote's **agglomerative clustering**, speaker counting and reconstruction
  (`SpeakerDiarization.apply`), so overlapping speech keeps both speakers.

A complete pyannote pipeline directory (e.g. `speaker-diarization-community-1` that a user with a
hub account downloaded) can be used instead: set `COMPLIANCE_DIARIZATION_PIPELINE=/path/to/dir`
(or the `diarization_pipeline` setting); it is loaded with `Pipeline.from_pretrained(dir)`.
"""

from __future__ import annotations

import os
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .errors import ModelError
from .types import Audio, SpeakerTurn

os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "false")  # pyannote telemetry: off

SAMPLE_RATE = 16000
#: sales calls: agent + customer, but a supervisor may join -- detected up to this many
DEFAULT_MIN_SPEAKERS = 2
DEFAULT_MAX_SPEAKERS = 4


class Diarizer(Protocol):
    def diarize(self, audio: Audio, *, num_speakers: int | None = None, min_speakers: int | None = None,
                max_speakers: int | None = None) -> list[SpeakerTurn]:
        ...


@dataclass
class DiarizationParams:
    #: segmentation window step, as a fraction of the 10 s window (pyannote uses 0.1)
    segmentation_step: float = 0.2
    #: agglomerative clustering (centroid linkage on unit-normalised CAM++ embeddings)
    threshold: float = 0.8
    min_cluster_size: int = 6
    #: gaps shorter than this inside one speaker's speech are filled (intra-turn pauses)
    min_duration_off: float = 0.0
    #: only clean (non-overlapped) frames feed the embeddings, when there are enough of them
    exclude_overlap: bool = True
    segmentation_batch_size: int = 16
    #: frame-level resegmentation with CAM++ (see `resegment`); False = pyannote's output as is
    resegment: bool = True
    #: local embedding window (s) and decision hop (s) of the resegmentation
    reseg_window: float = 0.5
    reseg_hop: float = 0.04
    #: cost of a speaker change in the Viterbi pass (in cosine-similarity x seconds)
    reseg_switch_cost: float = 0.12
    #: non-speech gaps shorter than this inside one speaker's speech count as that speaker's
    fill_gap: float = 0.5


def _quiet_import_pyannote():
    """Import pyannote.audio without its torchcodec warning (we never let it decode files)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torchcodec.*")
        warnings.filterwarnings("ignore", category=UserWarning, module=r"pyannote\..*")
        try:
            import pyannote.audio  # noqa: F401
            from pyannote.audio.pipelines.speaker_diarization import SpeakerDiarization
        except OSError as exc:  # CUDA torchaudio next to CPU torch
            raise ModelError(f"pyannote.audio cannot be imported ({exc}); run `python scripts/fix_torchaudio.py` "
                             "in the project environment") from exc
        except ImportError as exc:
            raise ModelError(f"pyannote.audio is not installed ({exc}): run ./install.sh") from exc
    return SpeakerDiarization


def _pipeline_class():
    SpeakerDiarization = _quiet_import_pyannote()
    from pyannote.audio import Inference, Pipeline
    from pyannote.audio.pipelines.clustering import AgglomerativeClustering
    from pyannote.pipeline.parameter import ParamDict, Uniform

    class CamppSpeakerDiarization(SpeakerDiarization):
        """pyannote's SpeakerDiarization with CAM++ embeddings (everything else is pyannote's)."""

        def __init__(self, segmentation_model, embedder, *, segmentation_step: float = 0.1,
                     segmentation_batch_size: int = 16, exclude_overlap: bool = True):
            Pipeline.__init__(self)
            self.legacy = False
            self.segmentation_model = "pyannote/segmentation-3.0"
            self.segmentation_step = segmentation_step
            self.embedding = "campplus_cn_en_common"
            self.embedding_batch_size = 1
            self.embedding_exclude_overlap = exclude_overlap
            self.plda = None
            self._plda = None
            self.klustering = "AgglomerativeClustering"
            self.der_variant = {"collar": 0.0, "skip_overlap": False}
            duration = segmentation_model.specifications.duration
            self._segmentation = Inference(segmentation_model, duration=duration, step=segmentation_step * duration,
                                           skip_aggregation=True, batch_size=segmentation_batch_size)
            self.segmentation = ParamDict(min_duration_off=Uniform(0.0, 1.0))
            self._embedding = embedder
            self.clustering = AgglomerativeClustering(metric="cosine")
            self._expects_num_speakers = False

        def get_embeddings(self, file, binary_segmentations, exclude_overlap=False, hook=None):
            return embed_chunks(self._embedding, file, binary_segmentations, exclude_overlap=exclude_overlap)

    return CamppSpeakerDiarization


def embed_chunks(embedder, file, binary_segmentations, *, exclude_overlap: bool = True,
                 min_clean_s: float = 0.6) -> np.ndarray:
    """(num_chunks, local_speakers, 192) CAM++ embeddings, one per chunk and local speaker,
    pooled over the frames where the segmentation says that speaker is active (only its
    non-overlapped frames when they last at least `min_clean_s`). Inactive speakers get a
    placeholder (pyannote discards them)."""
    frames = file.get("_campplus_frames")
    if frames is None:
        frames = embedder.frames(file["waveform"][0].numpy())
        file["_campplus_frames"] = frames
    hop = embedder.hop
    window = binary_segmentations.sliding_window
    data = np.nan_to_num(binary_segmentations.data, nan=0.0)
    num_chunks, num_frames, num_speakers = data.shape
    clean = data * (data.sum(axis=2, keepdims=True) < 2)
    per_chunk = int(round(window.duration / hop))
    total = frames.shape[0]
    dim = embedder.embedding.dimension
    stats = np.zeros((num_chunks * num_speakers, 2 * frames.shape[1]), dtype=np.float32)
    active = np.zeros(num_chunks * num_speakers, dtype=bool)
    for c in range(num_chunks):
        start = window[c].start
        k0 = int(round(start / hop))
        k = np.arange(k0, min(k0 + per_chunk, total))
        if k.size == 0:
            continue
        j = np.clip(((k * hop + hop / 2 - start) / window.duration * num_frames).astype(int), 0, num_frames - 1)
        x = frames[k]
        for s in range(num_speakers):
            w = clean[c, j, s] if exclude_overlap and clean[c, j, s].sum() * hop >= min_clean_s else data[c, j, s]
            n = float(w.sum())
            if n < 2:
                continue
            mean = w @ x / n
            var = np.maximum(w @ (x * x) / n - mean * mean, 0) * (n / (n - 1))
            stats[c * num_speakers + s] = np.concatenate([mean, np.sqrt(var)])
            active[c * num_speakers + s] = True
    emb = np.ones((num_chunks * num_speakers, dim), dtype=np.float32)
    if active.any():
        import torch

        with torch.inference_mode():
            emb[active] = embedder._dense(torch.from_numpy(stats[active])).numpy()
    return emb.reshape(num_chunks, num_speakers, dim)


def _activity(annotation, labels: list[str], n: int, hop: float) -> np.ndarray:
    """(speakers, n) boolean activity on a `hop` grid."""
    act = np.zeros((len(labels), n), dtype=bool)
    for seg, _, label in annotation.itertracks(yield_label=True):
        a, b = int(round(seg.start / hop)), int(round(seg.end / hop))
        act[labels.index(label), max(a, 0):min(b, n)] = True
    return act


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    edges = np.flatnonzero(np.diff(np.r_[0, mask.astype(np.int8), 0]))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def resegment(embedder, frames: np.ndarray, annotation, params: DiarizationParams) -> list[SpeakerTurn]:
    """Frame-level speaker decision inside pyannote's speech regions.

    pyannote decides "who" per 10 s chunk (local segmentation speakers -> global clusters); when
    two voices are alike the segmentation model may give one local speaker to both, and a short
    reply right after a long turn inherits the long turn's label. Here every `reseg_hop` gets a
    local CAM++ embedding (a `reseg_window` box of body frames, speech only), scored by cosine
    against each speaker's centroid (pooled over its non-overlapped speech); a Viterbi pass with a
    switch cost picks one speaker per speech frame. Where pyannote reports two simultaneous
    speakers, the second one is kept (overlap), so backchannels survive. Speech activity itself
    is pyannote's, with pauses shorter than `fill_gap` inside one speaker's speech filled."""
    base = embedder.hop  # 0.02 s body frames
    labels = sorted(annotation.labels())
    n = frames.shape[0]
    if not labels or n == 0:
        return []
    act = _activity(annotation, labels, n, base)
    speech = act.any(axis=0)
    exclusive = act & (act.sum(axis=0) == 1)
    weights = exclusive.astype(np.float32)
    keep = weights.sum(axis=1) >= max(2, int(0.3 / base))
    if keep.sum() < 2:  # one speaker (or nothing to compare): nothing to decide
        return _annotation_to_turns(annotation)
    labels = [l for l, k in zip(labels, keep) if k]
    act, weights = act[keep], weights[keep]
    cent = embedder.pool(frames, weights)
    cent /= np.linalg.norm(cent, axis=1, keepdims=True)
    # local embeddings: box-window statistics of speech frames, via cumulative sums
    step = max(1, int(round(params.reseg_hop / base)))
    half = max(1, int(round(params.reseg_window / base / 2)))
    sw = speech.astype(np.float64)
    x = frames.astype(np.float64) * sw[:, None]
    c0 = np.r_[0.0, np.cumsum(sw)]
    c1 = np.vstack([np.zeros((1, x.shape[1])), np.cumsum(x, axis=0)])
    c2 = np.vstack([np.zeros((1, x.shape[1])), np.cumsum(x * frames, axis=0)])
    centers = np.arange(0, n, step)
    lo, hi = np.clip(centers - half, 0, n), np.clip(centers + half + 1, 0, n)
    cnt = (c0[hi] - c0[lo])[:, None]
    ok = (cnt[:, 0] >= 3) & speech[centers]
    mean = (c1[hi] - c1[lo]) / np.maximum(cnt, 1)
    var = np.maximum((c2[hi] - c2[lo]) / np.maximum(cnt, 1) - mean ** 2, 0) * cnt / np.maximum(cnt - 1, 1)
    stats = np.hstack([mean, np.sqrt(var)]).astype(np.float32)
    score = np.zeros((len(centers), len(labels)), dtype=np.float32)
    if ok.any():
        import torch

        with torch.inference_mode():
            e = embedder._dense(torch.from_numpy(stats[ok])).numpy()
        e /= np.linalg.norm(e, axis=1, keepdims=True) + 1e-9
        score[ok] = e @ cent.T
    # prior from pyannote: a small bonus for the speakers it says are active there
    score += 0.05 * act[:, centers].T
    hop_s = step * base
    penalty = params.reseg_switch_cost / hop_s * hop_s  # cost per switch, in score units
    best = _viterbi(score * hop_s / hop_s, penalty, ok | speech[centers])
    # back to the 20 ms grid
    lab = np.repeat(best, step)[:n]
    out: list[SpeakerTurn] = []
    fill = int(round(params.fill_gap / base))
    for k, name in enumerate(labels):
        mine = speech & (lab == k)
        # fill short pauses between this speaker's own stretches
        runs = _runs(mine)
        for (a1, b1), (a2, b2) in zip(runs, runs[1:]):
            if a2 - b1 <= fill and not (lab[b1:a2][speech[b1:a2]] != k).any():
                mine[b1:a2] = True
        # overlap: pyannote says this speaker also talks while another one holds the floor
        mine |= act[k] & (act.sum(axis=0) >= 2)
        for a, b in _runs(mine):
            if (b - a) * base >= 0.1:
                out.append(SpeakerTurn(name, round(a * base, 3), round(b * base, 3), None))
    return out


def _viterbi(score: np.ndarray, penalty: float, valid: np.ndarray) -> np.ndarray:
    """Best label sequence maximising sum(score) - penalty * changes (invalid frames: no evidence)."""
    t, k = score.shape
    s = np.where(valid[:, None], score, 0.0)
    acc = s[0].copy()
    back = np.zeros((t, k), dtype=np.int32)
    for i in range(1, t):
        stay = acc
        j = int(np.argmax(acc))
        move = acc[j] - penalty
        back[i] = np.where(stay >= move, np.arange(k), j)
        acc = np.maximum(stay, move) + s[i]
    path = np.zeros(t, dtype=np.int32)
    path[-1] = int(np.argmax(acc))
    for i in range(t - 1, 0, -1):
        path[i - 1] = back[i, path[i]]
    return path


def _relabel(turns: list[SpeakerTurn]) -> list[SpeakerTurn]:
    """SPEAKER_00 is whoever speaks first, SPEAKER_01 next, ..."""
    order: dict[str, str] = {}
    for t in sorted(turns, key=lambda t: (t.start, t.end)):
        order.setdefault(t.speaker, f"SPEAKER_{len(order):02d}")
    out = [SpeakerTurn(order[t.speaker], t.start, t.end, t.channel) for t in turns]
    out.sort(key=lambda t: (t.start, t.end, t.speaker))
    return out


def _annotation_to_turns(annotation) -> list[SpeakerTurn]:
    turns = [SpeakerTurn(str(label), round(float(seg.start), 3), round(float(seg.end), 3), None)
             for seg, _, label in annotation.itertracks(yield_label=True) if seg.end > seg.start]
    return _relabel(turns)


def _speaker_bounds(num_speakers, min_speakers, max_speakers) -> tuple[int | None, int, int]:
    if num_speakers:
        return int(num_speakers), int(num_speakers), int(num_speakers)
    lo = int(min_speakers) if min_speakers else DEFAULT_MIN_SPEAKERS
    hi = int(max_speakers) if max_speakers else max(DEFAULT_MAX_SPEAKERS, lo)
    if max_speakers and not min_speakers:
        lo = min(lo, hi)
    if lo > hi:
        raise ValueError(f"min_speakers ({lo}) > max_speakers ({hi})")
    return None, lo, hi


def _waveform(audio: Audio):
    import torch

    if audio.sample_rate != SAMPLE_RATE:
        raise ValueError(f"diarization expects {SAMPLE_RATE} Hz audio, got {audio.sample_rate}")
    mono = audio.mono() if audio.samples.ndim == 2 else np.asarray(audio.samples, dtype=np.float32)
    return torch.from_numpy(np.ascontiguousarray(mono, dtype=np.float32))[None]


class PyannoteCamppDiarizer:
    """pyannote segmentation-3.0 + CAM++ + pyannote clustering. Thread-safe (one call at a time)."""

    def __init__(self, segmentation_dir: str | Path, embedding_dir: str | Path,
                 params: DiarizationParams | None = None, *, threads: int | None = None):
        import torch

        from .embedding_campplus import CampplusEmbedding, FrameEmbedder

        if threads:
            torch.set_num_threads(threads)
        self.params = params or DiarizationParams()
        seg_dir = Path(segmentation_dir)
        ckpt = seg_dir / "pytorch_model.bin" if seg_dir.is_dir() else seg_dir
        if not ckpt.is_file():
            raise ModelError(f"segmentation weights not found: {ckpt} (run `compliance models install`)")
        _quiet_import_pyannote()
        from pyannote.audio import Model

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = Model.from_pretrained(str(ckpt))
        if model is None:
            raise ModelError(f"could not load the segmentation model from {ckpt}")
        model.eval()
        try:
            embedding = CampplusEmbedding(embedding_dir)
        except FileNotFoundError as exc:
            raise ModelError(f"{exc} (run `compliance models install`)") from exc
        self.embedder = FrameEmbedder(embedding)
        cls = _pipeline_class()
        p = self.params
        self.pipeline = cls(model, self.embedder, segmentation_step=p.segmentation_step,
                            segmentation_batch_size=p.segmentation_batch_size, exclude_overlap=p.exclude_overlap)
        self.pipeline.instantiate({
            "segmentation": {"min_duration_off": p.min_duration_off},
            "clustering": {"method": "centroid", "min_cluster_size": p.min_cluster_size, "threshold": p.threshold},
        })
        self.name = "pyannote-segmentation-3.0+campplus-zh-en"
        self._lock = threading.Lock()
        #: last raw output (DiarizeOutput) and embeddings, for debugging and benches
        self.last_output: Any = None

    def diarize(self, audio: Audio, *, num_speakers: int | None = None, min_speakers: int | None = None,
                max_speakers: int | None = None) -> list[SpeakerTurn]:
        num, lo, hi = _speaker_bounds(num_speakers, min_speakers, max_speakers)
        file = {"waveform": _waveform(audio), "sample_rate": SAMPLE_RATE, "uri": "call"}
        if file["waveform"].shape[1] < SAMPLE_RATE // 2:
            return []
        with self._lock, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = self.pipeline(file, num_speakers=num, min_speakers=lo, max_speakers=hi)
        self.last_output = out
        if not self.params.resegment:
            return _annotation_to_turns(out.speaker_diarization)
        return _relabel(resegment(self.embedder, file["_campplus_frames"], out.speaker_diarization, self.params))


class PretrainedPipelineDiarizer:
    """A complete pyannote pipeline from a local directory (config.yaml pointing at local
    sub-folders, e.g. community-1: segmentation/, embedding/, plda/). Never downloads."""

    def __init__(self, directory: str | Path):
        _quiet_import_pyannote()
        from pyannote.audio import Pipeline

        directory = Path(directory).expanduser()
        if not (directory / "config.yaml").is_file():
            raise ModelError(f"{directory} is not a pyannote pipeline directory (no config.yaml)")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.pipeline = Pipeline.from_pretrained(directory)
        if self.pipeline is None:
            raise ModelError(f"could not load the pyannote pipeline in {directory}")
        self.name = f"pyannote-pipeline:{directory.name}"
        self._lock = threading.Lock()

    def diarize(self, audio: Audio, *, num_speakers: int | None = None, min_speakers: int | None = None,
                max_speakers: int | None = None) -> list[SpeakerTurn]:
        num, lo, hi = _speaker_bounds(num_speakers, min_speakers, max_speakers)
        file = {"waveform": _waveform(audio), "sample_rate": SAMPLE_RATE, "uri": "call"}
        with self._lock, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = self.pipeline(file, num_speakers=num, min_speakers=lo, max_speakers=hi)
        annotation = getattr(out, "speaker_diarization", out)
        return _annotation_to_turns(annotation)


_CACHE: dict[tuple, Diarizer] = {}


def get_diarizer(settings=None) -> Diarizer:
    """The configured diarizer (cached per model location): a full pyannote pipeline directory
    when `diarization_pipeline` / $COMPLIANCE_DIARIZATION_PIPELINE is set, else segmentation-3.0 +
    CAM++ from the installed model weights."""
    pipeline_dir = (getattr(settings, "diarization_pipeline", "") or
                    os.environ.get("COMPLIANCE_DIARIZATION_PIPELINE", ""))
    if pipeline_dir:
        key = ("pipeline", str(pipeline_dir))
        if key not in _CACHE:
            _CACHE[key] = PretrainedPipelineDiarizer(pipeline_dir)
        return _CACHE[key]
    from .models import model_path

    seg = model_path("segmentation", settings)
    emb = model_path("embedding", settings)
    key = ("campplus", str(seg), str(emb))
    if key not in _CACHE:
        threads = getattr(settings, "cpu_threads", 0) or None
        _CACHE[key] = PyannoteCamppDiarizer(seg, emb, threads=threads)
    return _CACHE[key]


def to_rttm(turns: list[SpeakerTurn], uri: str = "call") -> str:
    """NIST RTTM: one `SPEAKER <uri> 1 <onset> <duration> <NA> <NA> <speaker> <NA> <NA>` per turn."""
    uri = "".join(ch if not ch.isspace() else "_" for ch in (uri or "call"))
    lines = [f"SPEAKER {uri} 1 {t.start:.3f} {t.end - t.start:.3f} <NA> <NA> {t.speaker} <NA> <NA>"
             for t in sorted(turns, key=lambda t: (t.start, t.end)) if t.end > t.start]
    return "\n".join(lines) + ("\n" if lines else "")


def read_rttm(path: str | Path) -> dict[str, list[SpeakerTurn]]:
    """RTTM file -> {uri: turns}."""
    out: dict[str, list[SpeakerTurn]] = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if len(parts) >= 8 and parts[0] == "SPEAKER":
            start, dur = float(parts[3]), float(parts[4])
            out.setdefault(parts[1], []).append(SpeakerTurn(parts[7], start, start + dur, None))
    return out
