"""Tests written against mutants of corral/store/ that survived the unit suite (tests/README.md,
the run of 2026-12-02, second session); each names what it kills.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from corral.store import files
from corral.store.lean import open_lean
from corral.store.readonly import BUSY_TIMEOUT_S, open_readonly
from corral.store.repository import Repository


def _one_container(root: Path) -> None:
    """A store under `root` holding one live container "c1", and no connection left open."""
    repo = Repository(root)
    try:
        record = repo.insert(container_id="c1", state="creating", pending_event="create", config="{}",
                             bundle="/bundles/c1", run_dir="/run/x/c1", boot_id="boot-a", cgroup_paths={},
                             journal_event="create")
        repo.update(record.key, record.version, base=record, state="created", pending_event=None, init_pid=4321,
                    init_start_time=987654)
    finally:
        repo.close()


# -- store/readonly.py ---------------------------------------------------------------------------


def test_the_read_only_view_opens_on_a_sqlite_that_takes_uris_only_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kills: readonly `open_readonly_11`/`_14`/`_16` (`uri=True` left out, None or False).

    SQLite's default build (SQLITE_USE_URI=0; Debian's sets 1) reads a "file:" name as a URI only
    when the caller asks (`uri=True`); otherwise it is an ordinary relative file name, and the view
    would never open there (every CLI read then pays for the library). The connect below behaves as
    such a build does."""
    _one_container(tmp_path / "root")
    real = sqlite3.connect

    def default_build(database: Any, *args: Any, uri: bool = False, **kwargs: Any) -> sqlite3.Connection:
        if not uri and os.fspath(database).startswith("file:"):
            database = os.path.join(".", os.fspath(database))  # a plain name: no URI parsing
        return real(database, *args, uri=uri, **kwargs)

    scratch = tmp_path / "cwd"
    scratch.mkdir()
    monkeypatch.chdir(scratch)
    monkeypatch.setattr(sqlite3, "connect", default_build)
    store = open_readonly(tmp_path / "root")
    assert store is not None
    with store:
        view = store.find("c1")
        assert view is not None and view.state == "created"
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            store._con.execute("DELETE FROM containers")
    assert list(scratch.iterdir()) == []


# -- store/lean.py -------------------------------------------------------------------------------


def test_a_lean_store_waits_thirty_seconds_for_the_write_lock(tmp_path: Path) -> None:
    """Kills: lean `open_lean_24` (`busy_timeout` 30030 ms): the connection's busy timeout is the
    store's (30 s), the same as the Repository's and the read-only view's."""
    _one_container(tmp_path)
    store = open_lean(str(tmp_path))
    assert store is not None
    with store:
        assert store._con.execute("PRAGMA busy_timeout").fetchone() == (int(BUSY_TIMEOUT_S * 1000),)


def test_a_lean_store_checkpoints_its_wal_on_close_unless_told_to_leave_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kills: lean `LeanStore.__init___7` (`leave_wal = True` by default).

    Only the one-shot CLI, about to exit, leaves the WAL to a later commit (cli/fast.py sets
    `leave_wal`); any other lean store's close, when it is the last connection, checkpoints the
    WAL into the database and removes it, as SQLite does. Left by default, the pin that skips the
    checkpoint would also stay for the rest of the process."""
    _one_container(tmp_path)
    pinned: list[int] = []
    monkeypatch.setattr(files, "_PINNED", pinned)  # the pin is once per process: start without one
    wal = Path(files.wal_path(tmp_path / "corral.db"))
    try:
        for leave in (False, True):
            store = open_lean(str(tmp_path))
            assert store is not None
            if leave:
                store.leave_wal = True
            record = store.record("c1")
            assert record is not None
            store.intent(record, "start")
            assert wal.stat().st_size > 0
            store.close()
            assert wal.exists() is leave, leave
            assert len(pinned) == int(leave)
    finally:
        for fd in pinned:
            os.close(fd)
