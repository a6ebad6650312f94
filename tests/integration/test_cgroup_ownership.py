"""Cgroups belong to one container: the host is checked, never only corral's records.

A bundle may name any cgroup (`/system.slice`); corral must not adopt the processes
already there, rewrite their limits, kill them or remove the directory. Two stores
creating the same id must not share a cgroup. Each test makes its own cgroups
under a unique parent and removes them (and its `sleep`s, by PID) at the end.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral import Runtime, State
from corral.config import PidsResources, Resources
from corral.errors import ConfigError, InitError
from corral.executor import proc
from corral.executor.cgroups import Cgroup, detect
from corral.executor.cgroups._fs import remove_tree
from corral.executor.linux import store_tag
from tests.integration.conftest import checked_runtime, make_config

pytestmark = pytest.mark.root

DRIVER = detect()


class HostCgroup:
    """A cgroup the test made, as an admin would have: `/<unique parent>/held` in every hierarchy."""

    def __init__(self) -> None:
        self.parent = f"/corral-test-own-{uuid.uuid4().hex[:12]}"
        self.cgroups_path = f"{self.parent}/held"
        self.cgroup: Cgroup = DRIVER.open(DRIVER.plan(self.cgroups_path))
        self.cgroup.create()  # fills v1 cpuset levels, so a task can join
        self.sleepers: list[subprocess.Popen[bytes]] = []

    @property
    def pids_max(self) -> Path:
        d = self.cgroup.dir_for("pids")
        assert d is not None
        return Path(d) / "pids.max"

    def put_host_process(self) -> subprocess.Popen[bytes]:
        sleeper = subprocess.Popen(["sleep", "1000"])
        self.sleepers.append(sleeper)
        for procs in self.cgroup.procs_files():
            Path(procs).write_text(str(sleeper.pid))
        return sleeper

    def directories_exist(self) -> bool:
        return all(os.path.isdir(p) for p in self.cgroup.paths.values())

    def remove(self) -> None:
        for sleeper in self.sleepers:
            sleeper.kill()
            sleeper.wait()
        deadline = time.monotonic() + 5
        failures: list[str] = []
        for path in self.cgroup.paths.values():
            failures += remove_tree(os.path.dirname(path), deadline)
        assert not failures, failures


@pytest.fixture
def host_cgroup() -> Iterator[HostCgroup]:
    held = HostCgroup()
    try:
        yield held
    finally:
        held.remove()


def running(sleeper: subprocess.Popen[bytes]) -> bool:
    """The kernel's word: the PID is there and neither a zombie nor stopped (nor v1-frozen, D)."""
    stat = Path(f"/proc/{sleeper.pid}/stat").read_text()
    return sleeper.poll() is None and stat[stat.rindex(")") + 2] in "RS"


def test_a_cgroup_holding_a_host_process_is_refused_and_left_as_it_was(
    runtime: Runtime, bundle: Path, host_cgroup: HostCgroup
) -> None:
    sleeper = host_cgroup.put_host_process()
    host_cgroup.pids_max.write_text("77")
    config = make_config(
        bundle, "intruder", "sleep", "1000",
        cgroups_path=host_cgroup.cgroups_path, resources=Resources(pids=PidsResources(limit=5)),
    )
    with pytest.raises(ConfigError) as refused:
        runtime.create("intruder", config)
    assert refused.value.where == "linux.cgroupsPath"
    message = str(refused.value)
    assert "runc" in message and "hierarchy" in message
    assert any(path in message for path in host_cgroup.cgroup.paths.values())
    # The host, not the record: the process runs where it was, the limit and directory stay.
    assert running(sleeper)
    assert all(str(sleeper.pid) in Path(f).read_text().split() for f in host_cgroup.cgroup.procs_files())
    assert host_cgroup.pids_max.read_text().strip() == "77"
    assert host_cgroup.directories_exist()
    assert runtime.list(include_destroyed=True) == []  # refused before anything was recorded


def test_a_process_in_a_child_cgroup_counts_too(runtime: Runtime, bundle: Path, host_cgroup: HostCgroup) -> None:
    child = DRIVER.open({k: f"{p}/inner" for k, p in host_cgroup.cgroup.paths.items()})
    child.create()
    sleeper = subprocess.Popen(["sleep", "1000"])
    host_cgroup.sleepers.append(sleeper)
    for procs in child.procs_files():
        Path(procs).write_text(str(sleeper.pid))
    with pytest.raises(ConfigError, match="linux.cgroupsPath"):
        runtime.create("intruder", make_config(bundle, "intruder", cgroups_path=host_cgroup.cgroups_path))
    assert running(sleeper)
    assert all(os.path.isdir(p) for p in child.paths.values())


def test_an_empty_existing_cgroup_is_joined_and_left_in_place(
    runtime: Runtime, bundle: Path, host_cgroup: HostCgroup
) -> None:
    config = make_config(bundle, "joiner", "sleep", "1000", cgroups_path=host_cgroup.cgroups_path)
    box = runtime.create("joiner", config)
    box.start()
    assert box.pid is not None
    assert all(str(box.pid) in Path(f).read_text().split() for f in host_cgroup.cgroup.procs_files())
    box.destroy(force=True)
    assert not proc.alive(proc.ProcessIdentity(box.record.init_pid, box.record.init_start_time))
    assert host_cgroup.directories_exist()  # joined, not created: it stays
    assert host_cgroup.cgroup.pids() == []

    # A create that fails after the cgroup step (the program is missing) rolls back the same way.
    with pytest.raises(InitError, match="no-such-program"):
        runtime.create("joiner", make_config(bundle, "joiner", "no-such-program", cgroups_path=host_cgroup.cgroups_path))
    assert runtime.load("joiner").state is State.DESTROYED
    assert host_cgroup.directories_exist()


