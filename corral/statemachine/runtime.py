"""The Runtime: the factory of containers on one root, and the entry point of recovery.

It opens the root's services once, as one Context (context.py), and hands that
to each container's Recipe and Container and to recovery: nothing below it
knows the Runtime, so the lifecycle's imports run one way (runtime → container,
recovery, transition → context).
"""

from __future__ import annotations

import builtins
import threading
import weakref
from collections import OrderedDict
from collections.abc import Collection, Iterable, Mapping
from datetime import timedelta
from pathlib import Path

from corral import faults
from corral.config import Config
from corral.errors import ConfigError, ContainerNotFound, CorralError
from corral.executor.interface import Executor, Stdio
from corral.ids import validate_id
from corral.statemachine.consoles import check_console
from corral.statemachine.container import Container
from corral.statemachine.context import Context
from corral.statemachine.events_stream import EventStream
from corral.statemachine.lifecycle import INITIAL_STATE, State
from corral.statemachine.purge import purge
from corral.statemachine.locks import Locks
from corral.statemachine.recipes import RecipeBook
from corral.statemachine.recovery import RecoveryReport, recover, recover_interrupted
from corral.statemachine.transition import Recipe
from corral.store.repository import ContainerRecord, JournalEntry, Repository

DEFAULT_ROOT = "/var/lib/corral"  # the store: must survive a reboot
DEFAULT_RUN_ROOT = "/run/corral"  # per-boot files (exec fifos, exit files): tmpfs on most hosts
DEFAULT_BOOT_ID_FILE = "/proc/sys/kernel/random/boot_id"

#: How many recently used Containers a Runtime keeps alive, so that a loop of
#: `runtime.load(id).state` does not build a machine and parse a config each time.
RECENT_CONTAINERS = 64


