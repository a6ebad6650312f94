"""`create` of one container, for a process that lives for one call (the command line's `create`).

`Runtime.create` with what a one-shot process needs and nothing more: no
Runtime (its open is replaced by the caller's two indexed reads, cli/fast.py),
no SQLAlchemy, no `transitions` machine. The same steps in the same order:

1. the container's lock, then the executor's plan (LinuxExecutor.plan: checks,
   cgroup claim; nothing made yet);
2. the record, `creating` with the intent `create`, and its first journal row,
   in one fsynced commit (store/lean_durable.py);
3. the guard, from the lifecycle table;
4. the kernel work through the same executor (LinuxExecutor.spawn, with the
   monitor's recorder as events.create gives it);
5. the outcome (`created`, the init, the monitor, the namespaces, the journal
   row), fsynced, then the monitor is told to keep the init;
6. on failure, the monitor kills what it started and the record is rolled back
   with a forced `destroy` (quick_destroy.py), as Runtime.create does.

What the lean path does not do hands over to the library before anything is
written (NeedsLibrary): hooks and a network section (the library runs and
makes them). tests/unit/test_quick_create.py compares the rows with the
library's; tests/integration/test_cli_fast.py checks the kernel and imports.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from corral import faults
from corral.errors import CorralError, InvalidTransition
from corral.ids import validate_id
from corral.statemachine.lifecycle import INITIAL_STATE, allowed_events, find_transition
from corral.statemachine.outcomes import created_changes, monitor_recorder
from corral.statemachine.quick import NeedsLibrary
from corral.statemachine.quick_destroy import destroy
from corral.store.lean_durable import DurableLeanStore
from corral.types import Stdio

if TYPE_CHECKING:  # pragma: no cover
    from corral.config import Config
    from corral.executor.linux import LinuxExecutor
    from corral.statemachine.locks import Locks

EVENT = "create"


class Created:
    """The container just created: its init's PID and, for a terminal, the pty master (the caller's)."""

    def __init__(self, container_id: str, pid: int, console_fd: int | None) -> None:
        self.id = container_id
        self.pid = pid
        self.console_fd = console_fd


def refuse(config: Config) -> None:
    """NeedsLibrary for what only the library does at create, before anything is written."""
    if config.hooks:
        raise NeedsLibrary("the config has hooks: the library runs them")
    if config.network is not None:
        raise NeedsLibrary("the config has a network section: the library makes it (pyroute2)")


def create(
    store: DurableLeanStore,
    locks: Locks,
    executor: LinuxExecutor,
    boot_id: str,
    run_root: str,
    container_id: str,
    config: Config,
    *,
    stdio: Stdio | None = None,
    console: bool = False,
) -> Created:
    """Create `container_id` from `config` as Runtime.create does; NeedsLibrary having written nothing."""
    from corral.statemachine.consoles import check_console

    validate_id(container_id)
    check_console(config.process.terminal, console, stdio, where="process", call="Runtime.create")
    refuse(config)
    row = find_transition(INITIAL_STATE, EVENT, force=False)
    if row is None or row.dest is None:  # the table must say where create goes
        raise InvalidTransition(container_id, INITIAL_STATE.value, EVENT, allowed_events(INITIAL_STATE), "")
    root = os.path.dirname(store.path)
    with locks.hold(container_id):
        plan = executor.plan(container_id, config, os.path.join(run_root, container_id), root)
        if plan.interfaces:
            raise NeedsLibrary("the plan has network interfaces")
        record = store.insert(
            container_id=container_id,
            config=config.to_json(),
            bundle=config.bundle,
            run_dir=plan.run_dir,
            boot_id=boot_id,
            cgroup_paths=plan.cgroup_paths,
            created_cgroups=plan.created_cgroups,
        )
        try:
            faults.point("create.intent")
            from corral.executor.interface import ContainerFacts

            facts = ContainerFacts(
                id=container_id,
                config=config,
                plan=plan,
                recorder=monitor_recorder(root, record.key, str(locks.path), container_id),
            )
            spawned = executor.spawn(facts, stdio or Stdio())
            try:
                init = spawned.facts
                namespaces = {t: (path, init.namespace_inodes.get(t)) for t, path in init.namespaces.items()}
                record = store.outcome(
                    record, EVENT, INITIAL_STATE.value, row.dest.value, {"pid": init.init.pid},
                    changes=created_changes(init, boot_id), namespaces=namespaces,
                )
                faults.point(f"{EVENT}.recorded")
            except BaseException:
                spawned.abort()  # the monitor kills the init
                raise
            spawned.confirm()
            return Created(container_id, init.init.pid, spawned.console_fd)
        except BaseException as exc:
            try:
                destroy(store, executor, boot_id, record, force=True, reason=f"create failed: {exc}")
            except CorralError as cleanup:
                exc.add_note(f"cleaning up also failed: {cleanup}; Runtime.recover() retries")
            raise


def with_stdio(stdio: Stdio, console: bool) -> Stdio:
    """The terminal is 0, 1 and 2: a console takes the place of the inherited stdio."""
    if console:
        from corral.records import replace  # not dataclasses': a one-shot create imports no `dataclasses`

        return replace(stdio, stdin=None, stdout=None, stderr=None)
    return stdio
