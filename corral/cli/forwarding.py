"""Pass on to a process the signals this command gets while it waits: foreground `run` and `exec`.

runc's signal handler (signals.go) is installed before the container's process exists and
forwards what it caught once it does; a signal between the two is neither lost nor fatal to
runc while the process lives on. corral's `run` and `exec` share this one implementation.
"""

from __future__ import annotations

import os
import signal
from typing import TYPE_CHECKING, Any

from corral.cli.signals import FORWARDED

if TYPE_CHECKING:  # pragma: no cover
    from corral.cli.log import Log


class Forwarding:
    """Pass on to a process the signals this process gets while it waits, as runc does
    (SIGWINCH excepted: it resizes the terminal).

    The handlers are set before the process is made: a caller that signals as soon as the process
    shows a sign of life (containerd, a test reading its output) would otherwise find this process
    still on the default action and kill it instead. A signal that comes before the process
    exists is held and passed on once it does (`to`); if none ever does, it is raised again here
    once the handlers are put back, so that it does what it would have done.
    """

    def __init__(self, log: Log) -> None:
        self._log = log
        self._attached = False  # `to` was called: signals go to the process, or nowhere once it is gone
        self._pidfd: int | None = None
        self._held: list[int] = []
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> Forwarding:
        self._previous = {sig: signal.signal(sig, self._forward) for sig in FORWARDED if sig != signal.SIGWINCH}
        return self

    def _forward(self, signum: int, _frame: object) -> None:
        if not self._attached:
            self._held.append(signum)
            return
        if self._pidfd is None:
            return
        try:
            signal.pidfd_send_signal(self._pidfd, signum)
        except OSError as exc:
            self._log.debug(f"forwarding signal {signum}: {exc}")

    def to(self, pid: int) -> None:
        """The process is there: from now on its signals go to `pid`, and those held so far too."""
        self._attached = True
        try:
            self._pidfd = os.pidfd_open(pid)
        except OSError:  # already gone and reaped: nothing to forward to
            return
        held, self._held = self._held, []
        for signum in held:
            self._forward(signum, None)

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        if self._pidfd is not None:
            os.close(self._pidfd)
        if not self._attached and self._held:
            signal.raise_signal(self._held[0])  # no process took it: its own action, as if never caught
