"""One ordinary transition of one container, for a process that lives for one call.

The command line's `start`, `kill`, `pause` and `resume` fire one event and
exit. The full recipe (transition.py) builds a `transitions` machine, parses the
config and opens the store through SQLAlchemy; this path does the same recipe
with what such a call needs and nothing more:

1. the container's lock (locks.py, the same OFD lock the library takes);
2. its record, read through the lean store (store/lean.py, plain sqlite3);
3. the guard, from the lifecycle table (lifecycle.py: `find_transition`, the
   same lookup the full recipe makes before its machine fires);
4. the intent, the kernel work (executor/quick.py, which LinuxExecutor also
   calls), then the outcome and its journal row, or on failure the cleared
   intent and `last_error`: the rows the Repository writes (a unit test
   compares them).

Whatever only the library may decide raises NeedsLibrary before anything is
written: an intent pending on this record, a record of another boot, an init
that died unobserved (its `exited` needs the monitor's exit record), a record
still `creating`. The caller then takes the library's path, which records what
happened and gives the same answer this path would have.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from corral import faults
from corral.errors import ContainerNotFound, CorralError, InvalidTransition
from corral.executor import proc, quick
from corral.statemachine.lifecycle import State, allowed_events, find_transition, needs_force, state_info
from corral.statemachine.locks import Locks
from corral.store.lean import LeanRecord, LeanStore
from corral.identity import ProcessIdentity


class NeedsLibrary(Exception):
    """This call must take the library's path; nothing was written or done."""


def _start(record: LeanRecord, init: ProcessIdentity, **_: Any) -> None:
    quick.release_init(record.id, init, record.run_dir)


def _pause(record: LeanRecord, init: ProcessIdentity, **_: Any) -> None:
    quick.freeze(record.cgroup_paths, record.created_cgroups)


def _resume(record: LeanRecord, init: ProcessIdentity, **_: Any) -> None:
    quick.thaw(record.cgroup_paths, record.created_cgroups)


def _signal(record: LeanRecord, init: ProcessIdentity, sig: int = 15, all_processes: bool = False) -> dict[str, Any]:
    quick.send_signal(record.id, init, record.cgroup_paths, record.created_cgroups, sig, all_processes)
    faults.point("signal.sent")
    return {"signal": sig, "all": all_processes}


#: As events.KERNEL_WORK, for the events whose outcome changes no column but the state.
KERNEL_WORK: Mapping[str, Callable[..., Mapping[str, Any] | None]] = {
    "start": _start,
    "pause": _pause,
    "resume": _resume,
    "signal": _signal,
}


def fire(
    store: LeanStore, locks: Locks, boot_id: str, container_id: str, event: str, **kwargs: Any
) -> None:
    """Fire `event` on the live container `container_id`, or raise NeedsLibrary having done nothing."""
    work = KERNEL_WORK[event]
    with locks.hold(container_id):
        record = store.record(container_id)
        if record is None or not record.live:
            raise ContainerNotFound(container_id, "")
        if record.pending_event is not None:
            raise NeedsLibrary(f"an intent ({record.pending_event}) is pending")
        state = State(record.state)
        init: ProcessIdentity | None = None
        if state_info(state).init_alive:  # the recipe's observe_exit: nothing to observe, or the library
            if record.boot_id != boot_id or record.init_pid is None or record.init_start_time is None:
                raise NeedsLibrary("the record is of another boot, or has no init")
            init = ProcessIdentity(record.init_pid, record.init_start_time)
            if not proc.alive(init):
                raise NeedsLibrary("the init is gone: its exit must be recorded")
        row = find_transition(state, event, force=False)
        if row is None:
            hint = "pass force=True" if needs_force(state, event) else ""
            raise InvalidTransition(container_id, state.value, event, allowed_events(state), hint)
        assert init is not None  # every event here fires only where the init lives
        if event == "start" and record.has_hooks:
            raise NeedsLibrary("the config has hooks (startContainer, poststart): the library runs them")
        dest = (row.dest or state).value
        record = store.intent(record, event)
        faults.point(f"{event}.intent")
        try:
            detail = work(record, init, **kwargs)
        except BaseException as exc:
            try:
                store.failed(record, event, exc)
            except CorralError:
                pass  # the original error matters more; recovery clears the intent
            raise
        store.outcome(record, event, state.value, dest, detail)
        faults.point(f"{event}.recorded")
