"""Live calls end to end over a real WebSocket (uvicorn on loopback) with the real whisper model and
rule packs: a real call streamed gives the post-call analysis' violations; the audio of a dropped
or interrupted stream is kept and analysed as an incomplete call; bad frames and messages get
error events; authentication, roles and capacity are enforced."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from test_service_support import LiveServer, make_users, service_settings, wait_job, client  # noqa: F401

pytestmark = pytest.mark.slow

CALL = "dev04"


def _app(tmp_path, whisper, *, workers=True):
    from compliance import store
    from compliance.config import load_settings
    from compliance.pipeline import Analyzer
    from compliance.service import create_app

    settings = load_settings(data_dir=tmp_path / "data", db_url=f"sqlite:///{tmp_path / 'service.db'}")
    engine = store.make_engine(settings.db_url)
    tokens = make_users(engine)
    app = create_app(settings, service_settings(), analyzer=Analyzer(settings, transcriber=whisper, engine=engine),
                     engine=engine, start_workers=workers)
    app.state.live.asr.transcriber = whisper
    return app, tokens, engine


def _match(a, b, tol=2.0):
    """Pairs of violations (same rule, times within `tol` s; call-level rules: same rule)."""
    pairs, used = [], set()
    for x in a:
        for j, y in enumerate(b):
            if j in used or x["rule_id"] != y["rule_id"]:
                continue
            if x["kind"] in ("absence", "ordering") or \
                    max(x["start"], y["start"]) - min(x["end"], y["end"]) <= tol:
                pairs.append((x, y))
                used.add(j)
                break
    return pairs


def test_stream_gives_the_post_call_violations(tmp_path, shared, whisper):
    """The documented tolerance: at least 80 % of the post-call violations are found live (same
    rule, within 2 s) and at least 80 % of the live ones are in the post-call result; missing
    disclosures agree exactly. Alerts are linked to the stored violations after the job."""
    from compliance.live.client import ws_url, stream_file

    app, tokens, _engine = _app(tmp_path, whisper)
    path = shared / "audio" / "calls" / f"{CALL}.stereo.flac"
    events, watched = [], []
    with LiveServer(app) as server:
        from websockets.sync.client import connect

        with connect(ws_url(server.url, "/api/v1/live/watch"),
                     additional_headers={"Authorization": f"Bearer {tokens['officer']}"}) as officer, \
                connect(ws_url(server.url, "/api/v1/live/watch") + f"?token={tokens['bob']}") as bob:
            snap = json.loads(officer.recv(timeout=10))
            assert snap["type"] == "snapshot" and snap["streams"] == []
            assert json.loads(bob.recv(timeout=10))["type"] == "snapshot"
            summary = stream_file(server.url, tokens["alice"], path, on_event=events.append,
                                  call={"customer_id": "C-1", "product": "稳盈"})
            while True:  # the supervisor saw the call start, its alerts and its end
                e = json.loads(officer.recv(timeout=30))
                watched.append(e)
                if e["type"] == "ended":
                    break
            with pytest.raises(TimeoutError):  # another agent's feed stays silent
                bob.recv(timeout=0.5)
        assert summary is not None and summary["complete"] and summary["job_id"]
        kinds = [e["type"] for e in events]
        assert kinds[0] == "started" and "utterance" in kinds and "violation" in kinds
        utts = [e for e in events if e["type"] == "utterance"]
        assert {e["role"] for e in utts} == {"agent", "customer"}
        assert all(0 <= e["start"] <= e["end"] <= summary["duration"] + 0.5 for e in utts)
        assert [e["stream_id"] for e in watched if e["type"] == "started"] == [summary["stream_id"]]
        assert all(e["agent_id"] == "A1" for e in watched)
        alerts = [e for e in events if e["type"] == "violation"]
        assert {a["alert_id"] for a in alerts} == {e["alert_id"] for e in watched if e["type"] == "violation"}

        # the stream became a normal call job: wait for the post-call analysis
        with client(server.url, tokens["qa"]) as qa:
            job = wait_job(qa, summary["job_id"], deadline_s=400)
            assert job["status"] == "done", job["error"]
            assert job["filename"].startswith("live-") and "incomplete" not in job["filename"]
            call = qa.get(f"/api/v1/calls/{job['call_id']}").json()
            assert call["agent_id"] == "A1" and call["customer_id"] == "C-1"
            assert abs(call["duration"] - summary["duration"]) < 0.01
            post = qa.get(f"/api/v1/calls/{job['call_id']}/violations").json()
            detail = qa.get(f"/api/v1/live/streams/{summary['stream_id']}").json()
    live = summary["violations"]
    assert post, "the post-call analysis of this call has violations"
    found = _match(post, live)
    assert len(found) >= 0.8 * len(post), (post, live)
    assert len(_match(live, post)) >= 0.8 * len(live), (post, live)
    assert sorted(v["rule_id"] for v in live if v["kind"] == "absence") == \
        sorted(v["rule_id"] for v in post if v["kind"] == "absence")
    # live alerts linked to the stored violations
    assert detail["call_id"] == job["call_id"] and detail["status"] == "ended" and detail["complete"]
    linked = {a["violation_id"] for a in detail["alerts"] if a["violation_id"]}
    assert linked and linked <= {v["id"] for v in post}
    assert len(detail["post_call"]["confirmed"]) == len(linked)


def test_early_alert_at_a_clause_pause_before_the_utterance_is_final(tmp_path, shared, whisper):
    """Streamed at 1x, an offending clause in the middle of a turn is alerted at its own pause
    (`early`), before the utterance holding it is final; every early alert is then either borne out
    by the final words (it stays, and the summary has it) or withdrawn, never alerted twice."""
    from compliance.live.client import pcm16, stream_pcm

    app, tokens, _engine = _app(tmp_path, whisper, workers=False)
    data, channels = pcm16(shared / "audio" / "calls" / f"{CALL}.stereo.flac")
    events = []
    with LiveServer(app) as server:  # the first 27 s: 保本保收益, then 肯定能拿到5% mid-turn
        summary = stream_pcm(server.url, tokens["qa"], data[:27 * 16000 * 4], channels=channels, realtime=True,
                             on_event=events.append)
    assert summary is not None
    alerts = [e for e in events if e["type"] == "violation"]
    early = [a for a in alerts if a["early"]]
    assert early, alerts
    withdrawn = {e["alert_id"] for e in events if e["type"] == "retracted"}
    final = summary["violations"]
    for a in early:
        # sent before the utterance holding its last words was final
        holder = [e for e in events if e["type"] == "utterance" and e["role"] == a["role"]
                  and e["start"] - 0.5 <= a["end"] <= e["end"] + 0.5]
        assert holder and events.index(a) < events.index(holder[0]), (a, holder)
        if a["alert_id"] not in withdrawn:
            assert _match([a], final), (a, final)
        twice = [b for b in alerts if b is not a and b["rule_id"] == a["rule_id"] and b["alert_id"] not in withdrawn
                 and b["matched_text"] == a["matched_text"] and abs(b["start"] - a["start"]) < 1.0]
        assert not twice, (a, twice)


def test_dropped_connection_keeps_the_audio(tmp_path, shared, whisper):
    """The client vanishes after 20 s: all it sent is stored, byte for byte, as an incomplete call."""
    import wave

    from sqlmodel import Session

    from compliance.live.client import pcm16, stream_pcm
    from compliance.live.storage import LiveStreamRecord
    from compliance.service.models import Job

    app, tokens, engine = _app(tmp_path, whisper, workers=False)
    data, channels = pcm16(shared / "audio" / "calls" / f"{CALL}.stereo.flac")
    events = []
    with LiveServer(app) as server:
        got = stream_pcm(server.url, tokens["qa"], data[:20 * 16000 * 4 + 3], channels=channels, end=False,
                         on_event=events.append, chunk_s=0.37, timeout_s=5)
        assert got is None
        stream_id = events[0]["stream_id"]
        for _ in range(200):
            with Session(engine) as session:
                rec = session.get(LiveStreamRecord, stream_id)
                if rec.job_id:
                    break
            time.sleep(0.1)
    assert rec.status == "interrupted" and not rec.complete and abs(rec.received_s - 20.0) < 1e-6
    with Session(engine) as session:
        job = session.get(Job, rec.job_id)
        assert job.filename.endswith("-incomplete.wav") and job.status == "queued" and job.agent_channel == 0
    blob = app.state.ctx.blobs.path(job.blob_sha256)
    with wave.open(str(blob)) as w:
        assert (w.getnchannels(), w.getframerate()) == (2, 16000)
        assert w.readframes(w.getnframes()) == data[:20 * 16000 * 4]  # the 3 stray bytes: not a whole sample
    assert not list((tmp_path / "data" / "live").glob("*.pcm"))


def test_restart_recovers_an_interrupted_stream(tmp_path, whisper):
    """A server died mid-call: the next one finds the spool and stores it as an incomplete call."""
    from sqlmodel import Session, select

    from compliance.live.storage import LiveStreamRecord
    from compliance.service.models import Job

    live = tmp_path / "data" / "live"
    live.mkdir(parents=True)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    import socket

    (live / "abc123.json").write_text(json.dumps({
        "stream_id": "abc123", "user_id": None, "owner": f"{socket.gethostname()}:{dead}:deadbeef:live",
        "start": {"type": "start", "sample_rate": 8000, "channels": 1, "language": "zh",
                  "call": {"agent_id": "A9"}}}))
    (live / "abc123.pcm").write_bytes(os.urandom(8000 * 2 * 3 + 1))
    app, _tokens, engine = _app(tmp_path, whisper, workers=False)
    with LiveServer(app):
        assert [s for s, _ in app.state.live.recovered] == ["abc123"]
    with Session(engine) as session:
        rec = session.get(LiveStreamRecord, "abc123")
        assert rec.status == "recovered" and not rec.complete and rec.received_s == 3.0
        job = session.exec(select(Job).where(Job.id == rec.job_id)).one()
        assert job.agent_id == "A9" and job.filename == "live-abc123-incomplete.wav"
    assert not list(live.iterdir())


def _ws(server, token=None, query=""):
    from websockets.sync.client import connect

    from compliance.live.client import ws_url

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return connect(ws_url(server.url) + query, additional_headers=headers, max_size=None)


def _recv(ws):
    return json.loads(ws.recv(timeout=30))


def test_bad_frames_and_messages_get_error_events(tmp_path, whisper):
    app, tokens, _engine = _app(tmp_path, whisper, workers=False)
    silence = bytes(16000 * 2)  # 1 s of mono silence
    with LiveServer(app) as server, _ws(server, tokens["qa"]) as ws:
        ws.send(b"\x00\x01")
        assert _recv(ws)["code"] == "not_started"
        ws.send("{not json")
        e = _recv(ws)
        assert (e["type"], e["code"], e["fatal"]) == ("error", "bad_message", False)
        ws.send(json.dumps({"type": "start", "sample_rate": 44100, "channels": 1}))
        e = _recv(ws)
        assert e["code"] == "bad_start" and "sample_rate" in e["detail"]
        ws.send(json.dumps({"type": "start", "sample_rate": 16000, "channels": 1}))
        started = _recv(ws)
        assert started["type"] == "started" and started["format"]["channels"] == 1
        ws.send(silence[:3])  # half a sample: kept for the next frame
        ws.send(silence[3:])
        ws.send(bytes(started["max_frame_bytes"] + 2))
        e = _recv(ws)
        assert e["code"] == "frame_too_large" and not e["fatal"]
        ws.send(json.dumps({"type": "start"}))
        assert _recv(ws)["code"] == "already_started"
        ws.send(json.dumps({"type": "pause"}))
        assert _recv(ws)["code"] == "bad_message"
        ws.send(json.dumps([1, 2]))
        assert _recv(ws)["code"] == "bad_message"
        ws.send(json.dumps({"type": "ping"}))
        assert _recv(ws) == {"type": "pong", "t": 1.0}  # the stream survived: 1 s received
        ws.send(silence + b"\x07")
        ws.send(json.dumps({"type": "end"}))
        e = _recv(ws)
        assert e["type"] == "warning" and e["code"] == "partial_sample"
        summary = _recv(ws)
        assert summary["type"] == "summary" and summary["duration"] == 2.0 and summary["violations"] == []
        assert summary["job_id"]


def test_auth_roles_and_capacity(tmp_path, whisper):
    from websockets.exceptions import ConnectionClosed

    app, tokens, _engine = _app(tmp_path, whisper, workers=False)
    start = json.dumps({"type": "start", "sample_rate": 16000, "channels": 2, "agent_channel": 0})
    with LiveServer(app) as server:
        for token, query, code, close in ((None, "", "unauthorized", 4401), ("cpl_nope", "", "unauthorized", 4401),
                                          (None, "?token=cpl_nope", "unauthorized", 4401),
                                          (tokens["officer"], "", "forbidden", 4403)):
            with _ws(server, token, query) as ws:
                e = _recv(ws)
                assert (e["type"], e["code"], e["fatal"]) == ("error", code, True)
                with pytest.raises(ConnectionClosed) as closed:
                    ws.recv(timeout=10)
                assert closed.value.rcvd.code == close
        with _ws(server, tokens["bob"]) as ws:  # an agent streams only their own calls
            ws.send(json.dumps({"type": "start", "channels": 1, "call": {"agent_id": "A1"}}))
            assert _recv(ws)["code"] == "forbidden"
        app.state.live.max_streams = 1
        with _ws(server, tokens["alice"]) as first, _ws(server, tokens["qa"]) as second:
            first.send(start)
            assert _recv(first)["type"] == "started"
            second.send(start)
            e = _recv(second)
            assert e["code"] == "over_capacity" and "1 live streams" in e["detail"]
            with pytest.raises(ConnectionClosed) as closed:
                second.recv(timeout=10)
            assert closed.value.rcvd.code == 1013
            with client(server.url, tokens["officer"]) as officer:
                listed = officer.get("/api/v1/live/streams").json()
                assert [s["live"] for s in listed["streams"]] == [True] and listed["load"]["streams"] == 1
            with client(server.url, tokens["bob"]) as bob:
                assert bob.get("/api/v1/live/streams").json()["streams"] == []
            first.send(json.dumps({"type": "end"}))
            assert _recv(first)["type"] == "summary"
        with client(server.url) as anonymous:
            assert anonymous.get("/api/v1/live/streams").status_code == 401
            assert "Live calls" in anonymous.get("/live").text


def test_mono_8khz_stream_assigns_speakers_online(tmp_path, shared, whisper):
    """A mono 8 kHz stream (the first 35 s of a call): online speaker assignment tells the agent
    from the customer, the agent's violations are alerted, the call is queued for diarization."""
    from sqlmodel import Session

    from compliance.live.client import pcm16, stream_pcm
    from compliance.service.models import Job

    app, tokens, engine = _app(tmp_path, whisper, workers=False)
    data, channels = pcm16(shared / "audio" / "calls" / f"{CALL}.mono.flac", sample_rate=8000)
    assert channels == 1
    events = []
    with LiveServer(app) as server:
        summary = stream_pcm(server.url, tokens["qa"], data[:35 * 8000 * 2], channels=1, sample_rate=8000,
                             on_event=events.append)
    assert summary["complete"] and abs(summary["duration"] - 35.0) < 1e-6
    utts = [e for e in events if e["type"] == "utterance"]
    truth = json.loads((shared / "audio" / "calls" / f"{CALL}.json").read_text(encoding="utf-8"))

    def who(u):  # the ground-truth speaker of the turn the utterance overlaps most
        return max(truth["turns"], key=lambda t: min(t["end"], u["end"]) - max(t["start"], u["start"]))["speaker"]

    final_role = {}
    for u in utts:
        final_role[u["speaker"]] = u["role"]
    assert len(final_role) == 2 and sorted(final_role.values()) == ["agent", "customer"]
    right = sum(final_role[u["speaker"]] == who(u) for u in utts)
    assert right >= 0.8 * len(utts), [(u["speaker"], who(u), u["text"]) for u in utts]
    alerts = [e for e in events if e["type"] == "violation" and e["kind"] != "absence"]
    # 8 kHz costs whisper some accuracy (保本 may come out as 爆本): at least one of the two
    assert {"guarantee_of_principal", "guaranteed_return"} & {a["category"] for a in alerts}
    assert all(a["role"] == "agent" for a in alerts if a["category"].startswith("guarant"))
    assert not any(a["early"] for a in alerts)  # mono: who speaks is known at the final segment only
    with Session(engine) as session:
        job = session.get(Job, summary["job_id"])
        assert job.agent_channel is None  # mono: the post-call analysis diarizes


