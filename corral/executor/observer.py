"""The monitor's reports: the init's exit and the OOM kills it sees, told to the recorder it was given.

The monitor is the one process sure to see its container's init exit: it
outlives the controller and reaps the init. With a `Recorder` in its request
(the lifecycle names corral/store/observed.py), it records each OOM kill while
the init lives and, once the exit file is written, the exit itself, so that the
journal (and `Runtime.events()`) has them whether or not a controller waits.

OOM kills are watched by a thread that sleeps on the cgroup's kernel
notification (an eventfd on v1, POLLPRI on v2). Reports go one at a time, and
the exit last: before it, the monitor reads the kill count once more, so an
init killed by the OOM killer is journalled as an `oom`, then `exited`.

Nothing here may fail the monitor: the exit file is already written, and a
controller that calls `wait()` or `state` records what the monitor could not.
"""

from __future__ import annotations

import importlib
import signal
import sys
import threading
from types import ModuleType
from typing import Any

from corral.executor.cgroups import open_cgroup
from corral.executor.cgroups.base import Cgroup
from corral.executor.protocol import CreateRequest, Exited

#: The OOM watcher's fallback re-check: it wakes on the kernel's notification, this is only a backstop.
OOM_RECHECK_S = 600.0


def preload(request: CreateRequest) -> None:
    """Import the request's recorder in the spawn helper, before it forks the monitor.

    Imported in each monitor instead, the import machinery's allocations (path
    caches, sys.modules) would copy megabytes of the helper's pages into every
    monitor; imported once here, they stay shared.
    """
    if request.recorder is not None and request.recorder.module not in sys.modules:
        try:
            importlib.import_module(request.recorder.module)
        except Exception:  # noqa: BLE001 - the monitor retries, and never fails for it
            pass


class Observer:
    """What one monitor reports for one init."""

    def __init__(self, request: CreateRequest, init_pid: int) -> None:
        assert request.recorder is not None
        self._recorder = request.recorder
        self._init_pid = init_pid
        self._cgroup: Cgroup | None = None
        self._module: ModuleType | None = None
        self._guard = threading.Lock()  # one report at a time, in the order seen
        self._reported = 0  # the last OOM kill count reported
        try:
            self._cgroup = open_cgroup(request.cgroup_paths)
            self._reported = self._cgroup.oom_kill_count()
        except Exception:  # noqa: BLE001 - no cgroup to read: exits are still reported
            self._cgroup = None

    @classmethod
    def start(cls, request: CreateRequest, init_pid: int) -> Observer | None:
        """An observer watching OOM kills in a thread, or None when nobody is to be told."""
        if request.recorder is None:
            return None
        observer = cls(request, init_pid)
        observer._load()  # now, not on the exit's way to the journal
        if observer._cgroup is not None:
            threading.Thread(target=observer._watch_oom, name="corral-oom", daemon=True).start()
        return observer

    def _load(self) -> None:
        try:
            self._module = importlib.import_module(self._recorder.module)
        except Exception:  # noqa: BLE001 - retried at the first report
            self._module = None

    def _call(self, name: str, **values: Any) -> None:
        try:
            if self._module is None:
                self._module = importlib.import_module(self._recorder.module)
            getattr(self._module, name)(**self._recorder.arguments, init_pid=self._init_pid, **values)
        except Exception:  # noqa: BLE001 - see the module docstring: never fail the monitor
            pass

    def _oom_count(self) -> int:
        try:
            return self._cgroup.oom_kill_count() if self._cgroup is not None else 0
        except Exception:  # noqa: BLE001 - the cgroup may be gone
            return 0

    def _report_oom(self, count: int) -> None:
        """Under the guard: report `count` if it is more than reported so far."""
        if count > self._reported:
            self._reported = count
            self._call("oom", count=count)

    def _watch_oom(self) -> None:
        assert self._cgroup is not None
        try:
            for count in self._cgroup.oom_events(poll_interval=OOM_RECHECK_S):
                with self._guard:
                    self._report_oom(count)
        except Exception:  # noqa: BLE001 - no memory controller: nothing to watch
            pass

    def exited(self, exited: Exited, reason: str | None) -> None:
        """Report the init's exit (after the exit file is written), and any OOM kill not yet reported."""
        with self._guard:
            count = self._oom_count()
            self._report_oom(count)
            # As the executor judges it: SIGKILL while the cgroup counted an OOM kill.
            oom_killed = exited.signal == signal.SIGKILL and count > 0
            self._call(
                "exited",
                status=exited.status,
                signal=exited.signal,
                oom_killed=oom_killed,
                reason=reason,
            )
