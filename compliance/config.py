"""Settings, resolved once from (highest first) explicit overrides, environment variables
(COMPLIANCE_*), a TOML config file, and defaults.

The config file is $COMPLIANCE_CONFIG, else <data_dir>/config.toml; its keys are the field names
below (e.g. ``asr_model = "whisper-small"``)."""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ComplianceError


def project_root() -> Path:
    """Where models/ and rules/ live: $COMPLIANCE_HOME, else the checkout this package sits in."""
    env = os.environ.get("COMPLIANCE_HOME")
    return Path(env) if env else Path(__file__).resolve().parents[1]


#: the sentence encoders `similarity_encoder` may name (compliance/rules/encoder.py); "" or "none":
#: the similarity layer runs on character n-grams alone
SIMILARITY_ENCODERS = ("use-m3",)


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "compliance"


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "compliance"


@dataclass
class Settings:
    data_dir: Path = field(default_factory=_default_data_dir)
    db_url: str = ""
    models_dir: Path = field(default_factory=lambda: project_root() / "models" / "weights")
    manifest: Path = field(default_factory=lambda: project_root() / "models" / "manifest.yaml")
    rules_dir: Path = field(default_factory=lambda: project_root() / "rules")
    #: manifest name, local directory, or hub id (hub only if allow_download)
    asr_model: str = ""
    allow_download: bool = False
    language: str = "zh"
    compute_type: str = "int8"
    device: str = "cpu"
    beam_size: int = 5
    cpu_threads: int = 0
    batch_size: int = 8
    #: text given to whisper as context (e.g. the domain's vocabulary); empty = none
    asr_prompt: str = ""
    #: longest call accepted, in seconds
    max_duration_s: float = 4 * 3600.0
    #: largest file accepted, in bytes
    max_file_bytes: int = 2 * 1024**3
    #: which channel carries which role on a dual-channel recording
    channel_roles: dict[int, str] = field(default_factory=lambda: {0: "agent", 1: "customer"})
    #: mask ID-card, bank-card, phone numbers and e-mails in what is stored
    mask_pii: bool = True
    #: the rules' similarity layer (compliance/rules/similarity.py): findings for utterances that
    #: read like labelled violations (p >= similarity_threshold) though no rule matched, and rule
    #: hits dropped when the utterance reads as compliant (p < similarity_veto)
    similarity: bool = True
    #: 0.62 over 0.55 (leave-one-batch-out over 61 real batches, 2026-12-07): P 0.894 -> 0.900,
    #: R 0.915 -> 0.903, and ordinary call talk nobody trained on 11 -> 8 false alarms of 120
    similarity_threshold: float = 0.62
    similarity_veto: float = 0.0
    #: rule hits on an utterance of unknown speaker that the layer does not read as a violation are
    #: dropped when it reads as written narration (a report or warning about a violation) with at
    #: least this probability (similarity.RegisterModel); 0: no register model, such utterances keep
    #: agent-rule hits and lose customer signals. 0.2 over 0.3 (leave-one-batch-out over 120 real
    #: batches, bench/similarity_policy.py, 2026-12-07): 16 false findings on narration fewer, no true
    #: one lost (0.1: 25 fewer, 2 lost); the synthetic calls' planted violations score <= 0.02, and
    #: only one call turn scores over 0.2 (an agent's scam warning, 0.52, no rule hit)
    similarity_narration: float = 0.2
    #: the layer's sentence encoder (compliance/rules/encoder.py): "use-m3" (Universal Sentence
    #: Encoder multilingual v3, weights inside its package), or "none" for character n-grams alone
    similarity_encoder: str = "use-m3"
    #: the encoder's share of the layer's violation logit (similarity.SimilarityModel)
    similarity_encoder_mix: float = 0.4
    #: derived data that can be rebuilt: the labelled rows' sentence embeddings (never a call's)
    cache_dir: Path = field(default_factory=_default_cache_dir)
    #: a complete pyannote pipeline directory (e.g. speaker-diarization-community-1) to use instead
    #: of the built-in segmentation-3.0 + CAM++ diarizer
    diarization_pipeline: str = ""
    num_speakers: int | None = None
    min_speakers: int | None = None
    max_speakers: int | None = None
    # --- live streams (compliance.live; README "Live calls") ---
    #: most live streams at once; more are refused with an over_capacity error
    live_max_streams: int = 4
    #: transcription lag (seconds) past which new streams are refused and open ones warned
    live_max_lag_s: float = 4.0
    #: smallest encoder window of a live decode, seconds: a clip is padded to this (growing in 5 s
    #: steps for longer clips) instead of whisper's 30 s; 30 = decode as the post-call analysis does
    live_asr_window_s: float = 10.0
    #: beam size of live decodes (0: beam_size)
    live_beam_size: int = 2
    #: finals waiting together are decoded as one clip of at most this many seconds (0: the window)
    live_pack_max_s: float = 0.0
    #: live VAD: this much silence ends an utterance
    live_min_silence_s: float = 0.5
    #: live VAD: an utterance this long (seconds) is also ended by a clause pause of
    #: live_cut_silence_s, so what was said is final soon after it was said (0: off)
    live_cut_after_s: float = 3.0
    live_cut_silence_s: float = 0.25
    #: live early alerts: a pause this long (seconds) inside an utterance still being spoken gets
    #: what was said so far decoded and checked by the rules, so an offending clause is alerted at
    #: its own pause; the final words confirm or withdraw the alert (0: off)
    live_early_pause_s: float = 0.15
    #: ... only while the ASR worker is idle and was busy at most this share of the last 10 s
    #: (early decodes use idle time; a final arriving meanwhile waits for one bounded decode at most)
    live_early_max_busy: float = 0.6
    #: live VAD: longest utterance; a longer one is cut at its longest pause
    live_max_segment_s: float = 12.0
    #: up to this many packs of waiting finals (from any streams) are decoded as one batch: one
    #: encoder call and one batched beam search instead of one decode each (1: one at a time)
    live_batch_max: int = 4
    #: at startup, load the live path's models (ASR, rule packs, the similarity layer) and run one
    #: decode and one utterance through them in the background, so the first call does not pay it
    live_warmup: bool = True

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).expanduser()
        self.models_dir = Path(self.models_dir).expanduser()
        self.manifest = Path(self.manifest).expanduser()
        self.rules_dir = Path(self.rules_dir).expanduser()
        self.cache_dir = Path(self.cache_dir).expanduser()
        if self.similarity_encoder.strip().lower() not in ("", "none", "off", *SIMILARITY_ENCODERS):
            raise ComplianceError(f"setting similarity_encoder: unknown encoder {self.similarity_encoder!r} "
                                  f"(choose {', '.join(SIMILARITY_ENCODERS)} or none)")
        if not 0.0 <= self.similarity_encoder_mix <= 1.0:
            raise ComplianceError(f"setting similarity_encoder_mix: {self.similarity_encoder_mix} is not within 0..1")
        if not self.db_url:
            self.db_url = f"sqlite:///{self.data_dir / 'compliance.db'}"

    @property
    def audio_dir(self) -> Path:
        return self.data_dir / "audio"


