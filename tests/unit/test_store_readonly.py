"""The read-only view (corral/store/readonly.py) answers what the Repository would, field by field.

The command line's `state`, `ps` and `list` read records through plain sqlite3;
a field the view drops or swaps would print a wrong state JSON without any
library test noticing. So every field of a RecordView is compared with the
Repository's record of the same container, and `recovery_needed` is checked for
each reason it gives (these tests were written for the surviving mutants of
mutmut's run over store/readonly.py: see tests/README.md).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from corral.store.readonly import BUSY_TIMEOUT_S, open_readonly
from corral.store.repository import Repository


def _store_with_one_container(root: Path) -> Repository:
    repo = Repository(root)
    record = repo.insert(container_id="c1", state="creating", pending_event="create", config='{"c": 1}',
                         bundle="/bundles/c1", run_dir="/run/x/c1", boot_id="boot-a",
                         cgroup_paths={"memory": "/sys/fs/cgroup/memory/x/c1", "pids": "/sys/fs/cgroup/pids/x/c1"},
                         journal_event="create")
    repo.update(record.key, record.version, base=record, state="stopped", pending_event=None, init_pid=4321,
                init_start_time=987654, exit_status=3)
    return repo


def test_every_field_of_the_view_is_the_repositorys(tmp_path: Path) -> None:
    repo = _store_with_one_container(tmp_path)
    try:
        expected = repo.find("c1")
    finally:
        repo.close()
    assert expected is not None
    store = open_readonly(tmp_path)
    assert store is not None
    with store:
        view = store.find("c1")
        live = store.live()
    assert view is not None
    assert view == live[0]
    assert {
        "key": view.key, "id": view.id, "state": view.state, "pending_event": view.pending_event,
        "init_pid": view.init_pid, "init_start_time": view.init_start_time, "boot_id": view.boot_id,
        "bundle": view.bundle, "config": view.config, "run_dir": view.run_dir, "exit_status": view.exit_status,
        "created_at": view.created_at, "cgroup_paths": dict(view.cgroup_paths),
    } == {
        "key": expected.key, "id": "c1", "state": "stopped", "pending_event": None,
        "init_pid": 4321, "init_start_time": 987654, "boot_id": "boot-a",
        "bundle": "/bundles/c1", "config": '{"c": 1}', "run_dir": "/run/x/c1", "exit_status": 3,
        "created_at": expected.created_at, "cgroup_paths": dict(expected.cgroup_paths),
    }
    assert view.live is True
    assert dict(view.cgroup_paths) == {"memory": "/sys/fs/cgroup/memory/x/c1", "pids": "/sys/fs/cgroup/pids/x/c1"}


def test_a_pending_intent_is_shown_as_pending(tmp_path: Path) -> None:
    repo = Repository(tmp_path)
    try:
        repo.insert(container_id="c2", state="creating", pending_event="create", config="{}", bundle=None,
                    run_dir="/run/x/c2", boot_id="boot-a", cgroup_paths={}, journal_event="create")
    finally:
        repo.close()
    store = open_readonly(tmp_path)
    assert store is not None
    with store:
        view = store.find("c2")
    assert view is not None and (view.pending_event, view.bundle) == ("create", None)


def test_recovery_needed_gives_each_reason_and_asks_about_each_pending_id(tmp_path: Path) -> None:
    repo = _store_with_one_container(tmp_path)
    try:
        store = open_readonly(tmp_path)
        assert store is not None
        with store:
            assert store.recovery_needed("boot-a", lambda cid: True) == "never fully recovered"
        repo.mark_recovered("boot-old")
        store = open_readonly(tmp_path)
        assert store is not None
        with store:
            assert store.recovery_needed("boot-a", lambda cid: True) == (
                "the host restarted since the last full recovery"
            )
        repo.mark_recovered("boot-a")
        repo.insert(container_id="mid", state="creating", pending_event="create", config="{}", bundle=None,
                    run_dir="/run/x/mid", boot_id="boot-a", cgroup_paths={}, journal_event="create")
        store = open_readonly(tmp_path)
        assert store is not None
        asked: list[str] = []
        with store:
            assert store.recovery_needed("boot-a", lambda cid: asked.append(cid) is None) == (
                "container 'mid' has an interrupted intent"
            )
            assert asked == ["mid"]
            # its lock is held: a live transition, not a crashed one
            assert store.recovery_needed("boot-a", lambda cid: False) is None
    finally:
        repo.close()


def test_the_view_is_read_only_and_waits_for_a_writer(tmp_path: Path) -> None:
    _store_with_one_container(tmp_path).close()
    store = open_readonly(tmp_path)
    assert store is not None
    with store:
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            store._con.execute("DELETE FROM containers")
        assert store._con.execute("PRAGMA busy_timeout").fetchone()[0] == int(BUSY_TIMEOUT_S * 1000)
