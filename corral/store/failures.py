"""Every database error, from SQLite or SQLAlchemy, as a StoreError that names the file.

A controller catches CorralError at its boundary; before this, only
OperationalError was wrapped, so the same damaged file gave a StoreError in one
run and a raw `sqlalchemy.exc.DatabaseError` in the next. The class and the
advice depend on SQLite's primary result code (Python 3.11 gives its name):
a damaged file is StoreUnreadable, a permission problem StoreAccessDenied
(never "restore it from a backup": the file is healthy), the rest StoreError.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from corral.errors import StoreAccessDenied, StoreError, StoreUnreadable
from corral.store.files import check_access

DATABASE_ERRORS = (SQLAlchemyError, sqlite3.Error)


def _sqlite_error(exc: BaseException) -> sqlite3.Error | None:
    if isinstance(exc, DBAPIError) and isinstance(exc.orig, sqlite3.Error):
        return exc.orig
    return exc if isinstance(exc, sqlite3.Error) else None


def store_error(db: Path, exc: BaseException) -> StoreError:
    """The StoreError to raise (from `exc`) for a database error on the store at `db`."""
    orig = _sqlite_error(exc)
    if orig is None:
        return StoreError(f"{db}: the store failed ({type(exc).__name__}: {exc}); nothing was committed")
    name = getattr(orig, "sqlite_errorname", "") or ""
    text = str(orig)
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or text in (
        "database disk image is malformed",
        "file is not a database",
    ):
        return StoreUnreadable(str(db), text)
    if name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM", "SQLITE_AUTH")):
        try:
            check_access(db.parent, db)
        except StoreAccessDenied as denied:
            return denied
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return StoreError(
            f"{db}: another process held the store's write lock for longer than the busy timeout "
            f"({text}); nothing was committed: find the stuck process (fuser {db}) and retry"
        )
    if name.startswith("SQLITE_FULL") or getattr(orig, "sqlite_errorcode", 0) == 13:
        return StoreError(f"{db}: the filesystem is full ({text}); nothing was committed: free space and retry")
    detail = f"{name}: {text}" if name else text
    return StoreError(
        f"{db}: the database failed ({detail}); nothing was committed. Check the disk and the kernel "
        f"log (dmesg), and that nothing else writes the files in {os.path.dirname(db)}"
    )
