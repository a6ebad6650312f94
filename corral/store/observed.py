"""The journal rows of observed events (`exited`, `oom`), written with `sqlite3` alone.

A container's monitor sees its init exit (it reaps it) and sees the kernel
OOM-kill in its cgroup; it records both here, so that the journal, and with it
`Runtime.events()`, has every exit and OOM kill even when no controller waits
for them (or none is alive). The monitor is a small forked process that must not
import SQLAlchemy, so this module writes the same rows as the Repository's
update path (the `exited` and `oom` transitions of the recipe) with the
standard library; tests/unit/test_store_observed.py compares the two, row by
row.

It follows the recipe's rules: it holds the container's lock (the same OFD
byte-range lock of `<root>/corral.lock` that statemachine/locks.py takes), reads
the record in a `BEGIN IMMEDIATE` transaction, writes only if the record is
still live and names the init that was seen (so an exit is recorded once,
whoever sees it first: the monitor here, or a controller's `wait()` or
`state`), bumps the version, and rings the bell (store/bell.py) after the
commit.

The lock is taken without blocking, retried with a short sleep: a transition
that holds it may itself be waiting for the monitor (a forced destroy waits
for the monitor to exit), so the monitor never sleeps inside the lock queue.
It gives up as soon as waiting is pointless: the record is no longer live, names
another init, or has a `destroy` pending (destroy records the exit itself).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import signal as signal_module
import sqlite3
import struct
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

from corral.store.bell import ring
from corral.store.sqlite_uri import file_uri

DB_NAME = "corral.db"
BUSY_TIMEOUT_S = 30.0
#: The states in which the init is alive: the sources of `exited` and `oom` in the table.
LIVE_STATES = ("created", "running", "paused")
STOPPED = "stopped"
#: The longest sleep between two attempts at a busy lock.
MAX_BACKOFF = 0.05
#: Said when the monitor gives no reason for an unknown status (as the recipe says it).
NO_REASON = "not observed (no reason was given)"


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _timestamp(value: datetime) -> str:
    """A datetime as SQLAlchemy's SQLite DateTime stores it (naive UTC, microseconds always)."""
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")


#: SQLite's lock bytes in the database file (os_unix.c): the first byte of the SHARED range.
_SHARED_FIRST = 0x40000000 + 2


@contextmanager
def _connected(root: str) -> Iterator[sqlite3.Connection]:
    """A connection that never deletes the store's -wal and -shm files when it closes.

    SQLite checkpoints and deletes both when the last connection to a WAL
    database closes, and a monitor's connection is often the only one (its
    controller exited or was killed); a corral process that opens the store
    meanwhile would find its WAL index gone. A read lock on a byte of SQLite's
    SHARED range (an OFD lock, so it conflicts with SQLite's own POSIX locks in
    this process too) keeps the close from taking the EXCLUSIVE lock it needs
    for that, as store/files.py pins a poisoned store.
    """
    path = os.path.join(root, DB_NAME)
    pin = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        fcntl.fcntl(pin, fcntl.F_OFD_SETLKW, struct.pack("hhqqi4x", fcntl.F_RDLCK, os.SEEK_SET, _SHARED_FIRST, 1, 0))
        # mode=rw: never create a database (a missing store means nobody to tell).
        con = sqlite3.connect(file_uri(path, "rw"), uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            con.execute("PRAGMA foreign_keys = ON")
            con.execute("PRAGMA synchronous = NORMAL")
            yield con
        finally:
            con.close()
    finally:
        os.close(pin)


def _try_lock(fd: int, slot: int) -> bool:
    # struct flock as statemachine/locks.py packs it: l_type, l_whence, l_start, l_len, l_pid (0: OFD)
    request = struct.pack("hhqqi4x", fcntl.F_WRLCK, os.SEEK_SET, slot, 1, 0)
    try:
        fcntl.fcntl(fd, fcntl.F_OFD_SETLK, request)
        return True
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EINTR):
            return False
        raise


def _pointless(con: sqlite3.Connection, key: int, init_pid: int) -> bool:
    """Whether nothing is left to record: not live, another init, or a destroy under way."""
    row = con.execute("SELECT state, init_pid, pending_event FROM containers WHERE key = ?", (key,)).fetchone()
    return row is None or row[0] not in LIVE_STATES or row[1] != init_pid or row[2] == "destroy"


@contextmanager
def _container_lock(con: sqlite3.Connection, lock_file: str, slot: int, key: int, init_pid: int) -> Iterator[bool]:
    """Hold the container's lock (True), or yield False once there is nothing left to record."""
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        delay = 0.001
        while not _try_lock(fd, slot):
            if _pointless(con, key, init_pid):
                yield False
                return
            time.sleep(delay)
            delay = min(delay * 2, MAX_BACKOFF)
        yield True
    finally:
        os.close(fd)  # closing the description releases the OFD lock


