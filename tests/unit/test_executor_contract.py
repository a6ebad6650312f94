"""The executor contract, run against the fake and (as root) the real LinuxExecutor.

The lifecycle's unit tests trust tests/fakes.py to behave like the kernel. Each
test here states one clause of the contract the lifecycle relies on and runs it
against both executors, driven through the Executor interface the way
corral/statemachine/container.py drives them (plan -> spawn -> confirm -> start
-> ...), so that the fake cannot drift from the real executor unnoticed.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from corral import Config, Process, Root
from corral.errors import ExecutorError, InitError, ProcessGone, WaitTimeout
from corral.executor.interface import ContainerFacts, Executor, ExitStatus, ProcessIdentity, Stdio
from tests.conftest import IS_ROOT
from tests.fakes import FakeExecutor
from tests.rootfs import BUSYBOX, build_busybox_rootfs

CGROUP_PARENT = f"/corral-contract-{os.getpid()}"  # unique to this test session; removed at its end
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SLEEP = ("/bin/sleep", "1000")
KILL_TIMEOUT = 10.0


class Harness:
    """One executor under test, plus what a test needs around it that differs per kernel."""

    def __init__(self, executor: Any, tmp_path: Path) -> None:
        self.executor: Executor = executor
        self.tmp_path = tmp_path
        self.made: list[ContainerFacts] = []

    def config(self, cid: str, *args: str) -> Config:
        raise NotImplementedError

    def outsider(self) -> ProcessIdentity:
        """A live process outside every container."""
        raise NotImplementedError

    def outsider_alive(self, identity: ProcessIdentity) -> bool:
        raise NotImplementedError

    def close(self) -> None:
        """Kill and remove every container made (with its true facts); fail on leftovers."""
        left: list[str] = []
        for facts in self.made:
            self.executor.kill(facts, KILL_TIMEOUT)
            self.executor.destroy(facts)
            left += self.executor.leftovers(facts)
        assert not left, left


class FakeHarness(Harness):
    def config(self, cid: str, *args: str) -> Config:
        return Config(process=Process(args=args or SLEEP), root=Root(str(self.tmp_path / "rootfs")))

    def outsider(self) -> ProcessIdentity:
        return self.fake.host_process()

    def outsider_alive(self, identity: ProcessIdentity) -> bool:
        return self.fake.host_process_alive(identity)

    @property
    def fake(self) -> FakeExecutor:
        assert isinstance(self.executor, FakeExecutor)
        return self.executor


class LinuxHarness(Harness):
    def __init__(self, executor: Any, tmp_path: Path, rootfs: Path) -> None:
        super().__init__(executor, tmp_path)
        self.rootfs = rootfs
        self.outsiders: list[subprocess.Popen[bytes]] = []

    def config(self, cid: str, *args: str) -> Config:
        bundle = self.tmp_path / f"bundle-{cid}"
        shutil.copytree(self.rootfs, bundle / "rootfs", symlinks=True)
        os.chmod(bundle / "rootfs", 0o755)
        return Config(
            process=Process(args=args or SLEEP, env=(PATH_ENV, "HOME=/root")),
            root=Root(str(bundle / "rootfs")),
            hostname="box",
            cgroups_path=f"{CGROUP_PARENT}/{cid}",
        )

    def outsider(self) -> ProcessIdentity:
        from corral.executor import proc

        child = subprocess.Popen(["sleep", "1000"])
        self.outsiders.append(child)
        start_time = proc.start_time(child.pid)
        assert start_time is not None
        return ProcessIdentity(child.pid, start_time)

    def outsider_alive(self, identity: ProcessIdentity) -> bool:
        from corral.executor import proc

        return proc.alive(identity)

    def close(self) -> None:
        try:
            super().close()
        finally:
            for child in self.outsiders:
                child.kill()
                child.wait()
            self.executor.close()  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def busybox_rootfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    if not os.path.exists(BUSYBOX):
        pytest.skip("the real executor needs Debian's busybox-static (scripts/install installs it)")
    yield build_busybox_rootfs(tmp_path_factory.mktemp("contract-rootfs") / "rootfs")
    for hierarchy in Path("/sys/fs/cgroup").iterdir():
        parent = hierarchy / CGROUP_PARENT.lstrip("/")
        if parent.is_dir():
            parent.rmdir()  # fails loudly if a container's cgroup was left inside


@pytest.fixture(params=["fake", pytest.param("linux", marks=pytest.mark.root)])
def h(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Harness]:
    harness: Harness
    if request.param == "fake":
        harness = FakeHarness(FakeExecutor(tmp_path / "kernel"), tmp_path)
    else:
        if not IS_ROOT:
            pytest.skip("the real executor needs root: namespaces, cgroups and mounts")
        rootfs = request.getfixturevalue("busybox_rootfs")
        from corral.executor.linux import LinuxExecutor

        harness = LinuxHarness(LinuxExecutor(), tmp_path, rootfs)
    try:
        yield harness
    finally:
        harness.close()


def created(h: Harness, cid: str = "c", *args: str) -> ContainerFacts:
    """plan -> spawn -> confirm, as Container's create does; the init waits on its exec fifo."""
    config = h.config(cid, *args)
    plan = h.executor.plan(cid, config, str(h.tmp_path / "run" / cid), str(h.tmp_path / "root"))
    facts = ContainerFacts(id=cid, config=config, plan=plan)
    h.made.append(facts)
    spawned = h.executor.spawn(facts, Stdio())
    init = spawned.facts
    facts = dataclasses.replace(facts, init=init.init, monitor=init.monitor, namespaces=dict(init.namespaces))
    h.made[-1] = facts
    spawned.confirm()
    return facts


