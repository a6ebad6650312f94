"""The Container: one container's lifecycle, driven through a `transitions` machine.

Every transition follows one recipe, whoever calls it and from whichever thread
or process:

1. take the container's lock (corral.statemachine.locks), which lasts across
   the kernel work but is not a database lock;
2. reload the record, and notice an init that died meanwhile (`exited`);
3. look the event up in the lifecycle table: not allowed → InvalidTransition,
   nothing changed;
4. record the intent (pending event) in one short transaction;
5. do the kernel work through the executor (the machine's before callback);
6. record the outcome, the new state and a journal row in one transaction,
   naming the version decided on (the after callback).

The machine never sees the kernel and the executor never decides lifecycle.
"""

from __future__ import annotations

import signal as signal_module
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from transitions import EventData, Machine

from corral import faults
from corral.config import Config, Process
from corral.errors import CorralError, InvalidTransition
from corral.executor.interface import (
    ContainerFacts,
    ContainerPlan,
    ExecHandle,
    ExitStatus,
    OOMEvent,
    ProcessIdentity,
    Stats,
    Stdio,
)
from corral.statemachine.lifecycle import (
    State,
    allowed_events,
    find_transition,
    machine_transitions,
    needs_force,
    state_info,
)
from corral.store.repository import ContainerRecord, JournalEntry, NamespaceRecord, ProcessRecord, utcnow

if TYPE_CHECKING:  # pragma: no cover
    from corral.statemachine.runtime import Runtime

#: Events whose kernel work is worth an intent record (exited has none: it is observed).
_NO_INTENT = frozenset({"exited", "oom"})

#: How long `destroy(force=True)` waits for the processes to die.
KILL_TIMEOUT = 10.0


class _Lifecycle:
    """The model the `transitions` machine drives: the state and the callbacks.

    Kept apart from Container so that the machine's generated attributes
    (`trigger`, `may_start`, `is_running`, ...) never collide with the public
    API, and so that `Container.start()` is ours, not an auto-bound trigger.
    """

    trigger: Callable[..., bool]  # added by the machine
    state: str  # kept by the machine

    def __init__(self, container: Container) -> None:
        self.container = container

    def _forced(self, event: EventData) -> bool:
        return bool(event.kwargs.get("force"))

    def _before(self, event: EventData) -> None:
        self.container._kernel_work(event)

    def _after(self, event: EventData) -> None:
        self.container._persist(event)


@dataclass(frozen=True)
class ExecResult:
    """How an exec'd process ended."""

    pid: int
    exit_status: int | None


class ExecProcess:
    """A process exec'd into a container; `wait()` records how it ended."""

    def __init__(self, container: Container, handle: ExecHandle, process_key: int) -> None:
        self._container = container
        self._handle = handle
        self._key = process_key
        self.pid = handle.pid
        self.start_time = handle.start_time

    def wait(self, timeout: float | None = None) -> int | None:
        """The exit status (code, or 128 + signal), or None if it could not be observed."""
        status = self._handle.wait(timeout)
        self._container._runtime._repo.finish_process(self._key, status.status, status.signal)
        return status.status

    def poll(self) -> int | None:
        status = self._handle.poll()
        if status is None:
            return None
        self._container._runtime._repo.finish_process(self._key, status.status, status.signal)
        return status.status


