"""Closing every descriptor a process does not need before it forks into a container.

The spawn helper, the monitor and the init are forks, not fresh programs: they
inherit whatever their parent held. corral opens its own descriptors
close-on-exec, but a descriptor that is not (one received with SCM_RIGHTS, one
a future change forgets to flag) would reach the container's program, and a
directory among them is a way out of the rootfs (CVE-2024-21626). So each hop
closes everything but a short keep-list, as runc and crun do with close_range.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterable


def _limit() -> int:
    """Above any descriptor this process holds. os.closerange is one close_range(2); where a
    seccomp filter denies that, CPython falls back to one close(2) per number: keep it bounded."""
    return max(os.sysconf("SC_OPEN_MAX"), 1 << 16)


def place_extra(extra: list[int], keep: list[int]) -> list[int]:
    """Make `extra` this process's 3, 4, ... (inheritable: the program keeps them across execve).

    What else must stay open (`keep`, close-on-exec) first moves above that range,
    so that no placement closes it; returns where each of `keep` now is. The
    caller then closes everything else (close_all_except).
    """
    low = 3 + len(extra)
    moved = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, low) for fd in keep]
    lifted = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, low) for fd in extra]
    for fd in {*keep, *extra}:
        os.close(fd)
    for target, fd in enumerate(lifted, start=3):
        os.dup2(fd, target, inheritable=True)
        os.close(fd)
    return moved


def close_all_except(keep: Iterable[int]) -> None:
    """Close every descriptor of this process that is not in `keep`."""
    low = 0
    for fd in sorted(set(keep)):
        if fd > low:
            os.closerange(low, fd)
        low = max(low, fd + 1)
    os.closerange(low, max(low, _limit()))
