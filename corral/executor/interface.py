"""The narrow interface between the lifecycle and the kernel.

The state machine calls these methods from its transition callbacks and records
what they return; it never touches the kernel itself. The executor never decides
lifecycle: it does what it is asked on the facts it is given (read from the
record), and says what it found. That is what lets the lifecycle be tested
without root against a fake (tests/fakes.py), and the kernel side stay thin.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from corral.config import Config, Process


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
    rather than invent one.
    """

    status: int | None
    signal: int | None = None
    oom_killed: bool = False

    @property
    def known(self) -> bool:
        return self.status is not None

    @classmethod
    def from_wait_status(cls, wait_status: int) -> ExitStatus:
        import os

        if os.WIFSIGNALED(wait_status):
            sig = os.WTERMSIG(wait_status)
            return cls(status=128 + sig, signal=sig)
        return cls(status=os.WEXITSTATUS(wait_status))

    @classmethod
    def unknown(cls) -> ExitStatus:
        return cls(status=None)


@dataclass(frozen=True)
class ContainerPlan:
    """What `create` is about to make, recorded before any of it exists.

    Recorded first so that recovery after a crash knows where to look for a
    half-made container (cgroups, run dir) even if no PID was ever recorded.
    """

    cgroup_paths: Mapping[str, str]  # hierarchy key -> absolute cgroup directory
    run_dir: str  # per-boot directory: exec fifo, exit files


@dataclass(frozen=True)
class ContainerFacts:
    """What the executor needs to act on an existing container, read from its record."""

    id: str
    config: Config
    plan: ContainerPlan
    init: ProcessIdentity | None = None
    monitor: ProcessIdentity | None = None
    namespaces: Mapping[str, str] = field(default_factory=dict)  # type -> /proc/<pid>/ns/<x>


@dataclass(frozen=True)
class InitFacts:
    """What spawning produced: recorded with the `created` state."""

    init: ProcessIdentity
    monitor: ProcessIdentity | None
    namespaces: Mapping[str, str]  # OCI type -> path, for every namespace the container has
    namespace_inodes: Mapping[str, int]


@dataclass(frozen=True)
class KernelStatus:
    """What the kernel says about a container's init, right now."""

    alive: bool  # same PID, same start time (the boot id is checked by the caller)
    frozen: bool
    fifo_present: bool  # the exec fifo exists: created, not yet started


@dataclass(frozen=True)
class Stdio:
    """File descriptors to give the container's process as 0, 1 and 2 (None: /dev/null)."""

    stdin: int | None = None
    stdout: int | None = None
    stderr: int | None = None


class Spawned(Protocol):
    """A container's init, ready and blocked on its exec fifo, not yet confirmed.

    Until `confirm()` the init is the caller's responsibility: if the caller
    dies first, the init is killed, so that a crash between spawning and
    recording cannot leak a container nobody knows about.
    """

    facts: InitFacts

    def confirm(self) -> None: ...

    def abort(self) -> None: ...


class ExecHandle(Protocol):
    """A process exec'd into a running container."""

    pid: int
    start_time: int

    def wait(self, timeout: float | None = None) -> ExitStatus: ...

    def poll(self) -> ExitStatus | None: ...


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
class Stats:
    """A container's resource usage; a part is None when its controller is absent."""

    memory: MemoryStats | None = None
    cpu: CpuStats | None = None
    pids: PidsStats | None = None


@dataclass(frozen=True)
class OOMEvent:
    """The kernel OOM-killed a process in the container (`count` kills so far)."""

    container_id: str
    count: int


@runtime_checkable
class Executor(Protocol):
    """The kernel side, as the lifecycle sees it. Every method is given facts, not ids."""

    def plan(self, container_id: str, config: Config, run_dir: str) -> ContainerPlan: ...

    def spawn(self, facts: ContainerFacts, stdio: Stdio) -> Spawned: ...

    def start(self, facts: ContainerFacts) -> None: ...

    def alive(self, facts: ContainerFacts) -> bool: ...

    def status(self, facts: ContainerFacts) -> KernelStatus: ...

    def signal(self, facts: ContainerFacts, sig: int, all_processes: bool = False) -> None: ...

    def wait(self, facts: ContainerFacts, timeout: float | None) -> ExitStatus: ...

    def exit_status(self, facts: ContainerFacts) -> ExitStatus: ...

    def freeze(self, facts: ContainerFacts) -> None: ...

    def thaw(self, facts: ContainerFacts) -> None: ...

    def exec(self, facts: ContainerFacts, process: Process, stdio: Stdio) -> ExecHandle: ...

    def processes(self, facts: ContainerFacts) -> list[int]: ...

    def stats(self, facts: ContainerFacts) -> Stats: ...

    def oom_events(
        self, facts: ContainerFacts, stop: Callable[[], bool] | None = None
    ) -> Iterator[OOMEvent]: ...

    def kill(self, facts: ContainerFacts, timeout: float) -> ExitStatus: ...

    def destroy(self, facts: ContainerFacts) -> None: ...

    def leftovers(self, facts: ContainerFacts) -> list[str]: ...