class Container:
    """One container of a Runtime. Get it from `Runtime.create()`, `load()` or `list()`."""

    def __init__(self, runtime: Runtime, record: ContainerRecord) -> None:
        self._runtime = runtime
        self._record = record
        self.id = record.id
        self._key = record.key
        self._model = _Lifecycle(self)
        self._machine = Machine(
            model=self._model,
            states=[s.value for s in State],
            transitions=machine_transitions(),
            initial=record.state,
            auto_transitions=False,
            send_event=True,
            before_state_change="_before",
            after_state_change="_after",
        )
        # Scratch space of the transition in progress (only touched under the lock).
        self._changes: dict[str, Any] = {}
        self._detail: dict[str, Any] = {}
        self._namespaces: Mapping[str, NamespaceRecord] | None = None
        self._result: Any = None
        self._on_recorded: Callable[[], None] | None = None
        self._on_failed: Callable[[], None] | None = None
        self._config: Config | None = None

    def __repr__(self) -> str:
        return f"<Container {self.id!r} {self._record.state}>"

    # -- what the record says ------------------------------------------------

    @property
    def state(self) -> State:
        """The state, after checking with the kernel that the init still lives."""
        return self.refresh()

    @property
    def recorded_state(self) -> State:
        """The state as last read from the store, without asking the kernel."""
        return State(self._record.state)

    @property
    def pid(self) -> int | None:
        """The init's PID on the host while it is expected alive, else None."""
        record = self._reload()
        if state_info(State(record.state)).init_alive:
            return record.init_pid
        return None

    @property
    def config(self) -> Config:
        return self._config_of(self._record)

    def _config_of(self, record: ContainerRecord) -> Config:
        """The record's config, parsed once: it never changes for an incarnation."""
        if self._config is None:
            self._config = Config.from_json(record.config, bundle=record.bundle)
        return self._config

    @property
    def exit_status(self) -> int | None:
        """How the init ended (code, or 128 + signal); None while alive or when unknown."""
        return self._reload().exit_status

    @property
    def oom_killed(self) -> bool:
        return self._reload().oom_killed

    @property
    def record(self) -> ContainerRecord:
        """Everything the store holds about this container, freshly read."""
        return self._reload()

    def history(self) -> list[JournalEntry]:
        """The journal: every transition this container made, oldest first."""
        return self._runtime._repo.history(self._key)

    def exec_processes(self) -> list[ProcessRecord]:
        return self._runtime._repo.processes(self._key)

    # -- lifecycle -----------------------------------------------------------

    def refresh(self) -> State:
        """Reload the record and record `exited` if the init is gone."""
        record = self._reload()
        if state_info(State(record.state)).init_alive:
            with self._runtime._locks.hold(self.id):
                self._reload()
                self._observe_exit()
        return State(self._record.state)

    def start(self) -> None:
        """Let the init exec the user's process (created → running)."""
        self._fire("start")

    def pause(self) -> None:
        """Freeze every process of the container (running → paused)."""
        self._fire("pause")

    def resume(self) -> None:
        """Thaw the container (paused → running)."""
        self._fire("resume")

    def signal(self, sig: int = signal_module.SIGTERM, *, all_processes: bool = False) -> None:
        """Send `sig` to the init (or to every process), never to a reused PID."""
        self._fire("signal", sig=int(sig), all_processes=all_processes)

    def exec(self, process: Process, *, stdio: Stdio | None = None) -> ExecProcess:
        """Run `process` in the running container's namespaces and cgroups."""
        return self._fire("exec", process=process, stdio=stdio or Stdio())

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait for the init to exit; return its status (code, or 128 + signal), None if unknown.

        The wait itself holds no lock, so other threads and processes can drive
        the container meanwhile (signal it, destroy it).
        """
        record = self._reload()
        state = State(record.state)
        if state is State.CREATING:
            raise InvalidTransition(self.id, state.value, "wait for", allowed_events(state))
        if not state_info(state).init_alive:
            return record.exit_status
        status = self._runtime._executor.wait(self._facts(record), timeout)
        with self._runtime._locks.hold(self.id):
            record = self._reload()
            if state_info(State(record.state)).init_alive:
                self._fire("exited", exit=status)
        return self._record.exit_status

    def destroy(self, force: bool = False) -> None:
        """Remove the container (stopped → destroyed); `force` kills a live one first."""
        self._fire("destroy", force=force)

    # -- reads from the kernel ----------------------------------------------

    def processes(self) -> list[int]:
        """Every PID in the container's cgroups (host PIDs), sorted."""
        record = self._require_resources("list the processes of")
        return self._runtime._executor.processes(self._facts(record))

    def stats(self) -> Stats:
        record = self._require_resources("read the stats of")
        return self._runtime._executor.stats(self._facts(record))

    def oom_events(self, stop: Callable[[], bool] | None = None) -> Iterator[OOMEvent]:
        """Yield an event each time the kernel OOM-kills in the container.

        Each is also written to the journal (the observed `oom` event) while the
        container is alive; the init's own OOM death is recorded on `exited`
        (`oom_killed`). Ends when `stop()` is true or the cgroup is empty.
        """
        record = self._require_resources("watch the OOM events of")
        for oom in self._runtime._executor.oom_events(self._facts(record), stop):
            try:
                self._fire("oom", count=oom.count)
            except InvalidTransition:
                pass  # the init is already gone: `exited` records the OOM kill
            yield oom

    # -- the transition recipe ----------------------------------------------

    def _reload(self) -> ContainerRecord:
        self._record = self._runtime._repo.get(self._key)
        return self._record

    def _require_resources(self, what: str) -> ContainerRecord:
        record = self._reload()
        state = State(record.state)
        if not state_info(state).has_resources:
            raise InvalidTransition(self.id, state.value, what, allowed_events(state))
        return record

    def _facts(self, record: ContainerRecord | None = None) -> ContainerFacts:
        record = record or self._record
        init = (
            ProcessIdentity(record.init_pid, record.init_start_time)
            if record.init_pid is not None and record.init_start_time is not None
            else None
        )
        monitor = (
            ProcessIdentity(record.monitor_pid, record.monitor_start_time)
            if record.monitor_pid is not None and record.monitor_start_time is not None
            else None
        )
        return ContainerFacts(
            id=record.id,
            config=self._config_of(record),
            plan=ContainerPlan(cgroup_paths=dict(record.cgroup_paths), run_dir=record.run_dir),
            init=init,
            monitor=monitor,
            namespaces={t: n.path for t, n in record.namespaces.items()},
        )

    def _observe_exit(self) -> bool:
        """Under the lock: fire `exited` if a live-state record's init is gone.

        Gone means another boot (exit status unknown), no recorded init, or a
        PID that is dead or now names another process.
        """
        record = self._record
        if not state_info(State(record.state)).init_alive:
            return False
        rebooted = record.boot_id != self._runtime.boot_id()
        if not rebooted and record.init_pid is not None and self._runtime._executor.alive(self._facts(record)):
            return False
        self._fire("exited", exit=ExitStatus.unknown() if rebooted else None)
        return True

    def _fire(self, event: str, *, force: bool = False, **kwargs: Any) -> Any:
        with self._runtime._locks.hold(self.id):
            self._reload()
            if event not in ("exited", "destroy"):
                self._observe_exit()
            state = State(self._record.state)
            if find_transition(state, event, force=force) is None:
                hint = "pass force=True" if needs_force(state, event) else ""
                raise InvalidTransition(self.id, state.value, event, allowed_events(state), hint)
            self._machine.set_state(state.value)
            self._changes, self._detail, self._namespaces = {}, {}, None
            self._result, self._on_recorded, self._on_failed = None, None, None
            try:
                fired = self._model.trigger(event, force=force, **kwargs)
            except BaseException:
                on_failed, self._on_failed = self._on_failed, None
                if on_failed is not None:
                    on_failed()
                raise
            if not fired:  # the table and the machine disagree: a bug, not a user error
                raise CorralError(f"{event} did not fire for container {self.id!r} in {state.value}")
            on_recorded, self._on_recorded = self._on_recorded, None
            if on_recorded is not None:
                on_recorded()
            return self._result

    def _kernel_work(self, event: EventData) -> None:
        name = event.event.name
        recovered = event.kwargs.get("recovered")
        if recovered:  # recovery records what the kernel already did; nothing to do again
            self._detail = {"recovered": recovered}
            return
        if name not in _NO_INTENT and self._record.pending_event != name:
            self._record = self._runtime._repo.update(
                self._key, self._record.version, base=self._record, pending_event=name, pending_since=utcnow()
            )
            faults.point(f"{name}.intent")
        try:
            getattr(self, f"_do_{name}")(**event.kwargs)
        except BaseException as exc:
            self._record_failure(name, exc)
            raise

    def _record_failure(self, event: str, exc: BaseException) -> None:
        if event == "create":  # rolled back by Runtime.create, which records the outcome
            return
        try:
            self._record = self._runtime._repo.update(
                self._key,
                self._reload().version,
                pending_event=None,
                pending_since=None,
                last_error=f"{event}: {exc}",
            )
        except CorralError:
            pass  # the original error matters more; recovery will clear the intent

    def _persist(self, event: EventData) -> None:
        name = event.event.name
        assert event.transition is not None
        source = event.transition.source
        dest = event.transition.dest or source
        self._record = self._runtime._repo.update(
            self._key,
            self._record.version,
            base=self._record,
            journal=(name, source, dest, self._detail),
            namespaces=self._namespaces,
            state=dest,
            pending_event=None,
            pending_since=None,
            **self._changes,
        )
        faults.point(f"{name}.recorded")

    # -- kernel work of each event (the machine's before callback) ------------

    def _do_create(self, stdio: Stdio | None = None, **_: Any) -> None:
        executor = self._runtime._executor
        spawned = executor.spawn(self._facts(), stdio or Stdio())
        facts = spawned.facts
        self._changes = {
            "init_pid": facts.init.pid,
            "init_start_time": facts.init.start_time,
            "boot_id": self._runtime.boot_id(),
            "monitor_pid": facts.monitor.pid if facts.monitor else None,
            "monitor_start_time": facts.monitor.start_time if facts.monitor else None,
        }
        self._namespaces = {
            t: NamespaceRecord(path, facts.namespace_inodes.get(t))
            for t, path in facts.namespaces.items()
        }
        self._detail = {"pid": facts.init.pid}
        self._on_recorded = spawned.confirm
        self._on_failed = spawned.abort  # not recorded: the monitor kills the init now

    def _do_start(self, **_: Any) -> None:
        self._runtime._executor.start(self._facts())

    def _do_pause(self, **_: Any) -> None:
        self._runtime._executor.freeze(self._facts())

    def _do_resume(self, **_: Any) -> None:
        self._runtime._executor.thaw(self._facts())

    def _do_signal(self, sig: int, all_processes: bool = False, **_: Any) -> None:
        self._runtime._executor.signal(self._facts(), sig, all_processes)
        faults.point("signal.sent")
        self._detail = {"signal": sig, "all": all_processes}

    def _do_exec(self, process: Process, stdio: Stdio, **_: Any) -> None:
        handle = self._runtime._executor.exec(self._facts(), process, stdio)
        faults.point("exec.spawned")
        row = self._runtime._repo.add_process(
            self._key, handle.pid, handle.start_time, self._runtime.boot_id(), tuple(process.args)
        )
        self._detail = {"pid": handle.pid, "args": list(process.args)}
        self._result = ExecProcess(self, handle, row.key)

    def _do_oom(self, count: int = 0, **_: Any) -> None:
        self._detail = {"oom_kills": count}

    def _do_exited(self, exit: ExitStatus | None = None, **_: Any) -> None:
        if exit is None:
            exit = self._runtime._executor.exit_status(self._facts())
        if exit.oom_killed and self._sigkilled_by_corral():
            exit = ExitStatus(exit.status, exit.signal, oom_killed=False)
        self._set_exit(exit)

    def _sigkilled_by_corral(self) -> bool:
        """Whether signal(SIGKILL) was sent through corral to this incarnation."""
        return any(
            e.event == "signal" and e.detail.get("signal") == signal_module.SIGKILL for e in self.history()
        )

    def _set_exit(self, exit: ExitStatus) -> None:
        self._changes.update(
            exit_status=exit.status, exit_signal=exit.signal, oom_killed=exit.oom_killed
        )
        self._detail.update(
            exit_status=exit.status, signal=exit.signal, oom_killed=exit.oom_killed
        )
        if not exit.known:
            self._detail["exit"] = "exit status unknown"

    def _do_destroy(self, force: bool = False, reason: str | None = None, **_: Any) -> None:
        executor = self._runtime._executor
        facts = self._facts()
        state = State(self._record.state)
        if state_info(state).init_alive:
            gone = self._record.boot_id != self._runtime.boot_id()
            exit = ExitStatus.unknown() if gone else executor.kill(facts, KILL_TIMEOUT)
            self._set_exit(exit)
        executor.destroy(facts)
        faults.point("destroy.run-dir-removed")
        self._detail["force"] = force
        if reason:
            self._detail["reason"] = reason
            self._changes["last_error"] = reason

