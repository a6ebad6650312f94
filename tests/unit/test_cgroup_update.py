"""Cgroup.update on a fake cgroupfs (temporary files): a refused write puts back every file
already written, on both layouts; the device rules are never rewritten by an update."""

from __future__ import annotations

from pathlib import Path

import pytest

from corral.config import CpuResources, DeviceRule, MemoryResources, PidsResources, Resources
from corral.errors import ConfigError
from corral.executor.cgroups.base import Cgroup
from tests.unit.test_cgroup_rules import make_v1, make_v2

MiB = 1 << 20
NEW = Resources(
    memory=MemoryResources(limit=32 * MiB), cpu=CpuResources(quota=20000, cpus="1"), pids=PidsResources(5)
)


def _v1(tmp_path: Path) -> tuple[Cgroup, dict[str, Path]]:
    cgroup = make_v1(tmp_path, skip=("cpuset.cpus",))
    d = {key: tmp_path / key / "corral" / "c" for key in ("memory", "cpu,cpuacct", "cpuset", "pids")}
    files = {
        "limit": d["memory"] / "memory.limit_in_bytes",
        "quota": d["cpu,cpuacct"] / "cpu.cfs_quota_us",
        "pids": d["pids"] / "pids.max",
        "cpus": d["cpuset"] / "cpuset.cpus",
    }
    return cgroup, files


def _v2(tmp_path: Path) -> tuple[Cgroup, dict[str, Path]]:
    cgroup = make_v2(tmp_path, skip=("cpuset.cpus",))
    d = tmp_path / "corral" / "c"
    return cgroup, {"limit": d / "memory.max", "quota": d / "cpu.max", "pids": d / "pids.max", "cpus": d / "cpuset.cpus"}


@pytest.mark.parametrize("layout", [_v1, _v2], ids=["v1", "v2"])
def test_a_refusal_puts_back_what_was_written(tmp_path: Path, layout: object) -> None:
    cgroup, files = layout(tmp_path)  # type: ignore[operator]
    files["limit"].write_text("67108864\n")
    files["quota"].write_text("50000\n")
    files["pids"].write_text("50\n")
    files["cpus"].mkdir()  # opening it for writing fails (EISDIR): the kernel's refusal, here
    with pytest.raises(ConfigError) as raised:
        cgroup.update(NEW)
    assert raised.value.where == "linux.resources.cpu.cpus"
    # (write(2) without truncation, as on cgroupfs: a plain file keeps a longer old tail; strip it)
    assert files["limit"].read_text().strip() == "67108864"
    assert files["quota"].read_text().strip() == "50000"
    assert files["pids"].read_text() == "50\n"  # after the refusal: never written
    files["cpus"].rmdir()
    files["cpus"].touch()
    files["pids"].write_text("")
    cgroup.update(NEW)
    assert files["pids"].read_text() == "5" and files["cpus"].read_text() == "1"


def test_device_rules_are_left_alone(tmp_path: Path) -> None:
    cgroup = make_v1(tmp_path)
    allow = tmp_path / "devices" / "corral" / "c" / "devices.allow"
    cgroup.update(Resources(pids=PidsResources(5), devices=(DeviceRule(allow=True),)))
    assert allow.read_text() == ""