def test_short_encoder_window_decodes_a_real_clause_and_leaves_the_shared_model_alone(shared, whisper):
    """The live path pads a clip to a 10 s encoder window (beam 2) instead of 30 s (beam 5): the
    offending clause comes out as with the full window, with call-time word times inside the clip,
    and the model (shared with the post-call analysis) is not changed by it."""
    import jiwer

    from compliance.ingest import load_audio
    from compliance.live.asr import DecodeOptions, transcribe_segment
    from compliance.transcribe import join_words

    audio = load_audio(shared / "audio" / "calls" / f"{CALL}.stereo.flac")
    clip = audio.samples[0][int(17.3 * 16000):int(24.0 * 16000)]  # 这款产品是保本保收益的，期限一年，…
    fe = whisper.model.feature_extractor
    before = (fe.n_samples, fe.nb_max_frames)
    texts = []
    for window, beam in ((10.0, 2), (30.0, 5)):
        words, lang = transcribe_segment(whisper, clip, 0, "zh", 17.3, DecodeOptions(window_s=window, beam_size=beam))
        text = join_words([w.text for w in words])
        # whisper base hears 保本 as 保分 here, whatever the window
        assert lang == "zh" and "保收益" in text and "肯定能拿到" in text, (window, text)
        assert all(17.3 <= w.start <= w.end <= 24.1 for w in words), (window, words)
        texts.append("".join(ch for ch in text if ch.isalnum()))
    assert jiwer.cer(texts[1], texts[0]) < 0.15, texts
    assert (fe.n_samples, fe.nb_max_frames) == before == (30 * 16000, 3000)


