"""Fallback HTTP load generator for bench/capacity.py when `wrk` is not installed.

    python bench/_http_load.py URL CONNECTIONS SECONDS [HEADER: VALUE ...]      (prints JSON)

Keep-alive HTTP/1.1 GETs on CONNECTIONS raw asyncio connections, one request in flight on each, for SECONDS;
counts 2xx answers and others. Python parses every response, so it saturates well below what wrk does:
capacity.py names which generator produced each figure, and its CPU.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from urllib.parse import urlsplit


async def _client(host: str, port: int, request: bytes, until: float, counts: dict[str, int]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < until:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = head[9:12]
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await reader.readexactly(length)
            counts["ok" if status.startswith(b"2") else "other"] += 1
    except (OSError, asyncio.IncompleteReadError):
        counts["errors"] += 1
    finally:
        writer.close()


async def main(url: str, connections: int, seconds: float, headers: list[str]) -> dict[str, float]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    extra = "".join(f"{h}\r\n" for h in headers)
    request = f"GET {parts.path or '/'} HTTP/1.1\r\nHost: {host}:{port}\r\n{extra}\r\n".encode()
    counts = {"ok": 0, "other": 0, "errors": 0}
    started = time.perf_counter()
    await asyncio.gather(*(_client(host, port, request, started + seconds, counts) for _ in range(connections)))
    wall = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "requests_per_s": counts["ok"] / wall,
        "non_2xx": counts["other"],
        "errors": counts["errors"],
        "load_cpu": (usage.ru_utime + usage.ru_stime) / wall,
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4:]))))
