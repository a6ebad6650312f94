"""`update` on live containers: the limits reach the cgroup files on the host, a value the
kernel refuses leaves every file (and the record) as it was, and the CLI's flags and
--resources file do the same as the library."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from corral import Runtime
from corral.config import CpuResources, MemoryResources, PidsResources, Resources
from corral.errors import ConfigError
from tests.integration.conftest import make_config
from tests.integration.test_cli import CGROUP_PARENT, Cli, cli, make_bundle  # noqa: F401 - cli is a fixture

pytestmark = pytest.mark.root

ROOT = Path("/sys/fs/cgroup")
V2 = (ROOT / "cgroup.controllers").exists()
MiB = 1 << 20

if V2:  # pragma: no cover - this suite's hosts are v1; the v2 file names for the record
    FILES = {"memory": "memory.max", "pids": "pids.max", "quota": "cpu.max"}
else:
    FILES = {"memory": "memory/{}/memory.limit_in_bytes", "pids": "pids/{}/pids.max", "quota": "cpu/{}/cpu.cfs_quota_us"}


def read(cgroup: str, what: str) -> str:
    return (ROOT / FILES[what].format(cgroup.lstrip("/"))).read_text().strip()


def files(cgroup: str) -> dict[str, str]:
    return {what: read(cgroup, what) for what in FILES}


START = Resources(
    memory=MemoryResources(limit=64 * MiB), cpu=CpuResources(quota=50000, period=100000), pids=PidsResources(50)
)


def test_update_through_the_library(runtime: Runtime, bundle: Path) -> None:
    box = runtime.create("upd", make_config(bundle, "upd", "sleep", "1000", resources=START))
    box.start()
    cgroup = f"{CGROUP_PARENT}/upd"
    assert files(cgroup) == {"memory": str(64 * MiB), "pids": "50", "quota": "50000"}
    box.update(Resources(memory=MemoryResources(limit=48 * MiB), cpu=CpuResources(quota=30000), pids=PidsResources(20)))
    assert files(cgroup) == {"memory": str(48 * MiB), "pids": "20", "quota": "30000"}
    recorded = runtime.load("upd").config.resources
    assert recorded is not None
    assert recorded.memory == MemoryResources(limit=48 * MiB)
    assert recorded.cpu == CpuResources(quota=30000, period=100000)  # the period stays: runc's merge
    assert recorded.pids == PidsResources(20)
    assert box.history()[-1].event == "update"
    box.pause()  # paused containers are updatable too (runc's rule)
    box.update(Resources(pids=PidsResources(25)))
    assert read(cgroup, "pids") == "25"
    box.resume()
    box.destroy(force=True)


@pytest.mark.skipif(V2, reason="v1 refuses a cpuset outside the parent's with EINVAL at the write")
def test_a_refused_value_changes_nothing(runtime: Runtime, bundle: Path) -> None:
    """The memory limit and the quota are written before cpuset.cpus is refused: both go back."""
    box = runtime.create("upr", make_config(bundle, "upr", "sleep", "1000", resources=START))
    box.start()
    cgroup = f"{CGROUP_PARENT}/upr"
    before, record = files(cgroup), box.record
    with pytest.raises(ConfigError) as raised:
        box.update(Resources(memory=MemoryResources(limit=40 * MiB), cpu=CpuResources(quota=20000, cpus="99"),
                             pids=PidsResources(9)))
    assert raised.value.where == "linux.resources.cpu.cpus"
    assert files(cgroup) == before
    assert runtime.load("upr").record.config == record.config
    assert "update" not in [e.event for e in box.history()]
    box.destroy(force=True)


@pytest.mark.skipif(V2, reason="v2 reclaims (and OOM-kills) instead of refusing the limit")
def test_a_memory_limit_below_what_cannot_be_reclaimed(runtime: Runtime, bundle: Path) -> None:
    """Without swap, tmpfs pages cannot be reclaimed: v1 says EBUSY, the error names the field."""
    box = runtime.create("upm", make_config(bundle, "upm", "sleep", "1000", resources=START))
    box.start()
    status, _, err = box.exec_run(["dd", "if=/dev/zero", "of=/dev/shm/fill", "bs=1M", "count=24"], timeout=30)
    assert status == 0, err
    cgroup = f"{CGROUP_PARENT}/upm"
    with pytest.raises(ConfigError) as raised:
        box.update(Resources(memory=MemoryResources(limit=4 * MiB), pids=PidsResources(9)))
    assert raised.value.where == "linux.resources.memory.limit"
    assert read(cgroup, "memory") == str(64 * MiB) and read(cgroup, "pids") == "50"
    assert box.state.value == "running"
    box.destroy(force=True)


def test_update_through_the_cli(cli: Cli, rootfs_template: Path) -> None:
    bundle = make_bundle(cli, rootfs_template, "up", "sleep", "1000")
    cli("run", "--detach", "--bundle", str(bundle), "up")
    cgroup = f"{CGROUP_PARENT}/cli-up"
    cli("update", "--memory", "64m", "--pids-limit", "30", "--cpu-quota", "40000", "--cpu-period", "100000", "up")
    assert files(cgroup) == {"memory": str(64 * MiB), "pids": "30", "quota": "40000"}
    resources = {"memory": {"limit": 32 * MiB}, "pids": {"limit": 12}}
    cli("update", "--resources", "-", "up", input=json.dumps(resources).encode(), stdin=None)
    assert files(cgroup) == {"memory": str(32 * MiB), "pids": "12", "quota": "40000"}
    refused = cli("update", "--cpuset-cpus", "99", "--memory", "16m", "up", check=False)
    assert refused.returncode == 1 and "linux.resources.cpu.cpus" in cli.errors()[-1]
    assert files(cgroup) == {"memory": str(32 * MiB), "pids": "12", "quota": "40000"}
    bad = cli("update", "--memory", "lots", "up", check=False)
    assert bad.returncode == 1 and "--memory" in bad.stderr
    cli("delete", "--force", "up")


def test_recovery_puts_back_the_recorded_limits(tmp_path: Path, bundle: Path) -> None:
    """A controller killed between writing the new limits and recording them: the record's win."""
    from corral import faults
    from tests.integration.conftest import checked_runtime
    from tests.integration.fault_controller import UPDATED_PIDS_LIMIT
    from tests.integration.test_recovery import run_controller

    cgroup = f"{CGROUP_PARENT}/upc"
    with checked_runtime(tmp_path) as runtime:
        runtime.create("upc", make_config(bundle, "upc", "sleep", "1000", resources=START)).start()
        code = run_controller(runtime, "upc", "update", fault="update.written")
        assert code == -9 and faults.POINTS.index("update.written") > 0
        assert read(cgroup, "pids") == str(UPDATED_PIDS_LIMIT)  # written, never recorded
        with Runtime(runtime.root, run_root=runtime.run_root) as again:  # opening it recovers
            box = again.load("upc")
            assert read(cgroup, "pids") == "50"
            record = box.record
            assert record.pending_event is None and "update interrupted" in (record.last_error or "")
            assert box.config.resources == START
