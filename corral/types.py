"""The values corral's layers hand each other and its callers: process identities,
exit statuses, stdio, resource statistics, OOM events.

A vocabulary, not a layer: plain frozen dataclasses (and, from corral.identity,
the process identity and exit status, named tuples) that depend on nothing in
corral, so that the face, the lifecycle, the store and the executor can all
speak them without importing one another (the executor's interface re-exports
them for the code that already imports them from there). Standard library only (and
corral.errors): the container's init and the spawn helper import this in fresh interpreters.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import NamedTuple, Protocol, Union

from corral.errors import ConfigError
from corral.identity import ExitStatus as ExitStatus, ProcessIdentity as ProcessIdentity  # re-exported: the vocabulary's
from corral.records import field, record


class SupportsFileno(Protocol):
    """Anything with an open descriptor behind `fileno()`: a file, a socket, a pipe's file object."""

    def fileno(self) -> int: ...


#: What a stream of `Stdio` may be: a descriptor, a file object, a path, or None (/dev/null).
StdioTarget = Union[int, str, os.PathLike[str], SupportsFileno, None]

#: The default bound on a container's log (`Stdio.log`) on disk: the file and one rotated file.
LOG_MAX_BYTES = 10 * 1024 * 1024
#: The smallest bound accepted: two files that each hold a longest record (16 KiB and its prefix).
LOG_MIN_BYTES = 64 * 1024
#: How many descriptors `Stdio.extra_fds` may pass (they travel in one SCM_RIGHTS message, at most 253).
MAX_EXTRA_FDS = 200


@record
class Stdio:
    """What the container's process gets as 0, 1 and 2.

    Each stream is one of:

    - None: /dev/null;
    - a file descriptor (an int), duplicated into the container;
    - a file object (anything with `fileno()`): Stdio keeps the object itself, not only
      its number, so a file nobody else holds (``Stdio(stdout=open(...))``) stays open
      until the process has it;
    - a path (`str` or `os.PathLike`): opened by the controller when the process is made,
      for reading (stdin) or for append (stdout, stderr; created with mode 0640).

    `log=True` (see `Stdio.logged()`) is the mode in which output survives the
    controller: the container's monitor, not the caller, reads its stdout and stderr
    through pipes and appends them to `<run dir>/container.log` in the CRI log format
    (``<RFC 3339 time> <stdout|stderr> <F|P> <bytes>``, the format containerd and
    CRI-O write for the kubelet). The log holds at most `log_max_bytes` on disk: it
    rotates to `container.log.1` (replacing the previous one) when the current file
    reaches half of it, so the newest half-to-whole of the output is kept.
    `Container.logs()` reads it. Only a container's own process (create) can be
    logged; exec's output goes where its own Stdio says.

    `extra_fds` (runc's ``--preserve-fds``, for create and exec):
    descriptors of the caller given to the process as 3, 4, ... in order, open
    across its execve. They are the caller's deliberate grant: a directory among
    them is a way out of the rootfs, as with runc.
    """

    stdin: StdioTarget = None
    stdout: StdioTarget = None
    stderr: StdioTarget = None
    log: bool = False
    log_max_bytes: int = LOG_MAX_BYTES
    extra_fds: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        for name in ("stdin", "stdout", "stderr"):
            _check_target(name, getattr(self, name))
        extra = self.extra_fds
        if not isinstance(extra, (tuple, list)) or len(extra) > MAX_EXTRA_FDS or any(
            isinstance(fd, bool) or not isinstance(fd, int) or fd < 0 for fd in extra
        ):
            raise ConfigError(
                "stdio.extra_fds", f"must be at most {MAX_EXTRA_FDS} descriptors (integers), not {extra!r}"
            )
        object.__setattr__(self, "extra_fds", tuple(extra))
        if self.log and (self.stdout is not None or self.stderr is not None):
            raise ConfigError("stdio.log", "the log takes the container's stdout and stderr: leave both None")
        size = self.log_max_bytes
        if isinstance(size, bool) or not isinstance(size, int) or size < LOG_MIN_BYTES:
            raise ConfigError("stdio.log_max_bytes", f"must be an integer of at least {LOG_MIN_BYTES}, not {size!r}")

    @classmethod
    def logged(cls, stdin: StdioTarget = None, *, max_bytes: int = LOG_MAX_BYTES) -> Stdio:
        """Stdout and stderr to the container's log (see the class), bounded to `max_bytes` on disk.

        Raises ConfigError for a `max_bytes` under LOG_MIN_BYTES or a bad `stdin`.
        """
        return cls(stdin=stdin, log=True, log_max_bytes=max_bytes)


