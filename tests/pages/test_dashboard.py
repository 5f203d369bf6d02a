"""/dashboard: a real browser signs in and sees real figures in every tab, with nothing fetched off loopback.

The app runs under an in-process hypercorn so the test can hold a simulated call in the real calls feature
(a `CallSession` opened through `RealtimeCalls.open_call`, never begun, so nothing dials out) next to real
traffic: a billed translation and a failed one through the fake OpenAI. Headless Chromium is driven over
the DevTools protocol (tests/monitoring/cdp.py): it types the key, presses keys, follows the tabs and keeps a
screenshot of each tab at laptop and phone width in tests/artifacts/screenshots/.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from quart import Quart

from fakes import FakeOpenAI, run_fake
from quart_app import create_app
from quart_app.calls.session import CallInfo
from quart_app.db import call_transcripts, usage
from quart_app.db import calls as call_store
from quart_app.db.call_transcripts import TranscriptItem
from quart_app.db.tables import usage_logs
from quart_app.pages.dashboard import CSP
from quart_app.settings import Settings
from tests.monitoring.cdp import Browser, Page
from tests.monitoring.clients import SilentTwilio, demo_tenant, realtime_calls
from tests.support.inprocess import served
from tests.support.live_server import ROOT
from tests.support.users import make_user

CALLER = "+15551234567"
MASKED = "+1••••••4567"


async def has_table(app: Quart, name: str) -> bool:
    db = app.extensions["resources"].db()
    try:
        await db.fetch_val(sa.text(f"SELECT COUNT(*) FROM {name}"))
    except Exception:
        return False
    return True


@pytest.fixture
async def served_app(tmp_path: Path) -> AsyncIterator[tuple[Quart, str, FakeOpenAI]]:
    async with run_fake(FakeOpenAI()) as openai:
        settings = Settings.from_env(
            {
                "APP_ENV": "test",
                "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/dashboard.db",
                "OPENAI_API_KEY": openai.api_key,
                "OPENAI_BASE_URL": openai.base_url + "/v1",
                "OPENAI_TIMEOUT": "10",
            }
        )
        app = create_app(settings)
        async with served(app) as port:
            yield app, f"http://127.0.0.1:{port}", openai


def test_page_and_assets_are_local_with_a_self_only_csp() -> None:
    html = (ROOT / "quart_app/pages/static/dashboard/index.html").read_text()
    assert "<script>" not in html and "style=" not in html  # no inline script or style: the CSP forbids both
    assert "http://" not in html and "https://" not in html
    assert "default-src 'self'" in CSP and "script-src 'self'" in CSP and "http" not in CSP
    # The vendored Socket.IO client is the version the Node tests pin.
    pinned = json.loads((ROOT / "tests/node/package.json").read_text())["dependencies"]["socket.io-client"]
    vendored = (ROOT / "quart_app/pages/static/dashboard/socket.io.min.js").read_text()[:200]
    assert f"Socket.IO v{pinned}" in vendored


async def test_assets_answer_and_nothing_else_does(served_app: tuple[Quart, str, FakeOpenAI]) -> None:
    _, base, _ = served_app
    async with httpx.AsyncClient(base_url=base) as http:
        page = await http.get("/dashboard")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert page.headers["Content-Security-Policy"] == CSP
        for name in ("dashboard.js", "dashboard.css", "socket.io.min.js"):
            asset = await http.get(f"/dashboard/assets/{name}")
            assert asset.status_code == 200 and len(asset.content) > 1000, name
        for name in ("index.html", "..%2Fdashboard.py", "socket.io.min.js.map"):
            assert (await http.get(f"/dashboard/assets/{name}")).status_code == 404, name


async def _text_of(page: Page, selector: str) -> str:
    return str(await page.evaluate(f"(document.querySelector({json.dumps(selector)}) || {{}}).textContent || ''"))


async def _select_tab(page: Page, name: str) -> None:
    await page.click(f"#tab-{name}")
    await page.wait_for(f"!document.getElementById('panel-{name}').hidden")


async def _shoot_every_tab(page: Page, suffix: str) -> list[Path]:
    shots = []
    for name in ("live", "recent", "usage", "health"):
        await _select_tab(page, name)
        if name == "usage":
            await page.wait_for("document.querySelectorAll('#usage-chart svg rect').length > 0")
        shots.append(await page.screenshot(f"dashboard-{name}-{suffix}"))
    return shots


async def test_a_call_live_then_in_recent_calls_with_its_transcript(
    served_app: tuple[Quart, str, FakeOpenAI],
) -> None:
    app, base, openai = served_app
    _, key = await make_user(app, role="admin")
    db = app.extensions["resources"].db()

    # Real traffic: one billed translation, one that fails upstream (the client retries once).
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        body = {"text": "Good morning", "target_language": "es"}
        assert (await http.post("/translations/openai", json=body, headers={"x-api-key": key})).status_code == 200
        openai.fail_next(500, count=2)
        assert (await http.post("/translations/openai", json=body, headers={"x-api-key": key})).status_code >= 500

    # Earlier days' metered usage (rows as billing writes them, dated back) for the chart by service and day.
    for days_ago, service, seconds in (
        (1, "transcription.deepgram", 300),
        (3, "transcription.deepgram", 120),
        (3, "transcription.openai", 60),
        (6, "transcription.openai", 30),
    ):
        row = await usage.record(
            db,
            user_id="usr_chart",
            service=service,
            endpoint="/transcriptions",
            request_id=None,
            duration_ms=900,
            cost_usd=seconds / 60 * 0.0043,
            audio_seconds=seconds,
        )
        await db.execute(
            usage_logs.update().where(usage_logs.c.id == row.id).values(created_at=time.time() - days_ago * 86400)
        )

    # A simulated call in the real calls feature, and its record.
    sid = "CA" + secrets.token_hex(16)
    calls = realtime_calls(app)
    info = CallInfo(sid, "MZ" + secrets.token_hex(16), None, "ten_demo", CALLER, "+15557654321")
    session = calls.open_call(info, demo_tenant(), SilentTwilio())
    session.phase, session.now_ms, session.last_latency_ms = "live", 83_000, 640
    await call_store.record_status(
        db, call_sid=sid, status="in-progress", sequence=1, from_number=CALLER, to_number="+15557654321"
    )
    transcripts = await has_table(app, "call_transcripts")  # the calls feature's migration (m0006)
    # Another tenant's call that ended busy: the Recent calls filters tell the two apart.
    other = "CA" + secrets.token_hex(16)
    await call_store.open_call(db, call_sid=other, tenant_id="ten_other", from_number="+15550001111", to_number=None)
    await call_store.record_status(db, call_sid=other, status="busy", sequence=1)
    if transcripts:
        for seq, (role, text) in enumerate([("user", "Are you open on Saturday?"), ("assistant", "Yes, 9 to 1.")]):
            await call_transcripts.add_item(
                db,
                TranscriptItem(sid, seq, role, text, call_ms=2000 * (seq + 1), at=0.0, latency_ms=640 if seq else None),
            )

    async with Browser() as browser:
        page = await browser.new_page(width=1280, height=900)
        await page.goto(base + "/dashboard")
        await page.wait_for("!document.getElementById('signin').hidden")
        assert "Loading" not in await page.text("body")
        await page.screenshot("dashboard-signin-desktop")

        # Sign in from the keyboard: type the key, press Enter.
        await page.type("#credential", key)
        await page.press("Enter")
        await page.wait_for("!document.getElementById('app').hidden")
        await page.wait_for("document.getElementById('status').dataset.state === 'live'")

        # Live: the call, its masked caller, its latency; the connections include this dashboard's socket.
        await page.wait_for(f"document.getElementById('live-tables').textContent.includes({json.dumps(sid)})")
        live = await _text_of(page, "#panel-live")
        assert MASKED in live and CALLER not in live and "640 ms" in live and "1m 23s" in live
        await page.wait_for("document.getElementById('connections').textContent.includes('/monitoring')")
        assert (await _text_of(page, "#sum-calls")) == "1"
        await page.screenshot("dashboard-live-desktop")

        # Recent calls, reached with the arrow key from the Live tab; its transcript one click away.
        await page.evaluate("document.getElementById('tab-live').focus()")
        await page.press("ArrowRight")
        await page.wait_for("!document.getElementById('panel-recent').hidden")
        assert await page.evaluate("document.activeElement.id") == "tab-recent"
        await page.wait_for(f"document.getElementById('recent').textContent.includes({json.dumps(sid)})")
        await page.click(f"button[data-sid='{sid}']")
        if transcripts:
            await page.wait_for("document.getElementById('transcript-body').textContent.includes('Saturday')")
            assert "Yes, 9 to 1." in await _text_of(page, "#transcript-body")
        else:
            await page.wait_for("document.getElementById('transcript-body').textContent.length > 0")
        await page.screenshot("dashboard-recent-desktop")
        await page.press("Escape")
        await page.wait_for("document.getElementById('transcript').hidden")

        # The call ends: it leaves Live and shows as completed in Recent calls.
        calls.calls.pop(sid)
        await call_store.record_status(db, call_sid=sid, status="completed", sequence=2, duration_s=83)
        await page.wait_for("document.getElementById('live-tables').textContent.includes('No active calls right now.')")
        await page.wait_for(
            f"[...document.querySelectorAll('#recent tr')].some(r => r.textContent.includes({json.dumps(sid)}) "
            "&& r.textContent.includes('completed') && r.textContent.includes('1m 23s'))"
        )

        # Filters (GET /api/calls): by tenant, typed and submitted with Enter; then by status; then since a day
        # with no calls yet; Clear brings the live list back.
        recent_has = "document.getElementById('recent').textContent.includes({})"
        await page.wait_for(recent_has.format(json.dumps(other)))
        await page.type("#filter-tenant", "ten_other")
        await page.press("Enter")
        await page.wait_for("document.getElementById('recent-title').textContent === 'Calls matching the filters'")
        await page.wait_for(f"!{recent_has.format(json.dumps(sid))} && {recent_has.format(json.dumps(other))}")
        assert await _text_of(page, "#recent-note") == "1 matching call."
        assert "+1••••••1111" in await _text_of(page, "#recent") and "15550001111" not in await _text_of(
            page, "#recent"
        )
        await page.screenshot("dashboard-recent-filtered-desktop")
        await page.evaluate(
            "document.getElementById('filter-tenant').value = '';"
            "const status = document.getElementById('filter-status'); status.value = 'completed';"
            "status.dispatchEvent(new Event('change'))"
        )
        await page.wait_for(f"{recent_has.format(json.dumps(sid))} && !{recent_has.format(json.dumps(other))}")
        tomorrow = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 86400))
        await page.evaluate(
            f"const since = document.getElementById('filter-since'); since.value = {json.dumps(tomorrow)};"
            "since.dispatchEvent(new Event('change'))"
        )
        await page.wait_for(recent_has.format(json.dumps("No calls match these filters.")))
        await page.click("#filter-clear")
        await page.wait_for("document.getElementById('recent-title').textContent === 'Last 20 calls'")
        await page.wait_for(f"{recent_has.format(json.dumps(sid))} && {recent_has.format(json.dumps(other))}")
        assert any("/api/calls?" in u and "tenant_id=ten_other" in u for u in page.requested), page.requested

        # Usage: today's table and the chart by service and day, drawn from the billed translation.
        await _select_tab(page, "usage")
        await page.wait_for("document.getElementById('usage-today').textContent.includes('translation.openai')")
        await page.wait_for("document.querySelectorAll('#usage-chart svg rect').length >= 4")
        legend = await page.evaluate(
            "[...document.querySelectorAll('#usage-chart .legend li')].map(li => li.textContent)"
        )
        assert legend == ["transcription.deepgram", "transcription.openai", "translation.openai"], legend
        await page.screenshot("dashboard-usage-desktop")

        # Health: the provider's requests and its error, this instance and its loop lag.
        await _select_tab(page, "health")
        await page.wait_for("document.getElementById('providers').textContent.includes('openai')")
        providers = await _text_of(page, "#providers")
        assert "exception" in providers or "provider_error" in providers or "failed" in providers, providers
        instance = app.extensions["resources"].settings.instance_id
        await page.wait_for(f"document.getElementById('instances').textContent.includes({json.dumps(instance)})")
        await page.wait_for("!document.getElementById('instances').textContent.includes('— / —')")
        await page.screenshot("dashboard-health-desktop")

        # Phone width: every tab again.
        await page.resize(390, 844, mobile=True)
        shots = await _shoot_every_tab(page, "phone")
        assert all(shot.stat().st_size > 10_000 for shot in shots)

        # The credential stayed out of the URL; nothing left loopback; no script error.
        assert await page.evaluate("sessionStorage.getItem('voice-backend.dashboard.credential')") == key
        assert key not in str(await page.evaluate("location.href"))
        assert not [u for u in page.requested if key in u]
        off = [u for u in page.requested if not u.startswith((base, base.replace("http", "ws"), "data:"))]
        assert off == [], off
        assert any(u.startswith(base.replace("http", "ws") + "/socket.io/") for u in page.requested), page.requested
        assert page.console_errors == [], page.console_errors


async def test_a_refused_credential_says_why_and_stays_on_sign_in(served_app: tuple[Quart, str, FakeOpenAI]) -> None:
    app, base, _ = served_app
    _, user_key = await make_user(app)  # not an admin
    async with Browser() as browser:
        page = await browser.new_page(width=390, height=844, mobile=True)
        await page.goto(base + "/dashboard")
        await page.wait_for("!document.getElementById('signin').hidden")
        for credential, expected in ((user_key, "not an admin"), ("usr_nobody_forged", "not accepted")):
            await page.evaluate("document.getElementById('credential').value = ''")
            await page.type("#credential", credential)
            await page.click("#signin-button")
            await page.wait_for(f"document.getElementById('signin-error').textContent.includes({json.dumps(expected)})")
            assert await page.evaluate("document.getElementById('app').hidden")
            assert await page.evaluate("sessionStorage.getItem('voice-backend.dashboard.credential')") is None
        await page.screenshot("dashboard-refused-phone")


async def test_the_page_says_it_is_reconnecting_when_the_server_goes_away(tmp_path: Path) -> None:
    app = create_app(Settings.from_env({"APP_ENV": "test", "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/gone.db"}))
    async with Browser() as browser:
        page = await browser.new_page(width=1280, height=900)
        async with served(app) as port:
            _, key = await make_user(app, role="admin")
            await page.goto(f"http://127.0.0.1:{port}/dashboard")
            await page.wait_for("!document.getElementById('signin').hidden")
            await page.type("#credential", key)
            await page.press("Enter")
            await page.wait_for("document.getElementById('status').dataset.state === 'live'")
            await page.wait_for("document.getElementById('sum-updated').textContent !== '—'")
        # The server is gone: the page keeps the last figures and says so, instead of spinning.
        await page.wait_for("document.getElementById('status').dataset.state === 'reconnecting'")
        status = await page.text("#status-text")
        assert status.startswith("Reconnecting…") and "last update" in status, status
        await page.wait_for("!document.getElementById('banner').hidden")
        assert "interrupted" in await page.text("#banner")
        assert await page.text("#sum-instances") == "1"
        await page.screenshot("dashboard-reconnecting-desktop")
