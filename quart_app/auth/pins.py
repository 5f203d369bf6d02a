"""PINs: 4 to 8 digits, stored only as a salted scrypt hash.

A PIN has at most 10^8 values, so the hash must be slow (scrypt, ~50 ms) and attempts must be limited
elsewhere (lockout). Stored form, self-describing so parameters can be raised later without a migration:

    scrypt$<n>$<r>$<p>$<salt base64>$<hash base64>
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re

SCHEME = "scrypt"
N = 2**14
R = 8
P = 1
SALT_BYTES = 16
HASH_BYTES = 32
MIN_DIGITS = 4
MAX_DIGITS = 8

# ASCII digits only: `\d` and str.isdigit() would also accept Arabic-Indic and other Unicode digits.
_PIN_RE = re.compile(rf"[0-9]{{{MIN_DIGITS},{MAX_DIGITS}}}")
# Ceiling on the memory a stored hash may ask scrypt for (128 * n * r bytes), so a tampered row cannot
# make verification allocate gigabytes.
_MAX_SCRYPT_MEMORY = 64 * 1024 * 1024


def validate_pin(pin: str) -> None:
    """Raise ValueError unless `pin` is 4 to 8 ASCII digits."""
    if not isinstance(pin, str) or _PIN_RE.fullmatch(pin) is None:
        raise ValueError(f"PIN must be {MIN_DIGITS} to {MAX_DIGITS} digits (0-9)")


def hash_pin(pin: str) -> str:
    """Hash a valid PIN with a fresh random salt; raises ValueError for an invalid PIN."""
    validate_pin(pin)
    salt = os.urandom(SALT_BYTES)
    digest = _scrypt(pin, salt, N, R, P, HASH_BYTES)
    return "$".join((SCHEME, str(N), str(R), str(P), _b64(salt), _b64(digest)))


def verify_pin(pin: str, stored: str) -> bool:
    """True when `pin` matches `stored`; False for a wrong PIN or a malformed stored value, never raises."""
    if not isinstance(pin, str) or _PIN_RE.fullmatch(pin) is None or not isinstance(stored, str):
        return False
    parsed = _parse(stored)
    if parsed is None:
        return False
    n, r, p, salt, expected = parsed
    try:
        actual = _scrypt(pin, salt, n, r, p, len(expected))
    except (ValueError, MemoryError):
        return False
    return hmac.compare_digest(actual, expected)


def _parse(stored: str) -> tuple[int, int, int, bytes, bytes] | None:
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != SCHEME:
        return None
    try:
        n, r, p = (int(x) for x in parts[1:4])
        salt = base64.b64decode(parts[4], validate=True)
        expected = base64.b64decode(parts[5], validate=True)
    except (ValueError, binascii.Error):
        return None
    power_of_two = n > 1 and n & (n - 1) == 0
    if not power_of_two or not 1 <= r <= 32 or not 1 <= p <= 16 or 128 * n * r > _MAX_SCRYPT_MEMORY:
        return None
    if len(salt) < 8 or not 16 <= len(expected) <= 64:
        return None
    return n, r, p, salt, expected


def _scrypt(pin: str, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    # scrypt needs about 128*r*(n+p) bytes; say so, or a stored hash with a raised n would trip OpenSSL's
    # 32 MiB default and fail to verify.
    maxmem = 128 * r * (n + p + 2) + 1024 * 1024
    return hashlib.scrypt(pin.encode("ascii"), salt=salt, n=n, r=r, p=p, maxmem=maxmem, dklen=length)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")
