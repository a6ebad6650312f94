"""More tests that kill mutations surviving the fast suite (issue 10, item 7; see tests/README.md).

Each test names the mutation it kills. They run on the fake executor, without root.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from corral import Process, Runtime, State
from corral.config import Config
from corral.errors import InvalidTransition, WaitTimeout
from corral.executor.interface import ContainerFacts, OOMEvent, Stdio
from corral.statemachine.orphans import Orphan
from corral.statemachine.recovery import RecoveryAction, RecoveryReport
from corral.store.repository import utcnow
from tests.fakes import FakeExecutor
from tests.unit.conftest import make_runtime


def _fake(runtime: Runtime) -> FakeExecutor:
    executor = runtime.context.executor
    assert isinstance(executor, FakeExecutor)
    return executor


# -- recovery: what it reports, per path of _recover_one ---------------------------


def test_recovery_of_an_interrupted_create_reports_the_rollback(
    runtime: Runtime, config: Config, tmp_path: Path
) -> None:
    """Kills: mutations of the creating branch's `found`/`done` texts and its destroy reason."""
    runtime.context.store.insert(
        container_id="half", state="creating", pending_event="create", config=config.to_json(),
        bundle=None, run_dir=str(tmp_path / "run" / "half"), boot_id="boot-1",
        cgroup_paths={"fake": "/fake-cgroup/corral/half"}, journal_event="create",
    )
    report = runtime.recover()
    assert report.actions == [
        RecoveryAction(
            "half",
            "creating, create interrupted",
            "rolled back: processes killed, cgroups and run dir removed, destroyed",
        )
    ]
    box = runtime.load("half")
    assert box.state is State.DESTROYED
    reason = "create interrupted (its controller died); finished by recovery"
    assert box.history()[-1].detail["reason"] == reason
    assert box.record.last_error == reason


def test_recovery_completes_an_interrupted_destroy(
    runtime: Runtime, config: Config, tmp_path: Path, kernel_dir: Path, boot_id_file: Path
) -> None:
    """Kills: the `pending == "destroy"` test, and the destroy branch's texts."""
    box = runtime.create("c", config)
    box.start()
    record = box.record
    runtime.context.store.update(record.key, record.version, pending_event="destroy", pending_since=utcnow())
    other = make_runtime(tmp_path, kernel_dir, boot_id_file)
    try:
        assert other.last_recovery is not None
        assert other.last_recovery.for_container("c") == [
            RecoveryAction("c", "running, destroy interrupted", "destroy completed")
        ]
        after = other.load("c")
        assert after.state is State.DESTROYED
        assert not _fake(other).leaked("c")
        reason = "destroy interrupted (its controller died); finished by recovery"
        assert after.history()[-1].detail["reason"] == reason
    finally:
        other.close()


def test_recovery_after_a_reboot_removes_leftovers_and_clears_the_intent(
    runtime: Runtime, config: Config, boot_id_file: Path
) -> None:
    """Kills: the reboot branch's leftovers removal and intent clearing, and its texts."""
    box = runtime.create("c", config)
    box.start()
    _fake(runtime).make_exit("c", 3)
    assert box.state is State.STOPPED
    record = box.record
    runtime.context.store.update(record.key, record.version, pending_event="signal", pending_since=utcnow())
    _fake(runtime).reboot()
    with _fake(runtime)._kernel("c") as k:  # what a reboot would not remove: a persistent cgroup, say
        k.update(cgroups=True, run_dir=True)
    boot_id_file.write_text("boot-2\n")
    leftovers = _fake(runtime).leftovers(box._recipe.facts())  # type: ignore[attr-defined]
    assert len(leftovers) == 2
    report = runtime.recover()
    assert report.actions == [
        RecoveryAction(
            "c",
            "stopped, signal interrupted, host restarted since",
            "removed " + ", ".join(leftovers) + "; cleared the signal intent",
        )
    ]
    assert not _fake(runtime).leaked("c")
    after = box.record
    assert (after.state, after.pending_event, after.pending_since, after.exit_status) == ("stopped", None, None, 3)
    assert runtime.recover().actions == []


def test_recovery_after_a_reboot_of_a_live_record_says_the_status_is_unknown(
    runtime: Runtime, config: Config, boot_id_file: Path
) -> None:
    """Kills: the reboot branch's `init_alive` test and its `done` text."""
    box = runtime.create("c", config)
    box.start()
    _fake(runtime).reboot()
    boot_id_file.write_text("boot-2\n")
    report = runtime.recover()
    assert report.actions == [RecoveryAction("c", "running, host restarted since", "stopped (exit status unknown)")]
    assert box.record.state == "stopped"


