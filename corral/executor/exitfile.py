"""The exit file of an init: how the init ended, written by its monitor, read by whoever records it.

Apart from the spawn protocol (protocol.py re-exports all of it, and `Exited` is
also the monitor's report of an exec'd process), so that what only reads an exit
file (`delete`, through teardown.py) imports no config and no request types.

The file is made by the controller at create, before the init exists: a placeholder
padded to EXIT_FILE_SIZE bytes. The monitor opens it while the init sets up
and, when it reaps the init, overwrites it in place through that fd, padded
to the same size: the status needs no new space, so a run root that has
filled up meanwhile does not lose it. What a placeholder still says when its
monitor is gone is how the reader knows the monitor died first.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Mapping
from typing import Any, NamedTuple  # not dataclasses: `delete` reads this file, and imports no `inspect`


class Exited(NamedTuple):
    """Monitor → controller (exec), and the exit file of an init: how the process ended.

    `status` None: it could not be observed."""

    status: int | None
    signal: int | None


#: The placeholder's size: any status record fits in it, padded with spaces.
EXIT_FILE_SIZE = 512


class ExitUnknown(NamedTuple):
    """No status in the exit file, and why."""

    reason: str
    pending: bool = False  # the placeholder: the monitor has written nothing (yet)


def _padded(record: Mapping[str, Any]) -> bytes:
    data = json.dumps(dict(record)).encode()
    if len(data) > EXIT_FILE_SIZE:  # only a reason can be long: cut it, keep the record valid
        reason = str(record.get("reason", ""))[: EXIT_FILE_SIZE // 2]
        data = json.dumps({**record, "reason": reason}).encode()[:EXIT_FILE_SIZE]
    return data.ljust(EXIT_FILE_SIZE, b" ")


def create_exit_file(path: str) -> None:
    """The controller's placeholder (OSError if it cannot be made: ENOSPC at create, not at exit)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        data = _padded({"status": None, "signal": None, "pending": True})
        if os.write(fd, data) != len(data):
            raise OSError(28, os.strerror(28), path)  # ENOSPC: a short write
    finally:
        os.close(fd)


def open_exit_file(path: str) -> int | None:
    """The monitor's fd on the placeholder, or None if there is none (then `write_exit_file`)."""
    try:
        return os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    except OSError:
        return None


def hold_exit_file(fd: int) -> None:
    """A writer's shared lock on the file, held until its process dies: "someone will still write"."""
    fcntl.flock(fd, fcntl.LOCK_SH)


def wait_for_writers(path: str, timeout: float) -> bool:
    """Wait until no process holds the exit file to write it (True), or `timeout` passes (False).

    The kernel drops a dead writer's lock, so a free lock on a placeholder means
    nobody is left who could still write the status.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return True
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    return False
                time.sleep(0.01)
    finally:
        os.close(fd)  # drops our lock with it


def overwrite_exit_file(fd: int, exited: Exited, reason: str | None = None) -> None:
    """The monitor's write, in place: no new space needed (OSError if it still fails)."""
    record: dict[str, Any] = {"status": exited.status, "signal": exited.signal}
    if reason is not None:
        record["reason"] = reason
    data = _padded(record)
    if os.pwrite(fd, data, 0) != len(data):
        raise OSError(28, os.strerror(28))


def write_exit_file(path: str, exited: Exited) -> None:
    """Written by the monitor as the init is reaped when it holds no placeholder.

    The file keeps the form it always had, ``{"status": .., "signal": ..}``, so
    that a controller reads what a monitor of an earlier corral wrote.
    """
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump({"status": exited.status, "signal": exited.signal}, f)
    os.rename(tmp, path)


def read_exit_record(path: str) -> Exited | ExitUnknown:
    """What the monitor wrote, or why there is no status to read."""
    try:
        with open(path) as f:
            record = json.load(f)
    except FileNotFoundError:
        run_dir = os.path.dirname(path)
        if not os.path.isdir(run_dir):
            return ExitUnknown(f"its run directory {run_dir} is gone (removed by someone else?), and the exit file with it")
        return ExitUnknown(f"the exit file {path} is missing (removed by someone else?)")
    except OSError as exc:
        return ExitUnknown(f"the exit file {path} cannot be read: {exc}")
    except ValueError as exc:
        return ExitUnknown(f"the exit file {path} is not valid JSON ({exc}): damaged?")
    if not isinstance(record, dict):
        return ExitUnknown(f"the exit file {path} holds no status record: damaged?")
    status, sig = record.get("status"), record.get("signal")
    if not all(v is None or (isinstance(v, int) and not isinstance(v, bool)) for v in (status, sig)):
        return ExitUnknown(f"the exit file {path} holds no status record: damaged?")
    if status is None:
        if record.get("pending"):
            return ExitUnknown("the monitor has not recorded the init's exit", pending=True)
        reason = record.get("reason")
        return ExitUnknown(reason if isinstance(reason, str) and reason else "the monitor could not observe it")
    return Exited(status, sig)


def read_exit_file(path: str) -> Exited | None:
    """What the monitor wrote, or None if there is nothing readable."""
    record = read_exit_record(path)
    return record if isinstance(record, Exited) else None
