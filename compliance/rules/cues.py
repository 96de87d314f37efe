"""Suppressors: negation scope, question detection and hearsay/quotation, for Chinese and English.

All functions work on normalized text (see text.normalize) and a match span [start, end).
Each returns the cue it found (for the explanation) or None.
"""

from __future__ import annotations

import re

from .text import clause_bounds

# ------------------------------------------------------------------ negation
NEG_WINDOW_ZH = 6
NEG_WORDS_EN = 5

# Single characters and words that negate what follows them in the same clause.
NEG_ZH = ("不", "没", "无", "非", "未", "别", "勿", "莫", "谁也", "难以", "禁止", "严禁", "杜绝", "拒绝", "防止",
          "避免", "谨防", "警惕", "切勿", "提防", "以免", "免得")
# Expressions that contain a negation character but do not negate the following claim.
PSEUDO_NEG_ZH = (
    "非常", "无论", "不管", "不论", "不仅", "不但", "不光", "不只", "不少", "不错", "不久", "不断",
    "不停", "要不", "不然", "差不多", "不用担心", "不要担心", "不必担心", "无需担心", "无须担心",
    "别担心", "不用怕", "别怕", "不要怕", "没问题", "没关系", "不要紧", "毫无疑问", "没得说",
    "只不过", "不过", "没想到", "不一样的是", "无忧", "不定期", "没错", "不多", "不见得差",
    "不用犹豫", "别犹豫", "不要犹豫", "不会错", "错不了", "没说的", "不好意思", "无非",
    "不客气", "别客气", "不就是", "不就", "不也是", "不都是",
    "未来", "别的", "别人", "别家", "别处", "无敌", "无与伦比", "不得了", "了不起", "不可思议", "非凡", "无数",
    "无限", "无所谓", "未曾想",
    # a condition of a refund, not a denial of it (不满意随时可退)
    "不满意", "不喜欢",
    # the customer's money falling short is a condition, not a denial of what follows (钱不够可以贷款买)
    "钱不够", "资金不够", "不够的话",
    # an A-not-A question asks, it does not deny (我是不是遇到骗子了? 会不会亏?)
    "是不是", "会不会", "能不能", "有没有", "可不可以", "对不对", "要不要", "算不算",
    # urging not to miss out urges, it denies nothing (不要错过末班车)
    "不要错过", "别错过", "不能错过", "不容错过", "莫错过", "不要错失", "别错失",
)
# Directly after the match (same clause): the claim is denied or called false.
POST_NEG_ZH = ("已经退出", "退出市场", "不再发行", "已经停了", "不了", "不下来", "已经没有", "现在没有了", "早就没有了", "没有了", "已经不存在", "已经取消", "不再有",
               "是以前的", "以前的产品", "以前才有", "是不可能", "不可能的", "是不存在", "不存在的", "是没有的", "是不会有的", "做不到",
               "是骗人", "是骗子", "是假的", "都是假的", "是误导", "的说法不对", "这种说法",
               "是错误的", "是违规", "是不对的", "不对", "不靠谱", "不可信", "千万不要", "不要点",
               "别点", "不要信", "别信", "的话术", "之类的话", "这样的话", "那是骗", "是不能",
               # dismissed as talk or as a thing of the past (稳赚不赔这种话千万别信; 刚性兑付早就打破了)
               "这种话", "这类话", "这些话", "千万别信", "别相信", "不要相信", "不能信", "早就打破", "已经打破", "已被打破",
               "被打破")

# A following clause that rejects what was just said (很多人把保险当成存钱，这是不对的).
DENIAL_NEXT_ZH = ("这是不对的", "这是错的", "这是误导", "这种说法", "这个说法", "是错误的", "这是不对",
                  "那是不对的", "那是错的", "不是这样的", "其实不是", "这不对", "那是骗人的", "这是骗人的",
                  "这是违规的", "那是违规的", "都是骗人的", "是不可能的", "那是不可能的", "这是不可能的")

NEG_EN = {"not", "no", "never", "cannot", "can't", "cant", "don't", "dont", "doesn't", "doesnt",
          "isn't", "isnt", "aren't", "arent", "won't", "wont", "wasn't", "nothing", "nobody",
          "none", "neither", "nor", "without", "impossible", "unable", "shouldn't", "couldn't",
          "wouldn't", "didn't", "haven't", "hasn't", "ain't", "noone"}
