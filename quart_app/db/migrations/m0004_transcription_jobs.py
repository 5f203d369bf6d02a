"""Background transcription jobs for long media: status, progress, owner and where the upload is spooled."""

VERSION = 4
NAME = "transcription_jobs"
TABLES = ("transcription_jobs",)


def statements(dialect: str) -> list[str]:
    real = "DOUBLE PRECISION" if dialect == "postgresql" else "REAL"
    return [
        f"""CREATE TABLE transcription_jobs (
            id TEXT PRIMARY KEY,
            user_id TEXT NOT NULL,
            provider TEXT NOT NULL,
            language TEXT,
            filename TEXT,
            media_path TEXT NOT NULL,
            node TEXT NOT NULL,
            status TEXT NOT NULL,
            percent INTEGER NOT NULL DEFAULT 0,
            error TEXT,
            transcription_id TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            created_at {real} NOT NULL,
            updated_at {real} NOT NULL,
            heartbeat_at {real} NOT NULL
        )""",
        "CREATE INDEX ix_transcription_jobs_user ON transcription_jobs (user_id, created_at)",
        "CREATE INDEX ix_transcription_jobs_status ON transcription_jobs (status, heartbeat_at)",
    ]
