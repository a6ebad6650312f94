"""A live container the store forgot: recovery kills and removes it, and nothing that is not its.

The store loses a record behind corral's back (raw sqlite3, as a lost commit or a
restored backup would); recovery finds the run dir, and the identity create wrote
in it names the init, its monitor and its cgroups (executor/identity.py,
executor/forgotten.py). Checked in the kernel: PIDs with their start times, cgroup
directories, the run dir. And the other side: a PID the identity names that now
belongs to another process, a cgroup create did not make, or one made again since,
is never signalled or killed in.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral import Runtime
from corral.executor import identity, proc
from corral.executor.cgroups import detect
from corral.executor.linux import store_tag
from corral.types import ProcessIdentity
from tests.integration.conftest import make_config

pytestmark = pytest.mark.root


def _forget(root: Path, key: int) -> None:
    """The record (and every row that names it) is gone, as if its commits never reached the disk."""
    db = sqlite3.connect(root / "corral.db")
    try:
        with db:
            for table in ("journal", "cgroup_paths", "namespace_paths", "processes", "network_interfaces"):
                try:
                    db.execute(f"DELETE FROM {table} WHERE container_key = ?", (key,))
                except sqlite3.OperationalError:
                    pass  # a table this schema does not have
            db.execute("DELETE FROM containers WHERE key = ?", (key,))
    finally:
        db.close()


def _cgroup_procs(paths: dict[str, str] | object) -> set[int]:
    found: set[int] = set()
    for path in paths.values():  # type: ignore[attr-defined]
        try:
            found |= {int(p) for p in Path(path, "cgroup.procs").read_text().split()}
        except FileNotFoundError:
            pass
    return found


def _wait_gone(processes: list[ProcessIdentity], timeout: float = 10) -> list[ProcessIdentity]:
    deadline = time.monotonic() + timeout
    while any(proc.alive(p) for p in processes) and time.monotonic() < deadline:
        time.sleep(0.02)
    return [p for p in processes if proc.alive(p)]


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    runtime = Runtime(tmp_path / "root", run_root=tmp_path / "run")
    try:
        yield runtime
    finally:
        for box in runtime.list():
            box.destroy(force=True)
        runtime.close()


@pytest.mark.parametrize("case", ["own-pid-ns", "host-pid-ns", "explicit-cgroups-path"])
def test_a_live_container_the_store_forgot_is_killed_and_removed(rt: Runtime, bundle: Path, case: str) -> None:
    """host-pid-ns: the init's death ends none of its children, only the cgroup kill does;
    explicit-cgroups-path: a cgroup outside corral's parent is never killed in, so only the
    init's SIGKILL (and with it its PID namespace) ends the container, and the cgroups stay."""
    cid = "forgotten"
    explicit = case == "explicit-cgroups-path"
    config = make_config(bundle, cid, "/bin/sh", "-c", "sleep 1000 & sleep 1001 & wait")
    if not explicit:
        config = dataclasses.replace(config, cgroups_path=None)  # /corral/<store>/<id>
    if case == "host-pid-ns":
        config = dataclasses.replace(config, namespaces=tuple(ns for ns in config.namespaces if ns.type != "pid"))
    box = rt.create(cid, config)
    box.start()
    record = box.record
    if not explicit:
        assert all(f"/corral/{store_tag(str(rt.root))}/{cid}" in p for p in record.cgroup_paths.values())
    deadline = time.monotonic() + 10
    while len(_cgroup_procs(record.cgroup_paths)) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    members = [proc.identity(pid) for pid in _cgroup_procs(record.cgroup_paths)]
    processes = [p for p in members if p is not None]
    init = ProcessIdentity(record.init_pid, record.init_start_time)
    monitor = ProcessIdentity(record.monitor_pid, record.monitor_start_time)
    assert init in processes and len(processes) == 3, processes
    run_dir = Path(record.run_dir)
    store_parents = {p[: p.index(cid) - 1] for p in record.cgroup_paths.values()}

    _forget(rt.root, record.key)
    assert rt.list(include_destroyed=True) == []
    try:
        report = rt.recover()

        assert [(o.container_id, o.path, o.done) for o in report.orphans] == [(cid, str(run_dir), "removed")]
        assert f"killed the init {init.pid}" in report.orphans[0].detail
        assert _wait_gone(processes + [monitor]) == []
        assert not run_dir.exists()
        if explicit:
            assert "cgroups left alone" in report.orphans[0].detail
            assert all(os.path.isdir(p) for p in record.cgroup_paths.values())
        else:
            assert "cgroups removed" in report.orphans[0].detail
            assert [p for p in record.cgroup_paths.values() if os.path.exists(p)] == []
            assert [p for p in store_parents if os.path.exists(p)] == []  # /corral/<store>: empty, so removed
        assert rt.recover().orphans == []  # idempotent
    finally:
        for leftover in processes + [monitor]:  # only if recovery failed: SIGKILL what this test started
            pidfd = proc.open_pidfd(leftover)
            if pidfd is not None:
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
                os.close(pidfd)
        _wait_gone(processes + [monitor])
        if explicit:  # left to an operator by recovery: the test's to remove
            for path in record.cgroup_paths.values():
                _rmdir_waiting(path)


