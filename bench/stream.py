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
  client received the alert (same category, time overlap within 1.5 s, the best-fitting alert;
  missing_disclosure: the call-level alert, whose provisional alert precedes the clause it is
  anchored to, so the utterance-level figures leave it out). Recall = planted violations alerted live; false alerts = live alerts matching
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
    def __init__(self, post_call: bool, overrides: dict | None = None) -> None:
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
        settings = load_settings(data_dir=tmp / "data", db_url=f"sqlite:///{tmp / 'bench.db'}", **(overrides or {}))
        self.settings = settings
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
        self.warm_up = None
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.05)
        warmer = getattr(self.hub, "_warmer", None)  # the live path warms up in the background at start
        if warmer is not None:
            t0 = time.time()
            warmer.join(300)
            self.warm_up = {"wall_s": round(time.time() - t0, 1), **getattr(self.hub, "warm", {})}

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


def likeness(alert: dict, v: dict) -> float:
    """How well an alert fits a planted violation: the share of the planted text's characters in
    the alert's matched text, plus how much their times overlap (so that of two alerts of one
    category near each other, each planted violation gets its own, not the earlier one)."""
    if v["category"] == "missing_disclosure":
        return 0.0
    text = set(v["text"])
    shared = len(text & set(alert.get("matched_text") or "")) / max(1, len(text))
    overlap = min(alert["end"], v["end"]) - max(alert["start"], v["start"])
    return shared + max(0.0, overlap) / max(0.1, v["end"] - v["start"])


def breakdown(run: dict, alert: dict | None, v: dict, delay: float | None) -> dict | None:
    """Where an utterance-level alert's delay went (seconds): talking on after the offending clause
    until the segment holding it ended (talk_on), the VAD's wait for silence (cut), waiting for the
    ASR worker (wait), decoding (decode; the whole packed decode it was part of), and the rest
    (rules, events, the server reading the audio late)."""
    if alert is None or delay is None or v["category"] == "missing_disclosure":
        return None
    utt = next((e for e in run["events"] if e["type"] == "utterance" and e.get("id") == alert.get("utterance_id")),
               None)
    timing = (utt or {}).get("timing")
    if not timing:
        return None
    parts = {"talk_on": max(0.0, timing["segment_end"] - v["end"]),
             "cut": max(0.0, timing["cut_at"] - timing["segment_end"]),
             "wait": timing["asr_wait_s"], "decode": timing["asr_decode_s"]}
    parts["rest"] = delay - sum(parts.values())
    parts = {k: round(x, 3) for k, x in parts.items()}
    parts.update(batch=timing["batch"], window_s=timing["window_s"], forced=timing["forced"])
    return parts


def score(run: dict, truth: dict) -> dict:
    alerts = [e for e in run["events"] if e["type"] == "violation"]
    retracted = {e["alert_id"] for e in run["events"] if e["type"] == "retracted"}
    rows = []
    for v in truth["violations"]:
        cands = [a for a in alerts if a["category"] == v["category"] and
                 (v["category"] == "missing_disclosure" or overlaps(a, v))]
        first = min(cands, key=lambda a: (-likeness(a, v), a["received_at"])) if cands else None
        delay = None
        if first is not None:
            delay = round(first["received_at"] - sent_time(run["sent_at"], v["end"]), 3)
        final = [x for x in (run["summary"] or {}).get("violations", []) if x["category"] == v["category"] and
                 (v["category"] == "missing_disclosure" or overlaps(x, v))]
        rows.append({"call": run["id"], "category": v["category"], "start": v["start"], "end": v["end"],
                     "text": v["text"], "alerted": first is not None, "delay_s": delay,
                     "in_summary": bool(final), "rule_id": first["rule_id"] if first else None,
                     "early": bool(first and first.get("early")),
                     "breakdown": breakdown(run, first, v, delay)})
    live = [a for a in alerts if a["alert_id"] not in retracted]
    false = [a for a in live if not any(a["category"] == v["category"] and
                                        (a["kind"] == "absence" or overlaps(a, v)) for v in truth["violations"])]
    traps = [a for a in false if any(overlaps(a, m, 0.0) for m in truth.get("must_not_flag", []))]
    waits = [e.get("asr_wait_s", 0.0) for e in run["events"] if e["type"] == "utterance"]
    warnings = [e for e in run["events"] if e["type"] == "warning" and e.get("code") == "behind"]
    early = [a for a in alerts if a.get("early")]
    return {"rows": rows, "false_alerts": [(a["rule_id"], a["category"], a["start"], a["matched_text"]) for a in false],
            "early": len(early), "early_withdrawn": sum(a["alert_id"] in retracted for a in early),
            "trap_hits": len(traps), "asr_wait_p95": pct(waits, 0.95), "behind_warnings": len(warnings)}


