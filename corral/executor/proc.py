"""What /proc says about a process: its identity, liveness and namespaces.

A PID is reused; a PID with its start time is not (within one boot). Every
check and every signal goes through these helpers so that corral never acts on
a process that merely inherited a recorded PID.
"""

from __future__ import annotations

import os

from corral.types import ProcessIdentity


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    return raw[raw.rindex(b")") + 2 :].decode().split()


def start_time(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat (clock ticks after boot), or None if there is no such process."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None


def process_state(pid: int) -> str | None:
    """Field 3 of /proc/<pid>/stat (R, S, D, T, t, Z, X, ...), or None."""
    fields = _stat_fields(pid)
    return fields[0] if fields else None


def identity(pid: int) -> ProcessIdentity | None:
    st = start_time(pid)
    return ProcessIdentity(pid, st) if st is not None else None


def alive(process: ProcessIdentity) -> bool:
    """Same PID, same start time, and not a zombie (a zombie has finished; runc agrees)."""
    return alive_pid(process.pid, process.start_time)


def alive_pid(pid: int, start: int) -> bool:
    """`alive` of a PID and a start time as a record holds them."""
    fields = _stat_fields(pid)
    if not fields:
        return False
    return int(fields[19]) == start and fields[0] not in ("Z", "X")


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
