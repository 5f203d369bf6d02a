"""Serving a page under its Content-Security-Policy, and a whitelist of the page's static assets.

Each page module names its own policy, its headers and the files it serves (name -> the folder it is served
from); a name not in that whitelist answers 404, so nothing else under those folders is reachable. Headers
these helpers do not set (the default CSP, `Cache-Control: no-store`, ...) come from quart_app/web/headers.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from quart import Response, abort, send_from_directory


def with_policy(response: Response, csp: str, headers: Mapping[str, str] | None = None) -> Response:
    """The response under `csp`, with `headers` set after it (in their order)."""
    response.headers["Content-Security-Policy"] = csp
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


async def send_page(folder: Path, name: str, csp: str, headers: Mapping[str, str] | None = None) -> Response:
    """The page `folder/name` under `csp`, with `headers`."""
    return with_policy(await send_from_directory(folder, name), csp, headers)


async def send_asset(assets: Mapping[str, Path], name: str, *, cache_control: str) -> Response:
    """The whitelisted asset `name` from its folder in `assets`, or 404 if it is not listed."""
    folder = assets.get(name)
    if folder is None:
        abort(404)
    response = await send_from_directory(folder, name)
    response.headers["Cache-Control"] = cache_control
    return response
