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
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

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
    proc = await asyncio.create_subprocess_exec(
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
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