PSEUDO_NEG_EN = ("not only", "no doubt", "no matter", "never mind", "no wonder", "no brainer",
                 "no-brainer", "don't worry", "dont worry", "no worries", "no problem", "not bad", "no wonder", "don't miss", "can't miss",
                 "cannot miss", "don't wait", "no question", "not to worry", "won't last",
                 "no need to worry")
POST_NEG_EN = ("is a myth", "doesn't exist", "does not exist", "is not true", "isn't true",
               "is false", "is a lie", "is a red flag", "are a red flag", "is a scam",
               "are a scam", "is misleading", "is not something", "isn't something",
               "is not a thing", "that's not", "that is not", "no such thing",
               "are misleading", "is a warning sign", "do not exist", "don't exist")
#: the next clause denies what the last one named: "Guaranteed returns, that's not something we offer"
DENIAL_NEXT_EN = ("that's not", "that is not", "that isn't", "those are not", "those aren't", "which is not",
                  "which isn't", "we don't offer", "we do not offer", "we can't promise", "we cannot promise",
                  "we can't guarantee", "we cannot guarantee", "there is no such", "there's no such")

_WORD = re.compile(r"[a-z][a-z']*")
_CONJ_EN = re.compile(r"\b(?:because|cause|'cause|since|as|so|but|and|although|though|while|whereas)\b")


def _alt(words, prefix: str = "") -> re.Pattern:
    """One compiled alternation (longest first) for a cue list: a single C-level search."""
    return re.compile(prefix + "(?:" + "|".join(re.escape(w) for w in sorted(set(words), key=len, reverse=True)) + ")")


_PSEUDO_ZH = _alt(PSEUDO_NEG_ZH)
_NEG_ZH = _alt(NEG_ZH)
_POST_START_ZH = _alt(POST_NEG_ZH, "^")
_POST_ANY_ZH = _alt([c for c in POST_NEG_ZH if len(c) >= 3])
_DENIAL_ZH = _alt(DENIAL_NEXT_ZH, "^")
_PSEUDO_EN = _alt(PSEUDO_NEG_EN)
_POST_EN = _alt(POST_NEG_EN)
_DENIAL_EN = _alt(DENIAL_NEXT_EN, r"^\s*")
_NOT_ALL_EN = re.compile(r"\bnot (?:all|just|only|bad|a problem|an issue)\b")


# Disclaiming verbs that deny everything after them in their clause, however far: "预期收益不代表您一定能获得的
# 保证收益" (the six-character window would not reach back to 不代表).
_DISCLAIM_ZH = re.compile("不代表|不等于|不意味着|不构成|不能理解为|不应视为|不能视为|不视为|不作为|"
                          # a warning against what follows (请勿使用有疑虑之保证获利APP)
                          "请勿|切勿|谨防|警惕|提防|严禁|不要轻信|不要相信|勿信|"
                          # no product is so (没有哪个产品是零风险的), and what the speaker cannot say
                          # (我不能跟您说这个保收益)
                          "没有哪|哪有什么|世上没有|天下没有|"
                          # for no reason, in no way (我行不会以任何理由向客户索要验证码)
                          "(?:不会|不得|绝不|决不|从不|从来不|不可能)(?:以|通过|用)任何|"
                          "(?:不能|不可以|不敢|不会|没法|无法)(?:跟|和|给|向|对)?(?:您|你)?(?:说|讲|承诺|打包票)")

# "不X就Y": the 不 belongs to the condition, not to what follows 就 (不赔钱就天天举报).
_COND_NEG_ZH = re.compile(r"不[^,.?!不]{1,4}就")


def _mask(window: str, pseudo: re.Pattern) -> str:
    window = pseudo.sub(lambda m: "_" * len(m.group(0)), window)
    if pseudo is _PSEUDO_ZH and "就" in window:
        window = _COND_NEG_ZH.sub(lambda m: "_" * len(m.group(0)), window)
    return window


#: the hit's clause as the last item of a disjunction: "or ", "assured or ", "nor "
_LIST_TAIL_EN = re.compile(r"\s*(?:[a-z][a-z'-]*\s+)?(?:or|nor)\s+")
#: an earlier item of the list: one or two words between commas
_LIST_ITEM_EN = re.compile(r"\s*[a-z][a-z'-]*(?:\s+[a-z][a-z'-]*)?\s*")


