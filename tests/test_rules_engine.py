"""Matching behaviour: normalisation, negation, questions, hearsay, role scope, homophones."""

import pytest

from compliance.detect import detect, detect_text, load_packs
from compliance.rules.text import normalize, pinyin_layer
from compliance.types import Utterance, Word


@pytest.fixture(scope="module")
def eng():
    return load_packs(similarity=False)


def cats(eng, text, role="agent", lang="zh"):
    return {v.category for v in detect_text(text, role=role, language=lang, packs=eng)}


def test_normalize_traditional_width_numbers():
    assert normalize("這個產品保本") == "这个产品保本"
    assert normalize("年化收益百分之八") == "年化收益8%"
    assert normalize("百分之五点五") == "5.5%"
    assert normalize("ＡＢＣ，５％") == "abc,5%"
    assert normalize("至少五个点") == "至少5个点"
    assert normalize("保 本 保 息") == "保本保息"
    assert normalize("I have 5 apples") == "i have 5 apples"


def test_pinyin_layer_keeps_offsets_and_merges_homophones():
    a, b = pinyin_layer("保本"), pinyin_layer("爆本")
    assert len(a) == 2 and a == b
    assert pinyin_layer("赎回") == pinyin_layer("熟悔")
    assert pinyin_layer("保本") != pinyin_layer("保险")


@pytest.mark.parametrize("text,cat", [
    ("这个产品保本保息", "guarantee_of_principal"),
    ("這個產品保本保息", "guarantee_of_principal"),           # Traditional (whisper)
    ("这个产品爆本的，您放心", "guarantee_of_principal"),      # ASR homophone
    ("年化收益肯定能拿到百分之五", "guaranteed_return"),        # number in words
    ("年化收益肯定能拿到５％", "guaranteed_return"),            # full width
    ("随时可以熟悔，没有手续费", "liquidity_fee_misstatement"),
    ("This is completely risk-free.", "guarantee_of_principal"),
])
def test_violations_found(eng, text, cat):
    assert cat in cats(eng, text, lang="en" if text.isascii() else "zh")


@pytest.mark.parametrize("text", [
    "本产品不保本",                       # mandatory disclosure
    "这个产品并非保本产品",
    "保证不了收益，收益是不保证的",       # honest
    "谁也不能保证收益",
    "我没法跟您保证收益",
    "理财非存款、产品有风险、投资须谨慎",
    "过往业绩不代表未来表现",
    "有问题随时联系我",
    "保本是不可能的",
    "很多人以为理财就是存款，其实不是",
    "You cannot lose sight of the risks.",
    "Past performance is not a guarantee of future results.",
    "This product is not FDIC insured and may lose value.",
])
def test_compliant_agent_statements_not_flagged(eng, text):
    assert cats(eng, text, lang="en" if text.isascii() else "zh") == set()


def test_question_is_not_a_promise(eng):
    assert cats(eng, "这个保本吗？") == set()
    assert cats(eng, "这个保本吗") == set()            # ASR often drops the question mark
    assert cats(eng, "这个产品有没有风险") == set()
    assert cats(eng, "这个产品保不保本") == set()
    assert "guarantee_of_principal" in cats(eng, "这个产品保本")


def test_rhetorical_question_still_flags(eng):
    assert "guarantee_of_principal" in cats(eng, "这么好的产品，怎么会亏呢？")


def test_customer_speech_is_not_an_agent_violation(eng):
    assert cats(eng, "这个产品保本保息", role="customer") == set()
    assert cats(eng, "我朋友说保险就是存钱", role="customer") == set()


def test_unknown_role_gets_agent_rules_and_hearsay_check(eng):
    assert "guarantee_of_principal" in cats(eng, "这个产品保本保息", role="unknown")
    assert cats(eng, "我朋友说这个产品保本保息", role="unknown") == set()


def test_customer_signals_are_signals(eng):
    vs = detect_text("我要投诉你们", role="customer", packs=eng)
    assert vs and all(v.kind == "signal" for v in vs)
    assert {v.category for v in vs} == {"customer_complaint"}
    assert detect_text("我要投诉你们", role="agent", packs=eng) == []
    assert detect_text("我没有被骗", role="customer", packs=eng) == []


