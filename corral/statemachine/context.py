"""What the lifecycle needs from its Runtime, in one small typed object.

The Runtime builds one Context and hands it to every Container, to the
transition recipe and to recovery; none of them knows the Runtime. That keeps
the dependencies inside the lifecycle one way (runtime → container, recovery,
transition → context) and lets each piece be built and tested on its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from corral.executor.interface import Executor
from corral.statemachine.locks import Locks
from corral.store.repository import Repository


@dataclass(frozen=True)
class Context:
    """The services of one corral root, shared by everything that drives its containers."""

    store: Repository
    locks: Locks
    executor: Executor
    #: The host's boot id now: a callable, because a reboot changes it under a stored record.
    boot_id: Callable[[], str]
    run_root: Path