def running(h: Harness, cid: str = "c", *args: str) -> ContainerFacts:
    facts = created(h, cid, *args)
    h.executor.start(facts)
    return facts


def stale(facts: ContainerFacts, pid: int | None = None, start_time: int | None = None) -> ContainerFacts:
    """The same record with an init identity the kernel no longer has (a PID and a wrong start time)."""
    assert facts.init is not None
    init = ProcessIdentity(
        facts.init.pid if pid is None else pid,
        (facts.init.start_time if start_time is None else start_time) + 1,
    )
    return dataclasses.replace(facts, init=init)


def exec_process(*args: str) -> Process:
    return Process(args=args, env=(PATH_ENV,))


# -- the contract --------------------------------------------------------------------------


def test_a_spawned_init_is_alive_and_waits_for_start(h: Harness) -> None:
    facts = created(h)
    status = h.executor.status(facts)
    assert status.alive and status.fifo_present and not status.frozen
    assert h.executor.alive(facts)
    assert facts.init is not None and facts.init.pid in h.executor.processes(facts)


def test_a_second_start_is_refused(h: Harness) -> None:
    facts = running(h)
    assert not h.executor.status(facts).fifo_present
    with pytest.raises(ExecutorError, match="already started") as raised:
        h.executor.start(facts)
    assert not isinstance(raised.value, ProcessGone)
    assert h.executor.alive(facts)


def test_wait_blocks_until_the_timeout(h: Harness) -> None:
    facts = running(h)
    began = time.monotonic()
    with pytest.raises(WaitTimeout):
        h.executor.wait(facts, 0.3)
    assert time.monotonic() - began >= 0.25
    assert h.executor.alive(facts)


def test_wait_blocks_until_the_init_exits(h: Harness) -> None:
    facts = running(h)
    killer = threading.Timer(0.3, h.executor.signal, (facts, signal.SIGKILL))
    began = time.monotonic()
    killer.start()
    try:
        status = h.executor.wait(facts, 10.0)
    finally:
        killer.join()
    assert time.monotonic() - began >= 0.25
    assert (status.status, status.signal) == (137, 9)
    assert not h.executor.alive(facts)
    assert h.executor.exit_status(facts).status == 137


