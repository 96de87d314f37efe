"""The review pages without a browser: who may open which page, the language, that everything is
served locally, and the JSON the pages need beyond the service API (queue facets, waveform peaks,
the role switch with re-detection, batches, dashboards). The browser flow is test_web_browser.py."""

from __future__ import annotations

import re
import time

import numpy as np
import pytest
from fastapi.testclient import TestClient

from test_service_support import FakeAnalyzer, db_url, service_settings, settings_for  # noqa: F401

ROLES = {"admin": ("admin", None), "qa": ("qa", None), "officer": ("officer", None), "alice": ("agent", "A1"),
         "bob": ("agent", "A2")}


@pytest.fixture()
def web(tmp_path, db_url):  # noqa: F811
    """The app (web pages mounted, a fake analyzer), and name -> session token for each user; on
    SQLite, and on PostgreSQL when COMPLIANCE_TEST_PG_URL is set."""
    from sqlmodel import Session

    from compliance import store
    from compliance.service import create_app
    from compliance.service.auth import create_user, issue_token

    engine = store.make_engine(db_url)
    tokens = {}
    with Session(engine) as session:
        for name, (role, agent) in ROLES.items():
            user = create_user(session, name, role, agent_id=agent, password="secret-pw" if name == "qa" else None)
            tokens[name], _ = issue_token(session, user, kind="session", ttl_h=1)
    app = create_app(settings_for(tmp_path, db_url), service_settings(), analyzer=FakeAnalyzer(), engine=engine,
                     extensions=("compliance.web",))
    with TestClient(app) as http:
        yield http, tokens


def as_user(http: TestClient, tokens: dict, name: str | None) -> TestClient:
    from compliance.service.deps import SESSION_COOKIE

    http.cookies.clear()
    if name:
        http.cookies.set(SESSION_COOKIE, tokens[name])
    return http


def stereo_wav(seconds: float = 6.0) -> bytes:
    """A real two-channel WAV: a tone at 8000/32767 on channel 0, a quieter one (4000) on channel 1."""
    import io
    import wave

    t = np.arange(int(16000 * seconds)) / 16000
    left = np.sin(2 * np.pi * 330.0 * t) * 8000
    right = np.sin(2 * np.pi * 220.0 * t) * 4000
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(np.stack([left, right], axis=1).astype("<i2").tobytes())
    return buf.getvalue()


def upload_call(http, tokens, agent="A1") -> dict:
    as_user(http, tokens, "qa")
    r = http.post("/api/v1/uploads", files={"files": ("call.wav", stereo_wav(6.0), "audio/wav")},
                  data={"agent_id": agent, "product": "稳盈理财", "agent_channel": "0"})
    assert r.status_code == 201, r.text
    job = r.json()["jobs"][0]
    for _ in range(200):
        job = http.get(f"/api/v1/jobs/{job['id']}").json()
        if job["status"] in ("done", "failed"):
            break
        time.sleep(0.05)
    assert job["status"] == "done", job
    return job | {"batch_id": r.json()["batch_id"]}


