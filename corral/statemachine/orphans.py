"""Orphans: what this store left in the kernel that no live record owns any more.

Records normally tell recovery what exists. Two things can outlive them: a run
dir whose record was lost (a commit the power cut took, before the store was
durable) or whose removal failed, and a cgroup directory a destroyed record
still names (its removal failed, or something recreated it). Recovery removes
both, each under its container id's lock, and only what is clearly this
store's:

- run dirs: direct subdirectories of this Runtime's run root named like a
  container id, when the store has no live record of that id. The run root is
  per store (a second store must not share it, as runc's --root);
- cgroups: only directories this store's own tombstones record as created by
  corral (never a cgroup a container joined), when no
  live record names the same directory, and only if empty: a directory is
  removed with rmdir, never by killing, so a cgroup that has processes (the
  kernel refuses with EBUSY) is reported and left alone, and a cgroup this
  store never recorded is never looked at.

A live container whose record was lost cannot be found this way (its cgroup is
not recorded anywhere): that is what the durable create commit prevents.
"""

from __future__ import annotations

import errno
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from corral.errors import InvalidID
from corral.ids import validate_id
from corral.statemachine.context import Context
from corral.statemachine.lifecycle import State


@dataclass(frozen=True)
class Orphan:
    container_id: str
    path: str
    #: What recovery did: "removed", or why it left the path alone.
    done: str


def sweep(context: Context) -> tuple[list[Orphan], list[str]]:
    """Remove orphaned run dirs and recorded cgroups; returns (orphans handled, busy ids)."""
    orphans: list[Orphan] = []
    busy: list[str] = []
    for container_id, paths in _candidates(context).items():
        with context.locks.hold(container_id, blocking=False) as got:
            if not got:  # a live controller is in the middle of this id (create, destroy)
                busy.append(container_id)
                continue
            live = context.store.find(container_id)
            if live is not None and State(live.state) is not State.DESTROYED:
                continue  # a record created meanwhile owns the id now
            live_cgroups = _live_cgroup_paths(context)
            for path in paths:
                if path in live_cgroups or not os.path.exists(path):
                    continue
                orphans.append(Orphan(container_id, path, _remove(context, path)))
    return orphans, busy


def _candidates(context: Context) -> dict[str, list[str]]:
    """Per container id without a live record: its run dir and its tombstones' cgroup dirs."""
    records = context.store.all(include_destroyed=True)
    live_ids = {r.id for r in records if State(r.state) is not State.DESTROYED}
    found: dict[str, list[str]] = {}
    for record in records:
        if record.id in live_ids:
            continue
        paths = found.setdefault(record.id, [])
        created = record.created_cgroups  # None: recorded before corral kept that list (its own dirs)
        for hierarchy, path in record.cgroup_paths.items():
            if created is not None and path not in created.get(hierarchy, ()):
                continue  # a cgroup the container joined: not corral's to remove
            if path not in paths:
                paths.append(path)
    try:
        entries = sorted(os.scandir(context.run_root), key=lambda e: e.name)
    except FileNotFoundError:
        entries = []
    for entry in entries:
        if entry.name in live_ids or not entry.is_dir(follow_symlinks=False) or not _is_id(entry.name):
            continue
        found.setdefault(entry.name, []).append(entry.path)
    return found


def _live_cgroup_paths(context: Context) -> set[str]:
    return {p for r in context.store.all() for p in r.cgroup_paths.values()}


def _is_id(name: str) -> bool:
    try:
        validate_id(name)
    except InvalidID:
        return False
    return True


def _remove(context: Context, path: str) -> str:
    if Path(path).parent == context.run_root:
        shutil.rmtree(path, ignore_errors=True)
        return "removed" if not os.path.exists(path) else "could not be removed"
    return _rmdir_tree(path)


def _rmdir_tree(path: str) -> str:
    """rmdir a cgroup directory and its child cgroups, deepest first; never kill anything."""
    for dirpath, dirnames, _files in os.walk(path, topdown=False):
        for name in dirnames:
            try:
                os.rmdir(os.path.join(dirpath, name))
            except OSError:
                pass  # reported through the top directory below
    try:
        os.rmdir(path)
    except FileNotFoundError:
        return "removed"
    except OSError as exc:
        if exc.errno in (errno.EBUSY, errno.ENOTEMPTY):
            return "left alone: it still has processes"
        return f"could not be removed: {exc.strerror or exc}"
    return "removed"
