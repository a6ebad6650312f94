"""Run a function as an unprivileged user in a forked child, so that root can test permissions.

CI runs as root, and root reads and writes files whatever their mode: a test of
permissions must drop privileges, and must do it in a child so that pytest
keeps its own. The child reports the exception it raised (type name and
message) through a pipe and leaves with os._exit, running no cleanup of the
parent's.
"""

from __future__ import annotations

import os
import pickle
import shutil
import tempfile
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

NOBODY = 65534


def run_in_child(become: Callable[[], object], fn: Callable[[], object]) -> tuple[str, str] | None:
    """Call `fn` in a forked child after `become()` (which changes the child's ids); the (type,
    message) it raised, or None."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        result: tuple[str, str] | None = None
        try:
            os.close(read_end)
            become()
            fn()
        except BaseException as exc:  # noqa: BLE001 - everything is reported to the parent
            result = (type(exc).__name__, f"{exc}\n{traceback.format_exc()}")
        with os.fdopen(write_end, "wb") as out:
            pickle.dump(result, out)
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as inp:
        data = inp.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, f"child died: {status}"
    return pickle.loads(data)


def run_as(uid: int, fn: Callable[[], object]) -> tuple[str, str] | None:
    """Call `fn` as `uid` (gid too) in a forked child; the (type, message) it raised, or None."""

    def become() -> None:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)

    return run_in_child(become, fn)


@contextmanager
def dir_for(uid: int) -> Iterator[Path]:
    """A fresh directory that `uid` can reach and owns (pytest's tmp_path is root's, mode 0700)."""
    path = Path(tempfile.mkdtemp(prefix="corral-asuser-", dir="/tmp"))
    try:
        os.chown(path, uid, uid)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
