"""A fake executor for unit tests of the lifecycle: a pretend kernel kept in files.

The pretend kernel lives in a directory (one JSON file per container), so that
several processes, each with its own FakeExecutor on the same directory, see
the same "kernel" -- what the concurrency tests need. It models exactly the
facts the state machine relies on: an init that is alive or has exited with a
status, a freezer, an exec fifo, cgroups and a run dir that exist or not.
Tests can make the next call of an operation fail, or make an init exit.
"""

from __future__ import annotations

import fcntl
import json
import os
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from corral.config import Config, Process
from corral.errors import ExecutorError, InitError, ProcessGone
from corral.executor.interface import (
    ContainerFacts,
    ContainerPlan,
    ExitStatus,
    InitFacts,
    KernelStatus,
    OOMEvent,
    ProcessIdentity,
    Stats,
    Stdio,
)


@dataclass
class FakeSpawned:
    facts: InitFacts
    confirmed: bool = False
    aborted: bool = False

    def confirm(self) -> None:
        self.confirmed = True

    def abort(self) -> None:
        self.aborted = True


@dataclass
class FakeExecHandle:
    pid: int
    start_time: int
    status: int = 0

    def wait(self, timeout: float | None = None) -> ExitStatus:
        return ExitStatus(self.status)

    def poll(self) -> ExitStatus | None:
        return ExitStatus(self.status)


