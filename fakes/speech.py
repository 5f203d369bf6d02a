"""Text-to-speech for FakeOpenAI's `POST /v1/audio/speech`: real, decodable audio whose length follows the text.

Speech comes from `espeak-ng` when it is installed (actual words, an espeak variant per OpenAI voice), else
from a deterministic "babble" (one harmonic tone burst per word, pitch from the voice and the word's hash,
~65 ms per character). Either way it is 24 kHz mono PCM16, the API's native rate, time-scaled by `speed`.
`pcm` is that raw (little-endian) and `wav` wraps it natively; mp3 (libmp3lame), opus (Ogg), aac (ADTS) and
flac are encoded by `ffmpeg` when installed, else the request is refused with a 400 naming the format.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import shutil
import tempfile
import wave
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from aiohttp import web

from fakes.openai_compat import count_tokens

if TYPE_CHECKING:  # pragma: no cover
    from fakes.openai import FakeOpenAI

SAMPLE_RATE = 24_000
SPEECH_MODELS = ["tts-1", "tts-1-hd", "gpt-4o-mini-tts", "gpt-4o-mini-tts-2025-03-20", "gpt-4o-mini-tts-2025-12-15"]
VOICES = [
    "alloy",
    "ash",
    "ballad",
    "coral",
    "echo",
    "fable",
    "onyx",
    "nova",
    "sage",
    "shimmer",
    "verse",
    "marin",
    "cedar",
]
TTS1_VOICES = ["alloy", "ash", "coral", "echo", "fable", "onyx", "nova", "sage", "shimmer"]  # tts-1 / tts-1-hd
FORMATS = ["mp3", "opus", "aac", "flac", "wav", "pcm"]
CONTENT_TYPES = {
    "mp3": "audio/mpeg",
    "opus": "audio/opus",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/pcm",
}
MAX_INPUT_CHARS = 4096
STREAM_CHUNK_BYTES = 4800  # 100 ms of pcm per chunk (the real API also sends audio as it is made)

# voice -> (espeak-ng variant, fundamental frequency of the fallback babble)
_VOICE_STYLE = {
    "alloy": ("f2", 190.0),
    "ash": ("m3", 120.0),
    "ballad": ("m2", 135.0),
    "coral": ("f3", 215.0),
    "echo": ("m1", 110.0),
    "fable": ("m4", 140.0),
    "onyx": ("m7", 95.0),
    "nova": ("f4", 225.0),
    "sage": ("f1", 200.0),
    "shimmer": ("f5", 235.0),
    "verse": ("m5", 125.0),
    "marin": ("f2", 205.0),
    "cedar": ("m6", 105.0),
}
_DEFAULT_STYLE = ("m3", 150.0)
_FFMPEG_ARGS = {
    "mp3": ["-c:a", "libmp3lame", "-b:a", "64k", "-f", "mp3"],
    "opus": ["-c:a", "libopus", "-b:a", "32k", "-f", "ogg"],
    "aac": ["-c:a", "aac", "-b:a", "64k", "-f", "adts"],
    "flac": ["-c:a", "flac", "-f", "flac"],
}


def _literal(options: list[str]) -> str:
    quoted = [f"'{o}'" for o in options]
    return ", ".join(quoted[:-1]) + " or " + quoted[-1]


def validation_message(kind: str, field: str, msg: str, extra: str = "") -> str:
    """The API's pydantic-style 400 text for the speech route, e.g. string_too_long on `input`."""
    return f"[{{'type': '{kind}', 'loc': ('body', '{field}'), 'msg': {msg!r}{extra}}}]"


def style(voice: Any) -> tuple[str, float]:
    return _VOICE_STYLE.get(voice, _DEFAULT_STYLE) if isinstance(voice, str) else _DEFAULT_STYLE


def babble(text: str, voice: Any) -> np.ndarray:
    """A deterministic speech stand-in: per word a harmonic burst, pitch from voice and word, then a short gap."""
    _, f0 = style(voice)
    pieces = []
    for word in text.split() or [text]:
        digest = hashlib.sha256(word.encode()).digest()
        seconds = 0.065 * len(word) + 0.05
        n = int(seconds * SAMPLE_RATE)
        t = np.arange(n) / SAMPLE_RATE
        pitch = f0 * (0.85 + 0.3 * digest[0] / 255) * (1 + 0.08 * np.sin(2 * np.pi * 3 * t))
        phase = 2 * np.pi * np.cumsum(pitch) / SAMPLE_RATE
        wave_ = np.sin(phase) + 0.5 * np.sin(2 * phase) + 0.25 * np.sin(3 * phase + digest[1] / 40)
        envelope = np.minimum(1.0, np.minimum(t, seconds - t) / 0.02)
        pieces.append(6_000 * wave_ * envelope)
        pieces.append(np.zeros(int(0.08 * SAMPLE_RATE)))
    return np.round(np.concatenate(pieces)).astype(np.int16)


