"""Opening the SQLite store: pragmas, IMMEDIATE transactions, and the schema check.

The recipe is SQLAlchemy's documented one for SQLite with several writer
processes: the DBAPI connection runs in autocommit mode (`isolation_level =
None`) and SQLAlchemy's `begin` event emits the BEGIN itself, IMMEDIATE for
writers, so that a transaction that will write takes the write lock up front
and waits (busy timeout) instead of failing to upgrade a read lock later.
Measured here (REFERENCES.md): deferred BEGIN lost or refused hundreds of
concurrent updates; BEGIN IMMEDIATE lost none.

Durability: every connection runs `synchronous = NORMAL`, under which a WAL
commit survives the process dying (the case recovery is about) but not a power
loss. The commits that begin and end `create` and `destroy` must survive a power
loss too (a container recorded created must not vanish from the store, and
one recorded destroyed must not come back): transactions begun with the execution
option `corral_durable` switch the connection to `synchronous = FULL` first, so
that their COMMIT fsyncs the WAL (measured on the development VM's disk: ~12 µs
per small commit under NORMAL, 4-6 ms under FULL; create and destroy pay it
twice each). The level is remembered per connection, so an ordinary
transaction after an ordinary one costs no extra statement.

Each transaction also begins with the checks of corral/store/files.py: the
database file is still the one opened, and its -shm is safe to map.

Alembic is imported only when the schema must be created or upgraded: it costs
~280 ms to import, and a store at the current revision is the common case.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Connection, Engine

from corral.errors import StoreAccessDenied, StoreError, StoreUnreadable, UnknownRevision
from corral.store.failures import DATABASE_ERRORS, store_error
from corral.store.files import FileGuard, check_access
from corral.store.sqlite_uri import file_uri

#: The newest Alembic revision this code writes. tests/unit/test_migrations.py
#: checks that it is the head of corral/migrations/versions.
HEAD_REVISION = "0007_list_index"

DB_NAME = "corral.db"
SQLITE_MAGIC = b"SQLite format 3\x00"
BUSY_TIMEOUT_MS = 30_000


def _on_connect(dbapi_connection: sqlite3.Connection, record: Any) -> None:
    dbapi_connection.isolation_level = None  # SQLAlchemy's begin event issues BEGIN itself
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA synchronous = NORMAL")  # FULL only for durable transactions
    finally:
        cursor.close()
    record.info["corral_synchronous"] = "NORMAL"


def make_engine(path: Path) -> Engine:
    engine = create_engine(URL.create("sqlite", database=str(path)), future=True)  # not parsed: `?` is a name
    guard = FileGuard(path)

    def on_connect(dbapi_connection: sqlite3.Connection, record: Any) -> None:
        _on_connect(dbapi_connection, record)
        guard.connected(record.info)

    def on_begin(connection: Connection) -> None:
        options = connection.get_execution_options()
        info = connection.info
        guard.check(info)
        level = "FULL" if options.get("corral_durable") else "NORMAL"
        if info.get("corral_synchronous") != level:
            connection.exec_driver_sql(f"PRAGMA synchronous = {level}")
            info["corral_synchronous"] = level
        mode = "DEFERRED" if options.get("corral_readonly") else "IMMEDIATE"
        connection.exec_driver_sql(f"BEGIN {mode}")

    def on_end(connection: Connection) -> None:
        guard.ended(connection.info)

    event.listen(engine, "connect", on_connect)
    event.listen(engine, "begin", on_begin)
    event.listen(engine, "commit", on_end)
    event.listen(engine, "rollback", on_end)
    return engine


@contextmanager
def _init_lock(root: Path) -> Iterator[None]:
    """Serialise schema creation and upgrades between processes opening the same root."""
    path = root / (DB_NAME + ".init-lock")
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except PermissionError as exc:
        raise StoreAccessDenied(str(path), (exc.strerror or "permission denied").lower()) from exc
    except OSError as exc:
        raise StoreError(f"{path}: cannot open the store's init lock ({exc.strerror})") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _check_file(path: Path) -> bool:
    """Whether `path` holds data; raise StoreUnreadable if it cannot be a SQLite file."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return False
    except PermissionError as exc:
        raise StoreAccessDenied(str(path), (exc.strerror or "permission denied").lower()) from exc
    except OSError as exc:
        raise StoreUnreadable(str(path), exc.strerror or str(exc)) from exc
    if not path.is_file():
        raise StoreUnreadable(str(path), "it is not a regular file")
    if st.st_size == 0:
        return False
    try:
        with open(path, "rb") as f:
            header = f.read(len(SQLITE_MAGIC))
    except PermissionError as exc:
        raise StoreAccessDenied(str(path), (exc.strerror or "permission denied").lower()) from exc
    except OSError as exc:
        raise StoreUnreadable(str(path), exc.strerror or str(exc)) from exc
    if header != SQLITE_MAGIC:
        raise StoreUnreadable(str(path), "it is not a SQLite database (bad header)")
    return True


