"""Stdio.extra_fds and `--preserve-fds N`: the caller's descriptors become the program's 3, 4, ...

The init's /proc/<pid>/fd, read on the host once the program runs, holds
exactly 0, 1, 2 and the extra ones, each the very file the caller gave; the CLI
passes its own 3..3+N-1 and nothing above.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from corral import Process, Runtime, Stdio
from corral.errors import ConfigError, InvalidStdio
from tests.integration.conftest import make_config
from tests.integration.test_cli import Cli, cli, make_bundle  # noqa: F401 - cli is a fixture

pytestmark = pytest.mark.root


def _fds(pid: int) -> dict[int, str]:
    """The descriptors of `pid` once it runs `sleep`: before its `exec sleep`, sh may be inside
    `echo >&3`, with fd 1 pointing at 3's file and the real stdout saved at fd 10."""
    deadline = time.monotonic() + 10
    while not Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"sleep\0"):
        assert time.monotonic() < deadline, "the process never exec'd sleep"
        time.sleep(0.01)
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
        box.destroy(force=True)
    finally:
        for fd in (read_end, marker, high_marker):
            os.close(fd)


def test_an_exec_gets_its_extra_fds_as_3_and_4_and_nothing_else(runtime: Runtime, bundle: Path, tmp_path: Path) -> None:
    """runc exec's --preserve-fds in the library: Stdio(extra_fds=...) for exec as for create."""
    box = runtime.create("xfds", make_config(bundle, "xfds", "sleep", "1000"))
    box.start()
    read_end, write_end = os.pipe()
    marker = os.open(tmp_path / "marker", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    high_write, high_marker = os.dup2(write_end, 60), os.dup2(marker, 61)
    os.close(write_end)
    try:
        process = Process(args=("sh", "-c", "echo through-3 >&3; exec sleep 1000"), env=box.config.process.env)
        handle = box.exec(process, stdio=Stdio(extra_fds=(high_write, high_marker)))
        os.close(high_write)
        assert os.read(read_end, 100) == b"through-3\n"
        fds = _fds(handle.pid)
        assert sorted(fds) == [0, 1, 2, 3, 4], fds  # the monitor's report socket is gone at execve
        assert fds[3] == os.readlink(f"/proc/self/fd/{read_end}")  # the same pipe
        assert fds[4] == str(tmp_path / "marker")
        assert fds[0] == fds[1] == fds[2] == "/dev/null"
        os.kill(handle.pid, signal.SIGKILL)
        assert handle.wait(10) == 137
        with pytest.raises(InvalidStdio):  # a closed one is refused before anything is started
            box.exec(process, stdio=Stdio(extra_fds=(high_write,)))
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


#: The caller of `exec --detach --preserve-fds 2`, as containerd's shim or conmon would be:
#: it holds its fds 3 (a pipe), 4 (a file) and 5 (not to be passed), runs the command line
#: with them, and reads the exec'd process's /proc/<pid>/fd. With --parent caller it is the
#: subreaper the process is handed to (the test_parent_caller stand-in), and reaps it.
EXEC_CALLER = r"""
import json, os, signal, socket, subprocess, sys, time
from corral import receive_console
from corral.executor import syscalls as sc

command, marker, pid_file, console_path = json.loads(sys.argv[1])
sc.prctl(sc.PR_SET_CHILD_SUBREAPER, 1)
read_end, write_end = os.pipe()
held = [os.dup2(write_end, 20), os.dup2(os.open(marker, os.O_RDWR), 21), os.dup2(os.open(os.devnull, os.O_RDONLY), 22)]
read_end = os.dup2(read_end, 23)
for target, fd in enumerate(held, start=3):
    os.dup2(fd, target)
listener = None
if console_path:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(console_path)
    listener.listen(1)
with open(pid_file + ".err", "w+") as err:
    done = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=err, stderr=err, pass_fds=(3, 4, 5), timeout=120)
    err.seek(0)
    out = {"rc": done.returncode, "err": err.read()[-800:]}
if done.returncode == 0:
    pid = int(open(pid_file).read())
    if listener is not None:
        out["master"] = receive_console(listener, timeout=30).name
    os.close(3)
    out["read"] = os.read(read_end, 100).decode()
    while not open(f"/proc/{pid}/cmdline", "rb").read().startswith(b"sleep\0"):  # past sh's `>&3`
        time.sleep(0.01)
    out["fds"] = {fd: os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
    out["pipe"] = os.readlink(f"/proc/self/fd/{read_end}")
    with open(f"/proc/{pid}/stat") as f:
        out["ours"] = int(f.read().rsplit(")", 1)[1].split()[1]) == os.getpid()
    os.kill(pid, signal.SIGKILL)
    if out["ours"]:
        os.waitpid(pid, 0)
print(json.dumps(out))
"""


@pytest.mark.parametrize(("parent", "tty"), [("monitor", False), ("caller", False), ("caller", True)])
def test_cli_exec_preserve_fds(cli: Cli, rootfs_template: Path, parent: str, tty: bool) -> None:
    """runc's `exec --preserve-fds N`: the caller's 3..3+N-1 are the process's 3..3+N-1 and no
    more, in both parent modes and beside a terminal (ctr task exec -t's call with --preserve-fds)."""
    bundle = make_bundle(cli, rootfs_template, "px", "sleep", "1000")
    cli("run", "--detach", "--bundle", str(bundle), "px")
    marker, pid_file = cli.tmp_path / "marker", cli.tmp_path / "exec.pid"
    marker.write_text("")
    console = str(cli.tmp_path / "console.sock") if tty else ""
    command = [sys.executable, "-m", "corral.cli", "--root", str(cli.root), "--log", str(cli.log),
               "--log-format", "json", "--parent", parent, "exec", "--detach", "--pid-file", str(pid_file),
               "--preserve-fds", "2", *(["--tty", "--console-socket", console] if tty else []),
               "px", "sh", "-c", "echo through-3 >&3; exec sleep 1000"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    done = subprocess.run([sys.executable, "-c", EXEC_CALLER, json.dumps([command, str(marker), str(pid_file), console])],
                          capture_output=True, text=True, timeout=180, env=env)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.splitlines()[-1])
    assert out["rc"] == 0, out
    fds = {int(fd): target for fd, target in out["fds"].items()}
    assert sorted(fds) == [0, 1, 2, 3, 4], fds  # not 5, nor anything of corral's
    assert (fds[3], fds[4]) == (out["pipe"], str(marker))
    assert out["read"] == "through-3\n"
    assert out["ours"] is (parent == "caller")
    if tty:
        assert out["master"] == "/dev/ptmx" and fds[0] == fds[1] == fds[2] and fds[0].startswith("/dev/pts/"), out
    else:
        assert (fds[0], fds[1], fds[2]) == ("/dev/null", f"{pid_file}.err", f"{pid_file}.err"), fds  # the caller's
    cli("delete", "--force", "px")
