"""The review service end to end over real HTTP, with the real pipeline (whisper base + rules) on a
real dual-channel call: upload, wait, transcript, violations, audio ranges, review, appeal, decision,
feedback, reports and the audit log — on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlmodel import Session

from test_service_support import LiveServer, client, db_url, make_users, service_settings, settings_for, wait_job  # noqa: F401

pytestmark = pytest.mark.slow


def test_upload_review_appeal_and_audit_over_http(tmp_path, db_url, shared, whisper):  # noqa: F811
    from compliance import store
    from compliance.pipeline import Analyzer
    from compliance.service import create_app

    call_path = shared / "audio" / "calls" / "dev04.stereo.flac"
    settings = settings_for(tmp_path, db_url)
    engine = store.make_engine(db_url)
    tokens = make_users(engine)
    app = create_app(settings, service_settings(), analyzer=Analyzer(settings, transcriber=whisper, engine=engine),
                     engine=engine)
    with LiveServer(app) as server, client(server.url, tokens["qa"]) as qa, \
            client(server.url, tokens["officer"]) as officer, client(server.url, tokens["alice"]) as alice, \
            client(server.url, tokens["bob"]) as bob, client(server.url) as anonymous:
        # --- upload with metadata; the job runs on the embedded worker -------------------------
        with open(call_path, "rb") as fh:
            r = qa.post("/api/v1/uploads", files={"files": ("../../dev04 call.flac", fh, "audio/flac")},
                        data={"agent_id": "A1", "customer_id": "C-778", "product": "稳盈理财", "campaign": "Q4",
                              "call_time": "2026-11-02T10:15:00+08:00", "agent_channel": "0"})
        assert r.status_code == 201, r.text
        upload = r.json()
        assert upload["rejected"] == [] and len(upload["jobs"]) == 1
        job = upload["jobs"][0]
        assert job["filename"] == "dev04 call.flac"  # no path survives
        job = wait_job(qa, job["id"])
        assert job["status"] == "done", job["error"]
        assert job["progress"] == 100.0 and job["attempts"] == 1
        batch = qa.get(f"/api/v1/batches/{upload['batch_id']}").json()
        assert batch["counts"]["done"] == 1 and batch["progress"] == 100.0

        # --- transcript: speakers, roles, words with times -----------------------------------
        call_id = job["call_id"]
        call = alice.get(f"/api/v1/calls/{call_id}").json()
        assert call["agent_id"] == "A1" and call["customer_id"] == "C-778" and call["product"] == "稳盈理财"
        assert call["call_time"].startswith("2026-11-02T02:15:00")
        assert {s["speaker"]: s["role"] for s in call["speakers"]} == {"CH0": "agent", "CH1": "customer"}
        words = [w for u in call["utterances"] for w in u["words"]]
        assert len(words) > 50 and all(0 <= w["start"] <= w["end"] <= call["duration"] + 1 for w in words)

        # --- access control --------------------------------------------------------------------
        assert anonymous.get(f"/api/v1/calls/{call_id}").status_code == 401
        assert bob.get(f"/api/v1/calls/{call_id}").status_code == 403
        assert bob.get(f"/api/v1/calls/{call_id}/audio").status_code == 403

        # --- audio with Range, as a browser player seeking to a flagged second -----------------
        data = call_path.read_bytes()
        whole = alice.get(f"/api/v1/calls/{call_id}/audio")
        assert whole.status_code == 200 and whole.content == data
        assert whole.headers["accept-ranges"] == "bytes" and whole.headers["content-type"] == "audio/flac"
        part = alice.get(f"/api/v1/calls/{call_id}/audio", headers={"Range": "bytes=1000-1999"})
        assert part.status_code == 206 and part.content == data[1000:2000]
        assert part.headers["content-range"] == f"bytes 1000-1999/{len(data)}"

        # --- the review queue ----------------------------------------------------------------------
        violations = alice.get(f"/api/v1/calls/{call_id}/violations").json()
        assert len(violations) >= 3, violations
        queue = officer.get("/api/v1/violations", params={"status": "open", "agent_id": "A1"}).json()
        assert queue["total"] == len(violations)
        order = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}
        ranks = [order.get(v["severity"], 5) for v in queue["items"]]
        assert ranks == sorted(ranks)
        flagged = [v for v in violations if v["kind"] != "absence"]
        first, second, third = flagged[0], flagged[1], violations[-1]

        # --- review: confirm one, dismiss one (a note is required), QA may not review ------------
        assert qa.post(f"/api/v1/violations/{first['id']}/review", json={"action": "confirm"}).status_code == 403
        r = officer.post(f"/api/v1/violations/{first['id']}/review", json={"action": "confirm"})
        assert r.status_code == 200 and r.json()["status"] == "confirmed"
        r = officer.post(f"/api/v1/violations/{second['id']}/review", json={"action": "dismiss"})
        assert r.status_code == 422 and "note" in r.json()["detail"]
        r = officer.post(f"/api/v1/violations/{second['id']}/review",
                         json={"action": "dismiss", "note": "ASR misheard; the agent said 不保本"})
        assert r.status_code == 200 and r.json()["status"] == "dismissed"
        assert officer.post(f"/api/v1/violations/{second['id']}/review",
                            json={"action": "confirm"}).status_code == 409
        if third["id"] not in (first["id"], second["id"]):
            assert officer.post(f"/api/v1/violations/{third['id']}/review",
                                json={"action": "escalate"}).json()["status"] == "escalated"

        # --- the agent disputes, the officer decides -------------------------------------------
        assert bob.post(f"/api/v1/violations/{first['id']}/appeal",
                        json={"action": "dispute", "note": "not my call"}).status_code == 403
        assert alice.post(f"/api/v1/violations/{second['id']}/appeal",
                          json={"action": "dispute", "note": "x"}).status_code == 409
        r = alice.post(f"/api/v1/violations/{first['id']}/appeal",
                       json={"action": "dispute", "note": "I said the product is NOT capital-guaranteed"})
        assert r.status_code == 200 and r.json()["status"] == "disputed"
        assert alice.post(f"/api/v1/violations/{first['id']}/decision",
                          json={"decision": "overturn", "note": "self-approval"}).status_code == 403
        r = officer.post(f"/api/v1/violations/{first['id']}/decision",
                         json={"decision": "uphold", "note": "the recording at that second is clear"})
        assert r.status_code == 200 and r.json()["status"] == "appeal_upheld"

        # --- the agent's feedback: exact words and second, missing disclosures, compliant wording
        feedback = alice.get(f"/api/v1/calls/{call_id}/feedback").json()
        ids = {item["violation_id"] for item in feedback["flagged"]}
        assert first["id"] in ids and second["id"] not in ids  # dismissed flags are not fed back
        item = next(i for i in feedback["flagged"] if i["violation_id"] == first["id"])
        assert item["second"] == int(first["start"]) and item["said"] == first["matched_text"]
        assert item["words"] and all(w["end"] >= first["start"] - 0.05 for w in item["words"])
        assert item["compliant_wording"] == first["suggestion"]
        assert any(v["kind"] == "absence" for v in violations) == bool(feedback["missing_disclosures"])
        period = alice.get("/api/v1/agents/A1/feedback", params={"date_from": "2026-11-01T00:00:00Z"}).json()
        assert period["calls"] == 1 and period["flagged"] == len(feedback["flagged"])
        assert bob.get("/api/v1/agents/A1/feedback").status_code == 403

        # --- reports: precision from reviewers' decisions, CSV ---------------------------------
        precision = {row["rule_id"]: row for row in qa.get("/api/v1/reports/precision").json()}
        if first["rule_id"] != second["rule_id"]:
            assert precision[first["rule_id"]]["confirmed"] >= 1
            assert precision[second["rule_id"]]["dismissed"] >= 1
            assert precision[second["rule_id"]]["precision"] < 1.0
        counts = {row["key"]: row for row in qa.get("/api/v1/reports/counts", params={"by": "agent"}).json()}
        assert counts["A1"]["total"] == len(violations)
        csv_text = qa.get("/api/v1/reports/precision", params={"format": "csv"})
        assert csv_text.headers["content-type"].startswith("text/csv")
        assert csv_text.text.splitlines()[0] == "rule_id,title,flagged,reviewed,confirmed,dismissed,precision"
        assert alice.get("/api/v1/reports/counts").status_code == 403

        # --- the audit log: who, when, what, before/after; nothing can change it ---------------
        log = officer.get("/api/v1/audit", params={"entity_type": "violation"}).json()["items"]
        steps = [(e["action"], e["entity_id"], e["before"]["status"], e["after"]["status"], e["actor"]) for e in log]
        assert ("review.confirm", str(first["id"]), "open", "confirmed", "officer") in steps
        assert ("review.dismiss", str(second["id"]), "open", "dismissed", "officer") in steps
        assert ("appeal.dispute", str(first["id"]), "confirmed", "disputed", "alice") in steps
        assert ("appeal.uphold", str(first["id"]), "disputed", "appeal_upheld", "officer") in steps
        dismissal = next(e for e in log if e["action"] == "review.dismiss")
        assert dismissal["note"] == "ASR misheard; the agent said 不保本" and dismissal["at"]
        assert officer.delete(f"/api/v1/audit/{log[0]['id']}").status_code in (404, 405)
        assert alice.get("/api/v1/audit").status_code == 403
    with Session(engine) as session:
        for statement in ("UPDATE audit_log SET note = 'tampered'", "DELETE FROM audit_log"):
            with pytest.raises(Exception, match="append-only"):
                session.exec(text(statement))
                session.commit()
            session.rollback()