def _current_revision(path: Path, *, immutable: bool = False) -> str | None:
    """The Alembic revision recorded in the file, read with plain sqlite3 (no Alembic import).

    `immutable` reads the main file only, creating no -wal/-shm files beside it:
    the first look at a file that may not be ours must leave no trace. It may
    miss a change still in the WAL, so a decision to migrate is re-checked
    with a normal read under the init lock.
    """
    uri = file_uri(str(path), "ro", immutable=immutable)
    try:
        con = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
    except sqlite3.Error as exc:
        raise StoreUnreadable(str(path), str(exc)) from exc
    try:
        tables = {
            row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        if "alembic_version" not in tables:
            if tables - {"sqlite_sequence"}:
                raise StoreUnreadable(
                    str(path), f"it has tables ({', '.join(sorted(tables))}) but no corral schema"
                )
            return None
        rows = con.execute("SELECT version_num FROM alembic_version").fetchall()
        return rows[0][0] if rows else None
    except sqlite3.DatabaseError as exc:
        if (getattr(exc, "sqlite_errorname", "") or "").startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
            raise store_error(path, exc) from exc  # busy past the timeout: not a damaged file
        raise StoreUnreadable(str(path), str(exc)) from exc
    finally:
        con.close()


def known_revisions() -> frozenset[str]:
    """Revision ids shipped with this corral, from the migration file names (no Alembic import).

    alembic.ini's file_template names each file after its revision id;
    tests/unit/test_migrations.py checks that this holds.
    """
    versions = Path(__file__).resolve().parent.parent / "migrations" / "versions"
    return frozenset(p.stem for p in versions.glob("*.py") if not p.stem.startswith("_"))


def _refuse_unknown(path: Path, current: str | None) -> None:
    if current is not None and current not in known_revisions():
        raise UnknownRevision(str(path), current, HEAD_REVISION)


def _upgrade(engine: Engine, path: Path, current: str | None) -> None:
    from alembic import command
    from alembic.script import ScriptDirectory

    from corral.store.migrate import alembic_config

    config = alembic_config(engine.url.render_as_string(hide_password=False))
    script = ScriptDirectory.from_config(config)
    head = script.get_current_head()
    if current is not None:
        try:
            known = script.get_revision(current)
        except Exception:  # alembic raises several kinds for an unknown id
            known = None
        if known is None:
            raise UnknownRevision(str(path), current, head or "?")
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    raw = engine.raw_connection()  # outside any transaction: SQLite refuses it inside one
    try:
        raw.cursor().execute("PRAGMA journal_mode = WAL")
    finally:
        raw.close()


def open_engine(root: Path) -> Engine:
    """An engine on `<root>/corral.db`, created or upgraded to HEAD_REVISION if needed.

    A file that is not a readable corral database raises StoreUnreadable and is
    never written to; one at a revision this code does not know raises
    UnknownRevision, also without writing.
    """
    path = root / DB_NAME
    try:
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
    except PermissionError as exc:
        raise StoreAccessDenied(str(root), (exc.strerror or "permission denied").lower()) from exc
    except OSError as exc:
        raise StoreError(f"{root}: cannot create the store directory ({exc.strerror})") from exc
    check_access(root, path)
    try:
        return _open(root, path)
    except DATABASE_ERRORS as exc:
        raise store_error(path, exc) from exc


def _open(root: Path, path: Path) -> Engine:
    has_data = _check_file(path)
    current = _current_revision(path, immutable=True) if has_data else None
    if current == HEAD_REVISION:
        return make_engine(path)
    _refuse_unknown(path, current)
    with _init_lock(root):
        has_data = _check_file(path)
        current = _current_revision(path) if has_data else None
        _refuse_unknown(path, current)
        engine = make_engine(path)
        if current != HEAD_REVISION:
            try:
                _upgrade(engine, path, current)
            except Exception:
                engine.dispose()
                raise
        return engine