def test_negation_scope_is_local(eng):
    # the negation belongs to another clause: the promise still counts
    assert "guaranteed_return" in cats(eng, "别的产品不好说，我们这款是稳赚不赔的")
    assert "guarantee_of_principal" in cats(eng, "不用担心，这个产品保本")


def test_a_disclaiming_verb_denies_the_rest_of_its_clause(eng):
    # 不代表 reaches past the six-character negation window, to the end of its clause only
    assert not cats(eng, "产品预期收益不代表您一定能获得的保证收益，最终收益可能为零")
    assert "guaranteed_return" in cats(eng, "过往业绩不代表未来表现，但这款产品我们保证收益8%")


def test_violation_carries_evidence_and_times(eng):
    u = Utterance(speaker="S1", start=10.0, end=20.0, role="agent", index=3,
                  text="您好，这款产品是爆本的，年化收益肯定能拿到5%。")
    vs = detect([u], eng, call_level=False)
    gp = [v for v in vs if v.category == "guarantee_of_principal"][0]
    assert gp.matched_text == "爆本"
    assert "保本" in gp.reason and "homophone" in gp.reason
    assert "【爆本】" in gp.context
    assert 10.0 <= gp.start < gp.end <= 20.0
    assert gp.utterance_index == 3 and gp.speaker == "S1" and gp.role == "agent"
    assert gp.regulation and gp.suggestion and gp.pack == "zh-sales"


def test_word_timings_narrow_the_span(eng):
    words = [Word(t, 10.0 + i, 11.0 + i) for i, t in enumerate(["您好，", "这个", "产品", "保本", "保息。"])]
    u = Utterance(speaker="S1", start=10.0, end=15.0, role="agent", text="您好，这个产品保本保息。", words=words)
    v = [v for v in detect([u], eng, call_level=False) if v.category == "guarantee_of_principal"][0]
    assert v.start >= 11.0 and v.end <= 15.0


def test_proximity_and_homophone_short_words_guarded(eng):
    # 限是 inside 期限是 sounds like 限时 but straddles a word: not urgency
    assert cats(eng, "一万元起购，期限是一年") == set()
    assert "exaggeration" in cats(eng, "这款产品是全行卖得最好的")
    assert cats(eng, "这款产品不是收益最高的，但是波动小") == set()


def _call(*lines, lang="zh"):
    return [Utterance(speaker=r, start=i * 5.0, end=i * 5.0 + 4, text=t, role=r, index=i, language=lang)
            for i, (r, t) in enumerate(lines)]


def test_absence_anchor_and_insurance_variant(eng):
    utts = _call(("agent", "给您推荐一款年金保险"), ("customer", "好"),
                 ("agent", "保险不是存款，产品有风险，投保须谨慎"), ("agent", "我帮您投保"))
    md = [v for v in detect(utts, eng) if v.category == "missing_disclosure"]
    assert len(md) == 1 and md[0].kind == "absence" and md[0].utterance_index == 3
    assert "犹豫期" in md[0].reason and "退保损失" in md[0].reason
    utts = _call(("agent", "给您推荐一款理财，风险等级二级"), ("agent", "理财非存款、产品有风险、投资须谨慎"),
                 ("agent", "我帮您预约"))
    assert [v for v in detect(utts, eng) if v.category == "missing_disclosure"] == []


def test_ordering_rule(eng):
    utts = [Utterance(speaker="a", start=0, end=1, text="我帮您预约了", role="agent", index=0),
            Utterance(speaker="a", start=2, end=3, text="理财非存款、产品有风险、投资须谨慎，风险等级二级",
                      role="agent", index=1)]
    vs = detect(utts, eng)
    assert [v.kind for v in vs if v.category == "disclosure_order"] == ["ordering"]