def _rmdir_waiting(directory: str, timeout: float = 5) -> None:
    """rmdir a cgroup directory of this test once its last process has left (it may be a moment)."""
    deadline = time.monotonic() + timeout
    while os.path.isdir(directory):
        try:
            os.rmdir(directory)
        except FileNotFoundError:
            break
        except OSError:
            if time.monotonic() > deadline:
                break  # e.g. another test's container under the shared /corral: not ours to wait for
            time.sleep(0.02)


def _sleeper() -> tuple[subprocess.Popen[bytes], ProcessIdentity]:
    sleeper = subprocess.Popen(["sleep", "1000"])
    start = proc.start_time(sleeper.pid)
    assert start is not None
    return sleeper, ProcessIdentity(sleeper.pid, start)


def _write_identity(run_dir: Path, cid: str, data: dict[str, object]) -> None:
    run_dir.mkdir(parents=True)
    fields: dict[str, object] = {
        "format": identity.FORMAT,
        "id": cid,
        "boot_id": identity.kernel_boot_id(),
        "monitor": None,
        "cgroup_paths": {},
        "created_cgroups": {},
        "cgroup_inodes": {},
    }
    fields.update(data)
    (run_dir / identity.IDENTITY_FILE).write_text(json.dumps(fields))


@pytest.mark.parametrize("wrong", ["start time", "boot id"])
def test_a_reused_pid_named_by_a_forgotten_identity_is_not_signalled(rt: Runtime, wrong: str) -> None:
    """The identity names a live unrelated process's PID, from another start time or another boot."""
    cid = "reused"
    sleeper, me = _sleeper()
    try:
        run_dir = rt.run_root / cid
        start = me.start_time + 1 if wrong == "start time" else me.start_time
        boot = "00000000-0000-0000-0000-000000000000" if wrong == "boot id" else identity.kernel_boot_id()
        _write_identity(run_dir, cid, {"init": [me.pid, start], "monitor": [me.pid, start], "boot_id": boot})

        report = rt.recover()

        assert [(o.container_id, o.done) for o in report.orphans] == [(cid, "removed")]
        assert "killed" not in report.orphans[0].detail
        time.sleep(0.1)
        assert sleeper.poll() is None and proc.alive(me)
        assert not run_dir.exists()
    finally:
        sleeper.kill()
        sleeper.wait()


@pytest.mark.parametrize("case", ["theirs", "made again", "joined", "outside corral's parent"])
def test_cgroups_a_forgotten_identity_does_not_prove_its_own_are_not_killed_in(
    rt: Runtime, tmp_path: Path, case: str
) -> None:
    """A cgroup under the store's parent holds an unrelated process; the identity names it.

    "theirs" is the control: everything the identity says holds, so its process is
    killed (the cgroup is the container's, by every rule). Each other case breaks
    one rule, and the process must survive with its cgroup.
    """
    cid = "cg"
    parent = "/corral-test-elsewhere" if case == "outside corral's parent" else f"/corral/{store_tag(str(rt.root))}"
    # Hierarchies a process can join without set-up (v1 cpuset needs cpus and mems written first).
    paths = {k: p for k, p in detect().plan(f"{parent}/{cid}").items() if k in ("", "freezer", "pids")}
    made: list[str] = []
    for path in paths.values():
        for directory in (os.path.dirname(os.path.dirname(path)), os.path.dirname(path), path):
            if not os.path.isdir(directory):
                os.mkdir(directory)
                made.append(directory)
    sleeper, me = _sleeper()
    try:
        for path in paths.values():
            Path(path, "cgroup.procs").write_text(str(me.pid))
        inodes = {k: os.stat(p).st_ino + (1 if case == "made again" else 0) for k, p in paths.items()}
        created = {} if case == "joined" else {k: [p] for k, p in paths.items()}
        dead_init = [me.pid, me.start_time + 1]  # the init is gone (its PID reused): only the cgroup rule is left
        run_dir = rt.run_root / cid
        _write_identity(
            run_dir, cid,
            {"init": dead_init, "cgroup_paths": paths, "created_cgroups": created, "cgroup_inodes": inodes},
        )

        report = rt.recover()

        assert [(o.container_id, o.done) for o in report.orphans] == [(cid, "removed")], report.orphans
        assert not run_dir.exists()
        if case == "theirs":
            assert "cgroups removed" in report.orphans[0].detail
            assert _wait_gone([me]) == []
            assert [p for p in paths.values() if os.path.exists(p)] == []
        else:
            assert "cgroups left alone" in report.orphans[0].detail
            time.sleep(0.1)
            assert sleeper.poll() is None and proc.alive(me)
            assert all(os.path.isdir(p) for p in paths.values())
    finally:
        sleeper.kill()
        sleeper.wait()
        for directory in reversed(made):
            _rmdir_waiting(directory)
