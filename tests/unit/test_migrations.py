"""Alembic migrations: they round-trip, they match the models, and old stores upgrade on open."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from corral.store.migrate import alembic_config
from corral.store.engine import HEAD_REVISION, known_revisions, make_engine
from corral.store.models import Base
from corral.store.repository import Repository


def _config(db: Path):
    return alembic_config(f"sqlite:///{db}")


def _tables(db: Path) -> set[str]:
    con = sqlite3.connect(db)
    try:
        return {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    finally:
        con.close()


def test_head_constant_is_the_script_head() -> None:
    script = ScriptDirectory.from_config(_config(Path("/nonexistent.db")))
    assert script.get_current_head() == HEAD_REVISION


def test_migration_files_are_named_after_their_revision() -> None:
    script = ScriptDirectory.from_config(_config(Path("/nonexistent.db")))
    revisions = {rev.revision for rev in script.walk_revisions()}
    assert revisions == known_revisions()
    for rev in script.walk_revisions():
        assert Path(rev.path).stem == rev.revision


def test_upgrade_downgrade_upgrade(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    config = _config(db)
    command.upgrade(config, "head")
    assert {"containers", "cgroup_paths", "namespace_paths", "processes", "journal"} <= _tables(db)
    command.downgrade(config, "base")
    assert _tables(db) <= {"alembic_version", "sqlite_sequence"}
    command.upgrade(config, "head")
    assert "containers" in _tables(db)
    assert not any(t.startswith("_alembic_tmp") for t in _tables(db))


def test_models_and_migrations_agree(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    command.upgrade(_config(db), "head")
    engine = make_engine(db)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"render_as_batch": True})
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()


def test_opening_an_older_store_upgrades_it_and_keeps_its_data(tmp_path: Path) -> None:
    db = tmp_path / "corral.db"
    command.upgrade(_config(db), "0001_initial")
    con = sqlite3.connect(db)
    con.execute(
        "INSERT INTO containers (id, live_id, state, boot_id, config, run_dir, created_at, updated_at, version) "
        "VALUES ('old', 'old', 'stopped', 'b', '{}', '/run/x/old', '2026-01-01 00:00:00', '2026-01-01 00:00:00', 3)"
    )
    con.commit()
    con.close()
    repo = Repository(tmp_path)
    try:
        record = repo.find("old")
        assert record is not None and record.state == "stopped" and record.version == 3
        assert record.oom_killed is False and record.monitor_pid is None
        with repo.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == HEAD_REVISION
    finally:
        repo.close()


def _columns(db: Path, table: str) -> set[str]:
    con = sqlite3.connect(db)
    try:
        return {r[1] for r in con.execute(f"PRAGMA table_info({table})")}
    finally:
        con.close()


def test_0003_records_created_cgroups_and_reads_older_records_as_unknown(tmp_path: Path) -> None:
    """A record from before 0003 has no created_cgroups: None (the executor's legacy meaning)."""
    db = tmp_path / "corral.db"
    config = _config(db)
    command.upgrade(config, "0002_exec_facts")
    assert "created_cgroups" not in _columns(db, "containers")
    con = sqlite3.connect(db)
    con.execute(
        "INSERT INTO containers (id, live_id, state, boot_id, config, run_dir, created_at, updated_at, version) "
        "VALUES ('old', 'old', 'stopped', 'b', '{}', '/run/x/old', '2026-01-01 00:00:00', '2026-01-01 00:00:00', 1)"
    )
    con.commit()
    con.close()
    command.upgrade(config, "0003_created_cgroups")
    assert "created_cgroups" in _columns(db, "containers")
    repo = Repository(tmp_path)
    try:
        old = repo.find("old")
        assert old is not None and old.created_cgroups is None
        new = repo.insert(
            container_id="new", state="creating", pending_event="create", config="{}", bundle=None,
            run_dir="/run/x/new", boot_id="b", cgroup_paths={"memory": "/m/corral/s/new"},
            created_cgroups={"memory": ("/m/corral", "/m/corral/s", "/m/corral/s/new")}, journal_event="create",
        )
        assert repo.get(new.key).created_cgroups == {"memory": ("/m/corral", "/m/corral/s", "/m/corral/s/new")}
    finally:
        repo.close()
    command.downgrade(config, "0002_exec_facts")
    assert "created_cgroups" not in _columns(db, "containers")
    con = sqlite3.connect(db)
    try:
        assert {r[0] for r in con.execute("SELECT id FROM containers")} == {"old", "new"}
    finally:
        con.close()


def test_0005_journal_sequence_numbers_are_never_reused(tmp_path: Path) -> None:
    """Events resume by seq: once the newest rows are deleted, their numbers must not come back."""
    db = tmp_path / "corral.db"
    config = _config(db)
    command.upgrade(config, "0003_created_cgroups")
    con = sqlite3.connect(db)
    con.execute(
        "INSERT INTO containers (key, id, live_id, state, boot_id, config, run_dir, created_at, updated_at, version) "
        "VALUES (1, 'old', 'old', 'stopped', 'b', '{}', '/run/x/old', '2026-01-01 00:00:00', '2026-01-01 00:00:00', 1)"
    )
    for seq in (1, 2, 3):
        con.execute(
            "INSERT INTO journal (seq, container_key, event, to_state, at) VALUES (?, 1, 'create', 'creating', '2026-01-01')",
            (seq,),
        )
    con.commit()
    con.close()
    command.upgrade(config, "head")
    con = sqlite3.connect(db)
    con.execute("DELETE FROM journal WHERE seq = 3")  # the newest row goes (a tombstone purged)
    con.commit()
    con.close()
    repo = Repository(tmp_path)
    try:
        repo.insert(
            container_id="new", state="creating", pending_event="create", config="{}", bundle=None,
            run_dir="/run/x/new", boot_id="b", cgroup_paths={}, journal_event="create",
        )
        assert [seq for seq, in sqlite3.connect(db).execute("SELECT seq FROM journal ORDER BY seq")] == [1, 2, 4]
    finally:
        repo.close()
    command.downgrade(config, "0003_created_cgroups")
    assert len(sqlite3.connect(db).execute("SELECT seq FROM journal").fetchall()) == 3
