"""Timing rules (kind silence / overtalk): they read when things were said, from utterance times and,
where the transcript has them, word times."""

from pathlib import Path

import pytest
import yaml

from compliance.detect import detect, load_packs
from compliance.errors import RuleError
from compliance.rules.engine import Engine
from compliance.rules.loader import load_pack_file
from compliance.rules.timing import call_language
from compliance.types import Utterance, Word


@pytest.fixture(scope="module")
def eng():
    return load_packs(similarity=False)


def _u(i, role, start, end, text, words=None, lang="zh"):
    return Utterance(speaker=role, start=start, end=end, text=text, role=role, index=i,
                     language=lang, words=words or [])


def _call(*rows, lang="zh"):
    """rows: (role, start, end, text[, words])"""
    return [_u(i, *r, lang=lang) for i, r in enumerate(rows)]


def _ids(vs, prefix="TM"):
    return [v.rule_id for v in vs if f"-{prefix}-" in v.rule_id]


# --------------------------------------------------------------------------- schema


def _pack(tmp_path: Path, rule: dict) -> Path:
    base = {"id": "T-TM-1", "title": "静音", "category": "call_conduct", "severity": "low",
            "speaker": "agent", "regulation": {"document": "双录暂行规定", "article": "第十条"},
            "description": "长时间静音。", "suggestion": "不要长时间静音。",
            "examples": {"violation": [{"call": ["[0-4] agent: 稍等", "[40-44] agent: 久等了"]}] * 3,
                         "compliant": [{"call": ["[0-4] agent: 稍等", "[5-8] agent: 好了"]}] * 3}}
    doc = {"pack": {"id": "t", "version": "1.0.0", "language": "zh", "title": "t"}, "rules": [{**base, **rule}]}
    p = tmp_path / "p.yaml"
    p.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return p


def test_timing_sections_are_validated(tmp_path):
    with pytest.raises(RuleError, match=r"T-TM-1.*needs a 'silence' section"):
        load_pack_file(_pack(tmp_path, {"kind": "silence"}))
    with pytest.raises(RuleError, match=r"T-TM-1.*silence\.min_sec.*unknown field"):
        load_pack_file(_pack(tmp_path, {"kind": "silence", "silence": {"min_s": 30, "min_sec": 3}}))
    with pytest.raises(RuleError, match=r"T-TM-1.*overtalk\.min_s"):
        load_pack_file(_pack(tmp_path, {"kind": "overtalk", "overtalk": {"min_s": 0}}))
    with pytest.raises(RuleError, match=r"T-TM-1.*overtalk\.min_count"):
        load_pack_file(_pack(tmp_path, {"kind": "overtalk", "overtalk": {"min_count": 0}}))
    with pytest.raises(RuleError, match=r"T-TM-1.*section 'overtalk' does not belong"):
        load_pack_file(_pack(tmp_path, {"kind": "silence", "silence": {"min_s": 3}, "overtalk": {}}))
    pk = load_pack_file(_pack(tmp_path, {"kind": "silence", "silence": {"min_s": 30}}))
    eng = Engine([pk])
    got = detect(_call(("agent", 0, 4, "稍等"), ("agent", 40, 44, "久等了")), eng)
    assert [(v.rule_id, v.kind, v.start, v.end) for v in got] == [("T-TM-1", "silence", 4.0, 40.0)]


# --------------------------------------------------------------------------- silence


def test_silence_counts_from_the_end_of_all_speech_so_far(eng):
    # a backchannel inside a long agent turn ends early: the gap after it is not silence
    utts = _call(("agent", 0, 50, "下面我完整宣读一遍风险揭示书"), ("customer", 3, 3.4, "嗯"),
                 ("customer", 51, 53, "好的"))
    assert "ZH-TM-004" not in _ids(detect(utts, eng))
    utts = _call(("agent", 0, 5, "您稍等，我查一下"), ("customer", 3, 3.4, "嗯"), ("agent", 36, 40, "让您久等了"))
    v = [v for v in detect(utts, eng) if v.rule_id == "ZH-TM-004"]
    assert len(v) == 1 and (v[0].start, v[0].end, v[0].utterance_index) == (5.0, 36.0, 2)
    assert v[0].speaker == "agent" and "31.0 s of silence" in v[0].reason and v[0].matched_text == "您稍等，我查一下"
    # the customer breaks the silence, but dead air is the agent's: the finding goes to the agent's side
    utts = _call(("agent", 0, 5, "我把产品资料发给您"), ("customer", 45, 47, "喂，还在吗？"))
    v = [v for v in detect(utts, eng) if v.rule_id == "ZH-TM-004"]
    assert [(x.speaker, x.role, x.utterance_index, x.start, x.end) for x in v] == [("agent", "agent", 0, 5.0, 45.0)]


