"""The Runtime and Container API over the fake executor: transitions, guards, records, recovery."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from corral import Config, Process, Runtime, State
from corral.errors import (
    ConfigError,
    ContainerExists,
    ContainerNotFound,
    ExecutorError,
    InitError,
    InvalidID,
    InvalidTransition,
)
from corral.statemachine import lifecycle
from tests.fakes import FakeExecutor
from tests.unit.conftest import make_runtime, simple_config


def fake(runtime: Runtime) -> FakeExecutor:
    executor = runtime.context.executor
    assert isinstance(executor, FakeExecutor)
    return executor


def walk(container) -> list[tuple[str | None, str, str]]:
    return [(e.from_state, e.event, e.to_state) for e in container.history()]


def test_whole_lifecycle_is_recorded(runtime: Runtime, config: Config) -> None:
    box = runtime.create("web", config)
    assert box.state is State.CREATED and box.pid is not None
    box.start()
    assert box.state is State.RUNNING
    box.pause()
    assert box.state is State.PAUSED
    box.resume()
    proc = box.exec(Process(args=("true",)))
    assert proc.wait() == 0
    box.signal(signal.SIGKILL)
    assert box.wait() == 137
    assert box.state is State.STOPPED and box.pid is None
    box.destroy()
    assert box.state is State.DESTROYED
    assert walk(box) == [
        (None, "create", "creating"),
        ("creating", "create", "created"),
        ("created", "start", "running"),
        ("running", "pause", "paused"),
        ("paused", "resume", "running"),
        ("running", "exec", "running"),
        ("running", "signal", "running"),
        ("running", "exited", "stopped"),
        ("stopped", "destroy", "destroyed"),
    ]
    for from_state, event, to_state in walk(box):
        assert lifecycle.is_valid_step(State(from_state) if from_state else None, event, State(to_state))
    assert not fake(runtime).leaked("web")
    record = box.record
    assert record.pending_event is None and record.exit_status == 137 and record.exit_signal == 9


@pytest.mark.parametrize("bad", ["", ".hidden", "-x", "a/b", "..", "a" * 129, "sp ace", "é", None, 7])
def test_bad_ids_are_refused_before_anything(runtime: Runtime, config: Config, bad: object) -> None:
    with pytest.raises(InvalidID):
        runtime.create(bad, config)  # type: ignore[arg-type]
    assert runtime.list(include_destroyed=True) == []


def test_good_ids(runtime: Runtime, config: Config) -> None:
    for cid in ("a", "A_b.c-d", "x" * 128, "9lives"):
        assert runtime.create(cid, config).id == cid


def test_invalid_event_names_state_and_allowed_events_and_changes_nothing(runtime: Runtime, config: Config) -> None:
    box = runtime.create("c", config)
    before = box.record
    with pytest.raises(InvalidTransition) as info:
        box.pause()
    message = str(info.value)
    assert "'c'" in message and "created" in message and "start" in message and "signal" in message
    after = box.record
    assert after == before
    assert fake(runtime).calls.count("freeze") == 0


def test_destroy_of_a_running_container_needs_force(runtime: Runtime, config: Config) -> None:
    box = runtime.create("c", config)
    box.start()
    with pytest.raises(InvalidTransition, match="force=True"):
        box.destroy()
    assert box.state is State.RUNNING
    box.destroy(force=True)
    assert box.state is State.DESTROYED
    assert box.record.exit_status == 137
    assert not fake(runtime).leaked("c")


def test_exited_is_noticed_when_the_init_dies_by_itself(runtime: Runtime, config: Config) -> None:
    box = runtime.create("c", config)
    box.start()
    fake(runtime).make_exit("c", status=3)
    assert box.state is State.STOPPED
    assert box.exit_status == 3
    with pytest.raises(InvalidTransition, match="stopped"):
        box.pause()


def test_create_failure_leaves_a_tombstone_and_nothing_in_the_kernel(runtime: Runtime, tmp_path: Path) -> None:
    with pytest.raises(InitError, match="no such file"):
        runtime.create("bad", simple_config(tmp_path, "/nonexistent"))
    box = runtime.load("bad")
    assert box.state is State.DESTROYED
    assert "create failed" in (box.record.last_error or "")
    assert not fake(runtime).leaked("bad")
    assert walk(box)[-1] == ("creating", "destroy", "destroyed")
    assert runtime.list() == []
    runtime.create("bad", simple_config(tmp_path))  # the id is free again


def test_an_init_whose_creation_cannot_be_recorded_is_aborted(runtime: Runtime, config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    """Spawned, but `created` could not be written: the init is aborted now, not when garbage-collected."""
    from corral.errors import StoreError

    update = runtime.context.store.update

    def failing_update(*args, **kwargs):
        if kwargs.get("state") == "created":
            raise StoreError("disk full (simulated)")
        return update(*args, **kwargs)

    monkeypatch.setattr(runtime.context.store, "update", failing_update)
    with pytest.raises(StoreError, match="disk full"):
        runtime.create("c", config)
    [spawned] = fake(runtime).spawned
    assert spawned.aborted and not spawned.confirmed
    assert runtime.load("c").state is State.DESTROYED
    assert not fake(runtime).leaked("c")


def test_the_journal_lists_every_container_in_order(runtime: Runtime, config: Config) -> None:
    runtime.create("a", config).start()
    runtime.create("b", config)
    entries = runtime.journal()
    assert [(cid, e.event, e.to_state) for cid, e in entries] == [
        ("a", "create", "creating"), ("a", "create", "created"), ("a", "start", "running"),
        ("b", "create", "creating"), ("b", "create", "created"),
    ]
    assert [e.seq for _, e in entries] == sorted(e.seq for _, e in entries)
    assert runtime.journal(since=entries[2][1].seq) == entries[3:]


def test_duplicate_id_is_refused(runtime: Runtime, config: Config) -> None:
    runtime.create("c", config)
    with pytest.raises(ContainerExists):
        runtime.create("c", config)


def test_load_unknown(runtime: Runtime) -> None:
    with pytest.raises(ContainerNotFound, match="'nope'"):
        runtime.load("nope")


def test_config_must_be_a_config(runtime: Runtime) -> None:
    with pytest.raises(ConfigError):
        runtime.create("c", {"process": {}})  # type: ignore[arg-type]


def test_kernel_failure_records_the_error_and_keeps_the_state(runtime: Runtime, config: Config) -> None:
    box = runtime.create("c", config)
    box.start()
    fake(runtime).fail_next("freeze", ExecutorError("freezer stuck"))
    with pytest.raises(ExecutorError, match="freezer stuck"):
        box.pause()
    record = box.record
    assert record.state == "running" and record.pending_event is None
    assert "freezer stuck" in (record.last_error or "")
    box.pause()
    assert box.state is State.PAUSED


def test_a_second_runtime_sees_the_same_containers(runtime: Runtime, config: Config, tmp_path: Path, kernel_dir: Path, boot_id_file: Path) -> None:
    runtime.create("a", config).start()
    runtime.create("b", config)
    other = make_runtime(tmp_path, kernel_dir, boot_id_file)
    try:
        assert {c.id: c.state for c in other.list()} == {"a": State.RUNNING, "b": State.CREATED}
        other.load("b").start()
        assert runtime.load("b").state is State.RUNNING
    finally:
        other.close()


def test_config_round_trips_through_the_store(runtime: Runtime, config: Config) -> None:
    runtime.create("c", config)
    assert runtime.load("c").config == config


# -- recovery against the fake kernel -------------------------------------------


def test_recovery_rolls_back_an_interrupted_create(runtime: Runtime, config: Config, tmp_path: Path, kernel_dir: Path, boot_id_file: Path) -> None:
    record = runtime.context.store.insert(
        container_id="half", state="creating", pending_event="create", config=config.to_json(),
        bundle=None, run_dir=str(tmp_path / "run" / "half"), boot_id="boot-1",
        cgroup_paths={"fake": "/fake-cgroup/corral/half"}, journal_event="create",
    )
    with fake(runtime)._kernel("half") as k:
        k.update(cgroups=True, run_dir=True, alive=True, pid=4242, start_time=1)  # an init nobody recorded
    report = runtime.recover()
    assert [a.container_id for a in report.actions] == ["half"]
    box = runtime.load("half")
    assert box.state is State.DESTROYED and not fake(runtime).leaked("half")
    assert runtime.recover().actions == []  # idempotent
    assert record.key == box.record.key


def test_recovery_finishes_what_the_kernel_already_did(runtime: Runtime, config: Config) -> None:
    box = runtime.create("c", config)
    box.start()
    record = box.record
    # a controller froze the cgroup, then died before recording `paused`
    runtime.context.store.update(record.key, record.version, pending_event="pause")
    with fake(runtime)._kernel("c") as k:
        k["frozen"] = True
    report = runtime.recover()
    assert [a.done for a in report.actions] == ["pause: now paused"]
    assert box.state is State.PAUSED and box.record.pending_event is None
    assert walk(box)[-1] == ("running", "pause", "paused")
    assert runtime.recover().actions == []


def test_recovery_after_a_reboot_stops_everything(runtime: Runtime, config: Config, boot_id_file: Path) -> None:
    runtime.create("created", config)
    runtime.create("running", config).start()
    paused = runtime.create("paused", config)
    paused.start()
    paused.pause()
    fake(runtime).reboot()
    boot_id_file.write_text("boot-2\n")
    report = runtime.recover()
    assert sorted(a.container_id for a in report.actions) == ["created", "paused", "running"]
    for cid in ("created", "running", "paused"):
        box = runtime.load(cid)
        assert box.state is State.STOPPED
        assert box.exit_status is None
        assert box.history()[-1].detail.get("exit") == "unknown"
        assert "host restarted" in box.history()[-1].detail["exit_unknown_reason"]
    assert runtime.recover().actions == []


def test_recovery_leaves_locked_containers_alone(runtime: Runtime, config: Config) -> None:
    box = runtime.create("c", config)
    record = box.record
    runtime.context.store.update(record.key, record.version, pending_event="start")
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(str(runtime.root), "c", ready, release))
    holder.start()
    try:
        assert ready.wait(30)
        report = runtime.recover()
        assert report.busy == ["c"] and report.actions == []
    finally:
        release.set()
        holder.join(30)
    report = runtime.recover()
    assert [a.container_id for a in report.actions] == ["c"]


def _hold_lock(root: str, cid: str, ready, release) -> None:
    from corral.statemachine.locks import Locks

    with Locks(Path(root)).hold(cid):
        ready.set()
        release.wait(30)


def test_an_open_finishes_interrupted_intents_and_leaves_the_rest_to_recover(
    runtime: Runtime, config: Config, tmp_path: Path, kernel_dir: Path, boot_id_file: Path
) -> None:
    """Opening costs O(intents) (issue 15): an exit nobody observed waits for a look or recover()."""
    interrupted = runtime.create("interrupted", config)
    interrupted.start()
    record = interrupted.record
    runtime.context.store.update(record.key, record.version, pending_event="pause")  # a controller died here
    quiet = runtime.create("quiet", config)
    quiet.start()
    fake(runtime).make_exit("quiet", status=3, monitor_records=False)  # its init exits; nobody looks (no monitor)
    other = make_runtime(tmp_path, kernel_dir, boot_id_file)
    try:
        assert other.last_recovery is not None
        assert [a.container_id for a in other.last_recovery.actions] == ["interrupted"]
        assert other.context.store.find("interrupted").pending_event is None  # type: ignore[union-attr]
        assert other.context.store.find("quiet").state == "running"  # type: ignore[union-attr]  # not looked at
        report = other.recover()  # the full reconcile does look
        assert [a.container_id for a in report.actions] == ["quiet"]
        assert other.load("quiet").state is State.STOPPED
    finally:
        other.close()
    boot_id_file.write_text("boot-2\n")  # a host restart: the open is the full recovery again
    rebooted = make_runtime(tmp_path, kernel_dir, boot_id_file)
    try:
        assert rebooted.last_recovery is not None
        actions = rebooted.last_recovery.actions
        assert [a.container_id for a in actions] == ["interrupted", "quiet"]  # every live record
        assert all("host restarted" in a.found for a in actions)
    finally:
        rebooted.close()
