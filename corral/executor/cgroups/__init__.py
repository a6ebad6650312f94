"""The cgroup managers: picking one for this host, and reopening a container's from its paths.

The interface and the meaning of the recorded paths are in base.py.

Stdlib only (plus corral's plain-data modules, and the cffi syscalls that v2's
device programs need and those processes load anyway): the init and the spawn
helper import this in fresh interpreters. The drivers are imported on first use,
so that importing a small module of this package (freezer.py, _fs.py) stays cheap.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from corral.executor.cgroups import _fs
from corral.executor.cgroups._fs import remove_empty_parents

if TYPE_CHECKING:  # pragma: no cover
    from corral.executor.cgroups.base import Cgroup as Cgroup, CgroupDriver as CgroupDriver
    from corral.executor.cgroups.v1 import V1Cgroup as V1Cgroup, V1Driver as V1Driver
    from corral.executor.cgroups.v2 import V2Cgroup as V2Cgroup, V2Driver as V2Driver

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

#: The drivers, imported on first use (PEP 562): they reach corral.config, which a process that
#: only pauses or resumes (freezer.py, through executor/quick.py) must not pay for.
_LAZY = {
    "Cgroup": "base", "CgroupDriver": "base", "V1Cgroup": "v1", "V1Driver": "v1", "V2Cgroup": "v2", "V2Driver": "v2",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def detect(root: str = "/sys/fs/cgroup") -> CgroupDriver:
    """V2 when `root` itself is a cgroup2 mount (pure v2), else the v1 hierarchies under it.

    A hybrid host (v1 hierarchies plus /sys/fs/cgroup/unified with no
    controllers that matter) is v1 here, as runc treats it.
    """
    from corral.executor.cgroups.v1 import V1Driver
    from corral.executor.cgroups.v2 import V2Driver

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
    from corral.executor.cgroups.v1 import V1Cgroup
    from corral.executor.cgroups.v2 import V2Cgroup

    if set(paths) == {""}:
        path = os.path.normpath(paths[""])
        entry = _fs.mount_containing(path, _fs.read_mountinfo(), ("cgroup2",))
        mountpoint = entry.mountpoint if entry is not None else os.path.dirname(path)
        return V2Cgroup(path, mountpoint, created)
    return V1Cgroup(paths, None, created)
