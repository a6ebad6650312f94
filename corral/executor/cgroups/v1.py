"""cgroup v1: one hierarchy per controller (or per group of co-mounted controllers).

The hierarchies are found in /proc/self/mountinfo (mounts of type ``cgroup``
under the root, usually /sys/fs/cgroup), not guessed from directory names, so
that co-mounted ``cpu,cpuacct`` or a missing ``blkio`` are seen as they are. A
container gets one directory per hierarchy; each is keyed by the mount
directory's basename, which is what is recorded.

Kernel facts this code works around (as runc does):

- a new cpuset cgroup starts with empty cpuset.cpus/mems and refuses tasks
  (ENOSPC) until both are filled, so every level is filled from its parent;
- the v1 freezer can stay FREEZING while tasks keep forking; retrying, with an
  occasional thaw, is the documented remedy;
- frozen v1 tasks act on SIGKILL only once thawed;
- rmdir of a just-emptied memory cgroup can be EBUSY for a moment.
"""

from __future__ import annotations

import os
import select
import time
from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, NamedTuple

from corral.errors import CgroupError, ConfigError, FreezeTimeout
from corral.executor.cgroups import _fs, freezer, oci, ownership
from corral.executor.cgroups.freezer import FREEZING, FROZEN, THAWED
from corral.executor.cgroups._fs import remove_empty_parents
from corral.executor.cgroups.base import Cgroup, CgroupDriver

if TYPE_CHECKING:  # pragma: no cover  (annotations only: `delete` opens cgroups without the config's types)
    from corral.config import CpuResources, DeviceRule
    from corral.types import CpuStats, MemoryStats

__all__ = ["Hierarchy", "V1Driver", "V1Cgroup", "remove_empty_parents", "discover"]


#: Which hierarchy `pids()` reads: the first that exists (they should agree; pids is exact).
_PIDS_PREFERENCE = ("pids", "freezer", "memory")


class Hierarchy(NamedTuple):
    """One mounted v1 hierarchy."""

    key: str  # the mount directory's basename: "memory", "cpu,cpuacct", "systemd"
    mountpoint: str | None  # None when a recorded key's hierarchy is no longer mounted
    controllers: frozenset[str]  # "memory", "cpu", "name=systemd", ...


def discover(
    root: str = "/sys/fs/cgroup", mounts: list[_fs.MountEntry] | None = None
) -> dict[str, Hierarchy]:
    """The v1 hierarchies mounted under `root`, by key (a later mount over the same point wins)."""
    root = os.path.normpath(root)
    found: dict[str, Hierarchy] = {}
    for entry in mounts if mounts is not None else _fs.read_mountinfo():
        if entry.fstype != "cgroup" or os.path.dirname(entry.mountpoint) != root:
            continue
        key = os.path.basename(entry.mountpoint)
        found[key] = Hierarchy(key, entry.mountpoint, freezer.controllers(entry.super_options))
    return found


def hierarchy_for_path(key: str, path: str, mounts: list[_fs.MountEntry]) -> Hierarchy:
    """The hierarchy a recorded `path` lives in, found by its mount; guessed from `key` if unmounted."""
    mountpoint, controllers = freezer.mounted_controllers(key, path, mounts)
    return Hierarchy(key, mountpoint, controllers)


class V1Driver(CgroupDriver):
    """The v1 hierarchies under `root`, as /proc/self/mountinfo lists them."""

    version = 1

    def __init__(self, root: str = "/sys/fs/cgroup") -> None:
        self.root = os.path.normpath(root)
        self.hierarchies: dict[str, Hierarchy] = discover(self.root)
        if not self.hierarchies:
            raise CgroupError(
                f"no cgroup v1 hierarchy is mounted under {self.root} and it is not a cgroup2 "
                "mount either: mount cgroupfs there (e.g. let systemd or cgroupfs-mount do it)"
            )

    def plan(self, cgroups_path: str) -> dict[str, str]:
        rel = _fs.relative_cgroup_path(cgroups_path)
        return {key: f"{h.mountpoint}/{rel}" for key, h in sorted(self.hierarchies.items())}

    def open(self, paths: Mapping[str, str], created: ownership.Created | None = None) -> V1Cgroup:
        known = {key: self.hierarchies[key] for key in paths if key in self.hierarchies}
        return V1Cgroup(paths, known if len(known) == len(paths) else None, created)

    def hierarchy_root(self, key: str) -> str:
        return self.hierarchies[key].mountpoint or f"{self.root}/{key}"


