"""A fake executor for unit tests of the lifecycle: a pretend kernel kept in files.

The pretend kernel lives in a directory (one JSON file per container, plus one
for processes outside any container), so that several processes, each with its
own FakeExecutor on the same directory, see the same "kernel" -- what the
concurrency tests need. It keeps the real executor's contract, clause by clause
(tests/unit/test_executor_contract.py runs the same tests against both): `wait`
blocks until the init exits or the timeout passes; a second `start` is refused;
a process is named by its PID *and* start time, so a stale identity is gone and a
reused PID is never signalled; `processes` lists every live process of the
container; a process exec'd into a frozen container is held (alive) until it is
thawed, as the real one is frozen before it runs. A fake that is kinder than the kernel would let the
lifecycle pass tests that the kernel fails.

Exec'd processes are told apart by the base name of args[0]: `sleep` runs until
it is killed or the init dies, `false` exits 1, anything else exits 0 at once.
Tests can make the next call of an operation fail, or make an init exit.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import importlib
import json
import os
import random
import shutil
import signal as signal_module
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from corral.config import Config, Process, Resources
from corral.errors import ExecutorError, InitError, ProcessGone, WaitTimeout
from corral.executor.interface import (
    ContainerFacts,
    ContainerPlan,
    ExitStatus,
    ForgottenRemoval,
    HostInterface,
    InitFacts,
    InterfaceStats,
    KernelStatus,
    OOMEvent,
    ProcessIdentity,
    Stats,
    Stdio,
)

POLL_INTERVAL = 0.005  # how often a blocked wait looks at the pretend kernel again
HOST = ".host"  # the file of processes outside every container (for PID-reuse tests)
SIGKILL = int(signal_module.SIGKILL)
SIGTERM = int(signal_module.SIGTERM)


def _new_identity() -> tuple[int, int]:
    return random.randint(1000, 4_000_000), random.randint(1, 10**9)


@dataclass
class FakeSpawned:
    facts: InitFacts
    confirmed: bool = False
    aborted: bool = False
    console_fd: int | None = None

    def confirm(self) -> None:
        self.confirmed = True

    def abort(self) -> None:
        self.aborted = True


@dataclass
class FakeExecHandle:
    """An exec'd process of the pretend kernel; `wait` blocks like the real handle's."""

    pid: int
    start_time: int
    executor: FakeExecutor = field(repr=False)
    container_id: str = ""
    console_fd: int | None = None

    def _status(self) -> ExitStatus | None:
        for p in self.executor.kernel(self.container_id).get("procs", []):
            if p["pid"] == self.pid and p["start_time"] == self.start_time:
                if p["alive"]:
                    return None
                return ExitStatus(*p["exit"]) if p["exit"] else ExitStatus.unknown()
        return ExitStatus.unknown()  # its container was destroyed under it

    def wait(self, timeout: float | None = None) -> ExitStatus:
        status = _poll_until(self._status, timeout)
        if status is None:
            raise WaitTimeout(f"exec'd process {self.pid}", timeout or 0)
        return status

    def poll(self) -> ExitStatus | None:
        return self._status()


def _pty_master() -> int:
    """A terminal's master, as the real executor hands one back (its slave closed: nobody talks)."""
    master, slave = os.openpty()
    os.close(slave)
    return master


def _poll_until(check: Callable[[], ExitStatus | None], timeout: float | None) -> ExitStatus | None:
    """Look at the pretend kernel until `check` says something, or `timeout` passes."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        status = check()
        if status is not None:
            return status
        if deadline is not None and time.monotonic() >= deadline:
            return None
        time.sleep(POLL_INTERVAL)


def _end_procs(k: dict[str, Any], sig: int) -> None:
    """Every exec'd process dies (the init of their PID namespace is gone, or the cgroup was killed)."""
    for p in k.get("procs", []):
        if p["alive"]:
            p.update(alive=False, exit=[128 + sig, sig])



def _fake_exit(name: str) -> list[int | None]:
    """How a fake exec'd program ends: `false` with 1, anything else but `sleep` with 0."""
    return [1 if name == "false" else 0, None]

