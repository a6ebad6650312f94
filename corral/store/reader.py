"""The Repository's reads of container records: plain sqlite3, and a cache that SQLite itself validates.

Reads are the hot path (every transition reloads its record first, every
`.state` reloads it), and through the ORM a reload cost ~1 ms, most of it
SQLAlchemy's. Here a read is one statement on a connection kept per thread,
and a record read once is kept with the connection's `PRAGMA data_version`:
SQLite changes that number whenever any other connection commits to the
database (every write corral makes goes through the Repository's engine,
another connection, or another process), so an unchanged number proves the
kept record is still the stored one, at the cost of one pragma. `list()`
then `.state` of N containers is one query and N kernel checks.

The number is read before the rows, never after: a commit between the two
makes the kept record look older than it is (one more read later), never
newer. Each read is one transaction (BEGIN ... COMMIT), checked first against
the files the store opened (files.py), like every transaction of the engine.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Generic, TypeVar

from corral.store.failures import store_error
from corral.store.files import FileGuard

T = TypeVar("T")

#: (row as a mapping, cgroup paths, namespace rows (type, path, inode), interface rows
#: (host name, name, owner)) -> record.
Make = Callable[
    [Mapping[str, Any], dict[str, str], list[tuple[str, str, int | None]], list[tuple[str, str, str]]], T
]

#: A record's paths, kept with what identifies its incarnation (id, created_at): a purged
#: tombstone's key may be handed to a new container (the key is a plain rowid).
_Children = tuple[
    tuple[Any, Any], dict[str, str], list[tuple[str, str, int | None]], list[tuple[str, str, str]]
]

#: What identifies one version of one record: (id, created_at as stored, version). Every
#: writer (the Repository, lean.py, observed.py) bumps `version` in the statement that writes.
Stamp = tuple[str, str, int]


class _Local(threading.local):
    con: sqlite3.Connection | None = None
    info: dict[str, Any]
    #: key -> (the data_version it was last known current at, or None: to be checked; record; stamp)
    cache: dict[int, tuple[int | None, Any, Stamp]]
    children: dict[int, _Children]


class RecordReader(Generic[T]):
    """Reads of the containers table for one store; `make` turns a row into the caller's record."""

    def __init__(self, path: Path, make: Make[T], busy_timeout_ms: int) -> None:
        self.path = path
        self._make = make
        self._timeout = busy_timeout_ms / 1000
        self._guard = FileGuard(path)
        self._local = _Local()
        self._open: list[sqlite3.Connection] = []
        self._open_guard = threading.Lock()

    def close(self) -> None:
        with self._open_guard:
            for con in self._open:
                con.close()
            self._open.clear()

    def _connection(self) -> _Local:
        local = self._local
        if local.con is None:
            con = sqlite3.connect(str(self.path), timeout=self._timeout, isolation_level=None, check_same_thread=False)
            con.row_factory = sqlite3.Row
            local.info = {}
            self._guard.connected(local.info)
            local.cache = {}
            local.children = {}
            local.con = con
            with self._open_guard:
                self._open.append(con)
        return local

    @contextmanager
    def _transaction(self, key: int | None = None) -> Iterator[tuple[_Local, int, Any]]:
        """One read transaction; with `key`, the kept record if nothing committed since (no BEGIN then)."""
        local = self._connection()
        con = local.con
        assert con is not None
        try:
            self._guard.check(local.info)
            version = con.execute("PRAGMA data_version").fetchone()[0]
            kept = local.cache.get(key) if key is not None else None
            if kept is not None and kept[0] == version:  # never None: the version is an int
                yield local, version, kept[1]
                return
            con.execute("BEGIN")
            try:
                yield local, version, None
            finally:
                con.execute("COMMIT")
        except sqlite3.Error as exc:
            raise store_error(self.path, exc) from exc
        finally:
            self._guard.ended(local.info)

    def get(self, key: int) -> T | None:
        """The record with this key (None if there is none), from the cache while nothing committed.

        After a commit (any container's, or this process's own write), a kept
        record is checked by its stamp, one primary-key read, before its row and
        paths are read again: a transition never re-reads what it just wrote.
        """
        with self._transaction(key) as (local, version, kept):
            if kept is not None:
                return kept  # type: ignore[no-any-return]
            entry = local.cache.get(key)
            if entry is not None and self._unchanged(local, key, entry[2]):
                local.cache[key] = (version, entry[1], entry[2])
                return entry[1]  # type: ignore[no-any-return]
            found = self._select(local, version, "key = ?", (key,))
            return found[0] if found else None

    @staticmethod
    def _unchanged(local: _Local, key: int, stamp: Stamp) -> bool:
        """Whether the row of `key` is still the version `stamp` names: one primary-key read."""
        assert local.con is not None
        row = local.con.execute("SELECT id, created_at, version FROM containers WHERE key = ?", (key,)).fetchone()
        return row is not None and tuple(row) == stamp

    def keep(self, key: int, record: T, stamp: Stamp) -> None:
        """Keep `record`, which this thread just committed, as the one `get(key)` returns once `stamp` checks.

        Not trusted as current: another process may commit right after ours, so
        the next `get` compares the row's stamp first (the version says whether
        anyone wrote since).
        """
        self._connection().cache[key] = (None, record, stamp)

    def select(self, where: str, params: tuple[Any, ...] = (), order: str = "key", limit: int | None = None) -> list[T]:
        """Records matching `where` (SQL over the containers table), in three statements at most."""
        with self._transaction() as (local, version, _kept):
            return self._select(local, version, where, params, order, limit)

    def keys(self, where: str, params: tuple[Any, ...] = ()) -> list[tuple[int, str]]:
        """(key, id) of the records matching `where`, in key order: one statement, no record built.

        What `Runtime.list()` needs to hand out Containers that read their record
        on first use; with the `live_id IS NOT NULL` condition the partial index
        `ix_containers_live` (migration 0007) answers it without the table's rows.
        """
        with self._transaction() as (local, _version, _kept):
            assert local.con is not None
            cursor = local.con.cursor()
            cursor.row_factory = None  # plain tuples: fewer objects than sqlite3.Row for a long list
            rows: list[tuple[int, str]] = cursor.execute(
                f"SELECT key, id FROM containers WHERE {where} ORDER BY key", params
            ).fetchall()
            return rows

    def _select(
        self,
        local: _Local,
        version: int,
        where: str,
        params: tuple[Any, ...],
        order: str = "key",
        limit: int | None = None,
    ) -> list[T]:
        con = local.con
        assert con is not None
        sql = f"SELECT * FROM containers WHERE {where} ORDER BY {order}" + (f" LIMIT {int(limit)}" if limit else "")
        rows = con.execute(sql, params).fetchall()
        missing = {row["key"] for row in rows if self._kept(local, row) is None}
        cgroups: dict[int, dict[str, str]] = {key: {} for key in missing}
        namespaces: dict[int, list[tuple[str, str, int | None]]] = {key: [] for key in missing}
        interfaces: dict[int, list[tuple[str, str, str]]] = {key: [] for key in missing}
        if missing:
            inner = f"SELECT key FROM containers WHERE {where}"
            for key, hierarchy, path in con.execute(
                f"SELECT container_key, hierarchy, path FROM cgroup_paths WHERE container_key IN ({inner})", params
            ):
                if key in cgroups:
                    cgroups[key][hierarchy] = path
            for key, kind, path, inode in con.execute(
                f"SELECT container_key, type, path, inode FROM namespace_paths WHERE container_key IN ({inner}) "
                "ORDER BY container_key, type",
                params,
            ):
                if key in namespaces:
                    namespaces[key].append((kind, path, inode))
            for key, host_name, name, owner in con.execute(
                f"SELECT container_key, host_name, name, owner FROM network_interfaces WHERE container_key IN ({inner}) "
                "ORDER BY container_key, position",
                params,
            ):
                if key in interfaces:
                    interfaces[key].append((host_name, name, owner))
        records = []
        for row in rows:
            key = row["key"]
            children = self._kept(local, row)
            if children is None:
                children = ((row["id"], row["created_at"]), cgroups[key], namespaces[key], interfaces[key])
                if row["state"] != "creating":  # the paths never change once create is recorded
                    local.children[key] = children
            record = self._make(row, dict(children[1]), list(children[2]), list(children[3]))
            local.cache[key] = (version, record, (row["id"], row["created_at"], row["version"]))
            records.append(record)
        return records

    @staticmethod
    def _kept(local: _Local, row: Mapping[str, Any]) -> _Children | None:
        """The paths kept for this row's container, if they are of this incarnation."""
        kept = local.children.get(row["key"])
        if kept is None or kept[0] != (row["id"], row["created_at"]):
            return None
        return kept
