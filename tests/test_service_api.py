"""The API's rules, fast (a fake analyzer stands in for the models; the e2e test uses the real one):
every denial, upload limits and validation, safe names, zips, dedup, PII in output, login."""

from __future__ import annotations

import io
import re
import time
import zipfile

import pytest
from fastapi import Request
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlmodel import Session

from test_service_support import FakeAnalyzer, db_url, make_users, service_settings, settings_for, tone_wav  # noqa: F401

API = "/api/v1"


@pytest.fixture()
def api(tmp_path, db_url):  # noqa: F811  (SQLite, and PostgreSQL when available)
    from compliance import store
    from compliance.service import create_app

    engine = store.make_engine(db_url)
    tokens = make_users(engine)
    app = create_app(settings_for(tmp_path, db_url), service_settings(max_upload_bytes=400_000),
                     analyzer=FakeAnalyzer(), engine=engine)
    with TestClient(app) as http:
        http.app_ref, http.engine, http.tokens, http.tmp = app, engine, tokens, tmp_path
        yield http
    engine.dispose()


def auth(http, who):
    return {"Authorization": f"Bearer {http.tokens[who]}"}


def upload(http, files, who="qa", **data):
    return http.post(f"{API}/uploads", files=[("files", f) for f in files], data=data, headers=auth(http, who))


def wait_done(http, job_id):
    for _ in range(400):
        job = http.get(f"{API}/jobs/{job_id}", headers=auth(http, "qa")).json()
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(0.05)
    raise AssertionError(job)


@pytest.fixture()
def call_id(api):
    r = upload(api, [("call.wav", tone_wav(1.0, 300), "audio/wav")], agent_id="A1", customer_id="C-1",
               product="fund", call_time="2026-11-02T10:00:00Z", agent_channel="0")
    assert r.status_code == 201, r.text
    job = wait_done(api, r.json()["jobs"][0]["id"])
    assert job["status"] == "done", job
    return job["call_id"]


def test_every_route_refuses_anonymous_requests(api):
    open_paths = {f"{API}/auth/login", "/healthz"}
    checked = 0
    for route_path, operations in api.get("/openapi.json").json()["paths"].items():
        if route_path in open_paths:
            continue
        path = re.sub(r"\{[^}]+\}", "1", route_path)
        for method in operations:
            r = api.request(method.upper(), path)
            assert r.status_code == 401, (method, path, r.status_code)
            assert r.json()["detail"].startswith("not authenticated")
            checked += 1
    assert checked >= 20
    bad = api.get(f"{API}/me", headers={"Authorization": "Bearer cpl_nonsense"})
    assert bad.status_code == 401 and "invalid" in bad.json()["detail"]


def test_roles_are_enforced(api, call_id):
    violation = api.get(f"{API}/calls/{call_id}/violations", headers=auth(api, "alice")).json()[0]
    denied = [
        ("bob", "GET", f"/calls/{call_id}", None),                 # an agent reading another agent's call
        ("bob", "GET", f"/calls/{call_id}/audio", None),
        ("bob", "GET", f"/calls/{call_id}/violations", None),
        ("bob", "GET", f"/calls/{call_id}/feedback", None),
        ("bob", "GET", f"/violations/{violation['id']}", None),
        ("bob", "GET", "/agents/A1/feedback", None),
        ("bob", "GET", "/calls?agent_id=A1", None),
        ("alice", "GET", "/violations", None),                     # agents have no review queue
        ("alice", "POST", f"/violations/{violation['id']}/review", {"action": "confirm"}),
        ("alice", "GET", "/reports/precision", None),
        ("alice", "GET", "/audit", None),
        ("alice", "GET", "/jobs", None),
        ("qa", "POST", f"/violations/{violation['id']}/review", {"action": "confirm"}),  # QA does not review
        ("qa", "POST", f"/violations/{violation['id']}/decision", {"decision": "uphold", "note": "x"}),
        ("qa", "GET", "/audit", None),
        ("officer", "POST", f"/violations/{violation['id']}/appeal", {"action": "acknowledge"}),
        ("officer", "GET", f"/calls/{call_id}?unmasked=true", None),
        ("qa", "POST", "/users", {"username": "x", "role": "admin"}),
        ("officer", "POST", "/users/1/tokens", {}),
    ]
    for who, method, path, body in denied:
        r = api.request(method, API + path, json=body, headers=auth(api, who))
        assert r.status_code == 403, (who, method, path, r.status_code, r.text)
        assert r.json()["detail"]
    for who in ("alice", "officer"):
        r = upload(api, [("x.wav", tone_wav(0.5, 500), "audio/wav")], who=who)
        assert r.status_code == 403
    # an agent's call list holds only their own calls
    assert api.get(f"{API}/calls", headers=auth(api, "bob")).json()["total"] == 0
    assert api.get(f"{API}/calls", headers=auth(api, "alice")).json()["total"] == 1