_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}


def _coerce(name: str, value):
    """Turn an env/TOML value into the field's type, with a readable error."""
    kind = str(_FIELDS[name].type)
    try:
        if isinstance(value, str) and value == "" and "None" in kind:
            return None
        if kind.startswith("bool"):
            return value if isinstance(value, bool) else str(value).lower() in {"1", "true", "yes", "on"}
        if kind.startswith("int"):
            return int(value)
        if kind.startswith("float"):
            return float(value)
        if kind.startswith("dict"):
            if isinstance(value, dict):
                return {int(k): str(v) for k, v in value.items()}
            # "0=agent,1=customer"
            pairs = [p.split("=", 1) for p in str(value).split(",") if p.strip()]
            return {int(k): v.strip() for k, v in pairs}
        return value
    except (TypeError, ValueError) as exc:
        raise ComplianceError(f"setting {name}: cannot use {value!r} ({exc})") from None


def load_settings(**overrides) -> Settings:
    values: dict = {}
    env_data = os.environ.get("COMPLIANCE_DATA_DIR")
    data_dir = Path(overrides.get("data_dir") or env_data or _default_data_dir())
    config_path = Path(os.environ.get("COMPLIANCE_CONFIG") or data_dir / "config.toml")
    if config_path.is_file():
        try:
            file_values = tomllib.loads(config_path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ComplianceError(f"{config_path}: invalid TOML ({exc})") from None
        for key, value in file_values.items():
            if key not in _FIELDS:
                raise ComplianceError(f"{config_path}: unknown setting {key!r}")
            values[key] = _coerce(key, value)
    for name in _FIELDS:
        env = os.environ.get(f"COMPLIANCE_{name.upper()}")
        if env is not None:
            values[name] = _coerce(name, env)
    for key, value in overrides.items():
        if value is not None:
            values[key] = value
    return Settings(**values)