def test_batched_decoding_gives_what_one_decode_per_pack_gives(shared, whisper):
    """Several streams' waiting clauses decoded as one batch (one encoder call, one batched beam
    search, one alignment) come out with exactly the words and word times that decoding each pack
    alone gives; a faint-noise clip in the batch (what whisper may only hallucinate on) does not
    disturb the others."""
    from compliance.ingest import load_audio
    import numpy as np

    from compliance.live.asr import FINAL, DecodeOptions, _Task, decode_batch, decode_packs

    truth = json.loads((shared / "audio" / "calls" / f"{CALL}.json").read_text(encoding="utf-8"))
    audio = load_audio(shared / "audio" / "calls" / f"{CALL}.stereo.flac")
    clauses = [(0 if t["speaker"] == "agent" else 1, c["start"], c["end"]) for t in truth["turns"]
               for c in t["segments"]][:7]
    tasks = [_Task(FINAL, i, audio.samples[ch][int((s - 0.2) * 16000):int((e + 0.2) * 16000)].copy(), 0, s - 0.2,
                   "zh", None) for i, (ch, s, e) in enumerate(clauses)]
    noise = np.random.default_rng(1).standard_normal(32000).astype(np.float32) * 1e-3
    tasks.append(_Task(FINAL, 99, noise, 0, 500.0, "zh", None))
    packs = [tasks[0:2], tasks[2:3], tasks[3:5], [tasks[7]], tasks[5:7]]
    options = DecodeOptions(window_s=10.0, beam_size=2, batch_max=8)
    alone = [decode_batch(whisper, p, options) for p in packs]
    together = decode_packs(whisper, packs, options)
    assert len(together) == len(packs)
    key = lambda res: [[(w.text, w.start, w.end) for w in words] for words, _lang in res]  # noqa: E731
    assert [key(r) for r in together] == [key(r) for r in alone]
    assert sum(len(words) for r in together[:3] for words, _ in r) > 10


def test_app_start_warms_the_live_path(tmp_path, whisper):
    """Starting the service warms the live path in the background: the rule packs with their
    similarity layer trained and the ASR model decoded with, before any call arrives."""
    app, _tokens, _engine = _app(tmp_path, whisper, workers=False)
    hub = app.state.live
    with LiveServer(app):
        assert hub._warmer is not None
        hub._warmer.join(120)
        assert hub.rules_ready.is_set() and not hub.rules_building()
        sim = getattr(hub.rules, "similarity", None)
        assert sim is None or sim._model is not None
        assert {"rules_s", "first_utterance_s", "asr_s"} <= set(hub.warm)