class Runtime:
    """Containers recorded under `root`.

    Any number of Runtimes, in any threads and processes, may share a root: the
    store and the per-container locks keep them consistent. Opening a Runtime
    finishes or rolls back whatever a crashed predecessor left half-done (its
    interrupted intents) before anything else happens, at O(intents); if the
    host restarted since the last full recovery (one read of the boot id the
    store keeps), it runs the full `recover()` instead.

    Raises, when opened: StoreUnreadable (not a corral database), StoreAccessDenied,
    UnknownRevision (a newer corral's store) or another StoreError; every method
    may raise StoreError, and those that take a container's lock LockError. Use it
    as a context manager (`with Runtime(root) as rt:`) to close it.
    """

    def __init__(
        self,
        root: str | Path = DEFAULT_ROOT,
        executor: Executor | None = None,
        *,
        run_root: str | Path = DEFAULT_RUN_ROOT,
        boot_id_file: str | Path = DEFAULT_BOOT_ID_FILE,
        recover: bool = True,
    ) -> None:
        self.root = Path(root)
        self.run_root = Path(run_root)
        self.boot_id_file = Path(boot_id_file)
        store = Repository(self.root)
        if executor is None:
            from corral.executor.linux import LinuxExecutor

            executor = LinuxExecutor()
        #: The root's services, as every container and recovery use them.
        self.context = Context(
            store=store, locks=Locks(self.root), executor=executor, boot_id=self.boot_id, run_root=self.run_root
        )
        self._containers: weakref.WeakValueDictionary[int, Container] = weakref.WeakValueDictionary()
        # Each Container's recipe, made when first needed (a listed Container may never need it).
        self._book = RecipeBook(self.context)
        self._recent: OrderedDict[int, Container] = OrderedDict()
        self._containers_guard = threading.Lock()
        self.last_recovery: RecoveryReport | None = self._recover_on_open() if recover else None

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the Runtime; its containers keep running. Raises nothing."""
        self.close()

    def close(self) -> None:
        """Release the database and any helper process; containers keep running. Raises nothing."""
        close = getattr(self.context.executor, "close", None)
        if close is not None:
            close()
        self.context.store.close()

    def boot_id(self) -> str:
        """The host's boot id now (read each time: a reboot changes it under a stored record).

        Raises CorralError if the boot id file cannot be read.
        """
        try:
            return self.boot_id_file.read_text().strip()
        except OSError as exc:
            raise CorralError(f"cannot read the boot id from {self.boot_id_file}: {exc}") from exc

    # -- containers ----------------------------------------------------------

    def create(
        self, container_id: str, config: Config, *, stdio: Stdio | None = None, console: bool = False
    ) -> Container:
        """Create a container: its init waits, in its namespaces and cgroups, for `start()`.

        With `process.terminal` true, pass `console=True`: the init gets a new pty
        (its controlling terminal, stdio and /dev/console) and the returned
        Container's `console_fd` is the pty's master, a file descriptor the caller
        owns and closes (consoles.py says what is refused).

        On failure nothing is left in the kernel, the record is a tombstone that
        says why, and the error carries the init's own message.

        Raises InvalidID, ConfigError (a bad config or Stdio; InvalidStdio for a
        closed descriptor), ContainerExists (a live container has this id),
        InitError (the init's set-up failed: its message), CgroupError,
        RunDirError, NeedsRoot, or another ExecutorError.
        """
        validate_id(container_id)
        if not isinstance(config, Config):
            raise ConfigError("config", f"must be a corral.Config, not {type(config).__name__}")
        check_console(config.process.terminal, console, stdio, where="process", call="Runtime.create")
        store, executor = self.context.store, self.context.executor
        with self.context.locks.hold(container_id):
            run_dir = str(self.run_root / container_id)
            plan = executor.plan(container_id, config, run_dir, str(self.root))
            record = store.insert(
                container_id=container_id,
                state=INITIAL_STATE.value,
                pending_event="create",
                config=config.to_json(),
                bundle=config.bundle,
                run_dir=plan.run_dir,
                boot_id=self.boot_id(),
                cgroup_paths=plan.cgroup_paths,
                created_cgroups=plan.created_cgroups,
                interfaces=plan.interfaces,
                journal_event="create",
            )
            container = self._container(record)
            recipe = self._recipe(record)
            try:
                faults.point("create.intent")
                container.console_fd = recipe.fire("create", stdio=stdio)
            except BaseException as exc:
                try:
                    hooks = getattr(exc, "hooks", ())  # HookFailed: the hooks create ran, for the journal
                    recipe.fire("destroy", force=True, reason=f"create failed: {exc}", create_hooks=hooks)
                except CorralError as cleanup:
                    exc.add_note(f"cleaning up also failed: {cleanup}; Runtime.recover() retries")
                raise
            return container

    def load(self, container_id: str) -> Container:
        """The live container with this id, else its latest tombstone.

        Raises InvalidID; ContainerNotFound if no record has this id.
        """
        validate_id(container_id)
        record = self.context.store.find(container_id)
        if record is None:
            raise ContainerNotFound(container_id, str(self.root))
        return self._container(record)

    def run(self, container_id: str, config: Config, *, stdio: Stdio | None = None) -> Container:
        """Create and start a container, as `docker run -d` does; return it running.

        All or nothing: if `start()` fails, the container is destroyed (with
        force) before the error is raised, so no created container is left behind.

        Raises what `create()` and `Container.start()` raise.
        """
        container = self.create(container_id, config, stdio=stdio)
        try:
            container.start()
        except BaseException as exc:
            try:
                container.destroy(force=True)
            except CorralError as cleanup:
                exc.add_note(f"destroying it also failed: {cleanup}; Runtime.recover() retries")
            raise
        return container

    def list(
        self,
        *,
        include_destroyed: bool = False,
        labels: Mapping[str, str | None] | None = None,
        states: Iterable[State | str] | None = None,
    ) -> builtins.list[Container]:
        """The containers of this root, oldest first, from one query of the store (the kernel is not asked).

        The query reads only keys and ids (an index answers it): each Container
        reads its record on first use, through the store's cache, so listing
        10,000 records and using 200 of them costs the 200. A Container this
        process already holds is the one returned.

        `labels` keeps those whose config's annotations hold every key with the
        given value (None: any value); `states` keeps those whose recorded state
        is one of them (asking for `destroyed` includes tombstones).

        Raises ValueError for a name that is not a state; StoreError.
        """
        wanted = None if states is None else {State(s).value for s in states}
        include = include_destroyed or (wanted is not None and State.DESTROYED.value in wanted)
        listing = self.context.store.listing(include_destroyed=include, labels=labels, states=wanted)
        with self._containers_guard:  # once for the list: it may be 10,000 long
            held = self._containers
            boxes = []
            for key, container_id in listing:
                box = held.get(key)
                if box is None:
                    box = held[key] = Container(self._book, key, container_id)
                boxes.append(box)
            for (key, _id), box in zip(listing[-RECENT_CONTAINERS:], boxes[-RECENT_CONTAINERS:]):
                self._keep_recent(key, box)
        return boxes

    def purge(self, *, older_than: timedelta | float) -> builtins.list[ContainerRecord]:
        """Delete the tombstones destroyed more than `older_than` ago (seconds or a timedelta), with their journal.

        Never touches a live record, a tombstone whose destroy is unfinished, or one
        whose cgroups are still on the host (the orphan sweep needs it to remove
        them). Their `journal()` entries go too. Returns the records deleted.

        Raises ConfigError for a negative age; StoreError.
        """
        return purge(self.context, older_than)

    def journal(self, since: int = 0) -> builtins.list[tuple[str, JournalEntry]]:
        """Every transition recorded after journal sequence number `since`, with its container id.

        Raises StoreError.
        """
        return self.context.store.journal_since(since)

    def events(
        self,
        since: int | None = None,
        *,
        ids: Collection[str] | None = None,
        kinds: Collection[str] | None = None,
        timeout: float | None = None,
    ) -> EventStream:
        """Follow the journal of every container of this root: an iterator of `Event`s, oldest first.

        `since` is a sequence number (`Event.seq`): the events after it, then
        every new one as it is committed, by any process sharing the root (None:
        only new ones). Exits and OOM kills are there even when nobody waits for
        them: the monitors record them. `ids` and `kinds` filter by container id
        and event (`"exited"`, `"oom"`, ...). Blocks on an inotify watch, never a
        timer; `timeout` ends the iteration after that many idle seconds. Close
        it (or use it in a `with`) to release its watch. See README "Events".

        Raises nothing here; iterating raises StoreError if the store cannot be read.
        """
        return EventStream(self.context.store, since, ids=ids, kinds=kinds, timeout=timeout)

    def recover(self) -> RecoveryReport:
        """Bring every unfinished record into agreement with the kernel; see recovery.py.

        O(live records): the full reconcile. Once it has run without a failure,
        the store remembers this boot, so that opening it costs O(intents) until
        the host restarts.

        Raises StoreError or LockError; what it cannot fix for one container is in
        the report, not raised.
        """
        boot_id = self.boot_id()
        report = recover(self.context, self._recipe)
        if not report.failed:
            self.context.store.mark_recovered(boot_id)
        return report

    def _recover_on_open(self) -> RecoveryReport:
        """The interrupted intents only, unless the host restarted since the last full recovery."""
        if self.context.store.recovered_boot() != self.boot_id():
            return self.recover()
        return recover_interrupted(self.context, self._recipe)

    def _container(self, record: ContainerRecord) -> Container:
        """The one Container object of this record's incarnation, holding the newest record read."""
        with self._containers_guard:
            container = self._containers.get(record.key)
            if container is None:
                recipe = self._book.recipe(record.key, record.id, record)
                container = self._containers[record.key] = Container(self._book, record.key, record.id, recipe)
            else:
                self._book.adopt(record)
            self._keep_recent(record.key, container)
            return container

    def _keep_recent(self, key: int, container: Container) -> None:
        """Keep `container` among the RECENT_CONTAINERS most recently handed out (under the guard)."""
        self._recent[key] = container
        self._recent.move_to_end(key)
        if len(self._recent) > RECENT_CONTAINERS:
            self._recent.popitem(last=False)

    def _recipe(self, record: ContainerRecord) -> Recipe:
        """The recipe of the record's Container (made if need be)."""
        _held = self._container(record)  # the Container holds its recipe: it lives while we use it
        return self._book.recipe(record.key, record.id, record)
