"""Named fault points: where a controller can be killed to prove recovery.

When the environment variable CORRAL_FAULT names a point (read once, at import),
the process that reaches that point kills itself with SIGKILL there: no cleanup
handler, no `finally`, exactly like the OOM killer or a power cut would. When it
is unset, `point()` is one global lookup and one comparison.

Every point of every transition is listed in POINTS; tests/integration/
test_faults.py kills a controller at each of them and checks that a new Runtime
recovers the container to a state the kernel agrees with, leaving nothing behind.
"""

from __future__ import annotations

import os
import signal

#: Transition points, in the order they are reached.
POINTS: tuple[str, ...] = (
    # create
    "create.intent",  # the record says creating; nothing exists in the kernel yet
    "create.cgroups",  # the cgroups exist and have their limits; the monitor waits to move its child in
    "create.spawned",  # the init exists (PID known), setting up namespaces and rootfs
    "create.ready",  # the init is set up and waits on the exec fifo; not recorded yet
    "create.interface",  # a host-side veth exists (reached after each; only with a network section)
    "create.recorded",  # `created` is recorded; the monitor has not been told yet
    # start
    "start.intent",
    "start.fifo-opening",  # about to open the exec fifo
    "start.fifo-opened",  # the init has been released: the user's process runs
    "start.recorded",
    # pause / resume
    "pause.intent",
    "pause.frozen",  # the freezer was written and reached FROZEN
    "pause.recorded",
    "resume.intent",
    "resume.thawed",
    "resume.recorded",
    # signal / exec
    "signal.intent",
    "signal.sent",
    "exec.intent",
    "exec.spawned",  # the exec'd process runs in the container
    "exec.recorded",
    # update
    "update.intent",
    "update.written",  # the cgroup files hold the new limits; the record still the old ones
    "update.recorded",
    # destroy
    "destroy.intent",
    "destroy.killed",  # every process of the container is gone
    "destroy.cgroups-removed",
    "destroy.run-dir-removed",
    "destroy.recorded",
)

ENV = "CORRAL_FAULT"

_armed: str | None = os.environ.get(ENV) or None


def point(name: str) -> None:
    """Die here (SIGKILL) if CORRAL_FAULT names this point."""
    if _armed is not None and _armed == name:
        os.kill(os.getpid(), signal.SIGKILL)


def armed() -> str | None:
    return _armed
