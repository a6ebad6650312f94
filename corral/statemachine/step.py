"""One firing of one event: the scratch a transition writes while it runs.

A Step is made per firing and dropped after it, so nothing of a transition in
progress lives on the long-lived Container: the kernel work (events.py) fills
it in, the recipe (transition.py) writes it to the store in one transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from corral.config import Config
from corral.executor.interface import ContainerFacts, ContainerPlan, ProcessIdentity
from corral.statemachine.context import Context
from corral.store.repository import ContainerRecord, NamespaceRecord


def facts_of(record: ContainerRecord, config: Config) -> ContainerFacts:
    """What the executor needs to know of a recorded container (it never reads the store)."""
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
        config=config,
        plan=ContainerPlan(
            cgroup_paths=dict(record.cgroup_paths),
            run_dir=record.run_dir,
            created_cgroups=record.created_cgroups,
            interfaces=record.interfaces,
        ),
        init=init,
        monitor=monitor,
        namespaces={t: n.path for t, n in record.namespaces.items()},
    )


@dataclass
class Step:
    """The firing of `event`: what its kernel work found, to be recorded with the outcome."""

    event: str
    context: Context
    #: The record as the step goes: the intent and the outcome each replace it.
    record: ContainerRecord
    #: The record's config, parsed at most once per container (a callable: most steps never need it).
    config_of: Callable[[ContainerRecord], Config]
    #: Columns of the record the outcome sets (init PID, exit status, ...).
    changes: dict[str, Any] = field(default_factory=dict)
    #: The journal row's detail.
    detail: dict[str, Any] = field(default_factory=dict)
    #: Namespaces to record with the outcome (create only).
    namespaces: Mapping[str, NamespaceRecord] | None = None
    #: What the public call returns (exec: its ExecProcess).
    result: Any = None
    #: Called once the outcome is recorded (create: let the monitor keep the init).
    on_recorded: Callable[[], None] | None = None
    #: Called if the step fails before its outcome is recorded (create: kill the init).
    on_failed: Callable[[], None] | None = None

    def facts(self) -> ContainerFacts:
        return facts_of(self.record, self.config_of(self.record))
