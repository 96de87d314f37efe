"""CLI for the rule packs: `compliance rules test|eval|list` and `compliance detect`.

`rules_app` is a Typer app mounted by compliance/cli.py; `detect_command` is the function behind
`compliance detect --text "…" --role agent [--lang zh] [--json]` and `compliance detect --call
transcript.json` (every rule, call-level and timing ones included, over a transcript)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.table import Table

from .errors import ComplianceError

rules_app = typer.Typer(help="Rule packs: self-test, evaluate, list.", no_args_is_help=True)
console = Console()


def _engine(paths: Optional[List[Path]], packs: Optional[List[str]] = None, similarity: bool | None = None):
    from .detect import load_packs

    return load_packs(paths or None, names=packs or None, similarity=similarity)


def _fail(e: ComplianceError):
    Console(stderr=True).print(f"[red]error:[/red] {e}", markup=True, highlight=False)
    raise typer.Exit(getattr(e, "exit_code", 1))


@rules_app.command("test")
def test_command(
    path: Optional[List[Path]] = typer.Option(None, "--path", "-p", help="rule file or folder (default: rules/)"),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="list every example"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
):
    """Run every rule's own examples; fail if a violation example does not fire or a compliant one does."""
    try:
        eng = _engine(path)
    except ComplianceError as e:
        _fail(e)
    from .rules.selftest import run_examples

    res = run_examples(eng)
    failed = [r for r in res if not r.passed]
    if as_json:
        print(json.dumps({"examples": len(res), "passed": len(res) - len(failed),
                          "failed": [asdict(r) for r in failed],
                          "rules": len(eng.rules), "packs": len(eng.packs)}, ensure_ascii=False, indent=2))
    else:
        per_rule: dict[str, list] = {}
        for r in res:
            per_rule.setdefault(r.rule_id, []).append(r)
        t = Table(title=f"rule examples: {len(eng.rules)} rules in {len(eng.packs)} packs")
        for c in ("rule", "pack", "violation ex.", "compliant ex.", "result"):
            t.add_column(c)
        for rid, rs in per_rule.items():
            nv = sum(1 for r in rs if r.expected == "violation")
            nc = len(rs) - nv
            bad = [r for r in rs if not r.passed]
            t.add_row(rid, rs[0].pack, str(nv), str(nc),
                      "[green]ok[/green]" if not bad else f"[red]{len(bad)} failed[/red]")
        console.print(t)
        for r in (res if verbose else failed):
            mark = "[green]PASS[/green]" if r.passed else "[red]FAIL[/red]"
            console.print(f"{mark} {r.rule_id} expected {r.expected} ({r.role}): {r.text}  — {r.detail}",
                          highlight=False)
        console.print(f"{len(res) - len(failed)}/{len(res)} examples passed", highlight=False)
    if failed:
        raise typer.Exit(1)


