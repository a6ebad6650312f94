"""Container.update on the fake executor: runc update's merge, validation before any write,
the new resources recorded (config, journal), and nothing recorded when the kernel refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from corral import Config, Runtime
from corral.config import CpuResources, DeviceRule, HugepageLimit, MemoryResources, PidsResources, Resources
from corral.config.update import merge_resources, resources_from_json
from corral.errors import ConfigError
from tests.fakes import FakeExecutor
from tests.unit.conftest import make_runtime


def _running(runtime: Runtime, config: Config) -> None:
    runtime.create("c", config).start()


def test_merge_keeps_what_is_not_given() -> None:
    old = Resources(
        memory=MemoryResources(limit=1 << 26, reservation=1 << 25),
        cpu=CpuResources(shares=512, quota=50000, period=100000),
        pids=PidsResources(10),
        hugepage_limits=(HugepageLimit("2MB", 1 << 21), HugepageLimit("1GB", 0)),
    )
    new = Resources(memory=MemoryResources(limit=1 << 27), cpu=CpuResources(quota=20000),
                    hugepage_limits=(HugepageLimit("2MB", 1 << 22),))
    merged = merge_resources(old, new)
    assert merged.memory == MemoryResources(limit=1 << 27, reservation=1 << 25)
    assert merged.cpu == CpuResources(shares=512, quota=20000, period=100000)
    assert merged.pids == PidsResources(10)
    assert merged.hugepage_limits == (HugepageLimit("2MB", 1 << 22), HugepageLimit("1GB", 0))
    assert merge_resources(None, new).memory == MemoryResources(limit=1 << 27)


def test_device_rules_are_not_updatable() -> None:
    with pytest.raises(ConfigError) as raised:
        merge_resources(None, Resources(devices=(DeviceRule(allow=True),)))
    assert raised.value.where == "linux.resources.devices"
    own = (DeviceRule(allow=False, access="rwm"), DeviceRule(allow=True, type="c", major=1, minor=3, access="rwm"))
    with pytest.raises(ConfigError) as raised:  # other rules than the container's
        merge_resources(Resources(devices=own), Resources(devices=own[:1]))
    assert raised.value.where == "linux.resources.devices"


def test_the_containers_own_device_rules_are_no_change() -> None:
    """containerd's CRI sends the spec's whole linux.resources, devices included, on each update."""
    own = resources_from_json({"devices": [{"allow": False, "access": "rwm"},
                                           {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]})
    sent = resources_from_json({"devices": [{"allow": False, "access": "rwm"},
                                            {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"}],
                                "memory": {"limit": 1 << 26}})
    merged = merge_resources(own, sent)
    assert merged.devices == own.devices
    assert merged.memory is not None and merged.memory.limit == 1 << 26


def test_resources_json_is_checked_once_merged(runtime: Runtime, config: Config) -> None:
    """A file's values are validated with the container's (a swap alone may need its memory limit)."""
    assert resources_from_json({"pids": {"limit": 5}}).pids == PidsResources(5)
    with pytest.raises(ConfigError) as raised:
        resources_from_json({"pids": {}})
    assert "linux.resources.pids" in str(raised.value)
    _running(runtime, config)
    with pytest.raises(ConfigError) as raised:
        runtime.load("c").update(resources_from_json({"memory": {"limit": "lots"}}))
    assert "linux.resources.memory.limit" in str(raised.value)


def test_update_records_the_merged_resources(runtime: Runtime, config: Config) -> None:
    _running(runtime, config)
    box = runtime.load("c")
    box.update(Resources(pids=PidsResources(42), memory=MemoryResources(limit=1 << 26)))
    box.update(Resources(cpu=CpuResources(quota=20000, period=100000)))
    resources = runtime.load("c").config.resources
    assert resources is not None
    assert resources.pids == PidsResources(42)
    assert resources.memory == MemoryResources(limit=1 << 26)
    assert resources.cpu == CpuResources(quota=20000, period=100000)
    assert box.config.resources == resources  # the same Container sees its new config too
    rows = [e for e in box.history() if e.event == "update"]
    assert [(e.from_state, e.to_state) for e in rows] == [("running", "running")] * 2
    assert rows[0].detail["resources"]["pids"] == {"limit": 42}
    executor = runtime.context.executor
    assert isinstance(executor, FakeExecutor)
    assert executor.kernel("c")["resources"]["cpu"]["quota"] == 20000
    assert executor.kernel("c")["resources"]["pids"] == {"limit": 42}  # the merged set is written


def test_update_survives_a_new_runtime(tmp_path: Path, kernel_dir: Path, boot_id_file: Path, config: Config) -> None:
    with make_runtime(tmp_path, kernel_dir, boot_id_file) as runtime:
        _running(runtime, config)
        runtime.load("c").update(Resources(pids=PidsResources(7)))
    with make_runtime(tmp_path, kernel_dir, boot_id_file) as again:
        resources = again.load("c").config.resources
        assert resources is not None and resources.pids == PidsResources(7)


def test_an_invalid_value_changes_nothing(runtime: Runtime, config: Config) -> None:
    _running(runtime, config)
    box = runtime.load("c")
    before, journal = box.record, box.history()
    executor = runtime.context.executor
    assert isinstance(executor, FakeExecutor)
    calls = len(executor.calls)
    with pytest.raises(ConfigError) as raised:
        box.update(Resources(memory=MemoryResources(limit=1 << 26, swap=1 << 20)))
    assert raised.value.where == "linux.resources.memory.swap"
    assert "update_resources" not in executor.calls[calls:], "an invalid update reached the cgroups"
    after = runtime.load("c")
    assert after.record.config == before.config
    assert len(after.history()) == len(journal)


def test_a_kernel_refusal_records_nothing(runtime: Runtime, config: Config) -> None:
    _running(runtime, config)
    box = runtime.load("c")
    before = box.record
    executor = runtime.context.executor
    assert isinstance(executor, FakeExecutor)
    executor.fail_next("update_resources", ConfigError("linux.resources.memory.limit", "the kernel refused"))
    with pytest.raises(ConfigError):
        box.update(Resources(memory=MemoryResources(limit=1 << 20)))
    after = runtime.load("c").record
    assert after.config == before.config and after.state == "running"
    assert after.pending_event is None
    assert "update" not in [e.event for e in runtime.load("c").history()]
