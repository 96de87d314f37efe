"""Masking of personal data in transcripts: Chinese resident ID-card numbers (checksum-verified),
bank-card numbers (Luhn-verified), phone numbers and e-mail addresses.

Masks keep the text's length (every masked character becomes '*', the last four digits of a number
stay), so word timestamps still line up with the masked text. Spoken Chinese digits (一二三…, 幺)
count as digits, since ASR writes numbers either way."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass

CN_DIGITS = str.maketrans("零〇一二三四五六七八九幺两", "0012345678912")

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"

ID_CARD = re.compile(r"(?<![0-9])[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx](?![0-9])")
BANK_CARD = re.compile(r"(?<![0-9])\d(?:[ -]?\d){15,18}(?![0-9])")
MOBILE = re.compile(r"(?<![0-9])(?:\+?86[ -]?)?1[3-9]\d(?:[ -]?\d{4}){2}(?![0-9])")
LANDLINE = re.compile(r"(?<![0-9])0\d{2,3}[ -]\d{7,8}(?![0-9])")
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")


@dataclass
class Finding:
    kind: str  # id_card, bank_card, phone, email
    start: int
    end: int


def id_card_valid(number: str) -> bool:
    if len(number) != 18 or not number[:17].isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(number[:17], _ID_WEIGHTS))
    return _ID_CHECK[total % 11] == number[17].upper()


def luhn_valid(digits: str) -> bool:
    if not digits.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def find_pii(text: str) -> list[Finding]:
    view = text.translate(CN_DIGITS)  # one character for one, so offsets hold in `text`
    found: list[Finding] = []
    taken = [False] * len(text)

    def add(kind: str, m: re.Match) -> None:
        if any(taken[m.start():m.end()]):
            return
        for i in range(m.start(), m.end()):
            taken[i] = True
        found.append(Finding(kind, m.start(), m.end()))

    for m in ID_CARD.finditer(view):
        if id_card_valid(m.group()):
            add("id_card", m)
    for m in BANK_CARD.finditer(view):
        digits = re.sub(r"[ -]", "", m.group())
        if 16 <= len(digits) <= 19 and luhn_valid(digits):
            add("bank_card", m)
    for pattern in (MOBILE, LANDLINE):
        for m in pattern.finditer(view):
            add("phone", m)
    for m in EMAIL.finditer(text):
        add("email", m)
    return sorted(found, key=lambda f: f.start)


def _mask_span(chars: list[str], f: Finding) -> None:
    if f.kind == "email":
        at = "".join(chars[f.start:f.end]).find("@") + f.start
        for i in range(f.start + 1, at):
            chars[i] = "*"
        return
    positions = [i for i in range(f.start, f.end) if chars[i].translate(CN_DIGITS).isdigit() or chars[i] in "Xx"]
    for i in positions[:-4]:
        chars[i] = "*"


def mask_text(text: str) -> tuple[str, list[Finding]]:
    if not text:
        return text, []
    found = find_pii(text)
    if not found:
        return text, []
    chars = list(text)
    for f in found:
        _mask_span(chars, f)
    return "".join(chars), found


def mask_words(texts: list[str]) -> list[str]:
    """Mask a sequence of ASR words as one text (a number is often split over several words)."""
    joined = "".join(texts)
    masked, found = mask_text(joined)
    if not found:
        return list(texts)
    out, pos = [], 0
    for t in texts:
        out.append(masked[pos:pos + len(t)])
        pos += len(t)
    return out


def mask_result(result):
    """A copy of a CallResult with PII masked in utterances, words and violation evidence; the
    number of masked items is returned with it."""
    masked = copy.deepcopy(result)
    count = 0
    for utt in masked.utterances:
        utt.text, found = mask_text(utt.text)
        count += len(found)
        for word, text in zip(utt.words, mask_words([w.text for w in utt.words])):
            word.text = text
    for v in masked.violations:
        v.matched_text, _ = mask_text(v.matched_text)
        v.context, _ = mask_text(v.context)
    return masked, count
