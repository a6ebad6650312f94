"""Tests written against mutants of store/ that survived the unit suite (tests/README.md, "Run of
2026-12-02, fourth session: store/..." and "Run of 2026-12-02, fifth session: store/engine.py (rest),
repository.py's Repository methods"); each names what it kills.

They run without root, on the fake executor where a runtime is needed.
"""

from __future__ import annotations

import dataclasses
import errno
import fcntl
import json
import logging
import os
import select
import sqlite3
import struct
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NoReturn

import inotify_simple
import pytest
from sqlalchemy import event
from sqlalchemy.exc import IntegrityError

from corral import Runtime
from corral.config import Config
from corral.errors import ConcurrentModification, ContainerExists, StoreAccessDenied, StoreError, StoreUnreadable, UnknownRevision
from corral.executor.interface import HostInterface
from corral.store import engine, observed, peek, repository
from corral.store.bell import BellWatch, bell_path, ring
from corral.store.lean_durable import open_durable
from corral.store.readonly import BUSY_TIMEOUT_S
from corral.store.repository import ContainerRecord, NamespaceRecord, Repository, utcnow
from tests.unit.asuser import NOBODY, dir_for, run_as
from tests.unit.test_mutation_killers_7 import _one_container, _sql
from tests.unit.test_store_observed import _arguments as _observed_arguments

# -- peek.py -----------------------------------------------------------------------------------


def test_a_one_shot_read_waits_the_store_s_busy_timeout_for_a_writer(runtime: Runtime, config: Config) -> None:
    """Kills peek.connect__mutmut_14 (`timeout` left out: sqlite3's 5 s, not the store's 30 s), read
    from SQLite itself: a writer holding the lock 6 s would fail a one-shot `state` for nothing."""
    runtime.create("c", config)
    con = peek.connect(str(runtime.root))
    assert con is not None
    try:
        assert con.execute("PRAGMA busy_timeout").fetchone() == (int(BUSY_TIMEOUT_S * 1000),)
    finally:
        con.close()


# -- bell.py -----------------------------------------------------------------------------------


def _select_failing_with(monkeypatch: pytest.MonkeyPatch, code: int) -> None:
    def fail(*args: object) -> NoReturn:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(select, "select", fail)


def test_an_interrupted_wait_says_it_was_not_rung_even_when_the_bell_rang(tmp_path: Path) -> None:
    """Kills bell BellWatch.wait__mutmut_14 (an interrupted wait answering True): `interrupt()` is how
    a stream closed from another thread ends the wait; True would make the waiter query and wait again."""
    watch = BellWatch(tmp_path)
    try:
        ring(tmp_path)
        watch.interrupt()
        assert watch.wait(5) is False
    finally:
        watch.close()


def test_a_watch_closed_while_its_wait_starts_answers_false(tmp_path: Path) -> None:
    """Kills bell BellWatch.wait__mutmut_11 (`!=` EBADF: raised) and `_12` (answering True). Another
    thread's `close()` between the wait taking its descriptors and the select: EBADF, a closed watch."""
    watch = BellWatch(tmp_path)
    real = watch.fileno

    def fileno_then_closed() -> int:
        number = real()
        watch.close()  # the other thread's close, just before the select
        return number

    watch.fileno = fileno_then_closed  # type: ignore[method-assign]
    try:
        assert watch.wait(5) is False
    finally:
        watch.close()


@pytest.mark.parametrize(("code", "closed"), [(errno.EBADF, False), (errno.EINVAL, True)])
def test_a_failed_select_is_raised_unless_the_watch_was_closed_under_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int, closed: bool
) -> None:
    """Kills bell BellWatch.wait__mutmut_10 (`or`: any EBADF, or any error once closed, taken for a
    close) and `_11` (`!=`): a bad descriptor in an open watch, or another error, is a bug to see."""
    watch = BellWatch(tmp_path)
    try:
        watch.closed = closed
        _select_failing_with(monkeypatch, code)
        with pytest.raises(OSError) as info:
            watch.wait(0)
        assert info.value.errno == code
    finally:
        monkeypatch.undo()
        watch.closed = False
        watch.close()


def test_the_watch_descriptor_never_blocks_a_read(tmp_path: Path) -> None:
    """Kills bell BellWatch.__init____mutmut_4/_5 (`nonblocking` None or False): `fileno()` is handed
    to event loops, and two drains racing may both find bytes announced (FIONREAD) that the other
    took; a blocking descriptor would then hang the reader until the next ring, not raise
    BlockingIOError (which `drain` takes as nothing pending)."""
    watch = BellWatch(tmp_path)
    try:
        assert os.get_blocking(watch.fileno()) is False  # (else the read below would hang the test)
        with pytest.raises(BlockingIOError):
            os.read(watch.fileno(), 4096)
        ring(tmp_path)
        assert os.read(watch.fileno(), 4096)  # the ring's event, then nothing again
        with pytest.raises(BlockingIOError):
            os.read(watch.fileno(), 4096)
    finally:
        watch.close()


def test_a_ring_writes_its_one_byte_in_place(tmp_path: Path) -> None:
    """Kills bell ring__mutmut_11 (five bytes written) and `_12` (the byte written at offset 1): the
    bell is one byte however often it rings (the module's promise: the file never grows)."""
    for _ in range(3):
        ring(tmp_path)
    assert Path(bell_path(tmp_path)).read_bytes() == b"\n"


def test_the_bell_is_made_private_by_a_ring_and_by_a_watch(tmp_path: Path) -> None:
    """Kills bell _open_bell__mutmut_6 (no mode: 0o777 less the umask) and `_8`/`_9` (no O_CREAT,
    or O_RDONLY): whoever comes first, a writer's ring or a reader's watch, makes the bell, 0o600."""
    for first in (ring, lambda root: BellWatch(root).close()):
        root = tmp_path / str(len(list(tmp_path.iterdir())))
        root.mkdir()
        first(root)
        assert os.stat(bell_path(root)).st_mode & 0o7777 == 0o600
        ring(root)
        assert Path(bell_path(root)).read_bytes() == b"\n"


