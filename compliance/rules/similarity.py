"""Similarity layer: a second opinion that catches violations worded unlike any rule.

Rules find what their phrases and patterns describe; real agents find endless other wordings
("亏的钱我给您补上", "闭眼买都赚"). On blind sets of real utterances the rules alone reached a
recall of about 0.3. This layer is a character n-gram (1-4) TF-IDF logistic regression trained, when
the packs load, on labelled utterances: every rule's own examples plus the labelled sets in
`rules/corpus/*.tsv` (real quoted utterances, ordinary call turns). It is deterministic and takes a
second or two to train, so there is no model file to go stale: edit a pack or a corpus file and the
layer follows.

With a sentence encoder (compliance/rules/encoder.py, on by default), the violation score also reads
the utterance's meaning: a second logistic regression over its embedding, mixed into the logit.

It does three things (`detect` calls `SimilarityLayer.review` once per utterance):
* an utterance no rule matched, scored >= `threshold`, becomes a finding of rule `SIM.<category>`
  (category from a second classifier over the violation categories; evidence: the closest labelled
  violation);
* a rule hit on an utterance scored < `veto_below` is dropped as a likely false alarm (the rule's
  phrase is there, but the whole utterance reads like the labelled compliant ones);
* a rule hit on an utterance of unknown speaker that reads as written narration (RegisterModel: a
  report of a violation or a public warning, not call speech) is dropped.

Inference is pure Python over the learned weights (no sklearn call per utterance), plus one
embedding per utterance with the encoder (about a millisecond; a call's are embedded in one batch)."""

from __future__ import annotations

import logging
import math
import operator
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from .text import normalize

log = logging.getLogger("compliance.rules.similarity")

NGRAMS = (1, 4)
#: inverse regularisation strength of the logistic regression. Chosen by bench/similarity_cv.py
#: (held-out batches F and G, grouped CV over every real row): 30 over 10 raised G's recall with the
#: layer 0.73 -> 0.78 at the same precision and the grouped AUC 0.885 -> 0.887; 3 and 100, pinyin
#: n-grams, NB-scaled features, (1,3)/(1,5)/(2,4) n-grams and weighting real rows over rule examples
#: were all within a row or two of it. Re-checked with role-kept n-grams and batch H as a fold: C 10
#: and 100, n-grams (1,3), thresholds 0.5/0.6 again within a row or two on F, G and H.
C = 30.0
#: roles the features know; anything else counts as unknown
ROLES = ("agent", "customer", "unknown")


@dataclass(frozen=True)
class Sample:
    text: str
    role: str
    language: str
    violation: bool
    category: str
    source: str


@dataclass
class Score:
    p: float  # probability that the utterance is a violation
    category: str  # most likely violation category
    nearest: Sample | None  # the closest labelled violation (evidence)
    nearest_sim: float


#: characters after a negation cue that count as negated (to the end of the clause)
NEG_SCOPE_ZH = 6
NEG_SCOPE_EN = 4
NEG_MARK = "¬"
_CLAUSE_END = set("，。！？；：,.!?;:、\n")


def _negation_re():
    from .cues import NEG_EN, NEG_ZH, PSEUDO_NEG_EN, PSEUDO_NEG_ZH

    pseudo = sorted(PSEUDO_NEG_ZH + PSEUDO_NEG_EN, key=len, reverse=True)
    cues = sorted(NEG_ZH, key=len, reverse=True)
    words = sorted(NEG_EN, key=len, reverse=True)
    return re.compile("(?P<pseudo>" + "|".join(map(re.escape, pseudo)) + ")|(?P<zh>" + "|".join(map(re.escape, cues))
                      + r")|\b(?P<en>" + "|".join(map(re.escape, words)) + r")\b")


_NEG_RE = None


def mark_negation(norm: str) -> str:
    """Mark what a negation cue governs ("不保本" -> "不¬保¬本"), the way sentiment models append
    _NEG to words after "not": the n-grams of a denied promise then differ from the promise's, so
    the model can learn that "并非保本产品" is not "保本产品". Cue lists are the engine's (cues.py)."""
    global _NEG_RE
    if _NEG_RE is None:
        _NEG_RE = _negation_re()
    marks = set()
    for m in _NEG_RE.finditer(norm):
        if m.group("pseudo"):
            continue
        i, left = m.end(), NEG_SCOPE_ZH if m.group("zh") else NEG_SCOPE_EN
        while i < len(norm) and left > 0 and norm[i] not in _CLAUSE_END:
            if m.group("en"):
                if norm[i] == " ":
                    left -= 1
                elif norm[i].isalnum():
                    marks.add(i)
            else:
                marks.add(i)
                left -= 1
            i += 1
    # a negative potential complement denies the verb before it: 稳定不了, 保证不了, 做不到, 保不住
    for m in _POTENTIAL_NEG.finditer(norm):
        if not any(norm.endswith(x, 0, m.end(0)) for x in _POTENTIAL_PSEUDO):
            marks.update(range(m.start(1), m.end(1)))
    if not marks:
        return norm
    return "".join(NEG_MARK + ch if k in marks else ch for k, ch in enumerate(norm))


