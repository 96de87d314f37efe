"""The review pages in a real browser (Debian's Chromium driven by Playwright) against the real app
with the real pipeline: QA uploads a real call by drag and drop and watches it finish; an officer
opens the flagged violation from the queue, plays it from its second, dismisses it with a note and
sees the audit entry; the agent sees only their own call. Screenshots (1366x768) of every page go to
artifacts/screenshots/.

Needs /usr/bin/chromium and fonts-noto-cjk (scripts/ci-browser.sh); skipped without them."""

from __future__ import annotations

import base64
import os
import re
import shutil
import zipfile
from pathlib import Path

import pytest

from test_service_support import LiveServer, service_settings, settings_for

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--autoplay-policy=no-user-gesture-required", "--mute-audio"]
SHOTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"
VIEWPORT = {"width": 1366, "height": 768}

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is not installed (run scripts/ci-browser.sh)"),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed "
                                                             "(run scripts/ci-browser.sh)")


USERS = (("admin", "admin", None), ("qa", "qa", None), ("officer", "officer", None), ("alice", "agent", "A1"),
         ("bob", "agent", "A2"))


def make_users(engine) -> None:
    """The users the pages log in as, each with the password '<name>-password'."""
    from sqlmodel import Session

    from compliance.service.auth import create_user

    with Session(engine) as session:
        for name, role, agent in USERS:
            create_user(session, name, role, agent_id=agent, password=f"{name}-password")


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture()
def live(tmp_path, whisper):
    from compliance import store
    from compliance.pipeline import Analyzer
    from compliance.service import create_app

    db_url = f"sqlite:///{tmp_path / 'web.db'}"
    settings = settings_for(tmp_path, db_url)
    engine = store.make_engine(db_url)
    make_users(engine)
    app = create_app(settings, service_settings(), engine=engine, extensions=("compliance.web",),
                     analyzer=Analyzer(settings, transcriber=whisper, engine=engine))
    with LiveServer(app) as server:
        yield server


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"))


def login(browser, url: str, user: str, lang: str = "zh-CN"):
    context = browser.new_context(viewport=VIEWPORT, locale=lang, accept_downloads=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url + "/")
    page.fill("#username", user)
    page.fill("#password", f"{user}-password")
    page.click("#login-submit")
    try:
        page.wait_for_url(re.compile(r".*/app/.*"))
    except sync_api.TimeoutError:
        raise AssertionError(f"{user} did not get past the login page: at {page.url}, errors {errors}, "
                             f"message {page.inner_text('#login-error')!r}") from None
    page.errors = errors
    return page


def loaded(page, path: str | None = None, url: str = "") -> None:
    if path:
        page.goto(url + path)
    page.wait_for_selector("body[data-loaded='1']")


def drop_files(page, selector: str, files: list[Path]) -> None:
    """A real drop event carrying the files (as a person dragging them from a file manager)."""
    payload = [{"name": f.name, "b64": base64.b64encode(f.read_bytes()).decode("ascii")} for f in files]
    transfer = page.evaluate_handle("""(files) => {
        const dt = new DataTransfer();
        for (const f of files) {
            const bytes = Uint8Array.from(atob(f.b64), (c) => c.charCodeAt(0));
            const type = { flac: 'audio/flac', wav: 'audio/wav', zip: 'application/zip', csv: 'text/csv' }[f.name.split('.').pop()];
            dt.items.add(new File([bytes], f.name, { type }));
        }
        return dt;
    }""", payload)
    page.dispatch_event(selector, "dragover", {"dataTransfer": transfer})
    page.dispatch_event(selector, "drop", {"dataTransfer": transfer})


