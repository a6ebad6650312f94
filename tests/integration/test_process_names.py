"""Corral's own processes say what they are and whose container they serve.

All of them are forks of one `python -S -c "...corral.executor.zygote..." FD`, so the
command line cannot tell them apart: /proc/<pid>/comm (what ps -o comm, top and
pstree show) does.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from corral import Process, Runtime
from tests.integration.conftest import PATH_ENV, make_config

pytestmark = pytest.mark.root


def _comm(pid: int) -> str:
    return Path(f"/proc/{pid}/comm").read_text().strip()


def _ppid(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def test_monitor_keeper_helper_and_exec_monitor_are_named(runtime: Runtime, bundle: Path) -> None:
    box = runtime.create("nm", make_config(bundle, "nm", "/bin/sleep", "1000"))
    assert box.pid is not None
    monitor = _ppid(box.pid)
    keeper = _ppid(monitor)
    assert keeper == box.record.monitor_pid
    assert _comm(box.pid) == "corral-init"  # unchanged: the init's own name, until it execs
    assert _comm(monitor) == "corral-mon:nm"
    assert _comm(keeper) == "corral-keep:nm"
    assert _comm(_ppid(keeper)) == "corral-helper"

    box.start()
    process = box.exec(Process(args=("/bin/sleep", "1000"), env=(PATH_ENV,)))
    assert _comm(_ppid(process.pid)) == "corral-exec:nm"


def test_a_long_id_is_cut_to_the_kernels_15_bytes(runtime: Runtime, bundle: Path) -> None:
    box = runtime.create("a-rather-long-id", make_config(bundle, "a-rather-long-id", "/bin/sleep", "1000"))
    assert box.pid is not None
    assert _comm(_ppid(box.pid)) == "corral-mon:a-ra"

