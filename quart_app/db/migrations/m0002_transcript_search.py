"""Full-text search over transcripts: FTS5 on SQLite, a tsvector column with a GIN index on PostgreSQL.

Rows that existed before this migration are indexed by the migration itself.
"""

VERSION = 2
NAME = "transcript_search"
TABLES = ("transcriptions_fts",)


def statements(dialect: str) -> list[str]:
    if dialect == "postgresql":
        return [
            "ALTER TABLE transcriptions ADD COLUMN search tsvector "
            "GENERATED ALWAYS AS (to_tsvector('simple', coalesce(transcript, ''))) STORED",
            "CREATE INDEX ix_transcriptions_search ON transcriptions USING GIN (search)",
        ]
    # External-content FTS5 table kept in step by triggers; rowid ties it to the transcriptions row.
    return [
        "CREATE VIRTUAL TABLE transcriptions_fts USING fts5("
        "transcript, content='transcriptions', content_rowid='rowid', tokenize='unicode61')",
        "CREATE TRIGGER transcriptions_ai AFTER INSERT ON transcriptions BEGIN "
        "INSERT INTO transcriptions_fts(rowid, transcript) VALUES (new.rowid, new.transcript); END",
        "CREATE TRIGGER transcriptions_ad AFTER DELETE ON transcriptions BEGIN "
        "INSERT INTO transcriptions_fts(transcriptions_fts, rowid, transcript) "
        "VALUES ('delete', old.rowid, old.transcript); END",
        "CREATE TRIGGER transcriptions_au AFTER UPDATE ON transcriptions BEGIN "
        "INSERT INTO transcriptions_fts(transcriptions_fts, rowid, transcript) "
        "VALUES ('delete', old.rowid, old.transcript); "
        "INSERT INTO transcriptions_fts(rowid, transcript) VALUES (new.rowid, new.transcript); END",
        "INSERT INTO transcriptions_fts(transcriptions_fts) VALUES ('rebuild')",
    ]
