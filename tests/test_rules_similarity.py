"""The similarity layer (compliance/rules/similarity.py): what it adds to the rules on utterances it
never saw, what it must leave alone, and its switches."""

import json
import math
from pathlib import Path

import pytest

from compliance.detect import detect, detect_text, load_packs
from compliance.rules.evaluate import evaluate, read_tsv
from compliance.rules.similarity import (RegisterModel, SimilarityModel, Sample, corpus_files, mark_negation,
                                         read_corpus, strip_fillers, training_set)
from compliance.rules.loader import RULES_DIR, load_pack_files
from compliance.types import Utterance

CALLS = Path(__file__).resolve().parents[1].parent / "shared" / "audio" / "calls"
#: real utterances from sources no rule author or other training row used when they were collected:
#: batch G, then batch H (the newest). The shipped layer trains on them too; the blind checks train a
#: layer without the batch they score.
BLIND = RULES_DIR / "corpus" / "real_batch_g.tsv"
NEWEST = RULES_DIR / "corpus" / "real_batch_h.tsv"
BATCH_J = RULES_DIR / "corpus" / "real_batch_j.tsv"
BATCH_K = RULES_DIR / "corpus" / "real_batch_k.tsv"
#: ordinary call turns (en/zh, agent/customer, transcribed style) written by a helper who saw neither
#: the rules nor the corpus; not a corpus file, so the layer never trains on them
ORDINARY_HELDOUT = Path(__file__).parent / "data" / "ordinary_heldout.tsv"


@pytest.fixture(scope="module")
def full():
    return load_packs(similarity=True)


def _without(batch):
    """Rules + a similarity layer trained on everything but `batch`."""
    from compliance.detect import similarity_layer
    from compliance.rules.engine import Engine

    packs = load_pack_files(None)
    eng = Engine(packs)
    eng.similarity = similarity_layer(packs, [f for f in corpus_files(RULES_DIR) if f != batch])
    return eng


@pytest.fixture(scope="module")
def blind():
    """Rules + a similarity layer trained on everything but batch G."""
    return _without(BLIND)


@pytest.fixture(scope="module")
def blind_h():
    return _without(NEWEST)


@pytest.fixture(scope="module")
def rules_only():
    return load_packs(similarity=False)


def test_the_blind_check_really_is_blind(blind):
    rows = {r.text for r in read_tsv(BLIND)}
    others = {s.text for s in read_corpus([f for f in corpus_files(RULES_DIR) if f != BLIND])}
    assert rows and not rows & others
    assert not rows & {s.text for s in blind.similarity.model.samples}


def test_the_layer_lifts_recall_on_unseen_real_utterances(blind, rules_only):
    """Batch G: the rules alone miss most wordings they were not written for; a layer that never
    saw these rows must raise recall a lot while precision stays where the rules' is."""
    alone = evaluate(read_tsv(BLIND), rules_only)["overall"]
    both = evaluate(read_tsv(BLIND), blind)["overall"]
    assert both["recall"] >= alone["recall"] + 0.25, (alone, both)
    # measured: rules alone P 0.77 R 0.31; with the layer P 0.89 R 0.88 (role-kept n-grams, C 30);
    # since batch J joined the corpus P 0.85 R 0.91 (three more false alarms, one more hit)
    assert both["recall"] >= 0.85 and both["precision"] >= 0.83, both


def test_the_layer_on_the_newest_batch(blind_h, rules_only):
    """Batch H (211 rows), scored blind before it joined the corpus: rules alone P 0.844 R 0.362,
    rules + layer P 0.839 R 0.695. It was then tuned on (rules from its misses, the unknown-speaker
    signal check, n-grams kept apart by role): rules alone P 0.87 R 0.44, with a layer trained without
    H P 0.93 R 0.85. The floors sit a little under those, so that a change that loses what H taught
    fails here."""
    rows = read_tsv(NEWEST)
    # one SEC warning sentence is in the dev set as well (same label): the only row the layer has seen
    seen = {r.text for r in rows} & {s.text for s in blind_h.similarity.model.samples if s.source.startswith("real_")}
    assert len(seen) <= 1, seen
    alone = evaluate(read_tsv(NEWEST), rules_only)["overall"]
    both = evaluate(rows, blind_h)["overall"]
    assert both["recall"] >= alone["recall"] + 0.25, (alone, both)
    assert both["recall"] >= 0.80 and both["precision"] >= 0.89, both


