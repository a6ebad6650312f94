"""The store's files on disk: may corral use them, and are they still the ones it opened?

SQLite keeps three files: `corral.db`, its write-ahead log `corral.db-wal`, and
the WAL index `corral.db-shm`, which every connection maps into memory
(MAP_SHARED) and writes on every transaction, readers included. SQLite is
robust against a crash, but not against someone else changing these files under
an open connection, and two failures were reproduced:

- **The database file deleted or replaced.** SQLite keeps writing to the inode
  it opened: transitions "succeed" into an unlinked file that no other process
  will ever see. So each transaction begins with one `stat()` of the path,
  compared with the (st_dev, st_ino) that this engine opened (~1 µs).
- **SIGBUS through the -shm mapping.** A store access to a page of a mapped
  file past its end (the -shm truncated by another program) or that the
  kernel refuses to make writable (the file made immutable, `chattr +i`, or its
  filesystem remounted read-only) raises SIGBUS, which kills the process:
  Python cannot turn it into an exception. SQLite's own defence covers only the
  file it creates: it extends the -shm by writing a byte to every page
  (SQLITE_IOERR_SHMSIZE if that fails) and falls back to a read-only mapping
  when it cannot open the file read-write (SQLITE_READONLY_CANTINIT and
  friends), but nothing stops a later truncation. corral therefore:

  * refuses at open, with StoreAccessDenied, a root, database, -wal or -shm
    file it may not read and write (`faccessat(AT_EACCESS)`, which also says
    no for an immutable file or a read-only filesystem, even to root), so
    SQLite never maps a -shm it cannot write;
  * checks the -shm before each transaction (one `stat()` and one
    `faccessat()`): same inode, not shorter than last time, still writable.
    A truncated -shm is grown back to its size, zero-filled (the WAL index
    holds no data of its own: SQLite rebuilds it from the WAL when its header
    does not check out), so that closing the connection cannot fault either,
    and the transaction is refused with StoreError.

  A check before a transaction cannot close the window in which another
  program truncates the file during it; only a program with write access to
  the store's directory can, and such a program can destroy the store anyway.
  `PRAGMA locking_mode=EXCLUSIVE` (the WAL index in private memory) would
  close it, but the store is shared by many processes.
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct
from typing import TYPE_CHECKING, Any

from corral.errors import StoreAccessDenied, StoreError, StoreReplaced

if TYPE_CHECKING:  # pragma: no cover
    from typing import TypeAlias

    #: A path as a string or a Path (not pathlib itself: the one-shot CLI calls need not import it).
    StrPath: TypeAlias = "str | os.PathLike[str]"

_RW = os.R_OK | os.W_OK
#: SQLite's lock bytes in the database file (os_unix.c): PENDING_BYTE + 2, 510 bytes long.
_SHARED_FIRST, _SHARED_SIZE = 0x40000000 + 2, 510
#: File descriptors that keep a poisoned store from being checkpointed on close; never closed.
_PINNED: list[int] = []


def _why_not(path: StrPath, mode: int) -> str | None:
    """Why the effective user may not access `path` with `mode` (None if it may, or it is absent)."""
    if os.access(path, mode, effective_ids=True):
        return None
    if not os.path.lexists(path):
        return None
    try:  # os.access gives no reason; an open does (EACCES, EPERM for immutable, EROFS)
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW | (os.O_DIRECTORY if os.path.isdir(path) else 0))
    except OSError as exc:
        return (exc.strerror or str(exc)).lower()
    os.close(fd)
    return "permission denied"


def check_access(root: StrPath, db: StrPath) -> None:
    """Refuse a store that corral may not read and write, naming the first such file.

    A directory is opened read-only above (O_RDWR fails on one with EISDIR), so its
    reason comes from the access check alone.
    """
    reason = None if os.access(root, _RW | os.X_OK, effective_ids=True) else "permission denied"
    if reason is not None:
        if os.statvfs(root).f_flag & os.ST_RDONLY:
            reason = "read-only file system"
        raise StoreAccessDenied(str(root), reason)
    for path in (db, wal_path(db), shm_path(db)):
        reason = _why_not(path, _RW)
        if reason is not None:
            raise StoreAccessDenied(str(path), reason)


def wal_path(db: StrPath) -> str:
    return os.fspath(db) + "-wal"


def shm_path(db: StrPath) -> str:
    return os.fspath(db) + "-shm"


class FileGuard:
    """The identity of the files one engine opened, checked before each transaction."""

    def __init__(self, db: StrPath) -> None:
        self.db = os.fspath(db)
        self.shm = shm_path(db)
        self._identity: tuple[int, int] | None = None

    def connected(self, info: dict[str, Any]) -> None:
        """A new DBAPI connection opened the path: it must be the file this engine first opened."""
        try:
            st = os.stat(self.db)
        except FileNotFoundError:
            raise StoreReplaced(str(self.db), "deleted") from None
        identity = (st.st_dev, st.st_ino)
        if self._identity is None:
            self._identity = identity
        elif identity != self._identity:
            raise StoreReplaced(str(self.db), "replaced by another file")
        info.pop("corral_shm", None)

    def check(self, info: dict[str, Any]) -> None:
        """Before a transaction: the database is the file we opened, and the -shm is safe to map."""
        try:
            st = os.stat(self.db)
        except FileNotFoundError:
            raise StoreReplaced(str(self.db), "deleted (or moved away)") from None
        if (st.st_dev, st.st_ino) != self._identity:
            raise StoreReplaced(str(self.db), "replaced by another file")
        self._check_shm(info)

    def _check_shm(self, info: dict[str, Any]) -> None:
        seen: tuple[int, int, int] | None = info.get("corral_shm")
        try:
            st = os.stat(self.shm)
        except FileNotFoundError:
            if seen is not None:
                raise StoreError(
                    f"{self.shm}: the store's WAL index was deleted while corral had it open, so "
                    "processes no longer see each other's locks; stop every corral process on "
                    f"{os.path.dirname(self.db)} and open the store again"
                ) from None
            return
        if seen is not None:
            if (st.st_dev, st.st_ino) != seen[:2]:
                raise StoreError(
                    f"{self.shm}: the store's WAL index was replaced while corral had it open, so "
                    "processes no longer see each other's locks; stop every corral process on "
                    f"{os.path.dirname(self.db)} and open the store again"
                )
            if st.st_size < seen[2]:
                self._regrow(seen[2])
        if not os.access(self.shm, _RW, effective_ids=True):
            self._pin()
            raise StoreError(
                f"{self.shm}: the store's WAL index is no longer writable ({_why_not(self.shm, _RW)}), "
                "and writing it through its mapping would kill this process with SIGBUS; make it "
                "writable again (chattr -i, chmod u+rw, or remount read-write), then retry"
            )
        if st.st_size:
            info["corral_shm"] = (st.st_dev, st.st_ino, st.st_size)

    def leave_wal(self) -> None:
        """Keep SQLite from checkpointing the WAL into the database when this process closes the
        store (lean.LeanStore.close, for a process about to exit): see `_pin`."""
        self._pin()

    def _pin(self) -> None:
        """Keep SQLite from checkpointing (writing the -shm) when this process closes the store.

        The last connection to close checkpoints the WAL, which it can only do holding an
        exclusive lock on the database's SHARED range; a read lock on one byte of it, on an
        open file description (which conflicts with this process's own POSIX locks too),
        makes SQLite skip the checkpoint. The lock ends with the process."""
        if _PINNED:
            return
        try:
            fd = os.open(self.db, os.O_RDONLY | os.O_CLOEXEC)
            fcntl.fcntl(fd, fcntl.F_OFD_SETLK, struct.pack("hhqqi4x", fcntl.F_RDLCK, os.SEEK_SET, _SHARED_FIRST, 1, 0))
        except OSError:
            return  # best effort: the error below is raised either way
        _PINNED.append(fd)

    def ended(self, info: dict[str, Any]) -> None:
        """After a transaction's statements: the -shm is mapped now, remember what it was."""
        if "corral_shm" not in info:
            try:
                st = os.stat(self.shm)
            except FileNotFoundError:
                return
            if st.st_size:
                info["corral_shm"] = (st.st_dev, st.st_ino, st.st_size)

    def _regrow(self, size: int) -> None:
        """Give the mapping its pages back (zeros: SQLite rebuilds the index), then refuse."""
        try:
            fd = os.open(self.shm, os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW)
            try:
                if os.fstat(fd).st_size < size:
                    os.ftruncate(fd, size)
            finally:
                os.close(fd)
            done = f"corral grew it back to {size} bytes (SQLite rebuilds its content from the WAL)"
        except OSError as exc:
            done = f"corral could not grow it back ({os.strerror(exc.errno or errno.EIO)})"
        raise StoreError(
            f"{self.shm}: the store's WAL index was truncated by another program while corral had it "
            f"mapped, which would have killed this process with SIGBUS; {done}. Find what truncates "
            f"files in {os.path.dirname(self.db)}, then retry"
        )
