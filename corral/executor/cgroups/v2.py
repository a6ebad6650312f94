"""cgroup v2: one unified hierarchy, one directory per container (key ``""``).

Kernel facts this code relies on:

- a controller's files appear in a cgroup only when its parent lists the
  controller in cgroup.subtree_control, and a parent can only pass on what its
  own cgroup.controllers lists; so `create()` enables, level by level, what
  each ancestor has (as runc does: stats need memory.current and pids.current
  even when no limit is set), and `apply()` checks each needed controller;
- there is no devices controller: device rules are an eBPF program attached to
  the directory (bpf_devices.py), which needs no controller either;
- cgroup.freeze is part of the core (no controller needed); cgroup.events says
  when the freeze took effect and when the cgroup (with descendants) is empty;
- cgroup.kill SIGKILLs every process in the subtree atomically with respect to
  forks, and frozen v2 tasks die without being thawed (Linux >= 5.14);
- kernfs files that the kernel "notifies" (cgroup.events, memory.events) wake a
  poll() for POLLPRI when they change. inotify is not in the stdlib, so instead
  of an inotify watch (runc's way) corral polls those descriptors with a timeout
  and re-reads the file each `poll_interval` anyway, so a missed wake-up costs
  at most one interval.
"""

from __future__ import annotations

import os
import select
import time
from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING

from corral.errors import CgroupError, ConfigError, FreezeTimeout
from corral.executor.cgroups import _fs, freezer, oci, ownership
from corral.executor.cgroups._fs import remove_empty_parents
from corral.executor.cgroups.base import Cgroup, CgroupDriver

if TYPE_CHECKING:  # pragma: no cover  (annotations only: `delete` opens cgroups without the config's types)
    from corral.config import CpuResources, DeviceRule
    from corral.types import CpuStats, MemoryStats

__all__ = ["V2Driver", "V2Cgroup", "remove_empty_parents"]

_POLL_MASK = freezer.POLL_MASK


class V2Driver(CgroupDriver):
    """The cgroup2 hierarchy mounted at `mountpoint`."""

    version = 2

    def __init__(self, mountpoint: str = "/sys/fs/cgroup") -> None:
        self.mountpoint = os.path.normpath(mountpoint)
        if not os.path.exists(f"{self.mountpoint}/cgroup.controllers"):
            raise CgroupError(f"{self.mountpoint} is not a cgroup2 mount (no cgroup.controllers)")

    def plan(self, cgroups_path: str) -> dict[str, str]:
        return {"": f"{self.mountpoint}/{_fs.relative_cgroup_path(cgroups_path)}"}

    def open(self, paths: Mapping[str, str], created: ownership.Created | None = None) -> V2Cgroup:
        if set(paths) != {""}:
            raise CgroupError(f"cgroup v2 paths are keyed by '' alone, got {sorted(paths)}")
        return V2Cgroup(paths[""], self.mountpoint, created)

    def hierarchy_root(self, key: str) -> str:
        return self.mountpoint