def _scored_without(batch, n_rows: int, layered, rules_only) -> tuple[dict, dict]:
    """The batch's overall scores with the rules alone and with `layered` (rules + a layer trained
    without it), after checking that no other corpus file holds one of its rows."""
    rows = read_tsv(batch)
    others = {s.text for s in read_corpus([f for f in corpus_files(RULES_DIR) if f != batch])}
    assert len(rows) == n_rows and not {r.text for r in rows} & others
    return evaluate(rows, rules_only)["overall"], evaluate(rows, layered)["overall"]


@pytest.fixture(scope="module")
def blind_j():
    return _without(BATCH_J)


def test_the_layer_on_batch_j(blind_j, rules_only):
    """Batch J (102 rows from 72 pages no other row used, built by someone blind to the rules; one
    row that repeated a corpus row verbatim was dropped), measured once before it joined the corpus:
    rules alone P 0.929 R 0.531, rules + layer P 0.938 R 0.918. A layer trained without J is exactly
    the layer it was measured with; the floors sit a little under the measured figures."""
    alone, both = _scored_without(BATCH_J, 102, blind_j, rules_only)
    assert both["recall"] >= alone["recall"] + 0.3, (alone, both)
    assert both["recall"] >= 0.88 and both["precision"] >= 0.90, both


@pytest.fixture(scope="module")
def blind_k():
    return _without(BATCH_K)


def test_the_layer_on_batch_k(blind_k, rules_only):
    """Batch K (107 rows from 93 pages no other row used, built blind to the rules; one row that
    repeated a corpus row was dropped), measured once before it joined the corpus, with the packs
    and layer as shipped then: rules alone P 0.760 R 0.358, rules + layer P 0.855 R 0.887. Then the
    register model (narration on role unknown) came in, chosen by the mean over every batch: with
    it, a layer trained without K gives P 0.904 R 0.887 (the same hits, three reports of a
    violation no longer flagged); with the round's later changes and batches, P 0.91 R 0.94."""
    alone, both = _scored_without(BATCH_K, 107, blind_k, rules_only)
    assert both["recall"] >= alone["recall"] + 0.4, (alone, both)
    assert both["recall"] >= 0.86 and both["precision"] >= 0.88, both


def test_dumped_rows_replay_the_layers_decisions(blind_k, rules_only, tmp_path):
    """bench/similarity_cv.py --dump writes what review() reads for each held-out row, and
    bench/similarity_policy.py replays review() from it to try other thresholds offline: at the
    layer's own settings the replay must give what detect() gave, row by row, or the thresholds it
    suggests mean nothing. (A review() change the dump does not carry fails here.)"""
    import sys

    sys.path.insert(0, str(RULES_DIR.parent / "bench"))
    import similarity_cv
    import similarity_policy

    rows = read_tsv(BATCH_K)
    both = evaluate(rows, blind_k)
    dump = tmp_path / "rows.jsonl"
    similarity_cv.DUMP = dump
    try:
        similarity_cv._dump_rows("real_batch_k", rows, rules_only, blind_k, blind_k.similarity, both)
    finally:
        similarity_cv.DUMP = None
    dumped = [json.loads(line) for line in dump.read_text(encoding="utf-8").splitlines()]
    layer = blind_k.similarity
    assert len(dumped) == 107 and any(r["sim_kind"] for r in dumped) and any(r["rules"] for r in dumped)
    wrong = {m["id"] for m in both["misses"]} | {m["id"] for m in both["false_alarms"]}
    for r in dumped:
        assert r["predicted"] == ((r["label"] == "violation") != (r["id"] in wrong))
        assert similarity_policy.predicted(r, layer.threshold, layer.narration_veto) == r["predicted"], r
    # the dumped logits are the two the layer mixes into its probability
    mix = layer.model.mix
    for r in dumped:
        if r["p"] is not None and r["z_encoder"] is not None:
            z = (1.0 - mix) * r["z_ngram"] + mix * r["z_encoder"]
            assert abs(1.0 / (1.0 + math.exp(-z)) - r["p"]) < 1e-3, r
    # a higher threshold can only take findings away
    s_lo = similarity_policy.scores(dumped, layer.threshold, layer.narration_veto)
    s_hi = similarity_policy.scores(dumped, 0.9, layer.narration_veto)
    assert s_hi["tp"] + s_hi["fp"] <= s_lo["tp"] + s_lo["fp"]


