"""Text normalisation for matching, the pinyin (homophone) layer, and segmentation.

normalize(): Traditional -> Simplified (only when a Traditional character is present: OpenCC is
slow), full-width -> half-width (NFKC), one punctuation set, lower case, spaces between Chinese
characters removed, Chinese percentages to digits (百分之八 -> 8%, 五个点 -> 5个点).

pinyin_layer(): a string of the same length where every Han character is replaced by a code for
its toneless, accent-folded syllable (zh/z, ch/c, sh/s, n/l, -ng/-n merged), so that ASR
homophone confusions (保本/爆本, 赎回/熟悔, 理财/李财) match at the same character offsets.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from functools import lru_cache
from pathlib import Path

from ..textnorm import to_simplified

HAN_RE = re.compile(r"[\u3400-\u9fff]")
PUNCT = frozenset(",.?!;:")
_SPACE_HAN = re.compile(r"(?<=[\u3400-\u9fff]) +| +(?=[\u3400-\u9fff])")
_MULTI_SPACE = re.compile(r"\s+")
_PCT = re.compile(r"百分之([零〇一二两三四五六七八九十百点]+|[0-9.]+)")
_POINTS = re.compile(r"([零〇一二两三四五六七八九十]+(?:点[零〇一二三四五六七八九]+)?)个点")

# Full-width forms to ASCII (what NFKC would do for them, at a fraction of the cost), CJK
# punctuation to the ASCII set the matchers use, quotes to '"', upper case to lower case.
_PUNCT_MAP = {i: i - 0xFEE0 for i in range(0xFF01, 0xFF5F)}
_PUNCT_MAP.update({i: i + 32 for i in range(0x41, 0x5B)})
_PUNCT_MAP.update({i: i + 32 - 0xFEE0 for i in range(0xFF21, 0xFF3B)})
_PUNCT_MAP.update(str.maketrans({
    "。": ".", "、": ",", "…": ".", "‥": ".", "～": ",", "~": ",", "—": ",", "–": ",",
    "“": '"', "”": '"', "「": '"', "」": '"', "『": '"', "』": '"', "《": '"', "》": '"',
    "‘": "'", "’": "'", "\t": " ", "\n": " ", "\r": " ", "\u3000": " ", "·": " ",
    "【": '"', "】": '"', "(": ",", ")": ",", "[": ",", "]": ",", "（": ",", "）": ",",
    "！": "!", "？": "?", "，": ",", "：": ":", "；": ";", "％": "%", "＂": '"', "＇": "'",
}))
_WS_RE = re.compile(r"\s")
_WS_ODD = re.compile(r"[^\S ]|  |\A | \Z")  # white space normalize() would change, besides around Chinese
# The same map as a list over the BMP: str.translate indexes a list where a dict lookup would
# raise and clear a KeyError for every unmapped character (about twice as fast on Chinese text).
_PUNCT_LIST: list = list(range(0x10000))
for _cp, _to in _PUNCT_MAP.items():
    _PUNCT_LIST[_cp] = _to
del _cp, _to


@lru_cache(maxsize=1)
def _traditional_chars() -> frozenset:
    """Characters OpenCC t2s would change (read from its character table)."""
    try:
        import opencc

        p = Path(opencc.__file__).parent / "dictionary" / "TSCharacters.txt"
        out = set()
        for line in p.read_text(encoding="utf-8").splitlines():
            parts = line.split("\t")
            if len(parts) == 2 and parts[1].split(" ")[0] != parts[0]:
                out.add(parts[0])
        return frozenset(out)
    except Exception:  # pragma: no cover - fall back to always converting
        return frozenset()


def simplified(text: str) -> str:
    """`text` in Simplified script: OpenCC t2s, run only when a character it would change is there."""
    trad = _traditional_chars()
    return to_simplified(text) if not trad or not trad.isdisjoint(text) else text


def _pct(m: re.Match) -> str:
    num = m.group(1)
    if num[0].isdigit():
        return f"{num}%"
    try:
        import cn2an

        val = cn2an.cn2an(num, "smart")
    except Exception:
        return m.group(0)
    return f"{val:g}%" if isinstance(val, float) else f"{val}%"


def _points(m: re.Match) -> str:
    try:
        import cn2an

        val = cn2an.cn2an(m.group(1), "smart")
    except Exception:
        return m.group(0)
    return (f"{val:g}" if isinstance(val, float) else str(val)) + "个点"


def normalize(text: str) -> str:
    """Canonical form used for all matching (see module doc)."""
    if not text:
        return ""
    if text.isascii():
        text = text.lower().replace("(", ",").replace(")", ",")
    else:
        text = simplified(text).translate(_PUNCT_LIST)
    if "百分之" in text:
        text = _PCT.sub(_pct, text)
    if "个点" in text:
        text = _POINTS.sub(_points, text)
    if " " in text or "\t" in text or "\n" in text:
        if _WS_ODD.search(text):
            text = _WS_RE.sub(" ", text)
            text = _MULTI_SPACE.sub(" ", text).strip()
            text = _SPACE_HAN.sub("", text)
        elif not text.isascii():  # single inner spaces only: the first two steps change nothing
            text = _SPACE_HAN.sub("", text)
    return text


def has_han(text: str) -> bool:
    return HAN_RE.search(text) is not None


# ---------------------------------------------------------------------------- pinyin layer

_TONE_FOLD = str.maketrans({"ü": "v", "ū": "u", "ú": "u", "ǔ": "u", "ù": "u",
                            "ǖ": "v", "ǘ": "v", "ǚ": "v", "ǜ": "v", "ā": "a", "á": "a",
                            "ǎ": "a", "à": "a", "ē": "e", "é": "e", "ě": "e", "è": "e",
                            "ī": "i", "í": "i", "ǐ": "i", "ì": "i", "ō": "o", "ó": "o",
                            "ǒ": "o", "ò": "o", "ń": "n", "ň": "n", "ǹ": "n", "ḿ": "m"})
_PUA_BASE = 0xF0000  # supplementary private use area: never appears in text


def fuzzy_syllable(syl: str) -> str:
    """Merge the confusions typical of Mandarin ASR and southern accents."""
    for a, b in (("zh", "z"), ("ch", "c"), ("sh", "s")):
        if syl.startswith(a):
            syl = b + syl[2:]
            break
    if syl.startswith("n") and not syl.startswith("ng"):
        syl = "l" + syl[1:]
    for a, b in (("ang", "an"), ("eng", "en"), ("ing", "in")):
        if syl.endswith(a):
            syl = syl[: -len(a)] + b
            break
    return syl


def _load_pinyin_dict() -> dict:
    """pypinyin's single-character reading table. Importing the `pypinyin` package also loads its
    large phrase dictionary (about 1 s); the character table alone loads in under 0.1 s."""
    import importlib.util
    import os

    spec = importlib.util.find_spec("pypinyin")
    if spec is not None and spec.origin:
        path = os.path.join(os.path.dirname(spec.origin), "pinyin_dict.py")
        if os.path.exists(path):
            sub = importlib.util.spec_from_file_location("_compliance_pinyin_dict", path)
            mod = importlib.util.module_from_spec(sub)
            sub.loader.exec_module(mod)
            return mod.pinyin_dict
    from pypinyin.pinyin_dict import pinyin_dict  # pragma: no cover

    return pinyin_dict


class _PinyinTable(dict):
    """str.translate table: Han char -> private-use char encoding its fuzzy syllable. Lazy."""

    def __init__(self):
        super().__init__()
        self._syll: dict[str, int] = {}
        self.plain: dict[int, str] = {}  # codepoint -> exact toneless syllable
        self._dict = None

    def _lookup(self, cp: int) -> str | None:
        if self._dict is None:
            self._dict = _load_pinyin_dict()
        reading = self._dict.get(cp)
        if not reading:
            return None
        return reading.split(",")[0].translate(_TONE_FOLD)

    def __missing__(self, cp: int):
        if not (0x3400 <= cp <= 0x9FFF):
            self[cp] = cp
            return cp
        syl = self._lookup(cp)
        if syl is None:
            self[cp] = cp
            return cp
        self.plain[cp] = syl
        fz = fuzzy_syllable(syl)
        code = self._syll.get(fz)
        if code is None:
            code = _PUA_BASE + len(self._syll)
            self._syll[fz] = code
        self[cp] = code
        return code


_TABLE = _PinyinTable()
_LAYER: list | None = None  # the same mapping as a list over the BMP: a faster translate table


def _layer_table() -> list:
    global _LAYER
    if _LAYER is None:
        lst = list(range(0xA000))
        for cp in range(0x3400, 0xA000):
            lst[cp] = _TABLE[cp]
        _LAYER = lst
    return _LAYER


def pinyin_layer(text: str) -> str:
    """Same length as `text`; Han characters replaced by their fuzzy-syllable codes."""
    if text.isascii():
        return text
    return text.translate(_LAYER or _layer_table())


# A character the gate table gives to whatever normalize() would change beyond one-for-one
# character mapping (Traditional characters, which OpenCC converts in context, and white space,
# which it collapses): text holding one takes the full normalize() path.
GATE_FALLBACK = "\U000FFFFD"
_GATE: list | None = None


def gate_layer(text: str, table: list | None) -> str | None:
    """pinyin_layer(normalize(text)) of a non-ASCII text by one translate, or None when the text
    needs the full normalize() (no table, Traditional characters, white space, 百分之/个点)."""
    if table is None or "百分之" in text or "个点" in text:
        return None
    layer = text.translate(table)
    return None if GATE_FALLBACK in layer else layer


def gate_norm(text: str) -> str:
    """normalize(text) for a non-ASCII text that the gate table mapped without a fallback."""
    return text.translate(_PUNCT_LIST)


def gate_table() -> list | None:
    """str.translate table from raw (non-ASCII) text straight to pinyin_layer(normalize(text)):
    normalize()'s width/punctuation/case map composed with the pinyin classes, built once over the
    BMP. None when OpenCC's character table is unavailable (then every text is normalised)."""
    global _GATE
    if _GATE is not None:
        return _GATE
    trad = _traditional_chars()
    if not trad:
        return None
    layer = _layer_table()
    fb = ord(GATE_FALLBACK)
    tab = list(range(0x10000))
    # Beyond the BMP (Traditional characters of CJK extension B, emoji): up to the last
    # Traditional character, every character falls back; above it nothing needs mapping.
    tab.extend([fb] * (max(0x10000, max(ord(c) for c in trad) + 1) - 0x10000))
    for cp in range(0x10000):
        c = _PUNCT_MAP.get(cp, cp)
        if isinstance(c, str):  # pragma: no cover - the map holds code points
            c = ord(c) if len(c) == 1 else None
        if c is None or chr(cp) in trad or _WS_RE.match(chr(c)) or 0xE000 <= cp <= 0xF8FF:
            tab[cp] = fb
        else:
            tab[cp] = layer[c] if c < len(layer) else c
    _GATE = tab
    return tab