def test_pages_need_a_login_and_show_each_role_only_its_pages(web):
    http, tokens = web
    as_user(http, tokens, None)
    r = http.get("/app/queue?status=open", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/?next=/app/queue?status=open"
    assert http.get("/").status_code == 200
    # a real login sets the cookie the pages (and the audio player) use
    r = http.post("/api/v1/auth/login", json={"username": "qa", "password": "secret-pw"})
    assert r.status_code == 200
    assert http.get("/", follow_redirects=False).headers["location"] == "/app/batches"

    matrix = {  # page -> users that may open it
        "/app/queue": {"admin", "officer", "qa"},
        "/app/batches": {"admin", "qa"},
        "/app/agent": {"admin", "officer", "qa", "alice", "bob"},
        "/app/dashboard": {"admin", "officer", "qa"},
    }
    for name in ROLES:
        as_user(http, tokens, name)
        for path, allowed in matrix.items():
            r = http.get(path, follow_redirects=False)
            assert r.status_code == (200 if name in allowed else 403), (name, path, r.status_code)
        nav = re.findall(r'data-nav="(\w+)"', http.get("/app/agent").text)
        expected = {"admin": ["queue", "batches", "dashboard"], "officer": ["queue", "dashboard"],
                    "qa": ["queue", "batches", "dashboard"], "alice": ["agent"], "bob": ["agent"]}[name]
        assert nav == expected, (name, nav)


def test_call_page_only_for_those_who_may_see_the_call(web):
    http, tokens = web
    job = upload_call(http, tokens, agent="A1")
    path = f"/app/calls/{job['call_id']}"
    for name, status in (("officer", 200), ("qa", 200), ("alice", 200), ("bob", 403)):
        r = as_user(http, tokens, name).get(path, follow_redirects=False)
        assert r.status_code == status, (name, r.status_code)
    assert as_user(http, tokens, "officer").get("/app/calls/999999").status_code == 404


def test_user_text_cannot_break_out_of_the_page_data(tmp_path):
    from compliance.web.pages import _script_json

    out = _script_json({"display_name": "</script><script>alert(1)</script>&"})
    assert "<" not in out and ">" not in out and "&" not in out
    import json

    assert json.loads(out)["display_name"] == "</script><script>alert(1)</script>&"


def test_language_from_toggle_cookie_browser_or_default(web):
    http, tokens = web
    as_user(http, tokens, None)
    assert '<html lang="zh-CN">' in http.get("/").text and "登录" in http.get("/").text
    r = http.get("/", headers={"Accept-Language": "en-US,en;q=0.9"})
    assert '<html lang="en">' in r.text and "Log in" in r.text
    http.cookies.set("lang", "zh-CN")
    assert '<html lang="zh-CN">' in http.get("/", headers={"Accept-Language": "en"}).text
    from compliance.web import i18n

    zh, en = i18n.table("zh-CN"), i18n.table("en")
    assert zh.keys() == en.keys() and all(zh[k] and en[k] for k in zh)


def test_everything_is_served_by_the_app(web):
    from compliance.web import STATIC, TEMPLATES

    http, tokens = web
    r = http.get("/static/vendor/chart.umd.min.js")
    assert r.status_code == 200 and "Chart.js v4.6.1" in r.text[:200]
    assert (STATIC / "vendor" / "chart.js.LICENSE.md").is_file()
    external = re.compile(r"""(src|href)=["']?(https?:)?//|@import|from\s+['"]https?:|url\(\s*['"]?https?:""")
    for f in [*TEMPLATES.glob("*.html"), *STATIC.glob("*.js"), *STATIC.glob("*.css")]:
        assert not external.search(f.read_text(encoding="utf-8")), f"{f.name} loads something from outside the app"
    as_user(http, tokens, "officer")
    page = http.get("/app/dashboard").text
    for ref in re.findall(r'(?:src|href)="([^"]+)"', page):
        if ref.startswith("/static/"):
            assert http.get(ref).status_code == 200, ref


def test_web_api_facets_peaks_roles_batches_dashboard(web):
    http, tokens = web
    job = upload_call(http, tokens, agent="A1")
    call_id = job["call_id"]

    # queue facets: filter values and counts
    as_user(http, tokens, "officer")
    facets = http.get("/api/v1/web/facets", params={"status": "open"}).json()
    assert facets["total"] == 1 and facets["by_status"] == {"open": 1}
    assert facets["agents"] == [{"id": "A1", "n": 1}] and facets["products"] == [{"id": "稳盈理财", "n": 1}]
    assert facets["by_severity"]["high"] == 1 and [r["id"] for r in facets["rules"]] == ["zh.guarantee"]
    assert http.get("/api/v1/web/facets", params={"agent_id": "A2"}).json()["total"] == 0
    # the queue page carries its first page and counts, as the API would answer them
    import json

    def page_data(html: str) -> dict:
        raw = re.search(r'<script id="page-data" type="application/json">(.*?)</script>', html, re.S).group(1)
        return json.loads(raw)

    initial = page_data(http.get("/app/queue").text)["initial"]
    api_page = http.get("/api/v1/violations", params={"status": "open", "page_size": 50}).json()
    assert initial["page"] == api_page and initial["facets"]["total"] == 1 and initial["params"]["status"] == "open"
    assert page_data(http.get("/app/queue?_=1&agent_id=A2").text)["initial"]["page"]["total"] == 0
    assert page_data(http.get("/app/queue?status=bogus").text)["initial"] is None  # the script reports it
    assert as_user(http, tokens, "alice").get("/api/v1/web/facets").status_code == 403

    # waveform peaks: one row per channel; the tones peak at 8000/32767 and 4000/32767
    peaks = as_user(http, tokens, "alice").get(f"/api/v1/web/calls/{call_id}/peaks", params={"n": 100}).json()
    assert len(peaks["channels"]) == 2 and peaks["buckets"] == 100 and len(peaks["channels"][0]) == 100
    assert peaks["duration"] == pytest.approx(6.0, abs=0.01)
    assert all(p == pytest.approx(8000 / 32767, abs=0.01) for p in peaks["channels"][0])
    assert all(p == pytest.approx(4000 / 32767, abs=0.01) for p in peaks["channels"][1])
    assert as_user(http, tokens, "bob").get(f"/api/v1/web/calls/{call_id}/peaks").status_code == 403

    # batches with per-call flag counts, for QA
    batches = as_user(http, tokens, "qa").get("/api/v1/web/batches").json()
    assert batches[0]["id"] == job["batch_id"] and batches[0]["finished"] and batches[0]["flags"] == 1
    assert batches[0]["jobs"][0]["flags_by_severity"] == {"high": 1}

    # review one flag, then the dashboard counts it
    as_user(http, tokens, "officer")
    vid = http.get(f"/api/v1/calls/{call_id}/violations").json()[0]["id"]
    assert http.post(f"/api/v1/violations/{vid}/review", json={"action": "confirm"}).status_code == 200
    dash = http.get("/api/v1/web/dashboard", params={"bucket": "week"}).json()
    assert dash["calls"] == 1 and dash["violations"] == 1
    assert dash["top_rules"] == [{"rule_id": "zh.guarantee", "title": "保本承诺", "count": 1}]
    assert dash["agents"] == [{"agent_id": "A1", "calls": 1, "violations": 1, "per_call": 1.0}]
    assert dash["precision"][0]["precision"] == 1.0 and dash["backlog"]["open"] == 0
    assert dash["turnaround"]["reviewed"] == 1 and dash["turnaround"]["median_h"] is not None
    assert sum(dash["over_time"]["by_category"]["guarantee_of_principal"]) == 1
    assert http.get("/api/v1/web/dashboard", params={"date_from": "2000-01-01T00:00:00",
                                                     "date_to": "2000-01-02T00:00:00"}).json()["violations"] == 0

    # the role switch: agents may not; an officer swaps, detection re-runs, and it is audited
    assert as_user(http, tokens, "alice").post(f"/api/v1/web/calls/{call_id}/roles",
                                               json={"swap": True}).status_code == 403
    as_user(http, tokens, "officer")
    before = {s["speaker"]: s["role"] for s in http.get(f"/api/v1/calls/{call_id}").json()["speakers"]}
    r = http.post(f"/api/v1/web/calls/{call_id}/roles", json={"swap": True})
    assert r.status_code == 200, r.text
    after = {s["speaker"]: s["role"] for s in http.get(f"/api/v1/calls/{call_id}").json()["speakers"]}
    assert before == {"CH0": "agent"} and after == {"CH0": "customer"}
    assert {u["role"] for u in http.get(f"/api/v1/calls/{call_id}").json()["utterances"]} == {"customer"}
    # the agent-only rule no longer fires on the customer's words
    assert all(v["role"] != "agent" for v in http.get(f"/api/v1/calls/{call_id}/violations").json())
    log = http.get(f"/api/v1/calls/{call_id}/audit").json()
    entry = next(e for e in log if e["action"] == "call.roles")
    assert entry["before"]["roles"] == {"CH0": "agent"} and entry["after"]["roles"] == {"CH0": "customer"}
    assert http.post(f"/api/v1/web/calls/{call_id}/roles", json={"roles": {"NOPE": "agent"}}).status_code == 422


def test_compute_peaks_takes_the_largest_magnitude_per_bucket():
    from compliance.web.api import compute_peaks

    x = np.zeros((2, 1000), dtype=np.float32)
    x[0, 10] = -0.9
    x[1, 990] = 0.5
    out = compute_peaks(x, 1000, 10)
    assert out["duration"] == 1.0 and out["buckets"] == 10
    assert out["channels"][0] == [0.9] + [0.0] * 9 and out["channels"][1] == [0.0] * 9 + [0.5]
