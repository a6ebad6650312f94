"""`Runtime.list()` at scale (issue 15, item 3): one index query of keys and ids, and Containers that
read their record on first use, with the same result and the same Container objects as before."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from corral import Config, Runtime, State
from corral.store.repository import ContainerRecord


def _record_reads(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The keys of every record the store is asked for (a record built, or taken from its cache)."""
    reads: list[int] = []
    store = runtime.context.store
    real_get = store.get

    def get(key: int) -> ContainerRecord:
        reads.append(key)
        return real_get(key)

    def refuse(**_: object) -> object:
        raise AssertionError("list() built every record")

    monkeypatch.setattr(store, "get", get)
    monkeypatch.setattr(store, "all", refuse)
    return reads


def test_list_reads_no_record_and_each_container_reads_its_own_on_first_use(
    runtime: Runtime, config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime.run("a", config).keep = True
    runtime.create("b", config)
    runtime.create("gone", config).destroy(force=True)
    keys = {cid: runtime.load(cid).record.key for cid in ("a", "b")}
    runtime._recent.clear()  # noqa: SLF001 - hold nothing: the list must build every Container
    reads = _record_reads(runtime, monkeypatch)

    boxes = runtime.list()
    assert [b.id for b in boxes] == ["a", "b"]
    assert reads == []  # keys and ids only

    assert boxes[1].recorded_state is State.CREATED
    assert reads == [keys["b"]]  # b's record, and only b's
    assert boxes[0].state is State.RUNNING
    assert set(reads) == {keys["a"], keys["b"]}


def test_list_returns_the_containers_already_held_and_the_same_ones_each_time(runtime: Runtime, config: Config) -> None:
    made = runtime.create("a", config)
    listed = runtime.list()
    assert listed == [made] and listed[0] is made
    again = runtime.list()
    assert again[0] is made
    assert runtime.list(states=["created"])[0] is made
    assert runtime.load("a") is made


def test_a_listed_container_and_a_loaded_one_share_one_recipe(runtime: Runtime, config: Config) -> None:
    runtime.create("a", config)
    runtime._recent.clear()  # noqa: SLF001 - forget the Container create made
    import gc

    gc.collect()
    (listed,) = runtime.list()
    assert runtime.load("a") is listed
    listed.start()  # fires through the recipe the listed Container made on first use
    assert runtime.load("a").recorded_state is State.RUNNING
    assert listed.recorded_state is State.RUNNING


def test_a_listed_container_first_used_by_many_threads_gets_one_recipe(runtime: Runtime, config: Config) -> None:
    runtime.create("a", config)
    (box,) = runtime.list()
    seen: list[object] = []
    barrier = threading.Barrier(8)

    def use() -> None:
        barrier.wait()
        seen.append(box._recipe)  # noqa: SLF001 - the object under test

    threads = [threading.Thread(target=use) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(r) for r in seen}) == 1


def test_listing_the_live_records_reads_only_the_partial_index(runtime: Runtime, config: Config) -> None:
    runtime.create("a", config)
    db = sqlite3.connect(Path(runtime.root) / "corral.db")
    try:
        for where in ("live_id IS NOT NULL", "live_id IS NOT NULL AND state IN ('created', 'running')"):
            plan = " ".join(r[3] for r in db.execute(f"EXPLAIN QUERY PLAN SELECT key, id FROM containers WHERE {where} ORDER BY key"))
            assert "USING INDEX ix_containers_live" in plan and "TEMP B-TREE" not in plan, plan
    finally:
        db.close()
