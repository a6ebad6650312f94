"""corral.aio on real containers: many at once from one event loop, which never stalls meanwhile."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from corral import Runtime
from corral.aio import AsyncRuntime
from corral.errors import WaitTimeout
from tests.integration.conftest import make_config

pytestmark = pytest.mark.root

CONTAINERS = 50
TICK = 0.010
MAX_LAG = 0.100


class _ReferenceTicker(threading.Thread):
    """A plain thread ticking as the loop's ticker does: what the process as a whole was denied.

    On a loaded 2-core machine, with the pool's threads taking turns at the GIL,
    any Python thread may be late by tens of milliseconds. A stall of the loop
    counts only beyond what this thread suffered in the same window.
    """

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.ticks: list[tuple[float, float, float]] = []  # (before, end, lag)
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            before = time.monotonic()
            time.sleep(TICK)
            end = time.monotonic()
            self.ticks.append((before, end, end - before - TICK))

    def worst_lag(self, start: float, end: float) -> float:
        """The worst lag of the reference's ticks that overlap [start, end]. Judged once the run
        is over: a tick the GIL held up is recorded only when it ends, often after the loop's."""
        return max((lag for before, after, lag in self.ticks if before < end and after > start), default=0.0)


@pytest.mark.asyncio
async def test_fifty_containers_from_one_loop_that_never_stalls(runtime: Runtime, bundle: Path) -> None:
    """create + start + wait + destroy of 50 containers at once; a 10 ms ticker measures the loop's lag.

    The lag of each tick (how late `asyncio.sleep(0.01)` returns), less the
    worst lag a plain thread saw meanwhile, is what the loop itself was
    blocked: it does not grow with a loaded machine the way the wall time of
    the work does. A coroutine that called the kernel work on the loop stalls
    it for seconds.
    """
    rt = AsyncRuntime(runtime)
    loop = asyncio.get_running_loop()
    windows: list[tuple[float, float]] = []  # each tick's (before, end), judged after the run
    done = asyncio.Event()
    reference = _ReferenceTicker()

    async def ticker() -> None:
        while not done.is_set():
            before = time.monotonic()
            await asyncio.sleep(TICK)
            end = time.monotonic()
            windows.append((before, end))

    async def lifecycle(i: int) -> int | None:
        args = ("/bin/true",) if i % 2 else ("/bin/sh", "-c", "sleep 0.2")
        box = await rt.create(f"aio{i}", make_config(bundle, f"aio{i}", *args))
        await box.start()
        status = await box.wait(120)
        await box.destroy()
        return status

    reference.start()
    tick = asyncio.ensure_future(ticker())
    try:
        started = time.monotonic()
        statuses = await asyncio.gather(*(lifecycle(i) for i in range(CONTAINERS)))
        elapsed = time.monotonic() - started
    finally:
        done.set()
        await tick
        reference.stop.set()
        reference.join(5)
        await rt.close(keep_runtime=True)
    stalls = [end - before - TICK - reference.worst_lag(before, end) for before, end in windows]
    assert statuses == [0] * CONTAINERS
    assert len(stalls) > 10
    assert max(stalls) < MAX_LAG, f"the loop stalled {max(stalls) * 1000:.0f} ms ({len(stalls)} ticks in {elapsed:.1f} s)"
    assert [b.id for b in runtime.list()] == []


@pytest.mark.asyncio
async def test_wait_watches_a_pidfd_and_times_out(runtime: Runtime, bundle: Path) -> None:
    rt = AsyncRuntime(runtime)
    try:
        box = await rt.create("slow", make_config(bundle, "slow", "/bin/sleep", "1000"))
        await box.start()
        with pytest.raises(WaitTimeout):
            await box.wait(0.2)
        assert (await box.state()).value == "running"
        async with rt.events(ids=["slow"]) as stream:
            await box.signal(9)
            assert await box.wait(10) == 137
            kinds = []
            async for event in stream:
                kinds.append(event.kind)
                if event.kind == "exited":
                    break
        assert kinds == ["signal", "exited"]
        await box.destroy()
    finally:
        await rt.close(keep_runtime=True)
