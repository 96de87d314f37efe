"""The review web pages: login, the officer's review queue, the call page with its player, QA's
batch uploads, the agent's feedback and the dashboards.

Server-rendered HTML shells (Jinja2) with vanilla JS modules that call the service's JSON API with
the login cookie; everything (scripts, styles, the charting library) is served from /static, so the
pages work with no network beyond this app. `compliance.service.app` calls `mount(app, ctx)`."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
TEMPLATES = HERE / "templates"


def mount(app: FastAPI, ctx) -> None:
    from . import api, pages

    app.include_router(api.router, prefix="/api/v1/web")
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
