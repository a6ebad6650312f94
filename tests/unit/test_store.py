"""The SQLite store: pragmas, optimistic concurrency, and refusing files it cannot trust."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from pathlib import Path

import pytest

from corral.errors import (
    ConcurrentModification,
    ContainerExists,
    StoreAccessDenied,
    StoreUnreadable,
    UnknownRevision,
)
from corral.store.engine import HEAD_REVISION
from corral.store.repository import Repository
from tests.unit.asuser import NOBODY, dir_for, run_as


def _insert(repo: Repository, cid: str = "c1"):
    return repo.insert(
        container_id=cid,
        state="creating",
        pending_event="create",
        config="{}",
        bundle=None,
        run_dir=f"/run/x/{cid}",
        boot_id="boot-a",
        cgroup_paths={"memory": f"/sys/fs/cgroup/memory/corral/{cid}"},
        journal_event="create",
    )


def _fingerprint(path: Path) -> tuple[str, float, list[str]]:
    data = path.read_bytes() if path.is_file() else b""
    siblings = sorted(p.name for p in path.parent.iterdir())
    return hashlib.sha256(data).hexdigest(), path.stat().st_mtime, siblings


def test_new_store_is_wal_with_foreign_keys(tmp_path: Path) -> None:
    repo = Repository(tmp_path)
    try:
        with repo.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
            assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == HEAD_REVISION
    finally:
        repo.close()


def test_insert_records_the_plan_and_the_first_journal_row(tmp_path: Path) -> None:
    repo = Repository(tmp_path)
    try:
        record = _insert(repo)
        assert record.state == "creating" and record.pending_event == "create" and record.version == 1
        assert record.cgroup_paths == {"memory": "/sys/fs/cgroup/memory/corral/c1"}
        [entry] = repo.history(record.key)
        assert (entry.event, entry.from_state, entry.to_state) == ("create", None, "creating")
    finally:
        repo.close()


def test_one_live_container_per_id(tmp_path: Path) -> None:
    repo = Repository(tmp_path)
    try:
        record = _insert(repo)
        with pytest.raises(ContainerExists, match="'c1' already exists"):
            _insert(repo)
        repo.update(record.key, record.version, state="destroyed", journal=("destroy", "creating", "destroyed", {}))
        again = _insert(repo)
        assert again.key != record.key
        assert repo.find("c1").key == again.key
        assert [r.key for r in repo.all(include_destroyed=True)] == [record.key, again.key]
    finally:
        repo.close()


def test_a_stale_update_raises_and_changes_nothing(tmp_path: Path) -> None:
    first = Repository(tmp_path)
    second = Repository(tmp_path)
    try:
        record = _insert(first)
        seen_by_second = second.get(record.key)
        first.update(record.key, record.version, state="created", journal=("create", "creating", "created", {}))
        with pytest.raises(ConcurrentModification, match="'c1' was changed by another"):
            second.update(
                seen_by_second.key,
                seen_by_second.version,
                state="destroyed",
                journal=("destroy", "creating", "destroyed", {}),
            )
        now = first.get(record.key)
        assert now.state == "created" and now.version == 2
        assert [e.to_state for e in first.history(record.key)] == ["creating", "created"]
    finally:
        first.close()
        second.close()


def test_garbage_file_is_refused_and_left_untouched(tmp_path: Path) -> None:
    db = tmp_path / "corral.db"
    db.write_bytes(b"this is not a database\n" * 100)
    before = _fingerprint(db)
    with pytest.raises(StoreUnreadable) as info:
        Repository(tmp_path)
    assert str(db) in str(info.value)
    assert _fingerprint(db) == before


def test_corrupt_sqlite_file_is_refused_and_left_untouched(tmp_path: Path) -> None:
    repo = Repository(tmp_path)
    _insert(repo)
    repo.close()
    db = tmp_path / "corral.db"
    for suffix in ("-wal", "-shm"):
        (tmp_path / f"corral.db{suffix}").unlink(missing_ok=True)
    data = bytearray(db.read_bytes())
    data[100:4096] = b"\xff" * (4096 - 100)  # wreck the schema page, keep the header
    db.write_bytes(bytes(data))
    before = _fingerprint(db)
    with pytest.raises(StoreUnreadable) as info:
        Repository(tmp_path)
    assert str(db) in str(info.value) and "not changed" in str(info.value)
    assert _fingerprint(db) == before


def test_a_directory_in_place_of_the_database_is_refused(tmp_path: Path) -> None:
    (tmp_path / "corral.db").mkdir()
    with pytest.raises(StoreUnreadable, match="not a regular file"):
        Repository(tmp_path)


def test_a_foreign_sqlite_database_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "corral.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE photos (id INTEGER)")
    con.commit()
    con.close()
    before = _fingerprint(db)
    with pytest.raises(StoreUnreadable, match="no corral schema"):
        Repository(tmp_path)
    assert _fingerprint(db) == before


def test_a_newer_unknown_revision_is_refused_and_left_untouched(tmp_path: Path) -> None:
    Repository(tmp_path).close()
    db = tmp_path / "corral.db"
    con = sqlite3.connect(db)
    con.execute("UPDATE alembic_version SET version_num = '9999_from_the_future'")
    con.commit()
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    before = _fingerprint(db)
    with pytest.raises(UnknownRevision, match="9999_from_the_future") as info:
        Repository(tmp_path)
    assert str(db) in str(info.value)
    assert _fingerprint(db) == before


def test_an_unreadable_file_is_refused(tmp_path: Path) -> None:
    """Mode 0 on the file: refused as a permission problem, naming the file.

    Run as nobody in a forked child when we are root, since root ignores modes.
    """
    if os.geteuid() != 0:
        Repository(tmp_path).close()
        db = tmp_path / "corral.db"
        db.chmod(0)
        try:
            with pytest.raises(StoreAccessDenied, match=str(db)):
                Repository(tmp_path)
        finally:
            db.chmod(0o600)
        return
    with dir_for(NOBODY) as root:
        assert run_as(NOBODY, lambda: Repository(root).close()) is None
        db = root / "corral.db"
        db.chmod(0)
        result = run_as(NOBODY, lambda: Repository(root))
        assert result is not None and result[0] == "StoreAccessDenied", result
        assert str(db) in result[1]