_POTENTIAL_NEG = re.compile(r"([\u4e00-\u9fff]{1,2})不(?:了|到|住|起)")
#: idioms of that shape that deny nothing (错不了 "can't go wrong" is a promise, 了不起 praise)
_POTENTIAL_PSEUDO = ("错不了", "了不起", "对不起", "不得了", "少不了", "免不了", "大不了")


#: hesitation fillers set off by punctuation ("嗯，", "，那个，", "um,", ", you know,"), and a run of 对/是/
#: 好 backchannels: speech has them, the labelled rows (written quotes) hardly ever do, so they would
#: be evidence of nothing but the register. Only a filler standing alone between pauses is dropped
#: ("就是存款" keeps its 就是).
_FILLER = re.compile(r"(?:^|(?<=[,.?!;:]))\s*(?:嗯+|啊+|呃+|哦+|额+|那个|这个|就是|就是说|然后|对对对?|是是是?|好好好?|"
                     r"um+|uh+|uhm|erm?|hmm+|mm+|you know|i mean|like|so yeah|yeah|okay so|right)\s*(?:[,.]|$)")


def strip_fillers(norm: str) -> str:
    """`norm` (normalize()'s output) without hesitation fillers between pauses (see _FILLER)."""
    if "," not in norm and "." not in norm:
        return norm
    out = _FILLER.sub("", norm)
    return out if out.strip(" ,.") else norm


def features_text(text: str, role: str) -> str:
    role = role if role in ROLES else "unknown"
    return f"{role}|{mark_negation(strip_fillers(normalize(text).lower()))}"


def _ngrams(s: str, lo: int = NGRAMS[0], hi: int = NGRAMS[1]) -> Counter:
    counts = Counter(s) if lo <= 1 else Counter()
    for n in range(max(lo, 2), hi + 1):
        counts.update([s[i:i + n] for i in range(len(s) - n + 1)])
    return counts


#: one character per role, put before each n-gram when the n-grams are kept apart by role
_ROLE_TAG = {"agent": "\x01", "customer": "\x02", "unknown": "\x03"}


@dataclass(frozen=True)
class Featurizer:
    """What the model sees of an utterance: character n-grams of the role-prefixed, negation-marked
    normalised text, each n-gram tagged with the speaker's role (`by_role`), so that an agent's
    "保本" and a customer's "保本" are different features -- in effect one model per role, sharing the
    regularisation. Chosen by bench/similarity_cv.py: against n-grams shared by all roles, AUC over
    every real row (out of fold) 0.900 -> 0.937, held-out G F1 0.84 -> 0.88 and H 0.83 -> 0.89 with
    the rules, at no extra cost per utterance (shared + role-tagged n-grams: AUC 0.934 at twice the
    features). Optionally also n-grams of the pinyin layer (each Han character replaced by its fuzzy
    syllable, compliance.rules.text.pinyin_layer) that hold a Han character, so an ASR homophone
    (包本 for 保本) shares features with the word it stands for."""

    ngrams: tuple = NGRAMS
    pinyin: tuple | None = None  # n-gram range over the pinyin layer
    by_role: bool = True

    def __call__(self, text: str, role: str) -> Counter:
        counts = self.grams(text, role)
        if self.by_role:
            tag = _ROLE_TAG[role if role in ROLES else "unknown"]
            return Counter({tag + g: n for g, n in counts.items()})
        return counts

    def grams(self, text: str, role: str) -> Counter:
        """The n-grams without the role tag (the model keeps one weight table per role instead)."""
        doc = features_text(text, role)
        counts = _ngrams(doc, *self.ngrams)
        if self.pinyin and not doc.isascii():
            from .text import pinyin_layer

            lay = pinyin_layer(doc)
            lo, hi = self.pinyin
            for n in range(lo, hi + 1):
                counts.update([g for i in range(len(doc) - n + 1)
                               if (g := lay[i:i + n]) != doc[i:i + n]])
        return counts


def read_corpus(paths) -> list[Sample]:
    """The labelled TSVs, read (and validated) as `compliance rules eval` reads them."""
    from .evaluate import read_tsv

    return [Sample(r.text.strip(), r.role, r.language, r.label == "violation", r.category, f"{Path(path).name}:{r.id}")
            for path in paths for r in read_tsv(path) if r.text.strip()]


def samples_from_packs(packs) -> list[Sample]:
    """Every utterance-level rule's own examples, with the rule's category and speaker scope."""
    out = []
    for pack in packs:
        for rule in pack.rules:
            if rule.kind != "utterance" or not rule.enabled:
                continue
            scope = rule.speaker if rule.speaker in ("agent", "customer") else "unknown"
            for label, items in (("violation", rule.examples.violation), ("compliant", rule.examples.compliant)):
                for ex in items:
                    text, role = (ex, scope) if isinstance(ex, str) else (ex.text, ex.role or scope)
                    if text:
                        out.append(Sample(text, role, rule.language, label == "violation", rule.category,
                                          f"{pack.id}:{rule.id}"))
    return out


