"""Forgetting old tombstones (`Runtime.purge()`).

A destroyed container's record stays, with its journal, so that its history can
be read and so that the orphan sweep (orphans.py) knows which cgroups corral
made for it. Purging deletes both, for tombstones older than a cut-off, and
never a live record: the repository's query refuses one whatever it is given.
A tombstone whose cgroups corral made are still there (the sweep found them
busy) is kept, so that a later sweep still knows they are corral's to remove.
"""

from __future__ import annotations

import os
from datetime import timedelta

from corral.errors import ConfigError
from corral.statemachine.context import Context
from corral.statemachine.lifecycle import State
from corral.store.repository import ContainerRecord, utcnow


def purge(context: Context, older_than: timedelta | float) -> list[ContainerRecord]:
    """Delete tombstones destroyed more than `older_than` (seconds, or a timedelta) ago; those deleted."""
    age = older_than if isinstance(older_than, timedelta) else timedelta(seconds=older_than)
    if age < timedelta(0):
        raise ConfigError("older_than", f"must not be negative, not {older_than!r}")
    cutoff = utcnow() - age
    store = context.store
    live_paths = {p for r in store.all() for p in r.cgroup_paths.values()}
    candidates = [
        record
        for record in store.all(include_destroyed=True, states=[State.DESTROYED.value])
        if record.pending_event is None and record.updated_at <= cutoff and not _leftovers(record, live_paths)
    ]
    purged = set(store.purge([r.key for r in candidates]))
    return [r for r in candidates if r.key in purged]


def _leftovers(record: ContainerRecord, live_paths: set[str]) -> bool:
    """Whether a cgroup corral made for this tombstone (and no live container uses) still exists."""
    created = record.created_cgroups
    for hierarchy, path in record.cgroup_paths.items():
        if created is not None and path not in created.get(hierarchy, ()):
            continue  # joined, not made: never corral's to remove, so no reason to keep the record
        if path not in live_paths and os.path.isdir(path):
            return True
    return False
