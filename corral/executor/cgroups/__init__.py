"""The cgroup managers: picking one for this host, and reopening a container's from its paths.

The interface and the meaning of the recorded paths are in base.py.

Stdlib only (plus corral's plain-data modules, and the cffi syscalls that v2's
device programs need and those processes load anyway): the init and the spawn
helper import this in fresh interpreters.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from corral.executor.cgroups import _fs
from corral.executor.cgroups._fs import remove_empty_parents
from corral.executor.cgroups.base import Cgroup, CgroupDriver
from corral.executor.cgroups.v1 import V1Cgroup, V1Driver
from corral.executor.cgroups.v2 import V2Cgroup, V2Driver

__all__ = [
    "CgroupDriver",
    "Cgroup",
    "V1Driver",
    "V1Cgroup",
    "V2Driver",
    "V2Cgroup",
    "detect",
    "open_cgroup",
    "remove_empty_parents",
]


def detect(root: str = "/sys/fs/cgroup") -> CgroupDriver:
    """V2 when `root` itself is a cgroup2 mount (pure v2), else the v1 hierarchies under it.

    A hybrid host (v1 hierarchies plus /sys/fs/cgroup/unified with no
    controllers that matter) is v1 here, as runc treats it.
    """
    if os.path.exists(os.path.join(root, "cgroup.controllers")):
        return V2Driver(root)
    return V1Driver(root)


def open_cgroup(paths: Mapping[str, str], created: Mapping[str, tuple[str, ...]] | None = None) -> Cgroup:
    """Reopen a recorded container's cgroup from its paths alone (after a crash, in another process).

    ``{"": path}`` is v2, its mount point found by matching `path` against the
    cgroup2 mounts (if none matches, the cgroup cannot exist; the parent
    directory stands in so that every method still answers "gone"). Any other
    keys are v1 hierarchies, each matched against the current cgroup mounts.
    `created` is what corral recorded creating (see ownership.py).
    """
    if set(paths) == {""}:
        path = os.path.normpath(paths[""])
        entry = _fs.mount_containing(path, _fs.read_mountinfo(), ("cgroup2",))
        mountpoint = entry.mountpoint if entry is not None else os.path.dirname(path)
        return V2Cgroup(path, mountpoint, created)
    return V1Cgroup(paths, None, created)
