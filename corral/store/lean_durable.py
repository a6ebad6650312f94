"""The durable writes of `create` and `destroy` through `sqlite3` alone, for the command line.

containerd runs `create` and `delete` as one process each; the Repository
costs such a process SQLAlchemy's import (~250 ms) before it writes anything.
This store writes what `Runtime.create` and a `destroy` write through the
Repository, with the same statements (lean.py's optimistic UPDATE and journal
row) and the same durability: every commit of this connection runs under
`synchronous = FULL`, so that the intent and the outcome of create and destroy
are fsynced as the Repository's `corral_durable` transactions are (issue 10).

- `insert`: the new record (`creating`, intent `create`), its cgroup paths and
  its first journal row, in one transaction (Repository.insert), refusing a
  live container of the same id (ContainerExists);
- `intent`, `outcome`, `failed`: lean.py's, here allowed for create and destroy,
  with the namespaces `created` records and the columns its outcome sets.

tests/unit/test_quick_create.py compares every row with the Repository's.
A record with network interfaces is never written here (the library's path).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from datetime import datetime
from typing import NamedTuple

from corral.errors import ContainerExists
from corral.store.bell import ring
from corral.store.lean import LeanRecord, LeanStore, db_time, open_lean, utcnow


class Incarnation(NamedTuple):
    """What destroy needs of a record beyond LeanRecord: its monitor, config and interfaces."""

    monitor_pid: int | None
    monitor_start_time: int | None
    config: str
    bundle: str | None
    has_interfaces: bool


class DurableLeanStore(LeanStore):
    """A lean connection whose every commit is fsynced (create's and destroy's)."""

    refused: frozenset[str] = frozenset()

    def insert(
        self,
        *,
        container_id: str,
        config: str,
        bundle: str | None,
        run_dir: str,
        boot_id: str,
        cgroup_paths: Mapping[str, str],
        created_cgroups: Mapping[str, tuple[str, ...]] | None,
        now: datetime | None = None,
    ) -> LeanRecord:
        """Record a new container `creating` with the intent `create` (Repository.insert's rows)."""
        stamp = db_time(now or utcnow())
        created = (
            None if created_cgroups is None
            else json.dumps({k: list(v) for k, v in created_cgroups.items()}, sort_keys=True)
        )

        def write(con: sqlite3.Connection) -> int:
            existing = con.execute("SELECT state FROM containers WHERE live_id = ?", (container_id,)).fetchone()
            if existing is not None:
                raise ContainerExists(container_id, str(existing[0]))
            cursor = con.execute(
                "INSERT INTO containers (id, live_id, state, pending_event, pending_since, boot_id, oom_killed, "
                "bundle, config, run_dir, created_cgroups, created_at, updated_at, version) "
                "VALUES (?, ?, 'creating', 'create', ?, ?, 0, ?, ?, ?, ?, ?, ?, 1)",
                (container_id, container_id, stamp, boot_id, bundle, config, run_dir, created, stamp, stamp),
            )
            key = int(cursor.lastrowid or 0)
            con.executemany(
                "INSERT INTO cgroup_paths (container_key, hierarchy, path) VALUES (?, ?, ?)",
                [(key, hierarchy, path) for hierarchy, path in cgroup_paths.items()],
            )
            con.execute(
                "INSERT INTO journal (container_key, event, from_state, to_state, at, detail) "
                "VALUES (?, 'create', NULL, 'creating', ?, '{}')",
                (key, stamp),
            )
            return key

        key = self._transaction(write)
        ring(self.root)
        return LeanRecord(
            key=key,
            id=container_id,
            state="creating",
            pending_event="create",
            init_pid=None,
            init_start_time=None,
            boot_id=boot_id,
            run_dir=run_dir,
            version=1,
            live=True,
            cgroup_paths=dict(cgroup_paths),
            created_cgroups=None if created_cgroups is None else dict(created_cgroups),
        )

    def fsync_commits(self) -> None:
        """Every commit from now on survives a power loss (engine.py's `corral_durable`)."""
        self._con.execute("PRAGMA synchronous = FULL")

    @property
    def root(self) -> str:
        import os

        return os.path.dirname(self.path)

    def incarnation(self, key: int) -> Incarnation:
        row = self._con.execute(
            "SELECT monitor_pid, monitor_start_time, config, bundle, "
            "EXISTS (SELECT 1 FROM network_interfaces WHERE container_key = containers.key) "
            "FROM containers WHERE key = ?",
            (key,),
        ).fetchone()
        return Incarnation(row[0], row[1], str(row[2]), row[3], bool(row[4]))


def open_durable(root: str) -> DurableLeanStore | None:
    """As lean.open_lean, with every commit fsynced (synchronous = FULL); None: only the library can open it."""
    store = open_lean(root, DurableLeanStore)
    if store is None:
        return None
    assert isinstance(store, DurableLeanStore)
    store.fsync_commits()
    return store