_SECOND = operator.itemgetter(1)
_THIRD = operator.itemgetter(2)


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))


def _linear_probability(counts: Counter, weights: dict, bias: float) -> float:
    return _sigmoid(_linear_logit(counts, weights, bias))


def _linear_logit(counts: Counter, weights: dict, bias: float) -> float:
    """bias + w . x for x the l2-normalised sublinear TF-IDF vector of `counts`, from a table
    n-gram -> (idf, idf * coefficient, idf²): the sklearn model's arithmetic without sklearn."""
    # every known feature counted once (one dict lookup each; map/filter/sum run in C), then
    # the few repeated ones corrected to their sublinear tf 1 + log(tf)
    known = list(filter(None, map(weights.get, counts)))
    num = sum(map(_SECOND, known))
    sq = sum(map(_THIRD, known))
    if len(counts) < sum(counts.values()):
        for g, tf in counts.items():
            if tf > 1 and g in weights:
                w = weights[g]
                t = 1.0 + math.log(tf)
                num += (t - 1.0) * w[1]
                sq += (t * t - 1.0) * w[2]
    return bias + (num / math.sqrt(sq) if sq else 0.0)


def _tfidf():
    """The TF-IDF both models fit on n-gram Counters (sublinear tf, l2-normalised rows)."""
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(analyzer=lambda counts: list(counts.elements()), sublinear_tf=True,
                           lowercase=False, dtype=np.float64)


def _weight(idf: float, coef: float) -> tuple[float, float, float]:
    """One n-gram's entry in the table _linear_probability reads: (idf, idf * coefficient, idf²)."""
    return (float(idf), float(idf * coef), float(idf) ** 2)


class RegisterModel:
    """Written reporting against speech: the probability that a text reads like narration (news
    reports, regulators' notices, consumer warnings: the labelled rows of speaker role `unknown`)
    rather than what an agent or a customer says on a call (the rows of roles agent and customer).

    Why: the rules read role `unknown` as a possible agent, and on the real batches nearly every
    rule hit on such a row was a reporter describing a violation ("客户经理拍胸脯保证只赚不赔") or a
    warning about one ("如果平台承诺保本保息，这往往是危险信号"). The violation model cannot tell
    those from a promise made by a speaker of unknown role (its `unknown` weights learned that such
    words are reportage), but the register can: call speech scores low whoever says it (the
    synthetic calls' turns: at most 0.25), narration high. Character n-grams (1-4) of the
    negation-marked normalised text, TF-IDF, logistic regression, as for the violation model."""

    C = 10.0

    def __init__(self, samples: list[Sample]) -> None:
        import numpy as np
        from sklearn.linear_model import LogisticRegression

        y = [s.role not in ("agent", "customer") for s in samples]
        if len(set(y)) < 2:
            raise ValueError("the register model needs rows of role unknown and of agent/customer")
        vec = _tfidf()
        x = vec.fit_transform([self.grams(s.text) for s in samples])
        lr = LogisticRegression(C=self.C, solver="liblinear", class_weight="balanced", max_iter=1000,
                                random_state=0).fit(x, np.array(y))
        coef, idf = lr.coef_[0], vec.idf_
        self._weights = {g: _weight(idf[j], coef[j]) for g, j in vec.vocabulary_.items()}
        self._b = float(lr.intercept_[0])

    @staticmethod
    def grams(text: str) -> Counter:
        return _ngrams(mark_negation(normalize(text).lower()))

    def narration(self, text: str) -> float:
        return _linear_probability(self.grams(text), self._weights, self._b)


#: the encoder model's inverse regularisation (out of fold over the real rows, ten folds of batches:
#: C 0.3 to 10 within 0.002 AUC)
ENCODER_C = 3.0


#: agent-side categories whose violation is often itself a question ("don't you agree it would be
#: best to buy this policy now?", "would you like a cash gift for moving your pension?", 要不要进群听
#: 老师讲?): a question cue does not excuse the layer's finding of these. For the claims (保本,
#: "guaranteed"), asking is not claiming. Leave-one-batch-out over 69 batches, with the same round's
#: rule fixes: P 0.908 -> 0.909, R 0.929 -> 0.932. PII requests stay out: with them R 0.935, but the
#: card's last four digits, asked for verification on most service calls, became a false alarm.
ASKING_CATEGORIES = frozenset({"urgency_pressure", "improper_inducement", "misrepresenting_product",
                               "disparaging_competitors", "suitability_bypass"})


#: personal documents to bring in person ("带上身份证和银行卡来网点签字"), which no caller can take
_IN_PERSON = re.compile(r"(带|拿)(着|上|好)?[^,.?!]{0,12}(来|到|去)[^,.?!]{0,3}(网点|柜台|营业厅|银行|支行|分行)|"
                        r"\bbring (your|the|along)[^.?!]{0,40}\b(to|into|in to) (the|our|a|any) (branch|office|bank)\b")


