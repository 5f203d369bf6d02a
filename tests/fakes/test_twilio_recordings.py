"""FakeTwilio additions: the Recordings resource and the call-update hook."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from twilio.rest import Client

from fakes import FakeServerThread, FakeTwilio, sine_wav
from fakes.audio import sniff_format, wav_duration


@pytest.fixture(scope="module")
def threaded_twilio() -> Iterator[FakeTwilio]:
    with FakeServerThread(FakeTwilio()) as fake:
        yield fake  # type: ignore[misc]


def test_recording_media_and_metadata(threaded_twilio: FakeTwilio) -> None:
    wav = sine_wav(1.5)
    sid, url = threaded_twilio.add_recording(wav, call_sid="CA" + "1" * 32)
    assert sid.startswith("RE") and len(sid) == 34
    assert url == f"{threaded_twilio.base_url}/2010-04-01/Accounts/{threaded_twilio.account_sid}/Recordings/{sid}"
    auth = (threaded_twilio.account_sid, threaded_twilio.auth_token)

    default, as_wav = httpx.get(url, auth=auth), httpx.get(url + ".wav", auth=auth)
    assert default.status_code == as_wav.status_code == 200
    assert default.content == as_wav.content == wav and default.headers["content-type"] == "audio/x-wav"

    client = Client(*auth)
    client.api.base_url = threaded_twilio.base_url
    recording = client.recordings(sid).fetch()
    assert recording.sid == sid and recording.call_sid == "CA" + "1" * 32 and recording.duration == "2"
    assert recording.status == "completed" and recording.media_url == url
    assert threaded_twilio.recordings[sid]["uri"].endswith(f"/Recordings/{sid}.json")

    assert httpx.get(url).status_code == 401
    assert httpx.get(url, auth=(threaded_twilio.account_sid, "wrong")).json()["code"] == 20003
    missing = httpx.get(url.replace(sid, "RE" + "0" * 32) + ".json", auth=auth)
    assert missing.status_code == 404 and missing.json()["code"] == 20404
    assert httpx.get(url + ".ogg", auth=auth).status_code == 404


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg converts WAV to MP3")
def test_recording_as_mp3(threaded_twilio: FakeTwilio) -> None:
    _, url = threaded_twilio.add_recording(sine_wav(1.0))
    mp3 = httpx.get(url + ".mp3", auth=(threaded_twilio.account_sid, threaded_twilio.auth_token))
    assert mp3.status_code == 200 and mp3.headers["content-type"] == "audio/mpeg"
    assert sniff_format(mp3.content) == "mp3"


def test_recording_must_be_audio(threaded_twilio: FakeTwilio) -> None:
    with pytest.raises(ValueError):
        threaded_twilio.add_recording(b"not audio at all")
    sid, _ = threaded_twilio.add_recording(sine_wav(0.25))
    assert wav_duration(sine_wav(0.25)) == 0.25 and threaded_twilio.recordings[sid]["duration"] == "0"


async def test_call_update_hook_sees_twiml_url_and_status(twilio_fake: FakeTwilio) -> None:
    seen: list[tuple[str, dict[str, str]]] = []
    awaited: list[str] = []

    async def async_hook(call_sid: str, update: dict[str, str]) -> None:
        awaited.append(call_sid)

    def broken_hook(call_sid: str, update: dict[str, Any]) -> None:
        raise RuntimeError("a test hook failing must not break the REST answer")

    unsubscribe = twilio_fake.on_call_update(lambda sid, update: seen.append((sid, update)))
    twilio_fake.on_call_update(async_hook)
    twilio_fake.on_call_update(broken_hook)
    calls = f"{twilio_fake.base_url}/2010-04-01/Accounts/{twilio_fake.account_sid}/Calls"
    async with httpx.AsyncClient(auth=(twilio_fake.account_sid, twilio_fake.auth_token)) as http:
        created = await http.post(
            calls + ".json", data={"To": "+15550001111", "From": "+15550002222", "Twiml": "<Response/>"}
        )
        sid = created.json()["sid"]
        twilio_fake.set_call_status(sid, "in-progress")
        twiml = '<Response><Connect><Stream url="wss://voice.example.com/s2"/></Connect></Response>'
        assert (await http.post(f"{calls}/{sid}.json", data={"Twiml": twiml})).status_code == 200
        await http.post(f"{calls}/{sid}.json", data={"Url": "https://voice.example.com/next", "Method": "POST"})
        unsubscribe()
        await http.post(f"{calls}/{sid}.json", data={"Status": "completed"})
        refused = await http.post(f"{calls}/{sid}.json", data={"Twiml": twiml})
    assert refused.status_code == 400
    assert seen == [(sid, {"Twiml": twiml}), (sid, {"Url": "https://voice.example.com/next", "Method": "POST"})]
    assert awaited == [sid, sid, sid]
