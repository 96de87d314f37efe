"""Read rule-pack YAML files and validate them; malformed files raise RuleError naming the file,
the rule id and the field at fault."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ..errors import RuleError
from .schema import PackFile, PackInfo, Rule

class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # libyaml when available: 10x faster
    """Safe loader that rejects duplicate keys (YAML would silently keep the last one)."""


def _mapping(loader, node, deep=False):
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)
RULES_DIR = Path(__file__).resolve().parents[2] / "rules"


@dataclass
class Pack:
    info: PackInfo
    rules: list[Rule]
    path: Path
    lexicon: dict[str, list[str]] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.info.id


def _loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(root)"


def _fmt(path: Path, rule_id: str | None, err: ValidationError, prefix: tuple = ()) -> RuleError:
    first = err.errors()[0]
    loc = _loc(prefix + tuple(first.get("loc", ())))
    msg = first.get("msg", "invalid")
    if first.get("type") == "extra_forbidden":
        msg = "unknown field"
    more = len(err.errors()) - 1
    tail = f" (and {more} more problem{'s' if more > 1 else ''})" if more > 0 else ""
    who = f"rule {rule_id}" if rule_id else "pack"
    return RuleError(f"{path}: {who}: field '{loc}': {msg}{tail}")


def _expand(obj: Any, lexicon: dict[str, list[str]], path: Path, rule_id: str, where: str) -> Any:
    """Replace '@NAME' items of string lists with the lexicon's phrases."""
    if isinstance(obj, dict):
        return {k: _expand(v, lexicon, path, rule_id, f"{where}.{k}" if where else str(k))
                for k, v in obj.items()}
    if isinstance(obj, list):
        out: list = []
        for i, item in enumerate(obj):
            if isinstance(item, str) and item.startswith("@") and len(item) > 1:
                name = item[1:]
                if name not in lexicon:
                    raise RuleError(f"{path}: rule {rule_id}: field '{where}[{i}]': "
                                    f"unknown lexicon entry {item!r}")
                out.extend(lexicon[name])
            else:
                out.append(_expand(item, lexicon, path, rule_id, f"{where}[{i}]"))
        return out
    return obj


def load_pack_file(path: str | Path) -> Pack:
    path = Path(path)
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
    except FileNotFoundError:
        raise RuleError(f"{path}: rule file not found") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise RuleError(f"{path}:{where}: not valid YAML: {getattr(e, 'problem', None) or e}") from None
    if not isinstance(raw, dict):
        raise RuleError(f"{path}: pack: field '(root)': expected a mapping with 'pack' and 'rules'")
    rules_raw = raw.get("rules")
    # Validate the header first (everything but the rules), so the message points at it.
    header = {k: v for k, v in raw.items() if k != "rules"}
    try:
        PackFile.model_validate({**header, "rules": [_dummy_rule()]})
    except ValidationError as e:
        raise _fmt(path, None, e) from None
    if not isinstance(rules_raw, list) or not rules_raw:
        raise RuleError(f"{path}: pack: field 'rules': expected a non-empty list of rules")
    info = PackInfo.model_validate(raw["pack"])
    lexicon = {k: list(v) for k, v in (raw.get("lexicon") or {}).items()}
    rules: list[Rule] = []
    seen: set[str] = set()
    for i, r in enumerate(rules_raw):
        rid = r.get("id") if isinstance(r, dict) else None
        label = str(rid) if rid else f"#{i + 1} (no id)"
        if not isinstance(r, dict):
            raise RuleError(f"{path}: rule {label}: field 'rules[{i}]': expected a mapping")
        r = _expand(r, lexicon, path, label, "")
        r.setdefault("language", info.language)
        try:
            rule = Rule.model_validate(r)
        except ValidationError as e:
            raise _fmt(path, label, e) from None
        if rule.id in seen:
            raise RuleError(f"{path}: rule {rule.id}: field 'id': duplicate rule id")
        seen.add(rule.id)
        rules.append(rule)
    return Pack(info=info, rules=rules, path=path, lexicon=lexicon)


def _dummy_rule() -> dict:
    return {"id": "x", "title": "xx", "category": "x", "severity": "low", "language": "zh",
            "speaker": "any", "regulation": {"document": "xx", "article": "x"},
            "description": "xxxxx", "suggestion": "xx", "match": {"phrases": ["x"]},
            "examples": {"violation": ["a", "b", "c"], "compliant": ["a", "b", "c"]}}


def pack_files(paths=None) -> list[Path]:
    """YAML files for `paths` (files or directories); default: every YAML under the repo's rules/."""
    if paths is None:
        paths = [RULES_DIR]
    if isinstance(paths, (str, Path)):
        paths = [paths]
    out: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            out.extend(sorted(list(p.glob("*.yaml")) + list(p.glob("*.yml"))))
        else:
            out.append(p)
    return out


def load_pack_files(paths=None) -> list[Pack]:
    packs = [load_pack_file(p) for p in pack_files(paths)]
    ids: dict[str, Path] = {}
    rule_ids: dict[str, Path] = {}
    for pk in packs:
        if pk.id in ids:
            raise RuleError(f"{pk.path}: pack: field 'pack.id': duplicate pack id {pk.id!r} "
                            f"(also in {ids[pk.id]})")
        ids[pk.id] = pk.path
        for r in pk.rules:
            if r.id in rule_ids:
                raise RuleError(f"{pk.path}: rule {r.id}: field 'id': duplicate rule id "
                                f"(also in {rule_ids[r.id]})")
            rule_ids[r.id] = pk.path
    return packs
