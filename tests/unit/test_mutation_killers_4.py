"""Tests written against mutants of store/lean.py, store/lean_durable.py and statemachine/quick.py
that survived the unit suite (tests/README.md, fourth session); each names what it kills.

The one-shot command line writes through these modules (plain sqlite3) what the library writes
through the Repository; tests/unit/test_store_lean.py and test_quick_create.py compare the rows
of whole transitions. These cover what those comparisons leave out: the record each write hands
back (the next write of the same call is decided on it), the id a lean destroy frees, the clock
the stamps are read from, and the errors a failed write raises.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from corral import Config, Runtime
from corral.config import Hook, Hooks
from corral.errors import ConcurrentModification, ContainerExists, ContainerNotFound, StoreError
from corral.executor.interface import ContainerFacts
from corral.statemachine import quick, quick_create, quick_destroy
from corral.statemachine.locks import Locks
from corral.statemachine.quick import NeedsLibrary
from corral.store.bell import bell_path
from corral.store.lean import LeanRecord, LeanStore, open_lean
from corral.store.lean_durable import DurableLeanStore, open_durable
from corral.types import ProcessIdentity

BOOT = "boot-1"


@pytest.fixture
def lean(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> Iterator[LeanStore]:
    """The plain lean store of `runtime`'s root (start, kill, pause, resume); the fake's inits live."""
    monkeypatch.setattr(quick.proc, "alive", lambda init: True)
    store = open_lean(str(runtime.root))
    assert store is not None
    with store:
        yield store


@pytest.fixture
def durable(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> Iterator[DurableLeanStore]:
    """The durable lean store (create, delete) of `runtime`'s root."""
    monkeypatch.setattr(quick_destroy.proc, "alive", lambda init: True)
    store = open_durable(str(runtime.root))
    assert store is not None
    with store:
        yield store


def lean_create(runtime: Runtime, store: DurableLeanStore, cid: str, config: Config) -> None:
    executor: Any = runtime.context.executor  # the fake, in the LinuxExecutor's place
    quick_create.create(store, Locks(runtime.root), executor, BOOT, str(runtime.run_root), cid, config)


def lean_delete(runtime: Runtime, store: DurableLeanStore, cid: str) -> None:
    executor: Any = runtime.context.executor
    quick_destroy.delete(store, executor, Locks(runtime.root), BOOT, cid, force=True)


def column(runtime: Runtime, sql: str, *args: object) -> list[tuple[object, ...]]:
    con = sqlite3.connect(runtime.root / "corral.db")
    try:
        return list(con.execute(sql, args))
    finally:
        con.close()


def write(runtime: Runtime, sql: str, *args: object) -> None:
    con = sqlite3.connect(runtime.root / "corral.db")
    try:
        con.execute(sql, args)
        con.commit()
    finally:
        con.close()


def fresh(store: LeanStore, cid: str) -> LeanRecord:
    record = store.record(cid)
    assert record is not None
    return record


def test_a_lean_record_reads_what_the_library_holds(runtime: Runtime, config: Config, lean: LeanStore) -> None:
    """Kills lean.LeanStore.record__mutmut_9 (the cgroup paths read for key None: none), _18 and _41
    (run_dir lost): pause and kill act on the cgroups the record names, start and delete on its run dir."""
    runtime.create("c", config).start()
    library = runtime.load("c").record
    record = fresh(lean, "c")
    assert record.cgroup_paths and dict(record.cgroup_paths) == dict(library.cgroup_paths)
    assert record.created_cgroups == library.created_cgroups
    assert record.run_dir == library.run_dir  # start releases the init through it; delete removes it
    assert (record.key, record.state, record.version, record.live) == (library.key, "running", library.version, True)


def test_each_lean_write_hands_back_the_record_it_wrote(runtime: Runtime, config: Config, lean: LeanStore) -> None:
    """The next write of the same call is decided on the record a write returns (quick_create hands
    create's outcome to destroy), so it must be the row now stored: kills lean intent__mutmut_12
    (its pending event lost), outcome__mutmut_24..28 (state or liveness not updated, or inverted)
    and _update__mutmut_93/95/98/99/100 (the pending event of an intent dropped)."""
    runtime.create("c", config).start()
    record = lean.intent(fresh(lean, "c"), "pause")
    assert record == fresh(lean, "c")
    assert record.pending_event == "pause"
    record = lean.outcome(record, "pause", "running", "paused", None)
    assert record == fresh(lean, "c")
    assert (record.state, record.live, record.pending_event) == ("paused", True, None)
    record = lean.intent(record, "resume")
    record = lean.failed(record, "resume", RuntimeError("the freezer is stuck"))
    assert record == fresh(lean, "c")
    assert column(runtime, "SELECT last_error FROM containers WHERE key = ?", record.key) == [("resume: the freezer is stuck",)]