def _lexicon(packs, name: str) -> dict[str, set]:
    """A lexicon of the packs, per language, normalised."""
    out: dict[str, set] = {}
    for pack in packs:
        out.setdefault(pack.info.language, set()).update(
            n for ph in pack.lexicon.get(name, ()) if (n := normalize(ph).lower()))
    return out


def _any_of(words) -> re.Pattern:
    """One pattern for any of the (normalised) words, longest first, not inside a Latin word."""
    alts = "|".join(re.escape(x) for x in sorted(words, key=len, reverse=True))
    return re.compile(rf"(?<![a-z0-9])(?:{alts})(?![a-z0-9])")


def _cue_at_literals(analyzed, checks_for) -> str | None:
    """The first cue (compliance.rules.cues) found at a rule literal the engine's analysis hit, two
    characters or longer: `checks_for(lid)` gives the checks asked at that literal's hits (empty:
    none)."""
    if not analyzed.hits:
        return None
    norm = analyzed.norm
    zh = not norm.isascii()
    for lid, hs in analyzed.hits.items():
        checks = checks_for(lid)
        if not checks:
            continue
        for h in hs:
            if h.end - h.start >= 2:
                for check in checks:
                    why = check(norm, h.start, h.end, zh)
                    if why:
                        return why
    return None


def _check_mix(encoder, mix: float | None) -> None:
    """An encoder's share of the logit has one source, the settings (similarity_encoder_mix)."""
    if encoder is not None and mix is None:
        raise ValueError("an encoder needs its share of the logit (mix; settings.similarity_encoder_mix)")


class SimilarityModel:
    """Trained from labelled samples; `score(text, role)` -> Score.

    With an `encoder` (compliance.rules.encoder), a second logistic regression reads the sentence
    embedding -- one weight vector per role plus one shared, as the n-grams are tagged by role --
    and the violation logit is (1 - mix) * n-gram logit + mix * embedding logit: two views of the
    same utterance, wording and meaning, averaged where neither is sure. The category, the evidence
    and the register model stay on n-grams."""

    def __init__(self, samples: list[Sample], *, c: float = C, featurizer: Featurizer | None = None,
                 encoder=None, mix: float | None = None, encoder_c: float = ENCODER_C) -> None:
        import numpy as np
        from sklearn.linear_model import LogisticRegression
        from sklearn.svm import LinearSVC

        if len({s.violation for s in samples}) < 2:
            raise ValueError("the similarity layer needs both violation and compliant samples")
        _check_mix(encoder, mix)
        self.featurizer = featurizer = featurizer or Featurizer()
        docs = [featurizer(s.text, s.role) for s in samples]
        vec = _tfidf()
        x = vec.fit_transform(docs)
        y = np.array([s.violation for s in samples])
        # the dual problem: far fewer samples than n-grams, so it solves in a tenth of a second where
        # the primal took two (same optimum to 1e-4); its coordinate order is random, hence the seed
        binary = LogisticRegression(C=c, solver="liblinear", class_weight="balanced", dual=True,
                                    max_iter=1000, random_state=0).fit(x, y)
        self.samples = samples
        self._index = vec.vocabulary_
        self._idf = vec.idf_
        self._coef = binary.coef_[0]
        self._b = float(binary.intercept_[0])
        #: per role, untagged n-gram -> (idf, idf * coefficient, idf²): what probability() needs, in
        #: one lookup (with by_role, a feature's first character is its role tag)
        tags = {t: r for r, t in _ROLE_TAG.items()} if featurizer.by_role else None
        self._weights = {r: {} for r in ROLES}
        for g, j in self._index.items():
            w = _weight(self._idf[j], self._coef[j])
            if tags is None:
                for table in self._weights.values():
                    table[g] = w
            else:
                self._weights[tags[g[0]]][g[1:]] = w
        bad = np.array([i for i, s in enumerate(samples) if s.violation and s.category], dtype=int)
        self.categories = sorted({samples[i].category for i in bad})
        self._cat_coef = None
        if len(self.categories) >= 2:
            labels = [samples[i].category for i in bad]
            multi = LinearSVC(C=1.0).fit(x[bad], labels)  # one-vs-rest; only the argmax is used
            order = [list(multi.classes_).index(cat) for cat in self.categories]
            self._cat_coef = np.ascontiguousarray(multi.coef_[order].T)  # (features, categories)
            self._cat_b = multi.intercept_[order]
        self.encoder = encoder
        self.mix = mix if encoder is not None else 0.0
        if encoder is not None:
            emb = encoder.encode([s.text for s in samples])
            onehot = np.array([[s.role == r for r in ROLES] for s in samples], dtype=np.float32)
            onehot[~onehot.any(axis=1), ROLES.index("unknown")] = 1.0
            xe = np.hstack([emb * onehot[:, [k]] for k in range(len(ROLES))] + [emb])
            lr = LogisticRegression(C=encoder_c, class_weight="balanced", max_iter=2000).fit(xe, y)
            d = emb.shape[1]
            shared = lr.coef_[0][len(ROLES) * d:]
            #: per role, the embedding weights (the role's own plus the shared ones)
            self._emb_w = {r: (lr.coef_[0][k * d:(k + 1) * d] + shared).astype(np.float32) for k, r in enumerate(ROLES)}
            self._emb_b = float(lr.intercept_[0])
        self._bad_samples = [samples[i] for i in bad]
        self._bad_x = x[bad].T.tocsr()  # (features, labelled violations), rows unit-normalised by tfidf
        #: per category, the columns of _bad_x that hold its labelled violations
        self._cat_cols = {cat: np.array([k for k, smp in enumerate(self._bad_samples) if smp.category == cat],
                                        dtype=np.int64) for cat in self.categories}

    def _vector(self, text: str, role: str):
        import numpy as np

        idx, val = [], []
        for g, tf in self.featurizer(text, role).items():
            j = self._index.get(g)
            if j is not None:
                idx.append(j)
                val.append(1.0 + math.log(tf))
        idx = np.array(idx, dtype=np.int64)
        val = np.array(val) * self._idf[idx] if idx.size else np.zeros(0)
        norm = float(np.sqrt(val @ val)) or 1.0
        return idx, val / norm

    def probability(self, text: str, role: str, embedding=None) -> float:
        """The violation probability alone, called for every utterance: the n-gram part is pure
        Python over one dict; `embedding`: the text's, when the caller already has it."""
        return _sigmoid(self._mix(*self.logits(text, role, embedding)))

    def logits(self, text: str, role: str, embedding=None) -> tuple[float, float | None]:
        """The two logits probability() mixes: character n-grams', and the sentence encoder's (None
        without an encoder); bench/similarity_cv.py --dump records both."""
        role = role if role in ROLES else "unknown"
        z = _linear_logit(self.featurizer.grams(text, role), self._weights[role], self._b)
        return z, (self._encoder_logit(text, role, embedding) if self.mix else None)

    def _encoder_logit(self, text: str, role: str, embedding=None) -> float:
        if embedding is None:
            embedding = self.encoder.encode([text], keep=False)[0]
        return self._emb_b + float(self._emb_w[role] @ embedding)

    def _mix(self, z: float, ze: float | None) -> float:
        """The violation logit: the n-gram logit `z`, mixed with the encoder's `ze` when there is one."""
        return z if ze is None else (1.0 - self.mix) * z + self.mix * ze

    def score(self, text: str, role: str, p: float | None = None) -> Score:
        """`p`: the violation probability when the caller has it already (the layer scored the
        utterance before asking for its category and evidence), so the text is not embedded again."""
        import numpy as np

        idx, val = self._vector(text, role)
        if p is None:
            ze = self._encoder_logit(text, role if role in ROLES else "unknown") if self.mix else None
            p = _sigmoid(self._mix(self._b + float(self._coef[idx] @ val), ze))
        category, nearest, sim = "", None, 0.0
        if self._cat_coef is not None:
            logits = self._cat_b + val @ self._cat_coef[idx]
            category = self.categories[int(logits.argmax())]
        elif self.categories:
            category = self.categories[0]
        if category and idx.size:
            # sparse rows times the dense vector: a dense (n-grams x violations) copy cost milliseconds.
            # Every category has labelled violations (the categories are read off them).
            cols = self._cat_cols[category]
            sims = self._bad_x[idx].T @ val
            k = int(cols[int(np.argmax(sims[cols]))])
            nearest, sim = self._bad_samples[k], float(sims[k])
        return Score(p, category, nearest, sim)


