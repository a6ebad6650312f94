"""Killing a container and removing what it left: the kernel side of `destroy`, without the config.

LinuxExecutor's `kill`, `destroy` and `exit_status` are these functions applied
to a record's facts. Killing needs only the init's and the monitor's identities,
the cgroup (reopened from its recorded paths) and the run dir: nothing of the
config and nothing of the spawn protocol. So the command line's one-shot `delete`
(statemachine/quick_destroy.py) calls them directly and imports neither (the
config's ~80 dataclasses and the protocol were ~60 ms of a ~120 ms `delete`).
"""

from __future__ import annotations

import errno
import os
import select
import signal as signal_module
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from corral import faults
from corral.errors import ExecutorError
from corral.executor import exitfile, proc
from corral.identity import ExitStatus, ProcessIdentity

if TYPE_CHECKING:  # pragma: no cover
    from corral.executor.cgroups.base import Cgroup
    from corral.types import HostInterface

#: The init's exit file in its run dir (exitfile.py).
EXIT_FILE = "init.exit"
#: How long a monitor may take to write the exit file and leave once its init is gone.
MONITOR_GRACE = 5.0


def wait_for_exit(process: ProcessIdentity | None, timeout: float | None) -> bool:
    """Block until `process` exits (True), or `timeout` passes (False). A gone process counts as exited."""
    if process is None:
        return True
    pidfd = proc.open_pidfd(process)
    if pidfd is None:
        return True
    try:
        ready, _, _ = select.select([pidfd], [], [], timeout)
        return bool(ready)
    finally:
        os.close(pidfd)


def wait_for_exit_file(path: str, writer: ProcessIdentity, timeout: float) -> None:
    """Wait until the exit file at `path` holds more than the placeholder, `writer` is gone, or `timeout`.

    Checked every few milliseconds: the wait covers only the moment between an
    init's death and its monitor's write, and a monitor that outlives the write
    (it records the exit) must not hold up a caller.
    """
    pidfd = proc.open_pidfd(writer)
    if pidfd is None:
        return
    deadline = time.monotonic() + timeout
    try:
        while True:
            record = exitfile.read_exit_record(path)
            if not (isinstance(record, exitfile.ExitUnknown) and record.pending):
                return
            left = deadline - time.monotonic()
            if left <= 0 or select.select([pidfd], [], [], min(left, 0.005))[0]:
                return
    finally:
        os.close(pidfd)


def exit_status(
    run_dir: str, init: ProcessIdentity | None, monitor: ProcessIdentity | None, cgroup: Cgroup
) -> ExitStatus:
    """How the init ended, from its exit file; unknown, with the reason, when nobody could write it."""
    path = os.path.join(run_dir, EXIT_FILE)
    exited = exitfile.read_exit_record(path)
    if isinstance(exited, exitfile.ExitUnknown) and monitor is not None and init is not None and not proc.alive(init):
        # The monitor writes the file as it reaps the init. It then records the exit
        # under the container's lock, which our caller may hold: wait for the file, not
        # for the monitor to end.
        wait_for_exit_file(path, monitor, MONITOR_GRACE)
        exited = exitfile.read_exit_record(path)
    if isinstance(exited, exitfile.ExitUnknown) and exited.pending:
        # The recorded monitor (the keeper) may be dead while the monitor it forked
        # is about to write: wait while anyone holds the file to write it.
        exitfile.wait_for_writers(path, MONITOR_GRACE)
        exited = exitfile.read_exit_record(path)
    if isinstance(exited, exitfile.ExitUnknown):
        return ExitStatus.unknown(why_unknown(monitor, exited))
    # The kernel does not say who sent a SIGKILL: the init counts as OOM-killed
    # when it died of SIGKILL while its cgroup's OOM-kill counter is non-zero,
    # unless corral sent that SIGKILL itself (kill(), and Container checks signal()).
    oom = False
    if exited.signal == signal_module.SIGKILL:
        try:
            oom = cgroup.exists() and cgroup.oom_kill_count() > 0
        except OSError:
            oom = False
    return ExitStatus(exited.status, exited.signal, oom)


def why_unknown(monitor: ProcessIdentity | None, unknown: exitfile.ExitUnknown) -> str:
    """The journal's reason: the file's, or who should have written it and did not."""
    if not unknown.pending:
        return unknown.reason
    if monitor is None:
        return "no monitor was recorded to reap the init and write its status"
    if proc.alive(monitor):
        return f"the monitor ({monitor.pid}) has not written the init's status yet"
    return (
        f"the monitor ({monitor.pid}) and the process it forked to be the init's parent were both "
        "gone (killed?) before either wrote the init's status: only a parent can reap it for its status"
    )


def may_kill_in(init: ProcessIdentity | None, cgroup: Cgroup) -> bool:
    """Whether every process in the cgroup is the container's (cgroups/ownership.py).

    So when corral created the cgroup, or recorded an init in a joined one: it put
    the init there right after finding it empty. In a joined cgroup without a
    recorded init (a create that failed or crashed early) nothing is killed.
    """
    return init is not None or cgroup.created_by_corral()


def kill(
    container_id: str,
    init: ProcessIdentity | None,
    monitor: ProcessIdentity | None,
    run_dir: str,
    cgroup: Cgroup,
    timeout: float,
) -> ExitStatus:
    """SIGKILL everything; the init's status, not OOM-attributed if this kill is what ended it."""
    killed_by_us = False
    if init is not None:
        pidfd = proc.open_pidfd(init)
        if pidfd is not None:
            try:
                signal_module.pidfd_send_signal(pidfd, signal_module.SIGKILL)
                killed_by_us = True
            except ProcessLookupError:
                pass
            finally:
                os.close(pidfd)
    if may_kill_in(init, cgroup) and cgroup.exists():
        cgroup.kill_all(timeout)
    if init is not None and not wait_for_exit(init, timeout):
        raise ExecutorError(f"container {container_id!r}: the init survived SIGKILL for {timeout:g} s")
    status = exit_status(run_dir, init, monitor, cgroup)
    if killed_by_us:
        status = ExitStatus(status.status, status.signal, oom_killed=False)
    return status


def destroy(
    container_id: str,
    init: ProcessIdentity | None,
    monitor: ProcessIdentity | None,
    run_dir: str,
    cgroup: Cgroup,
    interfaces: Sequence[HostInterface] = (),
) -> None:
    """Kill what is left in the cgroup, wait for the monitor, remove the cgroups, interfaces and run dir."""
    ours = may_kill_in(init, cgroup)
    if ours and cgroup.exists():
        cgroup.kill_all()
    wait_for_exit(monitor, MONITOR_GRACE)
    faults.point("destroy.killed")
    cgroup.destroy(kill=ours)  # also when only a parent corral created is left
    faults.point("destroy.cgroups-removed")
    if interfaces:
        from corral.executor.network import links

        links.tear_down(container_id, tuple(interfaces))
    import shutil  # here, not at the top: `create` never needs it (~2 ms of its imports: zlib, bz2, lzma)

    try:
        shutil.rmtree(run_dir)
    except FileNotFoundError:
        pass
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            raise ExecutorError(f"container {container_id!r}: cannot remove {run_dir}: {exc}") from exc
