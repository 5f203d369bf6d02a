"""A short per-token cache for Auth0 /userinfo, which Auth0 rate-limits per user."""

from __future__ import annotations

import hashlib
import time
from typing import Any


class UserinfoCache:
    def __init__(self, ttl_s: float = 60.0, max_entries: int = 10_000) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._items: dict[str, tuple[float, dict[str, Any]]] = {}

    @staticmethod
    def _key(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    def get(self, token: str) -> dict[str, Any] | None:
        item = self._items.get(self._key(token))
        if item is None or item[0] < time.monotonic():
            return None
        return item[1]

    def put(self, token: str, value: dict[str, Any]) -> None:
        now = time.monotonic()
        if len(self._items) >= self.max_entries:
            self._items = {k: v for k, v in self._items.items() if v[0] >= now}
            if len(self._items) >= self.max_entries:
                self._items.clear()
        self._items[self._key(token)] = (now + self.ttl_s, value)
