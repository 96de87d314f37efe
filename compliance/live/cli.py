"""`compliance stream FILE`: stream a recording to a running server as a live call and print the
events as they arrive (the demo and the manual test of the live path)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer


def stream_command(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="A recording (any format ffmpeg reads)."),
    server: str = typer.Option(os.environ.get("COMPLIANCE_SERVER", "http://127.0.0.1:8000"), "--server",
                               help="The review service ($COMPLIANCE_SERVER)."),
    token: str = typer.Option(os.environ.get("COMPLIANCE_TOKEN", ""), "--token",
                              help="API token ($COMPLIANCE_TOKEN): an agent's, QA's or an admin's."),
    realtime: bool = typer.Option(False, "--realtime", help="Send at 1x speed, like a live call "
                                                            "(default: as fast as possible)."),
    mono: bool = typer.Option(False, "--mono", help="Mix the channels down and stream one channel."),
    agent_channel: int = typer.Option(0, "--agent-channel", help="Dual-channel: the agent's channel."),
    agent_id: str = typer.Option("", "--agent-id", help="Call metadata: the agent's id."),
    language: str = typer.Option("zh", "--language", help="zh, en, ... or auto."),
    as_json: bool = typer.Option(False, "--json", help="Print the events as JSON lines."),
    partials: bool = typer.Option(False, "--partials", help="Also print partial transcripts."),
) -> None:
    """Stream FILE to the server as a live call; print utterances, alerts and the summary."""
    from .client import StreamError, format_event, stream_file

    def show(event: dict) -> None:
        if event.get("type") == "partial" and not partials:
            return
        typer.echo(json.dumps(event, ensure_ascii=False) if as_json else format_event(event))

    try:
        summary = stream_file(server, token or None, file, mono=mono, realtime=realtime,
                              agent_channel=agent_channel, language=language,
                              call={"agent_id": agent_id} if agent_id else None, on_event=show)
    except StreamError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2)
    except OSError as exc:
        typer.echo(f"error: cannot reach {server}: {exc}", err=True)
        raise typer.Exit(2)
    if summary is None:
        typer.echo("error: the stream ended without a summary", err=True)
        raise typer.Exit(1)
