"""Jobs kept in the database, claimable by any instance: each job's audio in provider-sized chunks with their
results, and a lease (owner + expiry) on the job row that a worker renews while it runs the job."""

VERSION = 8
NAME = "job_chunks"
TABLES = ("job_chunks",)


def statements(dialect: str) -> list[str]:
    real = "DOUBLE PRECISION" if dialect == "postgresql" else "REAL"
    blob = "BYTEA" if dialect == "postgresql" else "BLOB"
    return [
        f"""CREATE TABLE job_chunks (
            job_id TEXT NOT NULL,
            chunk_index INTEGER NOT NULL,
            start_s {real} NOT NULL,
            duration_s {real} NOT NULL,
            size INTEGER NOT NULL,
            audio {blob} NOT NULL,
            status TEXT NOT NULL DEFAULT 'pending',
            result TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            updated_at {real} NOT NULL,
            PRIMARY KEY (job_id, chunk_index)
        )""",
        "ALTER TABLE transcription_jobs ADD COLUMN lease_owner TEXT",
        f"ALTER TABLE transcription_jobs ADD COLUMN lease_expires_at {real}",
        f"ALTER TABLE transcription_jobs ADD COLUMN audio_s {real}",
        "ALTER TABLE transcription_jobs ADD COLUMN stored_bytes BIGINT NOT NULL DEFAULT 0",
        "CREATE INDEX ix_transcription_jobs_lease ON transcription_jobs (status, lease_expires_at)",
    ]
