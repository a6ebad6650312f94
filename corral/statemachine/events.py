"""The kernel work of each event of the lifecycle table, one function per event.

The recipe (transition.py) finds an event's function in one hop, by name, in
KERNEL_WORK, and calls it between recording the intent and recording the
outcome. Each function asks the executor to act and writes what happened into
the Step; none of them decides lifecycle (the table does) or writes a state
(the recipe does). Extra keyword arguments are the public call's arguments.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import signal as signal_module
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from corral import faults
from corral.config import Process, Resources
from corral.config.update import updated_config
from corral.executor.hooks import HookOutcome
from corral.executor.interface import ExitStatus, Stdio
from corral.statemachine.events_stream import monitor_recorder
from corral.statemachine.lifecycle import State, state_info
from corral.statemachine.outcomes import KILL_TIMEOUT, REBOOTED, created_changes, exit_changes
from corral.statemachine.process import ExecProcess
from corral.statemachine.step import Step
from corral.store.repository import NamespaceRecord


log = logging.getLogger("corral")


def create(step: Step, stdio: Stdio | None = None, **_: Any) -> None:
    # The monitor journals the exit and OOM kills it sees (events_stream.py).
    wanted = dataclasses.replace(step.facts(), recorder=monitor_recorder(step.context, step.record))
    spawned = step.context.executor.spawn(wanted, stdio or Stdio())
    step.on_failed = spawned.abort  # not recorded: the monitor kills the init now
    facts = spawned.facts
    # Its interfaces were recorded with the plan, before any exists (recovery removes them).
    step.context.executor.attach_network(step.facts(), facts.init)
    step.changes = created_changes(facts, step.context.boot_id())
    step.namespaces = {
        t: NamespaceRecord(path, facts.namespace_inodes.get(t)) for t, path in facts.namespaces.items()
    }
    step.detail = {"pid": facts.init.pid}
    _journal_hooks(step, facts.hooks)
    step.on_recorded = spawned.confirm
    step.result = spawned.console_fd  # the pty master of a terminal, for Runtime.create's caller


def start(step: Step, **_: Any) -> None:
    executor, facts = step.context.executor, step.facts()
    _journal_hooks(step, executor.start(facts) or ())  # startContainer: a failure fails start
    # poststart: the program runs; a failing hook is a warning, and start still succeeds.
    _journal_hooks(step, _warn_failed(step, executor.run_hooks(facts, "poststart", "running")))


def pause(step: Step, **_: Any) -> None:
    step.context.executor.freeze(step.facts())


def resume(step: Step, **_: Any) -> None:
    step.context.executor.thaw(step.facts())


def signal(step: Step, sig: int, all_processes: bool = False, **_: Any) -> None:
    step.context.executor.signal(step.facts(), sig, all_processes)
    faults.point("signal.sent")
    step.detail = {"signal": sig, "all": all_processes}


def update(step: Step, resources: Resources, **_: Any) -> None:
    """runc update: the new settings over the old, checked as create checks them, written, recorded."""
    old = step.config_of(step.record)
    config = updated_config(old, resources)  # ConfigError before anything is written
    step.context.executor.update_resources(step.facts(), config.resources or Resources())
    faults.point("update.written")
    step.changes["config"] = config.to_json()
    step.detail = {"resources": json.loads(config.to_json())["linux"].get("resources", {})}


def exec(step: Step, process: Process, stdio: Stdio, **_: Any) -> None:
    context = step.context
    facts = step.facts()
    # What the process leaves unset comes from the container's own process (as in
    # runc exec), so that exec never widens the privilege the container was given.
    process = process.resolved_against(facts.config.process)
    handle = context.executor.exec(facts, process, stdio)
    faults.point("exec.spawned")
    row = context.store.add_process(
        step.record.key, handle.pid, handle.start_time, context.boot_id(), tuple(process.args)
    )
    step.detail = {"pid": handle.pid, "args": list(process.args)}
    step.result = ExecProcess(context.store, handle, row.key)


def oom(step: Step, count: int = 0, **_: Any) -> None:
    step.detail = {"oom_kills": count}


def exited(step: Step, exit: ExitStatus | None = None, **_: Any) -> None:
    if exit is None:
        exit = step.context.executor.exit_status(step.facts())
    if exit.oom_killed and _sigkilled_by_corral(step):
        exit = ExitStatus(exit.status, exit.signal, oom_killed=False)
    _set_exit(step, exit)


def destroy(
    step: Step,
    force: bool = False,
    reason: str | None = None,
    create_hooks: Iterable[Mapping[str, Any]] = (),
    **_: Any,
) -> None:
    """`create_hooks`: the journal records of the hooks a failed create ran (its rollback is this)."""
    executor = step.context.executor
    facts = step.facts()
    if create_hooks:
        step.detail["hooks"] = [dict(record) for record in create_hooks]
    if state_info(State(step.record.state)).init_alive:
        gone = step.record.boot_id != step.context.boot_id()
        _set_exit(step, ExitStatus.unknown(REBOOTED) if gone else executor.kill(facts, KILL_TIMEOUT))
    executor.destroy(facts)
    faults.point("destroy.run-dir-removed")
    # poststop: the container is gone; a failing hook is a warning, and destroy still succeeds.
    _journal_hooks(step, _warn_failed(step, executor.run_hooks(facts, "poststop", "stopped")))
    step.detail["force"] = force
    if reason:
        step.detail["reason"] = reason
        step.changes["last_error"] = reason


#: Event name → its kernel work: every event of the lifecycle table, once.
KERNEL_WORK: Mapping[str, Callable[..., None]] = {
    "create": create,
    "start": start,
    "pause": pause,
    "resume": resume,
    "signal": signal,
    "update": update,
    "exec": exec,
    "oom": oom,
    "exited": exited,
    "destroy": destroy,
}


def _journal_hooks(step: Step, outcomes: Iterable[HookOutcome]) -> None:
    """Add each hook's outcome (kind, path, exit status or timeout, duration) to the journal row."""
    records = [outcome.record() for outcome in outcomes]
    if records:
        step.detail.setdefault("hooks", []).extend(records)


def _warn_failed(step: Step, outcomes: Iterable[HookOutcome]) -> tuple[HookOutcome, ...]:
    """poststart and poststop: the spec has a failure logged and the operation go on."""
    outcomes = tuple(outcomes)
    for outcome in outcomes:
        if not outcome.ok:
            log.warning("container %s: %s (ignored, as the runtime spec says)", step.record.id, outcome.describe())
    return outcomes


def _sigkilled_by_corral(step: Step) -> bool:
    """Whether signal(SIGKILL) was sent through corral to this incarnation."""
    return any(
        e.event == "signal" and e.detail.get("signal") == signal_module.SIGKILL
        for e in step.context.store.history(step.record.key)
    )


def _set_exit(step: Step, exit: ExitStatus) -> None:
    exit_changes(exit, step.changes, step.detail)
