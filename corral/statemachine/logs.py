"""Reading a container's log (`Container.logs()`), written by its monitor (corral/executor/logwriter.py).

The reader needs no monitor and no controller: the log is a file in the
container's run dir, in the CRI format, rotated once (`container.log.1` holds
the older records). Pieces of a line (`P` records) are joined back per stream,
so a caller sees the lines the container wrote.

`follow` polls the file every `FOLLOW_INTERVAL` seconds while nothing new
arrives (a log is read by people and dashboards, for whom 0.1 s is immediate),
follows a rotation, and ends once the container no longer runs and the rest is
read.
"""

from __future__ import annotations

import collections
import os
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import BinaryIO

from corral.errors import LogsUnavailable
from corral.executor.logwriter import ROTATED_SUFFIX, log_path, timestamp
from corral.types import LogLine

FOLLOW_INTERVAL = 0.1
#: A rotation renames the file and then makes a new one: how many 5 ms retries a reader gives that gap.
ROTATION_RETRIES = 200


def since_key(since: datetime | float | None) -> bytes:
    """`since` as the log's own timestamps (which compare as strings); a naive datetime is UTC."""
    if since is None:
        return b""
    if isinstance(since, datetime):
        if since.tzinfo is None:
            since = since.replace(tzinfo=timezone.utc)
        # In integers: a float of Unix seconds is ~256 ns coarse here, so a line's own
        # (microsecond) time could come back later than the line and exclude it.
        delta = since - datetime(1970, 1, 1, tzinfo=timezone.utc)
        return timestamp((delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000)
    return timestamp(int(since * 1_000_000_000))


def _parse_time(raw: bytes) -> datetime:
    text = raw.decode("ascii", "replace").rstrip("Z")
    whole, _, fraction = text.partition(".")
    base = datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    return base.replace(microsecond=int((fraction + "000000")[:6]))


class _Lines:
    """Joins records into lines, per stream."""

    def __init__(self, since: bytes) -> None:
        self._since = since
        self._pending: dict[bytes, tuple[bytes, list[bytes]]] = {}

    def feed(self, record: bytes) -> LogLine | None:
        parts = record.split(b" ", 3)
        if len(parts) != 4 or parts[2] not in (b"F", b"P"):
            return None  # a torn or foreign line: skipped rather than fail a reader
        when, stream, tag, data = parts
        first, pieces = self._pending.pop(stream, (when, []))
        pieces.append(data)
        if tag == b"P":
            self._pending[stream] = (first, pieces)
            return None
        return self._line(first, stream, pieces)

    def _line(self, first: bytes, stream: bytes, pieces: list[bytes]) -> LogLine | None:
        if first < self._since:
            return None
        return LogLine(_parse_time(first), stream.decode("ascii", "replace"), b"".join(pieces))

    def flush(self) -> list[LogLine]:
        """The lines begun but not ended (the output's last bytes had no newline), oldest first."""
        pending = sorted(self._pending.items(), key=lambda item: item[1][0])
        self._pending.clear()
        return [line for stream, (first, pieces) in pending if (line := self._line(first, stream, pieces))]


class _File:
    """One open log file, read by whole records."""

    def __init__(self, f: BinaryIO) -> None:
        self.f = f
        self.inode = os.fstat(f.fileno()).st_ino
        self._rest = b""

    def records(self) -> Iterator[bytes]:
        while True:
            chunk = self.f.read(64 * 1024)
            if not chunk:
                return
            data = self._rest + chunk
            lines = data.split(b"\n")
            self._rest = lines.pop()
            yield from lines


def _open(path: str) -> _File | None:
    try:
        return _File(open(path, "rb"))
    except FileNotFoundError:
        return None


def read(
    run_dir: str,
    container_id: str,
    *,
    follow: bool = False,
    since: datetime | float | None = None,
    tail: int | None = None,
    running: Callable[[], bool] = lambda: False,
) -> Iterator[LogLine]:
    """The container's log lines, oldest first; see Container.logs()."""
    path = log_path(run_dir)
    current = _open(path)
    for _ in range(ROTATION_RETRIES):
        if current is not None or not os.path.exists(path + ROTATED_SUFFIX):
            break
        time.sleep(0.005)  # caught between the writer's rename and its new file
        current = _open(path)
    if current is None:
        raise LogsUnavailable(container_id, path)
    older = _open(path + ROTATED_SUFFIX)
    if older is not None and older.inode == current.inode:  # rotated between the two opens
        older.f.close()
        older = None
    lines = _Lines(since_key(since))
    return _generate(path, current, older, lines, follow, tail, running)


def _generate(
    path: str,
    current: _File,
    older: _File | None,
    lines: _Lines,
    follow: bool,
    tail: int | None,
    running: Callable[[], bool],
) -> Iterator[LogLine]:
    try:
        backlog: collections.deque[LogLine] = collections.deque(maxlen=tail if tail is not None else None)
        for source in (older, current):
            if source is not None:
                backlog.extend(line for line in map(lines.feed, source.records()) if line is not None)
        if older is not None:
            older.f.close()
        if not follow:
            backlog.extend(lines.flush())  # what there is: an unfinished line too
        if tail == 0:
            backlog.clear()
        yield from backlog
        if not follow:
            return
        last_look = False
        while True:
            found = False
            for record in current.records():
                line = lines.feed(record)
                found = True
                if line is not None:
                    yield line
            if found:
                continue
            replaced = _open(path)
            if replaced is not None and replaced.inode != current.inode:  # rotated: the rest is in the new file
                # The writer appends the records that fill a file, then renames it: any appended
                # after this reader's last look are in the old file alone.
                for record in current.records():
                    line = lines.feed(record)
                    if line is not None:
                        yield line
                current.f.close()
                current = replaced
                continue
            if replaced is not None:
                replaced.f.close()
            if last_look:
                yield from lines.flush()  # the container is gone: its last bytes end its last line
                return
            if not running():
                last_look = True  # the monitor has drained and exited: read what is left once more
                continue
            time.sleep(FOLLOW_INTERVAL)
    finally:
        current.f.close()