def test_qa_upload_officer_review_agent_feedback(browser, live, shared, tmp_path):
    url = live.url
    call_file = shared / "audio" / "calls" / "dev04.stereo.flac"
    if SHOTS.exists():
        shutil.rmtree(SHOTS)

    # --- the login page, then QA uploads a real call by drag and drop ------------------------------
    anon = browser.new_context(viewport=VIEWPORT, locale="zh-CN").new_page()
    anon.goto(url + "/app/queue")
    anon.wait_for_url(re.compile(r".*/\?next=/app/queue"))
    assert anon.locator("#login-form").is_visible()
    shot(anon, "01-login")
    anon.fill("#username", "qa")
    anon.fill("#password", "wrong-password")
    anon.click("#login-submit")
    anon.wait_for_selector("#login-error:not([hidden])")
    anon.context.close()

    qa = login(browser, url, "qa")
    assert qa.url.endswith("/app/batches")
    assert [a.get_attribute("data-nav") for a in qa.locator(".topbar .nav a").all()] == ["queue", "batches", "dashboard"]
    loaded(qa)
    # a zip carrying its own metadata.csv: the page lists its members and reads the metadata
    # (then it is removed again: its audio would be a second, slow job)
    archive = tmp_path / "week46.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("week46/a.wav", b"RIFF....WAVE")
        z.writestr("week46/b.wav", b"RIFF....WAVE")
        z.writestr("week46/metadata.csv", "filename,agent_id,product,agent_channel\na.wav,A9,安心保,1\nb.wav,A9,安心保,0\n")
        z.writestr("__MACOSX/week46/._a.wav", b"junk")
    drop_files(qa, "#dropzone", [archive])
    zrow = qa.locator("#file-body tr[data-file='week46.zip']")
    zrow.wait_for()
    assert "2 files" in zrow.inner_text() and "2" in qa.inner_text("#meta-note")
    zrow.locator("button").click()
    assert qa.locator("#file-body tr").count() == 0
    metadata = tmp_path / "metadata.csv"
    metadata.write_text("filename,agent_id,product,agent_channel,call_time\n"
                        "dev04.stereo.flac,A1,稳盈理财,0,2026-11-02T10:15:00+08:00\n", encoding="utf-8")
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really audio" * 10)
    drop_files(qa, "#dropzone", [call_file, metadata, broken])
    qa.wait_for_selector("#file-body tr[data-file='dev04.stereo.flac']")
    assert qa.locator("#file-body tr").count() == 2
    assert "1" in qa.inner_text("#meta-note")
    qa.fill("#d-name", "浏览器测试批次")
    shot(qa, "02-batch-ready")
    qa.click("#upload-btn")
    qa.wait_for_selector(".batch .job[data-status]")
    # the file that is not audio is refused, with its reason
    rejected = qa.inner_text("#upload-error")
    assert "broken.wav" in rejected and len(rejected) > len("broken.wav: ") + 5
    shot(qa, "03-batch-progress")
    qa.wait_for_selector(".batch[data-finished='1'] .summary", timeout=300_000)
    job = qa.locator(".batch .job").first
    assert job.get_attribute("data-status") == "done", job.inner_text()
    summary = qa.inner_text(".batch .summary")
    assert "1" in summary and "0" in summary
    shot(qa, "04-batch-done")
    call_href = job.locator("a").first.get_attribute("href")
    call_id = int(call_href.rsplit("/", 1)[1])
    assert qa.errors == []
    qa.context.close()

    # --- the officer: queue, open the flag, play from its second, dismiss with a note, audit ---------
    officer = login(browser, url, "officer")
    assert "/app/queue" in officer.url
    loaded(officer)
    rows = officer.locator("#queue-body tr[data-vid]")
    assert rows.count() >= 3
    order = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}
    sevs = [order[c.split("sev-")[1]] for c in officer.locator("#queue-body .sev").evaluate_all(
        "els => els.map(e => e.className)")]
    assert sevs == sorted(sevs)
    assert "A1" in officer.inner_text("#queue-body")
    shot(officer, "05-queue")
    # keyboard: j moves down, space plays the flag, c confirms it, k back up, Enter opens the call
    officer.keyboard.press("j")
    second = officer.locator("#queue-body tr.sel")
    assert second.get_attribute("data-i") == "1"
    confirmed_vid = int(second.get_attribute("data-vid"))
    officer.keyboard.press(" ")
    officer.wait_for_function("() => { const a = document.getElementById('queue-audio'); return !a.paused && a.currentTime > 0; }")
    officer.keyboard.press(" ")
    officer.keyboard.press("c")
    officer.wait_for_selector(f"#queue-body tr[data-vid='{confirmed_vid}'] .status[data-status='confirmed']")
    assert officer.locator("#queue-body tr.sel").get_attribute("data-i") == "2"
    officer.keyboard.press("k")
    officer.keyboard.press("k")
    first = officer.locator("#queue-body tr.sel")
    assert first.get_attribute("data-i") == "0"
    vid = int(first.get_attribute("data-vid"))
    officer.keyboard.press("Enter")
    officer.wait_for_url(re.compile(rf".*/app/calls/{call_id}\?v={vid}"))
    loaded(officer)
    flag = officer.evaluate(f"fetch('/api/v1/violations/{vid}').then(r => r.json())")
    card = officer.locator(f"#flag-{vid}")
    assert "selected" in card.get_attribute("class")
    # the flagged words are highlighted in the transcript, agent and customer are told apart
    marks = officer.locator(f"mark.flag[data-vid='{vid}']")
    assert marks.count() >= 1
    assert officer.locator(".utt.agent").count() > 0 and officer.locator(".utt.customer").count() > 0
    assert flag["rule_id"] in card.inner_text() and (flag["regulation"] or "")[:10] in card.inner_text()
    # play from its second: the player lands 1.5 s before the flag and plays
    card.locator("button.play-flag").click()
    officer.wait_for_function("() => { const a = document.getElementById('call-audio'); return !a.paused && a.currentTime > 0 || a.readyState >= 2; }")
    landed = float(officer.get_attribute("#player", "data-last-seek"))
    assert landed == pytest.approx(max(0.0, flag["start"] - 1.5), abs=0.01)
    officer.wait_for_function(f"() => document.getElementById('call-audio').currentTime >= {landed}")
    now = officer.evaluate("document.getElementById('call-audio').currentTime")
    assert landed <= now <= flag["end"] + 2.0, (landed, now, flag)
    officer.evaluate("document.getElementById('call-audio').pause()")
    shot(officer, "06-call-playing")
    # dismiss with a note (the note dialog asks for it), then the audit entry shows under the flag
    card.locator("button[data-action='dismiss']").click()
    officer.wait_for_selector("#note-dialog[open]")
    officer.fill("#note-input", "ASR 误识别：坐席说的是不保本")
    officer.click("#note-submit")
    officer.wait_for_selector(f"#flag-{vid} .status[data-status='dismissed']")
    entry = officer.locator(f"#flag-{vid} details.audit .audit-entry[data-action='review.dismiss']")
    entry.wait_for()
    assert entry.is_visible() and "ASR 误识别：坐席说的是不保本" in entry.inner_text() and "officer" in entry.inner_text()
    card.scroll_into_view_if_needed()
    shot(officer, "07-call-dismissed")
    # the dashboards draw from the same data
    loaded(officer, "/app/dashboard", url)
    assert officer.evaluate("Chart.getChart('chart-rules').data.datasets[0].data.reduce((a, b) => a + b, 0)") >= 3
    shot(officer, "08-dashboard")
    with officer.expect_download() as download:
        officer.click("[data-csv='rules']")
    lines = Path(download.value.path()).read_text(encoding="utf-8-sig").splitlines()
    assert lines[0] == "rule_id,title,count" and len(lines) >= 4 and flag["rule_id"] in "\n".join(lines)
    assert officer.errors == []
    officer.context.close()

    # --- the agent sees their own call (without the dismissed flag); another agent sees nothing ----
    alice = login(browser, url, "alice")
    assert alice.url.endswith("/app/agent")
    loaded(alice)
    assert [a.get_attribute("data-nav") for a in alice.locator(".topbar .nav a").all()] == ["agent"]
    assert alice.locator(f".call-fb[data-call='{call_id}']").count() == 1
    assert alice.locator(f".fb-item[data-vid='{vid}']").count() == 0
    assert alice.locator(".fb-item").count() >= 1
    # the flag the officer confirmed can be acknowledged (or disputed) by the agent
    item = alice.locator(f".fb-item[data-vid='{confirmed_vid}']")
    if item.count():  # a confirmed call-level absence is listed under missing disclosures instead
        shot(alice, "09-agent-feedback")
        item.get_by_role("button", name="认可").click()
        alice.wait_for_selector(f".fb-item[data-vid='{confirmed_vid}'] .status[data-status='acknowledged']")
    else:
        assert alice.locator(f".missing[data-vid='{confirmed_vid}']").count() == 1
        shot(alice, "09-agent-feedback")
    alice.click("#lang-toggle")
    loaded(alice)
    assert alice.inner_text("h1") == "My compliance feedback"
    shot(alice, "10-agent-feedback-en")
    assert alice.goto(url + "/app/queue").status == 403
    alice.context.close()

    bob = login(browser, url, "bob")
    loaded(bob)
    assert bob.locator(".call-fb").count() == 0
    assert bob.goto(url + f"/app/calls/{call_id}").status == 403
    bob.context.close()

    # --- diarization got the roles backwards: the officer swaps them and detection re-runs ----------
    officer = login(browser, url, "officer")
    loaded(officer, f"/app/calls/{call_id}", url)
    assert "CH0=坐席" in officer.inner_text("#call-head")
    officer.once("dialog", lambda dialog: dialog.accept())
    officer.click("#swap-roles")
    officer.wait_for_function("() => document.getElementById('call-head').innerText.includes('CH0=客户')")
    assert "customer" in officer.locator(".utt").first.get_attribute("class")  # the opening line was the agent's
    log = officer.evaluate(f"fetch('/api/v1/calls/{call_id}/audit').then(r => r.json())")
    swap = [e for e in log if e["action"] == "call.roles"]
    assert len(swap) == 1 and swap[0]["after"]["roles"] == {"CH0": "customer", "CH1": "agent"}
    # the flags are new: none shows the history of the flags they replaced
    assert officer.locator(".audit-entry").count() == 0
    shot(officer, "11-call-roles-swapped")
    assert officer.errors == []
    officer.context.close()