def _check_target(name: str, value: object) -> None:
    """Refuse a stream that is none of the kinds, at the caller's line rather than deep in the executor."""
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if value is None or isinstance(value, (str, os.PathLike)):
        return
    if isinstance(value, int) and is_int and value >= 0:
        return
    fileno = getattr(value, "fileno", None)
    if not is_int and callable(fileno):
        try:
            fd = fileno()
        except (OSError, ValueError) as exc:  # closed, or a file object with no descriptor (StringIO)
            raise ConfigError(f"stdio.{name}", f"{type(value).__name__} has no open file descriptor ({exc})") from None
        if isinstance(fd, int) and fd >= 0:
            return
    got = repr(value) if is_int else type(value).__name__
    raise ConfigError(
        f"stdio.{name}",
        f"must be a file descriptor (an integer of 0 or more), a file object, a path or None, not {got}",
    )


@record
class LogLine:
    """One line of a container's log (`Container.logs()`).

    `data` is the line's bytes without its newline; a line the container wrote in
    pieces (or longer than a log record) is joined back into one. `time` is when
    the monitor read its first piece, in UTC.
    """

    time: datetime
    stream: str  # "stdout" or "stderr"
    data: bytes

    @property
    def text(self) -> str:
        """`data` decoded as UTF-8, undecodable bytes replaced."""
        return self.data.decode("utf-8", "replace")


class ExecResult(NamedTuple):
    """What `Container.exec_run()` returns: unpack it as ``status, out, err = box.exec_run(...)``."""

    exit_status: int | None  # the code, or 128 + signal; None if it could not be observed
    stdout: bytes
    stderr: bytes


@record
class MemoryStats:
    usage: int
    max_usage: int | None
    limit: int | None  # None: unlimited
    failcnt: int | None  # v1: memory.failcnt; v2: memory.events "max"
    oom_kills: int


@record
class CpuStats:
    total_usage_ns: int
    per_cpu_usage_ns: tuple[int, ...] | None
    user_ns: int | None
    system_ns: int | None
    periods: int | None
    throttled_periods: int | None
    throttled_time_ns: int | None


@record
class PidsStats:
    current: int
    limit: int | None  # None: unlimited


@record
class InterfaceStats:
    """One veth interface's counters, as libcontainer reports them: read on the host side
    (through netlink) and seen from the container, so `rx_bytes` is what the container
    received (the host side's tx) and `tx_bytes` what it sent (the host side's rx)."""

    name: str  # the container-side name (eth0)
    host_name: str
    rx_bytes: int
    rx_packets: int
    rx_errors: int
    rx_dropped: int
    tx_bytes: int
    tx_packets: int
    tx_errors: int
    tx_dropped: int


@record
class Stats:
    """A container's resource usage; a part is None when its controller is absent."""

    memory: MemoryStats | None = None
    cpu: CpuStats | None = None
    pids: PidsStats | None = None
    #: Per veth interface of its network section (none without one).
    interfaces: tuple[InterfaceStats, ...] = ()


@record
class HostInterface:
    """A host-side interface `create` makes for a container, recorded before it exists.

    `owner` is written as the interface's alias right after it is made: tear-down
    removes an interface of this name only if it is a veth whose alias is `owner`
    (or not set yet: a crash between the two steps), never someone else's.
    """

    host_name: str
    name: str  # the container side's name
    owner: str


@record
class OOMEvent:
    """The kernel OOM-killed a process in the container (`count` kills so far)."""

    container_id: str
    count: int
