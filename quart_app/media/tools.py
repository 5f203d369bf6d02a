"""Running ffmpeg/ffprobe as asyncio subprocesses that die with the task that started them."""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

LineHandler = Callable[[str], None]


class ToolFailed(Exception):
    """The tool exited non-zero; `tail` holds its last stderr lines."""

    def __init__(self, tool: str, returncode: int, tail: str) -> None:
        super().__init__(f"{tool} exited with {returncode}: {tail}")
        self.tool = tool
        self.returncode = returncode
        self.tail = tail


@dataclass
class ToolResult:
    stdout: str
    stderr_tail: str


async def run_tool(
    args: Sequence[str],
    *,
    on_stdout: LineHandler | None = None,
    on_stderr: LineHandler | None = None,
    keep_stdout: bool = False,
) -> ToolResult:
    """Run `args`, feeding output lines to the handlers as they come; raise ToolFailed on a non-zero exit.

    Output is consumed line by line so a chatty tool never fills a pipe or our memory. If the calling task
    is cancelled the process is killed and reaped before CancelledError propagates.
    """
    proc = await asyncio.create_subprocess_exec(
        *args, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
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
        await asyncio.gather(
            pump(proc.stdout, on_stdout, kept if keep_stdout else None, False),
            pump(proc.stderr, on_stderr, None, True),
        )
        returncode = await proc.wait()
    except BaseException:
        # Cancellation (or a handler raising): never leave an ffmpeg running on its own.
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            with contextlib.suppress(Exception):
                await asyncio.shield(proc.wait())
        raise
    if returncode != 0:
        raise ToolFailed(args[0], returncode, " | ".join(tail)[-600:])
    return ToolResult("\n".join(kept), " | ".join(tail))
