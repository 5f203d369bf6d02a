"""Running ffmpeg/ffprobe as asyncio subprocesses with a deadline, that die with the task that started them.

Every run has a deadline. Each tool starts in its own process group (session), so a timeout or a
cancellation kills the whole group, helpers included, and reaps the leader before returning.

Inputs are opened with `input_args`: the `file` protocol only (no network, no `pipe`, no `concat:` or
`subfile:` tricks) and one forced demuxer that is also the only one whitelisted, so a container can never
hand ffmpeg a playlist, a concat script or another file to open.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import shutil
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import APIError

LineHandler = Callable[[str], None]

# Seconds of ffmpeg time allowed per second of media (decoding audio runs at 100x real time or more).
DECODE_S_PER_MEDIA_S = 0.5


class ToolFailed(Exception):
    """The tool exited non-zero; `tail` holds its last stderr lines."""

    def __init__(self, tool: str, returncode: int, tail: str) -> None:
        super().__init__(f"{tool} exited with {returncode}: {tail}")
        self.tool = tool
        self.returncode = returncode
        self.tail = tail


class ToolTimedOut(Exception):
    """The tool did not finish within its deadline; its process group was killed."""

    def __init__(self, tool: str, timeout_s: float) -> None:
        super().__init__(f"{tool} did not finish within {timeout_s:g} s")
        self.tool = tool
        self.timeout_s = timeout_s


@dataclass(frozen=True)
class Deadlines:
    """How long each tool may run: ffprobe a fixed time, ffmpeg in proportion to the media, with a floor."""

    probe_s: float
    decode_min_s: float

    def decode(self, media_seconds: float | None) -> float:
        return max(self.decode_min_s, (media_seconds or 0.0) * DECODE_S_PER_MEDIA_S)


@dataclass
class ToolResult:
    stdout: str
    stderr_tail: str


def input_args(path: Path, demuxer: str | None) -> list[str]:
    """`-i path` for ffmpeg (or the input options for ffprobe): local file only, one container format.

    Without a `demuxer` the caller must pass `-format_whitelist` itself (probing an upload).
    """
    args = ["-protocol_whitelist", "file"]
    if demuxer is not None:
        args += ["-format_whitelist", demuxer, "-f", demuxer]
    return [*args, "-i", str(path)]


async def run_tool(
    args: Sequence[str],
    *,
    timeout_s: float,
    on_stdout: LineHandler | None = None,
    on_stderr: LineHandler | None = None,
    keep_stdout: bool = False,
) -> ToolResult:
    """Run `args`, feeding output lines to the handlers as they come; raise ToolFailed on a non-zero exit.

    Output is consumed line by line so a chatty tool never fills a pipe or our memory. Past `timeout_s`,
    or if the calling task is cancelled, the process group is killed and the leader reaped before
    ToolTimedOut (or CancelledError) propagates.
    """
    try:
        proc = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
    except (FileNotFoundError, PermissionError, NotADirectoryError):
        # The tool vanished from PATH (or lost its execute bit) since the last check: an outage, not a crash.
        MEDIA_TOOLS.forget()
        raise media_tools_unavailable([Path(args[0]).name]) from None
    kept: list[str] = []
    tail: collections.deque[str] = collections.deque(maxlen=12)

    async def pump(
        stream: asyncio.StreamReader, handler: LineHandler | None, sink: list[str] | None, keep_tail: bool
    ) -> None:
        while True:
            raw = await stream.readline()
            if not raw:
                return
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if handler is not None:
                handler(line)
            if sink is not None:
                sink.append(line)
            if keep_tail and line.strip():
                tail.append(line.strip())

    assert proc.stdout is not None and proc.stderr is not None
    try:
        async with asyncio.timeout(timeout_s):
            await asyncio.gather(
                pump(proc.stdout, on_stdout, kept if keep_stdout else None, False),
                pump(proc.stderr, on_stderr, None, True),
            )
            returncode = await proc.wait()
    except TimeoutError:
        await _kill_group(proc)
        raise ToolTimedOut(Path(args[0]).name, timeout_s) from None
    except BaseException:
        # Cancellation (or a handler raising): never leave an ffmpeg running on its own.
        await _kill_group(proc)
        raise
    if returncode != 0:
        raise ToolFailed(Path(args[0]).name, returncode, " | ".join(tail)[-600:])
    return ToolResult("\n".join(kept), " | ".join(tail))


async def _kill_group(proc: asyncio.subprocess.Process) -> None:
    """SIGKILL the tool's process group (it leads its own session), then reap the leader."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
    with contextlib.suppress(Exception):
        await asyncio.shield(proc.wait())


