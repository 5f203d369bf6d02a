"""Hostile and broken media through the upload routes (issue #15, findings 2 and 3).

Playlists that name the server's own files or a live stream are refused before ffmpeg reads them; a tool
that hangs is killed with its process group at its deadline and the upload refused with the reason; a file cut
short with its index intact is refused instead of being transcribed in part and billed.
"""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import stat
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from werkzeug.datastructures import FileStorage

from fakes import FakeDeepgram, FakeOpenAI, run_fake
from quart_app.db.tables import transcription_jobs, transcriptions, usage_logs
from tests.support.audio import spoken
from tests.support.media import spoken_video, streamed_webm, truncated_faststart_video, webm_without_audio_packets
from tests.support.users import make_user

LIMIT_MB = 0.05  # the whisper route chunks anything bigger, through ffmpeg


@pytest.fixture
async def fakes_env(tmp_path: Path) -> AsyncIterator[tuple[FakeDeepgram, FakeOpenAI, dict[str, str]]]:
    async with (
        run_fake(FakeDeepgram(api_key="dg-test-key")) as deepgram,
        run_fake(FakeOpenAI(api_key="sk-test-openai")) as openai,
    ):
        yield (
            deepgram,
            openai,
            {
                "DEEPGRAM_API_KEY": "dg-test-key",
                "DEEPGRAM_BASE_URL": deepgram.base_url,
                "OPENAI_API_KEY": "sk-test-openai",
                "OPENAI_BASE_URL": openai.base_url + "/v1",
                "JOBS_DIR": str(tmp_path / "jobs"),
            },
        )


def _upload(data: bytes, filename: str = "upload.bin", **form: str) -> dict:
    return {
        "files": {"audio": FileStorage(io.BytesIO(data), filename=filename, content_type="application/octet-stream")},
        "form": form,
    }


async def _rows(app, table) -> list:  # type: ignore[no-untyped-def]
    return await app.extensions["resources"].db().fetch_all(table.select())


async def _wait_job(client, key: str, job_id: str) -> dict:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 60  # hang guard only
    while True:
        body = await (await client.get(f"/transcriptions/jobs/{job_id}", headers={"x-api-key": key})).get_json()
        if body["status"] in ("done", "failed") or time.monotonic() > deadline:
            return body
        await asyncio.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


async def _all_dead(pids: list[int]) -> bool:
    for _ in range(200):  # SIGKILL delivery; hang guard only
        if not any(_alive(pid) for pid in pids):
            return True
        await asyncio.sleep(0.05)
    return False


def _hanging_tool(directory: Path, name: str, pids: Path) -> None:
    """`name` on PATH that never finishes: a shell recording its pid and a helper's, both sleeping. It answers
    `-version` (the availability check) at once, so the tool counts as installed."""
    directory.mkdir(parents=True, exist_ok=True)
    tool = directory / name
    tool.write_text(
        f'#!/bin/sh\nif [ "$1" = "-version" ]; then echo "{name} version 9.9-hang"; exit 0; fi\n'
        f"echo $$ >> {pids}\nsleep 600 &\necho $! >> {pids}\nwait\n"
    )
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)


async def test_playlists_naming_server_files_or_streams_are_refused(
    make_app, backend_env, fakes_env, tmp_path: Path
) -> None:
    deepgram, openai, env = fakes_env
    secret = tmp_path / "private" / "recording.mp3"  # a file on the server's disk, not the caller's
    secret.parent.mkdir()
    secret.write_bytes(spoken("The vault code is four four two one.", "mp3"))
    playlists = [
        f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n{secret}\n#EXT-X-ENDLIST\n",
        f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nfile://{secret}\n#EXT-X-ENDLIST\n",
        f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n{secret}\n",  # live: no end, reloaded forever
        f"ffconcat version 1.0\nfile {secret}\n",
        # Not text to a sniffer (a NUL), still HLS to ffmpeg: the demuxer whitelist refuses it.
        f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n{secret}\n#EXT-X-ENDLIST\n#\0\n",
    ]
    async with make_app(**backend_env, **env) as (app, client):
        _, key = await make_user(app)
        for text in playlists:
            for provider in ("deepgram", "openai"):
                response = await client.post(
                    "/transcriptions/jobs",
                    headers={"x-api-key": key},
                    **_upload(text.encode(), "meeting.m3u8", provider=provider),
                )
                body = await response.get_json()
                assert (response.status_code, body["error"]) == (415, "playlist_not_supported"), (text, body)
        assert deepgram.requests == [] and openai.requests == []
        assert await _rows(app, transcription_jobs) == []
        assert os.listdir(env["JOBS_DIR"]) == []


