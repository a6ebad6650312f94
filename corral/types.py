"""The values corral's layers hand each other and its callers: process identities,
exit statuses, stdio, resource statistics, OOM events.

A vocabulary, not a layer: plain frozen dataclasses that depend on nothing in
corral, so that the face, the lifecycle, the store and the executor can all
speak them without importing one another (the executor's interface re-exports
them for the code that already imports them from there). Standard library only (and
corral.errors): the container's init and the spawn helper import this in fresh interpreters.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from corral.errors import ConfigError


@dataclass(frozen=True)
class ProcessIdentity:
    """A process as the kernel knows it within one boot: a PID alone is reused, a PID
    and its start time are not. The boot id that completes it is the record's
    (the Runtime reads it, so that tests can fake a reboot).
    """

    pid: int
    start_time: int  # field 22 of /proc/<pid>/stat: clock ticks after boot


@dataclass(frozen=True)
class ExitStatus:
    """How a process ended.

    `status` follows the shell and runc/containerd convention: the exit code, or
    128 + the signal number when a signal killed it. `None` means nobody could
    observe it (the monitor was gone, or the host restarted): corral says so
    rather than invent one, and `reason` says why (it is journalled, so that an
    unknown status is never a silent None). Not part of equality: two unknown
    statuses are the same status whatever the cause.
    """

    status: int | None
    signal: int | None = None
    oom_killed: bool = False
    reason: str | None = field(default=None, compare=False)

    @property
    def known(self) -> bool:
        return self.status is not None

    @classmethod
    def from_wait_status(cls, wait_status: int) -> ExitStatus:
        if os.WIFSIGNALED(wait_status):
            sig = os.WTERMSIG(wait_status)
            return cls(status=128 + sig, signal=sig)
        return cls(status=os.WEXITSTATUS(wait_status))

    @classmethod
    def unknown(cls, reason: str | None = None) -> ExitStatus:
        return cls(status=None, reason=reason)


@dataclass(frozen=True)
class Stdio:
    """File descriptors to give the container's process as 0, 1 and 2 (None: /dev/null).

    Only descriptors, checked here so that a mistake is a ConfigError at the caller's line
    rather than a TypeError deep in the executor. A file object is refused, not converted
    with fileno(): Stdio would keep only the number, and a file object nobody else holds
    (``Stdio(stdout=open(...))``) is closed by the garbage collector before the process
    starts, leaving a descriptor that is closed or, worse, reused by another file.
    """

    stdin: int | None = None
    stdout: int | None = None
    stderr: int | None = None

    def __post_init__(self) -> None:
        for name in ("stdin", "stdout", "stderr"):
            value = getattr(self, name)
            is_int = isinstance(value, int) and not isinstance(value, bool)
            if value is None or (is_int and value >= 0):
                continue
            got = repr(value) if is_int else type(value).__name__
            raise ConfigError(
                f"stdio.{name}",
                f"must be a file descriptor (an integer of 0 or more) or None, not {got}; "
                "pass f.fileno() and keep the file open until create() or exec() returns",
            )


@dataclass(frozen=True)
class MemoryStats:
    usage: int
    max_usage: int | None
    limit: int | None  # None: unlimited
    failcnt: int | None  # v1: memory.failcnt; v2: memory.events "max"
    oom_kills: int


@dataclass(frozen=True)
class CpuStats:
    total_usage_ns: int
    per_cpu_usage_ns: tuple[int, ...] | None
    user_ns: int | None
    system_ns: int | None
    periods: int | None
    throttled_periods: int | None
    throttled_time_ns: int | None


@dataclass(frozen=True)
class PidsStats:
    current: int
    limit: int | None  # None: unlimited


@dataclass(frozen=True)
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


@dataclass(frozen=True)
class Stats:
    """A container's resource usage; a part is None when its controller is absent."""

    memory: MemoryStats | None = None
    cpu: CpuStats | None = None
    pids: PidsStats | None = None
    #: Per veth interface of its network section (none without one).
    interfaces: tuple[InterfaceStats, ...] = ()


@dataclass(frozen=True)
class HostInterface:
    """A host-side interface `create` makes for a container, recorded before it exists.

    `owner` is written as the interface's alias right after it is made: tear-down
    removes an interface of this name only if it is a veth whose alias is `owner`
    (or not set yet: a crash between the two steps), never someone else's.
    """

    host_name: str
    name: str  # the container side's name
    owner: str


@dataclass(frozen=True)
class OOMEvent:
    """The kernel OOM-killed a process in the container (`count` kills so far)."""

    container_id: str
    count: int
