"""The freezer of a container's cgroup, from its recorded paths alone: pause, resume, and "is it paused".

The kernel mechanics live here once: V1Cgroup and V2Cgroup call these functions
for their freeze, thaw and frozen, and `Freezer` offers the same on the paths a
record holds, for a process that lives for one call (`corral pause`, `resume`,
`kill ... 9`, through executor/quick.py), which must not import the drivers
and, through them, corral.config. `os`, `select`, `time`, _fs.py and the
errors only.

v1 (see v1.py): the freezer can stay FREEZING while tasks keep forking;
rewriting FROZEN and, every 50 tries, a THAWED/FROZEN pair lets it settle (runc's
remedy). A cgroup FROZEN only because an ancestor is (self_freezing 0) is not
paused. v2 (see v2.py): cgroup.freeze is core (no controller); cgroup.events
says when it took effect, woken by POLLPRI.
"""

from __future__ import annotations

import os
import select
import time
from collections.abc import Callable, Mapping

from corral.errors import CgroupError, FreezeTimeout
from corral.executor.cgroups import _fs

THAWED, FREEZING, FROZEN = "THAWED", "FREEZING", "FROZEN"
POLL_MASK = select.POLLPRI | select.POLLERR

#: Mount options of a v1 cgroupfs that are not controllers.
_NOT_CONTROLLERS = frozenset(
    {"rw", "ro", "noprefix", "xattr", "clone_children", "cpuset_v2_mode", "favordynmods",
     "nofavordynmods", "nosuid", "nodev", "noexec", "relatime"}
)


def controllers(super_options: tuple[str, ...]) -> frozenset[str]:
    """The controllers (and `name=` hierarchies) of a v1 cgroupfs mount's super options."""
    return frozenset(
        opt for opt in super_options
        if opt not in _NOT_CONTROLLERS and ("=" not in opt or opt.startswith("name="))
    )


def mounted_controllers(key: str, path: str, mounts: list[_fs.MountEntry]) -> tuple[str | None, frozenset[str]]:
    """The mount point and controllers of the v1 hierarchy a recorded `path` lives in (v1.hierarchy_for_path);
    guessed from `key` ("cpu,cpuacct") when it is not mounted."""
    entry = _fs.mount_containing(path, mounts, ("cgroup",))
    if entry is None:
        return None, frozenset(key.split(","))
    return entry.mountpoint, controllers(entry.super_options)


# -- v1 ------------------------------------------------------------------------------------------


def v1_state(d: str) -> str:
    return _fs.read_text(f"{d}/freezer.state").strip()


def v1_write_state(d: str, state: str) -> None:
    try:
        _fs.write_file(f"{d}/freezer.state", state)
    except OSError as err:
        raise _fs.cgroup_error(f"write {state} to", f"{d}/freezer.state", err) from err


def v1_freeze(d: str, timeout: float = 10.0) -> None:
    """Write FROZEN to `d`'s freezer.state until the kernel says FROZEN, thawing now and then."""
    deadline = time.monotonic() + timeout
    tries, state = 0, THAWED
    while True:
        if tries % 50 == 49:
            v1_write_state(d, THAWED)
            time.sleep(0.01)
        v1_write_state(d, FROZEN)
        state = v1_state(d)
        if state == FROZEN:
            return
        if time.monotonic() >= deadline:
            break
        tries += 1
        time.sleep(0.0001 if tries < 25 else 0.001)
    v1_write_state(d, THAWED)
    raise FreezeTimeout(
        f"cannot freeze {d}: freezer.state was still {state} after {timeout:g} s, so it was "
        "thawed again. A process there is stuck in uninterruptible sleep (state D: NFS, "
        "FUSE, a device) or keeps forking; look at `grep State /proc/<pid>/status` for the "
        f"PIDs in {d}/cgroup.procs, fix that, then pause again"
    )


