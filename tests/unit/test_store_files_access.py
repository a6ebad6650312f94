"""Why a store file may not be used: the reason names what the kernel said, not a guess.

`corral.store.files._why_not` asks the kernel by opening the file read-write
without following a symlink, so the user is told "operation not permitted" for
an immutable file and "too many levels of symbolic links" for a symlink planted
in place of the database, not a generic "permission denied" (which would send
them to chmod). Written for the survivors of mutmut's run over store/files.py
(tests/README.md). chattr needs root and a filesystem with inode flags.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral.errors import StoreAccessDenied
from corral.store.files import check_access


def _chattr(path: Path, flag: str) -> bool:
    try:
        return subprocess.run(["chattr", flag, str(path)], capture_output=True).returncode == 0
    except FileNotFoundError:
        return False


@pytest.fixture
def immutable_db(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("chattr +i needs root (CAP_LINUX_IMMUTABLE)")
    db = tmp_path / "corral.db"
    db.write_bytes(b"")
    if not _chattr(db, "+i"):
        pytest.skip(f"chattr +i does not work on {tmp_path}'s filesystem")
    try:
        yield db
    finally:
        _chattr(db, "-i")


def test_an_immutable_database_is_refused_as_not_permitted(immutable_db: Path) -> None:
    with pytest.raises(StoreAccessDenied) as refused:
        check_access(immutable_db.parent, immutable_db)
    assert str(immutable_db) in str(refused.value)
    assert "operation not permitted" in str(refused.value)


def test_a_symlink_in_place_of_the_database_is_named_not_followed(immutable_db: Path) -> None:
    store = immutable_db.parent / "store"
    store.mkdir()
    link = store / "corral.db"
    link.symlink_to(immutable_db)
    with pytest.raises(StoreAccessDenied) as refused:
        check_access(store, link)
    assert str(link) in str(refused.value)
    assert "symbolic links" in str(refused.value)


def test_a_file_the_kernel_opens_though_access_says_no_is_still_refused_and_nothing_leaks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """access(2) and open(2) can disagree (an LSM, ACLs, a setuid caller): the reason is then the
    generic one, and the probe's fd is closed."""
    db = tmp_path / "corral.db"
    db.write_bytes(b"")
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: Path(path) != db and real_access(path, mode, **kw))
    before = set(os.listdir("/proc/self/fd"))
    with pytest.raises(StoreAccessDenied) as refused:
        check_access(tmp_path, db)
    assert str(refused.value) == str(StoreAccessDenied(str(db), "permission denied"))
    assert set(os.listdir("/proc/self/fd")) == before


def test_a_store_directory_without_access_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "corral.db"
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: Path(path) != tmp_path and real_access(path, mode, **kw))
    with pytest.raises(StoreAccessDenied) as refused:
        check_access(tmp_path, db)
    assert str(refused.value) == str(StoreAccessDenied(str(tmp_path), "permission denied"))


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory on a read-only bind mount of itself (unmounted after the test)."""
    if os.geteuid() != 0:
        pytest.skip("a read-only bind mount needs root")
    where = tmp_path / "ro"
    where.mkdir()
    subprocess.run(["mount", "--bind", str(where), str(where)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(where)], check=True)
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=True)


def test_a_store_on_a_read_only_filesystem_says_so(read_only_dir: Path) -> None:
    with pytest.raises(StoreAccessDenied) as refused:
        check_access(read_only_dir, read_only_dir / "corral.db")
    assert str(refused.value) == str(StoreAccessDenied(str(read_only_dir), "read-only file system"))


def test_an_unwritable_wal_file_is_named(immutable_db: Path) -> None:
    """The -wal beside the database is checked too (it is where every commit lands first)."""
    _chattr(immutable_db, "-i")
    wal = immutable_db.with_name("corral.db-wal")
    wal.write_bytes(b"")
    if not _chattr(wal, "+i"):
        pytest.skip("chattr +i does not work here")
    try:
        with pytest.raises(StoreAccessDenied) as refused:
            check_access(immutable_db.parent, immutable_db)
    finally:
        _chattr(wal, "-i")
    assert str(refused.value) == str(StoreAccessDenied(str(wal), "operation not permitted"))


def test_a_connection_to_a_deleted_database_names_it(tmp_path: Path) -> None:
    from corral.errors import StoreReplaced
    from corral.store.files import FileGuard

    db = tmp_path / "corral.db"
    db.write_bytes(b"")
    guard = FileGuard(db)
    guard.connected({})
    db.unlink()
    with pytest.raises(StoreReplaced) as replaced:
        guard.connected({})
    assert (replaced.value.path, replaced.value.what) == (str(db), "deleted")
    assert str(replaced.value) == str(StoreReplaced(str(db), "deleted"))


def test_a_new_connection_accepts_the_same_file_and_refuses_a_replaced_one(tmp_path: Path) -> None:
    from corral.errors import StoreReplaced
    from corral.store.files import FileGuard

    db = tmp_path / "corral.db"
    db.write_bytes(b"")
    guard = FileGuard(db)
    guard.connected({})
    guard.connected({})  # the pool's next connection to the same file
    guard.check({})
    spare = tmp_path / "other.db"
    spare.write_bytes(b"")  # kept, so that the replacement cannot reuse the inode
    moved = tmp_path / "moved.db"
    db.rename(moved)
    db.write_bytes(b"")
    with pytest.raises(StoreReplaced) as replaced:
        guard.connected({})
    assert (replaced.value.path, replaced.value.what) == (str(db), "replaced by another file")
    assert str(replaced.value) == str(StoreReplaced(str(db), "replaced by another file"))


def test_a_new_connection_forgets_the_shm_file_its_predecessor_mapped(tmp_path: Path) -> None:
    """Each DBAPI connection maps the -shm afresh: what the last one saw must be checked again."""
    from corral.store.files import FileGuard

    db = tmp_path / "corral.db"
    db.write_bytes(b"")
    info: dict[str, object] = {"corral_shm": (1, 2, 3)}
    FileGuard(db).connected(info)
    assert "corral_shm" not in info


def test_a_database_deleted_under_an_open_engine_is_named_before_the_transaction(tmp_path: Path) -> None:
    from corral.errors import StoreReplaced
    from corral.store.files import FileGuard

    db = tmp_path / "corral.db"
    db.write_bytes(b"")
    guard = FileGuard(db)
    guard.connected({})
    db.unlink()
    with pytest.raises(StoreReplaced) as replaced:
        guard.check({})
    assert (replaced.value.path, replaced.value.what) == (str(db), "deleted (or moved away)")


def test_a_database_replaced_under_an_open_engine_is_named_before_the_transaction(tmp_path: Path) -> None:
    from corral.errors import StoreReplaced
    from corral.store.files import FileGuard

    db = tmp_path / "corral.db"
    db.write_bytes(b"")
    guard = FileGuard(db)
    guard.connected({})
    db.rename(tmp_path / "moved.db")  # kept: its inode cannot be reused by the new file
    db.write_bytes(b"")
    with pytest.raises(StoreReplaced) as replaced:
        guard.check({})
    assert (replaced.value.path, replaced.value.what) == (str(db), "replaced by another file")
