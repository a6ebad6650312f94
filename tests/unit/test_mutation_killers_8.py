"""Tests written against mutants of statemachine/ and store/ that survived the unit suite
(tests/README.md, "Run of 2026-12-02, third session: small modules"); each names what it kills.

They run on the fake executor, without root.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

import pytest

from corral import Runtime
from corral.config import Config
from corral.errors import ConfigError
from corral.executor.interface import InitFacts
from corral.identity import ProcessIdentity
from corral.statemachine.outcomes import created_changes
from corral.statemachine.purge import _leftovers
from corral.statemachine.recipes import RecipeBook
from corral.store import peek
from corral.store.repository import ContainerRecord
from tests.unit.test_mutation_killers_7 import _default_build, _one_container

# -- recipes.py ----------------------------------------------------------------------------


def test_a_newer_record_reaches_the_living_recipe_of_its_incarnation(runtime: Runtime, config: Config) -> None:
    """Kills RecipeBook.adopt__mutmut_1/_2: the recipe looked up as None (or by key None), so a record
    read elsewhere (`Runtime._container` of a Container already handed out) never reaches it."""
    record = runtime.create("c", config).record
    book = RecipeBook(runtime.context)
    recipe = book.recipe(record.key, record.id, record)
    newer = dataclasses.replace(record, version=record.version + 1, state="running")
    book.adopt(newer)
    assert recipe.record is newer


def test_a_record_of_an_incarnation_without_a_living_recipe_is_dropped(runtime: Runtime, config: Config) -> None:
    """The other side: no recipe lives for the key (a listed Container made none yet): nothing is made.
    A recipe then made without a record (a listed Container's) knows its id before reading one:
    kills RecipeBook.recipe__mutmut_12 (`container_id` left out: the id of a listed container lost)."""
    record = runtime.create("c", config).record
    book = RecipeBook(runtime.context)
    book.adopt(record)
    recipe = book.recipe(record.key, "c")
    assert (recipe.key, recipe.id) == (record.key, "c")
    assert recipe.record == runtime.context.store.get(record.key)


def test_a_recipe_made_from_a_record_keeps_it_and_reads_none(
    runtime: Runtime, config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kills RecipeBook.recipe__mutmut_6: the record given to a new recipe dropped, so its first use
    reads the store again (the record a `create`, `load` or recovery just read or wrote)."""
    record = runtime.create("c", config).record
    book = RecipeBook(runtime.context)

    def no_read(key: int) -> None:
        raise AssertionError(f"record {key} read again")

    monkeypatch.setattr(runtime.context.store, "get", no_read)
    recipe = book.recipe(record.key, record.id, record)
    assert recipe.record is record


def test_a_living_recipe_handed_out_again_keeps_the_newer_record_given(runtime: Runtime, config: Config) -> None:
    """Kills RecipeBook.recipe__mutmut_13 (`record is None` for `is not None`): the record given with
    the lookup of a living recipe not adopted (and a lookup without one adopting None)."""
    record = runtime.create("c", config).record
    book = RecipeBook(runtime.context)
    recipe = book.recipe(record.key, record.id, record)
    assert book.recipe(record.key, record.id) is recipe
    assert recipe.record is record
    newer = dataclasses.replace(record, version=record.version + 1, state="running")
    assert book.recipe(record.key, record.id, newer) is recipe
    assert recipe.record is newer



# -- purge.py ------------------------------------------------------------------------------


def test_a_negative_age_is_refused_with_where_and_what(runtime: Runtime) -> None:
    """Kills purge__mutmut_9/_12: the ConfigError's problem (None) or its place ("XXolder_thanXX")
    changed; the existing test matches "older_than" anywhere in the message."""
    with pytest.raises(ConfigError) as caught:
        runtime.purge(older_than=timedelta(seconds=-1))
    assert caught.value.where == "older_than"
    assert caught.value.problem == f"must not be negative, not {timedelta(seconds=-1)!r}"


def _tombstone(
    runtime: Runtime, config: Config, paths: dict[str, str], created: dict[str, tuple[str, ...]] | None
) -> ContainerRecord:
    """A record with these cgroup paths, of which `created` are corral's (None: no record of which)."""
    record = runtime.create("c", config).record
    return dataclasses.replace(record, cgroup_paths=paths, created_cgroups=created)


def test_a_joined_cgroup_still_there_keeps_no_tombstone(runtime: Runtime, config: Config, tmp_path: Path) -> None:
    """Kills _leftovers__mutmut_1/_3: a cgroup the container joined (not in `created_cgroups`) counted
    as corral's, so a tombstone is kept for as long as somebody else's cgroup lives."""
    joined = tmp_path / "joined"
    joined.mkdir()
    record = _tombstone(runtime, config, {"unified": str(joined)}, {"unified": ()})
    assert not _leftovers(record, set())
    assert _leftovers(dataclasses.replace(record, created_cgroups=None), set())  # made by an older corral


def test_a_hierarchy_corral_made_nothing_in_keeps_no_tombstone(
    runtime: Runtime, config: Config, tmp_path: Path
) -> None:
    """Kills _leftovers__mutmut_6/_8: a hierarchy absent from `created_cgroups` looked up with the
    default None (a TypeError) instead of ()."""
    joined = tmp_path / "joined"
    joined.mkdir()
    assert not _leftovers(_tombstone(runtime, config, {"cpu": str(joined)}, {}), set())


def test_a_joined_cgroup_does_not_hide_one_corral_made(runtime: Runtime, config: Config, tmp_path: Path) -> None:
    """Kills _leftovers__mutmut_9 (`break` for `continue`): the first hierarchy joined, not made, ended
    the look, so a cgroup corral made in the next one, still there, did not keep the tombstone."""
    joined, made = tmp_path / "joined", tmp_path / "made"
    joined.mkdir()
    made.mkdir()
    record = _tombstone(runtime, config, {"cpu": str(joined), "memory": str(made)}, {"memory": (str(made),)})
    assert _leftovers(record, set())
    assert not _leftovers(record, {str(made)})  # a live container uses it


# -- outcomes.py ---------------------------------------------------------------------------


def test_create_records_the_monitor_it_was_given() -> None:
    """Kills created_changes__mutmut_9/_13: the monitor's PID or start time recorded as None although
    there is a monitor (the fake executor spawns none, so the suite only saw the None case)."""
    facts = InitFacts(init=ProcessIdentity(100, 5000), monitor=ProcessIdentity(99, 4999), namespaces={},
                      namespace_inodes={})
    assert created_changes(facts, "boot-a") == {
        "init_pid": 100, "init_start_time": 5000, "boot_id": "boot-a", "monitor_pid": 99, "monitor_start_time": 4999,
    }
    assert created_changes(dataclasses.replace(facts, monitor=None), "boot-a")["monitor_pid"] is None


# -- store/peek.py -------------------------------------------------------------------------


def test_peek_opens_the_store_by_uri_on_a_default_sqlite_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Kills peek.connect__mutmut_10/_13/_15 (`uri` None, left out, False): Debian's SQLite treats
    every "file:" name as a URI, a default build only when asked, so there the read-only store
    was never opened and every one-shot read fell back to the library's path."""
    _one_container(tmp_path / "root")
    _default_build(monkeypatch, tmp_path / "cwd")
    con = peek.connect(str(tmp_path / "root"))
    assert con is not None
    try:
        assert peek.find(con, "c1") is not None
    finally:
        con.close()
