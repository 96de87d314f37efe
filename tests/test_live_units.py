"""Live-stream building blocks without the ASR model: streaming VAD on real calls, the incremental
rule engine against detect(), the wire protocol's validation, the spool -> WAV path."""

from __future__ import annotations

import json

import numpy as np
import pytest


def _gt(shared, cid):
    return json.loads((shared / "audio" / "calls" / f"{cid}.json").read_text(encoding="utf-8"))


def _vad_segments(x, chunk):
    from compliance.live.vad import StreamingVad

    vad = StreamingVad(0)
    segs = []
    for i in range(0, len(x), chunk):
        segs += vad.feed(x[i:i + chunk])
    return [(s.start, s.end) for s in segs + vad.flush()]


def test_streaming_vad_finds_every_turn_whatever_the_frame_size(shared):
    from compliance.ingest import load_audio

    audio = load_audio(shared / "audio" / "calls" / "dev05.stereo.flac")
    gt = _gt(shared, "dev05")
    for ch, who in ((0, "agent"), (1, "customer")):
        x = audio.samples[ch]
        segs = _vad_segments(x, 1600)
        assert segs == _vad_segments(x, 333)  # frames of any size give the same cut
        for turn in gt["turns"]:
            if turn["speaker"] != who:
                continue
            covered = sum(max(0, min(e / 16000, turn["end"]) - max(s / 16000, turn["start"])) for s, e in segs)
            assert covered >= 0.9 * (turn["end"] - turn["start"]), (ch, turn)
        # nothing but speech: the channel is exact zeros outside its speaker's turns
        speech = [(t["start"], t["end"]) for t in gt["turns"] if t["speaker"] == who]
        for s, e in segs:
            assert any(min(e / 16000, b) - max(s / 16000, a) > 0 for a, b in speech), (s, e)
        assert all(e - s <= 12.5 * 16000 for s, e in segs)


def test_upsampler_and_buffer():
    from compliance.live.vad import AudioBuffer, Upsampler

    up = Upsampler()
    x = np.sin(np.arange(800) / 10).astype(np.float32)
    y = np.concatenate([up(x[:300]), up(x[300:])])
    assert len(y) == 1600 and np.allclose(y[1::2], x)
    buf = AudioBuffer(capacity=16000)
    for i in range(20):
        buf.append(np.full(16000, i, dtype=np.float32))
    buf.trim(15 * 16000)
    assert buf.base == 15 * 16000 and buf.get(0, 16 * 16000).tolist() == [15.0] * 16000
    assert buf.get(19 * 16000, 25 * 16000).tolist() == [19.0] * 16000


def _utterances_from_gt(gt):
    """The ground truth's clauses as final segments with word timings (one word per character)."""
    from compliance.types import Word

    segs = []
    for turn in gt["turns"]:
        for seg in turn["segments"]:
            n = len(seg["text"])
            step = (seg["end"] - seg["start"]) / n
            words = [Word(ch, round(seg["start"] + i * step, 3), round(seg["start"] + (i + 1) * step, 3))
                     for i, ch in enumerate(seg["text"])]
            segs.append((turn["speaker"], words))
    return segs


