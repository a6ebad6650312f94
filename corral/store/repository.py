"""The repository: the only code in corral that knows SQL.

Every method is one short transaction (BEGIN IMMEDIATE for writes), and returns
frozen records, never ORM objects, so that nothing outside this module can hold
a session open across kernel work. Updates name the version they were decided
on: a writer that decided on a stale record gets ConcurrentModification and
changes nothing.

Durable commits: the transactions that record create's and destroy's intent
and outcome commit with `synchronous = FULL` (see engine.py); the repository
decides from what is written (`_durable`), so its callers need not know.
Every database error leaving this module is a StoreError naming the file
(store/failures.py).

Per transition: two writes where there is kernel work (the intent before it, which
recovery needs on disk, and the outcome after), one for an observed exit, and at most
one read, the reload under the lock, which for a record this process wrote is a check of
its version (reader.py `keep`). benchmarks/README.md ("Store transactions per
transition") has the counts and what each commit costs.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, cast

from sqlalchemy import delete as sa_delete
from sqlalchemy import insert as sa_insert
from sqlalchemy import func, or_, select
from sqlalchemy import Table
from sqlalchemy import update as sa_update
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from corral.errors import ConcurrentModification, ContainerExists, StoreError
from corral.store.bell import ring
from corral.store.engine import BUSY_TIMEOUT_MS, open_engine
from corral.store.failures import DATABASE_ERRORS, store_error
from corral.store.reader import RecordReader
from corral.store.models import (
    BootRow,
    CgroupPathRow,
    ContainerRow,
    JournalRow,
    NamespacePathRow,
    NetworkInterfaceRow,
    ProcessRow,
)
from corral.types import HostInterface

DESTROYED = "destroyed"

#: The events whose intent and outcome must survive a power loss: a container
#: recorded created must not vanish while it runs, nor come back once destroyed.
DURABLE_EVENTS = frozenset({"create", "destroy"})
#: The states that end those events.
DURABLE_STATES = frozenset({"created", DESTROYED})


def _durable(changes: Mapping[str, Any], before: str | None) -> bool:
    """Whether an update records a durable event's intent or outcome.

    `before` is the state the caller decided on (None when unknown, then any
    write of a durable state counts): a signal to a created container writes
    `created` again, and is an ordinary commit.
    """
    if changes.get("pending_event") in DURABLE_EVENTS:
        return True
    state = changes.get("state")
    return state in DURABLE_STATES and state != before


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


@dataclass(frozen=True)
class NamespaceRecord:
    path: str
    inode: int | None


@dataclass(frozen=True)
class ContainerRecord:
    key: int
    id: str
    state: str
    pending_event: str | None
    pending_since: datetime | None
    init_pid: int | None
    init_start_time: int | None
    boot_id: str
    monitor_pid: int | None
    monitor_start_time: int | None
    exit_status: int | None
    exit_signal: int | None
    oom_killed: bool
    bundle: str | None
    config: str
    run_dir: str
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    version: int
    cgroup_paths: Mapping[str, str] = field(default_factory=dict)
    namespaces: Mapping[str, NamespaceRecord] = field(default_factory=dict)
    #: The cgroup directories create makes, per hierarchy, parents first (None: recorded before 0003).
    created_cgroups: Mapping[str, tuple[str, ...]] | None = None
    #: The host-side interfaces create makes, in the network section's order (recorded before they exist).
    interfaces: tuple[HostInterface, ...] = ()


@dataclass(frozen=True)
class JournalEntry:
    seq: int
    container_key: int
    event: str
    from_state: str | None
    to_state: str
    at: datetime
    detail: Mapping[str, Any]


@dataclass(frozen=True)
class ProcessRecord:
    key: int
    container_key: int
    pid: int
    start_time: int
    boot_id: str
    args: tuple[str, ...]
    started_at: datetime
    exit_status: int | None
    exit_signal: int | None
    ended_at: datetime | None


#: Columns that `update()` may change; everything else is identity or derived.
UPDATABLE = frozenset(
    {
        "state",
        "pending_event",
        "pending_since",
        "init_pid",
        "init_start_time",
        "boot_id",
        "monitor_pid",
        "monitor_start_time",
        "exit_status",
        "exit_signal",
        "oom_killed",
        "last_error",
        "config",  # update: the new linux.resources
    }
)


_Children = tuple[Mapping[str, str], Mapping[str, "NamespaceRecord"], tuple[HostInterface, ...]]


def _record(row: ContainerRow, children: _Children | None = None) -> ContainerRecord:
    if children is None:
        children = (
            {c.hierarchy: c.path for c in row.cgroups},
            {n.type: NamespaceRecord(n.path, n.inode) for n in row.namespaces},
            tuple(HostInterface(i.host_name, i.name, i.owner) for i in row.interfaces),
        )
    return ContainerRecord(
        key=row.key,
        id=row.id,
        state=row.state,
        pending_event=row.pending_event,
        pending_since=row.pending_since,
        init_pid=row.init_pid,
        init_start_time=row.init_start_time,
        boot_id=row.boot_id,
        monitor_pid=row.monitor_pid,
        monitor_start_time=row.monitor_start_time,
        exit_status=row.exit_status,
        exit_signal=row.exit_signal,
        oom_killed=bool(row.oom_killed),
        bundle=row.bundle,
        config=row.config,
        run_dir=row.run_dir,
        last_error=row.last_error,
        created_at=row.created_at,
        updated_at=row.updated_at,
        version=row.version,
        cgroup_paths=children[0],
        namespaces=children[1],
        created_cgroups=_created_cgroups(row.created_cgroups),
        interfaces=children[2],
    )


def _filter(
    include_destroyed: bool, labels: Mapping[str, str | None] | None, states: Collection[str] | None
) -> tuple[str, tuple[Any, ...]]:
    """The WHERE clause (and its parameters) over the containers table that `all()` and `listing()` share.

    Labels are the OCI annotations, read from the config's JSON by SQLite's
    json_each: no column to keep in step, and cheap (a config is parsed only
    for rows the other conditions kept).
    """
    where = ["1" if include_destroyed else "live_id IS NOT NULL"]
    params: list[Any] = []
    if states is not None:
        wanted = sorted(states)
        where.append(f"state IN ({', '.join('?' for _ in wanted)})")
        params.extend(wanted)
    for key, value in (labels or {}).items():
        match = "label.key = ?" + ("" if value is None else " AND label.value = ?")
        where.append(f"EXISTS (SELECT 1 FROM json_each(containers.config, '$.annotations') AS label WHERE {match})")
        params.extend([key] if value is None else [key, value])
    return " AND ".join(where), tuple(params)


def _stamp(record: ContainerRecord) -> tuple[str, str, int]:
    """The reader's stamp of a record this process wrote: created_at as SQLAlchemy stores it on SQLite."""
    return record.id, record.created_at.isoformat(sep=" ", timespec="microseconds"), record.version


