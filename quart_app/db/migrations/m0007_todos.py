"""Voice to-do assistant: each user's to-dos, the assistant's bounded conversation memory per user, and an
optional phone number (E.164, unique) on `users` so a caller is found by the number they call from.

Only additions: two new tables and a nullable column, so existing rows stay as they are.
"""

VERSION = 7
NAME = "todos"
TABLES = ("todos", "assistant_messages")


def statements(dialect: str) -> list[str]:
    real = "DOUBLE PRECISION" if dialect == "postgresql" else "REAL"
    return [
        # `done` is 0/1 on both dialects (like tenants.knowledge_enabled); `due_date` is what was said
        # ("tomorrow", "2025-03-01"), never resolved against a clock; `priority` is high/medium/low or NULL.
        f"""CREATE TABLE todos (
            id TEXT PRIMARY KEY,
            user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            title TEXT NOT NULL,
            done INTEGER NOT NULL DEFAULT 0,
            due_date TEXT,
            priority TEXT,
            created_at {real} NOT NULL,
            updated_at {real} NOT NULL,
            completed_at {real}
        )""",
        "CREATE INDEX ix_todos_user ON todos (user_id, created_at)",
        # One chat message per row, in order per user (`seq`); `content` is the whole message as JSON (role,
        # content, tool_calls, tool_call_id) so a conversation replays exactly as it was sent.
        f"""CREATE TABLE assistant_messages (
            user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            role TEXT NOT NULL,
            content TEXT NOT NULL,
            created_at {real} NOT NULL,
            PRIMARY KEY (user_id, seq)
        )""",
        "ALTER TABLE users ADD COLUMN phone TEXT",
        # NULLs don't collide on either dialect: many users without a phone, at most one per number.
        "CREATE UNIQUE INDEX ux_users_phone ON users (phone)",
    ]
