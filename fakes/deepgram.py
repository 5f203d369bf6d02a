"""FakeDeepgram: prerecorded `POST /v1/listen` as Deepgram serves it; live `GET /v1/listen` is in deepgram_live.py.

Point deepgram-sdk 7 at it with
`AsyncDeepgramClient(api_key=fake.api_key, environment=fakes.deepgram.environment(fake.base_url))`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import threading
import uuid
from typing import Any

import aiohttp
from aiohttp import web

from fakes import audio
from fakes.base import FakeService
from fakes.deepgram_live import DEFAULT_IDLE_TIMEOUT_S, DeepgramLiveMixin

MODELS = {
    "nova-3": ("general-nova-3", "2025-04-17.21547", "nova-3"),
    "nova-3-general": ("general-nova-3", "2025-04-17.21547", "nova-3"),
    "nova-2": ("general-nova-2", "2024-01-09.29447", "nova-2"),
    "nova-2-general": ("general-nova-2", "2024-01-09.29447", "nova-2"),
    "nova": ("general", "2024-01-18.26916", "nova"),
    "enhanced": ("general-enhanced", "2022-05-18.0", "enhanced"),
    "base": ("general", "2021-11-10.1", "base"),
}
DEFAULT_MODEL = "base"

# status -> (err_code, err_msg) in Deepgram's own words.
DEEPGRAM_ERRORS: dict[int, tuple[str, str]] = {
    400: ("Bad Request", "Bad Request: failed to process audio: corrupt or unsupported data"),
    401: ("INVALID_AUTH", "Invalid credentials."),
    402: ("ASR_PAYMENT_REQUIRED", "Project does not have enough credits for an ASR request with the selected options."),
    403: ("INSUFFICIENT_PERMISSIONS", "User does not have sufficient permissions for the requested resource."),
    429: ("TOO_MANY_REQUESTS", "Too many requests. Please try again later"),
    500: ("INTERNAL_SERVER_ERROR", "An internal server error occurred."),
    502: ("BAD_GATEWAY", "Bad gateway."),
    503: ("SERVICE_UNAVAILABLE", "Service temporarily unavailable. Please try again later."),
}
# Bytes per sample of the raw (headerless) encodings Deepgram accepts with `encoding=`.
RAW_ENCODINGS = {"linear16": 2, "linear32": 4, "mulaw": 1, "alaw": 1}
_AUTH = re.compile(r"^\s*(Token|Bearer)\s+(\S+)\s*$", re.I)


def environment(base_url: str):
    """A deepgram-sdk `DeepgramClientEnvironment` whose REST calls go to `base_url`."""
    from deepgram.environment import DeepgramClientEnvironment

    ws = re.sub(r"^http", "ws", base_url)
    return DeepgramClientEnvironment(base=base_url, production=ws, agent=ws, agent_rest=base_url)


def _flag(query: Any, name: str) -> bool:
    return str(query.get(name, "false")).lower() == "true"


class FakeDeepgram(DeepgramLiveMixin, FakeService):
    """State of a fake Deepgram project.

    `register_transcript(audio, text)` fixes a transcript; `register_url(url, audio)` makes a URL fetchable;
    `callbacks` lists results POSTed to `callback=` URLs as (url, status, body).
    Live streaming (`register_live_words`, `live_connections`, `live_fail_next`, ...): see fakes/deepgram_live.py.
    """

    name = "deepgram"

    def __init__(self, api_key: str = "fake-deepgram-key", *, idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S) -> None:
        super().__init__()
        self._init_live(idle_timeout_s)
        self.api_key = api_key
        self.transcripts = audio.TranscriptRegistry()
        self._urls: dict[str, bytes] = {}
        self._lock_urls = threading.Lock()
        self.callbacks: list[tuple[str, int | None, dict[str, Any]]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def register_transcript(self, audio_or_sha256: bytes | str, text: str) -> str:
        return self.transcripts.register(audio_or_sha256, text)

    def register_url(self, url: str, data: bytes) -> None:
        with self._lock_urls:
            self._urls[url] = data

    def routes(self) -> list[web.AbstractRouteDef]:
        return [web.post("/v1/listen", self.listen), web.get("/v1/listen", self.live_listen, allow_head=False)]

    def error_response(self, status: int, message: str | None = None, headers: dict[str, str] | None = None):
        return self.error(status, message, headers=headers)

    def error(
        self, status: int, message: str | None = None, *, code: str | None = None, headers: dict[str, str] | None = None
    ) -> web.Response:
        default_code, default_message = DEEPGRAM_ERRORS.get(status, ("UNKNOWN", "Unknown error."))
        request_id = str(uuid.uuid4())
        body = {"err_code": code or default_code, "err_msg": message or default_message, "request_id": request_id}
        return web.json_response(body, status=status, headers={"dg-request-id": request_id, **(headers or {})})

    # ----- handler ----------------------------------------------------------------------------

    async def listen(self, request: web.Request) -> web.Response:
        body = await request.read()
        record = self.record(request)
        record.body_size = len(body)
        match = _AUTH.match(request.headers.get("Authorization", ""))
        if not match or match.group(2) != self.api_key:
            return self.error(401)
        query = request.query
        model = query.get("model", DEFAULT_MODEL)
        if model not in MODELS:
            return self.error(
                400,
                "No such model/language/tier combination found. Use the /v1/models endpoint to see available models.",
            )
        if request.content_type == "application/json":
            try:
                payload = json.loads(body)
                record.json = payload
                url = payload["url"]
            except (ValueError, KeyError, TypeError):
                return self.error(400, "Invalid JSON submitted. JSON must include a url field.")
            with self._lock_urls:
                fetched = self._urls.get(url)
            if fetched is None:
                return self.error(
                    400,
                    "Could not determine if URL for media download is publicly routable.",
                    code="REMOTE_CONTENT_ERROR",
                )
            body = fetched
        try:
            duration, channels = await self._measure(body, query)
        except ValueError as exc:
            return self.error(400, str(exc) or None)
        result = self._result(body, duration, channels, model, query)
        if "callback" in query:
            self._schedule_callback(query["callback"], query.get("callback_method", "POST"), result)
            return web.json_response(
                {"request_id": result["metadata"]["request_id"]},
                headers={"dg-request-id": result["metadata"]["request_id"]},
            )
        return web.json_response(result, headers={"dg-request-id": result["metadata"]["request_id"]})

    async def _measure(self, body: bytes, query: Any) -> tuple[float, int]:
        """(duration, channels); raises ValueError with Deepgram's message for unusable audio."""
        if not body:
            raise ValueError("")
        encoding = query.get("encoding")
        if encoding in RAW_ENCODINGS:
            # Headerless audio: Deepgram cannot sniff it, so it needs the rate to compute durations.
            if "sample_rate" not in query:
                raise ValueError("Bad Request: sample_rate is required when encoding is specified for raw audio.")
            channels = int(query.get("channels", "1"))
            return len(body) / (int(query["sample_rate"]) * channels * RAW_ENCODINGS[encoding]), channels
        try:
            _fmt, duration = await audio.probe_async(body)
        except ValueError as exc:
            raise ValueError("") from exc
        return duration, 1

    def _result(self, body: bytes, duration: float, channels: int, model: str, query: Any) -> dict[str, Any]:
        fmt = audio.sniff_format(body) or query.get("encoding", "raw")
        text = self.transcripts.transcript_for(body, fmt, duration)
        punctuated = _flag(query, "punctuate") or _flag(query, "smart_format")
        words = _words(text, duration, punctuated, _flag(query, "diarize"))
        transcript = text if punctuated else " ".join(w["word"] for w in words)
        alternative = {"transcript": transcript, "confidence": 0.99, "words": words}
        channel: dict[str, Any] = {"alternatives": [alternative]}
        language = query.get("language", "en")
        if _flag(query, "detect_language"):
            channel["detected_language"] = language if language != "multi" else "en"
            channel["language_confidence"] = 0.98
        model_uuid = str(uuid.uuid5(uuid.NAMESPACE_URL, "deepgram-fake/" + model))
        name, version, arch = MODELS[model]
        results: dict[str, Any] = {"channels": [channel] * (channels if _flag(query, "multichannel") else 1)}
        if _flag(query, "utterances") and words:
            results["utterances"] = [
                {
                    "start": words[0]["start"],
                    "end": words[-1]["end"],
                    "confidence": 0.99,
                    "channel": 0,
                    "transcript": transcript,
                    "words": words,
                    "speaker": 0,
                    "id": str(uuid.uuid4()),
                }
            ]
        metadata: dict[str, Any] = {
            "transaction_key": "deprecated",
            "request_id": str(uuid.uuid4()),
            "sha256": audio.sha256_hex(body),
            "created": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "duration": round(duration, 3),
            "channels": channels,
            "models": [model_uuid],
            "model_info": {model_uuid: {"name": name, "version": version, "arch": arch}},
        }
        if "tag" in query:
            metadata["tags"] = query.getall("tag")
        return {"metadata": metadata, "results": results}

    # ----- callbacks --------------------------------------------------------------------------

    def _schedule_callback(self, url: str, method: str, result: dict[str, Any]) -> None:
        task = asyncio.create_task(self._deliver(url, method, result))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, url: str, method: str, result: dict[str, Any]) -> None:
        status: int | None = None
        try:
            async with (
                aiohttp.ClientSession() as session,
                session.request(
                    method,
                    url,
                    json=result,
                    headers={"dg-token": self.api_key},
                    timeout=aiohttp.ClientTimeout(total=10),
                ) as response,
            ):
                status = response.status
        except (aiohttp.ClientError, TimeoutError):
            status = None
        self.callbacks.append((url, status, result))


def _words(text: str, duration: float, punctuated: bool, diarize: bool) -> list[dict[str, Any]]:
    """Evenly timed words; `punctuated_word` only when punctuation was asked for, as Deepgram does."""
    tokens = text.split()
    step = duration / len(tokens) if tokens else 0.0
    words = []
    for index, token in enumerate(tokens):
        word: dict[str, Any] = {
            "word": re.sub(r"[^\w'-]", "", token).lower() or token.lower(),
            "start": round(index * step, 3),
            "end": round((index + 1) * step, 3),
            "confidence": 0.99,
        }
        if diarize:
            word.update(speaker=0, speaker_confidence=0.9)
        if punctuated:
            word["punctuated_word"] = token
        words.append(word)
    return words
