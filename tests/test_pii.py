"""PII masking (ID-card checksum, Luhn, phones, e-mail, spoken Chinese digits) and field encryption."""

from __future__ import annotations

import re

import pytest

from compliance.service.crypto import Crypto
from compliance.pii import find_pii, id_card_valid, luhn_valid, mask_result, mask_text, mask_words


def _with_id_check(first17: str) -> str:
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return first17 + "10X98765432"[sum(int(d) * w for d, w in zip(first17, weights)) % 11]


def _with_luhn(prefix: str) -> str:
    for d in "0123456789":
        if luhn_valid(prefix + d):
            return prefix + d
    raise AssertionError


ID = _with_id_check("11010519491231002")  # checksum X
CARD = _with_luhn("622202123456789012")  # 19 digits


def test_checksums():
    assert ID.endswith("X") and id_card_valid(ID) and id_card_valid(ID.lower())
    assert not id_card_valid(ID[:-1] + "1")
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")


def test_id_card_is_masked_only_with_a_valid_checksum():
    masked, found = mask_text(f"我的身份证号是{ID}，麻烦登记")
    assert [f.kind for f in found] == ["id_card"]
    assert ID not in masked and masked.count("*") == 14 and ID[-4:] in masked
    wrong = ID[:-1] + "1"
    assert mask_text(f"编号{wrong}")[0] == f"编号{wrong}"


def test_bank_card_luhn_with_and_without_spaces():
    spaced = " ".join(CARD[i:i + 4] for i in range(0, len(CARD), 4))
    for text in (f"卡号{CARD}", f"卡号是 {spaced} 对吧"):
        masked, found = mask_text(text)
        assert [f.kind for f in found] == ["bank_card"], text
        assert re.sub(r"\D", "", masked) == CARD[-4:] and len(masked) == len(text)
    bad = CARD[:-1] + str((int(CARD[-1]) + 1) % 10)
    assert find_pii(f"订单号{bad}") == []


@pytest.mark.parametrize("text,secret", [
    ("您的手机13812345678对吗", "13812345678"),
    ("打+86 139 1234 5678找我", "139 1234 5678"),
    ("座机010-62345678转人工", "010-62345678"),
    ("邮箱zhang.san@example.com.cn", "zhang.san"),
])
def test_phones_and_email(text, secret):
    masked, found = mask_text(text)
    assert found and secret not in masked and len(masked) == len(text)


def test_spoken_chinese_digits_and_numbers_split_over_words():
    masked, found = mask_text("号码是幺三八一二三四五六七八")
    assert [f.kind for f in found] == ["phone"] and "幺三八一二三四" not in masked and masked.endswith("五六七八")
    words = ["我的", "手机", "138", "1234", "5678", "谢谢"]
    out = mask_words(words)
    assert out[:2] == ["我的", "手机"] and out[-1] == "谢谢" and "".join(out[2:5]) == "*******5678"
    assert [len(w) for w in out] == [len(w) for w in words]


def test_ordinary_sales_talk_is_untouched():
    for text in ("年化收益百分之五，起购金额5万元", "风险等级R3，犹豫期15天", "2026年11月2日10点", "保本保收益"):
        assert mask_text(text) == (text, [])


def test_mask_result_covers_text_words_and_evidence():
    from compliance.types import CallResult, Utterance, Violation, Word

    utt = Utterance("CH1", 0, 2, f"身份证{ID}", role="customer", words=[Word("身份证", 0, 0.5), Word(ID, 0.5, 2)])
    v = Violation("r", "t", "c", "low", 0, 2, "CH1", "customer", ID, f"身份证{ID}", "x")
    result = CallResult("s", "0" * 64, 2.0, 2, "zh", [], [utt], [v])
    masked, n = mask_result(result)
    assert n == 1
    assert ID not in masked.utterances[0].text and ID not in masked.utterances[0].words[1].text
    assert ID not in masked.violations[0].matched_text and ID not in masked.violations[0].context
    assert result.utterances[0].text.endswith(ID)  # the original is untouched


def test_encryption_round_trip_and_wrong_key(tmp_path):
    crypto = Crypto("right key")
    token = crypto.encrypt("客户 C-778")
    assert token.startswith("enc1:") and "C-778" not in token and token != crypto.encrypt("客户 C-778")
    assert crypto.decrypt(token) == "客户 C-778"
    assert Crypto("wrong key").decrypt(token) is None
    assert crypto.decrypt("plain legacy value") == "plain legacy value"
    assert crypto.encrypt(None) is None
    made = Crypto.from_settings("", tmp_path)  # no key configured: one is generated, private to the owner
    key_file = tmp_path / "secret.key"
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert Crypto.from_settings("", tmp_path).decrypt(made.encrypt("x")) == "x"