#: categories that are about a whole call (a disclosure never said): one utterance cannot show them
CALL_LEVEL = frozenset({"missing_disclosure"})

#: the corpus's name for a category -> the packs' name for it: rows labelled mandatory_disclosure that
#: are violations are utterances that rush or skip a disclosure ("过几天拿到了再签"), what the packs'
#: utterance-level missing_disclosure rules (ZH-MD-003) catch; without the alias the layer found them
#: and then dropped them for want of a rule of that name
CATEGORY_ALIASES = {"mandatory_disclosure": "missing_disclosure"}


def training_set(packs, files) -> list[Sample]:
    samples = samples_from_packs(packs) + read_corpus(files)
    return [s for s in samples if not (s.violation and s.category in CALL_LEVEL)]


def corpus_files(root: Path) -> list[Path]:
    folder = root / "corpus"
    return sorted(folder.glob("*.tsv")) if folder.is_dir() else []


#: a customer's question is mostly a question ("how long till the money's in my account?"), sometimes a
#: complaint ("现在亏了30%怎么办?"): a customer-side finding on one needs this probability. On the real
#: batches (leave-one-batch-out) such findings were 8 right and 7 wrong at the threshold; at 0.8, 6
#: right and 2 wrong.
QUESTION_SIGNAL_P = 0.8


def ends_as_question(text: str | None) -> bool:
    """Whether the utterance ends with a question mark (where QUESTION_SIGNAL_P applies)."""
    return (text or "").rstrip().endswith(("?", "？"))


#: an utterance needs this much content (Han characters, or words in other scripts) for a finding:
#: on a backchannel ("嗯。", "OK") the score is only the role's prior
MIN_HAN = 6
MIN_WORDS = 4