def exact_pinyin(text: str) -> tuple:
    """Exact toneless syllables (no fuzzy merging) for verifying short homophone matches."""
    text.translate(_TABLE)  # fills the table
    return tuple(_TABLE.plain.get(ord(c), c) for c in text)


_EXACT: list | None = None
_EXACT_BASE = 0x100000  # plane 16 private use: never produced by the other tables


def exact_table() -> list:
    """str.translate table: Han character -> a code for its exact toneless syllable (the one
    exact_pinyin gives), anything else unchanged. Two strings of the same length have equal
    exact_pinyin() exactly when their translations are equal (checked in the tests of the gate:
    a Han character only ever lines up with a Han character or itself)."""
    global _EXACT
    if _EXACT is None:
        _layer_table()  # fills _TABLE.plain for every BMP Han character
        codes: dict[str, int] = {}
        tab = list(range(0xA000))
        for cp, syl in _TABLE.plain.items():
            code = codes.get(syl)
            if code is None:
                code = codes[syl] = _EXACT_BASE + len(codes)
            tab[cp] = code
        _EXACT = tab
    return _EXACT


def pinyin_str(text: str) -> str:
    """Readable toneless pinyin, for evidence messages."""
    return " ".join(exact_pinyin(text))


# ---------------------------------------------------------------------------- clauses & tokens

