"""Crash recovery against real containers: a controller killed at every fault point, a host
restart, PID reuse, concurrent recoveries.

After each crash a new Runtime (which recovers when it opens) must leave the record in
agreement with the kernel, nothing of the container in the kernel unless it is live, and the
container drivable on to `destroyed` with nothing left.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from corral import Interface, Network, Runtime, State, faults
from corral.errors import CorralError, InvalidTransition
from corral.executor import proc
from tests.checks import assert_journal_is_a_walk
from tests.integration.conftest import leaks_of, make_config

pytestmark = pytest.mark.root

REPO = Path(__file__).resolve().parents[2]
LIVE = {State.CREATED, State.RUNNING, State.PAUSED}

#: The state each fault point must recover to.
EXPECTED: dict[str, set[State]] = {
    "create.intent": {State.DESTROYED},
    "create.cgroups": {State.DESTROYED},
    "create.spawned": {State.DESTROYED},
    "create.ready": {State.DESTROYED},
    "create.interface": {State.DESTROYED},  # reached only with a network section (test_network.py)
    "create.recorded": {State.STOPPED},  # recorded, but the monitor killed the unconfirmed init
    "start.intent": {State.CREATED},
    "start.fifo-opening": {State.CREATED},
    "start.fifo-opened": {State.RUNNING},
    "start.recorded": {State.RUNNING},
    "pause.intent": {State.RUNNING},
    "pause.frozen": {State.PAUSED},
    "pause.recorded": {State.PAUSED},
    "resume.intent": {State.PAUSED},
    "resume.thawed": {State.RUNNING},
    "resume.recorded": {State.RUNNING},
    "signal.intent": {State.RUNNING},
    "signal.sent": {State.RUNNING},
    "exec.intent": {State.RUNNING},
    "exec.spawned": {State.RUNNING},
    "exec.recorded": {State.RUNNING},
    "update.intent": {State.RUNNING},
    "update.written": {State.RUNNING},
    "update.recorded": {State.RUNNING},
    "destroy.intent": {State.DESTROYED},
    "destroy.killed": {State.DESTROYED},
    "destroy.cgroups-removed": {State.DESTROYED},
    "destroy.run-dir-removed": {State.DESTROYED},
    "destroy.recorded": {State.DESTROYED},
}

#: What the container must be before the operation: the steps that get it there.
PREPARE: dict[str, tuple[str, ...]] = {
    "create": (),
    "start": ("create",),
    "pause": ("create", "start"),
    "exec": ("create", "start"),
    "signal": ("create", "start"),
    "update": ("create", "start"),
    "destroy": ("create", "start"),
    "resume": ("create", "start", "pause"),
}


def test_every_point_has_an_expectation() -> None:
    assert set(EXPECTED) == set(faults.POINTS)


def run_controller(runtime: Runtime, cid: str, op: str, config_file: Path | None = None, fault: str | None = None) -> int:
    env = dict(os.environ)
    env.pop(faults.ENV, None)
    if fault:
        env[faults.ENV] = fault
    args = [sys.executable, "-m", "tests.integration.fault_controller", str(runtime.root), str(runtime.run_root), cid, op]
    if config_file is not None:
        args.append(str(config_file))
    done = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode in (0, -signal.SIGKILL), done.stderr
    return done.returncode


def freezer_state(record) -> str | None:
    path = record.cgroup_paths.get("freezer")
    if path is None:
        return None
    try:
        return Path(path, "freezer.state").read_text().strip()
    except FileNotFoundError:
        return None


def cgroup_pids(record) -> set[int]:
    pids: set[int] = set()
    for path in record.cgroup_paths.values():
        for dirpath, _dirs, files in os.walk(path):
            if "cgroup.procs" in files:
                pids.update(int(p) for p in Path(dirpath, "cgroup.procs").read_text().split())
    return pids


def assert_record_matches_kernel(box) -> State:
    state = box.state
    record = box.record
    assert record.pending_event is None, record
    init = proc.ProcessIdentity(record.init_pid, record.init_start_time) if record.init_pid else None
    alive = init is not None and proc.alive(init)
    if state in LIVE:
        assert alive, f"{state}: init {record.init_pid} should be alive"
        assert (freezer_state(record) == "FROZEN") == (state is State.PAUSED)
        comm = Path(f"/proc/{record.init_pid}/comm").read_text().strip()
        assert (comm == "corral-init") == (state is State.CREATED), comm
    else:
        assert not alive, f"{state}: init {record.init_pid} should be gone"
        assert cgroup_pids(record) == set(), f"{state}: processes left in the cgroups"
    if state is State.DESTROYED:
        assert [p for p in record.cgroup_paths.values() if os.path.isdir(p)] == []
        assert not os.path.exists(record.run_dir)
    assert_journal_is_a_walk(box, state)
    return state


def drive_to_destroyed(box) -> None:
    state = box.state
    if state is State.CREATED:
        box.start()
        assert box.state is State.RUNNING
    if box.state in LIVE:
        box.destroy(force=True)
    elif box.state is State.STOPPED:
        box.destroy()
    assert box.state is State.DESTROYED


@pytest.mark.parametrize("point", faults.POINTS)
def test_crash_at_fault_point(point: str, runtime: Runtime, bundle: Path, tmp_path: Path) -> None:
    op = point.split(".")[0]
    cid = "crash-" + point.replace(".", "-")
    config = make_config(bundle, cid, "/bin/sleep", "1000")
    if point == "create.interface":  # two veths: killed after the first
        config = dataclasses.replace(config, network=Network((Interface(addresses=("192.0.2.1/24",)), Interface(name="eth1"))))
    config_file = tmp_path / "config.json"
    config_file.write_text(config.to_json())
    for step in PREPARE[op]:
        if step == "create":
            runtime.create(cid, config)
        else:
            getattr(runtime.load(cid), step)()
    op_name = "destroy-force" if op == "destroy" else op
    returncode = run_controller(runtime, cid, op_name, config_file if op == "create" else None, fault=point)
    assert returncode == -signal.SIGKILL, f"the controller did not reach {point}"
    if point == "create.recorded":  # the monitor kills the unconfirmed init when the controller dies
        record = runtime.load(cid).record
        deadline = time.monotonic() + 10
        while proc.alive(proc.ProcessIdentity(record.init_pid, record.init_start_time)) and time.monotonic() < deadline:
            time.sleep(0.02)

    recovered = Runtime(runtime.root, run_root=runtime.run_root)
    try:
        report = recovered.last_recovery
        assert report is not None and report.failed == [] and report.busy == []
        box = recovered.load(cid)
        state = assert_record_matches_kernel(box)
        assert state in EXPECTED[point], f"{point}: recovered to {state}, report {report}"
        assert recovered.recover().actions == []  # idempotent
        drive_to_destroyed(box)
        assert_record_matches_kernel(box)
        assert leaks_of(recovered, tmp_path) == []
    finally:
        recovered.close()


def _kill_like_a_reboot(record) -> None:
    """What a host restart does to a container: every process gone, every cgroup gone."""
    freezer = record.cgroup_paths.get("freezer")
    if freezer and os.path.exists(freezer):
        Path(freezer, "freezer.state").write_text("THAWED")  # frozen tasks cannot die
    # The monitor proper (the recorded keeper's child) first: alive, it would reap the
    # init and journal its exit, which a reboot gives nobody the chance to do.
    monitors = []
    if record.monitor_pid:
        try:
            monitors = [int(p) for p in Path(f"/proc/{record.monitor_pid}/task/{record.monitor_pid}/children").read_text().split()]
        except FileNotFoundError:
            pass
    for pid in (*monitors, record.monitor_pid, record.init_pid):
        if pid:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + 10
    while cgroup_pids(record) and time.monotonic() < deadline:
        time.sleep(0.02)
    for path in sorted(record.cgroup_paths.values(), reverse=True):
        if os.path.isdir(path):
            os.rmdir(path)


def test_host_restart(runtime: Runtime, bundle: Path, tmp_path: Path) -> None:
    boot_id = tmp_path / "boot_id"
    boot_id.write_text("boot-before\n")
    rt = Runtime(runtime.root, run_root=runtime.run_root, boot_id_file=boot_id)
    try:
        boxes = {}
        for cid, steps in {"r-created": (), "r-running": ("start",), "r-paused": ("start", "pause")}.items():
            box = rt.create(cid, make_config(bundle, cid, "/bin/sleep", "1000"))
            for step in steps:
                getattr(box, step)()
            boxes[cid] = box
        stopped = rt.create("r-stopped", make_config(bundle, "r-stopped", "/bin/true"))
        stopped.start()
        assert stopped.wait(10) == 0
        records = {cid: box.record for cid, box in boxes.items()}
        for record in records.values():
            _kill_like_a_reboot(record)
        for child in runtime.run_root.iterdir():
            if child.name != "r-stopped":
                subprocess.run(["rm", "-rf", str(child)], check=True)
        boot_id.write_text("boot-after\n")

        report = rt.recover()
        assert sorted(a.container_id for a in report.actions) == ["r-created", "r-paused", "r-running", "r-stopped"]
        for cid in records:
            box = rt.load(cid)
            assert box.state is State.STOPPED
            assert box.exit_status is None
            assert box.history()[-1].detail["exit"] == "unknown"
            assert "host restarted" in box.history()[-1].detail["exit_unknown_reason"]
            assert box.history()[-1].event == "exited"
        assert rt.load("r-stopped").exit_status == 0  # known before the restart: kept
        for box in rt.list():
            assert box.record.pending_event is None
            assert [p for p in box.record.cgroup_paths.values() if os.path.isdir(p)] == []
            assert not os.path.exists(box.record.run_dir)
        assert rt.recover().actions == []
        for box in rt.list():
            box.destroy()
        assert leaks_of(rt, tmp_path) == []
    finally:
        rt.close()


def test_pid_reuse_is_stopped_and_never_signalled(runtime: Runtime, bundle: Path) -> None:
    box = runtime.create("reused", make_config(bundle, "reused", "/bin/sleep", "1000"))
    box.start()
    real = box.record
    victim = subprocess.Popen(["sleep", "1000"])
    try:
        # the recorded init "died" and its PID went to `victim` (a different start time)
        runtime.context.store.update(real.key, real.version, init_pid=victim.pid)
        report = runtime.recover()
        assert [a.container_id for a in report.actions] == ["reused"]
        assert box.state is State.STOPPED
        with pytest.raises(InvalidTransition, match="stopped"):
            box.signal(signal.SIGKILL)
        assert victim.poll() is None
    finally:
        victim.kill()
        victim.wait()
    box.destroy()  # kills the real (unrecorded) init through the cgroup
    assert not proc.alive(proc.ProcessIdentity(real.init_pid, real.init_start_time))


def test_a_reused_pid_survives_signal_and_forced_destroy(runtime: Runtime, bundle: Path) -> None:
    """The kernel-side start-time check itself (proc.open_pidfd), not the record's refusal.

    The recorded init dies and its PID goes to an unrelated live process; the
    record still says running with the old start time. `signal` is made to pass
    the record's liveness check (as if the PID was reused right after it), and
    `destroy(force=True)` never makes that check: both reach the executor, and
    the unrelated process must survive both, unchanged.
    """
    box = runtime.create("reused2", make_config(bundle, "reused2", "/bin/sleep", "1000"))
    box.start()
    real = box.record
    os.kill(real.init_pid, signal.SIGKILL)
    assert _gone(proc.ProcessIdentity(real.init_pid, real.init_start_time))
    victim = subprocess.Popen(["sleep", "1000"])
    try:
        victim_identity = proc.identity(victim.pid)
        assert victim_identity is not None and victim_identity.start_time != real.init_start_time
        # The monitor journals the exit it saw (issue 13); stage a record that missed it, with the PID reused.
        deadline = time.monotonic() + 10
        while box.record.state != "stopped" and time.monotonic() < deadline:
            time.sleep(0.02)
        seen = box.record
        assert seen.state == "stopped", seen
        runtime.context.store.update(
            real.key, seen.version, state="running", exit_status=None, exit_signal=None, init_pid=victim.pid
        )
        executor = runtime.context.executor
        executor.alive = lambda facts: True  # type: ignore[method-assign]  # checked before the reuse
        try:
            with pytest.raises(CorralError, match="gone"):
                box.signal(signal.SIGKILL)
        finally:
            del executor.alive
        assert victim.poll() is None and proc.identity(victim.pid) == victim_identity
        box.destroy(force=True)
        assert box.recorded_state is State.DESTROYED
        time.sleep(0.2)  # a SIGKILL would have landed by now
        assert victim.poll() is None and proc.identity(victim.pid) == victim_identity
    finally:
        victim.kill()
        victim.wait()


def _gone(identity: proc.ProcessIdentity, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while proc.alive(identity):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def _forget(root: Path, key: int) -> None:
    """What a power cut does to a commit that never reached the disk: the record is gone."""
    db = sqlite3.connect(root / "corral.db")
    try:
        with db:
            for table in ("journal", "cgroup_paths", "namespace_paths", "processes"):
                db.execute(f"DELETE FROM {table} WHERE container_key = ?", (key,))
            db.execute("DELETE FROM containers WHERE key = ?", (key,))
    finally:
        db.close()


def test_a_run_dir_whose_record_was_lost_is_removed(runtime: Runtime, bundle: Path, tmp_path: Path) -> None:
    cid = "lost"
    config_file = tmp_path / "config.json"
    config_file.write_text(make_config(bundle, cid, "/bin/sleep", "1000").to_json())
    assert run_controller(runtime, cid, "create", config_file, fault="create.ready") == -signal.SIGKILL
    record = runtime.load(cid).record
    run_dir = Path(record.run_dir)
    assert run_dir.is_dir() and run_dir.parent == runtime.run_root
    deadline = time.monotonic() + 10  # the monitor kills the init its dead controller never confirmed
    while cgroup_pids(record) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert cgroup_pids(record) == set()
    _forget(runtime.root, record.key)
    never_a_container = runtime.run_root / "not an id"  # named unlike any container: not corral's
    never_a_container.mkdir()

    # A record is lost only to a power cut, so the next open is in another boot: the
    # full recovery, which sweeps orphans. (An open in the same boot finishes
    # interrupted intents only, and `recover()` sweeps: both are checked.)
    same_boot = Runtime(runtime.root, run_root=runtime.run_root)
    try:
        assert same_boot.last_recovery is not None and same_boot.last_recovery.orphans == []
        assert run_dir.is_dir()
    finally:
        same_boot.close()
    boot_id = tmp_path / "boot_id"
    boot_id.write_text("after the power cut\n")
    recovered = Runtime(runtime.root, run_root=runtime.run_root, boot_id_file=boot_id)
    try:
        report = recovered.last_recovery
        assert report is not None
        assert not run_dir.exists()
        assert [(o.container_id, o.path, o.done) for o in report.orphans] == [(cid, str(run_dir), "removed")]
        assert never_a_container.is_dir()
        assert recovered.recover().orphans == []  # idempotent
    finally:
        recovered.close()
        never_a_container.rmdir()
        for path in sorted(record.cgroup_paths.values(), reverse=True):  # not recorded any more: ours to clean
            if os.path.isdir(path):
                os.rmdir(path)


def test_cgroups_a_tombstone_names_are_removed_and_no_others(runtime: Runtime, bundle: Path) -> None:
    box = runtime.create("tomb", make_config(bundle, "tomb", "/bin/sleep", "1000"))
    box.start()
    box.destroy(force=True)
    record = box.record
    leftovers = sorted(record.cgroup_paths.values())
    for path in leftovers:  # what a removal that failed leaves behind
        os.makedirs(path)
    busy_parent = next(p for p in leftovers if "freezer" in p or "pids" in p)
    busy = os.path.join(busy_parent, "busy")  # a child cgroup with a process: never killed
    os.mkdir(busy)
    sleeper = subprocess.Popen(["sleep", "1000"])
    Path(busy, "cgroup.procs").write_text(str(sleeper.pid))
    stranger = os.path.join(os.path.dirname(leftovers[0]), "never-recorded")
    os.mkdir(stranger)
    try:
        report = runtime.recover()
        done = {o.path: o.done for o in report.orphans}
        assert [p for p in leftovers if os.path.isdir(p)] == [busy_parent]
        assert done[busy_parent] == "left alone: it still has processes"
        assert all(done[p] == "removed" for p in leftovers if p != busy_parent), done
        assert sleeper.poll() is None
        assert os.path.isdir(stranger)
    finally:
        sleeper.kill()
        sleeper.wait()
        deadline = time.monotonic() + 5
        while os.path.isdir(busy) and time.monotonic() < deadline:
            try:
                os.rmdir(busy)
            except OSError:
                time.sleep(0.02)
        os.rmdir(stranger)
    report = runtime.recover()
    assert [o.done for o in report.orphans] == ["removed"]
    assert [p for p in leftovers if os.path.isdir(p)] == []


def _recover(root: str, run_root: str, queue) -> None:
    rt = Runtime(root, run_root=run_root, recover=False)
    try:
        report = rt.recover()
        queue.put(sorted(a.container_id for a in report.actions))
    finally:
        rt.close()


def test_two_processes_recovering_at_once_do_not_fight(runtime: Runtime, bundle: Path) -> None:
    for i in range(4):
        cid = f"both-{i}"
        box = runtime.create(cid, make_config(bundle, cid, "/bin/sleep", "1000"))
        box.start()
        record = box.record
        runtime.context.store.update(record.key, record.version, pending_event="pause")  # a crash mid-pause
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_recover, args=(str(runtime.root), str(runtime.run_root), queue)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    done = [queue.get(timeout=5) for _ in procs]
    # every container was recovered by exactly one of them (the other found it locked or done)
    assert sorted(done[0] + done[1]) == [f"both-{i}" for i in range(4)]
    for i in range(4):
        box = runtime.load(f"both-{i}")
        assert box.state is State.RUNNING and box.record.pending_event is None


def test_exit_status_survives_the_controller(runtime: Runtime, bundle: Path, tmp_path: Path) -> None:
    """The controller that started the container is killed; the monitor still keeps the exit status."""
    cid = "outlived"
    config = make_config(bundle, cid, "/bin/sh", "-c", "sleep 1; exit 5")
    config_file = tmp_path / "config.json"
    config_file.write_text(config.to_json())
    assert run_controller(runtime, cid, "create", config_file) == 0
    assert run_controller(runtime, cid, "start", fault="start.recorded") == -signal.SIGKILL
    other = Runtime(runtime.root, run_root=runtime.run_root)
    try:
        box = other.load(cid)
        assert box.state is State.RUNNING
        assert box.wait(20) == 5  # not this process's child: read from the monitor's record
        assert box.history()[-1].detail["exit_status"] == 5
        box.destroy()
    finally:
        other.close()
