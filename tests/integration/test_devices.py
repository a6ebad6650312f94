"""Device rules hold inside real containers, on both cgroup layouts of this host.

On v1 the rules are the devices controller's files; on v2 (the cgroup2 mount at
/sys/fs/cgroup/unified, which needs no controller for this) they are an eBPF
device program. Either way the container's root, which has CAP_MKNOD by
default, may make any node but open only what the rules allow.

The kernel's answers tell the two cases apart without a real device: an open
the device rules refuse fails with EPERM ("Operation not permitted") before
any driver is looked up; an open they allow of a number no driver has fails
with ENXIO ("No such device or address"). The host's own root disk is opened
too (its node made inside the container), as an attack would, where the host
lets even its own root open it (this VM does not: EPERM for everyone).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral import Runtime
from corral.config import DeviceRule, Resources
from corral.errors import CgroupError
from corral.executor.cgroups import V2Driver, bpf_devices
from corral.executor.interface import Stdio
from corral.executor.linux import LinuxExecutor
from tests.integration.conftest import checked_runtime, make_config, output_file

pytestmark = pytest.mark.root

V2_MOUNT = "/sys/fs/cgroup/unified"
EPERM = "Operation not permitted"
ENXIO = "No such device or address"
#: A character major no driver registers here (see /proc/devices); allowed, its open is ENXIO.
FREE_MAJOR = 240


@pytest.fixture(params=["v1", "v2"])
def layout_runtime(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Runtime]:
    if request.param == "v1":
        with checked_runtime(tmp_path) as rt:
            yield rt
        return
    if not os.path.exists(f"{V2_MOUNT}/cgroup.controllers"):
        pytest.skip(f"no cgroup2 mount at {V2_MOUNT} to hold the container")
    with checked_runtime(tmp_path, "-v2", LinuxExecutor(cgroups=V2Driver(V2_MOUNT))) as rt:
        yield rt


def host_root_disk() -> tuple[int, int]:
    """The block device holding the host's / (vda here); 8:0 (sda) if / is on no block device."""
    dev = os.stat("/").st_dev
    if os.major(dev) == 0:
        return 8, 0
    return os.major(dev), os.minor(dev)


def host_can_open(major: int, minor: int) -> bool:
    """Whether this (root) process may open the block device at all (a VM's sandbox may refuse)."""
    node = next(
        (p for p in Path("/dev").iterdir() if p.is_block_device() and p.stat().st_rdev == os.makedev(major, minor)),
        None,
    )
    if node is None:
        return False
    try:
        os.close(os.open(node, os.O_RDONLY | os.O_CLOEXEC))
    except OSError:
        return False
    return True


def free_major_is_free() -> bool:
    with open("/proc/devices") as f:
        return not any(line.split()[:1] == [str(FREE_MAJOR)] for line in f)


#: Each line: "<label>: <what the commands printed>"; stderr goes into the same line.
SCRIPT = """
probe() { label=$1; shift; printf '%s: %s\\n' "$label" "$("$@" 2>&1 | tr '\\n' ' ')"; }
probe null-write sh -c 'echo x > /dev/null && echo ok'
probe zero-read sh -c 'head -c1 /dev/zero | wc -c'
probe mknod-disk mknod /dev/hostdisk b @MAJOR@ @MINOR@
probe disk-read sh -c 'head -c1 /dev/hostdisk | wc -c'
probe disk-write sh -c ': >> /dev/hostdisk'
probe mknod-sda mknod /dev/sda-node b 8 0
probe sda-read head -c1 /dev/sda-node
mknod /dev/granted c @FREE@ 0; mknod /dev/other c @FREE@ 1
probe granted-read sh -c 'cat < /dev/granted'
probe granted-write sh -c 'echo x > /dev/granted'
probe other-read sh -c 'cat < /dev/other'
"""


def run_probes(rt: Runtime, bundle: Path, tmp_path: Path) -> dict[str, str]:
    if not free_major_is_free():
        pytest.skip(f"character major {FREE_MAJOR} is registered on this host")
    major, minor = host_root_disk()
    script = SCRIPT.replace("@MAJOR@", str(major)).replace("@MINOR@", str(minor)).replace("@FREE@", str(FREE_MAJOR))
    granted = DeviceRule(allow=True, type="c", major=FREE_MAJOR, minor=0, access="r")
    config = dataclasses.replace(
        make_config(bundle, "devs", "/bin/sh", "-c", script), resources=Resources(devices=(granted,))
    )
    fd, out = output_file(tmp_path, "devs.out")
    try:
        box = rt.create("devs", config, stdio=Stdio(stdout=fd, stderr=fd))
    finally:
        os.close(fd)
    if box.record.cgroup_paths.keys() == {""}:
        assert len(bpf_devices.attached(box.record.cgroup_paths[""])) == 1
    box.start()
    assert box.wait(timeout=30) == 0, out.read_text()
    box.destroy()
    probes = {}
    for line in out.read_text().splitlines():
        label, _, said = line.partition(": ")
        probes[label] = said.strip()
    return probes


def test_the_container_opens_only_what_its_rules_allow(
    layout_runtime: Runtime, bundle: Path, tmp_path: Path
) -> None:
    probes = run_probes(layout_runtime, bundle, tmp_path)
    # the defaults: null and zero work; mknod of anything is allowed
    assert probes["null-write"] == "ok", probes
    assert probes["zero-read"] == "1", probes
    assert probes["mknod-disk"] == "" and probes["mknod-sda"] == "", probes
    # a disk's node made inside the container: refused by the rules (allowed, 8:0 would be ENXIO here)
    assert EPERM in probes["sda-read"], probes
    # the host's own disk: refused, which shows only where the host itself may open it
    if host_can_open(*host_root_disk()):
        assert EPERM in probes["disk-read"] and EPERM in probes["disk-write"], probes
    # the config's rule "c 240:0 r": reading passes the rules (then no driver), writing does not
    assert ENXIO in probes["granted-read"], probes
    assert EPERM in probes["granted-write"], probes
    assert EPERM in probes["other-read"], probes


# --- what a failure says ------------------------------------------------------------------------


def test_a_program_the_verifier_refuses_is_a_cgroup_error_with_its_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bpf_devices, "program", lambda rules: bpf_devices.PROLOGUE)  # no exit
    with pytest.raises(CgroupError) as info:
        bpf_devices.install(str(tmp_path), (DeviceRule(allow=False),))
    message = str(info.value)
    assert str(tmp_path) in message and "BPF_PROG_LOAD" in message, message
    assert "verifier log:" in message and "last insn is not an exit or jmp" in message, message


def test_a_directory_that_is_no_cgroup_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CgroupError, match=f"{tmp_path}: not a cgroup2 directory"):
        bpf_devices.install(str(tmp_path), (DeviceRule(allow=False),))
