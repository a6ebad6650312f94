"""corral/cli/early.py: a one-shot create's early helper, and the exit without teardown."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from corral.cli import early, oneshot


@pytest.fixture(autouse=True)
def nothing_left() -> None:
    yield
    early.discard()


def test_prestart_starts_a_helper_only_for_an_existing_store(tmp_path: Path) -> None:
    early.prestart(str(tmp_path))
    assert early.take() is None  # no store: the library's path starts its own
    (tmp_path / "corral.db").write_bytes(b"")
    early.prestart(str(tmp_path))
    started = early.take()
    assert started is not None
    process, fd = started
    try:
        assert process.poll() is None
        assert os.readlink(f"/proc/{process.pid}/exe").startswith("/memfd:")  # sealed, as spawn.Helper's
    finally:
        os.close(fd)
        process.wait(timeout=10)
    assert early.take() is None  # taken once


def test_discard_ends_an_untaken_helper(tmp_path: Path) -> None:
    (tmp_path / "corral.db").write_bytes(b"")
    early.prestart(str(tmp_path))
    started = early._started
    assert started is not None
    early.discard()
    assert started[0].returncode == 0  # reaped: it exited on its socket's end of file
    assert early.take() is None


@pytest.mark.parametrize(
    "args",
    [
        ["create", "--bundle", "missing", "c"],  # the command takes the helper, then fails
        ["create", "--bundle", "missing"],  # argparse refuses it: the command never runs
    ],
)
def test_a_create_that_fails_leaves_no_helper(tmp_path: Path, args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "corral.db").write_bytes(b"")
    assert oneshot.main(["--root", str(tmp_path), *args]) == 1
    assert early.take() is None


def test_exit_now_flushes_what_was_written_and_keeps_the_status() -> None:
    program = "import sys; from corral.cli import early; sys.stdout.write('out'); sys.stderr.write('err'); early.exit_now(7)"
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout, done.stderr) == (7, "out", "err")
