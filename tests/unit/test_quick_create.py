"""The one-shot create and delete (statemachine/quick_create.py, quick_destroy.py) write what the library writes.

The command line's `create` and `delete` go through the lean store's fsynced
commits (store/lean_durable.py); the library's through the Repository and the
`transitions` machine. These tests create and destroy containers both ways in
one store, on the fake executor, and compare every column of the records, their
cgroup and namespace rows and their journal, so that the two paths cannot drift.
"""

from __future__ import annotations

import dataclasses
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from corral import Config, Runtime
from corral.config import Hook, Hooks
from corral.config.network import Network
from corral.errors import ContainerExists, CorralError, InitError
from corral.statemachine import quick_create, quick_destroy
from corral.statemachine.locks import Locks
from corral.statemachine.quick import NeedsLibrary
from corral.store import lean_durable
from corral.store.lean_durable import DurableLeanStore, open_durable
from tests.unit.test_store_lean import rows

BOOT = "boot-1"


@pytest.fixture
def lean(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> DurableLeanStore:
    """The durable lean store of `runtime`'s root; the fake kernel's inits count as alive."""
    monkeypatch.setattr(quick_destroy.proc, "alive", lambda init: True)
    store = open_durable(str(runtime.root))
    assert store is not None
    return store


def lean_create(runtime: Runtime, store: DurableLeanStore, cid: str, config: Config) -> quick_create.Created:
    return quick_create.create(
        store, Locks(runtime.root), runtime.context.executor, BOOT, str(runtime.run_root), cid, config
    )


def lean_delete(runtime: Runtime, store: DurableLeanStore, cid: str, force: bool = True) -> None:
    quick_destroy.delete(store, runtime.context.executor, Locks(runtime.root), BOOT, cid, force=force)


def every_row(runtime: Runtime, key: int) -> dict[str, list[dict[str, Any]]]:
    """The record, its child rows and its journal, without identity, PIDs and clock."""
    db = runtime.root / "corral.db"
    found = {
        "containers": rows(db, "containers", "key", key),
        "cgroup_paths": rows(db, "cgroup_paths", "container_key", key),
        "namespace_paths": rows(db, "namespace_paths", "container_key", key),
        "network_interfaces": rows(db, "network_interfaces", "container_key", key),
        "journal": rows(db, "journal", "container_key", key),
    }
    for row in found["cgroup_paths"]:
        row["path"] = row["path"].rsplit("/", 1)[0]  # ends in the container's id
    for row in found["namespace_paths"]:
        row["path"] = re.sub(r"/proc/\d+/", "/proc/<pid>/", row["path"])
    for row in found["journal"]:
        row["detail"] = re.sub(r'"pid": \d+', '"pid": <pid>', row["detail"])
    return found


def test_create_then_delete_write_the_library_rows(runtime: Runtime, config: Config, lean: DurableLeanStore) -> None:
    orm = runtime.create("orm", config)
    made = lean_create(runtime, lean, "lean", config)
    box = runtime.load("lean")
    assert made.pid == box.pid and made.console_fd is None
    a, b = orm.record.key, box.record.key
    assert every_row(runtime, a) == every_row(runtime, b)
    assert every_row(runtime, b)["namespace_paths"]  # create recorded them
    assert box.record.version == orm.record.version
    orm.destroy(force=True)
    lean_delete(runtime, lean, "lean")
    assert every_row(runtime, a) == every_row(runtime, b)
    assert [e.event for e in runtime.load("lean").history()] == ["create", "create", "destroy"]
    assert runtime.context.executor.kernel("lean").get("alive") is False
    # The monitor's recorder is the library's (outcomes.monitor_recorder): same module and arguments.
    kernel = runtime.context.executor.kernel
    assert kernel("lean")["recorder"]["module"] == kernel("orm")["recorder"]["module"]
    assert {k: v for k, v in kernel("lean")["recorder"]["arguments"].items() if k not in ("key", "lock_slot")} == {
        k: v for k, v in kernel("orm")["recorder"]["arguments"].items() if k not in ("key", "lock_slot")
    }


def test_delete_of_a_stopped_container_is_not_forced(runtime: Runtime, config: Config, lean: DurableLeanStore) -> None:
    orm = runtime.create("orm", config)
    lean_create(runtime, lean, "lean", config)
    for cid in ("orm", "lean"):
        box = runtime.load(cid)
        box.signal(9)
        runtime.context.executor.kernel(cid)  # the fake's init is gone now
        assert box.state.value == "stopped"
    orm.destroy()
    lean_delete(runtime, lean, "lean", force=False)
    assert every_row(runtime, orm.record.key) == every_row(runtime, runtime.load("lean").record.key)


def test_a_failed_spawn_rolls_back_as_the_library_does(runtime: Runtime, config: Config, lean: DurableLeanStore) -> None:
    executor = runtime.context.executor
    executor._fail_next["spawn"] = InitError("the init said no (fake)")
    with pytest.raises(InitError):
        runtime.create("orm", config)
    executor._fail_next["spawn"] = InitError("the init said no (fake)")
    with pytest.raises(InitError):
        lean_create(runtime, lean, "lean", config)
    a, b = runtime.load("orm").record, runtime.load("lean").record
    assert b.state == "destroyed" and "create failed" in (b.last_error or "")
    assert every_row(runtime, a.key) == every_row(runtime, b.key)


def test_a_failed_outcome_write_kills_the_init_and_rolls_back(
    runtime: Runtime, config: Config, lean: DurableLeanStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = DurableLeanStore.outcome
    calls: list[str] = []

    def outcome(self: DurableLeanStore, record: Any, event: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(event)
        if event == "create":
            raise sqlite3.OperationalError("disk I/O error")
        return real(self, record, event, *args, **kwargs)

    monkeypatch.setattr(DurableLeanStore, "outcome", outcome)
    with pytest.raises(sqlite3.OperationalError):
        lean_create(runtime, lean, "lean", config)
    assert calls == ["create", "destroy"]
    assert runtime.context.executor.spawned[-1].aborted
    assert runtime.load("lean").record.state == "destroyed"


def test_a_live_id_is_refused_with_nothing_written(runtime: Runtime, config: Config, lean: DurableLeanStore) -> None:
    lean_create(runtime, lean, "c", config)
    before = every_row(runtime, runtime.load("c").record.key)
    with pytest.raises(ContainerExists):
        lean_create(runtime, lean, "c", config)
    assert len(runtime.list(include_destroyed=True)) == 1
    assert every_row(runtime, runtime.load("c").record.key) == before


def test_delete_refuses_what_runc_refuses(runtime: Runtime, config: Config, lean: DurableLeanStore) -> None:
    lean_create(runtime, lean, "c", config)
    runtime.load("c").start()
    before = runtime.load("c").record
    with pytest.raises(CorralError, match="not stopped: running"):
        lean_delete(runtime, lean, "c", force=False)
    assert runtime.load("c").record == before
    with pytest.raises(quick_destroy.ContainerNotFound):
        lean_delete(runtime, lean, "nobody")


def _hooked(config: Config) -> Config:
    return dataclasses.replace(config, hooks=Hooks(poststop=(Hook(path="/bin/true"),)))


@pytest.mark.parametrize("why", ["hooks", "network"])
def test_create_hands_over_what_only_the_library_does_with_nothing_written(
    why: str, runtime: Runtime, config: Config, lean: DurableLeanStore
) -> None:
    if why == "hooks":
        config = _hooked(config)
    else:
        config = dataclasses.replace(config, network=Network())
    with pytest.raises(NeedsLibrary):
        lean_create(runtime, lean, "c", config)
    assert runtime.list(include_destroyed=True) == []
    assert runtime.context.executor.spawned == []


@pytest.mark.parametrize("why", ["pending", "other boot", "init gone", "hooks"])
def test_delete_hands_over_what_only_the_library_may_decide_untouched(
    why: str, runtime: Runtime, config: Config, lean: DurableLeanStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    box = runtime.create("c", _hooked(config) if why == "hooks" else config)
    box.start()
    record = box.record
    boot = BOOT
    if why == "pending":
        record = runtime.context.store.update(record.key, record.version, pending_event="pause")
    elif why == "other boot":
        boot = "boot-2"
    elif why == "init gone":
        monkeypatch.setattr(quick_destroy.proc, "alive", lambda init: False)
    with pytest.raises(NeedsLibrary):
        quick_destroy.delete(lean, runtime.context.executor, Locks(runtime.root), boot, "c", force=True)
    assert runtime.context.store.get(record.key) == record
    assert runtime.context.executor.kernel("c").get("alive")


def test_commits_are_fsynced(lean: DurableLeanStore) -> None:
    """synchronous = FULL (2): create's and destroy's intent and outcome survive a power loss (issue 10)."""
    assert lean._con.execute("PRAGMA synchronous").fetchone()[0] == 2


def test_open_durable_needs_the_known_revision(tmp_path: Path) -> None:
    assert open_durable(str(tmp_path)) is None
    assert not (tmp_path / "corral.db").exists()
    assert lean_durable.open_lean(str(tmp_path)) is None


def test_each_journal_commit_rings_the_bell(
    runtime: Runtime, config: Config, lean: DurableLeanStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Runtime.events() wakes on the bell: the lean writes ring it after their commits, as the Repository does."""
    from corral.statemachine import quick
    from corral.store.bell import bell_path

    monkeypatch.setattr(quick.proc, "alive", lambda init: True)
    monkeypatch.setattr(quick, "KERNEL_WORK", {"signal": lambda record, init, **kwargs: {"signal": 10, "all": False}})
    bell = Path(bell_path(runtime.root))
    steps = {
        "create": lambda: lean_create(runtime, lean, "c", config),
        "signal": lambda: quick.fire(lean, Locks(runtime.root), BOOT, "c", "signal", sig=10),
        "destroy": lambda: lean_delete(runtime, lean, "c"),
    }
    for event, step in steps.items():
        bell.unlink(missing_ok=True)
        step()
        assert bell.exists(), event
    assert [e.event for e in runtime.load("c").history()] == ["create", "create", "signal", "destroy"]
