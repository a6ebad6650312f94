"""Tests that kill the mutants of statemachine/recovery.py that survived the unit suite (third run).

Each test names the mutant(s) it kills; each was re-run against its mutant
(`MUTANT_UNDER_TEST=<name>` in mutants/, see tests/README.md) and failed there.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import pytest

from corral import Runtime, State
from corral.config import Config, PidsResources, Resources
from corral.statemachine.locks import Locks
from corral.statemachine.recovery import RecoveryAction
from corral.store.repository import utcnow
from tests.fakes import FakeExecutor


def _fake(runtime: Runtime) -> FakeExecutor:
    executor = runtime.context.executor
    assert isinstance(executor, FakeExecutor)
    return executor


def _stopped(runtime: Runtime, config: Config, cid: str = "c") -> None:
    box = runtime.create(cid, config)
    box.start()
    _fake(runtime).make_exit(cid, 3)
    assert runtime.load(cid).state is State.STOPPED


def _interrupt(runtime: Runtime, cid: str, event: str) -> None:
    """What a controller killed in the middle of `event` leaves: the intent, recorded."""
    record = runtime.load(cid).record
    runtime.context.store.update(record.key, record.version, pending_event=event, pending_since=utcnow())


def test_full_recovery_does_not_lock_a_stopped_record_of_this_boot_without_an_intent(
    runtime: Runtime, config: Config
) -> None:
    """Kills: recover__mutmut_2 and _12 (the boot id compared is None), _may_need_work__mutmut_5
    (`pending_event is not None`): either takes the lock of a record with nothing to recover,
    so a live holder of that lock makes it `busy`."""
    _stopped(runtime, config)
    with Locks(runtime.root).hold("c") as got:  # another controller, in the middle of `c`
        assert got
        report = runtime.recover()
        assert (report.busy, report.actions, report.failed) == ([], [], [])
        _interrupt(runtime, "c", "signal")  # the control: with an intent it is looked at, so busy
        assert runtime.recover().busy == ["c"]


def test_recovery_clears_the_intent_of_a_stopped_record_of_this_boot(runtime: Runtime, config: Config) -> None:
    """Kills: _recover_one__mutmut_94 to _104 (the stopped, same boot, pending branch and its report)."""
    _stopped(runtime, config)
    _interrupt(runtime, "c", "signal")
    report = runtime.recover()
    assert report.actions == [RecoveryAction("c", "stopped, signal interrupted", "cleared the signal intent")]
    after = runtime.load("c").record
    assert (after.state, after.pending_event, after.pending_since, after.exit_status) == ("stopped", None, None, 3)
    assert after.last_error == "signal interrupted (its controller died); recovery found the kernel stopped"
    assert runtime.recover().actions == []


def _with_limits(config: Config) -> Config:
    return dataclasses.replace(config, resources=Resources(pids=PidsResources(10)))


def test_recovery_of_an_interrupted_update_rewrites_the_recorded_limits(runtime: Runtime, config: Config) -> None:
    """Kills: _recover_one__mutmut_136 to _150 (the update branch: its test, the resources it
    writes, to which container, its report) and _166 (how the report joins what was done)."""
    config = _with_limits(config)
    box = runtime.create("c", config)
    box.start()
    with _fake(runtime)._kernel("c") as k:  # some of the new limits reached the cgroup
        k["resources"] = {"pids": {"limit": 99}}
    _interrupt(runtime, "c", "update")
    report = runtime.recover()
    assert report.actions == [
        RecoveryAction(
            "c", "running, update interrupted", "rewrote the recorded linux.resources; cleared the update intent"
        )
    ]
    assert config.resources is not None
    assert _fake(runtime).kernel("c")["resources"] == json.loads(json.dumps(dataclasses.asdict(config.resources)))
    assert (box.record.state, box.record.pending_event) == ("running", None)


@pytest.mark.parametrize("event", ["pause", "signal"])
def test_recovery_of_another_intent_leaves_the_limits_alone(runtime: Runtime, config: Config, event: str) -> None:
    """Kills: _recover_one__mutmut_135 (`pending == "update" or ...`: every live record's
    limits rewritten, whatever was interrupted)."""
    box = runtime.create("c", _with_limits(config))
    box.start()
    with _fake(runtime)._kernel("c") as k:
        k["resources"] = {"pids": {"limit": 99}}  # not corral's to undo: no update was asked
    _interrupt(runtime, "c", event)
    report = runtime.recover()
    assert report.actions == [RecoveryAction("c", f"running, {event} interrupted", f"cleared the {event} intent")]
    assert _fake(runtime).kernel("c")["resources"] == {"pids": {"limit": 99}}


def test_recovery_logs_each_orphan_it_handled(
    runtime: Runtime, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    """Kills: recover__mutmut_18 to _27 (the log line that says what the sweep did, and to what)."""
    run_dir = runtime.run_root / "gone"
    run_dir.mkdir(parents=True)
    with caplog.at_level(logging.INFO, logger="corral"):
        report = runtime.recover()
    assert [(o.container_id, o.done) for o in report.orphans] == [("gone", "removed")]
    assert f"recovery: {run_dir} of container gone: removed" in caplog.messages


def test_recovery_reports_an_orphan_whose_id_is_locked_as_busy(runtime: Runtime) -> None:
    """Kills: recover__mutmut_29 (the sweep's busy ids dropped from the report)."""
    run_dir = runtime.run_root / "gone"
    run_dir.mkdir(parents=True)
    with Locks(runtime.root).hold("gone") as got:  # a controller in the middle of creating `gone`
        assert got
        report = runtime.recover()
    assert (report.busy, report.orphans) == (["gone"], [])
    assert run_dir.is_dir()
    assert [o.container_id for o in runtime.recover().orphans] == ["gone"]  # the control: unlocked, swept


def test_a_busy_record_does_not_stop_recovery_of_the_next(runtime: Runtime, config: Config) -> None:
    """Kills: _recover_records__mutmut_8 (`break` for `continue` after a busy record)."""
    for cid in ("a", "b"):
        _stopped(runtime, config, cid)
        _interrupt(runtime, cid, "signal")
    with Locks(runtime.root).hold("a") as got:  # the first record recovery meets is busy
        assert got
        report = runtime.recover()
    assert report.busy == ["a"]
    assert report.actions == [RecoveryAction("b", "stopped, signal interrupted", "cleared the signal intent")]


def test_a_failed_recovery_is_logged_as_a_warning_naming_the_container_and_why(
    runtime: Runtime, config: Config, caplog: pytest.LogCaptureFixture
) -> None:
    """Kills: _recover_records__mutmut_27, _28 and _32 (the warning's id, reason and text)."""
    box = runtime.create("c", config)
    box.start()
    box.pause()
    with _fake(runtime)._kernel("c") as k:  # not frozen, and the init waits on its fifo again
        k.update(frozen=False, fifo=True)
    with caplog.at_level(logging.WARNING, logger="corral"):
        report = runtime.recover()
    [failed] = report.failed
    assert [(r.levelno, r.getMessage()) for r in caplog.records if r.levelno >= logging.WARNING] == [
        (logging.WARNING, f"recovery of container c failed: {failed.done}")
    ]


def test_a_failed_record_does_not_stop_recovery_of_the_next_which_is_logged(
    runtime: Runtime, config: Config, caplog: pytest.LogCaptureFixture
) -> None:
    """Kills: _recover_records__mutmut_34 (`break` after a failed record) and _38 to _46 (the
    info line naming each recovered container, what recovery found and what it did)."""
    box = runtime.create("a", config)
    box.start()
    box.pause()
    with _fake(runtime)._kernel("a") as k:  # a kernel state no event of the table reaches
        k.update(frozen=False, fifo=True)
    _stopped(runtime, config, "b")
    _interrupt(runtime, "b", "signal")
    with caplog.at_level(logging.INFO, logger="corral"):
        report = runtime.recover()
    assert [f.container_id for f in report.failed] == ["a"]
    assert report.actions == [RecoveryAction("b", "stopped, signal interrupted", "cleared the signal intent")]
    assert "recovered container b: found stopped, signal interrupted; cleared the signal intent" in caplog.messages
