"""AsyncRuntime's pool starts every thread up front: a cold pool stalls the loop that submits to it."""

from __future__ import annotations

import asyncio
import os
import threading
import time

import pytest

from corral import Runtime
from corral.aio import AsyncRuntime


def _pool_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("corral-aio")]


@pytest.mark.parametrize("max_workers", [1, 4, None])
def test_every_thread_of_the_pool_runs_once_it_is_made(runtime: Runtime, max_workers: int | None) -> None:
    """ThreadPoolExecutor starts a thread per submit, and `Thread.start` waits for it to run: in a
    burst of calls, with the other threads holding the GIL, each start held the loop up to ~100 ms."""
    before = set(_pool_threads())
    rt = AsyncRuntime(runtime, max_workers=max_workers)
    ours = set(_pool_threads()) - before
    try:
        expected = max_workers if max_workers is not None else min(32, (os.cpu_count() or 1) + 4)
        assert len(ours) == expected and all(t.is_alive() for t in ours)
    finally:
        asyncio.run(rt.close(keep_runtime=True))
        for thread in ours:
            thread.join(10)
    assert not any(t.is_alive() for t in ours)  # close() ends them


def test_a_burst_of_calls_on_busy_threads_never_starts_a_thread(runtime: Runtime) -> None:
    """What the loop would wait for: no submit of the burst starts a thread any more."""
    rt = AsyncRuntime(runtime, max_workers=4)
    started: list[int] = []
    original = threading.Thread.start

    def counting_start(self: threading.Thread) -> None:
        started.append(1)
        original(self)

    async def burst() -> None:
        def busy() -> None:
            end = time.monotonic() + 0.05
            while time.monotonic() < end:
                pass

        await asyncio.gather(*(rt.call(busy) for _ in range(20)))

    threading.Thread.start = counting_start  # type: ignore[method-assign]
    try:
        asyncio.run(burst())
    finally:
        threading.Thread.start = original  # type: ignore[method-assign]
        asyncio.run(rt.close(keep_runtime=True))
    assert started == []
