"""A reader's stale record never reaches a writer's transition (issue 10, races).

A reader that loaded a record just before a writer committed a newer one, and
stores it on the shared Container after the writer reloaded, must not make the
writer decide on the old version (a spurious ConcurrentModification, or worse
a decision on a state that is no longer true). The interleaving is forced
deterministically: the writer's kernel check (`alive`, called between its
reload and its decision) waits until a reader thread has read the old version.
"""

from __future__ import annotations

import threading
from pathlib import Path

from corral import Runtime, State
from corral.executor.interface import ContainerFacts
from corral.store.repository import ContainerRecord
from tests.fakes import FakeExecutor
from tests.unit.conftest import simple_config


class _StaleReader:
    """Arms the interleaving: the next `alive()` of the writer lets a reader store `stale`."""

    def __init__(self, runtime: Runtime, cid: str) -> None:
        self.runtime = runtime
        self.cid = cid
        self.stale: ContainerRecord | None = None
        self.fired = False

    def during_alive(self) -> None:
        if self.stale is None or self.fired:
            return
        self.fired = True
        store = self.runtime.context.store
        real_get = store.get
        stale = self.stale

        def stale_get(key: int) -> ContainerRecord:  # the reader's read raced the writer's commit
            return stale if threading.current_thread() is reader else real_get(key)

        store.get = stale_get  # type: ignore[method-assign]
        box = self.runtime.load(self.cid)
        reader = threading.Thread(target=lambda: box.record)  # an unlocked read of the record
        try:
            reader.start()
            reader.join(5)
        finally:
            del store.get


class _HookedExecutor(FakeExecutor):
    hook: _StaleReader | None = None

    def alive(self, facts: ContainerFacts) -> bool:
        if self.hook is not None:
            self.hook.during_alive()
        return super().alive(facts)


def test_a_stale_read_does_not_fail_the_next_writer(tmp_path: Path, boot_id_file: Path) -> None:
    executor = _HookedExecutor(tmp_path / "kernel")
    runtime = Runtime(tmp_path / "root", executor, run_root=tmp_path / "run", boot_id_file=boot_id_file)
    try:
        box = runtime.create("c", simple_config(tmp_path))
        box.start()
        hook = executor.hook = _StaleReader(runtime, "c")
        hook.stale = box.record  # running, at version v
        box.pause()  # the hook stays unarmed until the writer's next firing
        hook.fired = False
        box.resume()  # reloads paused (v+2); meanwhile a reader stores the running record (v)
        assert hook.fired
        assert box.state is State.RUNNING
        assert executor.kernel("c")["frozen"] is False
        assert box.record.pending_event is None
        # the stale record never replaces a newer one, even outside a transition
        hook.stale, hook.fired = box.record, False
        box.pause()
        assert box.recorded_state is State.PAUSED
    finally:
        runtime.close()


def test_a_stale_record_is_never_kept_over_a_newer_one(tmp_path: Path, boot_id_file: Path) -> None:
    runtime = Runtime(
        tmp_path / "root", FakeExecutor(tmp_path / "kernel"), run_root=tmp_path / "run", boot_id_file=boot_id_file
    )
    try:
        box = runtime.create("c", simple_config(tmp_path))
        old = box.record
        box.start()
        runtime._recipe(old).adopt(old)  # what a reader that loaded before the start would keep
        assert box.recorded_state is State.RUNNING
    finally:
        runtime.close()