@pytest.mark.parametrize("cid", ["dev01", "dev04", "dev05", "dev06", "dev07", "dev08"])
def test_incremental_detection_equals_detect(shared, cid):
    """Fed clause by clause, the live detector ends with exactly what detect() says about the same
    utterances, and never alerts twice for one violation."""
    from compliance.detect import detect, load_packs
    from compliance.live.detector import LiveDetector, violation_key
    from compliance.pipeline import split_at_pauses

    gt = _gt(shared, cid)
    packs = load_packs()
    live = LiveDetector(packs, "zh")
    alerted = []
    for i, (who, words) in enumerate(_utterances_from_gt(gt)):
        ch = 0 if who == "agent" else 1
        live.add(f"CH{ch}", ch, who, [w.__class__(**w.__dict__) for w in words], f"u{i}")
        new, _gone = live.update()
        alerted += [violation_key(v, live.whole_call) for v in new]
    # post-call: the same words, split the way the pipeline does
    utts = []
    for ch, who in ((0, "agent"), (1, "customer")):
        words = [w for spk, ws in _utterances_from_gt(gt) if spk == who for w in ws]
        for u in split_at_pauses(words, speaker=f"CH{ch}", channel=ch, language="zh"):
            u.role = who
            utts.append(u)
    utts.sort(key=lambda u: (u.start, u.end))
    for i, u in enumerate(utts):
        u.index = i
    batch = detect(utts, packs)
    final = live.evaluate()
    as_set = lambda vs: sorted((v.rule_id, v.kind, v.start, v.end, v.matched_text) for v in vs)  # noqa: E731
    assert as_set(final) == as_set(batch)
    assert len(alerted) == len(set(alerted))
    keys = {violation_key(v, live.whole_call) for v in batch}
    assert keys <= set(alerted)  # every final violation was alerted live at some point
    if gt["violations"]:
        assert batch


def test_start_message_validation():
    from compliance.live.protocol import ProtocolError, parse_start

    s = parse_start({"type": "start", "sample_rate": 8000, "channels": 2, "agent_channel": 1,
                     "call": {"agent_id": "A1", "call_time": "2026-11-02T10:15:00+08:00"}})
    assert (s.sample_rate, s.channels, s.agent_channel, s.frame_bytes) == (8000, 2, 1, 4)
    assert parse_start({"type": "start", "channels": 1}).agent_channel is None
    for bad, word in (({"sample_rate": 44100}, "sample_rate"), ({"channels": 3}, "channels"),
                      ({"encoding": "opus"}, "encoding"), ({"channels": 2, "agent_channel": 2}, "agent_channel"),
                      ({"call": {"agent": "x"}}, "unknown call field"), ({"call": {"call_time": "soon"}}, "ISO"),
                      ({"rate": 16000}, "unknown field"), ({"language": "zh-CN!"}, "language")):
        with pytest.raises(ProtocolError) as err:
            parse_start({"type": "start", **bad})
        assert err.value.code == "bad_start" and word in err.value.detail


def test_wav_header_is_what_the_decoder_reads(tmp_path):
    import wave

    from compliance.live.storage import wav_header

    pcm = (np.arange(3200, dtype="<i2") - 1600).tobytes()
    path = tmp_path / "x.wav"
    path.write_bytes(wav_header(len(pcm), 8000, 2) + pcm)
    with wave.open(str(path)) as w:
        assert (w.getnchannels(), w.getframerate(), w.getsampwidth(), w.getnframes()) == (2, 8000, 2, 1600)
        assert w.readframes(1600) == pcm


def test_packed_decoding_gives_each_utterance_its_own_words():
    """Several waiting utterances decoded as one clip: each gets the words in its stretch, in call
    time, without those of its left context or of the silence between them."""
    from compliance.live.asr import FINAL, PACK_GAP_S, _Task, decode_batch
    from compliance.transcribe import Segment, Transcript
    from compliance.types import Word

    class Fake:  # "hears" a word in every 0.5 s that holds sound
        def transcribe(self, samples, language=None):
            words = []
            for i in range(0, len(samples) - 7999, 8000):
                if np.abs(samples[i:i + 8000]).max() > 0:
                    words.append(Word(f"w{i // 8000}", i / 16000, (i + 8000) / 16000))
            return Transcript(language or "zh", 1.0, [Segment(0, len(samples) / 16000, "", words)])

    a = np.ones(32000, dtype=np.float32)  # 2 s, first 1 s left context
    b = np.ones(16000, dtype=np.float32)  # 1 s, no context
    tasks = [_Task(FINAL, 0, a, 16000, 10.0, "zh", None), _Task(FINAL, 1, b, 0, 50.0, "zh", None)]
    out = decode_batch(Fake(), tasks)
    (wa, _), (wb, _) = out
    assert [(w.start, w.end) for w in wa] == [(11.0, 11.5), (11.5, 12.0)]
    # b starts PACK_GAP_S after a in the clip: the word straddling the gap (mostly silence) is
    # nobody's; b's own word comes back at b's call time
    assert [w.text for w in wb] == ["w5"] and 50.0 <= wb[0].start < wb[0].end <= 51.0
    assert PACK_GAP_S * 16000 >= 4000


