"""Realtime phone agent: tenants and their numbers, knowledge documents (full-text searchable passages),
call transcripts, and what the relay knows about each call on the `calls` row.

Only additions: new tables, and nullable or defaulted columns on `calls`, so it applies on top of whatever
earlier migrations hold and leaves their rows as they are.
"""

VERSION = 6
NAME = "realtime_calls"
TABLES = (
    "tenants",
    "tenant_numbers",
    "knowledge_documents",
    "knowledge_passages",
    "knowledge_passages_fts",
    "call_transcripts",
)


# English stemming on both sides (Postgres `english`, FTS5 `porter`): a caller asks about "opening hours", the
# document says "we open at 8"; the title weighs more than the text.
_GENERATED_SEARCH = (
    "GENERATED ALWAYS AS (setweight(to_tsvector('english', coalesce(title, '')), 'A') || "
    "setweight(to_tsvector('english', coalesce(text, '')), 'B')) STORED"
)


def statements(dialect: str) -> list[str]:
    real = "DOUBLE PRECISION" if dialect == "postgresql" else "REAL"
    calls_columns = [
        "tenant_id TEXT",
        "stream_sid TEXT",
        f"started_at {real}",
        f"ended_at {real}",
        "end_reason TEXT",
        "relay_status TEXT",
        "provider_sessions INTEGER NOT NULL DEFAULT 0",
        "responses INTEGER NOT NULL DEFAULT 0",
        "input_tokens INTEGER NOT NULL DEFAULT 0",
        "cached_tokens INTEGER NOT NULL DEFAULT 0",
        "output_tokens INTEGER NOT NULL DEFAULT 0",
        "audio_input_tokens INTEGER NOT NULL DEFAULT 0",
        "audio_output_tokens INTEGER NOT NULL DEFAULT 0",
    ]
    result = [f"ALTER TABLE calls ADD COLUMN {column}" for column in calls_columns]
    result += [
        "CREATE INDEX ix_calls_tenant ON calls (tenant_id, created_at)",
        f"""CREATE TABLE tenants (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            instructions TEXT NOT NULL,
            greeting TEXT,
            voice TEXT,
            model TEXT,
            turn_detection TEXT NOT NULL,
            knowledge_enabled INTEGER NOT NULL DEFAULT 0,
            max_call_s INTEGER,
            audio_format TEXT,
            created_at {real} NOT NULL,
            updated_at {real} NOT NULL
        )""",
        # One row per number: a number reaches exactly one tenant (E.164, e.g. +15550001111).
        """CREATE TABLE tenant_numbers (
            phone_number TEXT PRIMARY KEY,
            tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
            position INTEGER NOT NULL DEFAULT 0
        )""",
        "CREATE INDEX ix_tenant_numbers_tenant ON tenant_numbers (tenant_id)",
        f"""CREATE TABLE knowledge_documents (
            id TEXT PRIMARY KEY,
            tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
            title TEXT NOT NULL,
            filename TEXT,
            content_type TEXT NOT NULL,
            content TEXT NOT NULL,
            size_chars INTEGER NOT NULL,
            passages INTEGER NOT NULL,
            created_at {real} NOT NULL
        )""",
        "CREATE INDEX ix_knowledge_documents_tenant ON knowledge_documents (tenant_id, created_at)",
    ]
    passages = """CREATE TABLE knowledge_passages (
            id TEXT PRIMARY KEY,
            document_id TEXT NOT NULL REFERENCES knowledge_documents(id) ON DELETE CASCADE,
            tenant_id TEXT NOT NULL,
            position INTEGER NOT NULL,
            title TEXT NOT NULL,
            text TEXT NOT NULL{search}
        )"""
    if dialect == "postgresql":
        result += [
            passages.format(search=",\n            search tsvector " + _GENERATED_SEARCH),
            "CREATE INDEX ix_knowledge_passages_search ON knowledge_passages USING GIN (search)",
        ]
    else:
        result += [
            passages.format(search=""),
            # External-content FTS5 table kept in step by triggers, as for transcripts (m0002).
            "CREATE VIRTUAL TABLE knowledge_passages_fts USING fts5(title, text, "
            "content='knowledge_passages', content_rowid='rowid', tokenize='porter unicode61')",
            "CREATE TRIGGER knowledge_passages_ai AFTER INSERT ON knowledge_passages BEGIN "
            "INSERT INTO knowledge_passages_fts(rowid, title, text) VALUES (new.rowid, new.title, new.text); END",
            "CREATE TRIGGER knowledge_passages_ad AFTER DELETE ON knowledge_passages BEGIN "
            "INSERT INTO knowledge_passages_fts(knowledge_passages_fts, rowid, title, text) "
            "VALUES ('delete', old.rowid, old.title, old.text); END",
            "CREATE TRIGGER knowledge_passages_au AFTER UPDATE ON knowledge_passages BEGIN "
            "INSERT INTO knowledge_passages_fts(knowledge_passages_fts, rowid, title, text) "
            "VALUES ('delete', old.rowid, old.title, old.text); "
            "INSERT INTO knowledge_passages_fts(rowid, title, text) VALUES (new.rowid, new.title, new.text); END",
        ]
    result += [
        "CREATE INDEX ix_knowledge_passages_tenant ON knowledge_passages (tenant_id)",
        "CREATE INDEX ix_knowledge_passages_document ON knowledge_passages (document_id, position)",
        f"""CREATE TABLE call_transcripts (
            id TEXT PRIMARY KEY,
            call_sid TEXT NOT NULL,
            seq INTEGER NOT NULL,
            role TEXT NOT NULL,
            text TEXT NOT NULL,
            call_ms INTEGER NOT NULL,
            at {real} NOT NULL,
            item_id TEXT,
            interrupted INTEGER NOT NULL DEFAULT 0,
            latency_ms INTEGER,
            UNIQUE (call_sid, seq)
        )""",
        "CREATE INDEX ix_call_transcripts_call ON call_transcripts (call_sid, call_ms, seq)",
    ]
    return result