def _list_head_en(text: str, cs: int, start: int) -> tuple[int, int] | None:
    """The clause that opens a comma-separated disjunction ending at the hit, where its negation
    sits ("does not offer fixed, assured, or risk-free returns"; "cannot promise high, stable, or
    guaranteed returns"): the hit's clause must hold only "[item] or" before the hit and each
    clause between only an item of one or two words. A list without "or" is not read this way:
    "No hidden fees, guaranteed returns" lists two selling points, and the first one's "no" does
    not deny the second."""
    if cs == 0 or text[cs - 1] != "," or not _LIST_TAIL_EN.fullmatch(text, cs, start):
        return None
    pos = cs - 1  # the comma that opens the hit's clause
    for _ in range(4):
        prev = clause_bounds(text, pos, pos)[0]  # the clause that this comma closes
        if _LIST_ITEM_EN.fullmatch(text, prev, pos) and prev > 0 and text[prev - 1] == ",":
            pos = prev - 1
            continue
        return prev, pos
    return None


#: "if you don't give us the code, …": the negation states a condition, the demand stands
_CONDITION_EN = {"if", "unless"}
_SUBJECT_EN = {"you", "we", "i", "they", "he", "she", "it"}


def _negation_word_en(window: str) -> str | None:
    """A negation word among the last NEG_WORDS_EN words of `window` (pseudo-negations masked),
    not one that opens a condition ("if you don't …")."""
    words = _WORD.findall(window)
    n = len(words)
    for i in range(max(n - NEG_WORDS_EN, 0), n):
        w = words[i]
        if w in NEG_EN or w.endswith("n't"):
            if i and (words[i - 1] in _CONDITION_EN or (
                    i > 1 and words[i - 1] in _SUBJECT_EN and words[i - 2] in _CONDITION_EN)):
                continue
            return w
    return None


def negation(text: str, start: int, end: int, zh: bool, cb=None) -> str | None:
    cs, ce = cb or clause_bounds(text, start, end)
    if zh:
        window = text[max(cs, start - NEG_WINDOW_ZH):start]
        # masking only blanks characters out, so a window without a negation word needs none
        if window and _NEG_ZH.search(window):
            window = _mask(window, _PSEUDO_ZH)
            m = _NEG_ZH.search(window)
            if m:
                return m.group(0)
        if start - cs > NEG_WINDOW_ZH:
            # anywhere before the hit in its clause, including across the window's edge
            m = _DISCLAIM_ZH.search(text, cs, start)
            if m:
                return m.group(0)
        tail = text[end:min(ce, end + 10)]
        if tail:
            m = _POST_START_ZH.search(tail) or _POST_ANY_ZH.search(tail)
            if m:
                return m.group(0)
        if ce < len(text) and text[ce] == ",":
            m = _DENIAL_ZH.search(text[ce + 1:ce + 11])
            if m:
                return m.group(0)
        return None
    pre = _mask(text[max(cs, start - 40):start], _PSEUDO_EN)
    # "there's no such thing as an investment that has no risk": anywhere before it in the clause
    if "no such thing" in text[cs:start] or "there is no" in pre or "there's no" in pre:
        return "no such thing"
    w = _negation_word_en(pre)
    if w:
        return w
    head = _list_head_en(text, cs, start)
    if head is not None:
        w = _negation_word_en(_mask(text[head[0]:head[1]], _PSEUDO_EN))
        if w:
            return w
    tail = text[end:min(ce, end + 30)]
    # a denial after the claim counts only in the claim's own clause: "a return, because there's no
    # such thing as a dry hole" gives a reason, it does not deny the return
    cut = _CONJ_EN.search(tail)
    m = _POST_EN.search(tail[:cut.start()] if cut else tail)
    if m:
        return m.group(0)
    if ce < len(text) and text[ce] == ",":
        m = _DENIAL_EN.search(_mask(_NOT_ALL_EN.sub("_", text[ce + 1:ce + 30]), _PSEUDO_EN))
        if m:
            return m.group(0).strip()
    return None


# ------------------------------------------------------------------ questions
_ANOTA_ZH = re.compile(r"(是不是|有没有|能不能|会不会|可不可以|可以不可以|对不对|是否|行不行|好不好|"
                       r"靠不靠谱|安不安全|保不保|亏不亏|要不要|用不用|算不算|能否|真的吗|"
                       r"吗$|么$|嘛$|呢$|吧\?$)")
