"""The CLI, scale, throughput and footprint benchmarks run, with tiny counts, so that they cannot rot (never a timing).

Each runs as the README says, as a subprocess: it must exit 0, print its table,
and leave nothing behind (its cgroups and temporary directories; the leak
checks of conftest cover the kernel). The CLI benchmark's import column must
say that the one-shot commands imported no heavy library.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import _require_busybox

pytestmark = pytest.mark.root

REPO = Path(__file__).resolve().parents[2]


def run(script: str, *args: str) -> str:
    _require_busybox()
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / script), *args], cwd=REPO,
                          capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def table(out: str) -> dict[str, list[str]]:
    rows = [line.strip("|").split("|") for line in out.splitlines() if line.startswith("| ") and "---" not in line]
    return {cells[0].strip(): [c.strip() for c in cells[1:]] for cells in rows}


def test_cli_benchmark_runs_with_tiny_counts() -> None:
    if not os.path.exists(REPO / ".venv" / "bin" / "corral-runc"):
        pytest.skip("scripts/install writes .venv/bin/corral-runc")
    rows = table(run("cli.py", "--iterations", "1", "--others", "3", "--live", "1"))
    for command in ("state", "ps --format json", "kill SIGCONT", "pause", "resume", "start"):
        assert rows[command][-1] == "none", (command, rows[command])
    assert "create + start + delete" in rows
    assert not [p for p in Path("/sys/fs/cgroup").glob("*/corral-clibench-*")]


def test_scale_benchmark_runs_with_tiny_counts() -> None:
    rows = table(run("scale.py", "--records", "10", "30", "--live", "2", "--repeat", "1"))
    assert set(rows) == {"records", "10", "30"}
    assert not [p for p in Path("/sys/fs/cgroup").glob("*/corral-scalebench-*")]


def test_throughput_benchmark_runs_with_tiny_counts() -> None:
    rows = table(run("throughput.py", "--sequential", "2", "--concurrent", "2", "--workers", "2"))
    assert {"sequential, 1 process", "1 process (baseline)", "2 threads, one Runtime",
            "2 processes, a Runtime each"} <= set(rows)
    assert not [p for p in Path("/sys/fs/cgroup").glob("*/corral-tputbench-*")]


def test_footprint_benchmark_runs_with_tiny_counts() -> None:
    rows = table(run("footprint.py", "--live", "2", "--records", "5", "--imports", "1"))
    assert {"monitor", "caller", "import corral", "import corral; corral.Runtime"} <= set(rows)
    assert rows["+ 5 copies of its rows"][0] == "6"  # containers counted after the copies
    assert not [p for p in Path("/sys/fs/cgroup").glob("*/corral-footbench-*")]
