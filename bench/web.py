"""Review-page load times with a queue of 10 000 flags on SQLite (this machine; not a test).

Seeds a fresh SQLite database (default 1 000 calls x 10 flags, 50 agents, 12 rules, ~30 % reviewed,
with audit entries), serves the real app (uvicorn, loopback), and times over HTTP, warm:
  * each page's HTML shell and each JSON request the page makes on load, median and p95;
  * the queue page's HTML carries its first page and counts, so its load is that one request; other
    pages: shell + the API requests the page makes (in sequence: an upper bound; and shell + the
    slowest, as the browser runs them in parallel);
  * with /usr/bin/chromium and playwright: the real page in a browser, navigation start until the
    page says it has rendered its data (body[data-loaded]).

    .venv/bin/python bench/web.py [--calls 1000] [--per-call 10] [--runs 20]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

RULES = [("ZH-GP-001", "承诺保本或由机构兜底", "guarantee_of_principal", "critical"),
         ("ZH-GR-001", "承诺收益、保证回报、稳赚不赔", "guaranteed_return", "critical"),
         ("ZH-GP-002", "宣称零风险、无风险、绝对安全", "guarantee_of_principal", "critical"),
         ("ZH-EX-001", "夸大宣传、使用最高级或淡化风险", "exaggeration", "high"),
         ("ZH-MD-001", "未作强制风险揭示", "missing_disclosure", "high"),
         ("ZH-DC-001", "将理财产品说成存款", "deposit_confusion", "high"),
         ("ZH-UP-001", "虚构期限、催促客户", "urgency_pressure", "medium"),
         ("ZH-SB-001", "诱导规避风险测评", "suitability_bypass", "high"),
         ("ZH-LF-001", "随时赎回、没有费用", "liquidity_fee_misstatement", "medium"),
         ("ZH-IS-001", "保险说成储蓄", "insurance_as_savings", "high"),
         ("ZH-PP-001", "以过往业绩暗示未来收益", "past_performance", "low"),
         ("ZH-CR-001", "客户风险信号", "customer_risk_cue", "info")]
PRODUCTS = ["稳盈理财", "鑫享基金", "安心保", "季季红", "天天利"]


def seed(engine, calls: int, per_call: int, rng: random.Random) -> None:
    from sqlalchemy import insert

    from compliance.service.models import AuditLog
    from compliance.store import CallRecord, ViolationRecord

    now = datetime.now(timezone.utc)
    call_rows, violation_rows, audit_rows = [], [], []
    for i in range(1, calls + 1):
        at = now - timedelta(days=rng.uniform(0, 90))
        call_rows.append(dict(id=i, sha256=f"{i:064x}", source_name=f"call-{i:05d}.flac", duration=80.0, channels=2,
                              language="zh", models={}, created_at=at + timedelta(minutes=5), agent_id=f"A{rng.randint(1, 50)}",
                              product=rng.choice(PRODUCTS), call_time=at))
    vid = 0
    for call in call_rows:
        for _ in range(per_call):
            vid += 1
            rule, title, category, severity = rng.choice(RULES)
            start = rng.uniform(0, 75)
            status = rng.choices(["open", "confirmed", "dismissed", "escalated", "disputed"], [70, 15, 10, 3, 2])[0]
            violation_rows.append(dict(id=vid, call_id=call["id"], utterance_idx=None, rule_id=rule, title=title,
                                       category=category, severity=severity, kind="phrase", start=start, end=start + 1.2,
                                       speaker="CH0", role="agent", matched_text="保本", context="这款产品是保本的",
                                       reason="phrase", pack="zh_sales", regulation="资管新规第二条", suggestion="本产品不保本",
                                       status=status, updated_at=None))
            if status != "open":
                audit_rows.append(dict(at=call["created_at"] + timedelta(hours=rng.uniform(0.5, 72)), actor_id=None,
                                       actor="officer", actor_role="officer", action=f"review.{'dismiss' if status == 'dismissed' else 'confirm'}",
                                       entity_type="violation", entity_id=str(vid), call_id=call["id"],
                                       before={"status": "open"}, after={"status": status}, note=None))
    with engine.begin() as conn:
        conn.execute(insert(CallRecord), call_rows)
        for k in range(0, len(violation_rows), 5000):
            conn.execute(insert(ViolationRecord), violation_rows[k:k + 5000])
        if audit_rows:
            conn.execute(insert(AuditLog), audit_rows)


def timed(http, path: str, runs: int) -> list[float]:
    http.get(path).raise_for_status()  # warm
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        http.get(path).raise_for_status()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def fmt(ms: list[float]) -> str:
    ms = sorted(ms)
    p95 = ms[min(len(ms) - 1, int(round(0.95 * (len(ms) - 1))))]
    return f"median {statistics.median(ms):7.1f} ms   p95 {p95:7.1f} ms"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=1000)
    ap.add_argument("--per-call", type=int, default=10)
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args()

    import httpx
    from sqlmodel import Session

    from compliance import store
    from compliance.config import load_settings
    from compliance.service import create_app
    from compliance.service.auth import create_user, issue_token
    from compliance.service.deps import SESSION_COOKIE
    from test_service_support import LiveServer, service_settings

    tmp = Path(tempfile.mkdtemp(prefix="bench-web-"))
    db_url = f"sqlite:///{tmp / 'bench.db'}"
    engine = store.make_engine(db_url)
    t0 = time.perf_counter()
    seed(engine, args.calls, args.per_call, random.Random(7))
    with Session(engine) as session:
        officer = create_user(session, "officer", "officer", password="officer-password")
        token, _ = issue_token(session, officer, kind="session", ttl_h=1)
    flags = args.calls * args.per_call
    print(f"seeded {args.calls} calls, {flags} flags in {time.perf_counter() - t0:.1f} s ({db_url})")

    settings = load_settings(data_dir=tmp / "data", db_url=db_url)
    app = create_app(settings, service_settings(queue="none"), engine=engine, start_workers=False,
                     extensions=("compliance.web",))
    # The queue page carries its first page and counts in the HTML (pages.queue_initial): its load
    # is the shell alone. Changing a filter or the page then asks the JSON API (timed below it).
    pages = {
        "queue (open, page 1)": ["/app/queue"],
        "  then on filter change / paging: JSON": ["/api/v1/violations?status=open&page=2&page_size=50",
                                                    "/api/v1/web/facets?status=open"],
        "queue (agent + severity filter)": ["/app/queue?status=open&agent_id=A7&severity=high"],
        "queue (page 100 of 140)": ["/app/queue?status=open&page=100"],
        "queue (all statuses)": ["/app/queue?_=1"],
        "call page": ["/app/calls/17", "/api/v1/calls/17", "/api/v1/calls/17/violations", "/api/v1/calls/17/audit"],
        "dashboard": ["/app/dashboard", "/api/v1/web/dashboard?bucket=week"],
    }
    with LiveServer(app) as server, httpx.Client(base_url=server.url, cookies={SESSION_COOKIE: token}, timeout=60) as http:
        print(f"\nHTTP, warm, {args.runs} runs each (SQLite, {os.cpu_count()} cores)")
        for name, paths in pages.items():
            total = [0.0] * args.runs
            shell, slowest = None, [0.0] * args.runs
            print(f"{name}")
            for path in paths:
                ms = timed(http, path, args.runs)
                total = [a + b for a, b in zip(total, ms)]
                if shell is None:
                    shell = ms
                else:
                    slowest = [max(a, b) for a, b in zip(slowest, ms)]
                print(f"    {path:<78} {fmt(ms)}")
            if len(paths) > 1 and paths[0].startswith("/app/"):
                print(f"    {'= page, requests in sequence (upper bound)':<78} {fmt(total)}")
                print(f"    {'= page, shell + slowest request (as the browser runs them)':<78} "
                      f"{fmt([a + b for a, b in zip(shell, slowest)])}")
        browser_times(server.url, token, args.runs)


def browser_times(url: str, token: str, runs: int) -> None:
    if not os.path.exists("/usr/bin/chromium"):
        print("\n(no /usr/bin/chromium: browser timings skipped)")
        return
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("\n(no playwright: browser timings skipped)")
        return
    from compliance.service.deps import SESSION_COOKIE

    args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"]
    print(f"\nChromium, navigation start -> data rendered (body[data-loaded]), warm, {runs} runs")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=args)
        context = browser.new_context(viewport={"width": 1366, "height": 768})
        host = url.split("//")[1].split(":")[0]
        context.add_cookies([{"name": SESSION_COOKIE, "value": token, "domain": host, "path": "/"}])
        page = context.new_page()
        for name, path in (("queue", "/app/queue"), ("call", "/app/calls/17"), ("dashboard", "/app/dashboard")):
            out = []
            for i in range(runs + 1):
                page.goto(url + path)
                page.wait_for_selector("body[data-loaded='1']")
                ms = float(page.get_attribute("body", "data-loaded-ms"))  # since this navigation started
                if i:
                    out.append(ms)
            print(f"    {name:<12} {fmt(out)}")
        browser.close()


if __name__ == "__main__":
    main()
