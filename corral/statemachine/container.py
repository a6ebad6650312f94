"""The Container: the public face of one container's lifecycle.

Every change goes through the transition recipe (transition.py), whose kernel
work is in events.py; this module holds what a caller asks of a container: its
record, its lifecycle calls, and reads from the kernel.
"""

from __future__ import annotations

import signal as signal_module
from collections.abc import Callable, Iterator

from corral.config import Config, Process
from corral.errors import InvalidTransition, WaitTimeout
from corral.executor.interface import OOMEvent, Stats, Stdio
from corral.statemachine.events import KILL_TIMEOUT
from corral.statemachine.lifecycle import State, allowed_events, state_info
from corral.statemachine.process import ExecProcess
from corral.statemachine.transition import Recipe
from corral.store.repository import ContainerRecord, JournalEntry, ProcessRecord

__all__ = ["KILL_TIMEOUT", "Container", "ExecProcess"]


class Container:
    """One container of a Runtime. Get it from `Runtime.create()`, `load()` or `list()`."""

    def __init__(self, recipe: Recipe) -> None:
        self._recipe = recipe
        self._context = recipe.context
        self.id = recipe.id
        self._key = recipe.key
        #: Whether leaving a `with container:` block keeps the container (else: destroy(force=True)).
        self.keep = False

    def __repr__(self) -> str:
        return f"<Container {self.id!r} {self._recipe.record.state}>"

    def __enter__(self) -> Container:
        return self

    def __exit__(self, *exc: object) -> None:
        """Destroy with force, unless `keep` was set: a block's container must not outlive it by accident."""
        if not self.keep and self._recipe.reload().state != State.DESTROYED.value:
            self.destroy(force=True)

    # -- what the record says ------------------------------------------------

    @property
    def state(self) -> State:
        """The state, after checking with the kernel that the init still lives."""
        return self.refresh()

    @property
    def recorded_state(self) -> State:
        """The state as last read from the store, without asking the kernel."""
        return State(self._recipe.record.state)

    @property
    def pid(self) -> int | None:
        """The init's PID on the host while it is expected alive, else None."""
        record = self._recipe.reload()
        if state_info(State(record.state)).init_alive:
            return record.init_pid
        return None

    @property
    def config(self) -> Config:
        return self._recipe.config_of(self._recipe.record)

    @property
    def exit_status(self) -> int | None:
        """How the init ended (code, or 128 + signal); None while alive or when unknown."""
        return self._recipe.reload().exit_status

    @property
    def oom_killed(self) -> bool:
        return self._recipe.reload().oom_killed

    @property
    def record(self) -> ContainerRecord:
        """Everything the store holds about this container, freshly read."""
        return self._recipe.reload()

    def history(self) -> list[JournalEntry]:
        """The journal: every transition this container made, oldest first."""
        return self._context.store.history(self._key)

    def exec_processes(self) -> list[ProcessRecord]:
        return self._context.store.processes(self._key)

    # -- lifecycle -----------------------------------------------------------

    def refresh(self) -> State:
        """Reload the record and record `exited` if the init is gone.

        An init found alive needs nothing recorded, so that answer takes no
        lock (one read of /proc/<pid>/stat): `.state` of many containers does
        not queue behind their transitions. Only a change to record (an init
        gone, another boot, an intent pending) takes the lock.
        """
        record = self._recipe.reload()
        if state_info(State(record.state)).init_alive:
            if self._recipe.alive_as_recorded(record):
                return State(record.state)
            with self._context.locks.hold(self.id):
                record = self._recipe.observe_exit(self._recipe.reload())
        return State(record.state)

    def start(self) -> None:
        """Let the init exec the user's process (created → running)."""
        self._recipe.fire("start")

    def pause(self) -> None:
        """Freeze every process of the container (running → paused)."""
        self._recipe.fire("pause")

    def resume(self) -> None:
        """Thaw the container (paused → running)."""
        self._recipe.fire("resume")

    def signal(self, sig: int = signal_module.SIGTERM, *, all_processes: bool = False) -> None:
        """Send `sig` to the init (or to every process), never to a reused PID."""
        self._recipe.fire("signal", sig=int(sig), all_processes=all_processes)

    def exec(self, process: Process, *, stdio: Stdio | None = None) -> ExecProcess:
        """Run `process` in the running container's namespaces and cgroups.

        What `process` leaves unset (its user, capabilities, no_new_privileges,
        rlimits, env and cwd: `corral.config.INHERITED`) is the container's own
        process's, as with `runc exec`; what it sets overrides.
        """
        result: ExecProcess = self._recipe.fire("exec", process=process, stdio=stdio or Stdio())
        return result

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait for the init to exit; return its status (code, or 128 + signal), None if unknown.

        The wait itself holds no lock, so other threads and processes can drive
        the container meanwhile (signal it, destroy it).
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
            return self._recipe.reload().exit_status

    def stop(self, timeout: float = 10) -> int | None:
        """Stop as `docker stop` does: SIGTERM, then SIGKILL if the init outlives `timeout` seconds.

        Returns the exit status as `wait()` does. A container that is already
        stopped is left alone. A paused container's SIGTERM waits for a resume
        that does not come, so it ends with the SIGKILL. Raises InvalidTransition
        while it is being created.
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
        """Remove the container (stopped → destroyed); `force` kills a live one first."""
        self._recipe.fire("destroy", force=force)

    # -- reads from the kernel ----------------------------------------------

    def processes(self) -> list[int]:
        """Every PID in the container's cgroups (host PIDs), sorted."""
        record = self._require_resources("list the processes of")
        return self._context.executor.processes(self._recipe.facts(record))

    def stats(self) -> Stats:
        record = self._require_resources("read the stats of")
        return self._context.executor.stats(self._recipe.facts(record))

    def oom_events(self, stop: Callable[[], bool] | None = None) -> Iterator[OOMEvent]:
        """Yield an event each time the kernel OOM-kills in the container.

        Each is also written to the journal (the observed `oom` event) while the
        container is alive; the init's own OOM death is recorded on `exited`
        (`oom_killed`). Ends when `stop()` is true or the cgroup is empty.
        """
        record = self._require_resources("watch the OOM events of")
        for oom in self._context.executor.oom_events(self._recipe.facts(record), stop):
            try:
                self._recipe.fire("oom", count=oom.count)
            except InvalidTransition:
                pass  # the init is already gone: `exited` records the OOM kill
            yield oom

    def _require_resources(self, what: str) -> ContainerRecord:
        record = self._recipe.reload()
        state = State(record.state)
        if not state_info(state).has_resources:
            raise InvalidTransition(self.id, state.value, what, allowed_events(state))
        return record