def test_clause_pauses_cut_long_turns(shared):
    """With cut_after_s, a turn is cut at its clause pauses once the segment is that long: shorter
    segments, never cut inside a clause, the same speech covered."""
    from compliance.ingest import load_audio
    from compliance.live.vad import StreamingVad

    audio = load_audio(shared / "audio" / "calls" / "dev05.stereo.flac")
    gt = _gt(shared, "dev05")
    x = audio.samples[0]
    clauses = [(c["start"], c["end"]) for t in gt["turns"] if t["speaker"] == "agent" for c in t["segments"]]

    def cut(**kw):
        vad = StreamingVad(0, **kw)
        segs = []
        for i in range(0, len(x), 1600):
            segs += vad.feed(x[i:i + 1600])
        return segs + vad.flush()

    whole, eager = cut(), cut(cut_after_s=2.0, cut_silence_s=0.25)
    assert len(eager) > len(whole)
    assert max(s.end_s - s.start_s for s in eager) < max(s.end_s - s.start_s for s in whole)
    for s in eager:
        end = s.end_s - 0.15  # the pad after the last speech window
        assert not any(a + 0.05 < end < b - 0.05 for a, b in clauses), (s, end)
    speech = lambda segs: sum(s.end - s.start for s in segs)  # noqa: E731
    assert abs(speech(eager) - speech(whole)) < 0.1 * speech(whole)


def test_encoder_window_for_a_clip():
    from compliance.live.asr import DecodeOptions, window_for

    assert window_for(3.0, 10.0) == 10.0
    assert window_for(9.6, 10.0) == 15.0  # half a second to spare
    assert window_for(14.0, 10.0) == 15.0 and window_for(22.0, 10.0) == 25.0
    assert window_for(29.9, 10.0) == 30.0 and window_for(45.0, 15.0) == 30.0
    assert window_for(3.0, 30.0) == 30.0 and window_for(3.0, 0.0) == 30.0
    assert DecodeOptions(window_s=10.0).pack_limit_s == 9.5
    assert DecodeOptions(window_s=30.0).pack_limit_s == 28.0
    assert DecodeOptions(window_s=10.0, pack_max_s=14.0).pack_limit_s == 14.0


def test_worker_takes_finals_first_packs_within_the_window_and_answers_stale_ones():
    """Finals before partials whatever the order they came in; waiting finals packed up to the
    pack limit; a stale final (its stream is gone) is answered without decoding, even in the middle
    of a pack; a partial is never packed."""
    from compliance.live.asr import FINAL, PARTIAL, AsrWorker, DecodeOptions

    worker = AsrWorker(lambda: None, options=DecodeOptions(window_s=10.0))
    answers = []

    def task(priority, seconds, name, stale=False):
        worker.submit(priority, np.zeros(int(seconds * 16000), dtype=np.float32), 0, 0.0, "zh",
                      lambda result, timing, name=name: answers.append((name, type(result).__name__, timing)),
                      stale=lambda: stale)

    task(PARTIAL, 3.0, "p1")
    task(FINAL, 3.0, "f1")
    task(FINAL, 2.0, "f2", stale=True)
    task(FINAL, 3.0, "f3")
    task(FINAL, 4.0, "f4")
    task(PARTIAL, 2.0, "p2", stale=True)
    with worker._cond:
        first = worker._take()
        second = worker._take()
        third = worker._take()
        assert worker._take() == [] and not worker._tasks
    # f1 + gap + f3 = 6.3 s; with f4 9.3 + 0.3 > 9.5: f4 waits for the next pack
    assert [t.seq for t in first] == [1, 3] and [t.seq for t in second] == [4] and [t.seq for t in third] == [0]
    assert [(n, kind) for n, kind, _ in answers] == [("f2", "LookupError"), ("p2", "LookupError")]
    assert answers[0][2]["batch"] == 0


