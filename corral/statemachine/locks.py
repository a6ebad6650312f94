"""Per-container locks that hold across threads and processes, and die with their holder.

A transition holds its container's lock for its whole length, kernel work
included, without holding SQLite's write lock (transactions stay short). The
lock is an open-file-description (OFD) byte-range lock on one byte of
`<root>/corral.lock`, chosen by hashing the id:

- the kernel drops it when the holder dies, so a crashed controller never
  leaves a container locked, and a held lock proves its holder is alive
  (recovery skips containers whose lock is held);
- OFD locks belong to an open file, not to a process (unlike POSIX fcntl
  locks), so two threads of one controller exclude each other too;
- one file serves every container: no lock file per id is left behind.

Two ids hashing to the same byte only serialise each other; with 2**40 slots
that is as good as never.
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from _blake2 import blake2b  # hashlib.blake2b itself, without hashlib's load of OpenSSL (~3 ms a CLI call)

from corral.errors import LockError

_SLOTS = 1 << 40


def _flock_struct(lock_type: int, start: int) -> bytes:
    # struct flock: short l_type, short l_whence, off_t l_start, off_t l_len, pid_t l_pid (0 for OFD)
    return struct.pack("hhqqi4x", lock_type, os.SEEK_SET, start, 1, 0)


def slot(name: str) -> int:
    digest = blake2b(name.encode(), digest_size=8).digest()
    return 1 + int.from_bytes(digest, "big") % _SLOTS


class _Entry:
    __slots__ = ("rlock", "depth", "fd")

    def __init__(self) -> None:
        self.rlock = threading.RLock()
        self.depth = 0
        self.fd: int | None = None


class Locks:
    """The locks of one corral root. Re-entrant within a thread."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.path = os.path.join(os.fspath(root), "corral.lock")  # not pathlib: a one-shot call need not import it
        self._entries: dict[str, _Entry] = {}
        self._guard = threading.Lock()

    def _entry(self, name: str) -> _Entry:
        with self._guard:
            entry = self._entries.get(name)
            if entry is None:
                entry = self._entries[name] = _Entry()
            return entry

    def _lock_file(self, name: str, blocking: bool) -> int | None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:  # read-only filesystem, permission denied, a directory...
            raise LockError(str(self.path), (exc.strerror or str(exc)).lower()) from exc
        command = fcntl.F_OFD_SETLKW if blocking else fcntl.F_OFD_SETLK
        try:
            while True:
                try:
                    fcntl.fcntl(fd, command, _flock_struct(fcntl.F_WRLCK, slot(name)))
                    return fd
                except InterruptedError:
                    continue
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                return None
            raise LockError(str(self.path), (exc.strerror or str(exc)).lower()) from exc

    @contextmanager
    def hold(self, name: str, *, blocking: bool = True) -> Iterator[bool]:
        """Hold the lock named `name`; yields False (holding nothing) if not blocking and busy."""
        entry = self._entry(name)
        if not entry.rlock.acquire(blocking=blocking):
            yield False
            return
        try:
            if entry.depth == 0:
                fd = self._lock_file(name, blocking)
                if fd is None:
                    yield False
                    return
                entry.fd = fd
            entry.depth += 1
            try:
                yield True
            finally:
                entry.depth -= 1
                if entry.depth == 0 and entry.fd is not None:
                    os.close(entry.fd)  # closing the description releases the OFD lock
                    entry.fd = None
        finally:
            entry.rlock.release()
