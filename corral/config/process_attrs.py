"""The newer per-process and per-container kernel attributes of runtime-spec 1.2.

`process.ioPriority`, `process.scheduler`, `process.execCPUAffinity`,
`linux.personality` and `linux.timeOffsets`: each a small frozen value, the
kernel's numbers for its names, and its check. They live apart from types.py
and validate.py because each is one syscall's worth of meaning (ioprio_set,
sched_setattr, sched_setaffinity, personality, /proc/self/timens_offsets) and
the executor applies them from this one table (executor/process_attrs.py).
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from corral.config.checks import check_instance, check_list, check_range, check_string, fail
from corral.config.types import FrozenMap, lists_to_tuples
from corral.records import record

#: ioprio classes (linux/ioprio.h); a level is 0 (highest) to 7.
IOPRIO_CLASSES: dict[str, int] = {"IOPRIO_CLASS_RT": 1, "IOPRIO_CLASS_BE": 2, "IOPRIO_CLASS_IDLE": 3}

#: Scheduling policies (linux/sched.h). SCHED_ISO is named by the spec but Linux never merged it.
SCHED_POLICIES: dict[str, int] = {
    "SCHED_OTHER": 0,
    "SCHED_FIFO": 1,
    "SCHED_RR": 2,
    "SCHED_BATCH": 3,
    "SCHED_IDLE": 5,
    "SCHED_DEADLINE": 6,
}
SCHED_FLAGS: dict[str, int] = {
    "SCHED_FLAG_RESET_ON_FORK": 0x01,
    "SCHED_FLAG_RECLAIM": 0x02,
    "SCHED_FLAG_DL_OVERRUN": 0x04,
    "SCHED_FLAG_KEEP_POLICY": 0x08,
    "SCHED_FLAG_KEEP_PARAMS": 0x10,
    "SCHED_FLAG_UTIL_CLAMP_MIN": 0x20,
    "SCHED_FLAG_UTIL_CLAMP_MAX": 0x40,
}

#: Execution domains (linux/personality.h) the spec names, and the flags one may add.
PERSONALITY_DOMAINS: dict[str, int] = {"LINUX": 0x0000, "LINUX32": 0x0008}
PERSONALITY_FLAGS: dict[str, int] = {
    "UNAME26": 0x0020000,
    "ADDR_NO_RANDOMIZE": 0x0040000,
    "FDPIC_FUNCPTRS": 0x0080000,
    "MMAP_PAGE_ZERO": 0x0100000,
    "ADDR_COMPAT_LAYOUT": 0x0200000,
    "READ_IMPLIES_EXEC": 0x0400000,
    "ADDR_LIMIT_32BIT": 0x0800000,
    "SHORT_INODE": 0x1000000,
    "WHOLE_SECONDS": 0x2000000,
    "STICKY_TIMEOUTS": 0x4000000,
    "ADDR_LIMIT_3GB": 0x8000000,
}

#: The clocks a time namespace offsets (time_namespaces(7)).
TIME_CLOCKS: tuple[str, ...] = ("monotonic", "boottime")

_CPU_LIST = re.compile(r"\d{1,5}(-\d{1,5})?(,\d{1,5}(-\d{1,5})?)*")


@record
class IOPriority:
    ioclass: str  # "class" in JSON
    priority: int = 0

    @property
    def value(self) -> tuple[int, int]:
        return IOPRIO_CLASSES[self.ioclass], self.priority


@record
class Scheduler:
    policy: str
    nice: int = 0
    priority: int = 0
    flags: tuple[str, ...] = ()
    runtime: int = 0
    deadline: int = 0
    period: int = 0

    def __post_init__(self) -> None:
        lists_to_tuples(self, "flags")

    @property
    def flag_bits(self) -> int:
        bits = 0
        for name in self.flags:
            bits |= SCHED_FLAGS[name]
        return bits


@record
class CPUAffinity:
    initial: str | None = None
    final: str | None = None


@record
class Personality:
    domain: str
    flags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        lists_to_tuples(self, "flags")

    @property
    def persona(self) -> int:
        value = PERSONALITY_DOMAINS[self.domain]
        for name in self.flags:
            value |= PERSONALITY_FLAGS[name]
        return value


@record
class TimeOffset:
    secs: int = 0
    nanosecs: int = 0


def cpu_set(cpus: str) -> set[int]:
    """A cpuset list ("0-2,5") as the set sched_setaffinity takes."""
    out: set[int] = set()
    for part in cpus.split(","):
        low, _, high = part.partition("-")
        out.update(range(int(low), int(high or low) + 1))
    return out


# --------------------------------------------------------------------------- validation


def validate_io_priority(p: object, w: str) -> None:
    check_instance(p, IOPriority, w)
    assert isinstance(p, IOPriority)
    if p.ioclass not in IOPRIO_CLASSES:
        fail(f"{w}.class", f"must be one of {', '.join(IOPRIO_CLASSES)}")
    check_range(p.priority, f"{w}.priority", 0, 7)


def validate_scheduler(s: object, w: str) -> None:
    """As runc's validator (sched_setattr(2)'s rules), so the kernel's EINVAL never is the first word."""
    check_instance(s, Scheduler, w)
    assert isinstance(s, Scheduler)
    if s.policy == "SCHED_ISO":
        fail(f"{w}.policy", "SCHED_ISO is not a policy Linux has")
    if s.policy not in SCHED_POLICIES:
        fail(f"{w}.policy", f"must be one of {', '.join(SCHED_POLICIES)}")
    check_range(s.nice, f"{w}.nice", -20, 19)
    check_range(s.priority, f"{w}.priority", 0, 99)
    if s.priority and s.policy not in ("SCHED_FIFO", "SCHED_RR"):
        fail(f"{w}.priority", "only SCHED_FIFO and SCHED_RR have a priority")
    for i, name in enumerate(check_list(s.flags, f"{w}.flags", "flag names")):
        if name not in SCHED_FLAGS:
            fail(f"{w}.flags[{i}]", f"unknown flag {name!r}")
    for name in ("runtime", "deadline", "period"):
        check_range(getattr(s, name), f"{w}.{name}", 0, 2**63 - 1)
        if getattr(s, name) and s.policy != "SCHED_DEADLINE":
            fail(f"{w}.{name}", "only SCHED_DEADLINE has a runtime, deadline and period")


