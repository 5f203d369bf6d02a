"""Large uploads on a live hypercorn: the server's memory stays flat and body backpressure never deadlocks.

Memory is measured on the hypercorn worker process with bench/harness.py (the same code as
`python bench/run.py upload_memory`): baseline VmRSS after a warm-up upload (lazy imports, the multipart
parser and the Deepgram client exist by then), VmHWM reset, then the peak while a 100 MB WAV is posted.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from bench import harness

UPLOAD_MB = 100
BUDGET = 25 * harness.MB


@pytest.fixture
def deepgram():  # type: ignore[no-untyped-def]
    with harness.deepgram_fake() as fake:
        yield fake


def _start(live_server_factory, tmp_path: Path, deepgram, **env: str):  # type: ignore[no-untyped-def]
    """A live server on a fresh SQLite database holding one user; returns (server, API key headers)."""
    db_url = f"sqlite+aiosqlite:///{tmp_path}/perf.db"
    key = harness.create_api_key(db_url)
    server = live_server_factory(
        DATABASE_URL=db_url,
        DEEPGRAM_API_KEY=deepgram.api_key,
        DEEPGRAM_BASE_URL=deepgram.base_url,
        LOG_LEVEL="WARNING",
        **env,
    )
    return server, {"x-api-key": key}


def test_100mb_upload_raises_peak_rss_by_less_than_25mb(live_server_factory, tmp_path: Path, deepgram) -> None:
    server, headers = _start(live_server_factory, tmp_path, deepgram, MAX_UPLOAD_MB="200")
    url = server.url + "/transcriptions/deepgram"
    wav = harness.big_wav(UPLOAD_MB)

    warmup, _ = harness.post_file(url, harness.big_wav(1), headers=headers)
    assert warmup.status_code == 200, warmup.text
    with harness.RssSampler(harness.worker_pid(server.proc.pid)) as rss:
        response, _ = harness.post_file(url, wav, headers=headers)

    assert response.status_code == 200, response.text
    assert response.json()["provider"] == "deepgram"
    # The whole file reached the provider, so the bytes really went through this process.
    forwarded = deepgram.requests_to("/v1/listen")[-1].body_size
    assert forwarded == wav.stat().st_size
    assert rss.samples > 10 and rss.baseline > 0
    assert rss.increase < BUDGET, (
        f"peak {harness.mb(rss.peak)} MB over baseline {harness.mb(rss.baseline)} MB: "
        f"+{harness.mb(rss.increase)} MB for a {UPLOAD_MB} MB upload (budget 25 MB)"
    )


def test_large_json_body_is_read_whole_without_deadlock(live_server_factory, tmp_path: Path, deepgram) -> None:
    """Backpressure pauses the receiver only for streaming readers; awaiting the whole body (JSON) must
    still get every byte, or this 3 MB request would hang until the client's timeout."""
    server, headers = _start(live_server_factory, tmp_path, deepgram, MAX_JSON_KB="8192")
    body = json.dumps({"text": "a" * (3 * harness.MB), "target_language": "es"})
    response = httpx.post(
        server.url + "/translations/openai",
        headers={**headers, "content-type": "application/json"},
        content=body,
        timeout=15,
    )
    # Parsed and rejected by validation (text is capped at 20000 characters), not stuck or a 500.
    assert response.status_code in (400, 422), response.text
    assert "text" in response.text


def test_chunked_upload_over_the_limit_is_413(live_server_factory, tmp_path: Path, deepgram) -> None:
    """With no Content-Length, the running count stops the upload; the receiver keeps draining so the
    client reads the 413 instead of hanging on a paused connection."""
    server, headers = _start(live_server_factory, tmp_path, deepgram, MAX_UPLOAD_MB="2")
    wav = harness.big_wav(8)

    def chunks():  # type: ignore[no-untyped-def]
        boundary = b"--bench\r\n"
        yield boundary + b'Content-Disposition: form-data; name="audio"; filename="a.wav"\r\n\r\n'
        with open(wav, "rb") as handle:
            while block := handle.read(256 * 1024):
                yield block
        yield b"\r\n--bench--\r\n"

    response = httpx.post(
        server.url + "/transcriptions/deepgram",
        content=chunks(),
        timeout=15,
        headers={**headers, "content-type": "multipart/form-data; boundary=bench"},
    )
    assert response.status_code == 413, response.text
    assert response.json()["error"] == "payload_too_large" or "payload_too_large" in response.text