def _time(value: Any) -> datetime | None:
    """A DateTime column as SQLAlchemy stores it on SQLite ("YYYY-MM-DD HH:MM:SS.ffffff", naive UTC)."""
    return None if value is None else datetime.fromisoformat(str(value))


def _record_from_row(
    row: Mapping[str, Any],
    cgroups: dict[str, str],
    namespaces: list[tuple[str, str, int | None]],
    interfaces: list[tuple[str, str, str]],
) -> ContainerRecord:
    """A record from a plain sqlite3 row (reader.py), typed as the ORM types it."""
    return ContainerRecord(
        key=row["key"],
        id=row["id"],
        state=row["state"],
        pending_event=row["pending_event"],
        pending_since=_time(row["pending_since"]),
        init_pid=row["init_pid"],
        init_start_time=row["init_start_time"],
        boot_id=row["boot_id"],
        monitor_pid=row["monitor_pid"],
        monitor_start_time=row["monitor_start_time"],
        exit_status=row["exit_status"],
        exit_signal=row["exit_signal"],
        oom_killed=bool(row["oom_killed"]),
        bundle=row["bundle"],
        config=row["config"],
        run_dir=row["run_dir"],
        last_error=row["last_error"],
        created_at=_time(row["created_at"]),  # type: ignore[arg-type]  # NOT NULL
        updated_at=_time(row["updated_at"]),  # type: ignore[arg-type]
        version=row["version"],
        cgroup_paths=cgroups,
        namespaces={kind: NamespaceRecord(path, inode) for kind, path, inode in namespaces},
        created_cgroups=_created_cgroups(row["created_cgroups"]),
        interfaces=tuple(HostInterface(*i) for i in interfaces),
    )


def _created_cgroups(text: str | None) -> Mapping[str, tuple[str, ...]] | None:
    if text is None:
        return None
    return {key: tuple(dirs) for key, dirs in json.loads(text).items()}


def _journal(row: JournalRow) -> JournalEntry:
    return JournalEntry(
        seq=row.seq,
        container_key=row.container_key,
        event=row.event,
        from_state=row.from_state,
        to_state=row.to_state,
        at=row.at,
        detail=json.loads(row.detail) if row.detail else {},
    )