class V2Cgroup(Cgroup):
    """A container's directory in a cgroup2 hierarchy."""

    io_controller = "io"
    hugetlb_limit = "max"
    io_weight_files = (("io.weight", oci.io_weight_from_blkio), ("io.bfq.weight", int))

    def __init__(self, path: str, mountpoint: str, created: ownership.Created | None = None) -> None:
        self.path = os.path.normpath(path)
        self.mountpoint = os.path.normpath(mountpoint)
        self.paths: Mapping[str, str] = MappingProxyType({"": self.path})
        self._own(created)

    def __repr__(self) -> str:
        return f"V2Cgroup({self.path!r})"

    @property
    def roots(self) -> dict[str, str]:
        """The hierarchy root (mount point), e.g. for `remove_empty_parents`."""
        return {"": self.mountpoint}

    def _file(self, name: str) -> str:
        return f"{self.path}/{name}"

    def dir_for(self, controller: str) -> str | None:
        """This cgroup's directory: every controller's files live there (when enabled)."""
        return self.path

    # --- create, join -----------------------------------------------------------------------

    def _ancestors(self) -> list[str]:
        """The mount point and every directory between it and this cgroup (exclusive)."""
        out = [self.mountpoint]
        if not self.path.startswith(self.mountpoint + "/"):
            return out
        for part in os.path.relpath(self.path, self.mountpoint).split("/")[:-1]:
            out.append(f"{out[-1]}/{part}")
        return out

    def _make_dirs(self) -> None:
        try:
            os.makedirs(self.path, exist_ok=True)
        except OSError as err:
            raise _fs.cgroup_error("create cgroup", self.path, err) from err

    def _enable_controllers(self, wanted: str) -> None:
        """Pass `wanted` down to this cgroup, best effort; only what a limit needs.

        Enabling a controller in an ancestor's cgroup.subtree_control is a
        host-wide change that outlives the container (on a hybrid host it even
        keeps the controller from being mounted as v1), so corral enables
        nothing it was not asked for. A write can fail (an ancestor holding
        processes cannot delegate: the "no internal processes" rule);
        `apply()` then reports precisely which limit cannot be set.
        """
        for ancestor in self._ancestors():
            available = (_fs.read_optional(f"{ancestor}/cgroup.controllers") or "").split()
            enabled = set((_fs.read_optional(f"{ancestor}/cgroup.subtree_control") or "").split())
            missing = [c for c in available if c == wanted and c not in enabled]
            if not missing:
                continue
            control = f"{ancestor}/cgroup.subtree_control"
            try:
                _fs.write_file(control, " ".join(f"+{c}" for c in missing))
            except OSError:
                for controller in missing:
                    try:
                        _fs.write_file(control, f"+{controller}")
                    except OSError:
                        pass

    # --- limits -----------------------------------------------------------------------------

    def controllers(self) -> set[str]:
        """The controllers this cgroup has (its parent's subtree_control)."""
        text = _fs.read_optional(self._file("cgroup.controllers"))
        if text is None:
            raise CgroupError(f"{self.path} does not exist: create() the cgroup before apply()")
        return set(text.split())

    def _require(self, controller: str, where: str) -> str:
        if controller in self.controllers():
            return self.path
        self._enable_controllers(controller)
        if controller in self.controllers():
            return self.path
        parent = os.path.dirname(self.path)
        offered = (_fs.read_optional(f"{parent}/cgroup.controllers") or "").split()
        raise ConfigError(
            where,
            f"the {controller} controller is not enabled for {self.path} and not available in "
            f"{self.mountpoint} ({parent}/cgroup.controllers lists: {' '.join(offered) or 'nothing'}); "
            f"enable it (it may be bound to a v1 hierarchy) or leave {where} unset",
        )

    def _apply_device_rules(self, rules: tuple[DeviceRule, ...]) -> None:
        """v2 has no devices controller: the rules become an eBPF program on this directory."""
        from corral.executor.cgroups import bpf_devices  # only when rules are applied (its cffi load: not for `delete`)

        bpf_devices.install(self.path, rules)

    def _swap_file(self, d: str) -> str:
        return f"{d}/memory.swap.max"

    def _write_memory(self, d: str, limits: oci.MemoryLimits) -> None:
        where = oci.WHERE_MEMORY
        if limits.limit is not None:
            _fs.write_resource(f"{d}/memory.max", oci.max_or(limits.limit), f"{where}.limit")
        if limits.swap is not None:
            swap = oci.swap_max(limits.limit, limits.swap)
            assert swap is not None  # a swap is given
            _fs.write_resource(self._swap_file(d), swap, f"{where}.swap")
        if limits.reservation is not None:
            _fs.write_resource(f"{d}/memory.low", oci.max_or(limits.reservation), f"{where}.reservation")

    def _write_cpu(self, d: str, cpu: CpuResources) -> None:
        where = oci.WHERE_CPU
        if cpu.shares:
            _fs.write_resource(f"{d}/cpu.weight", oci.cpu_weight_from_shares(cpu.shares), f"{where}.shares")
        value = oci.cpu_max(cpu.quota, cpu.period)
        if value is not None:
            _fs.write_resource(f"{d}/cpu.max", value, f"{where}.quota")

    # --- freezer ----------------------------------------------------------------------------

    def _events(self, fd: int | None = None) -> dict[str, int]:
        """cgroup.events; reading through `fd` also re-arms its POLLPRI."""
        return freezer.v2_events(self.path, fd)

    def _set_freeze(self, value: str) -> None:
        freezer.v2_set_freeze(self.path, value)

    def _wait_events(self, want: Callable[[dict[str, int]], bool], deadline: float) -> bool:
        """Wait until cgroup.events satisfies `want`, woken by POLLPRI; False at `deadline`."""
        return freezer.v2_wait_events(self.path, want, deadline)

    def freeze(self, timeout: float = 10.0) -> None:
        freezer.v2_freeze(self.path, timeout)

    def thaw(self, timeout: float = 10.0) -> None:
        freezer.v2_thaw(self.path, timeout)

    def frozen(self) -> bool:
        """cgroup.freeze is 1 (asked, maybe still settling) or cgroup.events says frozen."""
        return freezer.v2_frozen(self.path)

    # --- processes --------------------------------------------------------------------------

    def pids(self) -> list[int]:
        return _fs.procs_recursive(self.path)

    def populated(self) -> bool:
        """Whether any process is in this cgroup or below (cgroup.events); False when gone."""
        return self._events().get("populated", 0) == 1

    # --- stats and OOM ----------------------------------------------------------------------

    def _memory_stats(self) -> MemoryStats | None:
        usage = _fs.read_int(self._file("memory.current"))
        if usage is None:
            return None
        events = _fs.read_keyed(self._file("memory.events")) or {}
        from corral.types import MemoryStats  # only for statistics (base.py's stats)

        return MemoryStats(
            usage=usage,
            max_usage=_fs.read_int(self._file("memory.peak")),
            limit=_fs.limit_or_none(_fs.read_int(self._file("memory.max"))),
            failcnt=events.get("max"),
            oom_kills=events.get("oom_kill", 0),
        )

    def _cpu_stats(self) -> CpuStats | None:
        stat = _fs.read_keyed(self._file("cpu.stat"))
        if not stat or "usage_usec" not in stat:
            return None

        def ns(key: str) -> int | None:
            return stat[key] * 1000 if key in stat else None

        from corral.types import CpuStats

        return CpuStats(
            total_usage_ns=stat["usage_usec"] * 1000,
            per_cpu_usage_ns=None,
            user_ns=ns("user_usec"),
            system_ns=ns("system_usec"),
            periods=stat.get("nr_periods"),
            throttled_periods=stat.get("nr_throttled"),
            throttled_time_ns=ns("throttled_usec"),
        )

    def oom_kill_count(self) -> int:
        """memory.events `oom_kill`; 0 without a memory controller."""
        return (_fs.read_keyed(self._file("memory.events")) or {}).get("oom_kill", 0)

    def oom_events(
        self, stop: Callable[[], bool] | None = None, poll_interval: float = 0.1
    ) -> Iterator[int]:
        """Yield the kill count when memory.events `oom_kill` grows; end when empty or stopped.

        Woken by POLLPRI on memory.events and cgroup.events (see the module
        docstring for why not inotify), and at least every `poll_interval`.
        cgroup.events is read before the count: the OOM killer counts a kill
        before its victim leaves, so the last kill is never lost.
        """
        fds = self._open_for_poll()
        if not fds:
            return
        try:
            poller = select.poll()
            for fd in fds:
                poller.register(fd, _POLL_MASK)
            last = self.oom_kill_count()
            while not (stop is not None and stop()):
                if not _rearm(fds):
                    return  # the cgroup was removed
                empty = not self.populated()
                count = self.oom_kill_count()
                if count > last:
                    last = count
                    yield count
                if empty:
                    return
                poller.poll(poll_interval * 1000)
        finally:
            for fd in fds:
                os.close(fd)

    def _open_for_poll(self) -> list[int]:
        """cgroup.events ([] when the cgroup is gone) and memory.events (when the controller is on)."""
        fds: list[int] = []
        for name in ("cgroup.events", "memory.events"):
            try:
                fds.append(os.open(self._file(name), os.O_RDONLY | os.O_CLOEXEC))
            except OSError as err:
                if err.errno in _fs.GONE_ERRNOS and fds:
                    break  # no memory controller: only emptiness can end the wait
                for fd in fds:
                    os.close(fd)
                if err.errno in _fs.GONE_ERRNOS:
                    return []  # the cgroup is gone: nothing will ever be OOM-killed in it
                raise _fs.cgroup_error("open", self._file(name), err) from err
        return fds

    # --- teardown ---------------------------------------------------------------------------

    def _kill_at_once(self) -> bool:
        """cgroup.kill (Linux 5.14+): atomic against forks, and frozen tasks die too."""
        if not os.path.exists(self._file("cgroup.kill")):
            return False
        try:
            _fs.write_file(self._file("cgroup.kill"), "1")
        except OSError as err:
            raise _fs.cgroup_error("write 1 to", self._file("cgroup.kill"), err) from err
        return True

    def _unfreeze(self) -> None:
        self._set_freeze("0")

    def _wait_empty(self, deadline: float, timeout: float) -> None:
        if not self._wait_events(lambda e: e.get("populated", 0) == 0, deadline):
            left = self.pids()
            raise CgroupError(
                f"processes still in {self.path} {timeout:g} s after SIGKILL: "
                f"{_fs.describe_pids(left) or 'none listed, but cgroup.events says populated 1'} "
                "(state D: stuck in the kernel)"
            )


def _rearm(fds: list[int]) -> bool:
    """Read each kernfs descriptor so that poll() waits for the next change; False if gone."""
    try:
        for fd in fds:
            os.pread(fd, 4096, 0)
    except OSError as err:
        if err.errno in _fs.GONE_ERRNOS:
            return False
        raise
    return True

