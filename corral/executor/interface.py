"""The narrow interface between the lifecycle and the kernel.

The state machine calls these methods from its transition callbacks and records
what they return; it never touches the kernel itself. The executor never decides
lifecycle: it does what it is asked on the facts it is given (read from the
record), and says what it found. That is what lets the lifecycle be tested
without root against a fake (tests/fakes.py), and the kernel side stay thin.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from corral.config import Config, Process, Resources
from corral.records import field, record

# The values the interface speaks live in the vocabulary module; re-exported for
# the code that imports them from here.
from corral.types import CpuStats as CpuStats
from corral.types import ExitStatus as ExitStatus
from corral.types import HostInterface as HostInterface
from corral.types import InterfaceStats as InterfaceStats
from corral.types import MemoryStats as MemoryStats
from corral.types import OOMEvent as OOMEvent
from corral.types import PidsStats as PidsStats
from corral.types import ProcessIdentity as ProcessIdentity
from corral.types import Stats as Stats
from corral.types import Stdio as Stdio

if TYPE_CHECKING:  # hooks.py reaches protocol.py, which needs Recorder from here
    from corral.executor.hooks import HookOutcome


@record
class ContainerPlan:
    """What `create` is about to make, recorded before any of it exists.

    Recorded first so that recovery after a crash knows where to look for a
    half-made container (cgroups, run dir) even if no PID was ever recorded.
    """

    cgroup_paths: Mapping[str, str]  # hierarchy key -> absolute cgroup directory
    run_dir: str  # per-boot directory: exec fifo, exit files
    #: Per hierarchy key, the directories create makes (the container's and any missing
    #: parents, parents first): all that destroy and rollback may remove. None in a record
    #: made before corral recorded them (it then means the container's own directories).
    created_cgroups: Mapping[str, tuple[str, ...]] | None = None
    #: The host-side interfaces of the config's network section, in its order: recorded
    #: before any exists, so that recovery removes what a crash left half-made.
    interfaces: tuple[HostInterface, ...] = ()


@record
class Recorder:
    """Where a container's monitor records what it observes: the init's exit and OOM kills.

    The monitor outlives the controller, so it is the one process sure to see
    the init exit; it calls `module.exited(**arguments, init_pid=, status=,
    signal=, oom_killed=, reason=)` once the exit file is written, and
    `module.oom(**arguments, init_pid=, count=)` on each OOM kill. The lifecycle
    names the module (the store's sqlite3-only writer, corral/store/observed.py)
    and its arguments; the executor never imports the store, it only calls
    what it is given, in the monitor's process.
    """

    module: str
    arguments: Mapping[str, str | int]


@record
class ContainerFacts:
    """What the executor needs to act on an existing container, read from its record."""

    id: str
    config: Config
    plan: ContainerPlan
    init: ProcessIdentity | None = None
    monitor: ProcessIdentity | None = None
    namespaces: Mapping[str, str] = field(default_factory=dict)  # type -> /proc/<pid>/ns/<x>
    #: Given to `spawn` only: who records the exit and OOM kills the monitor sees (None: nobody).
    recorder: Recorder | None = None


@record
class InitFacts:
    """What spawning produced: recorded with the `created` state."""

    init: ProcessIdentity
    monitor: ProcessIdentity | None
    namespaces: Mapping[str, str]  # OCI type -> path, for every namespace the container has
    namespace_inodes: Mapping[str, int]
    #: How each hook create ran ended (prestart, createRuntime, createContainer), in order.
    hooks: tuple[HookOutcome, ...] = ()


@record
class KernelStatus:
    """What the kernel says about a container's init, right now."""

    alive: bool  # same PID, same start time (the boot id is checked by the caller)
    frozen: bool
    fifo_present: bool  # the exec fifo exists: created, not yet started


@record
class ForgottenRemoval:
    """What `remove_forgotten` did with a run dir no live record owns."""

    removed: bool  # the run dir is gone (it stays while a process it names may be alive)
    detail: str  # what was killed and removed, and what was left alone and why


class Spawned(Protocol):
    """A container's init, ready and blocked on its exec fifo, not yet confirmed.

    Until `confirm()` the init is the caller's responsibility: if the caller
    dies first, the init is killed, so that a crash between spawning and
    recording cannot leak a container nobody knows about.
    """

    facts: InitFacts
    #: The pty master when the config's process asks for a terminal (else None): the
    #: caller's once confirmed; `abort` closes it.
    console_fd: int | None

    def confirm(self) -> None: ...

    def abort(self) -> None: ...


class ExecHandle(Protocol):
    """A process exec'd into a running container."""

    pid: int
    start_time: int
    console_fd: int | None  # the pty master when the process asks for a terminal: the caller's

    def wait(self, timeout: float | None = None) -> ExitStatus: ...

    def poll(self) -> ExitStatus | None: ...


@runtime_checkable
class Executor(Protocol):
    """The kernel side, as the lifecycle sees it. Every method is given facts, not ids."""

    def plan(self, container_id: str, config: Config, run_dir: str, store_root: str) -> ContainerPlan:
        """Where the container's cgroups and run dir go; touches nothing.

        `store_root` (the Runtime's root) makes the default cgroup path unique to
        the store, so two stores creating the same id never share a cgroup.
        """
        ...

    def spawn(self, facts: ContainerFacts, stdio: Stdio) -> Spawned: ...

    def attach_network(self, facts: ContainerFacts, init: ProcessIdentity) -> None:
        """Make the plan's interfaces and configure the config's network in the init's namespace.

        Called by create after spawn, before `created` is recorded; nothing to do
        without a network section. On failure every interface made so far is removed.
        `destroy` removes them (one already gone is fine).
        """
        ...

    def start(self, facts: ContainerFacts) -> tuple[HookOutcome, ...] | None:
        """Let the init exec the user's program; how its startContainer hooks ended (HookFailed
        if one failed: the init then exits instead)."""
        ...

    def run_hooks(self, facts: ContainerFacts, kind: str, status: str) -> tuple[HookOutcome, ...]:
        """Run the config's hooks of `kind` in the runtime's namespaces (poststart, poststop),
        every one whatever the others did; how each ended. Never raises for a hook's failure."""
        ...

    def alive(self, facts: ContainerFacts) -> bool: ...

    def status(self, facts: ContainerFacts) -> KernelStatus: ...

    def signal(self, facts: ContainerFacts, sig: int, all_processes: bool = False) -> None: ...

    def wait(self, facts: ContainerFacts, timeout: float | None) -> ExitStatus: ...

    def exit_status(self, facts: ContainerFacts) -> ExitStatus: ...

    def freeze(self, facts: ContainerFacts) -> None: ...

    def thaw(self, facts: ContainerFacts) -> None: ...

    def update_resources(self, facts: ContainerFacts, resources: Resources) -> None:
        """Write `resources` (merged and validated: the container's new linux.resources) to its
        cgroups, all or nothing: ConfigError naming the field the kernel refused, nothing changed."""
        ...

    def exec(self, facts: ContainerFacts, process: Process, stdio: Stdio) -> ExecHandle: ...

    def processes(self, facts: ContainerFacts) -> list[int]: ...

    def stats(self, facts: ContainerFacts) -> Stats: ...

    def oom_events(
        self, facts: ContainerFacts, stop: Callable[[], bool] | None = None
    ) -> Iterator[OOMEvent]: ...

    def kill(self, facts: ContainerFacts, timeout: float) -> ExitStatus: ...

    def destroy(self, facts: ContainerFacts) -> None: ...

    def leftovers(self, facts: ContainerFacts) -> list[str]: ...

    def remove_forgotten(self, container_id: str, run_dir: str, spare: Collection[str]) -> ForgottenRemoval:
        """Kill and remove a container the store forgot, found by its run dir (recovery's orphan sweep).

        Only what the run dir's own record of the container proves is its (executor/forgotten.py);
        `spare` are cgroup directories a live record names, never touched.
        """
        ...
