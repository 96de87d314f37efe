import pytest
from sqlmodel import Session, func, select

from compliance import store
from compliance.types import CallResult, SpeakerInfo, Utterance, Violation, Word


def _result(sha="a" * 64, n_viol=1) -> CallResult:
    words = [Word("这款", 1.0, 1.4, 0.9), Word("保本", 1.4, 1.8, 0.8)]
    utt = Utterance(speaker="CH0", start=1.0, end=1.8, text="这款保本", role="agent", words=words, channel=0)
    v = Violation(rule_id="zh.guarantee", title="保本承诺", category="guarantee_of_principal", severity="high",
                  start=1.4, end=1.8, speaker="CH0", role="agent", matched_text="保本", context="这款保本",
                  reason="phrase 保本", utterance_index=0)
    return CallResult(source="/x/call.flac", sha256=sha, duration=10.0, channels=2, language="zh",
                      speakers=[SpeakerInfo("CH0", "agent", 1.0, 0, 0.8)], utterances=[utt],
                      violations=[v] * n_viol, models={"asr": "whisper-base"})


def _count(session, table):
    return session.exec(select(func.count()).select_from(table)).one()


@pytest.fixture()
def engine(tmp_path):
    return store.make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")


def test_round_trip_keeps_words_and_evidence(engine):
    with Session(engine) as s:
        call = store.save_call(s, _result())
        loaded = store.load_call(s, call)
    assert loaded.utterances[0].words[1].text == "保本"
    assert loaded.utterances[0].words[1].start == 1.4
    assert loaded.violations[0].matched_text == "保本"
    assert loaded.speakers[0].role == "agent"
    assert loaded.models == {"asr": "whisper-base"}


def test_same_audio_is_stored_once(engine):
    with Session(engine) as s:
        first = store.save_call(s, _result())
        second = store.save_call(s, _result(n_viol=3))
        assert first.id == second.id
        assert _count(s, store.CallRecord) == 1
        assert _count(s, store.ViolationRecord) == 1


def test_replace_swaps_the_whole_call(engine):
    with Session(engine) as s:
        store.save_call(s, _result())
        store.save_call(s, _result(n_viol=2), replace=True)
        assert _count(s, store.CallRecord) == 1
        assert _count(s, store.ViolationRecord) == 2
        assert _count(s, store.UtteranceRecord) == 1


def test_a_failure_mid_write_leaves_nothing_behind(engine, monkeypatch):
    def boom(*_a, **_k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(store, "_add_violations", boom)
    with Session(engine) as s:
        with pytest.raises(RuntimeError):
            store.save_call(s, _result())
    with Session(engine) as s:
        for table in (store.CallRecord, store.UtteranceRecord, store.SpeakerRecord, store.ViolationRecord):
            assert _count(s, table) == 0


def test_a_failed_replace_keeps_the_old_result(engine, monkeypatch):
    with Session(engine) as s:
        store.save_call(s, _result())
    monkeypatch.setattr(store, "_add_violations", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("x")))
    with Session(engine) as s:
        with pytest.raises(RuntimeError):
            store.save_call(s, _result(n_viol=2), replace=True)
    with Session(engine) as s:
        assert _count(s, store.CallRecord) == 1
        assert _count(s, store.UtteranceRecord) == 1


def test_replace_violations_after_redetection(engine):
    with Session(engine) as s:
        call = store.save_call(s, _result())
        store.replace_violations(s, call.id, [])
        assert _count(s, store.ViolationRecord) == 0
