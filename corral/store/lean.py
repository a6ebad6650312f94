"""The store through `sqlite3` alone, for one transition of one container per process.

containerd runs one runtime process per call (`start`, `kill`, `pause`,
`resume`); importing SQLAlchemy costs such a call more than everything else it
does. This module writes what one ordinary transition writes (its intent, then
its outcome and journal row, or the cleared intent and `last_error` of a
failure) with the same statements the Repository issues: an
`UPDATE ... WHERE key = ? AND version = ?` (the optimistic check and the write
are one statement) and the journal row in the same transaction, each begun
IMMEDIATE, with the same pragmas and the same file checks (files.py). The
schema stays the models' and Alembic's: a store at another revision is not
opened here (`open_lean` answers None) and the caller takes the Repository.
tests/unit/test_store_lean.py checks that this path and the Repository write
identical rows for the same transition, so that they cannot drift.

Only ordinary transitions come here through `intent` and `outcome`: create and
destroy (durable commits, more rows) go through store/lean_durable.py, which
reuses `_update`; never what only recovery may decide. After a commit that adds a
journal row, the store's bell is rung (store/bell.py), as the Repository rings it.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any, NamedTuple, TypeVar

from corral.errors import ConcurrentModification, StoreError
from corral.store.bell import ring
from corral.store.files import FileGuard, check_access
from corral.store.readonly import BUSY_TIMEOUT_S, DB_NAME, SCHEMA_REVISION, ReadonlyStore

T = TypeVar("T")

#: The events whose intent or outcome must be durable (repository.DURABLE_EVENTS): never written
#: through `intent`/`outcome` here, but by store/lean_durable.py, whose connection commits with an fsync.
REFUSED = frozenset({"create", "destroy"})
DESTROYED = "destroyed"

_COLUMNS = (
    "key, id, state, pending_event, init_pid, init_start_time, boot_id, run_dir, created_cgroups, "
    "version, live_id, json_extract(config, '$.hooks') IS NOT NULL"
)


class LeanRecord(NamedTuple):
    """What one transition needs of a container's record (a subset of ContainerRecord)."""

    key: int
    id: str
    state: str
    pending_event: str | None
    init_pid: int | None
    init_start_time: int | None
    boot_id: str
    run_dir: str
    version: int
    live: bool
    cgroup_paths: Mapping[str, str]
    #: Per hierarchy, the directories corral created (None: recorded before 0003).
    created_cgroups: Mapping[str, tuple[str, ...]] | None
    #: The config has hooks: start then runs startContainer and poststart, which only the library does.
    has_hooks: bool = False


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def db_time(value: datetime) -> str:
    """A naive UTC datetime as SQLAlchemy's SQLite DateTime stores it."""
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")


