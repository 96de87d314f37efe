"""Rule-based compliance detection: detect(utterances, packs) -> violations.

    packs = load_packs()                      # every YAML under the repo's rules/
    packs = load_packs(names=["zh-sales"])    # by pack id, or languages=["en"]
    violations = detect(utterances, packs)
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from .rules.calllevel import may_self_answer, run_call_rules, self_answers
from .rules.engine import CallContext, Engine, to_violation
from .rules.loader import Pack, load_pack_files
from .types import Utterance, Violation

_ENGINES: dict[tuple, Engine] = {}


def load_packs(paths=None, names: Iterable[str] | None = None,
               languages: Iterable[str] | None = None, similarity: bool | None = None) -> Engine:
    """Load, validate and compile rule packs. `paths`: files or folders (default: rules/);
    `names`: keep only these pack ids; `languages`: keep only packs of these languages;
    `similarity`: add the similarity layer (rules/similarity.py; default: the `similarity` setting).
    Returns a compiled Engine (cached per selection); it is what detect() takes."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    key = (tuple(str(p) for p in paths) if paths else None,
           tuple(sorted(names)) if names else None, tuple(sorted(languages)) if languages else None,
           similarity)
    if key in _ENGINES:
        return _ENGINES[key]
    packs = load_pack_files(paths)
    if names:
        want = set(names)
        unknown = want - {p.id for p in packs}
        if unknown:
            from .errors import RuleError

            raise RuleError(f"unknown rule pack(s): {', '.join(sorted(unknown))}; "
                            f"available: {', '.join(p.id for p in packs)}")
        packs = [p for p in packs if p.id in want]
    if languages:
        langs = set(languages)
        packs = [p for p in packs if p.info.language in langs]
    eng = Engine(packs)
    eng.similarity = _similarity(packs, paths, similarity)
    _ENGINES[key] = eng
    return eng


def _similarity(packs, paths, wanted: bool | None):
    """The similarity layer for packs loaded from a rules folder with a `corpus/` of labelled
    utterances (the default rules/ has one), unless switched off in the settings."""
    from .config import load_settings
    from .rules.loader import RULES_DIR
    from .rules.similarity import corpus_files

    settings = load_settings()
    if not (settings.similarity if wanted is None else wanted) or not packs:
        return None
    folders = [Path(p) for p in paths] if paths else [RULES_DIR]
    files = [f for d in folders if d.is_dir() for f in corpus_files(d)]
    if not files:
        return None
    return similarity_layer(packs, files, settings)


def similarity_layer(packs, files, settings=None):
    """A similarity layer over `files` (labelled corpus TSVs) as the settings configure it."""
    from .config import load_settings
    from .rules.encoder import encoder_for
    from .rules.similarity import SimilarityLayer

    settings = settings or load_settings()
    return SimilarityLayer(packs, files, threshold=settings.similarity_threshold,
                           veto_below=settings.similarity_veto,
                           narration_veto=settings.similarity_narration,
                           encoder=encoder_for(settings.similarity_encoder, settings.cache_dir),
                           mix=settings.similarity_encoder_mix)


def _engine(packs) -> Engine:
    if packs is None:
        return load_packs()
    if isinstance(packs, Engine):
        return packs
    if isinstance(packs, (list, tuple)) and all(isinstance(p, Pack) for p in packs):
        return Engine(list(packs))
    if isinstance(packs, (list, tuple)) and all(isinstance(p, str) for p in packs):
        return load_packs(names=packs)
    raise TypeError("packs must be an Engine from load_packs(), a list of Pack, or pack ids")


def detect(utterances: list[Utterance], packs=None, call_level: bool = True) -> list[Violation]:
    """Run the rules over one call's utterances (in time order). Utterance-level hits come with the
    matched words, their clause's times, context and the reason; with call_level=True the
    call-level checks (mandatory disclosures, ordering, windows) run too."""
    eng = _engine(packs)
    return violations_from(eng, [eng.analyze(u) for u in utterances], call_level=call_level)


def violations_from(eng, analyzed: list, *, call_level: bool = True) -> list[Violation]:
    """The findings for utterances already analysed by `eng` (in call order): utterance rules,
    then call-level checks. The live path calls this with analyses it caches per utterance."""
    out: list[Violation] = []
    ctx = None  # call-scope context of the agent turns so far, read only when a rule asks
    every = bool(eng.unfiltered)
    answers = getattr(eng, "answer_rule_ids", frozenset())
    similarity = getattr(eng, "similarity", None)
    if similarity is not None and len(analyzed) > 1:
        similarity.prepare([an.utt for an in analyzed])
    for i, an in enumerate(analyzed):
        hits: list[Violation] = []
        if an.live or every:
            if ctx is None:
                ctx = CallContext(eng, analyzed)
            ctx.upto = i
            u = an.utt
            for cr, m, reason in eng.match_utterance(an, ctx):
                v = to_violation(cr, u, an.norm, m, reason)
                if v.utterance_index == 0 and i:
                    v.utterance_index = i
                hits.append(v)
        if similarity is not None:
            hits = similarity.review(an.utt, hits, index=i, analyzed=an, engine=eng)
        if answers and may_self_answer(an.utt.text):
            said = self_answers(eng, an)
            for v in said:
                if not v.utterance_index:
                    v.utterance_index = i
            hits = _merged(hits, said)
        out.extend(hits)
    if call_level and analyzed:
        call = run_call_rules(eng, analyzed)
        out = _merged(out, [v for v in call if v.rule_id in answers]) + [v for v in call if v.rule_id not in answers]
    if len(out) > 1:
        out.sort(key=lambda v: (v.start, v.rule_id))
    return out


def _merged(out: list[Violation], answers: list[Violation]) -> list[Violation]:
    """`out` with the answer rules' findings added. An answer finding (a claim made by answering a
    question) is one claim with any other finding of its category on the same utterance: a rule's
    finding there stands and the answer's goes; a similarity finding gives way to the answer's,
    which says what was asked."""
    for v in answers:
        same = [x for x in out if x.utterance_index == v.utterance_index and x.category == v.category]
        if any(not x.rule_id.startswith("SIM.") for x in same):
            continue
        out = [x for x in out if x not in same]
        out.append(v)
    return out


def detect_text(text: str, role: str = "agent", language: str = "zh", packs=None,
                call_level: bool = False) -> list[Violation]:
    """Quick check of one piece of text as a single utterance."""
    u = Utterance(speaker=role, start=0.0, end=0.0, text=text, role=role, language=language)
    return detect([u], packs, call_level=call_level)
