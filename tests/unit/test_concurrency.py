"""Several processes on one container at once: one wins, the others are told; nothing is lost.

Real processes (multiprocessing, spawn start method: nothing is shared but the
root directory and the fake kernel's directory), as separate controllers would be.
"""

from __future__ import annotations

import multiprocessing
import random
from pathlib import Path
from typing import Any

from corral import Process, Runtime, State
from corral.errors import ConcurrentModification, CorralError, InvalidTransition
from tests.checks import assert_journal_is_a_walk
from tests.fakes import FakeExecutor
from tests.unit.conftest import simple_config

CTX = multiprocessing.get_context("spawn")


def _runtime(base: str) -> Runtime:
    base_path = Path(base)
    return Runtime(
        base_path / "root",
        FakeExecutor(base_path / "kernel"),
        run_root=base_path / "run",
        boot_id_file=base_path / "boot_id",
        recover=False,
    )


def _do(runtime: Runtime, cid: str, event: str) -> None:
    box = runtime.load(cid)
    if event == "exec":
        box.exec(Process(args=("true",)))
    elif event == "signal":
        box.signal(1)
    elif event == "destroy":
        box.destroy(force=True)
    else:
        getattr(box, event)()


def _race(base: str, cid: str, event: str, barrier: Any, results: Any) -> None:
    runtime = _runtime(base)
    try:
        barrier.wait(30)
        try:
            _do(runtime, cid, event)
            results.put(("ok", event))
        except (InvalidTransition, ConcurrentModification) as exc:
            results.put((type(exc).__name__, event))
    finally:
        runtime.close()


def _setup(tmp_path: Path) -> Runtime:
    (tmp_path / "boot_id").write_text("boot-1\n")
    return _runtime(str(tmp_path))


def _run_pair(tmp_path: Path, cid: str, events: tuple[str, str]) -> list[tuple[str, str]]:
    barrier = CTX.Barrier(len(events))
    results = CTX.Queue()
    procs = [CTX.Process(target=_race, args=(str(tmp_path), cid, e, barrier, results)) for e in events]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    return sorted(results.get(timeout=5) for _ in procs)


def test_two_processes_start_the_same_container(tmp_path: Path) -> None:
    runtime = _setup(tmp_path)
    runtime.create("c", simple_config(tmp_path))
    outcome = _run_pair(tmp_path, "c", ("start", "start"))
    assert outcome == [("InvalidTransition", "start"), ("ok", "start")]
    box = runtime.load("c")
    assert box.state is State.RUNNING
    assert [e.event for e in box.history()].count("start") == 1
    assert_journal_is_a_walk(box)
    runtime.close()


def test_pause_against_destroy(tmp_path: Path) -> None:
    runtime = _setup(tmp_path)
    runtime.create("c", simple_config(tmp_path)).start()
    outcome = _run_pair(tmp_path, "c", ("pause", "destroy"))
    box = runtime.load("c")
    assert box.state is State.DESTROYED
    winners = [event for result, event in outcome if result == "ok"]
    if winners == ["destroy"]:  # destroy first: pause found it destroyed
        assert ("InvalidTransition", "pause") in outcome
    else:  # pause first, then destroy (forced) of the paused container: both happened
        assert sorted(winners) == ["destroy", "pause"]
    assert_journal_is_a_walk(box)
    runtime.close()


def _stale_writer(base: str, key: int, version: int, state: str, barrier: Any, results: Any) -> None:
    from corral.store.repository import Repository

    repo = Repository(Path(base) / "root")
    try:
        barrier.wait(30)
        try:
            repo.update(key, version, state=state, journal=("start", "created", state, {}))
            results.put("ok")
        except ConcurrentModification:
            results.put("ConcurrentModification")
    finally:
        repo.close()


def test_two_processes_writing_from_the_same_version(tmp_path: Path) -> None:
    """Below the lock: two writers decided on one version; the store lets exactly one through."""
    runtime = _setup(tmp_path)
    box = runtime.create("c", simple_config(tmp_path))
    record = box.record
    barrier = CTX.Barrier(2)
    results = CTX.Queue()
    procs = [
        CTX.Process(target=_stale_writer, args=(str(tmp_path), record.key, record.version, "running", barrier, results))
        for _ in range(2)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert sorted(results.get(timeout=5) for _ in procs) == ["ConcurrentModification", "ok"]
    assert box.record.version == record.version + 1
    assert [e.event for e in box.history()].count("start") == 1
    runtime.close()


def _stress(base: str, seed: int, count: int, results: Any) -> None:
    rng = random.Random(seed)
    runtime = _runtime(base)
    done = 0
    try:
        for _ in range(count):
            event = rng.choice(["start", "pause", "resume", "exec", "signal"])
            try:
                _do(runtime, "c", event)
                done += 1
            except CorralError:
                pass
    finally:
        runtime.close()
        results.put(done)


def test_many_processes_many_transitions_lose_nothing(tmp_path: Path) -> None:
    runtime = _setup(tmp_path)
    runtime.create("c", simple_config(tmp_path))
    results = CTX.Queue()
    procs = [CTX.Process(target=_stress, args=(str(tmp_path), seed, 40, results)) for seed in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    succeeded = sum(results.get(timeout=5) for _ in procs)
    box = runtime.load("c")
    journal = box.history()
    assert len(journal) == 2 + succeeded  # the two create rows, then one row per success
    assert_journal_is_a_walk(box)
    runtime.close()


def test_threads_of_one_controller_lose_nothing(tmp_path: Path) -> None:
    """Controllers call from many threads: the per-container lock serialises them too."""
    import threading

    runtime = _setup(tmp_path)
    runtime.create("c", simple_config(tmp_path))
    done: list[int] = []

    def work(seed: int) -> None:
        rng = random.Random(seed)
        count = 0
        for _ in range(40):
            try:
                _do(runtime, "c", rng.choice(["start", "pause", "resume", "exec", "signal"]))
                count += 1
            except CorralError:
                pass
        done.append(count)

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    box = runtime.load("c")
    assert len(box.history()) == 2 + sum(done)
    assert_journal_is_a_walk(box)
    runtime.close()