@rules_app.command("eval")
def eval_command(
    file: Path = typer.Argument(..., help="TSV with header: id text label category role language"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
    path: Optional[List[Path]] = typer.Option(None, "--path", "-p", help="rule file or folder"),
    similarity: bool = typer.Option(True, "--similarity/--rules-only",
                                    help="with the similarity layer (default) or the rules alone"),
):
    """Precision, recall and F1 of the packs on a labelled TSV, overall and per category."""
    from .rules.evaluate import evaluate, read_tsv

    try:
        eng = _engine(path, similarity=similarity)
        rows = read_tsv(file)
    except ComplianceError as e:
        _fail(e)
    rep = evaluate(rows, eng)
    if as_json:
        print(json.dumps(rep, ensure_ascii=False, indent=2))
        return
    t = Table(title=f"{file}: {rep['rows']} rows")
    for c in ("category", "n", "tp", "fp", "fn", "precision", "recall", "F1"):
        t.add_column(c, justify="right" if c != "category" else "left")
    for cat, s in list(rep["per_category"].items()) + [("ALL", rep["overall"])]:
        t.add_row(cat, str(s["n"]), str(s["tp"]), str(s["fp"]), str(s["fn"]),
                  f"{s['precision']:.3f}", f"{s['recall']:.3f}", f"{s['f1']:.3f}",
                  style="bold" if cat == "ALL" else None)
    console.print(t)
    for title, items in (("misses (violation not flagged)", rep["misses"]),
                         ("false alarms (compliant flagged)", rep["false_alarms"])):
        if not items:
            continue
        tt = Table(title=f"{title}: {len(items)}")
        for c in ("id", "role", "category", "text", "fired"):
            tt.add_column(c, overflow="fold")
        for r in items:
            tt.add_row(r["id"], r["role"], r["category"], r["text"],
                       ", ".join(r["rules"]) + (f" — {r['reason']}" if r["reason"] else ""))
        console.print(tt)
    o = rep["overall"]
    console.print(f"precision {o['precision']:.3f}  recall {o['recall']:.3f}  F1 {o['f1']:.3f}  "
                  f"(category agreement on hits {rep['category_agreement']:.3f})", highlight=False)
    if rep["in_training"]:
        console.print(f"[yellow]note: {rep['in_training']} of these {rep['rows']} rows are in the similarity "
                      f"layer's training corpus (rules/corpus/): these figures are not held-out[/yellow]")


@rules_app.command("list")
def list_command(
    path: Optional[List[Path]] = typer.Option(None, "--path", "-p", help="rule file or folder"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
):
    """List the packs and their rules."""
    try:
        eng = _engine(path)
    except ComplianceError as e:
        _fail(e)
    if as_json:
        print(json.dumps([{"pack": c.pack.id, "version": c.pack.info.version, "id": c.rule.id,
                           "kind": c.rule.kind, "category": c.rule.category,
                           "severity": c.rule.severity, "speaker": c.rule.speaker,
                           "language": c.rule.language, "title": c.rule.title,
                           "regulation": f"{c.rule.regulation.document} {c.rule.regulation.article}"}
                          for c in eng.rules], ensure_ascii=False, indent=2))
        return
    t = Table(title="rule packs")
    for c in ("pack", "rule", "kind", "category", "severity", "speaker", "title"):
        t.add_column(c, overflow="fold")
    for c in eng.rules:
        t.add_row(f"{c.pack.id} {c.pack.info.version}", c.rule.id, c.rule.kind, c.rule.category,
                  c.rule.severity, c.rule.speaker, c.rule.title)
    console.print(t)


def detect_command(
    text: Optional[str] = typer.Option(None, "--text", "-t", help="text to check as one utterance"),
    call: Optional[Path] = typer.Option(None, "--call", "-c", help="a transcript to check as one call: the JSON of "
                                        "`compliance analyze --json` (docs/call-json.md) or a list of its segments"),
    role: str = typer.Option("agent", "--role", "-r", help="agent, customer or unknown"),
    lang: str = typer.Option("zh", "--lang", "-l", help="zh or en"),
    as_json: bool = typer.Option(False, "--json", help="machine-readable output"),
    pack: Optional[List[str]] = typer.Option(None, "--pack", help="only these pack ids"),
):
    """Check one piece of text against the utterance-level rules, or a whole transcript (--call)
    against every rule: call-level disclosures, answers, silence and overtalk included."""
    from .detect import detect, detect_text

    if (text is None) == (call is None):
        Console(stderr=True).print("error: give either --text or --call")
        raise typer.Exit(2)
    if role not in ("agent", "customer", "unknown", "supervisor"):
        Console(stderr=True).print(f"error: --role must be agent, customer or unknown, not {role!r}")
        raise typer.Exit(2)
    try:
        eng = _engine(None, pack)
        if call is not None:
            from .transcript import read_transcript

            vs = detect(read_transcript(call, language=lang), eng)
        else:
            vs = detect_text(text, role=role, language=lang, packs=eng)
    except ComplianceError as e:
        _fail(e)
    if as_json:
        print(json.dumps([asdict(v) for v in vs], ensure_ascii=False, indent=2))
        return
    if not vs:
        console.print("[green]no violation[/green]")
        return
    t = Table(title=f"{len(vs)} hit(s)")
    if call is not None:  # a call's findings in time order; --json gives regulation and suggestion too
        for c in ("time", "speaker", "rule", "kind", "severity", "said", "why"):
            t.add_column(c, overflow="fold")
        for v in vs:
            said = v.matched_text if len(v.matched_text) <= 40 else v.matched_text[:40] + "…"
            t.add_row(f"{v.start:.1f}–{v.end:.1f}", f"{v.speaker or ''} ({v.role})", v.rule_id, v.kind,
                      v.severity, said, v.reason)
        console.print(t)
        return
    for c in ("rule", "kind", "category", "severity", "matched", "why", "regulation", "suggestion"):
        t.add_column(c, overflow="fold")
    for v in vs:
        t.add_row(v.rule_id, v.kind, v.category, v.severity, v.matched_text, v.reason,
                  v.regulation, v.suggestion)
    console.print(t)


if __name__ == "__main__":  # convenience: python -m compliance.cli_rules test
    app = typer.Typer()
    app.add_typer(rules_app, name="rules")
    app.command("detect")(detect_command)
    app()
