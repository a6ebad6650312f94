"""`exec` in the foreground as runc's: the signals the command gets go on to the exec'd process,
and the command exits with that process's status."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.test_cli import Cli, cli, make_bundle  # noqa: F401 - cli is a fixture

pytestmark = pytest.mark.root


def test_a_foreground_exec_passes_signals_on(cli: Cli, rootfs_template: Path) -> None:  # noqa: F811
    bundle = make_bundle(cli, rootfs_template, "sig", "sleep", "1000")
    cli("run", "--detach", "--bundle", str(bundle), "sig")
    out = cli.tmp_path / "exec.out"
    command = [sys.executable, "-m", "corral.cli", "--root", str(cli.root), "--log", str(cli.log),
               "--log-format", "json", "exec", "sig",
               "sh", "-c", 'trap "echo got-term; exit 9" TERM; echo ready; while :; do sleep 0.1; done']
    with open(out, "wb") as stdout:
        run = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=stdout, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while b"ready" not in out.read_bytes():  # echoed after `trap`: the trap is set
            assert run.poll() is None and time.monotonic() < deadline, out.read_bytes()
            time.sleep(0.05)
        run.send_signal(signal.SIGTERM)
        assert run.wait(timeout=30) == 9, out.read_bytes()  # not -15: the command did not die of it
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert b"got-term" in out.read_bytes()