def test_engine_selects_packs_by_name_and_language():
    en = load_packs(languages=["en"], similarity=False)
    assert en.packs and all(p.info.language == "en" for p in en.packs)
    one = load_packs(names=["zh-customer-signals"], similarity=False)
    assert [p.id for p in one.packs] == ["zh-customer-signals"]
    assert detect_text("这个产品保本保息", packs=one) == []


def test_every_rule_has_three_examples_of_each_and_hard_negatives():
    eng = load_packs(similarity=False)
    for cr in eng.rules:
        r = cr.rule
        assert len(r.examples.violation) >= 3 and len(r.examples.compliant) >= 3, r.id
        if r.kind != "utterance" or r.speaker != "agent":
            continue
        comp = [x if isinstance(x, str) else x.text for x in r.examples.compliant]
        roles = [None if isinstance(x, str) else x.role for x in r.examples.compliant]
        assert "customer" in roles, f"{r.id}: no customer-spoken compliant example"
        assert any(("?" in t or "？" in t or t.endswith("吗")) for t in comp), f"{r.id}: no question"
        neg = ("不", "没", "非", "无法", "not", "n't", "no ", "never")
        assert any(any(n in t for n in neg) for t in comp), f"{r.id}: no negated example"


def test_rule_examples_all_pass():
    from compliance.rules.selftest import run_examples

    res = run_examples(load_packs(similarity=False))
    bad = [(r.rule_id, r.expected, r.text, r.detail) for r in res if not r.passed]
    assert not bad
    assert len(res) >= 200


def test_evidence_keeps_the_speakers_characters(eng):
    vs = detect_text("這個產品爆本的，您放心", packs=eng)
    v = [v for v in vs if v.category == "guarantee_of_principal"][0]
    assert v.matched_text == "爆本"
    assert v.context.startswith("這個產品【爆本】")


@pytest.mark.parametrize("text", ["未来收益有保障", "跟别的银行比，我们这个稳赚不赔", "收益高得不得了，而且保本"])
def test_words_that_contain_a_negation_character_do_not_negate(eng, text):
    # 未来 / 别的 / 不得了 contain 未 / 别 / 不 but negate nothing
    assert detect_text(text, packs=eng)


def test_conditional_bu_jiu_is_not_negation(eng):
    assert {v.category for v in detect_text("不赔钱就天天举报", role="customer", packs=eng)} == {"customer_complaint"}


def test_only_an_imperative_dont_is_advice(eng):
    # the speaker's own "I don't want…" is not advice to a listener; "Don't…" opening a sentence is
    assert cats(eng, "I don't want to learn about annuities, I just want my money back",
                role="customer", lang="en") == {"customer_complaint"}
    assert cats(eng, "If they don't refund, I want my money back", role="customer", lang="en")
    assert not cats(eng, "Don't worry about a refund, I just want my money back", role="customer", lang="en")


def test_a_condition_or_an_a_not_a_question_negates_nothing(eng):
    # "if we don't …" states a condition: the demand after it stands; a plain "don't" still denies
    assert cats(eng, "If we don't get our money back by Friday, I am calling my lawyer.", role="customer",
                lang="en") == {"customer_complaint"}
    assert not cats(eng, "We don't want our money back, we just want the paperwork sorted.", role="customer",
                    lang="en")
    # 是不是 / 会不会 ask (A-not-A); the 不 inside them denied what followed
    assert cats(eng, "我是不是遇到骗子了?", role="customer") == {"customer_risk_cue"}
    assert cats(eng, "他会不会是骗子啊?", role="customer") == {"customer_risk_cue"}
    assert not cats(eng, "还好，我没有遇到骗子。", role="customer")
    assert not cats(eng, "这个产品是不是保本的?")  # an agent's question still promises nothing


def test_money_falling_short_is_a_condition_not_a_negation(eng):
    # 钱不够 negated what followed it, hiding "take a loan to buy"
    assert cats(eng, "钱不够可以贷款买理财") == {"suitability_bypass"}
    assert not cats(eng, "这个产品不够安全")  # a real 不够 is unaffected (no claim to deny here)


