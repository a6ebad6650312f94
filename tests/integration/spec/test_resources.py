"""`linux.resources`: each limit of the config `runc spec` writes, read back from the
cgroup file the kernel enforces (v1 or v2, whichever the host has), and from inside the
container for the one a process can feel (pids). The OOM kill, CPU quota and device
rules are shown working in tests/integration/test_resources.py and test_devices.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from corral import Runtime
from tests.integration.spec.helpers import run, spec_config

pytestmark = pytest.mark.root

V2 = Path("/sys/fs/cgroup/cgroup.controllers").exists()

#: (resources, v2 files, v1 files): what each limit is written as, in either layout.
CASES = {
    "memory": (
        {"memory": {"limit": 64 << 20, "reservation": 32 << 20}},
        {"memory.max": str(64 << 20), "memory.low": str(32 << 20)},
        {"memory.limit_in_bytes": str(64 << 20), "memory.soft_limit_in_bytes": str(32 << 20)},
    ),
    "cpu-quota": (
        {"cpu": {"quota": 50000, "period": 100000}},
        {"cpu.max": "50000 100000"},
        {"cpu.cfs_quota_us": "50000", "cpu.cfs_period_us": "100000"},
    ),
    "pids": ({"pids": {"limit": 42}}, {"pids.max": "42"}, {"pids.max": "42"}),
    "cpuset": ({"cpu": {"cpus": "0", "mems": "0"}}, {"cpuset.cpus": "0", "cpuset.mems": "0"}, {"cpuset.cpus": "0", "cpuset.mems": "0"}),
}


def read_in(paths: dict[str, str], name: str) -> str:
    """The file `name` in whichever of the container's cgroups (one per v1 hierarchy) has it."""
    for path in paths.values():
        if (Path(path) / name).exists():
            return (Path(path) / name).read_text().strip()
    raise AssertionError(f"no cgroup of {dict(paths)} has {name}")


@pytest.mark.parametrize("case", sorted(CASES))
def test_limits_are_in_the_containers_cgroup(runtime: Runtime, bundle: Path, case: str) -> None:
    resources, v2_files, v1_files = CASES[case]
    files = v2_files if V2 else v1_files

    def change(data: dict[str, Any]) -> None:
        data["linux"].setdefault("resources", {}).update(resources)

    box = runtime.create(f"limits-{case}", spec_config(bundle, "sleep", "30", change=change))
    try:
        paths = dict(box.record.cgroup_paths)
        assert {name: read_in(paths, name) for name in files} == files
        assert str(box.pid) in read_in(paths, "cgroup.procs").split()
    finally:
        box.destroy(force=True)


def test_the_pids_limit_is_felt_inside(runtime: Runtime, bundle: Path, tmp_path: Path) -> None:
    def change(data: dict[str, Any]) -> None:
        data["linux"].setdefault("resources", {})["pids"] = {"limit": 3}

    script = "for i in 1 2 3 4 5; do sleep 5 & done"
    status, out = run(runtime, "pids", spec_config(bundle, "sh", "-c", script, change=change), tmp_path)
    assert "can't fork" in out, (status, out)