def test_a_host_process_moved_in_before_create_is_never_killed(
    runtime: Runtime, bundle: Path, host_cgroup: HostCgroup
) -> None:
    """The cgroup was empty when checked; a process put there before create is refused, not adopted."""
    config = make_config(bundle, "late", "sleep", "1000", cgroups_path=host_cgroup.cgroups_path)
    box = runtime.create("late", config)
    box.destroy(force=True)
    sleeper = host_cgroup.put_host_process()
    with pytest.raises(ConfigError, match="linux.cgroupsPath"):
        runtime.create("late", config)
    assert running(sleeper)
    assert host_cgroup.directories_exist()


def _frozen_in_kernel(cgroup_paths: dict[str, str]) -> bool:
    if "" in cgroup_paths:
        return Path(cgroup_paths[""], "cgroup.freeze").read_text().strip() == "1"
    return Path(cgroup_paths["freezer"], "freezer.state").read_text().strip() != "THAWED"


def test_the_same_id_in_two_stores_never_shares_a_cgroup(tmp_path: Path, bundle: Path) -> None:
    config = make_config(bundle, "same", "sleep", "1000", cgroups_path=None)
    with checked_runtime(tmp_path, "a") as one, checked_runtime(tmp_path, "b") as two:
        first, second = one.create("same", config), two.create("same", config)
        first.start()
        second.start()
        paths_one, paths_two = dict(first.record.cgroup_paths), dict(second.record.cgroup_paths)
        assert set(paths_one.values()).isdisjoint(paths_two.values())
        tag_one = store_tag(str(tmp_path / "roota"))
        assert all(p.endswith(f"/corral/{tag_one}/same") for p in paths_one.values())
        init_two = proc.ProcessIdentity(second.record.init_pid, second.record.init_start_time)

        first.pause()
        assert _frozen_in_kernel(paths_one)
        assert not _frozen_in_kernel(paths_two)
        stat = Path(f"/proc/{init_two.pid}/stat").read_text()
        assert stat[stat.rindex(")") + 2] in "RS"
        first.resume()

        first.destroy(force=True)
        assert proc.alive(init_two)  # same PID, same start time
        assert str(init_two.pid) in Path(next(iter(paths_two.values())), "cgroup.procs").read_text().split()
        assert not any(os.path.isdir(p) for p in paths_one.values())
        second.signal(signal.SIGKILL)
        second.wait(10)
    # Both stores' directories, the container's and its /corral/<store> parent, are gone.
    for root in ("roota", "rootb"):
        tag = store_tag(str(tmp_path / root))
        for mountpoint in {DRIVER.hierarchy_root(k) for k in paths_one}:
            assert not os.path.isdir(f"{mountpoint}/corral/{tag}"), f"{mountpoint}/corral/{tag} left"


def test_a_host_process_arriving_between_plan_and_spawn_is_refused_and_survives_the_rollback(
    runtime: Runtime, bundle: Path, host_cgroup: HostCgroup, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The claim is checked again when the cgroup is made; the rollback kills nothing it did not start."""
    executor = runtime.context.executor
    real_plan = executor.plan
    arrived: list[subprocess.Popen[bytes]] = []

    def plan_then_intrude(*args: object, **kwargs: object) -> object:
        plan = real_plan(*args, **kwargs)
        arrived.append(host_cgroup.put_host_process())
        return plan

    monkeypatch.setattr(executor, "plan", plan_then_intrude)
    config = make_config(bundle, "raced", "sleep", "1000", cgroups_path=host_cgroup.cgroups_path)
    with pytest.raises(ConfigError, match="linux.cgroupsPath"):
        runtime.create("raced", config)
    assert runtime.load("raced").state is State.DESTROYED
    assert running(arrived[0])
    assert host_cgroup.directories_exist()


@pytest.mark.parametrize("point", ["create.cgroups", "create.spawned", "create.ready"])
def test_a_create_crashing_in_a_joined_cgroup_is_rolled_back_without_leaving_its_init(
    point: str, runtime: Runtime, bundle: Path, tmp_path: Path, host_cgroup: HostCgroup
) -> None:
    """No init is recorded, so recovery kills nothing in a joined cgroup: the monitor must have."""
    from tests.integration.test_recovery import run_controller

    config_file = tmp_path / "config.json"
    config_file.write_text(make_config(bundle, "crashed", "sleep", "1000", cgroups_path=host_cgroup.cgroups_path).to_json())
    assert run_controller(runtime, "crashed", "create", config_file, fault=point) == -signal.SIGKILL
    deadline = time.monotonic() + 10
    while host_cgroup.cgroup.pids() and time.monotonic() < deadline:
        time.sleep(0.02)
    left = host_cgroup.cgroup.pids()
    with Runtime(runtime.root, run_root=runtime.run_root) as recovered:
        assert recovered.load("crashed").state is State.DESTROYED
    assert left == [], f"the unconfirmed init outlived its controller: {left}"
    assert host_cgroup.directories_exist()
