"""MediaTools: which + a cached `-version` run; installing a tool recovers without a restart, removing it is a 503."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from quart_app.errors import APIError
from quart_app.media.tools import MEDIA_TOOLS, MediaTools, run_tool


def _install(bin_dir: Path, tool: str, version: str, *, works: bool = True) -> Path:
    script = bin_dir / tool
    body = f'echo "{tool} version {version} Copyright (c) the FFmpeg developers"' if works else "exit 1"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return script


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_missing_then_installed_then_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    clock = Clock()
    tools = MediaTools(recheck_s=60, clock=clock)

    assert await tools.versions() == {"ffmpeg": "missing", "ffprobe": "missing"}
    with pytest.raises(APIError) as refused:
        await tools.require()
    assert refused.value.status == 503 and refused.value.code == "media_tools_unavailable"
    assert refused.value.extra["missing"] == ["ffmpeg", "ffprobe"]

    _install(tmp_path, "ffmpeg", "9.1")
    assert await tools.missing() == ["ffprobe"]
    probe = _install(tmp_path, "ffprobe", "9.1")
    assert await tools.versions() == {"ffmpeg": "9.1", "ffprobe": "9.1"}
    await tools.require()

    # Cached: a new binary at the same path is not run again until the recheck interval has passed.
    _install(tmp_path, "ffprobe", "9.2")
    assert (await tools.versions())["ffprobe"] == "9.1"
    clock.now += 61
    assert (await tools.versions())["ffprobe"] == "9.2"

    # Gone from PATH: seen at once, no waiting for the recheck.
    probe.unlink()
    assert await tools.missing() == ["ffprobe"]


async def test_a_binary_that_does_not_run_counts_as_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    _install(tmp_path, "ffmpeg", "1", works=False)
    _install(tmp_path, "ffprobe", "1")
    tools = MediaTools(clock=Clock())
    assert await tools.versions() == {"ffmpeg": "missing", "ffprobe": "1"}
    _install(tmp_path, "ffmpeg", "2")  # failures are not cached: the next check runs it again
    assert await tools.versions() == {"ffmpeg": "2", "ffprobe": "1"}


async def test_a_tool_vanishing_mid_request_is_a_503(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(APIError) as refused:
        await run_tool(["ffprobe", "-version"], timeout_s=5)
    assert refused.value.status == 503 and refused.value.code == "media_tools_unavailable"
    assert refused.value.extra["missing"] == ["ffprobe"]
    assert MEDIA_TOOLS._checked == {}  # the shared cache was dropped: the next check looks again
