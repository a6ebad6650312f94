"""Container.stop (docker's stop) and the container block, on real containers (issue 13, item 4)."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from corral import Runtime
from corral.executor import proc
from tests.integration.conftest import make_config

pytestmark = pytest.mark.root


def test_stop_sigterms_then_sigkills_a_real_container(runtime: Runtime, bundle: Path) -> None:
    # PID 1 of a PID namespace without a SIGTERM handler ignores SIGTERM: only the SIGKILL ends it
    stubborn = runtime.create("stubborn", make_config(bundle, "stubborn", "/bin/sh", "-c", "sleep 1000"))
    stubborn.start()
    assert stubborn.stop(timeout=0.3) == 128 + 9
    polite = runtime.create("polite", make_config(bundle, "polite", "/bin/sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.05; done"))
    polite.start()
    _wait_until_it_catches_sigterm(polite.pid)  # else stop() can come before `trap` ran: then only SIGKILL ends it
    assert polite.stop(timeout=10) == 0


def _wait_until_it_catches_sigterm(pid: int | None, timeout: float = 10.0) -> None:
    """Until the kernel says `pid` has a SIGTERM handler (SigCgt in /proc/<pid>/status)."""
    assert pid is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(f"/proc/{pid}/status") as status:
            caught = next(int(line.split()[1], 16) for line in status if line.startswith("SigCgt:"))
        if caught & (1 << (signal.SIGTERM - 1)):
            return
        time.sleep(0.01)
    raise AssertionError(f"{pid} installed no SIGTERM handler within {timeout} s")


def test_a_real_container_block_destroys_it(runtime: Runtime, bundle: Path) -> None:
    with runtime.create("blk", make_config(bundle, "blk", "/bin/sleep", "1000")) as box:
        box.start()
        init = proc.ProcessIdentity(box.record.init_pid, box.record.init_start_time)
    assert box.state.value == "destroyed"
    assert not proc.alive(init)
