"""ExecProcess: a process exec'd into a container, whose end is written to the store."""

from __future__ import annotations

from corral.executor.interface import ExecHandle
from corral.store.repository import Repository


class ExecProcess:
    """A process exec'd into a container; `wait()` records how it ended."""

    def __init__(self, store: Repository, handle: ExecHandle, process_key: int) -> None:
        self._store = store
        self._handle = handle
        self._key = process_key
        self.pid = handle.pid
        self.start_time = handle.start_time
        #: The pty master of a `terminal` process (`Container.exec(..., console=True)`): the caller's to close.
        self.console_fd: int | None = getattr(handle, "console_fd", None)

    def wait(self, timeout: float | None = None) -> int | None:
        """The exit status (code, or 128 + signal), or None if it could not be observed."""
        status = self._handle.wait(timeout)
        self._store.finish_process(self._key, status.status, status.signal)
        return status.status

    def poll(self) -> int | None:
        status = self._handle.poll()
        if status is None:
            return None
        self._store.finish_process(self._key, status.status, status.signal)
        return status.status