def test_recovery_records_an_exit_the_kernel_saw(runtime: Runtime, config: Config) -> None:
    """Kills: recovery recording `exited` without the kernel's exit status."""
    box = runtime.create("c", config)
    box.start()
    _fake(runtime).make_exit("c", 3, monitor_records=False)
    report = runtime.recover()
    assert report.actions == [RecoveryAction("c", "running", "exited: now stopped")]
    record = box.record
    assert (record.state, record.exit_status) == ("stopped", 3)
    entry = box.history()[-1]
    assert (entry.from_state, entry.event, entry.to_state) == ("running", "exited", "stopped")


def test_recovery_records_a_start_the_kernel_already_did(runtime: Runtime, config: Config) -> None:
    """Kills: recovery redoing the kernel work, or losing its `recovered` detail."""
    box = runtime.create("c", config)
    record = box.record
    runtime.context.store.update(record.key, record.version, pending_event="start", pending_since=utcnow())
    with _fake(runtime)._kernel("c") as k:
        k["fifo"] = False  # the init exec'd: started, though the record never said so
    calls_before = list(_fake(runtime).calls)
    report = runtime.recover()
    assert report.actions == [RecoveryAction("c", "created, start interrupted", "start: now running")]
    assert _fake(runtime).calls == calls_before  # no second start asked of the kernel
    entry = box.history()[-1]
    assert (entry.event, entry.detail) == ("start", {"recovered": "the kernel says running"})
    assert (box.record.state, box.record.pending_event) == ("running", None)


def test_recovery_reports_a_kernel_state_no_event_reaches(runtime: Runtime, config: Config) -> None:
    """Kills: the `event is None` check and its message, and the `failed` entry's texts."""
    box = runtime.create("c", config)
    box.start()
    box.pause()
    with _fake(runtime)._kernel("c") as k:  # not frozen, and the init waits on its fifo again
        k.update(frozen=False, fifo=True)
    version = box.record.version
    report = runtime.recover()
    assert report.actions == []
    assert report.failed == [
        RecoveryAction(
            "c",
            "recovery failed",
            "container 'c': recorded paused but the kernel says created, and no event of the lifecycle leads there",
        )
    ]
    assert box.record.version == version and box.record.state == "paused"


def test_a_recovery_report_changed_only_by_actions_or_removed_orphans() -> None:
    """Kills: mutations of RecoveryReport.changed and for_container."""
    assert not RecoveryReport().changed
    assert not RecoveryReport(orphans=[Orphan("x", "/run/x", "left alone: busy")]).changed
    assert RecoveryReport(orphans=[Orphan("x", "/run/x", "removed")]).changed
    a, b = RecoveryAction("a", "f", "d"), RecoveryAction("b", "f", "d")
    report = RecoveryReport(actions=[a, b])
    assert report.changed
    assert report.for_container("b") == [b]
    assert report.for_container("z") == []


# -- Container: the calls no other unit test makes ---------------------------------


class _Recording(FakeExecutor):
    """Records what signal, exec and wait were asked, and yields OOM events a test puts in."""

    signals: list[tuple[int, bool]]
    stdios: list[Stdio]
    waits: list[float | None]
    ooms: list[OOMEvent]

    def signal(self, facts: ContainerFacts, sig: int, all_processes: bool = False) -> None:
        self.signals.append((sig, all_processes))
        super().signal(facts, sig, all_processes)

    def exec(self, facts: ContainerFacts, process: Process, stdio: Stdio) -> Any:
        self.stdios.append(stdio)
        return super().exec(facts, process, stdio)

    def wait(self, facts: ContainerFacts, timeout: float | None) -> Any:
        self.waits.append(timeout)
        return super().wait(facts, timeout)

    def oom_events(self, facts: ContainerFacts, stop: Callable[[], bool] | None = None) -> Iterator[OOMEvent]:
        return iter(self.ooms)


@pytest.fixture
def recording(tmp_path: Path, boot_id_file: Path) -> Iterator[tuple[Runtime, _Recording]]:
    executor = _Recording(tmp_path / "kernel")
    executor.signals, executor.stdios, executor.waits, executor.ooms = [], [], [], []
    rt = Runtime(tmp_path / "root", executor, run_root=tmp_path / "run", boot_id_file=boot_id_file)
    yield rt, executor
    rt.close()


