"""The store under hostile conditions: power loss, files deleted, replaced, truncated or denied.

Each test here was a reproduced failure: a commit that did not fsync, writes
that kept "succeeding" into a deleted file, raw SQLAlchemy and OSError
exceptions, a SIGBUS that killed the controller, and a permission problem
reported as a corrupt database.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import sqlalchemy.exc
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from corral import Config, Runtime, State
from corral.errors import CorralError, LockError, StoreAccessDenied, StoreError, StoreUnreadable
from corral.statemachine.locks import Locks
from corral.store.reader import RecordReader
from corral.store.repository import Repository
from tests.unit.asuser import NOBODY, dir_for, run_as

FULL, NORMAL = 2, 1


def _insert(repo: Repository, cid: str = "c1"):
    return repo.insert(
        container_id=cid,
        state="creating",
        pending_event="create",
        config="{}",
        bundle=None,
        run_dir=f"/run/x/{cid}",
        boot_id="boot-a",
        cgroup_paths={},
        journal_event="create",
    )


def _synchronous_at_commit(repo: Repository) -> list[int]:
    """The PRAGMA synchronous in force at each COMMIT, asked on the committing connection."""
    seen: list[int] = []

    @event.listens_for(repo.engine, "commit")
    def _commit(conn) -> None:  # type: ignore[no-untyped-def]
        seen.append(conn.connection.dbapi_connection.execute("PRAGMA synchronous").fetchone()[0])

    return seen


# -- 1. the commits that begin and end create and destroy are durable ------------------


def test_create_and_destroy_commit_with_synchronous_full_and_the_rest_normal(tmp_path: Path) -> None:
    repo = Repository(tmp_path)
    try:
        seen = _synchronous_at_commit(repo)
        r = _insert(repo)  # create's intent
        assert seen[-1] == FULL
        r = repo.update(r.key, r.version, base=r, journal=("create", "creating", "created", {}), state="created", pending_event=None)
        assert seen[-1] == FULL  # create's outcome
        r = repo.update(r.key, r.version, base=r, journal=("start", "created", "running", {}), state="running")
        assert seen[-1] == NORMAL
        r = repo.update(r.key, r.version, base=r, last_error="x")
        assert seen[-1] == NORMAL
        r = repo.update(r.key, r.version, base=r, journal=("signal", "running", "running", {}), state="running")
        assert seen[-1] == NORMAL
        r = repo.update(r.key, r.version, base=r, pending_event="destroy")
        assert seen[-1] == FULL  # destroy's intent
        r = repo.update(r.key, r.version, base=r, pending_event=None, last_error=None)
        assert seen[-1] == NORMAL  # and the level goes back
        r = repo.update(r.key, r.version, journal=("destroy", "running", "destroyed", {}), state="destroyed")
        assert seen[-1] == FULL  # destroy's outcome
        p = repo.add_process(r.key, 10, 20, "boot-a", ("sh",))
        assert seen[-1] == NORMAL
        assert p.pid == 10
    finally:
        repo.close()


def test_the_lifecycle_commits_create_and_destroy_durably_and_nothing_else(
    runtime: Runtime, config: Config
) -> None:
    """The same, through the Runtime: the repository decides, the lifecycle passes nothing."""
    seen: list[int] = []

    def commit(conn) -> None:  # type: ignore[no-untyped-def]
        seen.append(conn.connection.dbapi_connection.execute("PRAGMA synchronous").fetchone()[0])

    event.listen(Engine, "commit", commit)
    try:
        box = runtime.create("c", config)
        created, seen[:] = list(seen), []
        box.start()
        box.signal(signal.SIGUSR1)
        ordinary, seen[:] = list(seen), []
        box.destroy(force=True)
        destroyed = list(seen)
    finally:
        event.remove(Engine, "commit", commit)
    assert created.count(FULL) >= 2 and created[-1] == FULL, created  # intent and outcome
    assert ordinary and set(ordinary) == {NORMAL}, ordinary
    assert destroyed.count(FULL) >= 2 and destroyed[-1] == FULL, destroyed
    assert box.state is State.DESTROYED


def test_a_signal_to_a_created_container_is_not_a_durable_commit(tmp_path: Path) -> None:
    repo = Repository(tmp_path)
    try:
        seen = _synchronous_at_commit(repo)
        r = _insert(repo)
        r = repo.update(r.key, r.version, base=r, journal=("create", "creating", "created", {}), state="created")
        r = repo.update(r.key, r.version, base=r, journal=("signal", "created", "created", {}), state="created")
        assert seen[-1] == NORMAL
    finally:
        repo.close()


# -- 2. the file deleted or replaced under an open store -----------------------------


def test_a_deleted_database_file_is_noticed_at_the_next_write(tmp_path: Path) -> None:
    repo = Repository(tmp_path)
    try:
        r = _insert(repo)
        (tmp_path / "corral.db").unlink()
        with pytest.raises(StoreError, match="deleted") as info:
            repo.update(r.key, r.version, base=r, last_error="x")
        assert str(tmp_path / "corral.db") in str(info.value)
        with pytest.raises(StoreError, match="deleted"):
            _insert(repo, "c2")
    finally:
        repo.close()


def test_a_replaced_database_file_is_noticed_at_the_next_write(tmp_path: Path) -> None:
    repo = Repository(tmp_path)
    try:
        r = _insert(repo)
        db = tmp_path / "corral.db"
        shutil.copy(db, tmp_path / "copy")
        os.replace(tmp_path / "copy", db)
        with pytest.raises(StoreError, match="replaced") as info:
            repo.update(r.key, r.version, base=r, last_error="x")
        assert str(db) in str(info.value)
    finally:
        repo.close()


def test_an_untouched_store_keeps_working_across_connections(tmp_path: Path) -> None:
    repo = Repository(tmp_path)
    try:
        r = _insert(repo)
        repo.engine.dispose()  # new DBAPI connections on the same file are not "replaced"
        assert repo.update(r.key, r.version, base=r, last_error="x").version == 2
    finally:
        repo.close()


# -- 3. every database error is a StoreError naming the file -------------------------


@pytest.mark.parametrize(
    "error",
    [
        sqlalchemy.exc.DatabaseError("SELECT", {}, sqlite3.DatabaseError("database disk image is malformed")),
        sqlalchemy.exc.OperationalError("SELECT", {}, sqlite3.OperationalError("disk I/O error")),
        sqlalchemy.exc.InterfaceError("SELECT", {}, sqlite3.InterfaceError("bad parameter")),
        sqlalchemy.exc.ResourceClosedError("This Connection is closed"),
        sqlite3.DatabaseError("file is not a database"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_every_database_error_becomes_a_store_error_naming_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    repo = Repository(tmp_path)
    try:
        r = _insert(repo)

        def fail(*_a: object, **_k: object) -> None:
            raise error

        monkeypatch.setattr(Session, "execute", fail)
        monkeypatch.setattr(Session, "get", fail)
        monkeypatch.setattr(Session, "scalars", fail)
        # Records are read through plain sqlite3 (store/reader.py): only sqlite3's errors reach it.
        raw = getattr(error, "orig", None) or (error if isinstance(error, sqlite3.Error) else sqlite3.InterfaceError(str(error)))

        def fail_raw(*_a: object, **_k: object) -> None:
            raise raw

        monkeypatch.setattr(RecordReader, "_select", fail_raw)
        monkeypatch.setattr(RecordReader, "_unchanged", fail_raw)  # the check of a record kept after a write
        for call in (
            lambda: repo.update(r.key, r.version, base=r, last_error="x"),
            lambda: repo.get(r.key),
            lambda: repo.all(),
            lambda: _insert(repo, "c2"),
        ):
            with pytest.raises(StoreError) as info:
                call()
            assert str(tmp_path / "corral.db") in str(info.value)
    finally:
        repo.close()


@pytest.mark.parametrize("damage", ["truncated", "zeroed"])
def test_a_damaged_wal_is_a_store_error_naming_the_file(tmp_path: Path, damage: str) -> None:
    """Reproduced on main: the zeroed tail gave a raw sqlalchemy.exc.DatabaseError."""
    writer = Repository(tmp_path)  # kept open, so that its WAL is not checkpointed away
    try:
        r = _insert(writer)
        for _ in range(50):
            r = writer.update(r.key, r.version, base=r, last_error="x" * 3000)
        wal = tmp_path / "corral.db-wal"
        size = wal.stat().st_size
        os.truncate(wal, size // 2)
        if damage == "zeroed":
            os.truncate(wal, size)
        reader = Repository(tmp_path)
        try:
            for call in (
                lambda: reader.get(r.key),
                lambda: reader.all(),
                lambda: reader.update(r.key, r.version, last_error="y"),
            ):
                with pytest.raises(StoreError) as info:
                    call()
                assert str(tmp_path / "corral.db") in str(info.value)
        finally:
            reader.close()
    finally:
        writer.close()


def test_a_corrupt_page_read_later_is_store_unreadable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = Repository(tmp_path)
    try:
        err = sqlite3.DatabaseError("database disk image is malformed")
        err.sqlite_errorname = "SQLITE_CORRUPT"  # type: ignore[attr-defined]
        err.sqlite_errorcode = 11  # type: ignore[attr-defined]

        def fail(*_a: object, **_k: object) -> None:
            raise sqlalchemy.exc.DatabaseError("SELECT", {}, err)

        def fail_raw(*_a: object, **_k: object) -> None:
            raise err

        monkeypatch.setattr(Session, "scalars", fail)
        monkeypatch.setattr(RecordReader, "_select", fail_raw)  # records are read through plain sqlite3
        with pytest.raises(StoreUnreadable, match="malformed"):
            repo.all()
    finally:
        repo.close()


def test_an_integrity_error_in_insert_is_still_container_exists(tmp_path: Path) -> None:
    from corral.errors import ContainerExists

    repo = Repository(tmp_path)
    try:
        _insert(repo)
        with pytest.raises(ContainerExists):
            _insert(repo)
    finally:
        repo.close()


# -- 4. a truncated or unwritable -shm file is an error, not SIGBUS --------------------

_SHM_SCRIPT = textwrap.dedent(
    """
    import os, subprocess, sys
    from pathlib import Path
    from corral.errors import StoreError
    from corral.store.repository import Repository

    root, how = Path(sys.argv[1]), sys.argv[2]
    repo = Repository(root)
    r = repo.insert(container_id="c", state="creating", pending_event="create", config="{}",
                    bundle=None, run_dir="/x", boot_id="b", cgroup_paths={}, journal_event="create")
    shm = root / "corral.db-shm"
    if how == "truncate":
        os.truncate(shm, 0)
    elif how == "immutable":
        subprocess.run(["chattr", "+i", str(shm)], check=True)
    try:
        for i in range(5):
            r = repo.update(r.key, r.version, base=r, last_error=str(i))
            repo.get(r.key)
    except StoreError as exc:
        print(f"StoreError: {exc}")
        repo.close()
        sys.exit(3)
    finally:
        if how == "immutable":
            subprocess.run(["chattr", "-i", str(shm)], check=True)
    print("no error")
    """
)


def _chattr_works(path: Path) -> bool:
    probe = path / "probe"
    probe.write_bytes(b"")
    try:
        return subprocess.run(["chattr", "+i", str(probe)], capture_output=True).returncode == 0
    except FileNotFoundError:
        return False
    finally:
        subprocess.run(["chattr", "-i", str(probe)], capture_output=True)
        probe.unlink()


@pytest.mark.parametrize("how", ["truncate", "immutable"])
def test_a_tampered_shm_file_is_a_store_error_not_sigbus(tmp_path: Path, how: str) -> None:
    if how == "immutable" and (os.geteuid() != 0 or not _chattr_works(tmp_path)):
        pytest.skip("chattr +i needs root and a filesystem with inode flags")
    root = tmp_path / "store"
    proc = subprocess.run(
        [sys.executable, "-c", _SHM_SCRIPT, str(root), how],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert proc.returncode != -signal.SIGBUS, "the process died of SIGBUS"
    assert proc.returncode == 3, (proc.returncode, proc.stdout, proc.stderr)
    assert f"{root}/corral.db-shm" in proc.stdout


@pytest.mark.skipif(os.geteuid() != 0, reason="chattr +i needs root")
def test_an_immutable_shm_file_is_refused_at_open(tmp_path: Path) -> None:
    if not _chattr_works(tmp_path):
        pytest.skip("the filesystem has no inode flags")
    Repository(tmp_path).close()
    shm = tmp_path / "corral.db-shm"
    shm.write_bytes(b"\0" * 32768)
    subprocess.run(["chattr", "+i", str(shm)], check=True)
    try:
        with pytest.raises(StoreError, match=str(shm)):
            Repository(tmp_path)
    finally:
        subprocess.run(["chattr", "-i", str(shm)], check=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop privileges")
def test_a_shm_file_owned_by_another_user_is_refused_at_open() -> None:
    with dir_for(NOBODY) as root:
        run_as(NOBODY, lambda: Repository(root).close())
        shm = root / "corral.db-shm"
        shm.write_bytes(b"\0" * 32768)
        os.chown(shm, 0, 0)
        shm.chmod(0o644)
        result = run_as(NOBODY, lambda: Repository(root).close())
        assert result is not None and result[0] == "StoreAccessDenied", result
        assert str(shm) in result[1] and "permission denied" in result[1]


# -- 5. the lock file --------------------------------------------------------------


def test_a_lock_file_that_cannot_be_opened_is_a_lock_error(tmp_path: Path) -> None:
    (tmp_path / "corral.lock").mkdir()  # EISDIR, as a read-only filesystem gives EROFS
    locks = Locks(tmp_path)
    with pytest.raises(LockError) as info:
        with locks.hold("c1"):
            pass
    assert isinstance(info.value, CorralError)
    assert str(tmp_path / "corral.lock") in str(info.value)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop privileges")
def test_a_lock_file_the_user_may_not_write_is_a_lock_error() -> None:
    with dir_for(NOBODY) as root:
        lock = root / "corral.lock"
        lock.write_bytes(b"")
        lock.chmod(0o600)
        def hold() -> None:
            with Locks(root).hold("c1"):
                pass
        result = run_as(NOBODY, hold)
        assert result is not None and result[0] == "LockError", result
        assert str(lock) in result[1] and "permission denied" in result[1].lower()


# -- 6. permission problems are reported as such -----------------------------------


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop privileges")
@pytest.mark.parametrize("mode", [0o600, 0o644])
def test_a_store_the_user_may_not_read_is_reported_as_a_permission_problem(mode: int) -> None:
    with dir_for(NOBODY) as root:
        Repository(root).close()  # root's healthy store
        db = root / "corral.db"
        db.chmod(mode)  # 0644: readable, but corral needs to write too
        result = run_as(NOBODY, lambda: Repository(root).close())
        assert result is not None and result[0] == "StoreAccessDenied", result
        message = result[1]
        assert f"needs read and write access to {db}: permission denied" in message
        assert "backup" not in message.split("\n")[0]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop privileges")
def test_a_store_directory_the_user_may_not_write_is_reported_as_a_permission_problem() -> None:
    with dir_for(NOBODY) as parent:
        root = parent / "store"
        root.mkdir(mode=0o755)  # root's, readable but not writable by nobody
        result = run_as(NOBODY, lambda: Repository(root).close())
        assert result is not None and result[0] == "StoreAccessDenied", result
        assert f"needs read and write access to {root}" in result[1]


def test_store_access_denied_is_a_store_error() -> None:
    assert issubclass(StoreAccessDenied, StoreError)
    assert not issubclass(StoreAccessDenied, StoreUnreadable)