# ----- availability ---------------------------------------------------------------------------------------------

TOOLS = ("ffmpeg", "ffprobe")
MISSING = "missing"
# A tool found on PATH is asked for its version (a real run, so a broken binary counts as missing) at most this
# often; a failed or missing tool is looked for again on every check (a `shutil.which`: a few stats).
RECHECK_S = 300.0
VERSION_TIMEOUT_S = 5.0


def media_tools_unavailable(missing: Sequence[str]) -> APIError:
    names = " and ".join(missing) or "ffmpeg"
    return APIError(
        503,
        "media_tools_unavailable",
        f"Media processing is unavailable on this server: {names} not installed. "
        "Audio and video that need probing or splitting cannot be accepted until it is; nothing was stored.",
        headers={"Retry-After": "60"},
        extra={"missing": list(missing)},
    )


@dataclass(frozen=True)
class _Checked:
    path: str
    version: str | None  # None: the path did not run
    at: float


class MediaTools:
    """Whether ffmpeg and ffprobe can run here: `shutil.which` on each call, plus a cached `-version` run with a
    deadline, redone every `recheck_s` or whenever the binary found on PATH changes or a run found it gone. So
    installing the tools recovers without a restart, and removing them turns into 503s, not crashes."""

    def __init__(
        self,
        *,
        recheck_s: float = RECHECK_S,
        timeout_s: float = VERSION_TIMEOUT_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.recheck_s = recheck_s
        self.timeout_s = timeout_s
        self.clock = clock
        self._checked: dict[str, _Checked] = {}

    def forget(self) -> None:
        """Drop the cached answers: the next check runs the tools again."""
        self._checked.clear()

    async def versions(self) -> dict[str, str]:
        """Each tool's version (the first line's third word, e.g. "7.1.1-1+b1"), or "missing"."""
        found = await asyncio.gather(*(self._version(tool) for tool in TOOLS))
        return {tool: version or MISSING for tool, version in zip(TOOLS, found, strict=True)}

    async def missing(self) -> list[str]:
        return [tool for tool, version in (await self.versions()).items() if version == MISSING]

    async def require(self) -> None:
        """APIError 503 `media_tools_unavailable` unless both tools run."""
        missing = await self.missing()
        if missing:
            raise media_tools_unavailable(missing)

    async def _version(self, tool: str) -> str | None:
        path = shutil.which(tool)
        if path is None:
            self._checked.pop(tool, None)
            return None
        cached = self._checked.get(tool)
        now = self.clock()
        if cached is not None and cached.path == path and cached.version is not None:
            if now - cached.at < self.recheck_s:
                return cached.version
        version = await _run_version(path, self.timeout_s)
        self._checked[tool] = _Checked(path, version, now)
        return version


async def _run_version(path: str, timeout_s: float) -> str | None:
    """`<tool> -version`'s version word, or None when it does not run or answer in time."""
    lines: list[str] = []
    try:
        proc = await asyncio.create_subprocess_exec(
            path,
            "-version",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,
        )
    except OSError:
        return None
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(timeout_s):
            output = await proc.stdout.read(4096)
            lines = output.decode("utf-8", "replace").splitlines()
            returncode = await proc.wait()
    except TimeoutError:
        await _kill_group(proc)
        return None
    except BaseException:
        await _kill_group(proc)
        raise
    if returncode != 0 or not lines:
        return None
    words = lines[0].split()
    return words[2] if len(words) >= 3 and words[1] == "version" else (lines[0].strip()[:80] or None)


# The process's view of the tools (PATH is the process's): media routes and /health ask it.
MEDIA_TOOLS = MediaTools()
