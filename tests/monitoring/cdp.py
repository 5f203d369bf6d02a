"""A small Chrome DevTools Protocol driver for page tests that need to act: type, click, press keys, wait for
the page to show something, resize, screenshot, and list every URL the page reached for.

Uses Debian's `chromium` headless with the same loopback-only resolver rule as tests/support/browser.py, so a
page that reaches for a CDN visibly breaks. Every wait is a hang guard (`within`), never a speed assertion.

    async with Browser() as browser:
        page = await browser.new_page(width=1280, height=900)
        await page.goto(url)
        await page.wait_for("document.querySelector('#signin') !== null")
        await page.type("#credential", key); await page.click("#signin-button")
        await page.screenshot("dashboard-live-desktop")
        page.requested   # every request URL, WebSockets included
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import tempfile
from pathlib import Path
from typing import Any

import websockets

from tests.support.browser import LOOPBACK_ONLY, QUIET, SCREENSHOTS, chromium

HANG_GUARD = 30.0


class CDPError(RuntimeError):
    pass


class Browser:
    def __init__(self, extra_args: tuple[str, ...] = ()) -> None:
        self.extra_args = extra_args  # more chromium flags, e.g. a fake microphone for a page that records
        self._profile: tempfile.TemporaryDirectory[str] | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._ws: Any = None
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._listeners: dict[str, list[Any]] = {}
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Browser:
        self._profile = tempfile.TemporaryDirectory()
        profile = Path(self._profile.name)
        self._proc = await asyncio.create_subprocess_exec(
            chromium(),
            "--headless=new",
            *QUIET,
            f"--user-data-dir={profile}",
            f"--host-resolver-rules={LOOPBACK_ONLY}",
            "--remote-debugging-port=0",
            "--remote-debugging-address=127.0.0.1",
            *self.extra_args,
            "about:blank",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        port_file = profile / "DevToolsActivePort"
        for _ in range(600):
            if port_file.exists() and len(port_file.read_text().splitlines()) >= 2:
                break
            if self._proc.returncode is not None:
                raise CDPError(f"chromium exited with {self._proc.returncode}")
            await asyncio.sleep(0.05)
        else:
            raise CDPError("chromium did not open its DevTools port")
        port, path = port_file.read_text().splitlines()[:2]
        self._ws = await websockets.connect(f"ws://127.0.0.1:{port}{path}", max_size=64 * 1024 * 1024)
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(BaseException):
                await self._reader
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()
        if self._proc is not None and self._proc.returncode is None:
            self._proc.terminate()
            try:
                await asyncio.wait_for(self._proc.wait(), 10)
            except TimeoutError:
                self._proc.kill()
                await asyncio.wait_for(self._proc.wait(), 5)
        if self._profile is not None:
            with contextlib.suppress(Exception):
                self._profile.cleanup()

    async def _read(self) -> None:
        async for message in self._ws:
            data = json.loads(message)
            if "id" in data:
                future = self._pending.pop(data["id"], None)
                if future is not None and not future.done():
                    if "error" in data:
                        future.set_exception(CDPError(str(data["error"])))
                    else:
                        future.set_result(data.get("result", {}))
            else:
                for listener in self._listeners.get(data.get("sessionId", ""), []):
                    listener(data.get("method", ""), data.get("params", {}))

    async def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> Any:
        ident = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[ident] = future
        message: dict[str, Any] = {"id": ident, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        await self._ws.send(json.dumps(message))
        return await asyncio.wait_for(future, HANG_GUARD)

    async def new_page(self, *, width: int, height: int, mobile: bool = False) -> Page:
        target = await self.send("Target.createTarget", {"url": "about:blank"})
        attached = await self.send("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True})
        page = Page(self, attached["sessionId"])
        self._listeners.setdefault(page.session, []).append(page.on_event)
        for domain in ("Page.enable", "Network.enable", "Runtime.enable"):
            await page.send(domain)
        await page.resize(width, height, mobile=mobile)
        return page


class Page:
    def __init__(self, browser: Browser, session: str) -> None:
        self.browser = browser
        self.session = session
        self.requested: list[str] = []
        self.console_errors: list[str] = []

    def on_event(self, method: str, params: dict[str, Any]) -> None:
        if method == "Network.requestWillBeSent":
            self.requested.append(params["request"]["url"])
        elif method == "Network.webSocketCreated":
            self.requested.append(params["url"])
        elif method == "Runtime.exceptionThrown":
            self.console_errors.append(json.dumps(params.get("exceptionDetails", {}))[:500])
        elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
            self.console_errors.append(json.dumps(params.get("args", []))[:500])

    async def send(self, method: str, params: dict[str, Any] | None = None) -> Any:
        return await self.browser.send(method, params, self.session)

    async def resize(self, width: int, height: int, *, mobile: bool = False) -> None:
        await self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile},
        )

    async def goto(self, url: str) -> None:
        await self.send("Page.navigate", {"url": url})
        await self.wait_for(f"location.href === {json.dumps(url)} && document.readyState === 'complete'")

    async def evaluate(self, expression: str) -> Any:
        result = await self.send(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True}
        )
        if "exceptionDetails" in result:
            raise CDPError(f"{expression!r} threw: {result['exceptionDetails']}")
        return result.get("result", {}).get("value")

    async def wait_for(self, expression: str, within: float = HANG_GUARD) -> Any:
        """Poll `expression` until it is truthy; its last value in the failure message otherwise."""
        deadline = asyncio.get_running_loop().time() + within
        value: Any = None
        while asyncio.get_running_loop().time() < deadline:
            try:
                value = await self.evaluate(expression)
            except CDPError as exc:  # e.g. the element is not there yet
                value = exc
            if value and not isinstance(value, CDPError):
                return value
            await asyncio.sleep(0.1)
        text = await self.evaluate("document.body ? document.body.innerText.slice(0, 1500) : ''")
        raise AssertionError(f"not true within {within}s: {expression}\nlast value: {value!r}\npage text:\n{text}")

    async def text(self, selector: str) -> str:
        return str(await self.evaluate(f"(document.querySelector({json.dumps(selector)}) || {{}}).innerText || ''"))

    async def type(self, selector: str, text: str) -> None:
        await self.evaluate(f"document.querySelector({json.dumps(selector)}).focus()")
        await self.send("Input.insertText", {"text": text})

    async def click(self, selector: str) -> None:
        await self.evaluate(f"document.querySelector({json.dumps(selector)}).click()")

    async def press(self, key: str) -> None:
        """A key press on whatever has focus (Tab, Enter, ArrowRight, Escape, ...)."""
        codes = {"Tab": 9, "Enter": 13, "Escape": 27, "ArrowLeft": 37, "ArrowRight": 39, "Home": 36, "End": 35}
        common = {"key": key, "code": key, "windowsVirtualKeyCode": codes.get(key, 0)}
        down: dict[str, Any] = {"type": "keyDown", **common}
        if key == "Enter":
            down["text"] = "\r"
        await self.send("Input.dispatchKeyEvent", down)
        await self.send("Input.dispatchKeyEvent", {"type": "keyUp", **common})

    async def screenshot(self, name: str) -> Path:
        """A full-page PNG in tests/artifacts/screenshots/."""
        metrics = await self.send("Page.getLayoutMetrics")
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        shot = await self.send(
            "Page.captureScreenshot",
            {
                "format": "png",
                "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1},
            },
        )
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        path.write_bytes(base64.b64decode(shot["data"]))
        return path