_HAN = re.compile(r"[\u4e00-\u9fff]")
_WORD = re.compile(r"[A-Za-z0-9]+")


def _too_short(text: str) -> bool:
    han = len(_HAN.findall(text))
    return han < MIN_HAN and len(_WORD.findall(text)) < (MIN_WORDS if not han else MIN_HAN)


_SEVERITIES = ("low", "medium", "high", "critical")


def _one_below(severity: str) -> str:
    """A similarity finding is less certain than a rule hit: one step down, so queues rank it after."""
    k = _SEVERITIES.index(severity) if severity in _SEVERITIES else 1
    return _SEVERITIES[max(0, k - 1)]


class SimilarityLayer:
    """What `detect` consults per utterance: trains the model on first use (thread-safe), only on
    the selected packs' languages, and turns a score into a finding or a veto."""

    def __init__(self, packs, files, *, threshold: float, veto_below: float = 0.0,
                 narration_veto: float = 0.3, encoder=None, mix: float | None = None) -> None:
        """`threshold` and the rest as the settings give them (compliance.detect.similarity_layer)."""
        import threading

        _check_mix(encoder, mix)
        self.packs = packs
        #: the sentence encoder (compliance.rules.encoder.encoder_for), or None: n-grams alone. Only
        #: the training rows' embeddings are cached on disk, never a call's.
        self.encoder = encoder
        self.mix = mix
        self.files = list(files)
        self.threshold = threshold
        self.veto_below = veto_below
        self.narration_veto = narration_veto
        self._register: RegisterModel | None = None
        self.languages = {p.info.language for p in packs}
        #: the customer-signal packs' categories (complaints, risk cues), not agent-side claims
        self._signal_categories = frozenset(rule.category for pack in packs if pack.info.kind == "signal"
                                            for rule in pack.rules)
        #: per violation category, the rule (and pack) whose regulation and suggestion a finding cites
        #: (the corpus's category names of CATEGORY_ALIASES included, mapped to their packs' rule)
        self.reference = {}
        for pack in packs:
            for rule in pack.rules:
                if rule.kind == "utterance" and rule.enabled:
                    self.reference.setdefault((rule.language, rule.category), (rule, pack))
        for (language, category), ref in list(self.reference.items()):
            for corpus_name, pack_name in CATEGORY_ALIASES.items():
                if category == pack_name:
                    self.reference.setdefault((language, corpus_name), ref)
        #: per language, the phrases of the mandatory disclosures' warning elements (the absence
        #: rules' required elements marked `warning`), normalised: an agent saying one, unnegated,
        #: is warning (see _discloses)
        self._disclosures: dict[str, re.Pattern] = {}
        phrases: dict[str, set] = {}
        for pack in packs:
            for rule in pack.rules:
                if rule.kind == "absence" and rule.enabled and rule.absence is not None:
                    for variant in rule.absence.variants:
                        for element in variant.required:
                            if element.warning:
                                phrases.setdefault(rule.language, set()).update(
                                    n for ph in element.phrases if (n := normalize(ph).lower()))
        for lang, found in phrases.items():
            self._disclosures[lang] = _any_of(found)
        #: per language, the packs' RELIEF lexicon, normalised: a customer thanking staff for stopping
        #: a scam ("多亏了你们，要不是你们拦住我…") reads like a risk cue or a complaint, and is neither
        #: (the rules carry it in their `none` lists; see _relieved)
        self._relief: dict[str, tuple[str, ...]] = {lang: tuple(sorted(w)) for lang, w in _lexicon(packs, "RELIEF").items() if w}
        #: per language, the packs' PURCHASE (purchase steps) and PERSONAL_DATA lexicons (see _purchase_step)
        self._purchase = {lang: tuple(sorted(w)) for lang, w in _lexicon(packs, "PURCHASE").items() if w}
        self._personal = {lang: _any_of(w) for lang, w in _lexicon(packs, "PERSONAL_DATA").items() if w}
        self._model: SimilarityModel | None = None
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str], float] = {}
        self._embeddings: dict = {}  # text -> embedding, from prepare() until probability() reads it
        #: texts left out of training (bench/similarity_cv.py holds each batch out in turn)
        self.held_out: frozenset[str] = frozenset()

    def training_samples(self) -> list[Sample]:
        """The labelled rows the model learns from: the packs' examples and the corpus files, in the
        packs' languages, less the held-out texts."""
        return [s for s in training_set(self.packs, self.files)
                if (s.language or "zh") in self.languages and s.text not in self.held_out]

    def register_rows(self) -> list[Sample]:
        """The register model's rows: the corpus files alone (the rules' examples are written as
        speech whatever their scope), in the packs' languages, less the held-out texts."""
        return [s for s in read_corpus(self.files)
                if (s.language or "zh") in self.languages and s.text not in self.held_out]

    @property
    def model(self) -> SimilarityModel:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    samples = self.training_samples()
                    self._model = SimilarityModel(samples, encoder=self.encoder, mix=self.mix)
                    if self.encoder is not None and hasattr(self.encoder, "save"):
                        self.encoder.save()
                    log.info("similarity layer trained on %d labelled utterances%s", len(samples),
                             f" (with the {self.encoder.name} encoder)" if self.encoder is not None else "")
        return self._model

    @property
    def register(self) -> RegisterModel:
        """The narration-vs-speech model, trained on first use (register_rows)."""
        if self._register is None:
            with self._lock:
                if self._register is None:
                    self._register = RegisterModel(self.register_rows())
        return self._register

    def probability(self, utt) -> float:
        key = (utt.text, utt.role or "unknown")
        p = self._cache.get(key)
        if p is None:
            if len(self._cache) > 20000:  # the live path re-reads a call's utterances after each new one
                self._cache.clear()
            p = self._cache[key] = self.model.probability(*key, self._embeddings.pop(utt.text, None))
        return p

    def prepare(self, utts) -> None:
        """Embed the utterances `review` will score in one batch (a sentence encoder is several times
        faster per sentence on a batch than one by one); a no-op without an encoder."""
        if self.encoder is None or not self.model.mix:
            return
        texts = list(dict.fromkeys(u.text for u in utts if (u.text, u.role or "unknown") not in self._cache
                                   and self._scored(u)))
        if len(texts) < 2:
            return
        if len(self._embeddings) > 5000:
            self._embeddings.clear()
        self._embeddings.update(zip(texts, self.encoder.encode(texts, keep=False)))

    def review(self, utt, hits: list, *, index: int | None = None, analyzed=None, engine=None) -> list:
        """The findings for one utterance: the rules' hits unless the utterance reads as compliant
        (p < veto_below), else a similarity finding when p >= threshold.

        Rule hits on an utterance of unknown speaker that does not read like a violation (p <
        threshold) are dropped when it reads as written narration (RegisterModel.narration >=
        narration_veto): a report of a violation or a public warning ("客户经理拍胸脯保证只赚不赔",
        "任何索要验证码的都是骗子", "Real banks never ask you to share a one-time code"), not one.
        The rules read role unknown as a possible agent or customer; on the real batches nearly all
        such hits were reportage, while call speech reads as speech whoever says it. With the
        register model off (narration_veto 0), customer signals on such utterances are dropped and
        agent-rule hits kept. A customer-side finding on a question needs p >= QUESTION_SIGNAL_P."""
        if not self._scored(utt):
            return hits
        p = self.probability(utt)
        if hits:
            if p < self.veto_below:
                return []
            if p < self.threshold and (utt.role or "unknown") == "unknown":
                if not self.narration_veto:  # no register model: signals, the likeliest reportage, go
                    return [h for h in hits if h.kind != "signal"]
                if self.register.narration(utt.text) >= self.narration_veto:
                    log.debug("rule hits on %r dropped: speaker unknown, reads as narration", utt.text)
                    return []
            return hits
        if p < self.threshold:
            return hits
        v = self.finding(utt, p)
        if v is None:
            return hits
        if v.kind == "signal" and p < QUESTION_SIGNAL_P and ends_as_question(utt.text):
            log.debug("similarity signal on the customer's question %r (p=%.2f) not raised", utt.text, p)
            return hits
        if v.kind == "signal":
            why = self._relieved(utt) or self._quotes_a_claim(utt, engine)
        else:
            why = self._suppressed(v.category, analyzed, engine) or self._discloses(utt)
            if not why and v.category == "pii_request":
                why = self._purchase_step(utt)
        if why:
            log.debug("similarity finding on %r suppressed: %s", utt.text, why)
            return hits
        if index is not None and not v.utterance_index:
            v.utterance_index = index
        return [v]

    def _scored(self, utt) -> bool:
        """Whether review() scores the utterance: a language of the packs, and enough content."""
        return bool(utt.text) and (utt.language or "zh")[:2] in self.languages and \
            not _too_short(strip_fillers(normalize(utt.text)))

    def _suppressed(self, category: str, analyzed=None, engine=None) -> str | None:
        """The engine's cues where the rules' literals sit (`analyzed`: the engine's analysis), for
        an agent-side finding: a question anywhere a literal sits (asking is not promising; not for
        ASKING_CATEGORIES, where the question is the act),
        negation, hearsay or meta talk at a phrase that claims the finding's own category
        (保本 for guarantee_of_principal: "保本理财现在已经没有了"), and negation at a phrase that
        claims another category (收益稳定不了 denies 收益稳定, a guaranteed_return phrase, whatever
        category the classifier gives the finding; the sentence encoder reads 收益稳定不了 like
        收益稳定: leave-one-batch-out over 61 batches, 2 false alarms fewer, 1 true finding lost).
        The layer's features already mark negation; asking the cues at every literal ('和', 'my',
        '返还', which claim nothing) besides dropped, on the real batches (leave-one-batch-out), 12
        true findings for 5 false ones, mostly a denied loss that is itself the promise ("never had
        a losing trade", "一分钱都不会损失")."""
        from . import cues

        if analyzed is None:
            return None
        claims = engine.phrase_categories if engine is not None else None
        asked = () if category in ASKING_CATEGORIES else (cues.question,)
        own = asked + (cues.negation, cues.hearsay, cues.meta)
        other = asked + (cues.negation,)

        def checks_for(lid: int) -> tuple:
            if claims is not None and category in claims[lid]:
                return own
            return other if claims is not None and claims[lid] else asked

        return _cue_at_literals(analyzed, checks_for)

    def _relieved(self, utt) -> str | None:
        """The relief the customer voices, if any (the RELIEF lexicon): thanks for a scam stopped or
        a loss avoided is not a risk cue or a complaint. Out of fold over 81 batches it dropped 6 of
        the layer's false customer signals for 1 true one ("幸亏你们来了，电话那边催得紧…")."""
        words = self._relief.get((utt.language or "zh")[:2])
        if not words:
            return None
        norm = normalize(utt.text or "").lower()
        for w in words:
            if w in norm:
                return f"relief ('{w}')"
        return None

    def _quotes_a_claim(self, utt, engine) -> str | None:
        """A customer quoting a seller's claim ("说是跟存钱一样": hearsay or meta talk at a phrase that
        claims an agent-side violation, the utterance read as agent speech) is quoting, not raising a
        signal; the synthetic calls' ground truth marks that line must-not-flag. Any other report
        stands ("他们说我名下的账户被冻结了", "a man who said he was from my bank"): reporting what a
        caller or seller said is how a customer voices a risk or a complaint. Suppressing signals at
        every hearsay and meta cue, as before, lost 67 true signals for 2 false ones over the 61 real
        batches held out in turn; this narrower check keeps 57 of the 67."""
        from dataclasses import replace

        from . import cues

        if engine is None:
            return None
        claims = engine.phrase_categories
        quoting = (cues.hearsay, cues.meta)
        why = _cue_at_literals(engine.analyze(replace(utt, role="agent")),
                               lambda lid: quoting if claims[lid] - self._signal_categories else ())
        return f"quotes a seller's claim ({why})" if why else None

    def _purchase_step(self, utt) -> str | None:
        """The purchase step the agent talks the customer through, when the utterance names no
        personal data (PERSONAL_DATA) or only says to bring it in person: "您在手机银行上点确认就可以了"
        reads much like a scammer's "confirm it in your app", but hands nothing over. End to end, the
        layer read such a step as a PII request on three of the eight synthetic calls (dev05, dev06,
        dev08); out of fold over 160 batches no PII finding was a purchase step naming no data."""
        language = (utt.language or "zh")[:2]
        steps = self._purchase.get(language)
        if not steps:
            return None
        norm = normalize(utt.text or "").lower()
        step = next((w for w in steps if w in norm), None)
        if step is None:
            return None
        personal = self._personal.get(language)
        if personal is not None and personal.search(norm) and not _IN_PERSON.search(norm):
            return None
        return f"a purchase step ('{step}') that asks for no personal data"

    def _discloses(self, utt) -> str | None:
        """The risk warning the utterance gives, if any ("you might get back less than you put in",
        "理财非存款"): a warning reads much like the claims it warns about, but an agent giving one is
        doing what the regulation asks, so no similarity finding is raised on it (a rule's hit on the
        same utterance still stands). A negated one is the claim itself (没有风险, "no risk of loss")."""
        from . import cues

        pattern = self._disclosures.get((utt.language or "zh")[:2])
        if pattern is None:
            return None
        norm = normalize(utt.text or "").lower()
        zh = not norm.isascii()
        for m in pattern.finditer(norm):
            if not cues.negation(norm, m.start(), m.end(), zh):
                return f"a mandatory disclosure ('{m.group(0)}')"
        return None

    def finding(self, utt, p: float):
        """A Violation for an utterance no rule matched but that scored >= threshold, or None when
        its category has no rule in the selected packs for that language."""
        from ..types import Violation

        language = (utt.language or "zh")[:2]
        score = self.model.score(utt.text, utt.role or "unknown", p)
        ref = self.reference.get((language, score.category))  # aliases resolved in __init__
        if ref is None:
            return None
        rule, pack = ref
        category = rule.category
        role = utt.role or "unknown"
        if rule.speaker != "any" and role in ("agent", "customer") and role != rule.speaker:
            return None
        closest = ""
        if score.nearest is not None:
            closest = f"; closest labelled violation: «{score.nearest.text[:80]}» ({score.nearest.source})"
        reg = rule.regulation
        return Violation(
            rule_id=f"SIM.{category}", title=f"Similar to: {rule.title}", category=category,
            severity=_one_below(rule.severity),
            start=utt.start, end=utt.end, speaker=utt.speaker, role=utt.role or "unknown",
            matched_text=utt.text, context=utt.text,
            reason=(f"no rule matched, but the utterance reads like labelled {score.category} violations "
                    f"(similarity layer p={p:.2f} >= {self.threshold:.2f}){closest}"),
            kind="signal" if pack.info.kind == "signal" else "utterance", utterance_index=utt.index,
            pack="similarity", regulation=f"{reg.document} {reg.article}".strip(), suggestion=rule.suggestion)