def _resample(samples: np.ndarray, factor: float) -> np.ndarray:
    """Linear-interpolation resampling to `factor` × the length (fine for a fake; not for the service)."""
    if len(samples) < 2 or factor == 1:
        return samples
    count = max(int(round(len(samples) * factor)), 1)
    positions = np.linspace(0, len(samples) - 1, count)
    return np.round(np.interp(positions, np.arange(len(samples)), samples.astype(np.float64))).astype(np.int16)


async def _espeak(text: str, voice: Any, speed: float) -> np.ndarray | None:
    """espeak-ng's rendering at 24 kHz, or None if it is not installed or fails."""
    if shutil.which("espeak-ng") is None:
        return None
    variant, _ = style(voice)
    words_per_minute = int(min(max(175 * speed, 80), 450))
    try:
        process = await asyncio.create_subprocess_exec(
            "espeak-ng",
            "--stdout",
            "-v",
            f"en-us+{variant}",
            "-s",
            str(words_per_minute),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        out, _ = await asyncio.wait_for(process.communicate(text.encode()), timeout=60)
    except (OSError, TimeoutError):
        return None
    if process.returncode != 0 or not out:
        return None
    try:
        with wave.open(io.BytesIO(out)) as wav:
            rate, frames = wav.getframerate(), wav.readframes(wav.getnframes())
    except (wave.Error, EOFError):
        return None
    samples = np.frombuffer(frames[: len(frames) // 2 * 2], dtype="<i2").astype(np.int16)
    # espeak's rate range is 80..450 wpm: stretch whatever `speed` it could not reach.
    residual = (175 * speed) / words_per_minute
    return _resample(samples, SAMPLE_RATE / rate / residual)


async def synthesize(text: str, voice: Any, speed: float, engine: str = "auto") -> np.ndarray:
    """24 kHz int16 speech for `text`: espeak-ng if installed (engine "auto"/"espeak"), else the babble."""
    if engine in ("auto", "espeak"):
        spoken = await _espeak(text, voice, speed)
        if spoken is not None and len(spoken):
            return spoken
    return _resample(babble(text, voice), 1 / speed)


def wav_bytes(samples: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(SAMPLE_RATE)
        wav.writeframes(samples.astype("<i2").tobytes())
    return buffer.getvalue()


def can_encode(fmt: str) -> bool:
    return fmt in ("pcm", "wav") or shutil.which("ffmpeg") is not None


async def encode(samples: np.ndarray, fmt: str) -> bytes:
    """The audio in the response format (ffmpeg for the compressed ones)."""
    pcm = samples.astype("<i2").tobytes()
    if fmt == "pcm":
        return pcm
    if fmt == "wav":
        return wav_bytes(samples)
    # Into a file, not a pipe: ffmpeg seeks back to finish the headers (FLAC's sample count, MP3's Xing frame).
    with tempfile.TemporaryDirectory(prefix="fake-speech-") as folder:
        target = Path(folder) / f"speech.{fmt}"
        process = await asyncio.create_subprocess_exec(
            "ffmpeg",
            "-hide_banner",
            "-loglevel",
            "error",
            "-f",
            "s16le",
            "-ar",
            str(SAMPLE_RATE),
            "-ac",
            "1",
            "-i",
            "pipe:0",
            *_FFMPEG_ARGS[fmt],
            str(target),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await asyncio.wait_for(process.communicate(pcm), timeout=120)
        if process.returncode != 0:
            raise RuntimeError(f"ffmpeg failed to encode {fmt}: {err.decode(errors='replace')[-500:]}")
        return target.read_bytes()


# ------------------------------------------------------------------------------------------------ the route


def check(fake: FakeOpenAI, body: dict[str, Any]) -> web.Response | None:
    """The API's 400s/404 for a speech request, in its words, or None."""
    for field in ("model", "input", "voice"):
        if field not in body:
            return fake.error(400, validation_message("missing", field, "Field required"))
    model, text, voice = body["model"], body["input"], body["voice"]
    if not isinstance(text, str):
        return fake.error(400, validation_message("string_type", "input", "Input should be a valid string"))
    if len(text) > MAX_INPUT_CHARS:
        return fake.error(
            400,
            validation_message(
                "string_too_long",
                "input",
                f"String should have at most {MAX_INPUT_CHARS} characters",
                f", 'ctx': {{'max_length': {MAX_INPUT_CHARS}}}",
            ),
        )
    if not text:
        return fake.error(
            400,
            validation_message(
                "string_too_short", "input", "String should have at least 1 character", ", 'ctx': {'min_length': 1}"
            ),
        )
    if not isinstance(model, str) or model not in fake.models or model not in SPEECH_MODELS:
        return fake.model_error(str(model))
    if isinstance(voice, dict):
        if not isinstance(voice.get("id"), str) or not voice["id"].startswith("voice_"):
            return fake.error(400, f"Voice '{voice.get('id')}' not found.", param="voice", code="invalid_value")
    else:
        allowed = TTS1_VOICES if model in ("tts-1", "tts-1-hd") else VOICES
        if voice not in allowed:
            return fake.error(
                400,
                validation_message(
                    "literal_error", "voice", f"Input should be {_literal(allowed)}", f", 'input': {voice!r}"
                ),
            )
    fmt = body.get("response_format", "mp3")
    if fmt not in FORMATS:
        return fake.error(
            400,
            validation_message(
                "literal_error", "response_format", f"Input should be {_literal(FORMATS)}", f", 'input': {fmt!r}"
            ),
        )
    speed = body.get("speed", 1.0)
    if isinstance(speed, bool) or not isinstance(speed, int | float):
        return fake.error(400, validation_message("float_type", "speed", "Input should be a valid number"))
    if speed < 0.25:
        return fake.error(
            400,
            validation_message(
                "greater_than_equal", "speed", "Input should be greater than or equal to 0.25", ", 'ctx': {'ge': 0.25}"
            ),
        )
    if speed > 4.0:
        return fake.error(
            400,
            validation_message(
                "less_than_equal", "speed", "Input should be less than or equal to 4", ", 'ctx': {'le': 4.0}"
            ),
        )
    stream_format = body.get("stream_format", "audio")
    if stream_format not in ("audio", "sse"):
        return fake.error(
            400,
            validation_message(
                "literal_error", "stream_format", "Input should be 'sse' or 'audio'", f", 'input': {stream_format!r}"
            ),
        )
    if stream_format == "sse" and model in ("tts-1", "tts-1-hd"):
        return fake.error(
            400,
            f"stream_format 'sse' is not supported for model '{model}'.",
            param="stream_format",
            code="unsupported_value",
        )
    instructions = body.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        return fake.error(400, validation_message("string_type", "instructions", "Input should be a valid string"))
    if not can_encode(fmt):
        return fake.error(
            400,
            f"Response format '{fmt}' is not available in this fake: ffmpeg is not installed. Use 'wav' or 'pcm'.",
            param="response_format",
            code="unsupported_value",
        )
    return None


async def respond(fake: FakeOpenAI, request: web.Request) -> web.StreamResponse:
    """`POST /v1/audio/speech`: the audio, sent with chunked transfer encoding (or as SSE events)."""
    denied = fake.check_auth(request)
    if denied is not None:
        return denied
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return fake.error(400, "We could not parse the JSON body of your request.")
    if not isinstance(body, dict):
        return fake.error(400, "We could not parse the JSON body of your request.")
    fake.record(request).json = body
    problem = check(fake, body)
    if problem is not None:
        return problem
    fmt = body.get("response_format", "mp3")
    samples = await synthesize(body["input"], body["voice"], float(body.get("speed", 1.0)), fake.speech_engine)
    try:
        audio = await encode(samples, fmt)
    except (OSError, RuntimeError, TimeoutError) as exc:  # a broken ffmpeg: the API's 500, with the reason
        return fake.error(500, f"The fake could not encode {fmt}: {exc}")
    if body.get("stream_format") == "sse":
        return await _send_sse(fake, request, audio, body, len(samples) / SAMPLE_RATE)
    response = web.StreamResponse(headers={"Content-Type": CONTENT_TYPES[fmt], **fake.headers()})
    response.enable_chunked_encoding()
    await response.prepare(request)
    for start in range(0, len(audio), STREAM_CHUNK_BYTES):
        await response.write(audio[start : start + STREAM_CHUNK_BYTES])
        await asyncio.sleep(0)
    await response.write_eof()
    return response


async def _send_sse(
    fake: FakeOpenAI, request: web.Request, audio: bytes, body: dict[str, Any], seconds: float
) -> web.StreamResponse:
    """`stream_format: "sse"`: `speech.audio.delta` events with base64 audio, then `speech.audio.done` + usage."""
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", **fake.headers()})
    await response.prepare(request)
    for start in range(0, len(audio), STREAM_CHUNK_BYTES):
        chunk = base64.b64encode(audio[start : start + STREAM_CHUNK_BYTES]).decode()
        await response.write(f"data: {json.dumps({'type': 'speech.audio.delta', 'audio': chunk})}\n\n".encode())
        await asyncio.sleep(0)
    input_tokens = count_tokens(body["input"]) + count_tokens(body.get("instructions") or "")
    output_tokens = max(int(seconds * 20), 1)
    usage = {"input_tokens": input_tokens, "output_tokens": output_tokens, "total_tokens": input_tokens + output_tokens}
    await response.write(f"data: {json.dumps({'type': 'speech.audio.done', 'usage': usage})}\n\n".encode())
    await response.write_eof()
    return response
