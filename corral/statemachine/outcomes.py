"""What create and destroy record, computed once for both paths that fire them.

The recipe's kernel work (events.py) and the command line's one-shot create and
delete (quick_create.py, quick_destroy.py) must write the same columns and
journal details; these functions are what both call, so that the two cannot
drift. They import neither the store's ORM nor the `transitions` machine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from corral.statemachine.locks import slot
from corral.identity import ExitStatus

if TYPE_CHECKING:  # pragma: no cover  (`delete` needs neither, nor the config's types they import)
    from corral.executor.interface import InitFacts, Recorder

#: How long `destroy(force=True)` waits for the processes to die.
KILL_TIMEOUT = 10.0

#: Why a status is unknown after a reboot (recovery and the recipe say the same).
REBOOTED = "the host restarted since the container was created (another boot id): nobody saw the init exit"

#: The store's sqlite3-only writer the monitors call (corral/store/observed.py), by name.
OBSERVED_MODULE = "corral.store.observed"


def monitor_recorder(root: str, key: int, lock_file: str, container_id: str) -> Recorder:
    """What the container's monitor calls to journal the exit and OOM kills it sees.

    The store's sqlite3-only writer, told where the database and the
    container's lock are (the monitor imports it by name: the executor never
    imports the store).
    """
    from corral.executor.interface import Recorder  # create's: it imports the config anyway

    return Recorder(
        module=OBSERVED_MODULE,
        arguments={"root": root, "key": key, "lock_file": lock_file, "lock_slot": slot(container_id)},
    )


def created_changes(facts: InitFacts, boot_id: str) -> dict[str, Any]:
    """The columns create's outcome sets: the init's and the monitor's identity, this boot."""
    return {
        "init_pid": facts.init.pid,
        "init_start_time": facts.init.start_time,
        "boot_id": boot_id,
        "monitor_pid": facts.monitor.pid if facts.monitor else None,
        "monitor_start_time": facts.monitor.start_time if facts.monitor else None,
    }


def exit_changes(exit: ExitStatus, changes: dict[str, Any], detail: dict[str, Any]) -> None:
    """The exit columns and journal detail of `exited` and of a forced destroy."""
    changes.update(exit_status=exit.status, exit_signal=exit.signal, oom_killed=exit.oom_killed)
    detail.update(exit_status=exit.status, signal=exit.signal, oom_killed=exit.oom_killed)
    if not exit.known:  # never a silent None: the journal says it is unknown, and why
        detail["exit"] = "unknown"
        detail["exit_unknown_reason"] = exit.reason or "not observed (no reason was given)"
