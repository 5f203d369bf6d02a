"""Short-lived session tokens issued after a PIN sign-in, signed with SECRET_KEY."""

from __future__ import annotations

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

PREFIX = "vst_"
DEFAULT_TTL_S = 12 * 3600


class SessionTokens:
    def __init__(self, secret_key: str, ttl_s: int = DEFAULT_TTL_S) -> None:
        self._serializer = URLSafeTimedSerializer(secret_key, salt="voice-pin-session")
        self.ttl_s = ttl_s

    def issue(self, user_id: str) -> str:
        return PREFIX + self._serializer.dumps({"u": user_id})

    def user_id(self, token: str) -> str | None:
        """The user a valid, unexpired token was issued to; None for anything else."""
        if not token.startswith(PREFIX) or len(token) > 1024:
            return None
        try:
            data = self._serializer.loads(token[len(PREFIX) :], max_age=self.ttl_s)
        except (BadSignature, SignatureExpired):
            return None
        user_id = data.get("u") if isinstance(data, dict) else None
        return user_id if isinstance(user_id, str) else None
