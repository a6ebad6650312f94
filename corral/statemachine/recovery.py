"""Recovery: bring every unfinished record back into agreement with the kernel.

Run by `Runtime.recover()` and whenever a Runtime opens its root. Each
container is handled under its own lock, taken without waiting: a lock that is
held belongs to a live process in the middle of a transition (the kernel drops
the lock of a dead one), so that container is not crashed and is left alone.
Two processes recovering at once therefore never work on the same container.

What the kernel says is written back as ordinary events of the lifecycle table
(`event_between`), so every journal stays a walk of the table; the journal
detail says it was recovery that recorded the step.

Idempotent: a second run finds every record in agreement and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from corral.errors import CorralError
from corral.executor.interface import ExitStatus
from corral.statemachine.lifecycle import State, event_between, state_info
from corral.store.repository import ContainerRecord

if TYPE_CHECKING:  # pragma: no cover
    from corral.statemachine.container import Container
    from corral.statemachine.runtime import Runtime


@dataclass(frozen=True)
class RecoveryAction:
    container_id: str
    found: str
    done: str


@dataclass
class RecoveryReport:
    actions: list[RecoveryAction] = field(default_factory=list)
    busy: list[str] = field(default_factory=list)  # locked by a live process: left alone
    failed: list[RecoveryAction] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.actions)

    def for_container(self, container_id: str) -> list[RecoveryAction]:
        return [a for a in self.actions if a.container_id == container_id]


def recover(runtime: Runtime) -> RecoveryReport:
    report = RecoveryReport()
    for record in runtime._repo.unfinished():
        with runtime._locks.hold(record.id, blocking=False) as got:
            if not got:
                report.busy.append(record.id)
                continue
            container = runtime._container(record)
            try:
                action = _recover_one(runtime, container)
            except CorralError as exc:
                report.failed.append(RecoveryAction(record.id, "recovery failed", str(exc)))
                continue
            if action is not None:
                report.actions.append(action)
    return report


def _observed_state(runtime: Runtime, container: Container, record: ContainerRecord) -> State:
    status = runtime._executor.status(container._facts(record))
    if not status.alive:
        return State.STOPPED
    if status.frozen:
        return State.PAUSED
    if status.fifo_present:
        return State.CREATED
    return State.RUNNING


def _recover_one(runtime: Runtime, container: Container) -> RecoveryAction | None:
    record = container._reload()
    state = State(record.state)
    pending = record.pending_event
    rebooted = record.boot_id != runtime.boot_id()
    found = f"{state.value}" + (f", {pending} interrupted" if pending else "")
    if rebooted:
        found += ", host restarted since"

    if state is State.DESTROYED:
        return None  # unfinished() only returns it if pending; destroyed clears pending itself

    if state is State.CREATING or pending == "destroy":
        what = "create" if state is State.CREATING else "destroy"
        container._fire(
            "destroy", force=True, reason=f"{what} interrupted (its controller died); finished by recovery"
        )
        rolled_back = "rolled back: processes killed, cgroups and run dir removed, destroyed"
        return RecoveryAction(record.id, found, rolled_back if what == "create" else "destroy completed")

    done: list[str] = []
    if rebooted:
        if state_info(state).init_alive:
            container._fire("exited", exit=ExitStatus.unknown())
            done.append("stopped (exit status unknown)")
        leftovers = runtime._executor.leftovers(container._facts(container._record))
        if leftovers:
            runtime._executor.destroy(container._facts(container._record))
            done.append("removed " + ", ".join(leftovers))
        if container._record.pending_event is not None:
            _clear_intent(runtime, container)
            done.append(f"cleared the {pending} intent")
        return RecoveryAction(record.id, found, "; ".join(done)) if done else None

    if not state_info(state).init_alive:  # stopped, same boot: nothing in the kernel to agree with
        if pending is not None:
            _clear_intent(runtime, container)
            return RecoveryAction(record.id, found, f"cleared the {pending} intent")
        return None

    observed = _observed_state(runtime, container, record)
    if observed is not state:
        event = event_between(state, observed)
        if event is None:
            raise CorralError(
                f"container {record.id!r}: recorded {state.value} but the kernel says "
                f"{observed.value}, and no event of the lifecycle leads there"
            )
        if event == "exited":
            container._fire("exited", exit=runtime._executor.exit_status(container._facts()))
        else:
            container._fire(event, recovered=f"the kernel says {observed.value}")
        done.append(f"{event}: now {observed.value}")
    if container._record.pending_event is not None:
        _clear_intent(runtime, container)
        done.append(f"cleared the {pending} intent")
    return RecoveryAction(record.id, found, "; ".join(done)) if done else None


def _clear_intent(runtime: Runtime, container: Container) -> None:
    record = container._record
    container._record = runtime._repo.update(
        record.key,
        record.version,
        base=record,
        pending_event=None,
        pending_since=None,
        last_error=f"{record.pending_event} interrupted (its controller died); recovery found "
        f"the kernel {record.state}",
    )