def test_a_pause_inside_one_utterance_is_not_silence_between_utterances(eng):
    words = [Word("您稍等", 0, 1.5), Word("好了", 40, 41)]
    utts = _call(("agent", 0, 41, "您稍等 好了", words), ("customer", 42, 43, "好"))
    assert "ZH-TM-004" not in _ids(detect(utts, eng))


def test_unanswered_confirmation_needs_the_question_the_silence_and_the_agent_going_on(eng):
    ask = ("agent", 0, 5, "理财非存款、产品有风险、投资须谨慎，以上内容您是否清楚？")
    assert _ids(detect(_call(ask, ("agent", 9, 12, "好，那我帮您预约了")), eng)) == ["ZH-TM-003"]
    # answered, however late; or the agent goes on at once; or no confirmation was asked
    assert _ids(detect(_call(ask, ("customer", 9, 10, "清楚"), ("agent", 10.5, 12, "好的")), eng)) == []
    assert _ids(detect(_call(ask, ("agent", 6, 9, "我再给您解释一遍")), eng)) == []
    assert _ids(detect(_call(("agent", 0, 5, "这款产品收益怎么样？"), ("agent", 9, 12, "您慢慢考虑")), eng)) == []
    # a confirmation said, not asked, is no question left hanging
    assert _ids(detect(_call(("agent", 0, 5, "您已确认清楚风险。"), ("agent", 9, 12, "那我帮您预约")), eng)) == []


# --------------------------------------------------------------------------- overtalk


def test_warning_read_over_the_customer(eng):
    utts = _call(("customer", 0, 6, "等一下，我还没想好要不要买"), ("agent", 3, 9, "理财非存款、产品有风险、投资须谨慎，我帮您预约"))
    v = [v for v in detect(utts, eng) if v.rule_id == "ZH-TM-001"]
    assert len(v) == 1 and v[0].kind == "overtalk" and (v[0].start, v[0].end) == (3.0, 6.0)
    assert v[0].speaker == "agent" and v[0].utterance_index == 1 and "等一下" in v[0].context
    # the customer's backchannel over the agent's warning is not the agent talking over anyone
    utts = _call(("agent", 0, 8, "理财非存款、产品有风险、投资须谨慎"), ("customer", 2, 2.3, "嗯"))
    assert _ids(detect(utts, eng)) == []
    # overlapping, but the warning comes after the customer stopped
    utts = _call(("customer", 0, 6, "我想再问问手续费是多少"),
                 ("agent", 4, 12, "手续费是零点五，另外提醒您，理财非存款、产品有风险、投资须谨慎"))
    assert "ZH-TM-001" not in _ids(detect(utts, eng))


def test_word_times_decide_who_was_still_talking(eng):
    # The customer's utterance runs to 6 s by its bounds, but its words end at 2.5 s: the agent,
    # starting at 3 s, spoke over nobody.
    words = [Word("等一下", 0, 1), Word("我还没想好", 1.1, 2.5)]
    utts = _call(("customer", 0, 6, "等一下，我还没想好", words),
                 ("agent", 3, 9, "理财非存款、产品有风险、投资须谨慎，我帮您预约"))
    assert "ZH-TM-001" not in _ids(detect(utts, eng))
    words = [Word("等一下", 0, 1), Word("我还没想好", 1.1, 5.5)]
    utts[0] = _u(0, "customer", 0, 6, "等一下，我还没想好", words)
    assert "ZH-TM-001" in _ids(detect(utts, eng))


def test_repeated_interruptions_make_one_finding_for_the_call(eng):
    rows = [("customer", 0, 6, "我想先问问这个钱什么时候能取出来"), ("agent", 3, 8, "您放心，随时都能办"),
            ("customer", 9, 15, "那如果中途急用钱的话"), ("agent", 12, 18, "这个您不用担心"),
            ("customer", 19, 25, "我还是想跟家里人商量一下"), ("agent", 22, 28, "今天就定吧")]
    v = [v for v in detect(_call(*rows), eng) if v.rule_id == "ZH-TM-002"]
    assert len(v) == 1 and "3 times" in v[0].reason and (v[0].start, v[0].end) == (3.0, 6.0)
    # two interruptions, and a third that overlaps for less than 1.5 s
    rows[5] = ("agent", 24, 28, "今天就定吧")
    assert "ZH-TM-002" not in _ids(detect(_call(*rows), eng))


def test_timing_rules_follow_the_calls_language(eng):
    zh = _call(("agent", 0, 5, "您稍等，我查一下"), ("agent", 40, 44, "让您久等了"))
    en = _call(("agent", 0, 5, "Bear with me while I check"), ("agent", 40, 44, "Sorry to keep you waiting"))
    assert _ids(detect(zh, eng)) == ["ZH-TM-004"]
    assert _ids(detect(en, eng)) == ["EN-TM-004"]
    assert call_language(eng.analyze(u) for u in en) == "en"
    # the transcriber's label decides only where the text has neither script
    assert call_language([eng.analyze(_u(0, "agent", 0, 1, "123", lang="en"))]) == "en"