def test_login_cookie_for_the_player_and_logout(api, call_id):
    assert api.post(f"{API}/auth/login", json={"username": "alice", "password": "wrong"}).status_code == 401
    assert api.post(f"{API}/auth/login", json={"username": "nobody", "password": "x"}).status_code == 401
    r = api.post(f"{API}/auth/login", json={"username": "alice", "password": "alice-password"})
    assert r.status_code == 200 and r.json()["user"]["role"] == "agent"
    assert "compliance_session" in api.cookies
    audio = api.get(f"{API}/calls/{call_id}/audio", headers={"Range": "bytes=0-9"})  # the cookie is enough
    assert audio.status_code == 206 and len(audio.content) == 10
    assert api.post(f"{API}/auth/logout").status_code == 204
    api.cookies.clear()
    token = r.json()["token"]
    assert api.get(f"{API}/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    with Session(api.engine) as session:  # tokens are stored hashed only
        stored = session.exec(text("SELECT token_hash FROM api_token")).all()
        assert stored and all(token not in row[0] and len(row[0]) == 64 for row in stored)


def test_admin_issues_and_revokes_tokens(api):
    r = api.post(f"{API}/users", json={"username": "carol", "role": "agent", "agent_id": "A3"},
                 headers=auth(api, "admin"))
    assert r.status_code == 201
    assert api.post(f"{API}/users", json={"username": "carol", "role": "agent", "agent_id": "A3"},
                    headers=auth(api, "admin")).status_code == 409
    assert api.post(f"{API}/users", json={"username": "dan", "role": "agent"},
                    headers=auth(api, "admin")).status_code == 422
    issued = api.post(f"{API}/users/{r.json()['id']}/tokens", json={"name": "phone"}, headers=auth(api, "admin")).json()
    carol = {"Authorization": f"Bearer {issued['token']}"}
    assert api.get(f"{API}/me", headers=carol).json()["agent_id"] == "A3"
    assert api.post(f"{API}/tokens/{issued['token_id']}/revoke", headers=auth(api, "admin")).status_code == 204
    assert api.get(f"{API}/me", headers=carol).status_code == 401


def test_upload_limits_and_validation(api):
    big = upload(api, [("big.wav", tone_wav(20.0, 200), "audio/wav")])  # ~1.3 MB over a 0.4 MB cap
    assert big.status_code == 413 and "limit" in big.json()["detail"]
    text_file = upload(api, [("notes.wav", b"this is not audio at all" * 50, "audio/wav")])
    assert text_file.status_code == 422 and "notes.wav: not a readable audio file" in text_file.json()["detail"]
    empty = upload(api, [("empty.flac", b"", "audio/flac")])
    assert empty.status_code == 422 and "empty" in empty.json()["detail"]
    for field, value in (("call_time", "yesterday"), ("agent_channel", "3"), ("metadata", "{not json")):
        r = upload(api, [("ok.wav", tone_wav(0.5, 610), "audio/wav")], **{field: value})
        assert r.status_code == 422 and r.json()["detail"], field
    mixed = upload(api, [("good.wav", tone_wav(0.5, 620), "audio/wav"), ("bad.mp3", b"ID3garbage" * 30, "audio/mpeg")])
    assert mixed.status_code == 201
    assert [j["filename"] for j in mixed.json()["jobs"]] == ["good.wav"]
    assert mixed.json()["rejected"][0]["filename"] == "bad.mp3"


def test_names_are_made_safe_and_blobs_are_content_addressed(api):
    data = tone_wav(0.5, 700)
    r = upload(api, [("../../../etc/cron.d/evil.wav", data, "audio/wav"), ("..\\..\\win.wav", data, "audio/wav")])
    assert r.status_code == 201
    assert [j["filename"] for j in r.json()["jobs"]] == ["evil.wav", "win.wav"]
    blobs = [p for p in (api.tmp / "data" / "blobs").rglob("*") if p.is_file()]
    assert len(blobs) == 1 and re.fullmatch(r"[0-9a-f]{64}", blobs[0].name)  # stored once, by hash
    assert not (api.tmp / "etc").exists()
    jobs = [wait_done(api, j["id"]) for j in r.json()["jobs"]]
    assert {j["status"] for j in jobs} == {"done"} and len({j["call_id"] for j in jobs}) == 1


def test_zip_batches(api):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("calls/a.wav", tone_wav(0.5, 810))
        z.writestr("../../escape.wav", tone_wav(0.5, 820))
        z.writestr("readme.txt", "not audio")
        z.writestr("__MACOSX/._a.wav", "junk")
    r = upload(api, [("batch.zip", buf.getvalue(), "application/zip")], agent_id="A1", batch_name="november",
               metadata='{"a.wav": {"agent_id": "A2"}}')
    assert r.status_code == 201, r.text
    body = r.json()
    assert sorted(j["filename"] for j in body["jobs"]) == ["a.wav", "escape.wav"]
    assert {j["filename"]: j["agent_id"] for j in body["jobs"]} == {"a.wav": "A2", "escape.wav": "A1"}
    assert [x["filename"] for x in body["rejected"]] == ["readme.txt"]
    for job in body["jobs"]:
        wait_done(api, job["id"])
    batch = api.get(f"{API}/batches/{body['batch_id']}", headers=auth(api, "qa")).json()
    assert batch["name"] == "november" and batch["counts"]["done"] == 2 and batch["progress"] == 100.0


def test_pii_is_masked_in_output_and_only_admins_see_it_unmasked(api, call_id):
    call = api.get(f"{API}/calls/{call_id}", headers=auth(api, "officer")).json()
    assert call["masked"] and "13812345678" not in str(call) and "*******5678" in call["utterances"][0]["text"]
    plain = api.get(f"{API}/calls/{call_id}?unmasked=true", headers=auth(api, "admin")).json()
    assert not plain["masked"] and "13812345678" in plain["utterances"][0]["text"]
    assert "13812345678" in "".join(w["text"] for w in plain["utterances"][0]["words"])
    assert call["customer_id"] == "C-1"
    with Session(api.engine) as session:  # at rest: customer id encrypted, transcript masked
        raw = session.exec(text("SELECT customer_id FROM call")).one()[0]
        assert raw.startswith("enc1:") and "C-1" not in raw
        assert "13812345678" not in str(session.exec(text("SELECT text, words FROM utterance")).all())
    log = api.get(f"{API}/audit", params={"action": "call.read_unmasked"}, headers=auth(api, "admin")).json()
    assert log["total"] == 1 and log["items"][0]["actor"] == "admin"


def test_a_silent_recording_fails_its_job_with_the_reason(tmp_path):
    from compliance import store
    from compliance.pipeline import Analyzer
    from compliance.service import create_app

    db_url = f"sqlite:///{tmp_path / 'silent.db'}"
    engine = store.make_engine(db_url)
    tokens = make_users(engine)
    settings = settings_for(tmp_path, db_url)
    app = create_app(settings, service_settings(), analyzer=Analyzer(settings, engine=engine), engine=engine)
    silent = tone_wav(1.0, 440) [:44] + bytes(32000 * 2)  # a valid WAV header, then digital silence
    with TestClient(app) as http:
        headers = {"Authorization": f"Bearer {tokens['qa']}"}
        r = http.post(f"{API}/uploads", files={"files": ("quiet.wav", silent, "audio/wav")}, headers=headers)
        assert r.status_code == 201, r.text
        job_id = r.json()["jobs"][0]["id"]
        for _ in range(400):
            job = http.get(f"{API}/jobs/{job_id}", headers=headers).json()
            if job["status"] in ("done", "failed"):
                break
            time.sleep(0.05)
    assert job["status"] == "failed" and job["error"] == "quiet.wav: the recording is silent"
    with Session(engine) as session:
        assert session.exec(text("SELECT count(*) FROM call")).one()[0] == 0


def test_odd_values_are_refused_with_4xx(api):
    admin = auth(api, "admin")
    for path in (f"{API}/calls/9223372036854775808", f"{API}/violations?date_from=9999-12-31T23:59:59-23:00",
                 f"{API}/jobs/{'x' * 65}", f"{API}/calls?page=0"):
        r = api.get(path, headers=admin)
        assert 400 <= r.status_code < 500, (path, r.status_code, r.text)
        assert r.json()["detail"]
    # a NUL character: PostgreSQL cannot take it (422), SQLite searches for it (nothing found)
    r = api.get(f"{API}/violations?agent_id=%00x", headers=admin)
    assert r.status_code in (200, 422) and (r.json().get("total") == 0 or "NUL" in r.json()["detail"])


def test_health_and_openapi(api):
    health = api.get("/healthz").json()
    assert health["status"] == "ok" and health["queue"] == "embedded" and health["workers"] == 1
    spec = api.get("/openapi.json").json()
    assert f"{API}/violations/{{violation_id}}/review" in spec["paths"]
    assert api.get("/docs").status_code == 200


def test_validation_errors_say_what_is_wrong_in_one_line(api, call_id):
    violation = api.get(f"{API}/calls/{call_id}/violations", headers=auth(api, "alice")).json()[0]
    r = api.post(f"{API}/violations/{violation['id']}/review", json={"action": "approve"},
                 headers=auth(api, "officer"))
    assert r.status_code == 422
    assert r.json()["detail"].startswith("action: Input should be 'confirm', 'dismiss' or 'escalate'")
    assert r.json()["errors"][0]["loc"] == ["body", "action"]
    r = api.get(f"{API}/violations", params={"page_size": 0}, headers=auth(api, "officer"))
    assert r.status_code == 422 and r.json()["detail"].startswith("query.page_size:")


def test_slow_requests_time_out_and_streamed_bodies_are_capped():
    import asyncio

    from fastapi import FastAPI

    from compliance.service.middleware import BodyLimit, Timeout

    app = FastAPI()

    @app.get("/slow")
    async def slow():
        await asyncio.sleep(5)
        return {"ok": True}

    @app.post("/echo")
    async def echo(request: Request):
        return {"size": len(await request.body())}

    app.add_middleware(BodyLimit, max_bytes=1000)
    app.add_middleware(Timeout, seconds=0.2, upload_seconds=10, upload_prefix="/upload")
    with TestClient(app) as http:
        r = http.get("/slow")
        assert r.status_code == 504 and "longer than" in r.json()["detail"]
        assert http.post("/echo", content=b"x" * 999).json() == {"size": 999}
        r = http.post("/echo", content=b"x" * 5000)  # declared length
        assert r.status_code == 413
        r = http.post("/echo", content=iter([b"x" * 600, b"x" * 600]))  # chunked: counted as it streams
        assert r.status_code == 413 and "limit" in r.json()["detail"]
