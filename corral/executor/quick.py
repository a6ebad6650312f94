"""The kernel work of start, signal, pause and resume, on plain facts: no spawn helper, no Config.

LinuxExecutor delegates to these functions, and the command line's one-shot
path (corral/statemachine/quick.py) calls them directly, so both do the same
kernel work with one implementation. They take what the record holds (the
init's identity, the run dir, the cgroup paths) and import the cgroup drivers
only when a call needs the freezer: `start` and a plain signal stay cheap to
import for a process that lives for one call.
"""

from __future__ import annotations

import os
import select
import signal as signal_module
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from corral import faults
from corral.errors import ExecutorError, ProcessGone, RunDirError
from corral.executor import proc
from corral.identity import ProcessIdentity

if TYPE_CHECKING:  # pragma: no cover
    from corral.executor.cgroups.base import Cgroup
    from corral.executor.cgroups.freezer import Freezer
    from corral.executor.hooks import FifoReader, HookOutcome

FIFO_NAME = "exec.fifo"
FREEZE_TIMEOUT = 10.0
EXEC_TIMEOUT = 10.0  # how long start waits for the init's execve after releasing it
#: The init's command name while it waits on the fifo (corral.executor.init.INIT_COMM; a unit test checks).
INIT_COMM = "corral-init"

Created = Mapping[str, tuple[str, ...]] | None


def cgroup(paths: Mapping[str, str], created: Created) -> Cgroup:
    """The container's cgroup (the drivers are imported here, on first need)."""
    from corral.executor.cgroups import open_cgroup

    return open_cgroup(paths, created)


def freezer(paths: Mapping[str, str]) -> Freezer:
    """The container's freezer alone: pause and resume need no driver (nor, through them, corral.config)."""
    from corral.executor.cgroups.freezer import Freezer

    return Freezer(paths)


def waiting_on_fifo(init: ProcessIdentity) -> bool:
    try:
        with open(f"/proc/{init.pid}/comm") as f:
            return f.read().strip() == INIT_COMM
    except OSError:
        return False


def release_init(
    container_id: str, init: ProcessIdentity, run_dir: str, start_container_hooks: bool = False
) -> tuple[HookOutcome, ...]:
    """Open the exec fifo so that the waiting init execs the user's process; return after its execve.

    With `start_container_hooks` the init runs the config's startContainer hooks first and
    reports each over the fifo before its "0" (hooks.py): their outcomes are returned, and
    HookFailed is raised if one failed (the init then exits instead of exec'ing).
    """
    reports: FifoReader | None = None
    if start_container_hooks:
        from corral.executor.hooks import FifoReader  # only then: hooks.py reaches the protocol and config

        reports = FifoReader()
    fifo_path = os.path.join(run_dir, FIFO_NAME)
    pidfd = proc.open_pidfd(init)
    if pidfd is None:
        raise ProcessGone(f"container {container_id!r}: its init ({init.pid}) is gone; it cannot start")
    try:
        if waiting_on_fifo(init) and not os.path.isdir(run_dir):
            raise RunDirError(
                f"container {container_id!r}: its run directory {run_dir} is gone (removed by "
                "someone else?); the init waits but cannot be started; destroy it",
                run_dir,
                container_id=container_id,
            )
        if not waiting_on_fifo(init) or not os.path.exists(fifo_path):
            raise ExecutorError(f"container {container_id!r} was already started (its init no longer waits)")
        faults.point("start.fifo-opening")
        fifo = os.open(fifo_path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            while True:
                ready, _, _ = select.select([fifo, pidfd], [], [], 10.0)
                if fifo in ready:
                    chunk = os.read(fifo, 1 if reports is None else 65536)
                    if reports is None and chunk == b"0":
                        break
                    if reports is not None and chunk:
                        if reports.feed(chunk):
                            break
                        continue
                    failed = reports.failure(container_id) if reports is not None else None
                    if failed is not None:
                        raise failed
                    raise ExecutorError(f"container {container_id!r}: the init closed its exec fifo without starting")
                if pidfd in ready:
                    raise ProcessGone(f"container {container_id!r}: the init died before it could start")
            # The init wrote "0" just before its execve and holds the fifo open, close-on-exec:
            # end-of-file means the execve happened (or the init died), so that what the
            # caller does next (pause, exec, a state check) never finds the init under its
            # old name. No polling; bounded, should the init stop between write and execve.
            deadline = time.monotonic() + EXEC_TIMEOUT
            while (left := deadline - time.monotonic()) > 0:
                ready, _, _ = select.select([fifo, pidfd], [], [], left)
                if pidfd in ready:
                    break  # died instead (its exit is observed later, as before)
                if fifo in ready:
                    try:
                        if os.read(fifo, 1) == b"":
                            break
                    except BlockingIOError:
                        pass
        finally:
            os.close(fifo)
    finally:
        os.close(pidfd)
    os.unlink(fifo_path)
    faults.point("start.fifo-opened")
    return tuple(reports.outcomes) if reports is not None else ()


def send_signal(
    container_id: str,
    init: ProcessIdentity,
    paths: Mapping[str, str],
    created: Created,
    sig: int,
    all_processes: bool = False,
) -> None:
    """Signal the init through a pidfd (never a reused PID), or every process of the cgroup."""
    if all_processes:
        _signal_all(cgroup(paths, created), sig)
        return
    pidfd = proc.open_pidfd(init)
    if pidfd is None:
        raise ProcessGone(f"container {container_id!r}: its init ({init.pid}) is gone")
    try:
        signal_module.pidfd_send_signal(pidfd, sig)
    except ProcessLookupError as exc:
        raise ProcessGone(f"container {container_id!r}: its init ({init.pid}) is gone") from exc
    finally:
        os.close(pidfd)
    if sig == signal_module.SIGKILL:
        # A v1-frozen task cannot act on SIGKILL until thawed: a kill must not leave it hanging.
        group = freezer(paths)
        if group.exists() and group.frozen():
            group.thaw()


def _signal_all(group: Cgroup, sig: int) -> None:
    """Freeze, signal every process through a pidfd, thaw: no PID can be reused meanwhile."""
    was_frozen = group.frozen()
    if not was_frozen:
        group.freeze(FREEZE_TIMEOUT)
    try:
        for pid in group.pids():
            try:
                pidfd = os.pidfd_open(pid)
            except ProcessLookupError:
                continue
            try:
                signal_module.pidfd_send_signal(pidfd, sig)
            except ProcessLookupError:
                pass
            finally:
                os.close(pidfd)
    finally:
        if not was_frozen or sig == signal_module.SIGKILL:
            group.thaw()


def freeze(paths: Mapping[str, str], created: Created) -> None:
    freezer(paths).freeze(FREEZE_TIMEOUT)
    faults.point("pause.frozen")


def thaw(paths: Mapping[str, str], created: Created) -> None:
    freezer(paths).thaw()
    faults.point("resume.thawed")
