"""Migration 0004: the host-side interfaces a container's create makes, recorded with its plan."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from alembic import command

from corral.store.repository import Repository
from corral.types import HostInterface
from tests.unit.test_migrations import _columns, _config


def test_0004_records_interfaces_and_reads_older_records_as_having_none(tmp_path: Path) -> None:
    db = tmp_path / "corral.db"
    config = _config(db)
    command.upgrade(config, "0003_created_cgroups")
    con = sqlite3.connect(db)
    con.execute(
        "INSERT INTO containers (id, live_id, state, boot_id, config, run_dir, created_at, updated_at, version) "
        "VALUES ('old', 'old', 'stopped', 'b', '{}', '/run/x/old', '2026-01-01 00:00:00', '2026-01-01 00:00:00', 1)"
    )
    con.commit()
    con.close()
    command.upgrade(config, "0004_network_interfaces")
    assert _columns(db, "network_interfaces") == {"container_key", "position", "host_name", "name", "owner"}
    planned = (HostInterface("v0", "eth0", "corral s/new"), HostInterface("crabcdef0123x1", "eth1", "corral s/new"))
    repo = Repository(tmp_path)
    try:
        old = repo.find("old")
        assert old is not None and old.interfaces == ()
        new = repo.insert(
            container_id="new", state="creating", pending_event="create", config="{}", bundle=None,
            run_dir="/run/x/new", boot_id="b", cgroup_paths={}, interfaces=planned, journal_event="create",
        )
        assert new.interfaces == planned
        assert repo.get(new.key).interfaces == planned  # in their order
        created = repo.update(new.key, new.version, state="created", pending_event=None)
        assert repo.get(created.key).interfaces == planned
        assert repo.get(created.key).interfaces == planned  # from the kept children too
    finally:
        repo.close()
    command.downgrade(config, "0003_created_cgroups")
    con = sqlite3.connect(db)
    try:
        assert not con.execute("SELECT name FROM sqlite_master WHERE name = 'network_interfaces'").fetchall()
        assert {r[0] for r in con.execute("SELECT id FROM containers")} == {"old", "new"}
    finally:
        con.close()
