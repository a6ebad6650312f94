"""One cgroup interface, two implementations (v1: a hierarchy per controller; v2: unified).

A container's cgroups are identified by their recorded paths alone (hierarchy key
-> absolute directory), so that any process, after any crash, can reopen them
from the store: `open_cgroup(paths)` needs no other state.

Keys: v1 uses the hierarchy's mount directory name under its cgroupfs root
(``memory``, ``cpu``, ``name=systemd`` → the directory ``systemd``; runc keys by
controller the same way); v2 uses the empty key ``""``.

`Cgroup` holds what both layouts share: the order and the OCI rules of
`apply` (values from oci.py), the device rule list (devices.py), the quiet freeze
before a kill, the kill → thaw → wait recipe, `Stats` assembly and teardown.
A driver fills in the hooks: which directory holds a controller, which file
gets which value, and the kernel mechanics of freezing, killing and waiting.

A container's directories may pre-exist (an explicit cgroupsPath): `claim`
says which ones corral creates, and `destroy` removes only those (ownership.py).
"""

from __future__ import annotations

import os
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, ClassVar

from corral.errors import CgroupError, ConfigError, FreezeTimeout
from corral.executor.cgroups import _fs, oci, ownership

if TYPE_CHECKING:  # pragma: no cover  (annotations only: `delete` opens cgroups without the config's types)
    from corral.config import Config, CpuResources, DeviceRule, MemoryResources, Resources
    from corral.types import CpuStats, MemoryStats, PidsStats, Stats


class CgroupDriver(ABC):
    """A cgroup layout on this host (v1 hierarchies, or one v2 mount)."""

    version: int

    @abstractmethod
    def plan(self, cgroups_path: str) -> dict[str, str]:
        """Absolute directories for `cgroups_path` (e.g. ``/corral/<id>``). Touches nothing."""

    @abstractmethod
    def open(self, paths: Mapping[str, str], created: ownership.Created | None = None) -> Cgroup:
        """The container's cgroup at recorded `paths` (which need not exist yet).

        `created`: what `claim` said corral creates; None (a record made before
        corral recorded it) means the container's own directories.
        """

    @abstractmethod
    def hierarchy_root(self, key: str) -> str:
        """Where the hierarchy of `key` is mounted (the directories above a cgroup end there)."""

    def claim(self, cgroups_path: str, corral_parent: str | None = None) -> ownership.CgroupClaim:
        """`plan`, then refuse an existing cgroup with processes and list what is to be created.

        Reads only (see ownership.py): a refusal happens before anything is created or written.
        """
        paths = self.plan(cgroups_path)
        roots = {key: self.hierarchy_root(key) for key in paths}
        return ownership.claim(cgroups_path, paths, roots, corral_parent)


