"""The kernel attributes of a process the spec sets just before it runs.

`linux.personality`, `process.ioPriority`, `process.scheduler` (all three kept
across execve), `process.execCPUAffinity` (an exec'd process only, as the spec
says: `initial` before it joins the container's cgroup, `final` once it has) and
`linux.timeOffsets` (written to /proc/self/timens_offsets between unshare and the
first fork: CLONE_NEWTIME puts only the children in the new namespace, and the
kernel takes offsets only while no process lives in it).

Applied before the credentials drop: a real-time policy needs CAP_SYS_NICE, an
IOPRIO_CLASS_RT one CAP_SYS_ADMIN, as runc orders them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from corral.config import Config, Process
from corral.config.process_attrs import SCHED_POLICIES, TimeOffset, cpu_set
from corral.executor import procfs
from corral.executor import syscalls as sc


def apply(process: Process, config: Config | None) -> None:
    """Personality (the container's), I/O priority and scheduler of the calling process."""
    if config is not None and config.personality is not None:
        sc.personality(config.personality.persona)
    if process.io_priority is not None:
        sc.ioprio_set(*process.io_priority.value)
    s = process.scheduler
    if s is not None:
        sc.sched_setattr(
            SCHED_POLICIES[s.policy],
            flags=s.flag_bits,
            nice=s.nice,
            priority=s.priority,
            runtime=s.runtime,
            deadline=s.deadline,
            period=s.period,
        )


def set_affinity(cpus: str | None) -> None:
    if cpus is not None:
        os.sched_setaffinity(0, cpu_set(cpus))


def write_time_offsets(offsets: Mapping[str, TimeOffset]) -> None:
    """One line per clock ("monotonic 10 0"), through the verified procfs."""
    text = "".join(f"{clock} {o.secs} {o.nanosecs}\n" for clock, o in offsets.items())
    if text:
        procfs.write("self/timens_offsets", text)
