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
from pathlib import Path

from corral import faults
from corral.config import Config
from corral.errors import ConfigError, ContainerNotFound, CorralError
from corral.executor.interface import Executor, Stdio
from corral.ids import validate_id
from corral.statemachine.container import Container
from corral.statemachine.context import Context
from corral.statemachine.lifecycle import INITIAL_STATE
from corral.statemachine.locks import Locks
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
        # Each cached Container's recipe (the Container holds it, so it lives as long).
        self._recipes: weakref.WeakValueDictionary[int, Recipe] = weakref.WeakValueDictionary()
        self._recent: OrderedDict[int, Container] = OrderedDict()
        self._containers_guard = threading.Lock()
        self.last_recovery: RecoveryReport | None = self._recover_on_open() if recover else None

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the database and any helper process; containers keep running."""
        close = getattr(self.context.executor, "close", None)
        if close is not None:
            close()
        self.context.store.close()

    def boot_id(self) -> str:
        """The host's boot id now (read each time: a reboot changes it under a stored record)."""
        try:
            return self.boot_id_file.read_text().strip()
        except OSError as exc:
            raise CorralError(f"cannot read the boot id from {self.boot_id_file}: {exc}") from exc

    # -- containers ----------------------------------------------------------

    def create(self, container_id: str, config: Config, *, stdio: Stdio | None = None) -> Container:
        """Create a container: its init waits, in its namespaces and cgroups, for `start()`.

        On failure nothing is left in the kernel, the record is a tombstone that
        says why, and the error carries the init's own message.
        """
        validate_id(container_id)
        if not isinstance(config, Config):
            raise ConfigError("config", f"must be a corral.Config, not {type(config).__name__}")
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
                journal_event="create",
            )
            container = self._container(record)
            recipe = self._recipe(record)
            try:
                faults.point("create.intent")
                recipe.fire("create", stdio=stdio)
            except BaseException as exc:
                try:
                    recipe.fire("destroy", force=True, reason=f"create failed: {exc}")
                except CorralError as cleanup:
                    exc.add_note(f"cleaning up also failed: {cleanup}; Runtime.recover() retries")
                raise
            return container

    def load(self, container_id: str) -> Container:
        """The live container with this id, else its latest tombstone."""
        validate_id(container_id)
        record = self.context.store.find(container_id)
        if record is None:
            raise ContainerNotFound(container_id, str(self.root))
        return self._container(record)

    def list(self, *, include_destroyed: bool = False) -> builtins.list[Container]:
        return [self._container(r) for r in self.context.store.all(include_destroyed=include_destroyed)]

    def journal(self, since: int = 0) -> builtins.list[tuple[str, JournalEntry]]:
        """Every transition recorded after journal sequence number `since`, with its container id."""
        return self.context.store.journal_since(since)

    def recover(self) -> RecoveryReport:
        """Bring every unfinished record into agreement with the kernel; see recovery.py.

        O(live records): the full reconcile. Once it has run without a failure,
        the store remembers this boot, so that opening it costs O(intents) until
        the host restarts.
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
                recipe = Recipe(self.context, record)
                container = Container(recipe)
                self._containers[record.key] = container
                self._recipes[record.key] = recipe
            else:
                self._recipes[record.key].adopt(record)
            self._recent[record.key] = container
            self._recent.move_to_end(record.key)
            if len(self._recent) > RECENT_CONTAINERS:
                self._recent.popitem(last=False)
            return container

    def _recipe(self, record: ContainerRecord) -> Recipe:
        """The recipe of the record's Container (made if need be)."""
        _held = self._container(record)  # while the Container lives, its recipe stays in _recipes
        return self._recipes[record.key]