def validate_cpu_affinity(a: object, w: str) -> None:
    check_instance(a, CPUAffinity, w)
    assert isinstance(a, CPUAffinity)
    for name in ("initial", "final"):
        value = getattr(a, name)
        if value is not None and not _CPU_LIST.fullmatch(check_string(value, f"{w}.{name}")):
            fail(f"{w}.{name}", 'must be a CPU list such as "0-3,7"')


def validate_personality(p: object, w: str) -> None:
    check_instance(p, Personality, w)
    assert isinstance(p, Personality)
    if p.domain not in PERSONALITY_DOMAINS:
        fail(f"{w}.domain", f"must be one of {', '.join(PERSONALITY_DOMAINS)}")
    for i, name in enumerate(check_list(p.flags, f"{w}.flags", "flag names")):
        if name not in PERSONALITY_FLAGS:
            fail(f"{w}.flags[{i}]", f"unknown personality flag {name!r}")


def validate_time_offsets(offsets: object, w: str) -> None:
    if not isinstance(offsets, Mapping):
        fail(w, "must be an object")
    for clock, offset in offsets.items():
        wi = f"{w}.{clock}"
        if clock not in TIME_CLOCKS:
            fail(wi, f"not a clock a time namespace offsets (only {', '.join(TIME_CLOCKS)})")
        check_instance(offset, TimeOffset, wi)
        check_range(offset.secs, f"{wi}.secs", -(2**62), 2**62)
        check_range(offset.nanosecs, f"{wi}.nanosecs", 0, 999_999_999)


def time_offsets_map(value: Mapping[str, TimeOffset]) -> FrozenMap:
    return value if isinstance(value, FrozenMap) else FrozenMap(value)


# --------------------------------------------------------------------------- JSON


def io_priority_to_dict(p: IOPriority) -> dict[str, Any]:
    return {"class": p.ioclass, "priority": p.priority}


def scheduler_to_dict(s: Scheduler) -> dict[str, Any]:
    out: dict[str, Any] = {"policy": s.policy}
    for name in ("nice", "priority", "runtime", "deadline", "period"):
        if getattr(s, name):
            out[name] = getattr(s, name)
    if s.flags:
        out["flags"] = list(s.flags)
    return out


def cpu_affinity_to_dict(a: CPUAffinity) -> dict[str, Any]:
    return {name: getattr(a, name) for name in ("initial", "final") if getattr(a, name) is not None}


def personality_to_dict(p: Personality) -> dict[str, Any]:
    out: dict[str, Any] = {"domain": p.domain}
    if p.flags:
        out["flags"] = list(p.flags)
    return out


def time_offsets_to_dict(offsets: Mapping[str, TimeOffset]) -> dict[str, Any]:
    return {clock: {"secs": o.secs, "nanosecs": o.nanosecs} for clock, o in offsets.items()}
