"""cgroup v2: one unified hierarchy, one directory per container (key ``""``).

Kernel facts this code relies on:

- a controller's files appear in a cgroup only when its parent lists the
  controller in cgroup.subtree_control, and a parent can only pass on what its
  own cgroup.controllers lists; so `create()` enables, level by level, what
  each ancestor has (as runc does: stats need memory.current and pids.current
  even when no limit is set), and `apply()` checks each needed controller;
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

from corral.config import BlockIOResources, CpuResources, MemoryResources, Resources
from corral.errors import CgroupError, ConfigError, FreezeTimeout
from corral.executor.cgroups import _fs
from corral.executor.cgroups._fs import remove_empty_parents
from corral.executor.cgroups.base import Cgroup, CgroupDriver
from corral.types import CpuStats, MemoryStats, PidsStats, Stats

__all__ = ["V2Driver", "V2Cgroup", "remove_empty_parents", "cpu_weight_from_shares", "swap_max"]

_POLL_MASK = select.POLLPRI | select.POLLERR


class V2Driver(CgroupDriver):
    """The cgroup2 hierarchy mounted at `mountpoint`."""

    version = 2

    def __init__(self, mountpoint: str = "/sys/fs/cgroup") -> None:
        self.mountpoint = os.path.normpath(mountpoint)
        if not os.path.exists(f"{self.mountpoint}/cgroup.controllers"):
            raise CgroupError(f"{self.mountpoint} is not a cgroup2 mount (no cgroup.controllers)")

    def plan(self, cgroups_path: str) -> dict[str, str]:
        return {"": f"{self.mountpoint}/{_fs.relative_cgroup_path(cgroups_path)}"}

    def open(self, paths: Mapping[str, str]) -> V2Cgroup:
        if set(paths) != {""}:
            raise CgroupError(f"cgroup v2 paths are keyed by '' alone, got {sorted(paths)}")
        return V2Cgroup(paths[""], self.mountpoint)


def cpu_weight_from_shares(shares: int) -> int:
    """v1 cpu.shares (2..262144) to v2 cpu.weight (1..10000), runc's formula."""
    return 1 + ((shares - 2) * 9999) // 262142


def io_weight_from_blkio(weight: int) -> int:
    """v1 blkio weight (10..1000) to v2 io.weight (1..10000), runc's formula."""
    return 1 + ((weight - 10) * 9999) // 990


def swap_max(memory: int | None, swap: int | None) -> int | str | None:
    """OCI swap is memory+swap; memory.swap.max is swap alone (runc's conversion)."""
    if memory == -1 and swap is None:
        return "max"  # unlimited memory with swap unset: both unlimited
    if swap is None:
        return None
    if swap == -1:
        return "max"
    where = "linux.resources.memory.swap"
    if memory is None or memory == -1:
        raise ConfigError(where, "a swap limit needs a memory limit (OCI swap is memory+swap)")
    if swap < memory:
        raise ConfigError(where, f"{swap} is below the memory limit {memory}; OCI swap is memory+swap")
    return swap - memory


def _limit(value: int) -> int | str:
    """OCI -1 means unlimited, which v2 spells `max`."""
    return "max" if value < 0 else value


