"""CVE-2025-52881 (runc), CVE-2025-62596 (youki): procfs writes redirected through a fake or shared procfs.

runc wrote LSM labels (`/proc/self/attr/*`) and youki sysctls by path in the
container's `/proc`; a bundle (or a racing container sharing a volume) that
binds something over those files, or mounts a volume over `/proc`, turned the
writes into writes to another file: a host file, or a procfs file such as
`/proc/sys/kernel/core_pattern`. corral's set-up writes `self/oom_score_adj`,
the sysctls, the uid/gid maps (monitor), reopens its exec fifo through
`self/fd/N`, and reads `sys/kernel/cap_last_cap` to know which capabilities to
drop from the bounding set. Each of those files is attacked here:

- `binds-over-procfs`: the config keeps a real procfs at `/proc` and binds host
  files over `/proc/self/oom_score_adj`, `/proc/sys/kernel/cap_last_cap`
  (reading `0`: the whole bounding set would be kept), `/proc/self/attr/exec`,
  `/proc/self/attr/current`, and a host directory of files named 0..63 over
  `/proc/self/fd` (the exec fifo);
- `volume-over-proc`: a host directory with the same fake files bound over `/proc`.

Checked on the host: every fake file's bytes and mode (recursive listing), the
container init's `CapBnd` and `oom_score_adj` read from the host's
`/proc/<pid>/status`, the program not running before `start` (its output is
empty after create), the host mount table. corral writes no `/proc/self/attr`
file at all (labels are ignored where the LSM is off, refused where it is on:
`corral/executor/lsm.py`); the attr files are there to show that too.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
from pathlib import Path

import pytest

from corral import Config, Mount, Runtime
from corral.errors import CorralError
from corral.executor.credentials import capability_mask
from corral.types import Stdio
from tests.integration.conftest import make_config, output_file
from tests.security.cli import CorralCli
from tests.security.host import host_mounts, new_host_mounts

pytestmark = pytest.mark.root

OOM = 321
SYSCTL = "net.ipv4.ip_forward"
#: Descriptor numbers a fake `self/fd` offers: the init's exec fifo is one of the first few.
FD_RANGE = range(64)


def _listing(path: Path) -> dict[str, tuple[int, bytes]]:
    """Every entry under `path`: mode and bytes (files), so any write or chmod shows."""
    found: dict[str, tuple[int, bytes]] = {}
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            data = Path(full).read_bytes() if os.path.isfile(full) and not os.path.islink(full) else b""
            found[os.path.relpath(full, path)] = (st.st_mode, data)
    return found


def _fake_proc(where: Path) -> Path:
    """A host directory laid out like the procfs files corral's set-up touches."""
    (where / "self" / "fd").mkdir(parents=True)
    (where / "self" / "attr").mkdir()
    (where / "sys" / "kernel").mkdir(parents=True)
    (where / "sys" / "net" / "ipv4").mkdir(parents=True)
    (where / "self" / "oom_score_adj").write_bytes(b"host file: oom_score_adj\n")
    (where / "sys" / "kernel" / "cap_last_cap").write_bytes(b"0\n")
    (where / "sys" / "net" / "ipv4" / "ip_forward").write_bytes(b"host file: sysctl\n")
    for name in ("exec", "current"):
        (where / "self" / "attr" / name).write_bytes(f"host file: attr/{name}\n".encode())
    for n in FD_RANGE:
        (where / "self" / "fd" / str(n)).write_bytes(f"host file: fd {n}\n".encode())
    for path in where.rglob("*"):
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    return where


#: The cases whose mounts land on the container's procfs: refused at that mount.
ON_PROCFS = ("volume-over-proc", "binds-over-procfs-files", "bind-over-self-fd", "image-symlink-to-proc")
CASES = ["volume-over-proc", "image-proc-no-procfs", "binds-over-procfs-files", "bind-over-self-fd", "image-symlink-to-proc"]


def _hostile_config(bundle: Path, fake: Path, how: str) -> Config:
    """The container of case `how`, whose set-up would write into `fake` through its /proc."""
    config = make_config(bundle, "procfs", "/bin/sh", "-c", "echo ran")
    mounts = config.mounts
    if how == "volume-over-proc":
        mounts += (Mount("/proc", "bind", str(fake), ("rbind", "rw")),)
    elif how == "image-proc-no-procfs":  # `fake` is the image's own /proc directory
        mounts = tuple(m for m in mounts if m.destination != "/proc")
    elif how == "binds-over-procfs-files":
        mounts += tuple(
            Mount(f"/proc/{name}", "bind", str(fake / name), ("bind", "rw"))
            for name in ("self/oom_score_adj", "sys/kernel/cap_last_cap", "self/attr/exec", "self/attr/current")
        )
    elif how == "bind-over-self-fd":
        mounts += (Mount("/proc/self/fd", "bind", str(fake / "self" / "fd"), ("bind", "rw")),)
    elif how == "image-symlink-to-proc":  # the image's /data names /proc/self/fd: a volume at /data
        (bundle / "rootfs" / "data").symlink_to("/proc/self/fd")
        mounts += (Mount("/data", "bind", str(fake / "self" / "fd"), ("rbind", "rw")),)
    process = dataclasses.replace(
        config.process, oom_score_adj=OOM, apparmor_profile="corral-attack", selinux_label="system_u:system_r:attack_t:s0"
    )
    return dataclasses.replace(config, mounts=mounts, process=process, sysctl={SYSCTL: "1"})