async def test_a_hanging_ffprobe_is_killed_and_the_upload_refused(
    make_app, fakes_env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deepgram, _, env = fakes_env
    video = spoken_video().read_bytes()  # made (and cached) with the real tools, before the hanging one is on PATH
    pids = tmp_path / "ffprobe.pids"
    _hanging_tool(tmp_path / "bin", "ffprobe", pids)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    async with make_app(**env, FFPROBE_TIMEOUT_S="3") as (app, client):  # time for the tool to record its pids
        _, key = await make_user(app)
        response = await client.post(
            "/transcriptions/jobs",
            headers={"x-api-key": key},
            **_upload(video, provider="deepgram"),
        )
        body = await response.get_json()
        assert (response.status_code, body["error"]) == (422, "media_timeout"), body
        started = [int(pid) for pid in pids.read_text().split()]
        assert len(started) == 2 and await _all_dead(started), "ffprobe's process group outlived its deadline"
        assert await _rows(app, transcription_jobs) == []
        assert os.listdir(env["JOBS_DIR"]) == []
        assert deepgram.requests == []


async def test_a_hanging_ffmpeg_refuses_the_job_with_a_reason(
    make_app, backend_env, fakes_env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deepgram, _, env = fakes_env
    video = spoken_video().read_bytes()  # made (and cached) with the real tools, before the hanging one is on PATH
    pids = tmp_path / "ffmpeg.pids"
    _hanging_tool(tmp_path / "bin", "ffmpeg", pids)  # ffprobe stays the real one
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    async with make_app(**backend_env, **env, FFMPEG_MIN_TIMEOUT_S="3") as (app, client):
        _, key = await make_user(app)
        posted = await client.post(
            "/transcriptions/jobs",
            headers={"x-api-key": key},
            **_upload(video, provider="deepgram"),
        )
        # The audio is extracted at intake: refused with the reason at the deadline (0.5 s per media second,
        # 3 s floor here), never a job that hangs.
        body = await posted.get_json()
        assert (posted.status_code, body["error"]) == (422, "media_timeout"), body
        started = [int(pid) for pid in pids.read_text().split()]
        assert len(started) == 2 and await _all_dead(started), "ffmpeg's process group outlived its deadline"
        assert await _rows(app, transcription_jobs) == []
        assert await _rows(app, usage_logs) == [] and await _rows(app, transcriptions) == []
        assert deepgram.requests == []
        assert os.listdir(env["JOBS_DIR"]) == []  # the upload is gone with the request


async def test_a_truncated_faststart_mp4_is_refused_unbilled(make_app, backend_env, fakes_env) -> None:
    """Its index is at the front, so it probes as the whole minute; only its first part is really there."""
    deepgram, openai, env = fakes_env
    data = truncated_faststart_video().read_bytes()
    async with make_app(**backend_env, **env, OPENAI_TRANSCRIBE_MAX_MB=str(LIMIT_MB)) as (app, client):
        _, key = await make_user(app)
        for provider in ("deepgram", "openai"):
            posted = await client.post(
                "/transcriptions/jobs", headers={"x-api-key": key}, **_upload(data, "phone.mp4", provider=provider)
            )
            body = await posted.get_json()  # found at intake, where the audio is extracted: no job at all
            assert (posted.status_code, body["error"]) == (400, "undecodable_media"), body
            assert "truncated" in body["message"]

        # The whisper route sends a file over OpenAI's limit through the same extraction, in the request.
        response = await client.post("/transcriptions/whisper", headers={"x-api-key": key}, **_upload(data))
        body = await response.get_json()
        assert (response.status_code, body["error"]) == (400, "undecodable_media"), body

        assert deepgram.requests == [] and openai.requests == []
        assert await _rows(app, usage_logs) == [] and await _rows(app, transcriptions) == []
        assert await _rows(app, transcription_jobs) == []


async def test_media_of_unknown_length_is_refused_and_a_streamed_webm_is_measured(make_app, fakes_env) -> None:
    deepgram, _, env = fakes_env
    async with make_app(**env) as (app, client):
        _, key = await make_user(app)
        # An audio track, no length in the header and no audio packets to measure: refused at once.
        response = await client.post(
            "/transcriptions/jobs",
            headers={"x-api-key": key},
            **_upload(webm_without_audio_packets().read_bytes(), provider="deepgram"),
        )
        body = await response.get_json()
        assert (response.status_code, body["error"]) == (400, "undecodable_media"), body
        assert "length" in body["message"]
        assert await _rows(app, transcription_jobs) == []

        # A browser's streamed WebM has no length in its header either, but its packets tell it.
        posted = await client.post(
            "/transcriptions/jobs",
            headers={"x-api-key": key},
            **_upload(streamed_webm().read_bytes(), provider="deepgram"),
        )
        assert posted.status_code == 202, await posted.get_data()
        job = await _wait_job(client, key, (await posted.get_json())["id"])
        assert job["status"] == "done", job
        assert len(deepgram.requests_to("/v1/listen")) == 1


@pytest.fixture(autouse=True)
def _tools_present() -> None:
    if not (shutil.which("ffmpeg") and shutil.which("ffprobe")):
        pytest.skip("ffmpeg/ffprobe are needed")


async def test_a_truncated_upload_metered_by_probe_is_refused_unbilled(make_app, fakes_env) -> None:
    """With a model that reports no duration, the sync route measures the upload: a cut file is not billed."""
    _, openai, env = fakes_env
    async with make_app(**env, OPENAI_TRANSCRIBE_MODEL="gpt-4o-transcribe") as (app, client):
        _, key = await make_user(app)
        response = await client.post(
            "/transcriptions/whisper",
            headers={"x-api-key": key},
            **_upload(truncated_faststart_video().read_bytes(), "phone.m4a"),
        )
        body = await response.get_json()
        assert (response.status_code, body["error"]) == (400, "undecodable_media"), body
        assert len(openai.requests_to("/v1/audio/transcriptions")) == 1
        assert await _rows(app, usage_logs) == [] and await _rows(app, transcriptions) == []
