"""A request class whose body enforces MAX_CONTENT_LENGTH on the running total, chunked uploads included.

Quart checks the declared Content-Length up front, but a chunked upload has none, and its streaming
body only measures what is buffered, not what has gone by. Counting here keeps a client from filling
the disk with an endless chunked upload.

It also applies backpressure. Quart's receiver task appends every ASGI body message as soon as hypercorn
delivers it, whatever the consumer's pace, so while the multipart parser spools to disk the unread
bytes pile up in the body buffer (tens of MB for a 100 MB upload on loopback). LimitedASGIHTTPConnection
stops receiving while a streaming consumer has HIGH_WATER bytes unread; hypercorn's bounded app queue
then stops reading the socket and TCP slows the client. A consumer that awaits the whole body
(`await request.get_data()`, JSON) turns backpressure off, since it reads nothing until the end.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Generator
from typing import Any

from quart.asgi import ASGIHTTPConnection
from quart.wrappers.request import Body, Request
from werkzeug.exceptions import RequestEntityTooLarge

HIGH_WATER = 1024 * 1024  # unread bytes at which the receiver pauses (bounded further by hypercorn's queue)


class CountingBody(Body):
    def __init__(self, expected_content_length: int | None, max_content_length: int | None) -> None:
        super().__init__(expected_content_length, max_content_length)
        self._total = 0
        self._drained = asyncio.Event()  # set: the receiver may append more
        self._drained.set()
        self._unbounded = False  # True once someone awaits the whole body

    def append(self, data: bytes) -> None:
        self._total += len(data)
        if self._max_content_length is not None and self._total > self._max_content_length:
            if self._must_raise is None:
                self._must_raise = RequestEntityTooLarge()
                self._data.clear()
                self.set_complete()
                self._drained.set()  # keep receiving (and discarding) so the client sees the 413
            return
        super().append(data)
        if len(self._data) >= HIGH_WATER and not self._unbounded and self._must_raise is None:
            self._drained.clear()

    async def __anext__(self) -> bytes:
        try:
            return await super().__anext__()
        except StopAsyncIteration:
            # Body.__anext__ checks _must_raise only before waiting: a limit hit while the reader waited
            # would look like a normal end of body (a truncated form and a misleading 400).
            if self._must_raise is not None:
                raise self._must_raise from None
            raise
        finally:
            self._drained.set()  # the buffer was handed out (or the body ended)

    def __await__(self) -> Generator[Any, None, Any]:
        self._unbounded = True
        self._drained.set()
        return (yield from super().__await__())

    async def wait_drained(self) -> None:
        await self._drained.wait()


class LimitedASGIHTTPConnection(ASGIHTTPConnection):
    """Quart's receiver loop, waiting for the body buffer to drain before taking the next message."""

    async def handle_messages(self, request: Request, receive) -> None:  # type: ignore[no-untyped-def]
        body = request.body
        while True:
            if isinstance(body, CountingBody):
                await body.wait_drained()
            message = await receive()
            if message["type"] == "http.request":
                body.append(message.get("body", b""))
                if not message.get("more_body", False):
                    body.set_complete()
            elif message["type"] == "http.disconnect":
                return


class LimitedRequest(Request):
    """Bodies up to `max_body_bytes`, except POSTs to paths matching `upload_paths`, up to `max_upload_bytes`.

    The limit is fixed when the request is created, before the first body byte arrives: a small JSON
    route never buffers a large body, whoever sends it. `for_app` makes the per-app subclass.
    """

    body_class = CountingBody
    upload_paths: re.Pattern[str] | None = None
    max_body_bytes: int | None = None
    max_upload_bytes: int | None = None

    @classmethod
    def for_app(cls, upload_paths: re.Pattern[str], max_body_bytes: int, max_upload_bytes: int) -> type[Request]:
        attributes = {
            "upload_paths": upload_paths,
            "max_body_bytes": max_body_bytes,
            "max_upload_bytes": max_upload_bytes,
        }
        return type("AppRequest", (cls,), attributes)

    def __init__(self, method: str, scheme: str, path: str, *args: Any, **kwargs: Any) -> None:
        if self.max_body_bytes is not None:
            upload = method == "POST" and self.upload_paths is not None and bool(self.upload_paths.match(path))
            kwargs["max_content_length"] = self.max_upload_bytes if upload else self.max_body_bytes
        super().__init__(method, scheme, path, *args, **kwargs)

    async def get_json(self, force: bool = False, silent: bool = False, cache: bool = True) -> Any:
        """Malformed JSON of any kind is a 400 (or None when `silent`), never a 500.

        Quart turns only ValueError into a 400: a body that is not UTF-8 raises UnicodeDecodeError first,
        and a deeply nested array or object makes Python's parser raise RecursionError.
        """
        try:
            return await super().get_json(force=force, silent=silent, cache=cache)
        except (UnicodeDecodeError, RecursionError) as error:
            if silent:
                return None
            return self.on_json_loading_failed(error if isinstance(error, ValueError) else ValueError(str(error)))
