"""Stdio.extra_fds and `--preserve-fds N`: the caller's descriptors become the program's 3, 4, ...

The init's /proc/<pid>/fd, read on the host once the program runs, holds
exactly 0, 1, 2 and the extra ones, each the very file the caller gave; the CLI
passes its own 3..3+N-1 and nothing above.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from corral import Runtime, Stdio
from corral.errors import ConfigError
from tests.integration.conftest import make_config
from tests.integration.test_cli import Cli, cli, make_bundle  # noqa: F401 - cli is a fixture

pytestmark = pytest.mark.root


def _fds(pid: int) -> dict[int, str]:
    return {int(fd): os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}


def test_extra_fds_are_the_programs_3_and_4(runtime: Runtime, bundle: Path, tmp_path: Path) -> None:
    read_end, write_end = os.pipe()
    marker = os.open(tmp_path / "marker", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    # High numbers on purpose: the init must move them down past its own descriptors.
    high_write, high_marker = os.dup2(write_end, 60), os.dup2(marker, 61)
    try:
        config = make_config(bundle, "fds", "sh", "-c", "echo through-3 >&3; exec sleep 1000")
        box = runtime.create("fds", config, stdio=Stdio(extra_fds=(high_write, high_marker)))
        box.start()
        os.close(write_end)
        os.close(high_write)
        assert os.read(read_end, 100) == b"through-3\n"
        pid = box.pid
        assert pid is not None
        fds = _fds(pid)
        assert sorted(fds) == [0, 1, 2, 3, 4], fds  # the exec fifo is gone (close-on-exec), nothing else leaked
        assert fds[3] == os.readlink(f"/proc/self/fd/{read_end}")  # the same pipe
        assert fds[4] == str(tmp_path / "marker")
        with pytest.raises(ConfigError):  # exec's processes get only their stdio
            box.exec(config.process, stdio=Stdio(extra_fds=(marker,)))
        box.destroy(force=True)
    finally:
        for fd in (read_end, marker, high_marker):
            os.close(fd)


def test_a_closed_extra_fd_is_refused_before_anything_is_made(runtime: Runtime, bundle: Path) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)
    os.close(write_end)
    with pytest.raises(ConfigError) as raised:
        runtime.create("closed", make_config(bundle, "closed", "true"), stdio=Stdio(extra_fds=(write_end,)))
    assert "extra_fds[0]" in str(raised.value)
    assert runtime.list() == []


def test_cli_preserve_fds(cli: Cli, rootfs_template: Path) -> None:
    bundle = make_bundle(cli, rootfs_template, "pf", "sh", "-c", "echo three >&3; echo four >&4; ls /proc/self/fd")
    three, four = cli.tmp_path / "three", cli.tmp_path / "four"
    command = [sys.executable, "-m", "corral.cli", "--root", str(cli.root), "--log", str(cli.log),
               "run", "--bundle", str(bundle), "--preserve-fds", "1", "pf"]
    done = subprocess.run(["sh", "-c", 'exec 3>"$1" 4>"$2"; shift 2; exec "$@"', "sh", str(three), str(four), *command],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert three.read_text() == "three\n"
    assert four.read_text() == ""  # only 3..3+N-1: fd 4 was not passed
    assert "Bad file descriptor" in done.stderr or "can't" in done.stderr or done.returncode != 0
    listed = sorted(int(fd) for fd in done.stdout.split())
    assert listed[:4] == [0, 1, 2, 3] and 4 not in listed[:-1], done.stdout  # ls's own directory fd last