def test_a_durable_destroy_hands_back_a_tombstone(runtime: Runtime, config: Config, durable: DurableLeanStore) -> None:
    """Kills lean outcome__mutmut_25/27/28 on the destroy path: the record destroy returns is not live."""
    lean_create(runtime, durable, "c", config)
    record = fresh(durable, "c")
    record = durable.intent(record, "destroy")
    record = durable.outcome(record, "destroy", "created", "destroyed", {"force": True})
    assert (record.state, record.live) == ("destroyed", False)
    assert record == fresh(durable, "c")


def test_a_lean_delete_frees_the_id(runtime: Runtime, config: Config, durable: DurableLeanStore) -> None:
    """A tombstone's live_id is NULL, so the id can be created again: kills lean outcome__mutmut_8
    and _update__mutmut_16/17/20 (live_id left at the id when destroyed)."""
    lean_create(runtime, durable, "c", config)
    first = fresh(durable, "c").key
    lean_delete(runtime, durable, "c")
    assert column(runtime, "SELECT live_id, state FROM containers WHERE key = ?", first) == [(None, "destroyed")]
    lean_create(runtime, durable, "c", config)  # not ContainerExists
    second = fresh(durable, "c")
    assert second.key != first and second.live and runtime.load("c").record.key == second.key


def test_the_plain_lean_store_refuses_durable_events(runtime: Runtime, config: Config, lean: LeanStore) -> None:
    """Create and destroy must commit with an fsync: the plain connection refuses their outcome too,
    writing nothing. Kills lean outcome__mutmut_1 (not refused) and _refuse__mutmut_2 (no reason)."""
    runtime.create("c", config)
    record = fresh(lean, "c")
    with pytest.raises(ValueError, match="destroy commits durably"):
        lean.outcome(record, "destroy", "created", "destroyed", None)
    assert fresh(lean, "c") == record
    with pytest.raises(ValueError, match="create commits durably"):
        lean.intent(record, "create")


