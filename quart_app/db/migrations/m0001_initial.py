"""Users, API keys, usage, transcriptions and translations."""

VERSION = 1
NAME = "initial"
TABLES = ("users", "api_keys", "usage_logs", "transcriptions", "translations")


def statements(dialect: str) -> list[str]:
    real = "DOUBLE PRECISION" if dialect == "postgresql" else "REAL"
    return [
        f"""CREATE TABLE users (
            id TEXT PRIMARY KEY,
            email TEXT UNIQUE,
            auth0_sub TEXT UNIQUE,
            name TEXT,
            role TEXT NOT NULL DEFAULT 'user',
            pin_hash TEXT,
            created_at {real} NOT NULL,
            updated_at {real} NOT NULL
        )""",
        f"""CREATE TABLE api_keys (
            id TEXT PRIMARY KEY,
            user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            prefix TEXT NOT NULL,
            key_hash TEXT NOT NULL UNIQUE,
            created_at {real} NOT NULL,
            last_used_at {real},
            revoked_at {real}
        )""",
        "CREATE INDEX ix_api_keys_user ON api_keys (user_id)",
        f"""CREATE TABLE usage_logs (
            id TEXT PRIMARY KEY,
            user_id TEXT NOT NULL,
            service TEXT NOT NULL,
            endpoint TEXT NOT NULL,
            request_id TEXT,
            duration_ms INTEGER NOT NULL,
            audio_seconds {real},
            characters INTEGER,
            cost_usd {real} NOT NULL,
            created_at {real} NOT NULL
        )""",
        "CREATE INDEX ix_usage_user_time ON usage_logs (user_id, created_at)",
        f"""CREATE TABLE transcriptions (
            id TEXT PRIMARY KEY,
            user_id TEXT NOT NULL,
            provider TEXT NOT NULL,
            model TEXT,
            language TEXT,
            transcript TEXT NOT NULL,
            duration_s {real},
            segments TEXT,
            source TEXT NOT NULL,
            filename TEXT,
            created_at {real} NOT NULL
        )""",
        "CREATE INDEX ix_transcriptions_user_time ON transcriptions (user_id, created_at)",
        f"""CREATE TABLE translations (
            id TEXT PRIMARY KEY,
            user_id TEXT NOT NULL,
            provider TEXT NOT NULL,
            model TEXT,
            source_language TEXT,
            target_language TEXT NOT NULL,
            text TEXT NOT NULL,
            translation TEXT NOT NULL,
            created_at {real} NOT NULL
        )""",
        "CREATE INDEX ix_translations_user_time ON translations (user_id, created_at)",
    ]
