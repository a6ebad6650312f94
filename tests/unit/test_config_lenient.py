"""Configs as real clients write them: unknown properties ignored with a warning (issue 11).

runtime-spec: "Runtimes MUST NOT generate an error if they encounter an unknown
property; instead they MUST ignore it". corral keeps its spelling hint as a
warning (logged on the "corral" logger and kept on `Config.warnings`), and an
opt-in strict mode keeps the refusal.
"""

from __future__ import annotations

import copy
import json
import logging
from typing import Any

import pytest

from corral.config import Config, Process
from corral.errors import ConfigError


def minimal() -> dict[str, Any]:
    return {
        "ociVersion": "1.0.2",
        "process": {"args": ["true"], "cwd": "/"},
        "root": {"path": "/rootfs"},
    }


def with_unknowns() -> dict[str, Any]:
    data = minimal()
    data["proccess"] = {"args": ["x"]}
    data["process"]["colour"] = "blue"
    data["linux"] = {"resources": {"pids": {"limit": 10}, "gpuShares": 3}}
    return data


UNKNOWN_PATHS = ("proccess", "process.colour", "linux.resources.gpuShares")


def test_unknown_properties_are_ignored_with_one_warning_each(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="corral"):
        config = Config.from_dict(with_unknowns())

    assert config.resources is not None and config.resources.pids is not None
    assert [w.split(":")[0] for w in config.warnings] == list(UNKNOWN_PATHS)
    assert all("not a key of the OCI runtime spec" in w and "check its spelling" in w for w in config.warnings)
    logged = [r.getMessage() for r in caplog.records if r.name == "corral" and r.levelno == logging.WARNING]
    for path in UNKNOWN_PATHS:
        assert sum(message.startswith(f"{path}:") for message in logged) == 1, logged


def test_the_log_names_the_file(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="corral"):
        Config.from_json(json.dumps(with_unknowns()), source="/b/config.json")

    assert any(r.getMessage().startswith("/b/config.json: proccess:") for r in caplog.records)


def test_strict_mode_keeps_the_refusal() -> None:
    for path in UNKNOWN_PATHS:
        data = minimal()
        data["linux"] = {"resources": {}}
        data["process"] = dict(data["process"])
        head, _, key = path.rpartition(".")
        target = data
        for part in head.split(".") if head else ():
            target = target[part]
        target[key] = 1
        with pytest.raises(ConfigError) as info:
            Config.from_dict(data, strict=True)
        assert str(info.value).startswith(f"{path}: not a key of the OCI runtime spec")
        assert "check its spelling" in str(info.value)
    with pytest.raises(ConfigError, match=r"^proccess: "):
        Config.from_json(json.dumps(with_unknowns()), strict=True)


def test_strict_from_bundle(tmp_path: Any) -> None:
    (tmp_path / "rootfs").mkdir()
    data = with_unknowns()
    data["root"]["path"] = "rootfs"
    (tmp_path / "config.json").write_text(json.dumps(data))

    assert len(Config.from_bundle(tmp_path).warnings) == 3
    with pytest.raises(ConfigError, match=r"config.json: proccess: not a key"):
        Config.from_bundle(tmp_path, strict=True)


def test_warnings_are_not_part_of_equality_and_round_trips_are_equal() -> None:
    config = Config.from_dict(with_unknowns())
    clean = Config.from_dict(config.to_dict())

    assert clean.warnings == ()
    assert clean == config and hash(clean) == hash(config)
    assert "proccess" not in config.to_dict()


def test_a_process_to_exec_ignores_unknown_keys_too(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="corral"):
        process = Process.from_dict({"args": ["sh"], "cwd": "/", "colour": 1})

    assert process.args == ("sh",)
    assert any(r.getMessage().startswith("process.colour: not a key") for r in caplog.records)
    with pytest.raises(ConfigError, match=r"^process.colour: not a key"):
        Process.from_dict({"args": ["sh"], "cwd": "/", "colour": 1}, strict=True)


def test_known_but_unsupported_keys_are_still_refused() -> None:
    data = minimal()
    data["linux"] = {"intelRdt": {"closID": "x"}}

    with pytest.raises(ConfigError, match=r"^linux.intelRdt: not supported yet$"):
        Config.from_dict(data)


def test_warnings_do_not_leak_between_parses() -> None:
    Config.from_dict(with_unknowns())

    assert Config.from_dict(minimal()).warnings == ()


# --------------------------------------------------------------------------- deprecated kernel memory


@pytest.mark.parametrize("key", ["kernel", "kernelTCP"])
def test_kernel_memory_limits_are_ignored_with_a_warning(key: str, caplog: pytest.LogCaptureFixture) -> None:
    """Decided at parse time, as runc >= 1.1 does: Linux 6.x dropped kernel-memory limits (and
    cgroup v2 never had them), and runtime-spec 1.2 deprecates both fields."""
    data = minimal()
    data["linux"] = {"resources": {"memory": {"limit": 1 << 30, key: 1 << 20}}}

    with caplog.at_level(logging.WARNING, logger="corral"):
        config = Config.from_dict(data, strict=True)

    assert config.resources is not None and config.resources.memory is not None
    assert config.resources.memory.limit == 1 << 30
    where = f"linux.resources.memory.{key}"
    assert [w for w in config.warnings if w.startswith(where)] == [
        f"{where}: deprecated by the OCI runtime spec and ignored (Linux no longer has kernel-memory limits)"
    ]
    assert any(r.getMessage().startswith(where) for r in caplog.records)
    assert key not in json.dumps(config.to_dict())


