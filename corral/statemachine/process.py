"""ExecProcess: a process exec'd into a container, whose end is written to the store."""

from __future__ import annotations

from corral.executor.interface import ExecHandle
from corral.store.repository import Repository


class ExecProcess:
    """A process exec'd into a container; `wait()` records how it ended.

    Get it from `Container.exec()`; constructing one raises nothing.
    """

    def __init__(self, store: Repository, handle: ExecHandle, process_key: int) -> None:
        self._store = store
        self._handle = handle
        self._key = process_key
        self.pid = handle.pid
        self.start_time = handle.start_time
        #: The pty master of a `terminal` process (`Container.exec(..., console=True)`): the caller's to close.
        self.console_fd: int | None = getattr(handle, "console_fd", None)

    def wait(self, timeout: float | None = None) -> int | None:
        """The exit status (code, or 128 + signal), or None if it could not be observed.

        `timeout` in seconds (None: for ever). Raises WaitTimeout (a TimeoutError)
        when the process outlives it: it keeps running, wait again. StoreError.
        """
        status = self._handle.wait(timeout)
        self._store.finish_process(self._key, status.status, status.signal)
        return status.status

    def poll(self) -> int | None:
        """The exit status if the process has ended, else None, without waiting. Raises StoreError."""
        status = self._handle.poll()
        if status is None:
            return None
        self._store.finish_process(self._key, status.status, status.signal)
        return status.status