def asr_counters(server: Server) -> dict:
    asr = server.hub.asr
    return {"cpu": cpu_s(), "busy": asr.busy_s, "partial_busy": getattr(asr, "partial_busy_s", 0.0),
            "decodes": asr.decodes, "partials": getattr(asr, "partials", 0),
            "batches": getattr(asr, "batches", 0), "batched": getattr(asr, "batched", 0),
            "redone": getattr(asr, "redone", 0)}


def batch_counts(before: dict, after: dict) -> dict:
    """Final decodes of several packs at once (batches), the packs in them, and packs of a batch
    decoded again alone."""
    return {k: after[k] - before[k] for k in ("batches", "batched", "redone")}


def phase_latency(server: Server, calls: list[str]) -> dict:
    rows, false, traps, per_call, early, withdrawn = [], [], 0, [], 0, 0
    before, audio_s = asr_counters(server), 0.0
    for cid in calls:
        data, channels, truth = load_call(cid)
        run = stream_one(server, cid, data, channels)
        audio_s += len(data) / (2 * channels) / 16000
        s = score(run, truth)
        rows += s["rows"]
        false += s["false_alerts"]
        traps += s["trap_hits"]
        early += s["early"]
        withdrawn += s["early_withdrawn"]
        per_call.append({"call": cid, "planted": len(s["rows"]), "alerted": sum(r["alerted"] for r in s["rows"]),
                         "false_alerts": len(s["false_alerts"]), "asr_wait_p95": s["asr_wait_p95"],
                         "behind_warnings": s["behind_warnings"]})
        print(f"  {cid}: {per_call[-1]}", flush=True)
    after = asr_counters(server)
    delays = [r["delay_s"] for r in rows if r["delay_s"] is not None]
    utt_delays = [r["delay_s"] for r in rows if r["delay_s"] is not None and r["category"] != "missing_disclosure"]
    parts = [r["breakdown"] for r in rows if r.get("breakdown")]
    split = {k: {"median": pct([p[k] for p in parts], 0.5), "p95": pct([p[k] for p in parts], 0.95)}
             for k in ("talk_on", "cut", "wait", "decode", "rest")} if parts else None
    return {"cpu_s_per_call_s": round((after["cpu"] - before["cpu"]) / audio_s, 3),
            "asr_final_s_per_call_s": round((after["busy"] - before["busy"]) / audio_s, 3),
            "asr_partial_s_per_call_s": round((after["partial_busy"] - before["partial_busy"]) / audio_s, 3),
            "final_decodes": after["decodes"] - before["decodes"], "batching": batch_counts(before, after),
            "partial_decodes": after["partials"] - before["partials"], "call_s": round(audio_s, 1),
            "delay_breakdown": split, "load_avg_end": os.getloadavg()[0],
            "planted": len(rows), "alerted": sum(r["alerted"] for r in rows),
            "recall": round(sum(r["alerted"] for r in rows) / max(1, len(rows)), 3),
            "recall_summary": round(sum(r["in_summary"] for r in rows) / max(1, len(rows)), 3),
            "delay_median_s": pct(delays, 0.5), "delay_p95_s": pct(delays, 0.95), "delay_max_s": pct(delays, 1.0),
            "utterance_delay_median_s": pct(utt_delays, 0.5), "utterance_delay_p95_s": pct(utt_delays, 0.95),
            "false_alerts": len(false), "must_not_flag_hits": traps, "early_alerts": early,
            "early_withdrawn": withdrawn, "per_call": per_call, "violations": rows,
            "false_alert_list": false}