_RHETORICAL_ZH = ("不就是", "难道", "怎么会", "怎么可能", "哪有", "哪会", "哪里会", "何必", "还能亏", "还怕")
_Q_START_EN = re.compile(r"^\s*(is|are|was|were|do|does|did|can|could|will|would|should|shall|"
                         r"may|might|has|have|isn't|aren't|doesn't|don't|won't|how|what|why|"
                         r"when|where|which|who)\b")
_RHETORICAL_EN = ("what could go wrong", "why wouldn't you", "who wouldn't", "why would you not",
                  "what are you waiting for", "why not",
                  # "is there any other investment that guarantees you 8%?" claims this one does
                  "is there any other", "is there anything else", "where else can you", "where else will you",
                  "where else could you", "what other investment", "can you name another", "can you find another")


#: an offer put as a question pitches its claim ("how about a return of 8% with no downside risk?",
#: "have you got a minute to learn how to triple your money?"): read over the whole sentence, since
#: the claim often sits in a later clause than the opener
_PITCH_EN = ("how about a", "how about an", "how about getting", "how about earning", "how about making",
             "would you be interested in", "would you like to learn", "would you like to hear how",
             "would you like to know how", "want to learn how", "want to know how", "want to hear how",
             "minute to learn", "interested in learning how", "interested in hearing how", "what if i told you",
             "would you like to have an investment", "would you like an investment", "would you prefer an investment",
             "let's say that i could", "let's say i could", "what if i could",
             "what if i said", "how would you like to", "how would you feel about earning")

_RHET_ZH = _alt(_RHETORICAL_ZH)
_RHET_EN = _alt(_RHETORICAL_EN)
_PITCH_EN_RE = _alt(_PITCH_EN)


def question(text: str, start: int, end: int, zh: bool, cb=None) -> str | None:
    cs, ce = cb or clause_bounds(text, start, end)
    clause = text[cs:ce].strip()
    endp = text[ce] if ce < len(text) else ""
    if zh:
        if _RHET_ZH.search(clause):
            return None
        if endp == "?":
            return "?"
        m = _ANOTA_ZH.search(clause)
        if m and not (m.group(0) in ("呢", "吧?") and endp != "?"):
            return m.group(0)
        return None
    if _RHET_EN.search(clause):
        return None
    ss, se = _sentence(text, start, end)
    if _PITCH_EN_RE.search(text, ss, se):
        return None
    if endp == "?":
        return "?"
    # A yes/no or wh- question often loses its '?' in ASR output.
    sent_start = ss
    if _Q_START_EN.match(text[sent_start:ce]) and not endp:
        return "interrogative word order"
    return None


# ------------------------------------------------------------------ hearsay / quotation / warnings
# Historical narration, only within the same clause (以前的产品都保本，这个也保本 still counts).
HISTORY_ZH = ("以前的", "之前买的", "过去的", "原来的", "当年", "曾经")
HEARSAY_ZH = ("变相承诺", "违规承诺", "向投资者", "向消费者", "误导投资者", "误导消费者", "诱导投资者", "很多人", "有些人", "有的人", "不少人", "一些人", "听说", "据说", "朋友说", "别人说", "人家说", "有人说", "他说", "她说", "他们说", "你们说",
              "你们上次说", "你们之前说", "说是", "宣称", "号称", "声称", "所谓", "警惕", "谨防", "当心",
              "小心", "提防", "骗子", "不法分子", "谎称", "广告说", "网上说", "以为", "误以为", "误认为",
              "说什么", "打着", "以…为名", "冒充", "自称", "不要相信", "别相信", "不得宣传", "不得承诺",
              "不能说", "不能讲", "不得说", "不能承诺", "不可以说", "不允许", "禁止", "严禁", "承诺什么",
              "说过", "告诉我", "跟我说", "对我说", "推销员说", "业务员说", "经理说", "销售说",
              "那个人说", "之前说", "上次说")
HEARSAY_EN = ("investors were", "customers were", "clients were", "victims were", "people were", "allegedly",
              "told investors", "told customers", "said", "says", "told me", "told us", "claim", "claimed", "claims", "so-called",
              "beware", "wary", "suspicious", "watch out", "if someone", "if anyone", "anyone who",
              "anyone promising", "scammer", "fraudster", "red flag", "never trust", "don't believe",
              "do not believe", "promising", "promises of", "pitch", "advert", "he promised",
              "she promised", "they promised", "was promised", "were promised", "be careful")
HEARSAY_WINDOW_ZH = 14


