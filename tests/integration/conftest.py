"""Integration fixtures: busybox bundles, Runtimes on temporary roots, and leak checks.

Every container a test makes is force-destroyed after it, and then the kernel is
checked: no recorded init or monitor alive, no cgroup directory, no run dir, no
mount under the test's directory. A leak fails the test.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from corral import Config, Process, Root, Runtime
from corral.executor import proc
from corral.executor.linux import store_tag
from tests.rootfs import BUSYBOX, build_busybox_rootfs

CGROUP_PARENT = f"/corral-test-{os.getpid()}"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

pytestmark = pytest.mark.root


def _require_busybox() -> None:
    if not os.path.exists(BUSYBOX):
        pytest.skip("needs Debian's busybox-static (scripts/install installs it)")


@pytest.fixture(scope="session")
def rootfs_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A minimal rootfs: static busybox with every applet linked in /bin."""
    _require_busybox()
    return build_busybox_rootfs(tmp_path_factory.mktemp("rootfs-template") / "rootfs")


@pytest.fixture
def bundle(tmp_path: Path, rootfs_template: Path) -> Path:
    """A bundle directory with its own copy of the rootfs (tests write into it)."""
    path = tmp_path / "bundle"
    shutil.copytree(rootfs_template, path / "rootfs", symlinks=True)
    os.chmod(path / "rootfs", 0o755)
    return path


def make_config(bundle: Path, cid: str, *args: str, **changes: Any) -> Config:
    """A config like `runc spec` makes, with the cgroups under this test session's parent."""
    config = Config(
        process=Process(args=args or ("/bin/sh",), env=(PATH_ENV, "HOME=/root")),
        root=Root(str(bundle / "rootfs")),
        hostname="box",
        cgroups_path=f"{CGROUP_PARENT}/{cid}",
    )
    return dataclasses.replace(config, **changes)


def leaks_of(runtime: Runtime, test_dir: Path) -> list[str]:
    """Force-destroy every container of `runtime`, then list what the kernel still holds."""
    found: list[str] = []
    boxes = runtime.list(include_destroyed=True)
    for box in boxes:  # destroy everything first: incarnations of one id share cgroup paths
        if box.record.state != "destroyed":
            try:
                box.destroy(force=True)
            except Exception as exc:  # noqa: BLE001 - report it as a leak below
                found.append(f"{box.id}: destroy(force=True) failed: {exc}")
    for box in boxes:
        record = box.record
        for name, pid, start in (
            ("init", record.init_pid, record.init_start_time),
            ("monitor", record.monitor_pid, record.monitor_start_time),
        ):
            if pid is not None and start is not None and proc.alive(proc.ProcessIdentity(pid, start)):
                found.append(f"{box.id}: {name} {pid} still alive")
                try:
                    os.kill(pid, 9)
                except ProcessLookupError:
                    pass
        for path in record.cgroup_paths.values():
            if os.path.isdir(path):
                found.append(f"{box.id}: cgroup {path} left")
            store_dir = f"/corral/{store_tag(str(runtime.root))}/"  # a default path's parent
            if store_dir in path and os.path.isdir(path[: path.index(store_dir) + len(store_dir)]):
                found.append(f"{box.id}: cgroup {path[: path.index(store_dir) + len(store_dir)]} left")
        if os.path.exists(record.run_dir):
            found.append(f"{box.id}: run dir {record.run_dir} left")
    with open("/proc/self/mountinfo") as f:
        for line in f:
            if str(test_dir) in line:
                found.append(f"mount left: {line.split()[4]}")
    return found


@contextmanager
def checked_runtime(tmp_path: Path, name: str = "", executor: Any = None) -> Iterator[Runtime]:
    """A Runtime on `tmp_path` whose containers are all destroyed and leak-checked at the end."""
    rt = Runtime(tmp_path / f"root{name}", executor, run_root=tmp_path / f"run{name}")
    try:
        yield rt
    finally:
        leaks = leaks_of(rt, tmp_path)
        rt.close()
        assert not leaks, leaks


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    with checked_runtime(tmp_path) as rt:
        yield rt


@pytest.fixture(scope="session", autouse=True)
def _remove_session_cgroup_parent() -> Iterator[None]:
    yield
    for hierarchy in Path("/sys/fs/cgroup").iterdir():
        parent = hierarchy / CGROUP_PARENT.lstrip("/")
        if parent.is_dir():
            try:
                parent.rmdir()
            except OSError as exc:
                raise AssertionError(f"cgroup parent {parent} left non-empty: {exc}") from exc


def output_file(tmp_path: Path, name: str = "out") -> tuple[int, Path]:
    path = tmp_path / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    return fd, path
