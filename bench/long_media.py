"""Long media jobs: server RSS while a ~100 MB video is uploaded and transcribed in chunks, and the wall
time of the chunked path with TRANSCRIBE_CONCURRENCY=4 against 1 (chunks sent one after another).

The video (640x360 MPEG-4 test picture plus looped speech with pauses, ~10 minutes) is built once with
ffmpeg into the temp dir. Provider: FakeOpenAI in a thread, answering every request after a fixed delay,
with its size limit equal to OPENAI_TRANSCRIBE_MAX_MB so every chunk is checked. Timing runs from the
POST to the job's `done`.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from bench import harness
from fakes import FakeOpenAI, FakeServerThread
from tests.support.media import MEDIA_DIR, long_recording

NAME = "long_media"
DESCRIPTION = "RSS and wall time of POST /transcriptions/jobs for a ~100 MB video, concurrency 4 vs 1"
TRANSCRIBE = "/v1/audio/transcriptions"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--long-media-mb", type=int, default=100, help="long_media: video size in MiB (100)")
    parser.add_argument(
        "--long-media-delay",
        type=float,
        default=0.5,
        help="long_media: fake provider delay per request in seconds (0.5)",
    )
    parser.add_argument(
        "--long-media-limit-mb",
        type=float,
        default=0.1,
        help="long_media: OPENAI_TRANSCRIBE_MAX_MB, small so the audio splits (0.1)",
    )


def build_video(target_mb: int, directory: Path) -> Path:
    """A one-minute unit (picture + the meeting period's speech), looped by stream copy up to the size."""
    out = directory / f"video-{target_mb}mb.mp4"
    if out.exists():
        return out
    long_recording(1)  # makes MEDIA_DIR/period.wav
    unit = directory / "unit.mp4"
    subprocess.run(
        [
            "ffmpeg",
            "-y",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=640x360:rate=25",
            "-i",
            str(MEDIA_DIR / "period.wav"),
            "-shortest",
            "-c:v",
            "mpeg4",
            "-b:v",
            "1300k",
            "-c:a",
            "aac",
            "-b:a",
            "64k",
            str(unit),
        ],
        check=True,
    )
    loops = max(1, round(target_mb * harness.MB / unit.stat().st_size))
    subprocess.run(
        ["ffmpeg", "-y", "-loglevel", "error", "-stream_loop", str(loops - 1), "-i", str(unit), "-c", "copy", str(out)],
        check=True,
    )
    return out


def submit_and_wait(server: harness.Server, video: Path, key: str) -> tuple[float, dict]:
    started = time.perf_counter()
    with video.open("rb") as handle, httpx.Client(timeout=600) as client:
        response = client.post(
            server.url + "/transcriptions/jobs",
            headers={"x-api-key": key},
            files={"audio": ("talk.mp4", handle)},
            data={"provider": "openai"},
        )
        if response.status_code != 202:
            raise RuntimeError(f"job submit got {response.status_code}: {response.text[:300]}")
        job_id = response.json()["id"]
        while True:
            body = client.get(f"{server.url}/transcriptions/jobs/{job_id}", headers={"x-api-key": key}).json()
            if body["status"] in ("done", "failed"):
                return time.perf_counter() - started, body
            time.sleep(0.1)


def run(args: argparse.Namespace) -> list[dict[str, object]]:
    size_mb = getattr(args, "long_media_mb", 100)
    delay = getattr(args, "long_media_delay", 0.5)
    limit_mb = getattr(args, "long_media_limit_mb", 0.1)
    rows = []
    with (
        tempfile.TemporaryDirectory(prefix="bench-long-media-") as tmp_name,
        FakeServerThread(FakeOpenAI(api_key="sk-bench", max_request_bytes=int(limit_mb * harness.MB))) as fake,
    ):
        tmp = Path(tmp_name)
        video = build_video(size_mb, tmp)
        for concurrency in (4, 1):
            db_url = f"sqlite+aiosqlite:///{tmp}/bench-{concurrency}.db"
            key = harness.create_api_key(db_url)
            env = harness.clean_env(
                DATABASE_URL=db_url,
                MAX_UPLOAD_MB="200",
                OPENAI_API_KEY="sk-bench",
                OPENAI_BASE_URL=fake.base_url + "/v1",
                OPENAI_TRANSCRIBE_MAX_MB=str(limit_mb),
                TRANSCRIBE_CONCURRENCY=str(concurrency),
                JOBS_DIR=str(tmp / f"jobs-{concurrency}"),
                RATE_LIMIT_PER_MINUTE="100000",
            )
            fake.reset()
            fake.delay_next(*[delay] * 2000, path=TRANSCRIBE)
            with harness.Server("asgi:application", env, tmp / f"server-{concurrency}.log") as server:
                with harness.RssSampler(server.worker_pid()) as sampler:
                    seconds, job = submit_and_wait(server, video, key)
            if job["status"] != "done":
                raise RuntimeError(f"job failed: {job}")
            sent = fake.requests_to(TRANSCRIBE)
            rows.append(
                {
                    "path": f"chunked, concurrency {concurrency}",
                    "video (MB)": round(video.stat().st_size / harness.MB, 1),
                    "chunks": len(sent),
                    "largest request (kB)": round(max(r.body_size for r in sent) / 1024, 1),
                    "limit (kB)": round(limit_mb * 1024, 1),
                    "baseline RSS (MB)": harness.mb(sampler.baseline),
                    "peak RSS (MB)": harness.mb(sampler.peak),
                    "increase (MB)": harness.mb(sampler.increase),
                    "wall, POST to done (s)": round(seconds, 2),
                }
            )
    return {"rows": rows, "notes": f"Fake provider delay {delay} s per request."}  # type: ignore[return-value]
