"""The spine: audio file -> speakers, words with timestamps, violations -> stored call.

`Analyzer` holds the loaded models so a batch, a worker or a server loads each one once."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from sqlmodel import Session

from . import store
from .align import attribute_words
from .config import Settings, load_settings
from .errors import ComplianceError
from .ingest import file_sha256, load_audio
from .models import resolve
from .roles import assign_roles
from .transcribe import Transcriber, WhisperTranscriber, join_words
from .types import Audio, CallResult, Utterance, Violation, Word

#: a pause this long inside one channel starts a new utterance
UTTERANCE_GAP_S = 1.0

Progress = Callable[[float, str], None]


@dataclass
class AnalysisOptions:
    #: "zh", "en", ... or None to detect
    language: str | None = "zh"
    channel_roles: dict[int, str] | None = None
    num_speakers: int | None = None
    min_speakers: int | None = None
    max_speakers: int | None = None
    store: bool = True
    #: re-analyse even if this audio was analysed before (replaces the stored result)
    force: bool = False
    extra: dict = field(default_factory=dict)


class Analyzer:
    def __init__(self, settings: Settings | None = None, *, transcriber: Transcriber | None = None,
                 diarizer=None, packs=None, engine=None,
                 detector: Callable[[list[Utterance]], list[Violation]] | None = None) -> None:
        self.settings = settings or load_settings()
        self._detector = detector
        self._transcriber = transcriber
        self._diarizer = diarizer
        self._packs = packs
        self._engine = engine

    @property
    def transcriber(self) -> Transcriber:
        if self._transcriber is None:
            s = self.settings
            self._transcriber = WhisperTranscriber(
                resolve("asr", s), device=s.device, compute_type=s.compute_type, cpu_threads=s.cpu_threads,
                beam_size=s.beam_size, batch_size=s.batch_size, allow_download=s.allow_download,
                prompt=s.asr_prompt)
        return self._transcriber

    @property
    def diarizer(self):
        if self._diarizer is None:
            from .diarize import get_diarizer

            self._diarizer = get_diarizer(self.settings)
        return self._diarizer

    @property
    def packs(self):
        if self._packs is None:
            from .detect import load_packs

            self._packs = load_packs()
        return self._packs

    @property
    def engine(self):
        if self._engine is None:
            self._engine = store.make_engine(self.settings.db_url)
        return self._engine

    def analyze(self, path: str | Path, options: AnalysisOptions | None = None,
                progress: Progress | None = None) -> CallResult:
        options = options or AnalysisOptions()
        report = progress or (lambda _f, _m: None)
        path = Path(path)
        digest = None
        if options.store and not options.force and path.is_file():
            digest = file_sha256(path)
            with Session(self.engine) as session:
                known = store.find_call(session, digest)
                if known is not None:
                    report(1.0, "already analysed")
                    result = store.load_call(session, known)
                    result.source = str(path)
                    return result
        report(0.0, "decoding")
        audio = load_audio(path, max_duration_s=self.settings.max_duration_s,
                           max_file_bytes=self.settings.max_file_bytes, sha256=digest)
        result = self.analyze_audio(audio, options, report)
        if self.settings.mask_pii:
            from .pii import mask_result

            result, _count = mask_result(result)
        if options.store:
            with Session(self.engine) as session:
                record = store.save_call(session, result, replace=options.force)
                result.call_id = record.id
        report(1.0, "done")
        return result

    def detect(self, utterances: list[Utterance]) -> list[Violation]:
        if self._detector is not None:
            return self._detector(utterances)
        from .detect import detect

        return detect(utterances, self.packs)

    def analyze_audio(self, audio: Audio, options: AnalysisOptions, report: Progress) -> CallResult:
        if audio.channels > 1:
            utterances, language = self._by_channel(audio, options.language, report)
            channel_roles = options.channel_roles or self.settings.channel_roles
            speakers = assign_roles(utterances, channel_roles=channel_roles)
            turns = []
        else:
            utterances, language, turns = self._diarized(audio, options, report)
            speakers = assign_roles(utterances)
        report(0.95, "detecting")
        violations = self.detect(utterances)
        return CallResult(source=audio.source, sha256=audio.sha256, duration=round(audio.duration, 3),
                          channels=audio.channels, language=language, speakers=speakers,
                          utterances=utterances, violations=violations, turns=turns,
                          models=self._model_names(audio.channels))

    def _by_channel(self, audio: Audio, language: str | None, report: Progress):
        """Dual-channel call: each channel is one speaker; transcribe them apart, merge in time."""
        utterances: list[Utterance] = []
        n = audio.channels
        for ch in range(n):
            base = 0.05 + 0.9 * ch / n

            def tick(done_s: float, base=base, ch=ch) -> None:
                report(base + 0.9 / n * min(done_s / max(audio.duration, 1e-6), 1.0), f"transcribing channel {ch}")

            tick(0.0)
            transcript = self.transcriber.transcribe(audio.samples[ch], language=language, progress=tick)
            language = language or transcript.language
            utterances += split_at_pauses(transcript.words, speaker=f"CH{ch}", channel=ch, language=language)
        utterances.sort(key=lambda u: (u.start, u.end))
        for i, utt in enumerate(utterances):
            utt.index = i
        return utterances, language or "zh"

    def _diarized(self, audio: Audio, options: AnalysisOptions, report: Progress):
        report(0.05, "diarizing")
        turns = self.diarizer.diarize(audio, num_speakers=options.num_speakers or self.settings.num_speakers,
                                      min_speakers=options.min_speakers or self.settings.min_speakers,
                                      max_speakers=options.max_speakers or self.settings.max_speakers)

        def tick(done_s: float) -> None:
            report(0.3 + 0.65 * min(done_s / max(audio.duration, 1e-6), 1.0), "transcribing")

        tick(0.0)
        transcript = self.transcriber.transcribe(audio.samples[0], language=options.language, progress=tick)
        language = options.language or transcript.language
        utterances = attribute_words(transcript.words, turns, language=language) if turns else []
        return utterances, language, turns

    def _model_names(self, channels: int) -> dict[str, str]:
        names = {"asr": getattr(self._transcriber, "name", "")}
        if channels == 1 and self._diarizer is not None:
            names["diarization"] = getattr(self._diarizer, "name", type(self._diarizer).__name__)
        return names


def split_at_pauses(words: list[Word], *, speaker: str, channel: int | None, language: str,
                    gap_s: float = UTTERANCE_GAP_S) -> list[Utterance]:
    """One channel's words -> utterances, cut where the speaker pauses for `gap_s` or more."""
    groups: list[list[Word]] = []
    for word in words:
        word.speaker = speaker
        if groups and word.start - groups[-1][-1].end < gap_s:
            groups[-1].append(word)
        else:
            groups.append([word])
    return [Utterance(speaker=speaker, start=g[0].start, end=g[-1].end, text=join_words([w.text for w in g]),
                      words=g, channel=channel, language=language) for g in groups]


