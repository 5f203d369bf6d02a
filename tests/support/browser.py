"""Headless Chromium (Debian's `chromium`) for page tests: the rendered DOM, a screenshot, and every URL
the page itself asked for, with every host name but loopback made unresolvable."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

SCREENSHOTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"
# Any name but loopback fails to resolve, so a page that reaches for a CDN visibly breaks.
LOOPBACK_ONLY = "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost"
QUIET = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-domain-reliability",
    "--no-pings",
]
_LOOPBACK_URL = re.compile(r"^(https?|wss?)://(127\.0\.0\.1|localhost)(:\d+)?/")


@dataclass(frozen=True)
class PageVisit:
    dom: str
    requested: list[str]
    screenshot: Path | None

    def off_loopback(self) -> list[str]:
        return [u for u in self.requested if not _LOOPBACK_URL.match(u) and not u.startswith(("data:", "blob:"))]


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        raise RuntimeError("chromium is required for page tests: run scripts/setup_system.sh")
    return path


def visit(url: str, *, name: str, width: int = 1280, height: int = 1600, budget_ms: int = 20_000) -> PageVisit:
    """Load `url`, let scripts run for up to `budget_ms` of virtual time, keep a screenshot named `name`."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOTS / f"{name}.png"
    with tempfile.TemporaryDirectory() as profile:
        netlog = Path(profile) / "netlog.json"
        common = [
            chromium(),
            "--headless=new",
            *QUIET,
            f"--user-data-dir={profile}",
            f"--host-resolver-rules={LOOPBACK_ONLY}",
            f"--virtual-time-budget={budget_ms}",
            f"--window-size={width},{height}",
        ]
        dom = subprocess.run(
            [*common, f"--log-net-log={netlog}", "--dump-dom", url], capture_output=True, text=True, timeout=120
        ).stdout
        subprocess.run([*common, f"--screenshot={shot}", url], capture_output=True, timeout=120)
        requested = page_requests(netlog)
    return PageVisit(dom=dom, requested=requested, screenshot=shot if shot.exists() else None)


def page_requests(netlog: Path) -> list[str]:
    """URLs the page itself fetched: requests whose initiator or network isolation key is a loopback site,
    and the navigation itself. The browser's own background traffic (time sync, component updates) has
    neither and is left out; it cannot leave the machine anyway, since no other name resolves."""
    if not netlog.exists():
        return []
    text = netlog.read_text(errors="replace").rstrip()
    try:
        log = json.loads(text)
    except json.JSONDecodeError:  # a log cut short when the browser exited: close it
        log = json.loads(text.rstrip(",") + "]}")
    start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    urls = set()
    for event in log["events"]:
        params = event.get("params") or {}
        if event.get("type") != start_job or "url" not in params:
            continue
        context = f"{params.get('initiator')} {params.get('network_isolation_key')}"
        if "127.0.0.1" in context or "localhost" in context or _LOOPBACK_URL.match(params["url"]):
            urls.add(params["url"])
    return sorted(urls)
