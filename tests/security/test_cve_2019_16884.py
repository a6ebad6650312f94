"""CVE-2019-16884, CVE-2019-19921, CVE-2023-27561/28642 (runc): a `/proc` that is not the container's procfs.

runc mounted procfs on `<rootfs>/proc` by path and wrote LSM labels and
sysctls through `/proc/...` in the container: an image whose `/proc` is a
symlink, or a volume mounted over `/proc`, sent the proc mount elsewhere or
turned the writes into writes to a fake file. corral resolves mount targets in
the rootfs (openat2 RESOLVE_IN_ROOT) and must write sysctls to a real procfs.

Checked on the host: the host mount table as a set (while the container runs:
nothing of its set-up appears in the host's namespace; after destroy: the same
set as before), a host directory the symlink names (its listing), and the fake
`sys/net/...` file of a volume over `/proc` (its bytes).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

import pytest

from corral import Mount, Runtime
from corral.errors import CorralError
from corral.types import Stdio
from tests.integration.conftest import make_config, output_file
from tests.security.cli import CorralCli
from tests.security.host import host_mounts, new_host_mounts

pytestmark = pytest.mark.root

SYSCTL = "net.ipv4.ip_forward"
FAKE = b"fake sysctl file\n"


def _listing(path: Path) -> dict[str, tuple[int, int]]:
    found = {}
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            found[os.path.relpath(full, path)] = (st.st_mode, st.st_size if not os.path.isdir(full) else 0)
    return found


def _plant_proc(bundle: Path, target: str) -> None:
    proc = bundle / "rootfs" / "proc"
    if proc.is_symlink():
        proc.unlink()
    elif proc.exists():
        shutil.rmtree(proc)
    proc.symlink_to(target)
    (bundle / "rootfs" / "tmp").mkdir(exist_ok=True)


@pytest.mark.parametrize(
    "target",
    ["/tmp", "tmp", "HOST", "../../../../../../../..HOST", "/tmp/../../../../..HOST", "/"],
    ids=["abs-inside", "rel-inside", "host-abs", "host-relative-up", "host-tmp-up", "root"],
)
def test_a_symlinked_proc_mounts_procfs_inside_the_rootfs(
    runtime: Runtime, bundle: Path, tmp_path: Path, target: str
) -> None:
    host_dir = tmp_path / "host-dir"
    host_dir.mkdir()
    (host_dir / "keep").write_bytes(b"host\n")
    _plant_proc(bundle, target.replace("HOST", str(host_dir)))
    config = make_config(bundle, "proclink", "/bin/sh", "-c", "cat /proc/self/status | head -1; sleep 100")
    config = dataclasses.replace(config, sysctl={SYSCTL: "1"})
    listing_before = _listing(host_dir)
    mounts_before = host_mounts()
    fd, out = output_file(tmp_path)
    try:
        box = runtime.create("proclink", config, stdio=Stdio(stdout=fd, stderr=fd))
    except CorralError as exc:
        box = None
        refused = str(exc)
    finally:
        os.close(fd)
    if box is not None:
        refused = ""
        box.start()
        assert new_host_mounts(mounts_before, tmp_path) == set(), "a mount of the set-up reached the host's namespace"
        box.destroy(force=True)
    assert new_host_mounts(mounts_before, tmp_path) == set(), refused
    assert _listing(host_dir) == listing_before, refused


def _fake_proc(tmp_path: Path) -> Path:
    """A host directory that looks like procfs where a sysctl write would go."""
    fake = tmp_path / "fake-proc"
    sysctl_file = fake / "sys" / Path(*SYSCTL.split("."))
    sysctl_file.parent.mkdir(parents=True)
    sysctl_file.write_bytes(FAKE)
    (fake / "self").mkdir()
    return fake


@pytest.mark.parametrize("how", ["volume-over-proc", "image-proc-dir-no-procfs"])
def test_sysctls_never_land_in_a_fake_proc(runtime: Runtime, bundle: Path, tmp_path: Path, how: str) -> None:
    fake = _fake_proc(tmp_path)
    sysctl_file = fake / "sys" / Path(*SYSCTL.split("."))
    config = make_config(bundle, "fakeproc", "/bin/true")
    if how == "volume-over-proc":
        mounts = config.mounts + (Mount("/proc", "bind", str(fake), ("rbind", "rw")),)
    else:  # no procfs at all: the image's own /proc directory is the fake one
        shutil.rmtree(bundle / "rootfs" / "proc")
        shutil.copytree(fake, bundle / "rootfs" / "proc")
        sysctl_file = bundle / "rootfs" / "proc" / "sys" / Path(*SYSCTL.split("."))
        mounts = tuple(m for m in config.mounts if m.destination != "/proc")
    config = dataclasses.replace(config, mounts=mounts, sysctl={SYSCTL: "1"})
    mounts_before = host_mounts()
    mode_before = os.stat(sysctl_file).st_mode
    try:
        box = runtime.create("fakeproc", config)
    except CorralError as exc:
        box = None
        refused = str(exc)
    if box is not None:
        refused = ""
        box.destroy(force=True)
    assert sysctl_file.read_bytes() == FAKE, ("the sysctl was written to the fake file", refused)
    assert os.stat(sysctl_file).st_mode == mode_before
    assert new_host_mounts(mounts_before, tmp_path) == set(), refused


def test_sysctls_reach_the_container_s_namespace_not_the_host_s(
    runtime: Runtime, bundle: Path, tmp_path: Path
) -> None:
    """The writes go through a real procfs, to the container's network and IPC namespaces."""
    host_ttl = Path("/proc/sys/net/ipv4/ip_default_ttl").read_bytes()
    host_shm = Path("/proc/sys/kernel/shmmni").read_bytes()
    config = make_config(
        bundle, "sysctl", "/bin/sh", "-c", "cat /proc/sys/net/ipv4/ip_default_ttl /proc/sys/kernel/shmmni"
    )
    config = dataclasses.replace(config, sysctl={"net.ipv4.ip_default_ttl": "42", "kernel.shmmni": "1234"})
    fd, out = output_file(tmp_path)
    box = runtime.create("sysctl", config, stdio=Stdio(stdout=fd, stderr=fd))
    os.close(fd)
    box.start()
    assert box.wait(20) == 0
    box.destroy()
    assert out.read_text().split() == ["42", "1234"], out.read_text()
    assert Path("/proc/sys/net/ipv4/ip_default_ttl").read_bytes() == host_ttl
    assert Path("/proc/sys/kernel/shmmni").read_bytes() == host_shm


def test_a_volume_over_proc_through_the_cli(corral_cli: CorralCli, bundle: Path, tmp_path: Path) -> None:
    """The volume-over-/proc case once through the `corral` command."""
    fake = _fake_proc(tmp_path)
    sysctl_file = fake / "sys" / Path(*SYSCTL.split("."))
    config = make_config(bundle, "fakeproc", "/bin/true")
    config = dataclasses.replace(
        config, mounts=config.mounts + (Mount("/proc", "bind", str(fake), ("rbind", "rw")),), sysctl={SYSCTL: "1"}
    )
    mode_before = os.stat(sysctl_file).st_mode
    mounts_before = host_mounts()
    run = corral_cli.run("fakeproc", config, bundle)
    assert sysctl_file.read_bytes() == FAKE, run
    assert os.stat(sysctl_file).st_mode == mode_before
    assert new_host_mounts(mounts_before, tmp_path) == set()
