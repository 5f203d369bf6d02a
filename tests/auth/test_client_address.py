"""Which X-Forwarded-For entry is believed: only the ones our own proxies appended."""

from __future__ import annotations

import pytest

from quart_app.web.guards import forwarded_client
from tests.support.users import make_user


@pytest.mark.parametrize(
    ("header", "remote", "trusted", "expected"),
    [
        ("", "10.0.0.9", 0, "10.0.0.9"),
        ("6.6.6.6", "10.0.0.9", 0, "10.0.0.9"),  # no trusted proxy: the header is ignored
        ("203.0.113.7", "10.0.0.9", 1, "203.0.113.7"),
        ("6.6.6.6, 203.0.113.7", "10.0.0.9", 1, "203.0.113.7"),  # a forged left entry is ignored
        ("6.6.6.6, 203.0.113.7, 10.1.1.1", "10.0.0.9", 2, "203.0.113.7"),
        ("203.0.113.7", "10.0.0.9", 3, "203.0.113.7"),  # shorter chain than proxies: leftmost
        ("", None, 1, "unknown"),
    ],
)
def test_forwarded_client(header: str, remote: str | None, trusted: int, expected: str) -> None:
    assert forwarded_client(header, remote, trusted) == expected


async def test_rotating_forged_forwarded_for_does_not_escape_the_lockout(make_app) -> None:
    async with make_app(TRUSTED_PROXY_COUNT="1", PIN_MAX_ATTEMPTS="3") as (app, client):
        user, _ = await make_user(app, pin="8642")
        statuses = []
        for i in range(5):
            # The attacker varies the left end; the proxy appends the same real address each time.
            headers = {"X-Forwarded-For": f"198.51.100.{i}, 203.0.113.50"}
            response = await client.post("/api/auth/pin", json={"email": user.email, "pin": "0000"}, headers=headers)
            statuses.append(response.status_code)
        assert statuses == [401, 401, 429, 429, 429]