class V1Cgroup(Cgroup):
    """A container's directories, one per v1 hierarchy.

    `hierarchies` says which controllers each key holds; when omitted (reopening
    from a record) they are found again by matching each path against the
    current cgroup mounts.
    """

    io_controller = "blkio"
    hugetlb_limit = "limit_in_bytes"
    io_weight_files = (("blkio.weight", int), ("blkio.bfq.weight", int))

    def __init__(
        self,
        paths: Mapping[str, str],
        hierarchies: Mapping[str, Hierarchy] | None = None,
        created: ownership.Created | None = None,
    ) -> None:
        self.paths: Mapping[str, str] = MappingProxyType({k: os.path.normpath(v) for k, v in paths.items()})
        self._own(created)
        if hierarchies is None:
            mounts = _fs.read_mountinfo()
            hierarchies = {k: hierarchy_for_path(k, p, mounts) for k, p in self.paths.items()}
        self.hierarchies: Mapping[str, Hierarchy] = MappingProxyType(dict(hierarchies))

    def __repr__(self) -> str:
        return f"V1Cgroup({dict(self.paths)!r})"

    @property
    def roots(self) -> dict[str, str]:
        """Each key's hierarchy root (mount point), e.g. for `remove_empty_parents`."""
        return {k: h.mountpoint for k, h in self.hierarchies.items() if h.mountpoint}

    # --- lookup -----------------------------------------------------------------------------

    def dir_for(self, controller: str) -> str | None:
        """This cgroup's directory in the hierarchy that holds `controller`, if there is one."""
        for key, h in self.hierarchies.items():
            if controller in h.controllers:
                return self.paths[key]
        return None

    def _require(self, controller: str, where: str) -> str:
        directory = self.dir_for(controller)
        if directory is None:
            raise ConfigError(
                where,
                f"the {controller} controller has no cgroup v1 hierarchy for this container "
                f"(mounted: {', '.join(sorted(self.hierarchies)) or 'none'}); mount it or leave "
                f"{where} unset",
            )
        return directory

    # --- create, join -----------------------------------------------------------------------

    def _make_dirs(self) -> None:
        for key, path in self.paths.items():
            h = self.hierarchies[key]
            try:
                if "cpuset" in h.controllers:
                    self._create_cpuset(h.mountpoint, path)
                else:
                    os.makedirs(path, exist_ok=True)
            except OSError as err:
                raise _fs.cgroup_error("create cgroup", path, err) from err

    @staticmethod
    def _create_cpuset(mountpoint: str | None, path: str) -> None:
        """mkdir each level and fill its empty cpuset.cpus/mems from its parent (else ENOSPC on join)."""
        base = mountpoint if mountpoint and path.startswith(mountpoint + "/") else os.path.dirname(path)
        current = base
        for part in os.path.relpath(path, base).split("/"):
            parent, current = current, os.path.join(current, part)
            os.makedirs(current, exist_ok=True)
            for name in ("cpuset.cpus", "cpuset.mems"):
                mine = os.path.join(current, name)
                if not _fs.read_text(mine).strip():
                    _fs.write_file(mine, _fs.read_text(os.path.join(parent, name)).strip() or "\n")

    # --- limits -----------------------------------------------------------------------------

    def _swap_file(self, d: str) -> str:
        return f"{d}/memory.memsw.limit_in_bytes"

    def _write_memory(self, d: str, limits: oci.MemoryLimits) -> None:
        self._write_memory_and_swap(d, limits.limit, limits.swap)
        if limits.reservation is not None:
            _fs.write_resource(
                f"{d}/memory.soft_limit_in_bytes", limits.reservation, f"{oci.WHERE_MEMORY}.reservation"
            )

    @staticmethod
    def _write_memory_and_swap(d: str, limit: int | None, swap: int | None) -> None:
        """OCI swap is memory+swap (memory.memsw). The kernel keeps memory <= memsw at every
        step, so (as runc) swap goes first when it grows past the current memory limit."""
        where = oci.WHERE_MEMORY
        steps: list[tuple[str, int, str]] = []
        if limit is not None:
            steps.append((f"{d}/memory.limit_in_bytes", limit, f"{where}.limit"))
        if swap is not None:
            steps.append((f"{d}/memory.memsw.limit_in_bytes", swap, f"{where}.swap"))
        if limit is not None and swap is not None:
            current = _fs.read_int(f"{d}/memory.limit_in_bytes") or 0
            if swap == -1 or swap > current:
                steps.reverse()
        for path, value, step_where in steps:
            _fs.write_resource(path, value, step_where)

    def _write_cpu(self, d: str, cpu: CpuResources) -> None:
        if cpu.shares:
            _fs.write_resource(f"{d}/cpu.shares", cpu.shares, f"{oci.WHERE_CPU}.shares")
        self._apply_cfs(d, cpu.quota, cpu.period)

    @staticmethod
    def _apply_cfs(d: str, quota: int | None, period: int | None) -> None:
        """Period before quota (as runc). If the kernel refuses the new period against the
        old quota (their ratio is checked against the parent), write the quota first."""
        where = oci.WHERE_CPU
        if period is not None:
            try:
                _fs.write_file(f"{d}/cpu.cfs_period_us", str(period))
            except OSError:
                if quota is None:
                    _fs.write_resource(f"{d}/cpu.cfs_period_us", period, f"{where}.period")
                    return
                _fs.write_resource(f"{d}/cpu.cfs_quota_us", quota, f"{where}.quota")
                _fs.write_resource(f"{d}/cpu.cfs_period_us", period, f"{where}.period")
                return
        if quota is not None:
            _fs.write_resource(f"{d}/cpu.cfs_quota_us", quota, f"{where}.quota")

    def _write_device_rules(self, d: str, rules: tuple[DeviceRule, ...]) -> None:
        from corral.executor.cgroups.devices import device_rule_line  # its defaults are the config's types

        for index, rule in enumerate(rules):
            name = "devices.allow" if rule.allow else "devices.deny"
            _fs.write_resource(f"{d}/{name}", device_rule_line(rule), f"{oci.WHERE_DEVICES}[{index}]")

    # --- freezer ----------------------------------------------------------------------------

    def _freezer_dir(self) -> str:
        d = self.dir_for("freezer")
        if d is None:
            raise freezer.v1_missing(self.paths)
        return d

    def _write_state(self, d: str, state: str) -> None:
        freezer.v1_write_state(d, state)

    def freeze(self, timeout: float = 10.0) -> None:
        """Write FROZEN until the kernel says FROZEN, thawing now and then (runc's remedy; freezer.py)."""
        freezer.v1_freeze(self._freezer_dir(), timeout)

    def thaw(self, timeout: float = 10.0) -> None:
        freezer.v1_thaw(self._freezer_dir(), timeout)

    def frozen(self) -> bool:
        """Frozen by its own freezer.state (FROZEN, or stuck FREEZING).

        A cgroup that is FROZEN only because an ancestor is (self_freezing 0) is
        not paused as far as this container is concerned; runc reports it the
        same way. A missing freezer or directory means not frozen.
        """
        return freezer.v1_frozen(self.dir_for("freezer"))

    # --- processes --------------------------------------------------------------------------

    def _pids_dir(self) -> str | None:
        for controller in _PIDS_PREFERENCE:
            d = self.dir_for(controller)
            if d is not None and os.path.isdir(d):
                return d
        return next((p for p in self.paths.values() if os.path.isdir(p)), None)

    def pids(self) -> list[int]:
        d = self._pids_dir()
        return _fs.procs_recursive(d) if d else []

    # --- stats and OOM ----------------------------------------------------------------------

    def _memory_stats(self) -> MemoryStats | None:
        d = self.dir_for("memory")
        usage = _fs.read_int(f"{d}/memory.usage_in_bytes") if d else None
        if d is None or usage is None:
            return None
        from corral.types import MemoryStats  # only for statistics (base.py's stats)

        return MemoryStats(
            usage=usage,
            max_usage=_fs.read_int(f"{d}/memory.max_usage_in_bytes"),
            limit=_fs.limit_or_none(_fs.read_int(f"{d}/memory.limit_in_bytes")),
            failcnt=_fs.read_int(f"{d}/memory.failcnt"),
            oom_kills=self.oom_kill_count(),
        )

    def _cpu_stats(self) -> CpuStats | None:
        acct = self.dir_for("cpuacct")
        total = _fs.read_int(f"{acct}/cpuacct.usage") if acct else None
        if acct is None or total is None:
            return None
        percpu = _fs.read_optional(f"{acct}/cpuacct.usage_percpu")
        ticks = _fs.read_keyed(f"{acct}/cpuacct.stat") or {}
        ns_per_tick = 1_000_000_000 // os.sysconf("SC_CLK_TCK")
        cpu = self.dir_for("cpu")
        throttling = (_fs.read_keyed(f"{cpu}/cpu.stat") if cpu else None) or {}
        from corral.types import CpuStats

        return CpuStats(
            total_usage_ns=total,
            per_cpu_usage_ns=tuple(int(v) for v in percpu.split()) if percpu else None,
            user_ns=ticks["user"] * ns_per_tick if "user" in ticks else None,
            system_ns=ticks["system"] * ns_per_tick if "system" in ticks else None,
            periods=throttling.get("nr_periods"),
            throttled_periods=throttling.get("nr_throttled"),
            throttled_time_ns=throttling.get("throttled_time"),
        )

    def oom_kill_count(self) -> int:
        """The `oom_kill` line of memory.oom_control; 0 when there is no memory cgroup."""
        d = self.dir_for("memory")
        values = _fs.read_keyed(f"{d}/memory.oom_control") if d else None
        return (values or {}).get("oom_kill", 0)

    def oom_events(
        self, stop: Callable[[], bool] | None = None, poll_interval: float = 0.1
    ) -> Iterator[int]:
        """Wake on the kernel's OOM notification (an eventfd registered in cgroup.event_control).

        The kernel signals the eventfd when the cgroup hits OOM, just *before*
        the OOM killer picks its victim, so after a wake-up the count is re-read
        every 10 ms for a moment until it grows. Otherwise the count is re-read
        every `poll_interval` (a missed notification costs one interval). Before
        ending because the cgroup emptied, the count is read once more: a kill
        is counted before its victim leaves the cgroup, so the last one is seen.
        """
        d = self.dir_for("memory")
        if d is None:
            raise CgroupError(f"no memory hierarchy for {sorted(self.paths.values())}: no OOM events")
        efd, cfd = self._register_oom_eventfd(d)
        try:
            last = self.oom_kill_count()
            eager_until = 0.0  # after a notification: re-read quickly until the kill is counted
            while not (stop is not None and stop()):
                wait = poll_interval if time.monotonic() >= eager_until else min(poll_interval, 0.01)
                if select.select([efd], [], [], wait)[0]:
                    _drain_eventfd(efd)
                    eager_until = time.monotonic() + 0.5
                empty = not os.path.isdir(d) or not self.pids()
                count = self.oom_kill_count()
                if count > last:
                    # the victim is leaving: keep looking quickly, to notice the cgroup empty
                    last, eager_until = count, time.monotonic() + 0.5
                    yield count
                if empty:
                    return
        finally:
            os.close(efd)
            os.close(cfd)

    @staticmethod
    def _register_oom_eventfd(d: str) -> tuple[int, int]:
        efd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        try:
            cfd = os.open(f"{d}/memory.oom_control", os.O_RDONLY | os.O_CLOEXEC)
        except OSError as err:
            os.close(efd)
            raise _fs.cgroup_error("open", f"{d}/memory.oom_control", err) from err
        try:
            _fs.write_file(f"{d}/cgroup.event_control", f"{efd} {cfd}")
        except OSError as err:
            os.close(efd)
            os.close(cfd)
            raise _fs.cgroup_error("register an OOM eventfd in", f"{d}/cgroup.event_control", err) from err
        return efd, cfd

    # --- teardown ---------------------------------------------------------------------------

    def _can_freeze(self) -> bool:
        d = self.dir_for("freezer")
        return d is not None and os.path.isdir(d)

    def _unfreeze(self) -> None:
        """Write THAWED, quietly: frozen v1 tasks act on SIGKILL only once thawed."""
        d = self.dir_for("freezer")
        if d is not None and os.path.isdir(d):
            try:
                self._write_state(d, THAWED)
            except CgroupError:
                pass

    def _wait_empty(self, deadline: float, timeout: float) -> None:
        delay = 0.0005
        while True:
            left = self.pids()
            if not left:
                return
            if time.monotonic() >= deadline:
                raise CgroupError(
                    f"processes still in {self._pids_dir()} {timeout:g} s after SIGKILL: "
                    f"{_fs.describe_pids(left)} (state D: stuck in the kernel; or an ancestor "
                    "cgroup is frozen)"
                )
            _fs.kill_pids(left)  # forks that raced the first kill
            delay = _fs.pause(delay)


def _drain_eventfd(efd: int) -> None:
    try:
        os.eventfd_read(efd)
    except BlockingIOError:
        pass

