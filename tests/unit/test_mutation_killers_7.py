"""Tests written against mutants of corral/store/ that survived the unit suite (tests/README.md,
the run of 2026-12-02, second session); each names what it kills.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from corral.errors import StoreError, StoreUnreadable, UnknownRevision
from corral.store import engine, files
from corral.store.lean import open_lean
from corral.store.readonly import BUSY_TIMEOUT_S, open_readonly
from corral.store.repository import Repository
from tests.unit.asuser import NOBODY, dir_for, run_as, run_in_child


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


def _default_build(monkeypatch: pytest.MonkeyPatch, cwd: Path) -> None:
    """`sqlite3.connect` as on a SQLite built with its default SQLITE_USE_URI=0 (Debian's sets 1):
    a "file:" name is a URI only when the caller passes `uri=True`, else an ordinary file name
    (relative to `cwd`, an empty scratch directory)."""
    real = sqlite3.connect

    def default_build(database: Any, *args: Any, uri: bool = False, **kwargs: Any) -> sqlite3.Connection:
        if not uri and os.fspath(database).startswith("file:"):
            database = os.path.join(".", os.fspath(database))  # a plain name: no URI parsing
        return real(database, *args, uri=uri, **kwargs)

    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(sqlite3, "connect", default_build)


def _sql(db: Path, *statements: str) -> None:
    con = sqlite3.connect(db)
    try:
        for statement in statements:
            con.execute(statement)
        con.commit()
    finally:
        con.close()


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
    _default_build(monkeypatch, tmp_path / "cwd")
    store = open_readonly(tmp_path / "root")
    assert store is not None
    with store:
        view = store.find("c1")
        assert view is not None and view.state == "created"
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            store._con.execute("DELETE FROM containers")
    assert list((tmp_path / "cwd").iterdir()) == []


# -- store/lean.py -------------------------------------------------------------------------------


def test_a_lean_store_waits_thirty_seconds_for_the_write_lock(tmp_path: Path) -> None:
    """Kills: lean `open_lean_24` (`busy_timeout` 30030 ms): the connection's busy timeout is the
    store's (30 s), the same as the Repository's and the read-only view's."""
    _one_container(tmp_path)
    store = open_lean(str(tmp_path))
    assert store is not None
    with store:
        assert store._con.execute("PRAGMA busy_timeout").fetchone() == (int(BUSY_TIMEOUT_S * 1000),)


def _open_fds_of(path: Path) -> dict[int, int]:
    """This process's descriptors open on `path`, with their open flags (/proc/self/fdinfo)."""
    found = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{name}") == str(path):
                info = Path(f"/proc/self/fdinfo/{name}").read_text()
                found[int(name)] = int(info.split("flags:")[1].split()[0], 8)
        except OSError:
            continue  # closed meanwhile (the listing's own descriptor)
    return found


def test_a_lean_store_checkpoints_its_wal_on_close_unless_told_to_leave_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kills: lean `LeanStore.__init___7` (`leave_wal = True` by default); files `FileGuard._pin_1`–`_5`,
    `_7`–`_26`, `_28` (the pin not taken: the WAL checkpointed anyway, or an error out of close).

    Only the one-shot CLI, about to exit, leaves the WAL to a later commit (cli/fast.py sets
    `leave_wal`); any other lean store's close, when it is the last connection, checkpoints the
    WAL into the database and removes it, as SQLite does. Leaving it takes a read lock on the
    database through a descriptor kept for the life of the process: read-only and close-on-exec."""
    _one_container(tmp_path)
    db = tmp_path / "corral.db"
    monkeypatch.setattr(files, "_PINNED", [])  # the pin is once per process: start without one
    wal = Path(files.wal_path(db))
    kept: dict[int, int] = {}
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
            kept = _open_fds_of(db)
            assert len(kept) == int(leave), kept
        (flags,) = kept.values()
        assert flags & os.O_ACCMODE == os.O_RDONLY and flags & os.O_CLOEXEC, oct(flags)
    finally:
        for fd in kept:
            os.close(fd)


# -- store/files.py ------------------------------------------------------------------------------


def _guard_with_a_mapped_shm(tmp_path: Path, size: int = 32768) -> tuple[files.FileGuard, dict[str, Any], Path]:
    """A guard whose last transaction saw a -shm of `size` bytes (no SQLite: nothing is mapped)."""
    db = tmp_path / "corral.db"
    db.write_bytes(b"")
    shm = Path(files.shm_path(db))
    shm.write_bytes(b"\x01" * size)
    guard = files.FileGuard(db)
    info: dict[str, Any] = {}
    guard.connected(info)
    guard.ended(info)
    return guard, info, shm


def test_a_truncated_shm_is_grown_back_with_zeros_and_the_transaction_refused(tmp_path: Path) -> None:
    """Kills: files `FileGuard._regrow_1`–`_5`, `_7`, `_8`, `_10`–`_16`, `_19`, `_20` (the -shm not
    grown back, or the error not the store's naming it, what was done and the directory)."""
    guard, info, shm = _guard_with_a_mapped_shm(tmp_path)
    os.truncate(shm, 100)
    with pytest.raises(StoreError) as raised:
        guard.check(info)
    assert shm.read_bytes() == b"\x01" * 100 + b"\0" * (32768 - 100)
    assert str(raised.value) == (
        f"{shm}: the store's WAL index was truncated by another program while corral had it mapped, which "
        "would have killed this process with SIGBUS; corral grew it back to 32768 bytes (SQLite rebuilds "
        f"its content from the WAL). Find what truncates files in {tmp_path}, then retry"
    )


@pytest.mark.parametrize("how", ["truncated", "replaced"])
def test_a_shm_changed_during_a_transaction_is_caught_by_the_next_one(tmp_path: Path, how: str) -> None:
    """Kills: files `FileGuard.ended_1` (what the -shm was re-read after every transaction).

    The -shm is remembered once, after the first transaction that mapped it; a truncation or a
    replacement while a transaction runs (after its check) must still be seen by the next check,
    not taken as the new normal at the transaction's end."""
    guard, info, shm = _guard_with_a_mapped_shm(tmp_path)
    if how == "truncated":
        os.truncate(shm, 100)
    else:
        other = tmp_path / "other-shm"
        other.write_bytes(b"\x01" * 32768)
        other.rename(shm)  # another inode: both existed at once
    guard.ended(info)  # the transaction during which it happened ends
    with pytest.raises(StoreError, match=f"WAL index was {how}"):
        guard.check(info)


@pytest.mark.parametrize("how", ["deleted", "replaced"])
def test_a_shm_deleted_or_replaced_is_refused_saying_what_to_do(tmp_path: Path, how: str) -> None:
    """Kills: files `FileGuard._check_shm_8`–`_11` and the replaced branch's message mutants (the
    error's text dropped or changed): which file, what happened, and what to do."""
    guard, info, shm = _guard_with_a_mapped_shm(tmp_path)
    if how == "deleted":
        shm.unlink()
    else:
        other = tmp_path / "other-shm"
        other.write_bytes(b"\x01" * 32768)
        other.rename(shm)
    with pytest.raises(StoreError) as raised:
        guard.check(info)
    assert str(raised.value) == (
        f"{shm}: the store's WAL index was {how} while corral had it open, so processes no longer see "
        f"each other's locks; stop every corral process on {tmp_path} and open the store again"
    )


def test_a_shm_seen_at_the_first_check_is_remembered_from_then_on(tmp_path: Path) -> None:
    """Kills: files `FileGuard._check_shm_41`–`_43` (the -shm that another process had already made
    not remembered by the check before the first transaction, only at its end: a truncation during
    that transaction then goes unseen)."""
    db = tmp_path / "corral.db"
    db.write_bytes(b"")
    shm = Path(files.shm_path(db))
    shm.write_bytes(b"\x01" * 32768)
    guard = files.FileGuard(db)
    info: dict[str, Any] = {}
    guard.connected(info)
    guard.check(info)  # the first transaction begins: the -shm is already there
    os.truncate(shm, 100)  # ... and is truncated while it runs
    guard.ended(info)
    with pytest.raises(StoreError, match="WAL index was truncated"):
        guard.check(info)


def test_a_shm_no_longer_writable_is_refused_saying_why_and_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kills: files `FileGuard._check_shm_31`–`_40` (the error's text dropped or changed, the
    reason not asked of `_why_not`). Root may write any file: the check runs as nobody then."""
    monkeypatch.setattr(files, "_PINNED", [])  # the refusal pins the store (in the child, as root)

    def refused(root: Path) -> str:
        guard, info, shm = _guard_with_a_mapped_shm(root)
        shm.chmod(0o400)
        try:
            guard.check(info)
        except StoreError as exc:
            return str(exc)
        return "no error"

    def expected(root: Path) -> str:
        return (
            f"{root}/corral.db-shm: the store's WAL index is no longer writable (permission denied), and "
            "writing it through its mapping would kill this process with SIGBUS; make it writable again "
            "(chattr -i, chmod u+rw, or remount read-write), then retry"
        )

    if os.geteuid() != 0:
        assert refused(tmp_path) == expected(tmp_path)
        for fd in files._PINNED:
            os.close(fd)
        return
    with dir_for(NOBODY) as root:
        def as_nobody() -> None:
            message = refused(root)
            if message != expected(root):
                raise AssertionError(message)

        assert run_as(NOBODY, as_nobody) is None


def test_a_truncated_shm_behind_a_symlink_is_not_grown_through_it(tmp_path: Path) -> None:
    """Kills: files `FileGuard._regrow_6` (the -shm opened following a symlink), `_17`, `_18`
    (the reason it could not be grown back lost).

    The -shm moved away and a symlink to it put in its place still passes the identity check
    (stat follows the link); corral writes no file of its store through a symlink."""
    guard, info, shm = _guard_with_a_mapped_shm(tmp_path)
    real = tmp_path / "elsewhere"
    shm.rename(real)
    shm.symlink_to(real)
    os.truncate(real, 0)
    with pytest.raises(StoreError) as raised:
        guard.check(info)
    assert real.stat().st_size == 0
    assert "corral could not grow it back (Too many levels of symbolic links). Find what truncates" in str(raised.value)


def _in_a_child_whose_real_user_is_nobody(fn: Callable[[], object]) -> tuple[str, str] | None:
    """Call `fn` in a forked child whose real uid is nobody's and effective uid still root's (as
    in a set-user-id program); what it raised (type, message), or None."""
    return run_in_child(lambda: os.setresuid(NOBODY, 0, 0), fn)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to set the real user id apart from the effective one")
def test_access_to_the_store_is_decided_on_the_effective_user(tmp_path: Path) -> None:
    """Kills: files `_why_not_3`/`_6`, and `check_access`'s and `FileGuard._check_shm`'s
    `effective_ids=True` left out, None or False (access decided on the real user id).

    The kernel opens files as the effective user; a process whose real user differs (a set-user-id
    program) may use a store that its real user could not, and must not be refused it. The store
    is root's, under pytest's root-only directory: nobody may not even reach it."""
    _one_container(tmp_path)
    db = tmp_path / "corral.db"
    holder = sqlite3.connect(db)  # the -wal and -shm exist while it is open
    try:
        holder.execute("UPDATE containers SET state = state")
        holder.commit()
        assert Path(files.wal_path(db)).exists() and Path(files.shm_path(db)).exists()

        def use_the_store() -> None:
            files.check_access(tmp_path, db)
            guard = files.FileGuard(db)
            info: dict[str, Any] = {}
            guard.connected(info)
            guard.ended(info)
            guard.check(info)

        assert _in_a_child_whose_real_user_is_nobody(use_the_store) is None
    finally:
        holder.close()


# -- store/engine.py -----------------------------------------------------------------------------


def test_the_store_opens_on_a_sqlite_that_takes_uris_only_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kills: engine `_current_revision_11`/`_14`/`_16` (`uri=True` left out, None or False): the
    revision is read through a "file:...?mode=ro&immutable=1" URI; taken as a plain name, the open
    fails and every store would be refused as unreadable."""
    _one_container(tmp_path / "root")
    _default_build(monkeypatch, tmp_path / "cwd")
    repo = Repository(tmp_path / "root")
    try:
        found = repo.find("c1")
        assert found is not None and found.state == "created"
    finally:
        repo.close()
    assert list((tmp_path / "cwd").iterdir()) == []


def test_a_revision_still_in_the_wal_is_read_again_before_deciding_to_migrate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kills: engine `_current_revision_1` (`immutable=True` by default) and `_5` (always immutable).

    The first look reads the main file only (immutable: it leaves no -wal/-shm behind); a store whose
    upgrade to the head is committed but still in the WAL (another process holds it open) looks older
    there, so the decision to migrate is re-read normally under the init lock, which sees the head:
    no upgrade is run (and Alembic, ~280 ms, is not imported)."""
    _one_container(tmp_path)
    db = tmp_path / "corral.db"
    _sql(db, "UPDATE alembic_version SET version_num = '0006_indexes'")
    _sql(db, "PRAGMA wal_checkpoint(TRUNCATE)")
    holder = sqlite3.connect(db)  # keeps the WAL from being checkpointed on close
    try:
        holder.execute("UPDATE alembic_version SET version_num = ?", (engine.HEAD_REVISION,))
        holder.commit()
        assert engine._current_revision(db, immutable=True) == "0006_indexes"

        def upgrade(*args: Any) -> None:
            raise AssertionError(f"upgraded a store at the head: {args}")

        monkeypatch.setattr(engine, "_upgrade", upgrade)
        repo = Repository(tmp_path)
        try:
            assert repo.find("c1") is not None
        finally:
            repo.close()
    finally:
        holder.close()


def _held_exclusively(db: Path) -> sqlite3.Connection:
    """A connection holding `db`'s lock exclusively (readers too wait) until it is closed."""
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("PRAGMA locking_mode = EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    holder.execute("UPDATE alembic_version SET version_num = version_num")
    return holder


def _timed(call: Callable[[], object], limit: float) -> tuple[float, BaseException | None]:
    """How long `call` took (at most `limit` s: then it is left behind) and what it raised."""
    result: list[BaseException | None] = []

    def run() -> None:
        try:
            call()
            result.append(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            result.append(exc)

    start = time.monotonic()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(limit)
    return time.monotonic() - start, (result[0] if result else TimeoutError(f"still waiting after {limit} s"))


def test_the_revision_read_waits_the_busy_timeout_for_a_writer_then_says_it_is_busy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kills: engine `_current_revision_15` (no timeout: SQLite's 5 s default) and `_17` (the
    timeout taken as seconds: 30000 s). The read under the init lock waits `BUSY_TIMEOUT_MS` for
    a process holding the file, as every connection of the store does, then fails.

    It failed as StoreUnreadable, "restore it from a backup or move it away": advice that loses a
    healthy store that was only busy; a busy store is now the store's busy error (failures.py)."""
    _one_container(tmp_path)
    db = tmp_path / "corral.db"
    monkeypatch.setattr(engine, "BUSY_TIMEOUT_MS", 400)
    holder = _held_exclusively(db)
    try:
        took, raised = _timed(lambda: engine._current_revision(db), limit=4.0)
    finally:
        holder.close()
    assert 0.35 <= took < 3.0, (took, raised)
    assert isinstance(raised, StoreError) and not isinstance(raised, StoreUnreadable), raised
    assert "busy timeout" in str(raised) and str(db) in str(raised) and "backup" not in str(raised)


def test_an_unopenable_file_is_refused_naming_it_and_sqlites_reason(tmp_path: Path) -> None:
    """Kills: engine `_current_revision_19`–`_24` (the path or the reason dropped from the error
    of a failed open; the file vanished between the check and the open)."""
    db = tmp_path / "gone.db"
    with pytest.raises(StoreUnreadable) as info:
        engine._current_revision(db)
    assert info.value.path == str(db)
    assert str(info.value).startswith(f"{db}: cannot be read as a corral database (unable to open database file)")


def test_a_foreign_database_is_refused_naming_the_file_and_its_tables(tmp_path: Path) -> None:
    """Kills: engine `_current_revision_37`/`_41` (the path dropped) and `_43` (the tables joined
    with another separator)."""
    db = tmp_path / "corral.db"
    _sql(db, "CREATE TABLE photos (id INTEGER)", "CREATE TABLE albums (id INTEGER)")
    with pytest.raises(StoreUnreadable) as info:
        Repository(tmp_path)
    assert info.value.path == str(db)
    assert str(info.value).startswith(
        f"{db}: cannot be read as a corral database (it has tables (albums, photos) but no corral schema)"
    )


def test_a_damaged_schema_is_refused_with_sqlites_reason(tmp_path: Path) -> None:
    """Kills: engine `_current_revision_55` (the reason of a failed read dropped)."""
    _one_container(tmp_path)
    db = tmp_path / "corral.db"
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    data = bytearray(db.read_bytes())
    data[100:4096] = b"\xff" * (4096 - 100)  # the schema page wrecked, the header kept
    db.write_bytes(bytes(data))
    with pytest.raises(StoreUnreadable) as info:
        Repository(tmp_path)
    assert str(info.value).startswith(f"{db}: cannot be read as a corral database (database disk image is malformed)")


@pytest.mark.parametrize("leftover", ["sqlite_sequence", "empty alembic_version"])
def test_a_database_without_corral_tables_but_sqlites_own_or_an_empty_version_is_created(
    tmp_path: Path, leftover: str
) -> None:
    """Kills: engine `_current_revision_35`/`_36` (`sqlite_sequence`, which SQLite keeps after
    the last AUTOINCREMENT table is dropped, counted as a foreign table) and `_51` (an empty
    `alembic_version`, as Alembic leaves a store it had not upgraded yet, read as a revision)."""
    db = tmp_path / "corral.db"
    if leftover == "sqlite_sequence":
        _sql(db, "CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT)", "INSERT INTO t DEFAULT VALUES",
             "DROP TABLE t")
    else:
        _sql(db, "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)")
    _one_container(tmp_path)
    con = sqlite3.connect(db)
    try:
        assert con.execute("SELECT version_num FROM alembic_version").fetchall() == [(engine.HEAD_REVISION,)]
        assert con.execute("SELECT id, state FROM containers").fetchall() == [("c1", "created")]
    finally:
        con.close()


def test_an_unknown_revision_is_refused_naming_this_corrals_newest(tmp_path: Path) -> None:
    """Kills: engine `_refuse_unknown_6` (the head left out of the error: "its newest is None")."""
    _one_container(tmp_path)
    db = tmp_path / "corral.db"
    _sql(db, "UPDATE alembic_version SET version_num = '9999_from_the_future'")
    with pytest.raises(UnknownRevision) as info:
        Repository(tmp_path)
    assert str(info.value).startswith(
        f"{db}: schema revision '9999_from_the_future' is unknown to this corral "
        f"(its newest is {engine.HEAD_REVISION!r}); it was probably written by a newer corral"
    )