def test_busy_fraction_counts_recent_decodes():
    import time

    from compliance.live.asr import AsrWorker

    worker = AsrWorker(lambda: None)
    assert worker.busy_fraction(10.0) == 0.0
    now = time.monotonic()
    worker._recent.extend([(now - 30.0, now - 25.0), (now - 8.0, now - 5.0), (now - 4.0, now - 2.0)])
    assert abs(worker.busy_fraction(10.0) - 0.5) < 0.05


def test_decode_cost_model_and_lag():
    """The worker's decode-time estimate is fitted to what decodes took (a fixed part per decode
    plus a part per second of audio), and the lag counts the finals waiting by it."""
    from compliance.live.asr import FINAL, AsrWorker, DecodeOptions

    worker = AsrWorker(lambda: None, options=DecodeOptions(window_s=10.0))
    for audio_s in (3.0, 6.0, 9.0, 12.0, 4.0):
        worker._learn(audio_s, 0.7 + 0.1 * audio_s)
    assert abs(worker.fixed_s - 0.7) < 1e-6 and abs(worker.per_s - 0.1) < 1e-6
    assert abs(worker.estimate_s(5.0) - 1.2) < 1e-6
    assert worker.lag_s() == 0.0
    for _ in range(3):  # 3 x 4 s finals: two packs (4 + 0.3 + 4 <= 9.5, then 4)
        worker.submit(FINAL, np.zeros(4 * 16000, dtype=np.float32), 0, 0.0, "zh", lambda *_: None)
    lag = worker.lag_s()
    assert 2 * 0.7 + 12.6 * 0.1 <= lag < 2 * 0.7 + 12.6 * 0.1 + 0.5


def test_worker_batches_packs_of_the_same_window_and_language():
    """With batch_max, the finals waiting behind the first pack come along as further packs (each
    within the pack limit), up to batch_max of them; a pack needing another encoder window, another
    language, or a partial ends the batch and stays queued in its place."""
    from compliance.live.asr import FINAL, PARTIAL, AsrWorker, DecodeOptions

    worker = AsrWorker(lambda: None, options=DecodeOptions(window_s=10.0, batch_max=2))

    def task(priority, seconds, language="zh"):
        worker.submit(priority, np.zeros(int(seconds * 16000), dtype=np.float32), 0, 0.0, language,
                      lambda *_: None)

    task(FINAL, 4.0)  # 0
    task(FINAL, 4.0)  # 1  packed with 0
    task(FINAL, 6.0)  # 2  a second pack of the first batch
    task(FINAL, 5.0)  # 3  a third pack: over batch_max, next batch
    task(FINAL, 12.0)  # 4  a 15 s window: its own batch
    task(FINAL, 3.0, "en")  # 5  another language
    task(PARTIAL, 3.0)  # 6
    with worker._cond:
        batches = []
        while True:
            b = worker._take_batch()
            if not b:
                break
            batches.append([[t.seq for t in p] for p in b])
    assert batches == [[[0, 1], [2]], [[3]], [[4]], [[5]], [[6]]]
    with worker._cond:
        assert not worker._tasks
    # the lag counts batches, not packs: 4 finals of 4 s are two packs, one batch
    w2 = AsrWorker(lambda: None, options=DecodeOptions(window_s=10.0, batch_max=2))
    w2.fixed_s, w2.per_s = 1.0, 0.1
    for _ in range(4):
        w2.submit(FINAL, np.zeros(4 * 16000, dtype=np.float32), 0, 0.0, "zh", lambda *_: None)
    assert 1.0 + 16.9 * 0.1 <= w2.lag_s() < 2.0 + 16.9 * 0.1


