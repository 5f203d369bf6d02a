"""MemoryCounters when full: what makes room, and what never does (a live lockout). A driven clock, no sleeps."""

from __future__ import annotations

import pytest

from quart_app.auth.counters import CountersFull, MemoryCounters


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_full_store_drops_ordinary_windows_but_never_a_live_lockout() -> None:
    clock = Clock()
    store = MemoryCounters(max_keys=10, clock=clock)
    for _ in range(3):
        await store.hit("pin:victim", 900, lock_at=3)  # a live lockout, and the oldest entry
    for i in range(9):
        await store.hit(f"rl:ordinary-{i}", 60)
    assert len(store) == 10

    for i in range(50):  # a flood of new keys
        await store.hit(f"rl:flood-{i}", 60)
    assert await store.peek("pin:victim") == (3, 900.0)
    assert len(store) <= 10


async def test_when_only_lockouts_are_left_new_keys_are_refused_until_one_expires() -> None:
    clock = Clock()
    store = MemoryCounters(max_keys=10, clock=clock)
    for i in range(10):
        await store.hit(f"pin:locked-{i}", 100 + i, lock_at=1)
    with pytest.raises(CountersFull):
        await store.hit("pin:new", 100, lock_at=1)
    # Existing keys still count: a locked pair stays locked and counts on.
    assert (await store.hit("pin:locked-3", 100, lock_at=1))[0] == 2
    with pytest.raises(CountersFull):  # refused again without a rescan
        await store.hit("pin:new", 100, lock_at=1)

    clock.now += 100.5  # the first lockout (window 100 s) has expired
    assert await store.hit("pin:new", 100, lock_at=1) == (1, 100.0)
    assert await store.peek("pin:locked-0") == (0, 0.0)
    assert (await store.peek("pin:locked-9"))[0] == 1


async def test_an_entry_below_its_lock_threshold_may_go_and_expired_entries_go_first() -> None:
    clock = Clock()
    store = MemoryCounters(max_keys=4, clock=clock)
    await store.hit("pin:almost", 900, lock_at=5)  # one failure of five: not a lockout yet
    await store.hit("pin:locked", 900, lock_at=1)
    await store.hit("rl:short", 10)
    await store.hit("rl:long", 600)
    clock.now += 11  # rl:short has expired
    await store.hit("rl:new-1", 60)
    assert await store.peek("pin:almost") == (1, 889.0)  # the expired entry made the room
    await store.hit("rl:new-2", 60)
    assert (await store.peek("pin:locked"))[0] == 1  # never the lockout
