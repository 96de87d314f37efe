"""Load test of the review service: upload N short calls concurrently over loopback to a real
`compliance serve`, wait until every job is finished, and report throughput, latency percentiles,
errors and lost calls.

    python bench/load.py                      # 100 calls, 100 at once, a fresh server on SQLite
    python bench/load.py --calls 50 --concurrency 10 --workers 2 --db postgresql+psycopg://...
    python bench/load.py --url http://host:8000 --token cpl_...   # against a running server

The calls are real speech: two clips from ../shared/audio/zh (2-9 s of Mandarin) on the agent and
customer channels of a 16 kHz stereo WAV, each call a different pair/offset/gain, so every upload is
distinct audio (distinct sha256) and must become its own stored call. "Lost" counts uploads that
were accepted but did not end as a done job with its own call."""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[1]
CLIPS = REPO.parent / "shared" / "audio" / "zh"


def make_calls(n: int, max_seconds: float = 5.0) -> list[tuple[str, bytes]]:
    sys.path.insert(0, str(REPO))
    from compliance.ingest import load_audio

    clips = [load_audio(p).samples[0][: int(max_seconds * 16000)] for p in sorted(CLIPS.glob("*.wav"))]
    if len(clips) < 2:
        raise SystemExit(f"need the speech clips in {CLIPS}")
    calls = []
    for i in range(n):
        agent, customer = clips[i % len(clips)], clips[(i * 7 + 3) % len(clips)]
        gap = 8000 + 160 * i  # customer answers after 0.5 s + 10 ms per call index
        length = len(agent) + gap + len(customer)
        stereo = np.zeros((length, 2), dtype=np.float32)
        stereo[: len(agent), 0] = agent * (0.9 + 0.001 * i)
        stereo[len(agent) + gap:, 1] = customer
        pcm = (np.clip(stereo, -1, 1) * 32767).astype("<i2")
        buf = io.BytesIO()
        with wave.open(buf, "wb") as out:
            out.setnchannels(2)
            out.setsampwidth(2)
            out.setframerate(16000)
            out.writeframes(pcm.tobytes())
        calls.append((f"load-{i:04d}.wav", buf.getvalue()))
    return calls


def start_server(db: str | None, workers: int, port: int, data_dir: Path):
    env = dict(os.environ, COMPLIANCE_DATA_DIR=str(data_dir), COMPLIANCE_WORKERS=str(workers),
               COMPLIANCE_EXTENSIONS=os.environ.get("COMPLIANCE_EXTENSIONS", ""))
    if db:
        env["COMPLIANCE_DB_URL"] = db
    cli = [sys.executable, "-m", "compliance"]
    token = subprocess.run(cli + ["users", "create", f"bench{port}", "--role", "qa", "--token"], env=env, cwd=REPO,
                           check=True, capture_output=True, text=True).stdout.strip()
    log = open(data_dir / "serve.log", "wb")
    proc = subprocess.Popen(cli + ["serve", "--port", str(port), "--log-level", "warning"], env=env, cwd=REPO,
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        if proc.poll() is not None:
            raise SystemExit(f"server exited:\n{(data_dir / 'serve.log').read_text()[-3000:]}")
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                return proc, url, token
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("server did not start")


async def upload_all(url: str, token: str, calls, concurrency: int):
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    results = []
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=300,
                                 limits=limits) as client:
        async def one(name, data):
            async with gate:
                start = time.perf_counter()
                try:
                    r = await client.post("/api/v1/uploads", files={"files": (name, data, "audio/wav")},
                                          data={"agent_id": f"A{hash(name) % 5}", "product": "bench"})
                    ok = r.status_code == 201 and len(r.json()["jobs"]) == 1
                    job = r.json()["jobs"][0]["id"] if ok else None
                    error = None if ok else f"{r.status_code}: {r.text[:200]}"
                except httpx.HTTPError as exc:
                    job, error = None, f"{type(exc).__name__}: {exc}"
                results.append((name, time.perf_counter() - start, job, error))

        t0 = time.perf_counter()
        await asyncio.gather(*(one(n, d) for n, d in calls))
        return results, time.perf_counter() - t0


