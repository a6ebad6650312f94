"""Orphans: what this store left in the kernel that no live record owns any more.

Records normally tell recovery what exists. Three things can outlive them:

- a live container whose record the store lost (a commit lost to a filesystem
  error, a database restored from a backup): its processes, cgroups and run dir;
- a run dir whose container ended and whose removal failed;
- a cgroup directory a destroyed record still names (its removal failed, or
  something recreated it).

Recovery removes them, each under its container id's lock, and only what is
clearly this store's:

- run dirs: direct subdirectories of this Runtime's run root named like a
  container id, when the store has no live record of that id. The run root is
  per store (a second store must not share it, as runc's --root). The executor
  removes each with what it proves is that container's (`remove_forgotten`,
  executor/forgotten.py): create wrote the container's identity into its run
  dir (the init's PID, start time and boot id, its monitor, its cgroups and
  their inodes, executor/identity.py), so a forgotten live container's init is
  SIGKILLed (never a PID whose start time or boot differs), its cgroups are
  killed in and removed when create made them under corral's own parent and
  they are still the directories it made, and then the run dir goes;
- cgroups: only directories this store's own tombstones record as created by
  corral (never a cgroup a container joined), when no
  live record names the same directory, and only if empty: a directory is
  removed with rmdir, never by killing, so a cgroup that has processes (the
  kernel refuses with EBUSY) is reported and left alone, and a cgroup this
  store never recorded is never looked at.

Removed, not adopted. Adopting a forgotten container would mean writing a
record from what the run dir holds: its config (the bundle may have changed
since), its stdio, its hooks' outcomes and its journal are not there, so the
record would claim what nobody knows. To the store, and so to every caller,
the container does not exist (its id can be created again); removing it
brings the kernel back into agreement with that, as a rollback does.

Left where the identity cannot prove ownership: a run dir without an identity
(a create that died between making the run dir and writing it) is removed
with nothing signalled, and cgroups outside ``/corral`` (an explicit
``linux.cgroupsPath``) are neither killed in nor removed; the init's death
ends the rest when the container has its own PID namespace.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from pathlib import Path

from corral.errors import CorralError, InvalidID
from corral.ids import validate_id
from corral.statemachine.context import Context
from corral.statemachine.lifecycle import State


@dataclass(frozen=True)
class Orphan:
    container_id: str
    path: str
    #: What recovery did: "removed", or why it left the path alone.
    done: str
    #: For a run dir: what was killed and removed with it, and what was left alone and why.
    detail: str = ""


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
                if Path(path).parent == context.run_root:
                    orphans.append(_remove_run_dir(context, container_id, path, live_cgroups))
                else:
                    orphans.append(Orphan(container_id, path, _rmdir_tree(path)))
    return orphans, busy


def _remove_run_dir(context: Context, container_id: str, path: str, live_cgroups: set[str]) -> Orphan:
    """The run dir and what its identity proves is the forgotten container's (executor/forgotten.py)."""
    try:
        result = context.executor.remove_forgotten(container_id, path, live_cgroups)
    except CorralError as exc:
        return Orphan(container_id, path, f"could not be removed: {exc}")
    return Orphan(container_id, path, "removed" if result.removed else "could not be removed", result.detail)


def _candidates(context: Context) -> dict[str, list[str]]:
    """Per container id without a live record: its run dir and its tombstones' cgroup dirs."""
    records = context.store.all(include_destroyed=True)
    live_ids = {r.id for r in records if State(r.state) is not State.DESTROYED}
    found: dict[str, list[str]] = {}
    try:
        entries = sorted(os.scandir(context.run_root), key=lambda e: e.name)
    except FileNotFoundError:
        entries = []
    for entry in entries:  # first: a forgotten container's processes go before its cgroups are rmdir'ed
        if entry.name in live_ids or not entry.is_dir(follow_symlinks=False) or not _is_id(entry.name):
            continue
        found[entry.name] = [entry.path]
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
    return found


def _live_cgroup_paths(context: Context) -> set[str]:
    return {p for r in context.store.all() for p in r.cgroup_paths.values()}


def _is_id(name: str) -> bool:
    try:
        validate_id(name)
    except InvalidID:
        return False
    return True


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