def test_english_warning_over_the_customer_and_unanswered_confirmation(eng):
    utts = _call(("customer", 0, 5, "Hold on, I haven't decided yet whether"),
                 ("agent", 2, 8, "It may lose value and is not guaranteed, so let's get you signed up"), lang="en")
    assert _ids(detect(utts, eng)) == ["EN-TM-001"]
    utts = _call(("agent", 0, 5, "It may lose value. Do you understand the risks?"),
                 ("agent", 9, 12, "Great, I'll put the order in"), lang="en")
    assert _ids(detect(utts, eng)) == ["EN-TM-003"]


def test_a_confirmation_question_without_its_question_mark_still_asks(eng):
    # ASR output often has no punctuation
    for text in ("以上内容您是否清楚", "以上风险您都清楚了吗"):
        assert _ids(detect(_call(("agent", 0, 5, text), ("agent", 9, 12, "好那我帮您预约了")), eng)) == ["ZH-TM-003"]
    utts = _call(("agent", 0, 5, "do you understand the risks"), ("agent", 9, 12, "great I'll put the order in"), lang="en")
    assert _ids(detect(utts, eng)) == ["EN-TM-003"]


def test_over_and_by_any_in_a_pack_of_ones_own(tmp_path):
    """`over`: only where the interrupted utterance says the element (here the customer's own
    confirmation, talked over by the agent); `by: any`: either side starting over the other."""
    rule = {"kind": "overtalk", "overtalk": {"by": "agent", "min_s": 0.5, "over": {"name": "确认", "phrases": ["清楚", "明白"]}},
            "examples": {"violation": [{"call": ["[0-3] customer: 清楚，我都清楚", "[1-4] agent: 好的清楚就行"]}] * 3,
                         "compliant": [{"call": ["[0-3] customer: 我想想", "[1-4] agent: 好的"]}] * 3}}
    eng = Engine([load_pack_file(_pack(tmp_path, rule))])
    over = _call(("customer", 0, 3, "清楚，我都清楚"), ("agent", 1, 4, "好的清楚就行"))
    assert [(v.rule_id, v.start, v.end) for v in detect(over, eng)] == [("T-TM-1", 1.0, 3.0)]
    assert detect(_call(("customer", 0, 3, "我想想"), ("agent", 1, 4, "好的")), eng) == []
    assert detect(_call(("customer", 0, 3, "我不清楚"), ("agent", 1, 4, "好的")), eng) == []  # negated
    rule["overtalk"] = {"by": "any", "min_s": 0.5}
    eng = Engine([load_pack_file(_pack(tmp_path, rule))])
    both = _call(("agent", 0, 3, "我跟您说一下"), ("customer", 1, 4, "你等一下"), ("agent", 3.5, 6, "您说"))
    got = detect(both, eng)
    assert [(v.speaker, v.start, v.end) for v in got] == [("customer", 1.0, 3.0), ("agent", 3.5, 4.0)]


# --------------------------------------------------------------------------- rate


def test_a_rushed_warning_is_timed_over_its_own_sentence(eng):
    fast = _call(("agent", 0, 2, "理财非存款、产品有风险、投资须谨慎"))
    v = [v for v in detect(fast, eng) if v.rule_id == "ZH-TM-005"]
    assert len(v) == 1 and v[0].kind == "rate" and "7.5 characters a second" in v[0].reason
    assert _ids(detect(_call(("agent", 0, 4, "理财非存款、产品有风险、投资须谨慎")), eng)) == []
    # By its share of the utterance the warning took 1.6 s (9.6 characters a second); the word
    # times say 2.7 s, and the rest was rushed: it was read slowly enough
    text = "理财非存款、产品有风险、投资须谨慎。好的那我现在就帮您预约了您看可以吗"
    assert "ZH-TM-005" in _ids(detect(_call(("agent", 0, 3.2, text)), eng))
    words = [Word("理财非存款、产品有风险、投资须谨慎。", 0, 2.7), Word("好的那我现在就帮您预约了您看可以吗", 2.7, 3.2)]
    assert "ZH-TM-005" not in _ids(detect(_call(("agent", 0, 3.2, text, words)), eng))
    # a denied warning is no warning, and the customer is not timed
    assert _ids(detect(_call(("agent", 0, 2, "这个产品保本，没有风险，放心买吧")), eng)) == []
    assert _ids(detect(_call(("customer", 0, 2, "理财非存款、产品有风险、投资须谨慎")), eng)) == []


def test_a_rushed_english_warning_counts_words(eng):
    utts = _call(("agent", 0, 2, "It may lose value and it is not guaranteed, okay, great, let's go."), lang="en")
    v = [v for v in detect(utts, eng) if v.rule_id == "EN-TM-005"]
    assert len(v) == 1 and "words a second (13 in 2.0 s)" in v[0].reason
    utts = _call(("agent", 0, 6, "It may lose value and it is not guaranteed, okay, great, let's go."), lang="en")
    assert "EN-TM-005" not in _ids(detect(utts, eng))
