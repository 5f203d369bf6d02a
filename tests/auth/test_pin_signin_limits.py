"""PIN sign-in under attack: concurrent bursts, rate limits, the per-account ceiling, the bounded hasher.

Live hypercorn servers (and, where a test must hold the hasher still, an in-process app), on the embedded
defaults and on PostgreSQL with Redis-backed counters. Redis counters outlive a test, so every test signs
in from its own made-up client address (`X-Forwarded-For` behind one trusted proxy) and fresh e-mails.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections.abc import Callable
from typing import Any

import httpx

from quart_app.auth.pins import hash_pin
from quart_app.db import users
from quart_app.db.database import connect, open_database
from quart_app.settings import Settings
from tests.support.live_server import LiveServer
from tests.support.users import make_user, unique_email

# Limits that stay out of the way of a test about something else.
OPEN = {
    "TRUSTED_PROXY_COUNT": "1",
    "PIN_SIGNIN_ADDRESS_PER_MINUTE": "100000",
    "PIN_SIGNIN_ACCOUNT_PER_MINUTE": "100000",
    "PIN_ACCOUNT_MAX_ATTEMPTS": "1000",
    "PIN_HASH_QUEUE": "200",
}


def random_address() -> str:
    return f"10.{secrets.randbelow(256)}.{secrets.randbelow(256)}.{secrets.randbelow(254) + 1}"


async def pin_user(env: dict[str, str], pin: str) -> str:
    """A user with `pin` in the server's database (already migrated by the server); returns its e-mail."""
    db = open_database(Settings.from_env({"DATABASE_URL": env["DATABASE_URL"]}).database_url)
    await connect(db)
    try:
        user = await users.create_user(db, email=unique_email("pin"), pin_hash=hash_pin(pin))
    finally:
        await db.disconnect()
    assert user.email is not None
    return user.email


def start(live_server_factory: Callable[..., LiveServer], backend_env: dict[str, str], **env: str) -> LiveServer:
    return live_server_factory(**{**backend_env, **OPEN, **env})


async def sign_in(http: httpx.AsyncClient, email: str, pin: str, address: str) -> httpx.Response:
    return await http.post("/api/auth/pin", json={"email": email, "pin": pin}, headers={"X-Forwarded-For": address})


def answer(response: httpx.Response) -> tuple[int, str]:
    assert "Traceback" not in response.text
    return response.status_code, response.json().get("error", "ok")


# ------------------------------------------------------------------------------- finding 1: the burst


async def test_a_concurrent_burst_is_limited_like_a_sequence(live_server_factory, backend_env) -> None:
    """40 wrong PINs at once, then the right one while the burst is still in flight.

    Each attempt is counted before its PIN is verified, so exactly PIN_MAX_ATTEMPTS are verified: the
    first four answer 401 and the fifth, which trips the lockout, 429 like every later one. The right PIN
    is sent once PIN_MAX_ATTEMPTS answers are back (each answer means its attempt was counted), so it is
    certainly past the lockout, and it must be refused. Checking before counting let all 40 be verified.
    """
    max_attempts = 5
    server = start(live_server_factory, backend_env, PIN_MAX_ATTEMPTS=str(max_attempts))
    right = "739154"
    email = await pin_user(backend_env, right)
    address = random_address()
    answered = 0
    enough = asyncio.Event()

    async with httpx.AsyncClient(base_url=server.url, timeout=60, limits=httpx.Limits(max_connections=64)) as http:

        async def wrong(i: int) -> httpx.Response:
            nonlocal answered
            response = await sign_in(http, email, str(100000 + i), address)
            answered += 1
            if answered >= max_attempts:
                enough.set()
            return response

        async def right_pin() -> httpx.Response:
            await enough.wait()
            return await sign_in(http, email, right, address)

        responses = await asyncio.wait_for(asyncio.gather(*(wrong(i) for i in range(40)), right_pin()), 120)

    answers = [answer(r) for r in responses[:-1]]
    assert set(answers) <= {(401, "invalid_credentials"), (429, "locked_out")}, answers
    assert answers.count((401, "invalid_credentials")) == max_attempts - 1, answers
    locked = responses[-1]
    assert answer(locked) == (429, "locked_out")
    assert locked.json()["retry_after"] > 0 and int(locked.headers["Retry-After"]) > 0


