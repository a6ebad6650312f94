"""The init's exit status is never silently lost (issue 10).

The monitor is the init's parent and writes `<run dir>/init.exit`. When it
cannot (killed, its run dir removed, /run full), the status is either kept or
the journal's `exited` row says `exit: unknown` and why: never a bare None.
Each case is staged in the kernel and the filesystem (a real container, a real
SIGKILL, a real full tmpfs), not in corral's records.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral import Runtime, faults
from corral.executor import proc
from corral.statemachine import events
from tests.integration.conftest import checked_runtime, make_config

pytestmark = pytest.mark.root

EXIT_7 = ("/bin/sh", "-c", "sleep 1; exit 7")


def _exited_row(box) -> dict:
    last = box.history()[-1]
    assert last.event == "exited", box.history()
    return dict(last.detail)


def _killed(process: proc.ProcessIdentity) -> None:
    os.kill(process.pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while proc.alive(process) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not proc.alive(process)


def _parents(box) -> tuple[proc.ProcessIdentity, proc.ProcessIdentity]:
    """The recorded monitor (the keeper) and the monitor proper, its child and the init's parent."""
    keeper = proc.ProcessIdentity(box.record.monitor_pid, box.record.monitor_start_time)
    with open(f"/proc/{keeper.pid}/task/{keeper.pid}/children") as f:
        (child,) = (int(p) for p in f.read().split())
    with open(f"/proc/{box.record.init_pid}/stat") as f:
        assert int(f.read().rsplit(")", 1)[1].split()[1]) == child  # the init's parent, in the kernel
    monitor = proc.identity(child)
    assert proc.alive(keeper) and monitor is not None
    return keeper, monitor


@pytest.mark.parametrize("which", ["recorded", "parent"])
def test_the_status_survives_either_monitor_process_killed(runtime: Runtime, bundle: Path, which: str) -> None:
    box = runtime.create("mk", make_config(bundle, "mk", *EXIT_7))
    box.start()
    keeper, monitor = _parents(box)
    _killed(keeper if which == "recorded" else monitor)
    assert box.wait(10) == 7
    assert _exited_row(box)["exit_status"] == 7


def test_both_monitor_processes_killed_the_status_is_unknown_with_the_reason(runtime: Runtime, bundle: Path) -> None:
    box = runtime.create("mk2", make_config(bundle, "mk2", *EXIT_7))
    box.start()
    keeper, monitor = _parents(box)
    _killed(keeper)
    _killed(monitor)
    assert box.wait(10) is None  # only a parent can reap for the status, and both are gone
    detail = _exited_row(box)
    assert detail["exit"] == "unknown", detail
    reason = detail["exit_unknown_reason"]
    assert f"the monitor ({keeper.pid})" in reason and "killed" in reason, detail


def test_run_dir_removed_the_monitor_still_records_the_status(runtime: Runtime, bundle: Path) -> None:
    """The monitor journals what it reaped itself (issue 13): the file is only one way the status travels."""
    box = runtime.create("rdm", make_config(bundle, "rdm", *EXIT_7))
    box.start()
    shutil.rmtree(box.record.run_dir)
    assert box.wait(10) == 7
    assert _exited_row(box)["exit_status"] == 7


def test_run_dir_removed_the_status_is_unknown_with_the_reason(
    runtime: Runtime, bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A monitor told no recorder (as one spawned before issue 13): the exit file is all there is.
    monkeypatch.setattr(events, "monitor_recorder", lambda context, record: None)
    box = runtime.create("rd", make_config(bundle, "rd", *EXIT_7))
    box.start()
    run_dir = box.record.run_dir
    shutil.rmtree(run_dir)
    assert box.wait(10) is None  # the exit file went with the run dir
    detail = _exited_row(box)
    assert detail["exit"] == "unknown", detail
    assert f"its run directory {run_dir} is gone" in detail["exit_unknown_reason"], detail


@pytest.fixture
def tiny_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs under the test's directory, unmounted at the end."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=True)


def fill(fs: Path) -> None:
    """Write until the filesystem says ENOSPC."""
    fd = os.open(fs / "filler", os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        while True:
            os.write(fd, b"x" * 65536)  # unbuffered: nothing left to flush at close
    except OSError as exc:
        assert exc.errno == 28, exc  # ENOSPC
    finally:
        os.close(fd)


def test_run_full_after_create_the_status_is_kept(tmp_path: Path, bundle: Path, tiny_tmpfs: Path) -> None:
    run_root = tiny_tmpfs / "run"
    # The leak checks, on a directory the tiny mount is not under; the Runtime under test shares the root.
    with checked_runtime(tmp_path / "rt") as plain:
        rt = Runtime(plain.root, run_root=run_root)
        try:
            box = rt.create("full", make_config(bundle, "full", *EXIT_7))
            box.start()
            fill(tiny_tmpfs)
            with pytest.raises(OSError):  # the run root is full indeed
                (run_root / "probe").write_bytes(b"x" * 8192)
            assert box.wait(10) == 7  # written in place, into the placeholder made at create
            detail = _exited_row(box)
            assert detail["exit_status"] == 7 and "exit" not in detail, detail
            os.unlink(tiny_tmpfs / "filler")
            box.destroy()
        finally:
            rt.close()


def test_a_forced_destroy_passes_each_destroy_fault_point_once(
    runtime: Runtime, bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    box = runtime.create("fp", make_config(bundle, "fp", "/bin/sleep", "1000"))
    box.start()
    reached: list[str] = []
    real = faults.point
    monkeypatch.setattr(faults, "point", lambda name: (reached.append(name), real(name))[1])
    box.destroy(force=True)
    destroy_points = [p for p in faults.POINTS if p.startswith("destroy.")]
    assert [p for p in reached if p.startswith("destroy.")] == destroy_points
