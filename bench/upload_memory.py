"""Server memory while receiving a large upload: ours (spooled, streamed onward) vs a read-it-all peer.

Both servers run under hypercorn with the same config and MAX_UPLOAD_MB; both forward to the same
FakeDeepgram served from a thread of this process. Per server: one small warm-up upload (so lazy imports,
the multipart parser and the SDK client exist), then the peak is reset and one big WAV is uploaded while
VmRSS is sampled. Reported: baseline RSS after warm-up, peak RSS (VmHWM), their difference, wall time and
throughput of the whole request (upload + forward + transcript).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from bench import harness

NAME = "upload_memory"
DESCRIPTION = "peak server RSS while POSTing a large WAV to /transcriptions/deepgram"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--upload-mb", type=int, default=100, help="upload_memory: PCM payload size in MiB (100)")


def measure(server: harness.Server, wav: Path, warmup: Path, headers: dict[str, str]) -> dict[str, object]:
    """One warm-up request, then the measured upload; a table row for `server`."""
    url = server.url + "/transcriptions/deepgram"
    response, _ = harness.post_file(url, warmup, headers=headers)
    if response.status_code != 200:
        raise RuntimeError(f"warm-up upload got {response.status_code}: {response.text[:300]}")
    pid = server.worker_pid()
    with harness.RssSampler(pid) as sampler:
        response, seconds = harness.post_file(url, wav, headers=headers)
    if response.status_code != 200:
        raise RuntimeError(f"upload got {response.status_code}: {response.text[:300]}")
    size = wav.stat().st_size
    return {
        "baseline RSS (MB)": harness.mb(sampler.baseline),
        "peak RSS (MB)": harness.mb(sampler.peak),
        "increase (MB)": harness.mb(sampler.increase),
        "wall (s)": round(seconds, 2),
        "throughput (MB/s)": round(size / harness.MB / seconds, 1),
        "status": response.status_code,
    }


def run(args: argparse.Namespace) -> list[dict[str, object]]:
    size_mb = getattr(args, "upload_mb", 100)
    with tempfile.TemporaryDirectory(prefix="bench-upload-") as tmp_name, harness.deepgram_fake() as fake:
        tmp = Path(tmp_name)
        wav, warmup = harness.big_wav(size_mb), harness.big_wav(1)
        common = {"MAX_UPLOAD_MB": "200", "DEEPGRAM_API_KEY": fake.api_key, "DEEPGRAM_BASE_URL": fake.base_url}
        db_url = f"sqlite+aiosqlite:///{tmp}/bench.db"
        key = harness.create_api_key(db_url)
        rows = []
        servers = [
            ("ours (asgi:application)", "asgi:application", {"DATABASE_URL": db_url}, {"x-api-key": key}),
            ("peer: read whole file, forward bytes", "bench.peers.naive_upload:app", {}, {}),
        ]
        for label, app, env, headers in servers:
            with harness.Server(app, harness.clean_env(**common, **env), tmp / f"{len(rows)}.log") as server:
                rows.append({"server": label, **measure(server, wav, warmup, headers)})
        for row in rows:
            row["upload (MB)"] = round(wav.stat().st_size / harness.MB, 1)
        return rows
