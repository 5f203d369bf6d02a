"""SQLAlchemy Core tables. Migrations create them; this module only describes them for queries.

Timestamps are UNIX seconds (floats) so that both dialects compare and aggregate them the same way.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

schema_migrations = sa.Table(
    "schema_migrations",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("applied_at", sa.Float, nullable=False),
)

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("email", sa.Text, unique=True),
    sa.Column("auth0_sub", sa.Text, unique=True),
    sa.Column("name", sa.Text),
    sa.Column("role", sa.Text, nullable=False),
    sa.Column("pin_hash", sa.Text),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("phone", sa.Text, unique=True),  # m0007: E.164, optional
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("user_id", sa.Text, nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("prefix", sa.Text, nullable=False),
    sa.Column("key_hash", sa.Text, nullable=False, unique=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("last_used_at", sa.Float),
    sa.Column("revoked_at", sa.Float),
)

usage_logs = sa.Table(
    "usage_logs",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("user_id", sa.Text, nullable=False),
    sa.Column("service", sa.Text, nullable=False),
    sa.Column("endpoint", sa.Text, nullable=False),
    sa.Column("request_id", sa.Text),
    sa.Column("duration_ms", sa.Integer, nullable=False),
    sa.Column("audio_seconds", sa.Float),
    sa.Column("characters", sa.Integer),
    sa.Column("cost_usd", sa.Float, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

transcriptions = sa.Table(
    "transcriptions",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("user_id", sa.Text, nullable=False),
    sa.Column("provider", sa.Text, nullable=False),
    sa.Column("model", sa.Text),
    sa.Column("language", sa.Text),
    sa.Column("transcript", sa.Text, nullable=False),
    sa.Column("duration_s", sa.Float),
    sa.Column("segments", sa.Text),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("filename", sa.Text),
    sa.Column("created_at", sa.Float, nullable=False),
)

translations = sa.Table(
    "translations",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("user_id", sa.Text, nullable=False),
    sa.Column("provider", sa.Text, nullable=False),
    sa.Column("model", sa.Text),
    sa.Column("source_language", sa.Text),
    sa.Column("target_language", sa.Text, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("translation", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

calls = sa.Table(
    "calls",
    metadata,
    sa.Column("call_sid", sa.Text, primary_key=True),
    sa.Column("account_sid", sa.Text),
    sa.Column("from_number", sa.Text),
    sa.Column("to_number", sa.Text),
    sa.Column("direction", sa.Text),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("sequence", sa.Integer, nullable=False),
    sa.Column("duration_s", sa.Integer),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    # m0006: what the realtime relay knows about the call
    sa.Column("tenant_id", sa.Text),
    sa.Column("stream_sid", sa.Text),
    sa.Column("started_at", sa.Float),
    sa.Column("ended_at", sa.Float),
    sa.Column("end_reason", sa.Text),
    sa.Column("relay_status", sa.Text),
    sa.Column("provider_sessions", sa.Integer, nullable=False, server_default="0"),
    sa.Column("responses", sa.Integer, nullable=False, server_default="0"),
    sa.Column("input_tokens", sa.Integer, nullable=False, server_default="0"),
    sa.Column("cached_tokens", sa.Integer, nullable=False, server_default="0"),
    sa.Column("output_tokens", sa.Integer, nullable=False, server_default="0"),
    sa.Column("audio_input_tokens", sa.Integer, nullable=False, server_default="0"),
    sa.Column("audio_output_tokens", sa.Integer, nullable=False, server_default="0"),
)

transcription_jobs = sa.Table(
    "transcription_jobs",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("user_id", sa.Text, nullable=False),
    sa.Column("provider", sa.Text, nullable=False),
    sa.Column("language", sa.Text),
    sa.Column("filename", sa.Text),
    sa.Column("media_path", sa.Text, nullable=False),
    sa.Column("node", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("percent", sa.Integer, nullable=False),
    sa.Column("error", sa.Text),
    sa.Column("transcription_id", sa.Text),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("heartbeat_at", sa.Float, nullable=False),
    # m0008: the lease of the instance running the job; the audio's length and stored bytes (job_chunks).
    sa.Column("lease_owner", sa.Text),
    sa.Column("lease_expires_at", sa.Float),
    sa.Column("audio_s", sa.Float),
    sa.Column("stored_bytes", sa.BigInteger, nullable=False, server_default="0"),
)

# m0008: a job's audio in provider-sized chunks (Opus in Ogg), each with its result once transcribed.
job_chunks = sa.Table(
    "job_chunks",
    metadata,
    sa.Column("job_id", sa.Text, primary_key=True),
    sa.Column("chunk_index", sa.Integer, primary_key=True),
    sa.Column("start_s", sa.Float, nullable=False),
    sa.Column("duration_s", sa.Float, nullable=False),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("audio", sa.LargeBinary, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("result", sa.Text),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("user_id", sa.Text, primary_key=True),
    sa.Column("idem_key", sa.Text, primary_key=True),
    sa.Column("fingerprint", sa.Text, nullable=False),
    sa.Column("token", sa.Text, nullable=False),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("status_code", sa.Integer),
    sa.Column("response_body", sa.Text),
    sa.Column("response_headers", sa.Text),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

# ----- m0006: the realtime phone agent ------------------------------------------------------------------

tenants = sa.Table(
    "tenants",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("instructions", sa.Text, nullable=False),
    sa.Column("greeting", sa.Text),
    sa.Column("voice", sa.Text),
    sa.Column("model", sa.Text),
    sa.Column("turn_detection", sa.Text, nullable=False),  # JSON
    sa.Column("knowledge_enabled", sa.Integer, nullable=False),
    sa.Column("max_call_s", sa.Integer),
    sa.Column("audio_format", sa.Text),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

tenant_numbers = sa.Table(
    "tenant_numbers",
    metadata,
    sa.Column("phone_number", sa.Text, primary_key=True),
    sa.Column("tenant_id", sa.Text, nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
)

knowledge_documents = sa.Table(
    "knowledge_documents",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("tenant_id", sa.Text, nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("filename", sa.Text),
    sa.Column("content_type", sa.Text, nullable=False),
    sa.Column("content", sa.Text, nullable=False),
    sa.Column("size_chars", sa.Integer, nullable=False),
    sa.Column("passages", sa.Integer, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

knowledge_passages = sa.Table(
    "knowledge_passages",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("document_id", sa.Text, nullable=False),
    sa.Column("tenant_id", sa.Text, nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
)

call_transcripts = sa.Table(
    "call_transcripts",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("call_sid", sa.Text, nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("role", sa.Text, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("call_ms", sa.Integer, nullable=False),
    sa.Column("at", sa.Float, nullable=False),
    sa.Column("item_id", sa.Text),
    sa.Column("interrupted", sa.Integer, nullable=False),
    sa.Column("latency_ms", sa.Integer),
)

# ----- m0007: the voice to-do assistant ----------------------------------------------------------------

todos = sa.Table(
    "todos",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("user_id", sa.Text, nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("done", sa.Integer, nullable=False),
    sa.Column("due_date", sa.Text),
    sa.Column("priority", sa.Text),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("completed_at", sa.Float),
)

assistant_messages = sa.Table(
    "assistant_messages",
    metadata,
    sa.Column("user_id", sa.Text, primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True),
    sa.Column("role", sa.Text, nullable=False),
    sa.Column("content", sa.Text, nullable=False),  # the whole chat message as JSON
    sa.Column("created_at", sa.Float, nullable=False),
)