def _sentence(text: str, start: int, end: int) -> tuple[int, int]:
    return clause_bounds(text, start, end, marks=".?!")


# Talk about phrases rather than use of them: regulators' and trainers' lists of banned wording.
META_ZH = ("违规表述", "属于违规", "等话术", "等表述", "等误导", "等字样", "等用语", "等宣传", "误导宣传",
           "虚假宣传", "这类话术", "这种话术", "等夸大", "等说法", "的话术", "属于误导", "是违规的",
           "不得使用", "禁止使用", "的违规")
# Regulators' findings: "...存在片面、夸大宣传...的情况".
META_AFTER_ZH = ("的情况", "的行为", "等行为", "等问题", "的问题", "等情形", "的情形")
META_EN = ("red flag", "is prohibited", "are prohibited", "such claims", "such statements",
           "is a warning sign", "are warning signs")
# Advice to the listener ("if you ..., file a complaint") is not the speaker's own intent.
ADVICE_ZH = ("如果您", "如您", "如有", "您可以拨打", "可以拨打", "可向", "可以向", "请拨打", "请您拨打", "不要被", "请务必",
             "务必", "提高警惕", "以免", "谨防", "警惕", "切勿", "千万不要")
ADVICE_EN = ("if you", "you can", "you may", "you should", "you have the right", "you could", "someone who",
             "anyone who", "never ", "no legitimate", "do not ", "don't ")


_META_ZH = _alt(META_ZH)
_META_EN = _alt(META_EN)
_META_AFTER_ZH = _alt(META_AFTER_ZH)
_ADVICE_ZH = _alt(ADVICE_ZH)
_ADVICE_EN = _alt(ADVICE_EN)
_IMPERATIVE_EN = frozenset({"do not ", "don't "})


def meta(text: str, start: int, end: int, zh: bool, advice: bool = False) -> str | None:
    """Quoted, listed or advised: the phrase is mentioned, not used (applies to every rule)."""
    ss, se = _sentence(text, start, end)
    if text.count('"', ss, start) % 2 == 1 and '"' in text[end:se]:
        return "quoted"
    if not zh and "'" in text[max(ss, start - 1):start] and "'" in text[end:end + 1]:
        return "quoted"
    pat = _META_ZH if zh else _META_EN
    m = pat.search(text, end, se) or pat.search(text, ss, start)
    if m:
        return m.group(0)
    if zh:
        m = _META_AFTER_ZH.search(text, end, se)
        if m:
            return m.group(0)
    if not advice:
        return None
    if zh:
        m = _ADVICE_ZH.search(text, ss, start)
        return m.group(0) if m else None
    for m in _ADVICE_EN.finditer(text, ss, start):
        # "don't" / "do not" advise only as an imperative ("Don't share the code…"), not in the
        # speaker's own "I don't want to learn about annuities, I just want my money back"
        if m.group(0) not in _IMPERATIVE_EN or text[ss:m.start()].strip(" ,") in ("", "please", "so", "and", "but"):
            return m.group(0)
    return None


_HEARSAY_ZH = _alt(HEARSAY_ZH)
_HISTORY_ZH = _alt(HISTORY_ZH)
_HEARSAY_EN = _alt(HEARSAY_EN)


#: the customer's own word taken up to answer it: "您说的保本，那是存款"
_ECHO_ZH = re.compile("(?:您|你)(?:说|讲|问|提|提到|指)的(?:这个|那个|这种|那种)?$")


def hearsay(text: str, start: int, end: int, zh: bool, cb=None) -> str | None:
    cs, ce = cb or clause_bounds(text, start, end)
    if zh:
        m = _ECHO_ZH.search(text, max(cs, start - 8), start)
        if m:
            return m.group(0)
        # reporting verbs may sit in the previous clause of the same sentence (他说，这个保本)
        s0 = cs
        if s0 > 0 and text[s0 - 1] == "," and start - s0 < 8:
            s0 = max(0, s0 - 1)
            while s0 > 0 and text[s0 - 1] not in ".?!,":
                s0 -= 1
        m = _HEARSAY_ZH.search(text, max(s0, start - HEARSAY_WINDOW_ZH), start)
        if m:
            return m.group(0)
        m = _HISTORY_ZH.search(text, max(cs, start - HEARSAY_WINDOW_ZH), start)
        return m.group(0) if m else None
    m = _HEARSAY_EN.search(text, max(cs, start - 60), start)
    return m.group(0) if m else None
