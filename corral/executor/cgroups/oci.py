"""The OCI resource rules, once for both drivers: what each setting means as a value to write.

runtime-spec speaks v1's language (memory+swap, cpu shares, CFS quota and
period, blkio weight, -1 for unlimited). These functions hold every rule that
does not depend on the layout: what "unlimited" is, when swap is implicitly
unlimited, which swap values are meaningless, and runc's v1 → v2 conversions.
The drivers (v1.py, v2.py) decide only which file gets which value, in which
order the kernel wants them. Pure functions: nothing here touches a file, so
the rules are unit-tested without root.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple  # not dataclasses: `delete` opens the drivers, which import this

from corral.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover  (annotations only)
    from corral.config import CpuResources, HugepageLimit, MemoryResources

__all__ = [
    "UNLIMITED",
    "WHERE_MEMORY",
    "WHERE_CPU",
    "WHERE_PIDS",
    "WHERE_BLOCK_IO",
    "WHERE_DEVICES",
    "WHERE_HUGEPAGES",
    "hugetlb_name",
    "hugetlb_limits",
    "MemoryLimits",
    "memory_is_set",
    "memory_limits",
    "check_swap",
    "swap_max",
    "max_or",
    "pids_max",
    "cfs_is_set",
    "cpu_weight_from_shares",
    "io_weight_from_blkio",
    "cpu_max",
]

#: How cgroup files spell "no limit" (pids.max on both layouts, every v2 limit).
UNLIMITED = "max"

WHERE_MEMORY = "linux.resources.memory"
WHERE_CPU = "linux.resources.cpu"
WHERE_PIDS = "linux.resources.pids.limit"
WHERE_BLOCK_IO = "linux.resources.blockIO.weight"
WHERE_DEVICES = "linux.resources.devices"
WHERE_HUGEPAGES = "linux.resources.hugepageLimits"


class MemoryLimits(NamedTuple):
    """The memory settings to write, checked; each None means "leave the file alone"."""

    limit: int | None  # bytes, -1 unlimited
    swap: int | None  # OCI memory+swap (v1 memsw's meaning), bytes, -1 unlimited
    reservation: int | None  # bytes, -1 unlimited


def memory_is_set(mem: MemoryResources) -> bool:
    """Whether any memory setting is given (an empty memory block needs no controller)."""
    return mem.limit is not None or mem.reservation is not None or mem.swap is not None


def memory_limits(mem: MemoryResources, swap_accounting: bool, swap_file: str) -> MemoryLimits:
    """The memory settings to write, given whether the kernel accounts swap (`swap_file` exists).

    As runc: unlimited memory with swap unset means swap unlimited too (only
    where swap is accounted); a swap limit where it is not is refused, since it
    would silently not hold.
    """
    swap = mem.swap
    if swap is not None and not swap_accounting:
        raise ConfigError(
            f"{WHERE_MEMORY}.swap",
            f"swap accounting is off in this kernel ({swap_file} does not exist); boot with "
            "swapaccount=1 or leave swap unset",
        )
    if mem.limit == -1 and swap is None and swap_accounting:
        swap = -1
    check_swap(mem.limit, swap)
    return MemoryLimits(limit=mem.limit, swap=swap, reservation=mem.reservation)


def check_swap(memory: int | None, swap: int | None) -> None:
    """A finite OCI swap (memory+swap) needs a finite memory limit no larger than itself."""
    if swap is None or swap == -1:
        return
    where = f"{WHERE_MEMORY}.swap"
    if memory is None or memory == -1:
        raise ConfigError(where, "a swap limit needs a memory limit (OCI swap is memory+swap)")
    if swap < memory:
        raise ConfigError(where, f"{swap} is below the memory limit {memory}; OCI swap is memory+swap")


def swap_max(memory: int | None, swap: int | None) -> int | str | None:
    """OCI swap is memory+swap; v2 memory.swap.max is swap alone (runc's conversion)."""
    if memory == -1 and swap is None:
        return UNLIMITED  # unlimited memory with swap unset: both unlimited
    if swap is None:
        return None
    check_swap(memory, swap)
    if swap == -1:
        return UNLIMITED
    assert memory is not None  # check_swap refused a finite swap without a memory limit
    return swap - memory


def max_or(value: int) -> int | str:
    """OCI -1 (any negative) means unlimited, which v2 spells ``max``."""
    return UNLIMITED if value < 0 else value


def pids_max(limit: int) -> int | str:
    """OCI: 0 or -1 means unlimited (runc writes ``max`` for both)."""
    return limit if limit > 0 else UNLIMITED


def cfs_is_set(cpu: CpuResources) -> bool:
    """Whether a setting of the cpu controller (not cpuset) is given."""
    return bool(cpu.shares) or cpu.quota is not None or cpu.period is not None


def cpu_weight_from_shares(shares: int) -> int:
    """v1 cpu.shares (2..262144) to v2 cpu.weight (1..10000), runc's formula."""
    return 1 + ((shares - 2) * 9999) // 262142


def io_weight_from_blkio(weight: int) -> int:
    """v1 blkio weight (10..1000) to v2 io.weight (1..10000), runc's formula."""
    return 1 + ((weight - 10) * 9999) // 990


def cpu_max(quota: int | None, period: int | None) -> str | None:
    """v2 cpu.max as "$MAX $PERIOD"; one number alone updates only $MAX (kernel docs)."""
    if quota is None and period is None:
        return None
    max_part = UNLIMITED if quota is None or quota <= 0 else str(quota)
    return max_part if period is None else f"{max_part} {period}"


def hugetlb_name(page_size: str) -> str:
    """The kernel's name for a huge page size in hugetlb files: "2048KB" is "2MB".

    The kernel names each size in the largest unit that divides it evenly
    (mm/hugetlb_cgroup.c, mem_fmt), so an equal size spelled otherwise maps to the same file.
    """
    from corral.config.validate import page_size_bytes  # the config's; `delete` never gets here

    size = page_size_bytes(page_size)
    if size is None:  # validated with the config; kept for callers building Resources by hand
        raise ConfigError(WHERE_HUGEPAGES, f"{page_size!r} is not a page size such as 2MB")
    for unit, shift in (("GB", 30), ("MB", 20), ("KB", 10)):
        if size >= 1 << shift and size % (1 << shift) == 0:
            return f"{size >> shift}{unit}"
    return f"{size >> 10}KB"


def hugetlb_limits(limits: tuple[HugepageLimit, ...], suffix: str) -> list[tuple[str, str, int]]:
    """(where, file name, bytes) for each limit: ``hugetlb.<size>.<suffix>``.

    `suffix` is the layout's limit file: ``limit_in_bytes`` (v1) or ``max`` (v2).
    """
    return [
        (f"{WHERE_HUGEPAGES}[{i}]", f"hugetlb.{hugetlb_name(h.page_size)}.{suffix}", h.limit)
        for i, h in enumerate(limits)
    ]
