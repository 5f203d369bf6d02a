"""Phone calls as Twilio reports them (status callbacks), one row per CallSid."""

VERSION = 3
NAME = "calls"
TABLES = ("calls",)


def statements(dialect: str) -> list[str]:
    real = "DOUBLE PRECISION" if dialect == "postgresql" else "REAL"
    return [
        f"""CREATE TABLE calls (
            call_sid TEXT PRIMARY KEY,
            account_sid TEXT,
            from_number TEXT,
            to_number TEXT,
            direction TEXT,
            status TEXT NOT NULL,
            sequence INTEGER NOT NULL DEFAULT -1,
            duration_s INTEGER,
            created_at {real} NOT NULL,
            updated_at {real} NOT NULL
        )""",
        "CREATE INDEX ix_calls_updated ON calls (updated_at)",
    ]
