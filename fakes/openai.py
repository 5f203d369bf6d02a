"""FakeOpenAI: `/v1/audio/transcriptions`, `/v1/audio/speech`, `/v1/chat/completions` and `/v1/models` as
OpenAI serves them.

Point the SDK at it with `AsyncOpenAI(api_key=fake.api_key, base_url=fake.base_url + "/v1")`.
"""

from __future__ import annotations

import math
import os
import re
from typing import Any

from aiohttp import web

from fakes import audio, speech
from fakes.openai_compat import OpenAICompatibleFake

CHAT_MODELS = ["gpt-4o-mini", "gpt-4o", "gpt-4.1-mini", "gpt-4.1", "gpt-4.1-nano", "gpt-5-mini"]
TRANSCRIBE_MODELS = ["whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe"]
RESPONSE_FORMATS = ("json", "text", "srt", "verbose_json", "vtt")
OPENAI_FILE_LIMIT = 25 * 1024 * 1024  # 26214400: what the API calls its "Maximum content size limit"


class FakeOpenAI(OpenAICompatibleFake):
    """State of a fake OpenAI account.

    `max_request_bytes` is the upload limit (the real 25 MiB by default); lower it to test 413 handling.
    `transcripts.register(...)` / `register_transcript(...)` fixes what given audio transcribes to.
    `speech_engine` picks how `/v1/audio/speech` speaks: "auto" (espeak-ng when installed, else a tone
    babble), "espeak" (same), or "tone" (always the babble: byte-identical on every machine).
    """

    name = "openai"

    def __init__(
        self,
        api_key: str = "sk-fake-openai-key",
        *,
        max_request_bytes: int = OPENAI_FILE_LIMIT,
        speech_engine: str = "auto",
    ) -> None:
        super().__init__(api_key, CHAT_MODELS + TRANSCRIBE_MODELS + speech.SPEECH_MODELS)
        self.max_request_bytes = max_request_bytes
        self.speech_engine = speech_engine
        self.transcripts = audio.TranscriptRegistry()

    def register_transcript(self, audio_or_sha256: bytes | str, text: str) -> str:
        return self.transcripts.register(audio_or_sha256, text)

    def routes(self) -> list[web.AbstractRouteDef]:
        return [
            web.post("/v1/audio/transcriptions", self.transcriptions),
            web.post("/v1/audio/speech", self.speech),
            web.post("/v1/chat/completions", self.chat_completions),
            web.get("/v1/models", self.list_models),
        ]

    # ----- multipart upload -------------------------------------------------------------------

    async def _drain(self, request: web.Request) -> int:
        total = 0
        while chunk := await request.content.read(1 << 16):
            total += len(chunk)
        return total

    def _too_large(self, read: int) -> web.Response:
        return self.error(413, f"Maximum content size limit ({self.max_request_bytes}) exceeded ({read} bytes read)")

    async def _read_form(self, request: web.Request) -> tuple[dict[str, list[str]], dict[str, Any] | None, int]:
        """Form fields, the `file` part (name, content type, bytes) and the bytes read."""
        fields: dict[str, list[str]] = {}
        upload: dict[str, Any] | None = None
        total = 0
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            data = bytearray()
            while chunk := await part.read_chunk(1 << 16):
                total += len(chunk)
                if total <= self.max_request_bytes:
                    data += chunk
            if part.filename is not None or part.name == "file":
                upload = {
                    "filename": part.filename,
                    "content_type": part.headers.get("Content-Type"),
                    "data": bytes(data),
                }
            elif part.name:
                fields.setdefault(part.name, []).append(data.decode("utf-8", "replace"))
        return fields, upload, total

    # ----- text to speech (fakes/speech.py) -----------------------------------------------------

    async def speech(self, request: web.Request) -> web.StreamResponse:
        return await speech.respond(self, request)

    # ----- transcription ----------------------------------------------------------------------

    async def transcriptions(self, request: web.Request) -> web.Response:
        denied = self.check_auth(request)
        if denied is not None:
            await self._drain(request)
            return denied
        if request.content_length is not None and request.content_length > self.max_request_bytes:
            # The real API refuses on the declared length but still reads the upload before answering.
            return self._too_large(await self._drain(request))
        if not request.content_type.startswith("multipart/form-data"):
            await self._drain(request)
            return self.error(
                400, f"Invalid Content-Type header ({request.content_type}), expected multipart/form-data."
            )
        fields, upload, total = await self._read_form(request)
        record = self.record(request)
        record.body_size = total
        record.fields = fields
        if upload is not None:
            record.files["file"] = {
                "filename": upload["filename"],
                "content_type": upload["content_type"],
                "size": len(upload["data"]),
                "sha256": audio.sha256_hex(upload["data"]),
            }
        if total > self.max_request_bytes:
            return self._too_large(total)
        field = {name: values[-1] for name, values in fields.items()}
        problem = self._check_fields(field, upload)
        if problem is not None:
            return problem
        assert upload is not None
        data: bytes = upload["data"]
        try:
            fmt, duration = await audio.probe_async(data)
        except audio.CorruptAudio:
            return self.error(400, "Audio file might be corrupted or unsupported", param="file", code="invalid_value")
        except ValueError:
            return self.error(400, f"Invalid file format. Supported formats: {audio.OPENAI_FORMATS}")
        text = self.transcripts.transcript_for(data, fmt, duration)
        granularities = fields.get("timestamp_granularities[]", []) + fields.get("timestamp_granularities", [])
        return self._render(field, text, duration, granularities)

    def _check_fields(self, field: dict[str, str], upload: dict[str, Any] | None) -> web.Response | None:
        if upload is None:
            return self.error(
                400, "Missing required parameter: 'file'.", param="file", code="missing_required_parameter"
            )
        model = field.get("model")
        if not model:
            return self.error(400, "you must provide a model parameter")
        if model not in TRANSCRIBE_MODELS:
            return self.model_error(model)
        # Like the real API, the format is taken from the file name's extension first.
        extension = os.path.splitext(upload["filename"] or "")[1].lstrip(".").lower()
        if extension not in audio.OPENAI_FORMATS:
            return self.error(400, f"Unrecognized file format. Supported formats: {audio.OPENAI_FORMATS}")
        response_format = field.get("response_format", "json")
        if response_format not in RESPONSE_FORMATS:
            return self.error(
                400,
                f"'{response_format}' is not one of {list(RESPONSE_FORMATS)} - 'response_format'",
                param="response_format",
            )
        if model != "whisper-1" and response_format not in ("json", "text"):
            return self.error(
                400,
                f"response_format '{response_format}' is not compatible with model '{model}'. "
                "Use 'json' or 'text' instead.",
                param="response_format",
                code="unsupported_value",
            )
        language = field.get("language")
        if language is not None and not re.fullmatch(r"[a-z]{2}", language):
            return self.error(
                400,
                f"Invalid language '{language}'. Language parameter must be specified in ISO-639-1 format.",
                param="language",
                code="invalid_language_format",
            )
        if "temperature" in field:
            try:
                if not 0 <= float(field["temperature"]) <= 1:
                    raise ValueError
            except ValueError:
                return self.error(400, "temperature must be between 0 and 1", param="temperature")
        return None

    def _render(self, field: dict[str, str], text: str, duration: float, granularities: list[str]) -> web.Response:
        response_format = field.get("response_format", "json")
        model = field["model"]
        segments = _segments(text, duration)
        if response_format == "text":
            return web.Response(text=text + "\n", content_type="text/plain", headers=self.headers())
        if response_format in ("srt", "vtt"):
            return web.Response(
                text=_subtitles(segments, response_format), content_type="text/plain", headers=self.headers()
            )
        if model == "whisper-1":
            usage: dict[str, Any] = {"type": "duration", "seconds": math.ceil(duration)}
        else:
            input_tokens = max(int(duration * 10), 1)
            output_tokens = max(len(text.split()), 1)
            usage = {
                "type": "tokens",
                "input_tokens": input_tokens,
                "output_tokens": output_tokens,
                "total_tokens": input_tokens + output_tokens,
                "input_token_details": {"text_tokens": 0, "audio_tokens": input_tokens},
            }
        if response_format == "json":
            return self.json({"text": text, "usage": usage})
        body: dict[str, Any] = {
            "task": "transcribe",
            "language": audio.LANGUAGE_NAMES.get(field.get("language", "en"), field.get("language", "english")),
            "duration": round(duration, 2),
            "text": text,
        }
        if "word" in granularities:
            body["words"] = [w for segment in segments for w in segment.pop("_words")]
        if not granularities or "segment" in granularities:
            body["segments"] = [{k: v for k, v in s.items() if k != "_words"} for s in segments]
        body["usage"] = usage
        return self.json(body)


