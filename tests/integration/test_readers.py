"""Readers never make a writer fail, and the record never disagrees with the freezer.

One thread pauses and resumes a real container as fast as it can while two
threads of the same Runtime and two other processes only read its state. Reading
must not raise (in particular no ConcurrentModification), every pause/resume
must succeed, and at every quiescent point (after each of the writer's calls,
and at the end) the record and the kernel's freezer must agree.
CORRAL_RACE_SECONDS sets the length (20 s by default).
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
import traceback
from pathlib import Path
from typing import Any

import pytest

from corral import Runtime, State
from tests.integration.conftest import make_config
from tests.integration.test_recovery import assert_record_matches_kernel, freezer_state

pytestmark = pytest.mark.root

SECONDS = float(os.environ.get("CORRAL_RACE_SECONDS", "20"))
READER_THREADS = 2
READER_PROCESSES = 2


def _read_until(rt: Runtime, cid: str, deadline: float) -> tuple[int, list[str]]:
    reads, errors = 0, []
    while time.monotonic() < deadline:
        try:
            state = rt.load(cid).state
            assert state in (State.RUNNING, State.PAUSED), state
            reads += 1
        except Exception:  # noqa: BLE001 - the point of the test
            errors.append(traceback.format_exc())
    return reads, errors


def _reader_process(root: str, run_root: str, cid: str, deadline: float, queue: Any) -> None:
    rt = Runtime(root, run_root=run_root, recover=False)
    try:
        queue.put(_read_until(rt, cid, deadline))
    finally:
        rt.close()


def _agree(box: Any, expected: State) -> str | None:
    record = box.record
    frozen = freezer_state(record)
    if record.state != expected.value or record.pending_event is not None:
        return f"record {record.state} (pending {record.pending_event}) after the writer's {expected.value}"
    if (frozen == "FROZEN") != (expected is State.PAUSED):
        return f"freezer {frozen} while the record says {record.state}"
    return None


def test_readers_never_fail_a_writer(runtime: Runtime, bundle: Path) -> None:
    cid = "readers"
    box = runtime.create(cid, make_config(bundle, cid, "/bin/sleep", "1000"))
    box.start()
    deadline = time.monotonic() + SECONDS

    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [
        ctx.Process(target=_reader_process, args=(str(runtime.root), str(runtime.run_root), cid, deadline, queue))
        for _ in range(READER_PROCESSES)
    ]
    for p in procs:
        p.start()

    thread_results: list[tuple[int, list[str]]] = []
    threads = [
        threading.Thread(target=lambda: thread_results.append(_read_until(runtime, cid, deadline)))
        for _ in range(READER_THREADS)
    ]
    for t in threads:
        t.start()

    writes, write_errors, disagreements = 0, [], []
    writer = runtime.load(cid)
    while time.monotonic() < deadline:
        for call, expected in ((writer.pause, State.PAUSED), (writer.resume, State.RUNNING)):
            try:
                call()
                writes += 1
            except Exception:  # noqa: BLE001 - the point of the test
                write_errors.append(traceback.format_exc())
                break
            problem = _agree(writer, expected)  # quiescent: only this thread changes the state
            if problem:
                disagreements.append(problem)

    for t in threads:
        t.join(60)
    process_results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(30)
        assert p.exitcode == 0

    read_errors = [e for _, errs in thread_results + process_results for e in errs]
    reads = [n for n, _ in thread_results + process_results]
    print(f"writes {writes}, reads per reader {reads}")
    assert write_errors == [], f"{len(write_errors)} failed writes; first: {write_errors[0]}"
    assert read_errors == [], f"{len(read_errors)} failed reads; first: {read_errors[0]}"
    assert disagreements == [], disagreements[:5]
    assert writes > 20 and all(n > 20 for n in reads), (writes, reads)  # it really raced
    assert assert_record_matches_kernel(runtime.load(cid)) in (State.RUNNING, State.PAUSED)
