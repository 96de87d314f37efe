"""Word-level speaker attribution on hand-made words and turns."""

from __future__ import annotations

from compliance.align import attribute_words, is_backchannel
from compliance.types import SpeakerTurn, Word


def chars(text: str, start: float, step: float = 0.2) -> list[Word]:
    """One Word per character, back to back."""
    return [Word(c, round(start + i * step, 3), round(start + (i + 1) * step, 3)) for i, c in enumerate(text)]


def T(spk: str, a: float, b: float, ch=None) -> SpeakerTurn:
    return SpeakerTurn(spk, a, b, ch)


def test_split_at_speaker_change_and_no_word_lost():
    words = chars("您好我是客户经理", 0.0) + chars("你说吧", 2.0)
    turns = [T("A", 0.0, 1.6), T("B", 2.0, 2.6)]
    utts = attribute_words(words, turns)
    assert [(u.speaker, u.text) for u in utts] == [("A", "您好我是客户经理"), ("B", "你说吧")]
    assert sum(len(u.words) for u in utts) == len(words)
    assert [u.index for u in utts] == [0, 1]
    assert all(w.speaker == u.speaker for u in utts for w in u.words)


def test_segment_spanning_two_speakers_is_split_per_word():
    # one ASR segment "这个保本吗不保本" where the customer asks and the agent answers
    words = chars("这个保本吗", 0.0) + chars("不保本", 1.1)
    turns = [T("CUST", 0.0, 1.0), T("AGENT", 1.05, 1.8)]
    utts = attribute_words(words, turns)
    assert [(u.speaker, u.text) for u in utts] == [("CUST", "这个保本吗"), ("AGENT", "不保本")]


def test_backchannel_inside_agent_sentence_keeps_sentence_whole():
    agent = chars("这款产品不保本收益也不保证", 0.0)  # 0.0 .. 2.6
    mm = Word("嗯", 1.05, 1.25)
    words = agent[:5] + [mm] + agent[5:]
    turns = [T("AGENT", 0.0, 2.6), T("CUST", 1.0, 1.3)]
    utts = attribute_words(words, turns)
    by = {u.speaker: u for u in utts}
    assert by["AGENT"].text == "这款产品不保本收益也不保证"  # not cut by the interjection
    assert by["CUST"].text == "嗯" and mm.speaker == "CUST"
    assert by["CUST"].start >= by["AGENT"].start and by["CUST"].end <= by["AGENT"].end
    assert [u.speaker for u in utts] == ["AGENT", "CUST"]  # sorted by start, overlapping


def test_overlap_non_backchannel_words_follow_the_floor_holder():
    # agent words inside a stretch where both speakers are active stay with the agent
    words = chars("我们行的产品", 0.0)  # 0..1.2
    turns = [T("AGENT", 0.0, 1.2), T("CUST", 0.3, 0.9)]
    utts = attribute_words(words, turns)
    assert len(utts) == 1 and utts[0].speaker == "AGENT"


def test_customer_overlapping_start_is_customer():
    words = chars("好的", 0.0) + chars("那风险大不大", 1.0)
    turns = [T("AGENT", 0.0, 0.45), T("CUST", 0.9, 2.3)]
    utts = attribute_words(words, turns)
    assert [(u.speaker, u.text) for u in utts] == [("AGENT", "好的"), ("CUST", "那风险大不大")]


def test_gap_words_attach_to_nearest_turn_and_are_marked():
    words = chars("我是王敏", 0.0) + [Word("吧", 2.05, 2.2)] + chars("你好", 4.0)
    turns = [T("A", 0.0, 0.8), T("B", 4.0, 4.4)]
    utts = attribute_words(words, turns)
    gap = [w for u in utts for w in u.words if w.gap]
    assert [w.text for w in gap] == ["吧"] and gap[0].speaker == "A"
    assert sum(len(u.words) for u in utts) == 7
    # a gap word after a long pause still opens its own utterance
    assert [u.text for u in utts] == ["我是王敏", "吧", "你好"]


def test_words_without_any_turn_are_kept():
    words = chars("你好", 0.0)
    utts = attribute_words(words, [])
    assert sum(len(u.words) for u in utts) == 2 and all(w.gap for w in words)


def test_three_speakers():
    words = chars("您好", 0.0) + chars("你好", 1.0) + chars("我是主管", 2.0) + chars("好", 3.5)
    turns = [T("S0", 0.0, 0.4), T("S1", 1.0, 1.4), T("S2", 2.0, 2.8), T("S1", 3.5, 3.7)]
    utts = attribute_words(words, turns)
    assert [u.speaker for u in utts] == ["S0", "S1", "S2", "S1"]


def test_long_pause_splits_same_speaker():
    words = chars("第一句", 0.0) + chars("第二句", 3.0)
    utts = attribute_words(words, [T("A", 0.0, 3.6)])
    assert [u.text for u in utts] == ["第一句", "第二句"]


def test_english_words_are_joined_with_spaces():
    words = [Word(" This", 0.0, 0.2), Word(" is", 0.2, 0.3), Word(" guaranteed.", 0.3, 0.8)]
    utts = attribute_words(words, [T("A", 0.0, 1.0)], language="en")
    assert utts[0].text == "This is guaranteed." and utts[0].language == "en"


def test_channel_is_carried_from_turns():
    utts = attribute_words(chars("你好", 0.0), [T("CH1", 0.0, 0.4, 1)])
    assert utts[0].channel == 1


def test_backchannel_tokens():
    assert is_backchannel("嗯。") and is_backchannel("好的") and is_backchannel("OK")
    assert not is_backchannel("保本")
