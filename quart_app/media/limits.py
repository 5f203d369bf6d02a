"""A request class whose body enforces MAX_CONTENT_LENGTH on the running total, chunked uploads included.

Quart checks the declared Content-Length up front, but a chunked upload has none, and its streaming
body only measures what is buffered, not what has gone by. Counting here keeps a client from filling
the disk with an endless chunked upload.
"""

from __future__ import annotations

from quart.wrappers.request import Body, Request
from werkzeug.exceptions import RequestEntityTooLarge


class CountingBody(Body):
    def __init__(self, expected_content_length: int | None, max_content_length: int | None) -> None:
        super().__init__(expected_content_length, max_content_length)
        self._total = 0

    def append(self, data: bytes) -> None:
        self._total += len(data)
        if self._max_content_length is not None and self._total > self._max_content_length:
            if self._must_raise is None:
                self._must_raise = RequestEntityTooLarge()
                self._data.clear()
                self.set_complete()
            return
        super().append(data)


class LimitedRequest(Request):
    body_class = CountingBody
