"""`mounts`: a tmpfs with options, a read-only bind, and the recursive `rro` against
plain `ro` over a tree with a submount, read from the container's /proc/self/mountinfo
and by trying to write."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from corral import Runtime
from tests.integration.spec.helpers import sh

pytestmark = pytest.mark.root


def mount_options(mountinfo: str, mount_point: str) -> set[str]:
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) > 5 and fields[4] == mount_point:
            return set(fields[5].split(","))
    raise AssertionError(f"{mount_point} not mounted:\n{mountinfo}")


def test_a_tmpfs_with_its_options(runtime: Runtime, bundle: Path, tmp_path: Path) -> None:
    def change(data: dict[str, Any]) -> None:
        data["mounts"].append({"destination": "/data", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1770", "size=1m"]})

    out = sh(runtime, bundle, tmp_path, "tmpfs", "stat -c %a /data; cat /proc/self/mountinfo", change)
    assert out.splitlines()[0] == "1770"
    assert {"nosuid", "nodev", "rw"} <= mount_options(out, "/data")


def test_a_read_only_bind(runtime: Runtime, bundle: Path, tmp_path: Path) -> None:
    source = tmp_path / "volume"
    source.mkdir()
    (source / "file").write_text("from the host\n")

    def change(data: dict[str, Any]) -> None:
        data["mounts"].append({"destination": "/data", "type": "bind", "source": str(source), "options": ["rbind", "ro"]})

    out = sh(runtime, bundle, tmp_path, "bind-ro", "cat /data/file; touch /data/new 2>&1; cat /proc/self/mountinfo", change)
    assert out.startswith("from the host\n")
    assert "Read-only file system" in out
    assert "ro" in mount_options(out, "/data")
    assert not (source / "new").exists()


@pytest.fixture
def tree_with_a_submount(tmp_path: Path) -> Iterator[Path]:
    """A host directory with a tmpfs mounted below it (unmounted after)."""
    source = tmp_path / "tree"
    (source / "sub").mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(source / "sub")], check=True)
    try:
        yield source
    finally:
        subprocess.run(["umount", str(source / "sub")], check=True)


@pytest.mark.parametrize("option, sub_read_only", [("ro", False), ("rro", True)])
def test_rro_makes_every_submount_read_only_where_ro_does_not(
    runtime: Runtime, bundle: Path, tmp_path: Path, tree_with_a_submount: Path, option: str, sub_read_only: bool
) -> None:
    def change(data: dict[str, Any]) -> None:
        data["mounts"].append({"destination": "/data", "type": "bind", "source": str(tree_with_a_submount), "options": ["rbind", option]})

    out = sh(runtime, bundle, tmp_path, f"bind-{option}", "cat /proc/self/mountinfo", change)
    assert "ro" in mount_options(out, "/data")
    assert ("ro" in mount_options(out, "/data/sub")) is sub_read_only


def test_an_idmapped_bind_shows_the_sources_ids_through_its_mappings(
    runtime: Runtime, bundle: Path, tmp_path: Path
) -> None:
    """The kernel's (and runc's) direction: an id on disk is read as a `containerID` and
    shown as its `hostID`, as a user namespace maps ids outward. With containerID 0 ->
    hostID 1000, root's file shows as 1000:1000 in a container without a user
    namespace, and the file of uid 1000, which the mapping leaves out, as the overflow
    id (65534). (With a container user namespace mapping 0 -> 1000 as well, root's file
    is root's again inside: runc's use of it.)"""
    source = tmp_path / "idmapped"
    source.mkdir()
    (source / "mine").write_text("x")
    os.chown(source / "mine", 1000, 1000)
    (source / "roots").write_text("x")
    mapping = [{"containerID": 0, "hostID": 1000, "size": 1}]

    def change(data: dict[str, Any]) -> None:
        data["mounts"].append(
            {"destination": "/data", "type": "bind", "source": str(source), "options": ["bind"], "uidMappings": mapping, "gidMappings": mapping}
        )

    out = sh(runtime, bundle, tmp_path, "idmap", "stat -c '%n %u:%g' /data/mine /data/roots; grep ' /data ' /proc/self/mountinfo", change)
    lines = out.splitlines()
    assert lines[:2] == ["/data/mine 65534:65534", "/data/roots 1000:1000"], out
    assert "idmapped" in lines[2], out
    assert (source / "mine").stat().st_uid == 1000  # the files themselves are unchanged
