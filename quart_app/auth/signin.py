"""PIN sign-in as a service: REST (`POST /api/auth/pin`), the `/voice` namespace and the phone flow (by e-mail or
by E.164 phone number).

Every PIN verification (sign-in, and the current PIN when a PIN is changed) passes the same gates, cheapest
first, so refused attempts cost no scrypt:

1. per-minute rate limits per client address and per account → 429 `rate_limited`;
2. a slot in the PIN hasher (a small thread pool of its own with a bounded queue) → 503 `busy` when full,
   before anything else is counted, so a flood elsewhere cannot use up a user's attempts;
3. the lockout, per (account, address) and per account across addresses → 429 `locked_out`. An attempt is
   counted before its PIN is verified: a concurrent burst is limited exactly like a sequence.

Failures never say whether the account exists: unknown users are verified against a dummy hash and every
counter is keyed by what the caller typed. Success clears the (account, address) count.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from ..db import users
from ..db.handle import DatabaseHandle
from ..db.users import User
from ..errors import APIError
from . import pins
from .counters import CountersFull, retry_after_header
from .lockout import Attempt, PinLockout
from .rate_limit import SignInRateLimit
from .sessions import SessionTokens

log = logging.getLogger(__name__)

T = TypeVar("T")

BUSY_RETRY_AFTER_S = 1


class InvalidCredentials(APIError):
    def __init__(self) -> None:
        super().__init__(401, "invalid_credentials", "E-mail or PIN is incorrect.")


class InvalidCurrentPin(APIError):
    def __init__(self) -> None:
        super().__init__(403, "invalid_current_pin", "The current PIN is incorrect.", extra={"field": "current_pin"})


class LockedOut(APIError):
    def __init__(self, retry_after: float) -> None:
        seconds = max(1, int(retry_after + 0.999))
        super().__init__(
            429,
            "locked_out",
            "Too many failed attempts. Try again later.",
            headers={"Retry-After": str(seconds)},
            extra={"retry_after": seconds},
        )
        self.retry_after = seconds


class SignInRateLimited(APIError):
    def __init__(self, retry_after: float) -> None:
        seconds = int(retry_after_header(retry_after))
        super().__init__(
            429,
            "rate_limited",
            "Too many sign-in attempts. Try again later.",
            headers={"Retry-After": str(seconds)},
            extra={"retry_after": seconds},
        )


class Busy(APIError):
    def __init__(self) -> None:
        super().__init__(
            503,
            "busy",
            "Too many PIN checks in progress. Try again shortly.",
            headers={"Retry-After": str(BUSY_RETRY_AFTER_S)},
            extra={"retry_after": BUSY_RETRY_AFTER_S},
        )


class PinHasher:
    """scrypt off the event loop, in a few threads of its own and never on the shared default pool.

    At most `threads` hashes run and `queue` more wait; a further request gets Busy at once instead of
    queuing without bound. A slot is held until its hash has finished, even if the request was cancelled.
    """

    def __init__(self, threads: int, queue: int) -> None:
        self.threads = threads
        self.capacity = threads + queue
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="pin-scrypt")
        self._taken = 0

    @property
    def in_use(self) -> int:
        return self._taken

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[HasherSlot]:
        """Take a slot or raise Busy; the slot runs at most one hash."""
        if self._taken >= self.capacity:
            raise Busy()
        self._taken += 1
        slot = HasherSlot(self, asyncio.get_running_loop())
        try:
            yield slot
        finally:
            if not slot.submitted:
                self._release()

    def _release(self) -> None:
        self._taken -= 1

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class HasherSlot:
    def __init__(self, hasher: PinHasher, loop: asyncio.AbstractEventLoop) -> None:
        self._hasher = hasher
        self._loop = loop
        self.submitted = False

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        if self.submitted:
            raise RuntimeError("a hasher slot runs one hash")
        self.submitted = True
        future = self._hasher._pool.submit(fn, *args)
        future.add_done_callback(self._done)
        return await asyncio.wrap_future(future)

    def _done(self, _: Future[Any]) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is already closed at shutdown
            self._loop.call_soon_threadsafe(self._hasher._release)


@dataclass(frozen=True)
class SignedIn:
    user: User
    token: str
    expires_in: int


class PinSignIn:
    def __init__(
        self,
        database: DatabaseHandle,
        lockout: PinLockout,
        sessions: SessionTokens,
        limits: SignInRateLimit,
        hasher: PinHasher,
    ) -> None:
        self.database = database
        self.lockout = lockout
        self.sessions = sessions
        self.limits = limits
        self.hasher = hasher

    async def sign_in(self, identifier: str, pin: str, address: str) -> SignedIn:
        """A session for `identifier` (an e-mail, or an E.164 phone number) and `pin`, or one of the refusals
        in the module docstring. A phone number is counted in its E.164 form, however it was spelt."""
        db = self.database.get()
        found: list[User] = []
        phone = users.looks_like_phone(identifier)
        if phone:
            identifier = users.normalize_phone(identifier)

        async def stored_hash() -> str | None:
            if phone:
                user = await users.get_user_by_phone(db, identifier)
            else:
                user = await users.get_user_by_email(db, identifier.strip())
            if user is not None:
                found.append(user)
            return user.pin_hash if user is not None else None

        ok, attempt = await self._verify(identifier, address, pin, stored_hash)
        if not ok or not found:
            if attempt.last:
                raise LockedOut(self.lockout.lockout_s)
            raise InvalidCredentials()
        user = found[0]
        await self.lockout.reset(identifier, address)
        token = self.sessions.issue(user.id, user.pin_hash)
        return SignedIn(user=user, token=token, expires_in=self.sessions.ttl_s)

    async def verify_caller(self, from_number: str, pin: str) -> User:
        """The user whose phone is `from_number`, if `pin` is theirs: the phone flow's sign-in, through the same
        gates (the caller's number is its "address"). Raises InvalidCredentials, LockedOut, SignInRateLimited
        or Busy like `sign_in`."""
        number = users.normalize_phone(from_number) if users.looks_like_phone(from_number) else from_number.strip()
        signed = await self.sign_in(number, pin, f"phone:{number}")
        return signed.user

    async def verify_current(self, user: User, pin: str, address: str) -> None:
        """Check the PIN `user` has now (before it is changed), through the same gates as a sign-in.

        Raises InvalidCurrentPin, LockedOut, SignInRateLimited or Busy. Wrong guesses count towards the
        account's lockout, so a stolen session or key cannot be used to search for the PIN.
        """
        identifier = self.identifier(user)

        async def stored_hash() -> str | None:
            return user.pin_hash

        ok, attempt = await self._verify(identifier, address, pin, stored_hash)
        if not ok:
            if attempt.last:
                raise LockedOut(self.lockout.lockout_s)
            raise InvalidCurrentPin()
        await self.lockout.reset(identifier, address)

    async def hash_pin(self, pin: str) -> str:
        """Hash a new PIN in the PIN hasher (Busy when it is full); ValueError for an invalid PIN."""
        pins.validate_pin(pin)
        async with self.hasher.slot() as slot:
            return await slot.run(pins.hash_pin, pin)

    @staticmethod
    def identifier(user: User) -> str:
        """What the lockout counts a user's attempts under: the sign-in e-mail, or the id without one."""
        return user.email or user.id

    async def _verify(
        self, identifier: str, address: str, pin: str, stored_hash: Callable[[], Awaitable[str | None]]
    ) -> tuple[bool, Attempt]:
        try:
            decision = await self.limits.check(identifier, address)
            if not decision.allowed:
                raise SignInRateLimited(decision.retry_after)
            async with self.hasher.slot() as slot:
                attempt = await self.lockout.reserve(identifier, address)
                if attempt.locked:
                    raise LockedOut(attempt.retry_after)
                stored = await stored_hash()
                ok = await slot.run(_check_pin, pin, stored)
        except CountersFull:
            # Without Redis, the memory store is full of live lockouts: refuse rather than forget one.
            log.warning("PIN check refused: the in-memory counters are full of live lockouts")
            raise Busy() from None
        return ok, attempt


@functools.cache
def _dummy_hash() -> str:
    return pins.hash_pin("00000000")


def _check_pin(pin: str, stored: str | None) -> bool:
    """Runs in the PIN hasher's threads: scrypt takes tens of milliseconds and must not block the event loop."""
    if stored is None:
        pins.verify_pin(pin, _dummy_hash())
        return False
    return pins.verify_pin(pin, stored)
