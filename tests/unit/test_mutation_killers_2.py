"""More tests that kill mutations surviving the fast suite (issue 10, item 7; see tests/README.md).

Each test names the mutation it kills. They run on the fake executor, without root.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from corral import Runtime, State
from corral.config import Config
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
    _fake(runtime).make_exit("c", 3)
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