def override_roles(analyzer: Analyzer, call_id: int, roles: dict[str, str]) -> CallResult:
    """A reviewer corrects who is who; detection re-runs on the corrected roles.

    Roles, words and violations change in one transaction: a failure leaves the call as it was."""
    from sqlmodel import select

    from .types import ROLES

    bad = {r for r in roles.values() if r not in ROLES}
    if bad:
        raise ComplianceError(f"unknown role(s) {', '.join(sorted(bad))}: use one of {', '.join(ROLES)}")
    with Session(analyzer.engine) as session:
        call = session.get(store.CallRecord, call_id)
        if call is None:
            raise ComplianceError(f"no stored call with id {call_id}")
        result = store.load_call(session, call)
        known = {s.speaker for s in result.speakers}
        unknown = set(roles) - known
        if unknown:
            raise ComplianceError(f"call {call_id} has no speaker {', '.join(sorted(unknown))} "
                                  f"(speakers: {', '.join(sorted(known))})")
        for info in result.speakers:
            if info.speaker in roles:
                info.role, info.role_confidence = roles[info.speaker], 1.0
        for utt in result.utterances:
            utt.role = roles.get(utt.speaker, utt.role)
            for word in utt.words:
                word.role = roles.get(word.speaker or utt.speaker, word.role)
        for rec in session.exec(select(store.SpeakerRecord).where(store.SpeakerRecord.call_id == call_id)):
            if rec.label in roles:
                rec.role, rec.role_confidence = roles[rec.label], 1.0
                session.add(rec)
        by_idx = {u.index: u for u in result.utterances}
        for rec in session.exec(select(store.UtteranceRecord).where(store.UtteranceRecord.call_id == call_id)):
            utt = by_idx[rec.idx]
            rec.role = utt.role
            rec.words = [dict(w, role=roles.get(w.get("speaker") or rec.speaker, w.get("role"))) for w in rec.words]
            session.add(rec)
        result.violations = analyzer.detect(result.utterances)
        store.replace_violations(session, call_id, result.violations)
    result.reused = False
    return result
