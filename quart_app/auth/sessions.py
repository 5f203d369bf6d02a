"""Short-lived session tokens issued after a PIN sign-in, signed with SECRET_KEY.

A token carries a fingerprint of the user's PIN hash at issue time (a keyed hash: it reveals nothing
about the PIN). Every PIN change stores a new hash (fresh salt), and clearing the PIN removes it, so
either ends every session issued before: the Authenticator compares the fingerprint with the stored hash.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

PREFIX = "vst_"
DEFAULT_TTL_S = 12 * 3600


@dataclass(frozen=True)
class Session:
    user_id: str
    pin_fingerprint: str


class SessionTokens:
    def __init__(self, secret_key: str, ttl_s: int = DEFAULT_TTL_S) -> None:
        self._serializer = URLSafeTimedSerializer(secret_key, salt="voice-pin-session")
        self._fingerprint_key = hashlib.sha256(b"voice-pin-fingerprint|" + secret_key.encode()).digest()
        self.ttl_s = ttl_s

    def issue(self, user_id: str, pin_hash: str | None = None) -> str:
        """A token for `user_id`, valid while the user's stored PIN hash is still `pin_hash`."""
        return PREFIX + self._serializer.dumps({"u": user_id, "p": self.fingerprint(pin_hash)})

    def fingerprint(self, pin_hash: str | None) -> str:
        return hmac.new(self._fingerprint_key, (pin_hash or "").encode(), hashlib.sha256).hexdigest()[:32]

    def read(self, token: str) -> Session | None:
        """The session of a valid, unexpired token; None for anything else (tokens from before PIN
        fingerprints included)."""
        if not token.startswith(PREFIX) or len(token) > 1024:
            return None
        try:
            data = self._serializer.loads(token[len(PREFIX) :], max_age=self.ttl_s)
        except (BadSignature, SignatureExpired):
            return None
        if not isinstance(data, dict):
            return None
        user_id, fingerprint = data.get("u"), data.get("p")
        if not isinstance(user_id, str) or not isinstance(fingerprint, str):
            return None
        return Session(user_id, fingerprint)

    def current(self, session: Session, pin_hash: str | None) -> bool:
        """True while the user's PIN is the one the session was issued under."""
        return hmac.compare_digest(session.pin_fingerprint, self.fingerprint(pin_hash))