@pytest.mark.parametrize("text", [
    "据报道，某银行理财经理向多名老年客户承诺保本保息，事后被监管部门处罚。",
    "监管提示：凡是承诺零风险、高收益的理财，消费者要提高警惕。",
])
def test_a_report_of_a_violation_is_not_one(full, text):
    """Written narration (not in any corpus file) with an unknown speaker: the rules' phrases are
    there, the register model reads it as reportage. Said by an agent, the same words are flagged."""
    assert full.similarity.register.narration(text) >= full.similarity.narration_veto
    assert detect_text(text, role="unknown", packs=full) == []
    assert detect_text(text, role="agent", packs=full)


@pytest.mark.skipif(not CALLS.is_dir(), reason="../shared/audio/calls not present")
@pytest.mark.parametrize("path", sorted(CALLS.glob("dev0[5-8].json")), ids=lambda p: p.stem)
def test_call_speech_keeps_its_findings_whoever_says_it(full, path):
    """The narration check must not silence a speaker whose role is unknown on a call: with every
    turn's role unknown, every planted violation of the calls the layer never trained on (agents'
    promises, customers' complaints and fraud cues) is still found."""
    d = json.loads(path.read_text(encoding="utf-8"))
    utts = [Utterance(speaker=t["speaker"], start=t["start"], end=t["end"], text=t["text"], role="unknown",
                      index=i, language="zh") for i, t in enumerate(d["turns"])]
    planted = {v["turn_index"] for v in d["violations"] if v.get("turn_index") is not None}
    assert all(full.similarity.register.narration(utts[i].text) < full.similarity.narration_veto for i in planted)
    assert planted <= {v.utterance_index for v in detect(utts, full)}


def test_the_register_model_needs_both_registers():
    rows = read_corpus(corpus_files(RULES_DIR))
    with pytest.raises(ValueError, match="role unknown"):
        RegisterModel([r for r in rows if r.role == "agent"])


def test_findings_explain_themselves(blind):
    found = []
    for r in read_tsv(BLIND):
        vs = detect_text(r.text, role=r.role, language=r.language, packs=blind)
        found += [(r.text, v) for v in vs if v.rule_id.startswith("SIM.")]
    assert found
    for text, v in found:
        assert v.pack == "similarity" and v.category == v.rule_id[4:]
        assert "no rule matched" in v.reason and "closest labelled violation" in v.reason
        assert v.matched_text == text and v.regulation and v.suggestion
        assert v.kind in ("utterance", "signal")


@pytest.mark.parametrize("text,role", [("这个产品保本保息，您放心买", "agent"), ("You can't lose with this fund.", "agent"),
                                       ("我刚才把验证码发给他了", "customer")])
def test_the_evidence_is_the_closest_violation_of_the_findings_category(full, text, role):
    m = full.similarity.model
    s = m.score(text, role)
    idx, val = m._vector(text, role)
    dense = val @ m._bad_x[idx].toarray()  # every labelled violation's cosine, the slow way
    same = [k for k, smp in enumerate(m._bad_samples) if smp.category == s.category]
    assert s.nearest.category == s.category
    assert s.nearest_sim == pytest.approx(max(dense[k] for k in same))


@pytest.mark.parametrize("text", ["这个产品并非保本产品", "我们银行不会要求您转账到安全账户"])
def test_denied_promises_stay_quiet(full, text):
    assert detect_text(text, role="agent", packs=full) == []


