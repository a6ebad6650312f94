"""`subprocess.run` without its polling wait: what the command-line benchmarks time a call with.

`subprocess.run(..., timeout=T)` waits for a child that has no pipes by polling
`waitpid(WNOHANG)` with sleeps that double from 0.5 ms up to 50 ms, so a call is
measured as the next poll after it ended: at 15.5, 31.5, 63.5, 113.5, 163.5 ms...
A 10 ms runc call was timed at 16 ms and a 70 ms corral call at 118 ms. Here the
parent blocks in `waitpid` (and `communicate` without a timeout), and the timeout
is a timer that kills the child, so the time is the call's own.
"""

from __future__ import annotations

import subprocess
import threading
from typing import IO, Any


def run(
    argv: list[str],
    *,
    timeout: float,
    stdin: int | IO[Any] | None = None,
    stdout: int | IO[Any] | None = None,
    stderr: int | IO[Any] | None = None,
    **popen: Any,
) -> subprocess.CompletedProcess[bytes]:
    """As subprocess.run(argv, stdin=, stdout=, stderr=, timeout=) with bytes output; TimeoutExpired
    once the child was killed for outliving `timeout`."""
    expired = threading.Event()
    with subprocess.Popen(argv, stdin=stdin, stdout=stdout, stderr=stderr, **popen) as process:

        def kill() -> None:
            expired.set()
            process.kill()

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            out, err = process.communicate()  # no timeout: a blocking waitpid
        finally:
            timer.cancel()
    if expired.is_set():
        raise subprocess.TimeoutExpired(argv, timeout, out, err)
    return subprocess.CompletedProcess(argv, process.returncode, out, err)