def test_worker_hands_each_task_its_packs_result():
    """A batch of packs through the worker's loop: every task is answered once, with its own words,
    the batch's size in its timing; a transcriber without faster-whisper's internals decodes pack by
    pack."""
    import threading

    from compliance.live.asr import FINAL, AsrWorker, DecodeOptions
    from compliance.transcribe import Segment, Transcript
    from compliance.types import Word

    class Fake:
        calls = 0

        def transcribe(self, samples, language=None):
            Fake.calls += 1
            words = [Word(f"n{int(samples.max())}", 0.0, 0.5)]
            return Transcript(language or "zh", 1.0, [Segment(0, len(samples) / 16000, "", words)])

    worker = AsrWorker(Fake, options=DecodeOptions(window_s=10.0, batch_max=4))
    answers, done = {}, threading.Event()

    def on(name):
        def cb(result, timing):
            answers[name] = (result, timing)
            if len(answers) == 3:
                done.set()
        return cb

    for i, seconds in enumerate((6.0, 6.0, 6.0)):  # three packs of one
        worker.submit(FINAL, np.full(int(seconds * 16000), i + 1, dtype=np.float32), 0, float(i), "zh", on(i))
    worker.start()
    try:
        assert done.wait(30)
    finally:
        worker.stop()
    assert sorted(answers) == [0, 1, 2] and Fake.calls == 3
    for i in range(3):
        (words, lang), timing = answers[i]
        assert [w.text for w in words] == [f"n{i + 1}"] and words[0].start == float(i) and lang == "zh"
        assert timing["packs"] == 3 and timing["batch"] == 1
    assert worker.batches == 1 and worker.batched == 3 and worker.decodes == 1


def _hub(tmp_path, monkeypatch, *, warmup=True, build_s=0.3):
    """A LiveHub on a temporary data directory with a fake transcriber and a fake rule engine whose
    build and similarity training are slow and counted."""
    import threading
    import time
    from types import SimpleNamespace

    import compliance.detect
    from compliance.config import load_settings
    from compliance.live.hub import LiveHub
    from compliance.transcribe import Segment, Transcript

    counts = {"packs": 0, "train": 0, "decode": 0, "load": 0, "analyze": 0}
    lock = threading.Lock()

    class Similarity:
        def __init__(self):
            self._model = None

        @property
        def model(self):
            with lock:
                if self._model is None:
                    time.sleep(build_s)
                    counts["train"] += 1
                    self._model = object()
            return self._model

    class Engine:
        call_rules = []

        def __init__(self):
            self.similarity = Similarity()

        def analyze(self, utterance):
            counts["analyze"] += 1
            return SimpleNamespace(utt=utterance)

    def load_packs(*_a, **_k):
        time.sleep(build_s)
        counts["packs"] += 1
        return Engine()

    class Fake:
        def transcribe(self, samples, language=None):
            counts["decode"] += 1
            return Transcript(language or "zh", 1.0, [Segment(0, len(samples) / 16000, "", [])])

    def factory():
        time.sleep(build_s)
        counts["load"] += 1
        return Fake()

    monkeypatch.setattr(compliance.detect, "load_packs", load_packs)
    monkeypatch.setattr("compliance.detect.violations_from", lambda *_a, **_k: [])
    settings = load_settings(data_dir=tmp_path / "data", db_url=f"sqlite:///{tmp_path / 'x.db'}",
                             live_warmup=warmup)
    hub = LiveHub(SimpleNamespace(settings=settings, engine=None))
    hub.asr._factory = factory
    monkeypatch.setattr(hub.store, "recover", lambda: [])
    monkeypatch.setattr(hub, "_link_loop", lambda: None)
    return hub, counts


