"""Turn a `Stdio` into the three descriptors sent to the monitor, in the controller.

Stdio (corral.types) holds what the caller gave: descriptors, file objects or
paths. Here each becomes a descriptor of this process, for as long as the
request to the spawn helper takes: paths are opened here (and closed once sent),
file objects are flushed (what the caller wrote first comes first) and lent by
their `fileno()`. Everything is checked before anything is made, so a bad stream
fails `create` or `exec` at once, naming it.
"""

from __future__ import annotations

import fcntl
import os

from corral.errors import ConfigError, InvalidStdio
from corral.records import field, record
from corral.types import Stdio, StdioTarget

STREAMS = ("stdin", "stdout", "stderr")
#: How a path given for stdout or stderr is opened: appended to, created if missing.
APPEND = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOCTTY
READ = os.O_RDONLY | os.O_CLOEXEC | os.O_NOCTTY
FILE_MODE = 0o640


@record(frozen=False)
class Opened:
    """The three descriptors to send, and those opened here (close them once sent)."""

    fds: list[int]
    opened: list[int] = field(default_factory=list)

    def close(self) -> None:
        for fd in self.opened:
            os.close(fd)
        self.opened.clear()


def _flags(stream: str) -> int:
    return READ if stream == "stdin" else APPEND


def _borrowed_fd(stream: str, target: StdioTarget) -> int | None:
    """The descriptor of an int or a file object (None for a path or None); InvalidStdio if closed."""
    if target is None or isinstance(target, (str, os.PathLike)):
        return None
    if isinstance(target, int):
        fd = target
    else:
        flush = getattr(target, "flush", None)
        try:
            if callable(flush):
                flush()
            fd = target.fileno()
        except (OSError, ValueError) as exc:
            raise InvalidStdio(stream, target, f"has no open file descriptor ({exc})") from None
    try:
        fcntl.fcntl(fd, fcntl.F_GETFD)
    except OSError as exc:
        raise InvalidStdio(stream, fd, f"is not open in this process ({os.strerror(exc.errno or 0)})") from None
    return fd


def check(stdio: Stdio) -> None:
    """Refuse a closed descriptor or file object, or a path that cannot be opened, before anything is made.

    A path is opened (and so created, for stdout and stderr) and closed again:
    the only way to know that it can be.
    """
    for stream in STREAMS:
        target = getattr(stdio, stream)
        _borrowed_fd(stream, target)
        if isinstance(target, (str, os.PathLike)):
            os.close(_open_path(stream, target))
    for index, fd in enumerate(stdio.extra_fds):
        _borrowed_fd(f"extra_fds[{index}]", fd)


def _open_path(stream: str, path: str | os.PathLike[str]) -> int:
    try:
        return os.open(path, _flags(stream), FILE_MODE)
    except OSError as exc:
        raise ConfigError(f"stdio.{stream}", f"cannot open {os.fspath(path)!r}: {exc.strerror or exc}") from None


def open_stdio(stdio: Stdio) -> Opened:
    """The descriptors for 0, 1 and 2 (/dev/null for None, a path opened here), then the extra ones."""
    result = Opened(fds=[])
    try:
        for stream in STREAMS:
            target = getattr(stdio, stream)
            fd = _borrowed_fd(stream, target)
            if fd is None:
                if target is None:
                    fd = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
                else:
                    assert isinstance(target, (str, os.PathLike))
                    fd = _open_path(stream, target)
                result.opened.append(fd)
            result.fds.append(fd)
        for index, fd in enumerate(stdio.extra_fds):  # after 0, 1 and 2: the container's 3, 4, ...
            borrowed = _borrowed_fd(f"extra_fds[{index}]", fd)
            assert borrowed is not None
            result.fds.append(borrowed)
    except BaseException:
        result.close()
        raise
    return result
