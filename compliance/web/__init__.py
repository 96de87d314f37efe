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


class Static(StaticFiles):
    """The pages' files. Scripts are ES modules importing each other by plain names, so they are
    served without version suffixes and revalidated on each load (a 304 when unchanged); the
    vendored library is immutable per version."""

    def file_response(self, full_path, stat_result, scope, status_code=200):
        response = super().file_response(full_path, stat_result, scope, status_code)
        vendored = "/vendor/" in str(full_path).replace("\\", "/")
        response.headers["Cache-Control"] = "public, max-age=31536000, immutable" if vendored else "no-cache"
        return response


def mount(app: FastAPI, ctx) -> None:
    from . import api, pages

    app.include_router(api.router, prefix="/api/v1/web")
    app.include_router(pages.router)
    app.mount("/static", Static(directory=STATIC), name="static")