class Cgroup(ABC):
    """A container's cgroup(s). Every method is safe to call again after a crash."""

    paths: Mapping[str, str]
    #: Per hierarchy key, the directories corral creates (and so may remove), parents first.
    created: Mapping[str, tuple[str, ...]]
    #: Whether `created` was recorded by `claim` (else it is a pre-ownership record's guess).
    claimed: bool = False

    #: The controller of the block I/O weight ("blkio" on v1, "io" on v2).
    io_controller: ClassVar[str]
    #: The I/O weight files, in order of preference, each with the OCI weight → file value rule.
    hugetlb_limit: ClassVar[str]  # the suffix of a size's limit file: hugetlb.2MB.<this>
    io_weight_files: ClassVar[tuple[tuple[str, Callable[[int], int]], ...]]

    # --- the shared recipe ------------------------------------------------------------------

    def apply_config(self, config: Config) -> None:
        """The container's limits and runc's full device rule list (it starts from "deny all").

        Both layouts enforce the same list (devices.py): v1 writes it to the
        devices controller's files, v2 compiles it into an eBPF device program.
        """
        from corral.executor.cgroups.devices import with_device_rules  # its defaults are the config's types

        self.apply(with_device_rules(config))

    def apply(self, resources: Resources | None) -> None:
        """Write the limits; a value the kernel rejects raises ConfigError naming it and the file."""
        if resources is None:
            return
        if resources.memory is not None and oci.memory_is_set(resources.memory):
            self._apply_memory(resources.memory)
        if resources.cpu is not None:
            self._apply_cpu(resources.cpu)
        if resources.pids is not None:
            d = self._require("pids", oci.WHERE_PIDS)
            _fs.write_resource(f"{d}/pids.max", oci.pids_max(resources.pids.limit), oci.WHERE_PIDS)
        if resources.block_io is not None and resources.block_io.weight:
            self._apply_io_weight(resources.block_io.weight)
        if resources.devices:
            self._apply_device_rules(resources.devices)
        if resources.hugepage_limits:
            self._apply_hugetlb(resources)

    def update(self, resources: Resources) -> None:
        """Write new limits (all but the device rules) to a live cgroup, all or nothing.

        As `runc update`: the same writes, in the same order, as `apply`. If the
        kernel refuses one (a memory limit below the usage it cannot reclaim,
        a cpuset outside the parent's), every file already written gets its
        old content back, newest first, and the refusal is raised
        (ConfigError naming the field and the file). v1 refuses a memory limit
        below what it cannot reclaim (EBUSY); v2 accepts it and reclaims, then
        OOM-kills, as it does for runc.
        """
        with _fs.undo_log() as written:
            try:
                import dataclasses  # only here: `delete` opens a driver, and imports no `inspect`

                self.apply(dataclasses.replace(resources, devices=()))
            except BaseException:
                for path, old in reversed(written):
                    try:
                        _fs.write_file(path, old)
                    except OSError:
                        pass  # best effort: the refusal is what the caller must hear
                raise

    def _apply_hugetlb(self, resources: Resources) -> None:
        """Each size's limit (and its reservation limit where the kernel has one, as runc)."""
        d = self._require("hugetlb", oci.WHERE_HUGEPAGES)
        for where, name, value in oci.hugetlb_limits(resources.hugepage_limits, self.hugetlb_limit):
            path = f"{d}/{name}"
            if not os.path.exists(path):
                raise ConfigError(
                    f"{where}.pageSize",
                    f"this host has no such huge pages ({path} does not exist; the sizes it has are "
                    "under /sys/kernel/mm/hugepages)",
                )
            _fs.write_resource(path, value, f"{where}.limit")
            reserved = f"{d}/{name.removesuffix(self.hugetlb_limit)}rsvd.{self.hugetlb_limit}"
            if os.path.exists(reserved):
                _fs.write_resource(reserved, value, f"{where}.limit")

    def _apply_memory(self, mem: MemoryResources) -> None:
        d = self._require("memory", oci.WHERE_MEMORY)
        swap_file = self._swap_file(d)
        self._write_memory(d, oci.memory_limits(mem, os.path.exists(swap_file), swap_file))

    def _apply_cpu(self, cpu: CpuResources) -> None:
        if oci.cfs_is_set(cpu):
            self._write_cpu(self._require("cpu", oci.WHERE_CPU), cpu)
        if cpu.cpus or cpu.mems:
            d = self._require("cpuset", oci.WHERE_CPU)
            if cpu.cpus:
                _fs.write_resource(f"{d}/cpuset.cpus", cpu.cpus, f"{oci.WHERE_CPU}.cpus")
            if cpu.mems:
                _fs.write_resource(f"{d}/cpuset.mems", cpu.mems, f"{oci.WHERE_CPU}.mems")

    def _apply_io_weight(self, weight: int) -> None:
        d = self._require(self.io_controller, oci.WHERE_BLOCK_IO)
        for name, value in self.io_weight_files:
            if os.path.exists(f"{d}/{name}"):
                _fs.write_resource(f"{d}/{name}", value(weight), oci.WHERE_BLOCK_IO)
                return
        raise ConfigError(
            oci.WHERE_BLOCK_IO,
            f"neither {' nor '.join(name for name, _ in self.io_weight_files)} exists in {d} (no "
            "CFQ or BFQ I/O scheduler); leave the weight unset or enable BFQ",
        )

    def _own(self, created: ownership.Created | None) -> None:
        """Set `created` (see CgroupDriver.open); called by the drivers' constructors."""
        self.claimed = created is not None
        self.created = MappingProxyType(
            {k: tuple(os.path.normpath(d) for d in v) for k, v in created.items()}
            if created is not None
            else ownership.legacy(self.paths)
        )

    def create(self) -> None:
        """Make the directories (parents too).

        When `claim` recorded what to create, what it found is checked again
        first, since time passed: a joined cgroup must still be empty, a
        directory to create must still be missing (else another runtime is
        making the same cgroup, and corral does not share one).
        """
        if self.claimed:
            for key, path in self.paths.items():
                if path in self.created.get(key, ()):
                    if os.path.isdir(path):
                        raise CgroupError(
                            f"{path} appeared after corral planned to create it: another runtime is "
                            "creating the same cgroup, and corral does not share a cgroup"
                        )
                elif not os.path.isdir(path):
                    raise CgroupError(f"{path} existed when the container was planned and is gone now")
                else:
                    ownership.check_empty(path, key, path)
        for attempt in range(3):
            try:
                self._make_dirs()
                return
            except CgroupError as err:
                # A parent removed under makedirs: the last container under a shared parent
                # (/corral/<store>) was destroyed just now, and took the emptied parent with it.
                if attempt == 2 or not isinstance(err.__cause__, FileNotFoundError):
                    raise

    def created_by_corral(self) -> bool:
        """Whether corral created (or is to create) the container's directory in every hierarchy."""
        return all(path in self.created.get(key, ()) for key, path in self.paths.items())

    def leftovers(self) -> list[str]:
        """What `destroy` would remove that still exists."""
        found: list[str] = []
        for key, path in self.paths.items():
            found += ownership.leftovers(path, self.created.get(key, ()))
        return found

    def procs_files(self) -> list[str]:
        """The cgroup.procs files to write a PID into, one per hierarchy."""
        return [os.path.join(path, "cgroup.procs") for path in self.paths.values()]

    def exists(self) -> bool:
        """Whether any of the directories exists."""
        return any(os.path.isdir(p) for p in self.paths.values())

    def stats(self) -> Stats:
        from corral.types import Stats  # only here: `delete` and `kill` open a driver for no statistics

        return Stats(memory=self._memory_stats(), cpu=self._cpu_stats(), pids=self._pids_stats())

    def _pids_stats(self) -> PidsStats | None:
        d = self.dir_for("pids")
        current = _fs.read_int(f"{d}/pids.current") if d else None
        if d is None or current is None:
            return None
        from corral.types import PidsStats

        return PidsStats(current=current, limit=_fs.read_int(f"{d}/pids.max"))

    def kill_all(self, timeout: float = 10.0) -> None:
        """SIGKILL every process (thawing a frozen cgroup) and wait until none is left.

        Where the kernel cannot kill the whole cgroup at once: freeze (so that
        nothing forks between listing and killing), SIGKILL every PID, thaw.
        A frozen cgroup is thawed afterwards in every case, so that an empty
        cgroup does not read as paused (status checks the freezer before the init).
        """
        if not self.exists():
            return
        deadline = time.monotonic() + timeout
        if not self._kill_at_once() and self.pids():
            froze = self._freeze_quietly(min(1.0, timeout / 4))
            _fs.kill_pids(self.pids())
            if froze:
                self._unfreeze()
        if self.frozen():
            self._unfreeze()
        self._wait_empty(deadline, timeout)

    def _freeze_quietly(self, timeout: float) -> bool:
        """Freeze if possible; a freeze that fails only means forks may race the kill."""
        if not self._can_freeze():
            return False
        try:
            self.freeze(timeout)
            return True
        except FreezeTimeout:
            return False

    def destroy(self, timeout: float = 10.0, *, kill: bool = True) -> None:
        """kill_all (if `kill`), then rmdir what corral created, children first.

        A joined cgroup and a parent that existed before stay; a parent corral
        created stays while another cgroup is in it (see ownership.py).
        """
        deadline = time.monotonic() + timeout
        if kill:
            self.kill_all(timeout)
        failures: list[str] = []
        for key, path in self.paths.items():
            failures += ownership.remove_created(
                path, self.created.get(key, ()), max(deadline, time.monotonic() + 0.5)
            )
        if failures:
            raise CgroupError("cannot remove cgroup directories: " + "; ".join(failures))

    # --- what each layout answers -----------------------------------------------------------

    @abstractmethod
    def _make_dirs(self) -> None:
        """Make the directories (parents too); existing ones are reused."""

    @abstractmethod
    def freeze(self, timeout: float = 10.0) -> None:
        """Freeze and wait until frozen; on timeout thaw again and raise FreezeTimeout."""

    @abstractmethod
    def thaw(self, timeout: float = 10.0) -> None: ...

    @abstractmethod
    def frozen(self) -> bool: ...

    @abstractmethod
    def pids(self) -> list[int]:
        """Every PID in the cgroup and its descendants, sorted."""

    @abstractmethod
    def oom_kill_count(self) -> int: ...

    @abstractmethod
    def oom_events(
        self, stop: Callable[[], bool] | None = None, poll_interval: float = 0.1
    ) -> Iterator[int]:
        """Yield the OOM kill count each time it grows; ends when `stop()` or the cgroup empties."""

    # --- hooks: files and kernel mechanics --------------------------------------------------

    @abstractmethod
    def dir_for(self, controller: str) -> str | None:
        """This cgroup's directory that holds `controller`'s files, if there is one (for reading)."""

    @abstractmethod
    def _require(self, controller: str, where: str) -> str:
        """The directory to write `controller`'s limits into; ConfigError naming `where` if none."""

    @abstractmethod
    def _swap_file(self, d: str) -> str:
        """The swap limit file in memory directory `d` (it exists only where swap is accounted)."""

    @abstractmethod
    def _write_memory(self, d: str, limits: oci.MemoryLimits) -> None: ...

    @abstractmethod
    def _write_cpu(self, d: str, cpu: CpuResources) -> None:
        """shares, quota and period (those given) into cpu directory `d`."""

    def _apply_device_rules(self, rules: tuple[DeviceRule, ...]) -> None:
        """Enforce `rules` (in order: a later rule overrides an earlier one); v1: the devices files."""
        self._write_device_rules(self._require("devices", oci.WHERE_DEVICES), rules)

    def _write_device_rules(self, d: str, rules: tuple[DeviceRule, ...]) -> None:
        """Write `rules` to devices.allow/devices.deny in directory `d` (a layout with those files)."""
        raise ConfigError(oci.WHERE_DEVICES, f"{type(self).__name__} has no devices controller files")

    @abstractmethod
    def _memory_stats(self) -> MemoryStats | None: ...

    @abstractmethod
    def _cpu_stats(self) -> CpuStats | None: ...

    def _can_freeze(self) -> bool:
        return True

    @abstractmethod
    def _unfreeze(self) -> None:
        """Thaw, as part of killing (no waiting: the kill's own wait follows)."""

    def _kill_at_once(self) -> bool:
        """SIGKILL the whole cgroup in one kernel step if the kernel can; False if it cannot."""
        return False

    @abstractmethod
    def _wait_empty(self, deadline: float, timeout: float) -> None:
        """Wait until no process is left; CgroupError naming them at `deadline`."""