def phase_capacity(server: Server, levels: list[int], calls: list[str], keep_going: bool = False) -> dict:
    loaded = {cid: load_call(cid) for cid in calls}
    out, sustained = [], 0
    for n in levels:
        picks = [calls[i % len(calls)] for i in range(n)]
        runs: list[dict] = [None] * n
        cpu0, busy0, dec0 = cpu_s(), server.hub.asr.busy_s, server.hub.asr.decoded_s
        counters0 = asr_counters(server)
        load0 = os.getloadavg()[0]

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
        # utterance-level violations only: a missing disclosure's provisional alert precedes its anchor
        alerted = [row for s in scores for row in s["rows"]
                   if row["delay_s"] is not None and row["category"] != "missing_disclosure"]
        delays = [row["delay_s"] for row in alerted]
        waits = [e.get("asr_wait_s", 0.0) for r in runs for e in r["events"] if e["type"] == "utterance"]
        behind = sum(s["behind_warnings"] for s in scores)
        slowest = sorted(((row["delay_s"], row["call"], row["text"], row["early"], row["breakdown"])
                          for row in alerted), key=lambda x: -x[0])[:3]
        audio_s = sum(len(loaded[c][0]) / 4 / 16000 for c in picks)
        level = {"streams": n, "wall_s": round(wall, 1), "delay_median_s": pct(delays, 0.5),
                 "delay_p95_s": pct(delays, 0.95), "asr_wait_p95_s": pct(waits, 0.95), "behind_warnings": behind,
                 "recall": round(sum(row["alerted"] for s in scores for row in s["rows"]) /
                                 max(1, sum(len(s["rows"]) for s in scores)), 3),
                 "cpu_s_per_audio_s": round((cpu_s() - cpu0) / audio_s, 3),
                 "asr_busy_s_per_audio_s": round((server.hub.asr.busy_s - busy0) / audio_s, 3),
                 "asr_decoded_s": round(server.hub.asr.decoded_s - dec0, 1),
                 "batching": batch_counts(counters0, asr_counters(server)),
                 "early_alerts": sum(s["early"] for s in scores),
                 "early_withdrawn": sum(s["early_withdrawn"] for s in scores),
                 "slowest": slowest, "load_avg_start": load0, "load_avg": os.getloadavg()[0]}
        ok = (level["delay_p95_s"] is None or level["delay_p95_s"] <= 4.0) and behind == 0 and \
            (level["asr_wait_p95_s"] or 0.0) <= 3.0
        level["sustained"] = ok
        out.append(level)
        print(f"  {n} stream(s): {level}", flush=True)
        if all(lv["sustained"] for lv in out):  # every level up to this one held
            sustained = n
        if not ok and not keep_going:
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


def parse_config(text: str) -> dict:
    """'window=10:beam=1:silence=0.3:maxseg=8' -> {'window': 10.0, ...}."""
    out = {}
    for item in filter(None, text.split(":")):
        k, v = item.split("=", 1)
        out[k] = float(v)
    return out