@pytest.mark.parametrize("text,flagged", [
    # a denial after the claim counts in the claim's own clause only, not in a reason given for it
    ("For sure you will get some type of return because there's no such thing as a dry hole", True),
    ("Returns are guaranteed? That is not true.", False),
    # the next clause denying what the last one named (as 这是不对的 does in Chinese)
    ("Guaranteed returns, that's not something we offer.", False),
    ("Guaranteed returns do not exist, and nobody can promise them.", False),
    ("Guaranteed returns, that's what you get.", True),
    ("You get a guaranteed 8%, that's not bad at all.", True),
    ("This fund is risk-free, nobody can lose money here.", True),
    # "is there any other investment that guarantees…?" claims this one does
    ("Is there any other investment today that guarantees you 8% for fifteen years?", True),
    ("Is this investment guaranteed?", False),
    # an offer put as a question pitches its claim, even a clause or two away from the opener
    ("Have you got a minute to learn how to triple your money in six months?", True),
    ("How about a net return of 8% for retirement income, with no downside market risk?", True),
    ("Would you be interested in a guaranteed return of 9% a year?", True),
    ("Is your principal guaranteed in your current plan?", False),
    ("Would you like to know how this fund could lose value?", False),
    # a negation before a comma-separated "or" list denies its last item too
    ("The analyst does not and cannot guarantee any fixed, assured, or risk-free returns.", False),
    ("We cannot promise high, stable, or guaranteed returns.", False),
    ("No hidden fees, guaranteed returns.", True),  # two selling points, not a list the "no" governs
    ("There are no fees, and it is risk-free.", True),
])
def test_english_denials_and_rhetorical_questions(eng, text, flagged):
    assert bool(cats(eng, text, lang="en")) is flagged


# ------------------------------------------------------------------ the gate (one translate + one automaton pass)

def _gateless(packs):
    """The same packs with the gate switched off: every text through normalize(), every
    utterance scanned with the full trigger automaton whatever its role."""
    from compliance.rules.engine import Engine

    e = Engine(packs)
    e._gate = None
    e._role_autos = {r: e._autos[0] for r in e._role_autos}
    return e


def _dev_texts():
    import csv
    from pathlib import Path

    p = Path(__file__).resolve().parents[1] / "rules" / "corpus" / "real_dev.tsv"
    with p.open(encoding="utf-8") as fh:
        return [r["text"] for r in csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)]


def _sig(vs):
    return [(v.rule_id, v.start, v.end, v.matched_text, v.context, v.reason, v.kind, v.utterance_index) for v in vs]


def test_gate_table_equals_normalize_then_pinyin_layer():
    from compliance.rules.text import gate_layer, gate_table

    tab = gate_table()
    assert tab is not None
    texts = [t for t in _dev_texts() if not t.isascii()] + ["这个产品保本，收益（稳定）！ＡＢＣ５％", "您好Ａ＃：　"]
    gated = 0
    for t in texts:
        g = gate_layer(t, tab)
        if g is None:
            continue
        gated += 1
        assert g == pinyin_layer(normalize(t)), t
    assert gated > len(texts) // 2
    # what one-for-one mapping cannot do falls back to normalize()
    for t in ("這個產品保本", "保 本", "保\u3000本", "收益百分之五", "五个点"):
        assert gate_layer(t, tab) is None


def test_homophone_only_utterance_passes_the_gate(eng):
    u = Utterance(speaker="agent", start=0, end=2, text="这个产品爆本的，您放心", role="agent")
    an = eng.analyze(u)
    assert an.hits, "the homophone 爆本 must hit 保本's entry in the gate automaton"
    assert any(h.lit == "保本" and not h.exact for hs in an.hits.values() for h in hs)
    assert "guarantee_of_principal" in {v.category for v in detect([u], eng, call_level=False)}


def test_utterance_without_triggers_skips_the_slow_path(eng):
    u = Utterance(speaker="customer", start=0, end=1, text="嗯，好的，您说。", role="customer")
    an = eng.analyze(u)
    assert an.hits == {}
    assert an._norm is None  # normalised text never built
    assert an.norm == normalize(u.text)  # and built correctly on demand
    assert detect([u], eng) == []