class FakeExecutor:
    """Implements corral.executor.interface.Executor against a pretend kernel in `kernel_dir`."""

    def __init__(self, kernel_dir: Path) -> None:
        self.kernel_dir = Path(kernel_dir)
        self.kernel_dir.mkdir(parents=True, exist_ok=True)
        self.calls: list[str] = []
        self.spawned: list[FakeSpawned] = []
        self._fail_next: dict[str, Exception] = {}

    # -- test controls ----------------------------------------------------------

    def fail_next(self, operation: str, error: Exception | None = None) -> None:
        self._fail_next[operation] = error or ExecutorError(f"fake {operation} failure")

    def make_exit(self, container_id: str, status: int = 0, signal: int | None = None) -> None:
        """The init exits by itself (as if the user's process ended)."""
        with self._kernel(container_id) as k:
            if k.get("alive"):
                k["alive"] = False
                k["exit"] = [status, signal]
                k["frozen"] = False

    def kernel(self, container_id: str) -> dict[str, Any]:
        path = self.kernel_dir / f"{container_id}.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def leaked(self, container_id: str) -> bool:
        k = self.kernel(container_id)
        return bool(k.get("alive") or k.get("cgroups") or k.get("run_dir"))

    # -- plumbing ---------------------------------------------------------------

    @contextmanager
    def _kernel(self, container_id: str) -> Iterator[dict[str, Any]]:
        lock = os.open(self.kernel_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            path = self.kernel_dir / f"{container_id}.json"
            state = json.loads(path.read_text()) if path.exists() else {}
            yield state
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(state))
            os.replace(tmp, path)
        finally:
            os.close(lock)

    def _maybe_fail(self, operation: str) -> None:
        self.calls.append(operation)
        error = self._fail_next.pop(operation, None)
        if error is not None:
            raise error

    def _alive(self, facts: ContainerFacts, k: dict[str, Any]) -> bool:
        return bool(
            k.get("alive")
            and facts.init is not None
            and k.get("pid") == facts.init.pid
            and k.get("start_time") == facts.init.start_time
        )

    # -- the interface ----------------------------------------------------------

    def plan(self, container_id: str, config: Config, run_dir: str) -> ContainerPlan:
        path = config.cgroups_path or f"/corral/{container_id}"
        return ContainerPlan(cgroup_paths={"fake": f"/fake-cgroup{path}"}, run_dir=run_dir)

    def spawn(self, facts: ContainerFacts, stdio: Stdio) -> FakeSpawned:
        with self._kernel(facts.id) as k:
            k.update(cgroups=True, run_dir=True)
        self._maybe_fail("spawn")
        if not facts.config.process.args or facts.config.process.args[0] == "/nonexistent":
            raise InitError(f"exec {facts.config.process.args[0]!r}: no such file (fake)")
        pid = random.randint(1000, 4_000_000)
        start_time = random.randint(1, 10**9)
        with self._kernel(facts.id) as k:
            k.update(alive=True, pid=pid, start_time=start_time, frozen=False, fifo=True, exit=None)
        namespaces = {t: f"/proc/{pid}/ns/{t}" for t in ("pid", "mnt", "net")}
        spawned = FakeSpawned(
            InitFacts(
                init=ProcessIdentity(pid, start_time),
                monitor=None,
                namespaces=namespaces,
                namespace_inodes={t: 4026531000 + i for i, t in enumerate(namespaces)},
            )
        )
        self.spawned.append(spawned)
        return spawned

    def start(self, facts: ContainerFacts) -> None:
        self._maybe_fail("start")
        with self._kernel(facts.id) as k:
            if not self._alive(facts, k):
                raise ProcessGone(f"container {facts.id!r}: init is gone")
            k["fifo"] = False

    def alive(self, facts: ContainerFacts) -> bool:
        return self._alive(facts, self.kernel(facts.id))

    def status(self, facts: ContainerFacts) -> KernelStatus:
        k = self.kernel(facts.id)
        alive = self._alive(facts, k)
        return KernelStatus(alive=alive, frozen=alive and bool(k.get("frozen")), fifo_present=alive and bool(k.get("fifo")))

    def signal(self, facts: ContainerFacts, sig: int, all_processes: bool = False) -> None:
        self._maybe_fail("signal")
        with self._kernel(facts.id) as k:
            if not self._alive(facts, k):
                raise ProcessGone(f"container {facts.id!r}: init is gone")
            if sig == 9 or (sig == 15 and not k.get("frozen") and not k.get("fifo")):
                k.update(alive=False, exit=[128 + sig, sig], frozen=False)

    def wait(self, facts: ContainerFacts, timeout: float | None) -> ExitStatus:
        return self.exit_status(facts)

    def exit_status(self, facts: ContainerFacts) -> ExitStatus:
        k = self.kernel(facts.id)
        if k.get("exit"):
            status, sig = k["exit"]
            return ExitStatus(status, sig)
        return ExitStatus.unknown()

    def freeze(self, facts: ContainerFacts) -> None:
        self._maybe_fail("freeze")
        with self._kernel(facts.id) as k:
            k["frozen"] = True

    def thaw(self, facts: ContainerFacts) -> None:
        self._maybe_fail("thaw")
        with self._kernel(facts.id) as k:
            k["frozen"] = False

    def exec(self, facts: ContainerFacts, process: Process, stdio: Stdio) -> FakeExecHandle:
        self._maybe_fail("exec")
        return FakeExecHandle(pid=random.randint(1000, 4_000_000), start_time=random.randint(1, 10**9))

    def processes(self, facts: ContainerFacts) -> list[int]:
        k = self.kernel(facts.id)
        return [k["pid"]] if self._alive(facts, k) else []

    def stats(self, facts: ContainerFacts) -> Stats:
        return Stats()

    def oom_events(
        self, facts: ContainerFacts, stop: Callable[[], bool] | None = None
    ) -> Iterator[OOMEvent]:
        return iter(())

    def kill(self, facts: ContainerFacts, timeout: float) -> ExitStatus:
        self._maybe_fail("kill")
        with self._kernel(facts.id) as k:
            if k.get("alive"):
                k.update(alive=False, exit=[137, 9], frozen=False)
        return self.exit_status(facts)

    def destroy(self, facts: ContainerFacts) -> None:
        self._maybe_fail("destroy")
        with self._kernel(facts.id) as k:
            if k.get("alive"):
                k.update(alive=False, exit=[137, 9])
            k.update(cgroups=False, run_dir=False, frozen=False, fifo=False)

    def leftovers(self, facts: ContainerFacts) -> list[str]:
        k = self.kernel(facts.id)
        found = []
        if k.get("cgroups"):
            found.extend(facts.plan.cgroup_paths.values())
        if k.get("run_dir"):
            found.append(facts.plan.run_dir)
        return found

    # -- test helper: a reboot ---------------------------------------------------

    def reboot(self) -> None:
        """Every process dies and every cgroup and run dir vanishes, as at a host restart."""
        for path in self.kernel_dir.glob("*.json"):
            cid = path.stem
            with self._kernel(cid) as k:
                k.update(alive=False, frozen=False, fifo=False, cgroups=False, run_dir=False, exit=None)
