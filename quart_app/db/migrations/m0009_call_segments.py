"""Calls that move between instances (#22): one row per Media Stream a call had (`call_segments`), and the
instances that relay calls with their heartbeat (`call_instances`), so a live call whose instance died can be
found and recovered by another.

Only additions: two new tables.
"""

VERSION = 9
NAME = "call_segments"
TABLES = ("call_segments", "call_instances")


def statements(dialect: str) -> list[str]:
    real = "DOUBLE PRECISION" if dialect == "postgresql" else "REAL"
    return [
        f"""CREATE TABLE call_segments (
            call_sid TEXT NOT NULL,
            seq INTEGER NOT NULL,
            instance_id TEXT NOT NULL,
            stream_sid TEXT NOT NULL,
            stream_url TEXT,
            started_at {real} NOT NULL,
            ended_at {real},
            end_reason TEXT,
            recovered_by TEXT,
            PRIMARY KEY (call_sid, seq)
        )""",
        "CREATE UNIQUE INDEX ix_call_segments_stream ON call_segments (stream_sid)",
        "CREATE INDEX ix_call_segments_open ON call_segments (instance_id) WHERE ended_at IS NULL",
        f"""CREATE TABLE call_instances (
            instance_id TEXT PRIMARY KEY,
            state TEXT NOT NULL,
            heartbeat_at {real} NOT NULL,
            expires_at {real} NOT NULL
        )""",
    ]
