"""`corral spec --rootless` writes runc's rootless spec, and corral runs it (here as root: a
container in its own user namespace with root mapped to the caller, no network namespace,
the host's /sys bound read-only)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.integration.test_cli import CGROUP_PARENT, Cli, cli  # noqa: F401 - cli is a fixture

pytestmark = pytest.mark.root

SCRIPT = (
    "cat /proc/self/uid_map /proc/self/gid_map; readlink /proc/self/ns/user; readlink /proc/self/ns/net; "
    "awk '$5 == \"/sys\"' /proc/self/mountinfo; touch /sys/x 2>/dev/null && echo sys-writable; id -u"
)


def test_spec_rootless_runs(cli: Cli, rootfs_template: Path) -> None:
    bundle = cli.tmp_path / "bundle-rl"
    bundle.mkdir()
    cli("spec", "--rootless", "--bundle", str(bundle))
    config = json.loads((bundle / "config.json").read_text())
    assert config["linux"]["uidMappings"] == [{"containerID": 0, "hostID": os.geteuid(), "size": 1}]
    assert config["linux"]["gidMappings"] == [{"containerID": 0, "hostID": os.getegid(), "size": 1}]
    shutil.copytree(rootfs_template, bundle / "rootfs", symlinks=True)
    config["process"]["args"] = ["sh", "-c", SCRIPT]
    config["process"]["terminal"] = False
    config["linux"]["cgroupsPath"] = f"{CGROUP_PARENT}/cli-rl"
    (bundle / "config.json").write_text(json.dumps(config))
    out = cli("run", "--bundle", str(bundle), "rl").stdout.splitlines()
    assert out[0].split() == ["0", str(os.geteuid()), "1"] and out[1].split() == ["0", str(os.getegid()), "1"]
    assert out[2] != os.readlink("/proc/self/ns/user")  # a user namespace of its own
    assert out[3] == os.readlink("/proc/self/ns/net")  # and the host's network namespace
    fields = out[4].split()
    assert fields[4] == "/sys" and "ro" in fields[5].split(",") and fields[-2] == "sysfs", out[4]  # the host's, bound ro
    assert "sys-writable" not in out and out[-1] == "0"
