"""A one-shot `create`'s spawn helper keeps none of the descriptors the command was given.

containerd starts `create` with its stdio and, for `--preserve-fds` or socket
activation, more descriptors without close-on-exec. The command starts the
helper first, with posix_spawn (launch.py), which closes nothing: the zygote
must close them itself before it serves, or the helper (and a fork of it that
forgot to) would hold a caller's pipe open or a directory outside the rootfs.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tests.integration.test_cli import Cli, cli, make_bundle  # noqa: F401 - `cli` is a fixture
from tests.unit.test_helper_launch import state_of


def children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(child) for child in f.read().split()]
    except FileNotFoundError:
        return []


def comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except FileNotFoundError:
        return ""


def test_the_helper_of_a_create_holds_none_of_the_callers_descriptors(cli: Cli, rootfs_template: Path) -> None:
    bundle = make_bundle(cli, rootfs_template, "fds", "sleep", "1000")
    cli("list")  # the store exists: the command starts its helper first (early.py)
    r, w = os.pipe()
    directory = os.open(cli.tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    command = [sys.executable, "-m", "corral.cli", "--root", str(cli.root), "--log", str(cli.log),
               "create", "--bundle", str(bundle), "fds"]
    try:
        with open(cli.tmp_path / "create.err", "w+") as err:
            create = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=err, stderr=err, pass_fds=(w, directory))
            helper = None
            held: dict[str, str] = {}
            deadline = time.monotonic() + 30
            while create.poll() is None and time.monotonic() < deadline:
                # Named once its main has closed what it inherited, before it imports (zygote.main).
                found = [pid for pid in children(create.pid) if comm(pid) == "corral-helper"]
                if found:
                    helper = found[0]
                    try:
                        held = {name: os.readlink(f"/proc/{helper}/fd/{name}") for name in os.listdir(f"/proc/{helper}/fd")}
                    except FileNotFoundError:
                        continue  # it exited meanwhile: the command is ending
                    break
                time.sleep(0.001)
            assert create.wait(timeout=60) == 0, (err.seek(0), err.read())
        assert helper is not None, "the helper was never seen"
        assert held["0"] == "/dev/null"
        # Besides its stdio and its socket it may be seen holding, for a moment, a file its imports
        # read (/etc/ld.so.cache, a module) or the four fds of the request it serves: never ours.
        pipe = os.readlink(f"/proc/self/fd/{w}")
        assert pipe not in held.values() and str(cli.tmp_path) not in held.values(), held
        assert state_of(helper) is None  # the command reaped it before it exited
    finally:
        for fd in (r, w, directory):
            os.close(fd)
