"""corral/executor/launch.py: the spawn helper started with posix_spawn, its descriptors, its reaping.

posix_spawn closes nothing (subprocess's close_fds did): whatever the starting
command holds without close-on-exec (containerd's stdio, `--preserve-fds`,
`LISTEN_FDS`) reaches the helper, and the zygote must close it before anything
else. And the helper is a bare PID now, not a Popen: whoever ends it must reap
it, or it stays a zombie.
"""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral.cli import early
from corral.executor import launch, protocol, spawn


def state_of(pid: int) -> str | None:
    """The process's state letter (Z: a zombie), None once it is gone (reaped)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("State:"):
                    return line.split()[1]
    except FileNotFoundError:
        return None
    return "?"


def ping(fd: int) -> None:
    """Wait for the helper to answer: its main has run (and closed what it inherited)."""
    sock = socket.socket(fileno=os.dup(fd))
    try:
        protocol.send(sock, protocol.Ping())
        assert isinstance(protocol.recv(sock), protocol.Pong)
    finally:
        sock.close()


@pytest.fixture
def inherited(tmp_path: Path) -> Iterator[tuple[int, int, int]]:
    """What a caller leaves inheritable: a pipe (read, write) and a directory (CVE-2024-21626's way out)."""
    r, w = os.pipe()
    directory = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    for fd in (r, w, directory):
        os.set_inheritable(fd, True)
    yield r, w, directory
    for fd in (r, w, directory):
        try:
            os.close(fd)
        except OSError:
            pass


def test_the_helper_holds_only_its_stdio_and_its_socket(inherited: tuple[int, int, int]) -> None:
    r, w, directory = inherited
    process, fd = launch.start_helper()
    try:
        assert not os.get_inheritable(fd)  # ours stays close-on-exec: no other child gets it
        ping(fd)
        target = open(f"/proc/{process.pid}/cmdline", "rb").read().split(b"\0")[-2].decode()
        held = {name: os.readlink(f"/proc/{process.pid}/fd/{name}") for name in os.listdir(f"/proc/{process.pid}/fd")}
        assert sorted(held) == sorted(["0", "1", "2", target]), held
        assert held["0"] == "/dev/null"
        assert held[target].startswith("socket:")
        # The pipe's write end is nowhere but here: closed, its read end sees the end of file.
        os.close(w)
        assert select.select([r], [], [], 5)[0] == [r]
        assert os.read(r, 1) == b""
    finally:
        early.end((process, fd))
    assert state_of(process.pid) is None


def test_a_helper_started_with_stdio_closed_still_gets_its_socket() -> None:
    """A command started with fd 0 closed: the pair or the memfd would land on 0, which the spawn
    replaces with /dev/null; both are moved above 2 first."""
    saved = os.dup(0)
    os.close(0)
    try:
        process, fd = launch.start_helper()
    finally:
        os.dup2(saved, 0)
        os.close(saved)
    try:
        assert fd > 2
        ping(fd)
    finally:
        early.end((process, fd))


def test_the_helper_imports_nothing_from_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """containerd runs `create` in the bundle: a `corral` package there must not be what the root
    helper (and every monitor and init forked from it) imports."""
    (tmp_path / "corral").mkdir()
    (tmp_path / "corral" / "__init__.py").write_text("raise SystemExit('imported from the working directory')\n")
    monkeypatch.chdir(tmp_path)
    process, fd = launch.start_helper()
    try:
        ping(fd)
    finally:
        early.end((process, fd))
    assert process.returncode == 0


def test_an_adopted_helper_is_reaped_when_the_executor_closes() -> None:
    process, fd = launch.start_helper()
    helper = spawn.Helper()
    helper.adopt(process, fd)
    ping(fd)
    helper.close()
    assert process.returncode == 0  # it exited at its socket's end of file
    assert state_of(process.pid) is None  # and was reaped: no zombie


def test_the_librarys_own_helper_is_reaped_when_closed() -> None:
    helper = spawn.Helper()
    helper._start()  # the first request's start: pinged
    process = helper._process
    assert process is not None and state_of(process.pid) not in (None, "Z")
    helper.close()
    assert state_of(process.pid) is None


def test_early_end_reaps_the_helper(tmp_path: Path) -> None:
    (tmp_path / "corral.db").write_bytes(b"")
    early.prestart(str(tmp_path))
    started = early.take()
    assert started is not None
    early.end(started)
    assert state_of(started[0].pid) is None


def spawn_sleeper() -> launch.HelperProcess:
    return launch.HelperProcess(os.posix_spawn("/bin/sleep", ["sleep", "60"], os.environ))


def test_a_helper_that_does_not_exit_is_killed_after_the_timeout_and_reaped() -> None:
    process = spawn_sleeper()
    started = time.monotonic()
    process.stop(timeout=0.3)
    assert 0.25 < time.monotonic() - started < 5
    assert process.returncode == -9
    assert state_of(process.pid) is None


def test_wait_with_a_timeout_returns_as_the_helper_exits() -> None:
    process = launch.HelperProcess(os.posix_spawn("/bin/true", ["true"], os.environ))
    started = time.monotonic()
    assert process.wait(timeout=10) == 0
    assert time.monotonic() - started < 5
    assert state_of(process.pid) is None
    with pytest.raises(TimeoutError):
        sleeper = spawn_sleeper()
        try:
            sleeper.wait(timeout=0.05)
        finally:
            sleeper.stop(timeout=0)


def test_a_dropped_helper_is_reaped_at_the_next_start() -> None:
    """As subprocess does for a Popen dropped unwaited: a library caller that never closed its executor."""
    process = launch.HelperProcess(os.posix_spawn("/bin/true", ["true"], os.environ))
    pid = process.pid
    del process
    deadline = time.monotonic() + 10
    while state_of(pid) != "Z" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert state_of(pid) == "Z"
    started = launch.start_helper()
    early.end(started)
    assert state_of(pid) is None
    assert pid not in launch._unreaped


def test_the_helper_preloads_no_hooks_and_no_subprocess() -> None:
    """A create without hooks needs neither: only a config with hooks has the helper import them."""
    code = (
        "import sys; from corral.executor import zygote; zygote.preload(); "
        "print(*sorted(m for m in ('subprocess', 'corral.executor.hooks') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-S", "-P", "-c", code], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": launch.python_path()}, cwd="/")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == []
