"""PIN sign-in by E.164 phone number (the voice page's "user" field, the phone flow's caller), through the same
gates as by e-mail: the lockout counts every spelling of a number as one."""

from __future__ import annotations

import secrets

import pytest

from quart_app.auth.pins import hash_pin
from quart_app.auth.signin import InvalidCredentials, LockedOut
from quart_app.db import users

OPEN = {"PIN_SIGNIN_ADDRESS_PER_MINUTE": "100000", "PIN_SIGNIN_ACCOUNT_PER_MINUTE": "100000"}


def _number() -> str:
    return "+1555" + "".join(secrets.choice("0123456789") for _ in range(7))


async def test_sign_in_by_phone_over_rest(make_app, backend_env) -> None:
    async with make_app(**backend_env, **OPEN) as (app, client):
        number = _number()
        db = app.extensions["resources"].db()
        user = await users.create_user(db, email=None, phone=number, pin_hash=hash_pin("482913"))
        spaced = f"{number[:2]} ({number[2:5]}) {number[5:8]}-{number[8:]}"
        for spelling in (number, spaced):
            signed = await client.post("/api/auth/pin", json={"email": spelling, "pin": "482913"})
            assert signed.status_code == 200, await signed.get_json()
            assert (await signed.get_json())["user"]["id"] == user.id
        wrong = await client.post("/api/auth/pin", json={"email": number, "pin": "000000"})
        assert wrong.status_code == 401 and (await wrong.get_json())["error"] == "invalid_credentials"
        unknown = await client.post("/api/auth/pin", json={"email": _number(), "pin": "482913"})
        assert unknown.status_code == 401 and (await unknown.get_json())["error"] == "invalid_credentials"


async def test_verify_caller_and_its_lockout_across_spellings(make_app) -> None:
    async with make_app(**OPEN, PIN_MAX_ATTEMPTS="3", PIN_LOCKOUT_SECONDS="900") as (app, _client):
        signin = app.extensions["resources"].pin_signin
        number = _number()
        user = await users.create_user(
            app.extensions["resources"].db(), email=None, phone=number, pin_hash=hash_pin("2468")
        )
        assert (await signin.verify_caller(number, "2468")).id == user.id
        with pytest.raises(InvalidCredentials):
            await signin.verify_caller(number, "1111")
        with pytest.raises(InvalidCredentials):
            await signin.verify_caller(number, "2222")
        # The third failure, spelt differently, still counts for the same number: it locks.
        with pytest.raises(LockedOut):
            await signin.verify_caller(f"{number[:2]} {number[2:]}", "3333")
        with pytest.raises(LockedOut):
            await signin.verify_caller(number, "2468")  # even the right PIN, while locked