def phase_cer(transcriber, calls: list[str], configs: list[str]) -> dict:
    """The live path's decoding, offline and one utterance at a time: each channel cut by the
    streaming VAD as a live stream is, each final segment decoded (with its left context) the way
    the live worker decodes it, with each configuration (window = smallest encoder window, beam,
    silence = VAD min_silence_s, maxseg = VAD max_segment_s, cutafter / cutsilence = VAD cut_after_s /
    cut_silence_s, ctx = seconds of left context). Reports CER per configuration (all
    words of a channel against the speaker's ground-truth turns, normalised as bench/asr.py does),
    decoding CPU seconds per second of call, and the recall the live rule engine gets from those
    words (alerted at some point; same matching as the latency phase)."""
    import jiwer

    from asr import norm_zh
    from compliance.ingest import load_audio
    from compliance.live.asr import FINAL, DecodeOptions, _Task, decode_batch
    from compliance.live.detector import LiveDetector
    from compliance.live.session import LEFT_CONTEXT_S, final_clip
    from compliance.live.vad import StreamingVad
    from compliance.detect import load_packs
    from compliance.transcribe import join_words

    packs = load_packs()
    results = {}
    for text in configs:
        cfg = parse_config(text)
        options = DecodeOptions(window_s=cfg.get("window", 30.0), beam_size=int(cfg.get("beam", 0)))
        vad_kw = {}
        if "silence" in cfg:
            vad_kw["min_silence_s"] = cfg["silence"]
        if "maxseg" in cfg:
            vad_kw["max_segment_s"] = cfg["maxseg"]
        if "cutafter" in cfg:
            vad_kw["cut_after_s"] = cfg["cutafter"]
        if "cutsilence" in cfg:
            vad_kw["cut_silence_s"] = cfg["cutsilence"]
        errors, cpu, call_s, n_segs, seg_s, rows = [], 0.0, 0.0, 0, 0.0, []
        for cid in calls:
            truth = json.loads((CALLS / f"{cid}.json").read_text(encoding="utf-8"))
            audio = load_audio(CALLS / f"{cid}.stereo.flac")
            call_s += audio.samples.shape[1] / 16000
            finals = []  # (end time, channel, words)
            for ch, role in truth["channels"].items():
                ch = int(ch)
                vad = StreamingVad(ch, keep_s=max(3.0, cfg.get("ctx", 0.0) + 1.0), **vad_kw)
                x = audio.samples[ch]
                words_ch = []

                def decode(seg):
                    nonlocal cpu, n_segs, seg_s
                    samples, context, offset = final_clip(vad.buffer, seg, cfg.get("ctx", LEFT_CONTEXT_S))
                    c0 = time.process_time()
                    words, _lang = decode_batch(transcriber, [_Task(FINAL, 0, samples, context, offset, "zh",
                                                                    None)], options)[0]
                    cpu += time.process_time() - c0
                    n_segs += 1
                    seg_s += (seg.end - seg.start) / 16000
                    finals.append((seg.end_s, ch, role, words))
                    words_ch.extend(words)

                for i in range(0, len(x), 1600):
                    for seg in vad.feed(x[i:i + 1600]):
                        decode(seg)
                for seg in vad.flush():
                    decode(seg)

                ref = norm_zh("".join(t["text"] for t in truth["turns"] if t["speaker"] == role))
                hyp = norm_zh(join_words([w.text for w in words_ch]))
                errors.append((jiwer.cer(ref, hyp or "∅"), len(ref)))
            live = LiveDetector(packs, "zh")
            alerted = []
            for i, (_end, ch, role, words) in enumerate(sorted(finals, key=lambda f: f[0])):
                live.add(f"CH{ch}", ch, role, words, f"u{i}")
                new, _gone = live.update()
                alerted += [{"category": v.category, "start": v.start, "end": v.end, "kind": v.kind} for v in new]
            for v in truth["violations"]:
                hit = any(a["category"] == v["category"] and
                          (v["category"] == "missing_disclosure" or overlaps(a, v)) for a in alerted)
                rows.append(hit)
        n = sum(w for _, w in errors)
        res = {"cer": round(sum(e * w for e, w in errors) / n, 4), "cpu_s_per_call_s": round(cpu / call_s, 3),
               "cpu_s_per_speech_s": round(cpu / max(seg_s, 1e-9), 3), "segments": n_segs,
               "mean_segment_s": round(seg_s / max(1, n_segs), 2), "recall": f"{sum(rows)}/{len(rows)}",
               "load_avg": round(os.getloadavg()[0], 2)}
        results[text] = res
        print(f"  {text:40} {res}", flush=True)
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--phases", default="latency,capacity,memory")
    ap.add_argument("--calls", default=",".join(p.name.split(".")[0] for p in sorted(CALLS.glob("dev0*.stereo.flac"))))
    ap.add_argument("--capacity", default="1,2,3,4,5,6", help="stream counts to try, in order (stops at the first failure)")
    ap.add_argument("--capacity-all", action="store_true", help="try every capacity level, even after a failure")
    ap.add_argument("--memory-minutes", type=float, default=60.0)
    ap.add_argument("--memory-speed", type=float, default=0.0,
                    help="x real time for the memory run (0: as fast as transcription keeps up)")
    ap.add_argument("--post-call", action="store_true", help="also run the post-call analysis workers")
    ap.add_argument("--cer-configs", default="window=30:beam=5,window=10:beam=1",
                    help="for --phases cer: live decoding configurations to compare (see phase_cer)")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="a Settings override for the server, e.g. live_asr_window_s=30 (repeatable)")
    ap.add_argument("--json", type=Path, help="write the full results here")
    args = ap.parse_args()
    phases = set(args.phases.split(","))
    calls = [c for c in args.calls.split(",") if c]
    import logging

    logging.basicConfig(level=logging.WARNING)
    if phases == {"cer"}:  # offline: no server
        from compliance.pipeline import Analyzer
        from compliance.config import load_settings

        sys.path.insert(0, str(ROOT / "bench"))
        transcriber = Analyzer(load_settings()).transcriber
        print(f"live decoding, offline (cores {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}):", flush=True)
        out = {"cores": os.cpu_count(), "load_avg_start": os.getloadavg(),
               "cer": phase_cer(transcriber, calls, args.cer_configs.split(","))}
        out["load_avg_end"] = os.getloadavg()
        if args.json:
            args.json.write_text(json.dumps(out, ensure_ascii=False, indent=1), encoding="utf-8")
        return
    from compliance.config import _coerce

    overrides = {k: _coerce(k, v) for k, v in (item.split("=", 1) for item in args.set)}
    server = Server(args.post_call, overrides)
    results = {"cores": os.cpu_count(), "load_avg_start": os.getloadavg(), "model_load_s": server.model_load_s,
               "warm_up": server.warm_up,
               "asr_model": getattr(server.hub.asr.transcriber, "name", ""),
               "live_settings": {k: v for k, v in vars(server.settings).items() if k.startswith("live_")}}
    try:
        if "latency" in phases:
            print("latency and recall (one call at a time, 1x):", flush=True)
            results["latency"] = phase_latency(server, calls)
        if "capacity" in phases:
            print("concurrent real-time streams:", flush=True)
            planted = [c for c in calls if load_call(c)[2]["violations"]] or calls
            results["capacity"] = phase_capacity(server, [int(x) for x in args.capacity.split(",")], planted,
                                                 keep_going=args.capacity_all)
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
    if results["live_settings"]:
        print("live settings:", results["live_settings"])
    if lat:
        print(f"CPU {lat['cpu_s_per_call_s']} s per call second (ASR finals {lat['asr_final_s_per_call_s']} s, "
              f"partials {lat['asr_partial_s_per_call_s']} s wall per call second; {lat['final_decodes']} final "
              f"and {lat['partial_decodes']} partial decodes); delay breakdown (median/p95 s): "
              + (", ".join(f"{k} {v['median']}/{v['p95']}" for k, v in lat["delay_breakdown"].items())
                 if lat["delay_breakdown"] else "n/a"))
        print(f"alert delay median {lat['delay_median_s']} s, p95 {lat['delay_p95_s']} s (utterance-level: median "
              f"{lat['utterance_delay_median_s']} s, p95 {lat['utterance_delay_p95_s']} s); recall "
              f"{lat['alerted']}/{lat['planted']} = {lat['recall']} (summary {lat['recall_summary']}); "
              f"false alerts {lat['false_alerts']} ({lat['must_not_flag_hits']} on must-not-flag traps); early alerts "
              f"(at a clause pause) {lat.get('early_alerts', 0)}, {lat.get('early_withdrawn', 0)} withdrawn by the "
              f"final words, {sum(r.get('early', False) for r in lat['violations'])} planted violations first "
              "alerted early")
    if "capacity" in results:
        c = results["capacity"]
        print(f"sustained real-time streams: {c['sustained_realtime_streams']} "
              f"(levels: streams, delay median, p95, ASR wait p95, behind warnings, load start/end, batches: "
              f"{[(lv['streams'], lv['delay_median_s'], lv['delay_p95_s'], lv['asr_wait_p95_s'], lv['behind_warnings'], lv.get('load_avg_start'), lv['load_avg'], lv.get('batching')) for lv in c['levels']]})")
    if "memory" in results:
        m = results["memory"]
        print(f"memory: RSS {m['rss_first_mb']} -> {m['rss_last_mb']} MB over {m['minutes']:g} min "
              f"(second-half growth {m['rss_growth_second_half_mb']} MB)")


if __name__ == "__main__":
    main()