def test_a_container_repr_names_its_id_and_recorded_state(runtime: Runtime, config: Config) -> None:
    box = runtime.create("c", config)
    assert repr(box) == "<Container 'c' created>"


def test_leaving_a_with_block_destroys_unless_kept(runtime: Runtime, config: Config) -> None:
    """Kills: mutations of Container.__exit__ (`keep`, the destroyed test, force)."""
    with runtime.create("a", config) as a:
        a.start()
    assert a.record.state == "destroyed" and not _fake(runtime).leaked("a")
    with runtime.create("b", config) as b:
        b.keep = True
    assert b.record.state == "created"
    with runtime.create("d", config) as d:
        d.destroy(force=True)  # already destroyed: leaving the block must not try again
    assert d.record.state == "destroyed"


def test_pid_is_the_init_s_while_alive_and_none_after(runtime: Runtime, config: Config) -> None:
    box = runtime.create("c", config)
    assert box.pid == box.record.init_pid and box.pid is not None
    box.destroy(force=True)
    assert box.record.init_pid is not None and box.pid is None


def test_signal_defaults_to_sigterm_of_the_init_only(
    recording: tuple[Runtime, _Recording], config: Config
) -> None:
    """Kills: another default signal or `all_processes` for Container.signal, and `events.signal`'s detail."""
    rt, executor = recording
    box = rt.create("c", config)
    box.start()
    box.signal(signal.SIGUSR1, all_processes=True)
    box.signal()
    assert executor.signals == [(signal.SIGUSR1, True), (signal.SIGTERM, False)]
    details = [e.detail for e in box.history() if e.event == "signal"]
    assert details == [{"signal": signal.SIGUSR1, "all": True}, {"signal": signal.SIGTERM, "all": False}]


def test_exec_without_stdio_hands_the_executor_an_empty_stdio(
    recording: tuple[Runtime, _Recording], config: Config
) -> None:
    rt, executor = recording
    box = rt.create("c", config)
    box.start()
    box.exec(Process(args=("true",)))
    assert executor.stdios == [Stdio()]


def test_wait_passes_its_timeout_and_records_the_exit(
    recording: tuple[Runtime, _Recording], config: Config
) -> None:
    """Kills: Container.wait dropping its timeout, or not firing `exited` after the wait."""
    rt, executor = recording
    box = rt.create("c", config)
    box.start()
    with pytest.raises(WaitTimeout):
        box.wait(0.05)
    assert executor.waits == [0.05]
    assert box.record.state == "running"
    _fake(rt).make_exit("c", 5, monitor_records=False)
    assert box.wait(7) == 5
    assert executor.waits == [0.05, 7]
    assert box.record.state == "stopped"  # recorded by wait itself (the record was read before it)
    assert box.history()[-1].event == "exited"
    assert box.wait() == 5 and executor.waits == [0.05, 7]  # stopped: the record answers, not the kernel


def test_stop_ends_a_running_container_with_sigterm(recording: tuple[Runtime, _Recording], config: Config) -> None:
    rt, executor = recording
    box = rt.create("c", config)
    box.start()
    assert box.stop(timeout=5) == 128 + signal.SIGTERM
    assert executor.signals == [(signal.SIGTERM, False)]
    assert executor.waits == [5]
    assert box.record.state == "stopped"


def test_stop_kills_what_outlives_the_timeout(recording: tuple[Runtime, _Recording], config: Config) -> None:
    """A paused container's SIGTERM waits for a resume that does not come: SIGKILL ends it."""
    rt, executor = recording
    box = rt.create("c", config)
    box.start()
    box.pause()
    assert box.stop(timeout=0.05) == 128 + signal.SIGKILL
    assert executor.signals == [(signal.SIGTERM, False), (signal.SIGKILL, False)]
    assert executor.waits[0] == 0.05
    assert box.record.state == "stopped"


def test_stop_leaves_a_stopped_container_alone(recording: tuple[Runtime, _Recording], config: Config) -> None:
    rt, executor = recording
    box = rt.create("c", config)
    box.start()
    _fake(rt).make_exit("c", 4)
    assert box.stop() == 4
    assert executor.signals == []


