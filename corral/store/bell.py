"""The store's bell: a file touched after every commit that adds journal rows.

`Runtime.events()` must wake when any process sharing the root appends to the
journal, without querying the database in a loop. SQLite tells nobody about a
commit, so every writer of the journal (the Repository, and the monitors
through store/observed.py) writes one byte into `<root>/corral.events` *after*
its commit returns, and a reader watches that file with inotify (IN_MODIFY).

Why a file of our own rather than watching `corral.db-wal`: SQLite writes the
WAL frames before the commit is visible (the WAL index in the -shm is updated
after, through a memory map that raises no inotify event), so a reader woken by
the WAL could query too early, find nothing, and sleep through the event. The
bell is rung after the commit: a reader that arms its watch, then queries,
then sleeps on the watch, can miss nothing (a commit before its query is in
the query; one after rings a watch already armed).

The byte is written in place (pwrite at offset 0), so the file never grows.
"""

from __future__ import annotations

import errno
import os
import select

BELL_NAME = "corral.events"

# inotify's flags (<sys/inotify.h>). inotify_simple is imported by watchers only: a
# monitor rings the bell on an exit, and importing it (ctypes, libc look-up) there
# would add tens of milliseconds to every exit's way to the journal.
IN_MODIFY, IN_ATTRIB, IN_MOVE_SELF, IN_DELETE_SELF, IN_IGNORED = 0x2, 0x4, 0x800, 0x400, 0x8000
#: What wakes a watcher: the ring, and the file going away (the watch is then re-armed).
_MASK = IN_MODIFY | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF


def bell_path(root: str | os.PathLike[str]) -> str:
    return os.path.join(os.fspath(root), BELL_NAME)


def _open_bell(path: str) -> int:
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)


def ring(root: str | os.PathLike[str]) -> None:
    """Tell every watcher of `root` that the journal grew (after the commit, never before).

    A bell that cannot be rung is logged, never raised: the commit it follows
    has happened, and a caller must not see it as failed. Watchers then learn
    of it at the next ring.
    """
    path = bell_path(root)
    try:
        fd = _open_bell(path)
        try:
            os.pwrite(fd, b"\n", 0)
        finally:
            os.close(fd)
    except OSError as exc:
        import logging  # only here: a CLI's start, kill, pause and resume would pay ~3 ms for it

        logging.getLogger("corral").warning(
            "cannot ring the journal's bell %s (%s): event readers wake at the next commit", path, exc)


class BellWatch:
    """An inotify watch on a root's bell, and a way to interrupt a wait on it from another thread.

    `fileno()` is the inotify descriptor: readable once the bell rang since the
    last `drain()` (an event loop can watch it). Arm before the first query.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        from inotify_simple import INotify

        self.path = bell_path(root)
        self._inotify = INotify(nonblocking=True)
        self._wake_r, self._wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self.closed = False
        try:
            self._arm()
        except BaseException:
            self.close()
            raise

    def _arm(self) -> None:
        os.close(_open_bell(self.path))  # a root nobody wrote yet has no bell: make it
        self._inotify.add_watch(self.path, _MASK)

    def fileno(self) -> int:
        return self._inotify.fileno()

    def drain(self) -> None:
        """Consume the pending notifications; re-arm if the bell file was removed or replaced."""
        rearm = False
        try:
            events = self._inotify.read(timeout=0)
        except BlockingIOError:
            return
        for event in events:
            if event.mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF):
                rearm = True
        if rearm:
            self._arm()

    def wait(self, timeout: float | None) -> bool:
        """Sleep until the bell rings (True), `timeout` passes or `interrupt()` is called (False)."""
        try:
            ready, _, _ = select.select([self.fileno(), self._wake_r], [], [], timeout)
        except OSError as exc:
            if exc.errno == errno.EBADF and self.closed:
                return False
            raise
        if self._wake_r in ready:
            return False
        return bool(ready)

    def interrupt(self) -> None:
        """Wake a thread blocked in `wait()` (thread-safe)."""
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._inotify.close()
        os.close(self._wake_r)
        os.close(self._wake_w)

