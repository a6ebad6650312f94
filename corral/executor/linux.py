"""The real executor: containers from the kernel (namespaces, cgroups, mounts, signals).

Stateless between calls on purpose: every method acts on the facts it is given
(read from the store), so any process can pick up a container another one
created. The only state is the spawn helper, which is a cache.

Cgroups belong to one container. Without `linux.cgroupsPath` a container's cgroup
is ``/corral/<store>/<id>`` in each hierarchy, where ``<store>`` is the first 12
hex digits of the SHA-256 of the store root's resolved path: two stores that
create the same id never share a cgroup. A relative `linux.cgroupsPath` goes below
the same parent, ``/corral/<store>/<path>``. An explicit `linux.cgroupsPath` that
exists is joined only when no process is in it (as runc 1.2); the directories
corral had to create are recorded with the plan, and destroy and rollback remove
only those (a joined cgroup stays, with the limits corral wrote). corral kills in
a cgroup it created, or in a joined one once it has recorded an init there
(cgroups/ownership.py).
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Callable, Collection, Iterator
from typing import TYPE_CHECKING

from corral import faults
from corral.config import Config, Process, Resources
from corral.errors import CgroupError, ConfigError, ExecutorError, NeedsRoot, ProcessGone, RunDirError
from corral.executor import forgotten, identity, logwriter, lsm, proc, protocol, quick
from corral.executor import spawn as spawning
from corral.executor import teardown
from corral.executor.launch import HelperProcess
from corral.executor.teardown import EXIT_FILE, MONITOR_GRACE
from corral.executor import seccomp
from corral.executor.cgroups import CgroupDriver, detect, open_cgroup
from corral.executor.cgroups.base import Cgroup
from corral.executor.quick import FIFO_NAME
from corral.executor.interface import (
    ContainerFacts,
    ContainerPlan,
    ExitStatus,
    ForgottenRemoval,
    HostInterface,
    InitFacts,
    KernelStatus,
    OOMEvent,
    ProcessIdentity,
    Stats,
    Stdio,
)
from corral.executor.syscalls import NAMESPACES
from corral.executor import mountns

if TYPE_CHECKING:  # pragma: no cover
    from corral.executor.hooks import HookOutcome



#: corral's own subtree of every hierarchy: its empty directories are corral's to remove.
DEFAULT_CGROUP_PARENT = "/corral"


def store_tag(store_root: str) -> str:
    """12 hex digits naming a store: the SHA-256 of its root's resolved path."""
    import hashlib  # here: a config with its cgroupsPath (containerd's) never needs it, nor OpenSSL's load (~2-3 ms)

    return hashlib.sha256(os.path.realpath(store_root).encode()).hexdigest()[:12]


def default_cgroups_path(store_root: str, container_id: str) -> str:
    """``/corral/<store tag>/<id>``: unique to the store, so stores never share a cgroup."""
    return f"{DEFAULT_CGROUP_PARENT}/{store_tag(store_root)}/{container_id}"


def _compiled_seccomp(config: Config) -> seccomp.CompiledFilter | None:
    return None if config.seccomp is None else seccomp.compiled(config.seccomp)


def relative_cgroups_path(store_root: str, path: str) -> str:
    """Where a relative `linux.cgroupsPath` goes: ``/corral/<store tag>/<path>``.

    The spec lets the runtime choose what a relative path is relative to; the
    store's own parent keeps it in corral's subtree, apart from other stores.
    """
    return os.path.normpath(f"{DEFAULT_CGROUP_PARENT}/{store_tag(store_root)}/{path}")


def _id_map(mappings: tuple) -> str:
    return "".join(f"{m.container_id} {m.host_id} {m.size}\n" for m in mappings)