def is_break(text: str, i: int, marks=PUNCT) -> bool:
    """text[i] ends a clause (a '.' or ',' between digits, as in 0.95 or 10,000, does not)."""
    c = text[i]
    if c not in marks:
        return False
    if c in ".," and 0 < i < len(text) - 1 and text[i - 1].isdigit() and text[i + 1].isdigit():
        return False
    return True


_CLAUSE_RE = re.compile(r"[,.?!;:]")
_SENT_RE = re.compile(r"[.?!]")


# A '.' or ',' that is_break() may not count (one between two digits) has neither a Chinese
# character, white space nor clause punctuation on either side: text without such a triple needs
# no digit checks.
_MAYBE_DECIMAL = re.compile(r"[^\u3400-\u9fff\s,.?!;:][.,][^\u3400-\u9fff\s,.?!;:]")


@lru_cache(maxsize=8)  # the texts of the utterance in hand, not a cache across utterances
def _breaks(text: str, sentence: bool) -> tuple[int, ...]:
    """Positions of the clause (or sentence) breaks of `text`; decimal points are not breaks
    (is_break)."""
    if sentence:  # the sentence marks are clause marks too: filter the clause breaks
        return tuple(i for i in _breaks(text, False) if text[i] in ".?!")
    out = [m.start() for m in _CLAUSE_RE.finditer(text)]
    if out and _MAYBE_DECIMAL.search(text):
        last = len(text) - 1
        out = [i for i in out
               if not (0 < i < last and text[i] in ".," and text[i - 1].isdigit() and text[i + 1].isdigit())]
    return tuple(out)


