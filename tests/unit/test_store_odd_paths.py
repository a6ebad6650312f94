"""A store root whose name SQLite or SQLAlchemy would read as URL syntax is still that directory.

Every way into the store names `<root>/corral.db`: the Repository (SQLAlchemy's
`sqlite:///` URL), the first look at an existing file and the read-only views
(SQLite `file:` URIs with `mode=ro`), the monitor's writer (`mode=rw`). In a
URL, `?` starts the query and `#` the fragment, and `%HH` is an escape: an
unescaped `/tmp/a?b` is the file `/tmp/a` with a query `b`. So these tests
open stores under such names and check the filesystem (which file exists)
and each reader's view of the same records.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy.engine import URL

from corral import Config, Runtime
from corral.statemachine import locks
from corral.store import observed, peek
from corral.store.engine import HEAD_REVISION
from corral.store.migrate import alembic_config
from corral.store.readonly import open_readonly
from corral.store.repository import Repository
from tests.fakes import FakeExecutor

#: Names with URL syntax; the last two would be taken as SQLite URI parameters if unescaped.
ODD_NAMES = ["a?b", "a#b", "a%b", "a%3Fb", "a b", "st?mode=memory", "st?immutable=1#x"]


def _entries(base: Path) -> list[str]:
    return sorted(os.listdir(base))


@pytest.mark.parametrize("name", ODD_NAMES)
def test_the_repository_creates_and_reopens_the_file_in_that_directory(tmp_path: Path, name: str) -> None:
    root = tmp_path / name
    Repository(root).close()
    assert _entries(tmp_path) == [name]  # nothing made beside it (`a` for `a?b`, ...)
    assert (root / "corral.db").is_file()
    again = Repository(root)  # the second open takes the existing file's path (revision read first)
    try:
        assert again.all() == []
    finally:
        again.close()
    assert _entries(tmp_path) == [name]


@pytest.mark.parametrize("name", ODD_NAMES)
def test_every_reader_and_the_monitor_s_writer_see_the_same_container(
    tmp_path: Path, name: str, config: Config, boot_id_file: Path
) -> None:
    before = _entries(tmp_path)  # the boot id file
    base = tmp_path / name
    rt = Runtime(base / "root", FakeExecutor(base / "kernel"), run_root=tmp_path / "run", boot_id_file=boot_id_file)
    try:
        box = rt.create("c", config)
        box.start()
        root = str(rt.root)
        con = peek.connect(root)
        assert con is not None, "peek gave up on a healthy store"
        try:
            assert [row[0] for row in con.execute("SELECT id FROM containers")] == ["c"]
        finally:
            con.close()
        view = open_readonly(root)
        assert view is not None, "the read-only view gave up on a healthy store"
        with view:
            found = view.find("c")
            assert found is not None and found.state == "running"
        record = rt.load("c").record
        wrote = observed.exited(
            root=root, key=record.key, init_pid=record.init_pid or 0, lock_file=str(rt.context.locks.path),
            lock_slot=locks.slot("c"), status=0, signal=signal.SIGTERM,
        )
        assert wrote
        assert rt.load("c").state.value == "stopped"
    finally:
        rt.close()
    assert set(_entries(tmp_path)) - set(before) - {"run"} == {name}  # nothing made beside it


def test_a_root_spelt_with_a_leading_double_slash_is_not_a_uri_authority(tmp_path: Path) -> None:
    """POSIX lets `//tmp/x` name `/tmp/x`; in `file://tmp/x`, `tmp` would be a host, which SQLite refuses."""
    Repository(tmp_path / "root").close()
    root = "/" + str(tmp_path / "root")
    again = Repository(Path(root))  # the first look at the existing file goes through a `file:` URI
    again.close()
    con = peek.connect(root)
    assert con is not None
    con.close()
    view = open_readonly(root)
    assert view is not None
    view.close()


def test_alembic_s_own_url_path_upgrades_the_file_in_that_directory(tmp_path: Path) -> None:
    """`alembic upgrade` on a URL (no connection handed in, corral/migrations/env.py's other path):
    the URL escapes `?`, `#`, `%`, and Alembic's config would read a bare `%` as interpolation."""
    root = tmp_path / "st?x=1#y%z"
    root.mkdir()
    db = root / "corral.db"
    command.upgrade(alembic_config(URL.create("sqlite", database=str(db)).render_as_string()), "head")
    assert _entries(tmp_path) == [root.name] and _entries(root) == ["corral.db"]
    again = Repository(root)  # at HEAD already: opened without a migration
    try:
        assert again.all() == []
    finally:
        again.close()
    con = peek.connect(str(root))
    assert con is not None
    try:
        assert con.execute("SELECT version_num FROM alembic_version").fetchall() == [(HEAD_REVISION,)]
    finally:
        con.close()