async def test_attempts_are_counted_before_the_pin_is_verified(make_app, backend_env, monkeypatch) -> None:
    """The same burst, held still where counting and verifying used to be apart: at the user lookup that
    every sign-in makes between the lockout and the scrypt check.

    40 wrong guesses are sent and the test waits until each is either answered or waiting at the lookup;
    then the right PIN is sent. Counting first, only PIN_MAX_ATTEMPTS guesses ever reach the lookup and
    the right PIN, the 41st attempt, is refused at once. Checking first and counting after verification,
    all 41 passed the check, and the right PIN signed in.
    """
    async with make_app(**backend_env, **OPEN, PIN_MAX_ATTEMPTS="5") as (app, client):
        user, _ = await make_user(app, pin="739154")
        gate = asyncio.Event()
        progress = asyncio.Event()  # set whenever a guess is answered or reaches the lookup
        lookups = 0
        real_lookup = users.get_user_by_email

        async def held_lookup(db: Any, email: str) -> Any:
            nonlocal lookups
            if email.strip().lower() == user.email:
                lookups += 1
                progress.set()
                await gate.wait()
            return await real_lookup(db, email)

        monkeypatch.setattr(users, "get_user_by_email", held_lookup)
        answered: list[Any] = []

        async def attempt(pin: str) -> Any:
            response = await client.post("/api/auth/pin", json={"email": user.email, "pin": pin})
            answered.append(response)
            progress.set()
            return response

        async def until(condition: Callable[[], bool]) -> None:
            async with asyncio.timeout(60):  # a hang guard only
                while not condition():
                    progress.clear()
                    await progress.wait()

        wrong = [asyncio.create_task(attempt(str(100000 + i))) for i in range(40)]
        await until(lambda: len(answered) + lookups == 40)
        right = asyncio.create_task(client.post("/api/auth/pin", json={"email": user.email, "pin": "739154"}))
        right.add_done_callback(lambda _: progress.set())
        await until(lambda: right.done() or len(answered) + lookups == 41)
        gate.set()
        responses = await asyncio.gather(*wrong)
        refused = await right

        assert lookups <= 5  # at most PIN_MAX_ATTEMPTS guesses were verified
        assert refused.status_code == 429 and (await refused.get_json())["error"] == "locked_out"
        codes = [(r.status_code, (await r.get_json())["error"]) for r in responses]
        assert codes.count((401, "invalid_credentials")) == 4 and codes.count((429, "locked_out")) == 36


# ------------------------------------------------------------------------------ finding 6: rate limits


async def test_sign_in_is_rate_limited_per_client_address(live_server_factory, backend_env) -> None:
    server = start(live_server_factory, backend_env, PIN_SIGNIN_ADDRESS_PER_MINUTE="3")
    address = random_address()
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        # Spraying one PIN over many accounts from one address: each account is fresh, the address is not.
        for _ in range(3):
            assert answer(await sign_in(http, unique_email("spray"), "1234", address)) == (401, "invalid_credentials")
        limited = await sign_in(http, unique_email("spray"), "1234", address)
        assert answer(limited) == (429, "rate_limited")
        assert 1 <= int(limited.headers["Retry-After"]) <= 60
        assert limited.json()["retry_after"] == int(limited.headers["Retry-After"])
        # Another address has its own budget.
        other = await sign_in(http, unique_email("spray"), "1234", random_address())
        assert answer(other) == (401, "invalid_credentials")


async def test_sign_in_is_rate_limited_per_account_the_same_for_unknown_accounts(
    live_server_factory, backend_env
) -> None:
    server = start(live_server_factory, backend_env, PIN_SIGNIN_ACCOUNT_PER_MINUTE="3")
    real = await pin_user(backend_env, "246810")
    ghost = unique_email("ghost")
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        sequences = []
        for email in (real, ghost):
            # A new address for every guess: only the per-account limit can stop this.
            sequences.append([answer(await sign_in(http, email, "0000", random_address())) for _ in range(4)])
        assert sequences[0] == [(401, "invalid_credentials")] * 3 + [(429, "rate_limited")]
        assert sequences[1] == sequences[0]  # nothing tells a real account from an unknown one
        right = await sign_in(http, real, "246810", random_address())
        assert answer(right) == (429, "rate_limited")


async def test_account_ceiling_holds_across_addresses(live_server_factory, backend_env) -> None:
    """Each address used to get PIN_MAX_ATTEMPTS fresh tries per account; now the account has a ceiling."""
    server = start(live_server_factory, backend_env, PIN_MAX_ATTEMPTS="3", PIN_ACCOUNT_MAX_ATTEMPTS="4")
    real = await pin_user(backend_env, "97531")
    ghost = unique_email("ghost")
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        sequences = []
        for email in (real, ghost):
            first, second, third = random_address(), random_address(), random_address()
            sequence = [answer(await sign_in(http, email, "0000", first)) for _ in range(2)]
            sequence += [answer(await sign_in(http, email, "1111", second)) for _ in range(2)]
            # A third address, and the right PIN: the account has used its four attempts.
            last = await sign_in(http, email, "97531", third)
            sequence.append(answer(last))
            sequences.append(sequence)
        assert sequences[0] == [(401, "invalid_credentials")] * 3 + [(429, "locked_out")] * 2
        assert sequences[1] == sequences[0]
        assert int(last.headers["Retry-After"]) > 0