# --------------------------------------------------------------------------- LSM labels


def test_lsm_labels_are_read_and_written_back() -> None:
    data = minimal()
    data["process"]["selinuxLabel"] = "system_u:system_r:container_t:s0"
    data["process"]["apparmorProfile"] = "corral-default"
    data["linux"] = {"mountLabel": "system_u:object_r:container_file_t:s0"}

    config = Config.from_dict(data, strict=True)

    assert config.process.selinux_label == "system_u:system_r:container_t:s0"
    assert config.process.apparmor_profile == "corral-default"
    assert config.mount_label == "system_u:object_r:container_file_t:s0"
    assert Config.from_dict(config.to_dict()) == config
    assert config.warnings == ()


@pytest.mark.parametrize("path", ["process.selinuxLabel", "process.apparmorProfile", "linux.mountLabel"])
def test_lsm_labels_must_be_strings(path: str) -> None:
    data = minimal()
    data.setdefault("linux", {})
    section, key = path.split(".")
    data[section][key] = 3

    with pytest.raises(ConfigError, match=rf"^{path}: must be a non-empty string$"):
        Config.from_dict(data)


def labelled() -> Config:
    data = minimal()
    data["process"]["selinuxLabel"] = "s"
    data["process"]["apparmorProfile"] = "a"
    data["linux"] = {"mountLabel": "m"}
    return Config.from_dict(data)


def test_labels_are_ignored_with_a_warning_where_the_lsm_is_off(caplog: pytest.LogCaptureFixture) -> None:
    from corral.executor import lsm

    with caplog.at_level(logging.WARNING, logger="corral"):
        warnings = lsm.check_labels(labelled(), selinux=False, apparmor=False)

    assert warnings == [
        "linux.mountLabel: ignored (SELinux is not enabled on this host)",
        "process.selinuxLabel: ignored (SELinux is not enabled on this host)",
        "process.apparmorProfile: ignored (AppArmor is not enabled on this host)",
    ]
    assert [r.getMessage() for r in caplog.records if r.name == "corral"] == warnings
    assert lsm.check_labels(Config.from_dict(minimal()), selinux=True, apparmor=True) == []


def test_labels_are_refused_where_the_lsm_is_on() -> None:
    from corral.executor import lsm

    with pytest.raises(ConfigError, match=r"^linux.mountLabel: SELinux is enabled on this host and applying SELinux labels is not supported yet$"):
        lsm.check_labels(labelled(), selinux=True, apparmor=False)
    with pytest.raises(ConfigError, match=r"^process.apparmorProfile: AppArmor is enabled on this host and applying AppArmor profiles is not supported yet$"):
        lsm.check_labels(labelled(), selinux=False, apparmor=True)


def test_lsm_detection_reads_the_kernel_files(tmp_path: Any) -> None:
    from corral.executor import lsm

    enforce, enabled, lsms = tmp_path / "enforce", tmp_path / "enabled", tmp_path / "lsm"
    assert not lsm.selinux_enabled(str(enforce), str(lsms))
    assert not lsm.apparmor_enabled(str(enabled), str(lsms))
    enabled.write_text("N\n")
    lsms.write_text("lockdown,capability,landlock,yama")
    assert not lsm.apparmor_enabled(str(enabled), str(lsms))
    assert not lsm.selinux_enabled(str(enforce), str(lsms))
    enabled.write_text("Y\n")
    assert lsm.apparmor_enabled(str(enabled), str(lsms))
    lsms.write_text("capability,selinux")
    assert lsm.selinux_enabled(str(enforce), str(lsms))
    enforce.write_text("0")
    assert lsm.selinux_enabled(str(enforce), str(tmp_path / "none"))


# --------------------------------------------------------------------------- relative cgroupsPath


def test_a_relative_cgroups_path_is_accepted_and_placed_below_the_store() -> None:
    from corral.executor.linux import relative_cgroups_path, store_tag

    data = minimal()
    data["linux"] = {"cgroupsPath": "pods/web"}

    config = Config.from_dict(data)

    assert config.cgroups_path == "pods/web"
    assert relative_cgroups_path("/var/lib/corral", "pods/web") == f"/corral/{store_tag('/var/lib/corral')}/pods/web"
    assert relative_cgroups_path("/s", "./a//b/") == f"/corral/{store_tag('/s')}/a/b"


def test_a_hugepage_limit_that_is_not_a_whole_number_of_pages_is_refused() -> None:
    """The kernel rounds such a limit down without a word (4 MiB of 1 GB pages is 0)."""
    from corral.config import Config
    from corral.errors import ConfigError

    data = {"ociVersion": "1.0.2", "root": {"path": "/"}, "process": {"args": ["true"], "cwd": "/"},
            "linux": {"resources": {"hugepageLimits": [{"pageSize": "1GB", "limit": 4 << 20}]}}}
    with pytest.raises(ConfigError) as info:
        Config.from_dict(data)
    assert info.value.where == "linux.resources.hugepageLimits[0].limit"
    data["linux"]["resources"]["hugepageLimits"][0]["limit"] = 2 << 30  # type: ignore[index]
    assert Config.from_dict(data).resources.hugepage_limits[0].limit == 2 << 30
