"""The container log: the monitor's copy of a container's stdout and stderr (`Stdio.log`).

Why the monitor writes it: the monitor outlives the controller (it is the init's
parent until the init is reaped), so output written while no controller runs,
or after the one that made the container died, is still kept, and any later
controller reads it with `Container.logs()` (corral/statemachine/logs.py).

Format: the CRI log format that containerd and CRI-O write for the kubelet, one
record a line::

    2026-12-01T16:18:20.123456789Z stdout F hello

the time the monitor read the bytes (UTC, RFC 3339 with nanoseconds, fixed
width, so that times compare as strings), the stream, a tag (`F` a full line,
`P` a piece of one whose rest follows in a later record of the same stream:
bytes read without a newline yet, or a line longer than `MAX_RECORD`), one
space, and the bytes as the container wrote them, without the newline.

Size: the file is bounded. When a write would take `container.log` over half of
`max_bytes`, it is renamed to `container.log.1` (replacing the older one) and a
new file is begun, so the two together never exceed `max_bytes` and the newest
output is kept. Records are whole in each file.
"""

from __future__ import annotations

import errno
import os
import select
import threading
import time

#: The log's name in the container's run dir, and its one rotated predecessor.
LOG_NAME = "container.log"
ROTATED_SUFFIX = ".1"
#: The longest content of one record (containerd's default too); longer lines are split into P records.
MAX_RECORD = 16 * 1024
READ_SIZE = 64 * 1024
FILE_MODE = 0o640
STREAMS = {1: b"stdout", 2: b"stderr"}


def log_path(run_dir: str) -> str:
    return os.path.join(run_dir, LOG_NAME)


def timestamp(ns: int) -> bytes:
    """RFC 3339 in UTC with nanoseconds, always 30 bytes: lexical order is time order."""
    seconds, fraction = divmod(ns, 1_000_000_000)
    return (time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{fraction:09d}Z").encode()


def records(stream: bytes, data: bytes, now_ns: int) -> bytes:
    """`data` read from `stream` as log records: full lines tagged F, a trailing piece P."""
    full = timestamp(now_ns) + b" " + stream + b" F "
    part = full[:-2] + b"P "
    out: list[bytes] = []
    lines = data.split(b"\n")
    last = lines.pop()  # after the final newline: empty, or a line not finished yet
    for line in lines:
        while len(line) > MAX_RECORD:
            out.append(part + line[:MAX_RECORD] + b"\n")
            line = line[MAX_RECORD:]
        out.append(full + line + b"\n")
    while last:
        out.append(part + last[:MAX_RECORD] + b"\n")
        last = last[MAX_RECORD:]
    return b"".join(out)


class RotatingLog:
    """Appends records to `path`, rotating to `path.1` so that both never exceed `max_bytes`."""

    def __init__(self, path: str, max_bytes: int) -> None:
        self.path = path
        self.limit = max(max_bytes // 2, MAX_RECORD + 64)
        self._fd = self._open()
        self._size = os.fstat(self._fd).st_size

    def _open(self) -> int:
        return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)

    def _rotate(self) -> None:
        os.close(self._fd)
        os.replace(self.path, self.path + ROTATED_SUFFIX)
        self._fd = self._open()
        self._size = 0

    def write(self, data: bytes) -> None:
        """Append whole records, rotating at a record boundary when the file is full."""
        start = 0
        while start < len(data):
            room = self.limit - self._size
            if len(data) - start <= room:
                self._write_all(data[start:] if start else data)
                return
            cut = data.rfind(b"\n", start, start + room) + 1
            if cut <= start and self._size == 0:  # one record longer than a file: cannot happen, but never loop
                cut = data.find(b"\n", start) + 1 or len(data)
            if cut > start:
                self._write_all(data[start:cut])
                start = cut
            self._rotate()

    def _write_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            self._size += written
            view = view[written:]

    def close(self) -> None:
        os.close(self._fd)


def pump(log: RotatingLog, pipes: dict[int, int]) -> None:
    """Copy the read ends `pipes` ({fd: 1 or 2}) into `log` until every writer has closed them.

    A failed write (a full disk) drops that output rather than stall the
    container on a full pipe: the log is a record, never a reason to block.
    """
    poller = select.poll()
    for fd in pipes:
        poller.register(fd, select.POLLIN)
    open_fds = dict(pipes)
    while open_fds:
        try:
            events = poller.poll()
        except InterruptedError:
            continue
        for fd, _mask in events:
            try:
                data = os.read(fd, READ_SIZE)
            except OSError as exc:
                if exc.errno in (errno.EAGAIN, errno.EINTR):
                    continue
                data = b""
            if not data:
                poller.unregister(fd)
                os.close(fd)
                del open_fds[fd]
                continue
            try:
                log.write(records(STREAMS[open_fds[fd]], data, time.time_ns()))
            except OSError:
                pass
    log.close()


class LogPipes:
    """The monitor's side: pipes for the init's stdout and stderr, and the thread that logs them.

    Made before the init is forked (`writers` become its fds 1 and 2); `start()`
    after the fork, once the monitor closed its copies of the write ends.
    """

    def __init__(self, path: str, max_bytes: int) -> None:
        self._log = RotatingLog(path, max_bytes)
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        self.readers = {out_r: 1, err_r: 2}
        self.writers = (out_w, err_w)
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=pump, args=(self._log, self.readers), name="corral-log", daemon=True)
        self._thread.start()

    def drain(self, timeout: float) -> None:
        """Wait until the container's output is all written (every writer closed), for at most `timeout` s.

        A process that escaped the container's end (no PID namespace) may hold a
        pipe open for ever: its later output is lost when the monitor exits.
        """
        if self._thread is not None:
            self._thread.join(timeout)
