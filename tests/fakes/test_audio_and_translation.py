"""The pure helpers behind the fakes: container sniffing, WAV durations, target-language parsing."""

from __future__ import annotations

import struct

import pytest

from fakes import FakeAuth0, sine_wav
from fakes.audio import CorruptAudio, TranscriptRegistry, probe, sha256_hex, sniff_format, wav_duration
from fakes.translation import find_target, translate


def test_wav_duration_reads_header_and_streamed_sizes():
    wav = sine_wav(0.25, rate=8000, channels=2)
    assert wav_duration(wav) == pytest.approx(0.25)
    data_at = wav.index(b"data")
    streamed = wav[: data_at + 4] + struct.pack("<I", 0xFFFFFFFF) + wav[data_at + 8 :]
    assert wav_duration(streamed) == pytest.approx(0.25)
    with pytest.raises(CorruptAudio):
        wav_duration(wav[:30])


@pytest.mark.parametrize(
    ("head", "fmt"),
    [
        (b"RIFF\0\0\0\0WAVE", "wav"),
        (b"ID3", "mp3"),
        (b"\xff\xf3", "mp3"),
        (b"\xff\xf1", None),
        (b"OggS", "ogg"),
        (b"fLaC", "flac"),
        (b"\x1a\x45\xdf\xa3", "webm"),
        (b"\0\0\0\x18ftypmp42", "mp4"),
        (b"\0\0\0\x18ftypM4A ", "m4a"),
        (b"<html>", None),
    ],
)
def test_sniff_format(head, fmt):
    assert sniff_format(head + b"\0" * 16) == fmt


def test_probe_refuses_unknown_and_truncated_data():
    with pytest.raises(ValueError) as unknown:
        probe(b"plain text" * 10)
    assert not isinstance(unknown.value, CorruptAudio)
    with pytest.raises(CorruptAudio):
        probe(b"OggS" + b"\0" * 10)


def test_registry_accepts_bytes_or_hash():
    registry = TranscriptRegistry()
    registry.register(b"abc", "one")
    registry.register(sha256_hex(b"def").upper(), "two")
    assert registry.lookup(b"abc") == "one" and registry.lookup(b"def") == "two" and registry.lookup(b"x") is None


@pytest.mark.parametrize(
    ("texts", "target"),
    [
        (["Translate from English to Spanish."], "es"),
        (["You are an interpreter. Target language: de"], "de"),
        (["[target=fr-CA] hello"], "fr"),
        (["Please listen to it and answer."], None),
        (["Reply in plain words.", "Translate this into Deutsch: hi"], "de"),
    ],
)
def test_find_target(texts, target):
    assert find_target(texts) == target


def test_translate_keeps_case_and_punctuation_or_tags():
    assert translate("Hello!", "fr") == "Bonjour!"
    assert translate("hello", "de") == "hallo"
    assert translate("Where is the station?", "es") == "[es] Where is the station?"


def test_mint_with_unknown_kid_and_no_key_is_a_clear_error():
    with pytest.raises(KeyError, match="pass key="):
        FakeAuth0(key_size=1024).mint(kid="nope")
