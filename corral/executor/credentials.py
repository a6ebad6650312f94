"""The process's credentials: rlimits, capabilities, user and groups, umask, no_new_privs.

Applied last before exec, in runc's order: drop the bounding set while still
privileged, keep capabilities across the uid change (PR_SET_KEEPCAPS), change
groups, gid and uid, then set the final effective/permitted/inheritable sets and
the ambient set.
"""

from __future__ import annotations

import errno
import os
import resource

from corral.config import Capabilities, Process
from corral.config.linux import CAPABILITIES, RLIMIT_UNLIMITED
from corral.executor import syscalls as sc


def last_capability() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
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


def apply_rlimits(process: Process) -> None:
    for rlimit in process.rlimits:
        resource.setrlimit(
            getattr(resource, rlimit.type), (_rlimit_value(rlimit.soft), _rlimit_value(rlimit.hard))
        )


def apply_oom_score_adj(process: Process) -> None:
    if process.oom_score_adj is not None:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write(str(process.oom_score_adj))


def drop_bounding_set(keep: int) -> None:
    for cap in range(last_capability() + 1):
        if not keep & (1 << cap):
            try:
                sc.prctl(sc.PR_CAPBSET_DROP, cap)
            except OSError as exc:
                if exc.errno != errno.EINVAL:  # a capability this kernel does not know
                    raise


def apply(process: Process) -> None:
    """Become the configured user with the configured capabilities (irreversible).

    `capabilities=None` (no `process.capabilities` in config.json) means none at all:
    the safe reading of an absent list.
    """
    apply_rlimits(process)
    apply_oom_score_adj(process)
    caps = process.capabilities or Capabilities((), (), (), (), ())
    drop_bounding_set(capability_mask(caps.bounding))
    user = process.user
    sc.prctl(sc.PR_SET_KEEPCAPS, 1)
    os.setgroups(list(user.additional_gids))
    os.setresgid(user.gid, user.gid, user.gid)
    os.setresuid(user.uid, user.uid, user.uid)
    sc.prctl(sc.PR_SET_KEEPCAPS, 0)
    sc.capset(
        effective=capability_mask(caps.effective),
        permitted=capability_mask(caps.permitted),
        inheritable=capability_mask(caps.inheritable),
    )
    sc.prctl(sc.PR_CAP_AMBIENT, sc.PR_CAP_AMBIENT_CLEAR_ALL)
    # The kernel raises an ambient capability only if it is permitted and
    # inheritable; `runc spec` lists ambient ones without inheritable, and runc
    # skips those rather than fail the container. So do we.
    raisable = set(caps.permitted) & set(caps.inheritable)
    for name in caps.ambient:
        if name in raisable:
            sc.prctl(sc.PR_CAP_AMBIENT, sc.PR_CAP_AMBIENT_RAISE, CAPABILITIES[name])
    if user.umask is not None:
        os.umask(user.umask)
    if process.no_new_privileges:
        sc.prctl(sc.PR_SET_NO_NEW_PRIVS, 1)
