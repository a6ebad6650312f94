"""Runtime.events(): the journal as a stream, on the fake executor (no root).

What it must do: hand out every journal row after `since`, in order, once;
filter by container id and event; resume from any sequence number; wake on
the store's bell when any thread or process commits (never on a timer); and
report an exit nobody waited for (the fake's `make_exit` tells the recorder,
as the real monitor does).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from corral import Config, Event, Runtime
from corral.aio import AsyncRuntime
from corral.store.repository import Repository
from tests.unit.conftest import make_runtime

REPO = Path(__file__).resolve().parents[2]


def _lifecycle(rt: Runtime, config: Config, cid: str) -> None:
    box = rt.create(cid, config)
    box.start()
    box.pause()
    box.resume()
    box.signal(9)
    box.wait(5)
    box.destroy()


def test_since_zero_is_the_whole_journal_in_order(runtime: Runtime, config: Config) -> None:
    _lifecycle(runtime, config, "a")
    _lifecycle(runtime, config, "b")
    with runtime.events(0, timeout=0) as stream:
        got = [(e.seq, e.container_id, e.kind, e.from_state, e.to_state) for e in stream]
    journal = [(j.seq, cid, j.event, j.from_state, j.to_state) for cid, j in runtime.journal(0)]
    assert got == journal
    assert [g[0] for g in got] == sorted(g[0] for g in got)
    assert [g[2] for g in got if g[1] == "a"] == [
        "create", "create", "start", "pause", "resume", "signal", "exited", "destroy"
    ]


def test_filters_by_id_and_kind(runtime: Runtime, config: Config) -> None:
    _lifecycle(runtime, config, "a")
    _lifecycle(runtime, config, "b")
    with runtime.events(0, ids=["b"], timeout=0) as stream:
        assert {e.container_id for e in stream} == {"b"}
    with runtime.events(0, kinds=["exited", "pause"], timeout=0) as stream:
        assert [(e.container_id, e.kind) for e in stream] == [
            ("a", "pause"), ("a", "exited"), ("b", "pause"), ("b", "exited")
        ]
    with runtime.events(0, ids="a", kinds="start", timeout=0) as stream:  # a lone string is one id
        assert [(e.container_id, e.kind) for e in stream] == [("a", "start")]


def test_resumes_after_any_sequence_number(runtime: Runtime, config: Config) -> None:
    _lifecycle(runtime, config, "a")
    everything = [e.seq for e in runtime.events(0, timeout=0)]
    for cut in everything:
        assert [e.seq for e in runtime.events(cut, timeout=0)] == [s for s in everything if s > cut]


def test_since_none_is_only_what_comes_next(runtime: Runtime, config: Config) -> None:
    _lifecycle(runtime, config, "old")
    stream = runtime.events(timeout=0)
    assert list(stream) == []
    stream = runtime.events(timeout=5)
    runtime.create("new", config)
    first = next(stream)
    assert (first.container_id, first.kind, first.from_state) == ("new", "create", None)
    stream.close()


def test_an_exit_nobody_waited_for_is_an_event(runtime: Runtime, config: Config) -> None:
    box = runtime.create("c", config)
    box.start()
    with runtime.events(kinds=["exited"], timeout=5) as stream:
        runtime.context.executor.make_exit("c", 3)  # type: ignore[attr-defined]
        event = next(stream)
    assert (event.container_id, event.kind, event.to_state, event.exit_status) == ("c", "exited", "stopped", 3)
    assert event.detail == {"exit_status": 3, "signal": None, "oom_killed": False}
    assert box.wait(1) == 3
    assert [e.kind for e in runtime.events(0, ids=["c"], timeout=0)].count("exited") == 1


def test_a_blocked_stream_wakes_on_another_threads_commit(runtime: Runtime, config: Config) -> None:
    stream = runtime.events(timeout=30)

    def later() -> None:
        time.sleep(0.3)
        runtime.create("late", config)

    threading.Thread(target=later).start()
    started = time.monotonic()
    event = next(stream)
    assert event.container_id == "late"
    assert time.monotonic() - started < 25, "woke by its timeout, not by the bell"
    stream.close()


def test_it_does_not_poll_the_store_while_idle(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = Repository.events_after

    def counted(self: Repository, seq: int, **kwargs: object) -> object:
        calls.append(seq)
        return real(self, seq, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Repository, "events_after", counted)
    assert list(runtime.events(timeout=1.0)) == []
    assert len(calls) == 1  # one query, then a second of sleeping on the watch


def test_close_from_another_thread_ends_a_blocked_iteration(runtime: Runtime) -> None:
    stream = runtime.events()
    threading.Timer(0.2, stream.close).start()
    assert list(stream) == []
    assert stream.closed


def test_another_process_on_the_same_root_is_seen(
    tmp_path: Path, runtime: Runtime, config: Config, kernel_dir: Path, boot_id_file: Path
) -> None:
    stream = runtime.events(timeout=60)
    script = (
        "import sys; from pathlib import Path; from tests.unit.conftest import make_runtime, simple_config\n"
        "rt = make_runtime(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))\n"
        "box = rt.create('other', simple_config(Path(sys.argv[1])))\n"
        "box.start(); rt.context.executor.make_exit('other', 5); rt.close()\n"
    )
    subprocess.run([sys.executable, "-c", script, str(tmp_path), str(kernel_dir), str(boot_id_file)], check=True, cwd=REPO)
    got = [next(stream) for _ in range(4)]
    stream.close()
    assert [(e.container_id, e.kind) for e in got] == [
        ("other", "create"), ("other", "create"), ("other", "start"), ("other", "exited")
    ]
    assert got[-1].exit_status == 5


def test_events_are_values() -> None:
    event = Event(1, "c", "exited", "running", "stopped", None, {"exit_status": 0}, 1)  # type: ignore[arg-type]
    assert event.exit_status == 0
    assert Event(2, "c", "start", "created", "running", None, {}, 1).exit_status is None  # type: ignore[arg-type]
    json.dumps(dict(event.detail))


@pytest.mark.asyncio
async def test_async_events_and_calls(tmp_path: Path, kernel_dir: Path, boot_id_file: Path, config: Config) -> None:
    rt = AsyncRuntime(make_runtime(tmp_path, kernel_dir, boot_id_file))
    try:
        async with rt.events(kinds=["start", "exited"]) as stream:
            box = await rt.create("c", config)
            await box.start()
            first = await asyncio.wait_for(stream.__anext__(), 10)
            assert (first.container_id, first.kind) == ("c", "start")
            waiter = asyncio.ensure_future(box.wait(10))
            await asyncio.sleep(0.1)
            assert not waiter.done()
            await rt.call(rt.sync.context.executor.make_exit, "c", 7)  # type: ignore[attr-defined]
            second = await asyncio.wait_for(stream.__anext__(), 10)
            assert (second.kind, second.exit_status) == ("exited", 7)
            assert await waiter == 7
            assert stream.position == second.seq
        await box.destroy()
        assert [b.id for b in await rt.list()] == []
    finally:
        await rt.close()


@pytest.mark.asyncio
async def test_async_stream_close_ends_a_waiting_iteration(tmp_path: Path, kernel_dir: Path, boot_id_file: Path) -> None:
    rt = AsyncRuntime(make_runtime(tmp_path, kernel_dir, boot_id_file))
    try:
        stream = rt.events()
        asyncio.get_running_loop().call_later(0.2, stream.close)
        assert [e async for e in stream] == []
    finally:
        await rt.close()


@pytest.mark.asyncio
async def test_async_stream_closed_while_its_fetch_runs_ends_the_iteration(
    tmp_path: Path, kernel_dir: Path, boot_id_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """close() while the iteration's query runs in a thread (no waiter yet): the iteration ends
    instead of then waiting on a bell nobody will ring (CI hung here once)."""
    from corral.statemachine.events_stream import EventStream

    fetch = EventStream.fetch

    def slow_fetch(self: EventStream) -> object:
        time.sleep(0.3)
        return fetch(self)

    monkeypatch.setattr(EventStream, "fetch", slow_fetch)
    rt = AsyncRuntime(make_runtime(tmp_path, kernel_dir, boot_id_file))
    try:
        stream = rt.events()
        asyncio.get_running_loop().call_later(0.1, stream.close)
        assert await asyncio.wait_for(_drain(stream), 5) == []
    finally:
        await rt.close()


async def _drain(stream: object) -> list[Event]:
    return [e async for e in stream]  # type: ignore[attr-defined]


def test_an_oom_kill_the_monitor_journalled_is_not_journalled_again(runtime: Runtime, config: Config) -> None:
    """Container.oom_events() and the monitor both see the cgroup's count: one row per kill."""
    from corral.statemachine.events_stream import monitor_recorder
    from corral.store import observed

    box = runtime.create("c", config)
    box.start()
    recorder = monitor_recorder(runtime.context, box.record)
    assert observed.oom(**recorder.arguments, init_pid=box.record.init_pid, count=1)  # type: ignore[arg-type]

    from corral.types import OOMEvent

    runtime.context.executor.oom_events = lambda facts, stop=None: iter(  # type: ignore[method-assign]
        [OOMEvent("c", 1), OOMEvent("c", 2)]
    )
    assert [e.count for e in box.oom_events()] == [1, 2]
    assert [e.detail for e in box.history() if e.event == "oom"] == [{"oom_kills": 1}, {"oom_kills": 2}]