def test_a_stale_identity_is_gone_and_harms_nothing(h: Harness) -> None:
    facts = running(h)
    old = stale(facts)
    assert not h.executor.alive(old) and not h.executor.status(old).alive
    with pytest.raises(ProcessGone):
        h.executor.signal(old, signal.SIGKILL)
    with pytest.raises(ProcessGone):
        h.executor.start(old)
    with pytest.raises(ProcessGone):
        h.executor.signal(dataclasses.replace(facts, init=None), signal.SIGKILL)
    assert h.executor.alive(facts)


def test_an_exited_init_is_gone(h: Harness) -> None:
    facts = running(h)
    status = h.executor.kill(facts, KILL_TIMEOUT)
    assert (status.status, status.signal) == (137, 9)
    assert not h.executor.alive(facts)
    with pytest.raises(ProcessGone):
        h.executor.signal(facts, signal.SIGTERM)
    with pytest.raises(ProcessGone):
        h.executor.start(facts)
    assert h.executor.wait(facts, 1.0).status == 137  # returns at once: nothing to wait for


def test_a_reused_pid_is_never_signalled_killed_or_destroyed(h: Harness) -> None:
    """The record's PID now names a process outside the container: only the container dies."""
    facts = running(h)
    outsider = h.outsider()
    reused = stale(facts, pid=outsider.pid, start_time=outsider.start_time)
    with pytest.raises(ProcessGone):
        h.executor.signal(reused, signal.SIGKILL)
    assert h.outsider_alive(outsider) and h.executor.alive(facts)
    h.executor.kill(reused, KILL_TIMEOUT)  # the container's cgroup is still the container's
    assert h.outsider_alive(outsider)
    assert not h.executor.alive(facts) and h.executor.processes(facts) == []
    h.executor.destroy(reused)
    assert h.outsider_alive(outsider)
    assert h.executor.leftovers(facts) == []


def test_processes_lists_every_live_process_of_the_container(h: Harness) -> None:
    facts = running(h)
    sleeper = h.executor.exec(facts, exec_process(*SLEEP), Stdio())
    quick = h.executor.exec(facts, exec_process("/bin/true"), Stdio())
    assert quick.wait(10.0).status == 0
    assert sleeper.poll() is None
    with pytest.raises(WaitTimeout):
        sleeper.wait(0.2)
    pids = h.executor.processes(facts)
    assert facts.init is not None
    assert {facts.init.pid, sleeper.pid} <= set(pids)
    assert quick.pid not in pids
    assert pids == sorted(pids)
    h.executor.kill(facts, KILL_TIMEOUT)
    assert h.executor.processes(facts) == []
    assert sleeper.wait(10.0).signal == signal.SIGKILL


def test_exec_into_a_frozen_container_runs_once_thawed(h: Harness) -> None:
    """runc's exec --ignore-paused (the lifecycle table decides whether it may): the process joins
    the frozen cgroup, is reported at once, and runs only once the cgroup is thawed."""
    facts = running(h)
    h.executor.freeze(facts)
    assert h.executor.status(facts).frozen
    held = h.executor.exec(facts, exec_process("/bin/true"), Stdio())
    assert held.pid in h.executor.processes(facts)
    with pytest.raises(WaitTimeout):
        held.wait(0.5)
    h.executor.thaw(facts)
    assert not h.executor.status(facts).frozen
    assert held.wait(10.0) == ExitStatus(0)
    assert h.executor.exec(facts, exec_process("/bin/true"), Stdio()).wait(10.0) == ExitStatus(0)


def test_destroy_removes_everything(h: Harness) -> None:
    facts = running(h)
    h.executor.exec(facts, exec_process(*SLEEP), Stdio())
    h.executor.freeze(facts)
    status = h.executor.kill(facts, KILL_TIMEOUT)  # a frozen container dies too
    assert (status.status, status.signal) == (137, 9)
    h.executor.destroy(facts)
    assert h.executor.leftovers(facts) == []
    assert h.executor.processes(facts) == []
    assert not h.executor.status(facts).alive
