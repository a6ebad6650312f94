"""The lean store (plain sqlite3) writes what the Repository writes, and finds what is left cheaply.

The command line's one-shot path fires start, signal, pause and resume through
corral/store/lean.py and corral/statemachine/quick.py; the library fires them
through SQLAlchemy and the `transitions` machine. These tests fire the same
events both ways on two containers of one store and compare every column of
the records and of the journal rows, so that the two paths cannot drift.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from corral import Config, Runtime
from corral.errors import ConcurrentModification, InvalidTransition
from corral.statemachine import quick
from corral.statemachine.locks import Locks
from corral.store.lean import LeanStore, open_lean
from corral.store.readonly import SCHEMA_REVISION

#: Columns that differ between two containers by construction (identity, what create made, clock).
IDENTITY = {
    "key", "id", "live_id", "container_key", "seq", "init_pid", "init_start_time", "monitor_pid",
    "monitor_start_time", "run_dir", "created_cgroups", "config",
}
TIMES = {"created_at", "updated_at", "pending_since", "at"}
STAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}$")


def rows(db: Path, table: str, where: str, key: int) -> list[dict[str, Any]]:
    con = sqlite3.connect(db)
    con.row_factory = sqlite3.Row
    try:
        found = [dict(r) for r in con.execute(f"SELECT * FROM {table} WHERE {where} = ? ORDER BY 1", (key,))]
    finally:
        con.close()
    for row in found:
        for column in TIMES & set(row):
            if row[column] is not None:
                assert STAMP.match(row[column]), (table, column, row[column])
                row[column] = "<time>"
        for column in IDENTITY & set(row):
            row.pop(column)
    return found


@pytest.fixture
def lean(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> LeanStore:
    """The lean store of `runtime`'s root; the fake kernel's inits count as alive."""
    monkeypatch.setattr(quick.proc, "alive", lambda init: True)
    store = open_lean(str(runtime.root))
    assert store is not None
    return store


def no_kernel(monkeypatch: pytest.MonkeyPatch, fail: str | None = None) -> None:
    """Each event's kernel work replaced by nothing (the fake executor did nothing either)."""

    def work(event: str) -> Any:
        original = quick.KERNEL_WORK[event]

        def done(record: Any, init: Any, **kwargs: Any) -> Any:
            if event == fail:
                raise RuntimeError("the freezer is stuck")
            if event == "signal":
                return {"signal": kwargs["sig"], "all": kwargs.get("all_processes", False)}
            return None

        assert original is not None
        return done

    monkeypatch.setattr(quick, "KERNEL_WORK", {e: work(e) for e in quick.KERNEL_WORK})