# ----------------------------------------------------------------------- finding 6: the bounded hasher


async def test_full_hasher_answers_busy_without_counting_the_attempt(make_app) -> None:
    """One thread, no queue: while it is held, a sign-in or a PIN change is refused at once with 503."""
    env = {"PIN_HASH_THREADS": "1", "PIN_HASH_QUEUE": "0", "PIN_MAX_ATTEMPTS": "1"}
    async with make_app(**env) as (app, client):
        user, key = await make_user(app, pin="2468")
        hasher = app.extensions["resources"].pin_signin.hasher
        release = threading.Event()
        async with hasher.slot() as slot:
            held = asyncio.create_task(slot.run(release.wait, 60))
            busy = await client.post("/api/auth/pin", json={"email": user.email, "pin": "2468"})
            assert busy.status_code == 503
            body = await busy.get_json()
            assert body["error"] == "busy" and busy.headers["Retry-After"] == str(body["retry_after"])
            change = await client.put(
                "/api/me/pin", json={"pin": "1357", "current_pin": "2468"}, headers={"x-api-key": key}
            )
            assert change.status_code == 503 and (await change.get_json())["error"] == "busy"
            release.set()
            await asyncio.wait_for(held, 30)
        assert hasher.in_use == 0
        # Busy refusals were not counted: with PIN_MAX_ATTEMPTS=1 the right PIN still signs in.
        ok = await client.post("/api/auth/pin", json={"email": user.email, "pin": "2468"})
        assert ok.status_code == 200


async def test_sign_in_does_not_need_the_shared_thread_pool(make_app) -> None:
    """scrypt used to run on the default executor, so anything holding its threads stalled sign-in."""
    async with make_app() as (app, client):
        user, _ = await make_user(app, pin="8642")
        release = threading.Event()
        loop = asyncio.get_running_loop()
        # More blocked jobs than the default pool has threads (at most 32): every one of them is held.
        hogs = [loop.run_in_executor(None, release.wait, 60) for _ in range(40)]
        try:
            signed = await asyncio.wait_for(client.post("/api/auth/pin", json={"email": user.email, "pin": "8642"}), 30)
            assert signed.status_code == 200
        finally:
            release.set()
            await asyncio.gather(*hogs)


async def test_burst_past_the_hasher_gets_only_documented_answers(live_server_factory, backend_env) -> None:
    server = start(live_server_factory, backend_env, PIN_HASH_THREADS="1", PIN_HASH_QUEUE="1")
    address = random_address()
    async with httpx.AsyncClient(base_url=server.url, timeout=60, limits=httpx.Limits(max_connections=64)) as http:
        responses = await asyncio.wait_for(
            asyncio.gather(*(sign_in(http, unique_email("flood"), "1234", address) for _ in range(30))), 120
        )
        for response in responses:
            assert answer(response) in {(401, "invalid_credentials"), (503, "busy")}
            if response.status_code == 503:
                assert response.headers["Retry-After"] == "1"
        assert (await http.get("/health/live")).status_code == 200


# --------------------------------------------------------------- finding 17b: memory counters when full


async def test_a_flood_cannot_evict_a_live_lockout_from_memory_counters(make_app) -> None:
    """Without Redis the counters hold MEMORY_COUNTERS_MAX_KEYS keys. A flood of made-up e-mails used to
    push the oldest entries out, live lockouts first; now only expired or non-locking entries go, and once
    only lockouts are left new keys are refused (503 busy) instead."""
    env = {
        **OPEN,
        "MEMORY_COUNTERS_MAX_KEYS": "40",
        "PIN_MAX_ATTEMPTS": "1",
        "PIN_ACCOUNT_MAX_ATTEMPTS": "1",
    }
    async with make_app(**env) as (app, client):
        victim, _ = await make_user(app, pin="1357")
        headers = {"X-Forwarded-For": "203.0.113.9"}

        async def post(email: str, pin: str) -> tuple[int, str]:
            response = await client.post("/api/auth/pin", json={"email": email, "pin": pin}, headers=headers)
            return response.status_code, (await response.get_json()).get("error", "ok")

        assert await post(victim.email, "0000") == (429, "locked_out")  # PIN_MAX_ATTEMPTS=1: locked at once
        flood = [await post(unique_email("flood"), "0000") for _ in range(60)]
        # The victim's lockout survived the flood: the right PIN is still refused (locked out, or busy when
        # one of its rate-limit windows was dropped and there is no room to start a new one), never accepted.
        assert await post(victim.email, "1357") in {(429, "locked_out"), (503, "busy")}
        assert set(flood) <= {(429, "locked_out"), (503, "busy")}, flood
        assert (503, "busy") in flood  # full of live lockouts: new keys refused
