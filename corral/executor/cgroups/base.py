"""One cgroup interface, two implementations (v1: a hierarchy per controller; v2: unified).

A container's cgroups are identified by their recorded paths alone (hierarchy key
-> absolute directory), so that any process, after any crash, can reopen them
from the store: `open_cgroup(paths)` needs no other state.

Keys: v1 uses the hierarchy's mount directory name under its cgroupfs root
(``memory``, ``cpu``, ``name=systemd`` → the directory ``systemd``; runc keys by
controller the same way); v2 uses the empty key ``""``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping

from corral.config import Resources
from corral.types import Stats


class CgroupDriver(ABC):
    """A cgroup layout on this host (v1 hierarchies, or one v2 mount)."""

    version: int

    @abstractmethod
    def plan(self, cgroups_path: str) -> dict[str, str]:
        """Absolute directories for `cgroups_path` (e.g. ``/corral/<id>``). Touches nothing."""

    @abstractmethod
    def open(self, paths: Mapping[str, str]) -> Cgroup:
        """The container's cgroup at recorded `paths` (which need not exist yet)."""


class Cgroup(ABC):
    """A container's cgroup(s). Every method is safe to call again after a crash."""

    paths: Mapping[str, str]

    @abstractmethod
    def create(self) -> None:
        """Make the directories (parents too); existing ones are reused."""

    @abstractmethod
    def apply(self, resources: Resources | None) -> None:
        """Write the limits; a value the kernel rejects raises ConfigError naming it and the file."""

    @abstractmethod
    def add(self, pid: int) -> None:
        """Move `pid` into every hierarchy."""

    @abstractmethod
    def procs_files(self) -> list[str]:
        """The cgroup.procs files to write a PID into, one per hierarchy."""

    @abstractmethod
    def freeze(self, timeout: float = 10.0) -> None:
        """Freeze and wait until frozen; on timeout thaw again and raise FreezeTimeout."""

    @abstractmethod
    def thaw(self) -> None: ...

    @abstractmethod
    def frozen(self) -> bool: ...

    @abstractmethod
    def pids(self) -> list[int]:
        """Every PID in the cgroup and its descendants, sorted."""

    @abstractmethod
    def exists(self) -> bool:
        """Whether any of the directories exists."""

    @abstractmethod
    def stats(self) -> Stats: ...

    @abstractmethod
    def oom_kill_count(self) -> int: ...

    @abstractmethod
    def oom_events(
        self, stop: Callable[[], bool] | None = None, poll_interval: float = 0.1
    ) -> Iterator[int]:
        """Yield the OOM kill count each time it grows; ends when `stop()` or the cgroup empties."""

    @abstractmethod
    def kill_all(self, timeout: float = 10.0) -> None:
        """SIGKILL every process (thawing a frozen cgroup) and wait until none is left."""

    @abstractmethod
    def destroy(self, timeout: float = 10.0) -> None:
        """kill_all, then remove every directory; CgroupError if one cannot be removed."""
