"""`Runtime.events()`: the journal of a whole root as a stream a controller can follow.

The journal is append-only and its sequence numbers grow with every commit
(SQLite serialises writers), so "everything after sequence number N" is a
complete, ordered answer, and a controller that remembers the last number it
handled resumes after a crash without missing or repeating an event. Every
writer of the journal rings the root's bell after its commit (store/bell.py);
a stream arms an inotify watch on the bell *before* each query and sleeps on
it when the query finds nothing, so it wakes on the kernel's notification,
never on a timer, and sees what any process sharing the root writes: the
transitions of other controllers, and the exits and OOM kills that monitors
record when nobody waits for them (store/observed.py).

`EventStream` is an iterator for threads and, through `fileno()` and
`fetch()`, the building block of the asyncio stream in corral/aio.py.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from corral.executor.interface import Recorder
from corral.statemachine import outcomes
from corral.statemachine.context import Context
from corral.store.bell import BellWatch
from corral.store.repository import ContainerRecord, JournalEntry, Repository

#: How many journal rows one query reads at most.
BATCH = 500


def monitor_recorder(context: Context, record: ContainerRecord) -> Recorder:
    """What the container's monitor calls to journal the exit and OOM kills it sees.

    The store's sqlite3-only writer, told where the database and the
    container's lock are (the monitor imports it by name: the executor never
    imports the store).
    """
    return outcomes.monitor_recorder(str(context.store.root), record.key, str(context.locks.path), record.id)


@dataclass(frozen=True)
class Event:
    """One transition of one container, as the journal recorded it.

    `seq` orders every event of the root; pass the last one handled as
    `since` to resume. `kind` is the event of the lifecycle table (`create`,
    `start`, ..., and the observed `exited` and `oom`); `detail` is what the
    transition recorded (for `exited`: `exit_status`, `signal`, `oom_killed`;
    for `oom`: `oom_kills`, the cgroup's count; for `signal`: `signal`).
    """

    seq: int
    container_id: str
    kind: str
    from_state: str | None
    to_state: str
    at: datetime  # naive UTC, as the store keeps it
    detail: Mapping[str, Any]
    container_key: int  # the incarnation: an id may be reused once its container is destroyed

    @property
    def exit_status(self) -> int | None:
        """For `exited` (and a destroy that killed): the code, or 128 + signal; else None."""
        value = self.detail.get("exit_status")
        return value if isinstance(value, int) else None

    @classmethod
    def of(cls, container_id: str, entry: JournalEntry) -> Event:
        return cls(
            seq=entry.seq,
            container_id=container_id,
            kind=entry.event,
            from_state=entry.from_state,
            to_state=entry.to_state,
            at=entry.at,
            detail=entry.detail,
            container_key=entry.container_key,
        )


class EventStream:
    """Events after `since`, in journal order, blocking for new ones; `close()` ends it.

    `timeout` (seconds) ends the iteration when no event arrives for that long
    (None: wait for ever). Iterate from one thread at a time; `close()` may be
    called from any thread and wakes a blocked iteration.
    """

    def __init__(
        self,
        store: Repository,
        since: int | None = None,
        *,
        ids: Collection[str] | None = None,
        kinds: Collection[str] | None = None,
        timeout: float | None = None,
    ) -> None:
        self._store = store
        self._ids = None if ids is None else frozenset([ids] if isinstance(ids, str) else ids)
        self._kinds = None if kinds is None else frozenset([kinds] if isinstance(kinds, str) else kinds)
        self._timeout = timeout
        self._buffer: deque[Event] = deque()
        self._guard = threading.Lock()
        self._closed = False
        self._waiting = False
        # Armed before the first query: a commit after that query rings a watch already there.
        self._watch = BellWatch(store.root)
        try:
            #: The sequence number of the last event handed out (or skipped to).
            self.position = store.last_seq() if since is None else since
        except BaseException:
            self._watch.close()
            raise

    def __iter__(self) -> EventStream:
        return self

    def __next__(self) -> Event:
        while not self._buffer:
            if self._closed or not self._refill_or_wait():
                self.close()
                raise StopIteration
        event = self._buffer.popleft()
        self.position = event.seq
        return event

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def fileno(self) -> int:
        """A descriptor that is readable when the journal may have grown (for an event loop)."""
        return self._watch.fileno()

    def fetch(self) -> list[Event]:
        """The events available now, without waiting (the stream's position moves past them).

        Drains the bell first, so that a commit after this query leaves
        `fileno()` readable.
        """
        if self._closed:
            return []
        self._watch.drain()
        after = self._buffer[-1].seq if self._buffer else self.position
        rows = self._store.events_after(after, ids=self._ids, kinds=self._kinds, limit=BATCH)
        events = [Event.of(cid, entry) for cid, entry in rows]
        if self._buffer:  # hand out what the iterator had buffered first
            events = [*self._buffer, *events]
            self._buffer.clear()
        if events:
            self.position = events[-1].seq
        return events

    def _refill_or_wait(self) -> bool:
        """Fill the buffer, sleeping on the bell while there is nothing; False when it should end."""
        while not self._closed:
            self._watch.drain()
            rows = self._store.events_after(self.position, ids=self._ids, kinds=self._kinds, limit=BATCH)
            if rows:
                self._buffer.extend(Event.of(cid, entry) for cid, entry in rows)
                return True
            with self._guard:
                if self._closed:
                    return False
                self._waiting = True
            try:
                rang = self._watch.wait(self._timeout)
            finally:
                with self._guard:
                    self._waiting = False
            if not rang:
                return False  # timed out or closed
        return False

    def close(self) -> None:
        """End the stream and release its watch; safe from any thread, and more than once."""
        with self._guard:
            self._closed = True
            if self._waiting:  # the iterating thread closes the watch when it wakes
                self._watch.interrupt()
                return
        self._watch.close()

    @property
    def closed(self) -> bool:
        return self._closed

