"""Malformed rule files are rejected with the file path, the rule id and the field at fault."""

from pathlib import Path

import pytest
import yaml

from compliance.errors import RuleError
from compliance.rules.loader import load_pack_file, load_pack_files

GOOD_RULE = {
    "id": "T-001", "title": "承诺保本", "category": "guarantee_of_principal", "severity": "high",
    "speaker": "agent", "regulation": {"document": "资管新规", "article": "第二条"},
    "description": "坐席承诺保本。", "suggestion": "说明不保本。",
    "match": {"phrases": ["保本"]},
    "examples": {"violation": ["保本的", "这个保本", "绝对保本"],
                 "compliant": ["不保本", "保本吗？", "并非保本"]},
}


def _write(tmp_path: Path, doc, name="pack.yaml") -> Path:
    p = tmp_path / name
    p.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return p


def _pack(**rule_changes):
    rule = {**GOOD_RULE, **rule_changes}
    return {"pack": {"id": "t", "version": "1.0.0", "language": "zh", "title": "test"}, "rules": [rule]}


def test_good_pack_loads(tmp_path):
    pk = load_pack_file(_write(tmp_path, _pack()))
    assert pk.id == "t" and pk.rules[0].id == "T-001"
    assert pk.rules[0].language == "zh"  # inherited from the pack


def test_unknown_rule_field_names_file_rule_and_field(tmp_path):
    p = _write(tmp_path, _pack(colour="red"))
    with pytest.raises(RuleError) as ei:
        load_pack_file(p)
    msg = str(ei.value)
    assert str(p) in msg and "T-001" in msg and "colour" in msg and "unknown field" in msg


def test_unknown_nested_field(tmp_path):
    p = _write(tmp_path, _pack(match={"phrases": ["保本"], "fuzzy": True}))
    with pytest.raises(RuleError, match=r"T-001.*match\.fuzzy.*unknown field"):
        load_pack_file(p)


def test_missing_required_field(tmp_path):
    rule = dict(GOOD_RULE)
    del rule["regulation"]
    doc = {"pack": {"id": "t", "version": "1.0.0", "language": "zh", "title": "test"}, "rules": [rule]}
    with pytest.raises(RuleError, match=r"rule T-001: field 'regulation': Field required"):
        load_pack_file(_write(tmp_path, doc))


def test_bad_severity_and_speaker(tmp_path):
    with pytest.raises(RuleError, match=r"T-001.*'severity'"):
        load_pack_file(_write(tmp_path, _pack(severity="urgent")))
    with pytest.raises(RuleError, match=r"T-001.*'speaker'"):
        load_pack_file(_write(tmp_path, _pack(speaker="robot")))


def test_invalid_regex(tmp_path):
    p = _write(tmp_path, _pack(match={"regex": ["(unclosed"]}))
    with pytest.raises(RuleError, match=r"T-001.*match\.regex.*invalid regular expression"):
        load_pack_file(p)


def test_too_few_examples(tmp_path):
    p = _write(tmp_path, _pack(examples={"violation": ["保本"], "compliant": ["不保本", "a", "b"]}))
    with pytest.raises(RuleError, match=r"T-001.*examples\.violation"):
        load_pack_file(p)


def test_rule_without_trigger(tmp_path):
    with pytest.raises(RuleError, match=r"T-001.*match.*at least one trigger"):
        load_pack_file(_write(tmp_path, _pack(match={"none": ["x"]})))


def test_unknown_pack_field_and_bad_version(tmp_path):
    doc = _pack()
    doc["pack"]["owner"] = "me"
    with pytest.raises(RuleError, match=r"pack: field 'pack\.owner': unknown field"):
        load_pack_file(_write(tmp_path, doc))
    doc = _pack()
    doc["pack"]["version"] = "one"
    with pytest.raises(RuleError, match=r"pack\.version"):
        load_pack_file(_write(tmp_path, doc))


def test_not_yaml(tmp_path):
    p = _write(tmp_path, "pack: {id: t\nrules: [")
    with pytest.raises(RuleError, match=r"not valid YAML"):
        load_pack_file(p)


def test_rule_without_id_is_named_by_position(tmp_path):
    rule = dict(GOOD_RULE)
    del rule["id"]
    doc = {"pack": {"id": "t", "version": "1.0", "language": "zh", "title": "test"}, "rules": [rule]}
    with pytest.raises(RuleError, match=r"rule #1 \(no id\): field 'id'"):
        load_pack_file(_write(tmp_path, doc))


def test_unknown_lexicon_reference(tmp_path):
    p = _write(tmp_path, _pack(match={"phrases": ["@NOPE"]}))
    with pytest.raises(RuleError, match=r"T-001.*match\.phrases\[0\].*unknown lexicon entry '@NOPE'"):
        load_pack_file(p)


def test_lexicon_expands(tmp_path):
    doc = _pack(match={"phrases": ["@G"]})
    doc["lexicon"] = {"G": ["保本", "保息"]}
    pk = load_pack_file(_write(tmp_path, doc))
    assert pk.rules[0].match.phrases == ["保本", "保息"]


def test_duplicate_rule_ids_across_files(tmp_path):
    _write(tmp_path, _pack(), "a.yaml")
    doc = _pack()
    doc["pack"]["id"] = "t2"
    _write(tmp_path, doc, "b.yaml")
    with pytest.raises(RuleError, match=r"rule T-001: field 'id': duplicate rule id"):
        load_pack_files([tmp_path])


def test_kind_body_mismatch(tmp_path):
    with pytest.raises(RuleError, match=r"T-001.*absence"):
        load_pack_file(_write(tmp_path, _pack(kind="absence")))


def test_shipped_packs_all_valid():
    packs = load_pack_files()
    ids = {p.id for p in packs}
    assert {"zh-sales", "zh-insurance", "zh-disclosure", "zh-customer-signals", "en-sales",
            "en-disclosure", "en-customer-signals"} <= ids
    for p in packs:
        assert p.info.version
        for r in p.rules:
            assert r.regulation.document and r.regulation.article


def test_duplicate_yaml_key_is_rejected(tmp_path):
    text = ("pack: {id: t, version: '1.0', language: zh, title: t}\n"
            "rules:\n  - id: T-1\n    title: 保本\n    title: 保息\n")
    with pytest.raises(RuleError, match=r"line 5: not valid YAML: duplicate key 'title'"):
        load_pack_file(_write(tmp_path, text))


def test_answer_rule_needs_its_section_and_elements(tmp_path):
    with pytest.raises(RuleError, match=r"T-001.*'answer'"):
        load_pack_file(_write(tmp_path, _pack(kind="answer", match=None)))
    body = {"question": {"name": "q", "phrases": ["保本"]}, "reply": {"name": "r"}}
    with pytest.raises(RuleError, match=r"T-001.*reply.*needs phrases or regex"):
        load_pack_file(_write(tmp_path, _pack(kind="answer", match=None, answer=body)))
    body["reply"] = {"name": "r", "regex": ["^当然"]}
    body["within"] = 0
    with pytest.raises(RuleError, match=r"T-001.*within"):
        load_pack_file(_write(tmp_path, _pack(kind="answer", match=None, answer=body)))
    del body["within"]
    rule = load_pack_file(_write(tmp_path, _pack(kind="answer", match=None, answer=body))).rules[0]
    assert rule.answer.within == 1 and rule.answer.hedge is None
