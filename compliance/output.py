"""Render a CallResult: versioned JSON, SRT, WebVTT, RTTM and a Rich transcript for the terminal.

JSON schema `compliance.call` version 1 is documented in docs/call-json.md."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime, timezone

from rich.table import Table
from rich.text import Text

from . import __version__
from .types import CallResult

SCHEMA = "compliance.call"
SCHEMA_VERSION = 1
SEVERITY_STYLE = {"critical": "bold white on red", "high": "bold red", "medium": "yellow", "low": "cyan",
                  "info": "dim"}
SEVERITY_RANK = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}


def to_dict(result: CallResult) -> dict:
    by_severity: dict[str, int] = {}
    for v in result.violations:
        by_severity[v.severity] = by_severity.get(v.severity, 0) + 1
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "generator": f"compliance {__version__}",
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "call": {"id": result.call_id, "source": result.source, "sha256": result.sha256,
                 "duration": result.duration, "channels": result.channels, "language": result.language,
                 "models": result.models},
        "speakers": [asdict(s) for s in result.speakers],
        "segments": [{"index": u.index, "speaker": u.speaker, "role": u.role, "channel": u.channel,
                      "start": u.start, "end": u.end, "text": u.text,
                      "words": [{"text": w.text, "start": w.start, "end": w.end, "probability": w.probability,
                                 "speaker": w.speaker, "role": w.role, "gap": w.gap} for w in u.words]}
                     for u in result.utterances],
        "violations": [{"rule": v.rule_id, "title": v.title, "category": v.category, "severity": v.severity,
                        "kind": v.kind, "start": v.start, "end": v.end, "speaker": v.speaker, "role": v.role,
                        "matched_text": v.matched_text, "context": v.context, "reason": v.reason,
                        "segment_index": v.utterance_index, "regulation": v.regulation,
                        "suggestion": v.suggestion, "pack": v.pack}
                       for v in sorted(result.violations, key=lambda v: (v.start, v.rule_id))],
        "summary": {"violations": len(result.violations), "by_severity": by_severity,
                    "missing_disclosures": sorted({v.rule_id for v in result.violations if v.kind == "absence"})},
    }


def to_json(result: CallResult) -> str:
    return json.dumps(to_dict(result), ensure_ascii=False, indent=2)


def _clock(seconds: float, sep: str) -> str:
    ms = int(round(seconds * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def _label(result: CallResult, speaker: str, role: str) -> str:
    return role if role != "unknown" else speaker


def to_srt(result: CallResult) -> str:
    blocks = []
    for n, u in enumerate(result.utterances, 1):
        blocks.append(f"{n}\n{_clock(u.start, ',')} --> {_clock(u.end, ',')}\n"
                      f"[{_label(result, u.speaker, u.role)}] {u.text}\n")
    return "\n".join(blocks)


def to_vtt(result: CallResult) -> str:
    blocks = ["WEBVTT\n"]
    for u in result.utterances:
        blocks.append(f"{_clock(u.start, '.')} --> {_clock(u.end, '.')}\n"
                      f"<v {_label(result, u.speaker, u.role)}>{u.text}\n")
    return "\n".join(blocks)


def to_rttm(result: CallResult, uri: str | None = None) -> str:
    """Speaker turns as RTTM: the diarizer's turns for mono calls, utterances for channel-split calls."""
    uri = uri or (result.source.rsplit("/", 1)[-1].split(".")[0] or "call")
    spans = [(t.speaker, t.start, t.end) for t in result.turns] or \
            [(u.speaker, u.start, u.end) for u in result.utterances]
    return "".join(f"SPEAKER {uri} 1 {start:.3f} {end - start:.3f} <NA> <NA> {spk} <NA> <NA>\n"
                   for spk, start, end in sorted(spans, key=lambda s: s[1]))


def transcript_table(result: CallResult) -> Table:
    """Speaker, start-end, text; the words a violation matched are highlighted in place."""
    table = Table(title=f"{result.source}  ({result.duration:.1f} s, {result.channels} ch, {result.language})",
                  show_lines=False, expand=True)
    table.add_column("speaker", no_wrap=True)
    table.add_column("time", no_wrap=True)
    table.add_column("text", ratio=1)
    hits: dict[int, list] = {}
    for v in result.violations:
        if v.utterance_index is not None:
            hits.setdefault(v.utterance_index, []).append(v)
    for u in result.utterances:
        text = Text(u.text)
        notes = []
        for v in hits.get(u.index, []):
            style = SEVERITY_STYLE.get(v.severity, "bold red")
            if v.matched_text:
                text.highlight_words([v.matched_text], style=style)
            notes.append(Text(f"  ⚑ {v.rule_id} [{v.severity}] {v.title}", style=style))
        if notes:
            text = Text("\n").join([text, *notes])
        role_style = {"agent": "bold blue", "customer": "green"}.get(u.role, "white")
        table.add_row(Text(_label(result, u.speaker, u.role), style=role_style),
                      f"{u.start:7.2f}–{u.end:7.2f}", text)
    return table


def violations_table(result: CallResult) -> Table:
    table = Table(title=f"{len(result.violations)} finding(s)", expand=True)
    for col in ("time", "severity", "rule", "speaker", "matched", "why"):
        table.add_column(col, overflow="fold")
    for v in sorted(result.violations, key=lambda v: (SEVERITY_RANK.get(v.severity, 9), v.start)):
        table.add_row(f"{v.start:.1f}–{v.end:.1f}", Text(v.severity, style=SEVERITY_STYLE.get(v.severity, "")),
                      f"{v.rule_id}\n{v.title}", v.role if v.role != "unknown" else (v.speaker or "-"),
                      v.matched_text or "(absent)", v.reason)
    return table
