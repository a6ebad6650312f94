"""`destroy` of one container, for a process that lives for one call (the command line's `delete`).

The recipe's steps (transition.py) with what such a call needs and nothing
more, as quick.py does for start, kill, pause and resume: the container's lock,
its record through the lean store (store/lean_durable.py, fsynced commits), the
guard from the lifecycle table, the durable intent, the kernel work (what
LinuxExecutor.kill and .destroy do, as events.destroy calls them: executor/teardown.py
directly, so that `delete` imports no config and no spawn protocol), then
the durable outcome and its journal row, or on failure the cleared intent and
`last_error`. The same rows as the Repository's (a unit test compares them).

Whatever only the library may decide raises NeedsLibrary before anything is
written: an intent pending, a record of another boot, an init that died
unobserved (its `exited` comes first), hooks (poststop runs in the library),
network interfaces (pyroute2).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from corral import faults
from corral.errors import ContainerNotFound, CorralError, InvalidTransition
from corral.executor import proc
from corral.statemachine.lifecycle import State, allowed_events, find_transition, needs_force, state_info
from corral.statemachine.outcomes import KILL_TIMEOUT, REBOOTED, exit_changes
from corral.statemachine.quick import NeedsLibrary
from corral.store.lean import LeanRecord
from corral.store.lean_durable import DurableLeanStore
from corral.identity import ExitStatus, ProcessIdentity

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable

    from corral.executor.linux import LinuxExecutor

EVENT = "destroy"


def teardown_of(
    store: DurableLeanStore, record: LeanRecord, executor: LinuxExecutor | None
) -> tuple[Callable[[float], ExitStatus], Callable[[], None]]:
    """How to kill `record`'s container (with a timeout) and remove what is left.

    Through `executor` (create's rollback has one; tests give the fake) with the
    facts step.facts_of would give it; with None, straight to the kernel
    (executor/teardown.py, what LinuxExecutor.kill and .destroy call): the
    command line's `delete` then imports no config, no protocol, no executor.
    """
    more = store.incarnation(record.key)
    if more.has_interfaces:
        raise NeedsLibrary("the container has network interfaces: the library removes them")
    init = (
        ProcessIdentity(record.init_pid, record.init_start_time)
        if record.init_pid is not None and record.init_start_time is not None
        else None
    )
    monitor = (
        ProcessIdentity(more.monitor_pid, more.monitor_start_time)
        if more.monitor_pid is not None and more.monitor_start_time is not None
        else None
    )
    if executor is None:
        from corral.executor import teardown
        from corral.executor.cgroups import open_cgroup

        cgroup = open_cgroup(dict(record.cgroup_paths), record.created_cgroups)
        return (
            lambda timeout: teardown.kill(record.id, init, monitor, record.run_dir, cgroup, timeout),
            lambda: teardown.destroy(record.id, init, monitor, record.run_dir, cgroup),
        )
    from corral.config import Config
    from corral.executor.interface import ContainerFacts, ContainerPlan

    facts = ContainerFacts(
        id=record.id,
        config=Config.from_json(more.config, bundle=more.bundle),
        plan=ContainerPlan(
            cgroup_paths=dict(record.cgroup_paths), run_dir=record.run_dir, created_cgroups=record.created_cgroups
        ),
        init=init,
        monitor=monitor,
    )
    return (lambda timeout: executor.kill(facts, timeout)), (lambda: executor.destroy(facts))


def observed_state(record: LeanRecord, boot_id: str) -> State:
    """The state `Container.state` would answer, or NeedsLibrary where it would record something first."""
    if record.pending_event is not None:
        raise NeedsLibrary(f"an intent ({record.pending_event}) is pending")
    state = State(record.state)
    if state_info(state).init_alive:
        if record.boot_id != boot_id or record.init_pid is None or record.init_start_time is None:
            raise NeedsLibrary("the record is of another boot, or has no init")
        if not proc.alive(ProcessIdentity(record.init_pid, record.init_start_time)):
            raise NeedsLibrary("the init is gone: its exit must be recorded")
    return state


def destroy(
    store: DurableLeanStore,
    executor: LinuxExecutor | None,
    boot_id: str,
    record: LeanRecord,
    *,
    force: bool,
    reason: str | None = None,
) -> LeanRecord:
    """Steps 3 to 6 of the recipe for `destroy` on `record`, read under the lock the caller holds."""
    state = State(record.state)
    row = find_transition(state, EVENT, force=force)
    if row is None:
        hint = "pass force=True" if needs_force(state, EVENT) else ""
        raise InvalidTransition(record.id, state.value, EVENT, allowed_events(state), hint)
    if record.has_hooks:
        raise NeedsLibrary("the config has hooks (poststop): the library runs them")
    kill, remove = teardown_of(store, record, executor)
    record = store.intent(record, EVENT)
    faults.point(f"{EVENT}.intent")
    changes: dict[str, Any] = {}
    detail: dict[str, Any] = {}
    try:
        if state_info(state).init_alive:
            gone = record.boot_id != boot_id
            exit_changes(ExitStatus.unknown(REBOOTED) if gone else kill(KILL_TIMEOUT), changes, detail)
        remove()
        faults.point("destroy.run-dir-removed")
    except BaseException as exc:
        try:
            store.failed(record, EVENT, exc)
        except CorralError:
            pass  # the original error matters more; recovery clears the intent
        raise
    detail["force"] = force
    if reason:
        detail["reason"] = reason
        changes["last_error"] = reason
    record = store.outcome(record, EVENT, state.value, (row.dest or state).value, detail, changes=changes)
    faults.point(f"{EVENT}.recorded")
    return record


def delete(
    store: DurableLeanStore, executor: LinuxExecutor | None, locks: Any, boot_id: str, container_id: str, *, force: bool
) -> None:
    """The command line's `delete [--force]`: stopped → destroyed; created → killed and destroyed;
    running or paused only with `force`. ContainerNotFound when there is no live container.
    `executor` None: the kernel directly (teardown_of)."""
    with locks.hold(container_id):
        record = store.record(container_id)
        if record is None or not record.live:
            raise ContainerNotFound(container_id, "")
        state = observed_state(record, boot_id)
        if state in (State.RUNNING, State.PAUSED) and not force:
            raise CorralError(f"cannot delete container {record.id} that is not stopped: {state.value}")
        destroy(store, executor, boot_id, record, force=state is not State.STOPPED)
