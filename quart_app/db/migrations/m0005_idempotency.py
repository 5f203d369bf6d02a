"""Idempotency keys: a client's retry of a paid request gets the first answer instead of a second charge."""

VERSION = 5
NAME = "idempotency_keys"
TABLES = ("idempotency_keys",)


def statements(dialect: str) -> list[str]:
    real = "DOUBLE PRECISION" if dialect == "postgresql" else "REAL"
    return [
        f"""CREATE TABLE idempotency_keys (
            user_id TEXT NOT NULL,
            idem_key TEXT NOT NULL,
            fingerprint TEXT NOT NULL,
            token TEXT NOT NULL,
            state TEXT NOT NULL,
            status_code INTEGER,
            response_body TEXT,
            response_headers TEXT,
            created_at {real} NOT NULL,
            updated_at {real} NOT NULL,
            PRIMARY KEY (user_id, idem_key)
        )""",
        "CREATE INDEX ix_idempotency_keys_created ON idempotency_keys (created_at)",
    ]
