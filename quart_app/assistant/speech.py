"""Speech for the assistant: what the user said (OpenAI transcription, through the configured transcriber) and
how the answer sounds (OpenAI `audio.speech`).

    text = await speech.transcribe(audio_bytes, "audio/webm")     # AudioTooLarge, UnsupportedAudio, SpeechFailed
    audio, mime = await speech.synthesize("Added buy milk.")      # (mp3 bytes, "audio/mpeg"), or SpeechFailed

Audio over MAX_AUDIO_BYTES is refused before anything is sent. Its type is decided from its bytes, never from
the `mime` a client claimed. `audio_duration` / `probe_duration` tell a caller how long a recording is (WAV from
its header at no cost; anything else with ffprobe), for the MAX_AUDIO_SECONDS check a transport makes.
"""

from __future__ import annotations

import asyncio
import io
import logging
import tempfile
from pathlib import Path
from typing import Literal

import openai

from ..audio.formats import WAV, sniff, wav_duration
from ..errors import APIError
from ..media.probe import DEMUXER_FOR_FORMAT, probe
from ..providers.results import AudioUpload, Transcriber
from .errors import AudioTooLarge, AudioTooLong, SpeechFailed, UnsupportedAudio

log = logging.getLogger(__name__)

MAX_AUDIO_BYTES = 10 * 1024 * 1024
MAX_AUDIO_SECONDS = 120.0
MAX_SPEECH_CHARS = 4096  # OpenAI's audio.speech input limit
SPEECH_FORMAT: tuple[Literal["mp3"], str] = ("mp3", "audio/mpeg")
PROBE_TIMEOUT_S = 10.0

UNCONFIGURED = "Sorry, speech is not set up on this server; you can type your request instead."
TRANSCRIBE_APOLOGY = "Sorry, I couldn't understand the recording right now. Please try again or type it."
SYNTHESIZE_APOLOGY = "Sorry, I can't speak my answer right now."


def check_size(audio: bytes) -> None:
    if len(audio) > MAX_AUDIO_BYTES:
        raise AudioTooLarge(len(audio), MAX_AUDIO_BYTES)


def audio_duration(audio: bytes) -> float | None:
    """The recording's length from its header when that costs nothing (WAV); None otherwise."""
    if sniff(audio[:64]) is not WAV:
        return None
    return wav_duration(io.BytesIO(audio))


async def probe_duration(audio: bytes, *, timeout_s: float = PROBE_TIMEOUT_S) -> float | None:
    """The recording's length: from a WAV header, else by ffprobe (packets are scanned when the container does
    not say, as for MediaRecorder's WebM). None when it cannot be told (not audio, no ffprobe, undecodable)."""
    known = audio_duration(audio)
    if known is not None:
        return known
    fmt = sniff(audio[:64])
    if fmt is None:
        return None
    with tempfile.TemporaryDirectory(prefix="assistant-audio-") as folder:
        path = Path(folder) / f"audio.{fmt.extension}"
        await asyncio.to_thread(path.write_bytes, audio)
        try:
            info = await probe(path, timeout_s=timeout_s, demuxer=DEMUXER_FOR_FORMAT.get(fmt.name))
        except (APIError, OSError):
            return None
    return info.extent_s or info.audio_duration_s or info.duration_s


async def check_duration(audio: bytes, *, limit: float = MAX_AUDIO_SECONDS) -> float | None:
    """AudioTooLong when the recording is known to be longer than `limit`; its length (or None) otherwise."""
    seconds = await probe_duration(audio)
    if seconds is not None and seconds > limit:
        raise AudioTooLong(seconds, limit)
    return seconds


class Speech:
    def __init__(
        self,
        transcriber: Transcriber | None,
        client: openai.AsyncOpenAI | None,
        *,
        tts_model: str,
        voice: str,
        language: str | None = None,
    ) -> None:
        self.transcriber = transcriber
        self.client = client
        self.tts_model = tts_model
        self.voice = voice
        self.language = language

    async def transcribe(self, audio: bytes, mime: str = "") -> str:
        """What was said. `mime` is only a hint for logs: the type comes from the bytes."""
        check_size(audio)
        if not audio:
            raise UnsupportedAudio("The recording is empty.")
        fmt = sniff(audio[:64])
        if fmt is None:
            raise UnsupportedAudio(f"The recording ({mime or 'unknown type'}) is not in a supported audio format.")
        if self.transcriber is None:
            raise SpeechFailed(UNCONFIGURED, reason="no transcriber configured")
        upload = AudioUpload(
            stream=io.BytesIO(audio),
            size=len(audio),
            filename=f"audio.{fmt.extension}",
            format=fmt,
            duration_s=audio_duration(audio),
        )
        try:
            result = await self.transcriber.transcribe(upload, self.language)
        except APIError as exc:
            log.warning("assistant transcription failed: %s %s", exc.status, exc.code)
            if exc.code == "undecodable_audio":
                raise UnsupportedAudio("The recording could not be decoded.") from None
            raise SpeechFailed(TRANSCRIBE_APOLOGY, reason=exc.code) from None
        finally:
            upload.close()
        return result.text.strip()

    async def synthesize(self, text: str) -> tuple[bytes, str]:
        """`text` spoken: (mp3 bytes, "audio/mpeg"). Over MAX_SPEECH_CHARS it is cut at a sentence end."""
        if self.client is None:
            raise SpeechFailed(UNCONFIGURED, reason="no speech client configured")
        spoken = _shorten(" ".join(text.split()))
        if not spoken:
            raise SpeechFailed("There is nothing to say.", reason="empty text")
        fmt, mime = SPEECH_FORMAT
        try:
            response = await self.client.audio.speech.create(
                model=self.tts_model, voice=self.voice, input=spoken, response_format=fmt
            )
            audio = await response.aread()
        except openai.OpenAIError as exc:
            reason = f"HTTP {exc.status_code}" if isinstance(exc, openai.APIStatusError) else type(exc).__name__
            log.warning("assistant speech failed: %s", reason)
            raise SpeechFailed(SYNTHESIZE_APOLOGY, reason=reason) from None
        return audio, mime


def _shorten(text: str) -> str:
    if len(text) <= MAX_SPEECH_CHARS:
        return text
    cut = text[:MAX_SPEECH_CHARS]
    end = max(cut.rfind(". "), cut.rfind("! "), cut.rfind("? "))
    return cut[: end + 1] if end > 0 else cut
