"""Tests written against mutants of statemachine/ that survived the unit suite
(tests/README.md, "Run of 2026-12-02, second session"); each names what it kills.

They run on the fake executor, without root.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from corral import Runtime, State
from corral.config import Config
from corral.statemachine.locks import Locks
from tests.fakes import FakeExecutor
from tests.unit.conftest import make_runtime


def _fake(runtime: Runtime) -> FakeExecutor:
    executor = runtime.context.executor
    assert isinstance(executor, FakeExecutor)
    return executor


def _other_holder(runtime: Runtime) -> Locks:
    """The locks of the same root as another process opens them (its own open file description)."""
    return Locks(Path(runtime.context.locks.path).parent)


def _finishes_while(hold: Locks, name: str, call: Callable[[], Any], timeout: float = 10) -> tuple[bool, list[Any]]:
    """Run `call` in a thread while `hold` holds `name`: whether it finished before `timeout`, and its result."""
    result: list[Any] = []
    with hold.hold(name):
        worker = threading.Thread(target=lambda: result.append(call()), daemon=True)
        worker.start()
        worker.join(timeout)
        finished = not worker.is_alive()
    worker.join(30)  # the lock is free now: a blocked call ends too
    return finished, result


# -- transition.py -----------------------------------------------------------------------


def test_the_state_of_a_live_container_takes_no_lock(runtime: Runtime, config: Config) -> None:
    """Kills Recipe.alive_as_recorded__mutmut_4/_5: an init alive as recorded (no intent, a recorded PID)
    judged not so, so `.state` queues behind a transition holding the container's lock."""
    box = runtime.create("c", config)
    box.start()
    finished, result = _finishes_while(_other_holder(runtime), "c", lambda: box.state, timeout=5)
    assert finished, "Container.state waited for the container's lock"
    assert result == [State.RUNNING]


def test_the_state_of_a_container_with_an_intent_waits_for_its_lock(runtime: Runtime, config: Config) -> None:
    """The other side of the above: an intent pending (a transition under way) is only judged under the lock."""
    box = runtime.create("c", config)
    record = box.record
    runtime.context.store.update(record.key, record.version, pending_event="start")
    finished, result = _finishes_while(_other_holder(runtime), "c", lambda: box.state, timeout=1)
    assert not finished
    assert result == [State.CREATED]


def test_a_container_s_config_is_parsed_once_per_text(runtime: Runtime, config: Config) -> None:
    """Kills Recipe.config_of__mutmut_2: the record's config parsed again on every read (`is not None`)."""
    from corral.config import PidsResources, Resources

    box = runtime.create("c", config)
    first = box.config
    assert box.config is first  # the same text: the parse is kept
    box.update(Resources(pids=PidsResources(10)))
    changed = box.config
    assert changed is not first and changed.resources is not None
    assert changed.resources.pids == PidsResources(10)
    assert box.config is changed


def test_recorded_state_is_the_last_read_not_the_store_s(
    runtime: Runtime, config: Config, tmp_path: Path, kernel_dir: Path, boot_id_file: Path
) -> None:
    """Kills Recipe.adopt__mutmut_4: a record adopted as None, so every use reads the store again
    (`recorded_state` would then show what another process wrote, not what this one last read)."""
    box = runtime.create("c", config)
    other = make_runtime(tmp_path, kernel_dir, boot_id_file)
    try:
        other.load("c").start()
    finally:
        other.close()
    assert box.recorded_state is State.CREATED  # as this process last read it
    assert box.state is State.RUNNING  # read again (and checked with the kernel)
    assert box.recorded_state is State.RUNNING