class FakeExecutor:
    """Implements corral.executor.interface.Executor against a pretend kernel in `kernel_dir`."""

    def __init__(self, kernel_dir: Path) -> None:
        self.kernel_dir = Path(kernel_dir)
        self.kernel_dir.mkdir(parents=True, exist_ok=True)
        self.calls: list[str] = []
        self.spawned: list[FakeSpawned] = []
        self._fail_next: dict[str, Exception] = {}
        self._spawned_facts: dict[str, ContainerFacts] = {}

    # -- test controls ----------------------------------------------------------

    def fail_next(self, operation: str, error: Exception | None = None) -> None:
        self._fail_next[operation] = error or ExecutorError(f"fake {operation} failure")

    def make_exit(
        self, container_id: str, status: int = 0, signal: int | None = None, *, monitor_records: bool = True
    ) -> None:
        """The init exits by itself (as if the user's process ended); its exec'd processes die with it.

        As the real monitor does, the exit is then told to the recorder given at
        spawn (the journal gets `exited` with nobody waiting); `monitor_records=False`:
        as when the monitor died with its keeper, nobody records it.
        """
        with self._kernel(container_id) as k:
            if not k.get("alive"):
                return
            k["alive"] = False
            k["exit"] = [status, signal]
            k["frozen"] = False
            _end_procs(k, SIGKILL)
            recorder, init_pid = k.get("recorder"), k.get("pid")
        if recorder is not None and monitor_records:
            facts = self._spawned_facts.get(container_id)  # judged as exit_status judges it
            oom_killed = facts is not None and self.exit_status(facts).oom_killed
            module = importlib.import_module(recorder["module"])
            module.exited(
                **recorder["arguments"], init_pid=init_pid, status=status, signal=signal, oom_killed=oom_killed
            )

    def kernel(self, container_id: str) -> dict[str, Any]:
        path = self.kernel_dir / f"{container_id}.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def leaked(self, container_id: str) -> bool:
        k = self.kernel(container_id)
        return bool(
            k.get("alive")
            or k.get("cgroups")
            or k.get("run_dir")
            or k.get("interfaces")
            or any(p["alive"] for p in k.get("procs", []))
        )

    def host_process(self, pid: int | None = None) -> ProcessIdentity:
        """A live process outside every container; `pid` may be one a container's init had (reuse)."""
        new_pid, start_time = _new_identity()
        identity = ProcessIdentity(pid if pid is not None else new_pid, start_time)
        with self._kernel(HOST) as k:
            k.setdefault("procs", []).append(
                {"pid": identity.pid, "start_time": identity.start_time, "alive": True, "exit": None}
            )
        return identity

    def host_process_alive(self, identity: ProcessIdentity) -> bool:
        return any(
            p["alive"] and p["pid"] == identity.pid and p["start_time"] == identity.start_time
            for p in self.kernel(HOST).get("procs", [])
        )

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

    @staticmethod
    def _require_init(facts: ContainerFacts) -> ProcessIdentity:
        if facts.init is None:
            raise ProcessGone(f"container {facts.id!r} has no recorded init")
        return facts.init

    def _require_alive(self, facts: ContainerFacts, k: dict[str, Any]) -> None:
        """The real executor opens a pidfd and checks the start time: a stale identity is gone."""
        init = self._require_init(facts)
        if not self._alive(facts, k):
            raise ProcessGone(f"container {facts.id!r}: its init ({init.pid}) is gone")

    # -- the interface ----------------------------------------------------------

    def plan(self, container_id: str, config: Config, run_dir: str, store_root: str) -> ContainerPlan:
        tag = hashlib.sha256(store_root.encode()).hexdigest()[:12]  # unique to the store, as the real one
        path = f"/fake-cgroup{config.cgroups_path or f'/corral/{tag}/{container_id}'}"
        interfaces: tuple[HostInterface, ...] = ()
        if config.network is not None:  # the real one's names and owner tag, without a host to check
            interfaces = tuple(
                HostInterface(nic.host_name or f"cr{tag[:10]}x{i}", nic.name or "eth0", f"corral {tag}/{container_id}")
                for i, nic in config.network.veths
            )
        return ContainerPlan(
            cgroup_paths={"fake": path}, run_dir=run_dir, created_cgroups={"fake": (path,)}, interfaces=interfaces
        )

    def attach_network(self, facts: ContainerFacts, init: ProcessIdentity) -> None:
        """The pretend host gets each interface in turn (a failure half-way removes those made)."""
        for host in facts.plan.interfaces:
            with self._kernel(facts.id) as k:
                k.setdefault("interfaces", []).append(host.host_name)
            try:
                self._maybe_fail("attach_network")
            except ExecutorError:
                with self._kernel(facts.id) as k:
                    k["interfaces"] = []
                raise

    def spawn(self, facts: ContainerFacts, stdio: Stdio) -> FakeSpawned:
        with self._kernel(facts.id) as k:
            k.update(cgroups=True, run_dir=True)
        self._maybe_fail("spawn")
        if not facts.config.process.args or facts.config.process.args[0] == "/nonexistent":
            raise InitError(f"exec {facts.config.process.args[0]!r}: no such file (fake)")
        pid, start_time = _new_identity()
        with self._kernel(facts.id) as k:
            k.update(
                alive=True, pid=pid, start_time=start_time, frozen=False, fifo=True, exit=None, procs=[]
            )
            self._spawned_facts[facts.id] = facts
            if facts.recorder is not None:
                k["recorder"] = {"module": facts.recorder.module, "arguments": dict(facts.recorder.arguments)}
        namespaces = {t: f"/proc/{pid}/ns/{t}" for t in ("pid", "mnt", "net")}
        spawned = FakeSpawned(
            InitFacts(
                init=ProcessIdentity(pid, start_time),
                monitor=None,
                namespaces=namespaces,
                namespace_inodes={t: 4026531000 + i for i, t in enumerate(namespaces)},
            ),
            console_fd=_pty_master() if facts.config.process.terminal else None,
        )
        self.spawned.append(spawned)
        return spawned

    def start(self, facts: ContainerFacts) -> None:
        self._maybe_fail("start")
        with self._kernel(facts.id) as k:
            self._require_alive(facts, k)
            if not k.get("fifo"):
                raise ExecutorError(f"container {facts.id!r} was already started (its init no longer waits)")
            k["fifo"] = False

    def run_hooks(self, facts: ContainerFacts, kind: str, status: str) -> tuple:
        """The fake runs no program: hooks are the real executor's (tests/integration/test_hooks.py)."""
        return ()

    def alive(self, facts: ContainerFacts) -> bool:
        return self._alive(facts, self.kernel(facts.id))

    def status(self, facts: ContainerFacts) -> KernelStatus:
        k = self.kernel(facts.id)
        alive = self._alive(facts, k)
        return KernelStatus(alive=alive, frozen=alive and bool(k.get("frozen")), fifo_present=alive and bool(k.get("fifo")))

    def signal(self, facts: ContainerFacts, sig: int, all_processes: bool = False) -> None:
        self._maybe_fail("signal")
        with self._kernel(facts.id) as k:
            self._require_alive(facts, k)
            frozen = bool(k.get("frozen"))
            if all_processes:
                for p in k.get("procs", []):
                    if p["alive"] and (sig == SIGKILL or (sig == SIGTERM and not frozen)):
                        p.update(alive=False, exit=[128 + sig, sig])
            if sig == SIGKILL or (sig == SIGTERM and not frozen and not k.get("fifo")):
                k.update(alive=False, exit=[128 + sig, sig], frozen=False)  # SIGKILL thaws, as the real one
                _end_procs(k, SIGKILL)

    def wait(self, facts: ContainerFacts, timeout: float | None) -> ExitStatus:
        self._require_init(facts)

        def exited() -> ExitStatus | None:
            return None if self.alive(facts) else self.exit_status(facts)

        status = _poll_until(exited, timeout)
        if status is None:
            raise WaitTimeout(f"container {facts.id!r}", timeout or 0)
        return status

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
            for p in k.get("procs", []):  # what was exec'd while frozen runs now
                name = os.path.basename(p["args"][0]) if p["args"] else ""
                if p.pop("held", False) and p["alive"] and name != "sleep":
                    p.update(alive=False, exit=_fake_exit(name))

    def update_resources(self, facts: ContainerFacts, resources: Resources) -> None:
        """Keeps what was written (the kernel's `resources`), or raises what fail_next set."""
        self._maybe_fail("update_resources")
        with self._kernel(facts.id) as k:
            k["resources"] = dataclasses.asdict(resources)

    def exec(self, facts: ContainerFacts, process: Process, stdio: Stdio) -> FakeExecHandle:
        self._maybe_fail("exec")
        with self._kernel(facts.id) as k:
            init = self._require_init(facts)
            if not self._alive(facts, k):
                raise InitError(f"exec in container {facts.id!r}: its init ({init.pid}) is gone")
            # Into a frozen container the real exec joins the frozen cgroup and runs once
            # thawed: the process is held, alive, until then (thaw() lets it finish).
            held = bool(k.get("frozen"))
            pid, start_time = _new_identity()
            name = os.path.basename(process.args[0]) if process.args else ""
            alive = name == "sleep" or held
            k.setdefault("procs", []).append(
                {
                    "pid": pid,
                    "start_time": start_time,
                    "alive": alive,
                    "exit": None if alive else _fake_exit(name),
                    "args": list(process.args),
                    "held": held,
                }
            )
        return FakeExecHandle(
            pid=pid, start_time=start_time, executor=self, container_id=facts.id,
            console_fd=_pty_master() if process.terminal else None,
        )

    def processes(self, facts: ContainerFacts) -> list[int]:
        """Every live process in the container's cgroup (like the real one: no identity needed)."""
        k = self.kernel(facts.id)
        if not k.get("cgroups"):
            return []
        pids = [k["pid"]] if k.get("alive") else []
        pids.extend(p["pid"] for p in k.get("procs", []) if p["alive"])
        return sorted(pids)

    def stats(self, facts: ContainerFacts) -> Stats:
        present = self.kernel(facts.id).get("interfaces", [])
        return Stats(
            interfaces=tuple(
                InterfaceStats(h.name, h.host_name, 0, 0, 0, 0, 0, 0, 0, 0)
                for h in facts.plan.interfaces
                if h.host_name in present
            )
        )

    def oom_events(
        self, facts: ContainerFacts, stop: Callable[[], bool] | None = None
    ) -> Iterator[OOMEvent]:
        return iter(())

    def kill(self, facts: ContainerFacts, timeout: float) -> ExitStatus:
        """SIGKILL every process in the container's cgroup, as the real one: a PID that now
        names a process outside it (the host file) is never touched, whatever the record says."""
        self._maybe_fail("kill")
        with self._kernel(facts.id) as k:
            if k.get("alive"):
                k.update(alive=False, exit=[137, 9])
            k["frozen"] = False
            _end_procs(k, SIGKILL)
        return self.exit_status(facts)

    def destroy(self, facts: ContainerFacts) -> None:
        self._maybe_fail("destroy")
        with self._kernel(facts.id) as k:
            if k.get("alive"):
                k.update(alive=False, exit=[137, 9])
            _end_procs(k, SIGKILL)
            k.update(cgroups=False, run_dir=False, frozen=False, fifo=False, interfaces=[])

    def leftovers(self, facts: ContainerFacts) -> list[str]:
        k = self.kernel(facts.id)
        found = []
        if k.get("cgroups"):
            found.extend(facts.plan.cgroup_paths.values())
        if k.get("run_dir"):
            found.append(facts.plan.run_dir)
        found.extend(k.get("interfaces", []))
        return found

    def remove_forgotten(self, container_id: str, run_dir: str, spare: Collection[str]) -> ForgottenRemoval:
        """The pretend kernel keeps no identity file: the run dir alone is removed (nothing signalled)."""
        self._maybe_fail("remove_forgotten")
        shutil.rmtree(run_dir, ignore_errors=True)
        removed = not os.path.exists(run_dir)
        return ForgottenRemoval(removed, "run dir removed" if removed else "run dir could not be removed")

    # -- test helper: a reboot ---------------------------------------------------

    def reboot(self) -> None:
        """Every process dies and every cgroup and run dir vanishes, as at a host restart."""
        for path in self.kernel_dir.glob("*.json"):
            cid = path.stem
            with self._kernel(cid) as k:
                k.update(alive=False, frozen=False, fifo=False, cgroups=False, run_dir=False, exit=None, interfaces=[])
                for p in k.get("procs", []):
                    p.update(alive=False, exit=None)