def _check_init(pid: int, config: Config) -> None:
    """The init as the host sees it: the bounding set the config asked for, its oom_score_adj."""
    status = dict(line.split(":\t", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    assert config.process.capabilities is not None
    wanted = capability_mask(config.process.capabilities.bounding)
    assert int(status["CapBnd"], 16) == wanted, "the bounding set was not dropped (a fake cap_last_cap was read)"
    assert Path(f"/proc/{pid}/oom_score_adj").read_text().strip() == str(OOM)


@pytest.mark.parametrize("how", CASES)
def test_procfs_writes_never_reach_a_fake_file(runtime: Runtime, bundle: Path, tmp_path: Path, how: str) -> None:
    if how == "image-proc-no-procfs":
        shutil.rmtree(bundle / "rootfs" / "proc")
        fake = _fake_proc(bundle / "rootfs" / "proc")
    else:
        fake = _fake_proc(tmp_path / "fake-proc")
    config = _hostile_config(bundle, fake, how)
    before = _listing(fake)
    mounts_before = host_mounts()
    fd, out = output_file(tmp_path)
    try:
        box = runtime.create("procfs", config, stdio=Stdio(stdout=fd, stderr=fd))
    except CorralError as exc:
        box, refused = None, str(exc)
    finally:
        os.close(fd)
    if box is not None:
        refused = ""
        assert box.pid is not None
        _check_init(box.pid, config)
        time.sleep(0.3)  # a fake fifo would not block: the program would run now
        assert out.read_text() == "", "the program ran before start (the exec fifo was a fake file)"
        box.start()
        assert box.wait(20) == 0
        assert out.read_text() == "ran\n"
        box.destroy()
    if how in ON_PROCFS:  # nothing but proc (and lxcfs's files) may be mounted on a procfs
        assert box is None and "the target is on procfs" in refused, refused
    assert _listing(fake) == before, ("a write reached a fake procfs file on the host", refused)
    assert new_host_mounts(mounts_before, tmp_path) == set(), refused


def test_procfs_writes_never_reach_a_fake_file_through_the_cli(
    corral_cli: CorralCli, bundle: Path, tmp_path: Path
) -> None:
    shutil.rmtree(bundle / "rootfs" / "proc")  # the case only the verified procfs holds
    fake = _fake_proc(bundle / "rootfs" / "proc")
    config = _hostile_config(bundle, fake, "image-proc-no-procfs")
    before = _listing(fake)
    mounts_before = host_mounts()
    seen: list[str] = []

    def while_created(pid: int) -> None:
        _check_init(pid, config)
        time.sleep(0.3)
        seen.append((tmp_path / "cli-procfs.out").read_text())

    run = corral_cli.run("procfs", config, bundle, while_created=while_created)
    assert run.created, run.error
    if run.created:
        assert "ran" not in seen[0], "the program ran before start"  # the file also holds the CLI's warnings
        assert "ran\n" in run.output
    assert _listing(fake) == before
    assert new_host_mounts(mounts_before, tmp_path) == set()


def test_exec_writes_never_reach_a_fake_file(runtime: Runtime, bundle: Path, tmp_path: Path) -> None:
    """`exec` joins the container's mount namespace: its oom_score_adj and cap_last_cap go
    through the procfs it took before joining, not the container's `/proc` (here the image's
    own directory of fake files, as a container that replaced its /proc would leave it)."""
    shutil.rmtree(bundle / "rootfs" / "proc")
    fake = _fake_proc(bundle / "rootfs" / "proc")
    config = _hostile_config(bundle, fake, "image-proc-no-procfs")
    config = dataclasses.replace(config, process=dataclasses.replace(config.process, args=("sleep", "100"), oom_score_adj=None))
    box = runtime.create("procfs", config)
    box.start()
    before = _listing(fake)
    process = dataclasses.replace(config.process, args=("sleep", "100"), oom_score_adj=OOM)
    run = box.exec(process)
    try:
        _check_init(run.pid, config)  # the exec'd process, read on the host as the init's was
    finally:
        os.kill(run.pid, 9)
        run.wait(10)
        box.destroy(force=True)
    assert _listing(fake) == before, "an exec wrote through the container's /proc"
