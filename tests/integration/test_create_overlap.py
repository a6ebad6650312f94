"""Create makes the cgroups while the helper forks the monitor and the monitor the init.

The monitor must move the init into them only once they exist with their limits (on the
controller's Go), and kill it if the controller could not make them. A slow or failing
cgroup step, made so here, shows both.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from corral import Runtime, State
from corral.config import Config
from corral.errors import CgroupError
from corral.executor.cgroups.base import Cgroup
from corral.executor.linux import LinuxExecutor
from tests.integration.conftest import make_config
from tests.integration.test_hooks import corral_processes

pytestmark = pytest.mark.root

_make_cgroups = LinuxExecutor._make_cgroups


def test_the_init_joins_cgroups_made_after_the_monitor_was_forked(
    runtime: Runtime, bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def slow(cgroup: Cgroup, config: Config) -> None:
        time.sleep(0.5)  # the monitor and its child exist by now; the directories do not
        _make_cgroups(cgroup, config)

    monkeypatch.setattr(LinuxExecutor, "_make_cgroups", staticmethod(slow))
    box = runtime.create("ov-slow", make_config(bundle, "ov-slow", "sleep", "30"))
    try:
        cgroups = Path(f"/proc/{box.pid}/cgroup").read_text().splitlines()
        joined = [line for line in cgroups if line.endswith("/ov-slow")]
        assert len(joined) == len(box.record.cgroup_paths), cgroups  # every hierarchy corral made
    finally:
        box.destroy(force=True)


def test_cgroups_that_cannot_be_made_leave_no_monitor_nor_init(
    runtime: Runtime, bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing(cgroup: Cgroup, config: Config) -> None:
        time.sleep(0.3)
        raise CgroupError("made to fail by the test")

    monkeypatch.setattr(LinuxExecutor, "_make_cgroups", staticmethod(failing))
    with pytest.raises(CgroupError, match="made to fail"):
        runtime.create("ov-fail", make_config(bundle, "ov-fail", "sleep", "30"))
    deadline = time.monotonic() + 5
    while corral_processes("ov-fail") and time.monotonic() < deadline:
        time.sleep(0.02)
    # The init, not yet named, still bears the monitor's name: none of the three is left.
    assert corral_processes("ov-fail") == []
    assert runtime.load("ov-fail").state is State.DESTROYED
    assert not (runtime.run_root / "ov-fail").exists()
