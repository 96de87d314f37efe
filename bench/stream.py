"""Live-stream benchmark: alert delay, recall, concurrent real-time streams, memory over a long call.

    python bench/stream.py                       # everything (about 35 min)
    python bench/stream.py --phases latency --calls dev04,dev05
    python bench/stream.py --phases capacity --capacity 1,2,3,4
    python bench/stream.py --phases memory --memory-minutes 60 --memory-speed 3

A review service with the live extension runs in this process (uvicorn on loopback, SQLite in a
temporary directory, no post-call workers so that only the live path is measured; --post-call
adds them) with the default ASR model; the real client streams the dual-channel calls in
../shared/audio/calls at real-time speed.

* latency: each call streamed alone at 1x. For every planted violation (the calls' JSON ground
  truth): the delay from the moment the end of the offending clause was sent to the moment the
  client received the alert (same category, time overlap within 1.5 s; missing_disclosure: the
  call-level alert). Recall = planted violations alerted live; false alerts = live alerts matching
  no planted violation (and how many hit the calls' must-not-flag traps).
* capacity: N calls streamed at once at 1x for N = 1, 2, ...: alert delay p95, ASR wait, and
  whether the server warned it was behind or refused; the largest N with p95 <= 4 s and no
  warning is the number of real-time streams this machine sustains. Also reported: decoding CPU
  time per second of call audio (process CPU time, not disturbed by other load on the machine).
* memory: one long call (the calls back to back, --memory-minutes of audio) at --memory-speed x
  real time; the process's RSS sampled along the way (flat = no growth in the second half).

Timings depend on the machine and on what else runs on it: the load average is reported with them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CALLS = ROOT.parent / "shared" / "audio" / "calls"
TOL_S = 1.5


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def cpu_s() -> float:
    t = os.times()
    return t.user + t.system


def pct(values, q):
    if not values:
        return None
    values = sorted(values)
    k = (len(values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return round(values[lo] + (values[hi] - values[lo]) * (k - lo), 3)


class Server:
    def __init__(self, post_call: bool) -> None:
        import socket

        import uvicorn

        from compliance import store
        from compliance.config import load_settings
        from compliance.service import create_app
        from compliance.service.auth import create_user, issue_token
        from compliance.service.settings import ServiceSettings
        from sqlmodel import Session

        self.tmp = tempfile.TemporaryDirectory(prefix="bench-stream-")
        tmp = Path(self.tmp.name)
        settings = load_settings(data_dir=tmp / "data", db_url=f"sqlite:///{tmp / 'bench.db'}")
        engine = store.make_engine(settings.db_url)
        with Session(engine) as session:
            user = create_user(session, "bench", "qa")
            self.token, _ = issue_token(session, user)
        svc = ServiceSettings(queue="embedded" if post_call else "none", secret_key="bench-" + "x" * 20)
        self.app = create_app(settings, svc, engine=engine, start_workers=post_call)
        self.hub = self.app.state.live
        self.hub.max_streams = 64  # the benchmark finds the limit itself
        t0 = time.time()
        _ = self.hub.asr.transcriber  # load the model before timing anything
        self.model_load_s = round(time.time() - t0, 1)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.05)

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.tmp.cleanup()


def load_call(cid: str):
    from compliance.live.client import pcm16

    data, channels = pcm16(CALLS / f"{cid}.stereo.flac")
    truth = json.loads((CALLS / f"{cid}.json").read_text(encoding="utf-8"))
    return data, channels, truth


def stream_one(server: Server, cid: str, data: bytes, channels: int, realtime=True) -> dict:
    from compliance.live.client import stream_pcm

    events: list[dict] = []
    sent_at: dict[float, float] = {}
    t0 = time.time()
    summary = stream_pcm(server.url, server.token, data, channels=channels, realtime=realtime,
                         on_event=events.append, sent_at=sent_at, call={"agent_id": f"bench-{cid}"})
    return {"id": cid, "events": events, "sent_at": sent_at, "summary": summary, "wall_s": time.time() - t0}


def sent_time(sent_at: dict[float, float], pos: float) -> float:
    keys = sorted(sent_at)
    for k in keys:
        if k >= pos - 1e-6:
            return sent_at[k]
    return sent_at[keys[-1]]


def overlaps(a: dict, b: dict, tol: float = TOL_S) -> bool:
    return a["start"] <= b["end"] + tol and a["end"] >= b["start"] - tol


def score(run: dict, truth: dict) -> dict:
    alerts = [e for e in run["events"] if e["type"] == "violation"]
    retracted = {e["alert_id"] for e in run["events"] if e["type"] == "retracted"}
    rows = []
    for v in truth["violations"]:
        cands = [a for a in alerts if a["category"] == v["category"] and
                 (v["category"] == "missing_disclosure" or overlaps(a, v))]
        first = min(cands, key=lambda a: a["received_at"]) if cands else None
        delay = None
        if first is not None:
            delay = round(first["received_at"] - sent_time(run["sent_at"], v["end"]), 3)
        final = [x for x in (run["summary"] or {}).get("violations", []) if x["category"] == v["category"] and
                 (v["category"] == "missing_disclosure" or overlaps(x, v))]
        rows.append({"call": run["id"], "category": v["category"], "start": v["start"], "end": v["end"],
                     "text": v["text"], "alerted": first is not None, "delay_s": delay,
                     "in_summary": bool(final), "rule_id": first["rule_id"] if first else None})
    live = [a for a in alerts if a["alert_id"] not in retracted]
    false = [a for a in live if not any(a["category"] == v["category"] and
                                        (a["kind"] == "absence" or overlaps(a, v)) for v in truth["violations"])]
    traps = [a for a in false if any(overlaps(a, m, 0.0) for m in truth.get("must_not_flag", []))]
    waits = [e.get("asr_wait_s", 0.0) for e in run["events"] if e["type"] == "utterance"]
    warnings = [e for e in run["events"] if e["type"] == "warning" and e.get("code") == "behind"]
    return {"rows": rows, "false_alerts": [(a["rule_id"], a["category"], a["start"], a["matched_text"]) for a in false],
            "trap_hits": len(traps), "asr_wait_p95": pct(waits, 0.95), "behind_warnings": len(warnings)}


def phase_latency(server: Server, calls: list[str]) -> dict:
    rows, false, traps, per_call = [], [], 0, []
    for cid in calls:
        data, channels, truth = load_call(cid)
        run = stream_one(server, cid, data, channels)
        s = score(run, truth)
        rows += s["rows"]
        false += s["false_alerts"]
        traps += s["trap_hits"]
        per_call.append({"call": cid, "planted": len(s["rows"]), "alerted": sum(r["alerted"] for r in s["rows"]),
                         "false_alerts": len(s["false_alerts"]), "asr_wait_p95": s["asr_wait_p95"],
                         "behind_warnings": s["behind_warnings"]})
        print(f"  {cid}: {per_call[-1]}", flush=True)
    delays = [r["delay_s"] for r in rows if r["delay_s"] is not None]
    utt_delays = [r["delay_s"] for r in rows if r["delay_s"] is not None and r["category"] != "missing_disclosure"]
    return {"planted": len(rows), "alerted": sum(r["alerted"] for r in rows),
            "recall": round(sum(r["alerted"] for r in rows) / max(1, len(rows)), 3),
            "recall_summary": round(sum(r["in_summary"] for r in rows) / max(1, len(rows)), 3),
            "delay_median_s": pct(delays, 0.5), "delay_p95_s": pct(delays, 0.95), "delay_max_s": pct(delays, 1.0),
            "utterance_delay_median_s": pct(utt_delays, 0.5), "utterance_delay_p95_s": pct(utt_delays, 0.95),
            "false_alerts": len(false), "must_not_flag_hits": traps, "per_call": per_call, "violations": rows,
            "false_alert_list": false}


def phase_capacity(server: Server, levels: list[int], calls: list[str]) -> dict:
    loaded = {cid: load_call(cid) for cid in calls}
    out, sustained = [], 0
    for n in levels:
        picks = [calls[i % len(calls)] for i in range(n)]
        runs: list[dict] = [None] * n
        cpu0, busy0, dec0 = cpu_s(), server.hub.asr.busy_s, server.hub.asr.decoded_s

        def go(i, cid):
            data, channels, _truth = loaded[cid]
            runs[i] = stream_one(server, cid, data, channels)

        threads = [threading.Thread(target=go, args=(i, cid)) for i, cid in enumerate(picks)]
        t0 = time.time()
        for t in threads:
            t.start()
            time.sleep(0.5)
        for t in threads:
            t.join()
        wall = time.time() - t0
        scores = [score(r, loaded[r["id"]][2]) for r in runs]
        delays = [row["delay_s"] for s in scores for row in s["rows"] if row["delay_s"] is not None]
        waits = [e.get("asr_wait_s", 0.0) for r in runs for e in r["events"] if e["type"] == "utterance"]
        behind = sum(s["behind_warnings"] for s in scores)
        audio_s = sum(len(loaded[c][0]) / 4 / 16000 for c in picks)
        level = {"streams": n, "wall_s": round(wall, 1), "delay_median_s": pct(delays, 0.5),
                 "delay_p95_s": pct(delays, 0.95), "asr_wait_p95_s": pct(waits, 0.95), "behind_warnings": behind,
                 "recall": round(sum(row["alerted"] for s in scores for row in s["rows"]) /
                                 max(1, sum(len(s["rows"]) for s in scores)), 3),
                 "cpu_s_per_audio_s": round((cpu_s() - cpu0) / audio_s, 3),
                 "asr_busy_s_per_audio_s": round((server.hub.asr.busy_s - busy0) / audio_s, 3),
                 "asr_decoded_s": round(server.hub.asr.decoded_s - dec0, 1),
                 "load_avg": os.getloadavg()[0]}
        ok = (level["delay_p95_s"] is None or level["delay_p95_s"] <= 4.0) and behind == 0 and \
            (level["asr_wait_p95_s"] or 0.0) <= 3.0
        level["sustained"] = ok
        out.append(level)
        print(f"  {n} stream(s): {level}", flush=True)
        if ok:
            sustained = n
        else:
            break
    return {"levels": out, "sustained_realtime_streams": sustained}


def phase_memory(server: Server, minutes: float, speed: float) -> dict:
    """One long call: the development calls back to back (with 2 s of silence between them)."""
    import json as _json

    from websockets.sync.client import connect

    from compliance.live.client import pcm16, ws_url

    pieces = []
    for path in sorted(CALLS.glob("dev0*.stereo.flac")):
        data, _ch = pcm16(path)
        pieces.append(data + bytes(2 * 16000 * 4))
    total = int(minutes * 60 * 16000) * 4
    chunk = 16000 * 4 // 5  # 0.2 s
    samples: list[tuple[float, float, int, float]] = []
    sample_every = max(30.0, minutes * 60 / 12)
    counts = {"utterance": 0, "violation": 0, "warning": 0}
    done = threading.Event()
    with connect(ws_url(server.url), additional_headers={"Authorization": f"Bearer {server.token}"},
                 max_size=None) as ws:
        ws.send(_json.dumps({"type": "start", "sample_rate": 16000, "channels": 2, "agent_channel": 0}))
        assert _json.loads(ws.recv())["type"] == "started"

        def reader():
            try:
                while True:
                    e = _json.loads(ws.recv())
                    counts[e["type"]] = counts.get(e["type"], 0) + 1
                    if e["type"] == "summary":
                        break
            except Exception:
                pass
            done.set()

        threading.Thread(target=reader, daemon=True).start()
        t0, sent, i, next_sample = time.time(), 0, 0, 0.0
        piece, off = 0, 0
        while sent < total:
            data = pieces[piece][off: off + chunk]
            off += chunk
            if off >= len(pieces[piece]):
                piece, off = (piece + 1) % len(pieces), 0
            ws.send(data)
            sent += len(data)
            pos = sent / 4 / 16000
            if speed > 0:
                delay = t0 + pos / speed - time.time()
                if delay > 0:
                    time.sleep(delay)
            else:  # as fast as the server keeps up: hold back while transcription lags > 2 s
                while server.hub.asr.lag_s() > 2.0:
                    time.sleep(0.2)
            if pos >= next_sample:
                samples.append((round(pos / 60, 2), round(rss_mb(), 1), counts["utterance"],
                                round(server.hub.asr.lag_s(), 2)))
                print(f"  {pos / 60:5.1f} min: RSS {samples[-1][1]} MB, {counts['utterance']} utterances, "
                      f"lag {samples[-1][3]} s", flush=True)
                next_sample += sample_every
            i += 1
        ws.send(_json.dumps({"type": "end"}))
        done.wait(900)
    samples.append((round(total / 4 / 16000 / 60, 2), round(rss_mb(), 1), counts["utterance"], 0.0))
    half = [s[1] for s in samples if s[0] >= minutes / 2]
    wall = time.time() - t0
    return {"minutes": minutes, "speed": speed, "wall_min": round(wall / 60, 1), "samples_min_rss_utterances_lag": samples,
            "rss_first_mb": samples[0][1], "rss_last_mb": samples[-1][1],
            "rss_growth_second_half_mb": round(max(half) - min(half), 1) if half else None,
            "utterances": counts["utterance"], "alerts": counts["violation"], "behind_warnings": counts["warning"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--phases", default="latency,capacity,memory")
    ap.add_argument("--calls", default=",".join(p.name.split(".")[0] for p in sorted(CALLS.glob("dev0*.stereo.flac"))))
    ap.add_argument("--capacity", default="1,2,3,4,5,6", help="stream counts to try, in order (stops at the first failure)")
    ap.add_argument("--memory-minutes", type=float, default=60.0)
    ap.add_argument("--memory-speed", type=float, default=0.0,
                    help="x real time for the memory run (0: as fast as transcription keeps up)")
    ap.add_argument("--post-call", action="store_true", help="also run the post-call analysis workers")
    ap.add_argument("--json", type=Path, help="write the full results here")
    args = ap.parse_args()
    phases = set(args.phases.split(","))
    calls = [c for c in args.calls.split(",") if c]
    import logging

    logging.basicConfig(level=logging.WARNING)
    server = Server(args.post_call)
    results = {"cores": os.cpu_count(), "load_avg_start": os.getloadavg(), "model_load_s": server.model_load_s,
               "asr_model": getattr(server.hub.asr.transcriber, "name", "")}
    try:
        if "latency" in phases:
            print("latency and recall (one call at a time, 1x):", flush=True)
            results["latency"] = phase_latency(server, calls)
        if "capacity" in phases:
            print("concurrent real-time streams:", flush=True)
            planted = [c for c in calls if load_call(c)[2]["violations"]] or calls
            results["capacity"] = phase_capacity(server, [int(x) for x in args.capacity.split(",")], planted)
        if "memory" in phases:
            print(f"memory over a {args.memory_minutes:g}-minute stream at "
                  f"{f'{args.memory_speed:g}x' if args.memory_speed else 'the speed transcription keeps up with'}:",
                  flush=True)
            results["memory"] = phase_memory(server, args.memory_minutes, args.memory_speed)
    finally:
        results["load_avg_end"] = os.getloadavg()
        server.close()
    if args.json:
        args.json.write_text(json.dumps(results, ensure_ascii=False, indent=1), encoding="utf-8")
    lat = results.get("latency")
    print("\n== summary ==")
    print(f"cores {results['cores']}, load average {results['load_avg_start'][0]:.1f} -> {results['load_avg_end'][0]:.1f}")
    if lat:
        print(f"alert delay median {lat['delay_median_s']} s, p95 {lat['delay_p95_s']} s (utterance-level: median "
              f"{lat['utterance_delay_median_s']} s, p95 {lat['utterance_delay_p95_s']} s); recall "
              f"{lat['alerted']}/{lat['planted']} = {lat['recall']} (summary {lat['recall_summary']}); "
              f"false alerts {lat['false_alerts']} ({lat['must_not_flag_hits']} on must-not-flag traps)")
    if "capacity" in results:
        c = results["capacity"]
        print(f"sustained real-time streams: {c['sustained_realtime_streams']} "
              f"(levels: {[(lv['streams'], lv['delay_p95_s'], lv['behind_warnings']) for lv in c['levels']]})")
    if "memory" in results:
        m = results["memory"]
        print(f"memory: RSS {m['rss_first_mb']} -> {m['rss_last_mb']} MB over {m['minutes']:g} min "
              f"(second-half growth {m['rss_growth_second_half_mb']} MB)")


if __name__ == "__main__":
    main()