def test_stop_of_an_init_that_exits_before_the_sigterm(
    recording: tuple[Runtime, _Recording], config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The init exits between stop's check and its SIGTERM: the refused signal is not an error."""
    rt, executor = recording
    box = rt.create("c", config)
    box.start()
    _fake(rt).make_exit("c", 6)
    monkeypatch.setattr(box, "refresh", lambda: State.RUNNING)  # what stop saw just before the exit
    assert box.stop() == 6
    assert executor.signals == []


def test_stop_of_an_init_that_exits_before_the_sigkill(
    recording: tuple[Runtime, _Recording], config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The init exits on its own once SIGTERM's wait timed out: the refused SIGKILL is not an error."""
    rt, executor = recording
    box = rt.create("c", config)
    box.start()
    box.pause()
    real_wait = box.wait

    def wait(timeout: float | None = None) -> int | None:
        if timeout is not None:
            _fake(rt).make_exit("c", 8)
            raise WaitTimeout("container 'c'", timeout)
        return real_wait(timeout)

    monkeypatch.setattr(box, "wait", wait)
    assert box.stop(timeout=0.01) == 8
    assert executor.signals == [(signal.SIGTERM, False)]


def test_oom_events_are_journalled_and_yielded(recording: tuple[Runtime, _Recording], config: Config) -> None:
    """Kills: oom_events not firing `oom`, or losing the count; a gone init does not stop the stream."""
    rt, executor = recording
    box = rt.create("c", config)
    box.start()
    executor.ooms = [OOMEvent("c", 1), OOMEvent("c", 2)]
    got = []
    for event in box.oom_events():
        got.append(event)
        _fake(rt).make_exit("c", 137, signal.SIGKILL)  # after the first: `oom` is refused, not raised
    assert got == executor.ooms
    ooms = [e for e in box.history() if e.event == "oom"]
    assert [(e.from_state, e.to_state, e.detail) for e in ooms] == [("running", "running", {"oom_kills": 1})]


def test_destroy_without_force_refuses_a_live_container(runtime: Runtime, config: Config) -> None:
    box = runtime.create("c", config)
    with pytest.raises(InvalidTransition):
        box.destroy()
    assert box.record.state == "created"


# -- Runtime ----------------------------------------------------------------------


def test_an_unreadable_boot_id_is_a_corral_error_naming_the_file(
    runtime: Runtime, boot_id_file: Path
) -> None:
    from corral.errors import CorralError

    assert runtime.boot_id() == "boot-1"
    boot_id_file.unlink()
    with pytest.raises(CorralError, match=f"cannot read the boot id from {boot_id_file}: "):
        runtime.boot_id()


def test_create_refuses_what_is_not_a_config(runtime: Runtime) -> None:
    from corral.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        runtime.create("c", {"process": {}})  # type: ignore[arg-type]
    assert (info.value.where, str(info.value)) == ("config", "config: must be a corral.Config, not dict")
    assert runtime.list(include_destroyed=True) == []


def test_a_failed_rollback_is_noted_on_the_create_error(runtime: Runtime, config: Config) -> None:
    """Kills: Runtime.create dropping the note that its cleanup failed too."""
    from corral.errors import ExecutorError

    _fake(runtime).fail_next("spawn", ExecutorError("no spawn"))
    _fake(runtime).fail_next("destroy", ExecutorError("no kill"))
    with pytest.raises(ExecutorError, match="no spawn") as info:
        runtime.create("c", config)
    notes = getattr(info.value, "__notes__", [])
    assert len(notes) == 1 and notes[0].startswith("cleaning up also failed: ")
    assert "no kill" in notes[0] and notes[0].endswith("; Runtime.recover() retries")


def test_load_names_the_missing_id_and_the_root(runtime: Runtime) -> None:
    from corral.errors import ContainerNotFound

    with pytest.raises(ContainerNotFound, match=f"container 'nope' does not exist in {runtime.root}$"):
        runtime.load("nope")


def test_list_leaves_out_tombstones_unless_asked(runtime: Runtime, config: Config) -> None:
    runtime.create("a", config)
    runtime.create("b", config).destroy(force=True)
    assert [c.id for c in runtime.list()] == ["a"]
    assert sorted(c.id for c in runtime.list(include_destroyed=True)) == ["a", "b"]


def test_a_runtime_opened_without_recovery_has_no_report(tmp_path: Path, boot_id_file: Path) -> None:
    with Runtime(
        tmp_path / "root", FakeExecutor(tmp_path / "k"), run_root=tmp_path / "run",
        boot_id_file=boot_id_file, recover=False,
    ) as rt:
        assert rt.last_recovery is None
    with Runtime(tmp_path / "root", FakeExecutor(tmp_path / "k"), run_root=tmp_path / "run", boot_id_file=boot_id_file) as rt:
        assert rt.last_recovery is not None


def test_close_closes_the_executor(tmp_path: Path, boot_id_file: Path) -> None:
    closed: list[bool] = []

    class Closing(FakeExecutor):
        def close(self) -> None:
            closed.append(True)

    rt = Runtime(tmp_path / "root", Closing(tmp_path / "k"), run_root=tmp_path / "run", boot_id_file=boot_id_file)
    with rt:
        pass
    assert closed == [True]


def test_the_runtime_keeps_the_most_recent_containers_alive(runtime: Runtime, config: Config) -> None:
    """Kills: mutations of the RECENT_CONTAINERS bound (keeping one fewer or one more alive)."""
    import gc
    import weakref

    from corral.statemachine.runtime import RECENT_CONTAINERS

    for i in range(RECENT_CONTAINERS + 1):
        runtime.context.store.insert(
            container_id=f"c{i}", state="created", pending_event=None, config=config.to_json(),
            bundle=None, run_dir=f"/run/c{i}", boot_id="boot-1", cgroup_paths={}, journal_event="create",
        )
    refs = [weakref.ref(runtime.load(f"c{i}")) for i in range(RECENT_CONTAINERS + 1)]
    gc.collect()
    assert [r() is None for r in refs] == [True] + [False] * RECENT_CONTAINERS
    assert runtime.load(f"c{RECENT_CONTAINERS}") is refs[-1]()


# -- the transition recipe --------------------------------------------------------


def test_a_refusal_hints_at_force_only_when_force_would_help(runtime: Runtime, config: Config) -> None:
    """Kills: mutations of `_fire_on`'s hint (`needs_force` test, its text)."""
    box = runtime.create("c", config)
    box.start()
    with pytest.raises(InvalidTransition) as needs:
        box.destroy()
    assert str(needs.value) == (
        "cannot destroy container 'c': it is running; allowed in running: pause, exec, signal, update; pass force=True"
    )
    with pytest.raises(InvalidTransition) as plain:
        box.start()
    assert str(plain.value) == "cannot start container 'c': it is running; allowed in running: pause, exec, signal, update"


def test_a_forced_destroy_does_not_first_record_an_exit(runtime: Runtime, config: Config) -> None:
    """Kills: `fire` observing the exit before `destroy` too (an extra `exited` row, from another state)."""
    box = runtime.create("c", config)
    box.start()
    _fake(runtime).make_exit("c", 3, monitor_records=False)
    box.destroy(force=True)
    walk = [(e.from_state, e.event, e.to_state) for e in box.history()]
    assert walk[-1] == ("running", "destroy", "destroyed")
    assert "exited" not in [event for _, event, _ in walk]
    assert box.record.exit_status == 3


def test_a_created_container_s_spawn_is_confirmed_once_recorded(runtime: Runtime, config: Config) -> None:
    """Kills: the recipe not running the step's `on_recorded` hook (the monitor would kill the init)."""
    runtime.create("c", config)
    [spawned] = _fake(runtime).spawned
    assert spawned.confirmed and not spawned.aborted


def test_state_info_of_a_state_outside_the_table_names_it() -> None:
    """Kills: `state_info` raising a KeyError that does not name the state."""
    from corral.statemachine.lifecycle import state_info

    with pytest.raises(KeyError) as info:
        state_info("limbo")  # type: ignore[arg-type]
    assert info.value.args == ("limbo",)


def test_every_facts_the_recipe_hands_the_executor_carry_the_config(
    tmp_path: Path, boot_id_file: Path, config: Config
) -> None:
    """Kills: `Recipe.facts` leaving the config out (the real executor reads it: hooks, exec's namespaces)."""
    seen: list[object] = []

    class Checking(FakeExecutor):
        def alive(self, facts: ContainerFacts) -> bool:
            seen.append(facts.config)
            return super().alive(facts)

        def wait(self, facts: ContainerFacts, timeout: float | None) -> Any:
            seen.append(facts.config)
            return super().wait(facts, timeout)

        def processes(self, facts: ContainerFacts) -> list[int]:
            seen.append(facts.config)
            return super().processes(facts)

    with Runtime(tmp_path / "root", Checking(tmp_path / "k"), run_root=tmp_path / "run", boot_id_file=boot_id_file) as rt:
        box = rt.create("c", config)
        box.start()
        assert box.state is State.RUNNING
        box.processes()
        box.signal(signal.SIGKILL)
        box.wait(5)
    assert len(seen) >= 3 and all(c == config for c in seen)


def test_create_records_the_init_s_namespaces(
    runtime: Runtime, config: Config, tmp_path: Path, kernel_dir: Path, boot_id_file: Path
) -> None:
    """Kills: `_persist` not writing the step's namespaces (exec and the CLI's state need them)."""
    from corral.store.repository import NamespaceRecord

    box = runtime.create("c", config)
    [spawned] = _fake(runtime).spawned
    expected = {
        t: NamespaceRecord(path, spawned.facts.namespace_inodes[t]) for t, path in spawned.facts.namespaces.items()
    }
    assert len(expected) == 3
    assert box.record.namespaces == expected
    box.start()  # a later step, which has no namespaces of its own, keeps them
    other = make_runtime(tmp_path, kernel_dir, boot_id_file)
    try:
        assert other.load("c").record.namespaces == expected
    finally:
        other.close()


def test_a_recorded_outcome_clears_the_whole_intent(runtime: Runtime, config: Config) -> None:
    """Kills: `_persist` leaving `pending_since` behind (recovery and `state` would see a stale intent)."""
    box = runtime.create("c", config)
    assert (box.record.pending_event, box.record.pending_since) == (None, None)
    for step in (box.start, box.pause, box.resume):
        step()
        assert (box.record.pending_event, box.record.pending_since) == (None, None), step


def test_each_recorded_transition_is_logged_at_debug(
    runtime: Runtime, config: Config, caplog: pytest.LogCaptureFixture
) -> None:
    """Kills: mutations of `_persist`'s debug line (its text and each of its arguments)."""
    import logging

    box = runtime.create("c", config)
    box.start()
    with caplog.at_level(logging.DEBUG, logger="corral"):
        box.signal(signal.SIGUSR1)
        box.pause()
    lines = [r.getMessage() for r in caplog.records if r.name == "corral" and r.levelno == logging.DEBUG]
    assert lines == [
        f"container c: signal: running -> running {{'signal': {int(signal.SIGUSR1)}, 'all': False}}",
        "container c: pause: running -> paused ",
    ]


def test_the_lifecycle_reaches_its_named_fault_points_in_order(
    runtime: Runtime, config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kills: any `faults.point(...)` of the lifecycle renamed, dropped or moved (the fault tests need root)."""
    from corral import faults

    reached: list[str] = []
    monkeypatch.setattr(faults, "point", reached.append)
    box = runtime.create("c", config)
    box.start()
    box.pause()
    box.resume()
    box.exec(Process(args=("true",)))
    box.signal(signal.SIGUSR1)
    box.destroy(force=True)
    assert reached == [
        "create.intent", "create.recorded",
        "start.intent", "start.recorded",
        "pause.intent", "pause.recorded",
        "resume.intent", "resume.recorded",
        "exec.intent", "exec.spawned", "exec.recorded",
        "signal.intent", "signal.sent", "signal.recorded",
        "destroy.intent", "destroy.run-dir-removed", "destroy.recorded",
    ]
    assert set(reached) <= set(faults.POINTS) | {"signal.recorded"}


def test_a_loaded_container_s_config_keeps_its_bundle(
    runtime: Runtime, tmp_path: Path, kernel_dir: Path, boot_id_file: Path
) -> None:
    """Kills: `Recipe.config_of` parsing the stored config without its bundle (relative paths resolve there)."""
    import dataclasses

    from tests.unit.conftest import simple_config

    bundle = tmp_path / "bundle"
    bundle.mkdir()
    config = dataclasses.replace(simple_config(tmp_path), bundle=str(bundle))
    runtime.create("c", config)
    other = make_runtime(tmp_path, kernel_dir, boot_id_file)
    try:
        assert other.load("c").config.bundle == str(bundle)
    finally:
        other.close()


def test_a_machine_that_does_not_fire_is_a_bug_that_says_so(
    runtime: Runtime, config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kills: mutations of `_fire_on`'s guard for a table and machine that disagree."""
    from corral.errors import CorralError

    box = runtime.create("c", config)
    recipe = box._recipe  # type: ignore[attr-defined]
    monkeypatch.setattr(recipe._model, "trigger", lambda *args, **kwargs: False)
    with pytest.raises(CorralError) as info:
        box.start()
    assert str(info.value) == "start did not fire for container 'c' in created"


def test_the_intent_records_since_when(tmp_path: Path, boot_id_file: Path, config: Config) -> None:
    """Kills: `_kernel_work` recording the intent without its `pending_since` (recovery's "since when")."""
    import datetime

    from corral.store.repository import Repository

    root = tmp_path / "root"
    seen: list[tuple[str | None, object]] = []

    class Witness(FakeExecutor):
        def freeze(self, facts: ContainerFacts) -> None:
            store = Repository(root)
            try:
                record = store.find(facts.id)
                assert record is not None
                seen.append((record.pending_event, record.pending_since))
            finally:
                store.close()
            super().freeze(facts)

    with Runtime(root, Witness(tmp_path / "k"), run_root=tmp_path / "run", boot_id_file=boot_id_file) as rt:
        box = rt.create("c", config)
        box.start()
        before = utcnow()
        box.pause()
    [(pending, since)] = seen
    assert pending == "pause"
    assert isinstance(since, datetime.datetime) and abs((since - before).total_seconds()) < 60


def test_stop_waits_ten_seconds_by_default(recording: tuple[Runtime, _Recording], config: Config) -> None:
    """Kills: another default timeout for Container.stop (docker stop's is 10 s)."""
    rt, executor = recording
    box = rt.create("c", config)
    box.start()
    assert box.stop() == 128 + signal.SIGTERM
    assert executor.waits == [10]


def test_exec_checks_its_terminal_and_console_before_anything_runs(
    recording: tuple[Runtime, _Recording], config: Config
) -> None:
    """Kills: mutations of Container.exec's `check_console` call (each argument, `where`, `call`)."""
    from corral.errors import ConfigError

    rt, executor = recording
    box = rt.create("c", config)
    box.start()
    journal = len(box.history())
    with pytest.raises(ConfigError) as no_console:
        box.exec(Process(args=("sh",), terminal=True))
    assert str(no_console.value).startswith("process.terminal: is true, so the process gets a new terminal: ")
    assert "pass console=True to Container.exec " in str(no_console.value)
    with pytest.raises(ConfigError) as no_terminal:
        box.exec(Process(args=("sh",)), console=True)
    assert str(no_terminal.value) == (
        "process.terminal: is false, but console=True was passed to Container.exec: set terminal to true for a terminal"
    )
    with pytest.raises(ConfigError) as both:
        box.exec(Process(args=("sh",), terminal=True), console=True, stdio=Stdio(stdout=1))
    assert str(both.value).startswith("stdio: process.terminal is true: ")
    assert executor.stdios == [] and len(box.history()) == journal


def test_wait_records_the_status_its_wait_returned(tmp_path: Path, boot_id_file: Path, config: Config) -> None:
    """Kills: Container.wait recording `exited` without the status the executor's wait returned."""
    from corral.executor.interface import ExitStatus

    class LosesTheStatus(FakeExecutor):
        """Only the wait sees the status (as when the monitor reaped the init): asked again, it is unknown."""

        def exit_status(self, facts: ContainerFacts) -> ExitStatus:
            return ExitStatus.unknown("asked too late")

        def wait(self, facts: ContainerFacts, timeout: float | None) -> ExitStatus:
            super().wait(facts, timeout)
            return ExitStatus(5)

    with Runtime(tmp_path / "root", LosesTheStatus(tmp_path / "k"), run_root=tmp_path / "run", boot_id_file=boot_id_file) as rt:
        box = rt.create("c", config)
        box.start()
        rt.context.executor.make_exit("c", 5)  # type: ignore[attr-defined]
        assert box.wait(5) == 5
        assert box.record.exit_status == 5


def test_a_loaded_container_holds_no_console(
    runtime: Runtime, config: Config, tmp_path: Path, kernel_dir: Path, boot_id_file: Path
) -> None:
    """Kills: Container.__init__ starting `console_fd` as anything but None (only create's caller gets one)."""
    assert runtime.create("c", config).console_fd is None
    other = make_runtime(tmp_path, kernel_dir, boot_id_file)  # its Containers are made by load and list
    try:
        assert other.load("c").console_fd is None
    finally:
        other.close()


def test_create_checks_its_terminal_and_console_before_anything_is_made(
    runtime: Runtime, tmp_path: Path
) -> None:
    """Kills: mutations of Runtime.create's `check_console` call (each argument, `where`, `call`)."""
    import dataclasses

    from corral.errors import ConfigError
    from tests.unit.conftest import simple_config

    plain = simple_config(tmp_path)
    tty = dataclasses.replace(plain, process=dataclasses.replace(plain.process, terminal=True))
    with pytest.raises(ConfigError) as no_console:
        runtime.create("a", tty)
    assert str(no_console.value).startswith("process.terminal: is true, so the process gets a new terminal: ")
    assert "pass console=True to Runtime.create " in str(no_console.value)
    with pytest.raises(ConfigError) as no_terminal:
        runtime.create("b", plain, console=True)
    assert str(no_terminal.value) == (
        "process.terminal: is false, but console=True was passed to Runtime.create: set terminal to true for a terminal"
    )
    with pytest.raises(ConfigError) as both:
        runtime.create("c", tty, console=True, stdio=Stdio(stdout=1))
    assert str(both.value).startswith("stdio: process.terminal is true: ")
    assert runtime.list(include_destroyed=True) == [] and _fake(runtime).spawned == []


def test_create_hands_the_executor_its_id_run_dir_and_stdio(tmp_path: Path, boot_id_file: Path, config: Config) -> None:
    """Kills: Runtime.create planning without the id or the run dir, or spawning without the caller's stdio."""
    plans: list[tuple[str, str, str]] = []
    stdios: list[Stdio] = []

    class Witness(FakeExecutor):
        def plan(self, container_id: str, config: Config, run_dir: str, store_root: str) -> Any:
            plans.append((container_id, run_dir, store_root))
            return super().plan(container_id, config, run_dir, store_root)

        def spawn(self, facts: ContainerFacts, stdio: Stdio) -> Any:
            stdios.append(stdio)
            return super().spawn(facts, stdio)

    with Runtime(tmp_path / "root", Witness(tmp_path / "k"), run_root=tmp_path / "run", boot_id_file=boot_id_file) as rt:
        stdio = Stdio(stdout=1)
        box = rt.create("c", config, stdio=stdio)
        assert plans == [("c", str(tmp_path / "run" / "c"), str(tmp_path / "root"))]
        assert stdios == [stdio]
        assert box.record.run_dir == str(tmp_path / "run" / "c")


class _FailingHooks(FakeExecutor):
    """Its spawn fails as a failing createRuntime hook does: HookFailed carrying how each hook ended."""

    HOOKS = (
        {"kind": "prestart", "path": "/bin/ok", "exit_status": 0, "signal": None, "timed_out": False, "duration_ms": 1.0},
        {"kind": "createRuntime", "path": "/bin/no", "exit_status": 2, "signal": None, "timed_out": False,
         "duration_ms": 2.0, "error": "no"},
    )

    def spawn(self, facts: ContainerFacts, stdio: Stdio) -> Any:
        from corral.errors import HookFailed

        with self._kernel(facts.id) as k:
            k.update(cgroups=True, run_dir=True)
        raise HookFailed("running the createRuntime hooks: /bin/no exited 2", container_id=facts.id, hooks=self.HOOKS)


def test_a_failed_creates_rollback_journals_the_hooks_that_ran(tmp_path: Path, boot_id_file: Path) -> None:
    """Kills runtime.create__mutmut_80/_81: the rollback's destroy row losing the hooks create ran."""
    from corral.errors import HookFailed

    rt = Runtime(tmp_path / "root", _FailingHooks(tmp_path / "kernel"), run_root=tmp_path / "run", boot_id_file=boot_id_file)
    try:
        with pytest.raises(HookFailed):
            rt.create("c", Config.from_dict({"ociVersion": "1.2.0", "process": {"args": ["sh"], "cwd": "/"},
                                             "root": {"path": str(tmp_path)}}))
        [tomb] = rt.list(include_destroyed=True)
        last = tomb.history()[-1]
        assert (last.event, last.to_state) == ("destroy", "destroyed")
        assert last.detail["hooks"] == [dict(h) for h in _FailingHooks.HOOKS]
    finally:
        rt.close()
