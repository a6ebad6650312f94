"""Running a process in a container and collecting its output (`Container.exec_run()`).

The common case of exec, as docker-py's `exec_run`: pipes for stdout and stderr,
read here until the process exits, then its status. Output is held in memory:
for a process that writes a lot, give `exec()` a file instead.
"""

from __future__ import annotations

import os
import selectors
import time
from collections.abc import Callable

from corral.errors import WaitTimeout
from corral.statemachine.process import ExecProcess
from corral.types import ExecResult, Stdio, StdioTarget

#: After the process exited, how long to wait for a pipe that something it left behind holds open.
LINGER = 0.2


def run(
    start: Callable[[Stdio], ExecProcess],
    stdin: StdioTarget,
    timeout: float | None,
    what: str,
) -> ExecResult:
    """Start a process through `start` with pipes for stdout and stderr; collect both and the status."""
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    try:
        process = start(Stdio(stdin=stdin, stdout=out_w, stderr=err_w))
    except BaseException:
        for fd in (out_r, err_r):
            os.close(fd)
        raise
    finally:
        os.close(out_w)  # the process has its own copies: EOF comes when it (and its children) close them
        os.close(err_w)
    chunks: dict[int, list[bytes]] = {out_r: [], err_r: []}
    deadline = None if timeout is None else time.monotonic() + timeout
    exited_at: float | None = None
    with selectors.DefaultSelector() as selector:
        for fd in chunks:
            selector.register(fd, selectors.EVENT_READ)
        try:
            while selector.get_map():
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    raise WaitTimeout(what, timeout or 0)
                if exited_at is not None and now - exited_at > LINGER:
                    break  # a background child holds the pipes: the process itself is done
                ready = selector.select(0.05)
                for key, _ in ready:
                    fd = int(key.fd)
                    data = os.read(fd, 65536)
                    if data:
                        chunks[fd].append(data)
                    else:
                        selector.unregister(fd)
                if not ready and exited_at is None and _exited(process):
                    exited_at = now
        finally:
            for fd in chunks:
                os.close(fd)
    remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
    status = process.wait(remaining)
    return ExecResult(status, b"".join(chunks[out_r]), b"".join(chunks[err_r]))


def _exited(process: ExecProcess) -> bool:
    try:
        process.wait(0.0)
    except WaitTimeout:
        return False
    return True
