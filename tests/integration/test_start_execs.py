"""`start()` returns only once the user's process runs (issue 10: the flaky resume.intent).

It used to return when the init had written its exec fifo, before its execve:
a pause right after could freeze the init under its old name, and recovery's
check ("created" iff the init still waits as corral-init) then disagreed.

To make that window wide every time, the test traces the waiting init
(ptrace, syscall stops) and holds it at the entry of its execve for a while:
`start()` must not return before the hold ends and the execve is done.
"""

from __future__ import annotations

import ctypes
import os
import platform
import threading
import time
from pathlib import Path

import pytest

from corral import Runtime
from corral.executor.init import INIT_COMM
from tests.integration.conftest import make_config

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(platform.machine() != "x86_64", reason="reads the x86_64 syscall number"),
]

PTRACE_SYSCALL, PTRACE_DETACH, PTRACE_PEEKUSER = 24, 17, 3
PTRACE_SEIZE, PTRACE_INTERRUPT = 0x4206, 0x4207
PTRACE_O_TRACESYSGOOD = 1
ORIG_RAX = 15 * 8  # offset of orig_rax in struct user_regs_struct
SYS_EXECVE = 59
WALL = 0x40000000
HOLD = 1.0

_libc = ctypes.CDLL(None, use_errno=True)
_libc.ptrace.restype = ctypes.c_long
_libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]


def _ptrace(request: int, pid: int, addr: int = 0, data: int = 0) -> int:
    ctypes.set_errno(0)
    result = _libc.ptrace(request, pid, addr, data)
    if result == -1 and ctypes.get_errno():
        raise OSError(ctypes.get_errno(), f"ptrace({request}, {pid}): {os.strerror(ctypes.get_errno())}")
    return int(result)


class ExecHold(threading.Thread):
    """Traces `pid` and keeps it stopped at the entry of execve for HOLD seconds."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.attached = threading.Event()
        self.released_at: float | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            _ptrace(PTRACE_SEIZE, self.pid, 0, PTRACE_O_TRACESYSGOOD)
            _ptrace(PTRACE_INTERRUPT, self.pid)
            os.waitpid(self.pid, WALL)
            self.attached.set()
            while True:
                _ptrace(PTRACE_SYSCALL, self.pid)
                _, status = os.waitpid(self.pid, WALL)
                if not os.WIFSTOPPED(status):
                    return
                if os.WSTOPSIG(status) == (0x80 | 5) and _ptrace(PTRACE_PEEKUSER, self.pid, ORIG_RAX) == SYS_EXECVE:
                    time.sleep(HOLD)
                    self.released_at = time.monotonic()
                    _ptrace(PTRACE_DETACH, self.pid)
                    return
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc
            self.attached.set()


def _comm(pid: int) -> str:
    return Path(f"/proc/{pid}/comm").read_text().strip()


def _start_held(box) -> tuple[str, ExecHold]:
    pid = box.record.init_pid
    hold = ExecHold(pid)
    hold.start()
    assert hold.attached.wait(10) and hold.error is None, hold.error
    box.start()
    name = _comm(pid)  # at once, no wait
    hold.join(30)
    assert hold.error is None, hold.error
    assert hold.released_at is not None, "never reached execve"
    return name, hold


def test_start_returns_after_the_users_process_is_exec_d(runtime: Runtime, bundle: Path) -> None:
    box = runtime.create("execd", make_config(bundle, "execd", "/bin/sleep", "1000"))
    name, _ = _start_held(box)
    assert name != INIT_COMM
    assert name == "sleep"