@pytest.mark.parametrize("text,language", [
    ("I do have to mention, the value of the investment can go down as well as up, and you might get back "
     "less than you put in.", "en"),
    ("理财非存款、产品有风险、投资须谨慎，这个您一定要清楚。", "zh"),
])
def test_a_mandatory_disclosure_raises_no_similarity_finding(full, text, language):
    """A risk warning reads much like the claims it warns about (the first one scored as
    exaggeration once three English batches had joined); the agent saying a mandatory disclosure
    is doing what the regulation asks."""
    assert full.similarity._discloses(Utterance(speaker="agent", start=0, end=1, text=text, role="agent",
                                                language=language))
    assert [v.rule_id for v in detect_text(text, role="agent", language=language, packs=full)] == []


@pytest.mark.parametrize("text,language,found", [
    ("没有风险，稳稳的，放心买", "zh", None),  # a warning denied is the claim itself
    ("There's no risk of loss at all with this one", "en", None),
    ("这款产品的风险等级是二级", "zh", None),  # a descriptor, not a warning
    ("这款产品有风险，可能会亏损本金", "zh", "有风险"),
    ("It's high risk and high reward, so only put in money you could afford to lose.", "en", "afford to lose"),
    ("I know you can't afford to lose any of it, but this plan is where the returns are.", "en", None),
])
def test_only_an_unnegated_warning_counts_as_a_disclosure(full, text, language, found):
    """The layer's disclosure check reads only the absence rules' elements marked `warning`, and not
    where a negation denies it: 没有风险 and "no risk of loss" once excused the claims they make."""
    why = full.similarity._discloses(Utterance(speaker="agent", start=0, end=1, text=text, role="agent",
                                               language=language))
    assert (found in why) if found else why is None


@pytest.mark.parametrize("text,language,step", [
    ("好的，我在系统里给您发起申购，您在手机银行上点确认就可以了。", "zh", "发起申购"),  # dev08's close
    ("好的，我现在就帮您预约，您明天上午带着身份证和银行卡来网点签字就可以了。", "zh", "帮您预约"),  # in person
    ("好的，我给您发起申购，您把手机收到的验证码念给我听一下。", "zh", None),  # names the secret
    ("Great, I'll put the order in and you confirm it in the app.", "en", "i'll put the order in"),
    ("I'll put the order in, just read me the code we text you.", "en", None),
    ("您把手机收到的动态验证码发我一下，我这边帮您操作。", "zh", None),  # no purchase step at all
])
def test_a_purchase_step_is_no_pii_request(full, text, language, step):
    """The agent talking the customer through the purchase ("在手机银行上点确认就可以了") reads like a
    scammer's "confirm it in the app" to the layer, but asks for nothing; naming a code, a password or
    the card number still makes it a request."""
    utt = Utterance(speaker="agent", start=0, end=1, text=text, role="agent", language=language)
    why = full.similarity._purchase_step(utt)
    assert (step in why) if step else why is None
    if step:
        assert not [v for v in detect([utt], full, call_level=False) if v.rule_id == "SIM.pii_request"]


def test_a_customer_reporting_what_a_caller_said_is_a_signal_but_quoting_a_pitch_is_not(full):
    """Reported speech is how customers voice risks ("他们说我名下的账户被冻结了"); a customer quoting a
    seller's claim (说是跟存钱一样) is quoting it, the synthetic calls' must-not-flag convention."""
    def said(text):
        return detect([Utterance(speaker="customer", start=0, end=1, text=text, role="customer", language="zh")],
                      full, call_level=False)
    reported = said("他们说我名下的银行账户都被公安机关冻结了，让我先去买部新手机办张新卡，新号码不能告诉任何人。")
    assert {v.kind for v in reported} == {"signal"}
    quoting = Utterance(speaker="customer", start=0, end=1, role="customer", language="zh",
                        text="你们上次也是这么说的。我前年在你们这儿买了一份保险，说是跟存钱一样，结果去年急用钱去退保，亏了好几千块钱。")
    assert full.similarity.probability(quoting) >= full.similarity.threshold  # it reads like a complaint
    assert "说是" in full.similarity._quotes_a_claim(quoting, full)
    assert said(quoting.text) == []


