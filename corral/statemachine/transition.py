"""The transition recipe: how every event of one container fires, whoever fires it.

Every transition follows one recipe, from whichever thread or process:

1. take the container's lock (corral.statemachine.locks), which lasts across
   the kernel work but is not a database lock;
2. reload the record, and notice an init that died meanwhile (`exited`);
3. look the event up in the lifecycle table: not allowed → InvalidTransition,
   nothing changed;
4. record the intent (pending event) in one short transaction;
5. do the kernel work through the executor: the event's function in
   events.KERNEL_WORK (the machine's before callback), writing into a Step made
   for this firing only;
6. record the outcome, the new state and a journal row in one transaction,
   naming the version decided on (the after callback); then the step's
   `on_recorded` hook runs, or its `on_failed` hook if anything failed first.

A `transitions` Machine built from the lifecycle table drives steps 5 and 6.
The machine never sees the kernel and the executor never decides lifecycle.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from typing import Any

from transitions import EventData, Machine

from corral import faults
from corral.config import Config
from corral.errors import CorralError, InvalidTransition
from corral.executor.interface import ContainerFacts, ExitStatus
from corral.statemachine.context import Context
from corral.statemachine.events import KERNEL_WORK, REBOOTED
from corral.statemachine.lifecycle import (
    State,
    allowed_events,
    find_transition,
    force_hint,
    machine_transitions,
    state_info,
)
from corral.statemachine.step import Step, facts_of
from corral.store.repository import ContainerRecord, utcnow

#: Events whose kernel work is worth an intent record (exited has none: it is observed).
_NO_INTENT = frozenset({"exited", "oom"})

log = logging.getLogger("corral")


class _Model:
    """The model the `transitions` machine drives: the state and the callbacks.

    Kept apart from Container so that the machine's generated attributes
    (`trigger`, `may_start`, `is_running`, ...) never collide with the public
    API. It holds nothing of a transition: each firing passes its Step along.
    """

    trigger: Callable[..., bool]  # added by the machine
    state: str  # kept by the machine

    def _forced(self, event: EventData) -> bool:
        return bool(event.kwargs.get("force"))

    def _before(self, event: EventData) -> None:
        _kernel_work(event)

    def _after(self, event: EventData) -> None:
        _persist(event)


class Recipe:
    """The transitions of one container: its last-read record, its machine, its config.

    One per Container (the Runtime makes both); used by the Container's public
    API, by `Runtime.create` and by recovery.

    Readers in other threads read and keep records without the container's
    lock, so the kept record (`record`) is only a cache for reads: it is
    replaced under a small guard and never by an older version, and a
    transition decides only on the record it reloaded itself under the lock.
    A reader can therefore never make a writer decide on a stale state.
    """

    def __init__(
        self, context: Context, record: ContainerRecord | None, *, key: int = 0, container_id: str = ""
    ) -> None:
        """With `record` None, only `key` and `container_id`: the record is read on first use.

        `Runtime.list()` makes its recipes so: a list of 10,000 records then costs
        one index query, and only the containers the caller uses read a record.
        """
        self.context = context
        self._record = record
        self._record_guard = threading.Lock()
        self.id = record.id if record is not None else container_id
        self.key = record.key if record is not None else key
        self._config: Config | None = None
        self._config_text = ""
        self._machine: Machine | None = None  # built on the first firing: listing many containers fires none

    @functools.cached_property
    def _model(self) -> _Model:
        """Made with the machine, on the first firing: a listed Container may never fire."""
        return _Model()

    def _machine_for(self, state: str) -> Machine:
        if self._machine is None:
            self._machine = Machine(
                model=self._model,
                states=[s.value for s in State],
                transitions=machine_transitions(),
                initial=state,
                auto_transitions=False,
                send_event=True,
                before_state_change="_before",
                after_state_change="_after",
            )
        return self._machine

    @property
    def record(self) -> ContainerRecord:
        """The newest record this process has read or written (maybe already outdated).

        A listed recipe's first use reads it (StoreError if that fails).
        """
        record = self._record
        return self.reload() if record is None else record

    def reload(self) -> ContainerRecord:
        """The record as the store has it now (also kept, unless a newer one already is)."""
        record = self.context.store.get(self.key)
        self.adopt(record)
        return record

    def adopt(self, record: ContainerRecord) -> None:
        """Keep `record` as the last-read one unless the one held is newer."""
        with self._record_guard:
            if self._record is None or record.version >= self._record.version:
                self._record = record

    def config_of(self, record: ContainerRecord) -> Config:
        """The record's config, parsed once per text (only `update` changes it: its resources)."""
        if self._config is None or self._config_text != record.config:
            self._config = Config.from_json(record.config, bundle=record.bundle)
            self._config_text = record.config
        return self._config

    def facts(self, record: ContainerRecord | None = None) -> ContainerFacts:
        record = record or self.record
        return facts_of(record, self.config_of(record))

    def observe_exit(self, record: ContainerRecord) -> ContainerRecord:
        """Under the lock, on the record just reloaded: fire `exited` if its init is gone.

        Gone means another boot (exit status unknown), no recorded init, or a
        PID that is dead or now names another process. Returns the record as it
        now is.
        """
        if not state_info(State(record.state)).init_alive:
            return record
        rebooted = record.boot_id != self.context.boot_id()
        if not rebooted and record.init_pid is not None and self.context.executor.alive(self.facts(record)):
            return record
        self._fire_on(record, "exited", force=False, kwargs={"exit": ExitStatus.unknown(REBOOTED) if rebooted else None})
        return self.record  # what `exited` just wrote (adopted), not read back

    def alive_as_recorded(self, record: ContainerRecord) -> bool:
        """Whether `record` needs nothing recorded: no intent, this boot, its init alive (no lock)."""
        return (
            record.pending_event is None
            and record.init_pid is not None
            and record.boot_id == self.context.boot_id()
            and self.context.executor.alive(self.facts(record))
        )

    def fire(self, event: str, *, force: bool = False, **kwargs: Any) -> Any:
        """Run the recipe for `event`; return what its kernel work returns (exec: an ExecProcess)."""
        with self.context.locks.hold(self.id):
            record = self.reload()
            if event not in ("exited", "destroy"):
                record = self.observe_exit(record)
            return self._fire_on(record, event, force=force, kwargs=kwargs)

    def _fire_on(self, record: ContainerRecord, event: str, *, force: bool, kwargs: dict[str, Any]) -> Any:
        """Steps 3 to 6 on `record`, which the caller reloaded under the lock it holds."""
        state = State(record.state)
        if find_transition(state, event, force=force) is None:
            hint = force_hint(state, event)
            raise InvalidTransition(self.id, state.value, event, allowed_events(state), hint)
        self._machine_for(state.value).set_state(state.value)
        step = Step(event, self.context, record, self.config_of)
        try:
            fired = self._model.trigger(event, step=step, force=force, **kwargs)
        except BaseException:
            self.adopt(step.record)
            if step.on_failed is not None:
                step.on_failed()
            raise
        self.adopt(step.record)
        if not fired:  # the table and the machine disagree: a bug, not a user error
            raise CorralError(f"{event} did not fire for container {self.id!r} in {state.value}")
        if step.on_recorded is not None:
            step.on_recorded()
        return step.result


