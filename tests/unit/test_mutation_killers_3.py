"""Tests that kill the mutants of statemachine/recovery.py that survived the unit suite (third run).

Each test names the mutant(s) it kills; each was re-run against its mutant
(`MUTANT_UNDER_TEST=<name>` in mutants/, see tests/README.md) and failed there.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


def _recover(runtime: Runtime, within: float = 10.0) -> Any:
    """`runtime.recover()`, failing (not hanging) if it waits on a lock this test holds:
    recovery must never block on one (a mutant that makes it block fails here, not by timeout)."""
    result: list[Any] = []
    worker = threading.Thread(target=lambda: result.append(runtime.recover()), daemon=True)
    worker.start()
    worker.join(within)
    assert not worker.is_alive(), f"recover() blocked for {within:g} s on a held lock"
    return result[0]


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
        report = _recover(runtime)
        assert (report.busy, report.actions, report.failed) == ([], [], [])
        _interrupt(runtime, "c", "signal")  # the control: with an intent it is looked at, so busy
        assert _recover(runtime).busy == ["c"]


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
        report = _recover(runtime)
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
        report = _recover(runtime)
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


# -- orphans.py: the tombstones' cgroup directories, on real (plain) directories ------------


class _RealDirs(FakeExecutor):
    """Plans each container's cgroup as a real directory under `cgroup_root` (named by its
    config's cgroups_path, else its id), so that the sweep's rmdir meets the filesystem."""

    cgroup_root: Path
    joined = False  # the container joins its (first) hierarchy's directory: none is created there
    hierarchies: tuple[str, ...] = ("fake",)

    def plan(self, container_id: str, config: Config, run_dir: str, store_root: str) -> Any:
        plan = super().plan(container_id, config, run_dir, store_root)
        name = (config.cgroups_path or container_id).strip("/")
        paths = {h: str(self.cgroup_root / h / name) for h in self.hierarchies}
        created = {h: (p,) for h, p in paths.items() if not (self.joined and h == self.hierarchies[0])}
        return dataclasses.replace(plan, cgroup_paths=paths, created_cgroups=created)


@pytest.fixture
def real_dirs(tmp_path: Path, boot_id_file: Path) -> Iterator[tuple[Runtime, _RealDirs]]:
    executor = _RealDirs(tmp_path / "kernel")
    executor.cgroup_root = tmp_path / "cgroups"
    rt = Runtime(tmp_path / "root", executor, run_root=tmp_path / "run", boot_id_file=boot_id_file)
    yield rt, executor
    rt.close()


def _tombstone(rt: Runtime, config: Config, cid: str, cgroups_path: str | None = None) -> Path:
    box = rt.create(cid, dataclasses.replace(config, cgroups_path=cgroups_path))
    box.destroy(force=True)
    return Path(next(iter(box.record.cgroup_paths.values())))


def test_a_tombstones_cgroup_directory_is_removed_children_first(
    real_dirs: tuple[Runtime, _RealDirs], config: Config
) -> None:
    """Kills: _rmdir_tree mutants (no unit test reached it): the walk bottom-up, each child's
    rmdir, the top's, and the report."""
    rt, _ = real_dirs
    path = _tombstone(rt, config, "t")
    (path / "a" / "b").mkdir(parents=True)  # what a failed removal left, child cgroups included
    (path / "c").mkdir()
    report = rt.recover()
    assert [(o.container_id, o.path, o.done, o.detail) for o in report.orphans] == [("t", str(path), "removed", "")]
    assert not path.exists() and path.parent.is_dir()
    assert rt.recover().orphans == []


def test_a_tombstones_cgroup_directory_that_will_not_go_is_left_and_reported(
    real_dirs: tuple[Runtime, _RealDirs], config: Config
) -> None:
    """Kills: _rmdir_tree mutants of the busy report (ENOTEMPTY/EBUSY: what the kernel says of a
    cgroup with processes) and of the walk going on past a child that stays."""
    rt, _ = real_dirs
    path = _tombstone(rt, config, "t")
    (path / "busy").mkdir(parents=True)
    (path / "busy" / "file").write_text("")  # rmdir: ENOTEMPTY, as a cgroup with a process is EBUSY
    (path / "empty").mkdir()
    report = rt.recover()
    assert [(o.path, o.done) for o in report.orphans] == [(str(path), "left alone: it still has processes")]
    assert (path / "busy").is_dir() and not (path / "empty").exists()


def test_the_sweep_leaves_a_joined_cgroup_and_one_a_live_record_names(
    real_dirs: tuple[Runtime, _RealDirs], config: Config
) -> None:
    """Kills: mutants of the sweep's ownership tests: a directory the container joined (not
    created) and one a live record names are never removed."""
    rt, executor = real_dirs
    shared = _tombstone(rt, config, "t", cgroups_path="shared")
    shared.mkdir(parents=True)
    live = rt.create("u", dataclasses.replace(config, cgroups_path="shared"))  # names the same directory
    assert rt.recover().orphans == []
    assert shared.is_dir()
    live.destroy(force=True)
    executor.joined = True
    joined = _tombstone(rt, config, "j")
    joined.mkdir(parents=True)
    report = rt.recover()
    assert [(o.container_id, o.done) for o in report.orphans] == [("t", "removed")]  # the control
    assert joined.is_dir() and not shared.exists()