def wait_jobs(url: str, token: str, job_ids: list[str], timeout_s: float) -> tuple[dict, float]:
    """Poll the job list (one request per round, not one per job) until every job has finished."""
    t0 = time.perf_counter()
    wanted = set(job_ids)
    final: dict[str, dict] = {}
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
        while len(final) < len(wanted) and time.perf_counter() - t0 < timeout_s:
            for status in ("done", "failed"):
                page = 1
                while True:
                    listing = client.get("/api/v1/jobs", params={"status": status, "page": page,
                                                                 "page_size": 500}).json()
                    final.update({j["id"]: j for j in listing["items"] if j["id"] in wanted})
                    if page * 500 >= listing["total"]:
                        break
                    page += 1
            print(f"\r  processed {len(final)}/{len(wanted)} in {time.perf_counter() - t0:.0f} s", end="",
                  file=sys.stderr)
            if len(final) < len(wanted):
                time.sleep(2)
    print(file=sys.stderr)
    return final, time.perf_counter() - t0


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=100)
    ap.add_argument("--concurrency", type=int, default=100)
    ap.add_argument("--workers", type=int, default=1, help="embedded analysis workers of the started server")
    ap.add_argument("--db", help="database URL for the started server (default: SQLite in a temp dir)")
    ap.add_argument("--url", help="use this running server instead of starting one (needs --token)")
    ap.add_argument("--token", help="a qa/admin token for --url")
    ap.add_argument("--port", type=int, default=8765)
    ap.add_argument("--timeout", type=float, default=3600, help="seconds to wait for processing")
    ap.add_argument("--clip-seconds", type=float, default=4.0, help="longest clip per channel (2-9 s available)")
    args = ap.parse_args()

    calls = make_calls(args.calls, args.clip_seconds)
    audio_s = sum((len(d) - 44) / 64000 for _, d in calls)
    print(f"{len(calls)} calls, {audio_s / len(calls):.1f} s of stereo audio each on average", file=sys.stderr)
    tmp = Path(tempfile.mkdtemp(prefix="compliance-load-"))
    proc = None
    try:
        if args.url:
            url, token = args.url, args.token
        else:
            proc, url, token = start_server(args.db, args.workers, args.port, tmp)
        results, upload_s = asyncio.run(upload_all(url, token, calls, args.concurrency))
        latencies = [r[1] for r in results]
        errors = [r for r in results if r[3]]
        job_ids = [r[2] for r in results if r[2]]
        final, process_s = wait_jobs(url, token, job_ids, args.timeout)
        done = [j for j in final.values() if j["status"] == "done"]
        failed = [j for j in final.values() if j["status"] == "failed"]
        call_ids = {j["call_id"] for j in done}
        lost = len(job_ids) - len(call_ids)
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as client:
            listing = client.get("/api/v1/calls", params={"product": "bench", "page_size": 1})
            stored = listing.json()["total"] if listing.status_code == 200 else f"? ({listing.status_code}: {listing.text[:200]})"
        print(f"""
uploads       {len(results)} in {upload_s:.1f} s = {len(results) / upload_s:.1f} uploads/s (concurrency {args.concurrency})
latency       p50 {pct(latencies, 50) * 1000:.0f} ms  p90 {pct(latencies, 90) * 1000:.0f} ms  p99 {pct(latencies, 99) * 1000:.0f} ms  max {max(latencies) * 1000:.0f} ms
upload errors {len(errors)}{''.join(f'{chr(10)}  {n}: {e}' for n, _, _, e in errors[:5])}
processing    {len(done)} done, {len(failed)} failed, {len(job_ids) - len(final)} unfinished in {process_s:.0f} s after the last upload
              = {len(done) / (upload_s + process_s) * 60:.1f} calls/min end to end ({args.workers if not args.url else '?'} worker(s))
stored calls  {stored} (distinct call ids of done jobs: {len(call_ids)})
lost calls    {lost}""")
        for j in failed[:5]:
            print(f"  failed {j['filename']}: {j['error']}")
        ok = not errors and not failed and lost == 0 and len(final) == len(job_ids)
        print("RESULT", "ok: zero errors, zero lost calls" if ok else "NOT OK")
        sys.exit(0 if ok else 1)
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
