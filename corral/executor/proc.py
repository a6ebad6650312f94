"""What /proc says about a process: its identity, liveness and namespaces.

A PID is reused; a PID with its start time is not (within one boot). Every
check and every signal goes through these helpers so that corral never acts on
a process that merely inherited a recorded PID.
"""

from __future__ import annotations

import os

from corral.executor.procstat import alive_pid, process_state, start_time
from corral.identity import ProcessIdentity

__all__ = ["ProcessIdentity", "alive", "alive_pid", "identity", "namespace_inode", "open_pidfd", "process_state", "start_time"]


def identity(pid: int) -> ProcessIdentity | None:
    st = start_time(pid)
    return ProcessIdentity(pid, st) if st is not None else None


def alive(process: ProcessIdentity) -> bool:
    """Same PID, same start time, and not a zombie (a zombie has finished; runc agrees)."""
    return alive_pid(process.pid, process.start_time)


def open_pidfd(process: ProcessIdentity) -> int | None:
    """A pidfd for `process`, or None if it is gone or its PID now names another process.

    The start time is checked after the pidfd is open: from then on the pidfd
    keeps naming the same process, so the check cannot go stale (crun does the same).
    """
    try:
        fd = os.pidfd_open(process.pid)
    except ProcessLookupError:
        return None
    if start_time(process.pid) != process.start_time:
        os.close(fd)
        return None
    return fd


def namespace_inode(pid: int, name: str) -> int:
    return os.stat(f"/proc/{pid}/ns/{name}").st_ino
