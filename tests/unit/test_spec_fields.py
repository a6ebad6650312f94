"""The runtime-spec 1.2 fields added for issue 11: read from JSON, written back the
same, refused with the JSON path where the kernel would refuse them; and what a config
without a mount namespace of its own may not ask for (executor/mountns.py)."""

from __future__ import annotations

from typing import Any

import pytest

from corral.cli.commands.spec import default_spec
from corral.config import Config, CPUAffinity, IOPriority, Personality, Scheduler, TimeOffset
from corral.config.process_attrs import cpu_set
from corral.errors import ConfigError
from corral.executor import mountns


def spec(**process: Any) -> dict[str, Any]:
    data = default_spec()
    data["process"]["terminal"] = False
    data["process"].update(process)
    return data


def test_new_fields_are_read_and_written_back() -> None:
    data = spec(
        ioPriority={"class": "IOPRIO_CLASS_BE", "priority": 4},
        scheduler={"policy": "SCHED_BATCH", "nice": 3, "flags": ["SCHED_FLAG_RESET_ON_FORK"]},
        execCPUAffinity={"initial": "0-1", "final": "1"},
    )
    data["domainname"] = "example.org"
    data["linux"]["personality"] = {"domain": "LINUX32", "flags": ["ADDR_NO_RANDOMIZE"]}
    data["linux"]["namespaces"].append({"type": "time"})
    data["linux"]["timeOffsets"] = {"monotonic": {"secs": 5, "nanosecs": 7}}
    config = Config.from_dict(data, bundle="/b")
    p = config.process
    assert p.io_priority == IOPriority("IOPRIO_CLASS_BE", 4)
    assert p.scheduler == Scheduler("SCHED_BATCH", nice=3, flags=("SCHED_FLAG_RESET_ON_FORK",))
    assert p.exec_cpu_affinity == CPUAffinity("0-1", "1")
    assert config.domainname == "example.org"
    assert config.personality == Personality("LINUX32", ("ADDR_NO_RANDOMIZE",))
    assert config.personality.persona == 0x0008 | 0x0040000
    assert dict(config.time_offsets) == {"monotonic": TimeOffset(5, 7)}
    assert Config.from_dict(config.to_dict(), bundle="/b") == config
    assert config.to_dict()["linux"]["timeOffsets"] == {"monotonic": {"secs": 5, "nanosecs": 7}}


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d["process"].update(ioPriority={"class": "IOPRIO_CLASS_X"}), "process.ioPriority.class: must be one of"),
        (lambda d: d["process"].update(ioPriority={"class": "IOPRIO_CLASS_BE", "priority": 8}), "process.ioPriority.priority"),
        (lambda d: d["process"].update(scheduler={"policy": "SCHED_ISO"}), "process.scheduler.policy: SCHED_ISO is not a policy Linux has"),
        (lambda d: d["process"].update(scheduler={"policy": "SCHED_OTHER", "priority": 3}), "process.scheduler.priority: only SCHED_FIFO and SCHED_RR"),
        (lambda d: d["process"].update(scheduler={"policy": "SCHED_OTHER", "runtime": 3}), "process.scheduler.runtime: only SCHED_DEADLINE"),
        (lambda d: d["process"].update(scheduler={"policy": "SCHED_OTHER", "nice": 20}), "process.scheduler.nice"),
        (lambda d: d["process"].update(execCPUAffinity={"final": "zero"}), "process.execCPUAffinity.final: must be a CPU list"),
        (lambda d: d["linux"].update(personality={"domain": "LINUX64"}), "linux.personality.domain: must be one of LINUX, LINUX32"),
        (lambda d: d["linux"].update(personality={"domain": "LINUX", "flags": ["NOPE"]}), "linux.personality.flags[0]: unknown personality flag"),
        (lambda d: d["linux"].update(timeOffsets={"monotonic": {"secs": 1}}), "linux.timeOffsets: need a new time namespace"),
        (lambda d: (d["linux"]["namespaces"].append({"type": "time"}), d["linux"].update(timeOffsets={"realtime": {"secs": 1}})), "linux.timeOffsets.realtime: not a clock"),
        (lambda d: d.update(domainname="x" * 65), "domainname: must be at most 64 bytes"),
    ],
)
def test_invalid_values_are_refused_naming_the_field(change: Any, message: str) -> None:
    data = spec()
    change(data)
    with pytest.raises(ConfigError) as info:
        Config.from_dict(data, bundle="/b")
    assert str(info.value).startswith(message), str(info.value)


def test_cpu_lists() -> None:
    assert cpu_set("0-2,5") == {0, 1, 2, 5}


def without_mount_namespace(path: str | None = None) -> dict[str, Any]:
    data = spec()
    data["linux"]["namespaces"] = [ns for ns in data["linux"]["namespaces"] if ns["type"] != "mount"]
    if path is not None:
        data["linux"]["namespaces"].append({"type": "mount", "path": path})
    data["mounts"] = []
    data["root"]["readonly"] = False
    for key in ("maskedPaths", "readonlyPaths"):
        data["linux"].pop(key)
    return data


@pytest.mark.parametrize("path, mode", [(None, mountns.NONE), ("/proc/1/ns/mnt", mountns.JOINED)])
def test_without_a_new_mount_namespace_what_needs_a_mount_is_refused(path: str | None, mode: str) -> None:
    base = without_mount_namespace(path)
    config = Config.from_dict(base, bundle="/b")
    assert mountns.mode(config) == mode
    mountns.check(config)  # nothing that needs a mount: fine
    for field, change in (
        ("mounts", lambda d: d.update(mounts=[{"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}])),
        ("root.readonly", lambda d: d["root"].update(readonly=True)),
        ("linux.devices", lambda d: d["linux"].update(devices=[{"path": "/dev/x", "type": "c", "major": 1, "minor": 3}])),
        ("linux.rootfsPropagation", lambda d: d["linux"].update(rootfsPropagation="rslave")),
    ):
        data = without_mount_namespace(path)
        change(data)
        with pytest.raises(ConfigError) as info:
            mountns.check(Config.from_dict(data, bundle="/b"))
        assert info.value.where == field


def test_a_new_mount_namespace_allows_everything() -> None:
    config = Config.from_dict(spec(), bundle="/b")
    assert mountns.mode(config) == mountns.NEW
    mountns.check(config)


def test_idmapped_mounts_are_read_and_checked() -> None:
    mapping = [{"containerID": 0, "hostID": 1000, "size": 10}]
    data = spec()
    data["mounts"].append({"destination": "/data", "type": "bind", "source": "/srv", "options": ["rbind"], "uidMappings": mapping, "gidMappings": mapping})
    config = Config.from_dict(data, bundle="/b")
    assert config.mounts[-1].is_idmapped
    assert Config.from_dict(config.to_dict(), bundle="/b") == config
    data["mounts"][-1].pop("gidMappings")
    with pytest.raises(ConfigError, match=r"^mounts\[6\].gidMappings: required with the other table"):
        Config.from_dict(data, bundle="/b")
    data["mounts"][-1].update(gidMappings=mapping, type="tmpfs", options=[])
    with pytest.raises(ConfigError, match=r"^mounts\[6\].uidMappings: an idmapped mount must be a bind mount"):
        Config.from_dict(data, bundle="/b")
