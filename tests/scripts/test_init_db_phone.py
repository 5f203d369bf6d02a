"""scripts/init_db.py --phone: a user the phone flow and the voice page can find by number."""

from __future__ import annotations

from pathlib import Path

from quart_app.auth.pins import verify_pin
from quart_app.db import users
from tests.scripts.test_init_db import opened, run


async def test_test_user_with_a_phone_number(db_url: str) -> None:
    result = await run(
        db_url, "test-user", "--email", "caller@example.com", "--phone", "+1 555 010 7788", "--pin", "2468"
    )
    assert result.returncode == 0, result.stderr
    assert "phone +15550107788" in result.stdout
    async with opened(db_url) as db:
        user = await users.get_user_by_phone(db, "+15550107788")
        assert user is not None and user.email == "caller@example.com" and user.pin_hash is not None
        assert verify_pin("2468", user.pin_hash)

    taken = await run(db_url, "test-user", "--email", "other@example.com", "--phone", "+15550107788")
    assert taken.returncode == 1 and "+15550107788 already belongs to" in taken.stderr
    async with opened(db_url) as db:
        assert await users.get_user_by_email(db, "other@example.com") is None


async def test_a_malformed_phone_is_a_usage_error(tmp_path: Path) -> None:
    result = await run(
        f"sqlite+aiosqlite:///{tmp_path}/t.db", "test-user", "--email", "a@example.com", "--phone", "555-12"
    )
    assert result.returncode == 2 and "E.164" in result.stderr