def test_gate_gives_the_same_results_as_a_gateless_run_on_the_dev_set(eng):
    plain = _gateless(eng.packs)
    texts = _dev_texts()
    texts += ["這個產品爆本的", "保 本 保 息", "年化收益百分之五，稳赚", "THIS IS RISK-FREE"]
    for t in texts:
        for role in ("agent", "customer", "unknown"):
            u = Utterance(speaker=role, start=0.0, end=3.0, text=t, role=role)
            assert _sig(detect([u], eng, call_level=False)) == _sig(detect([u], plain, call_level=False)), (role, t)


def test_gate_gives_the_same_call_level_results_as_a_gateless_run(eng):
    import json
    from pathlib import Path

    calls = Path(__file__).resolve().parents[1].parent / "shared" / "audio" / "calls"
    files = sorted(calls.glob("dev0*.json")) if calls.is_dir() else []
    if not files:
        pytest.skip("shared synthetic calls absent")
    plain = _gateless(eng.packs)
    for p in files:
        d = json.loads(p.read_text(encoding="utf-8"))
        utts = [Utterance(speaker=t["speaker"], start=t["start"], end=t["end"], text=t["text"], role=t["speaker"],
                          index=i) for i, t in enumerate(d["turns"])]
        assert _sig(detect(utts, eng)) == _sig(detect(utts, plain)), p.name


def _answers(eng, utts):
    return [(v.rule_id, v.utterance_index) for v in detect(utts, eng) if "-QA-" in v.rule_id]


def test_a_yes_to_the_customers_guarantee_question_is_the_claim(eng):
    vs = [v for v in detect(_call(("customer", "这个产品保本吗？"), ("agent", "嗯，当然了，您放心。")), eng)
          if v.rule_id == "ZH-QA-001"]
    assert len(vs) == 1 and vs[0].utterance_index == 1 and vs[0].role == "agent"
    assert vs[0].matched_text == "当然" and vs[0].context.startswith("这个产品保本吗？ → ")
    assert "这个产品保本吗？" in vs[0].reason and 5.0 < vs[0].start < vs[0].end <= 9.0  # the reply clause
    assert _answers(eng, _call(("customer", "会不会亏钱啊？"), ("agent", "不会的，您放心好了。"))) == [("ZH-QA-002", 1)]
    assert _answers(eng, _call(("customer", "收益能保证吗？"), ("agent", "能，百分之百。"))) == [("ZH-QA-003", 1)]
    en = [("customer", "Can I lose money on this?"), ("agent", "No, no way.")]
    assert _answers(eng, _call(*en, lang="en")) == [("EN-QA-002", 1)]
    assert _answers(eng, _call(("customer", "Is it guaranteed?"), ("agent", "Absolutely, one hundred percent."),
                               lang="en")) == [("EN-QA-001", 1)]


@pytest.mark.parametrize("lines", [
    [("customer", "这个产品保本吗？")],  # the question alone claims nothing
    [("agent", "当然了，您放心。")],  # nor a yes to nothing
    [("customer", "这个保本吗？"), ("agent", "当然不保本，理财产品都有风险。")],  # the reply denies it
    [("customer", "这个保本吗？"), ("agent", "是的，这是定期存款，受存款保险保障。")],  # a real guarantee, said whose
    [("customer", "会不会亏？"), ("agent", "有可能会亏，净值会随市场波动。")],
    [("customer", "会不会亏？"), ("agent", "不会吧？您是说上次那个产品吗？")],  # asked back, not answered
    [("customer", "这个保本吗？"), ("customer", "手续费多少？"), ("agent", "是的，千分之五。")],  # answers the fee
    [("customer", "这个保本吗？手续费多少？"), ("agent", "是的，千分之五。")],
    [("customer", "这个要看市场吧？"), ("agent", "对，要看市场。")],  # not a guarantee question
    [("customer", "这个保本吗？"), ("agent", "这个问题我们当然会如实告诉您。")],  # the yes must open the reply
    [("customer", "这个保本吗？"), ("agent", "我给您看一下说明书。"), ("agent", "当然，先做个风险测评。")],
    [("customer", "Can I lose money on this?"), ("agent", "Yes, you can, it's an investment.")],
    [("customer", "Is it guaranteed?"), ("agent", "No, it isn't. It can lose value.")],
    [("customer", "Is my money safe?"), ("agent", "Yes, it's a savings account, FDIC insured up to $250,000.")],
])
def test_no_claim_without_a_question_answered_yes(eng, lines):
    lang = "en" if lines[0][1].isascii() else "zh"
    assert _answers(eng, _call(*lines, lang=lang)) == []