class LinuxExecutor:
    """Implements corral.executor.interface.Executor on this host's kernel."""

    def __init__(self, cgroups: CgroupDriver | None = None, *, parent: str = protocol.PARENT_MONITOR) -> None:
        """`parent`: who is the parent of the inits and exec'd processes this executor starts.

        "monitor" (the default): corral's monitor, which reaps them and records their
        status. "caller": the caller's child subreaper (containerd's runc shim, conmon), as
        with runc; their status is then the reaper's to know and corral's is unknown
        (corral.executor.monitor says how).
        """
        if parent not in protocol.PARENTS:
            raise ExecutorError(f"parent={parent!r}: choose one of {', '.join(map(repr, protocol.PARENTS))}")
        self.cgroups = cgroups if cgroups is not None else detect()
        self.parent = parent
        self._helper = spawning.Helper()

    def close(self) -> None:
        self._helper.close()

    def adopt_helper(self, process: HelperProcess, fd: int) -> None:
        """Spawn through a helper started earlier (launch.start_helper): a one-shot create starts it first."""
        self._helper.adopt(process, fd)

    # -- helpers ----------------------------------------------------------------

    def _cgroup(self, facts: ContainerFacts) -> Cgroup:
        return open_cgroup(facts.plan.cgroup_paths, facts.plan.created_cgroups)

    @staticmethod
    def _fifo(facts: ContainerFacts) -> str:
        return os.path.join(facts.plan.run_dir, FIFO_NAME)

    @staticmethod
    def _exit_file(facts: ContainerFacts) -> str:
        return os.path.join(facts.plan.run_dir, EXIT_FILE)

    # -- the interface ------------------------------------------------------------

    def plan(self, container_id: str, config: Config, run_dir: str, store_root: str) -> ContainerPlan:
        mountns.check(config)  # what needs a new mount namespace is refused without one
        if mountns.mode(config) != mountns.JOINED and not os.path.isdir(config.root.path):
            raise ConfigError("root.path", f"{config.root.path} does not exist or is not a directory")
        if config.seccomp is not None:
            # Compiled here, before anything exists, so that what this host's
            # libseccomp refuses fails create, naming the JSON path; cached for spawn and exec.
            seccomp.compiled(config.seccomp)
        lsm.check_labels(config)  # ignored with a warning where the LSM is off; refused where on
        if config.cgroups_path and not config.cgroups_path.startswith("/"):
            claim = self.cgroups.claim(relative_cgroups_path(store_root, config.cgroups_path), DEFAULT_CGROUP_PARENT)
        elif config.cgroups_path:
            claim = self.cgroups.claim(config.cgroups_path)  # refuses a cgroup with processes, before any write
        else:
            claim = self.cgroups.claim(default_cgroups_path(store_root, container_id), DEFAULT_CGROUP_PARENT)
        interfaces: tuple[HostInterface, ...] = ()
        if config.network is not None and config.network.veths:
            from corral.executor.network import links  # pyroute2: only for a network section

            interfaces = links.plan(container_id, config, store_tag(store_root))
        return ContainerPlan(
            cgroup_paths=claim.paths, run_dir=run_dir, created_cgroups=claim.created, interfaces=interfaces
        )

    def spawn(self, facts: ContainerFacts, stdio: Stdio) -> spawning.SpawnedInit:
        spawning.check_stdio(stdio)
        config = facts.config
        cgroup = self._cgroup(facts)
        cgroups_first = os.geteuid() != 0  # refused there (NeedsRoot) before anything starts or is made
        if cgroups_first:
            self._make_cgroups(cgroup, config)
        fifo = self._fifo(facts)
        self._make_run_dir(facts, fifo)
        request = protocol.CreateRequest(
            id=facts.id,
            config=config,
            cgroup_procs=tuple(cgroup.procs_files()),
            cgroup_paths=dict(facts.plan.cgroup_paths),
            fifo=fifo,
            exit_file=self._exit_file(facts),
            join=tuple((ns.type, ns.path) for ns in _ordered(config) if ns.path),
            new=tuple(ns.type for ns in _ordered(config) if not ns.path),
            uid_map=_id_map(config.uid_mappings),
            gid_map=_id_map(config.gid_mappings),
            seccomp=_compiled_seccomp(config),
            log_file=logwriter.log_path(facts.plan.run_dir) if stdio.log else None,
            log_max_bytes=stdio.log_max_bytes,
            parent=self.parent,
            recorder=facts.recorder,
        )
        ran: list[HookOutcome] = []
        init_pid, monitor, ctl, console = spawning.spawn_init(
            self._helper, request, stdio, lambda: faults.point("create.spawned"), ran,
            cgroups_ready=(lambda: None) if cgroups_first else (lambda: self._make_cgroups(cgroup, config)),
        )
        try:
            start_time = proc.start_time(init_pid)
            if start_time is None:
                raise ExecutorError(f"container {facts.id!r}: the init ({init_pid}) vanished after set-up")
            namespaces: dict[str, str] = {}
            inodes: dict[str, int] = {}
            for ns in config.namespaces:
                name = NAMESPACES[ns.type][1]
                path = f"/proc/{init_pid}/ns/{name}"
                namespaces[ns.type] = path
                inodes[ns.type] = proc.namespace_inode(init_pid, name)
            handed_off = self.parent == protocol.PARENT_CALLER  # then no monitor is left to record
            # What recovery finds this container by should the store forget it (forgotten.py).
            identity.write(facts.plan.run_dir, facts.id, ProcessIdentity(init_pid, start_time),
                           None if handed_off else monitor, facts.plan.cgroup_paths, facts.plan.created_cgroups)
        except BaseException:
            ctl.close()
            if console is not None:
                os.close(console)
            teardown.wait_for_exit(monitor, MONITOR_GRACE)
            raise
        faults.point("create.ready")
        return spawning.SpawnedInit(
            InitFacts(
                ProcessIdentity(init_pid, start_time), None if handed_off else monitor, namespaces, inodes, tuple(ran)
            ),
            ctl,
            monitor,
            console_fd=console,
            handed_off=handed_off,
        )

    def attach_network(self, facts: ContainerFacts, init: ProcessIdentity) -> None:
        if facts.config.network is None or not facts.config.network.interfaces:
            return  # lo is up already: the init brings it up in every new network namespace
        from corral.executor.network import links

        links.set_up(
            facts.id, facts.config, facts.plan.interfaces, init.pid, lambda: faults.point("create.interface")
        )

    @staticmethod
    def _make_cgroups(cgroup: Cgroup, config: Config) -> None:
        """The container's cgroups and their limits; made while the helper forks the monitor,
        which puts the first child in them only once they are done (spawn.spawn_init)."""
        try:
            cgroup.create()
        except CgroupError as exc:
            cause = exc.__cause__
            if isinstance(cause, PermissionError) and os.geteuid() != 0:
                raise NeedsRoot(cause.filename or "the cgroup hierarchy", exc) from exc
            raise
        cgroup.apply_config(config)  # the limits, and the device rules where the cgroup enforces them
        faults.point("create.cgroups")

    def _make_run_dir(self, facts: ContainerFacts, fifo: str) -> None:
        """The run dir, its exec fifo and the exit file's placeholder; RunDirError says why not."""
        run_dir = facts.plan.run_dir
        try:
            os.makedirs(run_dir, mode=0o711, exist_ok=True)
            try:
                os.unlink(fifo)
            except FileNotFoundError:
                pass
            os.mkfifo(fifo, 0o622)
            os.chmod(fifo, 0o622)  # any user of the container may open it for writing (runc does the same)
            protocol.create_exit_file(self._exit_file(facts))
        except OSError as exc:
            run_root = os.path.dirname(run_dir)
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                fix = f"free space on {run_root} or choose another run_root"
            elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
                fix = f"make {run_root} writable for corral or choose another run_root"
            else:
                fix = f"check {run_root} or choose another run_root"
            raise RunDirError(
                f"container {facts.id!r}: cannot make its run directory {run_dir}: "
                f"{os.strerror(exc.errno or 0)} ({exc}); {fix}",
                run_dir,
                container_id=facts.id,
            ) from exc

    def start(self, facts: ContainerFacts) -> tuple[HookOutcome, ...]:
        return quick.release_init(
            facts.id, self._require_init(facts), facts.plan.run_dir, bool(facts.config.hooks.start_container)
        )

    def run_hooks(self, facts: ContainerFacts, kind: str, status: str) -> tuple[HookOutcome, ...]:
        from corral.executor import hooks as hooking  # and `subprocess`: only a config with hooks needs them

        pid = facts.init.pid if facts.init is not None else None
        state = hooking.state(facts.config, facts.id, status, pid)
        return tuple(hooking.run_all(facts.config.hooks.of(kind), kind, state, cwd=facts.config.bundle))

    @staticmethod
    def _waiting_on_fifo(init: ProcessIdentity) -> bool:
        return quick.waiting_on_fifo(init)

    def alive(self, facts: ContainerFacts) -> bool:
        """The check every transition makes first: one read of /proc/<pid>/stat."""
        return facts.init is not None and proc.alive(facts.init)

    def status(self, facts: ContainerFacts) -> KernelStatus:
        init = facts.init
        if init is None or not proc.alive(init):
            return KernelStatus(alive=False, frozen=False, fifo_present=False)
        cgroup = self._cgroup(facts)
        frozen = cgroup.exists() and cgroup.frozen()
        # A run dir removed under a waiting init leaves it waiting, not started.
        gone = not os.path.isdir(facts.plan.run_dir)
        waiting = self._waiting_on_fifo(init) and (gone or os.path.exists(self._fifo(facts)))
        return KernelStatus(alive=proc.alive(init), frozen=frozen, fifo_present=waiting)

    def signal(self, facts: ContainerFacts, sig: int, all_processes: bool = False) -> None:
        plan = facts.plan
        quick.send_signal(
            facts.id, self._require_init(facts), plan.cgroup_paths, plan.created_cgroups, sig, all_processes
        )

    def wait(self, facts: ContainerFacts, timeout: float | None) -> ExitStatus:
        init = self._require_init(facts)
        monitor = facts.monitor
        watched = monitor if monitor is not None and proc.alive(monitor) else init
        if not teardown.wait_for_exit(watched, timeout):
            from corral.errors import WaitTimeout

            raise WaitTimeout(f"container {facts.id!r}", timeout or 0)
        if watched is init and monitor is not None:
            teardown.wait_for_exit(monitor, MONITOR_GRACE)
        return self.exit_status(facts)

    def exit_fd(self, facts: ContainerFacts) -> int | None:
        """A pidfd readable once the init's status is written (for an event loop; the caller closes it).

        The monitor's while it lives (it ends after writing and journalling the
        status), else the init's, as `wait` watches them; None when both are gone.
        """
        for process in (facts.monitor, facts.init):
            fd = proc.open_pidfd(process) if process is not None else None
            if fd is not None:
                return fd
        return None

    def exit_status(self, facts: ContainerFacts) -> ExitStatus:
        return teardown.exit_status(facts.plan.run_dir, facts.init, facts.monitor, self._cgroup(facts))

    def freeze(self, facts: ContainerFacts) -> None:
        quick.freeze(facts.plan.cgroup_paths, facts.plan.created_cgroups)

    def thaw(self, facts: ContainerFacts) -> None:
        quick.thaw(facts.plan.cgroup_paths, facts.plan.created_cgroups)

    def update_resources(self, facts: ContainerFacts, resources: Resources) -> None:
        self._cgroup(facts).update(resources)

    def exec(
        self, facts: ContainerFacts, process: Process, stdio: Stdio
    ) -> spawning.LinuxExecHandle | spawning.HandedOffExecHandle:
        spawning.check_stdio(stdio)
        init = self._require_init(facts)
        cgroup = self._cgroup(facts)
        request = protocol.ExecRequest(
            id=facts.id,
            init_pid=init.pid,
            init_start_time=init.start_time,
            join=tuple(ns.type for ns in _ordered(facts.config)),
            cgroup_procs=tuple(cgroup.procs_files()),
            process=process,
            seccomp=_compiled_seccomp(facts.config),  # runc too filters exec'd processes
            parent=self.parent,
            frozen=cgroup.frozen(),
        )
        if request.frozen and process.terminal:
            raise ConfigError("process.terminal", "a paused container's exec cannot have a terminal yet: resume it first")
        return spawning.spawn_exec(self._helper, request, stdio)

    def processes(self, facts: ContainerFacts) -> list[int]:
        cgroup = self._cgroup(facts)
        return cgroup.pids() if cgroup.exists() else []

    def stats(self, facts: ContainerFacts) -> Stats:
        stats = self._cgroup(facts).stats()
        if facts.plan.interfaces:
            from corral.executor.network import stats as network_stats
            from corral.records import replace

            stats = replace(stats, interfaces=network_stats.read(facts.plan.interfaces))
        return stats

    def oom_events(
        self, facts: ContainerFacts, stop: Callable[[], bool] | None = None
    ) -> Iterator[OOMEvent]:
        for count in self._cgroup(facts).oom_events(stop):
            yield OOMEvent(facts.id, count)

    def kill(self, facts: ContainerFacts, timeout: float) -> ExitStatus:
        """SIGKILL everything; the init's status, not OOM-attributed if this kill is what ended it."""
        return teardown.kill(facts.id, facts.init, facts.monitor, facts.plan.run_dir, self._cgroup(facts), timeout)

    def destroy(self, facts: ContainerFacts) -> None:
        teardown.destroy(
            facts.id, facts.init, facts.monitor, facts.plan.run_dir, self._cgroup(facts), facts.plan.interfaces
        )

    def leftovers(self, facts: ContainerFacts) -> list[str]:
        found = self._cgroup(facts).leftovers()
        if os.path.exists(facts.plan.run_dir):
            found.append(facts.plan.run_dir)
        if facts.plan.interfaces:
            from corral.executor.network import links

            found.extend(links.present(facts.plan.interfaces))
        return found

    def remove_forgotten(self, container_id: str, run_dir: str, spare: Collection[str]) -> ForgottenRemoval:
        return forgotten.remove(self.cgroups, container_id, run_dir, spare)

    def _require_init(self, facts: ContainerFacts) -> ProcessIdentity:
        if facts.init is None:
            raise ProcessGone(f"container {facts.id!r} has no recorded init")
        return facts.init


def _ordered(config: Config) -> list:
    """Namespaces in joining order: the user namespace first (it owns the others)."""
    return sorted(config.namespaces, key=lambda ns: (ns.type != "user", ns.type))
