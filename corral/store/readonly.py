"""A read-only view of the store through `sqlite3` alone, for one-shot command-line calls.

containerd runs one runtime process per call (`state`, `ps`, `kill`, ...), so the
cost of importing SQLAlchemy (and of the migration check) is paid on every call.
This module answers the reads those calls need with the standard library: one
container's record by id, or every live one, and whether anything is left for
recovery to finish (two indexed reads, `recovery_needed`); nothing else. It never writes
and never migrates: a store that is missing, unreadable or not at the revision
this code knows answers `None` from `open_readonly`, and the caller takes the
full path (the Repository), which creates, upgrades or reports it properly.

The queries mirror `Repository.find` and `Repository.all`; the schema they read
is the one of `SCHEMA_REVISION` (tests/unit/test_store_readonly.py checks that it
is the engine's head revision, so a new migration cannot leave this behind).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, NamedTuple

from corral.store.sqlite_uri import file_uri

#: The Alembic revision whose schema the queries below read.
SCHEMA_REVISION = "0007_list_index"

DB_NAME = "corral.db"
BUSY_TIMEOUT_S = 30.0

_COLUMNS = (
    "key, id, state, pending_event, init_pid, init_start_time, boot_id, bundle, config, "
    "run_dir, exit_status, created_at, live_id"
)


class RecordView(NamedTuple):
    """What a read-only caller needs of a container's record (a subset of ContainerRecord).

    A NamedTuple, not a dataclass: `dataclasses` costs more to import than the
    whole read it serves.
    """

    key: int
    id: str
    state: str
    pending_event: str | None
    init_pid: int | None
    init_start_time: int | None
    boot_id: str
    bundle: str | None
    config: str
    run_dir: str
    exit_status: int | None
    created_at: datetime
    live: bool
    cgroup_paths: Mapping[str, str] = {}


def _parse_time(value: object) -> datetime:
    # SQLAlchemy stores DateTime on SQLite as "YYYY-MM-DD HH:MM:SS.ffffff" (UTC, naive).
    return datetime.fromisoformat(str(value))


class ReadonlyStore:
    """One read-only connection to `<root>/corral.db`; close it when done."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._con = connection

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> ReadonlyStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def recovery_needed(self, boot_id: str, unheld: Callable[[str], bool]) -> str | None:
        """Why the library must open the store first (a reason), or None when nothing is left to finish.

        Two indexed reads (migration 0006): the boot the last full recovery ran
        in (a host restart since means a full recovery), and the ids with an
        intent pending (the partial index `ix_containers_pending`), each of which
        counts only if `unheld(id)`: a pending intent whose container lock is
        held belongs to a live process in the middle of its transition, not to
        a crashed one. Neither grows with the number of records.
        """
        row = self._con.execute("SELECT boot_id FROM recovered_boot WHERE slot = 1").fetchone()
        if row is None or row[0] != boot_id:
            return "the host restarted since the last full recovery" if row else "never fully recovered"
        for (cid,) in self._con.execute("SELECT id FROM containers WHERE pending_event IS NOT NULL").fetchall():
            if unheld(cid):
                return f"container {cid!r} has an interrupted intent"
        return None

    def find(self, container_id: str) -> RecordView | None:
        """The live container with this id, else its most recent tombstone (as Repository.find)."""
        row = self._con.execute(
            f"SELECT {_COLUMNS} FROM containers WHERE id = ? "
            "ORDER BY live_id IS NULL, key DESC LIMIT 1",
            (container_id,),
        ).fetchone()
        return self._view(row) if row is not None else None

    def live(self) -> list[RecordView]:
        """Every container not destroyed, oldest first (as Repository.all)."""
        rows = self._con.execute(
            f"SELECT {_COLUMNS} FROM containers WHERE live_id IS NOT NULL ORDER BY key"
        ).fetchall()
        return [self._view(row) for row in rows]

    def cgroup_paths(self, key: int) -> dict[str, str]:
        """The container's cgroup directory per hierarchy."""
        return dict(
            self._con.execute("SELECT hierarchy, path FROM cgroup_paths WHERE container_key = ?", (key,)).fetchall()
        )

    def _view(self, row: tuple[Any, ...]) -> RecordView:  # sqlite3 rows are untyped
        (key, cid, state, pending, init_pid, init_start, boot_id, bundle, config, run_dir,
         exit_status, created_at, live_id) = row
        paths = self.cgroup_paths(int(key))
        return RecordView(
            key=int(key),
            id=str(cid),
            state=str(state),
            pending_event=pending,
            init_pid=init_pid,
            init_start_time=init_start,
            boot_id=str(boot_id),
            bundle=bundle,
            config=str(config),
            run_dir=str(run_dir),
            exit_status=exit_status,
            created_at=_parse_time(created_at),
            live=live_id is not None,
            cgroup_paths=paths,
        )


def open_readonly(root: str | os.PathLike[str]) -> ReadonlyStore | None:
    """A read-only view of the store under `root`, or None when only the full path can answer.

    None means: no database yet, a file that is not one, or a schema at another
    revision (older: the Repository would migrate it; newer or unknown: it
    reports that). Nothing is created or written either way.
    """
    path = os.path.join(os.fspath(root), DB_NAME)
    if not os.path.isfile(path):
        return None
    try:
        con = sqlite3.connect(file_uri(path, "ro"), uri=True, timeout=BUSY_TIMEOUT_S)
    except sqlite3.Error:
        return None
    try:
        rows = con.execute("SELECT version_num FROM alembic_version").fetchall()
    except sqlite3.Error:
        con.close()
        return None
    if [r[0] for r in rows] != [SCHEMA_REVISION]:
        con.close()
        return None
    return ReadonlyStore(con)
