"""Recovery: bring every unfinished record back into agreement with the kernel.

Run by `Runtime.recover()`, and when a Runtime opens its root: in full if the
host restarted since the last full recovery (one read of the boot id the
store keeps), else only for interrupted intents (`recover_interrupted`, an
indexed query). Either works on the Runtime's Context and each container's
Recipe (never the Runtime). Each
container is handled under its own lock, taken without waiting: a lock that is
held belongs to a live process in the middle of a transition (the kernel drops
the lock of a dead one), so that container is not crashed and is left alone.
Two processes recovering at once therefore never work on the same container.

What the kernel says is written back as ordinary events of the lifecycle table
(`event_between`), so every journal stays a walk of the table; the journal
detail says it was recovery that recorded the step.

Then it removes orphans, what this store left in the kernel that no live record
owns (orphans.py): run dirs under the run root, and empty cgroup directories
its tombstones recorded.

Idempotent: a second run finds every record in agreement and changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from corral.errors import CorralError
from corral.executor.interface import ExitStatus
from corral.statemachine.context import Context
from corral.statemachine.events import REBOOTED
from corral.statemachine.lifecycle import State, event_between, state_info
from corral.statemachine.orphans import Orphan, sweep
from corral.statemachine.transition import Recipe
from corral.store.repository import ContainerRecord

log = logging.getLogger("corral")


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
    #: Run dirs and cgroup directories no live record owned (orphans.py), and what was done.
    orphans: list[Orphan] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.actions) or any(o.done == "removed" for o in self.orphans)

    def for_container(self, container_id: str) -> list[RecoveryAction]:
        return [a for a in self.actions if a.container_id == container_id]


def recover(context: Context, recipe_for: Callable[[ContainerRecord], Recipe]) -> RecoveryReport:
    """Recover every unfinished record; `recipe_for` gives the recipe of a record's container."""
    report = RecoveryReport()
    boot_id = context.boot_id()
    _recover_records(context, [r for r in context.store.unfinished() if _may_need_work(r, boot_id)], recipe_for, report)
    orphans, busy = sweep(context)
    report.orphans.extend(orphans)
    for orphan in orphans:
        log.info("recovery: %s of container %s: %s", orphan.path, orphan.container_id, orphan.done)
    report.busy.extend(b for b in busy if b not in report.busy)
    return report


def recover_interrupted(context: Context, recipe_for: Callable[[ContainerRecord], Recipe]) -> RecoveryReport:
    """Finish or roll back the records with an interrupted intent, and only those.

    What opening a store does when the host has not restarted since the last
    full recovery: a crashed controller's half-done transition is finished
    before anything else happens, at a cost of O(intents) (an indexed query),
    however many records the store holds. An init that died unobserved is
    recorded by the next look at its container (`state`, any transition) or
    by the full `recover()`.
    """
    report = RecoveryReport()
    _recover_records(context, context.store.interrupted(), recipe_for, report)
    return report


def _may_need_work(record: ContainerRecord, boot_id: str) -> bool:
    """False for what `_recover_one` would leave as it is without a look at the kernel:
    a stopped record of this boot with no intent (skipped without taking its lock)."""
    return not (record.state == State.STOPPED.value and record.pending_event is None and record.boot_id == boot_id)


def _recover_records(
    context: Context,
    records: list[ContainerRecord],
    recipe_for: Callable[[ContainerRecord], Recipe],
    report: RecoveryReport,
) -> None:
    for record in records:
        with context.locks.hold(record.id, blocking=False) as got:
            if not got:
                report.busy.append(record.id)
                continue
            recipe = recipe_for(record)
            try:
                action = _recover_one(context, recipe)
            except CorralError as exc:
                report.failed.append(RecoveryAction(record.id, "recovery failed", str(exc)))
                log.warning("recovery of container %s failed: %s", record.id, exc)
                continue
            if action is not None:
                report.actions.append(action)
                log.info("recovered container %s: found %s; %s", action.container_id, action.found, action.done)


def _observed_state(context: Context, recipe: Recipe, record: ContainerRecord) -> State:
    status = context.executor.status(recipe.facts(record))
    if not status.alive:
        return State.STOPPED
    if status.frozen:
        return State.PAUSED
    if status.fifo_present:
        return State.CREATED
    return State.RUNNING


def _recover_one(context: Context, recipe: Recipe) -> RecoveryAction | None:
    record = recipe.reload()
    state = State(record.state)
    pending = record.pending_event
    rebooted = record.boot_id != context.boot_id()
    found = f"{state.value}" + (f", {pending} interrupted" if pending else "")
    if rebooted:
        found += ", host restarted since"

    if state is State.DESTROYED:
        return None  # unfinished() only returns it if pending; destroyed clears pending itself

    if state is State.CREATING or pending == "destroy":
        what = "create" if state is State.CREATING else "destroy"
        recipe.fire(
            "destroy", force=True, reason=f"{what} interrupted (its controller died); finished by recovery"
        )
        rolled_back = "rolled back: processes killed, cgroups and run dir removed, destroyed"
        return RecoveryAction(record.id, found, rolled_back if what == "create" else "destroy completed")

    done: list[str] = []
    if rebooted:
        if state_info(state).init_alive:
            recipe.fire("exited", exit=ExitStatus.unknown(REBOOTED))
            done.append("stopped (exit status unknown)")
        leftovers = context.executor.leftovers(recipe.facts())
        if leftovers:
            context.executor.destroy(recipe.facts())
            done.append("removed " + ", ".join(leftovers))
        if recipe.reload().pending_event is not None:
            _clear_intent(context, recipe)
            done.append(f"cleared the {pending} intent")
        return RecoveryAction(record.id, found, "; ".join(done)) if done else None

    if not state_info(state).init_alive:  # stopped, same boot: nothing in the kernel to agree with
        if pending is not None:
            _clear_intent(context, recipe)
            return RecoveryAction(record.id, found, f"cleared the {pending} intent")
        return None

    observed = _observed_state(context, recipe, record)
    if observed is not state:
        event = event_between(state, observed)
        if event is None:
            raise CorralError(
                f"container {record.id!r}: recorded {state.value} but the kernel says "
                f"{observed.value}, and no event of the lifecycle leads there"
            )
        if event == "exited":
            recipe.fire("exited", exit=context.executor.exit_status(recipe.facts()))
        else:
            recipe.fire(event, recovered=f"the kernel says {observed.value}")
        done.append(f"{event}: now {observed.value}")
    if pending == "update" and state_info(State(recipe.reload().state)).init_alive:
        # Some of the new limits may be in the cgroups; the record's (the old) win, as if never asked.
        resources = recipe.config_of(recipe.record).resources
        if resources is not None:
            context.executor.update_resources(recipe.facts(), resources)
            done.append("rewrote the recorded linux.resources")
    if recipe.reload().pending_event is not None:
        _clear_intent(context, recipe)
        done.append(f"cleared the {pending} intent")
    return RecoveryAction(record.id, found, "; ".join(done)) if done else None


def _clear_intent(context: Context, recipe: Recipe) -> None:
    record = recipe.reload()
    recipe.adopt(
        context.store.update(
            record.key,
            record.version,
            base=record,
            pending_event=None,
            pending_since=None,
            last_error=f"{record.pending_event} interrupted (its controller died); recovery found "
            f"the kernel {record.state}",
        )
    )
