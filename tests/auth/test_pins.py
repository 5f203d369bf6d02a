"""PIN hashing: scrypt with a random salt, self-describing format, constant-time verification."""

from __future__ import annotations

import base64

import pytest

from quart_app.auth.pins import hash_pin, validate_pin, verify_pin


@pytest.mark.parametrize("pin", ["0000", "1234", "0079", "12345678"])
def test_valid_pins_pass(pin: str) -> None:
    validate_pin(pin)


@pytest.mark.parametrize(
    "pin",
    ["", "123", "123456789", "12a4", " 1234", "1234 ", "1234\n", "12.4", "-123"]
    # Unicode digits (Arabic-Indic, fullwidth) pass str.isdigit() but are not PIN digits.
    + ["\u0661\u0662\u0663\u0664", "\uff11\uff12\uff13\uff14"],
)
def test_invalid_pins_raise_with_a_clear_message(pin: str) -> None:
    with pytest.raises(ValueError, match="4 to 8 digits"):
        validate_pin(pin)


def test_non_string_pin_is_invalid() -> None:
    with pytest.raises(ValueError):
        validate_pin(1234)  # type: ignore[arg-type]


def test_hash_format_and_round_trip() -> None:
    stored = hash_pin("4821")
    scheme, n, r, p, salt, digest = stored.split("$")
    assert (scheme, n, r, p) == ("scrypt", "16384", "8", "1")
    assert len(base64.b64decode(salt)) == 16
    assert len(base64.b64decode(digest)) >= 32
    assert "4821" not in stored
    assert verify_pin("4821", stored)
    assert not verify_pin("4822", stored)
    assert not verify_pin("48210", stored)


def test_salt_is_random() -> None:
    first, second = hash_pin("13579"), hash_pin("13579")
    assert first != second
    assert first.split("$")[4] != second.split("$")[4]
    assert verify_pin("13579", first) and verify_pin("13579", second)


def test_hash_pin_rejects_invalid_pin() -> None:
    with pytest.raises(ValueError):
        hash_pin("12")


def test_verify_honours_parameters_stored_in_the_hash() -> None:
    # A hash made with other (cheaper) parameters still verifies: the stored value says how it was made.
    import hashlib

    salt = b"0123456789abcdef"
    digest = hashlib.scrypt(b"2468", salt=salt, n=2**10, r=8, p=1, dklen=32)
    stored = f"scrypt$1024$8$1${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"
    assert verify_pin("2468", stored)
    assert not verify_pin("2469", stored)


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "not a hash",
        "bcrypt$16384$8$1$AAAA$AAAA",
        "scrypt$16384$8$1$AAAA",
        "scrypt$abc$8$1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA==",
        "scrypt$1000$8$1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA==",  # n not a power of two
        "scrypt$1073741824$8$1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA==",  # would need 1 TiB
        "scrypt$16384$8$1$!!notbase64!!$aGFzaGhhc2hoYXNoaGFzaA==",
        "scrypt$16384$8$1$c2FsdHNhbHRzYWx0$",
    ],
)
def test_malformed_stored_values_verify_false(stored: str) -> None:
    assert verify_pin("1234", stored) is False


def test_invalid_pin_or_none_never_verifies() -> None:
    stored = hash_pin("1234")
    assert verify_pin("", stored) is False
    assert verify_pin("abcd", stored) is False
    assert verify_pin("1234", None) is False  # type: ignore[arg-type]