class LeanStore(ReadonlyStore):
    """One read-write connection to `<root>/corral.db`, at the schema of SCHEMA_REVISION."""

    def __init__(self, connection: sqlite3.Connection, path: str, guard: FileGuard) -> None:
        super().__init__(connection)
        self.path = path
        self._guard = guard
        self._info: dict[str, Any] = {}
        guard.connected(self._info)
        #: Close without checkpointing the WAL: for a process that exits right after (the command
        #: line's one-shot calls). The checkpoint SQLite runs when the last connection closes
        #: copies the WAL into the database and fsyncs both, ~3-15 ms here, which the next
        #: commit that finds the WAL past `wal_autocheckpoint` pages does anyway; a commit's
        #: durability does not depend on it (FULL commits are fsynced in the WAL; NORMAL
        #: ones are lost only with the host, and with it the containers they describe).
        self.leave_wal = False

    def close(self) -> None:
        if self.leave_wal:
            self._guard.leave_wal()
        super().close()

    def record(self, container_id: str) -> LeanRecord | None:
        """The live container with this id, else its most recent tombstone (as Repository.find)."""
        row = self._con.execute(
            f"SELECT {_COLUMNS} FROM containers WHERE id = ? ORDER BY live_id IS NULL, key DESC LIMIT 1",
            (container_id,),
        ).fetchone()
        if row is None:
            return None
        key, cid, state, pending, pid, start, boot, run_dir, created, version, live_id, hooks = row
        paths = self.cgroup_paths(int(key))
        return LeanRecord(
            key=int(key),
            id=str(cid),
            state=str(state),
            pending_event=pending,
            init_pid=pid,
            init_start_time=start,
            boot_id=str(boot),
            run_dir=str(run_dir),
            version=int(version),
            live=live_id is not None,
            has_hooks=bool(hooks),
            cgroup_paths=paths,
            created_cgroups=(
                None if created is None else {k: tuple(v) for k, v in json.loads(created).items()}
            ),
        )

    # -- the writes of one transition (Repository.update's statements) ----------

    def intent(self, record: LeanRecord, event: str, now: datetime | None = None) -> LeanRecord:
        """Record the intent to fire `event` (transition.py's step 4)."""
        self._refuse(event)
        now = now or utcnow()
        return self._update(record, {"pending_event": event, "pending_since": db_time(now)}, now, None)

    def outcome(
        self,
        record: LeanRecord,
        event: str,
        source: str,
        dest: str,
        detail: Mapping[str, Any] | None = None,
        now: datetime | None = None,
        *,
        changes: Mapping[str, Any] | None = None,
        namespaces: Mapping[str, tuple[str, int | None]] | None = None,
    ) -> LeanRecord:
        """Record the new state, the columns the event sets (`changes`, `namespaces`: create's and
        destroy's), clear the intent and append the journal row (step 6), in one transaction."""
        self._refuse(event)
        now = now or utcnow()
        values = {**dict(changes or {}), "state": dest, "pending_event": None, "pending_since": None}
        updated = self._update(record, values, now, (event, source, dest, detail), namespaces)
        return updated._replace(state=dest, live=dest != DESTROYED)

    def failed(self, record: LeanRecord, event: str, error: BaseException, now: datetime | None = None) -> LeanRecord:
        """Clear the intent of a transition whose kernel work failed, and say why (transition._record_failure)."""
        now = now or utcnow()
        values = {"pending_event": None, "pending_since": None, "last_error": f"{event}: {error}"}
        return self._update(record, values, now, None)

    #: Events this connection may not write: create and destroy must commit durably (lean_durable.py).
    refused: frozenset[str] = REFUSED

    def _refuse(self, event: str) -> None:
        if event in self.refused:
            raise ValueError(f"{event} commits durably and is not written by the lean path")

    def _transaction(self, body: Callable[[sqlite3.Connection], T]) -> T:
        """Run `body` in one BEGIN IMMEDIATE transaction on the checked file: committed, or rolled
        back on any exception; a database error becomes the store's StoreError naming the file."""
        con = self._con
        try:
            self._guard.check(self._info)
            con.execute("BEGIN IMMEDIATE")
            try:
                result = body(con)
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")
        except sqlite3.Error as exc:
            from corral.store.failures import store_error  # imports SQLAlchemy: only on the error path

            raise store_error(_path(self.path), exc) from exc
        finally:
            self._guard.ended(self._info)
        return result

    def _update(
        self,
        record: LeanRecord,
        values: dict[str, Any],
        now: datetime,
        journal: tuple[str, str, str, Mapping[str, Any] | None] | None,
        namespaces: Mapping[str, tuple[str, int | None]] | None = None,
    ) -> LeanRecord:
        stamp = db_time(now)
        assignments = [f"{column} = ?" for column in values]
        params: list[Any] = list(values.values())
        assignments += ["updated_at = ?", "version = ?"]
        params += [stamp, record.version + 1]
        if "state" in values:  # live_id is the id until destroyed
            assignments.append("live_id = NULL" if values["state"] == DESTROYED else "live_id = id")

        def write(con: sqlite3.Connection) -> None:
            cursor = con.execute(
                f"UPDATE containers SET {', '.join(assignments)} WHERE key = ? AND version = ?",
                (*params, record.key, record.version),
            )
            if cursor.rowcount != 1:
                current = con.execute("SELECT id, version FROM containers WHERE key = ?", (record.key,)).fetchone()
                if current is None:
                    raise StoreError(f"{self.path}: container record {record.key} vanished")
                raise ConcurrentModification(
                    current[0], f"record version {current[1]}, decided on {record.version}"
                )
            if namespaces is not None:  # as Repository.update: replaced whole
                con.execute("DELETE FROM namespace_paths WHERE container_key = ?", (record.key,))
                con.executemany(
                    "INSERT INTO namespace_paths (container_key, type, path, inode) VALUES (?, ?, ?, ?)",
                    [(record.key, kind, path, inode) for kind, (path, inode) in namespaces.items()],
                )
            if journal is not None:
                event, source, dest, detail = journal
                con.execute(
                    "INSERT INTO journal (container_key, event, from_state, to_state, at, detail) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (record.key, event, source, dest, stamp, json.dumps(dict(detail or {}), sort_keys=True)),
                )

        self._transaction(write)
        if journal is not None:
            ring(os.path.dirname(self.path))  # after the commit, as the Repository (store/bell.py)
        return record._replace(version=record.version + 1, pending_event=values.get("pending_event"))


def _path(path: str) -> Any:
    from pathlib import Path

    return Path(path)


def open_lean(root: str, kind: type[LeanStore] | None = None) -> LeanStore | None:
    """A read-write lean connection to the store under `root`, or None when only the library can open it.

    None means: no database yet, or a schema at another revision (the
    Repository creates, upgrades or reports it). Files corral may not write are
    refused as the Repository refuses them (StoreAccessDenied).
    """
    path = os.path.join(root, DB_NAME)
    if not os.path.isfile(path):
        return None
    check_access(root, path)
    try:
        con = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    except sqlite3.Error:
        return None
    try:
        con.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        con.execute("PRAGMA foreign_keys = ON")
        con.execute("PRAGMA synchronous = NORMAL")
        rows = con.execute("SELECT version_num FROM alembic_version").fetchall()
    except sqlite3.Error:
        con.close()
        return None
    if [r[0] for r in rows] != [SCHEMA_REVISION]:
        con.close()
        return None
    return (kind or LeanStore)(con, path, FileGuard(path))