def v1_thaw(d: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    delay = 0.0005
    while True:
        v1_write_state(d, THAWED)
        if v1_state(d) == THAWED:
            return
        if time.monotonic() >= deadline:
            parent = _fs.read_optional(f"{d}/freezer.parent_freezing")
            raise CgroupError(
                f"cannot thaw {d}: freezer.state is still {v1_state(d)} after "
                f"{timeout:g} s (parent_freezing {(parent or '?').strip()}: an ancestor cgroup "
                "is frozen; thaw that one)"
            )
        delay = _fs.pause(delay)


def v1_frozen(d: str | None) -> bool:
    """Frozen by its own freezer.state (FROZEN, or stuck FREEZING); a missing freezer or
    directory means not frozen."""
    if d is None:
        return False
    try:
        state = v1_state(d)
    except OSError as err:
        if err.errno in _fs.GONE_ERRNOS:
            return False
        raise
    if state == THAWED:
        return False
    self_freezing = _fs.read_optional(f"{d}/freezer.self_freezing")
    return self_freezing is None or self_freezing.strip() != "0"


def v1_missing(paths: Mapping[str, str]) -> CgroupError:
    return CgroupError(f"cannot freeze or thaw {sorted(paths.values())}: no freezer hierarchy is mounted")


# -- v2 ------------------------------------------------------------------------------------------


def v2_events(path: str, fd: int | None = None) -> dict[str, int]:
    """`path`/cgroup.events; reading through `fd` also re-arms its POLLPRI."""
    if fd is not None:
        return _fs.parse_keyed(os.pread(fd, 4096, 0).decode())
    return _fs.read_keyed(f"{path}/cgroup.events") or {}


def v2_set_freeze(path: str, value: str) -> None:
    try:
        _fs.write_file(f"{path}/cgroup.freeze", value)
    except OSError as err:
        raise _fs.cgroup_error(f"write {value} to", f"{path}/cgroup.freeze", err) from err


def v2_wait_events(path: str, want: Callable[[dict[str, int]], bool], deadline: float) -> bool:
    """Wait until cgroup.events satisfies `want`, woken by POLLPRI; False at `deadline`."""
    events = f"{path}/cgroup.events"
    try:
        fd = os.open(events, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as err:
        raise _fs.cgroup_error("open", events, err) from err
    try:
        poller = select.poll()
        poller.register(fd, POLL_MASK)
        while True:
            if want(v2_events(path, fd)):
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            poller.poll(min(left, 0.05) * 1000)
    finally:
        os.close(fd)


def v2_freeze(path: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    v2_set_freeze(path, "1")
    if v2_wait_events(path, lambda e: e.get("frozen") == 1, deadline):
        return
    v2_set_freeze(path, "0")
    raise FreezeTimeout(
        f"cannot freeze {path}: cgroup.events did not say 'frozen 1' within {timeout:g} s, "
        "so it was thawed again. A process there may be stuck in the kernel (state D: NFS, "
        "FUSE, a device); look at `grep State /proc/<pid>/status` for the PIDs in "
        f"{path}/cgroup.procs, fix that, then pause again"
    )


def v2_thaw(path: str, timeout: float = 10.0) -> None:
    v2_set_freeze(path, "0")
    if not v2_wait_events(path, lambda e: e.get("frozen") == 0, time.monotonic() + timeout):
        raise CgroupError(
            f"cannot thaw {path}: cgroup.events still says 'frozen 1' {timeout:g} s after "
            "writing 0 to cgroup.freeze (an ancestor cgroup is frozen; thaw that one)"
        )


def v2_frozen(path: str) -> bool:
    """cgroup.freeze is 1 (asked, maybe still settling) or cgroup.events says frozen."""
    wanted = _fs.read_optional(f"{path}/cgroup.freeze")
    if wanted is None:
        return False
    return wanted.strip() == "1" or v2_events(path).get("frozen") == 1


# -- on a record's paths -------------------------------------------------------------------------


class Freezer:
    """The freezer of the cgroup whose directories a record holds (`{"": path}` is v2), as
    open_cgroup(paths) would reopen it: what V1Cgroup/V2Cgroup's freeze, thaw and frozen do."""

    def __init__(self, paths: Mapping[str, str]) -> None:
        self.paths = {k: os.path.normpath(v) for k, v in paths.items()}
        self.v2 = self.paths[""] if set(self.paths) == {""} else None
        self.v1: str | None = None
        if self.v2 is None:
            mounts = _fs.read_mountinfo()
            for key, path in self.paths.items():  # V1Cgroup.dir_for("freezer"): the first key that holds it
                if "freezer" in mounted_controllers(key, path, mounts)[1]:
                    self.v1 = path
                    break

    def exists(self) -> bool:
        """Whether any of the directories exists (Cgroup.exists)."""
        return any(os.path.isdir(p) for p in self.paths.values())

    def freeze(self, timeout: float = 10.0) -> None:
        if self.v2 is not None:
            v2_freeze(self.v2, timeout)
        elif self.v1 is not None:
            v1_freeze(self.v1, timeout)
        else:
            raise v1_missing(self.paths)

    def thaw(self, timeout: float = 10.0) -> None:
        if self.v2 is not None:
            v2_thaw(self.v2, timeout)
        elif self.v1 is not None:
            v1_thaw(self.v1, timeout)
        else:
            raise v1_missing(self.paths)

    def frozen(self) -> bool:
        return v2_frozen(self.v2) if self.v2 is not None else v1_frozen(self.v1)