def _segments(text: str, duration: float) -> list[dict[str, Any]]:
    """Whisper-style segments: one per sentence, timed in proportion to their word counts."""
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s] or [text]
    total_words = sum(max(len(s.split()), 1) for s in sentences)
    per_word = duration / total_words if total_words else 0.0
    segments, clock, token = [], 0.0, 50364
    for index, sentence in enumerate(sentences):
        words = sentence.split() or [sentence]
        timed_words = []
        for word in words:
            timed_words.append(
                {"word": word.strip(".,!?;:"), "start": round(clock, 2), "end": round(clock + per_word, 2)}
            )
            clock += per_word
        tokens = list(range(token, token + len(words)))
        token += len(words)
        segments.append(
            {
                "id": index,
                "seek": 0,
                "start": timed_words[0]["start"],
                "end": timed_words[-1]["end"],
                "text": " " + sentence,
                "tokens": tokens,
                "temperature": 0.0,
                "avg_logprob": -0.25,
                "compression_ratio": 1.2,
                "no_speech_prob": 0.01,
                "_words": timed_words,
            }
        )
    return segments


def _timestamp(seconds: float, separator: str) -> str:
    millis = int(round(seconds * 1000))
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def _subtitles(segments: list[dict[str, Any]], kind: str) -> str:
    separator = "," if kind == "srt" else "."
    blocks = []
    for number, segment in enumerate(segments, start=1):
        timing = f"{_timestamp(segment['start'], separator)} --> {_timestamp(segment['end'], separator)}"
        text = segment["text"].strip()
        blocks.append(f"{number}\n{timing}\n{text}\n" if kind == "srt" else f"{timing}\n{text}\n")
    body = "\n".join(blocks)
    return body if kind == "srt" else "WEBVTT\n\n" + body
