"""The C waiter (corral-waiter) writes the exit file byte for byte as protocol.py does.

No root needed: a forked child execs the waiter after forking the process it is
to wait for, as the monitor does with the init.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from corral.executor import protocol, waiting
from corral.executor.protocol import Exited

pytestmark = pytest.mark.skipif(not os.access(waiting.WAITER, os.X_OK), reason="scripts/install builds the waiter")


def _run_waiter(tmp_path: Path, mode: str, child_exit: int | None, placeholder: bool) -> Path:
    """Fork W; W forks C (which exits with `child_exit`, or dies of SIGTERM for None) and execs the waiter."""
    path = tmp_path / "init.exit"
    if placeholder:
        protocol.create_exit_file(str(path))
    waiter = os.fork()
    if waiter == 0:  # pragma: no cover - the child process
        try:
            fd = protocol.open_exit_file(str(path)) if placeholder else None
            if fd is not None:
                protocol.hold_exit_file(fd)
                os.set_inheritable(fd, True)
            child = os.fork()
            if child == 0:
                if child_exit is None:
                    os.kill(os.getpid(), signal.SIGTERM)
                os._exit(child_exit or 0)
            number = str(-1 if fd is None else fd)
            if mode == "monitor":
                os.execv(waiting.WAITER, ["corral-mon:t", "monitor", str(child), number, str(path), "", "-1", "none", "0"])
            os.execv(waiting.WAITER, ["corral-keep:t", "keep", "999999999", number, str(path)])
        finally:
            os._exit(99)
    _, status = os.waitpid(waiter, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    return path


def _expected(tmp_path: Path, exited: Exited, placeholder: bool) -> bytes:
    path = tmp_path / "expected"
    if placeholder:
        protocol.create_exit_file(str(path))
        fd = os.open(path, os.O_WRONLY)
        try:
            protocol.overwrite_exit_file(fd, exited)
        finally:
            os.close(fd)
    else:
        protocol.write_exit_file(str(path), exited)
    return path.read_bytes()


@pytest.mark.parametrize("placeholder", [True, False])
@pytest.mark.parametrize(("child_exit", "exited"), [(7, Exited(7, None)), (None, Exited(128 + 15, 15))])
def test_the_monitor_waiter_writes_what_protocol_writes(
    tmp_path: Path, placeholder: bool, child_exit: int | None, exited: Exited
) -> None:
    path = _run_waiter(tmp_path, "monitor", child_exit, placeholder)
    assert path.read_bytes() == _expected(tmp_path, exited, placeholder)
    assert protocol.read_exit_record(str(path)) == exited


def test_the_keeper_waiter_writes_the_orphan_status_when_the_monitor_vanished(tmp_path: Path) -> None:
    """MONITOR_PID never reaped (not its child): the child it did reap counts as the orphaned init."""
    path = _run_waiter(tmp_path, "keep", 7, True)
    assert path.read_bytes() == _expected(tmp_path, Exited(7, None), True)
