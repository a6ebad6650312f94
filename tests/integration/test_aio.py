"""corral.aio on real containers: many at once from one event loop, which never stalls meanwhile."""

from __future__ import annotations

import asyncio
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


@pytest.mark.asyncio
async def test_fifty_containers_from_one_loop_that_never_stalls(runtime: Runtime, bundle: Path) -> None:
    """create + start + wait + destroy of 50 containers at once; a 10 ms ticker measures the loop's lag.

    The lag of each tick (how late `asyncio.sleep(0.01)` returns) is what the
    loop's own blocking adds; it does not grow with a loaded machine the way
    the wall time of the work does.
    """
    rt = AsyncRuntime(runtime)
    loop = asyncio.get_running_loop()
    lags: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        while not done.is_set():
            before = loop.time()
            await asyncio.sleep(TICK)
            lags.append(loop.time() - before - TICK)

    async def lifecycle(i: int) -> int | None:
        args = ("/bin/true",) if i % 2 else ("/bin/sh", "-c", "sleep 0.2")
        box = await rt.create(f"aio{i}", make_config(bundle, f"aio{i}", *args))
        await box.start()
        status = await box.wait(120)
        await box.destroy()
        return status

    tick = asyncio.ensure_future(ticker())
    try:
        started = time.monotonic()
        statuses = await asyncio.gather(*(lifecycle(i) for i in range(CONTAINERS)))
        elapsed = time.monotonic() - started
    finally:
        done.set()
        await tick
        await rt.close(keep_runtime=True)
    assert statuses == [0] * CONTAINERS
    assert len(lags) > 10
    assert max(lags) < MAX_LAG, f"the loop stalled {max(lags) * 1000:.0f} ms ({len(lags)} ticks in {elapsed:.1f} s)"
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
