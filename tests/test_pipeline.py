"""The spine on real audio with the real ASR model."""

import json
import re

import numpy as np
import pytest
from sqlmodel import Session, func, select

from compliance import store
from compliance.ingest import load_audio
from compliance.pipeline import AnalysisOptions, Analyzer
from compliance.textnorm import to_simplified

TRADITIONAL = set("這個們說為來時會對還點們裡嗎從覺過錢銀險產")


class CountingTranscriber:
    def __init__(self, inner):
        self.inner, self.calls, self.name = inner, 0, inner.name

    def transcribe(self, samples, **kw):
        self.calls += 1
        return self.inner.transcribe(samples, **kw)


@pytest.fixture(scope="module")
def dev04(shared, whisper, tmp_path_factory):
    """dev04 analysed once: a dual-channel call with planted violations and no disclosure."""
    from compliance.config import load_settings

    data = tmp_path_factory.mktemp("data")
    settings = load_settings(data_dir=data)
    transcriber = CountingTranscriber(whisper)
    analyzer = Analyzer(settings, transcriber=transcriber)
    path = shared / "audio/calls/dev04.stereo.flac"
    result = analyzer.analyze(path)
    truth = json.loads((shared / "audio/calls/dev04.json").read_text())
    return analyzer, transcriber, path, result, truth


def test_dual_channel_call_comes_out_as_agent_and_customer(dev04):
    _, _, _, result, truth = dev04
    roles = {s.speaker: s.role for s in result.speakers}
    assert roles == {"CH0": "agent", "CH1": "customer"}
    assert all(s.role_confidence == 1.0 for s in result.speakers)
    # every utterance lies inside (or within 1 s of) a ground-truth turn of its own speaker
    for utt in result.utterances:
        own = [t for t in truth["turns"] if t["speaker"] == utt.role]
        assert any(t["start"] - 1.0 <= utt.start and utt.end <= t["end"] + 1.0 for t in own), utt
    starts = [u.start for u in result.utterances]
    assert starts == sorted(starts)
    assert [u.index for u in result.utterances] == list(range(len(result.utterances)))


def test_words_carry_timestamps_speaker_and_role(dev04):
    _, _, _, result, _ = dev04
    for utt in result.utterances:
        assert utt.words, utt
        assert utt.words[0].start == utt.start and utt.words[-1].end == utt.end
        for a, b in zip(utt.words, utt.words[1:]):
            assert a.start <= b.start
        for w in utt.words:
            assert w.speaker == utt.speaker and w.role == utt.role
            assert 0.0 <= w.probability <= 1.0
    agent_text = "".join(u.text for u in result.utterances if u.role == "agent")
    assert "银行" in agent_text and "产品" in agent_text
    customer_text = "".join(u.text for u in result.utterances if u.role == "customer")
    assert "金额" in customer_text


def test_agent_violations_found_and_customer_not_blamed(dev04):
    _, _, _, result, truth = dev04
    categories = {v.category for v in result.violations if v.role == "agent"}
    assert "guarantee_of_principal" in categories
    assert "missing_disclosure" in categories
    for v in result.violations:
        if v.kind == "utterance":
            assert v.role == "agent", v
            assert v.start >= 0 and v.end <= result.duration + 0.5


def test_the_call_json_can_be_checked_again_without_the_audio(dev04, tmp_path):
    """`compliance detect --call` on what `analyze --json` wrote finds what the pipeline found."""
    from compliance.detect import detect
    from compliance.output import to_json
    from compliance.transcript import read_transcript

    _, _, _, result, _ = dev04
    out = tmp_path / "dev04.json"
    out.write_text(to_json(result), encoding="utf-8")
    utts = read_transcript(out)
    assert [(u.speaker, u.role, u.start, len(u.words)) for u in utts] == \
        [(u.speaker, u.role, u.start, len(u.words)) for u in result.utterances]
    again = detect(utts)
    key = lambda v: (v.rule_id, v.kind, v.utterance_index, round(v.start, 2))  # noqa: E731
    assert sorted(map(key, again)) == sorted(map(key, result.violations))


def test_reanalysis_is_recognised_by_content_hash(dev04, tmp_path):
    analyzer, transcriber, path, first, _ = dev04
    before = transcriber.calls
    copy = tmp_path / "renamed.flac"
    copy.write_bytes(path.read_bytes())
    again = analyzer.analyze(copy)
    assert again.reused and again.call_id == first.call_id
    assert transcriber.calls == before, "nothing is transcribed twice"
    with Session(analyzer.engine) as s:
        assert s.exec(select(func.count()).select_from(store.CallRecord)).one() == 1
        assert s.exec(select(func.count()).select_from(store.ViolationRecord)).one() == len(first.violations)


def test_mandarin_comes_out_in_simplified_characters(shared, whisper):
    """Whisper writes Traditional for about half of these clips; the output must be Simplified."""
    for path in sorted((shared / "audio/zh").glob("aishell_*.wav"))[:3]:
        audio = load_audio(path)
        transcript = whisper.transcribe(audio.samples[0], language="zh")
        text = "".join(w.text for w in transcript.words)
        assert text, path
        assert not (set(text) & TRADITIONAL), (path.name, text)
        assert to_simplified(text) == text


def test_english_words_are_spaced(shared, whisper):
    audio = load_audio(shared / "audio/en/jfk.wav")
    transcript = whisper.transcribe(audio.samples[0], language=None)
    assert transcript.language == "en"
    text = " ".join(s.text for s in transcript.segments).lower()
    assert re.search(r"ask not what your country can do for you", text), text


def test_pii_is_masked_in_what_is_stored_and_shown(tmp_path):
    """A card number and a phone number spoken by the customer never reach the database."""
    from compliance.config import load_settings
    from compliance.ingest import load_audio as _load
    from compliance.transcribe import Segment, Transcript
    from compliance.types import Word

    class Scripted:
        name = "scripted"

        def transcribe(self, samples, **_kw):
            words = [Word("我的卡号是", 0.5, 1.5), Word("6222021234567890128", 1.5, 3.0),
                     Word("电话13812345678", 3.0, 4.0)]
            return Transcript("zh", 1.0, [Segment(0.5, 4.0, "", words)])

    import numpy as np

    from audio_factory import write_audio

    path = write_audio(tmp_path / "c.wav", np.random.default_rng(0).normal(0, 0.1, (1, 16000 * 5)).astype(np.float32), 16000)
    turns = [__import__("compliance.types", fromlist=["SpeakerTurn"]).SpeakerTurn("SPEAKER_00", 0.0, 5.0)]

    class OneSpeaker:
        def diarize(self, audio, **_kw):
            return turns

    analyzer = Analyzer(load_settings(data_dir=tmp_path / "d"), transcriber=Scripted(), diarizer=OneSpeaker(),
                        detector=lambda utts: [])
    result = analyzer.analyze(path)
    assert "6222021234567890128" not in result.utterances[0].text
    assert "13812345678" not in result.utterances[0].text
    with Session(analyzer.engine) as s:
        stored = s.exec(select(store.UtteranceRecord)).one()
    assert "6222021234567890128" not in stored.text and "13812345678" not in str(stored.words)
    assert "我的卡号是" in stored.text
    assert _load(path).channels == 1
