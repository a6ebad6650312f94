"""/proc/<pid>/stat read with `os` alone: a process's start time, its state, whether it still lives.

proc.py re-exports these with the ProcessIdentity helpers; they live apart so that
a one-shot command-line call (corral/cli/quickread.py) can check an init
without importing corral.types (whose dataclasses cost it more than the check).
"""

from __future__ import annotations


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


def alive_pid(pid: int, start: int) -> bool:
    """`alive` of a PID and a start time as a record holds them."""
    fields = _stat_fields(pid)
    if not fields:
        return False
    return int(fields[19]) == start and fields[0] not in ("Z", "X")
