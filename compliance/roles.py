"""Which speaker is the agent.

Diarizers give anonymous labels (SPEAKER_00, ...); rules only count what the agent says. Roles come,
in order of trust, from:

1. the channel layout, when known (dual-channel recordings: ``channel_roles={0: "agent", ...}``),
   confidence 1.0;
2. what is said: the agent introduces themself (我是××银行的客户经理), pitches (这款产品, 年化,
   收益, 风险等级), reads disclosure scripts (理财非存款, 投资须谨慎, 犹豫期) and addresses the
   customer politely (您, 先生/女士); the customer asks, agrees and backchannels (嗯, 好的, 喂,
   你说吧, 我考虑一下). Each speaker gets an agent score; the margin between the two sides gives
   the confidence;
3. when the words say nothing: who speaks first and most (the agent calls and talks more),
   confidence ≤ 0.6.

More than two speakers: the best agent-scored speaker is the agent, the best customer-scored
one the customer; any further speaker is a ``supervisor`` when they sound like staff (主管,
质检, 经理, agent-side words), a ``customer`` when they sound like one, else ``unknown`` -- a
three-party call is never squeezed into two roles.

A reviewer's correction (`override`) always wins (confidence 1.0)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from .types import SpeakerInfo, Utterance

# (pattern, weight). Patterns match text after whitespace removal; whisper's usual confusions of
# key words are included (理财经理 -> 李财经理, 保险 -> 抱歉 ...).
AGENT_CUES: list[tuple[str, float]] = [
    (r"我是.{0,14}(银行|证券|保险|基金|财富|信托|公司|理财|支行|分行).{0,10}(经理|顾问|专员|客服|理财师|代表)", 6.0),
    (r"我是.{0,8}(客户经理|理财经理|李财经理|理财顾问|投资顾问|专员|客服)", 5.0),
    (r"(客户经理|理财经理|李财经理|理财顾问|财富顾问|投资顾问)", 2.0),
    (r"(this is|my name is|i'?m) .{0,30}(from|with|at) .{0,30}(bank|securities|insurance|fund|financial)", 5.0),
    (r"(请问|请问您)?是.{1,4}(先生|女士|小姐|总)吗", 3.0),
    (r"(先生|女士)", 0.8),
    (r"(打扰|耽误)(您|你).{0,6}(时间|几分钟|一下)", 2.0),
    (r"(给|为|跟|向)(您|你)(介绍|推荐|汇报|说明)", 3.0),
    (r"(我们|咱们)(行|银行|公司|这边|平台)", 1.5),
    (r"(这款|这个|该|一款|这只)(产品|基金|理财|保险)", 1.5),
    (r"(年化|收益率|业绩比较基准|业绩基准|预期收益|起购|认购|申购|赎回|封闭期|期限)", 1.0),
    (r"(风险等级|风险测评|风险评估|风险承受|适合您|适当性)", 1.5),
    (r"(理财非存款|理财产品不是存款|产品有风险|投资须谨慎|投资需谨慎|保险不是存款|犹豫期|退保|过往业绩)", 3.0),
    (r"(手机银行|网点|柜台|营业厅|发到您|发给您|给您发)", 1.0),
    (r"(您看|您觉得|您可以|您要是|您放心|您的)", 0.6),
    (r"(名额|额度|截止|最后一天|抓紧)", 0.8),
    (r"(past performance|not a deposit|risk level|cooling-off|our bank|this product|annual(ized)? return)", 1.5),
]
CUSTOMER_CUES: list[tuple[str, float]] = [
    (r"^(喂|哎|诶)", 2.0),
    (r"(你好|您好)?,?是我", 2.0),
    (r"(你说吧|你说|什么事|有什么事|哪位|你是哪)", 2.5),
    (r"(我考虑|我再考虑|考虑一下|我想想|再想想|我再看看|我先看看|我回去|跟我老婆|跟我老公|和家里)", 2.5),
    (r"(会不会亏|能保本吗|保本吗|保不保本|有没有风险|风险大不大|风险大吗|安全吗|靠谱吗|能取出来吗|随时能取吗)", 2.5),
    (r"(我朋友说|我听说|我同事|我家里|我老婆|我老公|我孩子)", 1.5),
    (r"(我的钱|我这笔钱|我那笔|我存的|我买的|我手头)", 1.5),
    (r"(投诉|退钱|退款|骗|被骗|不满意|验证码|链接)", 1.5),
    (r"(谢谢你|谢谢啊|麻烦你)", 1.0),
    (r"(what is|how much|is it safe|can i|will i|i'?ll think|let me think)", 1.0),
    (r"(多少|怎么样|什么意思|是吗|真的吗|吗)[?？]?$", 0.5),
]
SUPERVISOR_CUES: list[tuple[str, float]] = [
    (r"(主管|组长|质检|团队长|负责人|supervisor|manager here|quality)", 3.0),
    (r"(我来补充|补充一下|我是.{0,6}的(主管|领导|经理))", 2.0),
]
BACKCHANNEL = re.compile(r"^(嗯+|恩+|哦+|噢+|啊+|好+|好的|对+|是的?|行|可以|明白|知道了|ok|okay|yeah|yes|mhm|uh-?huh)$",
                         re.IGNORECASE)
_STRIP = re.compile(r"[\s,.!?;:，。！？；：、…~\-\"'“”‘’]+")


@dataclass
class _Speaker:
    name: str
    channel: int | None
    first: float
    talk: float
    words: int
    agent: float = 0.0
    customer: float = 0.0
    supervisor: float = 0.0


def _score(text: str, cues: list[tuple[str, float]]) -> float:
    s = 0.0
    for pattern, weight in cues:
        n = len(re.findall(pattern, text, flags=re.IGNORECASE))
        if n:
            s += weight * (1.0 + 0.5 * math.log(n))  # repetition helps, with diminishing returns
    return s


def _profile(utterances: list[Utterance]) -> dict[str, _Speaker]:
    speakers: dict[str, _Speaker] = {}
    for u in sorted(utterances, key=lambda u: (u.start, u.end)):
        sp = speakers.get(u.speaker)
        if sp is None:
            sp = speakers[u.speaker] = _Speaker(u.speaker, u.channel, u.start, 0.0, 0)
        if sp.channel is None:
            sp.channel = u.channel
        sp.talk += max(0.0, u.end - u.start)
        sp.words += len(u.words) or len(u.text)
        text = _STRIP.sub("", u.text)
        if not text:
            continue
        if BACKCHANNEL.match(text):
            sp.customer += 1.0
            continue
        for clause in re.split(r"[,.!?;:，。！？；：]", u.text):
            clause = clause.strip()
            if clause:
                sp.agent += _score(clause, AGENT_CUES)
                sp.customer += _score(clause, CUSTOMER_CUES)
                sp.supervisor += _score(clause, SUPERVISOR_CUES)
    return speakers


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def detect_roles(utterances: list[Utterance]) -> dict[str, tuple[str, float]]:
    """{speaker: (role, confidence)} from what is said, then from who speaks first and most."""
    speakers = _profile(utterances)
    if not speakers:
        return {}
    total_talk = sum(s.talk for s in speakers.values()) or 1.0
    first = min(speakers.values(), key=lambda s: s.first).name

    def lean(s: _Speaker) -> float:
        """> 0: sounds like the agent. Content first; talk share and opening as weak priors."""
        content = s.agent - s.customer
        prior = 2.0 * (s.talk / total_talk - 0.5) + (0.5 if s.name == first else 0.0)
        return content + prior

    ranked = sorted(speakers.values(), key=lean, reverse=True)
    roles: dict[str, tuple[str, float]] = {}
    agent = ranked[0]
    content_evidence = (agent.agent + agent.customer + sum(s.agent + s.customer for s in ranked[1:])) > 0
    if len(ranked) == 1:
        conf = _sigmoid(0.5 * lean(agent))
        role = "agent" if lean(agent) >= 0 else "customer"
        return {agent.name: (role, round(max(conf, 1 - conf), 3))}
    # the customer: the most customer-like of the others (talk time breaks ties)
    others = ranked[1:]
    customer = max(others, key=lambda s: (s.customer - s.agent, s.talk))
    margin = lean(agent) - lean(customer)
    conf = _sigmoid(0.6 * margin) if content_evidence else min(0.6, _sigmoid(margin))
    conf = round(max(conf, 0.5), 3)
    roles[agent.name] = ("agent", conf)
    roles[customer.name] = ("customer", conf)
    for s in others:
        if s is customer:
            continue
        if s.talk < 0.5 and s.agent + s.customer + s.supervisor == 0:
            roles[s.name] = ("unknown", 0.5)
        elif s.supervisor > 0 or s.agent > s.customer + 1.0:
            roles[s.name] = ("supervisor", round(_sigmoid(0.5 * (s.supervisor + s.agent - s.customer)), 3))
        elif s.customer > s.agent:
            roles[s.name] = ("customer", round(_sigmoid(0.5 * (s.customer - s.agent)), 3))
        else:
            roles[s.name] = ("unknown", 0.5)
    return roles


def apply_roles(utterances: list[Utterance], roles: dict[str, str]) -> None:
    """Write `role` into every utterance and word (words take their own speaker's role)."""
    for u in utterances:
        u.role = roles.get(u.speaker, u.role if u.role else "unknown")
        for w in u.words:
            if w.speaker is None:
                w.speaker = u.speaker
            w.role = roles.get(w.speaker, u.role)


def assign_roles(utterances: list[Utterance], *, channel_roles: dict[int, str] | None = None,
                 override: dict[str, str] | None = None) -> list[SpeakerInfo]:
    """Decide every speaker's role, write it into the utterances and words, and return one
    `SpeakerInfo` per speaker (sorted by talk time, longest first).

    `channel_roles` maps channel -> role for speakers whose utterances carry a channel (stereo);
    `override` maps speaker -> role (a reviewer's correction). Both give confidence 1.0."""
    profile = _profile(utterances)
    fixed: dict[str, tuple[str, float]] = {}
    for name, sp in profile.items():
        if override and name in override:
            fixed[name] = (override[name], 1.0)
        elif channel_roles and sp.channel is not None and sp.channel in channel_roles:
            fixed[name] = (channel_roles[sp.channel], 1.0)
    free = [u for u in utterances if u.speaker not in fixed]
    decided = dict(fixed)
    if free:
        detected = detect_roles(free)
        taken = {r for r, _ in fixed.values()}
        for name, (role, conf) in detected.items():
            if role in taken and role in ("agent", "customer") and len(detected) == 1:
                # the other channel already holds that role: this one is the other party
                role = "customer" if role == "agent" else "agent"
            decided[name] = (role, conf)
    infos = [SpeakerInfo(speaker=name, role=decided[name][0], role_confidence=decided[name][1],
                         channel=sp.channel, talk_time=round(sp.talk, 3))
             for name, sp in profile.items()]
    infos.sort(key=lambda i: -i.talk_time)
    apply_roles(utterances, {name: role for name, (role, _) in decided.items()})
    return infos
