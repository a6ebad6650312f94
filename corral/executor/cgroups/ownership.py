"""Which cgroup directories belong to a container: corral removes only what it created.

`linux.cgroupsPath` may name any cgroup of the host (``/system.slice``). Joining
it blindly would make its processes the container's: listed, frozen, killed by
destroy, and the directory removed. So, before anything is created or written
(`claim`, called when the container is planned):

- a directory that already exists is joined only when no process is in it or
  below it (runc 1.2 refuses the same: "container's cgroup is not empty");
  otherwise ConfigError naming ``linux.cgroupsPath``, the path and the hierarchy;
- the directories that do not exist yet (the container's, and any parents it
  needs) are recorded, per hierarchy, parents first: they are what destroy and
  rollback remove, children first. A joined directory and a parent that existed
  before stay, and the limits corral wrote into a joined cgroup stay too (as
  with runc: nothing records the values it had before).

The kill side of the rule lives in the executor: it kills in a cgroup corral
created, or in a joined one once it has recorded an init there (which it put
into the cgroup right after finding it empty, `Cgroup.create` checking again),
so no process that was there before is ever killed.

Known gap: two runtimes that plan the same new explicit cgroupsPath at the same
moment both record it as created; the second's `Cgroup.create` refuses it, but
its rollback then counts the directory as its own.

Stdlib only (plus corral's plain-data modules), like the rest of the package.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import NamedTuple

from corral.errors import ConfigError
from corral.executor.cgroups import _fs

WHERE_CGROUPS_PATH = "linux.cgroupsPath"

#: Per hierarchy key, the directories corral creates for one container, parents first.
Created = Mapping[str, tuple[str, ...]]


class CgroupClaim(NamedTuple):
    """A container's cgroup directories, and which of them corral is about to create."""

    paths: dict[str, str]
    created: dict[str, tuple[str, ...]]


def missing_dirs(path: str, mountpoint: str) -> tuple[str, ...]:
    """The directories between `mountpoint` (exclusive) and `path` that do not exist, parents first."""
    stop = os.path.normpath(mountpoint)
    current = os.path.normpath(path)
    missing: list[str] = []
    while current.startswith(stop + "/") and not os.path.isdir(current):
        missing.append(current)
        current = os.path.dirname(current)
    return tuple(reversed(missing))


def _parents_within(path: str, top: str) -> tuple[str, ...]:
    """`top` and the directories below it that are ancestors of `path`, parents first."""
    if not path.startswith(top + "/"):
        return ()
    out = [top]
    for part in os.path.relpath(os.path.dirname(path), top).split("/"):
        if part != ".":
            out.append(f"{out[-1]}/{part}")
    return tuple(out)


def hierarchy_name(key: str) -> str:
    return f"the {key} hierarchy" if key else "the cgroup v2 hierarchy"


def busy_message(cgroups_path: str, key: str, path: str, pids: list[int]) -> str:
    return (
        f"{cgroups_path!r} names an existing cgroup that holds processes: {path} in "
        f"{hierarchy_name(key)} has {_fs.describe_pids(pids[:5])}"
        f"{f' and {len(pids) - 5} more' if len(pids) > 5 else ''}. corral joins an existing "
        "cgroup only when it is empty, as runc 1.2 does (it would otherwise list, freeze and kill "
        "processes that are not the container's): name a new cgroup, or empty this one"
    )


def claim(
    cgroups_path: str, paths: Mapping[str, str], mountpoints: Mapping[str, str], corral_parent: str | None = None
) -> CgroupClaim:
    """Refuse an existing cgroup with processes; else say which directories corral will create.

    `corral_parent` (``/corral`` for default paths) names corral's own subtree:
    the parents in it count as created even when another container of the store
    made them, so that whichever container goes last removes them (only ever
    when empty). Reads only: nothing is created or written, so a refusal leaves
    the host as it was.
    """
    created: dict[str, tuple[str, ...]] = {}
    for key, path in sorted(paths.items()):
        path = os.path.normpath(path)
        missing = missing_dirs(path, mountpoints[key])
        if corral_parent is not None:
            own = _parents_within(path, os.path.normpath(mountpoints[key] + corral_parent))
            missing = own + tuple(d for d in missing if d not in own)
        created[key] = missing
        if path not in created[key]:
            check_empty(cgroups_path, key, path)
    return CgroupClaim({k: os.path.normpath(p) for k, p in paths.items()}, created)


def check_empty(cgroups_path: str, key: str, path: str) -> None:
    """ConfigError if any process is in the existing cgroup `path` or below it."""
    pids = _fs.procs_recursive(path)
    if pids:
        raise ConfigError(WHERE_CGROUPS_PATH, busy_message(cgroups_path, key, path, pids))


def legacy(paths: Mapping[str, str]) -> dict[str, tuple[str, ...]]:
    """What a record made before corral recorded its directories means: the container's own ones."""
    return {k: (os.path.normpath(p),) for k, p in paths.items()}


def remove_created(path: str, created: tuple[str, ...], deadline: float) -> list[str]:
    """rmdir what corral created in one hierarchy: the container's tree, then its empty parents.

    The container's directory goes with its child cgroups, children first
    (a failure is returned). A parent corral created may meanwhile hold another
    container (``/corral/<store>``): it is removed only when empty, else left
    silently, and so is everything above it.
    """
    path = os.path.normpath(path)
    failures: list[str] = []
    if path in created:
        failures += _fs.remove_tree(path, deadline)
    for parent in reversed([d for d in created if d != path]):
        if not _fs.remove_if_empty(parent):
            break
    return failures


def leftovers(path: str, created: tuple[str, ...]) -> list[str]:
    """The container's directory if corral created it and it still exists.

    Not its parents: one that is empty now may be the last of several
    containers' (whichever goes last removes it), so counting it would make
    recovery's answer depend on the order it visits containers.
    """
    path = os.path.normpath(path)
    return [path] if path in created and os.path.isdir(path) else []