def clause_bounds(text: str, start: int, end: int, marks=PUNCT) -> tuple[int, int]:
    """Start and end (exclusive, punctuation not included) of the clause holding [start, end)."""
    br = _breaks(text, marks is not PUNCT and marks == ".?!")
    if not br:
        return 0, len(text)
    k = bisect_left(br, start)
    i = br[k - 1] + 1 if k > 0 else 0
    k2 = bisect_left(br, end)
    j = br[k2] if k2 < len(br) else len(text)
    return i, j


_jieba_words: set[str] = set()
_jieba_ready = False


def register_words(words) -> None:
    """Phrases from the rule packs that jieba must keep whole (保本, 刚性兑付, 犹豫期)."""
    for w in words:
        if w and has_han(w) and " " not in w:
            _jieba_words.add(w)
    if _jieba_ready:
        _add_to_jieba(words)


def _add_to_jieba(words) -> None:
    import jieba

    for w in words:
        if w and has_han(w) and " " not in w:
            jieba.add_word(w, freq=200000)


_jieba_module = None  # jieba once initialised (the import statements cost more than the look-ups)


def _jieba():
    global _jieba_ready, _jieba_module
    if _jieba_module is not None:
        return _jieba_module
    import logging

    import jieba

    if not _jieba_ready:
        jieba.setLogLevel(logging.WARNING)
        jieba.initialize()
        _add_to_jieba(sorted(_jieba_words))
        _jieba_ready = True
    _jieba_module = jieba
    return jieba


def straddles_word(text: str, start: int, end: int) -> bool:
    """True when the span [start, end) cuts through a dictionary word at either edge, e.g. 限是 in
    期限是 (checked for short homophone matches only; loads jieba's dictionary on first use)."""
    freq = _jieba().dt.FREQ
    for a, b in ((start - 1, start + 1), (start - 2, start + 1), (end - 1, end + 1), (end - 1, end + 2)):
        if a >= 0 and b <= len(text) and freq.get(text[a:b]):
            w = text[a:b]
            if has_han(w) and all("\u3400" <= c <= "\u9fff" for c in w):
                return True
    return False


def is_word(seg: str) -> bool:
    """A dictionary word of the language (jieba's dictionary), e.g. 保障, 抱歉."""
    return bool(_jieba().dt.FREQ.get(seg)) and len(seg) > 1


_EN_TOKEN = re.compile(r"[a-z0-9%']+|[\u3400-\u9fff]")


def tokens(text: str) -> list[tuple[str, int, int]]:
    """(token, start, end) over normalized text: jieba for Chinese, words for the rest."""
    if has_han(text):
        jb = _jieba()
        return [(w, s, e) for w, s, e in jb.tokenize(text) if w.strip() and w not in PUNCT]
    return [(m.group(0), m.start(), m.end()) for m in _EN_TOKEN.finditer(text)]


def token_index(text: str) -> list[int]:
    """For every character, the index of the token that holds it (or of the previous token)."""
    idx = [0] * (len(text) + 1)
    k = -1
    toks = tokens(text)
    t = 0
    for i in range(len(text) + 1):
        while t < len(toks) and toks[t][1] <= i:
            k = t
            t += 1
        idx[i] = max(k, 0)
    return idx