@pytest.mark.parametrize(
    ("error", "done"),
    [
        (FileNotFoundError(errno.ENOENT, "No such file or directory"), "removed"),  # gone meanwhile
        (PermissionError(errno.EACCES, "Permission denied"), "could not be removed: Permission denied"),
    ],
)
def test_the_rmdir_of_a_tombstones_cgroup_reports_what_the_kernel_said(
    real_dirs: tuple[Runtime, _RealDirs], config: Config, monkeypatch: pytest.MonkeyPatch,
    error: OSError, done: str,
) -> None:
    """Kills: _rmdir_tree__mutmut_12, _13 (the report of a directory removed by someone else
    between the look and the rmdir) and _17 (`strerror and exc`: the errno's text, not the
    exception's repr)."""
    rt, _ = real_dirs
    path = _tombstone(rt, config, "t")
    path.mkdir(parents=True)
    real_rmdir = os.rmdir

    def rmdir(target: Any, *args: Any, **kwargs: Any) -> None:
        if str(target) == str(path):
            if isinstance(error, FileNotFoundError):
                real_rmdir(target)  # another recovery got there first
            raise error
        real_rmdir(target, *args, **kwargs)

    monkeypatch.setattr(os, "rmdir", rmdir)
    report = rt.recover()
    assert [(o.path, o.done) for o in report.orphans] == [(str(path), done)]


def test_the_sweep_goes_on_past_a_busy_id_and_past_an_excluded_entry(runtime: Runtime, config: Config) -> None:
    """Kills: sweep__mutmut_11 (`break` after a busy id) and _candidates__mutmut_24 (`break`
    after a run root entry that is not a candidate: here a live container's run dir)."""
    runtime.create("a-live", config)
    for name in ("a-live", "b-busy", "c-gone"):
        (runtime.run_root / name).mkdir(parents=True)
    with Locks(runtime.root).hold("b-busy") as got:
        assert got
        report = _recover(runtime)
    assert report.busy == ["b-busy"]
    assert [o.container_id for o in report.orphans] == ["c-gone"]
    assert (runtime.run_root / "a-live").is_dir() and not (runtime.run_root / "c-gone").exists()


def test_a_run_dir_whose_id_got_a_record_meanwhile_is_left_to_it(
    runtime: Runtime, config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kills: sweep__mutmut_12, _13 (the look for a record made between listing the candidates
    and taking the lock) and _19 (`break` there, ending the sweep)."""
    from corral.statemachine import orphans

    for name in ("a", "b"):
        (runtime.run_root / name).mkdir(parents=True)
    listed = orphans._candidates

    def candidates_then_a_create(context: Any) -> Any:
        found = listed(context)
        runtime.create("a", config)  # another controller creates `a` before the sweep locks it
        return found

    monkeypatch.setattr(orphans, "_candidates", candidates_then_a_create)
    report = runtime.recover()
    assert [o.container_id for o in report.orphans] == ["b"]
    assert (runtime.run_root / "a").is_dir()
    assert runtime.load("a").state is State.CREATED


def test_entries_of_the_run_root_that_are_not_directories_are_not_run_dirs(
    runtime: Runtime, tmp_path: Path
) -> None:
    """Kills: _candidates__mutmut_17 (a file named like an id taken for a run dir) and _21
    (`follow_symlinks=True`: a symlink to a directory elsewhere taken for one, so its
    "identity" would be read and acted on)."""
    runtime.run_root.mkdir(parents=True)
    (runtime.run_root / "file").write_text("")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep").write_text("")
    (runtime.run_root / "link").symlink_to(elsewhere)
    report = runtime.recover()
    assert report.orphans == []
    assert (runtime.run_root / "file").is_file() and (elsewhere / "keep").is_file()


def test_the_tombstone_scan_goes_on_past_a_live_record_and_a_gone_directory(
    real_dirs: tuple[Runtime, _RealDirs], config: Config
) -> None:
    """Kills: _candidates__mutmut_27 (`break` at the first live record) and sweep__mutmut_26
    (`break` at the first path that is gone, skipping the id's other paths)."""
    rt, _ = real_dirs
    rt.create("a", config)  # live, and listed before the tombstones
    _tombstone(rt, config, "t", cgroups_path="one")  # its directory is gone: skipped
    kept = _tombstone(rt, config, "t", cgroups_path="two")
    kept.mkdir(parents=True)
    report = rt.recover()
    assert [(o.container_id, o.path, o.done) for o in report.orphans] == [("t", str(kept), "removed")]


def test_only_the_hierarchies_corral_created_are_swept(real_dirs: tuple[Runtime, _RealDirs], config: Config) -> None:
    """Kills: _candidates__mutmut_38, _40 (`created.get(hierarchy)` without its `()` default: a
    hierarchy with nothing created raised) and _41 (`break` at the first joined hierarchy)."""
    rt, executor = real_dirs
    executor.hierarchies = ("a-joined", "b-created")
    executor.joined = True
    box = rt.create("t", config)
    box.destroy(force=True)
    assert set(box.record.created_cgroups or {}) == {"b-created"}
    paths = box.record.cgroup_paths
    for path in paths.values():
        os.makedirs(path)
    report = rt.recover()
    assert [(o.path, o.done) for o in report.orphans] == [(paths["b-created"], "removed")]
    assert os.path.isdir(paths["a-joined"]) and not os.path.exists(paths["b-created"])
