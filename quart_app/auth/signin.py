"""PIN sign-in as a service: REST (`POST /api/auth/pin`), and next the `/voice` namespace and the phone flow.

An attempt is counted before the PIN is verified: a burst of concurrent guesses is limited by the
lockout exactly like a sequence of them, and at most PIN_MAX_ATTEMPTS scrypt verifications run per
(identifier, address) in a lockout window. Success clears the count.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from ..db import users
from ..db.handle import DatabaseHandle
from ..db.users import User
from ..errors import APIError
from . import pins
from .lockout import PinLockout
from .sessions import SessionTokens


class InvalidCredentials(APIError):
    def __init__(self) -> None:
        super().__init__(401, "invalid_credentials", "E-mail or PIN is incorrect.")


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


@dataclass(frozen=True)
class SignedIn:
    user: User
    token: str
    expires_in: int


class PinSignIn:
    def __init__(self, database: DatabaseHandle, lockout: PinLockout, sessions: SessionTokens) -> None:
        self.database = database
        self.lockout = lockout
        self.sessions = sessions

    async def sign_in(self, identifier: str, pin: str, address: str) -> SignedIn:
        """A session for `identifier` (an e-mail) and `pin`, or InvalidCredentials / LockedOut.

        Failures never say whether the user exists: unknown users are verified against a dummy hash.
        """
        db = self.database.get()
        attempt = await self.lockout.reserve(identifier, address)
        if attempt.locked:
            raise LockedOut(attempt.retry_after)
        user = await users.get_user_by_email(db, identifier.strip())
        stored = user.pin_hash if user is not None else None
        ok = await asyncio.to_thread(_check_pin, pin, stored)
        if not ok or user is None or stored is None:
            if attempt.last:
                raise LockedOut(self.lockout.lockout_s)
            raise InvalidCredentials()
        await self.lockout.reset(identifier, address)
        return SignedIn(user=user, token=self.sessions.issue(user.id), expires_in=self.sessions.ttl_s)


_DUMMY: list[str] = []


def _check_pin(pin: str, stored: str | None) -> bool:
    """Runs in a worker thread: scrypt takes tens of milliseconds and must not block the event loop."""
    if stored is None:
        if not _DUMMY:
            _DUMMY.append(pins.hash_pin("00000000"))
        pins.verify_pin(pin, _DUMMY[0])
        return False
    return pins.verify_pin(pin, stored)
