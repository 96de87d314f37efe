"""Role assignment: channel layout, content, fallbacks, three parties, reviewer override."""

from __future__ import annotations

from compliance.roles import assign_roles
from compliance.types import Utterance, Word


def U(spk: str, a: float, b: float, text: str, ch=None) -> Utterance:
    n = max(len(text), 1)
    words = [Word(c, a + i * (b - a) / n, a + (i + 1) * (b - a) / n, speaker=spk) for i, c in enumerate(text)]
    return Utterance(spk, a, b, text, words=words, channel=ch)


def roles(infos):
    return {i.speaker: i.role for i in infos}


def test_agent_from_content_even_when_customer_speaks_first_and_more():
    utts = [
        U("S0", 0.0, 6.0, "喂，你好，是我。你说吧，什么事？我最近手头有一笔钱想放着"),
        U("S1", 6.5, 9.0, "您好王先生，我是明远银行的客户经理"),
        U("S0", 9.5, 16.0, "那这个保本吗？风险大不大？我朋友说买理财亏了，我再考虑一下吧"),
        U("S1", 16.5, 19.0, "这款产品风险等级是二级"),
    ]
    infos = assign_roles(utts)
    assert roles(infos) == {"S0": "customer", "S1": "agent"}
    agent = next(i for i in infos if i.role == "agent")
    assert agent.role_confidence > 0.8
    # roles are written into utterances and words
    assert all(u.role == ("agent" if u.speaker == "S1" else "customer") for u in utts)
    assert all(w.role == u.role for u in utts for w in u.words)


def test_disclosure_and_pitch_vs_backchannels():
    utts = [
        U("A", 0.0, 5.0, "这款理财产品年化收益二点八，理财非存款，产品有风险，投资须谨慎"),
        U("B", 5.5, 6.0, "嗯"),
        U("A", 6.5, 9.0, "您看您要不要考虑一下"),
        U("B", 9.5, 10.0, "好的"),
    ]
    assert roles(assign_roles(utts)) == {"A": "agent", "B": "customer"}


def test_fallback_first_and_most_talk_with_low_confidence():
    utts = [U("X", 0.0, 10.0, "今天天气不错"), U("Y", 10.5, 12.0, "是啊"), U("X", 12.5, 20.0, "我们去走走")]
    infos = assign_roles(utts)
    assert roles(infos)["X"] == "agent"
    assert all(i.role_confidence <= 0.75 for i in infos)


def test_channel_roles_win_with_full_confidence():
    utts = [U("CH0", 0.0, 2.0, "喂你说吧", ch=0), U("CH1", 2.5, 4.0, "我是银行的客户经理", ch=1)]
    infos = assign_roles(utts, channel_roles={0: "agent", 1: "customer"})
    assert roles(infos) == {"CH0": "agent", "CH1": "customer"}
    assert all(i.role_confidence == 1.0 for i in infos)
    assert {i.speaker: i.channel for i in infos} == {"CH0": 0, "CH1": 1}


def test_stereo_without_layout_uses_content():
    utts = [U("CH0", 0.0, 3.0, "您好，我是明远银行的客户经理王敏", ch=0), U("CH1", 3.5, 5.0, "喂，你说吧", ch=1)]
    assert roles(assign_roles(utts)) == {"CH0": "agent", "CH1": "customer"}


def test_three_party_call_keeps_three_roles():
    utts = [
        U("S0", 0.0, 5.0, "您好李先生，我是明远银行的客户经理，给您介绍一款理财产品"),
        U("S1", 5.5, 7.0, "喂，你说吧，保本吗？"),
        U("S2", 7.5, 10.0, "李先生您好，我是她的主管，我来补充一下风险等级"),
        U("S0", 10.5, 14.0, "这款产品风险等级是二级，理财非存款"),
        U("S1", 14.5, 15.0, "好的，我再考虑一下"),
    ]
    r = roles(assign_roles(utts))
    assert r == {"S0": "agent", "S1": "customer", "S2": "supervisor"}


def test_reviewer_override():
    utts = [U("S0", 0.0, 3.0, "我是银行的客户经理"), U("S1", 3.5, 5.0, "你说吧")]
    infos = assign_roles(utts, override={"S0": "customer", "S1": "agent"})
    assert roles(infos) == {"S0": "customer", "S1": "agent"}
    assert all(i.role_confidence == 1.0 for i in infos)
    assert utts[0].words[0].role == "customer"


def test_talk_time_and_order():
    utts = [U("A", 0.0, 2.0, "您好"), U("B", 2.5, 3.0, "嗯"), U("A", 3.5, 6.0, "这款产品")]
    infos = assign_roles(utts)
    assert [i.speaker for i in infos] == ["A", "B"] and infos[0].talk_time == 4.5


def test_empty():
    assert assign_roles([]) == []
