"""exec inherits the container's process: what an exec'd Process leaves unset is the init's.

Checked on the host, in the kernel's own words: /proc/<pid>/status (capability
sets, NoNewPrivs, uid, gid, groups), /proc/<pid>/limits, /proc/<pid>/environ and
the inode of /proc/<pid>/cwd, of the container's init and of a `sleep` exec'd
beside it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from corral import Runtime
from corral.config import Capabilities, Process, Rlimit, User
from corral.executor.credentials import capability_mask
from tests.integration.conftest import make_config

pytestmark = pytest.mark.root

#: Three capabilities, as `runc spec` gives a container (here also inheritable and
#: ambient, so that every set of the five has something to compare).
THREE = ("CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE")
CONTAINER_CAPS = Capabilities(THREE, THREE, THREE, THREE, THREE)
CONTAINER_ENV = ("PATH=/bin", "HOME=/tmp", "CONTAINER=yes")
STATUS_KEYS = ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Uid", "Gid", "Groups")


def status_of(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/status") as f:
        fields = dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
    return {key: fields[key] for key in STATUS_KEYS}


def open_files_limit(pid: int) -> tuple[str, str]:
    with open(f"/proc/{pid}/limits") as f:
        line = next(line for line in f if line.startswith("Max open files"))
    soft, hard = line.split()[3:5]
    return soft, hard


def environ_of(pid: int) -> tuple[str, ...]:
    with open(f"/proc/{pid}/environ", "rb") as f:
        return tuple(item.decode() for item in f.read().split(b"\0") if item)


def cwd_inode(pid: int) -> tuple[int, int]:
    st = os.stat(f"/proc/{pid}/cwd")
    return st.st_dev, st.st_ino


def caps_hex(names: tuple[str, ...]) -> str:
    return f"{capability_mask(names):016x}"


@pytest.fixture
def box(runtime: Runtime, bundle: Path):  # type: ignore[no-untyped-def]
    """A running container whose process differs from every default of a Process."""
    (bundle / "rootfs" / "srv").mkdir()
    os.chown(bundle / "rootfs" / "srv", 1000, 1000)
    process = Process(
        args=("/bin/sleep", "600"),
        env=CONTAINER_ENV,
        cwd="/srv",
        user=User(1000, 1000, (5, 7)),
        rlimits=(Rlimit("RLIMIT_NOFILE", 100, 200),),
        no_new_privileges=True,
        capabilities=CONTAINER_CAPS,
    )
    config = make_config(bundle, "inherit", process=process)
    box = runtime.create("inherit", config)
    box.start()
    yield box
    box.destroy(force=True)


def test_an_exec_that_says_nothing_runs_as_the_init_runs(box) -> None:  # type: ignore[no-untyped-def]
    init = box.pid
    proc = box.exec(Process(args=("/bin/sleep", "600")))

    assert status_of(proc.pid) == status_of(init)
    assert status_of(init)["CapEff"] == caps_hex(THREE)  # the comparison means something
    assert status_of(init)["NoNewPrivs"] == "1"
    assert status_of(init)["Uid"].split() == ["1000"] * 4
    assert open_files_limit(proc.pid) == open_files_limit(init) == ("100", "200")
    assert environ_of(proc.pid) == environ_of(init) == CONTAINER_ENV
    assert cwd_inode(proc.pid) == cwd_inode(init)


def test_what_an_exec_says_overrides_the_init_s(box, bundle: Path) -> None:  # type: ignore[no-untyped-def]
    caps = Capabilities(
        bounding=("CAP_CHOWN", "CAP_KILL"),
        effective=("CAP_CHOWN",),
        permitted=("CAP_CHOWN",),
        inheritable=("CAP_CHOWN",),
        ambient=("CAP_CHOWN",),
    )
    proc = box.exec(
        Process(
            args=("/bin/sleep", "600"),
            env=("ONLY=this",),
            cwd="/",
            user=User(2000, 3000),
            rlimits=(Rlimit("RLIMIT_NOFILE", 50, 60),),
            no_new_privileges=False,
            capabilities=caps,
        )
    )

    status = status_of(proc.pid)
    assert status["CapBnd"] == caps_hex(caps.bounding)
    assert status["CapEff"] == status["CapPrm"] == status["CapInh"] == status["CapAmb"] == caps_hex(("CAP_CHOWN",))
    assert status["NoNewPrivs"] == "0"
    assert status["Uid"].split() == ["2000"] * 4 and status["Gid"].split() == ["3000"] * 4
    assert status["Groups"].split() == []
    assert open_files_limit(proc.pid) == ("50", "60")
    assert environ_of(proc.pid) == ("ONLY=this",)
    st = os.stat(bundle / "rootfs")
    assert cwd_inode(proc.pid) == (st.st_dev, st.st_ino)


def test_empty_is_not_unset(box) -> None:  # type: ignore[no-untyped-def]
    """An empty environment and no capabilities at all are said, and kept."""
    proc = box.exec(Process(args=("/bin/sleep", "600"), env=(), capabilities=None))

    status = status_of(proc.pid)
    assert environ_of(proc.pid) == ()
    assert status["CapEff"] == status["CapPrm"] == status["CapBnd"] == "0" * 16
    assert status["NoNewPrivs"] == "1" and status["Uid"].split() == ["1000"] * 4  # still inherited