def _record(
    con: sqlite3.Connection,
    key: int,
    init_pid: int,
    event: str,
    detail: dict[str, Any],
    changes: dict[str, Any],
    now: datetime,
    skip: Callable[[sqlite3.Connection], bool] | None = None,
) -> bool:
    """One transition of the table on a live record, as Repository.update writes it."""
    con.execute("BEGIN IMMEDIATE")
    try:
        row = con.execute(
            "SELECT state, version, init_pid FROM containers WHERE key = ?", (key,)
        ).fetchone()
        if row is None or row[0] not in LIVE_STATES or row[2] != init_pid or (skip is not None and skip(con)):
            con.execute("ROLLBACK")
            return False
        state, version = row[0], row[1]
        to_state = changes.get("state", state)
        values = {
            **changes,
            "state": to_state,
            "pending_event": None,
            "pending_since": None,
            "updated_at": _timestamp(now),
            "version": version + 1,
        }
        assignments = ", ".join(f"{column} = :{column}" for column in values)
        # live_id stays the id: neither event destroys (one live container per id).
        cursor = con.execute(
            f"UPDATE containers SET {assignments}, live_id = id WHERE key = :key AND version = :expected",
            {**values, "key": key, "expected": version},
        )
        if cursor.rowcount != 1:  # cannot happen under BEGIN IMMEDIATE; never write past it
            con.execute("ROLLBACK")
            return False
        con.execute(
            "INSERT INTO journal (container_key, event, from_state, to_state, at, detail) VALUES (?, ?, ?, ?, ?, ?)",
            (key, event, state, to_state, _timestamp(now), json.dumps(detail, sort_keys=True)),
        )
        con.execute("COMMIT")
        return True
    except BaseException:
        if con.in_transaction:
            con.execute("ROLLBACK")
        raise


def _sigkilled_by_corral(con: sqlite3.Connection, key: int) -> bool:
    """Whether signal(SIGKILL) was sent through corral to this incarnation (as the recipe checks)."""
    for (detail,) in con.execute("SELECT detail FROM journal WHERE container_key = ? AND event = 'signal'", (key,)):
        try:
            if json.loads(detail or "{}").get("signal") == signal_module.SIGKILL:
                return True
        except ValueError:
            continue
    return False


def exited(
    *,
    root: str,
    key: int,
    init_pid: int,
    lock_file: str,
    lock_slot: int,
    status: int | None,
    signal: int | None = None,
    oom_killed: bool = False,
    reason: str | None = None,
    now: datetime | None = None,
) -> bool:
    """Record that container `key`'s init (`init_pid`) exited; True if this call wrote it.

    `oom_killed` is the kernel's view (SIGKILL while the cgroup counted an OOM
    kill); as in the recipe, it is dropped if corral itself sent a SIGKILL.
    `status` None is an unknown status, journalled with `reason`.
    """
    with _connected(root) as con, _container_lock(con, lock_file, lock_slot, key, init_pid) as held:
        if not held:
            return False
        if status is None:
            signal, oom_killed = None, False
        elif oom_killed and _sigkilled_by_corral(con, key):
            oom_killed = False
        detail: dict[str, Any] = {"exit_status": status, "signal": signal, "oom_killed": oom_killed}
        if status is None:
            detail["exit"] = "unknown"
            detail["exit_unknown_reason"] = reason or NO_REASON
        changes = {"state": STOPPED, "exit_status": status, "exit_signal": signal, "oom_killed": int(oom_killed)}
        wrote = _record(con, key, init_pid, "exited", detail, changes, now or utcnow())
    if wrote:
        ring(root)
    return wrote


def oom(
    *,
    root: str,
    key: int,
    init_pid: int,
    lock_file: str,
    lock_slot: int,
    count: int,
    now: datetime | None = None,
) -> bool:
    """Record that the kernel OOM-killed in container `key` (its cgroup's kill count is now `count`).

    Recorded once per count: a controller iterating `Container.oom_events()`
    may have journalled the same kill already.
    """

    def seen(con: sqlite3.Connection) -> bool:
        last = con.execute(
            "SELECT detail FROM journal WHERE container_key = ? AND event = 'oom' ORDER BY seq DESC LIMIT 1", (key,)
        ).fetchone()
        return last is not None and int(json.loads(last[0] or "{}").get("oom_kills", 0)) >= count

    with _connected(root) as con, _container_lock(con, lock_file, lock_slot, key, init_pid) as held:
        if not held:
            return False
        wrote = _record(con, key, init_pid, "oom", {"oom_kills": count}, {}, now or utcnow(), skip=seen)
    if wrote:
        ring(root)
    return wrote