class V2Cgroup(Cgroup):
    """A container's directory in a cgroup2 hierarchy."""

    def __init__(self, path: str, mountpoint: str) -> None:
        self.path = os.path.normpath(path)
        self.mountpoint = os.path.normpath(mountpoint)
        self.paths: Mapping[str, str] = MappingProxyType({"": self.path})

    def __repr__(self) -> str:
        return f"V2Cgroup({self.path!r})"

    @property
    def roots(self) -> dict[str, str]:
        """The hierarchy root (mount point), e.g. for `remove_empty_parents`."""
        return {"": self.mountpoint}

    def _file(self, name: str) -> str:
        return f"{self.path}/{name}"

    # --- create, join -----------------------------------------------------------------------

    def _ancestors(self) -> list[str]:
        """The mount point and every directory between it and this cgroup (exclusive)."""
        out = [self.mountpoint]
        if not self.path.startswith(self.mountpoint + "/"):
            return out
        for part in os.path.relpath(self.path, self.mountpoint).split("/")[:-1]:
            out.append(f"{out[-1]}/{part}")
        return out

    def create(self) -> None:
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

    def add(self, pid: int) -> None:
        try:
            _fs.write_file(self._file("cgroup.procs"), str(pid))
        except OSError as err:
            raise CgroupError(
                f"cannot move PID {pid} into {self._file('cgroup.procs')}: {_fs.describe(err)}"
            ) from err

    def procs_files(self) -> list[str]:
        return [self._file("cgroup.procs")]

    # --- limits -----------------------------------------------------------------------------

    def apply(self, resources: Resources | None) -> None:
        if resources is None:
            return
        if resources.devices:
            raise ConfigError(
                "linux.resources.devices",
                "device rules on cgroup v2 need an eBPF program, which corral does not load yet",
            )
        if resources.memory is not None:
            self._apply_memory(resources.memory)
        if resources.cpu is not None:
            self._apply_cpu(resources.cpu)
        if resources.pids is not None:
            self._require("pids", "linux.resources.pids")
            limit = resources.pids.limit  # OCI: 0 or -1 means unlimited
            value = limit if limit > 0 else "max"
            _fs.write_resource(self._file("pids.max"), value, "linux.resources.pids.limit")
        if resources.block_io is not None:
            self._apply_io(resources.block_io)

    def controllers(self) -> set[str]:
        """The controllers this cgroup has (its parent's subtree_control)."""
        text = _fs.read_optional(self._file("cgroup.controllers"))
        if text is None:
            raise CgroupError(f"{self.path} does not exist: create() the cgroup before apply()")
        return set(text.split())

    def _require(self, controller: str, where: str) -> None:
        if controller in self.controllers():
            return
        self._enable_controllers(controller)
        if controller in self.controllers():
            return
        parent = os.path.dirname(self.path)
        offered = (_fs.read_optional(f"{parent}/cgroup.controllers") or "").split()
        raise ConfigError(
            where,
            f"the {controller} controller is not enabled for {self.path} and not available in "
            f"{self.mountpoint} ({parent}/cgroup.controllers lists: {' '.join(offered) or 'nothing'}); "
            f"enable it (it may be bound to a v1 hierarchy) or leave {where} unset",
        )

    def _apply_memory(self, mem: MemoryResources) -> None:
        where = "linux.resources.memory"
        if mem.limit is None and mem.reservation is None and mem.swap is None:
            return
        self._require("memory", where)
        swap = swap_max(mem.limit, mem.swap)
        if swap is not None and not os.path.exists(self._file("memory.swap.max")):
            if mem.swap is not None:
                raise ConfigError(
                    f"{where}.swap",
                    f"swap accounting is off in this kernel ({self._file('memory.swap.max')} does not "
                    "exist); boot with swapaccount=1 or leave swap unset",
                )
            swap = None
        if mem.limit is not None:
            _fs.write_resource(self._file("memory.max"), _limit(mem.limit), f"{where}.limit")
        if swap is not None:
            _fs.write_resource(self._file("memory.swap.max"), swap, f"{where}.swap")
        if mem.reservation is not None:
            _fs.write_resource(self._file("memory.low"), _limit(mem.reservation), f"{where}.reservation")

    def _apply_cpu(self, cpu: CpuResources) -> None:
        where = "linux.resources.cpu"
        if cpu.shares or cpu.quota is not None or cpu.period is not None:
            self._require("cpu", where)
            if cpu.shares:
                weight = cpu_weight_from_shares(cpu.shares)
                _fs.write_resource(self._file("cpu.weight"), weight, f"{where}.shares")
            value = _cpu_max(cpu.quota, cpu.period)
            if value is not None:
                _fs.write_resource(self._file("cpu.max"), value, f"{where}.quota")
        if cpu.cpus or cpu.mems:
            self._require("cpuset", where)
            if cpu.cpus:
                _fs.write_resource(self._file("cpuset.cpus"), cpu.cpus, f"{where}.cpus")
            if cpu.mems:
                _fs.write_resource(self._file("cpuset.mems"), cpu.mems, f"{where}.mems")

    def _apply_io(self, blkio: BlockIOResources) -> None:
        where = "linux.resources.blockIO.weight"
        if not blkio.weight:
            return
        self._require("io", "linux.resources.blockIO")
        if os.path.exists(self._file("io.weight")):
            _fs.write_resource(self._file("io.weight"), io_weight_from_blkio(blkio.weight), where)
        elif os.path.exists(self._file("io.bfq.weight")):
            _fs.write_resource(self._file("io.bfq.weight"), blkio.weight, where)
        else:
            raise ConfigError(where, f"neither io.weight nor io.bfq.weight exists in {self.path}")

    # --- freezer ----------------------------------------------------------------------------

    def _events(self, fd: int | None = None) -> dict[str, int]:
        """cgroup.events; reading through `fd` also re-arms its POLLPRI."""
        if fd is not None:
            return _fs.parse_keyed(os.pread(fd, 4096, 0).decode())
        return _fs.read_keyed(self._file("cgroup.events")) or {}

    def _set_freeze(self, value: str) -> None:
        try:
            _fs.write_file(self._file("cgroup.freeze"), value)
        except OSError as err:
            raise _fs.cgroup_error(f"write {value} to", self._file("cgroup.freeze"), err) from err

    def _wait_events(self, want: Callable[[dict[str, int]], bool], deadline: float) -> bool:
        """Wait until cgroup.events satisfies `want`, woken by POLLPRI; False at `deadline`."""
        try:
            fd = os.open(self._file("cgroup.events"), os.O_RDONLY | os.O_CLOEXEC)
        except OSError as err:
            raise _fs.cgroup_error("open", self._file("cgroup.events"), err) from err
        try:
            poller = select.poll()
            poller.register(fd, _POLL_MASK)
            while True:
                if want(self._events(fd)):
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                poller.poll(min(left, 0.05) * 1000)
        finally:
            os.close(fd)

    def freeze(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        self._set_freeze("1")
        if self._wait_events(lambda e: e.get("frozen") == 1, deadline):
            return
        self._set_freeze("0")
        raise FreezeTimeout(
            f"cannot freeze {self.path}: cgroup.events did not say 'frozen 1' within {timeout:g} s, "
            "so it was thawed again. A process there may be stuck in the kernel (state D: NFS, "
            "FUSE, a device); look at `grep State /proc/<pid>/status` for the PIDs in "
            f"{self.path}/cgroup.procs, fix that, then pause again"
        )

    def thaw(self, timeout: float = 10.0) -> None:
        self._set_freeze("0")
        if not self._wait_events(lambda e: e.get("frozen") == 0, time.monotonic() + timeout):
            raise CgroupError(
                f"cannot thaw {self.path}: cgroup.events still says 'frozen 1' {timeout:g} s after "
                "writing 0 to cgroup.freeze (an ancestor cgroup is frozen; thaw that one)"
            )

    def frozen(self) -> bool:
        """cgroup.freeze is 1 (asked, maybe still settling) or cgroup.events says frozen."""
        wanted = _fs.read_optional(self._file("cgroup.freeze"))
        if wanted is None:
            return False
        return wanted.strip() == "1" or self._events().get("frozen") == 1

    # --- processes --------------------------------------------------------------------------

    def exists(self) -> bool:
        return os.path.isdir(self.path)

    def pids(self) -> list[int]:
        return _fs.procs_recursive(self.path)

    def populated(self) -> bool:
        """Whether any process is in this cgroup or below (cgroup.events); False when gone."""
        return self._events().get("populated", 0) == 1

    # --- stats and OOM ----------------------------------------------------------------------

    def stats(self) -> Stats:
        return Stats(memory=self._memory_stats(), cpu=self._cpu_stats(), pids=self._pids_stats())

    def _memory_stats(self) -> MemoryStats | None:
        usage = _fs.read_int(self._file("memory.current"))
        if usage is None:
            return None
        events = _fs.read_keyed(self._file("memory.events")) or {}
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

        return CpuStats(
            total_usage_ns=stat["usage_usec"] * 1000,
            per_cpu_usage_ns=None,
            user_ns=ns("user_usec"),
            system_ns=ns("system_usec"),
            periods=stat.get("nr_periods"),
            throttled_periods=stat.get("nr_throttled"),
            throttled_time_ns=ns("throttled_usec"),
        )

    def _pids_stats(self) -> PidsStats | None:
        current = _fs.read_int(self._file("pids.current"))
        if current is None:
            return None
        return PidsStats(current=current, limit=_fs.read_int(self._file("pids.max")))

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

    def kill_all(self, timeout: float = 10.0) -> None:
        """cgroup.kill when the kernel has it (5.14+), else freeze → SIGKILL → thaw; then wait.

        A frozen cgroup is thawed afterwards so that an empty cgroup does not
        read as paused (status checks the freezer before the init).
        """
        if not self.exists():
            return
        deadline = time.monotonic() + timeout
        if os.path.exists(self._file("cgroup.kill")):
            self._write_kill()
        elif self.pids():
            froze = self._freeze_quietly(min(1.0, timeout / 4))
            _fs.kill_pids(self.pids())
            if froze:
                self._set_freeze("0")
        if self.frozen():
            self._set_freeze("0")
        if not self._wait_events(lambda e: e.get("populated", 0) == 0, deadline):
            left = self.pids()
            raise CgroupError(
                f"processes still in {self.path} {timeout:g} s after SIGKILL: "
                f"{_fs.describe_pids(left) or 'none listed, but cgroup.events says populated 1'} "
                "(state D: stuck in the kernel)"
            )

    def _write_kill(self) -> None:
        try:
            _fs.write_file(self._file("cgroup.kill"), "1")
        except OSError as err:
            raise _fs.cgroup_error("write 1 to", self._file("cgroup.kill"), err) from err

    def _freeze_quietly(self, timeout: float) -> bool:
        try:
            self.freeze(timeout)
            return True
        except FreezeTimeout:
            return False

    def destroy(self, timeout: float = 10.0) -> None:
        """kill_all, then rmdir this cgroup and its children, children first."""
        deadline = time.monotonic() + timeout
        self.kill_all(timeout)
        failures = _fs.remove_tree(self.path, max(deadline, time.monotonic() + 0.5))
        if failures:
            raise CgroupError("cannot remove cgroup directories: " + "; ".join(failures))


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


def _cpu_max(quota: int | None, period: int | None) -> str | None:
    """cpu.max as "$MAX $PERIOD"; one number alone updates only $MAX (kernel docs)."""
    if quota is None and period is None:
        return None
    max_part = "max" if quota is None or quota <= 0 else str(quota)
    return max_part if period is None else f"{max_part} {period}"