@pytest.mark.parametrize("text,language", [("这个产品保本保息吗？", "zh"), ("Is this fund guaranteed?", "en")])
def test_a_question_excuses_a_claim_but_not_an_act_done_by_asking(full, text, language):
    """Asking about a guarantee is not promising one, so a question at a rule's literal excuses the
    layer's agent-side findings of the claims; but pressing, inducing or coaching is often done by
    asking ("would you like a cash gift for moving your pension?"), so it does not excuse those."""
    an = full.analyze(Utterance(speaker="agent", start=0, end=1, text=text, role="agent", language=language))
    assert full.similarity._suppressed("guarantee_of_principal", an, full)
    for category in ("urgency_pressure", "improper_inducement", "suitability_bypass"):
        assert full.similarity._suppressed(category, an, full) is None, category


def test_relief_is_neither_a_risk_cue_nor_a_complaint(full):
    """A customer thanking staff for a scam stopped reads like the scam itself; the packs' RELIEF
    lexicon excuses the layer's customer signals on it, and nothing else."""
    relieved = "要不是柜员拦着，我就把钱转到那个安全账户了。"
    u = Utterance(speaker="customer", start=0, end=1, text=relieved, role="customer", language="zh")
    assert full.similarity.probability(u) >= full.similarity.threshold  # the layer alone would flag it
    assert full.similarity._relieved(u)
    assert detect_text(relieved, role="customer", language="zh", packs=full) == []
    scammed = "那个自称客服的人让我把钱转到安全账户，我已经转了两万。"
    assert detect_text(scammed, role="customer", language="zh", packs=full)
    # staff who did not warn is a complaint, not relief
    assert detect_text("你们为什么没有及时提醒我？现在亏了三成。", role="customer", language="zh", packs=full)
    # English: thanks for money recovered (the layer read it as a complaint or a risk cue)
    thanks = "I am extremely grateful that I have all the money back in my account."
    assert full.similarity._relieved(Utterance(speaker="customer", start=0, end=1, text=thanks,
                                               role="customer", language="en"))
    assert detect_text(thanks, role="customer", language="en", packs=full) == []
    assert detect_text("I want all my money back in my account by Friday.", role="customer", language="en", packs=full)


def test_a_rushed_disclosure_labelled_mandatory_disclosure_is_raised_as_missing_disclosure(full, monkeypatch):
    """The corpus labels an utterance that rushes or skips a disclosure mandatory_disclosure; the
    packs call that category missing_disclosure (ZH-MD-003). The layer's finding of the corpus's
    category used to find no rule of that name and be dropped."""
    from compliance.rules.similarity import Score

    layer = full.similarity
    monkeypatch.setattr(layer.model, "score", lambda text, role, p=None: Score(p or 0.9, "mandatory_disclosure", None, 0.0))
    u = Utterance(speaker="agent", start=0, end=1, text="合同的内容跟上次一样，过几天拿到了再签", role="agent", language="zh")
    v = layer.finding(u, 0.9)
    assert v is not None and v.category == "missing_disclosure" and v.rule_id == "SIM.missing_disclosure"
    assert layer.reference[("zh", "missing_disclosure")][0].id == "ZH-MD-003"


def test_a_disclosure_does_not_excuse_a_rule_hit(full):
    found = detect_text("This fund is risk-free, though past performance is not a guarantee of future results.",
                        role="agent", language="en", packs=full)
    assert "EN-GP-001" in {v.rule_id for v in found}


def test_ordinary_call_talk_stays_quiet(full):
    for text in ("您好，请问是王先生吗？", "嗯。", "好的。", "对", "好的，谢谢您，再见。", "Thanks for your time, bye.", "OK."):
        assert detect_text(text, role="agent", language="en" if text.isascii() else "zh", packs=full) == [], text


