"""Tests written against mutants of store/ that survived the unit suite (tests/README.md, "Run of
2026-12-03"); each names what it kills.

They run without root, on the fake executor where a runtime is needed.
"""

from __future__ import annotations

import errno
import os
import select
import sqlite3
from pathlib import Path
from typing import Any, NoReturn

import pytest

from corral import Runtime
from corral.config import Config
from corral.errors import StoreUnreadable
from corral.store import engine, peek
from corral.store.bell import BellWatch, ring
from corral.store.readonly import BUSY_TIMEOUT_S
from corral.store.repository import Repository
from tests.unit.test_mutation_killers_7 import _one_container, _sql

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