def _kernel_work(event: EventData) -> None:
    kwargs = dict(event.kwargs)
    step: Step = kwargs.pop("step")
    name = step.event
    recovered = kwargs.get("recovered")
    if recovered:  # recovery records what the kernel already did; nothing to do again
        step.detail = {"recovered": recovered}
        return
    record = step.record
    if name not in _NO_INTENT and record.pending_event != name:
        step.record = step.context.store.update(
            record.key, record.version, base=record, pending_event=name, pending_since=utcnow()
        )
        faults.point(f"{name}.intent")
    try:
        KERNEL_WORK[name](step, **kwargs)
    except BaseException as exc:
        _record_failure(step, exc)
        raise


def _record_failure(step: Step, exc: BaseException) -> None:
    if step.event == "create":  # rolled back by Runtime.create, which records the outcome
        return
    store = step.context.store
    try:
        step.record = store.get(step.record.key)
        step.record = store.update(
            step.record.key,
            step.record.version,
            pending_event=None,
            pending_since=None,
            last_error=f"{step.event}: {exc}",
        )
    except CorralError:
        pass  # the original error matters more; recovery will clear the intent


def _persist(event: EventData) -> None:
    step: Step = event.kwargs["step"]
    name = event.event.name
    assert event.transition is not None
    source = event.transition.source
    dest = event.transition.dest or source
    record = step.record
    step.record = step.context.store.update(
        record.key,
        record.version,
        base=record,
        journal=(name, source, dest, step.detail),
        namespaces=step.namespaces,
        state=dest,
        pending_event=None,
        pending_since=None,
        **step.changes,
    )
    log.debug("container %s: %s: %s -> %s %s", record.id, name, source, dest, step.detail or "")
    faults.point(f"{name}.recorded")
