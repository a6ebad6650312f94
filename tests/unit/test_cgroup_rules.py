"""The OCI resource rules shared by the v1 and v2 cgroup drivers, without root.

The pure rules (oci.py) are checked directly; the drivers are checked through
`apply` on a fake cgroupfs in a temporary directory, with every write recorded,
so that what each OCI setting becomes (file, value, order) is pinned for both
layouts, including v2 on a host whose v2 mount has no resource controllers.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from corral.config import (
    BlockIOResources,
    Config,
    CpuResources,
    Device,
    DeviceRule,
    MemoryResources,
    PidsResources,
    Process,
    Resources,
    Root,
)
from corral.errors import ConfigError
from corral.executor.cgroups import _fs, bpf_devices, oci
from corral.executor.cgroups.devices import DEFAULT_ALLOWED, DENY_ALL, device_rule_line
from corral.executor.cgroups.v1 import Hierarchy, V1Cgroup
from corral.executor.cgroups.v2 import V2Cgroup

MiB = 1 << 20

V1_FILES = {
    "memory": ("memory.limit_in_bytes", "memory.memsw.limit_in_bytes", "memory.soft_limit_in_bytes"),
    "cpu,cpuacct": ("cpu.shares", "cpu.cfs_period_us", "cpu.cfs_quota_us"),
    "cpuset": ("cpuset.cpus", "cpuset.mems"),
    "pids": ("pids.max",),
    "blkio": ("blkio.weight",),
    "devices": ("devices.allow", "devices.deny"),
}
V2_FILES = (
    "memory.max", "memory.swap.max", "memory.low", "cpu.weight", "cpu.max", "cpuset.cpus",
    "cpuset.mems", "pids.max", "io.weight",
)
V2_CONTROLLERS = "cpuset cpu io memory pids"

FULL = Resources(
    memory=MemoryResources(limit=64 * MiB, swap=96 * MiB, reservation=-1),
    cpu=CpuResources(shares=1024, quota=50000, period=100000, cpus="0", mems="0"),
    pids=PidsResources(limit=-1),
    block_io=BlockIOResources(weight=500),
)

Writes = list[tuple[str, str]]


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Writes:
    """Every cgroup file write, as (path relative to tmp_path, value); a missing file is ENOENT."""
    log: Writes = []

    def write_file(path: str, value: str) -> None:
        if not os.path.exists(path):
            raise FileNotFoundError(2, "No such file or directory", path)
        Path(path).write_text(value)
        log.append((os.path.relpath(path, tmp_path), value))

    monkeypatch.setattr(_fs, "write_file", write_file)
    return log


Programs = list[tuple[str, tuple[DeviceRule, ...]]]


@pytest.fixture
def programs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Programs:
    """Every v2 device program installed, as (cgroup path relative to tmp_path, rules); no bpf(2)."""
    log: Programs = []

    def install(cgroup_dir: str, rules: tuple[DeviceRule, ...]) -> None:
        bpf_devices.program(rules)  # the rules compile
        log.append((os.path.relpath(cgroup_dir, tmp_path), tuple(rules)))

    monkeypatch.setattr(bpf_devices, "install", install)
    return log


def make_v1(tmp_path: Path, skip: tuple[str, ...] = ()) -> V1Cgroup:
    paths, hierarchies = {}, {}
    for key, files in V1_FILES.items():
        mountpoint = tmp_path / key
        directory = mountpoint / "corral" / "c"
        directory.mkdir(parents=True)
        for name in files:
            if name not in skip:
                (directory / name).touch()
        paths[key] = str(directory)
        hierarchies[key] = Hierarchy(key, str(mountpoint), frozenset(key.split(",")))
    if "memory.limit_in_bytes" not in skip:
        (tmp_path / "memory/corral/c/memory.limit_in_bytes").write_text("9223372036854771712\n")
    return V1Cgroup(paths, hierarchies)


def make_v2(tmp_path: Path, skip: tuple[str, ...] = ()) -> V2Cgroup:
    directory = tmp_path / "corral" / "c"
    directory.mkdir(parents=True)
    for level in (tmp_path, tmp_path / "corral", directory):
        (level / "cgroup.controllers").write_text(V2_CONTROLLERS + "\n")
    for name in V2_FILES:
        if name not in skip:
            (directory / name).touch()
    return V2Cgroup(str(directory), str(tmp_path))


def by_file(log: Writes) -> dict[str, str]:
    return {os.path.basename(path): value for path, value in log}


def config(resources: Resources | None = None, devices: tuple[Device, ...] = ()) -> Config:
    return Config(process=Process(args=("sh",)), root=Root("/r"), resources=resources, devices=devices)


# --- the pure rules -------------------------------------------------------------------------


@pytest.mark.parametrize(("limit", "value"), [(-1, "max"), (0, "max"), (1, 1), (512, 512)])
def test_pids_zero_and_minus_one_are_unlimited(limit: int, value: int | str) -> None:
    assert oci.pids_max(limit) == value


def test_max_or_spells_unlimited_as_max() -> None:
    assert oci.max_or(-1) == "max"
    assert oci.max_or(0) == 0
    assert oci.max_or(4096) == 4096


def test_swap_below_memory_is_refused() -> None:
    with pytest.raises(ConfigError) as info:
        oci.memory_limits(MemoryResources(limit=64 * MiB, swap=32 * MiB), True, "memory.swap.max")
    assert info.value.where == "linux.resources.memory.swap" and "below the memory limit" in str(info.value)


@pytest.mark.parametrize("limit", [None, -1])
def test_a_finite_swap_needs_a_finite_memory_limit(limit: int | None) -> None:
    with pytest.raises(ConfigError, match="needs a memory limit"):
        oci.memory_limits(MemoryResources(limit=limit, swap=32 * MiB), True, "memory.swap.max")


def test_swap_without_accounting_is_refused_naming_the_file() -> None:
    with pytest.raises(ConfigError) as info:
        oci.memory_limits(MemoryResources(limit=64 * MiB, swap=-1), False, "/cg/memory.memsw.limit_in_bytes")
    assert info.value.where == "linux.resources.memory.swap"
    assert "/cg/memory.memsw.limit_in_bytes does not exist" in str(info.value)


def test_unlimited_memory_makes_swap_unlimited_only_where_swap_is_accounted() -> None:
    unlimited = MemoryResources(limit=-1)
    assert oci.memory_limits(unlimited, True, "f") == oci.MemoryLimits(limit=-1, swap=-1, reservation=None)
    assert oci.memory_limits(unlimited, False, "f") == oci.MemoryLimits(limit=-1, swap=None, reservation=None)
    limited = MemoryResources(limit=64 * MiB, reservation=32 * MiB)
    assert oci.memory_limits(limited, True, "f") == oci.MemoryLimits(64 * MiB, None, 32 * MiB)


def test_memory_is_set() -> None:
    assert not oci.memory_is_set(MemoryResources())
    assert oci.memory_is_set(MemoryResources(reservation=0))


def test_v2_conversions_follow_runc() -> None:
    assert oci.swap_max(32 * MiB, 64 * MiB) == 32 * MiB
    assert oci.swap_max(32 * MiB, 32 * MiB) == 0
    assert oci.swap_max(32 * MiB, -1) == "max"
    assert oci.swap_max(-1, None) == "max"
    assert oci.swap_max(32 * MiB, None) is None
    assert oci.cpu_weight_from_shares(2) == 1
    assert oci.cpu_weight_from_shares(1024) == 39
    assert oci.cpu_weight_from_shares(262144) == 10000
    assert oci.io_weight_from_blkio(10) == 1
    assert oci.io_weight_from_blkio(500) == 4950
    assert oci.io_weight_from_blkio(1000) == 10000


@pytest.mark.parametrize(
    ("quota", "period", "value"),
    [(None, None, None), (50000, 100000, "50000 100000"), (-1, 100000, "max 100000"), (20000, None, "20000"),
     (None, 100000, "max 100000"), (0, None, "max")],
)
def test_cpu_max(quota: int | None, period: int | None, value: str | None) -> None:
    assert oci.cpu_max(quota, period) == value


def test_device_rule_line() -> None:
    assert device_rule_line(DeviceRule(allow=False)) == "a *:* rwm"
    assert device_rule_line(DeviceRule(allow=True, type="c", major=1, minor=3, access="rw")) == "c 1:3 rw"
    assert device_rule_line(DeviceRule(allow=True, type="c", major=136, access="rwm")) == "c 136:* rwm"


# --- v1: which file gets which value --------------------------------------------------------


def test_v1_files_and_values(tmp_path: Path, writes: Writes) -> None:
    make_v1(tmp_path).apply(FULL)
    assert writes == [
        ("memory/corral/c/memory.limit_in_bytes", str(64 * MiB)),  # current limit is higher: memory first
        ("memory/corral/c/memory.memsw.limit_in_bytes", str(96 * MiB)),  # OCI swap is memsw as it is
        ("memory/corral/c/memory.soft_limit_in_bytes", "-1"),
        ("cpu,cpuacct/corral/c/cpu.shares", "1024"),
        ("cpu,cpuacct/corral/c/cpu.cfs_period_us", "100000"),  # period before quota
        ("cpu,cpuacct/corral/c/cpu.cfs_quota_us", "50000"),
        ("cpuset/corral/c/cpuset.cpus", "0"),
        ("cpuset/corral/c/cpuset.mems", "0"),
        ("pids/corral/c/pids.max", "max"),
        ("blkio/corral/c/blkio.weight", "500"),
    ]


def test_v1_swap_goes_first_when_it_grows_past_the_current_limit(tmp_path: Path, writes: Writes) -> None:
    cgroup = make_v1(tmp_path)
    (tmp_path / "memory/corral/c/memory.limit_in_bytes").write_text(str(16 * MiB))
    cgroup.apply(Resources(memory=MemoryResources(limit=32 * MiB, swap=64 * MiB)))
    assert [os.path.basename(p) for p, _ in writes] == ["memory.memsw.limit_in_bytes", "memory.limit_in_bytes"]


def test_v1_unlimited_memory_unlimits_swap_where_accounted(tmp_path: Path, writes: Writes) -> None:
    make_v1(tmp_path).apply(Resources(memory=MemoryResources(limit=-1)))
    assert by_file(writes) == {"memory.limit_in_bytes": "-1", "memory.memsw.limit_in_bytes": "-1"}


def test_v1_without_swap_accounting(tmp_path: Path, writes: Writes) -> None:
    cgroup = make_v1(tmp_path, skip=("memory.memsw.limit_in_bytes",))
    cgroup.apply(Resources(memory=MemoryResources(limit=-1)))
    assert by_file(writes) == {"memory.limit_in_bytes": "-1"}
    with pytest.raises(ConfigError, match="memory.memsw.limit_in_bytes does not exist"):
        cgroup.apply(Resources(memory=MemoryResources(limit=32 * MiB, swap=64 * MiB)))


def test_v1_swap_below_memory_is_refused_before_any_write(tmp_path: Path, writes: Writes) -> None:
    with pytest.raises(ConfigError, match="below the memory limit"):
        make_v1(tmp_path).apply(Resources(memory=MemoryResources(limit=64 * MiB, swap=32 * MiB)))
    assert writes == []


def test_v1_blkio_falls_back_to_bfq(tmp_path: Path, writes: Writes) -> None:
    cgroup = make_v1(tmp_path, skip=("blkio.weight",))
    with pytest.raises(ConfigError) as info:
        cgroup.apply(Resources(block_io=BlockIOResources(weight=500)))
    assert info.value.where == "linux.resources.blockIO.weight"
    (tmp_path / "blkio/corral/c/blkio.bfq.weight").touch()
    cgroup.apply(Resources(block_io=BlockIOResources(weight=500)))
    assert writes == [("blkio/corral/c/blkio.bfq.weight", "500")]


def test_v1_missing_controller_names_the_setting(tmp_path: Path, writes: Writes) -> None:
    full = make_v1(tmp_path)
    partial = V1Cgroup({k: p for k, p in full.paths.items() if k != "pids"},
                       {k: h for k, h in full.hierarchies.items() if k != "pids"})
    with pytest.raises(ConfigError) as info:
        partial.apply(Resources(pids=PidsResources(limit=10)))
    assert info.value.where == "linux.resources.pids.limit" and "pids controller" in str(info.value)


def test_v1_container_gets_deny_all_then_its_rules_then_the_defaults(tmp_path: Path, writes: Writes) -> None:
    own = DeviceRule(allow=True, type="b", major=8, minor=0, access="r")
    node = Device(path="/dev/fuse", type="c", major=10, minor=229)
    make_v1(tmp_path).apply_config(config(Resources(devices=(own,)), devices=(node,)))
    expected = [DENY_ALL, own, DeviceRule(allow=True, type="c", major=10, minor=229, access="rwm"),
                *DEFAULT_ALLOWED]
    assert writes == [
        (f"devices/corral/c/devices.{'allow' if r.allow else 'deny'}", device_rule_line(r)) for r in expected
    ]


def test_v1_plain_apply_writes_only_the_rules_given(tmp_path: Path, writes: Writes) -> None:
    make_v1(tmp_path).apply(Resources(devices=(DeviceRule(allow=False),)))
    assert writes == [("devices/corral/c/devices.deny", "a *:* rwm")]


# --- v2: which file gets which value --------------------------------------------------------


def test_v2_files_and_values(tmp_path: Path, writes: Writes) -> None:
    make_v2(tmp_path).apply(FULL)
    assert writes == [
        ("corral/c/memory.max", str(64 * MiB)),
        ("corral/c/memory.swap.max", str(32 * MiB)),  # swap alone: memory+swap minus memory
        ("corral/c/memory.low", "max"),
        ("corral/c/cpu.weight", "39"),
        ("corral/c/cpu.max", "50000 100000"),
        ("corral/c/cpuset.cpus", "0"),
        ("corral/c/cpuset.mems", "0"),
        ("corral/c/pids.max", "max"),
        ("corral/c/io.weight", "4950"),
    ]


def test_v2_unlimited_memory_unlimits_swap_where_accounted(tmp_path: Path, writes: Writes) -> None:
    make_v2(tmp_path).apply(Resources(memory=MemoryResources(limit=-1)))
    assert by_file(writes) == {"memory.max": "max", "memory.swap.max": "max"}


def test_v2_without_swap_accounting(tmp_path: Path, writes: Writes) -> None:
    cgroup = make_v2(tmp_path, skip=("memory.swap.max",))
    cgroup.apply(Resources(memory=MemoryResources(limit=-1)))
    assert by_file(writes) == {"memory.max": "max"}
    with pytest.raises(ConfigError, match="memory.swap.max does not exist"):
        cgroup.apply(Resources(memory=MemoryResources(limit=32 * MiB, swap=64 * MiB)))


def test_v2_swap_below_memory_is_refused_before_any_write(tmp_path: Path, writes: Writes) -> None:
    with pytest.raises(ConfigError, match="below the memory limit"):
        make_v2(tmp_path).apply(Resources(memory=MemoryResources(limit=64 * MiB, swap=32 * MiB)))
    assert writes == []


def test_v2_io_weight_falls_back_to_bfq_unconverted(tmp_path: Path, writes: Writes) -> None:
    cgroup = make_v2(tmp_path, skip=("io.weight",))
    (tmp_path / "corral/c/io.bfq.weight").touch()
    cgroup.apply(Resources(block_io=BlockIOResources(weight=500)))
    assert writes == [("corral/c/io.bfq.weight", "500")]


def test_v2_device_rules_become_a_program_after_the_limits(
    tmp_path: Path, writes: Writes, programs: Programs
) -> None:
    cgroup = make_v2(tmp_path)
    rules = (DeviceRule(allow=False), DeviceRule(allow=True, type="c", major=1, minor=3))
    cgroup.apply(Resources(memory=MemoryResources(limit=64 * MiB), devices=rules))
    assert writes == [("corral/c/memory.max", str(64 * MiB))]  # no devices file on v2
    assert programs == [("corral/c", rules)]


def test_v2_container_gets_the_same_rule_list_as_v1(tmp_path: Path, writes: Writes, programs: Programs) -> None:
    own = DeviceRule(allow=True, type="b", major=8, minor=0, access="r")
    node = Device(path="/dev/fuse", type="c", major=10, minor=229)
    make_v2(tmp_path).apply_config(config(Resources(pids=PidsResources(limit=10), devices=(own,)), devices=(node,)))
    assert writes == [("corral/c/pids.max", "10")]
    expected = (DENY_ALL, own, DeviceRule(allow=True, type="c", major=10, minor=229, access="rwm"), *DEFAULT_ALLOWED)
    assert programs == [("corral/c", expected)]


def test_v2_plain_apply_without_device_rules_loads_no_program(
    tmp_path: Path, writes: Writes, programs: Programs
) -> None:
    make_v2(tmp_path).apply(Resources(pids=PidsResources(limit=10)))
    assert writes == [("corral/c/pids.max", "10")] and programs == []


def test_v2_missing_controller_names_the_setting(tmp_path: Path, writes: Writes) -> None:
    cgroup = make_v2(tmp_path)
    (tmp_path / "corral/c/cgroup.controllers").write_text("cpu\n")
    with pytest.raises(ConfigError) as info:
        cgroup.apply(Resources(pids=PidsResources(limit=10)))
    assert info.value.where == "linux.resources.pids.limit" and "pids controller" in str(info.value)


def test_no_config_resources_writes_nothing_but_the_device_rules(
    tmp_path: Path, writes: Writes, programs: Programs
) -> None:
    make_v2(tmp_path).apply_config(config())
    assert writes == []
    assert programs == [("corral/c", (DENY_ALL, *DEFAULT_ALLOWED))]

