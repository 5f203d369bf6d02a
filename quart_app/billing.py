"""Billing: store a provider's result and meter it once, in one transaction.

Every paid call ends here: the REST routes, background jobs and (next) live streams hand over the
result and its usage, and either both rows commit or neither does, so nothing is billed for a result
the caller never got and no stored result goes unbilled.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from databases import Database

from .db import transcriptions, translations, usage
from .db.database import is_transient, write_transaction
from .db.handle import DatabaseHandle
from .providers.results import TranscriptResult, TranslationResult

T = TypeVar("T")

log = logging.getLogger(__name__)

# A provider's result is already paid for when it reaches here: transient storage errors are retried
# for about half a minute (on top of SQLite's own busy wait) before the request fails.
RETRY_DELAYS_S = (0.2, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0)

TRANSCRIBE_PRICE = {"deepgram": "deepgram_per_minute", "openai": "openai_transcribe_per_minute"}
TRANSLATE_PRICE = {"openai": "openai_translate_per_1k_chars", "deepseek": "deepseek_translate_per_1k_chars"}


def transcription_cost(prices: Mapping[str, float], provider: str, audio_seconds: float | None) -> float:
    return (audio_seconds or 0.0) / 60.0 * prices[TRANSCRIBE_PRICE[provider]]


def translation_cost(prices: Mapping[str, float], provider: str, characters: int) -> float:
    return characters / 1000.0 * prices[TRANSLATE_PRICE[provider]]


@dataclass(frozen=True)
class Charge:
    """What one successful call is billed as (one usage_logs row)."""

    service: str
    endpoint: str
    request_id: str | None
    duration_ms: int
    cost_usd: float
    audio_seconds: float | None = None
    characters: int | None = None


class Billing:
    def __init__(self, database: DatabaseHandle, prices: Mapping[str, float]) -> None:
        self.database = database
        self.prices = prices

    def transcription_charge(
        self, provider: str, *, endpoint: str, request_id: str | None, duration_ms: int, audio_seconds: float | None
    ) -> Charge:
        return Charge(
            service=f"transcription.{provider}",
            endpoint=endpoint,
            request_id=request_id,
            duration_ms=duration_ms,
            audio_seconds=audio_seconds,
            cost_usd=transcription_cost(self.prices, provider, audio_seconds),
        )

    def translation_charge(
        self, provider: str, *, endpoint: str, request_id: str | None, duration_ms: int, characters: int
    ) -> Charge:
        return Charge(
            service=f"translation.{provider}",
            endpoint=endpoint,
            request_id=request_id,
            duration_ms=duration_ms,
            characters=characters,
            cost_usd=translation_cost(self.prices, provider, characters),
        )

    async def commit(self, user_id: str, charge: Charge, write: Callable[[Database], Awaitable[T]]) -> T:
        """Run `write` and record `charge` in one write transaction; returns what `write` returned.

        The transaction is retried whole on transient storage errors (a locked SQLite file, a dropped
        Postgres connection), so a paid result is not thrown away by a busy minute.
        """
        for attempt, delay in enumerate((*RETRY_DELAYS_S, None), start=1):
            db = self.database.get()
            try:
                async with write_transaction(db):
                    result = await write(db)
                    await usage.record(
                        db,
                        user_id=user_id,
                        service=charge.service,
                        endpoint=charge.endpoint,
                        request_id=charge.request_id,
                        duration_ms=charge.duration_ms,
                        audio_seconds=charge.audio_seconds,
                        characters=charge.characters,
                        cost_usd=charge.cost_usd,
                    )
                return result
            except Exception as exc:
                if delay is None or not is_transient(exc):
                    raise
                log.warning(
                    "storing %s failed (attempt %d: %s); retrying in %.1fs",
                    charge.service,
                    attempt,
                    type(exc).__name__,
                    delay,
                )
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def save_transcription(
        self,
        user_id: str,
        provider: str,
        result: TranscriptResult,
        charge: Charge,
        *,
        source: str,
        filename: str | None,
        then: Callable[[Database, transcriptions.Transcription], Awaitable[None]] | None = None,
    ) -> transcriptions.Transcription:
        """Store the transcript and its charge (and `then`, e.g. finishing a job) in one transaction."""

        async def write(db: Database) -> transcriptions.Transcription:
            record = await transcriptions.create(
                db,
                user_id=user_id,
                provider=provider,
                transcript=result.text,
                model=result.model,
                language=result.language,
                duration_s=result.duration_s,
                segments=result.segments,
                source=source,
                filename=filename,
            )
            if then is not None:
                await then(db, record)
            return record

        return await self.commit(user_id, charge, write)

    async def save_translation(
        self,
        user_id: str,
        provider: str,
        result: TranslationResult,
        charge: Charge,
        *,
        text: str,
        source_language: str | None,
        target_language: str,
    ) -> translations.Translation:
        async def write(db: Database) -> translations.Translation:
            return await translations.create(
                db,
                user_id=user_id,
                provider=provider,
                model=result.model,
                source_language=source_language,
                target_language=target_language,
                text=text,
                translation=result.translation,
            )

        return await self.commit(user_id, charge, write)

    # ----- live streams (quart_app/live): text saved as it comes, metered once when the stream ends -------------

    def stream_charge(self, *, endpoint: str, request_id: str, duration_ms: int, audio_seconds: float) -> Charge:
        """A live stream's usage row: Deepgram streaming, by audio seconds."""
        price = self.prices.get("deepgram_live_per_minute", self.prices[TRANSCRIBE_PRICE["deepgram"]])
        return Charge(
            service="transcription.deepgram_live",
            endpoint=endpoint,
            request_id=request_id,
            duration_ms=duration_ms,
            audio_seconds=audio_seconds,
            cost_usd=audio_seconds / 60.0 * price,
        )

    async def open_stream_transcription(
        self,
        user_id: str,
        *,
        provider: str,
        model: str | None,
        language: str | None,
        transcript: str,
        segments: list[transcriptions.Segment],
        duration_s: float,
    ) -> transcriptions.Transcription:
        """Create a live stream's transcription (source=stream) holding its text so far. Bills nothing."""
        return await transcriptions.create(
            self.database.get(),
            user_id=user_id,
            provider=provider,
            transcript=transcript,
            model=model,
            language=language,
            duration_s=duration_s,
            segments=segments,
            source="stream",
        )

    async def append_stream_text(
        self, transcription_id: str, *, transcript: str, segments: list[transcriptions.Segment], duration_s: float
    ) -> None:
        """Save a live stream's text so far (every final up to now) into its transcription. Bills nothing."""
        await transcriptions.update_stream_text(
            self.database.get(), transcription_id, transcript=transcript, segments=segments, duration_s=duration_s
        )

    async def finish_stream(
        self,
        user_id: str,
        transcription_id: str | None,
        *,
        provider: str,
        model: str | None,
        language: str | None,
        transcript: str,
        segments: list[transcriptions.Segment],
        duration_s: float,
        charge: Charge | None,
    ) -> transcriptions.Transcription:
        """The stream's final text and its one usage row in one transaction (no row when `charge` is None).

        Creates the transcription if no text was saved before (or the user deleted it meanwhile).
        """

        async def write(db: Database) -> transcriptions.Transcription:
            if transcription_id is not None:
                updated = await transcriptions.update_stream_text(
                    db, transcription_id, transcript=transcript, segments=segments, duration_s=duration_s
                )
                record = await transcriptions.get_owned(db, user_id, transcription_id) if updated else None
                if record is not None:
                    return record
            return await transcriptions.create(
                db,
                user_id=user_id,
                provider=provider,
                transcript=transcript,
                model=model,
                language=language,
                duration_s=duration_s,
                segments=segments,
                source="stream",
            )

        if charge is not None:
            return await self.commit(user_id, charge, write)
        db = self.database.get()
        async with write_transaction(db):
            return await write(db)
