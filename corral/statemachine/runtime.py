"""The Runtime: the factory of containers on one root, and the entry point of recovery."""

from __future__ import annotations

import builtins
import threading
import weakref
from pathlib import Path

from corral import faults
from corral.config import Config
from corral.errors import ConfigError, ContainerNotFound, CorralError
from corral.executor.interface import Executor, Stdio
from corral.ids import validate_id
from corral.statemachine.container import Container
from corral.statemachine.lifecycle import INITIAL_STATE
from corral.statemachine.locks import Locks
from corral.statemachine.recovery import RecoveryReport, recover
from corral.store.repository import ContainerRecord, JournalEntry, Repository

DEFAULT_ROOT = "/var/lib/corral"  # the store: must survive a reboot
DEFAULT_RUN_ROOT = "/run/corral"  # per-boot files (exec fifos, exit files): tmpfs on most hosts
DEFAULT_BOOT_ID_FILE = "/proc/sys/kernel/random/boot_id"


class Runtime:
    """Containers recorded under `root`.

    Any number of Runtimes, in any threads and processes, may share a root: the
    store and the per-container locks keep them consistent. Opening a Runtime
    runs `recover()` so that whatever a crashed predecessor left half-done is
    finished or rolled back before anything else happens.
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
        self._repo = Repository(self.root)
        self._locks = Locks(self.root)
        if executor is None:
            from corral.executor.linux import LinuxExecutor

            executor = LinuxExecutor()
        self._executor = executor
        self._containers: weakref.WeakValueDictionary[int, Container] = weakref.WeakValueDictionary()
        self._containers_guard = threading.Lock()
        self.last_recovery: RecoveryReport | None = self.recover() if recover else None

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the database and any helper process; containers keep running."""
        close = getattr(self._executor, "close", None)
        if close is not None:
            close()
        self._repo.close()

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
        with self._locks.hold(container_id):
            run_dir = str(self.run_root / container_id)
            plan = self._executor.plan(container_id, config, run_dir)
            record = self._repo.insert(
                container_id=container_id,
                state=INITIAL_STATE.value,
                pending_event="create",
                config=config.to_json(),
                bundle=config.bundle,
                run_dir=plan.run_dir,
                boot_id=self.boot_id(),
                cgroup_paths=plan.cgroup_paths,
                journal_event="create",
            )
            container = self._container(record)
            try:
                faults.point("create.intent")
                container._fire("create", stdio=stdio)
            except BaseException as exc:
                try:
                    container._fire("destroy", force=True, reason=f"create failed: {exc}")
                except CorralError as cleanup:
                    exc.add_note(f"cleaning up also failed: {cleanup}; Runtime.recover() retries")
                raise
            return container

    def load(self, container_id: str) -> Container:
        """The live container with this id, else its latest tombstone."""
        validate_id(container_id)
        record = self._repo.find(container_id)
        if record is None:
            raise ContainerNotFound(container_id, str(self.root))
        return self._container(record)

    def list(self, *, include_destroyed: bool = False) -> builtins.list[Container]:
        return [self._container(r) for r in self._repo.all(include_destroyed=include_destroyed)]

    def journal(self, since: int = 0) -> builtins.list[tuple[str, JournalEntry]]:
        """Every transition recorded after journal sequence number `since`, with its container id."""
        return self._repo.journal_since(since)

    def recover(self) -> RecoveryReport:
        """Bring every unfinished record into agreement with the kernel; see recovery.py."""
        return recover(self)

    def _container(self, record: ContainerRecord) -> Container:
        with self._containers_guard:
            container = self._containers.get(record.key)
            if container is None:
                container = Container(self, record)
                self._containers[record.key] = container
            else:
                container._record = record if record.version >= container._record.version else container._record
            return container
