"""Speech in and out through the fake OpenAI server: limits checked before anything is sent."""

from __future__ import annotations

import openai
import pytest

from fakes import FakeOpenAI, sine_wav
from quart_app.assistant import speech as speech_module
from quart_app.assistant.errors import AudioTooLarge, AudioTooLong, SpeechFailed, UnsupportedAudio
from quart_app.assistant.speech import MAX_AUDIO_BYTES, Speech, audio_duration, check_duration, probe_duration
from quart_app.audio.formats import MP3, sniff
from quart_app.providers.openai_transcribe import OpenAITranscriber


@pytest.fixture
def speech(client: openai.AsyncOpenAI) -> Speech:
    return Speech(OpenAITranscriber(client, "whisper-1", 10.0), client, tts_model="gpt-4o-mini-tts", voice="alloy")


async def test_transcribe_sends_the_audio_with_its_real_type(speech: Speech, openai_fake: FakeOpenAI) -> None:
    wav = sine_wav(0.5)
    openai_fake.register_transcript(wav, "add buy milk")
    assert await speech.transcribe(wav, "audio/webm") == "add buy milk"  # the claimed type is not believed
    upload = openai_fake.requests_to("/v1/audio/transcriptions")[0].files["file"]
    assert upload["filename"] == "audio.wav" and upload["size"] == len(wav)


async def test_audio_over_the_limit_is_refused_before_sending(speech: Speech, openai_fake: FakeOpenAI) -> None:
    big = sine_wav(0.1)[:44] + bytes(MAX_AUDIO_BYTES)
    with pytest.raises(AudioTooLarge) as info:
        await speech.transcribe(big, "audio/wav")
    assert info.value.code == "audio_too_large" and info.value.limit == MAX_AUDIO_BYTES
    with pytest.raises(UnsupportedAudio) as unsupported:
        await speech.transcribe(b"this is not audio at all", "audio/webm")
    assert unsupported.value.code == "unsupported_audio"
    with pytest.raises(UnsupportedAudio):
        await speech.transcribe(b"", "audio/webm")
    assert openai_fake.requests_to("/v1/audio/transcriptions") == []


async def test_transcription_failures_are_speech_failed(speech: Speech, openai_fake: FakeOpenAI) -> None:
    openai_fake.fail_next(503, path="/v1/audio/transcriptions")
    with pytest.raises(SpeechFailed) as info:
        await speech.transcribe(sine_wav(0.3), "audio/wav")
    assert info.value.code == "speech_failed" and info.value.reason == "provider_error"
    with pytest.raises(SpeechFailed):
        await Speech(None, None, tts_model="x", voice="alloy").transcribe(sine_wav(0.3), "audio/wav")


async def test_synthesize_returns_mp3(speech: Speech, openai_fake: FakeOpenAI) -> None:
    audio, mime = await speech.synthesize("Added buy milk to your list.")
    assert mime == "audio/mpeg" and sniff(audio[:64]) is MP3 and len(audio) > 1000
    sent = openai_fake.requests_to("/v1/audio/speech")[0].json
    assert sent["model"] == "gpt-4o-mini-tts" and sent["voice"] == "alloy" and sent["response_format"] == "mp3"
    long_text = "This is one sentence. " * 400
    await speech.synthesize(long_text)
    assert len(openai_fake.requests_to("/v1/audio/speech")[-1].json["input"]) <= speech_module.MAX_SPEECH_CHARS


async def test_synthesize_failures_are_speech_failed(speech: Speech, openai_fake: FakeOpenAI) -> None:
    openai_fake.fail_next(500, path="/v1/audio/speech")
    with pytest.raises(SpeechFailed) as info:
        await speech.synthesize("hello")
    assert info.value.reason == "HTTP 500"
    with pytest.raises(SpeechFailed):
        await Speech(None, None, tts_model="x", voice="alloy").synthesize("hello")


async def test_durations() -> None:
    wav = sine_wav(1.5)
    assert audio_duration(wav) == pytest.approx(1.5)
    assert audio_duration(b"OggS" + bytes(100)) is None
    assert await probe_duration(wav) == pytest.approx(1.5)
    assert await probe_duration(b"not audio") is None
    assert await check_duration(wav, limit=2) == pytest.approx(1.5)
    with pytest.raises(AudioTooLong) as info:
        await check_duration(wav, limit=1)
    assert info.value.code == "audio_too_long"


async def test_probe_duration_reads_compressed_audio(client: openai.AsyncOpenAI) -> None:
    speech = Speech(None, client, tts_model="gpt-4o-mini-tts", voice="alloy")
    audio, _ = await speech.synthesize("one two three four five six")
    seconds = await probe_duration(audio)
    assert seconds is not None and seconds > 0.5