def test_startup_warms_the_live_models_in_the_background(tmp_path, monkeypatch):
    """startup() returns at once; in the background the rule packs are built, their similarity
    layer trained, the ASR model loaded and decoded with, each once: a stream arriving meanwhile
    (here: two threads asking for the rules and the model while they are being built) waits for
    that build instead of starting another one, and the first utterance finds them ready."""
    import threading
    import time

    hub, counts = _hub(tmp_path, monkeypatch)
    t0 = time.monotonic()
    hub.startup()
    try:
        assert time.monotonic() - t0 < 0.25  # not blocked by the 0.3 s builds
        got = []
        threads = [threading.Thread(target=lambda: got.append((hub.rules, hub.asr.transcriber))) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert hub.rules_ready.wait(10)
        hub._warmer.join(10)
        assert not hub._warmer.is_alive() and not hub.rules_building()
        assert counts["packs"] == 1 and counts["train"] == 1 and counts["load"] == 1 and counts["analyze"] == 1
        assert got[0][0] is got[1][0] is hub.rules and got[0][1] is got[1][1] is hub.asr.transcriber
        assert hub.rules.similarity._model is not None  # trained before any utterance
        assert counts["decode"] >= 1 and set(hub.warm) >= {"rules_s", "asr_s"}
        assert hub.stats()["warm_up"] == hub.warm
    finally:
        hub.shutdown()


def test_no_warm_up_when_switched_off(tmp_path, monkeypatch):
    hub, counts = _hub(tmp_path, monkeypatch, warmup=False)
    hub.startup()
    try:
        assert hub.rules_ready.is_set() and hub._warmer is None and not hub.rules_building()
        assert counts == {"packs": 0, "train": 0, "decode": 0, "load": 0, "analyze": 0}  # built on first use instead
    finally:
        hub.shutdown()


def test_vad_reports_the_clause_pauses_a_turn_went_on_after(shared):
    """probe_pause_s: a pause inside a segment is reported once, as speech resumes, with the speech
    before it; a pause that ends the segment is not (its final is on the way)."""
    from compliance.ingest import load_audio
    from compliance.live.vad import SR, StreamingVad

    audio = load_audio(shared / "audio" / "calls" / "dev07.stereo.flac")
    gt = _gt(shared, "dev07")
    x = audio.samples[0]
    vad = StreamingVad(0, cut_after_s=3.0, cut_silence_s=0.25, probe_pause_s=0.15)
    pauses, segs = [], []
    for i in range(0, len(x), 1600):
        segs += vad.feed(x[i:i + 1600])
        p = vad.take_pause()
        if p is not None:
            pauses.append((p, (i + 1600) / SR))
            assert vad.in_speech and vad.open_start == p[0]
            assert vad.take_pause() is None  # once
    segs += vad.flush()
    assert len(pauses) >= 5
    ends = [s.end for s in segs]
    for (start, end), at in pauses:
        assert any(s.start == start and s.end > end for s in segs)  # the segment went on past it
        assert end not in ends
        assert at - end / SR < 0.6  # reported soon after the pause began
    # "这个保险就是存钱，" (a planted violation mid-turn, 0.24 s before the next clause) ends at a pause
    clause_end = next(c["end"] for t in gt["turns"] for c in t["segments"] if c["text"].startswith("这个保险就是存钱"))
    assert any(abs(end / SR - 0.15 - clause_end) < 0.1 for (_s, end), _at in pauses)
    # off by default: nothing reported
    quiet = StreamingVad(0, cut_after_s=3.0)
    for i in range(0, len(x), 1600):
        quiet.feed(x[i:i + 1600])
        assert quiet.take_pause() is None


def _words(text, start, step=0.2):
    from compliance.types import Word

    return [Word(ch, round(start + i * step, 3), round(start + (i + 1) * step, 3)) for i, ch in enumerate(text)]


def test_early_alerts_are_confirmed_or_withdrawn_by_the_final_words():
    from compliance.detect import load_packs
    from compliance.live.detector import LiveDetector

    live = LiveDetector(load_packs(), "zh")
    seg = (0, 16000)
    early = live.probe("CH0", 0, "agent", _words("这款产品保本保收益", 1.0), seg)
    assert {v.rule_id for v in early} >= {"ZH-GP-001"}
    assert not [v for v in early if v.rule_id.startswith("SIM.")]
    assert live.probe("CH0", 0, "agent", _words("这款产品保本保收益", 1.0), seg) == []  # alerted once
    # a final of the other speaker meanwhile: the early alerts stand (their segment is still open)
    live.add("CH1", 1, "customer", _words("嗯", 2.0), "u1")
    live.settle((1, 30000))
    assert live.update() == ([], [])
    # the final words say it again, a little later (another decode): confirmed, not alerted twice
    live.add("CH0", 0, "agent", _words("这款产品保本保收益，您放心", 1.3), "u2")
    live.settle(seg)
    new, gone = live.update()
    assert gone == [] and not {v.rule_id for v in new} & {v.rule_id for v in early}
    assert live.update() == ([], [])
    assert {v.rule_id for v in live.evaluate(call_level=False)} >= {v.rule_id for v in early}
    assert live.probe("CH0", 0, "agent", _words("保本保收益", 1.3), seg) == []  # settled: no more early alerts

    # the final words deny it: withdrawn
    other = LiveDetector(load_packs(), "zh")
    seg = (0, 320000)
    early = other.probe("CH0", 0, "agent", _words("这款产品保本保收益", 20.0), seg)
    assert early
    other.add("CH0", 0, "agent", _words("这款产品不保本，也不保证收益，投资须谨慎", 20.0), "u1")
    other.settle(seg)
    new, gone = other.update()
    assert {v.rule_id for _k, v in gone} == {v.rule_id for v in early}
    assert not [v for v in new if v.rule_id in {e.rule_id for e in early}]


def test_partial_decodes_are_one_bounded_pass_finals_keep_the_fallback():
    """A partial (an utterance cut at a pause, which whisper may loop on) is decoded once at
    temperature 0 with a token budget for its length; a final gets whisper's usual options."""
    import threading
    from types import SimpleNamespace

    from compliance.live.asr import FINAL, PARTIAL, TOKENS_PER_S, AsrWorker, DecodeOptions

    calls = []

    class Model:  # faster-whisper's transcribe signature, no feature extractor: the plain path
        def transcribe(self, clip, **kw):
            calls.append((len(clip), kw))
            return iter([]), SimpleNamespace(language="zh")

    worker = AsrWorker(lambda: SimpleNamespace(model=Model(), beam_size=5), options=DecodeOptions(beam_size=2))
    done = threading.Event()
    answers = []

    def answer(result, _timing):
        answers.append(result)
        if len(answers) == 2:
            done.set()

    worker.submit(FINAL, np.zeros(3 * 16000, dtype=np.float32), 0, 0.0, "zh", answer)
    worker.submit(PARTIAL, np.zeros(2 * 16000, dtype=np.float32), 0, 0.0, "zh", answer)
    worker.start()
    try:
        assert done.wait(10)
    finally:
        worker.stop()
    (n_final, final), (n_partial, partial) = calls
    assert n_final == 3 * 16000 and n_partial == 2 * 16000
    assert "temperature" not in final and "max_new_tokens" not in final and final["beam_size"] == 2
    assert partial["temperature"] == 0.0 and partial["max_new_tokens"] == 2 * TOKENS_PER_S + 8
    assert partial["beam_size"] == 2 and partial["word_timestamps"]
    assert worker.options.fallback and not worker.partial_options.fallback
