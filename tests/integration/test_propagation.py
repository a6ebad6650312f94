"""`linux.rootfsPropagation`: every value shows on the container's `/`, and the host's
mount table is the same before and after, also when the bundle lies on a shared mount
and when create fails after the first mount.

The container's side is read from inside (busybox `cat /proc/self/mountinfo`); the
host's side is this process's mount table, compared as a set of (mount point, fs
type, source), so that a mount propagated back to the host shows by name.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from corral import Mount, Runtime, State
from corral.errors import InitError
from corral.executor.interface import Stdio
from tests.integration.conftest import make_config, output_file

pytestmark = pytest.mark.root

VALUES = ("shared", "rshared", "slave", "rslave", "private", "rprivate", "unbindable", "runbindable")


@dataclasses.dataclass(frozen=True)
class MountLine:
    mount_point: str
    tags: tuple[str, ...]  # the optional fields: shared:N, master:N, unbindable ...
    fstype: str
    source: str


def parse_mountinfo(text: str) -> list[MountLine]:
    lines = []
    for line in text.splitlines():
        fields = line.split()
        if not fields:
            continue
        dash = fields.index("-", 6)
        lines.append(MountLine(fields[4], tuple(fields[6:dash]), fields[dash + 1], fields[dash + 2]))
    return lines


def host_mounts(own_tmp: Path) -> set[tuple[str, str, str]]:
    """The host's mount table, less the temporary dirs of other pytest runs on this
    machine (tests running in parallel mount there; this test's own dir is kept)."""
    own = str(own_tmp)
    others = str(own_tmp.parent.parent)  # /tmp/pytest-of-USER: every run's base dir
    with open("/proc/self/mountinfo") as f:
        return {
            (m.mount_point, m.fstype, m.source)
            for m in parse_mountinfo(f.read())
            if not m.mount_point.startswith(others + "/") or m.mount_point.startswith(own)
        }


def host_mount_of(path: Path) -> MountLine:
    """The host mount `path` lies on: the last mounted of the longest mount point above it."""
    with open("/proc/self/mountinfo") as f:
        lines = parse_mountinfo(f.read())
    above = [m for m in lines if str(path) == m.mount_point or str(path).startswith(m.mount_point.rstrip("/") + "/")]
    return max(reversed(above), key=lambda m: len(m.mount_point))


@contextmanager
def shared_mount(path: Path) -> Iterator[None]:
    """`path` made a shared bind mount of itself (as on a systemd host), unmounted after."""
    subprocess.run(["mount", "--bind", str(path), str(path)], check=True)
    try:
        subprocess.run(["mount", "--make-shared", str(path)], check=True)
        yield
    finally:
        subprocess.run(["umount", "-R", str(path)], check=True)  # with anything that leaked below


def expected_tag(value: str, on_shared: bool) -> str | None:
    """The optional field `/` must show in the container (None: none, i.e. private)."""
    if value in ("shared", "rshared"):
        return "shared:"
    if value in ("unbindable", "runbindable"):
        return "unbindable"
    if value in ("slave", "rslave"):
        return "master:" if on_shared else None  # a slave of a private mount has no master
    return None


def root_line_in_container(runtime: Runtime, cid: str, value: str, bundle: Path, tmp_path: Path) -> MountLine:
    config = make_config(bundle, cid, "/bin/cat", "/proc/self/mountinfo", rootfs_propagation=value)
    fd, out = output_file(tmp_path, f"{cid}.out")
    try:
        box = runtime.create(cid, config, stdio=Stdio(stdout=fd, stderr=fd))
    finally:
        os.close(fd)
    box.start()
    assert box.wait(20) == 0, out.read_text()
    box.destroy()
    roots = [m for m in parse_mountinfo(out.read_text()) if m.mount_point == "/"]
    assert len(roots) == 1, out.read_text()
    return roots[0]


@pytest.mark.parametrize("on_shared", [False, True], ids=["plain", "shared-bundle"])
@pytest.mark.parametrize("value", VALUES)
def test_the_propagation_shows_on_the_containers_root_and_the_host_is_untouched(
    runtime: Runtime, bundle: Path, tmp_path: Path, value: str, on_shared: bool
) -> None:
    if not on_shared and "shared:" in " ".join(host_mount_of(bundle).tags):
        on_shared = True  # the host's own mount is shared (systemd): the same case
    with shared_mount(bundle) if on_shared else _nothing():
        before = host_mounts(tmp_path)
        root = root_line_in_container(runtime, f"prop-{value}", value, bundle, tmp_path)
        after = host_mounts(tmp_path)
    assert after == before, f"host mounts added {after - before}, removed {before - after}"
    tag = expected_tag(value, on_shared)
    others = [t for t in root.tags if tag is None or not t.startswith(tag)]
    if tag is not None:
        assert any(t.startswith(tag) for t in root.tags), root
    if value in ("shared", "rshared"):
        assert all(not t.startswith("master:") or on_shared for t in others), root
    else:
        assert others == [], f"{value}: unexpected {others} on {root}"


@pytest.mark.parametrize("value", VALUES)
def test_a_create_failing_after_the_first_mount_leaves_no_mount_on_the_host(
    runtime: Runtime, bundle: Path, tmp_path: Path, value: str
) -> None:
    config = make_config(bundle, f"fail-{value}", rootfs_propagation=value)
    # /bin/busybox is a file: the last mount cannot be made, after all the others were
    config = dataclasses.replace(config, mounts=config.mounts + (Mount("/bin/busybox/sub", "tmpfs", "tmpfs"),))
    with shared_mount(bundle):
        before = host_mounts(tmp_path)
        with pytest.raises(InitError, match="busybox/sub"):
            runtime.create(f"fail-{value}", config)
        after = host_mounts(tmp_path)
    assert after == before, f"host mounts added {after - before}, removed {before - after}"
    assert runtime.load(f"fail-{value}").state is State.DESTROYED


@contextmanager
def _nothing() -> Iterator[None]:
    yield
