"""The HTML pages. Each is a small server-rendered shell (header, navigation for the user's role,
the UI strings) whose script fetches its data from the JSON API. A page checks the login cookie and
the role before it is served: no cookie -> the login page; a role that may not see it -> 403."""

from __future__ import annotations

import json

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from sqlmodel import Session

from .. import __version__
from ..service.auth import user_for_token
from ..service.convert import user_out
from ..service.deps import SESSION_COOKIE, call_for
from ..service.models import User
from . import TEMPLATES, i18n

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(TEMPLATES))

#: page -> roles that may open it (admins may open everything)
PAGE_ROLES = {
    "queue": ("officer", "qa"),
    "call": ("officer", "qa", "agent"),
    "batches": ("qa",),
    "agent": ("agent", "officer", "qa"),
    "dashboard": ("officer", "qa"),
}
#: navigation, in order: (page, path, label key)
NAV = (("queue", "/app/queue", "nav.queue"), ("batches", "/app/batches", "nav.batches"),
       ("agent", "/app/agent", "nav.agent"), ("dashboard", "/app/dashboard", "nav.dashboard"))
HOME = {"officer": "/app/queue", "admin": "/app/queue", "qa": "/app/batches", "agent": "/app/agent"}


def allowed(user: User, page: str) -> bool:
    return user.role == "admin" or user.role in PAGE_ROLES[page]


def _user(request: Request) -> User | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    with Session(request.app.state.ctx.engine) as session:
        found = user_for_token(session, token)
    return found[0] if found else None


def _lang(request: Request) -> str:
    return i18n.pick(request.headers.get("accept-language"), request.cookies.get("lang"))


def _script_json(value) -> str:
    """JSON safe inside <script type="application/json"> (no '</script>' can close it early)."""
    return (json.dumps(value, ensure_ascii=False, default=str)
            .replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


def _render(request: Request, template: str, page: str, user: User | None, status: int = 200, **extra):
    lang = _lang(request)
    strings = i18n.table(lang)
    nav = []
    if user is not None:
        # QA and officers see the agent page only for a chosen agent, so it is not in their menu
        nav = [(p, path, strings[key]) for p, path, key in NAV
               if allowed(user, p) and not (p == "agent" and user.role != "agent")]
    context = {"page": page, "lang": lang, "t": strings, "version": __version__, "nav": nav,
               "me": user_out(user).model_dump() if user else None, "home": HOME,
               "i18n_json": _script_json(strings), **extra}
    context["me_json"] = _script_json(context["me"])
    context["extra_json"] = _script_json(extra)
    response = templates.TemplateResponse(request, template, context, status_code=status)
    response.headers["Cache-Control"] = "no-store"
    return response


def _page(request: Request, page: str, template: str, **extra):
    user = _user(request)
    if user is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/?next={target}", status_code=303)
    if not allowed(user, page):
        return _render(request, "forbidden.html", page, user, status=403)
    return _render(request, template, page, user, **extra)


@router.get("/", response_class=HTMLResponse)
def login_page(request: Request):
    user = _user(request)
    if user is not None:
        return RedirectResponse(HOME.get(user.role, "/app/queue"), status_code=303)
    return _render(request, "login.html", "login", None)


@router.get("/app", response_class=HTMLResponse)
@router.get("/app/", response_class=HTMLResponse)
def app_home(request: Request):
    user = _user(request)
    return RedirectResponse(HOME.get(user.role, "/app/queue") if user else "/", status_code=303)


QUEUE_FILTERS = ("status", "severity", "rule_id", "category", "agent_id", "product", "date_from", "date_to")
STATUSES = ("open", "confirmed", "dismissed", "escalated", "acknowledged", "disputed", "appeal_upheld",
            "appeal_granted")


def queue_initial(request: Request, user: User) -> dict | None:
    """The queue's first page and counts, computed with the page (so the browser renders them without
    waiting for its scripts to ask): the same service functions the JSON API answers with, for the
    filters in the URL, read as queue.js reads them. None (the script fetches) when anything is off."""
    from datetime import datetime

    from ..service.routers.violations import review_queue
    from .api import queue_facets

    q = request.query_params
    params = {k: q.get(k) or None for k in QUEUE_FILTERS}
    if "status" not in q and "_" not in q:
        params["status"] = "open"
    try:
        page = int(q.get("page") or 1)
        dates = {k: datetime.fromisoformat(params[k] + ("T00:00:00" if k == "date_from" else "T23:59:59"))
                 if params[k] else None for k in ("date_from", "date_to")}
        if params["status"] not in (None, *STATUSES) or not 1 <= page <= 100000:
            return None
        filters = {k: params[k] for k in ("status", "rule_id", "category", "severity", "agent_id", "product")}
        with Session(request.app.state.ctx.engine) as session:
            items = review_queue(**filters, **dates, page=page, page_size=50, _=user, session=session)
            facets = queue_facets(**filters, **dates, _=user, session=session)
    except Exception:  # noqa: BLE001 - a bad filter or a changed service signature: the script fetches instead
        return None
    return {"params": params, "page_no": page, "page": items.model_dump(mode="json"), "facets": facets}


@router.get("/app/queue", response_class=HTMLResponse)
def queue_page(request: Request):
    user = _user(request)
    initial = queue_initial(request, user) if user is not None and allowed(user, "queue") else None
    return _page(request, "queue", "queue.html", initial=initial)


@router.get("/app/calls/{call_id}", response_class=HTMLResponse)
def call_page(request: Request, call_id: int):
    user = _user(request)
    if user is not None and allowed(user, "call"):
        with Session(request.app.state.ctx.engine) as session:
            try:
                call_for(session, user, call_id)
            except HTTPException as exc:
                return _render(request, "forbidden.html", "call", user, status=exc.status_code,
                               detail=exc.detail)
    return _page(request, "call", "call.html", call_id=call_id)


@router.get("/app/batches", response_class=HTMLResponse)
def batches_page(request: Request):
    return _page(request, "batches", "batches.html")


@router.get("/app/agent", response_class=HTMLResponse)
def agent_page(request: Request):
    return _page(request, "agent", "agent.html")


@router.get("/app/dashboard", response_class=HTMLResponse)
def dashboard_page(request: Request):
    return _page(request, "dashboard", "dashboard.html")
