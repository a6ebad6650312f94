"""The monitor and the keeper exec the C waiter once set up (issue 15: ≤ 1.2 MiB private each).

What they promise does not change (test_exit_status.py, test_recovery.py,
test_events.py guard it); here: that the processes the kernel sees really run the
waiter (a sealed memfd copy, as the helper runs: CVE-2019-5736), and that the
waiter writes the exit file and the journal's `exited` row the Python monitor wrote.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import dataclasses

import pytest

from corral import Runtime
from corral.config import MemoryResources, Resources
from corral.executor import proc, sealed, waiting
from tests.integration.conftest import make_config

pytestmark = pytest.mark.root

EXIT_7 = ("/bin/sh", "-c", "sleep 1; exit 7")
MiB = 1024 * 1024


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(p) for p in f.read().split()]


def _runs_the_waiter(pid: int) -> bool:
    """exe is the sealed copy and the program is the waiter's (its argv[1] is its mode)."""
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        argv = f.read().split(b"\0")  # empty while the process is in the middle of its exec
    sealed_copy = os.readlink(f"/proc/{pid}/exe").startswith(f"/memfd:{sealed.MEMFD_NAME}")
    return sealed_copy and len(argv) > 1 and argv[1] in (b"monitor", b"keep")


def _waiters(box) -> tuple[int, int]:
    """(keeper, monitor) once both exec'd the waiter: the keeper at once, the monitor once confirmed."""
    keeper = box.record.monitor_pid
    deadline = time.monotonic() + 10
    while True:
        (monitor,) = _children(keeper)
        if _runs_the_waiter(keeper) and _runs_the_waiter(monitor):
            return keeper, monitor
        assert time.monotonic() < deadline, (os.readlink(f"/proc/{keeper}/exe"), os.readlink(f"/proc/{monitor}/exe"))
        time.sleep(0.01)


def _exited_row(box) -> dict:
    deadline = time.monotonic() + 10
    while box.history()[-1].event != "exited":  # the waiter's recorder writes it, with nobody waiting
        assert time.monotonic() < deadline, box.history()
        time.sleep(0.02)
    return dict(box.history()[-1].detail)


@pytest.fixture(autouse=True)
def _built() -> None:
    if not waiting.available():
        pytest.fail(f"{waiting.WAITER} is not built (scripts/install builds it)")


def test_the_monitor_and_keeper_run_the_waiter_and_it_records_exit_7(runtime: Runtime, bundle: Path) -> None:
    box = runtime.create("cw", make_config(bundle, "cw", *EXIT_7))
    keeper, monitor = _waiters(box)
    with open(f"/proc/{box.record.init_pid}/stat") as f:
        assert int(f.read().rsplit(")", 1)[1].split()[1]) == monitor  # still the init's parent
    with open(f"/proc/{monitor}/comm") as f:
        assert f.read().strip() == "corral-mon:cw"
    with open(f"/proc/{keeper}/comm") as f:
        assert f.read().strip() == "corral-keep:cw"
    box.start()
    detail = _exited_row(box)  # before any wait(): the waiter's own row
    assert (detail["exit_status"], detail["signal"], detail["oom_killed"]) == (7, None, False), detail
    assert box.wait(10) == 7
    with open(box.record.run_dir + "/init.exit") as f:
        text = f.read()
    assert text.rstrip(" ") == '{"status": 7, "signal": null}' and len(text) == 512, text


def test_the_waiter_killed_the_keeper_records_the_status(runtime: Runtime, bundle: Path) -> None:
    box = runtime.create("cwk", make_config(bundle, "cwk", *EXIT_7))
    keeper, monitor = _waiters(box)
    box.start()
    identity = proc.identity(monitor)
    assert identity is not None
    os.kill(monitor, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while proc.alive(identity):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert box.wait(10) == 7  # the keeper (the waiter too) reaped the reparented init
    assert _exited_row(box)["exit_status"] == 7
    with open(box.record.run_dir + "/init.exit") as f:
        assert f.read().rstrip(" ") == '{"status": 7, "signal": null}'


def test_the_waiter_journals_an_oom_kill_while_the_init_lives(runtime: Runtime, bundle: Path) -> None:
    """A child of the init is OOM-killed: the waiter's recorder writes the `oom` row, nobody else asks."""
    config = dataclasses.replace(
        make_config(bundle, "cwo", "/bin/sh", "-c", "dd if=/dev/zero of=/dev/null bs=64M count=1; sleep 1000"),
        resources=Resources(memory=MemoryResources(limit=32 * MiB, swap=32 * MiB)),
    )
    box = runtime.create("cwo", config)
    _waiters(box)
    box.start()
    deadline = time.monotonic() + 10
    while box.history()[-1].event != "oom":  # history() only reads the journal
        assert time.monotonic() < deadline, box.history()
        time.sleep(0.02)
    assert dict(box.history()[-1].detail) == {"oom_kills": 1}
    box.destroy(force=True)


def test_an_oom_killed_init_waited_for_has_one_oom_row_then_one_exited_row(runtime: Runtime, bundle: Path) -> None:
    """The waiter writes both rows itself (waiter_store.c), before wait() returns: `oom` first, each once."""
    config = dataclasses.replace(
        make_config(bundle, "cwx", "/bin/dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"),
        resources=Resources(memory=MemoryResources(limit=32 * MiB, swap=32 * MiB)),
    )
    box = runtime.create("cwx", config)
    _waiters(box)
    box.start()
    assert box.wait(10) == 137
    rows = [(e.event, dict(e.detail)) for e in box.history() if e.event in ("oom", "exited")]
    assert rows == [
        ("oom", {"oom_kills": 1}),
        ("exited", {"exit_status": 137, "signal": signal.SIGKILL, "oom_killed": True}),
    ], rows


def test_waits_and_states_racing_the_waiter_record_each_exit_once(runtime: Runtime, bundle: Path) -> None:
    """The library (wait, state) and the waiter race to record the same exits: one `exited` row each, the
    same detail and version whoever wins."""
    boxes = [runtime.create(f"cwr{i}", make_config(bundle, f"cwr{i}", "/bin/sh", "-c", f"exit {i}")) for i in range(6)]
    for box in boxes:
        _waiters(box)
    for i, box in enumerate(boxes):
        box.start()
        if i % 2:
            assert box.wait(10) == i
        else:
            deadline = time.monotonic() + 10
            while box.state.value != "stopped":  # refresh() may record the exit before the waiter does
                assert time.monotonic() < deadline
    for i, box in enumerate(boxes):
        assert box.wait(10) == i
        rows = [dict(e.detail) for e in box.history() if e.event == "exited"]
        assert rows == [{"exit_status": i, "signal": None, "oom_killed": False}], rows
        history = box.history()
        assert [e.event for e in history][-1] == "exited"
