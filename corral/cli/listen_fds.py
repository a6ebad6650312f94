"""systemd socket activation through `create` and `run`, as runc's utils_linux.go does it.

A service manager that starts the runtime with LISTEN_FDS=N (and LISTEN_PID its
PID) has put N listening sockets at fds 3..3+N-1. runc reads them with
go-systemd's `activation.Files`, which takes them only when LISTEN_PID is the
runtime's own PID, passes them to the container's process as its 3..3+N-1 (the
`--preserve-fds` ones follow), and sets LISTEN_FDS=N and LISTEN_PID=1 in its
environment: the container's process is PID 1 of its namespace. `exec` passes
none of them (runc's exec does not read LISTEN_FDS).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from corral.records import replace  # not dataclasses': create imports no `inspect`

if TYPE_CHECKING:  # pragma: no cover
    from corral.config import Process

NAMES = ("LISTEN_FDS", "LISTEN_PID")


def _number(text: str) -> int | None:
    return int(text) if text.isascii() and text.isdigit() else None


def listen_fds(environ: Mapping[str, str] | None = None, pid: int | None = None) -> int:
    """How many fds from 3 are this process's to pass on for socket activation: LISTEN_FDS when
    LISTEN_PID is this process (`pid`), else 0 (the variables were meant for another process)."""
    environ = os.environ if environ is None else environ
    count = _number(environ.get("LISTEN_FDS", ""))
    listen_pid = _number(environ.get("LISTEN_PID", ""))
    if count is None or listen_pid is None or listen_pid != (os.getpid() if pid is None else pid):
        return 0
    return count


def announce(process: Process, count: int) -> Process:
    """`process` with LISTEN_FDS=count and LISTEN_PID=1 (any the config had replaced: runc appends
    them, and a program reading the first of two would see the config's)."""
    env = tuple(e for e in process.env if e.split("=", 1)[0] not in NAMES)
    return replace(process, env=(*env, f"LISTEN_FDS={count}", "LISTEN_PID=1"))
