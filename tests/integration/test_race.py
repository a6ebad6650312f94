"""4 controller processes x 8 real containers, random transitions for 20 seconds.

Every call must return or raise a CorralError; no update may be lost (each
successful call is exactly one journal row, each journal is a walk of the
lifecycle table, each record agrees with the kernel); no deadlock (bounded).
CORRAL_RACE_SECONDS shortens or lengthens the run.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from corral import Config, Process, Runtime, State
from corral.errors import CorralError
from tests.integration.conftest import make_config
from tests.checks import assert_journal_is_a_walk
from tests.integration.test_recovery import assert_record_matches_kernel

pytestmark = pytest.mark.root

WORKERS = 4
CONTAINERS = 8
SECONDS = float(os.environ.get("CORRAL_RACE_SECONDS", "20"))
OPS = ("create", "start", "pause", "resume", "exec", "signal", "kill", "destroy", "destroy-force", "wait", "state")
JOURNALLED = {"create": "create", "start": "start", "pause": "pause", "resume": "resume", "exec": "exec",
              "signal": "signal", "kill": "signal", "destroy": "destroy", "destroy-force": "destroy"}


def _one(rt: Runtime, rng: random.Random, configs: dict[str, str], cid: str, op: str) -> None:
    if op == "create":
        rt.create(cid, Config.from_json(configs[cid]))
        return
    box = rt.load(cid)
    if op == "exec":
        box.exec(Process(args=("/bin/true",), env=("PATH=/bin",))).wait(2)
    elif op == "signal":
        box.signal(signal.SIGUSR1)
    elif op == "kill":
        box.signal(signal.SIGKILL)
    elif op == "destroy":
        box.destroy()
    elif op == "destroy-force":
        box.destroy(force=True)
    elif op == "wait":
        box.wait(0.05)
    elif op == "state":
        _ = box.state
    else:
        getattr(box, op)()


def _worker(root: str, run_root: str, configs: dict[str, str], seed: int, deadline: float, queue: Any) -> None:
    rng = random.Random(seed)
    ok: Counter[str] = Counter()
    refused: Counter[str] = Counter()
    unexpected: list[str] = []
    rt = Runtime(root, run_root=run_root, recover=False)
    try:
        while time.monotonic() < deadline:
            cid = f"race-{rng.randrange(CONTAINERS)}"
            op = rng.choices(OPS, weights=(3, 3, 2, 2, 2, 1, 1, 1, 1, 1, 1))[0]
            try:
                _one(rt, rng, configs, cid, op)
                ok[op] += 1
            except CorralError as exc:
                refused[op] += 1
                if op == "exec" and "still running" in str(exc):
                    ok[op] += 1  # the exec happened; only its wait timed out (paused meanwhile)
            except Exception:  # noqa: BLE001 - the point of the test
                unexpected.append(f"{op} {cid}: {traceback.format_exc()}")
    finally:
        rt.close()
        queue.put((dict(ok), dict(refused), unexpected))


def _exists(runtime: Runtime, cid: str) -> bool:
    try:
        runtime.load(cid)
        return True
    except CorralError:
        return False


def test_random_transitions_from_four_processes(runtime: Runtime, bundle: Path) -> None:
    configs = {
        f"race-{i}": make_config(bundle, f"race-{i}", "/bin/sleep", "1000").to_json() for i in range(CONTAINERS)
    }
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    deadline = time.monotonic() + SECONDS
    procs = [
        ctx.Process(target=_worker, args=(str(runtime.root), str(runtime.run_root), configs, seed, deadline, queue))
        for seed in range(WORKERS)
    ]
    for p in procs:
        p.start()
    results = [queue.get(timeout=SECONDS + 120) for _ in procs]  # the bound: no deadlock
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    unexpected = [u for _, _, us in results for u in us]
    assert unexpected == [], unexpected[0]
    ok: Counter[str] = Counter()
    for counts, _, _ in results:
        ok.update(counts)
    print("successful calls:", dict(ok))
    assert sum(ok.values()) > 50, ok  # it really raced

    journalled: Counter[str] = Counter()
    boxes = runtime.list(include_destroyed=True)
    latest = {runtime.load(f"race-{i}").record.key for i in range(CONTAINERS) if _exists(runtime, f"race-{i}")}
    for box in boxes:
        if box.record.key in latest:  # an earlier incarnation shares its cgroup paths with the latest
            assert_record_matches_kernel(box)
        else:
            assert box.state is State.DESTROYED
            assert_journal_is_a_walk(box, State.DESTROYED)
        for entry in box.history():
            if entry.from_state is not None and entry.event != "exited" and entry.event != "oom":
                if not (entry.event == "destroy" and entry.detail.get("reason")):
                    journalled[entry.event] += 1
    expected: Counter[str] = Counter()
    for op, n in ok.items():
        if op in JOURNALLED:
            expected[JOURNALLED[op]] += n
    assert journalled == expected, (journalled, expected, ok)
    for box in boxes:
        if box.state is not State.DESTROYED:
            box.destroy(force=True)
