"""The process's credentials: rlimits, capabilities, user and groups, umask, no_new_privs.

Applied last before exec, in runc's order: drop the bounding set while still
privileged, keep capabilities across the uid change (PR_SET_KEEPCAPS), change
groups, gid and uid, then set the final effective/permitted/inheritable sets and
the ambient set. Every call goes through a `Syscalls` object (`kernel=`, the
real one by default) so that unit tests can check that order without root.
"""

from __future__ import annotations

import errno
import resource

from corral.config import Capabilities, Process
from corral.config.linux import CAPABILITIES, RLIMIT_UNLIMITED
from corral.executor import syscalls as sc
from corral.executor.kernel import LINUX, Syscalls


def last_capability(*, kernel: Syscalls = LINUX) -> int:
    """Read through the verified procfs: a fake `cap_last_cap` reading 0 in the container's
    /proc (a volume or a bind over it) would leave the whole bounding set in place."""
    try:
        return int(kernel.proc_read("sys/kernel/cap_last_cap"))
    except OSError:
        return max(CAPABILITIES.values())


def capability_mask(names: tuple[str, ...]) -> int:
    mask = 0
    for name in names:
        mask |= 1 << CAPABILITIES[name]
    return mask


def _rlimit_value(value: int) -> int:
    """OCI writes "unlimited" as 2**64-1; Python's setrlimit wants RLIM_INFINITY."""
    return resource.RLIM_INFINITY if value >= RLIMIT_UNLIMITED or value > 2**63 - 1 else value


def apply_rlimits(process: Process, *, kernel: Syscalls = LINUX) -> None:
    for rlimit in process.rlimits:
        kernel.setrlimit(
            getattr(resource, rlimit.type), (_rlimit_value(rlimit.soft), _rlimit_value(rlimit.hard))
        )


def apply_oom_score_adj(process: Process, *, kernel: Syscalls = LINUX) -> None:
    if process.oom_score_adj is not None:
        kernel.proc_write("self/oom_score_adj", str(process.oom_score_adj))  # not the container's /proc


def drop_bounding_set(keep: int, *, kernel: Syscalls = LINUX) -> None:
    for cap in range(last_capability(kernel=kernel) + 1):
        if not keep & (1 << cap):
            try:
                kernel.prctl(sc.PR_CAPBSET_DROP, cap)
            except OSError as exc:
                if exc.errno != errno.EINVAL:  # a capability this kernel does not know
                    raise


def apply(process: Process, *, kernel: Syscalls = LINUX) -> None:
    """Become the configured user with the configured capabilities (irreversible).

    `capabilities=None` (no `process.capabilities` in config.json) means none at all:
    the safe reading of an absent list.
    """
    apply_rlimits(process, kernel=kernel)
    apply_oom_score_adj(process, kernel=kernel)
    caps = process.capabilities or Capabilities((), (), (), (), ())
    drop_bounding_set(capability_mask(caps.bounding), kernel=kernel)
    user = process.user
    kernel.prctl(sc.PR_SET_KEEPCAPS, 1)
    kernel.setgroups(list(user.additional_gids))
    kernel.setresgid(user.gid, user.gid, user.gid)
    kernel.setresuid(user.uid, user.uid, user.uid)
    kernel.prctl(sc.PR_SET_KEEPCAPS, 0)
    kernel.capset(
        effective=capability_mask(caps.effective),
        permitted=capability_mask(caps.permitted),
        inheritable=capability_mask(caps.inheritable),
    )
    kernel.prctl(sc.PR_CAP_AMBIENT, sc.PR_CAP_AMBIENT_CLEAR_ALL)
    # The kernel raises an ambient capability only if it is permitted and
    # inheritable; `runc spec` lists ambient ones without inheritable, and runc
    # skips those rather than fail the container. So do we.
    raisable = set(caps.permitted) & set(caps.inheritable)
    for name in caps.ambient:
        if name in raisable:
            kernel.prctl(sc.PR_CAP_AMBIENT, sc.PR_CAP_AMBIENT_RAISE, CAPABILITIES[name])
    if user.umask is not None:
        kernel.umask(user.umask)
    if process.no_new_privileges:
        kernel.prctl(sc.PR_SET_NO_NEW_PRIVS, 1)
