"""What every command gets: its arguments, the log, and the store opened the cheap way.

`--root DIR` holds both the store and the run state of this invocation
(DIR/corral.db, DIR/run/<id>): containerd gives each namespace its own root on
tmpfs and expects it to vanish with a reboot. Without `--root`, the library's
defaults apply.

Opening a Runtime finishes interrupted intents (O(intents)) and runs the full
recovery only after a host restart; the one-shot commands (fast.py, and the
read-only reads of `state` and `ps`) avoid even that when two indexed reads
say nothing is left to finish.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from corral.cli.log import Log

# The library's defaults (corral.statemachine.runtime), repeated in roots.py so that a fast
# command need not import the library; tests/unit/test_cli.py checks they agree.
from corral.cli.roots import BOOT_ID_FILE, DEFAULT_ROOT, DEFAULT_RUN_ROOT  # noqa: F401
from corral.errors import ContainerNotFound
from corral.store.readonly import ReadonlyStore, RecordView, open_readonly

if TYPE_CHECKING:  # pragma: no cover
    import argparse  # only a hint: corral.cli.oneshot hands the commands a namespace it built itself

    from corral.statemachine.container import Container
    from corral.statemachine.runtime import Runtime



def boot_id() -> str:
    with open(BOOT_ID_FILE) as f:
        return f.read().strip()


class Context:
    def __init__(self, args: argparse.Namespace, log: Log) -> None:
        self.args = args
        self.log = log
        # Plain strings, not pathlib: importing pathlib costs a fast command a tenth of its time.
        self.root: str = os.path.abspath(args.root) if args.root else DEFAULT_ROOT
        self.run_root: str = os.path.join(self.root, "run") if args.root else DEFAULT_RUN_ROOT
        self._runtime: Runtime | None = None

    @property
    def container_id(self) -> str:
        return str(self.args.container_id)

    def store_exists(self) -> bool:
        """Whether there is a store at all: reads of a missing one must not create it."""
        return os.path.exists(os.path.join(self.root, "corral.db"))

    def readonly(self) -> ReadonlyStore | None:
        """The sqlite3-only view of the store, or None when only the library can answer."""
        return open_readonly(self.root)

    def needs_recovery(self, view: RecordView | None) -> bool:
        """Whether this one record was left half-done or belongs to another boot."""
        if view is None or not view.live and view.pending_event is None:
            return False
        if view.pending_event is not None:
            return True
        try:
            return view.boot_id != boot_id()
        except OSError:
            return True

    def runtime(self, *, recover: bool = True, detached: bool = False) -> Runtime:
        """The library's Runtime on this root, opened once per call.

        Opening it costs O(interrupted intents) (a full recovery only after a
        host restart), so every command that needs the library lets it finish
        what a crashed process left before acting.
        `detached`: the command starts a process and exits while it runs (create,
        run --detach, exec --detach); that process's parent is then the one
        `--parent` names. A command that waits for its process keeps the monitor.
        """
        if self._runtime is None:
            from corral.statemachine.runtime import Runtime

            executor = None
            parent = getattr(self.args, "parent", None) or "monitor"
            if detached and parent != "monitor":
                from corral.executor.linux import LinuxExecutor

                executor = LinuxExecutor(parent=parent)
            self.log.debug(
                f"opening {self.root} (run state {self.run_root}, recovery {'on' if recover else 'off'}"
                f"{', parent ' + parent if executor is not None else ''})"
            )
            self._runtime = Runtime(self.root, run_root=self.run_root, recover=recover, executor=executor)
        return self._runtime

    def not_found(self) -> ContainerNotFound:
        return ContainerNotFound(self.container_id, self.root)

    def load(self, *, detached: bool = False) -> Container:
        """The live container `container_id` through the library; ContainerNotFound if there is
        none (a tombstone counts as none, and a missing store is not created just to say so).
        `detached` as for `runtime()`."""
        if not self.store_exists():
            raise self.not_found()
        box = self.runtime(detached=detached).load(self.container_id)
        if box.recorded_state.value == "destroyed":
            raise self.not_found()
        return box

    def close(self) -> None:
        if self._runtime is not None:
            self._runtime.close()
            self._runtime = None


def write_pid_file(path: str, pid: int) -> None:
    """Write `pid` to `path` atomically (a temporary file renamed over it), as runc does:
    the shim reads the file as soon as the command exits, and must never see it half-written."""
    target = os.path.abspath(path)
    tmp = os.path.join(os.path.dirname(target), f".{os.path.basename(target)}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, str(pid).encode())
    finally:
        os.close(fd)
    os.replace(tmp, target)