def test_a_bell_that_cannot_be_rung_is_logged_naming_it_and_why(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Kills bell ring__mutmut_14/_17 (the message dropped) and `_15`/`_16` (the path or the error
    dropped): the commit happened, so the failure is only a warning, which must say what and why."""
    root = tmp_path / "root"
    root.mkdir()
    os.symlink(tmp_path / "elsewhere", bell_path(root))  # O_NOFOLLOW: never rung through a link
    with caplog.at_level(logging.WARNING, logger="corral"):
        ring(root)
    assert [(r.name, r.levelno) for r in caplog.records] == [("corral", logging.WARNING)]
    assert caplog.records[0].getMessage() == (
        f"cannot ring the journal's bell {bell_path(root)} ([Errno {errno.ELOOP}] "
        f"{os.strerror(errno.ELOOP)}: '{bell_path(root)}'): event readers wake at the next commit"
    )
    assert not (tmp_path / "elsewhere").exists()


def test_closing_a_watch_releases_its_descriptors(tmp_path: Path) -> None:
    """Kills bell BellWatch.__init____mutmut_9/_10 (`closed` None or True from the start: `close()`
    then releases nothing, leaking the inotify descriptor and the wake pipe of every stream)."""
    before = set(os.listdir("/proc/self/fd"))
    watch = BellWatch(tmp_path)
    assert watch.closed is False
    watch.close()
    assert watch.closed is True
    assert set(os.listdir("/proc/self/fd")) <= before


def test_the_wake_pipe_never_blocks_an_interrupt_nor_reaches_a_child(tmp_path: Path) -> None:
    """Kills bell BellWatch.__init____mutmut_8 (`O_CLOEXEC & O_NONBLOCK`: no flags): a stream's
    `close()` interrupts under its lock, so a full pipe must refuse the byte, not block; and a
    process the caller starts must not inherit the pipe."""
    watch = BellWatch(tmp_path)
    try:
        for fd in (watch._wake_r, watch._wake_w):
            assert os.get_blocking(fd) is False  # (else the loop below would hang the test)
            assert os.get_inheritable(fd) is False
        for _ in range(70_000):  # more bytes than a pipe holds (64 KiB)
            watch.interrupt()
        assert watch.wait(0) is False
    finally:
        watch.close()


def _ring_after(watch: BellWatch, root: Path, change: Callable[[], object]) -> bool:
    """Whether `watch` wakes on a ring that follows `change` to the bell file and a drain."""
    change()
    watch.drain()
    ring(root)
    return watch.wait(10)


def test_a_bell_removed_is_watched_again_when_rung(tmp_path: Path) -> None:
    """Kills bell BellWatch.drain__mutmut_8 (only IN_MOVE_SELF re-arms), `_9`/`_10` (never re-armed):
    the bell deleted (the watch goes with it, IN_DELETE_SELF and IN_IGNORED): the drain re-arms
    on a new bell, which the next ring wakes."""
    watch = BellWatch(tmp_path)
    try:
        assert _ring_after(watch, tmp_path, Path(bell_path(tmp_path)).unlink)
    finally:
        watch.close()


def test_a_bell_moved_away_is_watched_again_when_rung(tmp_path: Path) -> None:
    """Kills bell BellWatch.drain__mutmut_7 (`IN_DELETE_SELF & IN_MOVE_SELF`: a move does not re-arm):
    a bell renamed away keeps its watch (IN_MOVE_SELF only), on a file nobody rings any more."""
    watch = BellWatch(tmp_path)
    try:
        assert _ring_after(watch, tmp_path, lambda: os.rename(bell_path(tmp_path), tmp_path / "old-bell"))
    finally:
        watch.close()


def test_a_drain_that_saw_only_rings_and_changes_touches_no_file(tmp_path: Path) -> None:
    """Kills bell BellWatch.drain__mutmut_2 (always re-arms) and `_6` (`|`: any event re-arms): a
    drain re-arms only for a bell gone or moved; here the root is removed while its bell lives on (a
    hard link elsewhere: IN_ATTRIB, no IN_DELETE_SELF), and the drain must not try to make a bell
    in a root that no longer exists."""
    root = tmp_path / "root"
    root.mkdir()
    watch = BellWatch(root)
    try:
        ring(root)
        os.link(bell_path(root), tmp_path / "kept")
        os.unlink(bell_path(root))
        root.rmdir()
        watch.drain()
        assert not root.exists()
    finally:
        watch.close()


def test_a_drain_never_waits_for_a_ring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Kills bell BellWatch.drain__mutmut_5 (`read(timeout=1)`: every drain with nothing pending
    polls 1 ms): the stream drains before each query, on its caller's thread or event loop."""
    polls: list[object] = []

    class Poller:
        def __init__(self) -> None:
            self._real = real_poll()

        def register(self, *args: Any) -> None:
            self._real.register(*args)

        def poll(self, timeout: Any = None) -> list[tuple[int, int]]:
            polls.append(timeout)
            return self._real.poll(timeout)

    real_poll = select.poll
    monkeypatch.setattr(inotify_simple, "poll", Poller)
    watch = BellWatch(tmp_path)
    try:
        watch.drain()
        ring(tmp_path)
        watch.drain()
        assert watch.wait(0) is False  # drained
        assert polls == []
    finally:
        watch.close()


# -- engine.py ---------------------------------------------------------------------------------


def test_the_revision_read_waits_the_stores_busy_timeout_to_the_millisecond(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kills engine `_current_revision__mutmut_18` (`BUSY_TIMEOUT_MS / 1001`: 29.97 s): the read under
    the init lock waits as long as every other connection of the store, as SQLite reports it."""
    _one_container(tmp_path)
    real = sqlite3.connect
    timeouts: list[int] = []

    def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        con = real(*args, **kwargs)
        timeouts.append(con.execute("PRAGMA busy_timeout").fetchone()[0])
        return con

    monkeypatch.setattr(sqlite3, "connect", connect)
    assert engine._current_revision(tmp_path / engine.DB_NAME) == engine.HEAD_REVISION
    assert timeouts == [engine.BUSY_TIMEOUT_MS]


def test_a_revision_that_is_not_utf8_is_refused_as_unreadable(tmp_path: Path) -> None:
    """Kills engine `_current_revision__mutmut_61` (`getattr(exc, "sqlite_errorname")` without its
    default): the decoding error is Python's sqlite3's own, without SQLite's error name; the store is
    refused as unreadable, not with an AttributeError."""
    _one_container(tmp_path)
    db = tmp_path / engine.DB_NAME
    _sql(db, "UPDATE alembic_version SET version_num = CAST(X'FF30' AS TEXT)")
    with pytest.raises(StoreUnreadable) as info:
        Repository(tmp_path)
    assert info.value.path == str(db)
    assert "Could not decode to UTF-8 column 'version_num'" in str(info.value)


def test_each_transaction_sets_its_synchronous_level_once_and_begins_as_asked(tmp_path: Path) -> None:
    """Kills engine `_on_connect__mutmut_12`–`_16` and `make_engine__mutmut_26`–`_34` (the level a
    connection starts at, or the one it last set, remembered under another key or value: a PRAGMA
    before every transaction, or before the first), `_17`–`_20`/`_25` (the level asked for lost),
    and `_35`–`_38`/`_40`–`_43` (a read-only transaction taking the write lock, or a writer not).

    What the module promises: an ordinary transaction after an ordinary one costs no extra statement,
    a durable one runs under `synchronous = FULL` (2), the next ordinary one under NORMAL (1) again;
    writers BEGIN IMMEDIATE, readers DEFERRED. Read from SQLite's own trace (keywords' case aside)."""
    _one_container(tmp_path)
    eng = engine.make_engine(tmp_path / engine.DB_NAME)
    traced: list[str] = []
    event.listen(eng, "connect", lambda dbapi, _record: dbapi.set_trace_callback(traced.append))

    def transaction(**options: bool) -> tuple[list[str], int, int, int]:
        with eng.execution_options(**options).begin() as connection:
            level = connection.exec_driver_sql("PRAGMA synchronous").scalar_one()
            busy = connection.exec_driver_sql("PRAGMA busy_timeout").scalar_one()
            keys = connection.exec_driver_sql("PRAGMA foreign_keys").scalar_one()
        probes = {"PRAGMA SYNCHRONOUS", "PRAGMA BUSY_TIMEOUT", "PRAGMA FOREIGN_KEYS"}
        statements = [s.upper() for s in traced if s.upper() not in probes]
        traced.clear()
        return statements, level, busy, keys

    try:
        plain = ["BEGIN IMMEDIATE", "COMMIT"]
        assert transaction() == (plain, 1, engine.BUSY_TIMEOUT_MS, 1)
        assert transaction() == (plain, 1, engine.BUSY_TIMEOUT_MS, 1)
        assert transaction(corral_durable=True) == (["PRAGMA SYNCHRONOUS = FULL", *plain], 2, engine.BUSY_TIMEOUT_MS, 1)
        assert transaction(corral_durable=True) == (plain, 2, engine.BUSY_TIMEOUT_MS, 1)
        assert transaction() == (["PRAGMA SYNCHRONOUS = NORMAL", *plain], 1, engine.BUSY_TIMEOUT_MS, 1)
        assert transaction(corral_readonly=True) == (["BEGIN DEFERRED", "COMMIT"], 1, engine.BUSY_TIMEOUT_MS, 1)
        assert transaction() == (plain, 1, engine.BUSY_TIMEOUT_MS, 1)
    finally:
        eng.dispose()


def _refusal(call: Callable[[], object]) -> tuple[str, str, str]:
    """(type name, path, message) of the StoreError that `call` raised."""
    with pytest.raises(StoreError) as info:
        call()
    return type(info.value).__name__, getattr(info.value, "path", ""), str(info.value)


def test_a_store_file_that_cannot_be_looked_at_is_refused_naming_it_and_why(tmp_path: Path) -> None:
    """Kills engine `_check_file__mutmut_12`–`_18`: the stat failing for another reason than a
    missing file or a permission (a symlink loop; open_engine's access check usually sees it first,
    but not a file replaced in between) names the file and the reason."""
    db = tmp_path / engine.DB_NAME
    os.symlink(db, db)
    reason = os.strerror(errno.ELOOP)
    assert _refusal(lambda: engine._check_file(db)) == (
        "StoreUnreadable", str(db), str(StoreUnreadable(str(db), reason))
    )


@pytest.mark.parametrize("kind", ["directory", "fifo"])
def test_a_store_path_that_is_not_a_regular_file_is_refused_as_such(tmp_path: Path, kind: str) -> None:
    """Kills engine `_check_file__mutmut_19`–`_26` (the check inverted, the path or reason changed)."""
    db = tmp_path / engine.DB_NAME
    db.mkdir() if kind == "directory" else os.mkfifo(db)
    assert _refusal(lambda: Repository(tmp_path)) == (
        "StoreUnreadable", str(db), str(StoreUnreadable(str(db), "it is not a regular file"))
    )


@pytest.mark.parametrize("data", [b"S", b"SQLite format 2\x00" + bytes(100)])
def test_a_file_without_sqlites_header_is_refused_untouched(tmp_path: Path, data: bytes) -> None:
    """Kills engine `_check_file__mutmut_27`–`_29` (one byte taken for an empty file: a store made
    over it), `_36`/`_37` (the header not read, or all of the file), `_54`–`_63` (the check inverted,
    the path or the reason changed): the file is left as it was."""
    db = tmp_path / engine.DB_NAME
    db.write_bytes(data)
    assert _refusal(lambda: Repository(tmp_path)) == (
        "StoreUnreadable", str(db), str(StoreUnreadable(str(db), "it is not a SQLite database (bad header)"))
    )
    assert db.read_bytes() == data


def test_an_empty_or_missing_store_file_is_made_a_store(tmp_path: Path) -> None:
    """The other side: kills `_check_file__mutmut_2`/`_29` (a missing or empty file taken for data)."""
    for root in (tmp_path / "missing", tmp_path / "empty"):
        root.mkdir()
        if root.name == "empty":
            (root / engine.DB_NAME).touch()
        assert engine._check_file(root / engine.DB_NAME) is False
        _one_container(root)
        assert engine._check_file(root / engine.DB_NAME) is True
        assert engine._current_revision(root / engine.DB_NAME) == engine.HEAD_REVISION


def test_a_store_file_that_cannot_be_read_after_its_stat_is_refused_naming_it_and_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kills engine `_check_file__mutmut_47`–`_53`: the header read failing for another reason than a
    permission (here EIO, a failing disk) names the file and the reason."""
    _one_container(tmp_path)
    db = tmp_path / engine.DB_NAME

    def failing_open(*args: Any, **kwargs: Any) -> NoReturn:
        raise OSError(errno.EIO, os.strerror(errno.EIO), str(db))

    monkeypatch.setattr(engine, "open", failing_open, raising=False)
    assert _refusal(lambda: engine._check_file(db)) == (
        "StoreUnreadable", str(db), str(StoreUnreadable(str(db), os.strerror(errno.EIO)))
    )


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a child as another user")
def test_a_store_file_the_user_may_not_look_at_or_read_is_a_permission_problem() -> None:
    """Kills engine `_check_file__mutmut_3`–`_11` (its stat denied: the directory not searchable) and
    `_38`–`_46` (its header read denied: the file not readable), each naming the file and the reason in
    lower case (open_engine's access check usually sees both first: this is the file changed since)."""
    with dir_for(NOBODY) as scratch:
        hidden, unreadable = scratch / "hidden", scratch / "unreadable"
        hidden.mkdir(mode=0o700)
        unreadable.mkdir(mode=0o755)
        for root in (hidden, unreadable):
            _one_container(root)
            os.chmod(root / engine.DB_NAME, 0o600)
        expected = {
            root: str(StoreAccessDenied(str(root / engine.DB_NAME), "permission denied"))
            for root in (hidden, unreadable)
        }

        def check(root: Path) -> Callable[[], object]:
            def as_nobody() -> None:
                try:
                    engine._check_file(root / engine.DB_NAME)
                except StoreAccessDenied as exc:
                    assert exc.path == str(root / engine.DB_NAME), exc.path
                    assert str(exc) == expected[root], str(exc)
                else:
                    raise AssertionError("not refused")

            return as_nobody

        assert run_as(NOBODY, check(hidden)) is None
        assert run_as(NOBODY, check(unreadable)) is None


@pytest.mark.parametrize("step", ["stat", "open"])
def test_a_store_file_refused_by_something_else_than_its_mode_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    """Kills engine `_check_file__mutmut_6`/`_9` (stat) and `_41`/`_44` (open): EPERM (an LSM or a
    seccomp filter refusing, not the file's mode) is told as the system says it, "operation not
    permitted", not as "permission denied"."""
    _one_container(tmp_path)
    db = tmp_path / engine.DB_NAME
    denied = PermissionError(errno.EPERM, os.strerror(errno.EPERM), str(db))
    if step == "stat":
        real_stat = Path.stat

        def stat(self: Path, *args: Any, **kwargs: Any) -> os.stat_result:
            if self == db:
                raise denied
            return real_stat(self, *args, **kwargs)

        monkeypatch.setattr(Path, "stat", stat)
    else:

        def failing_open(*args: Any, **kwargs: Any) -> NoReturn:
            raise denied

        monkeypatch.setattr(engine, "open", failing_open, raising=False)
    assert _refusal(lambda: engine._check_file(db)) == (
        "StoreAccessDenied", str(db), str(StoreAccessDenied(str(db), "operation not permitted"))
    )


def test_a_new_store_directory_is_private_to_its_owner(tmp_path: Path) -> None:
    """Kills engine `open_engine__mutmut_8` (no mode: 0o777 less the umask, readable by everyone) and
    `_11` (0o701): the store (container configs, PIDs, paths) is made 0o700, as runc's state dir."""
    root = tmp_path / "new" / "root"
    old = os.umask(0o022)
    try:
        _one_container(root)
    finally:
        os.umask(old)
    assert os.stat(root).st_mode & 0o7777 == 0o700


@pytest.mark.parametrize("code", [errno.EACCES, errno.EPERM])
def test_a_store_directory_the_user_may_not_make_is_refused_naming_it_and_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    """Kills engine `open_engine__mutmut_12`-`_17` (the directory's path or the reason lost, or the
    reason upper-cased) and, with EPERM (an LSM refusing, not a mode), `_15` (the default "permission
    denied" said instead) and `_18` (`strerror and "permission denied"`): making the store's directory
    refused is a StoreAccessDenied naming that directory and the reason the system gave, lower-cased."""
    root = tmp_path / "new" / "root"
    real_mkdir = Path.mkdir

    def mkdir(self: Path, *args: Any, **kwargs: Any) -> None:
        if self == root:
            raise PermissionError(code, os.strerror(code), str(root))
        real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    reason = os.strerror(code).lower()
    assert _refusal(lambda: engine.open_engine(root)) == (
        "StoreAccessDenied", str(root), str(StoreAccessDenied(str(root), reason))
    )


def test_a_store_directory_that_cannot_be_made_is_refused_naming_it_and_why(tmp_path: Path) -> None:
    """Kills engine `open_engine__mutmut_21` (the message lost): a store root below a regular file
    cannot be made (ENOTDIR); the StoreError names the root and the system's reason."""
    (tmp_path / "file").touch()
    root = tmp_path / "file" / "root"
    assert _refusal(lambda: engine.open_engine(root)) == (
        "StoreError", "", f"{root}: cannot create the store directory ({os.strerror(errno.ENOTDIR)})"
    )


def test_a_store_whose_upgrade_fails_is_refused_naming_it_and_left_as_it_was(tmp_path: Path) -> None:
    """Kills engine `open_engine__mutmut_30`-`_33` (the database error of an upgrade told without the
    store's path, or not as a StoreError): a store that says 0006 but already has 0007's index (an
    upgrade done by hand, say) fails the upgrade; the error names the file and SQLite's reason, and
    the upgrade's transaction is rolled back (the revision still 0006)."""
    _one_container(tmp_path)
    db = tmp_path / engine.DB_NAME
    _sql(db, "UPDATE alembic_version SET version_num = '0006_indexes'")
    reason = "SQLITE_ERROR: index ix_containers_live already exists"
    assert _refusal(lambda: engine.open_engine(tmp_path)) == (
        "StoreError",
        "",
        f"{db}: the database failed ({reason}); nothing was committed. Check the disk and the kernel "
        f"log (dmesg), and that nothing else writes the files in {tmp_path}",
    )
    assert engine._current_revision(db) == "0006_indexes"


def _files(root: Path) -> list[str]:
    return sorted(os.listdir(root))


def test_a_store_at_the_head_opens_without_taking_the_init_lock(tmp_path: Path) -> None:
    """Kills engine `_open__mutmut_3`/`_4` (the first look skipped: every open takes the init lock).

    The common case, a store at the current revision, is opened after one immutable read: it does
    not wait for another process creating or upgrading a store, and makes no lock file."""
    _one_container(tmp_path)
    (tmp_path / (engine.DB_NAME + ".init-lock")).unlink()
    before = _files(tmp_path)
    repo = Repository(tmp_path)
    try:
        assert repo.find("c1") is not None
    finally:
        repo.close()
    assert _files(tmp_path) == before
    assert engine.DB_NAME + ".init-lock" not in before


def test_a_store_at_an_unknown_revision_is_refused_at_the_first_look_leaving_no_trace(tmp_path: Path) -> None:
    """Kills engine `_open__mutmut_3`/`_4`/`_14` (the unknown revision not refused at the first look:
    the init lock taken, its file made, the file read again leaving -wal/-shm behind) and `_13` (the
    refusal naming "None"): a store written by a newer corral is refused naming it, and untouched."""
    _one_container(tmp_path)
    db = tmp_path / engine.DB_NAME
    _sql(db, "UPDATE alembic_version SET version_num = '9999_future'")
    (tmp_path / (engine.DB_NAME + ".init-lock")).unlink()
    before, data = _files(tmp_path), db.read_bytes()
    assert before == [engine.DB_NAME, "corral.events"]
    with pytest.raises(UnknownRevision) as info:
        Repository(tmp_path)
    assert (info.value.path, info.value.revision) == (str(db), "9999_future")
    assert str(info.value) == str(UnknownRevision(str(db), "9999_future", engine.HEAD_REVISION))
    assert _files(tmp_path) == before
    assert db.read_bytes() == data


def test_a_foreign_database_in_wal_mode_is_refused_leaving_no_file_beside_it(tmp_path: Path) -> None:
    """Kills engine `_open__mutmut_7`/`_10` (the first look not immutable): a plain read-only open of
    a database in WAL mode makes its -wal and -shm files; a file that may not be corral's must be
    refused leaving no trace."""
    db = tmp_path / engine.DB_NAME
    _sql(db, "PRAGMA journal_mode = WAL", "CREATE TABLE notes (x)")
    assert _files(tmp_path) == [engine.DB_NAME]
    data = db.read_bytes()
    assert _refusal(lambda: Repository(tmp_path)) == (
        "StoreUnreadable", str(db), str(StoreUnreadable(str(db), "it has tables (notes) but no corral schema"))
    )
    assert _files(tmp_path) == [engine.DB_NAME]
    assert db.read_bytes() == data


def test_a_revision_unknown_only_in_the_wal_is_refused_before_any_upgrade(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kills engine `_open__mutmut_24` (the refusal under the init lock naming "None") and `_25`
    (not refused there: the engine made and Alembic, ~280 ms, imported to find out the same).

    The first look (immutable: the main file only) sees a known older revision; the one committed
    since, still in the WAL (another process holds the store open), is unknown: the read under the
    init lock sees it and refuses the store, naming it, before anything is upgraded."""
    _one_container(tmp_path)
    db = tmp_path / engine.DB_NAME
    _sql(db, "UPDATE alembic_version SET version_num = '0006_indexes'")
    holder = sqlite3.connect(db)  # keeps the WAL from being checkpointed on close
    try:
        holder.execute("UPDATE alembic_version SET version_num = '9999_future'")
        holder.commit()
        assert engine._current_revision(db, immutable=True) == "0006_indexes"

        def upgrade(*args: Any) -> None:
            raise AssertionError(f"upgrade attempted: {args}")

        monkeypatch.setattr(engine, "_upgrade", upgrade)
        with pytest.raises(UnknownRevision) as info:
            Repository(tmp_path)
        assert str(info.value) == str(UnknownRevision(str(db), "9999_future", engine.HEAD_REVISION))
    finally:
        holder.close()


# -- repository.py (Repository's methods) --------------------------------------------------------


def _transactions(repo: Repository) -> list[str]:
    """Every statement the repository's engine runs from now on, upper-cased (its connections made later)."""
    traced: list[str] = []
    event.listen(repo.engine, "connect", lambda dbapi, _record: dbapi.set_trace_callback(traced.append))
    repo.engine.dispose()  # connections already pooled would not be traced
    return traced


def _tombstone(repo: Repository, cid: str) -> int:
    """A destroyed record "cid" (a finished tombstone); its key."""
    record = repo.insert(container_id=cid, state="creating", pending_event="create", config="{}", bundle=None,
                         run_dir=f"/run/x/{cid}", boot_id="boot-a", cgroup_paths={}, journal_event="create")
    repo.update(record.key, record.version, base=record, state="destroyed", pending_event=None)
    return record.key


def test_reads_begin_deferred_and_purge_commits_durably(tmp_path: Path) -> None:
    """Kills repository `Repository.__init____mutmut_26`/`_27` (reads beginning IMMEDIATE: each would take
    the write lock, waiting behind every writer, and hold it), `_34`/`_35` (durable transactions under
    `synchronous = NORMAL`) and `purge__mutmut_1`/`_2` (purge committing without an fsync: purged
    tombstones could come back after a power loss, their ids then unknown to the caller who purged).
    Read from SQLite's own trace (its keywords' case aside)."""
    _one_container(tmp_path)
    repo = Repository(tmp_path)
    try:
        key = _tombstone(repo, "gone")
        traced = _transactions(repo)
        key1 = repo.find("c1").key  # type: ignore[union-attr]
        repo.history(key1)
        repo.journal_since(0)
        repo.events_after(0)
        repo.last_seq()
        repo.processes(key1)
        repo.recovered_boot()
        reads = [s.upper() for s in traced if s.upper().startswith(("BEGIN", "PRAGMA", "COMMIT"))]
        assert reads == ["BEGIN DEFERRED", "COMMIT"] * 6
        traced.clear()
        assert repo.purge([key]) == [key]
        statements = [s.upper() for s in traced if s.upper().startswith(("BEGIN", "PRAGMA", "COMMIT"))]
        assert statements == ["PRAGMA SYNCHRONOUS = FULL", "BEGIN IMMEDIATE", "COMMIT"]
        traced.clear()
        repo.mark_recovered("boot-b")
        statements = [s.upper() for s in traced if s.upper().startswith(("BEGIN", "PRAGMA", "COMMIT"))]
        assert statements == ["PRAGMA SYNCHRONOUS = NORMAL", "BEGIN IMMEDIATE", "COMMIT"]
    finally:
        repo.close()


def test_events_after_answers_at_most_a_thousand_entries_by_default(tmp_path: Path) -> None:
    """Kills repository `Repository.events_after__mutmut_1` (a default limit of 1001): the event stream
    reads the journal in pages of 1000 entries."""
    _one_container(tmp_path)
    _sql(
        tmp_path / engine.DB_NAME,
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000) "
        "INSERT INTO journal (container_key, event, from_state, to_state, at, detail) "
        "SELECT 1, 'signal', 'created', 'created', '2026-12-02 10:00:00.000000', '{}' FROM n",
    )
    repo = Repository(tmp_path)
    try:
        assert repo.last_seq() == 1001
        assert [e.seq for _, e in repo.events_after(0)] == list(range(1, 1001))
        assert [e.seq for _, e in repo.events_after(1000)] == [1001]
    finally:
        repo.close()


def test_events_of_chosen_containers_come_in_journal_order(tmp_path: Path) -> None:
    """Kills repository `Repository.events_after__mutmut_27` (no ORDER BY): asked for some containers'
    events, SQLite reads them container by container (through the index on id); a stream must see
    them in the order they happened, whoever they are about."""
    repo = Repository(tmp_path)
    try:
        keys = {}
        for cid in ("b", "a"):
            record = repo.insert(container_id=cid, state="creating", pending_event="create", config="{}",
                                 bundle=None, run_dir=f"/run/x/{cid}", boot_id="boot-a", cgroup_paths={},
                                 journal_event="create")
            keys[cid] = record
        for cid in ("b", "a"):
            record = keys[cid]
            repo.update(record.key, record.version, base=record, state="created", pending_event=None,
                        journal=("create", "creating", "created", None))
        entries = repo.events_after(0, ids=["a", "b"])
        assert [(cid, e.seq, e.to_state) for cid, e in entries] == [
            ("b", 1, "creating"), ("a", 2, "creating"), ("b", 3, "created"), ("a", 4, "created")
        ]
    finally:
        repo.close()


def test_purge_deletes_only_finished_tombstones_whatever_the_store_says(tmp_path: Path) -> None:
    """Kills repository `Repository.purge__mutmut_11`-`_13` (one of the three conditions of a finished
    tombstone dropped). corral keeps `live_id` NULL exactly when the state is destroyed, so each
    condition also guards the others: a row edited by hand that breaks that (destroyed but still
    holding its live id, a NULL live id in another state) or a tombstone with an intent left pending
    is not purged, whatever keys the caller passed; a finished tombstone is, with its journal."""
    repo = Repository(tmp_path)
    try:
        keys = {cid: _tombstone(repo, cid) for cid in ("done", "live-id", "not-destroyed", "pending")}
        live = _created(repo, "live")
    finally:
        repo.close()
    _sql(
        tmp_path / engine.DB_NAME,
        "UPDATE containers SET live_id = id WHERE id = 'live-id'",
        "UPDATE containers SET state = 'stopped' WHERE id = 'not-destroyed'",
        "UPDATE containers SET pending_event = 'destroy' WHERE id = 'pending'",
    )
    repo = Repository(tmp_path)
    try:
        assert repo.purge([*keys.values(), live.key]) == [keys["done"]]
        left = {r.id for r in repo.all(include_destroyed=True)}
        assert left == {"live-id", "not-destroyed", "pending", "live"}
        assert repo.history(keys["done"]) == [] and repo.history(keys["pending"]) != []
    finally:
        repo.close()


def test_listing_leaves_tombstones_out_unless_asked(tmp_path: Path) -> None:
    """Kills repository `Repository.listing__mutmut_1` (tombstones listed by default): `list()` shows
    the containers that exist, as `all()` does."""
    repo = Repository(tmp_path)
    try:
        gone = _tombstone(repo, "gone")
        here = _created(repo, "here")
        assert repo.listing() == [(here.key, "here")]
        assert repo.listing(include_destroyed=True) == [(gone, "gone"), (here.key, "here")]
        assert [r.id for r in repo.all()] == ["here"]
    finally:
        repo.close()


def test_all_filters_by_labels_and_states_as_asked(tmp_path: Path) -> None:
    """Kills repository `Repository.all__mutmut_3` (`labels` ignored) and `_4` (`states` ignored): the
    records `all()` returns are those `listing()` names, filtered the same way in the one query."""
    repo = Repository(tmp_path)
    try:
        for cid, annotations in (("plain", {}), ("tagged", {"team": "a"}), ("other", {"team": "b"})):
            repo.insert(container_id=cid, state="creating", pending_event="create",
                        config=json.dumps({"annotations": annotations}), bundle=None, run_dir=f"/run/x/{cid}",
                        boot_id="boot-a", cgroup_paths={}, journal_event="create")
        plain = repo.find("plain")
        assert plain is not None
        repo.update(plain.key, plain.version, base=plain, state="created", pending_event=None)
        assert [r.id for r in repo.all(labels={"team": "a"})] == ["tagged"]
        assert [r.id for r in repo.all(labels={"team": None})] == ["tagged", "other"]
        assert [r.id for r in repo.all(states={"created"})] == ["plain"]
        assert [r.id for r in repo.all(states={"creating"}, labels={"team": "b"})] == ["other"]
        assert [(r.key, r.id) for r in repo.all(labels={"team": None})] == repo.listing(labels={"team": None})
    finally:
        repo.close()


def _read_afresh(root: Path, key: int) -> ContainerRecord:
    """The record as a Repository opened now reads it (another process's view: every field from the row)."""
    other = Repository(root)
    try:
        return other.get(key)
    finally:
        other.close()


def _created(repo: Repository, cid: str) -> ContainerRecord:
    record = repo.insert(container_id=cid, state="creating", pending_event="create", config="{}", bundle=None,
                         run_dir=f"/run/x/{cid}", boot_id="boot-a", cgroup_paths={}, journal_event="create")
    return repo.update(record.key, record.version, base=record, state="created", pending_event=None)


def test_an_update_refused_says_what_and_why(tmp_path: Path) -> None:
    """Kills repository `Repository.update__mutmut_4`-`_7` (the columns refused not named, sorted and
    comma-separated), `_11`-`_13` (the base mismatch told otherwise), `_73` (a vanished record not
    named) and `_71`/`_74`-`_77` (a concurrent change told about another record, another id or
    without the versions): each refusal changes nothing."""
    repo = Repository(tmp_path)
    try:
        first, second = _created(repo, "first"), _created(repo, "second")
        with pytest.raises(ValueError) as info:
            repo.update(first.key, first.version, run_dir="/elsewhere", id="other", state="running")
        assert str(info.value) == "not updatable: id, run_dir"
        with pytest.raises(ValueError) as info:
            repo.update(first.key, first.version + 1, base=first, state="running")
        assert str(info.value) == "base is not the record decided on"
        with pytest.raises(StoreError) as vanished:
            repo.update(first.key + second.key + 100, 1, state="running")
        assert str(vanished.value) == f"{repo.path}: container record {first.key + second.key + 100} vanished"
        changed = repo.update(second.key, second.version, base=second, last_error="x")
        with pytest.raises(ConcurrentModification) as conflict:
            repo.update(second.key, second.version, state="running")
        assert conflict.value.container_id == "second"
        assert str(conflict.value) == str(
            ConcurrentModification("second", f"record version {changed.version}, decided on {second.version}")
        )
        assert (repo.find("first"), repo.find("second")) == (first, changed)
    finally:
        repo.close()


@pytest.mark.parametrize("with_base", [True, False])
def test_an_update_returns_and_keeps_the_record_as_stored(tmp_path: Path, with_base: bool) -> None:
    """Kills repository `Repository.update__mutmut_142`-`_149` (the record handed back from `base` with
    another `updated_at` or version than the stored one), `_153`/`_155` (without its new namespaces),
    `_159`-`_165` (not kept for the reload, or kept under another key or stamp: the reload reads
    the row again). With `base` absent the row is read back. What `update` returns is what another
    process reads, and the reload under the next lock checks its stamp (id, created_at, version),
    not the whole row."""
    _one_container(tmp_path)
    repo = Repository(tmp_path)
    try:
        record = repo.find("c1")
        assert record is not None
        namespaces = {"net": NamespaceRecord("/proc/7/ns/net", 4026532001), "pid": NamespaceRecord("/proc/7/ns/pid", None)}
        base = record if with_base else None
        updated = repo.update(record.key, record.version, base=base, namespaces=namespaces, state="running",
                              journal=("start", "created", "running", None))
        assert updated.version == record.version + 1 and updated.updated_at > record.updated_at
        assert dict(updated.namespaces) == namespaces
        traced = _reader_statements(repo)
        assert repo.get(record.key) is updated
        stamp = f"SELECT ID, CREATED_AT, VERSION FROM CONTAINERS WHERE KEY = {record.key}"
        assert traced == ["PRAGMA DATA_VERSION", "BEGIN", stamp, "COMMIT"]  # its stamp checked, not read
        assert _read_afresh(tmp_path, record.key) == updated
    finally:
        repo.close()


def test_an_update_of_namespaces_replaces_only_its_own_containers(tmp_path: Path) -> None:
    """Kills repository `Repository.update__mutmut_87` (`container_key != key`: the other containers'
    namespace paths deleted): recovery and `exec` join a container by its recorded namespace paths."""
    repo = Repository(tmp_path)
    try:
        a, b = _created(repo, "a"), _created(repo, "b")
        mine = {"net": NamespaceRecord("/proc/7/ns/net", 1)}
        theirs = {"net": NamespaceRecord("/proc/8/ns/net", 2)}
        a = repo.update(a.key, a.version, base=a, namespaces=mine)
        b = repo.update(b.key, b.version, base=b, namespaces=theirs)
        a = repo.update(a.key, a.version, base=a, namespaces={"pid": NamespaceRecord("/proc/7/ns/pid", 3)})
    finally:
        repo.close()
    assert dict(_read_afresh(tmp_path, a.key).namespaces) == {"pid": NamespaceRecord("/proc/7/ns/pid", 3)}
    assert dict(_read_afresh(tmp_path, b.key).namespaces) == theirs


def test_writing_again_the_durable_state_decided_on_is_an_ordinary_commit(tmp_path: Path) -> None:
    """Kills repository `Repository.update__mutmut_41` (the state decided on taken from `base` even
    when the journal says it: none without `base`), `_45`/`_47` (the one `base` says ignored): a
    signal to a created container writes `created` again, however the caller names the state it
    decided on; only a change to created or destroyed pays the fsync (here: destroy's outcome)."""
    repo = Repository(tmp_path)
    try:
        levels: list[int] = []

        @event.listens_for(repo.engine, "commit")
        def _commit(conn: Any) -> None:
            levels.append(conn.connection.dbapi_connection.execute("PRAGMA synchronous").fetchone()[0])

        r = _created(repo, "c1")
        levels.clear()
        r = repo.update(r.key, r.version, journal=("signal", "created", "created", {"signal": 10}), state="created")
        r = repo.update(r.key, r.version, base=r, state="created", last_error=None)
        r = repo.update(r.key, r.version, journal=("destroy", "created", "destroyed", {}), state="destroyed")
        assert levels == [1, 1, 2]  # NORMAL, NORMAL, FULL
    finally:
        repo.close()


def test_an_update_rings_the_bell_when_it_journals_and_only_then(tmp_path: Path) -> None:
    """Kills repository `Repository.update__mutmut_157` (the bell rung after the updates that journal
    nothing, not after those that do): event streams wake on the bell to read the journal; a ring
    without a new entry costs each of them a query, a missing one leaves them asleep."""
    repo = Repository(tmp_path)
    try:
        record = _created(repo, "c1")
        watch = BellWatch(tmp_path)
        try:
            record = repo.update(record.key, record.version, base=record, last_error="x")
            assert watch.wait(0) is False
            repo.update(record.key, record.version, base=record, state="running",
                        journal=("start", "created", "running", None))
            assert watch.wait(0) is True
        finally:
            watch.close()
    finally:
        repo.close()


def test_a_journal_detail_is_stored_with_sorted_keys(tmp_path: Path) -> None:
    """Kills repository `Repository.update__mutmut_122`/`_124`/`_127` (the detail's keys in the caller's
    order): the stored text is byte for byte what insert, the one-shot CLI and the monitors write
    (sorted keys), which a comparison of two stores or a reader of the raw journal sees."""
    repo = Repository(tmp_path)
    try:
        record = _created(repo, "c1")
        repo.update(record.key, record.version, base=record, state="running",
                    journal=("start", "created", "running", {"pid": 7, "at": "x"}))
    finally:
        repo.close()
    con = sqlite3.connect(tmp_path / engine.DB_NAME)
    try:
        rows = con.execute("SELECT detail FROM journal WHERE event = 'start'").fetchall()
    finally:
        con.close()
    assert rows == [('{"at": "x", "pid": 7}',)]


# -- reader.py ---------------------------------------------------------------------------------


def _reader_statements(repo: Repository, *, upper: bool = True) -> list[str]:
    """Every statement this thread's record reader (its own connection) runs from now on, upper-cased
    unless `upper` is False."""
    traced: list[str] = []
    con = repo._reader._connection().con  # noqa: SLF001 - the reader's one connection: what it costs
    assert con is not None
    con.set_trace_callback((lambda statement: traced.append(statement.upper())) if upper else traced.append)
    return traced


def test_a_record_read_again_while_nothing_committed_costs_one_pragma(tmp_path: Path) -> None:
    """Kills reader `RecordReader.get__mutmut_1` (the lookup made without the key: the kept record
    never handed out by the pragma alone) and `_20` (a record read kept without the data version
    it was read at: the next read checks its stamp again). The module's promise: a record read once
    is handed out again, while nothing commits, for one `PRAGMA data_version`."""
    _one_container(tmp_path)
    repo = Repository(tmp_path)
    try:
        key = repo.find("c1").key  # type: ignore[union-attr]
        _sql(tmp_path / engine.DB_NAME, "UPDATE containers SET state = 'stopped', version = version + 1")
        traced = _reader_statements(repo)
        first = repo.get(key)  # another process wrote it: read again, row and paths
        assert first.state == "stopped"
        assert f"SELECT * FROM CONTAINERS WHERE KEY = {key} ORDER BY KEY" in traced
        traced.clear()
        assert repo.get(key) is first
        assert repo.get(key) is first
        assert traced == ["PRAGMA DATA_VERSION"] * 2
    finally:
        repo.close()


def test_a_key_without_a_record_is_a_record_that_vanished(tmp_path: Path) -> None:
    """Kills reader `RecordReader.get__mutmut_30` (`found[0]` of nothing: an IndexError, not the
    Repository's error for a record that vanished)."""
    _one_container(tmp_path)
    repo = Repository(tmp_path)
    try:
        with pytest.raises(StoreError, match=r"container record 4242 vanished$"):
            repo.get(4242)
    finally:
        repo.close()


def test_the_record_reader_waits_the_stores_busy_timeout(tmp_path: Path) -> None:
    """Kills reader `RecordReader.__init____mutmut_4`/`_5` (the timeout taken ×1000 or /1001) and
    `_connection__mutmut_8` (no timeout: sqlite3's 5 s), as SQLite reports it: a record read waits for
    a writer as long as the store's other connections (engine.BUSY_TIMEOUT_MS)."""
    _one_container(tmp_path)
    repo = Repository(tmp_path)
    try:
        con = repo._reader._connection().con
        assert con is not None
        assert con.execute("PRAGMA busy_timeout").fetchone()[0] == engine.BUSY_TIMEOUT_MS
    finally:
        repo.close()


def test_a_record_found_by_id_is_read_once_and_kept(tmp_path: Path) -> None:
    """Kills reader `RecordReader.select__mutmut_4` (a record read by a query kept without the data
    version: the next `get` checks its stamp again) and `_8` (`find`'s LIMIT 1 dropped: every past
    incarnation of the id read and built too). `find` then `get` is what a CLI command does."""
    _one_container(tmp_path)
    repo = Repository(tmp_path)
    try:
        old = repo.find("c1")
        assert old is not None
        repo.update(old.key, old.version, base=old, state="destroyed")
        _one_container(tmp_path)  # a new "c1"; the old one is a tombstone
        _sql(tmp_path / engine.DB_NAME, "UPDATE containers SET last_error = 'x', version = version + 1")
        traced = _reader_statements(repo)
        found = repo.find("c1")
        assert found is not None and found.key != old.key and found.state == "created"
        rows = [s for s in traced if s.startswith("SELECT * FROM CONTAINERS")]
        assert rows == ["SELECT * FROM CONTAINERS WHERE ID = 'C1' ORDER BY LIVE_ID IS NULL, KEY DESC LIMIT 1"]
        traced.clear()
        assert repo.get(found.key) is found
        assert traced == ["PRAGMA DATA_VERSION"], traced
    finally:
        repo.close()


def test_the_paths_of_a_record_are_kept_once_create_is_recorded_and_not_before(tmp_path: Path) -> None:
    """Kills reader `RecordReader._select__mutmut_69`–`_71` (the paths of a record still `creating`
    kept: the cgroup paths its create records later never seen) and `_72` (no paths ever kept: read
    again at every change of the record, three statements more each time)."""
    repo = Repository(tmp_path)
    try:
        record = repo.insert(container_id="c", state="creating", pending_event="create", config="{}", bundle=None,
                             run_dir="/run/x/c", boot_id="b", cgroup_paths={}, journal_event="create")
        db = tmp_path / engine.DB_NAME
        _sql(db, "UPDATE containers SET last_error = 'spawning', version = version + 1")  # read in full now
        assert repo.get(record.key).cgroup_paths == {}  # type: ignore[union-attr]
        _sql(db, f"INSERT INTO cgroup_paths (container_key, hierarchy, path) VALUES ({record.key}, 'memory', '/m/c')",
             "UPDATE containers SET state = 'created', pending_event = NULL, version = version + 1")
        assert repo.get(record.key).cgroup_paths == {"memory": "/m/c"}  # type: ignore[union-attr]
        _sql(db, "UPDATE containers SET last_error = 'x', version = version + 1")
        traced = _reader_statements(repo)
        again = repo.get(record.key)
        assert again is not None and again.last_error == "x" and again.cgroup_paths == {"memory": "/m/c"}
        assert not [s for s in traced if "CGROUP_PATHS" in s], traced
    finally:
        repo.close()


# -- observed.py -------------------------------------------------------------------------------


def test_an_oom_kill_waits_for_the_containers_lock_then_is_recorded(runtime: Runtime, config: Config) -> None:
    """Kills observed `oom__mutmut_25` (no connection for the lock's wait: AttributeError), `_28`/`_29`
    (the key or the init left out of the wait's check: a live container's busy lock taken for one with
    nothing left to record, the kill dropped). The OOM kill is recorded once the lock is free."""
    runtime.create("c", config).start()
    arguments = _observed_arguments(runtime, "c")
    result: list[object] = []

    def oom() -> None:
        try:
            result.append(observed.oom(**arguments, count=1))
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            result.append(exc)

    with runtime.context.locks.hold("c"):
        thread = threading.Thread(target=oom)
        thread.start()
        time.sleep(0.3)  # it tries the lock (busy) and waits, until the hold below ends
    thread.join(10)
    assert result == [True]
    assert [e.detail for e in runtime.load("c").history() if e.event == "oom"] == [{"oom_kills": 1}]


def test_an_oom_kill_of_a_locked_container_being_destroyed_is_not_recorded(runtime: Runtime, config: Config) -> None:
    """Kills observed `oom__mutmut_36` (True when nothing was written: the lock never taken because
    a destroy, which records the end itself, holds it)."""
    box = runtime.create("c", config)
    box.start()
    arguments = _observed_arguments(runtime, "c")
    with runtime.context.locks.hold("c"):
        record = box.record
        runtime.context.store.update(record.key, record.version, pending_event="destroy")
        assert observed.oom(**arguments, count=1) is False
    assert "oom" not in [e.event for e in runtime.load("c").history()]


def test_the_monitor_gives_up_on_a_locked_container_that_is_no_longer_live(runtime: Runtime, config: Config) -> None:
    """Kills observed `_pointless__mutmut_10` (`and`: a record no longer live, same init, not a reason
    to give up) and `_11` (`row is None and ...`: the same). A controller that recorded the exit
    (`wait()`, `state`) may hold the lock a long time (a destroy waits for the monitor): the monitor
    sees nothing left to record and returns while the lock is still held."""
    box = runtime.create("c", config)
    box.start()
    arguments = _observed_arguments(runtime, "c")
    result: list[object] = []
    with runtime.context.locks.hold("c"):
        record = box.record
        runtime.context.store.update(record.key, record.version, state="stopped", exit_status=0)
        thread = threading.Thread(target=lambda: result.append(observed.exited(**arguments, status=0)))
        thread.start()
        thread.join(10)
        assert result == [False], "still waiting for the lock"
    assert [e.event for e in runtime.load("c").history()].count("exited") == 0


def test_a_damaged_signal_row_does_not_hide_corrals_sigkill_after_it(runtime: Runtime, config: Config) -> None:
    """Kills observed `_sigkilled_by_corral__mutmut_16` (`break` at a signal row whose detail is not
    JSON: the SIGKILL corral sent after it unseen, and the exit taken for an OOM kill)."""
    box = runtime.create("c", config)
    box.start()
    arguments = _observed_arguments(runtime, "c")
    key = box.record.key
    _sql(
        runtime.root / engine.DB_NAME,
        f"INSERT INTO journal (container_key, event, from_state, to_state, at, detail) "
        f"VALUES ({key}, 'signal', 'running', 'running', '2026-12-02 00:00:00.000000', 'not json')",
        f"INSERT INTO journal (container_key, event, from_state, to_state, at, detail) "
        f"VALUES ({key}, 'signal', 'running', 'running', '2026-12-02 00:00:01.000000', '{{\"signal\": 9}}')",
    )
    assert observed.exited(**arguments, status=137, signal=9, oom_killed=True)
    assert runtime.load("c").oom_killed is False


def test_an_exit_told_without_an_oom_verdict_is_not_an_oom_kill(runtime: Runtime, config: Config) -> None:
    """Kills observed `exited__mutmut_1` (`oom_killed=True` by default: every exit a caller reports
    without the kernel's verdict journalled and recorded as an OOM kill)."""
    runtime.create("c", config).start()
    assert observed.exited(**_observed_arguments(runtime, "c"), status=0)
    box = runtime.load("c")
    assert box.oom_killed is False and box.exit_status == 0
    assert [e.detail for e in box.history() if e.event == "exited"] == [
        {"exit_status": 0, "signal": None, "oom_killed": False}
    ]


def test_the_monitors_clock_is_utc_whatever_the_local_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    """Kills observed `utcnow__mutmut_1` (`datetime.now(None)`: local time): the journal's times are
    naive UTC, as the Repository writes them; a host whose zone is not UTC would mix the two."""
    monkeypatch.setenv("TZ", "EST+5")
    time.tzset()
    try:
        utc = datetime.now(timezone.utc).replace(tzinfo=None)
        assert abs((observed.utcnow() - utc).total_seconds()) < 600
    finally:
        monkeypatch.undo()
        time.tzset()


def test_a_write_that_fails_midway_is_rolled_back_and_its_error_raised(runtime: Runtime, config: Config) -> None:
    """Kills observed `_record__mutmut_86`/`_87` (the rollback after an error broken: a TypeError or a
    syntax error raised instead of the error, and the transaction, with the record's update in it,
    left open on the connection). Here the journal's detail cannot be written (a circular value)."""
    box = runtime.create("c", config)
    box.start()
    arguments = _observed_arguments(runtime, "c")
    before = runtime.load("c").record
    detail: dict[str, Any] = {}
    detail["self"] = detail
    with observed._connected(arguments["root"]) as con:
        with pytest.raises(ValueError, match="Circular reference"):
            observed._record(con, arguments["key"], arguments["init_pid"], "exited", detail, {"state": "stopped"},
                             datetime(2026, 12, 2))
        assert not con.in_transaction
    after = runtime.load("c").record
    assert (after.state, after.version) == (before.state, before.version)


def test_the_monitor_takes_only_its_containers_byte_of_the_lock_file(runtime: Runtime, config: Config) -> None:
    """Kills observed `_try_lock__mutmut_16` (a lock 2 bytes long: the next slot too, another
    container's): an exit is recorded while another container holds its own lock."""
    runtime.create("c", config).start()
    arguments = _observed_arguments(runtime, "c")
    neighbour = os.open(arguments["lock_file"], os.O_RDWR | os.O_CLOEXEC)
    result: list[object] = []
    try:
        fcntl.fcntl(neighbour, fcntl.F_OFD_SETLK,
                    struct.pack("hhqqi4x", fcntl.F_WRLCK, os.SEEK_SET, arguments["lock_slot"] + 1, 1, 0))
        thread = threading.Thread(target=lambda: result.append(observed.exited(**arguments, status=0)))
        thread.start()
        thread.join(10)
        assert result == [True], "waited for another container's lock"
    finally:
        os.close(neighbour)
    thread.join(10)


# -- lean_durable.py ---------------------------------------------------------------------------


def test_the_one_shot_create_stores_the_cgroups_it_made_as_the_library_does(tmp_path: Path) -> None:
    """Kills lean_durable `DurableLeanStore.insert__mutmut_9`/`_11`/`_13` (`created_cgroups` JSON
    without sorted keys): the stored text is the Repository's, byte for byte, whatever the order in
    which the cgroups were made (what a reader of the table, or a comparison of stores, sees)."""
    made = {"pids": ("/sys/fs/cgroup/pids/a",), "memory": ("/sys/fs/cgroup/memory/a", "/sys/fs/cgroup/memory/a/b")}
    _one_container(tmp_path)
    repo = Repository(tmp_path)
    try:
        repo.insert(container_id="lib", state="creating", pending_event="create", config="{}", bundle=None,
                    run_dir="/run/x/lib", boot_id="b", cgroup_paths={}, journal_event="create", created_cgroups=made)
    finally:
        repo.close()
    store = open_durable(str(tmp_path))
    assert store is not None
    try:
        store.insert(container_id="cli", config="{}", bundle=None, run_dir="/run/x/cli", boot_id="b",
                     cgroup_paths={}, created_cgroups=made)
    finally:
        store.close()
    con = sqlite3.connect(tmp_path / engine.DB_NAME)
    try:
        stored = dict(con.execute("SELECT id, created_cgroups FROM containers WHERE id IN ('lib', 'cli')").fetchall())
    finally:
        con.close()
    assert stored["cli"] == stored["lib"] == json.dumps({k: list(v) for k, v in made.items()}, sort_keys=True)


# -- repository.py: module functions and Repository.insert (fifth session, moved from killers_10) --
#
# Run on a bare Repository: a record this process wrote comes back from `_record` (ORM rows), a
# record another connection wrote from `_record_from_row` (reader.py's sqlite3 rows); both must be
# the same record, field for field.


def _raw(root: Path, statement: str, *params: object) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(root / "corral.db")
    try:
        with con:
            return con.execute(statement, params).fetchall()
    finally:
        con.close()


def _insert_full(repo: Repository, cid: str = "c1", **extra: Any) -> ContainerRecord:
    arguments: dict[str, Any] = dict(
        container_id=cid,
        state="creating",
        pending_event="create",
        config='{"ociVersion": "1.2.0"}',
        bundle=f"/bundles/{cid}",
        run_dir=f"/run/corral/{cid}",
        boot_id="boot-a",
        cgroup_paths={"memory": f"/sys/fs/cgroup/memory/{cid}", "pids": f"/sys/fs/cgroup/pids/{cid}"},
        journal_event="create",
        journal_detail={"zeta": 1, "alpha": 2},
        created_cgroups={"pids": ("/sys/fs/cgroup/pids/corral", f"/sys/fs/cgroup/pids/corral/{cid}"),
                         "memory": (f"/sys/fs/cgroup/memory/{cid}",)},
        interfaces=(HostInterface("vethb", "eth1", f"corral-{cid}"), HostInterface("vetha", "eth0", "other")),
    )
    arguments.update(extra)
    return repo.insert(**arguments)


def test_a_record_is_the_same_whether_written_here_or_read_from_the_store(tmp_path: Path) -> None:
    """Kills repository x__record__mutmut_1-_66 (any field of a record built from the ORM row lost,
    swapped or left out: what `insert` and `update` without `base` hand back), x__record_from_row__mutmut_1-_100
    but the 21 upper-cased row keys (any field of a record that another process wrote, read lost),
    x__time__mutmut_1-_5 (a stored time, or none, read back), x__created_cgroups__mutmut_1-_3, x__stamp__mutmut_1/
    _2/_5/_6/_7 (an isoformat that raises), and insert__mutmut_1-_8/_10-_21/_23-_29/_31/_33-_35/_37/_39/_41-_56
    (the row's fields, its pending_since, cgroup paths, created cgroups, interfaces in order with their
    positions), _64/_68/_73-_78/_80/_81/_83/_84/_88/_90/_93/_94/_109/_113-_116 (the insert failing)."""
    repo = Repository(tmp_path)
    try:
        written = _insert_full(repo)
        assert written.key >= 1 and written.id == "c1" and written.state == "creating" and written.version == 1
        assert written.pending_event == "create" and written.pending_since == written.created_at == written.updated_at
        assert isinstance(written.created_at, datetime) and written.created_at.tzinfo is None
        assert (written.init_pid, written.init_start_time, written.monitor_pid, written.monitor_start_time) == (None,) * 4
        assert (written.exit_status, written.exit_signal, written.last_error) == (None, None, None)
        assert written.oom_killed is False and written.boot_id == "boot-a"
        assert (written.bundle, written.config, written.run_dir) == ("/bundles/c1", '{"ociVersion": "1.2.0"}', "/run/corral/c1")
        assert written.cgroup_paths == {"memory": "/sys/fs/cgroup/memory/c1", "pids": "/sys/fs/cgroup/pids/c1"}
        assert written.namespaces == {}
        assert written.created_cgroups == {"pids": ("/sys/fs/cgroup/pids/corral", "/sys/fs/cgroup/pids/corral/c1"),
                                           "memory": ("/sys/fs/cgroup/memory/c1",)}
        assert written.interfaces == (HostInterface("vethb", "eth1", "corral-c1"), HostInterface("vetha", "eth0", "other"))
        assert _raw(tmp_path, "SELECT position, host_name, name, owner FROM network_interfaces ORDER BY position") == [
            (0, "vethb", "eth1", "corral-c1"), (1, "vetha", "eth0", "other")]
        assert _raw(tmp_path, "SELECT id, live_id, oom_killed FROM containers") == [("c1", "c1", 0)]
        other = Repository(tmp_path)  # another process's view: every field read from the row
        try:
            assert other.get(written.key) == written
            since = datetime(2026, 1, 2, 3, 4, 5, 600007)
            namespaces = {"net": NamespaceRecord("/proc/41/ns/net", 4026531992), "pid": NamespaceRecord("/proc/41/ns/pid", None)}
            updated = repo.update(  # no base: the record is built from the row read back
                written.key, 1, namespaces=namespaces, state="stopped", pending_event="start", pending_since=since,
                init_pid=41, init_start_time=42, boot_id="boot-b", monitor_pid=43, monitor_start_time=44,
                exit_status=45, exit_signal=9, oom_killed=True, last_error="it broke", config='{"ociVersion": "1.0.2"}',
            )
            assert dataclasses.asdict(updated) == dataclasses.asdict(dataclasses.replace(
                written, state="stopped", pending_event="start", pending_since=since, init_pid=41, init_start_time=42,
                boot_id="boot-b", monitor_pid=43, monitor_start_time=44, exit_status=45, exit_signal=9, oom_killed=True,
                last_error="it broke", config='{"ociVersion": "1.0.2"}', namespaces=namespaces,
                updated_at=updated.updated_at, version=2))
            assert updated.updated_at > written.updated_at
            assert other.get(written.key) == updated
            cleared = repo.update(written.key, 2, pending_event=None, pending_since=None, init_pid=None)
            assert cleared.pending_since is None and cleared.init_pid is None
            assert other.get(written.key) == cleared
        finally:
            other.close()
    finally:
        repo.close()


def test_a_record_without_a_plan_s_extras_reads_back_without_them(tmp_path: Path) -> None:
    """Kills repository insert__mutmut_30 (pending_since set without an intent), _32 (a plan without created
    cgroups taken as one with them: an AttributeError) and _91 (no journal detail
    given: `dict(None)`): a record inserted without an intent, created cgroups or interfaces, as
    one recorded before 0003 is read back."""
    repo = Repository(tmp_path)
    try:
        written = repo.insert(container_id="c0", state="created", pending_event=None, config="{}", bundle=None,
                              run_dir="/run/c0", boot_id="b", cgroup_paths={}, journal_event="create")
        assert (written.pending_since, written.created_cgroups, written.interfaces, written.bundle) == (None, None, (), None)
        assert _raw(tmp_path, "SELECT pending_since, created_cgroups FROM containers") == [(None, None)]
        assert _read_afresh(tmp_path, written.key) == written
    finally:
        repo.close()


def test_insert_stores_its_json_with_sorted_keys(tmp_path: Path) -> None:
    """Kills repository insert__mutmut_36/_38/_40 (the created cgroups' JSON in the caller's key order),
    _87/_89/_92 (the journal detail's likewise), _79/_85/_86 (the detail lost or not JSON) and
    x__journal__mutmut_7-_15/_17 (the detail read back lost or as {}): the stored text is what every
    reader (and lean_durable.py, which writes the same text) compares."""
    repo = Repository(tmp_path)
    try:
        written = _insert_full(repo)
        assert _raw(tmp_path, "SELECT created_cgroups FROM containers") == [
            ('{"memory": ["/sys/fs/cgroup/memory/c1"], '
             '"pids": ["/sys/fs/cgroup/pids/corral", "/sys/fs/cgroup/pids/corral/c1"]}',)]
        assert _raw(tmp_path, "SELECT detail FROM journal") == [('{"alpha": 2, "zeta": 1}',)]
        assert repo.history(written.key)[0].detail == {"alpha": 2, "zeta": 1}
    finally:
        repo.close()


def test_insert_journals_the_creation(tmp_path: Path) -> None:
    """Kills repository x__journal__mutmut_1-_6 (an entry's fields read back lost), _16 (a NULL detail,
    which the column allows, read as JSON: a TypeError, not {}) and insert__mutmut_67 (`!=`: the look
    for the id's live container finds another one, and a second container is refused)."""
    repo = Repository(tmp_path)
    try:
        first = repo.insert(container_id="c1", state="creating", pending_event="create", config="{}", bundle=None,
                            run_dir="/run/c1", boot_id="b", cgroup_paths={}, journal_event="create")
        second = _insert_full(repo, "c2", state="created", pending_event=None, journal_event="adopt")
        _raw(tmp_path, "INSERT INTO journal (container_key, event, from_state, to_state, at, detail) "
                       "VALUES (?, 'note', 'created', 'created', '2026-01-02 03:04:05.000006', NULL)", second.key)
        entries = repo.history(second.key)
        assert [dataclasses.astuple(e) for e in entries] == [
            (entries[0].seq, second.key, "adopt", None, "created", second.created_at, {"alpha": 2, "zeta": 1}),
            (entries[0].seq + 1, second.key, "note", "created", "created", datetime(2026, 1, 2, 3, 4, 5, 6), {}),
        ]
        assert [dataclasses.astuple(e) for e in repo.history(first.key)] == [
            (entries[0].seq - 1, first.key, "create", None, "creating", first.created_at, {})]
        assert _raw(tmp_path, "SELECT detail FROM journal WHERE container_key = ?", first.key) == [("{}",)]
    finally:
        repo.close()


def test_exec_d_processes_are_recorded_and_read_back_field_for_field(tmp_path: Path) -> None:
    """Kills repository x__process__mutmut_1-_22: every field of an exec'd process's record, as
    `add_process` and `finish_process` hand it back and as `processes` reads it."""
    repo = Repository(tmp_path)
    try:
        record = _insert_full(repo)
        before = utcnow()
        added = repo.add_process(record.key, 501, 502, "boot-p", ("sh", "-c", "true"))
        assert (added.container_key, added.pid, added.start_time, added.boot_id, added.args) == (
            record.key, 501, 502, "boot-p", ("sh", "-c", "true"))
        assert added.key >= 1 and before <= added.started_at <= utcnow()
        assert (added.exit_status, added.exit_signal, added.ended_at) == (None, None, None)
        finished = repo.finish_process(added.key, 3, 15)
        assert dataclasses.replace(finished, ended_at=None) == dataclasses.replace(added, exit_status=3, exit_signal=15)
        assert finished.ended_at is not None and finished.ended_at >= added.started_at
        assert repo.processes(record.key) == [finished]
    finally:
        repo.close()


def test_the_store_s_clock_is_utc_whatever_the_local_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    """Kills repository x_utcnow__mutmut_1 (`datetime.now(None)`: the host's local time, stored as if UTC)."""
    monkeypatch.setenv("TZ", "EST+5")
    time.tzset()
    try:
        now = datetime.now(timezone.utc).replace(tzinfo=None)
        assert abs((utcnow() - now).total_seconds()) < 60
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_a_record_just_written_is_checked_by_its_stamp_not_read_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Kills repository x__stamp__mutmut_3/_4 (created_at stamped with a "T", or without its microseconds
    when they are 0, so that it never matches the stored text) and insert__mutmut_110/_111/_112 (the
    record kept under no key, as None, or without its stamp): the reload that follows every write
    then reads the row and its paths again, or hands out nothing, instead of checking the version."""
    monkeypatch.setattr(repository, "utcnow", lambda: datetime(2026, 1, 2, 3, 4, 5))
    repo = Repository(tmp_path)
    try:
        for cid in ("c1", "c2"):
            record = _insert_full(repo, cid)
            reads = _reader_statements(repo, upper=False)
            assert repo.get(record.key) is record
            assert reads == ["PRAGMA data_version", "BEGIN",
                             f"SELECT id, created_at, version FROM containers WHERE key = {record.key}", "COMMIT"]
            updated = repo.update(record.key, record.version, base=record, last_error="x")
            reads.clear()
            assert repo.get(record.key) is updated
            assert not [s for s in reads if s.startswith("SELECT *")], reads
            monkeypatch.setattr(repository, "utcnow", lambda: datetime(2026, 1, 2, 3, 4, 5, 123456))
    finally:
        repo.close()


def test_insert_refuses_an_id_in_use_naming_the_live_container_s_state(tmp_path: Path) -> None:
    """Kills repository insert__mutmut_63/_65/_66 (no look for a live container with the id: the
    constraint's "being created" instead of its state, or an error) and _69-_72 (ContainerExists
    without the id or the live one's state); a tombstone's id is free again."""
    repo = Repository(tmp_path)
    try:
        first = _insert_full(repo, "c1")
        _insert_full(repo, "c2")
        with pytest.raises(ContainerExists) as caught:
            _insert_full(repo, "c1")
        assert str(caught.value) == "container 'c1' already exists (state creating); destroy it first or choose another id"
        assert caught.value.container_id == "c1"
        repo.update(first.key, first.version, base=first, state="destroyed", pending_event=None)
        again = _insert_full(repo, "c1")
        assert again.key != first.key and repo.find("c1") == again
    finally:
        repo.close()


def test_a_create_that_loses_the_race_for_its_id_is_told_the_id_exists(tmp_path: Path) -> None:
    """Kills repository insert__mutmut_58/_60/_62 (the constraint error let through as a StoreError),
    _95-_98 (the live_id constraint not recognised) and _103-_108 (ContainerExists's id and "being
    created"). The race (another writer recording the id between the look and the write) is made
    by the error SQLite raises for it, from a trigger."""
    repo = Repository(tmp_path)
    try:
        _raw(tmp_path, "CREATE TRIGGER race BEFORE INSERT ON containers WHEN NEW.id = 'c1' "
                       "BEGIN SELECT RAISE(ABORT, 'UNIQUE constraint failed: containers.live_id'); END")
        with pytest.raises(ContainerExists) as caught:
            _insert_full(repo, "c1")
        assert str(caught.value) == (
            "container 'c1' already exists (state being created); destroy it first or choose another id")
        assert caught.value.container_id == "c1"
        assert isinstance(caught.value.__cause__, IntegrityError)
        assert _raw(tmp_path, "SELECT count(*) FROM containers") == [(0,)]
    finally:
        repo.close()


def test_another_constraint_failing_in_insert_is_a_store_error_naming_the_file(tmp_path: Path) -> None:
    """Kills repository insert__mutmut_99-_102 (the StoreError of another failed constraint made without
    the store's path or the error)."""
    repo = Repository(tmp_path)
    try:
        _raw(tmp_path, "CREATE TRIGGER other BEFORE INSERT ON cgroup_paths "
                       "BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: the paths'); END")
        with pytest.raises(StoreError) as caught:
            _insert_full(repo, "c1")
        assert not isinstance(caught.value, ContainerExists)
        assert str(caught.value).startswith(f"{tmp_path / 'corral.db'}: ")
        assert "CHECK constraint failed: the paths" in str(caught.value)
        assert _raw(tmp_path, "SELECT count(*) FROM containers") == [(0,)]
    finally:
        repo.close()


def test_all_and_listing_filter_by_tombstones_states_and_labels(tmp_path: Path) -> None:
    """Kills repository x__filter__mutmut_1-_37 but the six upper- and lower-cased SQL texts (every
    condition of `all()` and `listing()`: tombstones kept or not, two states or more, a label by key
    alone or by key and value)."""
    repo = Repository(tmp_path)
    try:
        def add(cid: str, state: str, annotations: dict[str, str]) -> ContainerRecord:
            return _insert_full(repo, cid, state=state, pending_event=None,
                                config=json.dumps({"annotations": annotations}), interfaces=(), created_cgroups=None)

        gone = add("gone", "created", {"team": "a"})
        repo.update(gone.key, 1, base=gone, state="destroyed")
        add("a", "created", {"team": "a", "tier": "web"})
        add("b", "running", {"team": "b"})
        add("c", "paused", {})

        def ids(**filters: Any) -> list[str]:
            records = [r.id for r in repo.all(**filters)]
            assert [cid for _key, cid in repo.listing(**filters)] == records
            return records

        assert ids() == ["a", "b", "c"]
        assert ids(include_destroyed=True) == ["gone", "a", "b", "c"]
        assert ids(states=["running", "created"]) == ["a", "b"]
        assert ids(states=["paused"]) == ["c"]
        assert ids(states=[]) == []
        assert ids(labels={"team": None}) == ["a", "b"]
        assert ids(labels={"team": "a"}) == ["a"]
        assert ids(labels={"team": "a"}, include_destroyed=True) == ["gone", "a"]
        assert ids(labels={"team": "a", "tier": None}, states=["created", "running"]) == ["a"]
        assert ids(labels={"tier": "db"}) == []
    finally:
        repo.close()


def test_reads_in_journal_and_process_order_do_not_rest_on_sqlite_s_plan(tmp_path: Path) -> None:
    """Kills repository `Repository.history__mutmut_3`, `journal_since__mutmut_3` and
    `processes__mutmut_3` (the ORDER BY dropped), which survive on SQLite's current plans (they
    happen to read in rowid order). Without ORDER BY the order is undefined; SQLite's
    `reverse_unordered_selects` pragma reverses it, as a future plan may, so a read that relied on
    it comes back reversed here. A container's history, the journal since a seq and its processes
    are promised in the order they were written."""
    repo = Repository(tmp_path)
    try:
        record = repo.insert(container_id="c1", state="creating", pending_event="create", config="{}", bundle=None,
                             run_dir="/run/x/c1", boot_id="boot-a", cgroup_paths={}, journal_event="create")
        record = repo.update(record.key, record.version, base=record, state="created", pending_event=None,
                             init_pid=4321, init_start_time=987654, journal=("create", "creating", "created", {}))
        repo.update(record.key, record.version, base=record, state="running", journal=("start", "created", "running", {}))
        for pid in (11, 12, 13):
            repo.add_process(record.key, pid, pid * 10, "boot-a", ("sh",))

        @event.listens_for(repo.engine, "connect")
        def reverse(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
            dbapi_connection.execute("PRAGMA reverse_unordered_selects = ON")

        repo.engine.dispose()  # the pooled connections predate the listener
        history = repo.history(record.key)
        assert [e.event for e in history] == ["create", "create", "start"]
        assert [e.seq for e in history] == sorted(e.seq for e in history)
        since = repo.journal_since(history[0].seq)
        assert [(cid, e.event) for cid, e in since] == [("c1", "create"), ("c1", "start")]
        assert [p.pid for p in repo.processes(record.key)] == [11, 12, 13]
    finally:
        repo.close()
