"""Bad ground under a container (issue 10): a full run root, a run dir removed
before start, a caller without root. Each is a CorralError that says what
happened and what to do, and nothing is left in the kernel or on disk.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral import Runtime
from corral.errors import CorralError
from tests.integration.conftest import checked_runtime, make_config
from tests.unit.asuser import NOBODY, dir_for, run_as

pytestmark = pytest.mark.root


@pytest.fixture(params=["blocks", "inodes"])
def full_tmpfs(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Path]:
    """A tiny tmpfs under the test's directory, out of space or of inodes; unmounted at the end.

    Out of blocks, the run dir and fifo can still be made (they take no data), and
    the exit file's placeholder cannot; out of inodes, the run dir itself cannot.
    """
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,nr_inodes=64,mode=0755", "tmpfs", str(mnt)], check=True)
    try:
        (mnt / "run").mkdir()
        try:
            if request.param == "blocks":
                fd = os.open(mnt / "filler", os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
                try:
                    while True:
                        os.write(fd, b"x" * 65536)  # unbuffered: nothing left to flush at close
                finally:
                    os.close(fd)
            else:
                for n in range(100):
                    (mnt / f"filler{n}").touch()
        except OSError as exc:
            assert exc.errno == 28, exc  # ENOSPC
        else:
            raise AssertionError("the tiny tmpfs did not fill")
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=True)


def test_create_on_a_full_run_root_says_so_and_leaves_nothing(
    tmp_path: Path, bundle: Path, full_tmpfs: Path
) -> None:
    run_root = full_tmpfs / "run"
    with checked_runtime(tmp_path / "rt") as plain:
        rt = Runtime(plain.root, run_root=run_root)
        try:
            config = make_config(bundle, "full", "/bin/true")
            with pytest.raises(CorralError) as caught:
                rt.create("full", config)
            message = str(caught.value)
            assert str(run_root / "full") in message, message
            assert "free space on" in message and "run_root" in message, message
            assert not (run_root / "full").exists()  # the filesystem, not the record
            for hierarchy in Path("/sys/fs/cgroup").iterdir():
                assert not (hierarchy / config.cgroups_path.lstrip("/")).exists(), hierarchy
        finally:
            rt.close()


def test_start_after_the_run_dir_was_removed_says_so(runtime: Runtime, bundle: Path) -> None:
    box = runtime.create("gone", make_config(bundle, "gone", "/bin/true"))
    run_dir = box.record.run_dir
    shutil.rmtree(run_dir)
    with pytest.raises(CorralError) as caught:
        box.start()
    message = str(caught.value)
    assert f"its run directory {run_dir} is gone" in message, message
    assert "already started" not in message
    assert "destroy it" in message
    with open(f"/proc/{box.record.init_pid}/comm") as f:  # the kernel: the init still waits
        assert f.read().strip() != "true"


def test_create_without_root_says_corral_needs_root(bundle: Path) -> None:
    with dir_for(NOBODY) as home:
        shutil.copytree(bundle / "rootfs", home / "rootfs", symlinks=True)
        config = make_config(bundle, "nonroot", "/bin/true")
        config = config.__class__(**{**config.__dict__, "root": config.root.__class__(str(home / "rootfs"))})

        Runtime(home / "store", run_root=home / "run").close()  # made (migrated) as root, owned by nobody
        subprocess.run(["chown", "-R", f"{NOBODY}:{NOBODY}", str(home)], check=True)

        def create() -> None:
            with Runtime(home / "store", run_root=home / "run") as rt:
                rt.create("nonroot", config)

        raised = run_as(NOBODY, create)
        assert raised is not None
        kind, message = raised
        assert kind not in ("PermissionError", "OSError"), message
        assert "corral needs root (or write access to" in message, message
        assert not (home / "run" / "nonroot").exists()
        for hierarchy in Path("/sys/fs/cgroup").iterdir():
            assert not (hierarchy / config.cgroups_path.lstrip("/")).exists()


def test_recovery_does_not_take_a_removed_run_dir_for_a_start(runtime: Runtime, bundle: Path) -> None:
    box = runtime.create("gone2", make_config(bundle, "gone2", "/bin/true"))
    shutil.rmtree(box.record.run_dir)
    runtime.recover()
    with open(f"/proc/{box.record.init_pid}/comm") as f:  # the kernel: the init still waits
        assert f.read().strip() != "true"
    assert runtime.load("gone2").state.value == "created"