def test_lean_and_library_write_identical_rows(
    runtime: Runtime, config: Config, lean: LeanStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_kernel(monkeypatch)
    orm = runtime.create("orm", config)
    other = runtime.create("lean", config)
    orm.start()
    orm.pause()
    orm.resume()
    orm.signal(10)
    locks = Locks(runtime.root)
    for event, kwargs in (("start", {}), ("pause", {}), ("resume", {}), ("signal", {"sig": 10})):
        quick.fire(lean, locks, "boot-1", "lean", event, **kwargs)
    db = runtime.root / "corral.db"
    a, b = orm.record.key, other.record.key
    assert rows(db, "containers", "key", a) == rows(db, "containers", "key", b)
    assert rows(db, "journal", "container_key", a)[2:] == rows(db, "journal", "container_key", b)[2:]  # after create
    assert [e.event for e in runtime.load("lean").history()] == ["create", "create", "start", "pause", "resume", "signal"]
    assert runtime.load("lean").record.version == orm.record.version


def test_a_failed_kernel_step_is_recorded_as_the_library_records_it(
    runtime: Runtime, config: Config, lean: LeanStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_kernel(monkeypatch, fail="pause")
    orm = runtime.create("orm", config)
    other = runtime.create("lean", config)
    orm.start()
    monkeypatch.setattr(runtime.context.executor, "freeze", lambda facts: (_ for _ in ()).throw(RuntimeError("the freezer is stuck")))
    with pytest.raises(RuntimeError):
        orm.pause()
    locks = Locks(runtime.root)
    quick.fire(lean, locks, "boot-1", "lean", "start")
    with pytest.raises(RuntimeError):
        quick.fire(lean, locks, "boot-1", "lean", "pause")
    db = runtime.root / "corral.db"
    a, b = orm.record.key, other.record.key
    assert rows(db, "containers", "key", a) == rows(db, "containers", "key", b)
    assert rows(db, "containers", "key", b)[0]["last_error"] == "pause: the freezer is stuck"
    assert rows(db, "journal", "container_key", a)[2:] == rows(db, "journal", "container_key", b)[2:]


def test_the_guard_is_the_lifecycle_table(runtime: Runtime, config: Config, lean: LeanStore, monkeypatch: pytest.MonkeyPatch) -> None:
    no_kernel(monkeypatch)
    runtime.create("c", config)
    before = runtime.load("c").record
    with pytest.raises(InvalidTransition) as caught:
        quick.fire(lean, Locks(runtime.root), "boot-1", "c", "resume")
    with pytest.raises(InvalidTransition) as library:
        runtime.load("c").resume()
    assert str(caught.value) == str(library.value)  # the same refusal, from the same table
    assert caught.value.state == "created"
    assert runtime.load("c").record == before  # nothing written


@pytest.mark.parametrize("why", ["pending", "other boot", "init gone"])
def test_what_only_the_library_may_decide_is_handed_over_untouched(
    why: str, runtime: Runtime, config: Config, lean: LeanStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_kernel(monkeypatch)
    box = runtime.create("c", config)
    box.start()
    record = box.record
    boot = "boot-1"
    if why == "pending":
        record = runtime.context.store.update(record.key, record.version, pending_event="pause")
    elif why == "other boot":
        boot = "boot-2"
    else:
        monkeypatch.setattr(quick.proc, "alive", lambda init: False)
    with pytest.raises(quick.NeedsLibrary):
        quick.fire(lean, Locks(runtime.root), boot, "c", "pause")
    assert runtime.context.store.get(record.key) == record


def test_a_stale_version_writes_nothing(runtime: Runtime, config: Config, lean: LeanStore) -> None:
    runtime.create("c", config).start()
    record = lean.record("c")
    assert record is not None
    lean.intent(record, "pause")
    with pytest.raises(ConcurrentModification):
        lean.intent(record, "pause")
    with pytest.raises(ValueError):
        lean.intent(lean.record("c"), "destroy")  # durable commits stay the Repository's


def test_recovery_needed_reads_the_boot_and_unheld_intents(runtime: Runtime, config: Config, lean: LeanStore) -> None:
    box = runtime.create("c", config)  # the Runtime's open recorded boot-1 as recovered
    assert lean.recovery_needed("boot-1", lambda cid: True) is None
    assert "restarted" in (lean.recovery_needed("boot-2", lambda cid: True) or "")
    record = box.record
    runtime.context.store.update(record.key, record.version, pending_event="pause")
    assert "interrupted" in (lean.recovery_needed("boot-1", lambda cid: True) or "")
    assert lean.recovery_needed("boot-1", lambda cid: False) is None  # held: a live process is at it


def test_a_store_never_fully_recovered_needs_the_library(tmp_path: Path) -> None:
    from corral.store.repository import Repository

    Repository(tmp_path).close()
    store = open_lean(str(tmp_path))
    assert store is not None
    with store:
        assert store.recovery_needed("b", lambda cid: True) == "never fully recovered"


def test_open_lean_needs_the_known_revision(tmp_path: Path) -> None:
    assert open_lean(str(tmp_path)) is None  # no store: never created here
    assert not (tmp_path / "corral.db").exists()
    from corral.store.repository import Repository

    Repository(tmp_path).close()
    con = sqlite3.connect(tmp_path / "corral.db")
    con.execute("UPDATE alembic_version SET version_num = '0003_created_cgroups'")
    con.commit()
    con.close()
    assert open_lean(str(tmp_path)) is None
    assert SCHEMA_REVISION != "0003_created_cgroups"


def test_the_queries_an_open_makes_use_indexes(runtime: Runtime) -> None:
    """Not a timing: the plans SQLite chooses, which decide how the cost grows with the store."""
    con = sqlite3.connect(runtime.root / "corral.db")
    try:
        def plan(sql: str) -> str:
            return " ".join(str(r[-1]) for r in con.execute("EXPLAIN QUERY PLAN " + sql))

        assert "ix_containers_pending" in plan("SELECT id FROM containers WHERE pending_event IS NOT NULL")
        assert "PRIMARY KEY" in plan("SELECT boot_id FROM recovered_boot WHERE slot = 1") or "INTEGER PRIMARY KEY" in plan(
            "SELECT boot_id FROM recovered_boot WHERE slot = 1"
        )
        assert "ix_containers_id" in plan(
            "SELECT key FROM containers WHERE id = 'x' ORDER BY live_id IS NULL, key DESC LIMIT 1"
        )
    finally:
        con.close()