def test_ordinary_call_talk_nobody_trained_on_stays_mostly_quiet(full):
    """Most of a call is ordinary talk, and the real batches hold little of it (half their rows are
    violations): at this round's start the layer flagged 49 of these 120 turns (33 of the 60
    English ones). With a second, larger set of ordinary call talk in the corpus and hesitation
    fillers dropped from the features: 11-14 as the round's later batches joined; with a third set
    written as transcribed speech (fillers, repairs, backchannels; another author): 4-8 as the last
    English batches (mostly pitches) joined; 8-11 as the 895 rows of the fourth 2026-12-07 round's
    blind batches joined (the two newest false alarms, a fund's holdings and a transfer's arrival,
    score 0.625 and 0.623 against the threshold 0.62); 12 once the eighth round's eight blind batches
    had joined (the lowest of them, a branch appointment booked, at 0.621). The ceiling sits at that; a
    change that raises it needs a reason, not a higher ceiling. The ninth round's sixteen blind batches
    took it to 10, back to 11 (a customer putting money aside for a daughter's school, at 0.657), and
    to 10 with the round's fifth set."""
    rows = read_tsv(ORDINARY_HELDOUT)
    assert len(rows) == 120 and not {r.text for r in rows} & {s.text for s in full.similarity.model.samples}
    flagged = [r.text for r in rows if detect_text(r.text, role=r.role, language=r.language, packs=full)]
    assert len(flagged) <= 12, flagged


def test_fillers_are_dropped_only_between_pauses():
    assert strip_fillers("嗯,我看到了,那个,三月五号已经到账了") == "我看到了,三月五号已经到账了"
    assert strip_fillers("这个产品就是存款,您放心") == "这个产品就是存款,您放心"  # 就是 inside a clause stays
    assert strip_fillers("so, um, just to understand") == "so, just to understand"
    assert strip_fillers("嗯.") == "嗯."  # nothing but a filler: left as it is


def test_negation_marks_what_the_cue_governs():
    assert mark_negation("本产品不保本，有风险") == "本产品不¬保¬本，有风险"
    assert mark_negation("不仅保本还保息") == "不仅保本还保息"  # 不仅 is not a negation
    assert mark_negation("returns are not guaranteed") == "returns are not ¬g¬u¬a¬r¬a¬n¬t¬e¬e¬d"
    # a negative potential complement denies the verb before it (收益稳定不了 is honest, not a promise);
    # 错不了 ("can't go wrong") denies nothing
    assert mark_negation("收益稳定不了") == "收益¬稳¬定不¬了"
    assert mark_negation("这个保证不了") == "这个¬保¬证不¬了"
    assert mark_negation("错不了") == "错不了"


def test_training_is_deterministic_and_needs_both_labels():
    samples = training_set(load_pack_files(None), corpus_files(RULES_DIR))[:400]
    a, b = SimilarityModel(samples), SimilarityModel(samples)
    for s in samples[:50]:
        assert a.probability(s.text, s.role) == b.probability(s.text, s.role)
    with pytest.raises(ValueError, match="both"):
        SimilarityModel([Sample("保本", "agent", "zh", True, "guarantee_of_principal", "x")] * 3)


def test_the_setting_switches_it_off(monkeypatch):
    from compliance import detect as detect_module

    monkeypatch.setenv("COMPLIANCE_SIMILARITY", "0")
    monkeypatch.setattr(detect_module, "_ENGINES", {})
    assert load_packs().similarity is None
    monkeypatch.setenv("COMPLIANCE_SIMILARITY", "1")
    monkeypatch.setattr(detect_module, "_ENGINES", {})
    assert load_packs().similarity is not None


@pytest.mark.skipif(not CALLS.is_dir(), reason="../shared/audio/calls not present")
@pytest.mark.parametrize("path", sorted(CALLS.glob("dev0[5-8].json")), ids=lambda p: p.stem)
def test_calls_the_layer_never_trained_on_keep_their_traps_quiet(full, path):
    """dev05-08 are not in the corpus (dev01-04 are): every planted violation is still found
    and no must-not-flag line is flagged."""
    d = json.loads(path.read_text(encoding="utf-8"))
    utts = [Utterance(speaker=t["speaker"], start=t["start"], end=t["end"], text=t["text"], role=t["speaker"],
                      index=i, language="zh") for i, t in enumerate(d["turns"])]
    vs = detect(utts, full)
    flagged = {v.utterance_index for v in vs}
    planted = {v["turn_index"] for v in d["violations"] if v.get("turn_index") is not None}
    assert planted <= flagged
    assert not flagged & {m["turn_index"] for m in d["must_not_flag"]}
