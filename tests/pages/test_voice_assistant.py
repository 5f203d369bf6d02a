"""GET /webrtc/voice-assistant: a real browser signs in with a PIN, speaks into a fake microphone and sees its words,
the answer and the list change; the same from the keyboard alone, under APP_ROUTE_PREFIX; nothing off loopback.

The app runs under an in-process hypercorn with OpenAI (chat with tool calls, transcription, speech) pointed at the
fake. Headless Chromium is driven over the DevTools protocol (tests/monitoring/cdp.py) with a fake microphone
playing an espeak-ng WAV of "add buy milk". The fake cannot recognise speech, and what the browser uploads is its
own WebM recording (bytes no test can know in advance), so this fake transcribes any recording to the words the
microphone plays; the test checks that a real recording of several seconds was uploaded. Screenshots at desktop
and phone width are kept in tests/artifacts/screenshots/.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from quart import Quart

from fakes import FakeOpenAI, run_fake
from fakes.audio import TranscriptRegistry
from quart_app import create_app
from quart_app.pages.voice_assistant import CSP
from quart_app.settings import Settings
from quart_app.sockets.voice import READY
from tests.monitoring.cdp import Browser, Page
from tests.support.audio import spoken_path
from tests.support.inprocess import served
from tests.support.live_server import ROOT
from tests.support.users import make_user

PIN = "592817"
PREFIX = "/sambanova_todo"
SPOKEN = "add buy milk"
HEARD = "Add buy milk."
GREEN = "rgb(23, 107, 52)"  # --ok in voice.css
MIN_RECORDING_S = 2.0
CALL_MOM_ANSWERED = (
    "[...document.querySelectorAll('#log li.assistant')].some(li => /call mom/i.test(li.textContent))"
    " && document.getElementById('mic').dataset.state === 'idle'"
)


class HearsTheMicrophone(TranscriptRegistry):
    """Any recording transcribes to what the fake microphone plays (registered audio still wins)."""

    def transcript_for(self, data: bytes, fmt: str, duration: float) -> str:
        return self.lookup(data) or HEARD


def fake_microphone(wav: Path) -> tuple[str, ...]:
    return (
        "--use-fake-ui-for-media-stream",  # grant the microphone without asking
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={wav}",
        "--autoplay-policy=no-user-gesture-required",
    )


@pytest.fixture
async def served_app(tmp_path: Path) -> AsyncIterator[tuple[Quart, str, FakeOpenAI]]:
    openai = FakeOpenAI()
    openai.transcripts = HearsTheMicrophone()
    async with run_fake(openai) as fake:
        settings = Settings.from_env(
            {
                "APP_ENV": "test",
                "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/voice-page.db",
                "OPENAI_API_KEY": fake.api_key,
                "OPENAI_BASE_URL": fake.base_url + "/v1",
                "APP_ROUTE_PREFIX": PREFIX,
            }
        )
        app = create_app(settings)
        async with served(app) as port:
            yield app, f"http://127.0.0.1:{port}", fake


def test_page_and_assets_are_local_with_a_self_only_csp() -> None:
    folder = ROOT / "quart_app/pages/static/voice"
    html = (folder / "index.html").read_text()
    assert "<script>" not in html and "style=" not in html  # no inline script or style: the CSP forbids both
    assert "http://" not in html and "https://" not in html
    for name in ("voice.js", "voice.css"):
        assert "http://" not in (folder / name).read_text() and "https://" not in (folder / name).read_text()
    assert "default-src 'self'" in CSP and "script-src 'self'" in CSP and "style-src 'self'" in CSP
    assert "media-src 'self' blob:" in CSP and "http" not in CSP and "unsafe" not in CSP
    # Every control has a label.
    for control in ("user", "pin", "text", "player"):
        assert f'<label for="{control}"' in html, control


async def test_page_assets_and_prefix_answer_and_nothing_else_does(
    served_app: tuple[Quart, str, FakeOpenAI],
) -> None:
    _, base, _ = served_app
    async with httpx.AsyncClient(base_url=base) as http:
        for root in ("", PREFIX):
            page = await http.get(f"{root}/webrtc/voice-assistant")
            assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
            assert page.headers["Content-Security-Policy"] == CSP
            assert "microphone=(self)" in page.headers["Permissions-Policy"]
            for name in ("voice.js", "voice.css", "socket.io.min.js"):
                asset = await http.get(f"{root}/webrtc/voice-assistant/assets/{name}")
                assert asset.status_code == 200 and len(asset.content) > 1000, name
            for name in ("index.html", "..%2Fvoice_assistant.py", "dashboard.js", "socket.io.min.js.map"):
                assert (await http.get(f"{root}/webrtc/voice-assistant/assets/{name}")).status_code == 404, name


async def _mouse(page: Page, kind: str, selector: str) -> None:
    box = await page.evaluate(
        f"(() => {{ const r = document.querySelector({json.dumps(selector)}).getBoundingClientRect();"
        " return {x: r.x + r.width / 2, y: r.y + r.height / 2}; })()"
    )
    await page.send(
        "Input.dispatchMouseEvent", {"type": kind, "x": box["x"], "y": box["y"], "button": "left", "clickCount": 1}
    )


async def _wait_for_reply(page: Page) -> None:
    await page.wait_for(f"document.getElementById('log').textContent.includes({json.dumps(HEARD)})")
    await page.wait_for(
        "[...document.querySelectorAll('#log li.assistant')].some(li => /buy milk/i.test(li.textContent))"
    )
    await page.wait_for("[...document.querySelectorAll('#todos .title')].some(t => t.textContent === 'buy milk')")
    # The spoken reply is loaded from a Blob URL and is real audio.
    await page.wait_for("document.getElementById('player').src.startsWith('blob:')")
    await page.wait_for("document.getElementById('player').duration > 0")


def _uploaded_recording(openai: FakeOpenAI) -> dict:
    uploads = openai.requests_to("/v1/audio/transcriptions")
    assert len(uploads) == 1, uploads
    return uploads[0].files["file"]


async def test_sign_in_speak_and_see_the_transcript_the_answer_and_the_list(
    served_app: tuple[Quart, str, FakeOpenAI],
) -> None:
    app, base, openai = served_app
    user, _ = await make_user(app, pin=PIN)
    assert user.email is not None
    async with Browser(fake_microphone(spoken_path(SPOKEN))) as browser:
        page = await browser.new_page(width=1280, height=900)
        await page.goto(base + "/webrtc/voice-assistant")
        await page.wait_for("document.getElementById('status').dataset.state === 'connected'")
        assert await page.text("#status-text") == READY
        assert await page.evaluate("getComputedStyle(document.getElementById('status')).color") == GREEN
        assert await page.evaluate("document.getElementById('voice').hidden")
        await page.screenshot("voice-assistant-signin-desktop")

        # A wrong PIN says so and stays on the sign-in form.
        await page.type("#user", user.email)
        await page.type("#pin", "000000")
        await page.click("#auth-button")
        await page.wait_for("document.getElementById('auth-error').textContent.includes('incorrect')")
        assert await page.evaluate("document.getElementById('voice').hidden")

        await page.evaluate("document.getElementById('pin').value = ''")
        await page.type("#pin", PIN)
        await page.click("#auth-button")
        await page.wait_for("!document.getElementById('voice').hidden && document.getElementById('auth').hidden")
        assert await page.text("#who") == user.email
        await page.wait_for("document.getElementById('status').dataset.state === 'signed-in'")

        # Hold the mic button while the fake microphone speaks, then release.
        await _mouse(page, "mousePressed", "#mic")
        await page.wait_for(f"parseFloat(document.getElementById('mic').dataset.seconds || '0') >= {MIN_RECORDING_S}")
        assert await page.evaluate("document.getElementById('mic').getAttribute('aria-pressed')") == "true"
        await _mouse(page, "mouseReleased", "#mic")
        await _wait_for_reply(page)
        assert await page.evaluate("document.getElementById('mic').getAttribute('aria-pressed')") == "false"

        recording = _uploaded_recording(openai)
        assert recording["filename"].endswith((".webm", ".ogg")) and recording["size"] > 2000, recording
        await page.screenshot("voice-assistant-reply-desktop")

        # A typed request too; the list follows.
        await page.type("#text", "add call mom")
        await page.click("#send")
        await page.wait_for("[...document.querySelectorAll('#todos .title')].some(t => t.textContent === 'call mom')")
        await page.wait_for(CALL_MOM_ANSWERED)

        await page.resize(390, 844, mobile=True)
        assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # no sideways scroll
        shot = await page.screenshot("voice-assistant-reply-phone")
        assert shot.stat().st_size > 10_000

        off = [u for u in page.requested if not u.startswith((base, base.replace("http", "ws"), "data:", "blob:"))]
        assert off == [], off
        assert any(u.startswith(base.replace("http", "ws") + "/socket.io/") for u in page.requested), page.requested
        assert PIN not in " ".join(page.requested)
        assert page.console_errors == [], page.console_errors


async def test_keyboard_only_under_the_route_prefix(served_app: tuple[Quart, str, FakeOpenAI]) -> None:
    app, base, openai = served_app
    user, _ = await make_user(app, pin=PIN)
    assert user.email is not None
    async with Browser(fake_microphone(spoken_path(SPOKEN))) as browser:
        page = await browser.new_page(width=390, height=844, mobile=True)
        await page.goto(f"{base}{PREFIX}/webrtc/voice-assistant")
        await page.wait_for("document.getElementById('status').dataset.state === 'connected'")

        async def tab_to(element_id: str) -> None:
            for _ in range(12):
                if await page.evaluate("document.activeElement && document.activeElement.id") == element_id:
                    return
                await page.press("Tab")
            raise AssertionError(f"Tab never reached #{element_id}")

        await tab_to("user")
        await page.send("Input.insertText", {"text": user.email})
        await tab_to("pin")
        await page.send("Input.insertText", {"text": PIN})
        await page.press("Enter")  # submits the form
        await page.wait_for("!document.getElementById('voice').hidden")
        await page.screenshot("voice-assistant-signed-in-phone")

        # Enter on the mic button starts recording; Enter again stops it and sends.
        await tab_to("mic")
        await page.press("Enter")
        await page.wait_for(f"parseFloat(document.getElementById('mic').dataset.seconds || '0') >= {MIN_RECORDING_S}")
        await page.press("Enter")
        await _wait_for_reply(page)
        assert _uploaded_recording(openai)["size"] > 2000

        await tab_to("text")
        await page.send("Input.insertText", {"text": "add call mom"})
        await page.press("Enter")
        await page.wait_for("[...document.querySelectorAll('#todos .title')].some(t => t.textContent === 'call mom')")
        await page.wait_for(CALL_MOM_ANSWERED)
        await page.screenshot("voice-assistant-keyboard-phone")

        # Assets came from under the prefix; Socket.IO from the root, where the app serves it.
        assert any(u.startswith(f"{base}{PREFIX}/webrtc/voice-assistant/assets/voice.js") for u in page.requested)
        assert any(u.startswith(base.replace("http", "ws") + "/socket.io/") for u in page.requested)
        off = [u for u in page.requested if not u.startswith((base, base.replace("http", "ws"), "data:", "blob:"))]
        assert off == [], off
        assert page.console_errors == [], page.console_errors


async def test_the_page_says_it_is_reconnecting_when_the_server_goes_away(tmp_path: Path) -> None:
    app = create_app(Settings.from_env({"APP_ENV": "test", "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/gone.db"}))
    async with Browser() as browser:
        page = await browser.new_page(width=1280, height=900)
        async with served(app) as port:
            await page.goto(f"http://127.0.0.1:{port}/webrtc/voice-assistant")
            await page.wait_for("document.getElementById('status').dataset.state === 'connected'")
        await page.wait_for("['reconnecting', 'error'].includes(document.getElementById('status').dataset.state)")
        status = await page.text("#status-text")
        assert "Reconnecting" in status or "Retrying" in status, status
        await page.screenshot("voice-assistant-reconnecting-desktop")
