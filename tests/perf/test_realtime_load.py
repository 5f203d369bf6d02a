"""bench/_realtime_load.py's fake Realtime server counts every append, however the relay spells its JSON.

Behaviour only (no timing): the fast path reads ours (`{"type":"input_audio_buffer.append","audio":...}`), the
parsed path reads any other spelling (the SDK peer's), and neither misses or double-counts one.
"""

from __future__ import annotations

import asyncio
import json

import websockets
from websockets.asyncio.server import serve

from bench import harness
from bench._realtime_load import BenchRealtime, stamped


async def _exchange(messages: list[str]) -> BenchRealtime:
    fake = BenchRealtime(turn_frames=1000, reply_deltas=1)
    port = harness.free_port()
    async with serve(fake.handler, "127.0.0.1", port, process_request=fake.process_request):
        async with websockets.connect(f"ws://127.0.0.1:{port}/v1") as ws:
            created = json.loads(await ws.recv())
            assert created["type"] == "session.created"
            for message in messages:
                await ws.send(message)
            await ws.send(json.dumps({"type": "session.update", "session": {"instructions": "x"}}))
            updated = json.loads(await ws.recv())  # answered after every append before it was read
            assert updated["type"] == "session.updated"
    return fake


def test_appends_in_any_json_spelling_are_counted_once_with_their_latency() -> None:
    ours = '{"type":"input_audio_buffer.append","audio":"' + stamped(160) + '"}'
    spaced = json.dumps({"type": "input_audio_buffer.append", "audio": stamped(160)})
    audio_first = json.dumps({"audio": stamped(160), "type": "input_audio_buffer.append", "event_id": "e1"})
    other = json.dumps({"type": "conversation.item.create", "item": {"audio": "AAAAAAAAAAAAAAAA"}})
    fake = asyncio.run(_exchange([ours, spaced, audio_first, other]))
    assert fake.stats.appends == 3
    assert len(fake.stats.latencies) == 3
    assert all(0 <= latency < 3600 for latency in fake.stats.latencies)


def test_uvloop_policy_is_restored() -> None:
    before = asyncio.get_event_loop_policy()
    with harness.uvloop_policy() as used:
        inside = asyncio.get_event_loop_policy()
        assert asyncio.run(asyncio.sleep(0, result="ran")) == "ran"
    assert asyncio.get_event_loop_policy() is before
    assert used == (type(inside).__module__.startswith("uvloop"))