def test_an_answer_and_a_rule_on_the_same_reply_are_one_finding(eng):
    vs = detect(_call(("customer", "这个保本吗？"), ("agent", "当然保本，您放心。")), eng)
    assert [v.rule_id for v in vs if v.utterance_index == 1 and v.category == "guarantee_of_principal"] == ["ZH-GP-001"]


def test_no_product_is_so_and_what_the_speaker_cannot_say_deny_the_claim(eng):
    # beyond the six-character negation window, to the end of the clause only
    assert cats(eng, "没有哪个产品是零风险的。") == set()
    assert cats(eng, "我不能跟您说这个保收益。") == set()
    assert "guarantee_of_principal" in cats(eng, "这个零风险，没有哪个产品比它更稳。")


def test_the_customers_word_taken_up_is_not_the_agents_claim(eng):
    assert cats(eng, "您说的保本，那是存款，理财不是。") == set()
    assert "guarantee_of_principal" in cats(eng, "您说的没错，这个保本。")


@pytest.mark.parametrize("text,rule", [
    ("会不会亏？不会的，您放心。", "ZH-QA-002"),
    ("保本吗？嗯，当然，您放心。", "ZH-QA-001"),
    ("Is it safe? Absolutely.", "EN-QA-001"),
    ("Can you lose money? No, not with this fund.", "EN-QA-002"),
])
def test_an_agent_answering_its_own_question_makes_the_claim(eng, text, rule):
    # one utterance: found without the call-level checks (a labelled set's rows are single utterances)
    vs = detect_text(text, role="agent", language="en" if text.isascii() else "zh", packs=eng)
    assert [v.rule_id for v in vs] == [rule] and "answers it with" in vs[0].reason


@pytest.mark.parametrize("text,role", [
    ("会亏吗？有可能会亏，要看市场。", "agent"),
    ("很多客户问我：会不会亏？我都跟他们说，会的。", "agent"),  # the answer does not open the sentence
    ("Is it guaranteed, you might ask? Of course not.", "agent"),
    ("Can you lose money? Yes, you can.", "agent"),
    ("会不会亏？不会的，您放心。", "customer"),  # a customer's words are not the seller's claim
])
def test_a_self_answer_that_claims_nothing(eng, text, role):
    assert detect_text(text, role=role, language="en" if text.isascii() else "zh", packs=eng) == []


@pytest.mark.parametrize("q,a,rule", [
    ("这个保险以后退保有损失吗？", "没有，您放心。", "ZH-QA-004"),
    # with a rule's own finding of the category on the reply (ZH-LQ-001: 随时退), that one stands
    ("这个保险以后退保有损失吗？", "没有，随时退，全额退给您。", None),
    ("退保有损失吗？", "犹豫期内退保全额退，过了犹豫期只退现金价值。", None),
    ("Are there any surrender charges?", "Nope, nothing like that.", "EN-QA-004"),
    ("If I cancel, is there a fee?", "No, not within the 30-day free look period.", None),
])
def test_a_no_to_the_cost_of_getting_out_early(eng, q, a, rule):
    lang = "en" if q.isascii() else "zh"
    assert _answers(eng, _call(("customer", q), ("agent", a), lang=lang)) == ([(rule, 1)] if rule else [])