def _process(row: ProcessRow) -> ProcessRecord:
    return ProcessRecord(
        key=row.key,
        container_key=row.container_key,
        pid=row.pid,
        start_time=row.start_time,
        boot_id=row.boot_id,
        args=tuple(json.loads(row.args)),
        started_at=row.started_at,
        exit_status=row.exit_status,
        exit_signal=row.exit_signal,
        ended_at=row.ended_at,
    )


class Repository:
    """The store of one corral root (`<root>/corral.db`)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.path = root / "corral.db"
        self.engine = open_engine(root)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._reader = RecordReader(self.path, _record_from_row, BUSY_TIMEOUT_MS)
        self._readonly = sessionmaker(
            self.engine.execution_options(corral_readonly=True), expire_on_commit=False
        )
        self._durable_sessions = sessionmaker(
            self.engine.execution_options(corral_durable=True), expire_on_commit=False
        )

    def close(self) -> None:
        self._reader.close()
        self.engine.dispose()

    @contextmanager
    def _write(self, *, durable: bool = False, conflicts: bool = False) -> Iterator[Session]:
        """One write transaction; `durable` commits it with an fsync of the WAL.

        `conflicts` lets an IntegrityError through for a caller that turns it
        into its own error (insert: ContainerExists); otherwise it is a StoreError.
        """
        sessions = self._durable_sessions if durable else self._sessions
        try:
            with sessions() as session, session.begin():
                yield session
        except IntegrityError as exc:
            if conflicts:
                raise
            raise store_error(self.path, exc) from exc
        except DATABASE_ERRORS as exc:
            raise store_error(self.path, exc) from exc

    @contextmanager
    def _read(self) -> Iterator[Session]:
        try:
            with self._readonly() as session, session.begin():
                yield session
        except DATABASE_ERRORS as exc:
            raise store_error(self.path, exc) from exc

    # -- containers ---------------------------------------------------------

    def insert(
        self,
        *,
        container_id: str,
        state: str,
        pending_event: str | None,
        config: str,
        bundle: str | None,
        run_dir: str,
        boot_id: str,
        cgroup_paths: Mapping[str, str],
        journal_event: str,
        journal_detail: Mapping[str, Any] | None = None,
        created_cgroups: Mapping[str, tuple[str, ...]] | None = None,
        interfaces: tuple[HostInterface, ...] = (),
    ) -> ContainerRecord:
        now = utcnow()
        row = ContainerRow(
            id=container_id,
            live_id=container_id,
            state=state,
            pending_event=pending_event,
            pending_since=now if pending_event else None,
            boot_id=boot_id,
            oom_killed=False,
            bundle=bundle,
            config=config,
            run_dir=run_dir,
            created_cgroups=(
                None
                if created_cgroups is None
                else json.dumps({k: list(v) for k, v in created_cgroups.items()}, sort_keys=True)
            ),
            created_at=now,
            updated_at=now,
        )
        row.cgroups = [CgroupPathRow(hierarchy=k, path=v) for k, v in cgroup_paths.items()]
        row.interfaces = [
            NetworkInterfaceRow(position=i, host_name=h.host_name, name=h.name, owner=h.owner)
            for i, h in enumerate(interfaces)
        ]
        row.namespaces = []  # none yet: set, so that making the record does not query for them
        try:
            with self._write(durable=True, conflicts=True) as session:
                existing = session.scalars(
                    select(ContainerRow).where(ContainerRow.live_id == container_id)
                ).first()
                if existing is not None:
                    raise ContainerExists(container_id, existing.state)
                session.add(row)
                session.flush()
                session.add(
                    JournalRow(
                        container_key=row.key,
                        event=journal_event,
                        from_state=None,
                        to_state=state,
                        at=now,
                        detail=json.dumps(dict(journal_detail or {}), sort_keys=True),
                    )
                )
                record = _record(row)
        except IntegrityError as exc:  # a concurrent create of the same id won the race
            if "live_id" not in str(exc.orig):
                raise store_error(self.path, exc) from exc
            raise ContainerExists(container_id, "being created") from exc
        ring(self.root)  # after the commit: see store/bell.py
        self._reader.keep(record.key, record, _stamp(record))  # the reload that follows checks, not reads
        return record

    def get(self, key: int) -> ContainerRecord:
        """One container by key: the hot read of every transition (reader.py: kept while nothing commits)."""
        record = self._reader.get(key)
        if record is None:
            raise StoreError(f"{self.path}: container record {key} vanished")
        return record

    def find(self, container_id: str) -> ContainerRecord | None:
        """The live container with this id, else its most recent tombstone."""
        found = self._reader.select("id = ?", (container_id,), order="live_id IS NULL, key DESC", limit=1)
        return found[0] if found else None

    def all(
        self,
        *,
        include_destroyed: bool = False,
        labels: Mapping[str, str | None] | None = None,
        states: Collection[str] | None = None,
    ) -> list[ContainerRecord]:
        """Records in creation order, in one query (plus the paths of new ones); `labels` and
        `states` filter in that query.
        """
        return self._reader.select(*_filter(include_destroyed, labels, states))

    def listing(
        self,
        *,
        include_destroyed: bool = False,
        labels: Mapping[str, str | None] | None = None,
        states: Collection[str] | None = None,
    ) -> list[tuple[int, str]]:
        """(key, id) of what `all()` would return, in the same order, without building a record.

        One statement; without `labels` or `include_destroyed` the partial
        covering index `ix_containers_live` answers it (no table row is read).
        """
        return self._reader.keys(*_filter(include_destroyed, labels, states))

    def purge(self, keys: Collection[int]) -> list[int]:
        """Delete these tombstones with their journal, processes and paths; the keys deleted.

        The query itself refuses anything but a finished tombstone (destroyed, no
        live id, no pending intent), whatever the caller passed.
        """
        with self._write(durable=True) as session:
            doomed = list(
                session.scalars(
                    select(ContainerRow.key).where(
                        ContainerRow.key.in_(sorted(keys)),
                        ContainerRow.live_id.is_(None),
                        ContainerRow.state == DESTROYED,
                        ContainerRow.pending_event.is_(None),
                    )
                )
            )
            for child in (JournalRow, ProcessRow, CgroupPathRow, NamespacePathRow, NetworkInterfaceRow):
                table = cast(Table, child.__table__)
                session.execute(sa_delete(table).where(table.c.container_key.in_(doomed)))
            containers = cast(Table, ContainerRow.__table__)
            session.execute(sa_delete(containers).where(containers.c.key.in_(doomed)))
        return doomed

    def unfinished(self) -> list[ContainerRecord]:
        """Records recovery must look at: alive, or with an intent left pending."""
        return self._reader.select("state != ? OR pending_event IS NOT NULL", (DESTROYED,))

    def interrupted(self) -> list[ContainerRecord]:
        """Records with an intent left pending, through the partial index `ix_containers_pending`.

        What opening a store must look at: O(intents), however many records it holds.
        """
        return self._reader.select("pending_event IS NOT NULL")

    def recovered_boot(self) -> str | None:
        """The boot id the last complete full recovery ran in (None: never, or before 0006)."""
        with self._read() as session:
            row = session.get(BootRow, 1)
            return row.boot_id if row is not None else None

    def mark_recovered(self, boot_id: str) -> None:
        """Record that every record was reconciled with the kernel of boot `boot_id`."""
        with self._write() as session:
            row = session.get(BootRow, 1)
            if row is None:
                session.add(BootRow(slot=1, boot_id=boot_id, recovered_at=utcnow()))
            else:
                row.boot_id = boot_id
                row.recovered_at = utcnow()

    def update(
        self,
        key: int,
        expected_version: int,
        *,
        base: ContainerRecord | None = None,
        journal: tuple[str, str, str, Mapping[str, Any] | None] | None = None,
        namespaces: Mapping[str, NamespaceRecord] | None = None,
        **changes: Any,
    ) -> ContainerRecord:
        """Apply `changes` if the record is still at `expected_version`; else ConcurrentModification.

        One `UPDATE ... WHERE key = ? AND version = ?` (the optimistic check and
        the write are one statement), plus the journal row in the same
        transaction, so the journal and the state can never disagree. `base`,
        the record the caller decided on, saves reading the row back.
        `journal` is (event, from_state, to_state, detail).
        """
        unknown = set(changes) - UPDATABLE
        if unknown:
            raise ValueError(f"not updatable: {', '.join(sorted(unknown))}")
        if base is not None and (base.key, base.version) != (key, expected_version):
            raise ValueError("base is not the record decided on")
        now = utcnow()
        table = cast(Table, ContainerRow.__table__)
        values = dict(changes, updated_at=now, version=expected_version + 1)
        if "state" in changes:  # live_id is the id until destroyed (one live container per id)
            values["live_id"] = None if changes["state"] == DESTROYED else table.c.id
        before = journal[1] if journal is not None else (base.state if base is not None else None)
        with self._write(durable=_durable(changes, before)) as session:
            result: CursorResult[Any] = session.execute(  # type: ignore[assignment]
                sa_update(table)
                .where(table.c.key == key, table.c.version == expected_version)
                .values(**values)
            )
            if result.rowcount != 1:
                current = session.execute(select(table.c.id, table.c.version).where(table.c.key == key)).first()
                if current is None:
                    raise StoreError(f"{self.path}: container record {key} vanished")
                raise ConcurrentModification(
                    current.id, f"record version {current.version}, decided on {expected_version}"
                )
            if namespaces is not None:
                ns_table = cast(Table, NamespacePathRow.__table__)
                session.execute(sa_delete(ns_table).where(ns_table.c.container_key == key))
                if namespaces:
                    session.execute(
                        sa_insert(ns_table),
                        [{"container_key": key, "type": t, "path": n.path, "inode": n.inode} for t, n in namespaces.items()],
                    )
            if journal is not None:
                event, from_state, to_state, detail = journal
                session.execute(
                    sa_insert(cast(Table, JournalRow.__table__)).values(
                        container_key=key,
                        event=event,
                        from_state=from_state,
                        to_state=to_state,
                        at=now,
                        detail=json.dumps(dict(detail or {}), sort_keys=True),
                    )
                )
            if base is None:
                row = session.get(ContainerRow, key, populate_existing=True)
                assert row is not None
                updated = _record(row)
            else:
                updated = dataclasses.replace(base, **changes, updated_at=now, version=expected_version + 1)
                if namespaces is not None:
                    updated = dataclasses.replace(updated, namespaces=dict(namespaces))
        if journal is not None:
            ring(self.root)  # after the commit: see store/bell.py
        self._reader.keep(key, updated, _stamp(updated))  # the next reload checks its version, not reads it
        return updated

    # -- journal ------------------------------------------------------------

    def history(self, key: int) -> list[JournalEntry]:
        with self._read() as session:
            rows = session.scalars(
                select(JournalRow).where(JournalRow.container_key == key).order_by(JournalRow.seq)
            )
            return [_journal(r) for r in rows]

    def journal_since(self, seq: int) -> list[tuple[str, JournalEntry]]:
        """Every journal entry after `seq`, with its container id (for event streams)."""
        with self._read() as session:
            rows = session.execute(
                select(ContainerRow.id, JournalRow)
                .join(ContainerRow, ContainerRow.key == JournalRow.container_key)
                .where(JournalRow.seq > seq)
                .order_by(JournalRow.seq)
            )
            return [(cid, _journal(j)) for cid, j in rows]

    def events_after(
        self,
        seq: int,
        *,
        ids: Collection[str] | None = None,
        kinds: Collection[str] | None = None,
        limit: int = 1000,
    ) -> list[tuple[str, JournalEntry]]:
        """Up to `limit` journal entries after `seq`, oldest first, of these container ids and events."""
        with self._read() as session:
            query = (
                select(ContainerRow.id, JournalRow)
                .join(ContainerRow, ContainerRow.key == JournalRow.container_key)
                .where(JournalRow.seq > seq)
            )
            if ids is not None:
                query = query.where(ContainerRow.id.in_(list(ids)))
            if kinds is not None:
                query = query.where(JournalRow.event.in_(list(kinds)))
            rows = session.execute(query.order_by(JournalRow.seq).limit(limit))
            return [(cid, _journal(j)) for cid, j in rows]

    def last_seq(self) -> int:
        """The sequence number of the newest journal entry (0 when there is none)."""
        with self._read() as session:
            return int(session.scalar(select(func.max(JournalRow.seq))) or 0)

    # -- exec'd processes ---------------------------------------------------

    def add_process(
        self, container_key: int, pid: int, start_time: int, boot_id: str, args: tuple[str, ...]
    ) -> ProcessRecord:
        with self._write() as session:
            row = ProcessRow(
                container_key=container_key,
                pid=pid,
                start_time=start_time,
                boot_id=boot_id,
                args=json.dumps(list(args)),
                started_at=utcnow(),
            )
            session.add(row)
            session.flush()
            return _process(row)

    def finish_process(
        self, process_key: int, exit_status: int | None, exit_signal: int | None
    ) -> ProcessRecord:
        with self._write() as session:
            row = session.get(ProcessRow, process_key)
            if row is None:
                raise StoreError(f"{self.path}: process record {process_key} vanished")
            if row.ended_at is None:
                row.exit_status = exit_status
                row.exit_signal = exit_signal
                row.ended_at = utcnow()
            session.flush()
            return _process(row)

    def processes(self, container_key: int) -> list[ProcessRecord]:
        with self._read() as session:
            rows = session.scalars(
                select(ProcessRow).where(ProcessRow.container_key == container_key).order_by(ProcessRow.key)
            )
            return [_process(r) for r in rows]
