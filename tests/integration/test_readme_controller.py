"""The README's "Making a bundle" and "Writing a controller" blocks, run as written, as root,
against real containers (issue 13, item 5); then nothing of theirs is left on the host."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from corral.executor.linux import store_tag
from tests.rootfs import BUSYBOX
from tests.readme_blocks import block

pytestmark = pytest.mark.root

VENV_BIN = os.path.dirname(sys.executable)


def test_the_readme_controller_runs(tmp_path: Path) -> None:
    if not os.path.exists(BUSYBOX):
        pytest.skip("needs Debian's busybox-static (scripts/install installs it)")
    bundle, root, run_root = tmp_path / "bundle", tmp_path / "root", tmp_path / "run"
    env = {
        **os.environ,
        "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "BUNDLE": str(bundle),
        "CORRAL_ROOT": str(root),
        "CORRAL_RUN_ROOT": str(run_root),
    }
    subprocess.run(["bash", "-euo", "pipefail", "-c", block("bundle")], env=env, check=True, timeout=120)
    assert (bundle / "config.json").is_file() and (bundle / "rootfs" / "bin" / "sh").is_symlink()

    result = subprocess.run(
        [sys.executable, "-c", block("controller")], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout.splitlines()
    assert out[0] == "job exited with 0 ['6x7=42']"
    assert out[1].startswith("exec: 0 hello from ") and out[1].endswith(" b''")
    assert out[2].startswith("web running ")
    seq, event = out[3].split(" ", 1)  # the job's exit, read back from the journal as an event
    assert int(seq) > 0 and event == "job exited with 0"
    assert out[4] == "web exited with 0"
    assert [line.split(" ", 1)[1] for line in out[5:-1]] == ["stdout serving", "stdout bye"]
    assert out[-1] == "purged ['job', 'web']"

    # Nothing left: no cgroup of this store, no run dir, no record.
    cgroups = Path("/sys/fs/cgroup")
    hierarchies = [cgroups] if (cgroups / "cgroup.controllers").exists() else list(cgroups.iterdir())
    for hierarchy in hierarchies:
        assert not (hierarchy / "corral" / store_tag(str(root))).exists()
    assert list(run_root.iterdir()) == []
    with sqlite3.connect(root / "corral.db") as db:
        assert db.execute("SELECT count(*) FROM containers").fetchone() == (0,)
        assert db.execute("SELECT count(*) FROM journal").fetchone() == (0,)
