"""The Container: the public face of one container's lifecycle.

Every change goes through the transition recipe (transition.py), whose kernel
work is in events.py; this module holds what a caller asks of a container: its
record, its lifecycle calls, and reads from the kernel.
"""

from __future__ import annotations

import signal as signal_module
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime

from corral.config import Config, Process, Resources
from corral.errors import ConfigError, InvalidTransition, WaitTimeout
from corral.executor.interface import OOMEvent, Stats, Stdio
from corral.statemachine.consoles import check_console
from corral.statemachine.recipes import RecipeBook
from corral.statemachine.events import KILL_TIMEOUT
from corral.statemachine import logs as logfile
from corral.statemachine import output
from corral.statemachine.lifecycle import State, allowed_events, state_info
from corral.statemachine.process import ExecProcess
from corral.statemachine.transition import Recipe
from corral.store.repository import ContainerRecord, JournalEntry, ProcessRecord
from corral.types import ExecResult, LogLine, StdioTarget

__all__ = ["KILL_TIMEOUT", "Container", "ExecProcess"]



class Container:
    """One container of a Runtime. Get it from `Runtime.create()`, `run()`, `load()` or `list()`.

    Raises, from every method: `StoreError` (the database failed; it names the
    file) and, from those that change the container, `LockError`; each method's
    docstring names the errors particular to it. Constructing one raises nothing.
    """

    def __init__(self, book: RecipeBook, key: int, container_id: str, recipe: Recipe | None = None) -> None:
        """Made by the Runtime; without `recipe` (what `list()` hands out) the recipe, and with it
        the record, is made on first use, so a list of 10,000 records reads none."""
        self._book = book
        self._made = recipe
        self._context = book.context
        self.id = container_id
        self._key = key
        #: Whether leaving a `with container:` block keeps the container (else: destroy(force=True)).
        self.keep = False
        #: The pty master of a `process.terminal` container, on the Container that
        #: `Runtime.create(..., console=True)` returned (None elsewhere): the caller's to close.
        self.console_fd: int | None = None

    @property
    def _recipe(self) -> Recipe:
        recipe = self._made
        if recipe is None:  # listed: made on first use, the same one whichever thread comes first
            recipe = self._made = self._book.recipe(self._key, self.id)
        return recipe

    def __repr__(self) -> str:
        return f"<Container {self.id!r} {self._recipe.record.state}>"

    def __enter__(self) -> Container:
        return self

    def __exit__(self, *exc: object) -> None:
        """Destroy with force, unless `keep` was set: a block's container must not outlive it by accident.

        Raises what `destroy()` raises.
        """
        if not self.keep and self._recipe.reload().state != State.DESTROYED.value:
            self.destroy(force=True)

    # -- what the record says ------------------------------------------------

    @property
    def state(self) -> State:
        """The state, after checking with the kernel that the init still lives. Raises StoreError."""
        return self.refresh()

    @property
    def recorded_state(self) -> State:
        """The state as last read from the store, without asking the kernel.

        Raises nothing, except on a Container from `Runtime.list()` not used yet:
        that first use reads its record (StoreError).
        """
        return State(self._recipe.record.state)

    @property
    def pid(self) -> int | None:
        """The init's PID on the host while it is expected alive, else None. Raises StoreError."""
        record = self._recipe.reload()
        if state_info(State(record.state)).init_alive:
            return record.init_pid
        return None

    @property
    def config(self) -> Config:
        """The config the container was created with (the record holds it). Raises as `recorded_state`."""
        return self._recipe.config_of(self._recipe.record)

    @property
    def exit_status(self) -> int | None:
        """How the init ended (code, or 128 + signal); None while alive or when unknown. Raises StoreError."""
        return self._recipe.reload().exit_status

    @property
    def oom_killed(self) -> bool:
        """Whether the kernel's OOM killer ended the init (recorded at `exited`). Raises StoreError."""
        return self._recipe.reload().oom_killed

    @property
    def record(self) -> ContainerRecord:
        """Everything the store holds about this container, freshly read. Raises StoreError."""
        return self._recipe.reload()

    def history(self) -> list[JournalEntry]:
        """The journal: every transition this container made, oldest first. Raises StoreError."""
        return self._context.store.history(self._key)

    def exec_processes(self) -> list[ProcessRecord]:
        """The processes exec'd into this container, oldest first, with how each ended. Raises StoreError."""
        return self._context.store.processes(self._key)

    # -- lifecycle -----------------------------------------------------------

    def refresh(self) -> State:
        """Reload the record and record `exited` if the init is gone; return the state.

        An init found alive needs nothing recorded, so that answer takes no
        lock (one read of /proc/<pid>/stat): `.state` of many containers does
        not queue behind their transitions. Only a change to record (an init
        gone, another boot, an intent pending) takes the lock.

        Raises StoreError, LockError.
        """
        record = self._recipe.reload()
        if state_info(State(record.state)).init_alive:
            if self._recipe.alive_as_recorded(record):
                return State(record.state)
            with self._context.locks.hold(self.id):
                record = self._recipe.observe_exit(self._recipe.reload())
        return State(record.state)

    def start(self) -> None:
        """Let the init exec the user's process (created → running).

        Raises InvalidTransition in any other state; ExecutorError if the init is
        gone or did not exec (InitError with its own message).
        """
        self._recipe.fire("start")

    def pause(self) -> None:
        """Freeze every process of the container (running → paused).

        Raises InvalidTransition unless running; FreezeTimeout if the cgroup does not freeze.
        """
        self._recipe.fire("pause")

    def resume(self) -> None:
        """Thaw the container (paused → running).

        Raises InvalidTransition unless paused; CgroupError if the cgroup cannot be thawed.
        """
        self._recipe.fire("resume")

    def signal(self, sig: int = signal_module.SIGTERM, *, all_processes: bool = False) -> None:
        """Send `sig` to the init (or to every process), never to a reused PID.

        Raises InvalidTransition unless created, running or paused (the init has
        exited: a signal has nobody to reach); ProcessGone if the init vanished meanwhile.
        """
        self._recipe.fire("signal", sig=int(sig), all_processes=all_processes)

    def update(self, resources: Resources) -> None:
        """Change the container's cgroup limits, as `runc update` does.

        What `resources` sets replaces the container's setting, what it leaves
        unset stays (hugepage limits: per page size). The merged resources are
        validated as create validates them, written to the cgroups, and recorded
        (`config` shows them, and recovery uses them); the journal's `update` row
        holds them.

        Raises InvalidTransition unless created, running or paused; ConfigError
        naming the field for a value create would refuse, for device rules (not
        updatable), or for a value the kernel refuses (a memory limit below what
        it cannot reclaim): nothing is then changed.
        """
        self._recipe.fire("update", resources=resources)

    def exec(
        self, process: Process, *, stdio: Stdio | None = None, console: bool = False, ignore_paused: bool = False
    ) -> ExecProcess:
        """Run `process` in the running container's namespaces and cgroups.

        What `process` leaves unset (its user, capabilities, no_new_privileges,
        rlimits, env and cwd: `corral.config.INHERITED`) is the container's own
        process's, as with `runc exec`; what it sets overrides. `stdio` is the
        process's own (default: /dev/null), its `extra_fds` the process's 3, 4, ...
        (runc exec's `--preserve-fds`); `Stdio.logged()` is refused, the log
        being the container's own output. A process with `terminal=True` needs
        `console=True`: its new pty's master is then the returned ExecProcess's
        `console_fd`, the caller's to close.

        With `ignore_paused` (runc exec's --ignore-paused) a paused container is
        allowed too: the process joins the frozen cgroup, freezes with it and
        runs once the container is resumed.

        Raises InvalidTransition unless running (or paused, with `ignore_paused`);
        ConfigError for a logged Stdio or a
        terminal without console=True (or the reverse), InvalidStdio for a closed
        descriptor; InitError if the process could not be started (its own message:
        a missing program, a bad user...).
        """
        if stdio is not None and stdio.log:
            raise ConfigError("stdio.log", "only the container's own process is logged; give exec a file or a pipe")
        check_console(process.terminal, console, stdio, where="process", call="Container.exec")
        result: ExecProcess = self._recipe.fire("exec", force=ignore_paused, process=process, stdio=stdio or Stdio())
        return result

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait for the init to exit; return its status (code, or 128 + signal), None if unknown.

        The wait itself holds no lock, so other threads and processes can drive
        the container meanwhile (signal it, destroy it). `timeout` is in seconds;
        None waits for ever.

        Raises WaitTimeout (a TimeoutError) when the init outlives `timeout`: the
        container is untouched, wait again or stop it. Raises InvalidTransition
        while it is being created.
        """
        record = self._recipe.reload()
        state = State(record.state)
        if state is State.CREATING:
            raise InvalidTransition(self.id, state.value, "wait for", allowed_events(state))
        if not state_info(state).init_alive:
            return record.exit_status
        status = self._context.executor.wait(self._recipe.facts(record), timeout)
        with self._context.locks.hold(self.id):
            record = self._recipe.reload()
            if state_info(State(record.state)).init_alive:
                self._recipe.fire("exited", exit=status)
            return self._recipe.record.exit_status  # as `exited` wrote it (adopted), not read back

    def stop(self, timeout: float = 10) -> int | None:
        """Stop as `docker stop` does: SIGTERM, then SIGKILL if the init outlives `timeout` seconds.

        Returns the exit status as `wait()` does. A container that is already
        stopped is left alone. A paused container's SIGTERM waits for a resume
        that does not come, so it ends with the SIGKILL.

        Raises InvalidTransition while it is being created.
        """
        if not state_info(self.refresh()).init_alive:
            return self.wait()
        try:
            self.signal(signal_module.SIGTERM)
            return self.wait(timeout)
        except WaitTimeout:
            pass
        except InvalidTransition:  # it exited on its own meanwhile
            return self.wait()
        try:
            self.signal(signal_module.SIGKILL)
        except InvalidTransition:
            pass
        return self.wait()

    def destroy(self, force: bool = False) -> None:
        """Remove the container (stopped → destroyed); `force` kills a live one first.

        Its cgroups, run dir (and the log in it) go; the record stays as a
        tombstone with its journal until `Runtime.purge()`. Raises
        InvalidTransition for a live container without `force`, or a destroyed
        one; CgroupError if a cgroup cannot be removed (recovery retries).
        """
        self._recipe.fire("destroy", force=force)

    # -- reads from the kernel ----------------------------------------------

    def processes(self) -> list[int]:
        """Every PID in the container's cgroups (host PIDs), sorted.

        Raises InvalidTransition once the container is destroyed (or while being created).
        """
        record = self._require_resources("list the processes of")
        return self._context.executor.processes(self._recipe.facts(record))

    def stats(self) -> Stats:
        """Memory, CPU and pids usage from the container's cgroups.

        Raises InvalidTransition once the container is destroyed (or while being created).
        """
        record = self._require_resources("read the stats of")
        return self._context.executor.stats(self._recipe.facts(record))

    def oom_events(self, stop: Callable[[], bool] | None = None) -> Iterator[OOMEvent]:
        """Yield an event each time the kernel OOM-kills in the container.

        Each is also written to the journal (the observed `oom` event) while the
        container is alive; the init's own OOM death is recorded on `exited`
        (`oom_killed`). Ends when `stop()` is true or the cgroup is empty.

        Raises InvalidTransition once the container is destroyed (or while being created).
        """
        record = self._require_resources("watch the OOM events of")
        for oom in self._context.executor.oom_events(self._recipe.facts(record), stop):
            try:
                with self._context.locks.hold(self.id):  # the monitor may have journalled this kill
                    if not any(e.event == "oom" and e.detail.get("oom_kills", 0) >= oom.count for e in self.history()):
                        self._recipe.fire("oom", count=oom.count)
            except InvalidTransition:
                pass  # the init is already gone: `exited` records the OOM kill
            yield oom

    # -- output --------------------------------------------------------------

    def logs(
        self, follow: bool = False, since: datetime | float | None = None, tail: int | None = None
    ) -> Iterator[LogLine]:
        """The lines the container wrote to stdout and stderr, oldest first, from its log.

        Only a container created with `stdio=Stdio.logged()` has a log: its monitor
        writes it, so it holds what the container wrote while no controller ran.
        `since` (a datetime, naive meaning UTC, or Unix seconds) skips older lines;
        `tail` keeps the last `tail` lines of what there is; `follow` then goes on
        yielding new lines as they come (polled every 0.1 s) until the container
        has exited and its log is read to the end. The log is bounded (`Stdio`):
        the oldest output may have been rotated away.

        Raises LogsUnavailable when there is no log (not logged, or destroyed: the
        log is in the run dir, removed with it).
        """
        record = self._recipe.reload()

        def running() -> bool:
            return state_info(self.refresh()).init_alive

        return logfile.read(record.run_dir, self.id, follow=follow, since=since, tail=tail, running=running)

    def exec_run(
        self,
        args: Sequence[str] | Process,
        *,
        stdin: StdioTarget = None,
        timeout: float | None = None,
    ) -> ExecResult:
        """Run a process in the container and collect its output: ``status, out, err = box.exec_run(["ls"])``.

        `args` is the command (the rest inherited from the container's process, as
        `exec()` does) or a whole `Process`. The output is held in memory; the
        status is the exit code, 128 + signal, or None if unobservable. Once the
        process has exited, output from anything it left running in the
        background is not waited for (beyond 0.2 s).

        Raises what `exec()` raises, and WaitTimeout when the process outlives
        `timeout` seconds (it is left running).
        """
        process = args if isinstance(args, Process) else Process(args=tuple(args))
        return output.run(
            lambda stdio: self.exec(process, stdio=stdio), stdin, timeout, f"exec in container {self.id!r}"
        )

    def _require_resources(self, what: str) -> ContainerRecord:
        record = self._recipe.reload()
        state = State(record.state)
        if not state_info(state).has_resources:
            raise InvalidTransition(self.id, state.value, what, allowed_events(state))
        return record