def test_lean_stamps_are_utc_whatever_the_local_zone(
    runtime: Runtime, config: Config, lean: LeanStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Repository stores naive UTC; a lean stamp in local time would make a pending intent look
    hours old or young to recovery. Kills lean.x_utcnow__mutmut_1 (datetime.now(None): local time)."""
    runtime.create("c", config)
    monkeypatch.setenv("TZ", "XYZ-9")  # nine hours east of UTC
    time.tzset()
    try:
        lean.intent(fresh(lean, "c"), "pause")
    finally:
        monkeypatch.undo()
        time.tzset()
    [(since,)] = column(runtime, "SELECT pending_since FROM containers WHERE id = 'c'")
    stamp = datetime.strptime(str(since), "%Y-%m-%d %H:%M:%S.%f")
    assert abs(stamp - datetime.now(timezone.utc).replace(tzinfo=None)) < timedelta(minutes=10)


def test_an_outcome_rings_the_bell_after_its_journal_row(runtime: Runtime, config: Config, lean: LeanStore) -> None:
    """Runtime.events() wakes on the bell when a journal row is committed: the outcome rings it.
    Kills lean _update__mutmut_89 (rung only by writes without a journal row, i.e. intents)."""
    runtime.create("c", config).start()
    record = lean.intent(fresh(lean, "c"), "pause")
    bell = Path(bell_path(runtime.root))
    bell.unlink(missing_ok=True)
    lean.outcome(record, "pause", "running", "paused", None)
    assert bell.exists()


def test_a_database_error_is_a_store_error_naming_the_file_and_cause(
    runtime: Runtime, config: Config, lean: LeanStore
) -> None:
    """Kills lean _transaction__mutmut_14..18 and x__path__mutmut_1 (a TypeError, or the cause
    lost, instead of the store's error): the write is rolled back and the error says where and why."""
    runtime.create("c", config)
    record = fresh(lean, "c")
    con = sqlite3.connect(runtime.root / "corral.db")
    con.execute("CREATE TRIGGER no_pause BEFORE UPDATE ON containers BEGIN SELECT RAISE(ABORT, 'the disk says no'); END")
    con.commit()
    con.close()
    with pytest.raises(StoreError) as caught:
        lean.intent(record, "pause")
    assert str(runtime.root / "corral.db") in str(caught.value)
    assert "the disk says no" in str(caught.value)
    assert fresh(lean, "c") == record  # rolled back


def test_a_stale_write_names_the_container_and_the_versions(runtime: Runtime, config: Config, lean: LeanStore) -> None:
    """Kills lean _update__mutmut_49..53 (ConcurrentModification without the id or the versions)."""
    runtime.create("c", config)
    record = fresh(lean, "c")
    lean.intent(record, "pause")
    with pytest.raises(ConcurrentModification) as caught:
        lean.intent(record, "pause")
    assert caught.value.container_id == "c"
    assert f"record version {record.version + 1}, decided on {record.version}" in str(caught.value)


def test_a_vanished_record_is_a_store_error_naming_it(runtime: Runtime, config: Config, lean: LeanStore) -> None:
    """Kills lean _update__mutmut_48 (StoreError(None)): the error says which record vanished where."""
    runtime.create("c", config)
    record = fresh(lean, "c")
    con = sqlite3.connect(runtime.root / "corral.db")
    con.execute("PRAGMA foreign_keys = ON")
    con.execute("DELETE FROM containers WHERE key = ?", (record.key,))
    con.commit()
    con.close()
    with pytest.raises(StoreError) as caught:
        lean.intent(record, "pause")
    assert not isinstance(caught.value, ConcurrentModification)
    assert f"container record {record.key} vanished" in str(caught.value)
    assert str(runtime.root / "corral.db") in str(caught.value)



def test_a_lean_write_waits_for_another_writer(runtime: Runtime, config: Config, lean: LeanStore) -> None:
    """Another process holding the write lock for a moment delays a lean write, as it delays the
    Repository's (the busy timeout), instead of failing it: kills lean x_open_lean__mutmut_25
    (busy_timeout = 0)."""
    runtime.create("c", config)
    record = fresh(lean, "c")
    other = sqlite3.connect(runtime.root / "corral.db", isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    release = threading.Timer(0.5, lambda: other.execute("COMMIT"))
    release.start()
    try:
        assert lean.intent(record, "pause").pending_event == "pause"
    finally:
        release.join()
        other.close()
    assert fresh(lean, "c").pending_event == "pause"


def test_a_record_from_before_created_cgroups_reads_as_the_library_reads_it(
    runtime: Runtime, config: Config, lean: LeanStore
) -> None:
    """A record written before migration 0003 has no created_cgroups (NULL): the lean path reads it
    (None: corral may not remove its cgroups) instead of failing. Kills lean record__mutmut_45."""
    runtime.create("c", config).start()
    con = sqlite3.connect(runtime.root / "corral.db")
    con.execute("UPDATE containers SET created_cgroups = NULL WHERE id = 'c'")
    con.commit()
    con.close()
    record = fresh(lean, "c")
    assert record.created_cgroups is None
    assert runtime.load("c").record.created_cgroups is None
    assert record.state == "running" and record.cgroup_paths


def test_a_lean_create_records_the_cgroups_it_made_as_the_library_does(
    runtime: Runtime, config: Config, durable: DurableLeanStore
) -> None:
    """Only the cgroups corral created are removed at destroy (created_cgroups; None: none known).
    test_quick_create.py compares every row but this column (it names the id). Kills
    lean_durable insert__mutmut_4..7 (None written, or the test inverted)."""
    runtime.create("orm", config)
    lean_create(runtime, durable, "lean", config)
    orm, made = runtime.load("orm").record.created_cgroups, runtime.load("lean").record.created_cgroups
    assert orm and made
    assert {k: tuple(p.replace("orm", "ID") for p in v) for k, v in orm.items()} == {
        k: tuple(p.replace("lean", "ID") for p in v) for k, v in made.items()
    }
    assert fresh(durable, "lean").created_cgroups == made


def test_a_lean_delete_hands_the_executor_the_recorded_monitor_and_bundle(
    runtime: Runtime, config: Config, durable: DurableLeanStore, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """destroy ends the container's monitor (its recorded identity, pid and start time) and runs
    with the config as read from its bundle. Kills lean_durable incarnation__mutmut_15/16/18/25/26."""
    config = dataclasses.replace(config, bundle=str(tmp_path))
    lean_create(runtime, durable, "c", config)
    write(runtime, "UPDATE containers SET monitor_pid = 4242, monitor_start_time = 99 WHERE id = 'c'")  # as spawn records it
    record = runtime.load("c").record
    assert (record.monitor_pid, record.monitor_start_time) == (4242, 99)
    given: list[ContainerFacts] = []
    real = runtime.context.executor.destroy

    def destroy(facts: ContainerFacts) -> None:
        given.append(facts)
        real(facts)

    monkeypatch.setattr(runtime.context.executor, "destroy", destroy)
    lean_delete(runtime, durable, "c")
    [facts] = given
    assert facts.monitor == ProcessIdentity(4242, 99)
    assert facts.config.bundle == str(tmp_path)
    assert runtime.load("c").record.state == "destroyed"


def test_a_lean_delete_hands_network_interfaces_to_the_library_untouched(
    runtime: Runtime, config: Config, durable: DurableLeanStore
) -> None:
    """Only the library removes a container's network interfaces. Kills lean_durable
    incarnation__mutmut_19/30 (has_interfaces always False)."""
    box = runtime.create("c", config)
    write(  # as the library records a veth pair it made (the fake executor makes none)
        runtime,
        "INSERT INTO network_interfaces (container_key, position, host_name, name, owner) VALUES (?, 0, 'vcorral0', 'eth0', 'c')",
        box.record.key,
    )
    record = runtime.load("c").record
    assert record.interfaces
    with pytest.raises(NeedsLibrary):
        lean_delete(runtime, durable, "c")
    assert runtime.load("c").record == record
    fake: Any = runtime.context.executor
    assert fake.kernel("c").get("alive")


@pytest.mark.parametrize("created", [{"fake": ("/fake-cgroup/corral/c",)}, None])
def test_a_durable_insert_writes_and_hands_back_a_creating_record(
    created: dict[str, tuple[str, ...]] | None, runtime: Runtime, config: Config, durable: DurableLeanStore
) -> None:
    """Between the insert and create's outcome (a crash there) the row must read as the library's
    `creating` record with the intent `create`, and the record handed back is the one create's
    outcome is decided on. Kills lean_durable insert__mutmut_5 (None created_cgroups: a crash),
    _41 (the state and intent upper-cased), _67.._97 (the record handed back differs from the row)."""
    record = durable.insert(
        container_id="c", config=config.to_json(), bundle=None, run_dir=str(runtime.run_root / "c"),
        boot_id=BOOT, cgroup_paths={"fake": "/fake-cgroup/corral/c"}, created_cgroups=created,
    )
    assert column(runtime, "SELECT state, pending_event, live_id, created_cgroups IS NULL FROM containers WHERE id = 'c'") == [
        ("creating", "create", "c", int(created is None))
    ]
    assert column(runtime, "SELECT event, from_state, to_state FROM journal WHERE container_key = ?", record.key) == [
        ("create", None, "creating")
    ]
    assert record == fresh(durable, "c")
    assert (record.state, record.pending_event, record.live, record.created_cgroups) == ("creating", "create", True, created)


def test_a_live_id_is_refused_naming_it_and_its_state(runtime: Runtime, config: Config, durable: DurableLeanStore) -> None:
    """Kills lean_durable insert__mutmut_23/24/27 (ContainerExists without the id or the state)."""
    lean_create(runtime, durable, "c", config)
    with pytest.raises(ContainerExists) as caught:
        lean_create(runtime, durable, "c", config)
    assert caught.value.container_id == "c"
    assert "'c' already exists (state created)" in str(caught.value)


# -- statemachine/quick.py: the lean start, pause, resume and signal ------------------------------


def test_the_lean_kernel_work_acts_on_the_records_init_and_cgroups(
    runtime: Runtime, config: Config, lean: LeanStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each event's kernel work (executor/quick.py, seen here at its seam) is given the record's id,
    init, run dir and cgroups, runs with the intent recorded, only for the recorded init, and passes
    the fault points test_faults.py kills at. Kills quick x__start/_pause/_resume/_signal mutants
    (arguments dropped or None, signal 15 and `all=False` by default, the journal detail's keys,
    the fault point) and x_fire__mutmut_28/29/33 (another identity asked about), _81 (no intent
    written), _84/_107 (fault points), _86/_87 (no record or init handed to the work)."""
    runtime.create("c", config)
    library = runtime.load("c").record
    assert library.init_pid is not None and library.init_start_time is not None
    init = ProcessIdentity(library.init_pid, library.init_start_time)
    monkeypatch.setattr(quick.proc, "alive", lambda identity: identity == init)
    calls: list[tuple[object, ...]] = []
    pending: list[object] = []

    def seam(name: str) -> object:
        def work(*args: object) -> None:
            calls.append((name, *args))
            pending.extend(column(runtime, "SELECT pending_event FROM containers WHERE id = 'c'")[0])

        return work

    for name in ("release_init", "freeze", "thaw", "send_signal"):
        monkeypatch.setattr(quick.quick, name, seam(name))
    reached: list[str] = []
    monkeypatch.setattr(quick.faults, "point", reached.append)
    locks = Locks(runtime.root)
    for event in ("start", "pause", "resume", "signal"):
        quick.fire(lean, locks, BOOT, "c", event)
    paths, created = dict(library.cgroup_paths), library.created_cgroups
    assert calls == [
        ("release_init", "c", init, library.run_dir),
        ("freeze", paths, created),
        ("thaw", paths, created),
        ("send_signal", "c", init, paths, created, 15, False),  # SIGTERM to the init alone, as `kill`
    ]
    assert pending == ["start", "pause", "resume", "signal"]
    assert reached == [
        "start.intent", "start.recorded", "pause.intent", "pause.recorded", "resume.intent", "resume.recorded",
        "signal.intent", "signal.sent", "signal.recorded",
    ]
    [(detail,)] = column(runtime, "SELECT detail FROM journal WHERE container_key = ? AND event = 'signal'", library.key)
    assert json.loads(str(detail)) == {"signal": 15, "all": False}
    assert runtime.load("c").state.value == "running"


def test_lean_fire_on_an_unknown_or_destroyed_id_is_not_found(runtime: Runtime, config: Config, lean: LeanStore) -> None:
    """Kills quick x_fire__mutmut_5 (a tombstone fired on, or None dereferenced), _8, _10, _11."""
    runtime.create("gone", config).destroy(force=True)
    for cid in ("nobody", "gone"):
        with pytest.raises(ContainerNotFound) as caught:
            quick.fire(lean, Locks(runtime.root), BOOT, cid, "signal", sig=9)
        assert caught.value.container_id == cid


def test_an_init_without_its_start_time_is_handed_to_the_library(
    runtime: Runtime, config: Config, lean: LeanStore
) -> None:
    """Without the init's start time its PID cannot be told from a reused one: kills quick
    x_fire__mutmut_19 (handed over only when both are missing)."""
    runtime.create("c", config).start()
    write(runtime, "UPDATE containers SET init_start_time = NULL WHERE id = 'c'")
    before = runtime.context.store.get(runtime.load("c").record.key)
    with pytest.raises(NeedsLibrary):
        quick.fire(lean, Locks(runtime.root), BOOT, "c", "pause")
    assert runtime.context.store.get(before.key) == before


def test_only_a_hooked_start_is_handed_to_the_library(
    runtime: Runtime, config: Config, lean: LeanStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """start runs startContainer and poststart hooks (the library's); pause, resume and signal run
    none, so they stay lean. Kills quick x_fire__mutmut_70/71/72."""
    monkeypatch.setattr(quick, "KERNEL_WORK", {e: (lambda record, init, **kw: None) for e in quick.KERNEL_WORK})
    hooked = dataclasses.replace(config, hooks=Hooks(poststop=(Hook(path="/bin/true"),)))
    box = runtime.create("h", hooked)
    before = runtime.load("h").record
    with pytest.raises(NeedsLibrary):
        quick.fire(lean, Locks(runtime.root), BOOT, "h", "start")
    assert runtime.load("h").record == before
    box.start()
    quick.fire(lean, Locks(runtime.root), BOOT, "h", "pause")
    assert runtime.load("h").state.value == "paused"
